//! `/v1/backups`: device backups (the ZKEB model). Each device keeps a chain of entries it
//! signs (`enc backup v1`): backups, and tombstones that delete one. The server checks every
//! signed field it can: the device is the caller's and unrevoked, the entry comes next in
//! the device's chain, the body's size and SHA-256 are what the device signed, and the
//! signature verifies with the device's certified key. An entry refused for any reason
//! stores nothing: its body is aborted before it is made durable.
//!
//! A device authenticates with its session (a login certified its key) or with a token of
//! kind `backups` (`enc device add --token`, an app's credential).

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use enc_crypto::device::{CLASSIFICATIONS, Entry, EntryKind};
use enc_proto::*;
use enc_store::{BackupFilter, BackupRow, StoreError, UserRow};
use futures::StreamExt as _;

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery;
use crate::rules::credentials::Refusal;
use crate::rules::ingest::{Hash, Ingest, Limits, Refused, drain};
use crate::rules::now;
use crate::rules::policy::Permission;
use crate::state::AppState;
use crate::v1::auth::Session;
use crate::v1::users::require_permission;

/// Content up to this size is kept in its row (one transaction, no blob); larger content in a
/// blob of its own.
const IN_ROW: u64 = 32 << 10;

/// What the `/v1` middleware found for a bearer token of kind `backups`.
#[derive(Clone)]
pub enum BackupsToken {
    /// Valid: the user, and the device the token acts as (standing when looked up).
    Valid(Box<UserRow>, Box<enc_store::DeviceRow>),
    /// Refused (wrong, revoked, expired; or its device is revoked) or throttled.
    Refused(Option<u64>),
    /// The storage did not answer.
    Unavailable,
}

/// Verifies a bearer token of kind `backups` for the middleware, and that its device stands.
pub async fn look_up_token(state: &AppState, token: &str, client: &str) -> BackupsToken {
    use crate::rules::credentials::verify;
    let key = crate::rules::token_hash(token);
    if let Some((user, device)) = state.backup_tokens.get(&key) {
        return BackupsToken::Valid(Box::new(user), Box::new(device));
    }
    let found = match verify(state, None, token, enc_store::TokenKind::Backups, client).await {
        Ok((user, row)) => match row.device_id {
            Some(device) => {
                let standing = enc_store::tenant::scope(user.id.clone(), async {
                    state.meta.device(&user.id, &device).await
                })
                .await;
                match standing {
                    Ok(Some(d)) if d.revoked_seq.is_none() => {
                        BackupsToken::Valid(Box::new(user), Box::new(d))
                    }
                    Ok(_) => BackupsToken::Refused(None),
                    Err(e) => {
                        tracing::error!(error = %e, "looking a token's device up failed");
                        return if e.is_unavailable() {
                            BackupsToken::Unavailable
                        } else {
                            BackupsToken::Refused(None)
                        };
                    }
                }
            }
            None => BackupsToken::Refused(None),
        },
        Err(Refusal::Throttled(secs)) => return BackupsToken::Refused(Some(secs)),
        Err(Refusal::Denied) => return BackupsToken::Refused(None),
        Err(Refusal::Unavailable) => return BackupsToken::Unavailable,
    };
    if let BackupsToken::Valid(user, device) = &found {
        state
            .backup_tokens
            .put(key, ((**user).clone(), (**device).clone()));
    }
    found
}

/// The device making a request: its user, id, certified key and the client's address hash.
/// A device that a revocation ended is refused here, whatever credential it presents (a
/// token made in the instant before the revocation included).
pub struct Device {
    user: UserRow,
    device_id: String,
    key: String,
    client: String,
    /// An app's token reaches only its own device's entries; a login's session the whole
    /// account's.
    own_only: bool,
}

