//! Devices and their signed records: the account chain (each device added or revoked by a
//! link the account key signs) and device backups (each signed by its device's key).
//!
//! Every message is domain-separated (its first bytes name it) and length-prefixed, so no
//! field can be moved into another, and no message of one kind verifies as another. A
//! message's hash (SHA-256 of the signed bytes, lower-case hex) names it: a link's is the
//! next link's `prev`, a backup's is its id and the next backup's `prev`.

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};

use crate::{CryptoError, b64, unb64};

/// What a link of the account chain does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Certifies a device key.
    DeviceAdd,
    /// Revokes a device: its signatures count only before this link.
    DeviceRevoke,
}

impl LinkKind {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceAdd => "device-add",
            Self::DeviceRevoke => "device-revoke",
        }
    }

    /// Parses the word on the wire.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "device-add" => Some(Self::DeviceAdd),
            "device-revoke" => Some(Self::DeviceRevoke),
            _ => None,
        }
    }
}

/// The version of an account chain's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkVersion {
    /// `enc account link v1`: signs the user id and the device's name. Still read, no longer
    /// written.
    V1,
    /// `enc account link v2`: signs the account key and a salted commitment to the device's
    /// name, so a chain kept after its user's erasure names no one (the salt and the name are
    /// deleted, the commitment stays).
    V2,
}

/// One link of a user's account chain, as signed by the account's Ed25519 key. A device's
/// certificate is the `device-add` link that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    pub version: LinkVersion,
    /// Whose chain: the user id in V1 (not the name, which an erasure may free for someone
    /// else), the account's Ed25519 public key (base64) in V2.
    pub account: &'a str,
    /// 1 for the first link, then one more each.
    pub seq: u64,
    /// The previous link's hash (empty for the first).
    pub prev: &'a str,
    /// What the link does.
    pub kind: LinkKind,
    /// The device it is about (a UUID the client chose).
    pub device_id: &'a str,
    /// The device's name when it was certified in V1, its [`name_commitment`] in V2 (empty
    /// in a revocation).
    pub device_name: &'a str,
    /// The device's Ed25519 public key, base64 (empty in a revocation).
    pub device_key: &'a str,
    /// Seconds since the Unix epoch, as the signer's clock said.
    pub created: i64,
    /// A revocation's end of the device's backup chain: its last entry accepted before the
    /// revocation (counter, and id; 0 and empty for none, and in an addition). Entries after
    /// it are not the device's, whatever the server says.
    pub last_counter: u64,
    /// See [`Link::last_counter`].
    pub last_entry: &'a str,
    /// A revocation's end of the device's tree commits, per vault: the canonical text of
    /// [`commit_ends_text`] (empty for none, and in an addition). A commit the device signed
    /// past its vault's end, or in a vault not named, is not the device's.
    pub commit_ends: &'a str,
}

/// A fresh salt for a device name's commitment: 16 random bytes, hex.
pub fn new_name_salt() -> String {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    hex::encode(raw)
}

/// The commitment a V2 link signs instead of a device's name: SHA-256 of the domain, the
/// salt and the name, length-prefixed, hex. Without the salt it reveals nothing of the name.
pub fn name_commitment(salt: &str, name: &str) -> String {
    let mut out = b"enc device name\0".to_vec();
    field(&mut out, salt.as_bytes());
    field(&mut out, name.as_bytes());
    hex::encode(Sha256::digest(out))
}

/// Whether `salt` is what [`new_name_salt`] makes: 32 lower-case hex digits.
pub fn is_name_salt(salt: &str) -> bool {
    salt.len() == 32
        && salt
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One vault's end of a revoked device's commits: the vault (its id on the server), the
/// last commit's sequence number and hash (hex).
pub type CommitEnd = (String, u64, String);

/// The canonical text of a revocation's commit ends: `vault seq hash` lines, sorted by
/// vault, joined by `\n`.
pub fn commit_ends_text(ends: &[CommitEnd]) -> String {
    let mut sorted: Vec<&CommitEnd> = ends.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(vault, seq, hash)| format!("{vault} {seq} {hash}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses [`commit_ends_text`]; `None` unless it is canonical (sorted, no vault twice, no
/// seq of 0, a hash of 64 lower-case hex digits).
pub fn parse_commit_ends(text: &str) -> Option<Vec<CommitEnd>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut parts = line.split(' ');
        let (vault, seq, hash) = (parts.next()?, parts.next()?, parts.next()?);
        let seq: u64 = seq.parse().ok().filter(|s| *s > 0)?;
        let graphic =
            |t: &str| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_graphic());
        let hex = hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if parts.next().is_some() || !graphic(vault) || !hex {
            return None;
        }
        out.push((vault.to_string(), seq, hash.to_string()));
    }
    (commit_ends_text(&out) == text && out.windows(2).all(|w| w[0].0 != w[1].0)).then_some(out)
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Link<'_> {
    /// The canonical bytes the account key signs.
    pub fn message(&self) -> Vec<u8> {
        let v2 = self.version == LinkVersion::V2;
        let mut out = if v2 {
            b"enc account link v2\0".to_vec()
        } else {
            b"enc account link v1\0".to_vec()
        };
        for f in [
            self.account,
            self.prev,
            self.kind.as_str(),
            self.device_id,
            self.device_name,
            self.device_key,
            self.last_entry,
        ] {
            field(&mut out, f.as_bytes());
        }
        if v2 {
            // Always a field of its own in version 2.
            field(&mut out, self.commit_ends.as_bytes());
        }
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.last_counter.to_be_bytes());
        if v2 {
            return out;
        }
        // Added after the first links were signed: present only when there is something to
        // say, so those links' bytes (and hashes) stay what they were.
        if !self.commit_ends.is_empty() {
            field(&mut out, self.commit_ends.as_bytes());
        }
        out
    }

    /// The link's hash: what the next link names as `prev`.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.message()))
    }
}

