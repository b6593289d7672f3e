//! The audit chain's hash: each entry commits to its predecessor, so removing, reordering or
//! editing an entry breaks every hash after it. Shared by the server (which appends) and the
//! client (which verifies with `enc audit --verify`).

use sha2::{Digest, Sha256};

/// The hash of the entry before the first one.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an audit entry that its hash covers.
pub struct AuditFields<'a> {
    /// Position in the chain.
    pub seq: i64,
    /// Unix time.
    pub ts: i64,
    /// Actor.
    pub actor: &'a str,
    /// Action.
    pub action: &'a str,
    /// Target.
    pub target: &'a str,
    /// Outcome.
    pub outcome: &'a str,
    /// Keyed hash of the client address.
    pub client: &'a str,
}

/// `SHA-256(prev_hash ‖ length-prefixed fields)`, hex.
pub fn audit_hash(prev_hash: &str, f: &AuditFields<'_>) -> String {
    let mut h = Sha256::new();
    h.update(b"enc audit v1\0");
    h.update(prev_hash.as_bytes());
    h.update(f.seq.to_be_bytes());
    h.update(f.ts.to_be_bytes());
    for s in [f.actor, f.action, f.target, f.outcome, f.client] {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
