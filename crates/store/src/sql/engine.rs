//! The narrow engine layer under the metadata store: what SQLite and PostgreSQL truly do
//! differently, and nothing else. Everything above it is written once.
//!
//! - **Transactions.** [`Db::write`] on SQLite is `BEGIN IMMEDIATE` under the process's write
//!   lock (writers queue on a cheap async lock, not SQLite's sleeping busy handler, and never
//!   upgrade a read lock, so they cannot deadlock with `enc-server user create` next to the
//!   server); [`Db::read`] is a deferred `BEGIN`. On PostgreSQL both open a transaction that
//!   first sets its row-level-security [`Scope`] with `set_config(…, true)`.
//! - **Placeholders.** Statements are written with `?`; PostgreSQL's are rewritten as `$1, $2,
//!   …` (SQLite takes `?` as it is).
//! - **Cross-replica locks.** [`Tx::lock`] is a transaction-scoped advisory lock on
//!   PostgreSQL; on SQLite every write transaction already excludes every other, so it does
//!   nothing.
//!
//! Rows come back as any type both engines build ([`FromRows`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

use crate::Result;

/// Whose rows a transaction may see under PostgreSQL's row-level security. SQLite has none,
/// but every statement is written inside a scope all the same, so the class of each method
/// shows where it is written, not only in one engine's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The server's own cross-tenant work: authentication lookups, account administration,
    /// the blob collector, the audit chain.
    System,
    /// The user of the caller's [`crate::tenant`] scope; nothing at all outside one.
    Tenant,
    /// The caller's tenant if there is one, else the server's (Mercury's preshared key and
    /// client list own archives no enc user does).
    Caller,
}

/// Counts of what the engine did, for tests that check a method's shape (one transaction,
/// writes serialised) without timing it.
#[derive(Debug, Default)]
pub struct Stats {
    transactions: AtomicU64,
    writes: AtomicU64,
    writing_now: AtomicU64,
    most_writing_at_once: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineCounts {
    /// Transactions begun, read or write.
    pub transactions: u64,
    /// Write transactions begun.
    pub writes: u64,
    /// The most write transactions this process ever had open at once (1 on SQLite: writes
    /// are serialised; any number on PostgreSQL).
    pub most_writing_at_once: u64,
}

/// A connection pool of one engine, with its counts.
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool,
    stats: Arc<Stats>,
}

#[derive(Clone)]
enum Pool {
    Sqlite {
        pool: SqlitePool,
        /// Serialises this process's write transactions.
        write_lock: Arc<tokio::sync::Mutex<()>>,
    },
    Pg(PgPool),
}

/// An open transaction; dropped without [`Tx::commit`], it rolls back.
pub(crate) struct Tx {
    open: Open,
    writing: Writer,
}

enum Open {
    Sqlite {
        tx: sqlx::Transaction<'static, Sqlite>,
        /// The write lock, held by a transaction that may write.
        lock: Option<tokio::sync::OwnedMutexGuard<()>>,
    },
    Pg(sqlx::Transaction<'static, Postgres>),
}

/// Whether a transaction has written: counted when it is opened to write, or at its first
/// statement that is not a query; it stops counting as writing when it ends.
pub(crate) struct Writer {
    stats: Arc<Stats>,
    writing: bool,
}

impl Writer {
    fn new(stats: &Arc<Stats>, write: bool) -> Self {
        let mut w = Self {
            stats: stats.clone(),
            writing: false,
        };
        if write {
            w.wrote();
        }
        w
    }