/// The data classifications a backup carries (ZKEB's), for compliance reports.
pub const CLASSIFICATIONS: [&str; 3] = ["Internal", "Confidential", "Restricted"];

/// What an entry of a device's backup chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A backup's content.
    Backup,
    /// The deletion of an earlier backup (named by `target`).
    Tombstone,
}

impl EntryKind {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Tombstone => "tombstone",
        }
    }

    /// Parses the word on the wire.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "backup" => Some(Self::Backup),
            "tombstone" => Some(Self::Tombstone),
            _ => None,
        }
    }
}

/// One entry of a device's backup chain, as the device signs it (`enc backup v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The account's user id.
    pub user_id: &'a str,
    /// The server's instance id, so an entry cannot be moved to another server.
    pub server_id: &'a str,
    /// The signing device.
    pub device_id: &'a str,
    /// A backup or a tombstone.
    pub kind: EntryKind,
    /// 1 for the device's first entry, then one more each.
    pub counter: u64,
    /// The device's previous entry's hash (empty for the first).
    pub prev: &'a str,
    /// A backup's classification (one of [`CLASSIFICATIONS`]); a tombstone's is its
    /// target's.
    pub classification: &'a str,
    /// Bytes of the stored content (0 for a tombstone).
    pub size: u64,
    /// Lower-case hex SHA-256 of the stored content (empty for a tombstone).
    pub content_hash: &'a str,
    /// A tombstone's target: the deleted backup's id (empty for a backup).
    pub target: &'a str,
    /// Seconds since the Unix epoch, as the device's clock said.
    pub created: i64,
}

impl Entry<'_> {
    /// The canonical bytes the device key signs.
    pub fn message(&self) -> Vec<u8> {
        let mut out = b"enc backup v1\0".to_vec();
        for f in [
            self.user_id,
            self.server_id,
            self.device_id,
            self.kind.as_str(),
            self.prev,
            self.classification,
            self.content_hash,
            self.target,
        ] {
            field(&mut out, f.as_bytes());
        }
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out
    }

    /// The entry's hash: a backup's id, and the next entry's `prev`.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.message()))
    }
}

/// A device's own Ed25519 key pair, generated on the device.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// A fresh key from the OS's random source.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The public key, base64.
    pub fn public_b64(&self) -> String {
        b64(self.0.verifying_key().as_bytes())
    }

    /// Signs `msg`; the signature in base64.
    pub fn sign_b64(&self, msg: &[u8]) -> String {
        b64(&self.0.sign(msg).to_bytes())
    }

    /// The secret, base64 (kept in the 0600 session file).
    pub fn secret_b64(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(b64(self.0.as_bytes()))
    }

    /// The key from [`DeviceKey::secret_b64`].
    pub fn from_secret_b64(text: &str) -> Result<Self, CryptoError> {
        let raw = zeroize::Zeroizing::new(unb64(text)?);
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("device key"))?;
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }
}

