//! The server's housekeeping (system scope): pruning what has expired and the queue of blobs
//! to collect. A blob is queued in the transaction that unreferenced it and deleted only
//! after that committed.

use super::{Scope, SqlMeta, charge, q, queue_at, unix_now};
use crate::*;

/// Which uploads have expired: completed ones older than the first `?`, any older than the
/// second (one still streaming after that is a crash's leftover).
const EXPIRED: &str = "((u.size >= 0 AND u.created < ?) OR u.created < ?)";

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
        // A chain an erasure kept is needed while a commit it signed is (in a vault that
        // may be deleted since).
        tx.execute(q("DELETE FROM kept_links WHERE NOT EXISTS \
             (SELECT 1 FROM tree_commits c WHERE c.signer_key = kept_links.account_key)"))
            .await?;
        tx.execute(q("DELETE FROM ssh_challenges WHERE expires < ?").bind(now))
            .await?;
        tx.commit().await
    }

    async fn expire_uploads(&self, completed_before: i64, before: i64) -> Result<u64> {
        let mut tx = self.db.write(Scope::System).await?;
        // Row-locked first (on PostgreSQL), so an upload a commit is claiming at this moment
        // is either claimed (and skipped here once that commit is in) or expired (and the
        // commit finds it gone), never both: its blob queued while a version references it.
        let lock = tx.locking("FOR UPDATE OF u");
        let expired: Vec<(String, String, String, i64)> = tx
            .all(
                q(format!(
                    "SELECT u.id, u.blob_key, v.owner_id, u.charged \
                     FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE {EXPIRED} {lock}"
                ))
                .binds((completed_before, before)),
            )
            .await?;
        let now = unix_now();
        for (id, blob_key, owner, charged) in &expired {
            charge(&mut tx, owner, -charged, None).await?;
            queue_at(&mut tx, blob_key, now).await?;
            tx.execute(q("DELETE FROM uploads WHERE id = ?").bind(id))
                .await?;
        }
        let done = expired.len() as u64;
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
