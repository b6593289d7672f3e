//! Devices and the account chain: a device is certified (added) and revoked only by a link
//! the account key signs, appended in sequence on top of the chain's last link. Revoking a
//! device ends its sessions and tokens in the transaction that appends the link, and empties
//! this replica's credential caches at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use enc_crypto::device::{Link, LinkKind, LinkVersion};
use enc_proto::*;
use enc_store::{AccessTokenRow, AccountLinkRow, DeviceRow, TokenKind, TokenMode};

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::{now, token_hash};
use crate::state::AppState;
use crate::v1::auth::Session;

/// Checks a device name: 1–64 characters, none a control character.
fn check_name(name: &str) -> ApiResult<()> {
    let n = name.chars().count();
    if (1..=64).contains(&n) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "device name: 1 to 64 characters, no control characters".into(),
        ))
    }
}

/// Checks a device id: a UUID, as the client chose it.
pub(crate) fn check_device_id(id: &str) -> ApiResult<()> {
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(()),
        _ => Err(ApiError::BadRequest(
            "device id must be a UUID in lower-case hyphenated form".into(),
        )),
    }
}

fn link_info(l: AccountLinkRow) -> AccountLink {
    AccountLink {
        version: l.version as u32,
        seq: l.seq as u64,
        hash: l.hash,
        prev: l.prev,
        kind: l.kind,
        device_id: l.device_id,
        device_name: l.device_name,
        name_salt: l.name_salt,
        name_commitment: l.name_commitment,
        device_key: l.device_key,
        created: l.created,
        signature: l.signature,
        last_counter: l.last_counter as u64,
        last_entry: l.last_entry,
        commit_ends: l.commit_ends,
    }
}

fn device_info(d: DeviceRow) -> DeviceInfo {
    DeviceInfo {
        id: d.id,
        name: d.name,
        public_key: d.public_key,
        created: d.created,
        last_seen: d.last_seen,
        added_seq: d.added_seq as u64,
        revoked_seq: d.revoked_seq.map(|s| s as u64),
        revoked_at: d.revoked_at,
        sessions: Vec::new(),
        tokens: Vec::new(),
        current: false,
        commit_ends: String::new(),
    }
}

/// The one version of link the server takes now: 2, which signs the account key and a
/// commitment to the device's name (a chain of them outlives an erasure, naming no one).
fn check_version(version: u32) -> ApiResult<()> {
    if version == 2 {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "account links of version 1 sign your user id and the device's name; this server \
             takes version 2 only: upgrade enc"
                .into(),
        ))
    }
}

/// The caller's account key (base64), which a version-2 link names.
fn account_key(s: &Session) -> String {
    s.user.ed25519_public.clone().unwrap_or_default()
}

/// Verifies `link`'s signature by the caller's account key, and returns the row to store;
/// `name` is the device's name and its commitment's salt (empty in a revocation).
fn signed_link(
    s: &Session,
    link: &Link<'_>,
    name: (&str, &str),
    signature: &str,
) -> ApiResult<AccountLinkRow> {
    if link.seq == 0 || link.seq > i64::MAX as u64 {
        return Err(ApiError::BadRequest("seq must be 1 or more".into()));
    }
    if signature.len() > 128 {
        return Err(ApiError::BadRequest(
            "signature: base64, at most 128 characters".into(),
        ));
    }
    let account_key = s.user.ed25519_public.as_deref().unwrap_or_default();
    enc_crypto::verify_b64(account_key, &link.message(), signature).map_err(|_| {
        ApiError::Forbidden("the link's signature does not verify with your account key".into())
    })?;
    Ok(AccountLinkRow {
        user_id: s.user.id.clone(),
        seq: link.seq as i64,
        hash: link.hash(),
        prev: link.prev.to_string(),
        kind: link.kind.as_str().to_string(),
        device_id: link.device_id.to_string(),
        device_name: name.0.to_string(),
        device_key: link.device_key.to_string(),
        created: link.created,
        signature: signature.to_string(),
        version: 2,
        name_salt: name.1.to_string(),
        name_commitment: link.device_name.to_string(),
        last_counter: link.last_counter as i64,
        last_entry: link.last_entry.to_string(),
        commit_ends: link.commit_ends.to_string(),
    })
}

