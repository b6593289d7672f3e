//! The server's housekeeping (system scope): pruning what has expired and the queue of blobs
//! to collect. A blob is queued in the transaction that unreferenced it and deleted only
//! after that committed.

use super::{Scope, SqlMeta, charge, q, queue_at, queue_selected, unix_now};
use crate::*;

/// Which uploads have expired: completed ones older than the first `?`, any older than the
/// second (one still streaming after that is a crash's leftover).
const EXPIRED: &str = "((size >= 0 AND created < ?) OR created < ?)";

#[async_trait::async_trait]
impl Collection for SqlMeta {
    async fn prune(&self, now: i64, idle_secs: i64) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        tx.execute(q("DELETE FROM sessions WHERE last_seen + ? < ?").binds((idle_secs, now)))
            .await?;
        tx.execute(
            q("DELETE FROM throttle WHERE updated < ? AND next_allowed < ?")
                .binds((now - 86_400, now)),
        )
        .await?;
        tx.execute(q("DELETE FROM rate_events WHERE at < ?").bind(now - 86_400))
            .await?;
        tx.execute(q("DELETE FROM ssh_challenges WHERE expires < ?").bind(now))
            .await?;
        tx.commit().await
    }

    async fn expire_uploads(&self, completed_before: i64, before: i64) -> Result<u64> {
        let mut tx = self.db.write(Scope::System).await?;
        let charges: Vec<(String, i64)> = tx
            .all(
                q("SELECT v.owner_id, CAST(SUM(u.charged) AS BIGINT) \
     FROM uploads u JOIN vaults v ON v.id = u.vault_id \
     WHERE ((u.size >= 0 AND u.created < ?) OR u.created < ?) AND u.charged > 0 \
     GROUP BY v.owner_id")
                .binds((completed_before, before)),
            )
            .await?;
        for (owner, bytes) in charges {
            charge(&mut tx, &owner, -bytes, None).await?;
        }
        let from = format!("blob_key FROM uploads WHERE {}", EXPIRED);
        queue_selected(&mut tx, unix_now(), &from, (completed_before, before)).await?;
        let done = tx
            .execute(
                q(format!("DELETE FROM uploads WHERE {}", EXPIRED))
                    .binds((completed_before, before)),
            )
            .await?;
        // A Mercury reservation's blob is already queued (for the end of its reservation).
        tx.execute(
            q("DELETE FROM mercury_files WHERE state = 'pending' AND created < ?").bind(before),
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn gc_pending(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        let mut tx = self.db.read(Scope::System).await?;
        let keys: Vec<(String,)> = tx
            .all(
                q("SELECT blob_key FROM blob_gc WHERE queued <= ? ORDER BY queued LIMIT ?")
                    .binds((now, limit)),
            )
            .await?;
        Ok(keys.into_iter().map(|(k,)| k).collect())
    }

    async fn gc_retry_later(&self, keys: &[String], now: i64) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        for k in keys {
            tx.execute(q("UPDATE blob_gc SET queued = ? WHERE blob_key = ?").binds((now, k)))
                .await?;
        }
        tx.commit().await
    }

    async fn queue_blob(&self, key: &str, at: i64) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        queue_at(&mut tx, key, at).await?;
        tx.commit().await
    }

    async fn gc_done(&self, keys: &[String]) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        for k in keys {
            tx.execute(q("DELETE FROM blob_gc WHERE blob_key = ?").bind(k))
                .await?;
        }
        tx.commit().await
    }
}
