//! Access tokens for restic and Mercury: listed and revoked by their user (tenant scope),
//! looked up by id when a client presents one (system scope: the caller is not known yet).

use super::{Db, Scope, q};
use crate::*;

const TOKEN_COLS: &str =
    "id, user_id, token_hash, kind, scope, mode, label, created, expires, last_used";

impl Db {
    pub(crate) async fn create_token(&self, t: AccessTokenRow) -> Result<()> {
        let mut tx = self.write(Scope::Tenant).await?;
        tx.execute(
            q(
                "INSERT INTO access_tokens (id, user_id, token_hash, kind, scope, mode, label, \
               created, expires, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            )
            .bind(&t.id)
            .bind(&t.user_id)
            .bind(&t.token_hash)
            .bind(&t.kind)
            .bind(&t.scope)
            .bind(&t.mode)
            .bind(&t.label)
            .bind(t.created)
            .bind(t.expires),
        )
        .await?;
        tx.commit().await
    }

    pub(crate) async fn token(&self, id: &str) -> Result<Option<AccessTokenRow>> {
        let mut tx = self.read(Scope::System).await?;
        tx.opt(
            q(format!(
                "SELECT {TOKEN_COLS} FROM access_tokens WHERE id = ?"
            ))
            .bind(id),
        )
        .await
    }

    pub(crate) async fn tokens_for(&self, user_id: &str) -> Result<Vec<AccessTokenRow>> {
        let mut tx = self.read(Scope::Tenant).await?;
        tx.all(
            q(format!(
                "SELECT {TOKEN_COLS} FROM access_tokens WHERE user_id = ? \
                 ORDER BY created DESC, id"
            ))
            .bind(user_id),
        )
        .await
    }

    pub(crate) async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.write(Scope::Tenant).await?;
        let done = tx
            .execute(
                q("DELETE FROM access_tokens WHERE user_id = ? AND id = ?")
                    .bind(user_id)
                    .bind(id),
            )
            .await?;
        tx.commit().await?;
        Ok(done > 0)
    }

    pub(crate) async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
        let mut tx = self.write(Scope::System).await?;
        tx.execute(
            q("UPDATE access_tokens SET last_used = ? WHERE id = ?")
                .bind(now)
                .bind(id),
        )
        .await?;
        tx.commit().await
    }
}
