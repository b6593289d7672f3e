//! The embedded metadata backend: SQLite in WAL mode with `synchronous = FULL`, so a commit
//! that returned survives a crash. Writes run in `BEGIN IMMEDIATE` transactions (no lock
//! upgrades, so no deadlock between this server and `enc-server user create` next to it).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use enc_crypto::audit::{AuditFields, GENESIS, audit_hash};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::uploads;
use crate::*;

/// SQLite implementation of [`MetaStore`].
pub struct SqliteMeta {
    pool: SqlitePool,
    /// Serialises this process's write transactions here, so they queue on a cheap async
    /// lock instead of SQLite's busy handler (which sleeps for milliseconds between retries).
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding the process's write lock until it ends.
struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _lock: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

const USER_COLS: &str = "id, name, role, state, salt, kdf_m, kdf_t, kdf_p, invite_hash, \
    invite_expires, auth_hash, x25519_recipient, ed25519_public, wrapped_keys, recipient_sig, created, \
    usage_bytes, quota_bytes";

const TOKEN_COLS: &str =
    "id, user_id, token_hash, kind, scope, mode, label, created, expires, last_used";

const REPO_COLS: &str = "r.id, r.user_id, r.name, r.created, \
    (SELECT COUNT(*) FROM restic_objects o WHERE o.repo_id = r.id) AS objects, \
    (SELECT COALESCE(SUM(o.size), 0) FROM restic_objects o WHERE o.repo_id = r.id) AS bytes";

const VAULT_ACCESS: &str = "SELECT v.id, v.signed_id, v.owner_id, o.name AS owner_name, v.name, v.generation, \
    m.wrapped_keys, m.signature AS keys_signature, m.access, COALESCE(o.ed25519_public, '') AS owner_key, \
    (SELECT COUNT(*) FROM objects ob WHERE ob.vault_id = v.id) AS objects, \
    (SELECT COALESCE(SUM(ve.size), 0) FROM versions ve JOIN objects ob ON ve.object_id = ob.id \
        WHERE ob.vault_id = v.id) AS bytes \
    FROM vaults v JOIN vault_members m ON m.vault_id = v.id JOIN users o ON o.id = v.owner_id";

const VERSION_COLS: &str = "ve.id, ve.version, ve.blob_key, ve.size, ve.hash, ve.generation, \
    ve.signature, ve.author, ve.author_key, ve.created";

impl SqliteMeta {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        owner_only(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            write_lock: Default::default(),
        })
    }

    async fn write(&self) -> Result<WriteTx> {
        let lock = self.write_lock.clone().lock_owned().await;
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _lock: lock,
        })
    }
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

