/// Errors of the client. Each message says what to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The session idled out or was revoked.
    #[error("session expired — run `enc login`")]
    SessionExpired,
    /// No session stored.
    #[error("not logged in — run `enc login`")]
    NotLoggedIn,
    /// The server's certificate is not the pinned one.
    #[error(
        "the server's TLS certificate ({seen}) does not match the pinned fingerprint ({pinned}); if the server's certificate changed on purpose, run `enc login --fingerprint {seen}`"
    )]
    FingerprintMismatch {
        /// What the server presented.
        seen: String,
        /// What was pinned.
        pinned: String,
    },
    /// Could not reach the server.
    #[error("cannot reach {server}: {detail}")]
    Transport {
        /// Server URL.
        server: String,
        /// Cause.
        detail: String,
    },
    /// Stored data failed verification: changed, truncated, or not what was signed.
    #[error("integrity error: {0}")]
    Integrity(String),
    /// Key handling failed (e.g. wrong passphrase for the key bundle).
    #[error("{0}")]
    Crypto(#[from] enc_crypto::CryptoError),
    /// Local file trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A mistake in what was asked.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    /// Whether this is an API error with this HTTP status.
    pub fn is_status(&self, s: u16) -> bool {
        matches!(self, Self::Api { status, .. } if *status == s)
    }
}
