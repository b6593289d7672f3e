//! Objects: streamed upload, signed commit, listing, versions, download, removal.
//!
//! Two phases: `PUT …/uploads` streams ciphertext into the blob store (hashing on the fly,
//! stopping at the size limit) and returns a receipt; `POST …/objects` commits the upload as
//! the next version of an encrypted name, with the author's signature over exactly what the
//! server will serve. Only committed versions are visible.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enc_proto::*;
use enc_store::{NewVersion, UploadRow, VersionRow};
use futures::StreamExt as _;

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::ingest::{Hash, Ingest, Limits, MAX_DRAIN, Received, Refused, drain};
use crate::rules::policy::Permission;
use crate::state::AppState;
use crate::v1::auth::Session;
use crate::v1::users::require_permission;
use crate::v1::vaults::access;

/// Longest encrypted name accepted (a 4,096-byte name encrypts to about 5,500 characters).
const MAX_ENC_NAME: usize = 8192;

fn version_info(v: VersionRow) -> VersionInfo {
    VersionInfo {
        id: v.id,
        version: v.version as u64,
        size: v.size as u64,
        hash: v.hash,
        generation: v.generation as u32,
        signature: v.signature,
        author: v.author,
        author_key: v.author_key,
        created: v.created,
    }
}

fn check_enc_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ENC_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "enc_name must be an encrypted name (base64url, at most 8192 characters)".into(),
        ))
    }
}

/// `PUT /v1/vaults/{id}/uploads`: streams ciphertext; answers with its size and BLAKE3 hash.
#[utoipa::path(put, path = "/v1/vaults/{id}/uploads", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = UploadReceipt), (status = 413, body = ErrorBody)), tag = "objects")]
pub async fn upload(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<UploadReceipt>> {
    require_permission(&state, &s, Permission::WriteVaults)?;
    let v = access(&state, &s, &id).await?;
    crate::v1::vaults::writable(&v)?;
    let max = state.config.limits.max_object_size;
    let too_large = || {
        ApiError::TooLarge(format!(
            "object larger than the server's limit of {max} bytes"
        ))
    };
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| ApiError::BadRequest("invalid Content-Length".into()))?;
        if len > max {
            if len - max <= MAX_DRAIN {
                drain(&mut body.into_data_stream()).await;
            }
            return Err(too_large());
        }
    }
    let upload_id = uuid::Uuid::new_v4().to_string();
    let blob_key = format!("blobs/{}/{}", v.id, upload_id);
    // The bytes count against the vault owner's quota while they stream, as at commit.
    let owner = state.meta.user_by_id(&v.owner_id).await?;
    let quota = owner
        .as_ref()
        .and_then(|o| state.policy.quota_of(o))
        .map(|q| q.min(i64::MAX as u64) as i64);
    state
        .meta
        .create_upload(
            UploadRow {
                id: upload_id.clone(),
                vault_id: v.id.clone(),
                user_id: s.user.id.clone(),
                blob_key: blob_key.clone(),
                size: -1,
                hash: String::new(),
                created: crate::rules::now(),
            },
            i64::from(state.config.limits.max_pending_uploads),
        )
        .await
        .map_err(|e| match e {
            enc_store::StoreError::Conflict(_) => {
                // Some of them may be past their expiry: let the collector look now.
                crate::rules::gc::kick(&state);
                ApiError::TooManyUploads(format!(
                "{} uploads are already in progress or awaiting their commit; commit or wait for them",
                    state.config.limits.max_pending_uploads
                ))
            }
            other => other.into(),
        })?;
    // From here on, however the request ends (an error, a refusal, a dropped connection),
    // the upload is released unless it completes.
    let mut pending = Pending::new(&state, &s.user.id, &upload_id, &blob_key);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok()?.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    let mut charged: u64 = 0;
    if let Some(len) = declared.filter(|l| *l > 0) {
        if let Err(e) = pending.charge(len, quota).await {
            drain(&mut stream).await;
            return Err(e);
        }
        charged = len;
    }
    let limits = Limits {
        max,
        room: None,
        declared: None,
    };
    let mut ingest = Ingest::to_blob(&state.blobs, &blob_key, Hash::Blake3, limits).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                ingest.abort().await;
                return Err(ApiError::BadRequest(format!("upload interrupted: {e}")));
            }
        };
        let size = ingest.received() + chunk.len() as u64;
        if size > charged && size <= max {
            // Charged ahead in steps (one statement per step, not per chunk); near the quota
            // exactly what is needed.
            let step = (size - charged).max(CHARGE_STEP.min(max - charged));
            let more = match pending.charge(step, quota).await {
                Ok(()) => Ok(step),
                Err(ApiError::QuotaExceeded(_)) if step > size - charged => {
                    let needed = size - charged;
                    pending.charge(needed, quota).await.map(|()| needed)
                }
                Err(e) => Err(e),
            };
            match more {
                Ok(more) => charged += more,
                Err(e) => {
                    ingest.abort().await;
                    drain(&mut stream).await;
                    return Err(e);
                }
            }
        }
        match ingest.push(chunk).await {
            Ok(()) => {}
            Err(Refused::Store(e)) => return Err(e.into()),
            Err(_) => {
                drain(&mut stream).await;
                return Err(too_large());
            }
        }
    }
    let Received { size, hash, .. } = ingest.finish().await?;
    if let Err(e) = state
        .meta
        .complete_upload(&upload_id, size as i64, &hash)
        .await
    {
        // The vault went away or the upload expired meanwhile: the guard releases it.
        return Err(match e {
            enc_store::StoreError::NotFound => ApiError::NotFound("vault"),
            other => other.into(),
        });
    }
    pending.completed();
    Ok(Json(UploadReceipt {
        upload_id,
        size,
        hash,
    }))
}

