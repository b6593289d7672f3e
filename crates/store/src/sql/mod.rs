//! The metadata store's SQL, written once for both engines over the narrow [`engine`]
//! layer. Each concern has its file; each method opens exactly one transaction (a read that
//! finds it must write gives up its read transaction and decides again in a write one), in
//! the row-level-security [`Scope`] written next to it.

pub(crate) mod engine;

mod accounts;
mod audit;
mod backups;
mod devices;
mod erasure;
mod mercury;
mod records;
mod restic;
mod restic_batch;
mod throttle;
mod tokens;
mod trees;
mod upkeep;
mod vaults;
mod versions;

pub(crate) use engine::{Args, Db, Q, Tx, q};
pub use engine::{EngineCounts, Scope};

use crate::{NewVault, Result, StoreError};

/// The SQL metadata store, on SQLite ([`crate::sqlite::open`]) or PostgreSQL
/// ([`crate::postgres::connect`]): one implementation of every concern of [`crate::meta`] for
/// both engines, written in the concern's file of this module.
pub struct SqlMeta {
    db: Db,
}

impl SqlMeta {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A row type kept whole in one table, its columns named once: a `SELECT` of them and the
/// `INSERT` of a row (see [`insert`]) come from one list, so they cannot disagree.
pub(crate) trait Stored {
    const TABLE: &'static str;
    /// The columns, comma-separated, in the order of the fields.
    const COLS: &'static str;
    /// Binds the row's values in the order of [`Stored::COLS`].
    fn bind_row(&self, q: Q) -> Q;
}

/// [`Stored`] for rows whose fields are the table's columns of the same names.
macro_rules! stored {
    ($($row:ty => $table:literal ($($col:ident),+ $(,)?);)*) => {$(
        impl Stored for $row {
            const TABLE: &'static str = $table;
            const COLS: &'static str = stringify!($($col),+);
            fn bind_row(&self, q: Q) -> Q {
                q$(.bind(&self.$col))+
            }
        }
    )*};
}

stored! {
    crate::UserRow => "users" (
        id, name, role, state, salt, kdf_m, kdf_t, kdf_p, invite_hash, invite_expires, auth_hash,
        x25519_recipient, ed25519_public, wrapped_keys, recipient_sig, created, usage_bytes,
        quota_bytes,
    );
    crate::SessionRow => "sessions" (
        id, token_hash, user_id, method, created, last_seen, device, client, device_id,
    );
    crate::SshKeyRow => "ssh_keys" (
        user_id, fingerprint, public_key, comment, wrapped_keys, created,
    );
    crate::AccessTokenRow => "access_tokens" (
        id, user_id, token_hash, kind, scope, mode, label, created, expires, last_used,
        device_id,
    );
    crate::AccountLinkRow => "account_links" (
        user_id, seq, hash, prev, kind, device_id, device_name, device_key, created, signature,
        version, name_salt, name_commitment, last_counter, last_entry, commit_ends,
    );
    crate::DeviceRow => "devices" (
        user_id, id, name, public_key, created, last_seen, added_seq, revoked_seq, revoked_at,
    );
    crate::BackupRow => "backups" (
        user_id, id, seq, device_id, kind, counter, prev, classification, size, content_hash, target,
        created, signature, received, chain_seq, deleted, blob_key,
    );
    crate::UploadRow => "uploads" (id, vault_id, user_id, blob_key, size, hash, created);
}

/// `INSERT INTO` the row's table of the whole row, followed by `then` (an `ON CONFLICT`
/// clause, or nothing).
pub(crate) fn insert<R: Stored>(row: &R, then: &'static str) -> Q {
    let marks = vec!["?"; R::COLS.split(',').count()].join(", ");
    let (table, cols) = (R::TABLE, R::COLS);
    row.bind_row(q(format!(
        "INSERT INTO {table} ({cols}) VALUES ({marks}) {then}"
    )))
}

pub(crate) const USER_COLS: &str = <crate::UserRow as Stored>::COLS;
pub(crate) const SESSION_COLS: &str = <crate::SessionRow as Stored>::COLS;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Queues for collection the blobs of the versions `filter` selects (over versions `ve`,
/// objects `ob` and vaults `v`, with one `?` for `arg`); `filter` is always a constant.
pub(crate) async fn queue_blobs_of(
    tx: &mut Tx,
    filter: &'static str,
    arg: &str,
    now: i64,
) -> Result<u64> {
    let from = format!(
        "ve.blob_key FROM versions ve JOIN objects ob ON ve.object_id = ob.id \
         JOIN vaults v ON v.id = ob.vault_id WHERE {filter}"
    );
    queue_selected(tx, now, &from, (arg,)).await
}

/// Queues for collection at `now` the blob keys of `SELECT {from}` (`from` is built from
/// constants and has a `WHERE`, which SQLite needs before an upsert's `ON CONFLICT`; `args`
/// are its placeholders' values); a key already queued keeps its time. How many it queued.
pub(crate) async fn queue_selected(
    tx: &mut Tx,
    now: i64,
    from: &str,
    args: impl Args,
) -> Result<u64> {
    let sql =
        format!("INSERT INTO blob_gc (queued, blob_key) SELECT ?, {from} ON CONFLICT DO NOTHING");
    tx.execute(q(sql).bind(now).binds(args)).await
}

/// Changes a user's usage by `delta` bytes. Growth is refused with `QuotaExceeded` (and
/// nothing changed) when it would take the usage above `quota`; usage never goes below 0.
pub(crate) async fn charge(
    tx: &mut Tx,
    user_id: &str,
    delta: i64,
    quota: Option<i64>,
) -> Result<()> {
    match quota {
        Some(limit) if delta > 0 => {
            let done = tx
                .execute(
                    q("UPDATE users SET usage_bytes = usage_bytes + ? \
                       WHERE id = ? AND usage_bytes + ? <= ?")
                    .binds((delta, user_id, delta, limit)),
                )
                .await?;
            if done == 0 {
                return Err(StoreError::QuotaExceeded);
            }
        }
        _ => {
            tx.execute(
                q("UPDATE users SET usage_bytes = \
                   CASE WHEN usage_bytes + ? < 0 THEN 0 ELSE usage_bytes + ? END WHERE id = ?")
                .binds((delta, delta, user_id)),
            )
            .await?;
        }
    }
    Ok(())
}

/// Credits vault owners for the versions `filter` (over `ve`, `ob`, `v`, with one `?` for
/// `arg`) is about to delete; `filter` is always a constant.
pub(crate) async fn credit_versions_of(tx: &mut Tx, filter: &'static str, arg: &str) -> Result<()> {
    let owed: Vec<(String, i64)> = tx
        .all(
            q(format!(
                "SELECT v.owner_id, CAST(COALESCE(SUM(ve.size), 0) AS BIGINT) FROM versions ve \
                 JOIN objects ob ON ve.object_id = ob.id JOIN vaults v ON v.id = ob.vault_id \
                 WHERE {filter} GROUP BY v.owner_id"
            ))
            .bind(arg),
        )
        .await?;
    for (owner, bytes) in owed {
        charge(tx, &owner, -bytes, None).await?;
    }
    Ok(())
}

/// Whether a blob's reservation still holds, locked until the transaction ends: its time is
/// still to come (the collector claims due ones, and may have deleted the blob of one it
/// claimed). A write that would reference the blob is refused if not.
pub(crate) async fn still_reserved(tx: &mut Tx, key: &str) -> Result<bool> {
    let lock = tx.locking("FOR UPDATE");
    let row: Option<(String,)> = tx
        .opt(
            q(format!(
                "SELECT blob_key FROM blob_gc WHERE blob_key = ? AND queued > ? {lock}"
            ))
            .binds((key, unix_now())),
        )
        .await?;
    Ok(row.is_some())
}

/// Queues a blob for deletion at `at`; a key already queued keeps the earlier time. A key the
/// collector has claimed (`queued` < 0: its deletion under way) and that is queued again for
/// now or earlier is queued anew, so that deletion's end (`gc_done`) leaves it queued: what
/// landed under the key meanwhile (an upload that outlasted its reservation) is collected on
/// a later pass. A reservation for later never re-arms a claimed key.
pub(crate) async fn queue_at(tx: &mut Tx, key: &str, at: i64) -> Result<()> {
    tx.execute(
        q(
            "INSERT INTO blob_gc (blob_key, queued) VALUES (?, ?) ON CONFLICT (blob_key) DO UPDATE \
           SET queued = CASE \
             WHEN blob_gc.queued < 0 AND excluded.queued >= 0 AND excluded.queued <= ? \
             THEN excluded.queued \
             WHEN excluded.queued < blob_gc.queued THEN excluded.queued \
             ELSE blob_gc.queued END",
        )
        .binds((key, at, unix_now())),
    )
    .await?;
    Ok(())
}

/// A new vault at generation 1 with its owner as the first member.
pub(crate) async fn insert_vault(tx: &mut Tx, v: &NewVault) -> Result<()> {
    let inserted = tx
        .execute(
            q(
                "INSERT INTO vaults (id, signed_id, owner_id, name, generation, created) \
               VALUES (?, ?, ?, ?, 1, ?)",
            )
            .binds((&v.id, &v.signed_id, &v.owner_id, &v.name, v.now)),
        )
        .await;
    match inserted {
        Err(StoreError::Database(e))
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            return Err(StoreError::Conflict("vault id in use; choose another"));
        }
        other => other?,
    };
    tx.execute(
        q("INSERT INTO vault_members (vault_id, user_id, wrapped_keys, signature) VALUES (?, ?, ?, ?)")
            .binds((&v.id, &v.owner_id, &v.wrapped_keys, &v.signature)),
    )
    .await?;
    Ok(())
}
