//! Vault keys: one age X25519 identity per generation, and a stable name key.
//!
//! Object contents are age files encrypted to the current generation's recipient. Removing a
//! member adds a generation, so what is written afterwards is out of the removed member's
//! reach. Object names are encrypted deterministically under the name key (which does not
//! rotate, so existing names stay addressable): the server can enforce uniqueness of names it
//! cannot read.

use std::collections::BTreeMap;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::Engine as _;
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{CryptoError, b64, seal, unb64};

/// Longest object name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 4096;
const NAME_AAD: &[u8] = b"enc object name v1";

/// A vault's secret keys, as one member holds them after unwrapping.
pub struct VaultKeys {
    generations: BTreeMap<u32, age::x25519::Identity>,
    name_key: Zeroizing<[u8; 32]>,
    /// The same identities, newest first, unwrapping with aws-lc-rs (made on first use).
    fast: std::sync::OnceLock<Vec<crate::stream::x25519::FastIdentity>>,
}

#[derive(Serialize, Deserialize)]
struct VaultJson {
    generations: BTreeMap<u32, String>,
    name_key: String,
}

impl VaultKeys {
    /// A new vault with generation 1.
    pub fn generate() -> Self {
        let mut name_key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(name_key.as_mut());
        let mut generations = BTreeMap::new();
        generations.insert(1, age::x25519::Identity::generate());
        Self {
            generations,
            name_key,
            fast: std::sync::OnceLock::new(),
        }
    }

    /// Adds a fresh generation (after a member is removed) and returns its number.
    pub fn rotate(&mut self) -> u32 {
        let next = self.current_generation() + 1;
        self.generations
            .insert(next, age::x25519::Identity::generate());
        self.fast = std::sync::OnceLock::new();
        next
    }

    /// The generation new objects are encrypted to.
    pub fn current_generation(&self) -> u32 {
        self.generations.keys().next_back().copied().unwrap_or(0)
    }

    /// Whether this member holds the keys of `generation`.
    pub fn has_generation(&self, generation: u32) -> bool {
        self.generations.contains_key(&generation)
    }

    /// The age recipient of the current generation.
    pub fn recipient(&self) -> age::x25519::Recipient {
        self.current_identity().to_public()
    }

    fn current_identity(&self) -> &age::x25519::Identity {
        self.generations
            .values()
            .next_back()
            .expect("a vault always has a generation")
    }

    /// Every identity this member holds, newest first, for decryption.
    pub fn identities(&self) -> Vec<&age::x25519::Identity> {
        self.generations.values().rev().collect()
    }

    /// [`VaultKeys::identities`] as the age decryptors take them, unwrapping with aws-lc-rs's
    /// X25519 (the age crate's own identities if one cannot be made).
    pub fn age_identities(&self) -> Vec<&dyn age::Identity> {
        let fast = self.fast.get_or_init(|| {
            self.generations
                .values()
                .rev()
                .filter_map(|i| crate::stream::x25519::FastIdentity::new(i).ok())
                .collect()
        });
        if fast.len() == self.generations.len() {
            fast.iter().map(|i| i as &dyn age::Identity).collect()
        } else {
            self.generations
                .values()
                .rev()
                .map(|i| i as &dyn age::Identity)
                .collect()
        }
    }

    /// An age identity file (as `age -d -i` reads it) with every generation.
    pub fn export_identity_file(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for (generation, id) in self.generations.iter().rev() {
            out.push_str(&format!(
                "# enc vault key, generation {generation}\n# public key: {}\n{}\n",
                id.to_public(),
                id.to_string().expose_secret()
            ));
        }
        out
    }