/// How far ahead of the bytes received an upload is charged to the quota.
const CHARGE_STEP: u64 = 16 << 20;

/// An upload between its row's creation and its completion. Dropped before
/// [`Pending::completed`] (a refusal, an error, a connection that went away, which cancels the
/// handler), it releases the upload in the background: the charge given back, the row
/// forgotten and the blob queued for deletion.
struct Pending {
    state: AppState,
    user_id: String,
    upload_id: String,
    blob_key: String,
    done: bool,
}

impl Pending {
    fn new(state: &AppState, user_id: &str, upload_id: &str, blob_key: &str) -> Self {
        Self {
            state: state.clone(),
            user_id: user_id.to_string(),
            upload_id: upload_id.to_string(),
            blob_key: blob_key.to_string(),
            done: false,
        }
    }

    async fn charge(&self, n: u64, quota: Option<i64>) -> ApiResult<()> {
        let n = n.min(i64::MAX as u64) as i64;
        self.state
            .meta
            .charge_upload(&self.upload_id, n, quota)
            .await
            .map_err(|e| match e {
                enc_store::StoreError::QuotaExceeded => ApiError::QuotaExceeded(
                    "storage quota exceeded: this upload does not fit; nothing was kept".into(),
                ),
                enc_store::StoreError::NotFound => ApiError::NotFound("vault"),
                other => other.into(),
            })
    }

    fn completed(&mut self) {
        self.done = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let state = self.state.clone();
        let user_id = std::mem::take(&mut self.user_id);
        let upload_id = std::mem::take(&mut self.upload_id);
        let blob_key = std::mem::take(&mut self.blob_key);
        tokio::spawn(enc_store::tenant::scope(user_id, async move {
            let now = crate::rules::now();
            // Released, or already gone: an upload that outlasted its reservation was expired
            // while its bytes streamed (its blob queued, perhaps collected before the last
            // bytes landed), so its key is queued again. Nothing references it: only a
            // completed upload's receipt names it to a commit.
            let released = match state.meta.release_upload(&upload_id, now).await {
                Ok(()) => state.meta.queue_blob(&blob_key, now).await,
                Err(e) => Err(e),
            };
            match released {
                Ok(()) => crate::rules::gc::kick(&state),
                Err(e) => tracing::warn!(error = %e, "releasing an unfinished upload failed"),
            }
        }));
    }
}

/// `POST /v1/vaults/{id}/objects`: commits an upload as the next version of a name.
#[utoipa::path(post, path = "/v1/vaults/{id}/objects", request_body = CommitRequest,
    responses((status = 200, body = VersionInfo), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)), tag = "objects")]
