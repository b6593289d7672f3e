//! Device backups (tenant scope): each device's chain of signed entries, appended only on
//! top of its last entry, in the transaction that stores the content (in the row, or by
//! claiming the blob's reservation) and charges the user.

use super::{Scope, SqlMeta, Stored, charge, insert, q, queue_at};
use crate::*;

const BACKUP_COLS: &str = BackupRow::COLS;

/// Locks the user's chains and checks that `row` comes next in its device's and that the
/// device stands; numbers it after the user's last entry, and records the account chain's
/// length (where the device's certificate and revocation are checked).
async fn check_next(tx: &mut super::Tx, row: &mut BackupRow) -> Result<()> {
    // The account chain's lock first, as a revocation takes it: an entry is either accepted
    // before a revocation of its device, or sees it.
    tx.lock(&format!("chain:{}", row.user_id)).await?;
    tx.lock(&format!("backups:{}", row.user_id)).await?;
    // One statement for everything the order depends on (the group commit's, for one
    // device): whether the device stands, its last entry, the account chain's length and the
    // user's last number.
    let state = chain_states(tx, &row.user_id, &[row.device_id.as_str()]).await?;
    let Some((_, 1, counter, hash, links, last, _, _)) = state.into_iter().next() else {
        return Err(StoreError::Conflict("the device is revoked"));
    };
    if row.counter != counter + 1 || row.prev != hash {
        return Err(StoreError::Conflict(
            "out of order: the entry is not the device's next (its counter and prev)",
        ));
    }
    row.chain_seq = links;
    row.seq = last + 1;
    Ok(())
}

/// Appends one backup inside a transaction: every check before any change, so a refused one
/// (`Conflict`, `QuotaExceeded`) leaves the transaction as it found it.
async fn put_in(
    tx: &mut super::Tx,
    mut row: BackupRow,
    data: Option<Vec<u8>>,
    quota: Option<i64>,
) -> Result<BackupRow> {
    check_next(tx, &mut row).await?;
    if let Some(key) = &row.blob_key
        && !super::still_reserved(tx, key).await?
    {
        return Err(StoreError::Conflict("the upload's reservation expired"));
    }
    charge(tx, &row.user_id, row.size, quota).await?;
    if let Some(key) = &row.blob_key {
        tx.execute(q("DELETE FROM blob_gc WHERE blob_key = ?").bind(key))
            .await?;
    }
    tx.execute(insert(&row, "")).await?;
    if let Some(data) = data {
        tx.execute(
            q("UPDATE backups SET data = ? WHERE user_id = ? AND id = ?").binds((
                data,
                &row.user_id,
                &row.id,
            )),
        )
        .await?;
    }
    Ok(row)
}

/// An item that passed the order check: its row, content, audit entry and quota.
type Kept = (BackupRow, Option<Vec<u8>>, NewAudit, Option<i64>);

/// Where a device's chain stands, as [`chain_states`] reads it: the device, whether it
/// stands, its last entry's counter and id, its user's account chain length and last
/// number, and the audit chain's last number and hash.
type ChainState = (String, i64, i64, String, i64, i64, i64, String);

/// Where many devices' chains of one user stand, in one statement: per device that exists,
/// whether it stands, its last entry's counter and id, with the user's account chain length
/// and last number on every row, and on SQLite (whose write transactions run one at a time,
/// so nothing else appends meanwhile) the audit chain's end (0 and empty on PostgreSQL, where
/// the group commit reads it under the chain's lock). A device not returned does not exist
/// (for this user).
async fn chain_states(tx: &mut super::Tx, user: &str, devices: &[&str]) -> Result<Vec<ChainState>> {
    let mut out = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let audit_end = tx.pick(
            "COALESCE((SELECT seq FROM audit ORDER BY seq DESC LIMIT 1), 0), \
             COALESCE((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '')",
            "CAST(0 AS BIGINT), ''",
        );
        let mut stmt = q(format!(
            "SELECT d.id, CAST(CASE WHEN d.revoked_seq IS NULL THEN 1 ELSE 0 END AS BIGINT), \
               COALESCE((SELECT MAX(counter) FROM backups b \
                         WHERE b.user_id = d.user_id AND b.device_id = d.id), 0), \
               COALESCE((SELECT id FROM backups b WHERE b.user_id = d.user_id \
                         AND b.device_id = d.id ORDER BY counter DESC LIMIT 1), ''), \
               COALESCE((SELECT MAX(seq) FROM account_links WHERE user_id = ?), 0), \
               COALESCE((SELECT MAX(seq) FROM backups WHERE user_id = ?), 0), {audit_end} \
             FROM devices d WHERE d.user_id = ? AND d.id IN ({marks})"
        ))
        .binds((user, user, user));
        for d in chunk {
            stmt = stmt.bind(*d);
        }
        out.extend(tx.all::<ChainState>(stmt).await?);
    }
    Ok(out)
}

