//! `/v1/tokens`: creating, listing and revoking access tokens, the credentials of protocols
//! that cannot hold a session (restic's HTTP Basic, Mercury's `AUTH`). Each carries a kind, a
//! scope (the restic repository) and a mode; [`crate::rules::credentials`] verifies them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use enc_proto::*;
use enc_store::{AccessTokenRow, TokenKind, TokenMode};

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::credentials::{MERCURY_SCOPE, validate_repo_name};
use crate::rules::policy::Permission;
use crate::rules::{now, token_hash};
use crate::state::AppState;
use crate::v1::auth::Session;
use crate::v1::users::require_permission;

fn info(t: &AccessTokenRow) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        kind: t.kind.to_string(),
        scope: t.scope.clone(),
        mode: t.mode.to_string(),
        label: t.label.clone(),
        created: t.created,
        expires: t.expires,
        last_used: t.last_used,
    }
}

/// `POST /v1/tokens`: creates a token; the secret is in the response only.
#[utoipa::path(post, path = "/v1/tokens", request_body = CreateTokenRequest,
    responses((status = 200, body = CreateTokenResponse), (status = 400, body = ErrorBody)), tag = "tokens")]
pub async fn create(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<Json<CreateTokenResponse>> {
    let mut req = req;
    let kind: TokenKind = req
        .kind
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("unknown token kind: {e}")))?;
    match kind {
        TokenKind::Restic => validate_repo_name(&req.scope).map_err(ApiError::BadRequest)?,
        // A Mercury token reaches the user's archives; there is nothing else to scope.
        TokenKind::Mercury if req.scope.is_empty() || req.scope == MERCURY_SCOPE => {
            req.scope = MERCURY_SCOPE.into();
        }
        TokenKind::Mercury => {
            return Err(ApiError::BadRequest(format!(
                "a mercury token reaches your archives; leave the scope empty (got {:?})",
                req.scope
            )));
        }
        // A backups token acts as the device of the session that makes it.
        TokenKind::Backups if !req.scope.is_empty() => {
            return Err(ApiError::BadRequest(
                "a backups token acts as your device; leave the scope empty".into(),
            ));
        }
        TokenKind::Backups if s.device_id.is_none() => {
            return Err(ApiError::BadRequest(
                "this session has no device key to act as: run `enc login` again, or `enc device add` for an app".into(),
            ));
        }
        TokenKind::Backups if req.mode != "full" => {
            return Err(ApiError::BadRequest(
                "a backups token acts as your device: its mode is full".into(),
            ));
        }
        TokenKind::Backups => {}
        // A records token reaches the user's records; read-only reads only.
        TokenKind::Records if !req.scope.is_empty() => {
            return Err(ApiError::BadRequest(
                "a records token reaches your records; leave the scope empty".into(),
            ));
        }
        TokenKind::Records if req.mode == "append-only" => {
            return Err(ApiError::BadRequest(
                "a records token is full or read-only".into(),
            ));
        }
        TokenKind::Records => {}
    }
    let mode: TokenMode = req
        .mode
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("unknown mode: {e}")))?;
    if mode != TokenMode::ReadOnly {
        require_permission(&state, &s, Permission::WriteVaults)?;
    }
    if req.label.chars().count() > 128 || req.label.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "label: at most 128 characters, no control characters".into(),
        ));
    }
    let expires = match req.expires_in {
        Some(0) => return Err(ApiError::BadRequest("expires_in must be positive".into())),
        Some(secs) if secs > 100 * 365 * 86_400 => {
            return Err(ApiError::BadRequest("expires_in: at most 100 years".into()));
        }
        Some(secs) => Some(now() + secs as i64),
        None => None,
    };
    let mut raw = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let id = hex::encode(raw);
    let token = crate::rules::random_token(&format!("enc_{id}_"));
    let row = AccessTokenRow {
        id: id.clone(),
        user_id: s.user.id.clone(),
        token_hash: token_hash(&token),
        kind,
        scope: req.scope,
        mode,
        label: req.label,
        created: now(),
        expires,
        last_used: None,
        device_id: s.device_id.clone(),
    };
    state.meta.create_token(row.clone()).await?;
    // A revocation of the session's device that committed meanwhile deleted the device's
    // tokens before this one existed: this one must not outlive it.
    if let Some(device) = &s.device_id
        && !device_stands(&state, &s.user.id, device).await?
    {
        state.meta.delete_token(&s.user.id, &id).await?;
        return Err(ApiError::Unauthenticated);
    }
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "token.create",
            &format!("{id} {}:{} mode={}", row.kind, row.scope, row.mode),
            "ok",
            &s.client,
        )
        .await;
    Ok(Json(CreateTokenResponse {
        token,
        info: info(&row),
    }))
}

/// `GET /v1/tokens`: the caller's tokens.
#[utoipa::path(get, path = "/v1/tokens", responses((status = 200, body = Vec<TokenInfo>)), tag = "tokens")]
pub async fn list(State(state): State<AppState>, s: Session) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(
        state
            .meta
            .tokens_for(&s.user.id)
            .await?
            .iter()
            .map(info)
            .collect(),
    ))
}

/// `DELETE /v1/tokens/{id}`: revokes one of the caller's tokens at once.
#[utoipa::path(delete, path = "/v1/tokens/{id}", responses((status = 204), (status = 404, body = ErrorBody)), tag = "tokens")]
pub async fn revoke(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.meta.delete_token(&s.user.id, &id).await? {
        return Err(ApiError::NotFound("token"));
    }
    state.revocations.revoke(Some(&id));
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "token.revoke",
            &id,
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether a device of the user exists and is not revoked.
pub(crate) async fn device_stands(
    state: &AppState,
    user_id: &str,
    device: &str,
) -> ApiResult<bool> {
    Ok(state
        .meta
        .device(user_id, device)
        .await?
        .is_some_and(|d| d.revoked_seq.is_none()))
}
