//! Vault trees (issue 15): signed commits appended on the head, the chain of them, and
//! batched reads of the blobs a tree references.
//!
//! A tree's blobs arrive as ordinary uploads (`PUT …/uploads`, the one ingest path: a pack of
//! many small pieces is one upload, one transaction and one durability barrier). A commit
//! names them among its adds; the server checks what it can see of the commit (its vault,
//! its signer, its place in the chain, the blobs it adds and releases) and never writes one.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use enc_crypto::tree::{Account, CommitHeader};
use enc_proto::*;
use enc_store::{NewTreeCommit, StoreError, TreeAppend, TreeCommitRow};
use futures::StreamExt as _;
use serde::Deserialize;

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::policy::Permission;
use crate::state::AppState;
use crate::v1::auth::Session;
use crate::v1::users::require_permission;
use crate::v1::vaults::{access, writable};

/// Most commits one listing returns.
const MAX_LISTED: u64 = 1000;
/// Most ranges one read asks for.
const MAX_RANGES: usize = 10_000;
/// Longest header accepted, in bytes (its lists of blob ids are what grows).
const MAX_HEADER: usize = 4 << 20;

fn commit_info(c: TreeCommitRow, author: String) -> TreeCommitInfo {
    TreeCommitInfo {
        seq: c.seq as u64,
        hash: c.hash,
        header: B64.encode(&c.header),
        signature: B64.encode(&c.signature),
        created: c.created,
        author,
    }
}

/// The commits as the API shows them, each with its author's name: a user's, an erased
/// user's label (what the erasure put in place of the id), or `(removed)` for a user
/// removed since.
async fn commit_infos(
    state: &AppState,
    rows: Vec<TreeCommitRow>,
) -> ApiResult<Vec<TreeCommitInfo>> {
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.author_id.clone();
        if !names.contains_key(&id) {
            let name = match state.meta.user_by_id(&id).await? {
                Some(u) => u.name,
                None if id.starts_with("(erased ") => id.clone(),
                None => "(removed)".to_string(),
            };
            names.insert(id.clone(), name);
        }
        out.push(commit_info(row, names[&id].clone()));
    }
    Ok(out)
}

/// `POST /v1/vaults/{id}/commits`: appends a signed commit on top of the vault's head.
#[utoipa::path(post, path = "/v1/vaults/{id}/commits", request_body = TreeCommitRequest,
    responses((status = 201, body = TreeCommitInfo), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not built on the head, which has moved: fetch it, rebase and sign again")),
    tag = "trees")]