/// Where a device's chain and its user's numbering stand inside a group commit.
struct Head {
    counter: i64,
    id: String,
    links: i64,
}

/// A group commit's appends with as few statements as the batch allows: one look at the
/// chains of each user's devices, one charge per user (per item only for a user whose quota is near), one
/// claim of the blob reservations, one multi-row insert of the entries and one of their
/// audit entries. Each item is decided on its own, in order, exactly as [`put_in`] would:
/// a refused item changes nothing, and a device's later items in the batch, which named the
/// refused one as `prev`, are refused as out of order.
async fn put_many(tx: &mut super::Tx, items: Vec<NewBackup>) -> Result<Vec<Result<BackupRow>>> {
    use std::collections::HashMap;
    let mut users: Vec<String> = items.iter().map(|i| i.row.user_id.clone()).collect();
    users.sort();
    users.dedup();
    // In one order for every batch (the chain's lock first, as revocations take it).
    for u in &users {
        tx.lock(&format!("chain:{u}")).await?;
        tx.lock(&format!("backups:{u}")).await?;
    }
    let mut audit_head: Option<(i64, String)> = None;
    let mut heads: HashMap<(String, String), Head> = HashMap::new();
    let mut seqs: HashMap<String, i64> = HashMap::new();
    // Every device's chain of each user in one statement; only standing devices have a head.
    for u in &users {
        let mut devices: Vec<&str> = items
            .iter()
            .filter(|i| i.row.user_id == *u)
            .map(|i| i.row.device_id.as_str())
            .collect();
        devices.sort_unstable();
        devices.dedup();
        for (device, standing, counter, id, links, last, audit_seq, audit_hash) in
            chain_states(tx, u, &devices).await?
        {
            audit_head.get_or_insert((audit_seq, audit_hash));
            seqs.entry(u.clone()).or_insert(last);
            if standing > 0 {
                heads.insert((u.clone(), device), Head { counter, id, links });
            }
        }
    }
    let mut out: Vec<Result<BackupRow>> = Vec::with_capacity(items.len());
    let mut kept: Vec<Kept> = Vec::new();
    // First pass: the order, against each device's chain as the batch extends it.
    for item in items {
        let NewBackup {
            row,
            data,
            quota,
            audit,
        } = item;
        let k = (row.user_id.clone(), row.device_id.clone());
        let Some(head) = heads.get_mut(&k) else {
            out.push(Err(StoreError::Conflict("the device is revoked")));
            continue;
        };
        if row.counter != head.counter + 1 || row.prev != head.id {
            out.push(Err(StoreError::Conflict(
                "out of order: the entry is not the device's next (its counter and prev)",
            )));
            continue;
        }
        if let Some(key) = &row.blob_key
            && !super::still_reserved(tx, key).await?
        {
            out.push(Err(StoreError::Conflict(
                "the upload's reservation expired",
            )));
            continue;
        }
        head.counter = row.counter;
        head.id = row.id.clone();
        let mut row = row;
        row.chain_seq = head.links;
        out.push(Ok(row.clone()));
        kept.push((row, data, audit, quota));
    }
    // Second pass: the quota, all of a user's bytes at once; item by item only when that
    // does not fit, in order, each refusal refusing the device's later items too.
    let mut refused: Vec<Option<StoreError>> = (0..kept.len()).map(|_| None).collect();
    for u in &users {
        let mine: Vec<usize> = (0..kept.len())
            .filter(|&i| kept[i].0.user_id == *u)
            .collect();
        let total: i64 = mine.iter().map(|&i| kept[i].0.size).sum();
        let quota = mine.iter().find_map(|&i| kept[i].3);
        if total == 0 || charge(tx, u, total, quota).await.is_ok() {
            continue;
        }
        let mut cut: Vec<String> = Vec::new();
        for &i in &mine {
            let row = &kept[i].0;
            if cut.contains(&row.device_id) {
                refused[i] = Some(StoreError::Conflict(
                    "out of order: the entry before it in the device's chain was refused",
                ));
                continue;
            }
            match charge(tx, u, row.size, quota).await {
                Ok(()) => {}
                Err(StoreError::QuotaExceeded) => {
                    refused[i] = Some(StoreError::QuotaExceeded);
                    cut.push(row.device_id.clone());
                }
                Err(e) => return Err(e),
            }
        }
    }
    // The results in item order, then the writes of what stands.
    let mut kept_iter = kept.into_iter().zip(refused);
    let mut rows: Vec<(BackupRow, Option<Vec<u8>>)> = Vec::new();
    let mut audits: Vec<NewAudit> = Vec::new();
    for slot in out.iter_mut() {
        if slot.is_err() {
            continue;
        }
        let Some(((mut row, data, audit, _), refusal)) = kept_iter.next() else {
            break;
        };
        if let Some(e) = refusal {
            *slot = Err(e);
            continue;
        }
        let seq = seqs.entry(row.user_id.clone()).or_insert(0);
        *seq += 1;
        row.seq = *seq;
        *slot = Ok(row.clone());
        rows.push((row, data));
        audits.push(audit);
    }
    // The writes in one round trip where the engine allows: the claims of the blob
    // reservations, the entries, their audit entries.
    let mut writes: Vec<super::Q> = rows
        .iter()
        .filter_map(|(r, _)| r.blob_key.as_ref())
        .map(|key| q("DELETE FROM blob_gc WHERE blob_key = ?").bind(key))
        .collect();
    let cols = BACKUP_COLS;
    let per_row = vec!["?"; cols.split(',').count() + 1].join(", ");
    for chunk in rows.chunks(32) {
        let values = vec![format!("({per_row})"); chunk.len()].join(", ");
        let mut stmt = q(format!(
            "INSERT INTO backups ({cols}, data) VALUES {values}"
        ));
        for (row, data) in chunk {
            stmt = row.bind_row(stmt).bind(data.clone());
        }
        writes.push(stmt);
    }
    if !audits.is_empty() {
        // SQLite: read with the chains (a kept entry means a device was found), in this
        // transaction that runs alone. PostgreSQL: now, under the audit chain's lock.
        let head = match audit_head {
            _ if !tx.serialised() => super::audit::head_in(tx).await?,
            Some((0, _)) | None => (0, enc_crypto::audit::GENESIS.to_string()),
            Some(h) => h,
        };
        writes.extend(super::audit::appends(head, &audits).0);
    }
    tx.execute_all(writes).await?;
    Ok(out)
}