    fn wrote(&mut self) {
        if !self.writing {
            self.writing = true;
            let s = &self.stats;
            s.writes.fetch_add(1, Ordering::Relaxed);
            let now = s.writing_now.fetch_add(1, Ordering::SeqCst) + 1;
            s.most_writing_at_once.fetch_max(now, Ordering::SeqCst);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.writing {
            self.stats.writing_now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Db {
    /// SQLite, its writes serialised by `write_lock` (shared with whatever else writes
    /// through this pool).
    pub(crate) fn sqlite(pool: SqlitePool, write_lock: Arc<tokio::sync::Mutex<()>>) -> Self {
        let pool = Pool::Sqlite { pool, write_lock };
        Self {
            pool,
            stats: Default::default(),
        }
    }

    pub(crate) fn pg(pool: PgPool) -> Self {
        Self {
            pool: Pool::Pg(pool),
            stats: Default::default(),
        }
    }

    /// What the engine has done so far.
    pub(crate) fn counts(&self) -> EngineCounts {
        let s = &self.stats;
        EngineCounts {
            transactions: s.transactions.load(Ordering::SeqCst),
            writes: s.writes.load(Ordering::SeqCst),
            most_writing_at_once: s.most_writing_at_once.load(Ordering::SeqCst),
        }
    }

    /// One statement in a write transaction of its own; the rows it changed.
    pub(crate) async fn write_one(&self, scope: Scope, q: Q) -> Result<u64> {
        let mut tx = self.write(scope).await?;
        let changed = tx.execute(q).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// [`Db::write_one`] of a statement that must change a row: `NotFound` if none changed.
    pub(crate) async fn write_found(&self, scope: Scope, q: Q) -> Result<()> {
        match self.write_one(scope, q).await? {
            0 => Err(crate::StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Every row of one query, in a read transaction of its own.
    pub(crate) async fn read_all<T: FromRows>(&self, scope: Scope, q: Q) -> Result<Vec<T>> {
        self.read(scope).await?.all(q).await
    }

    /// The first row of one query, in a read transaction of its own.
    pub(crate) async fn read_opt<T: FromRows>(&self, scope: Scope, q: Q) -> Result<Option<T>> {
        self.read(scope).await?.opt(q).await
    }

    /// SQLite: rebuilds the database file under the write lock, so no free page and no gap
    /// in a page keeps a row deleted before `secure_delete` was on. PostgreSQL: nothing.
    pub(crate) async fn vacuum(&self) -> Result<()> {
        let Pool::Sqlite { pool, write_lock } = &self.pool else {
            return Ok(());
        };
        let _writing = write_lock.lock().await;
        sqlx::query("VACUUM").execute(pool).await?;
        Ok(())
    }

    /// SQLite: copies the write-ahead log into the database and truncates it, under the
    /// write lock, so what was deleted (overwritten in the database's pages, as
    /// `secure_delete` has it) survives in no frame of the log: `true` when it was all
    /// copied (a reader may hold back the last frames; try again). PostgreSQL: nothing.
    pub(crate) async fn checkpoint(&self) -> Result<bool> {
        let Pool::Sqlite { pool, write_lock } = &self.pool else {
            return Ok(true);
        };
        let _writing = write_lock.lock().await;
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await?;
        Ok(busy == 0)
    }

    /// A transaction that may write.
    pub(crate) async fn write(&self, scope: Scope) -> Result<Tx> {
        self.begin(scope, true).await
    }

    /// A transaction that reads (on PostgreSQL it could write too; see [`Tx::can_write`]).
    pub(crate) async fn read(&self, scope: Scope) -> Result<Tx> {
        self.begin(scope, false).await
    }

    async fn begin(&self, scope: Scope, write: bool) -> Result<Tx> {
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        let open = match &self.pool {
            Pool::Sqlite { pool, write_lock } if write => {
                let lock = write_lock.clone().lock_owned().await;
                let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                Open::Sqlite {
                    tx,
                    lock: Some(lock),
                }
            }
            Pool::Sqlite { pool, .. } => Open::Sqlite {
                tx: pool.begin().await?,
                lock: None,
            },
            Pool::Pg(pool) => Open::Pg(pg_begin(pool, scope).await?),
        };
        Ok(Tx {
            open,
            writing: Writer::new(&self.stats, write),
        })
    }
}

async fn pg_begin(pool: &PgPool, scope: Scope) -> Result<sqlx::Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    let tenant = crate::tenant::current();
    let (user, system) = match (scope, tenant) {
        (Scope::System, _) | (Scope::Caller, None) => (String::new(), "on"),
        (Scope::Tenant | Scope::Caller, Some(t)) => (t, "off"),
        (Scope::Tenant, None) => (String::new(), "off"),
    };
    // The records' owner only alongside its user (a pseudonym is never a scope of its own).
    let pseudonym = match scope {
        Scope::System => String::new(),
        _ => crate::tenant::pseudonym().unwrap_or_default(),
    };
    sqlx::query(
        "SELECT set_config('app.user_id', $1, true), set_config('app.system', $2, true), \
         set_config('app.pseudonym', $3, true)",
    )
    .bind(user)
    .bind(system)
    .bind(pseudonym)
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// A statement and its arguments.
pub(crate) struct Q {
    sql: Text,
    args: Vec<Arg>,
}

/// A statement written with `?` placeholders; built strings must hold only constants.
pub(crate) fn q(sql: impl Into<Cow<'static, str>>) -> Q {
    Q {
        sql: Text(sql.into()),
        args: Vec::new(),
    }
}

/// A value bound to a placeholder.
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(bool),
}

impl Q {
    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Binds the next placeholders, one per element of a tuple, in order.
    pub(crate) fn binds(mut self, args: impl Args) -> Self {
        args.push_to(&mut self.args);
        self
    }

    /// The statement's text, after checking (in debug builds: the conformance suite runs
    /// every statement on both engines) that it has one `?` per bound value.
    fn text(&self) -> &Text {
        debug_assert_eq!(
            self.sql.0.matches('?').count(),
            self.args.len(),
            "placeholders and bound values differ in: {}",
            self.sql.0
        );
        &self.sql
    }
}

/// Values for consecutive placeholders: a tuple of anything [`Arg`] is made from.
pub(crate) trait Args {
    fn push_to(self, args: &mut Vec<Arg>);
}

/// [`Args`] for tuples of each length named.
macro_rules! args_tuples {
    ($(($($t:ident),+))*) => {
        $(impl<$($t: Into<Arg>),+> Args for ($($t,)+) {
            #[allow(non_snake_case)]
            fn push_to(self, args: &mut Vec<Arg>) {
                let ($($t,)+) = self;
                $(args.push($t.into());)+
            }
        })*
    };
}

args_tuples! {
    (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F) (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H) (A, B, C, D, E, F, G, H, I) (A, B, C, D, E, F, G, H, I, J)
    (A, B, C, D, E, F, G, H, I, J, K) (A, B, C, D, E, F, G, H, I, J, K, L)
}

/// `From` conversions into [`Arg`], one line each.
macro_rules! arg_from {
    ($($t:ty => |$x:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Arg {
            fn from($x: $t) -> Self {
                $e
            }
        })*
    };
}

arg_from! {
    i64 => |x| Arg::Int(Some(x)),
    &i64 => |x| Arg::Int(Some(*x)),
    &Option<i64> => |x| Arg::Int(*x),
    &crate::TokenKind => |x| Arg::Text(Some(x.as_str().into())),
    &crate::TokenMode => |x| Arg::Text(Some(x.as_str().into())),
    u32 => |x| Arg::Int(Some(x.into())),
    Option<i64> => |x| Arg::Int(x),
    bool => |x| Arg::Bool(x),
    &str => |x| Arg::Text(Some(x.to_owned())),
    String => |x| Arg::Text(Some(x)),
    &String => |x| Arg::Text(Some(x.clone())),
    Option<&str> => |x| Arg::Text(x.map(str::to_owned)),
    Option<String> => |x| Arg::Text(x),
    &Option<String> => |x| Arg::Text(x.clone()),
    &[u8] => |x| Arg::Bytes(Some(x.to_vec())),
    Vec<u8> => |x| Arg::Bytes(Some(x)),
    &Vec<u8> => |x| Arg::Bytes(Some(x.clone())),
    Option<&[u8]> => |x| Arg::Bytes(x.map(<[u8]>::to_vec)),
    Option<Vec<u8>> => |x| Arg::Bytes(x),
    &Option<Vec<u8>> => |x| Arg::Bytes(x.clone()),
}

/// Binds `args` to an engine's query, in order.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for a in $args {
            query = match a {
                Arg::Int(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.as_deref()),
                Arg::Bytes(v) => query.bind(v.as_deref()),
                Arg::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// Runs `$run` on either engine with `$query` (the statement in the engine's form with its
/// arguments bound) and `$conn` (the transaction's connection).
macro_rules! on_engine {
    ($tx:expr, $q:expr, |$query:ident, $conn:ident| $run:expr) => {
        match &mut $tx.open {
            Open::Sqlite { tx, .. } => {
                $q.text();
                let $query = bind_all!(sqlx::query($q.sql.into_sqlite()), &$q.args);
                let $conn = &mut **tx;
                $run
            }
            Open::Pg(tx) => {
                let $query = bind_all!(
                    sqlx::query(sqlx::AssertSqlSafe(pg_sql($q.text()))),
                    &$q.args
                );
                let $conn = &mut **tx;
                $run
            }
        }
    };
}

/// A row type both engines build (`#[derive(sqlx::FromRow)]`, tuples).
pub(crate) trait FromRows:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromRows for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl Tx {
    /// Whether this transaction may write (a read transaction on SQLite may not: it would
    /// have to upgrade its lock, which can fail under a concurrent writer).
    pub(crate) fn can_write(&self) -> bool {
        match &self.open {
            Open::Sqlite { lock, .. } => lock.is_some(),
            Open::Pg(_) => true,
        }
    }

    /// Whether write transactions run one at a time (SQLite's): what one reads stays true
    /// until it commits, with no lock of its own.
    pub(crate) fn serialised(&self) -> bool {
        matches!(self.open, Open::Sqlite { .. })
    }

    /// A row-locking clause (`FOR UPDATE …`) on PostgreSQL, where concurrent transactions
    /// read the same row; nothing on SQLite, whose write transactions never run at once.
    pub(crate) fn locking(&self, clause: &'static str) -> &'static str {
        self.pick("", clause)
    }

    /// Runs a statement that changes rows; the number it changed.
    pub(crate) async fn execute(&mut self, q: Q) -> Result<u64> {
        self.writing.wrote();
        Ok(on_engine!(self, q, |query, conn| query
            .execute(conn)
            .await?
            .rows_affected()))
    }

    /// Runs changing statements in order, whose counts of changed rows do not matter: on
    /// SQLite as one string of statements, so one round trip to the connection's thread for
    /// all of them (each round trip wakes two threads); on PostgreSQL one after the other.
    pub(crate) async fn execute_all(&mut self, qs: Vec<Q>) -> Result<()> {
        if let Open::Sqlite { .. } = self.open
            && qs.len() > 1
        {
            let mut sql = String::new();
            let mut args = Vec::new();
            for q in qs {
                sql.push_str(&q.text().0);
                sql.push_str(";\n");
                args.extend(q.args);
            }
            self.execute(Q {
                sql: Text(sql.into()),
                args,
            })
            .await?;
            return Ok(());
        }
        for q in qs {
            self.execute(q).await?;
        }
        Ok(())
    }

    /// The rows a changing statement returns (`… RETURNING`).
    pub(crate) async fn returning<T: FromRows>(&mut self, q: Q) -> Result<Vec<T>> {
        self.writing.wrote();
        self.all(q).await
    }

    /// A fragment with no form both engines accept: `sqlite`'s or `pg`'s.
    pub(crate) fn pick(&self, sqlite: &'static str, pg: &'static str) -> &'static str {
        match self.open {
            Open::Sqlite { .. } => sqlite,
            Open::Pg(_) => pg,
        }
    }

    /// Every row as a `T`.
    pub(crate) async fn all<T: FromRows>(&mut self, q: Q) -> Result<Vec<T>> {
        Ok(on_engine!(self, q, |query, conn| query
            .fetch_all(conn)
            .await?
            .iter()
            .map(T::from_row)
            .collect::<Result<_, _>>()?))
    }

    /// The first row as a `T`, if any.
    pub(crate) async fn opt<T: FromRows>(&mut self, q: Q) -> Result<Option<T>> {
        Ok(on_engine!(self, q, |query, conn| query
            .fetch_optional(conn)
            .await?
            .as_ref()
            .map(T::from_row)
            .transpose()?))
    }

    /// The first row as a `T`; `NotFound` without one.
    pub(crate) async fn one<T: FromRows>(&mut self, q: Q) -> Result<T> {
        self.opt(q).await?.ok_or(crate::StoreError::NotFound)
    }

    /// The first column of the first row, if there is a row.
    pub(crate) async fn scalar<T>(&mut self, q: Q) -> Result<Option<T>>
    where
        (T,): FromRows,
    {
        Ok(self.opt::<(T,)>(q).await?.map(|(t,)| t))
    }

    /// Holds a lock named `what` until the transaction ends, across replicas (PostgreSQL's
    /// advisory lock); on SQLite the write transaction already holds the only write lock.
    pub(crate) async fn lock(&mut self, what: &str) -> Result<()> {
        if let Open::Pg(tx) = &mut self.open {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(what)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Makes the transaction's changes durable and visible.
    pub(crate) async fn commit(self) -> Result<()> {
        match self.open {
            Open::Sqlite { tx, .. } => tx.commit().await?,
            Open::Pg(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A statement's text, as written.
struct Text(Cow<'static, str>);

impl Text {
    /// SQLite's form: as written (a constant is not copied, a built string is moved).
    fn into_sqlite(self) -> sqlx::SqlStr {
        use sqlx::SqlSafeStr as _;
        match self.0 {
            Cow::Borrowed(s) => s.into_sql_str(),
            Cow::Owned(s) => sqlx::AssertSqlSafe(s).into_sql_str(),
        }
    }
}

/// PostgreSQL's form of a statement: `$1, $2, …` for the `?`s (the statements hold no
/// other `?`).
fn pg_sql(text: &Text) -> String {
    let sql = &text.0;
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}
