//! Administration of users (needs `manage_users`) and public keys (any user, for sharing).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use enc_proto::*;

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiJson, ApiQuery};
use crate::rules::policy::Permission;
use crate::state::AppState;
use crate::v1::auth::{Session, invite};

pub(crate) fn require_permission(state: &AppState, s: &Session, perm: Permission) -> ApiResult<()> {
    if state.policy.allows(&s.user.role, perm) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "role {} may not do this ({perm:?} needed)",
            s.user.role
        )))
    }
}

fn check_role(state: &AppState, role: &str) -> ApiResult<()> {
    if state.policy.has_role(role) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "unknown role {role:?}; roles are: {}",
            state.policy.role_names().join(", ")
        )))
    }
}

/// `POST /v1/users`: invite a user; the token is shown once.
#[utoipa::path(post, path = "/v1/users", request_body = CreateUserRequest,
    responses((status = 200, body = InvitationResponse), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)), tag = "users")]
pub async fn create_user(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<Json<InvitationResponse>> {
    require_permission(&state, &s, Permission::ManageUsers)?;
    check_role(&state, &req.role)?;
    let ttl = state.config.invitation_ttl.as_secs() as i64;
    let (invitation, expires_at) = invite(&*state.meta, &req.name, &req.role, ttl).await?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "user.create",
            &format!("{} role={}", req.name, req.role),
            "ok",
            &s.client,
        )
        .await;
    Ok(Json(InvitationResponse {
        name: req.name,
        invitation,
        expires_at,
    }))
}

/// `GET /v1/users`.
#[utoipa::path(get, path = "/v1/users", responses((status = 200, body = Vec<UserInfo>)), tag = "users")]
pub async fn list_users(
    State(state): State<AppState>,
    s: Session,
) -> ApiResult<Json<Vec<UserInfo>>> {
    require_permission(&state, &s, Permission::ManageUsers)?;
    Ok(Json(
        state
            .meta
            .list_users()
            .await?
            .into_iter()
            .map(|u| UserInfo {
                quota_bytes: state.policy.quota_of(&u),
                usage_bytes: u.usage_bytes.max(0) as u64,
                name: u.name,
                role: u.role,
                state: u.state,
                created: u.created,
            })
            .collect(),
    ))
}

/// `DELETE /v1/users/{name}`: removes a user and everything they own (204); with
/// `?erase=true`, erases them (202 with the job): the audit log's entries about them lose
/// their name too, and the job reports what it removed (`GET /v1/erasures/{id}`).
#[utoipa::path(delete, path = "/v1/users/{name}", params(RemoveUserQuery),
    responses((status = 204), (status = 202, body = ErasureInfo), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)), tag = "users")]
pub async fn delete_user(
    State(state): State<AppState>,
    s: Session,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<RemoveUserQuery>,
) -> ApiResult<Response> {
    require_permission(&state, &s, Permission::ManageUsers)?;
    if name == s.user.name {
        return Err(ApiError::Conflict(if query.erase {
            "you cannot erase yourself here: run `enc account delete`".into()
        } else {
            "you cannot remove yourself".into()
        }));
    }
    let user = state
        .meta
        .user_by_name(&name)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if query.erase {
        let job = crate::v1::erasure::start(&state, &user.id, true).await?;
        // Named by the job's label: the name leaves the log with the user.
        state
            .audit(
                &s.user.name,
                Some(&s.user.id),
                "user.erase",
                &job.label,
                "started",
                &s.client,
            )
            .await;
        let body = Json(crate::v1::erasure::info(&job));
        return Ok((StatusCode::ACCEPTED, body).into_response());
    }
    state.revocations.revoke(None);
    // Their records first: stored under a pseudonym the store cannot tie to them, nothing
    // else would ever delete them.
    if let Some(pepper) = &state.records_pepper {
        state
            .meta
            .erase_records(&pepper.pseudonym(&user.id))
            .await?;
    }
    state.meta.delete_user(&name).await.map_err(|e| match e {
        enc_store::StoreError::NotFound => ApiError::NotFound("user"),
        other => other.into(),
    })?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "user.remove",
            &name,
            "ok",
            &s.client,
        )
        .await;
    crate::rules::gc::kick(&state);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v1/users/{name}/role`.
#[utoipa::path(put, path = "/v1/users/{name}/role", request_body = SetRoleRequest,
    responses((status = 204), (status = 404, body = ErrorBody)), tag = "users")]
pub async fn set_role(
    State(state): State<AppState>,
    s: Session,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> ApiResult<StatusCode> {
    require_permission(&state, &s, Permission::ManageUsers)?;
    check_role(&state, &req.role)?;
    state
        .meta
        .set_role(&name, &req.role)
        .await
        .map_err(|e| match e {
            enc_store::StoreError::NotFound => ApiError::NotFound("user"),
            other => other.into(),
        })?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "user.set_role",
            &format!("{name} role={}", req.role),
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/users/{name}/public-keys`: what is needed to share a vault with a user.
#[utoipa::path(get, path = "/v1/users/{name}/public-keys",
    responses((status = 200, body = PublicKeys), (status = 404, body = ErrorBody)), tag = "users")]