#[async_trait::async_trait]
impl Backups for SqlMeta {
    async fn backup_head(&self, user_id: &str, device_id: &str) -> Result<Option<BackupRow>> {
        self.db
            .read_opt(
                Scope::Tenant,
                q(format!(
                    "SELECT {BACKUP_COLS} FROM backups WHERE user_id = ? AND device_id = ? \
                     ORDER BY counter DESC LIMIT 1"
                ))
                .binds((user_id, device_id)),
            )
            .await
    }

    async fn put_backup(
        &self,
        row: BackupRow,
        data: Option<Vec<u8>>,
        quota: Option<i64>,
    ) -> Result<BackupRow> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        let row = put_in(&mut tx, row, data, quota).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn put_backups(&self, items: Vec<NewBackup>) -> Result<Vec<Result<BackupRow>>> {
        let mut tx = self.db.write(Scope::System).await?;
        let out = put_many(&mut tx, items).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn tombstone_backup(&self, mut row: BackupRow) -> Result<()> {
        let mut tx = self.db.write(Scope::Tenant).await?;
        check_next(&mut tx, &mut row).await?;
        let target: Option<(i64, Option<String>)> = tx
            .opt(
                q(
                    "SELECT size, blob_key FROM backups WHERE user_id = ? AND id = ? \
                   AND kind = 'backup' AND deleted IS NULL",
                )
                .binds((&row.user_id, &row.target)),
            )
            .await?;
        let (size, blob_key) = target.ok_or(StoreError::NotFound)?;
        let inserted = tx.execute(insert(&row, "ON CONFLICT DO NOTHING")).await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("that entry is stored already"));
        }
        tx.execute(
            q("UPDATE backups SET deleted = ?, data = NULL WHERE user_id = ? AND id = ?").binds((
                row.received,
                &row.user_id,
                &row.target,
            )),
        )
        .await?;
        charge(&mut tx, &row.user_id, -size, None).await?;
        if let Some(key) = blob_key {
            queue_at(&mut tx, &key, row.received).await?;
        }
        tx.commit().await
    }

    async fn list_backups(&self, user_id: &str, f: BackupFilter) -> Result<Vec<BackupRow>> {
        let before = f.before.unwrap_or(i64::MAX);
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {BACKUP_COLS} FROM backups WHERE user_id = ? AND kind = 'backup' \
                     AND deleted IS NULL \
                     AND (? = '' OR device_id = ?) AND (? = '' OR classification = ?) \
                     AND seq < ? ORDER BY seq DESC LIMIT ?"
                ))
                .binds((user_id, f.device_id.as_deref().unwrap_or("")))
                .binds((f.device_id.as_deref().unwrap_or(""),))
                .binds((
                    f.classification.as_deref().unwrap_or(""),
                    f.classification.as_deref().unwrap_or(""),
                ))
                .binds((before, f.limit)),
            )
            .await
    }

    async fn backup(&self, user_id: &str, id: &str) -> Result<Option<BackupRow>> {
        self.db
            .read_opt(
                Scope::Tenant,
                q(format!(
                    "SELECT {BACKUP_COLS} FROM backups WHERE user_id = ? AND id = ?"
                ))
                .binds((user_id, id)),
            )
            .await
    }

    async fn backup_data(&self, user_id: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> = self
            .db
            .read_opt(
                Scope::Tenant,
                q("SELECT data FROM backups WHERE user_id = ? AND id = ?").binds((user_id, id)),
            )
            .await?;
        Ok(row.and_then(|(d,)| d))
    }

    async fn backup_chain(&self, user_id: &str, device_id: &str) -> Result<Vec<BackupRow>> {
        self.db
            .read_all(
                Scope::Tenant,
                q(format!(
                    "SELECT {BACKUP_COLS} FROM backups WHERE user_id = ? AND device_id = ? \
                     ORDER BY counter"
                ))
                .binds((user_id, device_id)),
            )
            .await
    }

    async fn backup_usage(&self) -> Result<Vec<BackupUsageRow>> {
        // Days are counted in whole UTC days of `received`, the same arithmetic on both
        // engines; the day's date is formatted by the caller.
        let rows: Vec<(i64, String, i64, i64)> = self
            .db
            .read_all(
                Scope::System,
                q(
                    "SELECT CAST(received / 86400 AS BIGINT) AS d, classification, \
                   CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(size), 0) AS BIGINT) \
                   FROM backups WHERE kind = 'backup' AND deleted IS NULL \
                   GROUP BY CAST(received / 86400 AS BIGINT), classification \
                   ORDER BY d, classification",
                ),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(d, classification, backups, bytes)| BackupUsageRow {
                day: civil_day(d),
                classification,
                backups,
                bytes,
            })
            .collect())
    }
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_format_as_dates() {
        assert_eq!(super::civil_day(0), "1970-01-01");
        assert_eq!(super::civil_day(20_428), "2025-12-06");
        assert_eq!(super::civil_day(11_016), "2000-02-29");
    }
}
