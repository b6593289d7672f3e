//! Devices: this device's key certified at login, the account chain verified from its first
//! link, and the commands that list, rename, add and revoke devices.
//!
//! The chain is verified whole every time it is read: each link's hash is recomputed, names
//! the one before, and carries the account key's signature; an addition names a new device,
//! a revocation one that stands. The newest link seen is remembered, and a server that later
//! shows a shorter chain, or another one, is refused (TUF's rule).

use std::collections::BTreeMap;
use std::sync::Arc;

use enc_crypto::UserKeys;
use enc_crypto::device::{DeviceKey, Link, LinkKind, LinkVersion};
use enc_crypto::tree::Account as Signer;
use enc_proto::*;

use crate::ops::{Account, host_name};
use crate::profile::HeadPin;
use crate::{Api, ClientError, Profile, Result};

mod signers;

/// What a verified chain says about one device.
#[derive(Debug, Clone)]
pub struct Certified {
    /// Its Ed25519 public key, base64.
    pub key: String,
    /// The link that added it.
    pub added: u64,
    /// The link that revoked it, if one did.
    pub revoked: Option<u64>,
    /// Where the revocation ended its backup chain: the last entry's counter and id.
    pub end: Option<(u64, String)>,
    /// Where the revocation ended its tree commits: vault id → last seq and its hash.
    pub commit_ends: BTreeMap<String, (u64, String)>,
}

impl Certified {
    /// Whether a signature accepted when the chain was `chain_seq` links long counts.
    pub fn valid_at(&self, chain_seq: u64) -> bool {
        self.added <= chain_seq && self.revoked.is_none_or(|r| r > chain_seq)
    }
}

/// An account chain, verified from its first link.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// Device id → what the chain says of it.
    pub devices: BTreeMap<String, Certified>,
    /// Links in the chain.
    pub len: u64,
    /// The last link's hash (empty for none).
    pub head: String,
}

fn bad(what: String) -> ClientError {
    ClientError::Integrity(format!("the account chain is not valid: {what}"))
}

/// Verifies a chain of `user_id` from its first link against `account_key` (base64). A
/// version-1 link signs the user id and the device's name; a version-2 link signs the
/// account key and the name's commitment, and the name is shown only when its salt proves
/// it (another user's chain, or an erased user's, shows none). `user_id` is empty for a
/// chain an erasure kept, which has version-2 links only.
pub fn verify_chain(
    user_id: &str,
    account_key: &str,
    chain: &AccountChain,
) -> Result<VerifiedChain> {
    if chain.user_id != user_id {
        return Err(bad(format!("it is user {}'s, not yours", chain.user_id)));
    }
    if chain.account_key != account_key {
        return Err(bad("it names another account key than yours".into()));
    }
    let mut out = VerifiedChain {
        devices: BTreeMap::new(),
        len: 0,
        head: String::new(),
    };
    for (i, l) in chain.links.iter().enumerate() {
        let seq = i as u64 + 1;
        let kind = LinkKind::parse(&l.kind)
            .ok_or_else(|| bad(format!("link {seq} is of kind {:?}", l.kind)))?;
        let (version, account, device_name) = match l.version {
            1 if !user_id.is_empty() => (LinkVersion::V1, user_id, l.device_name.as_str()),
            2 => {
                let shown = !l.name_salt.is_empty() || !l.device_name.is_empty();
                let proven = shown
                    && enc_crypto::device::is_name_salt(&l.name_salt)
                    && enc_crypto::device::name_commitment(&l.name_salt, &l.device_name)
                        == l.name_commitment;
                if shown && !proven {
                    return Err(bad(format!(
                        "link {seq} shows a device name its commitment does not match"
                    )));
                }
                (LinkVersion::V2, account_key, l.name_commitment.as_str())
            }
            v => return Err(bad(format!("link {seq} is of version {v}"))),
        };
        let link = Link {
            version,
            account,
            seq: l.seq,
            prev: &l.prev,
            kind,
            device_id: &l.device_id,
            device_name,
            device_key: &l.device_key,
            created: l.created,
            last_counter: l.last_counter,
            last_entry: &l.last_entry,
            commit_ends: &l.commit_ends,
        };
        if l.seq != seq || l.prev != out.head || link.hash() != l.hash {
            return Err(bad(format!("link {seq} does not follow link {}", seq - 1)));
        }
        enc_crypto::verify_b64(account_key, &link.message(), &l.signature)
            .map_err(|_| bad(format!("link {seq}'s signature does not verify")))?;
        match kind {
            LinkKind::DeviceAdd => {
                if out.devices.contains_key(&l.device_id) {
                    return Err(bad(format!("link {seq} adds device {} again", l.device_id)));
                }
                out.devices.insert(
                    l.device_id.clone(),
                    Certified {
                        key: l.device_key.clone(),
                        added: seq,
                        revoked: None,
                        end: None,
                        commit_ends: BTreeMap::new(),
                    },
                );
            }
            LinkKind::DeviceRevoke => match out.devices.get_mut(&l.device_id) {
                Some(d) if d.revoked.is_none() => {
                    d.revoked = Some(seq);
                    d.end = Some((l.last_counter, l.last_entry.clone()));
                    d.commit_ends = enc_crypto::device::parse_commit_ends(&l.commit_ends)
                        .ok_or_else(|| bad(format!("link {seq}'s commit ends are malformed")))?
                        .into_iter()
                        .map(|(vault, seq, hash)| (vault, (seq, hash)))
                        .collect();
                }
                _ => return Err(bad(format!("link {seq} revokes no standing device"))),
            },
        }
        out.len = seq;
        out.head = l.hash.clone();
    }
    Ok(out)
}