/// `GET /v1/account/chain`: the caller's account chain, to verify from its first link.
#[utoipa::path(get, path = "/v1/account/chain",
    responses((status = 200, body = AccountChain), (status = 401, body = ErrorBody)), tag = "devices")]
pub async fn chain(State(state): State<AppState>, s: Session) -> ApiResult<Json<AccountChain>> {
    let links = state.meta.account_chain(&s.user.id).await?;
    Ok(Json(AccountChain {
        user_id: s.user.id.clone(),
        account_key: s.user.ed25519_public.clone().unwrap_or_default(),
        links: links.into_iter().map(link_info).collect(),
    }))
}

/// `GET /v1/vaults/{id}/chains/{user}`: the account chain of the author of one of the
/// vault's commits, so that readers check the devices that signed them.
#[utoipa::path(get, path = "/v1/vaults/{id}/chains/{user}",
    responses((status = 200, body = AccountChain), (status = 404, body = ErrorBody)), tag = "devices")]
pub async fn signer_chain(
    State(state): State<AppState>,
    s: Session,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<Json<AccountChain>> {
    let v = crate::v1::vaults::access(&state, &s, &id).await?;
    let not_found = || ApiError::NotFound("user in this vault");
    let signer = state
        .meta
        .user_by_name(&user)
        .await?
        .ok_or_else(not_found)?;
    let links = state
        .meta
        .signer_chain(&v.id, &signer.id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(AccountChain {
        user_id: signer.id,
        account_key: signer.ed25519_public.unwrap_or_default(),
        links: links.into_iter().map(nameless).collect(),
    }))
}

/// A link as another user sees it: a version-2 link without the device's name and salt
/// (its signed commitment is enough to check it). A version-1 link signs the name itself.
fn nameless(l: AccountLinkRow) -> AccountLink {
    let v2 = l.version == 2;
    let mut link = link_info(l);
    if v2 {
        link.device_name.clear();
        link.name_salt.clear();
    }
    link
}

/// `GET /v1/vaults/{id}/signers/{key}`: the account chain of the account key (hex of its
/// 32 bytes) that signed one of the vault's version-2 commits, so that readers check the
/// devices that signed them; the chain an erasure kept, if its user was erased.
#[utoipa::path(get, path = "/v1/vaults/{id}/signers/{key}",
    responses((status = 200, body = AccountChain), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)), tag = "devices")]
pub async fn signer_chain_by_key(
    State(state): State<AppState>,
    s: Session,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<AccountChain>> {
    let raw = hex::decode(&key)
        .ok()
        .filter(|k| k.len() == 32 && key.len() == 64)
        .ok_or_else(|| ApiError::BadRequest("key: an Ed25519 public key, 64 hex digits".into()))?;
    let v = crate::v1::vaults::access(&state, &s, &id).await?;
    let account_key = enc_crypto::b64(&raw);
    let (user_id, links) = state
        .meta
        .signer_chain_by_key(&v.id, &account_key)
        .await?
        .ok_or(ApiError::NotFound("signer of this vault"))?;
    Ok(Json(AccountChain {
        user_id: user_id.unwrap_or_default(),
        account_key,
        links: links.into_iter().map(nameless).collect(),
    }))
}

/// `POST /v1/devices`: certifies a device key with a `device-add` link.
#[utoipa::path(post, path = "/v1/devices", request_body = AddDeviceRequest,
    responses((status = 200, body = AddDeviceResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)), tag = "devices")]
