//! Accounts: the server secret, users, sessions, SSH keys and login challenges.

use super::{
    SESSION_COLS, Scope, SqlMeta, Stored, Tx, USER_COLS, insert, insert_vault, q, queue_blobs_of,
    queue_selected, unix_now,
};
use crate::*;

#[async_trait::async_trait]
impl Engine for SqlMeta {
    fn engine_counts(&self) -> EngineCounts {
        self.db.counts()
    }

    async fn ping(&self) -> Result<()> {
        let mut tx = self.db.read(Scope::System).await?;
        tx.scalar::<i64>(q("SELECT CAST(1 AS BIGINT)")).await?;
        Ok(())
    }

    async fn server_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        let mut tx = self.db.write(Scope::System).await?;
        tx.execute(
            q("INSERT INTO server_secret (id, value) VALUES (1, ?) ON CONFLICT (id) DO NOTHING")
                .bind(candidate),
        )
        .await?;
        let value = tx
            .scalar(q("SELECT value FROM server_secret WHERE id = 1"))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(value)
    }
}

#[async_trait::async_trait]
impl Users for SqlMeta {
    async fn invite_user(&self, inv: NewInvitation) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        tx.lock(&format!("user:{}", inv.name)).await?;
        let state: Option<String> = tx
            .scalar(q("SELECT state FROM users WHERE name = ?").bind(&inv.name))
            .await?;
        match state.as_deref() {
            Some("active") => return Err(StoreError::Conflict("user exists")),
            Some(_) => {
                tx.execute(
                    q("UPDATE users SET role = ?, invite_hash = ?, invite_expires = ? WHERE name = ?")
                        .binds((&inv.role, &inv.invite_hash, inv.expires, &inv.name)),
                )
                .await?;
            }
            None => {
                tx.execute(
                    q(
                        "INSERT INTO users (id, name, role, state, salt, kdf_m, kdf_t, kdf_p, \
                       invite_hash, invite_expires, created) \
                       VALUES (?, ?, ?, 'invited', ?, 0, 0, 0, ?, ?, ?)",
                    )
                    .binds((
                        &inv.id,
                        &inv.name,
                        &inv.role,
                        &inv.salt,
                        &inv.invite_hash,
                        inv.expires,
                        inv.now,
                    )),
                )
                .await?;
            }
        }
        tx.commit().await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        self.db
            .read_opt(
                Scope::System,
                q(format!("SELECT {USER_COLS} FROM users WHERE name = ?")).bind(name),
            )
            .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        self.db
            .read_opt(
                Scope::System,
                q(format!("SELECT {USER_COLS} FROM users WHERE id = ?")).bind(id),
            )
            .await
    }

    async fn register_user(&self, reg: Registration) -> Result<UserRow> {
        let mut tx = self.db.write(Scope::System).await?;
        let user: UserRow = tx
            .opt(
                q(format!(
                    "SELECT {USER_COLS} FROM users WHERE name = ? AND state = 'invited' \
                     AND invite_hash = ? AND invite_expires > ?"
                ))
                .binds((&reg.name, &reg.invite_hash, reg.now)),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        // An account key names one account: commits and chains are found by it.
        let taken: Option<String> = tx
            .scalar(q("SELECT id FROM users WHERE ed25519_public = ?").bind(&reg.ed25519_public))
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(
                "that account signing key is another account's: generate new keys",
            ));
        }
        tx.execute(
            q(
                "UPDATE users SET state = 'active', invite_hash = NULL, invite_expires = NULL, \
               kdf_m = ?, kdf_t = ?, kdf_p = ?, auth_hash = ?, x25519_recipient = ?, \
               ed25519_public = ?, wrapped_keys = ?, recipient_sig = ? WHERE id = ?",
            )
            .binds((
                reg.kdf.0,
                reg.kdf.1,
                reg.kdf.2,
                &reg.auth_hash,
                &reg.x25519_recipient,
                &reg.ed25519_public,
                &reg.wrapped_keys,
                &reg.recipient_sig,
                &user.id,
            )),
        )
        .await?;
        if reg.default_vault.owner_id != user.id {
            return Err(StoreError::NotFound);
        }
        insert_vault(&mut tx, &reg.default_vault).await?;
        let user = tx
            .one(q(format!("SELECT {USER_COLS} FROM users WHERE id = ?")).bind(&user.id))
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn list_users(&self) -> Result<Vec<UserRow>> {
        self.db
            .read_all(
                Scope::System,
                q(format!("SELECT {USER_COLS} FROM users ORDER BY name")),
            )
            .await
    }

    async fn set_quota(&self, name: &str, quota: Option<i64>) -> Result<()> {
        let stmt = q("UPDATE users SET quota_bytes = ? WHERE name = ?");
        self.db
            .write_found(Scope::System, stmt.binds((quota, name)))
            .await
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        // Locked (PostgreSQL), so an erasure starting at this moment is seen, or waits.
        let lock = tx.locking("FOR UPDATE");
        let id: String = tx
            .scalar(q(format!("SELECT id FROM users WHERE name = ? {lock}")).bind(name))
            .await?
            .ok_or(StoreError::NotFound)?;
        let erasing: Option<String> = tx
            .scalar(q("SELECT id FROM erasures WHERE user_id = ?").bind(&id))
            .await?;
        if erasing.is_some() {
            return Err(StoreError::Conflict(
                "this user is being erased; the erasure removes them when it finishes",
            ));
        }
        let now = unix_now();
        // Everything the user's rows reference goes on the collection queue with them.
        queue_blobs_of(&mut tx, "v.owner_id = ?", &id, now).await?;
        for from in [
            "u.blob_key FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE v.owner_id = ?",
            "o.blob_key FROM restic_objects o JOIN restic_repos r ON r.id = o.repo_id \
             WHERE r.user_id = ? AND o.data IS NULL",
            "blob_key FROM mercury_files WHERE user_id = ?",
            "b.blob_key FROM tree_blobs b JOIN vaults v ON v.id = b.vault_id WHERE v.owner_id = ?",
            "blob_key FROM backups WHERE user_id = ? AND blob_key IS NOT NULL",
        ] {
            queue_selected(&mut tx, now, from, (&id,)).await?;
        }
        tx.execute(q("DELETE FROM users WHERE id = ?").bind(&id))
            .await?;
        tx.commit().await
    }

    async fn set_role(&self, name: &str, role: &str) -> Result<()> {
        let stmt = q("UPDATE users SET role = ? WHERE name = ?");
        self.db
            .write_found(Scope::System, stmt.binds((role, name)))
            .await
    }
}

