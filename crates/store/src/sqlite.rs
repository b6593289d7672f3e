//! The embedded metadata engine: SQLite in WAL mode with `synchronous = FULL`, so a commit
//! that returned survives a crash. Writes run in `BEGIN IMMEDIATE` transactions under the
//! process's write lock (see [`crate::sql::engine`]): no lock upgrades, so no deadlock between
//! this server and `enc-server user create` next to it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::sql::{Db, SqlMeta};
use crate::{Result, StoreError};

/// Opens (creating if needed) the database file and runs the migrations.
pub async fn open(path: &Path) -> Result<SqlMeta> {
    owner_only(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    let opts = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // Deleted rows are overwritten with zeros, not left in free pages (an erased
        // user's rows must not be readable from the file).
        .pragma("secure_delete", "ON")
        .busy_timeout(Duration::from_secs(10));
    // No ping before a connection is handed out: it checks nothing a local file could
    // lose, and costs a round trip to the connection's thread per transaction.
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        // A COMMIT that fails (a full disk) may leave SQLite's transaction rolled back while
        // sqlx still counts it open, and every later transaction on that connection would
        // fail: such a connection is closed instead of handed out again.
        .before_acquire(|conn, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
        })
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(SqlMeta::new(Db::sqlite(pool, Default::default())))
}

/// The database and its WAL and shared-memory files are readable by their owner only,
/// whatever the umask: the file is made 0600 before SQLite first opens it (SQLite gives the
/// `-wal` and `-shm` files the database's mode), and existing ones are tightened.
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}
