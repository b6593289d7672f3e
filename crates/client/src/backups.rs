//! Device backups: a file encrypted to the account's own age key, signed by this device as
//! the next entry of its chain (`enc backup v1`), and verified again on the way back: the
//! entry's signature with its device's certified key, the device's whole chain (a gap or a
//! reordering is reported), and the content's size and SHA-256.

use std::io::{Read, Seek as _, Write};

use enc_crypto::device::{DeviceKey, Entry, EntryKind};
use enc_proto::*;
use sha2::{Digest as _, Sha256};

use crate::api::query;
use crate::devices::{VerifiedChain, unix_now};
use crate::ops::Account;
use crate::profile::HeadPin;
use crate::{ClientError, Result};

/// The entry a [`BackupInfo`] says was signed, for `user_id` on `server_id`.
fn entry_of<'a>(b: &'a BackupInfo, user_id: &'a str, server_id: &'a str) -> Result<Entry<'a>> {
    let kind = EntryKind::parse(&b.kind)
        .ok_or_else(|| ClientError::Integrity(format!("entry {} is of kind {:?}", b.id, b.kind)))?;
    Ok(Entry {
        user_id,
        server_id,
        device_id: &b.device,
        kind,
        counter: b.counter,
        prev: &b.prev,
        classification: &b.classification,
        size: b.size,
        content_hash: &b.hash,
        target: &b.target,
        created: b.created,
    })
}

/// Checks one entry: its id is its hash, and its signature verifies with its device's key,
/// certified and not revoked when the server accepted it.
fn check_entry(
    chain: &VerifiedChain,
    b: &BackupInfo,
    user_id: &str,
    server_id: &str,
) -> Result<()> {
    let entry = entry_of(b, user_id, server_id)?;
    let bad = |why: &str| ClientError::Integrity(format!("backup entry {}: {why}", b.id));
    if entry.hash() != b.id {
        return Err(bad("its id is not the hash of what it says was signed"));
    }
    let device = chain
        .devices
        .get(&b.device)
        .ok_or_else(|| bad("its device is not in your signed account chain"))?;
    if !device.valid_at(b.chain_seq) {
        return Err(bad(
            "its device was not certified, or was revoked, when it was accepted",
        ));
    }
    if b.chain_seq > chain.len {
        return Err(bad(
            "it names an account chain longer than the one the server shows",
        ));
    }
    enc_crypto::verify_b64(&device.key, &entry.message(), &b.signature)
        .map_err(|_| bad("its signature does not verify with its device's key"))
}

impl Account {
    pub(crate) fn device_key(&self) -> Result<(String, DeviceKey)> {
        match (&self.session.device_id, &self.session.device_key) {
            (Some(id), Some(key)) => Ok((id.clone(), DeviceKey::from_secret_b64(key)?)),
            _ => Err(ClientError::Usage(
                "this login has no device key (it predates devices): run `enc login` again".into(),
            )),
        }
    }

    /// One device's chain, verified whole: counters 1, 2, … with no gap, each entry naming
    /// the one before and signed by the device; never shorter than, nor diverging from, the
    /// newest entry this device has seen of it. Returns the entries.
    pub fn backup_chain(&self, chain: &VerifiedChain, device_id: &str) -> Result<Vec<BackupInfo>> {
        let (user_id, server_id) = self.ids()?;
        let listed: BackupChain = self.api.get(&format!("/v1/devices/{device_id}/chain"))?;
        if listed.user_id != user_id || listed.server_id != server_id {
            return Err(ClientError::Integrity(
                "the server names another account or server in a backup chain".into(),
            ));
        }
        let mut prev = String::new();
        for (i, b) in listed.entries.iter().enumerate() {
            let want = i as u64 + 1;
            if b.device != device_id {
                return Err(ClientError::Integrity(format!(
                    "device {device_id}'s backup chain holds another device's entry"
                )));
            }
            if b.counter != want || b.prev != prev {
                return Err(ClientError::Integrity(format!(
                    "device {device_id}'s backup chain has a gap or is out of order at entry {want} (the server shows counter {} after {:?})",
                    b.counter, prev
                )));
            }
            check_entry(chain, b, &user_id, &server_id)?;
            // A revoked device's chain ends where its revocation says.
            if let Some((last, id)) = chain.devices.get(device_id).and_then(|c| c.end.as_ref())
                && (b.counter > *last || (b.counter == *last && b.id != *id))
            {
                return Err(ClientError::Integrity(format!(
                    "device {device_id}'s backup chain goes on after its revocation (entry {}): refusing it",
                    b.counter
                )));
            }
            prev = b.id.clone();
        }
        let len = listed.entries.len() as u64;
        if let Some((last, _)) = chain.devices.get(device_id).and_then(|c| c.end.as_ref())
            && len < *last
        {
            return Err(ClientError::Integrity(format!(
                "the server shows {len} entries of device {device_id}'s backup chain where its revocation signed {last}"
            )));
        }
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        if let Some(seen) = pins.device_heads.get(device_id) {
            let at = seen
                .seq
                .checked_sub(1)
                .and_then(|i| listed.entries.get(i as usize));
            if seen.seq > len || at.is_some_and(|b| b.id != seen.hash) {
                return Err(ClientError::Integrity(format!(
                    "the server shows device {device_id}'s backup chain with {len} entries where this device has seen {}: a rollback or another history",
                    seen.seq
                )));
            }
        }
        if len > 0 && pins.device_heads.get(device_id).is_none_or(|s| s.seq < len) {
            pins.device_heads.insert(
                device_id.to_string(),
                HeadPin {
                    seq: len,
                    hash: prev,
                },
            );
            self.profile.save_config(&config)?;
        }
        Ok(listed.entries)
    }

