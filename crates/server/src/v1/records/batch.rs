//! Batch calls of `/records` (up to [`MAX_BATCH`] records in one call, one transaction) and
//! an admin's deletion.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use enc_crypto::record::check_of_proof;
use serde::{Deserialize, Serialize};

use super::{
    Caller, CreatedRecord, MAX_BATCH, NewRecord, OpenedRecord, open, plaintext, record_id,
    record_key, seal, store,
};
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::state::AppState;
use enc_proto::ErrorBody;

/// Records to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecords {
    pub records: Vec<NewRecord>,
}

/// Records created, in the order asked; each key is here only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedRecords {
    pub records: Vec<CreatedRecord>,
}

/// A record named with its key (or, to delete, its proof).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    pub id: String,
    /// The record's key (64 hex digits).
    #[serde(default)]
    pub key: Option<String>,
    /// Deleting: the proof of the key instead of the key (64 hex digits).
    #[serde(default)]
    pub proof: Option<String>,
}

/// Records to read or delete.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRefs {
    pub records: Vec<RecordRef>,
}

/// One record read: its plaintext, or `error` ("not found": an unknown id and a wrong key
/// alike).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadResult {
    #[serde(flatten)]
    pub record: Option<OpenedRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Records read, in the order asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadResults {
    pub records: Vec<ReadResult>,
}

/// One record's deletion: `false` for an unknown id and a wrong key alike.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// Deletions, in the order asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedRecords {
    pub records: Vec<Deleted>,
}

fn check_count(n: usize) -> ApiResult<()> {
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "records: 1 to {MAX_BATCH} in one call"
        )));
    }
    Ok(())
}

/// Ids valid and distinct.
fn ids_of<'a>(ids: impl Iterator<Item = &'a str>) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let id = record_id(id)?;
        if !seen.insert(id.clone()) {
            return Err(ApiError::BadRequest(format!(
                "record {id} is named twice in this call"
            )));
        }
        out.push(id);
    }
    Ok(out)
}

/// `POST /records/batch`: creates every record or none (a taken id refuses the call).
#[utoipa::path(post, path = "/records/batch", request_body = NewRecords,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 201, body = CreatedRecords), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    tag = "records")]
pub async fn create(
    State(state): State<AppState>,
    c: Caller,
    ApiJson(req): ApiJson<NewRecords>,
) -> ApiResult<(StatusCode, Json<CreatedRecords>)> {
    c.may_see_plaintext(&state)?;
    c.may_write(&state)?;
    check_count(req.records.len())?;
    let ids = ids_of(req.records.iter().map(|r| r.id.as_str()))?;
    let mut rows = Vec::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for (id, r) in ids.iter().zip(req.records) {
        let plain = plaintext(&state, id, &r.data)?;
        let (row, key) = seal(&c, id, &plain);
        rows.push(row);
        out.push(CreatedRecord {
            id: id.clone(),
            key: key.to_hex(),
            data: r.data,
        });
    }
    store(&state, &c, rows).await?;
    Ok((StatusCode::CREATED, Json(CreatedRecords { records: out })))
}

/// `POST /records/batch/get`: each record opened with its key, or "not found".
#[utoipa::path(post, path = "/records/batch/get", request_body = RecordRefs,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 200, body = ReadResults), (status = 400, body = ErrorBody)),
    tag = "records")]
