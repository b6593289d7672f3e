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
    /// An entry of version 2: the commitments its hash covers instead of the actor, target
    /// and client; `None` for version 1 (which hashes them in clear).
    pub sealing: Option<Sealing<'a>>,
}

/// What a version-2 entry's hash covers in place of its actor, target and client:
/// commitments ([`commitment`]) that stay when those are redacted (an erased user's name
/// leaves the log; the chain still verifies).
#[derive(Clone, Copy)]
pub struct Sealing<'a> {
    /// The salts of the commitments (not covered by the hash): one salt for all three
    /// fields, or (since per-field redaction) three joined by `.`, in the order actor,
    /// target, client, each emptied with its field when that field is redacted; `None` once
    /// every field is.
    pub salt: Option<&'a str>,
    pub actor: &'a str,
    pub target: &'a str,
    pub client: &'a str,
}

impl<'a> Sealing<'a> {
    /// A stored entry's sealing: all three commitments present (version 2), else `None`
    /// (version 1).
    pub fn stored(
        salt: Option<&'a str>,
        actor: Option<&'a str>,
        target: Option<&'a str>,
        client: Option<&'a str>,
    ) -> Option<Self> {
        Some(Self {
            salt,
            actor: actor?,
            target: target?,
            client: client?,
        })
    }
}

/// The commitment to one field of an entry: `SHA-256("enc audit field\0" ‖ name ‖ 0 ‖ salt
/// ‖ 0 ‖ value)`, hex. Without the salt (random, deleted with the value) it reveals nothing
/// of a guessable value such as a user name.
pub fn commitment(field: &str, salt: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"enc audit field\0");
    for part in [field, salt] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(value.as_bytes());
    hex(&h.finalize())
}

/// Fresh salts for a new entry's commitments: three of 16 random bytes, hex, joined by `.`
/// (actor, target, client), so each field can be redacted alone.
pub fn new_salt() -> String {
    let mut raw = [0u8; 48];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    raw.chunks(16).map(hex).collect::<Vec<_>>().join(".")
}

/// The three fields' salts of a stored salt: one shared salt (the first entries of version
/// 2) or three joined by `.` (an empty one: that field is redacted).
pub fn field_salts(salt: &str) -> [&str; 3] {
    let mut parts = salt.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(t), Some(c), None) => [a, t, c],
        _ => [salt; 3],
    }
}

