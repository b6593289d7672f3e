//! Recording a batch of restic files in one transaction (restic's group commit).
//!
//! Recording files one by one costs two statements each (a charge, an insert), and every
//! statement is a round trip to the database (a hop to sqlx's worker thread on SQLite, a TCP
//! exchange on PostgreSQL). A batch is instead charged once per user and inserted with one
//! multi-row statement that returns what it inserted; only the files it did not insert (a
//! name that existed, a repository deleted meanwhile) and the users whose files do not all
//! fit their quota are then handled one by one, exactly as before.

use super::{Tx, charge, q};
use crate::{NewResticObject, PutOutcome, Result, StoreError};

/// Records a batch's files: one charge per user and one multi-row insert for all of them. A
/// user whose files do not all fit the quota has them recorded one by one, each charged or
/// refused on its own; so are the files the insert skipped (a name that exists, a repository
/// gone), after their charge is given back. `Err` only for a failure of the transaction.
pub(crate) async fn put_many(
    tx: &mut Tx,
    puts: &[NewResticObject],
) -> Result<Vec<Result<PutOutcome>>> {
    let mut out: Vec<Option<Result<PutOutcome>>> = puts.iter().map(|_| None).collect();
    let mut bulk = Vec::new();
    for share in shares(puts) {
        match charge(tx, share.user_id, share.bytes, share.quota).await {
            Ok(()) => bulk.extend(share.files),
            Err(StoreError::QuotaExceeded) => {
                for i in share.files {
                    out[i] = Some(one_of_many(tx, &puts[i]).await?);
                }
            }
            Err(other) => return Err(other),
        }
    }
    bulk.sort_by(|&a, &b| {
        let (a, b) = (&puts[a], &puts[b]);
        (&a.repo_id, &a.kind, &a.name).cmp(&(&b.repo_id, &b.kind, &b.name))
    });
    for chunk in bulk.chunks(64) {
        let files: Vec<&NewResticObject> = chunk.iter().map(|&i| &puts[i]).collect();
        let inserted = insert(tx, &files).await?;
        for (&i, done) in chunk.iter().zip(recorded(puts, chunk, &inserted)) {
            if done {
                out[i] = Some(Ok(PutOutcome::Stored));
                continue;
            }
            let o = &puts[i];
            charge(tx, &o.user_id, -o.size, None).await?;
            out[i] = Some(one_of_many(tx, o).await?);
        }
    }
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or(Err(StoreError::Batch("file left out of its batch".into()))))
        .collect())
}

/// Same name, same content: keep the stored copy, drop the new blob (if any) soon.
async fn existed(tx: &mut Tx, o: &NewResticObject) -> Result<PutOutcome> {
    if o.data.is_none() {
        tx.execute(
            q("UPDATE blob_gc SET queued = ? WHERE blob_key = ?").binds((o.now, &o.blob_key)),
        )
        .await?;
    }
    Ok(PutOutcome::Existed)
}

/// The multi-row insert of [`insert_sql`] for these files: the rows it inserted.
async fn insert(tx: &mut Tx, files: &[&NewResticObject]) -> Result<Vec<Inserted>> {
    // PostgreSQL types the VALUES list from its first row; SQLite has no BYTEA (and its
    // CAST to an unknown type would turn a blob into a number).
    let row = tx.pick(
        "(?, ?, ?, ?, ?, ?, ?)",
        "(?, ?, ?, CAST(? AS BIGINT), ?, CAST(? AS BIGINT), CAST(? AS BYTEA))",
    );
    let rows = padded_rows(files.len());
    let mut query = q(insert_sql(rows, row));
    for o in files {
        query = query.binds((
            &o.repo_id,
            &o.kind,
            &o.name,
            o.size,
            &o.blob_key,
            o.now,
            o.data.as_deref(),
        ));
    }
    for _ in files.len()..rows {
        query = query.binds((
            None::<&str>,
            None::<&str>,
            None::<&str>,
            None::<i64>,
            None::<&str>,
            None::<i64>,
            None::<&[u8]>,
        ));
    }
    tx.returning(query).await
}

