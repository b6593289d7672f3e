//! `GET /v1/mercury/archives` and `GET /v1/mercury/archives/{name}`: the caller's own Mercury
//! (Hecate) archives over HTTPS with their session, as stored (Hecate's own ciphertext), so
//! `enc account export` takes them along. Hecate's clients keep the WebSocket protocol.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use enc_proto::*;

use super::auth::Session;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `GET /v1/mercury/archives`: the caller's archives, by name.
#[utoipa::path(get, path = "/v1/mercury/archives",
    responses((status = 200, body = Vec<MercuryArchive>)), tag = "mercury")]
pub async fn list(
    State(state): State<AppState>,
    s: Session,
) -> ApiResult<Json<Vec<MercuryArchive>>> {
    let rows = state
        .meta
        .mercury_files(&enc_store::mercury_user_space(&s.user.id))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| MercuryArchive {
                name: r.name,
                size: r.size.max(0) as u64,
                created: r.created,
            })
            .collect(),
    ))
}

/// `GET /v1/mercury/archives/{name}`: one of the caller's archives, streamed as stored.
#[utoipa::path(get, path = "/v1/mercury/archives/{name}",
    responses((status = 200, content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody)), tag = "mercury")]
pub async fn download(
    State(state): State<AppState>,
    s: Session,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let row = state
        .meta
        .mercury_file(&enc_store::mercury_user_space(&s.user.id), &name)
        .await?
        .ok_or(ApiError::NotFound("archive"))?;
    super::objects::blob_response(&state, &row.blob_key, row.size.max(0) as u64).await
}
