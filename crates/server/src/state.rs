//! Shared server state, passed explicitly to every handler.

use std::sync::Arc;
use std::time::Instant;

use enc_store::{Blobs, Meta, NewAudit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;
use crate::rules::policy::Policy;

/// Everything a handler may use.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Metadata.
    pub meta: Meta,
    /// Ciphertext.
    pub blobs: Blobs,
    /// Configuration.
    pub config: Config,
    /// Roles.
    pub policy: Policy,
    /// Server-only secret: keys fake salts and the hashes of client addresses.
    pub secret: [u8; 32],
    /// A dummy Argon2 hash, verified against for unknown users so timing does not tell.
    pub dummy_hash: String,
    /// Start time.
    pub started: Instant,
    /// `SHA256:…` of the certificate this server presents (empty without TLS); SSH logins
    /// are bound to it.
    pub tls_fingerprint: String,
    /// Bounds concurrent Argon2 computations (each takes about 19 MiB and 30 ms).
    pub argon_slots: tokio::sync::Semaphore,
    /// Prometheus metrics.
    pub metrics: crate::http::metrics::Metrics,
    /// Set while a collector pass runs, so kicks do not pile up.
    pub gc_running: std::sync::atomic::AtomicBool,
    /// Group commit of restic blob reservations and file records.
    pub restic_writes: crate::rules::batch::Batcher<
        crate::rules::batch::ResticWrite,
        crate::rules::batch::WriteResult,
    >,
    /// Mercury's client list, preshared key and counters.
    pub mercury: crate::mercury::Mercury,
    /// Recently verified restic credentials (see [`crate::restic`]).
    pub auth_cache: std::sync::Mutex<std::collections::HashMap<String, CachedAuth>>,
    /// Recently read restic files (see [`ObjectCache`]).
    pub object_cache: ObjectCache,
}

/// Where recently read restic files are, reused for [`AUTH_CACHE_SECS`] so that a restore,
/// a chain of small range reads of a few pack files, does not ask the database each time.
///
/// Only files named by the SHA-256 of their content are kept (everything but `config`): the
/// server checks that hash on upload, so a name always means the same bytes, and an entry can
/// only be stale by still pointing at a file that was deleted. A delete through this server
/// removes the entry at once; a delete through another replica is seen within the reuse time,
/// or at once if the blob is already gone (the read then asks the database again). Listings,
/// writes and quota accounting always ask the database.
#[derive(Default)]
pub struct ObjectCache(
    std::sync::Mutex<std::collections::HashMap<String, (Instant, enc_store::ResticObjectRow)>>,
);

impl ObjectCache {
    /// Most entries kept; the map is emptied when it would grow past this.
    const MAX: usize = 4096;

    fn key(repo_id: &str, kind: &str, name: &str) -> String {
        format!("{repo_id}/{kind}/{name}")
    }

    /// A fresh entry.
    pub fn get(&self, repo_id: &str, kind: &str, name: &str) -> Option<enc_store::ResticObjectRow> {
        let map = self.0.lock().expect("object cache");
        map.get(&Self::key(repo_id, kind, name))
            .filter(|(at, _)| at.elapsed().as_secs() < AUTH_CACHE_SECS)
            .map(|(_, row)| row.clone())
    }

    /// Remembers where a content-named file is; `config` is never kept.
    pub fn put(&self, repo_id: &str, kind: &str, row: &enc_store::ResticObjectRow) {
        // Small files' bytes stay in the database (and its cache), not in this map.
        if kind == "config" || row.data.is_some() {
            return;
        }
        let mut map = self.0.lock().expect("object cache");
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(
            Self::key(repo_id, kind, &row.name),
            (Instant::now(), row.clone()),
        );
    }

    /// Forgets one file.
    pub fn forget(&self, repo_id: &str, kind: &str, name: &str) {
        self.0
            .lock()
            .expect("object cache")
            .remove(&Self::key(repo_id, kind, name));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.0.lock().expect("object cache").clear();
    }
}

/// A verified `user:token` with its repository, reused for [`AUTH_CACHE_SECS`].
#[derive(Clone)]
pub struct CachedAuth {
    /// When it was verified against the database.
    pub at: Instant,
    /// The user.
    pub user: enc_store::UserRow,
    /// The token.
    pub token: enc_store::AccessTokenRow,
    /// The repository the token reaches.
    pub repo: enc_store::ResticRepoRow,
}

/// How long a verified restic credential is reused without asking the database again. A
/// revocation on this server takes effect at once; on another replica within this time.
pub const AUTH_CACHE_SECS: u64 = 2;

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// Forgets cached credentials: of one token, or all of them.
    pub fn forget_auth(&self, token_id: Option<&str>) {
        let mut cache = self.auth_cache.lock().expect("auth cache");
        match token_id {
            Some(id) => cache.retain(|_, c| c.token.id != id),
            None => {
                cache.clear();
                self.object_cache.clear();
            }
        }
    }

    /// Keyed hash (HMAC-SHA256 under the server secret) of a labelled value, hex.
    pub fn keyed_hash(&self, label: &str, value: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("any length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(value);
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Appends an audit entry; a failure is logged, never hidden from the operator.
    pub async fn audit(
        &self,
        actor: &str,
        actor_id: Option<&str>,
        action: &str,
        target: &str,
        outcome: &str,
        client: &str,
    ) {
        let entry = NewAudit {
            ts: crate::rules::now(),
            actor: actor.to_string(),
            actor_id: actor_id.map(str::to_string),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
            client: client.to_string(),
        };
        if let Err(e) = self.meta.audit_append(entry).await {
            tracing::error!(error = %e, action, "audit append failed");
        }
    }
}