/// The charge comes first: when it is refused nothing has changed, so no savepoint is
/// needed around a file (two statements fewer per file).
async fn put_one(tx: &mut Tx, o: &NewResticObject) -> Result<PutOutcome> {
    match charge(tx, &o.user_id, o.size, o.quota).await {
        Ok(()) => {}
        Err(StoreError::QuotaExceeded) => {
            // A concurrent upload of the same file may have recorded it: not a refusal.
            let exists: Option<i64> = tx
                .scalar(
                    q("SELECT CAST(1 AS BIGINT) FROM restic_objects \
                       WHERE repo_id = ? AND kind = ? AND name = ?")
                    .binds((&o.repo_id, &o.kind, &o.name)),
                )
                .await?;
            return match exists {
                Some(_) => existed(tx, o).await,
                None => Err(StoreError::QuotaExceeded),
            };
        }
        Err(other) => return Err(other),
    }
    // The batch's multi-row insert with one row: it skips an existing name or a gone
    // repository.
    if insert(tx, &[o]).await?.is_empty() {
        // Nothing recorded: give the charge back.
        charge(tx, &o.user_id, -o.size, None).await?;
        let repo: Option<i64> = tx
            .scalar(q("SELECT CAST(1 AS BIGINT) FROM restic_repos WHERE id = ?").bind(&o.repo_id))
            .await?;
        if repo.is_none() {
            return Err(StoreError::NotFound);
        }
        return existed(tx, o).await;
    }
    Ok(PutOutcome::Stored)
}

/// Blob keys of the files a batch stored in blobs (not in their rows): the ones to take off
/// the collection queue.
pub(crate) fn stored_blobs<'a>(
    puts: &'a [NewResticObject],
    out: &[Result<PutOutcome>],
) -> Vec<&'a str> {
    puts.iter()
        .zip(out)
        .filter(|(o, r)| o.data.is_none() && matches!(r, Ok(PutOutcome::Stored)))
        .map(|(o, _)| o.blob_key.as_str())
        .collect()
}

/// [`put_one`] inside a batch: a refusal is that file's answer, any other error
/// the batch's.
async fn one_of_many(tx: &mut Tx, o: &NewResticObject) -> Result<Result<PutOutcome>> {
    match put_one(tx, o).await {
        Ok(done) => Ok(Ok(done)),
        Err(e @ (StoreError::QuotaExceeded | StoreError::NotFound)) => Ok(Err(e)),
        Err(other) => Err(other),
    }
}

/// Files of one user in a batch, charged together.
pub(crate) struct UserShare<'a> {
    pub user_id: &'a str,
    /// Sum of the files' sizes.
    pub bytes: i64,
    /// The tightest quota among the files (they come from one policy; a change in between
    /// must not let a batch through that the new quota refuses).
    pub quota: Option<i64>,
    /// Indices of the files in the batch.
    pub files: Vec<usize>,
}