async fn queue_blobs_of(
    tx: &mut sqlx::SqliteConnection,
    filter: &'static str,
    arg: &str,
    now: i64,
) -> Result<()> {
    // `filter` selects version rows `ve` joined to objects `ob`; it is always a constant.
    let sql = format!(
        "INSERT OR IGNORE INTO blob_gc (blob_key, queued) \
         SELECT ve.blob_key, ? FROM versions ve JOIN objects ob ON ve.object_id = ob.id \
         JOIN vaults v ON v.id = ob.vault_id WHERE {filter}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(arg)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Queues a blob for deletion at `at`; a key already queued keeps the earlier time (see
/// [`MetaStore::queue_blob`]).
async fn queue_at(tx: &mut sqlx::SqliteConnection, key: &str, at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO blob_gc (blob_key, queued) VALUES (?, ?) \
         ON CONFLICT (blob_key) DO UPDATE SET queued = MIN(queued, excluded.queued)",
    )
    .bind(key)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Queues many blob keys for collection, a statement per 256 (one round trip each instead of
/// one per key). A key given twice keeps its earliest time.
async fn queue_many(tx: &mut sqlx::SqliteConnection, keys: &[(String, i64)]) -> Result<()> {
    let mut unique: std::collections::BTreeMap<&str, i64> = Default::default();
    for (key, at) in keys {
        let e = unique.entry(key.as_str()).or_insert(*at);
        *e = (*e).min(*at);
    }
    let unique: Vec<_> = unique.into_iter().collect();
    for chunk in unique.chunks(256) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO blob_gc (blob_key, queued) VALUES {values} \
             ON CONFLICT (blob_key) DO UPDATE SET queued = MIN(queued, excluded.queued)"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (key, at) in chunk {
            query = query.bind(*key).bind(*at);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Takes blob keys off the collection queue (their files are recorded), a statement per 256.
async fn unqueue_many(tx: &mut sqlx::SqliteConnection, keys: &[&str]) -> Result<()> {
    for chunk in keys.chunks(256) {
        let list = vec!["?"; chunk.len()].join(", ");
        let sql = format!("DELETE FROM blob_gc WHERE blob_key IN ({list})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for key in chunk {
            query = query.bind(*key);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Writes a throttle row.
async fn set_throttle(
    tx: &mut sqlx::SqliteConnection,
    key: &str,
    failures: i64,
    next_allowed: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO throttle (key, failures, next_allowed, updated) VALUES (?, ?, ?, ?) \
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, \
         next_allowed = excluded.next_allowed, updated = excluded.updated",
    )
    .bind(key)
    .bind(failures)
    .bind(next_allowed)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Changes a user's usage by `delta` bytes. Growth is refused with `QuotaExceeded` (and
/// nothing changed) when it would take the usage above `quota`.
async fn charge(
    tx: &mut sqlx::SqliteConnection,
    user_id: &str,
    delta: i64,
    quota: Option<i64>,
) -> Result<()> {
    match quota {
        Some(q) if delta > 0 => {
            let done = sqlx::query(
                "UPDATE users SET usage_bytes = usage_bytes + ? WHERE id = ? AND usage_bytes + ? <= ?",
            )
            .bind(delta)
            .bind(user_id)
            .bind(delta)
            .bind(q)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::QuotaExceeded);
            }
        }
        _ => {
            sqlx::query("UPDATE users SET usage_bytes = MAX(0, usage_bytes + ?) WHERE id = ?")
                .bind(delta)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Credits vault owners for the versions a filter (over `ve`, `ob`, `v`) is about to delete.
async fn credit_versions_of(
    tx: &mut sqlx::SqliteConnection,
    filter: &'static str,
    arg: &str,
) -> Result<()> {
    // `filter` is always a constant.
    let sql = format!(
        "SELECT v.owner_id, COALESCE(SUM(ve.size), 0) FROM versions ve \
         JOIN objects ob ON ve.object_id = ob.id JOIN vaults v ON v.id = ob.vault_id \
         WHERE {filter} GROUP BY v.owner_id"
    );
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(arg)
        .fetch_all(&mut *tx)
        .await?;
    for (owner, bytes) in rows {
        charge(tx, &owner, -bytes, None).await?;
    }
    Ok(())
}

/// A new vault at generation 1 with its owner as the first member.
async fn insert_vault(tx: &mut sqlx::SqliteConnection, v: &NewVault) -> Result<()> {
    sqlx::query(
        "INSERT INTO vaults (id, signed_id, owner_id, name, generation, created) VALUES (?, ?, ?, ?, 1, ?)",
    )
    .bind(&v.id)
    .bind(&v.signed_id)
    .bind(&v.owner_id)
    .bind(&v.name)
    .bind(v.now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO vault_members (vault_id, user_id, wrapped_keys, signature) VALUES (?, ?, ?, ?)",
    )
    .bind(&v.id)
    .bind(&v.owner_id)
    .bind(&v.wrapped_keys)
    .bind(&v.signature)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records one restic file in a batch's transaction (the caller takes the blob off the
/// collection queue when it is `Stored`). The charge comes first: when it is
/// refused nothing has changed, so no savepoint is needed around a file (two statements fewer
/// per file; each is a round trip to the database).
async fn put_one(tx: &mut sqlx::SqliteConnection, o: &NewResticObject) -> Result<PutOutcome> {
    match charge(tx, &o.user_id, o.size, o.quota).await {
        Ok(()) => {}
        Err(StoreError::QuotaExceeded) => {
            // A concurrent upload of the same file may have recorded it: not a refusal.
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM restic_objects WHERE repo_id = ? AND kind = ? AND name = ?",
            )
            .bind(&o.repo_id)
            .bind(&o.kind)
            .bind(&o.name)
            .fetch_optional(&mut *tx)
            .await?;
            return match exists {
                Some(_) => existed(tx, o).await,
                None => Err(StoreError::QuotaExceeded),
            };
        }
        Err(other) => return Err(other),
    }
    // The batch's multi-row insert with one row: it skips an existing name or a gone repository.
    let inserted = crate::records::RecordTx::insert(&mut *tx, &[o]).await?;
    if inserted.is_empty() {
        // Nothing recorded: give the charge back.
        charge(tx, &o.user_id, -o.size, None).await?;
        let repo: Option<i64> = sqlx::query_scalar("SELECT 1 FROM restic_repos WHERE id = ?")
            .bind(&o.repo_id)
            .fetch_optional(&mut *tx)
            .await?;
        if repo.is_none() {
            return Err(StoreError::NotFound);
        }
        return existed(tx, o).await;
    }
    Ok(PutOutcome::Stored)
}

#[async_trait::async_trait]
impl crate::records::RecordTx for sqlx::SqliteConnection {
    async fn charge(&mut self, user_id: &str, delta: i64, quota: Option<i64>) -> Result<()> {
        charge(self, user_id, delta, quota).await
    }

    async fn insert(
        &mut self,
        files: &[&NewResticObject],
    ) -> Result<Vec<crate::records::Inserted>> {
        const ROW: &str = "(?, ?, ?, ?, ?, ?, ?)";
        let rows = crate::records::padded_rows(files.len());
        let query = crate::records::bind_rows(
            sqlx::query_as(sqlx::AssertSqlSafe(crate::records::insert_sql(rows, ROW))),
            files,
        );
        Ok(query.fetch_all(&mut *self).await?)
    }

    async fn put_one(&mut self, o: &NewResticObject) -> Result<PutOutcome> {
        put_one(self, o).await
    }
}

/// Same name, same content: keep the stored copy, drop the new blob (if any) soon.
async fn existed(tx: &mut sqlx::SqliteConnection, o: &NewResticObject) -> Result<PutOutcome> {
    if o.data.is_some() {
        return Ok(PutOutcome::Existed);
    }
    sqlx::query("UPDATE blob_gc SET queued = ? WHERE blob_key = ?")
        .bind(o.now)
        .bind(&o.blob_key)
        .execute(&mut *tx)
        .await?;
    Ok(PutOutcome::Existed)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[async_trait::async_trait]
impl MetaStore for SqliteMeta {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn server_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO server_secret (id, value) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate)
        .execute(&mut *tx)
        .await?;
        let value: Vec<u8> = sqlx::query_scalar("SELECT value FROM server_secret WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(value)
    }

    async fn invite_user(&self, inv: NewInvitation) -> Result<()> {
        let mut tx = self.write().await?;
        let existing: Option<(String,)> = sqlx::query_as("SELECT state FROM users WHERE name = ?")
            .bind(&inv.name)
            .fetch_optional(&mut *tx)
            .await?;
        match existing {
            Some((state,)) if state == "active" => return Err(StoreError::Conflict("user exists")),
            Some(_) => {
                sqlx::query(
                    "UPDATE users SET role = ?, invite_hash = ?, invite_expires = ? WHERE name = ?",
                )
                .bind(&inv.role)
                .bind(&inv.invite_hash)
                .bind(inv.expires)
                .bind(&inv.name)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO users (id, name, role, state, salt, kdf_m, kdf_t, kdf_p, \
                     invite_hash, invite_expires, created) \
                     VALUES (?, ?, ?, 'invited', ?, 0, 0, 0, ?, ?, ?)",
                )
                .bind(&inv.id)
                .bind(&inv.name)
                .bind(&inv.role)
                .bind(&inv.salt)
                .bind(&inv.invite_hash)
                .bind(inv.expires)
                .bind(inv.now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE name = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn register_user(&self, reg: Registration) -> Result<UserRow> {
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE name = ? AND state = 'invited' \
             AND invite_hash = ? AND invite_expires > ?"
        );
        let user: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&reg.name)
            .bind(&reg.invite_hash)
            .bind(reg.now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query(
            "UPDATE users SET state = 'active', invite_hash = NULL, invite_expires = NULL, \
             kdf_m = ?, kdf_t = ?, kdf_p = ?, auth_hash = ?, x25519_recipient = ?, \
             ed25519_public = ?, wrapped_keys = ?, recipient_sig = ? WHERE id = ?",
        )
        .bind(reg.kdf.0)
        .bind(reg.kdf.1)
        .bind(reg.kdf.2)
        .bind(&reg.auth_hash)
        .bind(&reg.x25519_recipient)
        .bind(&reg.ed25519_public)
        .bind(&reg.wrapped_keys)
        .bind(&reg.recipient_sig)
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
        insert_vault(
            &mut tx,
            &NewVault {
                id: reg.default_vault_id.clone(),
                signed_id: reg.default_vault_signed_id.clone(),
                owner_id: user.id.clone(),
                name: "default".into(),
                wrapped_keys: reg.default_vault_keys.clone(),
                signature: reg.default_vault_sig.clone(),
                now: reg.now,
            },
        )
        .await?;
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?");
        let user = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&user.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn list_users(&self) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY name");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn set_quota(&self, name: &str, quota: Option<i64>) -> Result<()> {
        let done = sqlx::query("UPDATE users SET quota_bytes = ? WHERE name = ?")
            .bind(quota)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let id: (String,) = sqlx::query_as("SELECT id FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        queue_blobs_of(&mut tx, "v.owner_id = ?", &id.0, unix_now()).await?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (blob_key, queued) \
             SELECT u.blob_key, ? FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE v.owner_id = ?",
        )
        .bind(unix_now())
        .bind(&id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (blob_key, queued) \
             SELECT o.blob_key, ? FROM restic_objects o JOIN restic_repos r ON r.id = o.repo_id \
             WHERE r.user_id = ? AND o.data IS NULL",
        )
        .bind(unix_now())
        .bind(&id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (blob_key, queued) \
             SELECT blob_key, ? FROM mercury_files WHERE user_id = ?",
        )
        .bind(unix_now())
        .bind(&id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(&id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_role(&self, name: &str, role: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET role = ? WHERE name = ?")
            .bind(role)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_session(&self, s: SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, method, created, last_seen, device, client) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(&s.method)
        .bind(s.created)
        .bind(s.last_seen)
        .bind(&s.device)
        .bind(&s.client)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<SessionLookup> {
        let session: Option<SessionRow> = sqlx::query_as(
            "SELECT id, token_hash, user_id, method, created, last_seen, device, client FROM sessions WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(mut session) = session else {
            return Ok(SessionLookup::Unknown);
        };
        if session.last_seen + idle_secs < now {
            sqlx::query("DELETE FROM sessions WHERE id = ?")
                .bind(&session.id)
                .execute(&self.pool)
                .await?;
            return Ok(SessionLookup::Expired);
        }
        // Refresh only when the stored time is stale, so reads do not all become writes.
        if session.last_seen < now {
            sqlx::query("UPDATE sessions SET last_seen = ? WHERE id = ? AND last_seen < ?")
                .bind(now)
                .bind(&session.id)
                .bind(now)
                .execute(&self.pool)
                .await?;
            session.last_seen = now;
        }
        let Some(user) = self.user_by_id(&session.user_id).await? else {
            return Ok(SessionLookup::Unknown);
        };
        Ok(SessionLookup::Valid(Box::new((session, user))))
    }

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        Ok(sqlx::query_as(
            "SELECT id, token_hash, user_id, method, created, last_seen, device, client FROM sessions \
             WHERE user_id = ? ORDER BY created",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
            .bind(session_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn change_passphrase(
        &self,
        user_id: &str,
        auth_hash: &str,
        wrapped_keys: &str,
        end_others_but: Option<&str>,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE users SET auth_hash = ?, wrapped_keys = ? WHERE id = ?")
            .bind(auth_hash)
            .bind(wrapped_keys)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let mut ended = 0;
        if let Some(keep) = end_others_but {
            ended = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id <> ?")
                .bind(user_id)
                .bind(keep)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(ended)
    }

    async fn add_ssh_key(&self, k: SshKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO ssh_keys (user_id, fingerprint, public_key, comment, wrapped_keys, created) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.user_id)
        .bind(&k.fingerprint)
        .bind(&k.public_key)
        .bind(&k.comment)
        .bind(&k.wrapped_keys)
        .bind(k.created)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ssh_keys(&self, user_id: &str) -> Result<Vec<SshKeyRow>> {
        Ok(sqlx::query_as(
            "SELECT user_id, fingerprint, public_key, comment, wrapped_keys, created \
             FROM ssh_keys WHERE user_id = ? ORDER BY created",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_challenge(
        &self,
        id: &str,
        user: &str,
        challenge: &[u8],
        expires: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM ssh_challenges WHERE expires < ?")
            .bind(unix_now())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO ssh_challenges (id, user_name, challenge, expires) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(user)
        .bind(challenge)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_challenge(&self, id: &str, user: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as(
            "DELETE FROM ssh_challenges WHERE id = ? AND user_name = ? AND expires >= ? RETURNING challenge",
        )
        .bind(id)
        .bind(user)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn throttle_get(&self, key: &str) -> Result<Option<Throttle>> {
        Ok(
            sqlx::query_as("SELECT failures, next_allowed FROM throttle WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Throttle> {
        let mut tx = self.write().await?;
        let failures: i64 = sqlx::query_scalar("SELECT failures FROM throttle WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *tx)
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
        sqlx::query("UPDATE throttle SET failures = MAX(failures - 1, 0) WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn throttle_attempt(
        &self,
        keys: &[String],
        now: i64,
        free: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.write().await?;
        let mut current = Vec::with_capacity(keys.len());
        let mut wait = 0;
        for key in keys {
            let t: Option<Throttle> =
                sqlx::query_as("SELECT failures, next_allowed FROM throttle WHERE key = ?")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let t = t.unwrap_or(Throttle {
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
        sqlx::query("DELETE FROM throttle WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn throttle_mark(&self, key: &str, now: i64, until: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(crate::THROTTLE_MARK)
            .bind(key)
            .bind(until)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rate_take(&self, key: &str, now: i64, window: i64, limit: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM rate_events WHERE key = ? AND at <= ?")
            .bind(key)
            .bind(now - window)
            .execute(&mut *tx)
            .await?;
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rate_events WHERE key = ?")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        if used >= limit {
            return Ok(false);
        }
        sqlx::query("INSERT INTO rate_events (key, at) VALUES (?, ?)")
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_vault(&self, v: NewVault) -> Result<VaultAccess> {
        let mut tx = self.write().await?;
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT id FROM vaults WHERE owner_id = ? AND name = ?")
                .bind(&v.owner_id)
                .bind(&v.name)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict("a vault of that name exists"));
        }
        let id_taken: Option<(String,)> = sqlx::query_as("SELECT id FROM vaults WHERE id = ?")
            .bind(&v.id)
            .fetch_optional(&mut *tx)
            .await?;
        if id_taken.is_some() {
            return Err(StoreError::Conflict("vault id in use; choose another"));
        }
        insert_vault(&mut tx, &v).await?;
        tx.commit().await?;
        self.vault_access(&v.owner_id, &v.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn vaults_for(&self, user_id: &str) -> Result<Vec<VaultAccess>> {
        let sql = format!(
            "{VAULT_ACCESS} WHERE m.user_id = ? ORDER BY o.name <> (SELECT name FROM users WHERE id = ?), o.name, v.name"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn vault_access(&self, user_id: &str, vault_id: &str) -> Result<Option<VaultAccess>> {
        let sql = format!("{VAULT_ACCESS} WHERE m.user_id = ? AND v.id = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(vault_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn delete_vault(&self, vault_id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        credit_versions_of(&mut tx, "v.id = ?", vault_id).await?;
        let pending: Vec<(String, i64)> = sqlx::query_as(uploads::VAULT_CHARGES)
            .bind(vault_id)
            .fetch_all(&mut *tx)
            .await?;
        for (owner, bytes) in pending {
            charge(&mut tx, &owner, -bytes, None).await?;
        }
        queue_blobs_of(&mut tx, "v.id = ?", vault_id, unix_now()).await?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (blob_key, queued) SELECT blob_key, ? FROM uploads WHERE vault_id = ?",
        )
        .bind(unix_now())
        .bind(vault_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM vaults WHERE id = ?")
            .bind(vault_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn members(&self, vault_id: &str) -> Result<Vec<Member>> {
        Ok(sqlx::query_as(
            "SELECT u.id AS user_id, u.name, COALESCE(u.x25519_recipient, '') AS x25519_recipient, \
             COALESCE(u.ed25519_public, '') AS ed25519_public, \
             COALESCE(u.recipient_sig, '') AS recipient_sig, (u.id = v.owner_id) AS owner, m.access FROM vault_members m JOIN users u ON u.id = m.user_id \
             JOIN vaults v ON v.id = m.vault_id WHERE m.vault_id = ? ORDER BY owner DESC, u.name",
        )
        .bind(vault_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_member(
        &self,
        vault_id: &str,
        user_id: &str,
        wrapped_keys: &str,
        signature: &str,
        access: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO vault_members (vault_id, user_id, wrapped_keys, signature, access) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (vault_id, user_id) DO UPDATE SET wrapped_keys = excluded.wrapped_keys, \
             signature = excluded.signature, access = excluded.access",
        )
        .bind(vault_id)
        .bind(user_id)
        .bind(wrapped_keys)
        .bind(signature)
        .bind(access)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rotate_vault(
        &self,
        vault_id: &str,
        remove_user_id: &str,
        generation: u32,
        rewrapped: Vec<(String, String, String)>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let current: i64 = sqlx::query_scalar("SELECT generation FROM vaults WHERE id = ?")
            .bind(vault_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        if i64::from(generation) != current + 1 {
            return Err(StoreError::Conflict(
                "generation must be the current one plus one",
            ));
        }
        let removed = sqlx::query("DELETE FROM vault_members WHERE vault_id = ? AND user_id = ?")
            .bind(vault_id)
            .bind(remove_user_id)
            .execute(&mut *tx)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let mut remaining: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM vault_members WHERE vault_id = ?")
                .bind(vault_id)
                .fetch_all(&mut *tx)
                .await?;
        let mut given: Vec<String> = rewrapped.iter().map(|(u, _, _)| u.clone()).collect();
        remaining.sort();
        given.sort();
        if remaining != given {
            return Err(StoreError::Conflict(
                "new keys must cover exactly the remaining members",
            ));
        }
        for (user_id, wrapped, signature) in &rewrapped {
            sqlx::query(
                "UPDATE vault_members SET wrapped_keys = ?, signature = ? WHERE vault_id = ? AND user_id = ?",
            )
            .bind(wrapped)
            .bind(signature)
            .bind(vault_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE vaults SET generation = ? WHERE id = ?")
            .bind(i64::from(generation))
            .bind(vault_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_upload(&self, u: UploadRow, max_pending: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let done = sqlx::query(uploads::CREATE)
            .bind(&u.id)
            .bind(&u.vault_id)
            .bind(&u.user_id)
            .bind(&u.blob_key)
            .bind(u.size)
            .bind(&u.hash)
            .bind(u.created)
            .bind(&u.user_id)
            .bind(max_pending)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("too many uploads in progress"));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn charge_upload(&self, id: &str, n: i64, quota: Option<i64>) -> Result<()> {
        let mut tx = self.write().await?;
        let (owner, _): (String, i64) = sqlx::query_as(uploads::STREAMING)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        charge(&mut tx, &owner, n, quota).await?;
        sqlx::query(uploads::ADD_CHARGE)
            .bind(n)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn complete_upload(&self, id: &str, size: i64, hash: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let (owner, charged): (String, i64) = sqlx::query_as(uploads::STREAMING)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let kept = charged.min(size);
        charge(&mut tx, &owner, kept - charged, None).await?;
        sqlx::query(uploads::COMPLETE)
            .bind(size)
            .bind(hash)
            .bind(kept)
            .bind(unix_now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_upload(&self, id: &str, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let pending: Option<(String, i64, String)> = sqlx::query_as(uploads::PENDING)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((owner, charged, blob_key)) = pending {
            charge(&mut tx, &owner, -charged, None).await?;
            sqlx::query("INSERT OR IGNORE INTO blob_gc (blob_key, queued) VALUES (?, ?)")
                .bind(&blob_key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(uploads::DELETE)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn commit_version(&self, c: NewVersion, keep: u32) -> Result<VersionRow> {
        let mut tx = self.write().await?;
        let upload: UploadRow = sqlx::query_as(
            "SELECT id, vault_id, user_id, blob_key, size, hash, created FROM uploads \
             WHERE id = ? AND vault_id = ? AND user_id = ?",
        )
        .bind(&c.upload_id)
        .bind(&c.vault_id)
        .bind(&c.user_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if upload.size < 0 || upload.size != c.size || upload.hash != c.hash {
            return Err(StoreError::Conflict(
                "size or hash differ from what was uploaded",
            ));
        }
        // Membership and key generation again, inside the transaction: an unshare may have
        // committed since the handler checked them.
        let author: Option<(String, String)> = sqlx::query_as(
            "SELECT u.name, COALESCE(u.ed25519_public, '') FROM vault_members m \
             JOIN users u ON u.id = m.user_id JOIN vaults v ON v.id = m.vault_id \
             WHERE m.vault_id = ? AND m.user_id = ? AND v.generation = ? AND m.access <> 'read'",
        )
        .bind(&c.vault_id)
        .bind(&c.user_id)
        .bind(c.generation)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((author, author_key)) = author else {
            return Err(StoreError::Conflict(
                "the vault's keys or members changed; fetch them again and retry",
            ));
        };
        let object_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM objects WHERE vault_id = ? AND enc_name = ?")
                .bind(&c.vault_id)
                .bind(&c.enc_name)
                .fetch_optional(&mut *tx)
                .await?;
        let object_id = match object_id {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                sqlx::query(
                    "INSERT INTO objects (id, vault_id, enc_name, created) VALUES (?, ?, ?, ?)",
                )
                .bind(&id)
                .bind(&c.vault_id)
                .bind(&c.enc_name)
                .bind(c.now)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        let latest: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM versions WHERE object_id = ?",
        )
        .bind(&object_id)
        .fetch_one(&mut *tx)
        .await?;
        if c.version != latest + 1 {
            return Err(StoreError::Conflict("version is not the latest plus one"));
        }
        sqlx::query(
            "INSERT INTO versions (id, object_id, version, blob_key, size, hash, generation, \
             signature, author_id, author, author_key, created) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&upload.id)
        .bind(&object_id)
        .bind(c.version)
        .bind(&upload.blob_key)
        .bind(c.size)
        .bind(&c.hash)
        .bind(c.generation)
        .bind(&c.signature)
        .bind(&c.user_id)
        .bind(&author)
        .bind(&author_key)
        .bind(c.now)
        .execute(&mut *tx)
        .await?;
        let charged: i64 = sqlx::query_scalar(uploads::CHARGED)
            .bind(&upload.id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(uploads::DELETE)
            .bind(&upload.id)
            .execute(&mut *tx)
            .await?;
        let cutoff = c.version - i64::from(keep.max(1));
        let (owner, pruned): (String, i64) = sqlx::query_as(
            "SELECT v.owner_id, (SELECT COALESCE(SUM(size), 0) FROM versions \
             WHERE object_id = ? AND version <= ?) FROM vaults v WHERE v.id = ?",
        )
        .bind(&object_id)
        .bind(cutoff)
        .bind(&c.vault_id)
        .fetch_one(&mut *tx)
        .await?;
        // The upload's bytes were charged while they streamed.
        charge(&mut tx, &owner, c.size - pruned - charged, c.quota).await?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (blob_key, queued) \
             SELECT blob_key, ? FROM versions WHERE object_id = ? AND version <= ?",
        )
        .bind(c.now)
        .bind(&object_id)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM versions WHERE object_id = ? AND version <= ?")
            .bind(&object_id)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let sql = format!("SELECT {VERSION_COLS} FROM versions ve WHERE ve.id = ?");
        let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&upload.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn list_objects(&self, vault_id: &str) -> Result<Vec<(String, VersionRow)>> {
        let sql = format!(
            "SELECT ob.enc_name, {VERSION_COLS} FROM objects ob \
             JOIN versions ve ON ve.object_id = ob.id \
             \
             WHERE ob.vault_id = ? AND ve.version = \
               (SELECT MAX(version) FROM versions WHERE object_id = ob.id) \
             ORDER BY ob.enc_name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(vault_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("enc_name")?;
                let v = <VersionRow as sqlx::FromRow<_>>::from_row(r)?;
                Ok((name, v))
            })
            .collect()
    }

    async fn object_versions(&self, vault_id: &str, enc_name: &str) -> Result<Vec<VersionRow>> {
        let sql = format!(
            "SELECT {VERSION_COLS} FROM objects ob JOIN versions ve ON ve.object_id = ob.id \
             \
             WHERE ob.vault_id = ? AND ob.enc_name = ? ORDER BY ve.version DESC"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(vault_id)
            .bind(enc_name)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn version(&self, vault_id: &str, version_id: &str) -> Result<Option<VersionRow>> {
        let sql = format!(
            "SELECT {VERSION_COLS} FROM objects ob JOIN versions ve ON ve.object_id = ob.id \
             WHERE ob.vault_id = ? AND ve.id = ?"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(vault_id)
            .bind(version_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn delete_object(&self, vault_id: &str, enc_name: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let object_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM objects WHERE vault_id = ? AND enc_name = ?")
                .bind(vault_id)
                .bind(enc_name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(object_id) = object_id else {
            return Ok(false);
        };
        credit_versions_of(&mut tx, "ob.id = ?", &object_id).await?;
        queue_blobs_of(&mut tx, "ob.id = ?", &object_id, unix_now()).await?;
        sqlx::query("DELETE FROM objects WHERE id = ?")
            .bind(&object_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn prune(&self, now: i64, idle_secs: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE last_seen + ? < ?")
            .bind(idle_secs)
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM throttle WHERE updated < ? AND next_allowed < ?")
            .bind(now - 86_400)
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM rate_events WHERE at < ?")
            .bind(now - 86_400)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM ssh_challenges WHERE expires < ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn expire_uploads(&self, completed_before: i64, before: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let charges: Vec<(String, i64)> = sqlx::query_as(uploads::EXPIRED_CHARGES)
            .bind(completed_before)
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
        for (owner, bytes) in charges {
            charge(&mut tx, &owner, -bytes, None).await?;
        }
        sqlx::query(
            sqlx::AssertSqlSafe(format!("INSERT OR IGNORE INTO blob_gc (blob_key, queued) SELECT blob_key, ? FROM uploads WHERE {}", uploads::EXPIRED)),
        )
        .bind(unix_now())
        .bind(completed_before)
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM uploads WHERE {}",
            uploads::EXPIRED
        )))
        .bind(completed_before)
        .bind(before)
        .execute(&mut *tx)
        .await?;
        // A Mercury reservation's blob is already queued (for the end of its reservation).
        sqlx::query("DELETE FROM mercury_files WHERE state = 'pending' AND created < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn gc_pending(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT blob_key FROM blob_gc WHERE queued <= ? ORDER BY queued LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn gc_retry_later(&self, keys: &[String], now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        for k in keys {
            sqlx::query("UPDATE blob_gc SET queued = ? WHERE blob_key = ?")
                .bind(now)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn queue_blob(&self, key: &str, at: i64) -> Result<()> {
        queue_at(&mut *self.pool.acquire().await?, key, at).await?;
        Ok(())
    }

    async fn gc_done(&self, keys: &[String]) -> Result<()> {
        let mut tx = self.write().await?;
        for k in keys {
            sqlx::query("DELETE FROM blob_gc WHERE blob_key = ?")
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_token(&self, t: AccessTokenRow) -> Result<()> {
        sqlx::query(
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
        .bind(t.expires)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<AccessTokenRow>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM access_tokens WHERE id = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn tokens_for(&self, user_id: &str) -> Result<Vec<AccessTokenRow>> {
        let sql = format!(
            "SELECT {TOKEN_COLS} FROM access_tokens WHERE user_id = ? ORDER BY created DESC, id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM access_tokens WHERE user_id = ? AND id = ?")
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE access_tokens SET last_used = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn restic_repo(&self, user_id: &str, name: &str) -> Result<Option<ResticRepoRow>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, created, 0 AS objects, 0 AS bytes FROM restic_repos \
             WHERE user_id = ? AND name = ?",
        )
        .bind(user_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn create_restic_repo(
        &self,
        id: &str,
        user_id: &str,
        name: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO restic_repos (id, user_id, name, created) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, name) DO NOTHING",
        )
        .bind(id)
        .bind(user_id)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn restic_repos(&self, user_id: &str) -> Result<Vec<ResticRepoRow>> {
        let sql =
            format!("SELECT {REPO_COLS} FROM restic_repos r WHERE r.user_id = ? ORDER BY r.name");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn delete_restic_repo(&self, repo_id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let owner: Option<(String, i64)> = sqlx::query_as(
            "SELECT r.user_id, (SELECT COALESCE(SUM(size), 0) FROM restic_objects WHERE repo_id = r.id) \
             FROM restic_repos r WHERE r.id = ?",
        )
        .bind(repo_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner, bytes)) = owner else {
            return Err(StoreError::NotFound);
        };
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (blob_key, queued) \
             SELECT blob_key, ? FROM restic_objects WHERE repo_id = ? AND data IS NULL",
        )
        .bind(unix_now())
        .bind(repo_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM restic_repos WHERE id = ?")
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        charge(&mut tx, &owner, -bytes, None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn restic_object(
        &self,
        repo_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<ResticObjectRow>> {
        Ok(sqlx::query_as(
            "SELECT name, size, blob_key, data FROM restic_objects \
             WHERE repo_id = ? AND kind = ? AND name = ?",
        )
        .bind(repo_id)
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn restic_list(&self, repo_id: &str, kind: &str) -> Result<Vec<ResticObjectRow>> {
        Ok(sqlx::query_as(
            "SELECT name, size, '' AS blob_key, NULL AS data FROM restic_objects \
             WHERE repo_id = ? AND kind = ?",
        )
        .bind(repo_id)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn restic_write_batch(
        &self,
        reserve: Vec<(String, i64)>,
        puts: Vec<NewResticObject>,
    ) -> Result<Vec<Result<PutOutcome>>> {
        let mut tx = self.write().await?;
        queue_many(&mut tx, &reserve).await?;
        let out = crate::records::put_many(&mut *tx, &puts).await?;
        unqueue_many(&mut tx, &crate::records::stored_blobs(&puts, &out)).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn restic_delete(
        &self,
        repo_id: &str,
        user_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<i64>> {
        let mut tx = self.write().await?;
        let row: Option<(i64, String, bool)> = sqlx::query_as(
            "DELETE FROM restic_objects WHERE repo_id = ? AND kind = ? AND name = ? \
             RETURNING size, blob_key, data IS NOT NULL",
        )
        .bind(repo_id)
        .bind(kind)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((size, blob_key, inline)) = row else {
            return Ok(None);
        };
        if !inline {
            sqlx::query("INSERT OR IGNORE INTO blob_gc (blob_key, queued) VALUES (?, ?)")
                .bind(&blob_key)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
        }
        charge(&mut tx, user_id, -size, None).await?;
        tx.commit().await?;
        Ok(Some(size))
    }

    async fn mercury_reserve(&self, r: MercuryReservation) -> Result<Option<String>> {
        let mut tx = self.write().await?;
        let mut chosen = None;
        for name in &r.candidates {
            let done = sqlx::query(
                "INSERT INTO mercury_files (space, name, state, size, blob_key, user_id, created) \
                 VALUES (?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (space, name) DO NOTHING",
            )
            .bind(&r.space)
            .bind(name)
            .bind(&r.blob_key)
            .bind(&r.user_id)
            .bind(r.now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                chosen = Some(name.clone());
                break;
            }
        }
        if chosen.is_some() {
            queue_at(&mut tx, &r.blob_key, r.until).await?;
        }
        tx.commit().await?;
        Ok(chosen)
    }

    async fn mercury_commit(&self, c: MercuryCommit) -> Result<()> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE mercury_files SET state = 'stored', size = ?, created = ? \
             WHERE space = ? AND name = ? AND blob_key = ? AND state = 'pending'",
        )
        .bind(c.size)
        .bind(c.now)
        .bind(&c.space)
        .bind(&c.name)
        .bind(&c.blob_key)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some((user_id, quota)) = &c.user {
            charge(&mut tx, user_id, c.size, *quota).await?;
        }
        if let Some(limit) = c.space_limit {
            let used: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(size), 0) FROM mercury_files WHERE space = ? AND state = 'stored'",
            )
            .bind(&c.space)
            .fetch_one(&mut *tx)
            .await?;
            if used > limit {
                return Err(StoreError::QuotaExceeded);
            }
        }
        sqlx::query("DELETE FROM blob_gc WHERE blob_key = ?")
            .bind(&c.blob_key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mercury_abort(&self, space: &str, name: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let key: Option<String> = sqlx::query_scalar(
            "DELETE FROM mercury_files WHERE space = ? AND name = ? AND state = 'pending' \
             RETURNING blob_key",
        )
        .bind(space)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(key) = key {
            queue_at(&mut tx, &key, unix_now()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mercury_files(&self, space: &str) -> Result<Vec<MercuryFileRow>> {
        Ok(sqlx::query_as(
            "SELECT name, size, blob_key, created FROM mercury_files \
             WHERE space = ? AND state = 'stored' ORDER BY name",
        )
        .bind(space)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn mercury_file(&self, space: &str, name: &str) -> Result<Option<MercuryFileRow>> {
        Ok(sqlx::query_as(
            "SELECT name, size, blob_key, created FROM mercury_files \
             WHERE space = ? AND name = ? AND state = 'stored'",
        )
        .bind(space)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn mercury_usage(&self, space: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(SUM(size), 0) FROM mercury_files WHERE space = ? AND state = 'stored'",
        )
        .bind(space)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn audit_append(&self, e: NewAudit) -> Result<AuditRow> {
        let mut tx = self.write().await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (seq, prev_hash) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_string()),
        };
        let hash = audit_hash(
            &prev_hash,
            &AuditFields {
                seq,
                ts: e.ts,
                actor: &e.actor,
                action: &e.action,
                target: &e.target,
                outcome: &e.outcome,
                client: &e.client,
            },
        );
        sqlx::query(
            "INSERT INTO audit (seq, ts, actor, actor_id, action, target, outcome, client, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(e.ts)
        .bind(&e.actor)
        .bind(&e.actor_id)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.outcome)
        .bind(&e.client)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(AuditRow {
            seq,
            ts: e.ts,
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            client: e.client,
            prev_hash,
            hash,
        })
    }

    async fn audit_list(&self, actor_id: Option<&str>) -> Result<Vec<AuditRow>> {
        let cols = "seq, ts, actor, action, target, outcome, client, prev_hash, hash";
        Ok(match actor_id {
            Some(id) => {
                let sql = format!("SELECT {cols} FROM audit WHERE actor_id = ? ORDER BY seq");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("SELECT {cols} FROM audit ORDER BY seq");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?
            }
        })
    }
}
