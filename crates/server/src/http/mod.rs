//! HTTP plumbing: the accept loop, TLS, limits, errors, JSON bodies, metrics and health.

use axum::extract::State;
use axum::http::StatusCode;

use crate::http::error::error_response;

mod drain;
pub mod error;
pub mod health;
pub mod json;
pub mod metrics;
pub mod serve;
pub mod tls;

/// Refuses request heads (request line and headers) larger than `limits.max_header_size`.
pub async fn limit_head(
    State(max): State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let head = req.method().as_str().len()
        + req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > max {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_too_large",
            format!("request head of {head} bytes exceeds the limit of {max}"),
        );
    }
    next.run(req).await
}

pub async fn not_found() -> axum::response::Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint".into(),
    )
}

pub async fn method_not_allowed() -> axum::response::Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint".into(),
    )
}
