//! `/records`: the enc-server-go record service's routes and JSON shapes, with enc's rules.
//!
//! `POST /records {id, data}` seals `data` (hex, as that service's client sends it) under a
//! fresh random AES-256-GCM key and answers `201 {id, key, data}`; the key is in that answer
//! only. `GET /records/{id}` with the key (`X-Record-Key`, or `?key=` for old clients) opens
//! it; `DELETE /records/{id}` needs the key too (or its proof, or an admin naming the user).
//! These routes see the record in transit, so they are off unless `[records] enabled`.
//!
//! `enc record` seals on the client in the same format ([`enc_crypto::record`]) and uses the
//! sealed routes (`POST /records/sealed`, `GET /records/{id}/sealed` with `X-Record-Proof`),
//! which never see plaintext and are always on; a key from either path opens a record
//! through the other.
//!
//! A record is stored under its owner's pseudonym (HMAC-SHA256 of the user id under the
//! records pepper, kept outside the database), and the server keeps only the check of its
//! key's proof, so a wrong key is refused without decrypting. A wrong key and an unknown id
//! answer alike (404, same body, the same work done). Audit entries name the record id, the
//! pseudonym and the outcome, never a key or data.

pub mod batch;
mod caller;
mod hex;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use enc_crypto::record::{RecordKey, check_of_proof, open_record, seal_record};
use enc_store::RecordRow;
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiJson, ApiQuery};
use crate::rules::now;
use crate::state::AppState;
pub use caller::Caller;
use enc_proto::ErrorBody;

/// Most records one batch call names.
pub const MAX_BATCH: usize = 1000;

/// The `/records` routes.
pub fn router<S>(state: AppState) -> Router<S> {
    let body_limit = state.config.records.max_batch_body as usize;
    Router::new()
        .route("/records", post(create))
        .route("/records/sealed", post(put_sealed))
        .route("/records/batch", post(batch::create))
        .route("/records/batch/get", post(batch::read))
        .route("/records/batch/delete", post(batch::remove))
        .route("/records/{id}", get(read).delete(remove))
        .route("/records/{id}/sealed", get(get_sealed))
        .fallback(crate::http::not_found)
        .method_not_allowed_fallback(crate::http::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            caller::scope,
        ))
        .with_state(state)
}

/// A record to create: its id and data in hex (enc-server-go's client also sends an empty
/// `key`, which is ignored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewRecord {
    /// 1–128 bytes, in hex (case does not matter; stored in lower case).
    pub id: String,
    /// The plaintext, in hex.
    pub data: String,
}

/// A record created: the key is here only, never stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedRecord {
    pub id: String,
    /// 256 random bits, 64 hex digits.
    pub key: String,
    /// The data as sent (hex).
    pub data: String,
}

/// A record read with its key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenedRecord {
    pub id: String,
    pub key: String,
    /// The plaintext as text: in `GET /records/{id}` as enc-server-go answers (bytes that are
    /// not UTF-8 show as U+FFFD); in a batch, empty unless the plaintext is UTF-8.
    pub data: String,
    /// The plaintext exactly, in hex.
    pub data_hex: String,
}

/// A record sealed on the client (`enc record put`).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedRecord {
    pub id: String,
    /// `enc_crypto::record` bytes, base64.
    pub sealed: String,
    /// The check of the key's proof (SHA-256 hex); absent in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// Where a key or its proof may come from besides the header.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyQuery {
    /// The record's key (old clients; prefer the `X-Record-Key` header, which stays out of
    /// logs).
    pub key: Option<String>,
    /// Admins only, deleting: the user whose record it is.
    pub user: Option<String>,
}

/// The answer for a record that is not there or whose key is wrong: one and the same.
pub(crate) fn not_found() -> ApiError {
    ApiError::NotFound("record (no record with this id and key)")
}

/// A record id: 1–128 bytes in hex, in lower case.
pub(crate) fn record_id(id: &str) -> ApiResult<String> {
    enc_crypto::record::record_id(id).ok_or_else(|| {
        ApiError::BadRequest("id: 1 to 128 bytes in hex (an even number of hex digits)".into())
    })
}

/// A record key: 64 hex digits.
pub(crate) fn record_key(text: &str) -> ApiResult<RecordKey> {
    RecordKey::from_hex(text)
        .map_err(|_| ApiError::BadRequest("key: 64 hex digits (256 bits)".into()))
}

/// The key of a request: the `X-Record-Key` header, else `?key=`.
fn key_of(headers: &HeaderMap, q: &KeyQuery) -> ApiResult<Option<RecordKey>> {
    let header = headers
        .get("x-record-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest("X-Record-Key: not text".into()))
        })
        .transpose()?;
    header.or(q.key.as_deref()).map(record_key).transpose()
}

