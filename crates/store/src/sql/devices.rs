//! Devices and the account chain (tenant scope): a link is appended only on top of the last
//! one, in the transaction that adds or revokes its device; a revocation ends the device's
//! sessions and tokens in that same transaction.

use super::{Scope, SqlMeta, Stored, insert, q};
use crate::*;

const LINK_COLS: &str = AccountLinkRow::COLS;
const DEVICE_COLS: &str = DeviceRow::COLS;

/// Where a user's devices' tree commits end, in every vault: `(device, vault, seq, hash)`
/// of each device's last commit per vault, sorted; bound to the user and a device (or, with
/// the device `NULL` twice, every device of the user).
const ENDS: &str = "SELECT t.device_id, t.vault_id, t.seq, t.hash FROM tree_commits t \
    WHERE t.author_id = ? AND t.device_id IS NOT NULL AND (? IS NULL OR t.device_id = ?) \
    AND t.seq = (SELECT MAX(u.seq) FROM tree_commits u \
                 WHERE u.vault_id = t.vault_id AND u.device_id = t.device_id) \
    ORDER BY t.device_id, t.vault_id";

/// Locks the user's chain and checks that `link` comes next.
async fn check_next(tx: &mut super::Tx, link: &AccountLinkRow) -> Result<()> {
    tx.lock(&format!("chain:{}", link.user_id)).await?;
    let last: Option<(i64, String)> = tx
        .opt(
            q("SELECT seq, hash FROM account_links WHERE user_id = ? ORDER BY seq DESC LIMIT 1")
                .bind(&link.user_id),
        )
        .await?;
    let (seq, hash) = last.unwrap_or((0, String::new()));
    if link.seq != seq + 1 || link.prev != hash {
        return Err(StoreError::Conflict(
            "the account chain moved: fetch it and sign the next link again",
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Devices for SqlMeta {
    async fn account_chain(&self, user_id: &str) -> Result<Vec<AccountLinkRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {LINK_COLS} FROM account_links WHERE user_id = ? ORDER BY seq"
                ))
                .bind(user_id),
            )
            .await
    }

    async fn add_device(
        &self,
        link: AccountLinkRow,
        device: DeviceRow,
        session_id: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        check_next(&mut tx, &link).await?;
        let taken: Option<(String,)> = tx
            .opt(
                q("SELECT id FROM devices WHERE user_id = ? AND id = ?")
                    .binds((&device.user_id, &device.id)),
            )
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict("that device id is taken"));
        }
        tx.execute(insert(&link, "")).await?;
        tx.execute(insert(&device, "")).await?;
        if let Some(session) = session_id {
            tx.execute(
                q("UPDATE sessions SET device_id = ? WHERE id = ? AND user_id = ?").binds((
                    &device.id,
                    session,
                    &device.user_id,
                )),
            )
            .await?;
        }
        tx.commit().await
    }

    async fn revoke_device(&self, link: AccountLinkRow, now: i64) -> Result<Revoked> {
        let mut tx = self.db.write(Scope::System).await?;
        check_next(&mut tx, &link).await?;
        let done = tx
            .execute(
                q("UPDATE devices SET revoked_seq = ?, revoked_at = ? \
                   WHERE user_id = ? AND id = ? AND revoked_seq IS NULL")
                .binds((link.seq, now, &link.user_id, &link.device_id)),
            )
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        // The link names where the device's backup chain ends; an entry accepted since the
        // revoker read it (which took this lock too) makes it wrong.
        let last: Option<(i64, String)> = tx
            .opt(
                q(
                    "SELECT counter, id FROM backups WHERE user_id = ? AND device_id = ? \
                   ORDER BY counter DESC LIMIT 1",
                )
                .binds((&link.user_id, &link.device_id)),
            )
            .await?;
        if last.unwrap_or((0, String::new())) != (link.last_counter, link.last_entry.clone()) {
            return Err(StoreError::Conflict(
                "the device's backup chain moved since the revocation was signed: sign it again",
            ));
        }
        // And where its tree commits end, in every vault (a commit takes this lock too).
        let ends: Vec<(String, String, i64, String)> = tx
            .all(q(ENDS).binds((&link.user_id, &link.device_id, &link.device_id)))
            .await?;
        let ends: Vec<_> = ends
            .into_iter()
            .map(|(_, v, s, h)| (v, s as u64, h))
            .collect();
        if enc_crypto::device::commit_ends_text(&ends) != link.commit_ends {
            return Err(StoreError::Conflict(
                "the device's tree commits moved since the revocation was signed: sign it again",
            ));
        }
        tx.execute(insert(&link, "")).await?;
        let sessions = tx
            .execute(
                q("DELETE FROM sessions WHERE user_id = ? AND device_id = ?")
                    .binds((&link.user_id, &link.device_id)),
            )
            .await?;
        let tokens: Vec<(String,)> = tx
            .returning(
                q("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ? RETURNING id")
                    .binds((&link.user_id, &link.device_id)),
            )
            .await?;
        tx.commit().await?;
        Ok(Revoked {
            sessions,
            tokens: tokens.into_iter().map(|(id,)| id).collect(),
        })
    }

    async fn rename_device(&self, user_id: &str, device_id: &str, name: &str) -> Result<bool> {
        Ok(self
            .db
            .write_one(
                Scope::Tenant,
                q("UPDATE devices SET name = ? WHERE user_id = ? AND id = ?")
                    .binds((name, user_id, device_id)),
            )
            .await?
            > 0)
    }

    async fn devices(&self, user_id: &str) -> Result<Vec<DeviceRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {DEVICE_COLS} FROM devices WHERE user_id = ? ORDER BY added_seq"
                ))
                .bind(user_id),
            )
            .await
    }

    async fn device(&self, user_id: &str, device_id: &str) -> Result<Option<DeviceRow>> {
        self.db
            .read_opt(
                Scope::Tenant,
                q(format!(
                    "SELECT {DEVICE_COLS} FROM devices WHERE user_id = ? AND id = ?"
                ))
                .binds((user_id, device_id)),
            )
            .await
    }

    async fn touch_device(&self, user_id: &str, device_id: &str, now: i64) -> Result<()> {
        self.db
            .write_one(
                Scope::Tenant,
                q("UPDATE devices SET last_seen = ? WHERE user_id = ? AND id = ? AND last_seen < ?")
                    .binds((now, user_id, device_id, now - 60)),
            )
            .await?;
        Ok(())
    }

    async fn commit_ends(&self, user_id: &str) -> Result<Vec<(String, String, i64, String)>> {
        self.db
            .read_all(
                Scope::System,
                q(ENDS).binds((user_id, None::<&str>, None::<&str>)),
            )
            .await
    }

    async fn signer_chain(
        &self,
        vault_id: &str,
        user_id: &str,
    ) -> Result<Option<Vec<AccountLinkRow>>> {
        let mut tx = self.db.read(Scope::System).await?;
        let related: Option<i64> = tx
            .scalar(
                q("SELECT CAST(1 AS BIGINT) FROM tree_commits WHERE vault_id = ? AND author_id = ? LIMIT 1")
                    .binds((vault_id, user_id)),
            )
            .await?;
        if related.is_none() {
            return Ok(None);
        }
        let links = tx
            .all(
                q(format!(
                    "SELECT {LINK_COLS} FROM account_links WHERE user_id = ? ORDER BY seq"
                ))
                .bind(user_id),
            )
            .await?;
        Ok(Some(links))
    }

    async fn signer_chain_by_key(
        &self,
        vault_id: &str,
        account_key: &str,
    ) -> Result<Option<(Option<String>, Vec<AccountLinkRow>)>> {
        let mut tx = self.db.read(Scope::System).await?;
        let author: Option<String> = tx
            .scalar(
                q("SELECT author_id FROM tree_commits WHERE vault_id = ? AND signer_key = ? LIMIT 1")
                    .binds((vault_id, account_key)),
            )
            .await?;
        let Some(author) = author else {
            return Ok(None);
        };
        // The author's own chain while they are a user with that key (a commit's key is the
        // key of the session's user when the server took it).
        let living: Option<String> = tx
            .scalar(
                q("SELECT id FROM users WHERE id = ? AND ed25519_public = ?")
                    .binds((&author, account_key)),
            )
            .await?;
        if let Some(user_id) = &living {
            let links: Vec<AccountLinkRow> = tx
                .all(
                    q(format!(
                        "SELECT {LINK_COLS} FROM account_links WHERE user_id = ? ORDER BY seq"
                    ))
                    .bind(user_id),
                )
                .await?;
            // Empty while an erasure runs, between its `credentials` step (which moved the
            // chain to `kept_links`) and its `account` step (which deletes the user).
            if !links.is_empty() {
                return Ok(Some((living, links)));
            }
        }
        let kept: Vec<KeptLink> = tx
            .all(
                q(format!(
                    "SELECT {KEPT_COLS} FROM kept_links WHERE account_key = ? ORDER BY seq"
                ))
                .bind(account_key),
            )
            .await?;
        if kept.is_empty() {
            return Ok(None);
        }
        let links = kept
            .into_iter()
            .map(|k| AccountLinkRow {
                user_id: String::new(),
                seq: k.seq,
                hash: k.hash,
                prev: k.prev,
                kind: k.kind,
                device_id: k.device_id,
                device_name: String::new(),
                device_key: k.device_key,
                created: k.created,
                signature: k.signature,
                version: 2,
                name_salt: String::new(),
                name_commitment: k.name_commitment,
                last_counter: k.last_counter,
                last_entry: k.last_entry,
                commit_ends: k.commit_ends,
            })
            .collect();
        Ok(Some((None, links)))
    }
}

/// The columns of a link an erasure keeps: all but the user id, the name and its salt.
pub(super) const KEPT_COLS: &str = "seq, hash, prev, kind, device_id, name_commitment, \
     device_key, created, signature, last_counter, last_entry, commit_ends";

#[derive(sqlx::FromRow)]
struct KeptLink {
    seq: i64,
    hash: String,
    prev: String,
    kind: String,
    device_id: String,
    name_commitment: String,
    device_key: String,
    created: i64,
    signature: String,
    last_counter: i64,
    last_entry: String,
    commit_ends: String,
}
