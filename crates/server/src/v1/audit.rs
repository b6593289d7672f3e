//! `GET /v1/audit`: a user's own entries, or (with `read_all_audit`) the whole chain.

use axum::Json;
use axum::extract::{Query, State};
use enc_crypto::audit::{AuditFields, ChainEntry, Sealing, verify_chain};
use enc_proto::{AuditEntry, AuditResponse};
use enc_store::AuditRow;
use serde::Deserialize;

use crate::http::error::ApiResult;
use crate::rules::policy::Permission;
use crate::state::AppState;
use crate::v1::auth::Session;

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Every user's entries (needs `read_all_audit`); otherwise only the caller's.
    #[serde(default)]
    pub all: bool,
}

/// A version-2 entry's commitments (all three, or it is taken as version 1).
fn sealing_of(r: &AuditRow) -> Option<Sealing<'_>> {
    Sealing::stored(
        r.salt.as_deref(),
        r.actor_commit.as_deref(),
        r.target_commit.as_deref(),
        r.client_commit.as_deref(),
    )
}

/// Whether each entry's hash is right and chains to the one before, from the genesis.
pub fn chain_intact(rows: &[AuditRow]) -> bool {
    verify_chain(
        rows.iter().map(|r| ChainEntry {
            fields: AuditFields {
                seq: r.seq,
                ts: r.ts,
                actor: &r.actor,
                action: &r.action,
                target: &r.target,
                outcome: &r.outcome,
                client: &r.client,
                sealing: sealing_of(r),
            },
            prev_hash: &r.prev_hash,
            hash: &r.hash,
        }),
        true,
    )
    .is_ok()
}

/// `GET /v1/audit`.
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery),
    responses((status = 200, body = AuditResponse)), tag = "audit")]
pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditResponse>> {
    let admin = state.policy.allows(&s.user.role, Permission::ReadAllAudit);
    let (rows, verified) = if q.all && admin {
        let rows = state.meta.audit_list(None).await?;
        let ok = chain_intact(&rows);
        (rows, Some(ok))
    } else if q.all {
        return Err(crate::http::error::ApiError::Forbidden(
            "reading every user's audit entries needs read_all_audit".into(),
        ));
    } else {
        (state.meta.audit_list(Some(&s.user.id)).await?, None)
    };
    Ok(Json(AuditResponse {
        entries: rows
            .into_iter()
            .map(|r| AuditEntry {
                seq: r.seq,
                ts: r.ts,
                actor: r.actor,
                action: r.action,
                target: r.target,
                outcome: r.outcome,
                client: r.client,
                prev_hash: r.prev_hash,
                hash: r.hash,
                salt: r.salt,
                actor_commit: r.actor_commit,
                target_commit: r.target_commit,
                client_commit: r.client_commit,
            })
            .collect(),
        chain_verified: verified,
    }))
}
