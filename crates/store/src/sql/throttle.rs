//! Login throttling and sliding-window allowances. Every replica counts into the same rows,
//! so each read that decides a write holds the key's lock first.

use super::{Scope, SqlMeta, Tx, q};
use crate::*;

/// Writes a throttle row.
async fn set_throttle(
    tx: &mut Tx,
    key: &str,
    failures: i64,
    next_allowed: i64,
    now: i64,
) -> Result<()> {
    tx.execute(
        q(
            "INSERT INTO throttle (key, failures, next_allowed, updated) VALUES (?, ?, ?, ?) \
           ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, \
           next_allowed = excluded.next_allowed, updated = excluded.updated",
        )
        .binds((key, failures, next_allowed, now)),
    )
    .await?;
    Ok(())
}

const THROTTLE_ROW: &str = "SELECT failures, next_allowed FROM throttle WHERE key = ?";

#[async_trait::async_trait]
impl Throttling for SqlMeta {
    async fn throttle_get(&self, key: &str) -> Result<Option<Throttle>> {
        self.db
            .read_opt(Scope::System, q(THROTTLE_ROW).bind(key))
            .await
    }

    async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Throttle> {
        let mut tx = self.db.write(Scope::System).await?;
        tx.lock(&format!("throttle:{key}")).await?;
        let failures = tx
            .scalar::<i64>(q("SELECT failures FROM throttle WHERE key = ?").bind(key))
            .await?
            .unwrap_or(0)
            + 1;
        let next_allowed = now + backoff(failures);
        set_throttle(&mut tx, key, failures, next_allowed, now).await?;
        tx.commit().await?;
        Ok(Throttle {
            failures,
            next_allowed,
        })
    }

    async fn throttle_undo(&self, key: &str) -> Result<()> {
        let stmt = q(
            "UPDATE throttle SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END \
               WHERE key = ?",
        )
        .bind(key);
        self.db.write_one(Scope::System, stmt).await?;
        Ok(())
    }

    async fn rate_take(&self, key: &str, now: i64, window: i64, limit: i64) -> Result<bool> {
        let mut tx = self.db.write(Scope::System).await?;
        tx.lock(&format!("rate:{key}")).await?;
        tx.execute(
            q("DELETE FROM rate_events WHERE key = ? AND at <= ?").binds((key, now - window)),
        )
        .await?;
        let used = tx
            .scalar::<i64>(q("SELECT COUNT(*) FROM rate_events WHERE key = ?").bind(key))
            .await?
            .unwrap_or(0);
        if used >= limit {
            return Ok(false);
        }
        tx.execute(q("INSERT INTO rate_events (key, at) VALUES (?, ?)").binds((key, now)))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn throttle_attempt(
        &self,
        keys: &[String],
        now: i64,
        free: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.db.write(Scope::System).await?;
        // Lock the keys in one order, so two attempts never wait on each other crosswise.
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        for key in sorted {
            tx.lock(&format!("throttle:{key}")).await?;
        }
        let mut current = Vec::with_capacity(keys.len());
        let mut wait = 0;
        for key in keys {
            let t: Throttle = tx
                .opt(q(THROTTLE_ROW).bind(key))
                .await?
                .unwrap_or(Throttle {
                    failures: 0,
                    next_allowed: 0,
                });
            if t.failures >= free && t.next_allowed > now {
                wait = wait.max(t.next_allowed - now);
            }
            current.push(t.failures);
        }
        if wait > 0 {
            return Ok(Some(wait));
        }
        for (key, failures) in keys.iter().zip(current) {
            let failures = failures + 1;
            set_throttle(&mut tx, key, failures, now + backoff(failures), now).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn throttle_clear(&self, key: &str) -> Result<()> {
        self.db
            .write_one(
                Scope::System,
                q("DELETE FROM throttle WHERE key = ?").bind(key),
            )
            .await?;
        Ok(())
    }

    async fn throttle_mark(&self, key: &str, now: i64, until: i64) -> Result<()> {
        let stmt = q(
            "INSERT INTO throttle (key, failures, next_allowed, updated) VALUES (?, 0, ?, ?) \
               ON CONFLICT (key) DO UPDATE SET failures = 0, \
               next_allowed = excluded.next_allowed, updated = excluded.updated",
        )
        .binds((key, until, now));
        self.db.write_one(Scope::System, stmt).await?;
        Ok(())
    }
}
