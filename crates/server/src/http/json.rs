//! `ApiJson`: axum's `Json` with rejections turned into the API's error shape.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// A JSON request body; malformed JSON or unknown fields give a 400 with the reason.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json")
                    || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            // Read what the client is still sending before answering, so it reads the refusal
            // instead of a connection closed under its upload.
            crate::rules::ingest::drain(&mut req.into_body().into_data_stream()).await;
            return Err(ApiError::BadRequest(
                "expected Content-Type: application/json".into(),
            ));
        }
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// Parses a request's query string in the API's error shape, for handlers that must read
/// (drain) the body before refusing.
pub fn query_of<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", e.body_text())))
}

/// A query string; malformed values or unknown parameters give a 400 in the API's error
/// shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "invalid query string: {}",
                e.body_text()
            ))),
        }
    }
}
