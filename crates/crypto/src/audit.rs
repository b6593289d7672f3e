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

/// One entry as stored or served: its fields and the two hashes.
pub struct ChainEntry<'a> {
    /// The hashed fields.
    pub fields: AuditFields<'a>,
    /// Hash of the previous entry.
    pub prev_hash: &'a str,
    /// Hash of this entry.
    pub hash: &'a str,
}

/// Checks that each entry's hash matches its contents and its `prev_hash`; with
/// `from_genesis`, also that the entries chain from the first one without gaps. Returns the
/// sequence number of the first broken entry.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = ChainEntry<'a>>,
    from_genesis: bool,
) -> Result<(), i64> {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.into_iter().enumerate() {
        let chained = !from_genesis || (e.fields.seq == i as i64 + 1 && e.prev_hash == prev);
        if !chained || audit_hash(e.prev_hash, &e.fields) != e.hash {
            return Err(e.fields.seq);
        }
        prev = e.hash.to_string();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(i64, String, String, String)> {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for seq in 1..=n {
            let target = format!("t{seq}");
            let f = AuditFields {
                seq,
                ts: 100 + seq,
                actor: "a",
                action: "x",
                target: &target,
                outcome: "ok",
                client: "c",
            };
            let h = audit_hash(&prev, &f);
            out.push((seq, target.clone(), prev.clone(), h.clone()));
            prev = h;
        }
        out
    }

    fn check(rows: &[(i64, String, String, String)], full: bool) -> Result<(), i64> {
        verify_chain(
            rows.iter().map(|(seq, target, prev, hash)| ChainEntry {
                fields: AuditFields {
                    seq: *seq,
                    ts: 100 + seq,
                    actor: "a",
                    action: "x",
                    target,
                    outcome: "ok",
                    client: "c",
                },
                prev_hash: prev,
                hash,
            }),
            full,
        )
    }

    #[test]
    fn intact_edited_and_gapped_chains() {
        let rows = chain(4);
        assert_eq!(check(&rows, true), Ok(()));
        let mut edited = rows.clone();
        edited[2].1 = "changed".into();
        assert_eq!(check(&edited, true), Err(3));
        let mut gapped = rows.clone();
        gapped.remove(1);
        assert_eq!(check(&gapped, true), Err(3));
        // Without the whole chain, a gap is not an error, an edit still is.
        assert_eq!(check(&gapped, false), Ok(()));
        assert_eq!(check(&edited, false), Err(3));
    }
}