pub async fn add(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<AddDeviceRequest>,
) -> ApiResult<Json<AddDeviceResponse>> {
    check_device_id(&req.device_id)?;
    check_name(&req.device_name)?;
    enc_crypto::verifying_key(&req.device_key)
        .map_err(|_| ApiError::BadRequest("device_key is not an Ed25519 public key".into()))?;
    if req.prev.len() > 64 {
        return Err(ApiError::BadRequest(
            "prev: a link hash (64 hex digits)".into(),
        ));
    }
    if req.bind_session && s.device_id.is_some() {
        return Err(ApiError::Conflict(
            "this session has a device already; log in again for another".into(),
        ));
    }
    check_version(req.version)?;
    if !enc_crypto::device::is_name_salt(&req.name_salt) {
        return Err(ApiError::BadRequest(
            "name_salt: 32 lower-case hex digits".into(),
        ));
    }
    let commitment = enc_crypto::device::name_commitment(&req.name_salt, &req.device_name);
    let account = account_key(&s);
    let link = Link {
        version: LinkVersion::V2,
        account: &account,
        seq: req.seq,
        prev: &req.prev,
        kind: LinkKind::DeviceAdd,
        device_id: &req.device_id,
        device_name: &commitment,
        device_key: &req.device_key,
        created: req.created,
        last_counter: 0,
        last_entry: "",
        commit_ends: "",
    };
    let row = signed_link(
        &s,
        &link,
        (&req.device_name, &req.name_salt),
        &req.signature,
    )?;
    let t = now();
    let device = DeviceRow {
        user_id: s.user.id.clone(),
        id: req.device_id.clone(),
        name: req.device_name.clone(),
        public_key: req.device_key.clone(),
        created: t,
        last_seen: t,
        added_seq: row.seq,
        revoked_seq: None,
        revoked_at: None,
    };
    let bind = req.bind_session.then_some(s.session_id.as_str());
    state
        .meta
        .add_device(row, device.clone(), bind)
        .await
        .map_err(|e| match e {
            enc_store::StoreError::Conflict(m) => ApiError::Conflict(m.into()),
            other => other.into(),
        })?;
    let token = if req.issue_token {
        let mut raw = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let token_id = hex::encode(raw);
        let token = crate::rules::random_token(&format!("enc_{token_id}_"));
        state
            .meta
            .create_token(AccessTokenRow {
                id: token_id.clone(),
                user_id: s.user.id.clone(),
                token_hash: token_hash(&token),
                kind: TokenKind::Backups,
                scope: String::new(),
                mode: TokenMode::Full,
                label: format!("device {}", req.device_name),
                created: t,
                expires: None,
                last_used: None,
                device_id: Some(req.device_id.clone()),
            })
            .await?;
        if !crate::v1::tokens::device_stands(&state, &s.user.id, &req.device_id).await? {
            state.meta.delete_token(&s.user.id, &token_id).await?;
            return Err(ApiError::Conflict(
                "the device was revoked meanwhile".into(),
            ));
        }
        Some(token)
    } else {
        None
    };
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "device.add",
            &format!("{} seq={}", req.device_id, req.seq),
            "ok",
            &s.client,
        )
        .await;
    let mut info = device_info(device);
    info.current = req.bind_session;
    Ok(Json(AddDeviceResponse {
        device: info,
        token,
    }))
}

/// `GET /v1/devices`: the caller's devices with their sessions and tokens.
#[utoipa::path(get, path = "/v1/devices", responses((status = 200, body = Vec<DeviceInfo>)), tag = "devices")]
pub async fn list(State(state): State<AppState>, s: Session) -> ApiResult<Json<Vec<DeviceInfo>>> {
    let devices = state.meta.devices(&s.user.id).await?;
    let sessions = state.meta.list_sessions(&s.user.id).await?;
    let tokens = state.meta.tokens_for(&s.user.id).await?;
    let ends = state.meta.commit_ends(&s.user.id).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| {
                let mut info = device_info(d);
                for session in sessions
                    .iter()
                    .filter(|x| x.device_id.as_ref() == Some(&info.id))
                {
                    info.last_seen = info.last_seen.max(session.last_seen);
                    info.sessions.push(session.id.clone());
                }
                for token in tokens
                    .iter()
                    .filter(|x| x.device_id.as_ref() == Some(&info.id))
                {
                    info.last_seen = info.last_seen.max(token.last_used.unwrap_or(0));
                    info.tokens.push(token.id.clone());
                }
                info.current = s.device_id.as_ref() == Some(&info.id);
                let own: Vec<_> = ends
                    .iter()
                    .filter(|(d, _, _, _)| *d == info.id)
                    .map(|(_, v, seq, hash)| (v.clone(), *seq as u64, hash.clone()))
                    .collect();
                info.commit_ends = enc_crypto::device::commit_ends_text(&own);
                info
            })
            .collect(),
    ))
}

