//! Mercury's archive spaces. They run in the caller's scope: an enc user's own space, or the
//! server's when the connection authenticated with Mercury's preshared key or client list.

use super::{Scope, SqlMeta, charge, q, queue_at, unix_now};
use crate::*;

const FILE_COLS: &str = "name, size, blob_key, created";

const USED: &str = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM mercury_files \
    WHERE space = ? AND state = 'stored'";

#[async_trait::async_trait]
impl Mercury for SqlMeta {
    async fn mercury_reserve(&self, r: MercuryReservation) -> Result<Option<String>> {
        let mut tx = self.db.write(Scope::Caller).await?;
        let mut chosen = None;
        for name in &r.candidates {
            let done = tx
                .execute(
                    q("INSERT INTO mercury_files \
                       (space, name, state, size, blob_key, user_id, created) \
                       VALUES (?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (space, name) DO NOTHING")
                    .binds((&r.space, name, &r.blob_key, &r.user_id, r.now)),
                )
                .await?;
            if done == 1 {
                chosen = Some(name.clone());
                break;
            }
        }
        if chosen.is_some() {
            queue_at(&mut tx, &r.blob_key, r.until).await?;
        }
        tx.commit().await?;
        Ok(chosen)
    }

    async fn mercury_commit(&self, c: MercuryCommit) -> Result<()> {
        let mut tx = self.db.write(Scope::Caller).await?;
        let done = tx
            .execute(
                q(
                    "UPDATE mercury_files SET state = 'stored', size = ?, created = ? \
                   WHERE space = ? AND name = ? AND blob_key = ? AND state = 'pending'",
                )
                .binds((c.size, c.now, &c.space, &c.name, &c.blob_key)),
            )
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some((user_id, quota)) = &c.user {
            charge(&mut tx, user_id, c.size, *quota).await?;
        }
        if let Some(limit) = c.space_limit {
            // Two replicas' commits to one space must not both fit under its limit.
            tx.lock(&format!("mercury:{}", c.space)).await?;
            let used: i64 = tx.scalar(q(USED).bind(&c.space)).await?.unwrap_or(0);
            if used > limit {
                return Err(StoreError::QuotaExceeded);
            }
        }
        if !super::still_reserved(&mut tx, &c.blob_key).await? {
            return Err(StoreError::Conflict(
                "the upload outlasted its reservation (limits.reservation); send it again",
            ));
        }
        tx.execute(q("DELETE FROM blob_gc WHERE blob_key = ?").bind(&c.blob_key))
            .await?;
        tx.commit().await
    }

    async fn mercury_abort(&self, space: &str, name: &str) -> Result<()> {
        let mut tx = self.db.write(Scope::Caller).await?;
        let keys: Vec<(String,)> = tx
            .returning(
                q(
                    "DELETE FROM mercury_files WHERE space = ? AND name = ? AND state = 'pending' \
                   RETURNING blob_key",
                )
                .binds((space, name)),
            )
            .await?;
        for (key,) in keys {
            queue_at(&mut tx, &key, unix_now()).await?;
        }
        tx.commit().await
    }

    async fn mercury_files(&self, space: &str) -> Result<Vec<MercuryFileRow>> {
        self.db
            .read_all(
                Scope::Caller,
                q(format!(
                    "SELECT {FILE_COLS} FROM mercury_files \
                 WHERE space = ? AND state = 'stored' ORDER BY name"
                ))
                .bind(space),
            )
            .await
    }

    async fn mercury_file(&self, space: &str, name: &str) -> Result<Option<MercuryFileRow>> {
        self.db
            .read_opt(
                Scope::Caller,
                q(format!(
                    "SELECT {FILE_COLS} FROM mercury_files \
                 WHERE space = ? AND name = ? AND state = 'stored'"
                ))
                .binds((space, name)),
            )
            .await
    }

    async fn mercury_usage(&self, space: &str) -> Result<i64> {
        let mut tx = self.db.read(Scope::Caller).await?;
        Ok(tx.scalar(q(USED).bind(space)).await?.unwrap_or(0))
    }
}