/// Fetches, verifies and pins the account chain; refuses one shorter than, or diverging
/// from, the newest this device has seen.
pub(crate) fn fetch_chain(
    api: &Api,
    profile: &Profile,
    server: &str,
    user_id: &str,
    account_key: &str,
) -> Result<VerifiedChain> {
    let chain: AccountChain = api.get("/v1/account/chain")?;
    pin_chain(profile, server, user_id, account_key, &chain)
}

/// Verifies `chain` (which the user id signs, in its version-1 links) and pins it under
/// the user id and under its account key (see [`fetch_chain`]).
fn pin_chain(
    profile: &Profile,
    server: &str,
    user_id: &str,
    account_key: &str,
    chain: &AccountChain,
) -> Result<VerifiedChain> {
    let by_key = format!("key:{account_key}");
    let by_id = if user_id.starts_with("key:") {
        ""
    } else {
        user_id
    };
    pin_chain_as(
        profile,
        server,
        &[by_id, &by_key],
        &[by_id, &by_key],
        user_id,
        account_key,
        chain,
    )
}

/// Verifies `chain` against everything seen under each of `check` (a rollback or another
/// history is refused), and pins it under each of `update`.
fn pin_chain_as(
    profile: &Profile,
    server: &str,
    check: &[&str],
    update: &[&str],
    user_id: &str,
    account_key: &str,
    chain: &AccountChain,
) -> Result<VerifiedChain> {
    let verified = verify_chain(user_id, account_key, chain)?;
    let mut config = profile.config()?;
    let pins = config.pins.entry(server.to_string()).or_default();
    for pin in check.iter().filter(|p| !p.is_empty()) {
        let Some(seen) = pins.chains.get(*pin) else {
            continue;
        };
        let at = seen
            .seq
            .checked_sub(1)
            .and_then(|i| chain.links.get(i as usize));
        if seen.seq > verified.len || at.is_some_and(|l| l.hash != seen.hash) {
            return Err(ClientError::Integrity(format!(
                "the server shows an account chain of {} links where this device has seen {} (a rollback or another history): refusing it",
                verified.len, seen.seq
            )));
        }
    }
    let mut changed = false;
    for pin in update.iter().filter(|p| !p.is_empty()) {
        if pins.chains.get(*pin).is_none_or(|s| s.seq < verified.len) {
            pins.chains.insert(
                pin.to_string(),
                HeadPin {
                    seq: verified.len,
                    hash: verified.head.clone(),
                },
            );
            changed = true;
        }
    }
    if changed {
        profile.save_config(&config)?;
    }
    Ok(verified)
}