/// `PUT /v1/devices/{id}/name`: renames a device (its certificate keeps the name it was
/// certified with).
#[utoipa::path(put, path = "/v1/devices/{id}/name", request_body = RenameDeviceRequest,
    responses((status = 204), (status = 404, body = ErrorBody)), tag = "devices")]
pub async fn rename(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenameDeviceRequest>,
) -> ApiResult<StatusCode> {
    check_name(&req.name)?;
    // A name that is another device's (as shown, or as certified) would let one device pass
    // for another in `enc device revoke NAME`.
    let devices = state.meta.devices(&s.user.id).await?;
    if !devices.iter().any(|d| d.id == id) {
        return Err(ApiError::NotFound("device"));
    }
    let links = state.meta.account_chain(&s.user.id).await?;
    let taken = devices.iter().any(|d| d.id != id && d.name == req.name)
        || links
            .iter()
            .any(|l| l.device_id != id && l.device_name == req.name);
    if taken {
        return Err(ApiError::Conflict(format!(
            "another device is named {:?}; choose another name",
            req.name
        )));
    }
    if !state.meta.rename_device(&s.user.id, &id, &req.name).await? {
        return Err(ApiError::NotFound("device"));
    }
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "device.rename",
            &id,
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/devices/{id}/revoke`: revokes a device with a `device-revoke` link; its sessions
/// and tokens end at once, and its signatures count only before the link.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", request_body = RevokeDeviceRequest,
    responses((status = 200, body = RevokeDeviceResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), tag = "devices")]
pub async fn revoke(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeDeviceRequest>,
) -> ApiResult<Json<RevokeDeviceResponse>> {
    if req.prev.len() > 64 || id.len() > 64 {
        return Err(ApiError::BadRequest(
            "prev: a link hash (64 hex digits)".into(),
        ));
    }
    if req.commit_ends.len() > 1 << 20
        || enc_crypto::device::parse_commit_ends(&req.commit_ends).is_none()
    {
        return Err(ApiError::BadRequest(
            "commit_ends: `vault seq hash` lines sorted by vault, as GET /v1/devices shows them"
                .into(),
        ));
    }
    // Another tenant's device answers like one that does not exist, before any signature
    // is looked at.
    if state.meta.device(&s.user.id, &id).await?.is_none() {
        return Err(ApiError::NotFound("device"));
    }
    check_version(req.version)?;
    let account = account_key(&s);
    let link = Link {
        version: LinkVersion::V2,
        account: &account,
        seq: req.seq,
        prev: &req.prev,
        kind: LinkKind::DeviceRevoke,
        device_id: &id,
        device_name: "",
        device_key: "",
        created: req.created,
        last_counter: req.last_counter,
        last_entry: &req.last_entry,
        commit_ends: &req.commit_ends,
    };
    let row = signed_link(&s, &link, ("", ""), &req.signature)?;
    let revoked = state
        .meta
        .revoke_device(row, now())
        .await
        .map_err(|e| match e {
            enc_store::StoreError::NotFound => {
                ApiError::NotFound("device (or it is revoked already)")
            }
            enc_store::StoreError::Conflict(m) => ApiError::Conflict(m.into()),
            other => other.into(),
        })?;
    for token in &revoked.tokens {
        state.revocations.revoke(Some(token));
    }
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "device.revoke",
            &format!(
                "{id} seq={} sessions={} tokens={}",
                req.seq,
                revoked.sessions,
                revoked.tokens.len()
            ),
            "ok",
            &s.client,
        )
        .await;
    Ok(Json(RevokeDeviceResponse {
        sessions: revoked.sessions,
        tokens: revoked.tokens.len() as u64,
    }))
}
