//! Leaving enc: erasure (`POST /v1/me/erase`, `DELETE /v1/users/{name}?erase=true`,
//! `GET /v1/erasures/{id}`) and the user's Mercury archives for export
//! (`GET /v1/mercury/archives`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/me/erase`: erase my account and everything of mine, proven by the passphrase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EraseMeRequest {
    /// The passphrase's auth key, base64 (a session alone cannot erase the account).
    pub auth_key: String,
}

/// `DELETE /v1/users/{name}`'s query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
pub struct RemoveUserQuery {
    /// Erase instead of remove: every trace of the user leaves the server, the audit log's
    /// entries about them included (202 with the job; without it, 204).
    #[serde(default)]
    pub erase: bool,
}

/// An erasure job, as `GET /v1/erasures/{id}` shows it: no name and no user id, only what
/// was removed. Its id is the handle the request returned (whoever holds it may read this).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErasureInfo {
    /// The job's id.
    pub id: String,
    /// What the user's writing in others' vaults is attributed to from now on.
    pub label: String,
    /// `running` or `done`.
    pub state: String,
    /// The step it is at (`done` at the end).
    pub step: String,
    /// What was removed so far, by kind.
    pub removed: BTreeMap<String, u64>,
    /// What names the user still and could not be removed, by kind:
    /// `audit_entries_left_naming` (entries of the audit log's first version, whose hash
    /// covers the names), `commits_left_naming` (vault-tree commits into others' vaults,
    /// signed with the name, by a push in flight when the erasure began).
    pub left: BTreeMap<String, u64>,
    /// Started at (Unix seconds).
    pub started: i64,
    /// Finished at (Unix seconds).
    pub finished: Option<i64>,
}

/// One of the caller's Mercury (Hecate) archives, as `GET /v1/mercury/archives` lists them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MercuryArchive {
    /// Its name (one path component: no `/`, `\\`, `..` or control characters).
    pub name: String,
    /// Bytes, as stored (Hecate's own ciphertext).
    pub size: u64,
    /// Stored at (Unix seconds).
    pub created: i64,
}
