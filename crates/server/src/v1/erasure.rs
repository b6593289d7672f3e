//! Erasure: `POST /v1/me/erase` (the user, proving the passphrase), `DELETE
//! /v1/users/{name}?erase=true` (an admin, in [`super::users`]) and `GET /v1/erasures/{id}`.
//! The job itself is [`crate::rules::erasure`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use enc_proto::*;
use enc_store::{ErasureRow, StoreError};

use super::auth::{Session, decode_key, proves_passphrase};
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::policy::Permission;
use crate::state::AppState;

/// What a job shows: no name and no user id.
pub(crate) fn info(job: &ErasureRow) -> ErasureInfo {
    let (mut removed, mut left) = (BTreeMap::new(), BTreeMap::new());
    for (what, n) in job.count_pairs() {
        if what.ends_with("_left_naming") {
            // Counted again when the account step repeats the steps: the last count holds.
            left.insert(what, n);
        } else {
            *removed.entry(what).or_insert(0) += n;
        }
    }
    ErasureInfo {
        id: job.id.clone(),
        label: job.label.clone(),
        state: if job.is_done() { "done" } else { "running" }.into(),
        step: job.next_step().into(),
        removed,
        left,
        started: job.started,
        finished: job.finished,
    }
}

/// Starts erasing `user`, or says why not.
pub(crate) async fn start(
    state: &AppState,
    user_id: &str,
    by_admin: bool,
) -> ApiResult<ErasureRow> {
    crate::rules::erasure::begin(state, user_id, by_admin)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("user"),
            other => other.into(),
        })
}

/// `POST /v1/me/erase`: erases the caller's account and everything of theirs, once the
/// passphrase is proven again (throttled like a login). Their sessions and tokens stop
/// working at once; the job finishes in the background (`GET /v1/erasures/{id}`).
#[utoipa::path(post, path = "/v1/me/erase", request_body = EraseMeRequest,
    responses((status = 202, body = ErasureInfo), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)), tag = "users")]
pub async fn erase_me(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<EraseMeRequest>,
) -> ApiResult<(StatusCode, Json<ErasureInfo>)> {
    let key = decode_key(&req.auth_key)?;
    if !proves_passphrase(&state, &s, key).await? {
        state
            .audit(
                &s.user.name,
                Some(&s.user.id),
                "user.erase",
                &s.user.name,
                "failed",
                &s.client,
            )
            .await;
        return Err(ApiError::BadCredentials);
    }
    // The last who may manage users stays: someone must be able to invite and erase.
    if state.policy.allows(&s.user.role, Permission::ManageUsers) {
        let others = state
            .meta
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.id != s.user.id && u.state == "active" && u.auth_hash.is_some())
            .any(|u| state.policy.allows(&u.role, Permission::ManageUsers));
        if !others {
            return Err(ApiError::Conflict(
                "you are the last user who may manage users: make someone else an admin first"
                    .into(),
            ));
        }
    }
    let job = start(&state, &s.user.id, false).await?;
    // Named by the job's label: the user's name and id leave the log with them.
    state
        .audit(&job.label, None, "user.erase", &job.label, "started", "")
        .await;
    Ok((StatusCode::ACCEPTED, Json(info(&job))))
}

/// `GET /v1/erasures/{id}`: how far an erasure is and what it removed. The id is the
/// handle its request returned (128 random bits); the answer names no one.
#[utoipa::path(get, path = "/v1/erasures/{id}",
    responses((status = 200, body = ErasureInfo), (status = 404, body = ErrorBody)), tag = "users")]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ErasureInfo>> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("erasure"));
    }
    let job = state
        .meta
        .erasure(&id)
        .await?
        .ok_or(ApiError::NotFound("erasure"))?;
    Ok(Json(info(&job)))
}