    fn pin_backup(&self, device_id: &str, counter: u64, id: &str) -> Result<()> {
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        if pins
            .device_heads
            .get(device_id)
            .is_none_or(|s| s.seq < counter)
        {
            pins.device_heads.insert(
                device_id.to_string(),
                HeadPin {
                    seq: counter,
                    hash: id.to_string(),
                },
            );
            self.profile.save_config(&config)?;
        }
        Ok(())
    }

    /// Encrypts `input` to the account's key and stores it as this device's next backup.
    pub fn backup_put(&self, input: impl Read, classification: &str) -> Result<BackupInfo> {
        if !enc_crypto::device::CLASSIFICATIONS.contains(&classification) {
            return Err(ClientError::Usage(format!(
                "--class must be one of {}",
                enc_crypto::device::CLASSIFICATIONS.join(", ")
            )));
        }
        let (device_id, key) = self.device_key()?;
        let (user_id, server_id) = self.ids()?;
        let chain = self.account_chain()?;
        let entries = self.backup_chain(&chain, &device_id)?;
        let (counter, prev) = entries
            .last()
            .map_or((1, String::new()), |b| (b.counter + 1, b.id.clone()));
        // Sealed to a temporary file first: the signature covers the ciphertext's size and
        // hash, which go before the body.
        let mut file = tempfile::tempfile().map_err(ClientError::io("making a temporary file"))?;
        let mut hasher = Sha256::new();
        let recipient = self.keys.x25519.to_public();
        let size = {
            let mut out = std::io::BufWriter::new(&mut file);
            let mut written = 0u64;
            enc_crypto::encrypt_stream(&recipient, input, 2, |chunk| {
                hasher.update(&chunk);
                written += chunk.len() as u64;
                out.write_all(&chunk)
            })
            .map_err(ClientError::io("encrypting the backup"))?;
            out.flush()
                .map_err(ClientError::io("encrypting the backup"))?;
            written
        };
        file.rewind()
            .map_err(ClientError::io("encrypting the backup"))?;
        let hash = hex::encode(hasher.finalize());
        let created = unix_now();
        let entry = Entry {
            user_id: &user_id,
            server_id: &server_id,
            device_id: &device_id,
            kind: EntryKind::Backup,
            counter,
            prev: &prev,
            classification,
            size,
            content_hash: &hash,
            target: "",
            created,
        };
        let signature = key.sign_b64(&entry.message());
        let path = format!(
            "/v1/backups{}",
            query(&[
                ("device", &device_id),
                ("classification", classification),
                ("created", &created.to_string()),
                ("counter", &counter.to_string()),
                ("prev", &prev),
                ("size", &size.to_string()),
                ("hash", &hash),
                ("signature", &signature),
            ])
        );
        let stored: BackupInfo = self.api.post_file(&path, file, size)?;
        if stored.id != entry.hash() {
            return Err(ClientError::Integrity(
                "the server answered with another entry than the one sent".into(),
            ));
        }
        self.pin_backup(&device_id, counter, &stored.id)?;
        Ok(stored)
    }

