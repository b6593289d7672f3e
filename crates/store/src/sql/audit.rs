//! The audit log: one hash chain for the whole deployment (system scope), appended strictly
//! in order; on PostgreSQL appends from every replica take turns under one advisory lock.

use enc_crypto::audit::{AuditFields, GENESIS, Sealing, audit_hash, new_salt, seal_fields};

use super::{Q, Scope, SqlMeta, q};
use crate::*;

const AUDIT_COLS: &str = "seq, ts, actor, action, target, outcome, client, prev_hash, hash, \
     salt, actor_commit, target_commit, client_commit";

#[async_trait::async_trait]
impl Audit for SqlMeta {
    async fn audit_append(&self, e: NewAudit) -> Result<AuditRow> {
        let mut tx = self.db.write(Scope::System).await?;
        let head = head_in(&mut tx).await?;
        let (stmts, last) = appends(head, std::slice::from_ref(&e));
        tx.execute_all(stmts).await?;
        tx.commit().await?;
        last.ok_or(StoreError::NotFound)
    }

    async fn audit_append_many(&self, entries: Vec<NewAudit>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.write(Scope::System).await?;
        let head = head_in(&mut tx).await?;
        tx.execute_all(appends(head, &entries).0).await?;
        tx.commit().await
    }

    async fn audit_redact(&self, user_id: &str, needles: &[&str]) -> Result<(u64, u64)> {
        let mut tx = self.db.write(Scope::System).await?;
        let done = redact_in(&mut tx, user_id, needles).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn audit_list(&self, actor_id: Option<&str>) -> Result<Vec<AuditRow>> {
        let mut tx = self.db.read(Scope::System).await?;
        let query = match actor_id {
            Some(id) => q(format!(
                "SELECT {AUDIT_COLS} FROM audit WHERE actor_id = ? ORDER BY seq"
            ))
            .bind(id),
            None => q(format!("SELECT {AUDIT_COLS} FROM audit ORDER BY seq")),
        };
        tx.all(query).await
    }
}

/// Redacts `user_id` from the audit log: in every version-2 entry they acted in (`actor_id`,
/// or an actor among `needles`) the actor and client are emptied, and in every one whose
/// target names one of `needles` where a name stands ([`named_in`]: whole words only, so
/// redacting `al` leaves `alice` alone) the target is; each emptied
/// field's salt goes with it, its commitment stays, so the chain still verifies and the
/// fields that name others keep verifying (an entry of the first version-2 format, with one
/// salt for all three, is emptied whole). How many it redacted, and how many entries of
/// version 1 (whose hash covers the values) name them still.
pub(crate) async fn redact_in(
    tx: &mut super::Tx,
    user_id: &str,
    needles: &[&str],
) -> Result<(u64, u64)> {
    if user_id.is_empty() || needles.iter().any(|n| n.trim().is_empty()) {
        return Err(StoreError::Conflict(
            "redaction needs a user id and non-empty names",
        ));
    }
    tx.lock("audit").await?;
    // Candidates by SQL (a superset: where the name stands is checked again below).
    let contains = tx.pick(
        "instr(' ' || target || ' ', ?) > 0",
        "strpos(' ' || target || ' ', ?) > 0",
    );
    let mut names = String::from("(actor_id = ?");
    for _ in needles {
        names.push_str(&format!(" OR actor = ? OR {contains}"));
    }
    names.push(')');
    let mut stmt = q(format!(
        "SELECT seq, actor, actor_id, target, salt, actor_commit FROM audit WHERE {names}"
    ))
    .bind(user_id);
    for n in needles {
        stmt = stmt.binds((*n, format!(" {n} ")));
    }
    type Candidate = (
        i64,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Candidate> = tx.all(stmt).await?;
    let (mut redacted, mut left) = (0u64, 0u64);
    for (seq, actor, actor_id, target, salt, commit) in rows {
        let by = actor_id.as_deref() == Some(user_id) || needles.contains(&actor.as_str());
        let about = named_in(&target).any(|w| needles.contains(&w));
        if !by && !about {
            continue;
        }
        if commit.is_none() {
            left += 1;
            continue;
        }
        let Some(salt) = salt else {
            continue; // redacted whole already
        };
        let [sa, st, sc] = enc_crypto::audit::field_salts(&salt);
        let whole = !salt.contains('.');
        let (ra, rt) = (by || whole, about || whole);
        let parts = [
            if ra { "" } else { sa },
            if rt { "" } else { st },
            if ra { "" } else { sc },
        ];
        let salt = (!parts.iter().all(|p| p.is_empty())).then(|| parts.join("."));
        tx.execute(
            q(
                "UPDATE audit SET actor = ?, actor_id = ?, target = ?, client = \
               CASE WHEN ? THEN '' ELSE client END, salt = ? WHERE seq = ?",
            )
            .bind(if ra { String::new() } else { actor })
            .bind(if ra { None } else { actor_id })
            .bind(if rt { String::new() } else { target })
            .bind(ra)
            .bind(salt)
            .bind(seq),
        )
        .await?;
        redacted += 1;
    }
    Ok((redacted, left))
}

/// The words of an audit target where the server's templates put a user's name or id: the
/// first word (`NAME`, `NAME role=…`, `ID`), and the word after `with`, `from`, `of` or
/// `user` (`VAULT with NAME (right)`, `VAULT from NAME`, `record ID of PSEUDONYM`). Never a
/// word of a template itself, nor a value after `=`: erasing a user named `admin` leaves
/// `alice role=admin` alone.
fn named_in(target: &str) -> impl Iterator<Item = &str> {
    let words: Vec<&str> = target.split(' ').collect();
    let first = words.first().copied();
    let after = words
        .windows(2)
        .filter(|w| matches!(w[0], "with" | "from" | "of" | "user"))
        .map(|w| w[1])
        .collect::<Vec<_>>();
    first.into_iter().chain(after)
}

/// Takes the chain's lock and reads its end: the last entry's number and hash (0 and the
/// genesis hash before the first entry). The chain is appended strictly in order, inside a
/// transaction in system scope (its end must be seen whoever's it is), by [`appends`].
pub(crate) async fn head_in(tx: &mut super::Tx) -> Result<(i64, String)> {
    tx.lock("audit").await?;
    let last: Option<(i64, String)> = tx.opt(q(HEAD)).await?;
    Ok(last.unwrap_or_else(|| (0, GENESIS.to_string())))
}

/// The chain's end as one row.
const HEAD: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

/// The inserts that append `entries` after `head` (as [`head_in`] read it, under the
/// chain's lock), one per 64 entries, and the last entry appended.
pub(crate) fn appends(head: (i64, String), entries: &[NewAudit]) -> (Vec<Q>, Option<AuditRow>) {
    let (mut seq, mut prev_hash) = head;
    let mut stmts = Vec::new();
    let mut last = None;
    for chunk in entries.chunks(64) {
        let marks = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut stmt = q(format!(
            "INSERT INTO audit (seq, ts, actor, actor_id, action, target, outcome, client, \
             prev_hash, hash, salt, actor_commit, target_commit, client_commit) VALUES {marks}"
        ));
        for e in chunk {
            seq += 1;
            // Version 2: the hash covers commitments, so the values can be redacted.
            let salt = new_salt();
            let [ac, tc, cc] = seal_fields(&salt, &e.actor, &e.target, &e.client);
            let hash = audit_hash(
                &prev_hash,
                &AuditFields {
                    seq,
                    ts: e.ts,
                    actor: &e.actor,
                    action: &e.action,
                    target: &e.target,
                    outcome: &e.outcome,
                    client: &e.client,
                    sealing: Some(Sealing {
                        salt: Some(&salt),
                        actor: &ac,
                        target: &tc,
                        client: &cc,
                    }),
                },
            );
            stmt = stmt.binds((
                seq,
                e.ts,
                &e.actor,
                &e.actor_id,
                &e.action,
                &e.target,
                &e.outcome,
                &e.client,
                &prev_hash,
                &hash,
            ));
            stmt = stmt.binds((&salt, &ac, &tc, &cc));
            last = Some(AuditRow {
                seq,
                ts: e.ts,
                actor: e.actor.clone(),
                action: e.action.clone(),
                target: e.target.clone(),
                outcome: e.outcome.clone(),
                client: e.client.clone(),
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
                salt: Some(salt),
                actor_commit: Some(ac),
                target_commit: Some(tc),
                client_commit: Some(cc),
            });
        }
        stmts.push(stmt);
    }
    (stmts, last)
}