pub async fn commit(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TreeCommitRequest>,
) -> ApiResult<(StatusCode, Json<TreeCommitInfo>)> {
    require_permission(&state, &s, Permission::WriteVaults)?;
    let v = access(&state, &s, &id).await?;
    writable(&v)?;
    let bad = |m: &str| ApiError::BadRequest(m.to_string());
    let header_bytes = B64
        .decode(req.header.as_bytes())
        .map_err(|_| bad("header must be base64"))?;
    if header_bytes.len() > MAX_HEADER {
        return Err(ApiError::TooLarge(format!(
            "commit header larger than {MAX_HEADER} bytes"
        )));
    }
    let signature = B64
        .decode(req.signature.as_bytes())
        .map_err(|_| bad("signature must be base64"))?;
    let h = CommitHeader::decode(&header_bytes)
        .map_err(|e| ApiError::BadRequest(format!("commit header: {e}")))?;
    if h.message() != header_bytes {
        return Err(bad("commit header is not in canonical form"));
    }
    if h.vault != v.signed_id {
        return Err(bad("the commit is for another vault"));
    }
    // A commit is signed by the device that sends it: its key as the account chain certified
    // it, named by the certificate (the device id). Devices hold no account signing key, and
    // one signed by it is refused, so that a copy of that key left on an old device signs
    // nothing new.
    // Version 2 names the signer by the account key (version 1, by the name, which an
    // erasure could not take out of the vault's history: no longer taken).
    let Some(account_key) = s.user.ed25519_public.clone() else {
        return Err(ApiError::Forbidden(
            "this account has no signing key: register it first".into(),
        ));
    };
    match &h.signer.account {
        Account::Key(k) if *k == account_key => {}
        Account::Key(_) => return Err(bad("the commit's signer is not you")),
        Account::Name(_) => {
            return Err(bad(
                "commits of version 1 name their signer; this server takes version 2 only: upgrade enc",
            ));
        }
    }
    let Some(device_id) = s.device_id.clone() else {
        return Err(ApiError::Forbidden(
            "this session has no device key to sign commits with: run `enc login` again".into(),
        ));
    };
    if h.signer.certificate.as_deref() != Some(device_id.as_str()) {
        return Err(bad(
            "the commit must be signed by this session's device, named as its certificate",
        ));
    }
    let device = state
        .meta
        .device(&s.user.id, &device_id)
        .await?
        .filter(|d| d.revoked_seq.is_none())
        .ok_or_else(|| ApiError::Forbidden("this device is revoked".into()))?;
    if h.signer.key != device.public_key {
        return Err(bad("the commit's key is not this device's certified key"));
    }
    enc_crypto::verify_b64(&device.public_key, &header_bytes, &req.signature)
        .map_err(|_| bad("commit signature does not verify with this device's key"))?;
    if h.seq == 0 || h.seq > i64::MAX as u64 {
        return Err(bad("seq must be 1 or more"));
    }
    let body_end = h
        .body
        .offset
        .checked_add(h.body.len)
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or_else(|| bad("the body's range overflows"))?;
    let hash = hex::encode(enc_crypto::tree::commit_hash(&header_bytes, &signature));
    let owner = state.meta.user_by_id(&v.owner_id).await?;
    let quota = owner
        .as_ref()
        .and_then(|o| state.policy.quota_of(o))
        .map(|q| q.min(i64::MAX as u64) as i64);
    let appended = state
        .meta
        .tree_append(NewTreeCommit {
            vault_id: v.id.clone(),
            user_id: s.user.id.clone(),
            signer_key: Some(account_key),
            device: Some((device_id, device.public_key)),
            seq: h.seq as i64,
            hash,
            prev: h.prev.map(hex::encode).unwrap_or_default(),
            header: header_bytes,
            signature,
            adds: h.adds,
            releases: h.releases,
            body_blob: h.body.blob,
            body_end: body_end as i64,
            quota,
            now: crate::rules::now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("vault"),
            other => other.into(),
        })?;
    let row = match appended {
        TreeAppend::Appended(row) => row,
        TreeAppend::Behind(head) => {
            let at = head.map_or("has no commit".to_string(), |h| {
                format!(
                    "is at commit {} ({})",
                    h.seq,
                    &h.hash[..12.min(h.hash.len())]
                )
            });
            return Err(ApiError::Conflict(format!(
                "the vault's tree {at}, not the one this commit was built on: fetch it, rebase and sign again"
            )));
        }
    };
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "tree.commit",
            &format!("{}/{}", v.id, row.seq),
            "ok",
            &s.client,
        )
        .await;
    crate::rules::gc::kick(&state);
    Ok((
        StatusCode::CREATED,
        Json(commit_info(row, s.user.name.clone())),
    ))
}

