//! `/v1` uploads in flight and the versions they become (tenant scope). An upload is charged
//! to its vault's owner while it streams (`uploads.charged`), so bytes not committed yet count
//! against the quota like committed ones; the charge becomes the version's at commit, or is
//! given back when the upload is released or expires.

use super::engine::FromRows;
use super::{
    Scope, SqlMeta, Stored, Tx, charge, credit_versions_of, q, queue_at, queue_blobs_of,
    queue_selected, unix_now,
};
use crate::*;

const VERSION_COLS: &str = "ve.id, ve.version, ve.blob_key, ve.size, ve.hash, ve.generation, \
    ve.signature, ve.author, ve.author_key, ve.created";

/// A name with its latest version.
#[derive(sqlx::FromRow)]
struct Listed {
    enc_name: String,
    #[sqlx(flatten)]
    version: VersionRow,
}

/// The owner charged for an upload still streaming, and what it was charged.
const STREAMING: &str = "SELECT v.owner_id, u.charged FROM uploads u \
     JOIN vaults v ON v.id = u.vault_id WHERE u.id = ? AND u.size = -1";

/// Forgets one upload.
const DELETE: &str = "DELETE FROM uploads WHERE id = ?";

/// Upload `id` as `sql` selects it, row-locked on PostgreSQL.
async fn locked<T: FromRows>(tx: &mut Tx, sql: &'static str, id: &str) -> Result<Option<T>> {
    let for_update = tx.locking("FOR UPDATE OF u");
    tx.opt(q(format!("{sql} {for_update}")).bind(id)).await
}