/// The signature of the chain's next `device-add` link for a new device key.
fn add_request(
    keys: &UserKeys,
    chain: &VerifiedChain,
    device_id: &str,
    name: &str,
    device_key: &str,
) -> AddDeviceRequest {
    let created = unix_now();
    let account = keys.verifying_key_b64();
    let name_salt = enc_crypto::device::new_name_salt();
    let commitment = enc_crypto::device::name_commitment(&name_salt, name);
    let link = Link {
        version: LinkVersion::V2,
        account: &account,
        seq: chain.len + 1,
        prev: &chain.head,
        kind: LinkKind::DeviceAdd,
        device_id,
        device_name: &commitment,
        device_key,
        created,
        last_counter: 0,
        last_entry: "",
        commit_ends: "",
    };
    AddDeviceRequest {
        seq: link.seq,
        prev: chain.head.clone(),
        device_id: device_id.to_string(),
        device_name: name.to_string(),
        version: 2,
        name_salt,
        device_key: device_key.to_string(),
        created,
        signature: keys.sign_b64(&link.message()),
        bind_session: false,
        issue_token: false,
    }
}

/// What a login's certification of its device gives the session.
pub(crate) struct ThisDevice {
    pub device_id: String,
    pub device_key: String,
    pub user_id: String,
    pub server_id: String,
}

/// Certifies a fresh key for this device, with the account key the login just unwrapped,
/// and makes the new session the device's. The chain it extends is verified and checked
/// against the newest this profile has seen of it (a server showing a chain cut short before
/// a revocation gets no signature on top of it).
pub(crate) fn certify_this_device(
    api: &Api,
    profile: &Profile,
    keys: &UserKeys,
) -> Result<ThisDevice> {
    let me: MeResponse = api.get("/v1/me")?;
    let chain = fetch_chain(
        api,
        profile,
        api.base(),
        &me.user_id,
        &keys.verifying_key_b64(),
    )?;
    let device = DeviceKey::generate();
    let device_id = uuid::Uuid::new_v4().to_string();
    let name: String = host_name()
        .unwrap_or_else(|| "device".into())
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let name = if name.is_empty() {
        "device".into()
    } else {
        name
    };
    let mut req = add_request(keys, &chain, &device_id, &name, &device.public_b64());
    req.bind_session = true;
    let _: AddDeviceResponse = api.post("/v1/devices", &req)?;
    fetch_chain(
        api,
        profile,
        api.base(),
        &me.user_id,
        &keys.verifying_key_b64(),
    )?;
    Ok(ThisDevice {
        device_id,
        device_key: device.secret_b64().to_string(),
        user_id: me.user_id,
        server_id: me.server_id,
    })
}

impl Account {
    /// The caller's user id and the server's instance id, as the login saw them.
    pub(crate) fn ids(&self) -> Result<(String, String)> {
        let me = self.me()?;
        let pinned = (&self.session.user_id, &self.session.server_id);
        if let (Some(user), Some(server)) = pinned
            && (*user != me.user_id || *server != me.server_id)
        {
            return Err(ClientError::Integrity(
                "the server names another account or server than at login: refusing it".into(),
            ));
        }
        Ok((me.user_id, me.server_id))
    }

    /// The account chain, verified and pinned.
    pub fn account_chain(&self) -> Result<VerifiedChain> {
        let (user_id, _) = self.ids()?;
        fetch_chain(
            &self.api,
            &self.profile,
            &self.session.server,
            &user_id,
            &self.keys.verifying_key_b64(),
        )
    }

