//! Erasure jobs (system scope): a user's every trace taken off the server in the steps of
//! [`ERASURE_STEPS`], each one transaction that also moves the job to the next step, read
//! and advanced under the job's row lock (so two replicas resuming one job do each step
//! once). Blobs are queued for the collector with the rows that referenced them; the
//! server's `collect` step deletes them and compacts the database before the job is done.

use super::audit::{appends, head_in, redact_in};
use super::devices::KEPT_COLS;
use super::{Scope, SqlMeta, Tx, charge, q, unix_now};
use crate::*;

/// What a user acts with, deleted when the erasure starts (and again with the devices):
/// `(what the report calls it, table)`.
const CREDENTIALS: [(&str, &str); 3] = [
    ("sessions", "sessions"),
    ("tokens", "access_tokens"),
    ("ssh_keys", "ssh_keys"),
];

const COLS: &str = "id, user_id, label, pseudonym, step, counts, by_admin, started, finished";

#[async_trait::async_trait]
impl Erasures for SqlMeta {
    async fn erasure_begin(
        &self,
        id: &str,
        user_id: &str,
        by_admin: bool,
        pseudonym: Option<&str>,
    ) -> Result<ErasureRow> {
        let mut tx = self.db.write(Scope::System).await?;
        // The user's row locked (PostgreSQL): a plain removal racing this start waits, then
        // sees the job and refuses.
        let lock = tx.locking("FOR UPDATE");
        let found: Option<String> = tx
            .scalar(q(format!("SELECT id FROM users WHERE id = ? {lock}")).bind(user_id))
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        let running: Option<String> = tx
            .scalar(q("SELECT id FROM erasures WHERE user_id = ?").bind(user_id))
            .await?;
        if running.is_some() {
            return Err(StoreError::Conflict(
                "this user's erasure is already running",
            ));
        }
        // What they signed into others' vaults stays, and must stay verifiable without
        // naming them: a version-1 header names them, and a chain with a version-1 link signs
        // their id and their devices' names.
        let named_elsewhere: Option<i64> = tx
            .scalar(
                q(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM tree_commits c {ELSEWHERE} \
                     AND (c.signer_key IS NULL OR EXISTS \
                     (SELECT 1 FROM account_links l WHERE l.user_id = ? AND l.version = 1))"
                ))
                .binds((user_id, user_id, user_id)),
            )
            .await?;
        if named_elsewhere.unwrap_or(0) > 0 {
            return Err(StoreError::Conflict(
                "this user signed commits in vaults others own in the format from before \
                 erasure was possible (version 1), which names them: erasing them would leave \
                 those vaults unverifiable. The vaults' owners can remove the user instead",
            ));
        }
        let mut counts = Vec::new();
        for (what, table) in CREDENTIALS {
            let n = tx
                .execute(q(format!("DELETE FROM {table} WHERE user_id = ?")).bind(user_id))
                .await?;
            counts.push(format!("{what}={n}"));
        }
        // The passphrase stops working (a login compares against the server's dummy hash),
        // and so does an invitation not yet used.
        tx.execute(
            q(
                "UPDATE users SET auth_hash = NULL, invite_hash = NULL, invite_expires = NULL \
               WHERE id = ?",
            )
            .bind(user_id),
        )
        .await?;
        let row = ErasureRow {
            id: id.to_string(),
            user_id: Some(user_id.to_string()),
            // Not a valid user name, so no account can ever be mistaken for it.
            label: format!("(erased {})", &id[..id.len().min(12)]),
            pseudonym: pseudonym.map(str::to_string),
            step: 0,
            counts: counts.join(" "),
            by_admin: i64::from(by_admin),
            started: unix_now(),
            finished: None,
        };
        tx.execute(
            q(format!(
                "INSERT INTO erasures ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .binds((
                &row.id,
                &row.user_id,
                &row.label,
                &row.pseudonym,
                row.step,
                &row.counts,
                row.by_admin,
                row.started,
                row.finished,
            )),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn erasure(&self, id: &str) -> Result<Option<ErasureRow>> {
        self.db
            .read_opt(
                Scope::System,
                q(format!("SELECT {COLS} FROM erasures WHERE id = ?")).bind(id),
            )
            .await
    }

    async fn erasures_pending(&self) -> Result<Vec<ErasureRow>> {
        self.db
            .read_all(
                Scope::System,
                q(format!(
                    "SELECT {COLS} FROM erasures WHERE finished IS NULL ORDER BY started, id"
                )),
            )
            .await
    }

    async fn erasure_step(&self, id: &str, step: &str) -> Result<ErasureRow> {
        let mut tx = self.db.write(Scope::System).await?;
        let lock = tx.locking("FOR UPDATE");
        let mut job: ErasureRow = tx
            .opt(q(format!("SELECT {COLS} FROM erasures WHERE id = ? {lock}")).bind(id))
            .await?
            .ok_or(StoreError::NotFound)?;
        if job.next_step() != step {
            // Done already (by this server before a crash, or by another replica).
            return Ok(job);
        }
        let counts = match (step, job.user_id.clone()) {
            ("collect", _) => {
                job.finished = Some(unix_now());
                Vec::new()
            }
            (_, None) => return Err(StoreError::Conflict("the erasure has no user left")),
            ("account", Some(user)) => {
                // Again every earlier step: what a request in flight wrote after its step ran
                // (a backup, a restic file, a record, an audit entry) goes too, blobs
                // queued, before the cascade of the user's row could orphan them.
                let mut counts = Vec::new();
                for again in &ERASURE_STEPS[..ERASURE_STEPS.len() - 3] {
                    counts.extend(run_step(&mut tx, &job, again, &user).await?);
                }
                counts.extend(run_step(&mut tx, &job, "account", &user).await?);
                counts
            }
            (step, Some(user)) => run_step(&mut tx, &job, step, &user).await?,
        };
        job.step += 1;
        for (what, n) in counts {
            job.counts.push_str(&format!(" {what}={n}"));
        }
        job.counts = job.counts.trim().to_string();
        if step == "account" {
            job.user_id = None;
            job.pseudonym = None;
        }
        tx.execute(
            q(
                "UPDATE erasures SET step = ?, counts = ?, user_id = ?, pseudonym = ?, \
               finished = ? WHERE id = ?",
            )
            .binds((
                job.step,
                &job.counts,
                &job.user_id,
                &job.pseudonym,
                job.finished,
                &job.id,
            )),
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    async fn erasure_blobs_left(&self, id: &str) -> Result<u64> {
        let n: Option<i64> = self
            .db
            .read(Scope::System)
            .await?
            .scalar(q("SELECT CAST(COUNT(*) AS BIGINT) FROM blob_gc WHERE erasure = ?").bind(id))
            .await?;
        Ok(n.unwrap_or(0) as u64)
    }

    async fn compact(&self) -> Result<()> {
        self.db.vacuum().await?;
        for _ in 0..50 {
            if self.db.checkpoint().await? {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(StoreError::Conflict(
            "the database's write-ahead log could not be emptied: readers held it for 5 s",
        ))
    }
}

/// The work of one step for `user`: what it removed, by name.
async fn run_step(
    tx: &mut Tx,
    job: &ErasureRow,
    step: &str,
    user: &str,
) -> Result<Vec<(&'static str, u64)>> {
    let now = unix_now();
    let pseudonym = job.pseudonym.as_deref();
    let one = |sql: &'static str| q(sql).bind(user);
    Ok(match step {
        "records" => {
            let n = match pseudonym {
                Some(owner) => {
                    tx.execute(q("DELETE FROM records WHERE owner = ?").bind(owner))
                        .await?
                }
                None => 0,
            };
            vec![("records", n)]
        }
        "backups" => {
            let blobs = requeue(
                tx,
                now,
                &job.id,
                "blob_key FROM backups WHERE user_id = ? AND blob_key IS NOT NULL",
                (user,),
            )
            .await?;
            let n = tx
                .execute(one("DELETE FROM backups WHERE user_id = ?"))
                .await?;
            // Blobs reserved by uploads that never finished (queued for later, in case).
            let reserved = format!("backups/{user}/");
            tx.execute(
                q("UPDATE blob_gc SET erasure = ?, \
                   queued = CASE WHEN queued > ? THEN ? ELSE queued END \
                   WHERE substr(blob_key, 1, CAST(? AS INTEGER)) = ?")
                .bind(&job.id)
                .binds((now, now))
                .binds(prefix(&reserved)),
            )
            .await?;
            vec![("backups", n), ("blobs", blobs)]
        }
        "mercury" => {
            let blobs = requeue(
                tx,
                now,
                &job.id,
                "blob_key FROM mercury_files WHERE user_id = ?",
                (user,),
            )
            .await?;
            let n = tx
                .execute(one("DELETE FROM mercury_files WHERE user_id = ?"))
                .await?;
            vec![("mercury_archives", n), ("blobs", blobs)]
        }
        "restic" => {
            let blobs = requeue(
                tx,
                now,
                &job.id,
                "o.blob_key FROM restic_objects o JOIN restic_repos r ON r.id = o.repo_id \
                 WHERE r.user_id = ? AND o.data IS NULL",
                (user,),
            )
            .await?;
            let files: Option<i64> = tx
                .scalar(one(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM restic_objects o \
                     JOIN restic_repos r ON r.id = o.repo_id WHERE r.user_id = ?",
                ))
                .await?;
            let n = tx
                .execute(one("DELETE FROM restic_repos WHERE user_id = ?"))
                .await?;
            vec![
                ("restic_repositories", n),
                ("restic_files", files.unwrap_or(0) as u64),
                ("blobs", blobs),
            ]
        }
        "vaults" => {
            let mut blobs = 0;
            for from in [
                "ve.blob_key FROM versions ve JOIN objects ob ON ve.object_id = ob.id \
                 JOIN vaults v ON v.id = ob.vault_id WHERE v.owner_id = ?",
                "u.blob_key FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE v.owner_id = ?",
                "b.blob_key FROM tree_blobs b JOIN vaults v ON v.id = b.vault_id \
                 WHERE v.owner_id = ?",
            ] {
                blobs += requeue(tx, now, &job.id, from, (user,)).await?;
            }
            let versions: Option<i64> = tx
                .scalar(one("SELECT CAST(COUNT(*) AS BIGINT) FROM versions ve \
                     JOIN objects ob ON ob.id = ve.object_id JOIN vaults v ON v.id = ob.vault_id \
                     WHERE v.owner_id = ?"))
                .await?;
            let commits: Option<i64> = tx
                .scalar(one("SELECT CAST(COUNT(*) AS BIGINT) FROM tree_commits c \
                     JOIN vaults v ON v.id = c.vault_id WHERE v.owner_id = ?"))
                .await?;
            let n = tx
                .execute(one("DELETE FROM vaults WHERE owner_id = ?"))
                .await?;
            vec![
                ("vaults", n),
                ("versions", versions.unwrap_or(0) as u64),
                ("commits", commits.unwrap_or(0) as u64),
                ("blobs", blobs),
            ]
        }
        "elsewhere" => {
            // Uploads in flight into others' vaults: their owners get back what was charged.
            let lock = tx.locking("FOR UPDATE OF u");
            let pending: Vec<(String, String, String, i64)> = tx
                .all(
                    q(format!(
                        "SELECT u.id, u.blob_key, v.owner_id, u.charged \
                         FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE u.user_id = ? {lock}"
                    ))
                    .bind(user),
                )
                .await?;
            for (id, blob_key, owner, charged) in &pending {
                charge(tx, owner, -charged, None).await?;
                tx.execute(
                    q(format!(
                        "INSERT INTO blob_gc (queued, erasure, blob_key) VALUES (?, ?, ?) {UPSERT}"
                    ))
                    .binds((now, &job.id, blob_key)),
                )
                .await?;
                tx.execute(q("DELETE FROM uploads WHERE id = ?").bind(id))
                    .await?;
            }
            // What they wrote into others' vaults belongs to those vaults: it stays, signed
            // as before (a version's signature does not cover its author's name), attributed
            // to the erasure's label.
            let kept = tx
                .execute(
                    q("UPDATE versions SET author = ?, author_id = ? WHERE author_id = ?")
                        .binds((&job.label, &job.label, user)),
                )
                .await?;
            let memberships = tx
                .execute(one("DELETE FROM vault_members WHERE user_id = ?"))
                .await?;
            vec![
                ("memberships", memberships),
                ("versions_kept_in_others_vaults", kept),
                ("uploads_abandoned", pending.len() as u64),
                ("blobs", pending.len() as u64),
            ]
        }
        "credentials" => {
            let name: String = tx
                .scalar(one("SELECT name FROM users WHERE id = ?"))
                .await?
                .ok_or(StoreError::NotFound)?;
            for (_, table) in CREDENTIALS {
                tx.execute(q(format!("DELETE FROM {table} WHERE user_id = ?")).bind(user))
                    .await?;
            }
            tx.execute(q("DELETE FROM ssh_challenges WHERE user_name = ?").bind(&name))
                .await?;
            // Throttle entries keyed by the name (`user:N`, `token-user:N`,
            // `user-client:N:ADDR`, `known:N:ADDR`), rate entries keyed by the id
            // (`…:user:ID`).
            tx.execute(
                q("DELETE FROM throttle WHERE key = ? OR key = ? \
                   OR substr(key, 1, CAST(? AS INTEGER)) = ? \
                   OR substr(key, 1, CAST(? AS INTEGER)) = ?")
                .bind(format!("user:{name}"))
                .bind(format!("token-user:{name}"))
                .binds(prefix(&format!("user-client:{name}:")))
                .binds(prefix(&format!("known:{name}:"))),
            )
            .await?;
            let contains = tx.pick("instr(key, ?) > 0", "strpos(key, ?) > 0");
            tx.execute(q(format!("DELETE FROM rate_events WHERE {contains}")).bind(user))
                .await?;
            let devices = tx
                .execute(one("DELETE FROM devices WHERE user_id = ?"))
                .await?;
            // The commits they signed into others' vaults stay verifiable: their chain stays
            // under the account key, without their id, their devices' names or the names'
            // salts (the start refused a chain with links that sign those).
            let kept = tx
                .execute(
                    q(format!(
                        "INSERT INTO kept_links (account_key, {KEPT_COLS}) \
                         SELECT u.ed25519_public, l.seq, l.hash, l.prev, l.kind, l.device_id, \
                         l.name_commitment, l.device_key, l.created, l.signature, \
                         l.last_counter, l.last_entry, l.commit_ends \
                         FROM account_links l JOIN users u ON u.id = l.user_id \
                         WHERE l.user_id = ? AND l.version = 2 AND EXISTS \
                         (SELECT 1 FROM tree_commits c {ELSEWHERE} \
                          AND c.signer_key = u.ed25519_public) \
                         ON CONFLICT (account_key, seq) DO NOTHING"
                    ))
                    .binds((user, user, user)),
                )
                .await?;
            let links = tx
                .execute(one("DELETE FROM account_links WHERE user_id = ?"))
                .await?;
            vec![
                ("devices", devices),
                ("account_links", links),
                ("account_links_kept_nameless", kept),
            ]
        }
        "audit" => {
            let name: String = tx
                .scalar(one("SELECT name FROM users WHERE id = ?"))
                .await?
                .ok_or(StoreError::NotFound)?;
            // Records' entries name the pseudonym instead (actor `records:` and its first 16
            // characters, target `record ID of PSEUDONYM`).
            let mut needles = vec![name, user.to_string()];
            if let Some(p) = pseudonym {
                needles.push(p.to_string());
                needles.push(format!("records:{}", &p[..p.len().min(16)]));
            }
            let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
            let (redacted, left) = redact_in(tx, user, &needles).await?;
            vec![
                ("audit_entries_redacted", redacted),
                ("audit_entries_left_naming", left),
            ]
        }
        "account" => {
            // Version-1 commits in others' vaults name the user in signed bytes. The start
            // refuses a user who has any, and the server takes no more of them, so this count
            // is a last check: they would stay, and the report would say so.
            let named: Option<i64> = tx
                .scalar(
                    q(format!(
                        "SELECT CAST(COUNT(*) AS BIGINT) FROM tree_commits c {ELSEWHERE} \
                         AND c.signer_key IS NULL"
                    ))
                    .binds((user, user)),
                )
                .await?;
            tx.execute(
                q("UPDATE tree_commits SET author_id = ? WHERE author_id = ?")
                    .binds((&job.label, user)),
            )
            .await?;
            tx.execute(one("DELETE FROM users WHERE id = ?")).await?;
            // The tombstone: the one place the id stays, with what was removed.
            let head = head_in(tx).await?;
            let entry = NewAudit {
                ts: now,
                actor: "enc-server".into(),
                actor_id: None,
                action: "user.erased".into(),
                target: user.to_string(),
                outcome: format!("{} {}", job.label, job.counts),
                client: String::new(),
            };
            tx.execute_all(appends(head, &[entry]).0).await?;
            vec![
                ("account", 1),
                ("commits_left_naming", named.unwrap_or(0) as u64),
            ]
        }
        _ => return Err(StoreError::Conflict("unknown erasure step")),
    })
}

/// Commits (`c`) a user (the first `?`) signed in vaults another owns (the second `?`).
const ELSEWHERE: &str =
    "JOIN vaults v ON v.id = c.vault_id WHERE c.author_id = ? AND v.owner_id <> ?";

/// What queueing a key the erasure's way does to a key already queued: it is due now (a
/// reservation's later time moved), and it is the job's.
const UPSERT: &str = "ON CONFLICT (blob_key) DO UPDATE SET erasure = excluded.erasure, \
     queued = CASE WHEN excluded.queued < blob_gc.queued THEN excluded.queued \
     ELSE blob_gc.queued END";

/// Queues for collection now, as job `job`'s, the blob keys of `SELECT {from}` (a constant
/// with a `WHERE`; `args` its values). How many.
async fn requeue(
    tx: &mut Tx,
    now: i64,
    job: &str,
    from: &str,
    args: impl super::Args,
) -> Result<u64> {
    let sql =
        format!("INSERT INTO blob_gc (queued, erasure, blob_key) SELECT ?, ?, {from} {UPSERT}");
    tx.execute(q(sql).bind(now).bind(job).binds(args)).await
}

/// `(length, prefix)` for a `substr(key, 1, CAST(? AS INTEGER)) = ?` test.
fn prefix(p: &str) -> (i64, String) {
    (p.len() as i64, p.to_string())
}
