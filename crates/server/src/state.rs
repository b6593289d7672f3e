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
    /// Where caches of verified credentials hear of revocations.
    pub revocations: crate::rules::credentials::Revocations,
    /// Device backups' group commit: concurrent uploads' entries and audit entries written in
    /// one transaction.
    pub backup_writer: BackupWriter,
    /// Verified `backups` tokens with their user and standing device (emptied by every
    /// revocation on this replica).
    pub backup_tokens:
        crate::rules::credentials::Verified<(enc_store::UserRow, enc_store::DeviceRow)>,
    /// The pepper of records' owner pseudonyms (`None`: a scale-out deployment that names
    /// none, whose records routes say so).
    pub records_pepper: Option<crate::rules::pepper::Pepper>,
    /// Verified `records` tokens with their user and whether they are read-only (emptied by
    /// every revocation on this replica).
    pub records_tokens: crate::rules::credentials::Verified<(enc_store::UserRow, bool)>,
}

/// The writer of device backups (see [`crate::rules::batch`]).
pub type BackupWriter = crate::rules::batch::Batcher<
    enc_store::NewBackup,
    Result<enc_store::BackupRow, enc_store::StoreError>,
>;

/// Spawns the writer of device backups: each batch is one transaction.
pub fn backup_writer(meta: Meta) -> BackupWriter {
    crate::rules::batch::Batcher::new(move |items: Vec<enc_store::NewBackup>| {
        let meta = meta.clone();
        async move {
            let n = items.len();
            match meta.put_backups(items).await {
                Ok(results) => results,
                Err(e) => (0..n).map(|_| Err(e.for_each_of_batch())).collect(),
            }
        }
    })
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// Keyed hash (HMAC-SHA256 under the server secret) of a labelled value, hex.
    pub fn keyed_hash(&self, label: &str, value: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("any length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(value);
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The deployment's instance id, the same on every replica (derived from the server
    /// secret): signed into device backups so that none can be moved to another server.
    pub fn server_id(&self) -> String {
        self.keyed_hash("server id", b"")
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