/// The short fingerprint people compare: `SHA256:` and the unpadded base64 of the SHA-256 of
/// the raw public key (OpenSSH's form).
pub fn key_fingerprint(public_b64: &str) -> String {
    use base64::Engine as _;
    let raw = unb64(public_b64).unwrap_or_default();
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(raw))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{UserKeys, verify_b64};

    fn entry() -> Entry<'static> {
        Entry {
            user_id: "u",
            server_id: "s",
            device_id: "d",
            kind: EntryKind::Backup,
            counter: 2,
            prev: "ab",
            classification: "Restricted",
            size: 4096,
            content_hash: "cd",
            target: "",
            created: 1_700_000_000,
        }
    }

    #[test]
    fn an_entry_signature_covers_every_field() {
        let key = DeviceKey::generate();
        let e = entry();
        let sig = key.sign_b64(&e.message());
        verify_b64(&key.public_b64(), &e.message(), &sig).unwrap();
        let changed = [
            Entry {
                classification: "Internal",
                ..e.clone()
            },
            Entry {
                counter: 3,
                ..e.clone()
            },
            Entry {
                user_id: "v",
                ..e.clone()
            },
            Entry {
                server_id: "t",
                ..e.clone()
            },
            Entry {
                device_id: "e",
                ..e.clone()
            },
            Entry {
                prev: "",
                ..e.clone()
            },
            Entry {
                size: 4097,
                ..e.clone()
            },
            Entry {
                kind: EntryKind::Tombstone,
                ..e.clone()
            },
            Entry {
                created: 1,
                ..e.clone()
            },
        ];
        for c in changed {
            assert!(verify_b64(&key.public_b64(), &c.message(), &sig).is_err());
            assert_ne!(c.hash(), e.hash());
        }
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let a = Entry {
            prev: "ab",
            classification: "c",
            ..entry()
        };
        let b = Entry {
            prev: "a",
            classification: "bc",
            ..entry()
        };
        assert_ne!(a.message(), b.message());
    }

    #[test]
    fn a_link_is_signed_by_the_account_key_and_keys_round_trip() {
        let account = UserKeys::generate();
        let device = DeviceKey::generate();
        let public = device.public_b64();
        let link = Link {
            version: LinkVersion::V1,
            account: "u",
            seq: 1,
            prev: "",
            kind: LinkKind::DeviceAdd,
            device_id: "d",
            device_name: "laptop",
            device_key: &public,
            created: 5,
            last_counter: 0,
            last_entry: "",
            commit_ends: "",
        };
        let sig = account.sign_b64(&link.message());
        verify_b64(&account.verifying_key_b64(), &link.message(), &sig).unwrap();
        for other in [
            Link {
                kind: LinkKind::DeviceRevoke,
                ..link.clone()
            },
            Link {
                last_counter: 1,
                ..link.clone()
            },
            Link {
                last_entry: "ab",
                ..link.clone()
            },
            Link {
                commit_ends: "v 1 x",
                ..link.clone()
            },
            Link {
                version: LinkVersion::V2,
                ..link.clone()
            },
        ] {
            assert!(verify_b64(&account.verifying_key_b64(), &other.message(), &sig).is_err());
        }
        // V2 signs the account key and a commitment to the name, never the name.
        let salt = new_name_salt();
        assert!(is_name_salt(&salt) && !is_name_salt("AB") && salt != new_name_salt());
        let commitment = name_commitment(&salt, "laptop");
        assert_ne!(commitment, name_commitment(&salt, "laptop2"));
        assert_ne!(commitment, name_commitment(&new_name_salt(), "laptop"));
        let account_key = account.verifying_key_b64();
        let v2 = Link {
            version: LinkVersion::V2,
            account: &account_key,
            device_name: &commitment,
            ..link.clone()
        };
        let m = v2.message();
        assert!(m.starts_with(b"enc account link v2\0"));
        assert!(!m.windows(6).any(|w| w == b"laptop"));
        assert_ne!(v2.hash(), link.hash());
        let again = DeviceKey::from_secret_b64(&device.secret_b64()).unwrap();
        assert_eq!(again.public_b64(), public);
        assert!(key_fingerprint(&public).starts_with("SHA256:"));
        assert_eq!(LinkKind::parse("device-add"), Some(LinkKind::DeviceAdd));
        assert_eq!(EntryKind::parse("tombstone"), Some(EntryKind::Tombstone));
    }

    #[test]
    fn commit_ends_are_canonical() {
        let (h1, h2) = ("1".repeat(64), "f".repeat(64));
        let ends = vec![
            ("b".to_string(), 3, h1.clone()),
            ("a".to_string(), 7, h2.clone()),
        ];
        let text = commit_ends_text(&ends);
        assert_eq!(text, format!("a 7 {h2}\nb 3 {h1}"));
        assert_eq!(
            parse_commit_ends(&text).unwrap(),
            vec![
                ("a".to_string(), 7, h2.clone()),
                ("b".to_string(), 3, h1.clone())
            ]
        );
        assert_eq!(parse_commit_ends("").unwrap(), vec![]);
        for bad in [
            format!("b 3 {h1}\na 7 {h2}"),
            format!("a 0 {h1}"),
            format!("a 1 {h1}\na 2 {h2}"),
            "a 1".into(),
            format!("a x {h1}"),
            format!(" 1 {h1}"),
            format!("a 1 {h1}\n"),
            format!("a 1 {h1} x"),
            format!("a 1 {}", "F".repeat(64)),
            "a 1 abc".into(),
        ] {
            assert!(parse_commit_ends(&bad).is_none(), "{bad:?}");
        }
    }
}
