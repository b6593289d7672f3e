//! Records: a value sealed under a fresh random key that only its caller keeps (the
//! enc-server-go record service, done right).
//!
//! A sealed record is `version (1 byte) ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag`,
//! with the format version and the record's id as associated data, so a ciphertext moved to
//! another id (or relabelled with another version) does not open. The same bytes come out of
//! the server's `/records` routes (which seal in transit) and out of `enc record put` (which
//! seals on the client), so a key from either path opens the record through the other.
//!
//! The server keeps no key. It keeps a *check* so that a wrong key is refused without
//! decrypting, and so that a deletion can demand proof of the key: the *proof* is
//! HMAC-SHA256 under the key of the record's id, and the check is SHA-256 of the proof. A
//! client proves possession by sending the proof (or the key); reading the check from the
//! database proves nothing, since the proof cannot be computed back from it.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::CryptoError;

/// The format version of a sealed record (its first byte).
pub const RECORD_VERSION: u8 = 1;
/// Bytes a sealed record adds to its plaintext: version, nonce, tag.
pub const RECORD_OVERHEAD: usize = 1 + NONCE_LEN + 16;
/// Bytes of a record key.
pub const RECORD_KEY_LEN: usize = 32;

/// A record id as stored: 1–128 bytes in hex (as enc-server-go's client sends ids), in lower
/// case; `None` for anything else. The one rule of the server and `enc record`.
pub fn record_id(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id.len().is_multiple_of(2)
        && id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| id.to_ascii_lowercase())
}

/// A record's key: 256 random bits, returned to its caller once and kept by no server.
#[derive(Clone, zeroize::ZeroizeOnDrop)]
pub struct RecordKey([u8; RECORD_KEY_LEN]);

impl RecordKey {
    /// A fresh random key (from the thread's CSPRNG, seeded and reseeded by the OS: no
    /// system call per key).
    pub fn generate() -> Self {
        let mut k = [0u8; RECORD_KEY_LEN];
        rand::thread_rng().fill_bytes(&mut k);
        Self(k)
    }

    /// The key from its 64 hex digits (as the enc-server-go service writes keys).
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let raw = hex::decode(text.trim()).map_err(|_| CryptoError::Malformed("record key"))?;
        let k: [u8; RECORD_KEY_LEN] = raw
            .try_into()
            .map_err(|_| CryptoError::Malformed("record key"))?;
        Ok(Self(k))
    }

    /// The key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The proof of possession of this key for record `id` (hex): what a client sends to
    /// read the sealed bytes or to delete the record without sending the key itself.
    pub fn proof(&self, id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any length");
        mac.update(b"enc-record-proof\0");
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The check the server keeps for record `id` ([`check_of_proof`] of [`Self::proof`]).
    pub fn check(&self, id: &str) -> String {
        check_of_proof(&self.proof(id))
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte key"))
    }
}

/// The check a server keeps for a proof: SHA-256 of it (hex). Only someone holding the key
/// can make a proof whose check matches.
pub fn check_of_proof(proof: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"enc-record-check\0");
    h.update(proof.as_bytes());
    hex::encode(h.finalize())
}

/// Compares two checks in time that does not depend on where they differ.
pub fn checks_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn aad(id: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + id.len());
    a.extend_from_slice(b"enc-record\0");
    a.push(RECORD_VERSION);
    a.extend_from_slice(id.as_bytes());
    a
}

/// Seals `plaintext` as record `id` under `key` (a random nonce each time).
pub fn seal_record(key: &RecordKey, id: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(plaintext.len() + RECORD_OVERHEAD);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(1 + NONCE_LEN);
    key.aead()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(id)),
            &mut body,
        )
        .expect("a record within AES-GCM's limits");
    out.extend_from_slice(&body);
    out
}

/// Opens a sealed record `id` with `key`: its plaintext, or `Decrypt` for a wrong key, a
/// changed byte, another record's ciphertext, or a format this build does not know.
pub fn open_record(key: &RecordKey, id: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < RECORD_OVERHEAD {
        return Err(CryptoError::Malformed("sealed record too short"));
    }
    if sealed[0] != RECORD_VERSION {
        return Err(CryptoError::Malformed(
            "sealed record of an unknown version",
        ));
    }
    let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("length checked");
    let mut body = sealed[1 + NONCE_LEN..].to_vec();
    let plain = key
        .aead()
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(id)),
            &mut body,
        )
        .map_err(|_| CryptoError::Decrypt)?;
    let n = plain.len();
    body.truncate(n);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_with_its_key_and_id_only() {
        let key = RecordKey::generate();
        let sealed = seal_record(&key, "4a5448", b"payload");
        assert_eq!(sealed.len(), 7 + RECORD_OVERHEAD);
        assert_eq!(open_record(&key, "4a5448", &sealed).unwrap(), b"payload");
        assert!(open_record(&RecordKey::generate(), "4a5448", &sealed).is_err());
        assert!(open_record(&key, "4a5449", &sealed).is_err());
        let mut changed = sealed.clone();
        changed[20] ^= 1;
        assert!(open_record(&key, "4a5448", &changed).is_err());
        let mut relabelled = sealed;
        relabelled[0] = 2;
        assert!(open_record(&key, "4a5448", &relabelled).is_err());
    }

    #[test]
    fn keys_round_trip_as_hex_and_checks_need_the_key() {
        let key = RecordKey::generate();
        let again = RecordKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(again.check("a"), key.check("a"));
        assert_ne!(key.check("a"), key.check("b"));
        assert_ne!(key.check("a"), RecordKey::generate().check("a"));
        assert!(checks_match(
            &check_of_proof(&key.proof("a")),
            &key.check("a")
        ));
        assert!(RecordKey::from_hex("abcd").is_err());
        assert!(RecordKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
