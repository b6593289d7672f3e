//! Vaults and their members (tenant scope: a vault is seen only through a membership).

use super::{
    Scope, SqlMeta, Tx, charge, credit_versions_of, insert_vault, q, queue_blobs_of,
    queue_selected, unix_now,
};
use crate::*;

const VAULT_ACCESS: &str = "SELECT v.id, v.signed_id, v.owner_id, o.name AS owner_name, v.name, \
    v.generation, m.wrapped_keys, m.signature AS keys_signature, m.access, \
    COALESCE(o.ed25519_public, '') AS owner_key, \
    (SELECT COUNT(*) FROM objects ob WHERE ob.vault_id = v.id) AS objects, \
    (SELECT CAST(COALESCE(SUM(ve.size), 0) AS BIGINT) FROM versions ve \
        JOIN objects ob ON ve.object_id = ob.id WHERE ob.vault_id = v.id) AS bytes \
    FROM vaults v JOIN vault_members m ON m.vault_id = v.id JOIN users o ON o.id = v.owner_id";

/// One vault as `user_id` sees it, in `tx`.
async fn access_in(tx: &mut Tx, user_id: &str, vault_id: &str) -> Result<Option<VaultAccess>> {
    tx.opt(q(format!("{VAULT_ACCESS} WHERE m.user_id = ? AND v.id = ?")).binds((user_id, vault_id)))
        .await
}

#[async_trait::async_trait]
impl Vaults for SqlMeta {
    async fn create_vault(&self, v: NewVault) -> Result<VaultAccess> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let exists: Option<String> = tx
            .scalar(
                q("SELECT id FROM vaults WHERE owner_id = ? AND name = ?")
                    .binds((&v.owner_id, &v.name)),
            )
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict("a vault of that name exists"));
        }
        insert_vault(&mut tx, &v).await?;
        let access = access_in(&mut tx, &v.owner_id, &v.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(access)
    }

    async fn vaults_for(&self, user_id: &str) -> Result<Vec<VaultAccess>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "{VAULT_ACCESS} WHERE m.user_id = ? \
                 ORDER BY o.name <> (SELECT name FROM users WHERE id = ?), o.name, v.name"
                ))
                .binds((user_id, user_id)),
            )
            .await
    }

    async fn vault_access(&self, user_id: &str, vault_id: &str) -> Result<Option<VaultAccess>> {
        let mut tx = self.db.read(Scope::Tenant).await?;
        access_in(&mut tx, user_id, vault_id).await
    }

    async fn delete_vault(&self, vault_id: &str) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let now = unix_now();
        credit_versions_of(&mut tx, "v.id = ?", vault_id).await?;
        let pending: Vec<(String, i64)> = tx
            .all(
                q("SELECT v.owner_id, CAST(SUM(u.charged) AS BIGINT) \
     FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE u.vault_id = ? AND u.charged > 0 \
     GROUP BY v.owner_id")
                .bind(vault_id),
            )
            .await?;
        for (owner, bytes) in pending {
            charge(&mut tx, &owner, -bytes, None).await?;
        }
        let tree: Option<(String, i64)> = tx
            .opt(
                q(
                    "SELECT v.owner_id, CAST(COALESCE(SUM(b.size), 0) AS BIGINT) \
                   FROM vaults v JOIN tree_blobs b ON b.vault_id = v.id WHERE v.id = ? \
                   GROUP BY v.owner_id",
                )
                .bind(vault_id),
            )
            .await?;
        if let Some((owner, bytes)) = tree {
            charge(&mut tx, &owner, -bytes, None).await?;
        }
        queue_blobs_of(&mut tx, "v.id = ?", vault_id, now).await?;
        for from in [
            "blob_key FROM uploads WHERE vault_id = ?",
            "blob_key FROM tree_blobs WHERE vault_id = ?",
        ] {
            queue_selected(&mut tx, now, from, (vault_id,)).await?;
        }
        tx.execute(q("DELETE FROM vaults WHERE id = ?").bind(vault_id))
            .await?;
        tx.commit().await
    }

    async fn members(&self, vault_id: &str) -> Result<Vec<Member>> {
        let stmt = q(
            "SELECT u.id AS user_id, u.name, COALESCE(u.x25519_recipient, '') AS x25519_recipient, \
               COALESCE(u.ed25519_public, '') AS ed25519_public, \
               COALESCE(u.recipient_sig, '') AS recipient_sig, (u.id = v.owner_id) AS owner, \
               m.access FROM vault_members m JOIN users u ON u.id = m.user_id \
               JOIN vaults v ON v.id = m.vault_id WHERE m.vault_id = ? ORDER BY owner DESC, u.name",
        )
        .bind(vault_id);
        self.db.read_all(Scope::Tenant, stmt).await
    }

    async fn add_member(
        &self,
        vault_id: &str,
        user_id: &str,
        wrapped_keys: &str,
        signature: &str,
        access: Access,
    ) -> Result<()> {
        let stmt = q(
            "INSERT INTO vault_members (vault_id, user_id, wrapped_keys, signature, access) \
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (vault_id, user_id) DO UPDATE SET \
               wrapped_keys = excluded.wrapped_keys, signature = excluded.signature, \
               access = excluded.access",
        )
        .binds((vault_id, user_id, wrapped_keys, signature, access.as_str()));
        self.db.write_one(Scope::Tenant, stmt).await?;
        Ok(())
    }

    async fn rotate_vault(
        &self,
        vault_id: &str,
        remove_user_id: &str,
        generation: u32,
        rewrapped: Vec<(String, String, String)>,
    ) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let for_update = tx.locking("FOR UPDATE");
        let current: i64 = tx
            .scalar(
                q(format!(
                    "SELECT generation FROM vaults WHERE id = ? {for_update}"
                ))
                .bind(vault_id),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        if i64::from(generation) != current + 1 {
            return Err(StoreError::Conflict(
                "generation must be the current one plus one",
            ));
        }
        let removed = tx
            .execute(
                q("DELETE FROM vault_members WHERE vault_id = ? AND user_id = ?")
                    .binds((vault_id, remove_user_id)),
            )
            .await?;
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        let remaining: Vec<(String,)> = tx
            .all(q("SELECT user_id FROM vault_members WHERE vault_id = ?").bind(vault_id))
            .await?;
        let mut remaining: Vec<String> = remaining.into_iter().map(|(u,)| u).collect();
        let mut given: Vec<String> = rewrapped.iter().map(|(u, _, _)| u.clone()).collect();
        remaining.sort();
        given.sort();
        if remaining != given {
            return Err(StoreError::Conflict(
                "new keys must cover exactly the remaining members",
            ));
        }
        for (user_id, wrapped, signature) in &rewrapped {
            tx.execute(
                q("UPDATE vault_members SET wrapped_keys = ?, signature = ? \
                   WHERE vault_id = ? AND user_id = ?")
                .binds((wrapped, signature, vault_id, user_id)),
            )
            .await?;
        }
        tx.execute(
            q("UPDATE vaults SET generation = ? WHERE id = ?")
                .binds((i64::from(generation), vault_id)),
        )
        .await?;
        tx.commit().await
    }
}