impl FromRequestParts<AppState> for Device {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if let Some(token) = parts.extensions.get::<BackupsToken>().cloned() {
            return match token {
                BackupsToken::Valid(user, device) => Ok(Self {
                    user: *user,
                    device_id: device.id,
                    key: device.public_key,
                    client: crate::rules::credentials::client_hash(state, &parts.extensions),
                    own_only: true,
                }),
                BackupsToken::Refused(Some(secs)) => Err(ApiError::TooManyAttempts(secs)),
                BackupsToken::Refused(None) => Err(ApiError::Unauthenticated),
                BackupsToken::Unavailable => Err(StoreError::Unavailable.into()),
            };
        }
        let s = Session::from_request_parts(parts, state).await?;
        let device_id = s.device_id.ok_or_else(|| {
            ApiError::Forbidden(
                "this session has no device key: run `enc login` again to certify one".into(),
            )
        })?;
        let device = state
            .meta
            .device(&s.user.id, &device_id)
            .await?
            .filter(|d| d.revoked_seq.is_none())
            .ok_or(ApiError::Unauthenticated)?;
        let t = now();
        if device.last_seen < t - 60 {
            let _ = state.meta.touch_device(&s.user.id, &device_id, t).await;
        }
        Ok(Self {
            user: s.user,
            device_id,
            key: device.public_key,
            client: s.client,
            own_only: false,
        })
    }
}

impl Device {
    /// Whether this caller may see an entry of `device_id`.
    fn reaches(&self, device_id: &str) -> bool {
        !self.own_only || device_id == self.device_id
    }
}

fn info(b: BackupRow) -> BackupInfo {
    BackupInfo {
        id: b.id,
        kind: b.kind,
        device: b.device_id,
        counter: b.counter as u64,
        prev: b.prev,
        classification: b.classification,
        size: b.size as u64,
        hash: b.content_hash,
        target: b.target,
        created: b.created,
        signature: b.signature,
        received: b.received,
        chain_seq: b.chain_seq as u64,
        deleted: b.deleted,
    }
}

fn check_hex(field: &str, v: &str, empty_ok: bool) -> ApiResult<()> {
    let ok = (empty_ok && v.is_empty())
        || (v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{field}: 64 lower-case hex digits{}",
            if empty_ok { " (or empty)" } else { "" }
        )))
    }
}

/// Checks what a device sends before any of it is looked up: the device is the caller's
/// own, the counter and signature are well formed. A credential of one device cannot post
/// another's entries.
fn check_entry(d: &Device, device: &str, counter: u64, prev: &str, sig: &str) -> ApiResult<()> {
    if device != d.device_id {
        return Err(ApiError::Forbidden(format!(
            "this credential acts as device {}: it may send only that device's entries",
            d.device_id
        )));
    }
    if counter == 0 || counter > i64::MAX as u64 {
        return Err(ApiError::BadRequest("counter must be 1 or more".into()));
    }
    check_hex("prev", prev, true)?;
    if sig.len() > 128 {
        return Err(ApiError::BadRequest("signature: base64 of 64 bytes".into()));
    }
    Ok(())
}

/// The device's next counter and prev, as the chain stands.
async fn expect_next(state: &AppState, d: &Device, counter: u64, prev: &str) -> ApiResult<()> {
    let head = state.meta.backup_head(&d.user.id, &d.device_id).await?;
    let (last, hash) = head.map_or((0, String::new()), |h| (h.counter as u64, h.id));
    if counter != last + 1 || prev != hash {
        return Err(ApiError::Conflict(format!(
            "out of order: the device's next entry is counter {} with prev {:?} (this one is {counter} with prev {prev:?}); a replayed or reordered entry is refused",
            last + 1,
            hash
        )));
    }
    Ok(())
}

fn store_refusal(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict("the device is revoked") => {
            ApiError::Forbidden("the device is revoked".into())
        }
        StoreError::Conflict(m) => ApiError::Conflict(m.into()),
        other => other.into(),
    }
}

