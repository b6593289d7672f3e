//! Passphrase → Argon2id → master secret → HKDF-SHA256 → (auth key, key-encryption key).
//!
//! The auth key is sent to the server, which stores only an Argon2id hash of it. The KEK
//! never leaves the client: it wraps the account's [`crate::UserKeys`].

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Argon2id cost parameters, stored per user by the server so they can be raised later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommended option.
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// Refuses parameters a hostile server could use to weaken (or stall) the derivation.
    pub fn check(&self) -> Result<(), CryptoError> {
        if !(19 * 1024..=1024 * 1024).contains(&self.m_kib) {
            return Err(CryptoError::Kdf(format!("memory {} KiB", self.m_kib)));
        }
        if !(1..=20).contains(&self.t) || !(1..=8).contains(&self.p) {
            return Err(CryptoError::Kdf(format!("t={} p={}", self.t, self.p)));
        }
        Ok(())
    }
}

/// The two keys derived from a passphrase.
pub struct AccountKeys {
    /// Proves knowledge of the passphrase to the server.
    pub auth_key: Zeroizing<[u8; 32]>,
    /// Wraps the account's secret keys; never leaves the client.
    pub kek: Zeroizing<[u8; 32]>,
}

/// Derives the account keys. Salt must be at least 16 bytes.
pub fn derive(
    passphrase: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<AccountKeys, CryptoError> {
    params.check()?;
    if salt.len() < 16 {
        return Err(CryptoError::Kdf("salt shorter than 16 bytes".into()));
    }
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
            .map_err(|e| CryptoError::Kdf(e.to_string()))?,
    );
    let mut master = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, master.as_mut())
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let hk = Hkdf::<Sha256>::new(Some(b"enc account v1"), master.as_ref());
    let mut auth_key = Zeroizing::new([0u8; 32]);
    let mut kek = Zeroizing::new([0u8; 32]);
    hk.expand(b"auth key", auth_key.as_mut())
        .map_err(|_| CryptoError::Kdf("hkdf".into()))?;
    hk.expand(b"key-encryption key", kek.as_mut())
        .map_err(|_| CryptoError::Kdf("hkdf".into()))?;
    Ok(AccountKeys { auth_key, kek })
}

/// A key-encryption key derived from an Ed25519 SSH private key (its 32-byte seed), so an
/// SSH login can unwrap the account keys without the passphrase. Bound to the user name.
pub fn ssh_kek(seed: &[u8; 32], user: &str) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(b"enc ssh key-encryption key v1"), seed);
    let mut kek = Zeroizing::new([0u8; 32]);
    hk.expand(user.as_bytes(), kek.as_mut())
        .expect("valid length");
    kek
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separates_keys() {
        let p = KdfParams {
            m_kib: 19 * 1024,
            t: 1,
            p: 1,
        };
        let a = derive(b"pass", &[7u8; 16], p).unwrap();
        let b = derive(b"pass", &[7u8; 16], p).unwrap();
        let c = derive(b"pasS", &[7u8; 16], p).unwrap();
        assert_eq!(*a.auth_key, *b.auth_key);
        assert_ne!(*a.auth_key, *a.kek);
        assert_ne!(*a.auth_key, *c.auth_key);
    }

    #[test]
    fn weak_parameters_are_refused() {
        let p = KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        assert!(derive(b"pass", &[7u8; 16], p).is_err());
        assert!(derive(b"pass", &[7u8; 8], KdfParams::default()).is_err());
    }
}