    /// The devices, each checked against the verified chain (a device the chain does not
    /// certify with the key the server shows is refused).
    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let chain = self.account_chain()?;
        let list: Vec<DeviceInfo> = self.api.get("/v1/devices")?;
        for d in &list {
            let certified = chain.devices.get(&d.id);
            let ok = certified.is_some_and(|c| {
                c.key == d.public_key
                    && c.revoked.map(|r| r as i64) == d.revoked_seq.map(|r| r as i64)
            });
            if !ok {
                return Err(ClientError::Integrity(format!(
                    "the server lists device {} in a way the signed account chain does not",
                    d.id
                )));
            }
        }
        Ok(list)
    }

    /// One device named by id, unique id prefix, or name (as shown, or as the chain
    /// certified it); a name two devices answer to is refused.
    pub fn find_device(&self, spec: &str) -> Result<DeviceInfo> {
        let chain: AccountChain = self.api.get("/v1/account/chain")?;
        let certified_as = |id: &str| {
            chain
                .links
                .iter()
                .find(|l| l.kind == "device-add" && l.device_id == id)
                .map(|l| l.device_name.clone())
        };
        let list = self.devices()?;
        let by_id: Vec<&DeviceInfo> = list.iter().filter(|d| d.id == spec).collect();
        let matches: Vec<&DeviceInfo> = if by_id.is_empty() {
            let by_name: Vec<&DeviceInfo> = list
                .iter()
                .filter(|d| d.name == spec || certified_as(&d.id).as_deref() == Some(spec))
                .collect();
            if by_name.is_empty() {
                list.iter()
                    .filter(|d| spec.len() >= 4 && d.id.starts_with(spec))
                    .collect()
            } else {
                by_name
            }
        } else {
            by_id
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ClientError::Usage(format!(
                "no device {spec:?}: see `enc device ls`"
            ))),
            _ => Err(ClientError::Usage(format!(
                "{spec:?} names several devices: give its id (see `enc device ls`)"
            ))),
        }
    }

    /// Renames a device.
    pub fn rename_device(&self, spec: &str, name: &str) -> Result<DeviceInfo> {
        let d = self.find_device(spec)?;
        self.api.put_empty(
            &format!("/v1/devices/{}/name", d.id),
            &RenameDeviceRequest {
                name: name.to_string(),
            },
        )?;
        Ok(d)
    }

    /// Certifies a key generated elsewhere (an app's) as a device, and issues it a token
    /// of kind `backups`.
    pub fn add_device(&self, public_key: &str, name: &str) -> Result<(DeviceInfo, String)> {
        let chain = self.account_chain()?;
        let device_id = uuid::Uuid::new_v4().to_string();
        let keys = self.account_keys()?;
        let mut req = add_request(keys, &chain, &device_id, name, public_key);
        req.issue_token = true;
        let resp: AddDeviceResponse = self.api.post("/v1/devices", &req)?;
        self.account_chain()?;
        let token = resp.token.ok_or_else(|| {
            ClientError::Integrity("the server issued no token for the device".into())
        })?;
        Ok((resp.device, token))
    }

    /// Revokes a device with the chain's next link; what it ended.
    pub fn revoke_device(&self, spec: &str) -> Result<(DeviceInfo, RevokeDeviceResponse)> {
        let d = self.find_device(spec)?;
        if d.revoked_seq.is_some() {
            return Err(ClientError::Usage(format!(
                "device {} ({}) is revoked already",
                d.name, d.id
            )));
        }
        let chain = self.account_chain()?;
        // The revocation signs where the device's backup chain ends, so that no entry the
        // server shows after it counts, whatever it claims.
        let entries = self.backup_chain(&chain, &d.id)?;
        let (last_counter, last_entry) = entries
            .last()
            .map_or((0, String::new()), |e| (e.counter, e.id.clone()));
        // And where its tree commits end in each vault: a commit it signs past its vault's
        // end, or in a vault not named, does not count.
        self.check_commit_ends(&d)?;
        let created = unix_now();
        let account = self.keys.verifying_key_b64();
        let link = Link {
            version: LinkVersion::V2,
            account: &account,
            seq: chain.len + 1,
            prev: &chain.head,
            kind: LinkKind::DeviceRevoke,
            device_id: &d.id,
            device_name: "",
            device_key: "",
            created,
            last_counter,
            last_entry: &last_entry,
            commit_ends: &d.commit_ends,
        };
        let signature = self.account_keys()?.sign_b64(&link.message());
        let resp: RevokeDeviceResponse = self.api.post(
            &format!("/v1/devices/{}/revoke", d.id),
            &RevokeDeviceRequest {
                version: 2,
                seq: link.seq,
                prev: chain.head.clone(),
                last_counter,
                last_entry: last_entry.clone(),
                commit_ends: d.commit_ends.clone(),
                created,
                signature,
            },
        )?;
        if self.session.device_id.as_deref() != Some(d.id.as_str()) {
            self.account_chain()?;
        }
        Ok((d, resp))
    }
}