/// `POST /v1/backups`: one backup, its body the ciphertext, its signed metadata in the query.
///
/// The device signs, with its Ed25519 key, the bytes `enc backup v1` and a zero byte,
/// then eight fields each as its UTF-8 length (big-endian u64) and bytes: user id and server
/// id (as `GET /v1/devices/{id}/chain` gives them), device, kind (`backup`), prev,
/// classification, hash, target (empty); then counter, size and created, each a big-endian
/// 64-bit integer. The entry's id is the lower-case hex SHA-256 of those bytes, and the
/// device's next entry names it as `prev`. A tombstone (`DELETE /v1/backups/{id}`) signs the
/// same fields with kind `tombstone`, the target's classification, an empty hash, size 0
/// and the target's id. The server accepts only the device's next counter and prev, and
/// refuses with 403 a signature that does not verify, a revoked device, or another device's
/// entry; with 409 one out of order (a replay too); with 400 a body whose size or SHA-256
/// differ from the signed ones.
#[utoipa::path(post, path = "/v1/backups", params(PutBackupParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = BackupInfo), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 507, body = ErrorBody)), tag = "backups")]
pub async fn put(
    State(state): State<AppState>,
    d: Device,
    ApiQuery(p): ApiQuery<PutBackupParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<BackupInfo>)> {
    let mut stream = body.into_data_stream();
    let refuse = async |stream: &mut axum::body::BodyDataStream, e: ApiError| {
        drain(stream).await;
        e
    };
    if let Err(e) = check_put(&state, &d, &p, &headers).await {
        return Err(refuse(&mut stream, e).await);
    }
    let server_id = state.server_id();
    let entry = Entry {
        user_id: &d.user.id,
        server_id: &server_id,
        device_id: &d.device_id,
        kind: EntryKind::Backup,
        counter: p.counter,
        prev: &p.prev,
        classification: &p.classification,
        size: p.size,
        content_hash: &p.hash,
        target: "",
        created: p.created,
    };
    if enc_crypto::verify_b64(&d.key, &entry.message(), &p.signature).is_err() {
        state
            .audit(
                &d.user.name,
                Some(&d.user.id),
                "backup.put",
                &d.device_id,
                "denied",
                &d.client,
            )
            .await;
        let e = ApiError::Forbidden(
            "the signature does not verify with the device's key over these fields".into(),
        );
        return Err(refuse(&mut stream, e).await);
    }
    // A large body is refused before it is read when it cannot be the device's next entry;
    // a small one is checked where it is appended (one lookup less per backup).
    if p.size > IN_ROW
        && let Err(e) = expect_next(&state, &d, p.counter, &p.prev).await
    {
        return Err(refuse(&mut stream, e).await);
    }
    let quota = state
        .policy
        .quota_of(&d.user)
        .map(|q| q.min(i64::MAX as u64) as i64);
    let room = quota.map(|q| (q - d.user.usage_bytes).max(0) as u64);
    if room.is_some_and(|r| p.size > r) {
        let e =
            ApiError::QuotaExceeded("storage quota exceeded; free space or ask an admin".into());
        return Err(refuse(&mut stream, e).await);
    }
    let limits = Limits {
        max: state.config.limits.max_object_size,
        room,
        declared: Some(p.size),
    };
    let id = entry.hash();
    let t = now();
    // A key of its own per upload: two uploads of one entry (a retry) never share a blob,
    // so the loser's release cannot take the winner's.
    let blob_key =
        (p.size > IN_ROW).then(|| format!("backups/{}/{}/{}", d.user.id, id, uuid::Uuid::new_v4()));
    let mut ingest = match &blob_key {
        Some(key) => {
            // Reserved before the first byte: after a crash the collector deletes it.
            state
                .meta
                .queue_blob(key, t + state.config.limits.reservation.as_secs() as i64)
                .await?;
            Ingest::to_blob(&state.blobs, key, Hash::Sha256, limits).await?
        }
        None => Ingest::to_memory(Hash::Sha256, limits),
    };
    let release = async |key: &Option<String>| {
        if let Some(key) = key
            && let Err(e) = state.meta.queue_blob(key, now()).await
        {
            tracing::warn!(error = %e, "releasing a refused backup's blob failed");
        }
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                ingest.abort().await;
                release(&blob_key).await;
                return Err(ApiError::BadRequest(format!("upload interrupted: {e}")));
            }
        };
        if let Err(why) = ingest.push(chunk).await {
            release(&blob_key).await;
            let e = match why {
                Refused::Store(e) => return Err(e.into()),
                Refused::Quota => ApiError::QuotaExceeded(
                    "storage quota exceeded; free space or ask an admin".into(),
                ),
                Refused::TooLarge(max) => ApiError::TooLarge(format!(
                    "backup larger than the server's limit of {max} bytes"
                )),
                Refused::LongerThanDeclared(n) => ApiError::BadRequest(format!(
                    "the body is longer than the signed size of {n} bytes"
                )),
            };
            return Err(refuse(&mut stream, e).await);
        }
    }
    if ingest.received() != p.size || ingest.digest() != p.hash {
        ingest.abort().await;
        release(&blob_key).await;
        return Err(ApiError::BadRequest(
            "the body's size or SHA-256 is not what the device signed".into(),
        ));
    }
    let received = match ingest.finish().await {
        Ok(r) => r,
        Err(e) => {
            release(&blob_key).await;
            return Err(e.into());
        }
    };
    let row = BackupRow {
        user_id: d.user.id.clone(),
        id,
        seq: 0,
        device_id: d.device_id.clone(),
        kind: EntryKind::Backup.as_str().into(),
        counter: p.counter as i64,
        prev: p.prev.clone(),
        classification: p.classification.clone(),
        size: p.size as i64,
        content_hash: p.hash.clone(),
        target: String::new(),
        created: p.created,
        signature: p.signature.clone(),
        received: t,
        chain_seq: 0,
        deleted: None,
        blob_key: blob_key.clone(),
    };
    let audit = enc_store::NewAudit {
        ts: t,
        actor: d.user.name.clone(),
        actor_id: Some(d.user.id.clone()),
        action: "backup.put".into(),
        target: format!(
            "{} {} #{} {}",
            row.id, d.device_id, p.counter, p.classification
        ),
        outcome: "ok".into(),
        client: d.client.clone(),
    };
    // Concurrent uploads share one transaction (and one commit to disk), each entry with
    // its audit entry.
    let written = state
        .backup_writer
        .submit(enc_store::NewBackup {
            row,
            data: received.data,
            quota,
            audit,
        })
        .await
        .unwrap_or_else(|| Err(StoreError::Batch("the server is shutting down".into())));
    match written {
        Ok(stored) => Ok((StatusCode::CREATED, Json(info(stored)))),
        Err(e) => {
            // Unless the storage stopped answering: then the commit may have landed, and the
            // reservation decides (taken back if it did, collected once due if not).
            if !e.is_unavailable() {
                release(&blob_key).await;
            }
            Err(store_refusal(e))
        }
    }
}

