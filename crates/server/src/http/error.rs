//! The one place where errors become HTTP responses. Every `/v1` error has the shape
//! `{"error":{"code":…,"message":…}}`; internal details are logged, never sent.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enc_proto::{ErrorBody, ErrorDetail};
use enc_store::StoreError;

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or unknown credentials (401).
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong user name or passphrase (401); same answer for unknown users.
    #[error("wrong user name or passphrase")]
    BadCredentials,
    /// The session idled out (401).
    #[error("session expired — run `enc login`")]
    SessionExpired,
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or not visible to the caller: the two are indistinguishable (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// State conflict (409).
    #[error("{0}")]
    Conflict(String),
    /// Body larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// The owner's storage quota has no room (507).
    #[error("{0}")]
    QuotaExceeded(String),
    /// Throttled (429).
    #[error("too many failed attempts; retry in {0} s")]
    TooManyAttempts(u64),
    /// Too much of something in progress at once (429).
    #[error("{0}")]
    TooManyUploads(String),
    /// Anything else (500); the detail is logged only.
    #[error("internal error")]
    Internal(String),
    /// A dependency is down (503, with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
    /// A feature this server is not set up for (503, code `unavailable`, no `Retry-After`:
    /// asking again changes nothing until its admin sets it up).
    #[error("{0}")]
    NotConfigured(String),
    /// Stored data the metadata references is missing from the blob store (500, code
    /// `damaged`): the server's storage lost it.
    #[error("{0}")]
    Damaged(String),
    /// The storage under the server is full (507, code `storage_full`): nothing was stored.
    #[error(
        "the server's storage is full: nothing was stored; try again once its admin has made room"
    )]
    StorageFull,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            Self::SessionExpired => (StatusCode::UNAUTHORIZED, "session_expired"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::TooManyUploads(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            Self::QuotaExceeded(_) => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Damaged(_) => (StatusCode::INTERNAL_SERVER_ERROR, "damaged"),
            Self::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            Self::Unavailable(_) | Self::NotConfigured(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        }
    }
}

/// What every protocol says when the database or the blob store does not answer (a 503, or
/// Mercury's `ServerError`). Whether a write whose answer this replaces took effect is not
/// known, so it does not say "nothing was stored".
pub const STORAGE_UNAVAILABLE: &str = "the server's storage is not answering (its database or blob store is down or restarting); try again in a moment";

/// The JSON error response for a status, code and message (also used outside handlers).
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
        },
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let (status, code) = self.status_and_code();
        let mut resp = error_response(status, code, self.to_string());
        if let Self::TooLarge(_) | Self::QuotaExceeded(_) = self {
            // The rest of the body may still be on its way: do not reuse this connection.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Self::Unavailable(_) = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Self::TooManyAttempts(secs) = self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("digits"),
            );
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Conflict(m) => Self::Conflict(m.to_string()),
            StoreError::QuotaExceeded => {
                Self::QuotaExceeded("storage quota exceeded; free space or ask an admin".into())
            }
            full if full.is_full() => {
                tracing::error!(error = %full, "the server's storage is full");
                Self::StorageFull
            }
            down if down.is_unavailable() => {
                tracing::error!(error = %down, "the server's storage does not answer");
                Self::Unavailable(STORAGE_UNAVAILABLE.into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::TooLarge("JSON body too large".into())
            }
            JsonRejection::MissingJsonContentType(_) => {
                Self::BadRequest("expected Content-Type: application/json".into())
            }
            other => Self::BadRequest(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A storage outage asks the client to come back (`Retry-After`); a feature the server
    /// is not set up for is the same 503 without it, since asking again changes nothing.
    #[test]
    fn only_an_outage_says_when_to_retry() {
        let down = ApiError::Unavailable(STORAGE_UNAVAILABLE.into()).into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.headers()[header::RETRY_AFTER], "5");
        let unset = ApiError::NotConfigured("records have no pepper".into()).into_response();
        assert_eq!(unset.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(unset.headers().get(header::RETRY_AFTER).is_none());
    }
}