impl Account {
    /// Checks the commit ends the server names for a device about to be revoked, in each
    /// vault this account can read: the commit at the end is there and the device signed it
    /// (a server that named a later end could pass commits forged with the revoked key).
    fn check_commit_ends(&self, d: &DeviceInfo) -> Result<()> {
        let ends = enc_crypto::device::parse_commit_ends(&d.commit_ends).ok_or_else(|| {
            ClientError::Integrity("the server lists malformed commit ends for the device".into())
        })?;
        for (vault, seq, hash) in ends {
            let wrong = || {
                ClientError::Integrity(format!(
                    "the server says device {} last committed to vault {vault} at {seq}, which it did not sign",
                    d.id
                ))
            };
            let head: TreeHead = match self.api.get(&format!("/v1/vaults/{vault}/head")) {
                Ok(h) => h,
                // A vault this account has left: its members check its commits themselves.
                Err(e) if e.is_status(404) || e.is_status(403) => continue,
                Err(e) => return Err(e),
            };
            if head.head.is_none_or(|h| h.seq < seq) {
                return Err(wrong());
            }
            let page: TreeCommits = self.api.get(&format!(
                "/v1/vaults/{vault}/commits?after={}&limit=1",
                seq - 1
            ))?;
            let c = page.commits.first().ok_or_else(wrong)?;
            let header = enc_crypto::unb64(&c.header).map_err(|_| wrong())?;
            let signature = enc_crypto::unb64(&c.signature).map_err(|_| wrong())?;
            let decoded = enc_crypto::tree::CommitHeader::decode(&header).map_err(|_| wrong())?;
            let signed_by_it = c.seq == seq
                && c.hash == hash
                && decoded.seq == seq
                && decoded.signer.certificate.as_deref() == Some(d.id.as_str())
                && decoded.signer.key == d.public_key
                && hex::encode(enc_crypto::tree::commit_hash(&header, &signature)) == hash
                && enc_crypto::verify_b64(&d.public_key, &header, &c.signature).is_ok();
            if !signed_by_it {
                return Err(wrong());
            }
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An Ed25519 public key given as an OpenSSH `ssh-ed25519 …` line or as the base64 of its 32
/// bytes; the base64 of the 32 bytes.
pub fn parse_public_key(text: &str) -> Result<String> {
    let text = text.trim();
    let b64 = if text.starts_with("ssh-ed25519 ") {
        let key = ssh_key::PublicKey::from_openssh(text)
            .map_err(|e| ClientError::Usage(format!("not an OpenSSH public key: {e}")))?;
        match key.key_data() {
            ssh_key::public::KeyData::Ed25519(k) => enc_crypto::b64(&k.0),
            _ => return Err(ClientError::Usage("not an Ed25519 key".into())),
        }
    } else {
        text.to_string()
    };
    enc_crypto::verifying_key(&b64).map_err(|_| {
        ClientError::Usage(
            "the public key must be an `ssh-ed25519 …` line or the base64 of 32 bytes".into(),
        )
    })?;
    Ok(b64)
}
