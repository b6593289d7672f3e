//! Records (tenant scope, under the owner's pseudonym): sealed values whose keys only their
//! callers keep. A user's records are stored under the HMAC pseudonym of their id (the
//! server's pepper is outside this database), and charged to the user's usage.

use super::{Scope, SqlMeta, charge, q};
use crate::*;

const RECORD_COLS: &str = "owner, id, sealed, key_check, size, created";

#[async_trait::async_trait]
impl Records for SqlMeta {
    async fn put_records(
        &self,
        user_id: &str,
        rows: Vec<RecordRow>,
        quota: Option<i64>,
    ) -> Result<Option<String>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let mut tx = self.db.write(Scope::Tenant).await?;
        // An id taken (before, or by a concurrent call on PostgreSQL) is not inserted again:
        // then the whole call is refused, naming it, and its transaction dropped.
        let mut inserted = std::collections::HashSet::with_capacity(rows.len());
        for chunk in rows.chunks(64) {
            let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut stmt = q(format!(
                "INSERT INTO records ({RECORD_COLS}) VALUES {values} \
                 ON CONFLICT DO NOTHING RETURNING id"
            ));
            for r in chunk {
                stmt = stmt.binds((&r.owner, &r.id, &r.sealed, &r.key_check, r.size, r.created));
            }
            inserted.extend(
                tx.returning::<(String,)>(stmt)
                    .await?
                    .into_iter()
                    .map(|(id,)| id),
            );
        }
        if let Some(r) = rows.iter().find(|r| !inserted.contains(&r.id)) {
            return Ok(Some(r.id.clone()));
        }
        // The charge last: a refusal drops the transaction, so nothing of the call stays.
        let total: i64 = rows.iter().map(|r| r.size).sum();
        charge(&mut tx, user_id, total, quota).await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn records(&self, owner: &str, wanted: &[(String, String)]) -> Result<Vec<RecordRow>> {
        let mut tx = self.db.read(Scope::Tenant).await?;
        let mut out = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(400) {
            let pairs = vec!["(?, ?)"; chunk.len()].join(", ");
            let mut stmt = q(format!(
                "SELECT {RECORD_COLS} FROM records \
                 WHERE owner = ? AND (id, key_check) IN (VALUES {pairs})"
            ))
            .bind(owner);
            for (id, check) in chunk {
                stmt = stmt.binds((id, check));
            }
            out.extend(tx.all::<RecordRow>(stmt).await?);
        }
        Ok(out)
    }

    async fn erase_records(&self, owner: &str) -> Result<u64> {
        let mut tx = self.db.write(Scope::System).await?;
        let n = tx
            .execute(q("DELETE FROM records WHERE owner = ?").bind(owner))
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn delete_records(
        &self,
        user_id: &str,
        owner: &str,
        targets: &[(String, Option<String>)],
    ) -> Result<Vec<String>> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let mut deleted = Vec::new();
        let mut freed = 0i64;
        let checked: Vec<(&String, &String)> = targets
            .iter()
            .filter_map(|(id, check)| check.as_ref().map(|c| (id, c)))
            .collect();
        let any: Vec<&String> = targets
            .iter()
            .filter(|(_, check)| check.is_none())
            .map(|(id, _)| id)
            .collect();
        let mut stmts = Vec::new();
        for chunk in checked.chunks(400) {
            let pairs = vec!["(?, ?)"; chunk.len()].join(", ");
            let mut stmt = q(format!(
                "DELETE FROM records WHERE owner = ? AND (id, key_check) IN (VALUES {pairs}) \
                 RETURNING id, size"
            ))
            .bind(owner);
            for (id, check) in chunk {
                stmt = stmt.binds((*id, *check));
            }
            stmts.push(stmt);
        }
        for chunk in any.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = q(format!(
                "DELETE FROM records WHERE owner = ? AND id IN ({marks}) RETURNING id, size"
            ))
            .bind(owner);
            for id in chunk {
                stmt = stmt.bind(*id);
            }
            stmts.push(stmt);
        }
        for stmt in stmts {
            for (id, size) in tx.returning::<(String, i64)>(stmt).await? {
                freed += size;
                deleted.push(id);
            }
        }
        if freed > 0 {
            charge(&mut tx, user_id, -freed, None).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