    /// Wraps these keys to a member's age recipient; base64 output for the server.
    pub fn wrap_to(&self, recipient: &str) -> Result<String, CryptoError> {
        let recipient = age::x25519::Recipient::from_str(recipient)
            .map_err(|_| CryptoError::Malformed("age recipient"))?;
        let json = VaultJson {
            generations: self
                .generations
                .iter()
                .map(|(g, id)| (*g, id.to_string().expose_secret().to_string()))
                .collect(),
            name_key: b64(self.name_key.as_ref()),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&json).expect("serialisable"));
        let sealed = age::encrypt(&recipient, &plain)
            .map_err(|_| CryptoError::Malformed("age recipient"))?;
        Ok(b64(&sealed))
    }

    /// Unwraps what [`VaultKeys::wrap_to`] produced, with the member's identity.
    pub fn unwrap(
        identity: &age::x25519::Identity,
        wrapped_b64: &str,
    ) -> Result<Self, CryptoError> {
        let plain = Zeroizing::new(
            age::decrypt(identity, &unb64(wrapped_b64)?).map_err(|_| CryptoError::Decrypt)?,
        );
        let json: VaultJson =
            serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed("vault keys"))?;
        let mut generations = BTreeMap::new();
        for (g, text) in json.generations {
            let id = age::x25519::Identity::from_str(&text)
                .map_err(|_| CryptoError::Malformed("vault identity"))?;
            generations.insert(g, id);
        }
        if generations.is_empty() {
            return Err(CryptoError::Malformed("vault keys without generation"));
        }
        let raw = Zeroizing::new(unb64(&json.name_key)?);
        let mut name_key = Zeroizing::new([0u8; 32]);
        if raw.len() != 32 {
            return Err(CryptoError::Malformed("name key length"));
        }
        name_key.copy_from_slice(&raw);
        Ok(Self {
            generations,
            name_key,
            fast: std::sync::OnceLock::new(),
        })
    }

    fn name_subkeys(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        let hk = Hkdf::<Sha256>::new(None, self.name_key.as_ref());
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 32]);
        hk.expand(b"enc name encryption", enc.as_mut())
            .expect("valid length");
        hk.expand(b"enc name siv", mac.as_mut())
            .expect("valid length");
        (enc, mac)
    }

    /// A hasher of content ids (`cid`, see [`crate::tree::Piece`]): BLAKE3 keyed with a key
    /// derived from the name key, so ids stay the same across key generations and mean
    /// nothing to anyone without the vault's keys.
    pub fn cid_hasher(&self) -> blake3::Hasher {
        let hk = Hkdf::<Sha256>::new(None, self.name_key.as_ref());
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"enc content id v1", key.as_mut())
            .expect("valid length");
        blake3::Hasher::new_keyed(&key)
    }

    /// Encrypts an object name deterministically (base64url, no padding). Validates it first.
    pub fn encrypt_name(&self, name: &str) -> Result<String, CryptoError> {
        validate_name(name)?;
        let (enc, mac) = self.name_subkeys();
        let sealed = seal::seal_deterministic(&enc, &mac, NAME_AAD, name.as_bytes());
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Decrypts an encrypted name.
    pub fn decrypt_name(&self, encrypted: &str) -> Result<String, CryptoError> {
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encrypted)
            .map_err(|_| CryptoError::Malformed("encrypted name"))?;
        let (enc, _) = self.name_subkeys();
        let plain = seal::open(&enc, NAME_AAD, &sealed)?;
        let name =
            String::from_utf8(plain).map_err(|_| CryptoError::Malformed("name is not UTF-8"))?;
        // Another member of a shared vault could have encrypted any bytes: names become paths
        // on pull, so they must pass the same checks as on push.
        validate_name(&name)?;
        Ok(name)
    }
}

/// Checks an object name: 1–4096 bytes, relative, no `.`/`..`/empty path elements, no
/// control characters (NUL included), no backslash.
pub fn validate_name(name: &str) -> Result<(), CryptoError> {
    if name.is_empty() {
        return Err(CryptoError::InvalidName("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(CryptoError::InvalidName("longer than 4096 bytes"));
    }
    if name.starts_with('/') {
        return Err(CryptoError::InvalidName("must be relative (leading '/')"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(CryptoError::InvalidName("contains a control character"));
    }
    if name.contains('\\') {
        return Err(CryptoError::InvalidName("contains a backslash"));
    }
    for part in name.split('/') {
        match part {
            "" => return Err(CryptoError::InvalidName("empty path element")),
            "." | ".." => return Err(CryptoError::InvalidName("'.' or '..' path element")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_deterministically() {
        let v = VaultKeys::generate();
        let a = v.encrypt_name("dir/a.txt").unwrap();
        assert_eq!(a, v.encrypt_name("dir/a.txt").unwrap());
        assert_eq!(v.decrypt_name(&a).unwrap(), "dir/a.txt");
        assert!(!a.contains("a.txt"));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "/etc", "a/../b", "..", "a\0b", "a//b", "a/", "a\\b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"x".repeat(4097)).is_err());
        assert!(validate_name(&"x".repeat(4096)).is_ok());
    }

    #[test]
    fn wrap_rotate_and_unwrap() {
        let member = age::x25519::Identity::generate();
        let mut v = VaultKeys::generate();
        let name = v.encrypt_name("n").unwrap();
        assert_eq!(v.rotate(), 2);
        let w = v.wrap_to(&member.to_public().to_string()).unwrap();
        let back = VaultKeys::unwrap(&member, &w).unwrap();
        assert_eq!(back.current_generation(), 2);
        assert_eq!(back.identities().len(), 2);
        assert_eq!(back.decrypt_name(&name).unwrap(), "n");
        let other = age::x25519::Identity::generate();
        assert!(VaultKeys::unwrap(&other, &w).is_err());
    }
}