/// The commitments of a new entry's actor, target and client, with `salt` (see
/// [`new_salt`]).
pub fn seal_fields(salt: &str, actor: &str, target: &str, client: &str) -> [String; 3] {
    let [sa, st, sc] = field_salts(salt);
    [
        commitment("actor", sa, actor),
        commitment("target", st, target),
        commitment("client", sc, client),
    ]
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// `SHA-256(prev_hash ‖ length-prefixed fields)`, hex: version 1 over the fields in clear,
/// version 2 over the actor's, target's and client's commitments.
pub fn audit_hash(prev_hash: &str, f: &AuditFields<'_>) -> String {
    let mut h = Sha256::new();
    let fields = match &f.sealing {
        None => {
            h.update(b"enc audit v1\0");
            [f.actor, f.action, f.target, f.outcome, f.client]
        }
        Some(s) => {
            h.update(b"enc audit v2\0");
            [s.actor, f.action, s.target, f.outcome, s.client]
        }
    };
    h.update(prev_hash.as_bytes());
    h.update(f.seq.to_be_bytes());
    h.update(f.ts.to_be_bytes());
    for s in fields {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    hex(&h.finalize())
}

/// Whether a version-2 entry's clear fields are those its commitments name; a redacted field
/// (its salt gone) must show nothing (else a server could show any text there); a version-1
/// entry's are its hash's own.
fn opens(f: &AuditFields<'_>) -> bool {
    let Some(s) = &f.sealing else {
        return true;
    };
    let salts = match s.salt {
        Some(salt) => field_salts(salt),
        None => ["", "", ""],
    };
    [
        ("actor", f.actor, s.actor),
        ("target", f.target, s.target),
        ("client", f.client, s.client),
    ]
    .iter()
    .zip(salts)
    .all(|((field, value, commit), salt)| {
        if salt.is_empty() {
            value.is_empty()
        } else {
            // A salt is 16 bytes in lower-case hex: nothing of a value can pass for one.
            salt.len() == 32
                && salt.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && commitment(field, salt, value) == *commit
        }
    })
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
        if !chained || !opens(&e.fields) || audit_hash(e.prev_hash, &e.fields) != e.hash {
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
                sealing: None,
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
                    sealing: None,
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

    /// A version-2 entry: (actor, target, client, salt, commitments, prev, hash).
    struct V2 {
        actor: String,
        target: String,
        client: String,
        salt: Option<String>,
        commits: [String; 3],
        prev: String,
        hash: String,
    }

    fn fields(seq: i64, e: &V2) -> AuditFields<'_> {
        AuditFields {
            seq,
            ts: 7,
            actor: &e.actor,
            action: "user.login",
            target: &e.target,
            outcome: "ok",
            client: &e.client,
            sealing: Some(Sealing {
                salt: e.salt.as_deref(),
                actor: &e.commits[0],
                target: &e.commits[1],
                client: &e.commits[2],
            }),
        }
    }

    fn verify_v2(rows: &[V2]) -> Result<(), i64> {
        verify_chain(
            rows.iter().enumerate().map(|(i, e)| ChainEntry {
                fields: fields(i as i64 + 1, e),
                prev_hash: &e.prev,
                hash: &e.hash,
            }),
            true,
        )
    }

    #[test]
    fn a_redacted_entry_still_verifies_and_an_edited_one_does_not() {
        let mut prev = GENESIS.to_string();
        let mut rows = Vec::new();
        for (i, who) in ["alice", "bob", "alice"].iter().enumerate() {
            let salt = new_salt();
            let mut e = V2 {
                actor: who.to_string(),
                target: format!("vault of {who}"),
                client: "c1".into(),
                commits: seal_fields(&salt, who, &format!("vault of {who}"), "c1"),
                salt: Some(salt),
                prev: prev.clone(),
                hash: String::new(),
            };
            e.hash = audit_hash(&prev, &fields(i as i64 + 1, &e));
            prev = e.hash.clone();
            rows.push(e);
        }
        assert_eq!(verify_v2(&rows), Ok(()));
        // An edit of a clear field with its salt still there breaks the chain there.
        let mut edited = std::mem::take(&mut rows);
        edited[1].actor = "mallory".into();
        assert_eq!(verify_v2(&edited), Err(2));
        edited[1].actor = "bob".into();
        // Redaction: alice's entries lose actor, target, client and salt; all verify.
        for e in edited.iter_mut().filter(|e| e.actor == "alice") {
            e.actor.clear();
            e.target.clear();
            e.client.clear();
            e.salt = None;
        }
        assert_eq!(verify_v2(&edited), Ok(()));
        // A redacted entry that shows text again (any text: nothing can check it) is refused.
        edited[0].actor = "alice".into();
        assert_eq!(verify_v2(&edited), Err(1));
        edited[0].actor.clear();
        // A commitment changed is a broken hash, redacted or not.
        edited[0].commits[0] = commitment("actor", "x", "eve");
        assert_eq!(verify_v2(&edited), Err(1));
    }

    #[test]
    fn one_field_can_be_redacted_alone() {
        let salt = new_salt();
        let mut e = V2 {
            actor: "bob".into(),
            target: "vault v2 shared with alice".into(),
            client: "c1".into(),
            commits: seal_fields(&salt, "bob", "vault v2 shared with alice", "c1"),
            salt: Some(salt.clone()),
            prev: GENESIS.into(),
            hash: String::new(),
        };
        e.hash = audit_hash(GENESIS, &fields(1, &e));
        let mut rows = vec![e];
        assert_eq!(verify_v2(&rows), Ok(()));
        // Alice leaves the target; bob stays the actor, still checked.
        let [sa, _, sc] = field_salts(&salt);
        rows[0].salt = Some(format!("{sa}..{sc}"));
        rows[0].target.clear();
        assert_eq!(verify_v2(&rows), Ok(()));
        rows[0].actor = "mallory".into();
        assert_eq!(verify_v2(&rows), Err(1));
        rows[0].actor = "bob".into();
        rows[0].target = "anything".into();
        assert_eq!(verify_v2(&rows), Err(1));
    }

    #[test]
    fn commitments_differ_by_field_salt_and_value() {
        let c = commitment("actor", "s", "alice");
        assert_ne!(c, commitment("target", "s", "alice"));
        assert_ne!(c, commitment("actor", "t", "alice"));
        assert_ne!(c, commitment("actor", "s", "alicf"));
        assert_eq!(c.len(), 64);
    }
}
