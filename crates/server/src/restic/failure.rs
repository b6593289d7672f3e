//! restic's error answers: plain text with the status rest-server gives, `Allow` on a wrong
//! method, `Retry-After` when throttled; the one place a store error becomes a restic answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enc_store::StoreError;

/// A restic error: plain text, as rest-server answers.
#[derive(Debug)]
pub struct Failure {
    pub(super) status: StatusCode,
    message: String,
    allow: Option<&'static str>,
    pub(super) retry_after: Option<u64>,
    close: bool,
}

impl Failure {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
            retry_after: None,
            close: false,
        }
    }
    pub(super) fn method(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed here; allowed: {allow}"),
            )
        }
    }
    pub(super) fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::INSUFFICIENT_STORAGE {
            tracing::error!(detail = %self.message, "restic backend error");
        }
        let body = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error\n".to_string()
        } else {
            format!("{}\n", self.message)
        };
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(a) = self.allow {
            h.insert(header::ALLOW, HeaderValue::from_static(a));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"enc restic\", charset=\"UTF-8\""),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QuotaExceeded => quota_failure(),
            full if full.is_full() => {
                tracing::error!(error = %full, "the server's storage is full");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "the server's storage is full: nothing was stored; try again once its admin has made room",
                )
                .closing()
            }
            down if down.is_unavailable() => {
                tracing::error!(error = %down, "the server's storage does not answer");
                let mut f = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    crate::http::error::STORAGE_UNAVAILABLE,
                )
                .closing();
                f.retry_after = Some(5);
                f
            }
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

pub(super) fn quota_failure() -> Failure {
    Failure::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "storage quota exceeded; delete snapshots and prune, or ask an admin for more",
    )
    .closing()
}

pub(super) fn unauthorized() -> Failure {
    Failure::new(
        StatusCode::UNAUTHORIZED,
        "authentication required: user name and an access token for this repository (`enc token create --restic REPO`)",
    )
}
