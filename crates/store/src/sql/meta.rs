//! The metadata store over SQL: one implementation of every concern of [`crate::meta`] for
//! both engines, written in the concern's file of this module.

use super::Db;

/// The SQL metadata store, on SQLite ([`crate::sqlite::open`]) or PostgreSQL
/// ([`crate::postgres::connect`]).
pub struct SqlMeta {
    pub(super) db: Db,
}

impl SqlMeta {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}