/// The checks of a backup's metadata that need no lookup.
async fn check_put(
    state: &AppState,
    d: &Device,
    p: &PutBackupParams,
    headers: &HeaderMap,
) -> ApiResult<()> {
    require_permission_of(state, &d.user)?;
    check_entry(d, &p.device, p.counter, &p.prev, &p.signature)?;
    if !CLASSIFICATIONS.contains(&p.classification.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "classification must be one of {}",
            CLASSIFICATIONS.join(", ")
        )));
    }
    check_hex("hash", &p.hash, false)?;
    let max = state.config.limits.max_object_size;
    if p.size > max {
        return Err(ApiError::TooLarge(format!(
            "backup larger than the server's limit of {max} bytes"
        )));
    }
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: Option<u64> = len.to_str().ok().and_then(|l| l.parse().ok());
        if len != Some(p.size) {
            return Err(ApiError::BadRequest(
                "Content-Length is not the signed size".into(),
            ));
        }
    }
    Ok(())
}

fn require_permission_of(state: &AppState, user: &UserRow) -> ApiResult<()> {
    if state.policy.allows(&user.role, Permission::WriteVaults) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "role {} may not do this (WriteVaults needed)",
            user.role
        )))
    }
}

/// The opaque cursor of a listing: the last entry's `seq`, sealed with a MAC under the
/// server secret and bound to the user, so a client can neither forge nor move one.
fn seal_cursor(state: &AppState, user_id: &str, seq: i64) -> String {
    let body = seq.to_string();
    let tag = state.keyed_hash("backup cursor", format!("{user_id}\0{body}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{body}.{tag}"))
}

