//! restic repositories and their files (tenant scope, except a batch's write: a batch holds
//! files of many users, each charged to its own owner, so it runs in the system scope).
//! A batch's algorithm is in `restic_batch.rs`.

use super::{Scope, SqlMeta, Tx, charge, q, queue_at, queue_selected, unix_now};
use crate::*;

const REPO_COLS: &str = "r.id, r.user_id, r.name, r.created, \
    (SELECT COUNT(*) FROM restic_objects o WHERE o.repo_id = r.id) AS objects, \
    (SELECT CAST(COALESCE(SUM(o.size), 0) AS BIGINT) FROM restic_objects o \
        WHERE o.repo_id = r.id) AS bytes";

/// Queues many blob keys for collection, a statement per 256 (one round trip each instead of
/// one per key). A key given twice keeps its earliest time.
async fn queue_many(tx: &mut Tx, keys: &[(String, i64)]) -> Result<()> {
    let mut unique: std::collections::BTreeMap<&str, i64> = Default::default();
    for (key, at) in keys {
        let e = unique.entry(key.as_str()).or_insert(*at);
        *e = (*e).min(*at);
    }
    let unique: Vec<_> = unique.into_iter().collect();
    for chunk in unique.chunks(256) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let mut query = q(format!(
            "INSERT INTO blob_gc (blob_key, queued) VALUES {values} \
             ON CONFLICT (blob_key) DO UPDATE SET queued = CASE \
             WHEN excluded.queued < blob_gc.queued THEN excluded.queued ELSE blob_gc.queued END"
        ));
        for (key, at) in chunk {
            query = query.bind(*key).bind(*at);
        }
        tx.execute(query).await?;
    }
    Ok(())
}

/// Takes blob keys off the collection queue (their files are recorded), a statement per 256.
async fn unqueue_many(tx: &mut Tx, keys: &[&str]) -> Result<()> {
    for chunk in keys.chunks(256) {
        let list = vec!["?"; chunk.len()].join(", ");
        let mut query = q(format!("DELETE FROM blob_gc WHERE blob_key IN ({list})"));
        for key in chunk {
            query = query.bind(*key);
        }
        tx.execute(query).await?;
    }
    Ok(())
}

/// For each file, whether it has a blob whose reservation is gone or due: the collector
/// claims only keys whose time has come (`gc_pending`), so a reservation still in the future
/// keeps its blob.
async fn lapsed(tx: &mut Tx, puts: &[NewResticObject]) -> Result<Vec<bool>> {
    let keys: Vec<&str> = puts
        .iter()
        .filter(|o| o.data.is_none())
        .map(|o| o.blob_key.as_str())
        .collect();
    let now = unix_now();
    let lock = tx.locking("FOR UPDATE");
    let mut reserved = std::collections::HashSet::new();
    for chunk in keys.chunks(256) {
        let list = vec!["?"; chunk.len()].join(", ");
        // Locked until the commit, so the collector cannot claim one in between.
        let mut query = q(format!(
            "SELECT blob_key FROM blob_gc WHERE queued > ? AND blob_key IN ({list}) {lock}"
        ))
        .bind(now);
        for key in chunk {
            query = query.bind(*key);
        }
        let rows: Vec<(String,)> = tx.all(query).await?;
        reserved.extend(rows.into_iter().map(|(k,)| k));
    }
    Ok(puts
        .iter()
        .map(|o| o.data.is_none() && !reserved.contains(&o.blob_key))
        .collect())
}

#[async_trait::async_trait]
impl Restic for SqlMeta {
    async fn restic_repo(&self, user_id: &str, name: &str) -> Result<Option<ResticRepoRow>> {
        self.db
            .read_opt(
                Scope::Tenant,
                q(
                    "SELECT id, user_id, name, created, CAST(0 AS BIGINT) AS objects, \
               CAST(0 AS BIGINT) AS bytes FROM restic_repos WHERE user_id = ? AND name = ?",
                )
                .binds((user_id, name)),
            )
            .await
    }