#[async_trait::async_trait]
impl Sessions for SqlMeta {
    async fn create_session(&self, s: SessionRow) -> Result<()> {
        self.db.write_one(Scope::System, insert(&s, "")).await?;
        Ok(())
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<SessionLookup> {
        match self.touch_or_expire(token_hash, now, idle_secs).await {
            // A full disk: the session is looked up without its refresh (tried again by the
            // next request), so that reads keep working while writes cannot.
            Err(e) if e.is_full() => self.look_up_session(token_hash, now, idle_secs).await,
            other => other,
        }
    }

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE user_id = ? ORDER BY created"
                ))
                .bind(user_id),
            )
            .await
    }

    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<bool> {
        Ok(self
            .db
            .write_one(
                Scope::Tenant,
                q("DELETE FROM sessions WHERE id = ? AND user_id = ?").binds((session_id, user_id)),
            )
            .await?
            > 0)
    }

    async fn change_passphrase(
        &self,
        user_id: &str,
        auth_hash: &str,
        wrapped_keys: &str,
        end_others_but: Option<&str>,
    ) -> Result<u64> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let done = tx
            .execute(
                q("UPDATE users SET auth_hash = ?, wrapped_keys = ? WHERE id = ?").binds((
                    auth_hash,
                    wrapped_keys,
                    user_id,
                )),
            )
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        let mut ended = 0;
        if let Some(keep) = end_others_but {
            ended = tx
                .execute(
                    q("DELETE FROM sessions WHERE user_id = ? AND id <> ?").binds((user_id, keep)),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    async fn add_ssh_key(&self, k: SshKeyRow) -> Result<()> {
        let stmt = insert(
            &k,
            "ON CONFLICT (user_id, fingerprint) DO UPDATE SET public_key = excluded.public_key, \
             comment = excluded.comment, wrapped_keys = excluded.wrapped_keys, \
             created = excluded.created",
        );
        self.db.write_one(Scope::Tenant, stmt).await?;
        Ok(())
    }

    async fn ssh_keys(&self, user_id: &str) -> Result<Vec<SshKeyRow>> {
        let cols = SshKeyRow::COLS;
        let stmt = q(format!(
            "SELECT {cols} FROM ssh_keys WHERE user_id = ? ORDER BY created"
        ));
        self.db.read_all(Scope::System, stmt.bind(user_id)).await
    }

    async fn put_challenge(
        &self,
        id: &str,
        user: &str,
        challenge: &[u8],
        expires: i64,
    ) -> Result<()> {
        let mut tx = self.db.write(Scope::System).await?;
        tx.execute(q("DELETE FROM ssh_challenges WHERE expires < ?").bind(unix_now()))
            .await?;
        tx.execute(
            q("INSERT INTO ssh_challenges (id, user_name, challenge, expires) VALUES (?, ?, ?, ?)")
                .binds((id, user, challenge, expires)),
        )
        .await?;
        tx.commit().await
    }

    async fn take_challenge(&self, id: &str, user: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let mut tx = self.db.write(Scope::System).await?;
        let challenge = tx
            .scalar(
                q(
                    "DELETE FROM ssh_challenges WHERE id = ? AND user_name = ? AND expires >= ? \
                   RETURNING challenge",
                )
                .binds((id, user, now)),
            )
            .await?;
        tx.commit().await?;
        Ok(challenge)
    }
}

impl SqlMeta {
    /// [`Sessions::touch_session`]: the lookup, with the refresh or the deletion it calls for.
    async fn touch_or_expire(
        &self,
        token_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<SessionLookup> {
        let mut tx = self.db.read(Scope::System).await?;
        loop {
            let Some(mut session) = session_by_token(&mut tx, token_hash).await? else {
                return Ok(SessionLookup::Unknown);
            };
            let expired = session.last_seen + idle_secs < now;
            // Refresh only when the stored time is stale, so reads do not all become writes.
            let stale = session.last_seen < now;
            if (expired || stale) && !tx.can_write() {
                drop(tx);
                tx = self.db.write(Scope::System).await?;
                continue;
            }
            if expired {
                tx.execute(q("DELETE FROM sessions WHERE id = ?").bind(&session.id))
                    .await?;
                tx.commit().await?;
                return Ok(SessionLookup::Expired);
            }
            if stale {
                tx.execute(
                    q("UPDATE sessions SET last_seen = ? WHERE id = ? AND last_seen < ?").binds((
                        now,
                        &session.id,
                        now,
                    )),
                )
                .await?;
                session.last_seen = now;
            }
            // In this transaction: a second pooled connection per request could exhaust the
            // pool.
            let found = with_user(&mut tx, session).await?;
            tx.commit().await?;
            return Ok(found);
        }
    }

    /// A session and its user, read only (not refreshed, an expired one not deleted).
    async fn look_up_session(
        &self,
        token_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<SessionLookup> {
        let mut tx = self.db.read(Scope::System).await?;
        let Some(session) = session_by_token(&mut tx, token_hash).await? else {
            return Ok(SessionLookup::Unknown);
        };
        if session.last_seen + idle_secs < now {
            return Ok(SessionLookup::Expired);
        }
        with_user(&mut tx, session).await
    }
}

async fn session_by_token(tx: &mut Tx, token_hash: &str) -> Result<Option<SessionRow>> {
    tx.opt(
        q(format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE token_hash = ?"
        ))
        .bind(token_hash),
    )
    .await
}

/// `session` with its user: valid, or unknown when the user is gone.
async fn with_user(tx: &mut Tx, session: SessionRow) -> Result<SessionLookup> {
    let user: Option<UserRow> = tx
        .opt(q(format!("SELECT {USER_COLS} FROM users WHERE id = ?")).bind(&session.user_id))
        .await?;
    Ok(match user {
        Some(user) => SessionLookup::Valid(Box::new((session, user))),
        None => SessionLookup::Unknown,
    })
}