/// The batch's files grouped by owner, in order of first appearance.
pub(crate) fn shares(puts: &[NewResticObject]) -> Vec<UserShare<'_>> {
    let mut out: Vec<UserShare<'_>> = Vec::new();
    for (i, o) in puts.iter().enumerate() {
        let share = match out.iter_mut().position(|s| s.user_id == o.user_id) {
            Some(at) => &mut out[at],
            None => {
                out.push(UserShare {
                    user_id: &o.user_id,
                    bytes: 0,
                    quota: o.quota,
                    files: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        share.bytes = share.bytes.saturating_add(o.size);
        share.quota = match (share.quota, o.quota) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        share.files.push(i);
    }
    // Row locks are taken in one order by every batch (users here, names in the insert), so
    // two replicas' concurrent batches cannot deadlock on PostgreSQL.
    out.sort_by(|a, b| a.user_id.cmp(b.user_id));
    out
}

/// The multi-row insert of `rows` files (`?` placeholders; `row` is one row's tuple, with
/// whatever casts the backend needs). It skips names that exist and repositories that are
/// gone, and returns the key and blob of every row it inserted.
pub(crate) fn insert_sql(rows: usize, row: &str) -> String {
    let values = vec![row; rows].join(", ");
    format!(
        "INSERT INTO restic_objects (repo_id, kind, name, size, blob_key, created, data) \
         SELECT v.repo_id, v.kind, v.name, v.size, v.blob_key, v.created, v.data \
         FROM (SELECT NULL AS repo_id, NULL AS kind, NULL AS name, NULL AS size, \
               NULL AS blob_key, NULL AS created, NULL AS data WHERE false \
               UNION ALL VALUES {values}) AS v \
         WHERE EXISTS (SELECT 1 FROM restic_repos r WHERE r.id = v.repo_id) \
         ON CONFLICT (repo_id, kind, name) DO NOTHING \
         RETURNING repo_id, kind, name, blob_key"
    )
}

/// Rows of the insert statement for `files` files: the next power of two (at most 64), the
/// rest bound as NULL rows, which match no repository and insert nothing. Seven statement
/// texts in all, each prepared once and kept in sqlx's statement cache.
pub(crate) fn padded_rows(files: usize) -> usize {
    files.max(1).next_power_of_two()
}

/// A row the insert returned: repository, kind, name, blob key.
pub(crate) type Inserted = (String, String, String, String);

/// Which of `files` (indices into `puts`) the insert recorded. Two uploads of one name in a
/// batch carry the same content; the insert keeps the first, whose blob key it returns.
pub(crate) fn recorded(
    puts: &[NewResticObject],
    files: &[usize],
    inserted: &[Inserted],
) -> Vec<bool> {
    let mut taken = vec![false; inserted.len()];
    files
        .iter()
        .map(|&i| {
            let o = &puts[i];
            let hit = inserted.iter().enumerate().position(|(j, (r, k, n, b))| {
                !taken[j] && *r == o.repo_id && *k == o.kind && *n == o.name && *b == o.blob_key
            });
            if let Some(j) = hit {
                taken[j] = true;
            }
            hit.is_some()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(user: &str, name: &str, size: i64, quota: Option<i64>) -> NewResticObject {
        NewResticObject {
            repo_id: "r".into(),
            user_id: user.into(),
            kind: "data".into(),
            name: name.into(),
            size,
            blob_key: String::new(),
            data: Some(vec![0; size as usize]),
            quota,
            now: 0,
        }
    }

    #[test]
    fn shares_sum_per_user_with_the_tightest_quota() {
        let puts = [
            put("a", "1", 10, Some(100)),
            put("b", "2", 5, None),
            put("a", "3", 20, Some(50)),
        ];
        let s = shares(&puts);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].user_id, s[0].bytes, s[0].quota), ("a", 30, Some(50)));
        assert_eq!(s[0].files, [0, 2]);
        assert_eq!((s[1].user_id, s[1].bytes, s[1].quota), ("b", 5, None));
    }

    #[test]
    fn a_name_twice_in_a_batch_is_recorded_once() {
        let puts = [
            put("a", "x", 1, None),
            put("a", "y", 1, None),
            put("a", "x", 1, None),
        ];
        let ins = |n: &str| -> Inserted { ("r".into(), "data".into(), n.into(), String::new()) };
        assert_eq!(
            recorded(&puts, &[0, 1, 2], &[ins("x"), ins("y")]),
            [true, true, false]
        );
        assert_eq!(recorded(&puts, &[0, 1, 2], &[]), [false, false, false]);
    }

    #[test]
    fn statements_come_in_seven_sizes() {
        let sizes: std::collections::BTreeSet<usize> = (1..=64).map(padded_rows).collect();
        assert_eq!(
            sizes.into_iter().collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64]
        );
        assert!((1..=64).all(|n| padded_rows(n) >= n));
    }
}
