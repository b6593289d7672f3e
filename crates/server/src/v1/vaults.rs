//! Vaults: create, list, remove, share and unshare. The server stores only wrapped keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use enc_proto::*;
use enc_store::{Access, NewVault, VaultAccess};

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::policy::Permission;
use crate::state::AppState;
use crate::v1::auth::Session;
use crate::v1::users::require_permission;

pub(crate) fn info(v: VaultAccess) -> VaultInfo {
    VaultInfo {
        id: v.id,
        signed_id: v.signed_id,
        owner: v.owner_name.clone(),
        name: v.name,
        generation: v.generation as u32,
        wrapped_keys: v.wrapped_keys,
        keys_signature: v.keys_signature,
        access: v.access.to_string(),
        keys_signer: v.owner_name.clone(),
        keys_signer_key: v.owner_key,
        objects: v.objects as u64,
        bytes: v.bytes as u64,
    }
}

/// The row id of the vault `owner_id` creates with the client-chosen `signed_id`: vault ids
/// are unique per owner, so whether another tenant uses the same id changes nothing (no
/// oracle), while the same owner reusing one gets a conflict about their own vault.
pub(crate) fn row_id(owner_id: &str, signed_id: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"enc vault row id\0");
    h.update(owner_id.as_bytes());
    h.update(b"\0");
    h.update(signed_id.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Refuses a change to a vault shared with the caller read-only.
pub(crate) fn writable(v: &VaultAccess) -> ApiResult<()> {
    if v.access == Access::Read {
        return Err(ApiError::Forbidden(
            "this vault is shared with you read-only: pull and ls only (ask its owner for write access)".into(),
        ));
    }
    Ok(())
}

/// The vault if the caller may see it; otherwise "not found", whether or not it exists.
pub(crate) async fn access(
    state: &AppState,
    s: &Session,
    vault_id: &str,
) -> ApiResult<VaultAccess> {
    state
        .meta
        .vault_access(&s.user.id, vault_id)
        .await?
        .ok_or(ApiError::NotFound("vault"))
}

fn owned(s: &Session, v: &VaultAccess) -> ApiResult<()> {
    if v.owner_id == s.user.id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the vault's owner may do this".into(),
        ))
    }
}

fn validate_vault_name(name: &str) -> ApiResult<()> {
    crate::rules::check_name("vault", name).map_err(ApiError::BadRequest)
}

/// Vault ids are UUIDs chosen by the client (so it can sign over them).
pub(crate) fn check_vault_id(id: &str) -> ApiResult<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::BadRequest("vault id must be a UUID".into()))
}

/// The owner's signature over wrapped keys must verify with the owner's key; clients check it
/// too, so a server cannot hand out keys of its own.
fn check_keys_signature(
    owner: &enc_store::UserRow,
    vault_id: &str,
    member: &str,
    generation: u32,
    access: &str,
    wrapped: &str,
    signature: &str,
) -> ApiResult<()> {
    let key = owner.ed25519_public.as_deref().unwrap_or_default();
    enc_crypto::verify_b64(
        key,
        &enc_crypto::vault_keys_message(vault_id, member, generation, access, wrapped),
        signature,
    )
    .map_err(|_| {
        ApiError::BadRequest(format!(
            "the signature over {member}'s vault keys does not verify"
        ))
    })
}

fn check_wrapped(v: &str) -> ApiResult<()> {
    if v.len() > 64 * 1024 || enc_crypto::unb64(v).is_err() {
        return Err(ApiError::BadRequest(
            "wrapped_keys must be base64, at most 64 KiB".into(),
        ));
    }
    Ok(())
}

/// `GET /v1/vaults`: vaults the caller owns or that are shared with them.
#[utoipa::path(get, path = "/v1/vaults", responses((status = 200, body = Vec<VaultInfo>)), tag = "vaults")]
pub async fn list(State(state): State<AppState>, s: Session) -> ApiResult<Json<Vec<VaultInfo>>> {
    Ok(Json(
        state
            .meta
            .vaults_for(&s.user.id)
            .await?
            .into_iter()
            .map(info)
            .collect(),
    ))
}

/// `POST /v1/vaults`.
#[utoipa::path(post, path = "/v1/vaults", request_body = CreateVaultRequest,
    responses((status = 200, body = VaultInfo), (status = 409, body = ErrorBody)), tag = "vaults")]