    async fn create_restic_repo(
        &self,
        id: &str,
        user_id: &str,
        name: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(self
            .db
            .write_one(
                Scope::Tenant,
                q(
                    "INSERT INTO restic_repos (id, user_id, name, created) VALUES (?, ?, ?, ?) \
                   ON CONFLICT (user_id, name) DO NOTHING",
                )
                .binds((id, user_id, name, now)),
            )
            .await?
            > 0)
    }

    async fn restic_repos(&self, user_id: &str) -> Result<Vec<ResticRepoRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {REPO_COLS} FROM restic_repos r WHERE r.user_id = ? ORDER BY r.name"
                ))
                .bind(user_id),
            )
            .await
    }

    async fn delete_restic_repo(&self, repo_id: &str) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let owner: Option<(String, i64)> = tx
            .opt(
                q(
                    "SELECT r.user_id, (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) \
                   FROM restic_objects WHERE repo_id = r.id) FROM restic_repos r WHERE r.id = ?",
                )
                .bind(repo_id),
            )
            .await?;
        let Some((owner, bytes)) = owner else {
            return Err(StoreError::NotFound);
        };
        let from = "blob_key FROM restic_objects WHERE repo_id = ? AND data IS NULL";
        queue_selected(&mut tx, unix_now(), from, (repo_id,)).await?;
        tx.execute(q("DELETE FROM restic_repos WHERE id = ?").bind(repo_id))
            .await?;
        charge(&mut tx, &owner, -bytes, None).await?;
        tx.commit().await
    }

    async fn restic_object(
        &self,
        repo_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<ResticObjectRow>> {
        self.db
            .read_opt(
                Scope::Tenant,
                q("SELECT name, size, blob_key, data FROM restic_objects \
               WHERE repo_id = ? AND kind = ? AND name = ?")
                .binds((repo_id, kind, name)),
            )
            .await
    }

    async fn restic_list(&self, repo_id: &str, kind: &str) -> Result<Vec<ResticObjectRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(
                    "SELECT name, size, '' AS blob_key, CAST(NULL AS BYTEA) AS data \
               FROM restic_objects WHERE repo_id = ? AND kind = ?",
                )
                .binds((repo_id, kind)),
            )
            .await
    }

    async fn restic_write_batch(
        &self,
        reserve: Vec<(String, i64)>,
        puts: Vec<NewResticObject>,
    ) -> Result<Vec<Result<PutOutcome>>> {
        let mut tx = self.db.write(Scope::System).await?;
        queue_many(&mut tx, &reserve).await?;
        // A file whose blob's reservation has lapsed (the collector may be deleting the blob)
        // is refused, not recorded; its blob stays queued.
        let lapsed = lapsed(&mut tx, &puts).await?;
        let mut out: Vec<Option<Result<PutOutcome>>> = Vec::with_capacity(puts.len());
        let mut live = Vec::with_capacity(puts.len());
        for (o, lapsed) in puts.into_iter().zip(lapsed) {
            if lapsed {
                out.push(Some(Err(StoreError::Conflict(
                    "the upload outlasted its reservation (limits.reservation); send it again",
                ))));
            } else {
                out.push(None);
                live.push(o);
            }
        }
        let done = super::restic_batch::put_many(&mut tx, &live).await?;
        unqueue_many(&mut tx, &super::restic_batch::stored_blobs(&live, &done)).await?;
        tx.commit().await?;
        let mut done = done.into_iter();
        Ok(out
            .into_iter()
            .map(|r| {
                r.or_else(|| done.next())
                    .unwrap_or(Err(StoreError::Batch("file left out of its batch".into())))
            })
            .collect())
    }

    async fn restic_delete(
        &self,
        repo_id: &str,
        user_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<i64>> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let row: Option<(i64, String, bool)> = tx
            .returning(
                q(
                    "DELETE FROM restic_objects WHERE repo_id = ? AND kind = ? AND name = ? \
                   RETURNING size, blob_key, data IS NOT NULL",
                )
                .binds((repo_id, kind, name)),
            )
            .await?
            .into_iter()
            .next();
        let Some((size, blob_key, inline)) = row else {
            return Ok(None);
        };
        if !inline {
            queue_at(&mut tx, &blob_key, unix_now()).await?;
        }
        charge(&mut tx, user_id, -size, None).await?;
        tx.commit().await?;
        Ok(Some(size))
    }
}