pub async fn public_keys(
    State(state): State<AppState>,
    _s: Session,
    Path(name): Path<String>,
) -> ApiResult<Json<PublicKeys>> {
    let user = state
        .meta
        .user_by_name(&name)
        .await?
        .filter(|u| u.state == "active")
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(PublicKeys {
        user: user.name,
        x25519_recipient: user.x25519_recipient.unwrap_or_default(),
        ed25519_public: user.ed25519_public.unwrap_or_default(),
        recipient_signature: user.recipient_sig.unwrap_or_default(),
    }))
}

/// `PUT /v1/users/{name}/quota`: sets or clears a user's own quota.
#[utoipa::path(put, path = "/v1/users/{name}/quota", request_body = SetQuotaRequest,
    responses((status = 204), (status = 404, body = ErrorBody)), tag = "users")]
pub async fn set_quota(
    State(state): State<AppState>,
    s: Session,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SetQuotaRequest>,
) -> ApiResult<StatusCode> {
    require_permission(&state, &s, Permission::ManageUsers)?;
    let quota = match req.quota_bytes {
        Some(q) if q > i64::MAX as u64 => {
            return Err(ApiError::BadRequest("quota too large".into()));
        }
        other => other.map(|q| q as i64),
    };
    state
        .meta
        .set_quota(&name, quota)
        .await
        .map_err(|e| match e {
            enc_store::StoreError::NotFound => ApiError::NotFound("user"),
            other => other.into(),
        })?;
    let shown = match quota {
        None => "role default".to_string(),
        Some(q) if q as u64 >= enc_proto::UNLIMITED_QUOTA => "unlimited".to_string(),
        Some(q) => q.to_string(),
    };
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "user.set_quota",
            &format!("{name} quota={shown}"),
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/restic/repos`: the caller's restic repositories.
#[utoipa::path(get, path = "/v1/restic/repos", responses((status = 200, body = Vec<ResticRepoInfo>)), tag = "restic")]
pub async fn restic_repos(
    State(state): State<AppState>,
    s: Session,
) -> ApiResult<Json<Vec<ResticRepoInfo>>> {
    Ok(Json(
        state
            .meta
            .restic_repos(&s.user.id)
            .await?
            .into_iter()
            .map(|r| ResticRepoInfo {
                name: r.name,
                objects: r.objects.max(0) as u64,
                bytes: r.bytes.max(0) as u64,
                created: r.created,
            })
            .collect(),
    ))
}

/// `DELETE /v1/restic/repos/{name}`: deletes one of the caller's restic repositories with
/// everything in it.
#[utoipa::path(delete, path = "/v1/restic/repos/{name}", responses((status = 204), (status = 404, body = ErrorBody)), tag = "restic")]
pub async fn delete_restic_repo(
    State(state): State<AppState>,
    s: Session,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_permission(&state, &s, Permission::WriteVaults)?;
    let repo = state
        .meta
        .restic_repo(&s.user.id, &name)
        .await?
        .ok_or(ApiError::NotFound("repository"))?;
    state.meta.delete_restic_repo(&repo.id).await?;
    state.revocations.revoke(None);
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "restic.repo.delete",
            &name,
            "ok",
            &s.client,
        )
        .await;
    crate::rules::gc::kick(&state);
    Ok(StatusCode::NO_CONTENT)
}