/// The proof of a request (`X-Record-Proof`: 64 hex digits), if it has one.
fn proof_of(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("x-record-proof") else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or_default().to_ascii_lowercase();
    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest("X-Record-Proof: 64 hex digits".into()));
    }
    Ok(Some(v))
}

/// The plaintext of a new record: hex, within the size limit.
pub(crate) fn plaintext(state: &AppState, id: &str, data: &str) -> ApiResult<Vec<u8>> {
    let max = state.config.records.max_size;
    if data.len() as u64 > max.saturating_mul(2) {
        return Err(ApiError::TooLarge(format!(
            "record {id}: larger than the server's limit of {max} bytes"
        )));
    }
    hex::decode(data).ok_or_else(|| ApiError::BadRequest(format!("record {id}: data must be hex")))
}

/// Seals a new record: its row (under the caller's pseudonym) and its key.
pub(crate) fn seal(c: &Caller, id: &str, plain: &[u8]) -> (RecordRow, RecordKey) {
    let key = RecordKey::generate();
    let sealed = seal_record(&key, id, plain);
    let row = RecordRow {
        owner: c.pseudonym.clone(),
        id: id.to_string(),
        size: sealed.len() as i64,
        sealed,
        key_check: key.check(id),
        created: now(),
    };
    (row, key)
}

/// Opens a record the store found by its id and key check (the check was the lookup's, so
/// an unknown id and a wrong key were refused alike): its plaintext, `None` if it does not
/// open (changed in the store).
pub(crate) fn open(row: Option<&RecordRow>, id: &str, key: &RecordKey) -> Option<Vec<u8>> {
    open_record(key, id, &row?.sealed).ok()
}

/// Stores new rows, or says why not (`Conflict` naming a taken id), and audits the outcome
/// for each record.
pub(crate) async fn store(state: &AppState, c: &Caller, rows: Vec<RecordRow>) -> ApiResult<()> {
    let quota = state
        .policy
        .quota_of(&c.user)
        .map(|q| q.min(i64::MAX as u64) as i64);
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let outcome = match state.meta.put_records(&c.user.id, rows, quota).await {
        Ok(None) => Ok(()),
        Ok(Some(id)) => Err(ApiError::Conflict(format!(
            "a record with id {id} exists (delete it with its key first)"
        ))),
        Err(e) => Err(e.into()),
    };
    let named: Vec<&str> = ids.iter().map(String::as_str).collect();
    c.audit(state, "record.put", &named, outcome_of(&outcome))
        .await;
    outcome
}

/// `POST /records`: seals `data` under a fresh key; the key is in this answer only.
#[utoipa::path(post, path = "/records", request_body = NewRecord,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 201, body = CreatedRecord), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)), tag = "records")]
pub async fn create(
    State(state): State<AppState>,
    c: Caller,
    ApiJson(req): ApiJson<NewRecord>,
) -> ApiResult<(StatusCode, Json<CreatedRecord>)> {
    c.may_see_plaintext(&state)?;
    c.may_write(&state)?;
    let id = record_id(&req.id)?;
    let plain = plaintext(&state, &id, &req.data)?;
    let (row, key) = seal(&c, &id, &plain);
    store(&state, &c, vec![row]).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedRecord {
            id,
            key: key.to_hex(),
            data: req.data,
        }),
    ))
}

