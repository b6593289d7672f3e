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
        // Claimed in a transaction of its own before any blob is deleted: `queued` turns
        // negative (still due, so a crash in the middle of the deletion retries it). A commit
        // that claims a reservation back takes only a row whose time is still to come
        // (`claim_reserved`), so it never records a blob this is deleting; the row lock
        // orders the two on PostgreSQL, the write lock on SQLite.
        let mut tx = self.db.write(Scope::System).await?;
        let lock = tx.locking("FOR UPDATE");
        let keys: Vec<(String,)> = tx
            .all(
                q(format!(
                    "SELECT blob_key FROM blob_gc WHERE queued <= ? ORDER BY queued LIMIT ? {lock}"
                ))
                .binds((now, limit)),
            )
            .await?;
        let keys: Vec<String> = keys.into_iter().map(|(k,)| k).collect();
        for chunk in keys.chunks(256) {
            let list = vec!["?"; chunk.len()].join(", ");
            let mut query = q(format!(
                "UPDATE blob_gc SET queued = ? WHERE blob_key IN ({list})"
            ))
            .bind(-now.max(1));
            for k in chunk {
                query = query.bind(k);
            }
            tx.execute(query).await?;
        }
        tx.commit().await?;
        Ok(keys)
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
        // Only a claim: a key queued again while it was deleted stays queued (`queue_at`).
        for k in keys {
            tx.execute(q("DELETE FROM blob_gc WHERE blob_key = ? AND queued < 0").bind(k))
                .await?;
        }
        tx.commit().await
    }

    async fn blob_refs(&self, cursor: &str, limit: i64) -> Result<(Vec<BlobRef>, Option<String>)> {
        let mut parts = cursor.split('\u{1f}');
        let source: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let after: Vec<String> = parts.map(str::to_string).collect();
        let Some((keys, from)) = BLOB_SOURCES.get(source) else {
            return Ok((Vec::new(), None));
        };
        let cols = keys.join(", ");
        let named: Vec<String> = (0..3)
            .map(|n| match keys.get(n) {
                Some(k) => format!("{k} AS k{n}"),
                None => format!("'' AS k{n}"),
            })
            .collect();
        let start = if after.len() == keys.len() {
            let marks = vec!["?"; keys.len()].join(", ");
            format!("AND ({cols}) > ({marks})")
        } else {
            String::new()
        };
        let mut stmt = q(format!(
            "SELECT {from} {start} ORDER BY {cols} LIMIT ?",
            from = from.replace("{KEYS}", &named.join(", "))
        ));
        if !start.is_empty() {
            for k in &after {
                stmt = stmt.bind(k);
            }
        }
        let rows: Vec<BlobRefRow> = self.db.read_all(Scope::System, stmt.bind(limit)).await?;
        let next = match rows.last() {
            Some(r) if rows.len() as i64 == limit => {
                let k = [&r.k0, &r.k1, &r.k2];
                let mut c = source.to_string();
                for key in k.iter().take(keys.len()) {
                    c.push('\u{1f}');
                    c.push_str(key);
                }
                Some(c)
            }
            _ => (source + 1 < BLOB_SOURCES.len()).then(|| (source + 1).to_string()),
        };
        let refs = rows
            .into_iter()
            .map(|r| BlobRef {
                blob_key: r.blob_key,
                size: r.size,
                owner: r.owner,
                what: r.what,
            })
            .collect();
        Ok((refs, next))
    }

    async fn held_blobs(&self, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .db
            .read_all(
                Scope::System,
                q("SELECT k FROM (SELECT blob_key AS k FROM blob_gc \
                   UNION SELECT blob_key AS k FROM uploads) held \
                   WHERE k > ? ORDER BY k LIMIT ?")
                .binds((after, limit)),
            )
            .await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }
}

/// A row of a [`BLOB_SOURCES`] query: the reference and the row's primary key.
#[derive(sqlx::FromRow)]
struct BlobRefRow {
    blob_key: String,
    size: i64,
    owner: String,
    what: String,
    k0: String,
    k1: String,
    k2: String,
}

/// Every blob the metadata references, table by table: each table's primary key (what a
/// page continues after, so that every page is a range of an index, whatever the table's
/// size), and the rest of the query (`{KEYS}` stands for the key columns named `k0`…`k2`).
/// Uploads in flight and queued blobs are not references.
const BLOB_SOURCES: [(&[&str], &str); 5] = [
    (
        &["ve.id"],
        "ve.blob_key AS blob_key, ve.size AS size, u.name AS owner, \
         'vault ' || v.name || ' object ' || ob.id || ' version ' || CAST(ve.version AS TEXT) AS what, {KEYS} \
         FROM versions ve JOIN objects ob ON ob.id = ve.object_id \
         JOIN vaults v ON v.id = ob.vault_id JOIN users u ON u.id = v.owner_id \
         WHERE ve.blob_key <> ''",
    ),
    (
        &["b.vault_id", "b.id"],
        "b.blob_key AS blob_key, b.size AS size, u.name AS owner, \
         'vault ' || v.name || ' tree blob ' || b.id AS what, {KEYS} \
         FROM tree_blobs b JOIN vaults v ON v.id = b.vault_id JOIN users u ON u.id = v.owner_id \
         WHERE 1 = 1",
    ),
    (
        &["o.repo_id", "o.kind", "o.name"],
        "o.blob_key AS blob_key, o.size AS size, u.name AS owner, \
         'restic ' || r.name || ' ' || o.kind || '/' || o.name AS what, {KEYS} \
         FROM restic_objects o JOIN restic_repos r ON r.id = o.repo_id \
         JOIN users u ON u.id = r.user_id WHERE o.blob_key <> ''",
    ),
    (
        &["m.space", "m.name"],
        "m.blob_key AS blob_key, m.size AS size, COALESCE(u.name, m.space) AS owner, \
         'mercury archive ' || m.name AS what, {KEYS} \
         FROM mercury_files m LEFT JOIN users u ON u.id = m.user_id WHERE m.state = 'stored'",
    ),
    (
        &["k.user_id", "k.id"],
        "k.blob_key AS blob_key, k.size AS size, u.name AS owner, \
         'backup ' || k.id || ' of device ' || k.device_id AS what, {KEYS} \
         FROM backups k JOIN users u ON u.id = k.user_id \
         WHERE k.blob_key IS NOT NULL AND k.blob_key <> '' AND k.deleted IS NULL",
    ),
];