fn open_cursor(state: &AppState, user_id: &str, cursor: &str) -> ApiResult<i64> {
    let bad = || ApiError::BadRequest("cursor: not one this server gave you".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (body, tag) = text.rsplit_once('.').ok_or_else(bad)?;
    let want = state.keyed_hash("backup cursor", format!("{user_id}\0{body}").as_bytes());
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        tag.as_bytes(),
        want.as_bytes(),
    )) {
        return Err(bad());
    }
    body.parse().map_err(|_| bad())
}

/// `GET /v1/backups`: the caller's live backups, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/backups", params(ListBackupsParams),
    responses((status = 200, body = BackupList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)), tag = "backups")]
pub async fn list(
    State(state): State<AppState>,
    d: Device,
    ApiQuery(p): ApiQuery<ListBackupsParams>,
) -> ApiResult<Json<BackupList>> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit: 1 to 1000".into()));
    }
    if let Some(c) = &p.classification
        && !CLASSIFICATIONS.contains(&c.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "classification must be one of {}",
            CLASSIFICATIONS.join(", ")
        )));
    }
    let before = match &p.cursor {
        Some(c) => Some(open_cursor(&state, &d.user.id, c)?),
        None => None,
    };
    let rows = state
        .meta
        .list_backups(
            &d.user.id,
            BackupFilter {
                device_id: if d.own_only {
                    // An app's token lists its own device's backups only.
                    match p.device.filter(|x| !x.is_empty()) {
                        Some(x) if x != d.device_id => {
                            return Ok(Json(BackupList {
                                backups: Vec::new(),
                                next_cursor: None,
                            }));
                        }
                        _ => Some(d.device_id.clone()),
                    }
                } else {
                    p.device.filter(|x| !x.is_empty())
                },
                classification: p.classification,
                before,
                limit: i64::from(limit) + 1,
            },
        )
        .await?;
    let more = rows.len() > limit as usize;
    let page: Vec<BackupRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = match page.last() {
        Some(last) if more => Some(seal_cursor(&state, &d.user.id, last.seq)),
        _ => None,
    };
    Ok(Json(BackupList {
        backups: page.into_iter().map(info).collect(),
        next_cursor,
    }))
}

/// `GET /v1/backups/{id}`: one entry's signed metadata.
#[utoipa::path(get, path = "/v1/backups/{id}",
    responses((status = 200, body = BackupInfo), (status = 404, body = ErrorBody)), tag = "backups")]
pub async fn get(
    State(state): State<AppState>,
    d: Device,
    Path(id): Path<String>,
) -> ApiResult<Json<BackupInfo>> {
    let row = state
        .meta
        .backup(&d.user.id, &id)
        .await?
        .filter(|r| d.reaches(&r.device_id))
        .ok_or(ApiError::NotFound("backup"))?;
    Ok(Json(info(row)))
}

/// `GET /v1/backups/{id}/content`: a backup's ciphertext, streamed.
#[utoipa::path(get, path = "/v1/backups/{id}/content",
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ErrorBody)), tag = "backups")]
pub async fn content(
    State(state): State<AppState>,
    d: Device,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let row = state
        .meta
        .backup(&d.user.id, &id)
        .await?
        .filter(|r| r.kind == "backup" && r.deleted.is_none() && d.reaches(&r.device_id))
        .ok_or(ApiError::NotFound("backup"))?;
    let body = match &row.blob_key {
        Some(key) => Body::from_stream(state.blobs.read(key).await.map_err(|e| match e {
            StoreError::NotFound => {
                tracing::error!(blob = key, "a backup's blob is missing from the blob store");
                ApiError::Damaged(format!(
                    "backup {id}'s content is missing from the server's storage (an admin's \
                     `enc-server scrub` lists what is damaged)"
                ))
            }
            other => other.into(),
        })?),
        // A tombstone may have landed since the row was read: then there is nothing to send.
        None => Body::from(
            state
                .meta
                .backup_data(&d.user.id, &id)
                .await?
                .ok_or(ApiError::NotFound("backup"))?,
        ),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(row.size as u64));
    Ok(resp)
}