    /// The live backups, newest first, every page (or the first `limit`).
    pub fn backup_list(
        &self,
        device: Option<&str>,
        classification: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<BackupInfo>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs: Vec<(&str, &str)> = vec![("limit", "1000")];
            if let Some(d) = device {
                pairs.push(("device", d));
            }
            if let Some(c) = classification {
                pairs.push(("classification", c));
            }
            if let Some(c) = &cursor {
                pairs.push(("cursor", c));
            }
            let page: BackupList = self.api.get(&format!("/v1/backups{}", query(&pairs)))?;
            let empty = page.backups.is_empty();
            out.extend(page.backups);
            // A server that keeps handing out cursors for empty pages does not keep this
            // loop going.
            if empty || page.next_cursor == cursor {
                break;
            }
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// Fetches a backup, verifies its entry, its device's chain and its content, and writes
    /// it to `out` decrypted (or, with `raw`, as stored).
    pub fn backup_get(
        &self,
        id: &str,
        out: &mut (impl Write + Send),
        raw: bool,
    ) -> Result<BackupInfo> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClientError::Usage(format!(
                "{id:?} is not a backup id (64 hex digits; see `enc backup ls`)"
            )));
        }
        let info: BackupInfo = self.api.get(&format!("/v1/backups/{id}"))?;
        let chain = self.account_chain()?;
        let entries = self.backup_chain(&chain, &info.device)?;
        if !entries.iter().any(|e| e.id == info.id) || info.id != id {
            return Err(ClientError::Integrity(format!(
                "backup {id} is not in its device's signed chain"
            )));
        }
        if info.kind != "backup" || info.deleted.is_some() {
            return Err(ClientError::Usage(format!("backup {id} was deleted")));
        }
        let io = || ClientError::io("keeping the download in a temporary file");
        let mut file = tempfile::tempfile().map_err(io())?;
        let size = self
            .api
            .get_to(
                &format!("/v1/backups/{id}/content"),
                &mut file,
                info.size + 1,
            )
            .map_err(|e| match e {
                ClientError::Api { ref code, .. } if code == "damaged" => ClientError::Integrity(
                    format!("backup {id}: the server's storage has lost its content ({e})"),
                ),
                ClientError::Transport { server, detail } => ClientError::Transport {
                    server,
                    detail: format!(
                        "{detail} (while reading backup {id}; if it happens again, the server's \
                         storage may be damaged)"
                    ),
                },
                other => other,
            })?;
        file.rewind().map_err(io())?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut (&file), &mut hasher).map_err(io())?;
        if size != info.size || hex::encode(hasher.finalize()) != info.hash {
            return Err(ClientError::Integrity(format!(
                "backup {id}'s content is not what its device signed (size or SHA-256 differ)"
            )));
        }
        file.rewind().map_err(io())?;
        if raw {
            std::io::copy(&mut file, out).map_err(ClientError::io("writing the backup"))?;
        } else {
            enc_crypto::decrypt_stream(&[&self.keys.x25519], file, 2, |chunk| out.write_all(chunk))
                .map_err(|e| {
                    ClientError::Integrity(format!(
                        "backup {id} does not decrypt with your account key ({e:?}); an app's backup is written as stored with --raw"
                    ))
                })?;
        }
        out.flush().map_err(ClientError::io("writing the backup"))?;
        Ok(info)
    }

    /// Deletes a backup with a tombstone this device signs.
    pub fn backup_rm(&self, id: &str) -> Result<BackupInfo> {
        let (device_id, key) = self.device_key()?;
        let (user_id, server_id) = self.ids()?;
        let target: BackupInfo = self.api.get(&format!("/v1/backups/{id}"))?;
        let chain = self.account_chain()?;
        check_entry(&chain, &target, &user_id, &server_id)?;
        let entries = self.backup_chain(&chain, &device_id)?;
        let (counter, prev) = entries
            .last()
            .map_or((1, String::new()), |b| (b.counter + 1, b.id.clone()));
        let created = unix_now();
        let entry = Entry {
            user_id: &user_id,
            server_id: &server_id,
            device_id: &device_id,
            kind: EntryKind::Tombstone,
            counter,
            prev: &prev,
            classification: &target.classification,
            size: 0,
            content_hash: "",
            target: &target.id,
            created,
        };
        let signature = key.sign_b64(&entry.message());
        let path = format!(
            "/v1/backups/{}{}",
            target.id,
            query(&[
                ("device", &device_id),
                ("created", &created.to_string()),
                ("counter", &counter.to_string()),
                ("prev", &prev),
                ("signature", &signature),
            ])
        );
        let tomb: BackupInfo = self.api.delete_json(&path)?;
        if tomb.id != entry.hash() {
            return Err(ClientError::Integrity(
                "the server answered with another entry than the one sent".into(),
            ));
        }
        self.pin_backup(&device_id, counter, &tomb.id)?;
        Ok(target)
    }

    /// The deployment's backups per day and classification (admins).
    pub fn backup_usage(&self) -> Result<Vec<BackupUsage>> {
        self.api.get("/v1/admin/backups/usage")
    }
}