/// `GET /v1/vaults/{id}/head`: the vault's newest commit (`null` before the first).
#[utoipa::path(get, path = "/v1/vaults/{id}/head", responses((status = 200, body = TreeHead)), tag = "trees")]
pub async fn head(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> ApiResult<Json<TreeHead>> {
    let v = access(&state, &s, &id).await?;
    let head = state.meta.tree_head(&v.id).await?;
    Ok(Json(TreeHead {
        head: commit_infos(&state, head.into_iter().collect())
            .await?
            .pop(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitsQuery {
    after: Option<u64>,
    limit: Option<u64>,
}

/// `GET /v1/vaults/{id}/commits?after=SEQ&limit=N`: commits after `after` (default 0),
/// oldest first, at most `limit` (default and most: 1,000).
#[utoipa::path(get, path = "/v1/vaults/{id}/commits",
    params(("after" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = TreeCommits)), tag = "trees")]
pub async fn commits(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<CommitsQuery>,
) -> ApiResult<Json<TreeCommits>> {
    let v = access(&state, &s, &id).await?;
    let after = q.after.unwrap_or(0).min(i64::MAX as u64) as i64;
    let limit = q.limit.unwrap_or(MAX_LISTED).clamp(1, MAX_LISTED) as i64;
    let rows = state.meta.tree_commits(&v.id, after, limit).await?;
    Ok(Json(TreeCommits {
        commits: commit_infos(&state, rows).await?,
    }))
}

/// `POST /v1/vaults/{id}/read`: the bytes of many ranges of the tree's blobs, in the order
/// asked, as one body. Every range must lie inside a blob of the vault; the total is bounded
/// by the server's largest object.
#[utoipa::path(post, path = "/v1/vaults/{id}/read", request_body = ReadRequest,
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), tag = "trees")]
pub async fn read(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> ApiResult<Response> {
    let v = access(&state, &s, &id).await?;
    if req.ranges.is_empty() || req.ranges.len() > MAX_RANGES {
        return Err(ApiError::BadRequest(format!(
            "a read asks for 1 to {MAX_RANGES} ranges"
        )));
    }
    let mut ids: Vec<String> = req.ranges.iter().map(|r| r.blob.clone()).collect();
    ids.sort();
    ids.dedup();
    let blobs: std::collections::HashMap<String, (String, u64)> = state
        .meta
        .tree_blobs(&v.id, &ids)
        .await?
        .into_iter()
        .map(|b| (b.id, (b.blob_key, b.size as u64)))
        .collect();
    let max = state.config.limits.max_object_size;
    let mut total = 0u64;
    let mut plan: Vec<(String, std::ops::Range<u64>, &str)> = Vec::with_capacity(req.ranges.len());
    for r in &req.ranges {
        let Some((key, size)) = blobs.get(&r.blob) else {
            return Err(ApiError::NotFound("blob"));
        };
        let end = r.offset.checked_add(r.len).filter(|e| *e <= *size);
        let Some(end) = end.filter(|_| r.len > 0) else {
            return Err(ApiError::BadRequest(format!(
                "range {}+{} is not inside blob {} of {size} bytes",
                r.offset, r.len, r.blob
            )));
        };
        total += r.len;
        if total > max {
            return Err(ApiError::TooLarge(format!(
                "a read of more than {max} bytes: ask for fewer ranges at a time"
            )));
        }
        // Ranges that continue the one before in the same blob are read as one.
        match plan.last_mut() {
            Some((k, range, _)) if k.as_str() == key.as_str() && range.end == r.offset => {
                range.end = end
            }
            _ => plan.push((key.clone(), r.offset..end, r.blob.as_str())),
        }
    }
    // The first range is opened before the answer starts, so that a blob the store has lost
    // is an error the client can name; a later one that fails ends the body early, which the
    // client sees as a short read (it knows every range's length).
    let blobs = state.blobs.clone();
    let mut plan = plan.into_iter();
    let (first_key, first_range, first_id) = plan.next().expect("at least one range");
    let first = match blobs.read_range(&first_key, Some(first_range)).await {
        Ok(s) => s,
        Err(e) if matches!(e, StoreError::NotFound) || e.is_short() => {
            tracing::error!(blob = first_key, error = %e, "a vault's blob is missing or cut short");
            return Err(ApiError::Damaged(format!(
                "blob {first_id} of this vault is missing from the server's storage, or cut \
                 short (an admin's `enc-server scrub` lists what is damaged)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let rest: Vec<(String, std::ops::Range<u64>)> = plan.map(|(k, r, _)| (k, r)).collect();
    let stream = futures::stream::iter(rest)
        .then(move |(key, range)| {
            let blobs = blobs.clone();
            async move {
                match blobs.read_range(&key, Some(range)).await {
                    Ok(s) => s,
                    Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                }
            }
        })
        .flatten();
    let stream = first.chain(stream);
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    Ok(resp)
}