/// `DELETE /v1/backups/{id}`: deletes a backup's content with a tombstone the device signs
/// (an entry of its chain, so the deletion is not a gap).
#[utoipa::path(delete, path = "/v1/backups/{id}", params(TombstoneParams),
    responses((status = 200, body = BackupInfo), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)), tag = "backups")]
pub async fn remove(
    State(state): State<AppState>,
    d: Device,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<TombstoneParams>,
) -> ApiResult<Json<BackupInfo>> {
    // Another tenant's id answers like one that does not exist, before anything is checked.
    let target = state
        .meta
        .backup(&d.user.id, &id)
        .await?
        .filter(|r| r.kind == "backup" && r.deleted.is_none() && d.reaches(&r.device_id))
        .ok_or(ApiError::NotFound("backup"))?;
    require_permission_of(&state, &d.user)?;
    check_entry(&d, &p.device, p.counter, &p.prev, &p.signature)?;
    let server_id = state.server_id();
    let entry = Entry {
        user_id: &d.user.id,
        server_id: &server_id,
        device_id: &d.device_id,
        kind: EntryKind::Tombstone,
        counter: p.counter,
        prev: &p.prev,
        classification: &target.classification,
        size: 0,
        content_hash: "",
        target: &target.id,
        created: p.created,
    };
    enc_crypto::verify_b64(&d.key, &entry.message(), &p.signature).map_err(|_| {
        ApiError::Forbidden(
            "the tombstone's signature does not verify with the device's key".into(),
        )
    })?;
    expect_next(&state, &d, p.counter, &p.prev).await?;
    let t = now();
    let row = BackupRow {
        user_id: d.user.id.clone(),
        id: entry.hash(),
        seq: 0,
        device_id: d.device_id.clone(),
        kind: EntryKind::Tombstone.as_str().into(),
        counter: p.counter as i64,
        prev: p.prev.clone(),
        classification: target.classification.clone(),
        size: 0,
        content_hash: String::new(),
        target: target.id.clone(),
        created: p.created,
        signature: p.signature.clone(),
        received: t,
        chain_seq: 0,
        deleted: None,
        blob_key: None,
    };
    state
        .meta
        .tombstone_backup(row.clone())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("backup"),
            other => store_refusal(other),
        })?;
    state
        .audit(
            &d.user.name,
            Some(&d.user.id),
            "backup.rm",
            &format!("{} by {} #{}", target.id, d.device_id, p.counter),
            "ok",
            &d.client,
        )
        .await;
    let stored = state.meta.backup(&d.user.id, &row.id).await?.unwrap_or(row);
    Ok(Json(info(stored)))
}

/// `GET /v1/devices/{id}/chain`: every entry of one of the caller's devices' chains (deleted
/// backups' metadata and tombstones included), by counter, so a client can check it whole.
#[utoipa::path(get, path = "/v1/devices/{id}/chain",
    responses((status = 200, body = BackupChain), (status = 404, body = ErrorBody)), tag = "backups")]
pub async fn chain(
    State(state): State<AppState>,
    d: Device,
    Path(id): Path<String>,
) -> ApiResult<Json<BackupChain>> {
    if !d.reaches(&id) || state.meta.device(&d.user.id, &id).await?.is_none() {
        return Err(ApiError::NotFound("device"));
    }
    let rows = state.meta.backup_chain(&d.user.id, &id).await?;
    Ok(Json(BackupChain {
        user_id: d.user.id.clone(),
        server_id: state.server_id(),
        entries: rows.into_iter().map(info).collect(),
    }))
}

/// `GET /v1/admin/backups/usage`: backups and bytes per day and classification, for the
/// deployment (metadata only; needs `manage_users`).
#[utoipa::path(get, path = "/v1/admin/backups/usage",
    responses((status = 200, body = Vec<BackupUsage>), (status = 403, body = ErrorBody)), tag = "backups")]
pub async fn usage(State(state): State<AppState>, s: Session) -> ApiResult<Json<Vec<BackupUsage>>> {
    require_permission(&state, &s, Permission::ManageUsers)?;
    let rows = state.meta.backup_usage().await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| BackupUsage {
                day: r.day,
                classification: r.classification,
                backups: r.backups as u64,
                bytes: r.bytes as u64,
            })
            .collect(),
    ))
}
