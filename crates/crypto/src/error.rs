/// Errors of the crypto layer. None of them carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Authenticated decryption failed: wrong key, or the data was changed.
    #[error("decryption failed: wrong key or tampered data")]
    Decrypt,
    /// Input that does not have the expected shape.
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Key derivation parameters out of the accepted range.
    #[error("key derivation parameters rejected: {0}")]
    Kdf(String),
    /// A name that cannot be stored.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
}