pub async fn commit(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CommitRequest>,
) -> ApiResult<Json<VersionInfo>> {
    require_permission(&state, &s, Permission::WriteVaults)?;
    let v = access(&state, &s, &id).await?;
    crate::v1::vaults::writable(&v)?;
    check_enc_name(&req.enc_name)?;
    // A vault with a tree takes new content only as commits of it: an object written now
    // would be where no tree client looks (ARCHITECTURE.md, "Upgrade").
    if let Some(head) = state.meta.tree_head(&v.id).await? {
        return Err(ApiError::Conflict(format!(
            "this vault holds a signed tree since commit {} and takes no single objects: `enc push` commits to the tree (an enc from before trees needs an upgrade)",
            head.seq
        )));
    }
    if req.generation as i64 != v.generation {
        return Err(ApiError::Conflict(format!(
            "the vault's keys were rotated (generation {}); fetch them again and re-encrypt",
            v.generation
        )));
    }
    let key = s.user.ed25519_public.clone().unwrap_or_default();
    let fields = enc_crypto::CommitFields {
        vault_id: &v.signed_id,
        object_id: &req.upload_id,
        enc_name: &req.enc_name,
        size: req.size,
        hash: &req.hash,
        version: req.version,
        generation: req.generation,
    };
    enc_crypto::verify_commit(&key, &fields, &req.signature).map_err(|_| {
        ApiError::BadRequest("commit signature does not verify with your key".into())
    })?;
    // Usage is charged to the vault's owner, against the owner's quota.
    let owner = state.meta.user_by_id(&v.owner_id).await?;
    let quota = owner
        .as_ref()
        .and_then(|o| state.policy.quota_of(o))
        .map(|q| q.min(i64::MAX as u64) as i64);
    let row = state
        .meta
        .commit_version(
            NewVersion {
                upload_id: req.upload_id.clone(),
                vault_id: v.id.clone(),
                user_id: s.user.id.clone(),
                enc_name: req.enc_name,
                size: req.size as i64,
                hash: req.hash,
                version: req.version as i64,
                generation: req.generation.into(),
                signature: req.signature,
                now: crate::rules::now(),
                quota,
            },
            state.config.versions_kept,
        )
        .await
        .map_err(|e| match e {
            enc_store::StoreError::NotFound => ApiError::NotFound("upload"),
            other => other.into(),
        })?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "object.write",
            &format!("{}/{}", v.id, row.id),
            "ok",
            &s.client,
        )
        .await;
    crate::rules::gc::kick(&state);
    Ok(Json(version_info(row)))
}

/// `GET /v1/vaults/{id}/objects`: every name with its latest version.
#[utoipa::path(get, path = "/v1/vaults/{id}/objects", responses((status = 200, body = Vec<ObjectInfo>)), tag = "objects")]
pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ObjectInfo>>> {
    let v = access(&state, &s, &id).await?;
    Ok(Json(
        state
            .meta
            .list_objects(&v.id)
            .await?
            .into_iter()
            .map(|(enc_name, latest)| ObjectInfo {
                enc_name,
                versions: vec![version_info(latest)],
            })
            .collect(),
    ))
}

/// `GET /v1/vaults/{id}/objects/{enc_name}`: every stored version of a name, newest first.
#[utoipa::path(get, path = "/v1/vaults/{id}/objects/{enc_name}",
    responses((status = 200, body = ObjectInfo), (status = 404, body = ErrorBody)), tag = "objects")]
pub async fn versions(
    State(state): State<AppState>,
    s: Session,
    Path((id, enc_name)): Path<(String, String)>,
) -> ApiResult<Json<ObjectInfo>> {
    let v = access(&state, &s, &id).await?;
    check_enc_name(&enc_name)?;
    let versions = state.meta.object_versions(&v.id, &enc_name).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound("object"));
    }
    Ok(Json(ObjectInfo {
        enc_name,
        versions: versions.into_iter().map(version_info).collect(),
    }))
}

/// `DELETE /v1/vaults/{id}/objects/{enc_name}`: removes a name and all its versions.
#[utoipa::path(delete, path = "/v1/vaults/{id}/objects/{enc_name}",
    responses((status = 204), (status = 404, body = ErrorBody)), tag = "objects")]
pub async fn remove(
    State(state): State<AppState>,
    s: Session,
    Path((id, enc_name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_permission(&state, &s, Permission::WriteVaults)?;
    let v = access(&state, &s, &id).await?;
    crate::v1::vaults::writable(&v)?;
    check_enc_name(&enc_name)?;
    if !state.meta.delete_object(&v.id, &enc_name).await? {
        return Err(ApiError::NotFound("object"));
    }
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "object.remove",
            &format!("{}/{}", v.id, enc_name),
            "ok",
            &s.client,
        )
        .await;
    crate::rules::gc::kick(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/vaults/{id}/blobs/{version_id}`: streams a version's ciphertext as stored.
#[utoipa::path(get, path = "/v1/vaults/{id}/blobs/{version_id}",
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ErrorBody)), tag = "objects")]
pub async fn download(
    State(state): State<AppState>,
    s: Session,
    Path((id, version_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let v = access(&state, &s, &id).await?;
    let row = state
        .meta
        .version(&v.id, &version_id)
        .await?
        .ok_or(ApiError::NotFound("object"))?;
    let mut resp = blob_response(&state, &row.blob_key, row.size.max(0) as u64).await?;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&row.hash) {
        h.insert("x-enc-hash", v);
    }
    Ok(resp)
}

/// A blob streamed as `application/octet-stream` of `size` bytes (a missing blob is the
/// server's fault: 500, logged).
pub(crate) async fn blob_response(state: &AppState, key: &str, size: u64) -> ApiResult<Response> {
    let stream = state.blobs.read(key).await.map_err(|e| match e {
        enc_store::StoreError::NotFound => ApiError::Internal(format!("blob {key} missing")),
        other => other.into(),
    })?;
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(resp)
}