pub async fn read(
    State(state): State<AppState>,
    c: Caller,
    ApiJson(req): ApiJson<RecordRefs>,
) -> ApiResult<Json<ReadResults>> {
    c.may_see_plaintext(&state)?;
    check_count(req.records.len())?;
    let ids = ids_of(req.records.iter().map(|r| r.id.as_str()))?;
    let keys = req
        .records
        .iter()
        .map(|r| {
            let k = r.key.as_deref().ok_or_else(|| {
                ApiError::BadRequest(format!("record {}: its key is needed", r.id))
            })?;
            record_key(k)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let wanted: Vec<(String, String)> = ids
        .iter()
        .zip(&keys)
        .map(|(id, key)| (id.clone(), key.check(id)))
        .collect();
    let found = state.meta.records(&c.pseudonym, &wanted).await?;
    // The answer is bounded as the request is: at most a quarter of the largest body in
    // plaintext (it goes out twice, as text and as hex).
    let total: i64 = found.iter().map(|r| r.size).sum();
    let cap = state.config.records.max_batch_body / 4;
    if total.max(0) as u64 > cap {
        return Err(ApiError::TooLarge(format!(
            "these records hold more than {cap} bytes: ask for fewer in one call"
        )));
    }
    let by_id: std::collections::HashMap<&str, &enc_store::RecordRow> =
        found.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out = Vec::with_capacity(ids.len());
    let mut outcomes = Vec::with_capacity(ids.len());
    for (id, key) in ids.iter().zip(&keys) {
        match open(by_id.get(id.as_str()).copied(), id, key) {
            Some(plain) => {
                outcomes.push((id.as_str(), "ok"));
                out.push(ReadResult {
                    record: Some(OpenedRecord {
                        id: id.clone(),
                        key: key.to_hex(),
                        // Text only when it is text (enc's own call: `data_hex` is exact).
                        data: String::from_utf8(plain.clone()).unwrap_or_default(),
                        data_hex: super::hex::encode(&plain),
                    }),
                    id: None,
                    error: None,
                });
            }
            None => {
                outcomes.push((id.as_str(), "not found"));
                out.push(ReadResult {
                    record: None,
                    id: Some(id.clone()),
                    error: Some("not found".into()),
                });
            }
        }
    }
    c.audit_each(&state, "record.get", &outcomes).await;
    Ok(Json(ReadResults { records: out }))
}

/// `POST /records/batch/delete`: each record deleted with its key or proof.
#[utoipa::path(post, path = "/records/batch/delete", request_body = RecordRefs,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 200, body = DeletedRecords), (status = 400, body = ErrorBody)),
    tag = "records")]
pub async fn remove(
    State(state): State<AppState>,
    c: Caller,
    ApiJson(req): ApiJson<RecordRefs>,
) -> ApiResult<Json<DeletedRecords>> {
    c.may_write(&state)?;
    check_count(req.records.len())?;
    let ids = ids_of(req.records.iter().map(|r| r.id.as_str()))?;
    let mut targets = Vec::with_capacity(ids.len());
    for (id, r) in ids.iter().zip(&req.records) {
        let proof = match (&r.proof, &r.key) {
            (Some(p), _) if p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit()) => {
                p.to_ascii_lowercase()
            }
            (Some(_), _) => {
                return Err(ApiError::BadRequest(format!(
                    "record {id}: proof must be 64 hex digits"
                )));
            }
            (None, Some(k)) => {
                c.may_see_plaintext(&state)?;
                record_key(k)?.proof(id)
            }
            (None, None) => {
                return Err(ApiError::BadRequest(format!(
                    "record {id}: its key or proof is needed"
                )));
            }
        };
        targets.push((id.clone(), Some(check_of_proof(&proof))));
    }
    let deleted = state
        .meta
        .delete_records(&c.user.id, &c.pseudonym, &targets)
        .await?;
    let gone: std::collections::HashSet<&str> = deleted.iter().map(String::as_str).collect();
    let outcomes: Vec<(&str, &str)> = ids
        .iter()
        .map(|id| {
            let id = id.as_str();
            (id, if gone.contains(id) { "ok" } else { "not found" })
        })
        .collect();
    c.audit_each(&state, "record.delete", &outcomes).await;
    Ok(Json(DeletedRecords {
        records: ids
            .iter()
            .map(|id| Deleted {
                deleted: gone.contains(id.as_str()),
                id: id.clone(),
            })
            .collect(),
    }))
}

/// `DELETE /records/{id}?user=NAME` by an admin: without the key, under that user's
/// pseudonym; audited with the admin's name.
pub async fn remove_as_admin(
    state: &AppState,
    c: &Caller,
    name: &str,
    id: &str,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    if !c.is_admin(state) {
        return Err(ApiError::Forbidden(
            "only an admin deletes another user's record without its key".into(),
        ));
    }
    let Some(pepper) = &state.records_pepper else {
        return Err(ApiError::NotConfigured("records have no pepper".into()));
    };
    let user = state
        .meta
        .user_by_name(name)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let owner = pepper.pseudonym(&user.id);
    let targets = [(id.to_string(), None)];
    let deleted = enc_store::tenant::scope(
        user.id.clone(),
        enc_store::tenant::pseudonymous(owner.clone(), async {
            state.meta.delete_records(&user.id, &owner, &targets).await
        }),
    )
    .await?;
    let outcome = if deleted.is_empty() {
        "not found"
    } else {
        "ok"
    };
    state
        .audit(
            &c.user.name,
            Some(&c.user.id),
            "record.delete",
            &format!("record {id} of {owner} (by an admin)"),
            outcome,
            &c.client,
        )
        .await;
    if deleted.is_empty() {
        return Err(super::not_found());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "deleted": true })),
    ))
}
