//! The audit log: one hash chain for the whole deployment (system scope), appended strictly
//! in order; on PostgreSQL appends from every replica take turns under one advisory lock.

use enc_crypto::audit::{AuditFields, GENESIS, audit_hash};

use super::{Scope, SqlMeta, q};
use crate::*;

const AUDIT_COLS: &str = "seq, ts, actor, action, target, outcome, client, prev_hash, hash";

#[async_trait::async_trait]
impl Audit for SqlMeta {
    async fn audit_append(&self, e: NewAudit) -> Result<AuditRow> {
        let mut tx = self.db.write(Scope::System).await?;
        append_many_in(&mut tx, std::slice::from_ref(&e)).await?;
        // Still under the chain's lock: the last entry is this one.
        let row = tx
            .one(q(format!(
                "SELECT {AUDIT_COLS} FROM audit ORDER BY seq DESC LIMIT 1"
            )))
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn audit_list(&self, actor_id: Option<&str>) -> Result<Vec<AuditRow>> {
        let mut tx = self.db.read(Scope::System).await?;
        let query = match actor_id {
            Some(id) => q(format!(
                "SELECT {AUDIT_COLS} FROM audit WHERE actor_id = ? ORDER BY seq"
            ))
            .bind(id),
            None => q(format!("SELECT {AUDIT_COLS} FROM audit ORDER BY seq")),
        };
        tx.all(query).await
    }
}

/// Appends entries to the chain in order, inside a transaction of the caller's (in system
/// scope: the chain's end must be seen whoever's it is), under the chain's lock: one read of
/// the chain's end and one insert per 64 entries.
pub(crate) async fn append_many_in(tx: &mut super::Tx, entries: &[NewAudit]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    tx.lock("audit").await?;
    let last: Option<(i64, String)> = tx
        .opt(q("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
        .await?;
    let (mut seq, mut prev_hash) = match last {
        Some((s, h)) => (s, h),
        None => (0, GENESIS.to_string()),
    };
    for chunk in entries.chunks(64) {
        let marks = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut stmt = q(format!(
            "INSERT INTO audit (seq, ts, actor, actor_id, action, target, outcome, client, \
             prev_hash, hash) VALUES {marks}"
        ));
        for e in chunk {
            seq += 1;
            let hash = audit_hash(
                &prev_hash,
                &AuditFields {
                    seq,
                    ts: e.ts,
                    actor: &e.actor,
                    action: &e.action,
                    target: &e.target,
                    outcome: &e.outcome,
                    client: &e.client,
                },
            );
            stmt = stmt.binds((
                seq,
                e.ts,
                &e.actor,
                &e.actor_id,
                &e.action,
                &e.target,
                &e.outcome,
                &e.client,
                &prev_hash,
                &hash,
            ));
            prev_hash = hash;
        }
        tx.execute(stmt).await?;
    }
    Ok(())
}
