//! Storage of `enc-server`: metadata and blobs, each behind an async trait.
//!
//! The server holds a [`Meta`] and a [`Blobs`] handle and never learns which backend sits
//! behind them. Metadata is one [`SqlMeta`] whose statements are written once for both
//! engines: SQLite ([`sqlite::open`], the embedded default) or PostgreSQL
//! ([`postgres::connect`], for scale-out, with row-level security bound to the [`tenant`] of
//! the work). Blobs are the local filesystem or an S3-compatible store
//! ([`blob::ObjectBlobs`] over `object_store`). This crate knows nothing of HTTP.
//!
//! Invariants every backend keeps:
//! - an object version is visible only after its blob is durably stored and its row committed;
//! - a blob is deleted only after the transaction that unreferenced it committed (it is queued
//!   in `blob_gc` inside that transaction, so a crash in between is repaired at start-up);
//! - audit entries form one hash chain, appended strictly in order.
#![forbid(unsafe_code)]

pub mod blob;
mod direct;
pub mod meta;
mod model;
pub mod postgres;
mod sql;
pub mod sqlite;
pub mod tenant;

use std::sync::Arc;

pub use blob::{BlobWriter, Blobs};
pub use meta::*;
pub use model::*;
pub use sql::{EngineCounts, Scope, SqlMeta};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row (or blob) does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or state rule refused the change; the text says which.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The owner's quota does not leave room for the change.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// A batch this operation was part of failed; the text says why.
    #[error("{0}")]
    Batch(String),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] object_store::Error),
    /// The storage under the store is full (what a batch's other items are told when
    /// [`StoreError::is_full`] of its failure).
    #[error("the storage is full")]
    Full,
    /// The database or the blob store does not answer (what a batch's other items are told
    /// when [`StoreError::is_unavailable`] of its failure).
    #[error("the storage does not answer")]
    Unavailable,
}

impl StoreError {
    /// Whether the storage under the server is full (a disk or a filesystem quota: SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`, a blob write's `ENOSPC` or `EDQUOT`): nothing
    /// was stored, and writing again once there is room will work.
    pub fn is_full(&self) -> bool {
        let io_full = |e: &(dyn std::error::Error + 'static)| {
            any_io(e, |io| {
                io.kind() == std::io::ErrorKind::StorageFull
                    || io.kind() == std::io::ErrorKind::QuotaExceeded
                    || matches!(io.raw_os_error(), Some(28 | 122))
            })
        };
        match self {
            Self::Full => true,
            Self::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("13" | "53100"))
            }
            Self::Database(e) => io_full(e),
            Self::Blob(e) => io_full(e),
            _ => false,
        }
    }

    /// Whether the database or the blob store did not answer: a connection refused, cut or
    /// timed out, a pool with no connection to give within its timeout, PostgreSQL shutting
    /// down or refusing connections. Whether a write it interrupted took effect is not known
    /// (a `COMMIT` may have landed before its answer was lost), so a blob it would have
    /// referenced keeps its reservation instead of being released. Trying again once the
    /// storage is back will work.
    pub fn is_unavailable(&self) -> bool {
        let io_unavailable = |e: &(dyn std::error::Error + 'static)| {
            use object_store::client::{HttpError, HttpErrorKind};
            use std::io::ErrorKind as K;
            any_cause(e, |err| {
                err.downcast_ref::<HttpError>().is_some_and(|http| {
                    matches!(
                        http.kind(),
                        HttpErrorKind::Connect
                            | HttpErrorKind::Timeout
                            | HttpErrorKind::Interrupted
                            | HttpErrorKind::Request
                    )
                })
            }) || any_io(e, |io| {
                matches!(
                    io.kind(),
                    K::ConnectionRefused
                        | K::ConnectionReset
                        | K::ConnectionAborted
                        | K::BrokenPipe
                        | K::NotConnected
                        | K::TimedOut
                )
            })
        };
        match self {
            Self::Unavailable => true,
            Self::Database(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Io(_),
            ) => true,
            // Connection exceptions (class 08, but not 08P01, a protocol violation: a bug that
            // trying again would not mend); 57P01–57P03: the server shutting down, crashed or
            // starting; 53300: too many connections.
            Self::Database(sqlx::Error::Database(db)) => db.code().is_some_and(|c| {
                matches!(
                    c.as_ref(),
                    "08000"
                        | "08001"
                        | "08003"
                        | "08004"
                        | "08006"
                        | "57P01"
                        | "57P02"
                        | "57P03"
                        | "53300"
                )
            }),
            Self::Blob(e) => io_unavailable(e),
            _ => false,
        }
    }

    /// What each item of a batch that failed with this error is told (the error itself
    /// cannot be shared): that the storage is full or does not answer, or this error's text.
    pub fn for_each_of_batch(&self) -> Self {
        if self.is_full() {
            Self::Full
        } else if self.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Batch(self.to_string())
        }
    }

    /// Whether a blob ended before the range read from it (cut short behind the store's
    /// back: the metadata records it longer).
    pub fn is_short(&self) -> bool {
        match self {
            Self::Blob(e) => any_io(e, |io| io.kind() == std::io::ErrorKind::UnexpectedEof),
            _ => false,
        }
    }

    /// A failure of the local blob directory (`NotFound` for a missing file).
    pub(crate) fn local(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let source = e.into();
        match source.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::NotFound => Self::NotFound,
            _ => Self::Blob(object_store::Error::Generic {
                store: "local",
                source,
            }),
        }
    }
}

/// Whether `e` or any error it was caused by satisfies `pred`.
fn any_cause(
    e: &(dyn std::error::Error + 'static),
    pred: impl Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> bool {
    let mut at = Some(e);
    while let Some(err) = at {
        if pred(err) {
            return true;
        }
        at = err.source();
    }
    false
}

/// Whether `e` or any error it was caused by is an I/O error satisfying `pred`.
fn any_io(e: &(dyn std::error::Error + 'static), pred: impl Fn(&std::io::Error) -> bool) -> bool {
    any_cause(e, |err| {
        err.downcast_ref::<std::io::Error>().is_some_and(&pred)
    })
}

/// Shorthand.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the metadata store.
pub type Meta = Arc<dyn MetaStore>;

/// Every metadata concern, as the server holds them (see [`meta`] for each one's methods).
pub trait MetaStore:
    Engine
    + Users
    + Sessions
    + Throttling
    + Vaults
    + Versions
    + Trees
    + Collection
    + Tokens
    + Restic
    + Mercury
    + Audit
    + Devices
    + Backups
    + Records
    + Erasures
    + 'static
{
}

impl<T> MetaStore for T where
    T: Engine
        + Users
        + Sessions
        + Throttling
        + Vaults
        + Versions
        + Trees
        + Collection
        + Tokens
        + Restic
        + Mercury
        + Audit
        + Devices
        + Backups
        + Records
        + Erasures
        + 'static
{
}