/// `GET /records/{id}` with the key: the plaintext. 404 alike for an unknown id and a wrong
/// key.
#[utoipa::path(get, path = "/records/{id}", params(("id" = String, Path), KeyQuery),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 200, body = OpenedRecord), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    tag = "records")]
pub async fn read(
    State(state): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<KeyQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<OpenedRecord>> {
    c.may_see_plaintext(&state)?;
    let id = record_id(&id)?;
    let key = key_of(&headers, &q)?
        .ok_or_else(|| ApiError::BadRequest("the record's key is needed (X-Record-Key)".into()))?;
    let found = state
        .meta
        .records(&c.pseudonym, &[(id.clone(), key.check(&id))])
        .await?;
    let opened = open(found.first(), &id, &key);
    let outcome = if opened.is_some() { "ok" } else { "not found" };
    c.audit(&state, "record.get", &[&id], outcome).await;
    let plain = opened.ok_or_else(not_found)?;
    Ok(Json(OpenedRecord {
        id,
        key: key.to_hex(),
        data: String::from_utf8_lossy(&plain).into_owned(),
        data_hex: hex::encode(&plain),
    }))
}

/// `DELETE /records/{id}`: with the key (`X-Record-Key` or `?key=`) or its proof
/// (`X-Record-Proof`); an admin may name the user instead (`?user=NAME`). 202 once deleted;
/// 404 alike for an unknown id and a wrong key.
#[utoipa::path(delete, path = "/records/{id}", params(("id" = String, Path), KeyQuery),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 202, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    tag = "records")]
pub async fn remove(
    State(state): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<KeyQuery>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    c.may_write(&state)?;
    let id = record_id(&id)?;
    if let Some(name) = &q.user {
        return batch::remove_as_admin(&state, &c, name, &id).await;
    }
    let proof = match (proof_of(&headers)?, key_of(&headers, &q)?) {
        (Some(p), _) => p,
        (None, Some(key)) => {
            c.may_see_plaintext(&state)?;
            key.proof(&id)
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "deleting a record needs its key (X-Record-Key) or its proof (X-Record-Proof)"
                    .into(),
            ));
        }
    };
    let deleted = state
        .meta
        .delete_records(
            &c.user.id,
            &c.pseudonym,
            &[(id.clone(), Some(check_of_proof(&proof)))],
        )
        .await?;
    let outcome = if deleted.is_empty() {
        "not found"
    } else {
        "ok"
    };
    c.audit(&state, "record.delete", &[&id], outcome).await;
    if deleted.is_empty() {
        return Err(not_found());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "deleted": true })),
    ))
}

/// `POST /records/sealed`: a record sealed on the client (`enc record put`), with the check
/// of its key's proof. The server never sees its plaintext or key.
#[utoipa::path(post, path = "/records/sealed", request_body = SealedRecord,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 201, body = SealedRecord), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    tag = "records")]
pub async fn put_sealed(
    State(state): State<AppState>,
    c: Caller,
    ApiJson(req): ApiJson<SealedRecord>,
) -> ApiResult<(StatusCode, Json<SealedRecord>)> {
    c.may_write(&state)?;
    let id = record_id(&req.id)?;
    let sealed = enc_crypto::unb64(&req.sealed)
        .map_err(|_| ApiError::BadRequest("sealed: base64".into()))?;
    let max = state.config.records.max_size as usize + enc_crypto::record::RECORD_OVERHEAD;
    if sealed.len() > max {
        return Err(ApiError::TooLarge(format!(
            "record {id}: larger than the server's limit of {} bytes",
            state.config.records.max_size
        )));
    }
    if sealed.len() < enc_crypto::record::RECORD_OVERHEAD
        || sealed[0] != enc_crypto::record::RECORD_VERSION
    {
        return Err(ApiError::BadRequest(
            "sealed: not a sealed record of a version this server knows".into(),
        ));
    }
    let check = req
        .check
        .as_deref()
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ApiError::BadRequest("check: 64 hex digits".into()))?
        .to_ascii_lowercase();
    let row = RecordRow {
        owner: c.pseudonym.clone(),
        id: id.clone(),
        size: sealed.len() as i64,
        sealed,
        key_check: check,
        created: now(),
    };
    store(&state, &c, vec![row]).await?;
    Ok((
        StatusCode::CREATED,
        Json(SealedRecord {
            id,
            sealed: req.sealed,
            check: None,
        }),
    ))
}

/// `GET /records/{id}/sealed` with `X-Record-Proof`: the sealed bytes, for the client to
/// open. 404 alike for an unknown id and a wrong proof.
#[utoipa::path(get, path = "/records/{id}/sealed", params(("id" = String, Path)),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 200, body = SealedRecord), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)), tag = "records")]
pub async fn get_sealed(
    State(state): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<SealedRecord>> {
    let id = record_id(&id)?;
    let proof = proof_of(&headers)?.ok_or_else(|| {
        ApiError::BadRequest("reading a sealed record needs its proof (X-Record-Proof)".into())
    })?;
    let found = state
        .meta
        .records(&c.pseudonym, &[(id.clone(), check_of_proof(&proof))])
        .await?;
    let ok = !found.is_empty();
    c.audit(
        &state,
        "record.get",
        &[&id],
        if ok { "ok" } else { "not found" },
    )
    .await;
    if !ok {
        return Err(not_found());
    }
    Ok(Json(SealedRecord {
        id,
        sealed: enc_crypto::b64(&found[0].sealed),
        check: None,
    }))
}

/// An outcome for the audit log.
pub(crate) fn outcome_of<T>(r: &ApiResult<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(ApiError::Conflict(_)) => "exists",
        Err(ApiError::QuotaExceeded(_)) => "quota",
        Err(_) => "failed",
    }
}