#[async_trait::async_trait]
impl Versions for SqlMeta {
    async fn create_upload(&self, u: UploadRow, max_pending: i64) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let done = tx
            .execute(
                q(
                    "INSERT INTO uploads (id, vault_id, user_id, blob_key, size, hash, created) \
     SELECT ?, ?, ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM uploads WHERE user_id = ?) < ?",
                )
                .binds((
                    &u.id,
                    &u.vault_id,
                    &u.user_id,
                    &u.blob_key,
                    u.size,
                    &u.hash,
                    u.created,
                    &u.user_id,
                    max_pending,
                )),
            )
            .await?;
        if done == 0 {
            return Err(StoreError::Conflict("too many uploads in progress"));
        }
        tx.commit().await
    }

    async fn charge_upload(&self, id: &str, n: i64, quota: Option<i64>) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let (owner, _): (String, i64) = locked(&mut tx, STREAMING, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        charge(&mut tx, &owner, n, quota).await?;
        tx.execute(
            q("UPDATE uploads SET charged = charged + ? WHERE id = ?")
                .bind(n)
                .bind(id),
        )
        .await?;
        tx.commit().await
    }

    async fn complete_upload(&self, id: &str, size: i64, hash: &str) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let (owner, charged): (String, i64) = locked(&mut tx, STREAMING, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let kept = charged.min(size);
        charge(&mut tx, &owner, kept - charged, None).await?;
        // `created` counts from completion now: the commit must follow within the expiry.
        let stmt = q(
            "UPDATE uploads SET size = ?, hash = ?, charged = ?, created = ? \
                      WHERE id = ? AND size = -1",
        );
        tx.execute(stmt.binds((size, hash, kept, unix_now(), id)))
            .await?;
        tx.commit().await
    }

    async fn release_upload(&self, id: &str, now: i64) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let pending: Option<(String, i64, String)> = locked(
            &mut tx,
            "SELECT v.owner_id, u.charged, u.blob_key FROM uploads u \
             JOIN vaults v ON v.id = u.vault_id WHERE u.id = ?",
            id,
        )
        .await?;
        if let Some((owner, charged, blob_key)) = pending {
            charge(&mut tx, &owner, -charged, None).await?;
            queue_at(&mut tx, &blob_key, now).await?;
            tx.execute(q(DELETE).bind(id)).await?;
        }
        tx.commit().await
    }

    async fn commit_version(&self, c: NewVersion, keep: u32) -> Result<VersionRow> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        // Row-locked, as expiry locks it: the upload is claimed here or expired there.
        let lock = tx.locking("FOR UPDATE");
        let upload: UploadRow = tx
            .opt(
                q(format!(
                    "SELECT {} FROM uploads WHERE id = ? AND vault_id = ? AND user_id = ? {lock}",
                    UploadRow::COLS
                ))
                .binds((&c.upload_id, &c.vault_id, &c.user_id)),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        if upload.size < 0 || upload.size != c.size || upload.hash != c.hash {
            return Err(StoreError::Conflict(
                "size or hash differ from what was uploaded",
            ));
        }
        // Membership and key generation again, inside the transaction: an unshare may have
        // committed since the handler checked them.
        let author: Option<(String, String)> = tx
            .opt(
                q(
                    "SELECT u.name, COALESCE(u.ed25519_public, '') FROM vault_members m \
                   JOIN users u ON u.id = m.user_id JOIN vaults v ON v.id = m.vault_id \
                   WHERE m.vault_id = ? AND m.user_id = ? AND v.generation = ? \
                   AND m.access <> 'read'",
                )
                .binds((&c.vault_id, &c.user_id, c.generation)),
            )
            .await?;
        let Some((author, author_key)) = author else {
            return Err(StoreError::Conflict(
                "the vault's keys or members changed; fetch them again and retry",
            ));
        };
        // Two commits of one name (on any replica) take turns here.
        tx.lock(&format!("object:{}:{}", c.vault_id, c.enc_name))
            .await?;
        let object_id: Option<String> = tx
            .scalar(
                q("SELECT id FROM objects WHERE vault_id = ? AND enc_name = ?")
                    .binds((&c.vault_id, &c.enc_name)),
            )
            .await?;
        let object_id = match object_id {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    q("INSERT INTO objects (id, vault_id, enc_name, created) VALUES (?, ?, ?, ?)")
                        .binds((&id, &c.vault_id, &c.enc_name, c.now)),
                )
                .await?;
                id
            }
        };
        let latest: i64 = tx
            .scalar(
                q("SELECT COALESCE(MAX(version), 0) FROM versions WHERE object_id = ?")
                    .bind(&object_id),
            )
            .await?
            .unwrap_or(0);
        if c.version != latest + 1 {
            return Err(StoreError::Conflict("version is not the latest plus one"));
        }
        tx.execute(
            q(
                "INSERT INTO versions (id, object_id, version, blob_key, size, hash, generation, \
               signature, author_id, author, author_key, created) \
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .binds((
                &upload.id,
                &object_id,
                c.version,
                &upload.blob_key,
                c.size,
                &c.hash,
                c.generation,
                &c.signature,
                &c.user_id,
                &author,
                &author_key,
                c.now,
            )),
        )
        .await?;
        let charged: i64 = tx
            .scalar(q("SELECT charged FROM uploads WHERE id = ?").bind(&upload.id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.execute(q(DELETE).bind(&upload.id)).await?;
        let cutoff = c.version - i64::from(keep.max(1));
        let (owner, pruned): (String, i64) = tx
            .one(
                q("SELECT v.owner_id, (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) \
                   FROM versions WHERE object_id = ? AND version <= ?) FROM vaults v WHERE v.id = ?")
                .binds((&object_id, cutoff, &c.vault_id)),
            )
            .await?;
        // The upload's bytes were charged while they streamed.
        charge(&mut tx, &owner, c.size - pruned - charged, c.quota).await?;
        let from = "blob_key FROM versions WHERE object_id = ? AND version <= ?";
        queue_selected(&mut tx, c.now, from, (&object_id, cutoff)).await?;
        tx.execute(
            q("DELETE FROM versions WHERE object_id = ? AND version <= ?")
                .binds((&object_id, cutoff)),
        )
        .await?;
        let row = tx
            .one(
                q(format!(
                    "SELECT {VERSION_COLS} FROM versions ve WHERE ve.id = ?"
                ))
                .bind(&upload.id),
            )
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn list_objects(&self, vault_id: &str) -> Result<Vec<(String, VersionRow)>> {
        let rows: Vec<Listed> = self
            .db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT ob.enc_name, {VERSION_COLS} FROM objects ob \
                     JOIN versions ve ON ve.object_id = ob.id \
                     WHERE ob.vault_id = ? AND ve.version = \
                       (SELECT MAX(version) FROM versions WHERE object_id = ob.id) \
                     ORDER BY ob.enc_name"
                ))
                .bind(vault_id),
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.enc_name, r.version)).collect())
    }

    async fn object_versions(&self, vault_id: &str, enc_name: &str) -> Result<Vec<VersionRow>> {
        let stmt = q(format!(
            "SELECT {VERSION_COLS} FROM objects ob JOIN versions ve ON ve.object_id = ob.id \
                 WHERE ob.vault_id = ? AND ob.enc_name = ? ORDER BY ve.version DESC"
        ))
        .binds((vault_id, enc_name));
        self.db.read_all(Scope::Tenant, stmt).await
    }

    async fn version(&self, vault_id: &str, version_id: &str) -> Result<Option<VersionRow>> {
        let stmt = q(format!(
            "SELECT {VERSION_COLS} FROM objects ob JOIN versions ve ON ve.object_id = ob.id \
                 WHERE ob.vault_id = ? AND ve.id = ?"
        ))
        .binds((vault_id, version_id));
        self.db.read_opt(Scope::Tenant, stmt).await
    }

    async fn delete_object(&self, vault_id: &str, enc_name: &str) -> Result<bool> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let object_id: Option<String> = tx
            .scalar(
                q("SELECT id FROM objects WHERE vault_id = ? AND enc_name = ?")
                    .binds((vault_id, enc_name)),
            )
            .await?;
        let Some(object_id) = object_id else {
            return Ok(false);
        };
        credit_versions_of(&mut tx, "ob.id = ?", &object_id).await?;
        queue_blobs_of(&mut tx, "ob.id = ?", &object_id, unix_now()).await?;
        tx.execute(q("DELETE FROM objects WHERE id = ?").bind(&object_id))
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
