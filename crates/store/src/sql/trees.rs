//! Vault trees (tenant scope): each commit appended on top of the one before, in the one
//! transaction that also turns its uploads into the vault's blobs and queues the blobs it
//! releases. The server never writes a commit; it only checks where one goes.

use super::{Scope, SqlMeta, charge, q, queue_at};
use crate::*;

const COMMIT_COLS: &str = "seq, hash, prev, header, signature, author_id, created";

/// Most ids bound in one `IN (…)` list (SQLite's default limit on variables is far above it).
const IN_CHUNK: usize = 500;

#[async_trait::async_trait]
impl Trees for SqlMeta {
    async fn tree_append(&self, c: NewTreeCommit) -> Result<TreeAppend> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let writer: Option<(String,)> = tx
            .opt(
                q(
                    "SELECT v.owner_id FROM vault_members m JOIN vaults v ON v.id = m.vault_id \
                   WHERE m.vault_id = ? AND m.user_id = ? AND m.access <> 'read'",
                )
                .binds((&c.vault_id, &c.user_id)),
            )
            .await?;
        let (owner,) = writer.ok_or(StoreError::NotFound)?;
        // A device signs only while it stands: its revocation takes this lock too and names
        // where its commits end, so none lands after that end (the chain's lock before the
        // vault's, always in this order).
        if let Some((device, key)) = &c.device {
            tx.lock(&format!("chain:{}", c.user_id)).await?;
            let stands: Option<i64> = tx
                .scalar(
                    q(
                        "SELECT CAST(1 AS BIGINT) FROM devices WHERE user_id = ? AND id = ? AND public_key = ? \
                       AND revoked_seq IS NULL",
                    )
                    .binds((&c.user_id, device, key)),
                )
                .await?;
            if stands.is_none() {
                return Err(StoreError::Conflict(
                    "the device that signed the commit is revoked: log in again on it",
                ));
            }
        }
        // Two pushes to one vault (on any replica) take turns here; the second finds the
        // head moved and is told so.
        tx.lock(&format!("tree:{}", c.vault_id)).await?;
        let head: Option<TreeCommitRow> = tx
            .opt(
                q(format!(
                    "SELECT {COMMIT_COLS} FROM tree_commits WHERE vault_id = ? \
                     ORDER BY seq DESC LIMIT 1"
                ))
                .bind(&c.vault_id),
            )
            .await?;
        let (head_seq, head_hash) = head.as_ref().map_or((0, ""), |h| (h.seq, h.hash.as_str()));
        if c.seq != head_seq + 1 || c.prev != head_hash {
            return Ok(TreeAppend::Behind(head));
        }
        let mut ids: Vec<&String> = c.adds.iter().chain(&c.releases).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(StoreError::Conflict(
                "a blob is named twice among the commit's adds and releases",
            ));
        }
        // Uploads become the vault's blobs; what they were charged while streaming is
        // already in the owner's usage.
        let lock = tx.locking("FOR UPDATE");
        let mut delta = 0i64;
        for id in &c.adds {
            let upload: Option<(String, i64, i64)> = tx
                .opt(
                    q(format!(
                        "SELECT blob_key, size, charged FROM uploads \
                         WHERE id = ? AND vault_id = ? AND user_id = ? AND size >= 0 {lock}"
                    ))
                    .binds((id, &c.vault_id, &c.user_id)),
                )
                .await?;
            let Some((blob_key, size, charged)) = upload else {
                return Err(StoreError::Conflict(
                    "an added blob is not a finished upload of yours to this vault",
                ));
            };
            tx.execute(
                q(
                    "INSERT INTO tree_blobs (vault_id, id, blob_key, size, added_seq) \
                   VALUES (?, ?, ?, ?, ?)",
                )
                .binds((&c.vault_id, id, &blob_key, size, c.seq)),
            )
            .await?;
            tx.execute(q("DELETE FROM uploads WHERE id = ?").bind(id))
                .await?;
            delta += size - charged;
        }
        for id in &c.releases {
            let blob: Option<(String, i64)> = tx
                .opt(
                    q("SELECT blob_key, size FROM tree_blobs WHERE vault_id = ? AND id = ?")
                        .binds((&c.vault_id, id)),
                )
                .await?;
            let Some((blob_key, size)) = blob else {
                return Err(StoreError::Conflict(
                    "a released blob is not one of the vault's",
                ));
            };
            queue_at(&mut tx, &blob_key, c.now).await?;
            tx.execute(
                q("DELETE FROM tree_blobs WHERE vault_id = ? AND id = ?").binds((&c.vault_id, id)),
            )
            .await?;
            delta -= size;
        }
        charge(&mut tx, &owner, delta, c.quota).await?;
        let body: Option<i64> = tx
            .scalar(
                q("SELECT size FROM tree_blobs WHERE vault_id = ? AND id = ?")
                    .binds((&c.vault_id, &c.body_blob)),
            )
            .await?;
        if body.is_none_or(|size| c.body_end > size) {
            return Err(StoreError::Conflict(
                "the commit's body is not inside a blob of the vault",
            ));
        }
        let row = TreeCommitRow {
            seq: c.seq,
            hash: c.hash,
            prev: c.prev,
            header: c.header,
            signature: c.signature,
            author_id: c.user_id,
            created: c.now,
        };
        tx.execute(
            q(format!(
                "INSERT INTO tree_commits (vault_id, device_id, signer_key, {COMMIT_COLS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .binds((
                &c.vault_id,
                c.device.as_ref().map(|(d, _)| d.as_str()),
                &c.signer_key,
                row.seq,
                &row.hash,
                &row.prev,
                &row.header,
                &row.signature,
                &row.author_id,
                row.created,
            )),
        )
        .await?;
        tx.commit().await?;
        Ok(TreeAppend::Appended(row))
    }

    async fn tree_head(&self, vault_id: &str) -> Result<Option<TreeCommitRow>> {
        let stmt = q(format!(
            "SELECT {COMMIT_COLS} FROM tree_commits WHERE vault_id = ? ORDER BY seq DESC LIMIT 1"
        ))
        .bind(vault_id);
        self.db.read_opt(Scope::Tenant, stmt).await
    }

    async fn tree_commits(
        &self,
        vault_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<TreeCommitRow>> {
        let stmt = q(format!(
            "SELECT {COMMIT_COLS} FROM tree_commits WHERE vault_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?"
        ))
        .binds((vault_id, after_seq, limit));
        self.db.read_all(Scope::Tenant, stmt).await
    }

    async fn tree_blobs(&self, vault_id: &str, ids: &[String]) -> Result<Vec<TreeBlobRow>> {
        let mut tx = self.db.read(Scope::Tenant).await?;
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = q(format!(
                "SELECT id, blob_key, size, added_seq FROM tree_blobs \
                 WHERE vault_id = ? AND id IN ({marks})"
            ))
            .bind(vault_id);
            for id in chunk {
                stmt = stmt.bind(id);
            }
            found.extend(tx.all::<TreeBlobRow>(stmt).await?);
        }
        Ok(found)
    }
}
