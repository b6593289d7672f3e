//! Access tokens for restic and Mercury: listed and revoked by their user (tenant scope),
//! looked up by id when a client presents one (system scope: the caller is not known yet).

use super::{Scope, SqlMeta, Stored, insert, q};
use crate::*;

const TOKEN_COLS: &str = AccessTokenRow::COLS;

#[async_trait::async_trait]
impl Tokens for SqlMeta {
    async fn create_token(&self, t: AccessTokenRow) -> Result<()> {
        self.db.write_one(Scope::Tenant, insert(&t, "")).await?;
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<AccessTokenRow>> {
        self.db
            .read_opt(
                Scope::System,
                q(format!(
                    "SELECT {TOKEN_COLS} FROM access_tokens WHERE id = ?"
                ))
                .bind(id),
            )
            .await
    }

    async fn tokens_for(&self, user_id: &str) -> Result<Vec<AccessTokenRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {TOKEN_COLS} FROM access_tokens WHERE user_id = ? \
                 ORDER BY created DESC, id"
                ))
                .bind(user_id),
            )
            .await
    }

    async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool> {
        Ok(self
            .db
            .write_one(
                Scope::Tenant,
                q("DELETE FROM access_tokens WHERE user_id = ? AND id = ?").binds((user_id, id)),
            )
            .await?
            > 0)
    }

    async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
        self.db
            .write_one(
                Scope::System,
                q("UPDATE access_tokens SET last_used = ? WHERE id = ?").binds((now, id)),
            )
            .await?;
        Ok(())
    }
}