pub async fn create(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<CreateVaultRequest>,
) -> ApiResult<Json<VaultInfo>> {
    require_permission(&state, &s, Permission::WriteVaults)?;
    validate_vault_name(&req.name)?;
    check_vault_id(&req.id)?;
    check_wrapped(&req.wrapped_keys)?;
    check_keys_signature(
        &s.user,
        &req.id,
        &s.user.name,
        1,
        "write",
        &req.wrapped_keys,
        &req.signature,
    )?;
    let v = state
        .meta
        .create_vault(NewVault {
            id: row_id(&s.user.id, &req.id),
            signed_id: req.id.clone(),
            owner_id: s.user.id.clone(),
            name: req.name.clone(),
            wrapped_keys: req.wrapped_keys,
            signature: req.signature,
            now: crate::rules::now(),
        })
        .await
        .map_err(|e| match e {
            enc_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "you already have a vault named {} or with id {}",
                req.name, req.id
            )),
            other => other.into(),
        })?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "vault.create",
            &v.id,
            "ok",
            &s.client,
        )
        .await;
    Ok(Json(info(v)))
}

/// `DELETE /v1/vaults/{id}`: removes a vault with all its objects (owner only).
#[utoipa::path(delete, path = "/v1/vaults/{id}", responses((status = 204), (status = 404, body = ErrorBody)), tag = "vaults")]
pub async fn remove(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let v = access(&state, &s, &id).await?;
    owned(&s, &v)?;
    state.meta.delete_vault(&v.id).await?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "vault.remove",
            &v.id,
            "ok",
            &s.client,
        )
        .await;
    crate::rules::gc::kick(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/vaults/{id}/members`.
#[utoipa::path(get, path = "/v1/vaults/{id}/members", responses((status = 200, body = Vec<MemberInfo>)), tag = "vaults")]
pub async fn members(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MemberInfo>>> {
    let v = access(&state, &s, &id).await?;
    Ok(Json(
        state
            .meta
            .members(&v.id)
            .await?
            .into_iter()
            .map(|m| MemberInfo {
                user: m.name,
                x25519_recipient: m.x25519_recipient,
                ed25519_public: m.ed25519_public,
                recipient_signature: m.recipient_sig,
                owner: m.owner,
                access: m.access.to_string(),
            })
            .collect(),
    ))
}

/// `POST /v1/vaults/{id}/members`: shares the vault (owner only).
#[utoipa::path(post, path = "/v1/vaults/{id}/members", request_body = AddMemberRequest,
    responses((status = 204), (status = 404, body = ErrorBody)), tag = "vaults")]
pub async fn share(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<StatusCode> {
    require_permission(&state, &s, Permission::ShareVaults)?;
    let v = access(&state, &s, &id).await?;
    owned(&s, &v)?;
    check_wrapped(&req.wrapped_keys)?;
    let member = state
        .meta
        .user_by_name(&req.user)
        .await?
        .filter(|u| u.state == "active")
        .ok_or(ApiError::NotFound("user"))?;
    if member.id == s.user.id {
        return Err(ApiError::Conflict("you own this vault already".into()));
    }
    let generation = v.generation as u32;
    let right = if req.read_only {
        Access::Read
    } else {
        Access::Write
    };
    check_keys_signature(
        &s.user,
        &v.signed_id,
        &member.name,
        generation,
        right.as_str(),
        &req.wrapped_keys,
        &req.signature,
    )?;
    state
        .meta
        .add_member(&v.id, &member.id, &req.wrapped_keys, &req.signature, right)
        .await?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "vault.share",
            &format!("{} with {} ({right})", v.id, member.name),
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/vaults/{id}/unshare`: removes a member and moves the vault to a new key
/// generation, with re-wrapped keys for everyone who stays (owner only).
#[utoipa::path(post, path = "/v1/vaults/{id}/unshare", request_body = UnshareRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), tag = "vaults")]
pub async fn unshare(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UnshareRequest>,
) -> ApiResult<StatusCode> {
    require_permission(&state, &s, Permission::ShareVaults)?;
    let v = access(&state, &s, &id).await?;
    owned(&s, &v)?;
    let members = state.meta.members(&v.id).await?;
    let removed = members
        .iter()
        .find(|m| m.name == req.user && !m.owner)
        .ok_or(ApiError::NotFound("member"))?;
    let mut rewrapped = Vec::new();
    for mk in &req.rewrapped {
        check_wrapped(&mk.wrapped_keys)?;
        let m = members
            .iter()
            .find(|m| m.name == mk.user)
            .ok_or_else(|| ApiError::BadRequest(format!("{} is not a member", mk.user)))?;
        check_keys_signature(
            &s.user,
            &v.signed_id,
            &m.name,
            req.generation,
            m.access.as_str(),
            &mk.wrapped_keys,
            &mk.signature,
        )?;
        rewrapped.push((
            m.user_id.clone(),
            mk.wrapped_keys.clone(),
            mk.signature.clone(),
        ));
    }
    state
        .meta
        .rotate_vault(&v.id, &removed.user_id, req.generation, rewrapped)
        .await?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "vault.unshare",
            &format!("{} from {}", v.id, req.user),
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
