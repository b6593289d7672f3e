//! The scale-out metadata backend: PostgreSQL, shared by any number of stateless replicas.
//!
//! Every method is one transaction that first sets its tenant with `set_config(…, true)` (a
//! `SET LOCAL`, so nothing leaks to the next user of a pooled connection): `app.user_id` is
//! the user of [`crate::tenant`]'s scope for the methods that act on one tenant's data, and
//! `app.system` is on for the server's own cross-tenant work (authentication lookups, account
//! administration, the blob collector, the audit chain). The policies of
//! `migrations/postgres` then hide every other tenant's rows, behind the checks the handlers
//! already make. Concurrency between replicas is the database's: row locks, `ON CONFLICT`,
//! and transaction-scoped advisory locks where a read decides a write.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row as _};

use crate::Result;
use crate::sql::{Db, SqlMeta};

/// What the server must know about the role it connects as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleCheck {
    /// A superuser or a role with BYPASSRLS: policies do not bind it.
    pub bypasses_rls: bool,
    /// Owns at least one table of the schema: FORCE makes policies bind it, but it could
    /// turn them off.
    pub owns_tables: bool,
}

/// What [`connect`] found about the database it connected to, for the server to refuse a
/// setup that row-level security would not protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Migrations the schema lacks (they need the owner's role: `enc-server migrate`).
    pub pending_migrations: usize,
    /// The connecting role.
    pub role: RoleCheck,
}

/// Connects to the database as the server's (non-owner) role.
pub async fn connect(url: &str) -> Result<(SqlMeta, Checks)> {
    let opts: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(opts)
        .await?;
    let known = sqlx::migrate!("./migrations/postgres").iter().count();
    let done = applied(&pool).await.unwrap_or(0);
    let checks = Checks {
        pending_migrations: known.saturating_sub(done),
        role: role_check(&pool).await?,
    };
    Ok((SqlMeta::new(Db::pg(pool)), checks))
}

/// Runs the migrations as the schema's owner; how many were applied now.
pub async fn migrate(url: &str) -> Result<usize> {
    let opts: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?;
    let migrator = sqlx::migrate!("./migrations/postgres");
    let before = applied(&pool).await.unwrap_or(0);
    migrator.run(&pool).await?;
    let after = applied(&pool).await?;
    pool.close().await;
    Ok(after.saturating_sub(before))
}

async fn role_check(pool: &PgPool) -> Result<RoleCheck> {
    let row = sqlx::query(
        "SELECT (r.rolsuper OR r.rolbypassrls) AS bypasses, \
         EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = current_schema() \
                 AND t.tableowner = current_user) AS owns \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    Ok(RoleCheck {
        bypasses_rls: row.try_get("bypasses")?,
        owns_tables: row.try_get("owns")?,
    })
}

/// Migrations recorded as applied (`_sqlx_migrations`).
async fn applied(pool: &PgPool) -> Result<usize> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(n as usize)
}
