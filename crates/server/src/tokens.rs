//! Access tokens: credentials for protocols that cannot hold a session (restic's HTTP Basic).
//!
//! A token is `enc_<id>_<secret>`: the id finds the row, and the SHA-256 of the whole token
//! must equal the stored hash (compared in constant time). Each token carries a kind, a scope
//! (the restic repository) and a mode (`full`, `append-only`, `read-only`). Failed attempts
//! count against the user name and the client address; while either backs off, failures get
//! 429. A valid token is never refused for someone else's failures: with 256 bits of secret,
//! guessing is hopeless, so the throttle only stops noise, never the owner.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use enc_proto::*;
use enc_store::{AccessTokenRow, UserRow};
use subtle::ConstantTimeEq as _;

use crate::auth::{Session, backoff, check_throttle};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::policy::Permission;
use crate::state::AppState;
use crate::users::require_permission;
use crate::{now, token_hash};

/// The scope of every Mercury token: the user's archives.
pub const MERCURY_SCOPE: &str = "archives";

/// Token modes.
pub const MODES: [&str; 3] = ["full", "append-only", "read-only"];

/// A use of a token is audited at most this often (seconds); `last_used` is kept to the
/// minute.
const AUDIT_USE_EVERY: i64 = 3600;

fn info(t: &AccessTokenRow) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        kind: t.kind.clone(),
        scope: t.scope.clone(),
        mode: t.mode.clone(),
        label: t.label.clone(),
        created: t.created,
        expires: t.expires,
        last_used: t.last_used,
    }
}

/// Checks a restic repository name (the same rule as vault names).
pub fn validate_repo_name(name: &str) -> Result<(), String> {
    crate::vaults::check_name("repository", name)
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
    match req.kind.as_str() {
        "restic" => validate_repo_name(&req.scope).map_err(ApiError::BadRequest)?,
        // A Mercury token reaches the user's archives; there is nothing else to scope.
        "mercury" if req.scope.is_empty() || req.scope == MERCURY_SCOPE => {
            req.scope = MERCURY_SCOPE.into();
        }
        "mercury" => {
            return Err(ApiError::BadRequest(format!(
                "a mercury token reaches your archives; leave the scope empty (got {:?})",
                req.scope
            )));
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown token kind {other:?}; kinds are: restic, mercury"
            )));
        }
    }
    if !MODES.contains(&req.mode.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "unknown mode {:?}; modes are: {}",
            req.mode,
            MODES.join(", ")
        )));
    }
    if req.mode != "read-only" {
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
    let token = crate::random_token(&format!("enc_{id}_"));
    let row = AccessTokenRow {
        id: id.clone(),
        user_id: s.user.id.clone(),
        token_hash: token_hash(&token),
        kind: req.kind,
        scope: req.scope,
        mode: req.mode,
        label: req.label,
        created: now(),
        expires,
        last_used: None,
    };
    state.meta.create_token(row.clone()).await?;
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
    state.forget_auth(Some(&id));
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

/// Why a token was not accepted.
pub enum Refusal {
    /// Wrong, unknown, expired or revoked credentials.
    Denied,
    /// Too many failures from this user name or address; retry after this many seconds.
    Throttled(u64),
}

/// The id embedded in a token, if it has the right shape.
fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("enc_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some(id)
}

/// Verifies a token of `kind` (presented with `user_name`, if the protocol carries one; the
/// token alone names its user otherwise); counts failures and audits uses.
pub async fn verify(
    state: &AppState,
    user_name: Option<&str>,
    token: &str,
    kind: &str,
    client: &str,
) -> Result<(UserRow, AccessTokenRow), Refusal> {
    match check(state, user_name, token, kind).await {
        Ok(Some((user, row))) => {
            let t = now();
            let last = row.last_used.unwrap_or(0);
            if t - last >= 60
                && let Err(e) = state.meta.touch_token(&row.id, t).await
            {
                tracing::warn!(error = %e, "recording a token use failed");
            }
            if t - last >= AUDIT_USE_EVERY {
                state
                    .audit(
                        &user.name,
                        Some(&user.id),
                        "token.use",
                        &format!("{} {}:{}", row.id, row.kind, row.scope),
                        "ok",
                        client,
                    )
                    .await;
            }
            Ok((user, row))
        }
        Ok(None) => Err(refuse(state, user_name, client).await),
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            Err(Refusal::Denied)
        }
    }
}

/// Whether a token that authenticated a long-lived connection still holds: it exists (not
/// revoked), has not expired, and its user is still active. A storage failure counts as not
/// valid (the connection ends; the client may reconnect).
pub async fn still_valid(state: &AppState, token_id: &str) -> bool {
    let row = match state.meta.token(token_id).await {
        Ok(Some(row)) if row.expires.is_none_or(|e| e > now()) => row,
        Ok(_) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "re-checking a token failed");
            return false;
        }
    };
    matches!(state.meta.user_by_id(&row.user_id).await, Ok(Some(u)) if u.state == "active")
}

async fn check(
    state: &AppState,
    user_name: Option<&str>,
    token: &str,
    kind: &str,
) -> enc_store::Result<Option<(UserRow, AccessTokenRow)>> {
    let Some(id) = token_id(token) else {
        return Ok(None);
    };
    let Some(row) = state.meta.token(id).await? else {
        return Ok(None);
    };
    let hash_ok: bool = token_hash(token)
        .as_bytes()
        .ct_eq(row.token_hash.as_bytes())
        .into();
    if !hash_ok || row.kind != kind || row.expires.is_some_and(|e| e <= now()) {
        return Ok(None);
    }
    let Some(user) = state.meta.user_by_id(&row.user_id).await? else {
        return Ok(None);
    };
    if user_name.is_some_and(|n| n != user.name) || user.state != "active" {
        return Ok(None);
    }
    Ok(Some((user, row)))
}

async fn refuse(state: &AppState, user_name: Option<&str>, client: &str) -> Refusal {
    let mut keys = vec![format!("token-ip:{client}")];
    if let Some(name) = user_name {
        keys.push(format!("token-user:{name}"));
    }
    if let Err(ApiError::TooManyAttempts(secs)) = check_throttle(state, &keys).await {
        return Refusal::Throttled(secs);
    }
    let t = now();
    for k in &keys {
        if let Err(e) = state.meta.throttle_fail(k, t, backoff).await {
            tracing::warn!(error = %e, "counting a failed token attempt failed");
        }
    }
    let user = match user_name {
        Some(name) => state.meta.user_by_name(name).await.ok().flatten(),
        None => None,
    };
    state
        .audit(
            user_name.unwrap_or("-"),
            user.as_ref().map(|u| u.id.as_str()),
            "token.auth",
            user_name.unwrap_or("token"),
            "denied",
            client,
        )
        .await;
    Refusal::Denied
}
