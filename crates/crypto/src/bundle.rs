//! The account's secret keys and their wrapping under the key-encryption key.

use std::str::FromStr;

use age::secrecy::ExposeSecret;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CryptoError, b64, seal, unb64};

const BUNDLE_AAD: &[u8] = b"enc user key bundle v1";

/// The account's secret keys: an age X25519 identity (to receive vault keys) and an Ed25519
/// signing key (to sign commits). Generated on the client; the server holds them only wrapped.
pub struct UserKeys {
    /// Receives vault keys wrapped to [`UserKeys::recipient`].
    pub x25519: age::x25519::Identity,
    /// Signs object commits.
    pub ed25519: SigningKey,
}

#[derive(Serialize, Deserialize)]
struct BundleJson {
    x25519: String,
    ed25519: String,
}

impl UserKeys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        Self {
            x25519: age::x25519::Identity::generate(),
            ed25519: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The age recipient (`age1…`) others wrap vault keys to.
    pub fn recipient(&self) -> String {
        self.x25519.to_public().to_string()
    }

    /// The Ed25519 public key, base64.
    pub fn verifying_key_b64(&self) -> String {
        b64(self.ed25519.verifying_key().as_bytes())
    }

    /// Signs `msg` with the account's Ed25519 key; base64 signature.
    pub fn sign_b64(&self, msg: &[u8]) -> String {
        b64(&self.ed25519.sign(msg).to_bytes())
    }

    /// Serialises the secrets (for the 0600 device cache); the result is secret.
    pub fn to_secret_json(&self) -> Zeroizing<String> {
        let json = BundleJson {
            x25519: self.x25519.to_string().expose_secret().to_string(),
            ed25519: b64(self.ed25519.as_bytes()),
        };
        Zeroizing::new(serde_json::to_string(&json).expect("serialisable"))
    }

    /// Parses [`UserKeys::to_secret_json`].
    pub fn from_secret_json(text: &str) -> Result<Self, CryptoError> {
        let json: BundleJson =
            serde_json::from_str(text).map_err(|_| CryptoError::Malformed("key bundle"))?;
        let x25519 = age::x25519::Identity::from_str(&json.x25519)
            .map_err(|_| CryptoError::Malformed("x25519 identity"))?;
        let raw = Zeroizing::new(unb64(&json.ed25519)?);
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("ed25519 key length"))?;
        Ok(Self {
            x25519,
            ed25519: SigningKey::from_bytes(&bytes),
        })
    }

    /// Wraps the secrets under a key-encryption key; base64 output for the server.
    pub fn wrap(&self, kek: &[u8; 32]) -> String {
        b64(&seal::seal(
            kek,
            BUNDLE_AAD,
            self.to_secret_json().as_bytes(),
        ))
    }

    /// Unwraps what [`UserKeys::wrap`] produced.
    pub fn unwrap(kek: &[u8; 32], wrapped_b64: &str) -> Result<Self, CryptoError> {
        let plain = Zeroizing::new(seal::open(kek, BUNDLE_AAD, &unb64(wrapped_b64)?)?);
        let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Malformed("key bundle"))?;
        Self::from_secret_json(text)
    }
}

/// What a device keeps of the account's keys: the X25519 identity (vault keys are wrapped to
/// it) and the account's Ed25519 *public* key. The account's signing key is not kept: it is
/// unwrapped in memory, from the server's wrapped copy, only for an act of the account
/// (certifying or revoking a device, signing a vault's keys), so a device that is stolen or
/// revoked holds no key that signs as the account.
pub struct HeldKeys {
    /// Receives vault keys wrapped to [`HeldKeys::recipient`].
    pub x25519: age::x25519::Identity,
    /// The account's Ed25519 public key.
    pub account_key: VerifyingKey,
}

#[derive(Serialize, Deserialize)]
struct HeldJson {
    x25519: String,
    /// The public key (this format).
    #[serde(default)]
    ed25519_public: Option<String>,
    /// A secret key, as a build before devices stopped keeping it wrote: read for its
    /// public half, never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ed25519: Option<String>,
}

impl HeldKeys {
    /// The age recipient (`age1…`).
    pub fn recipient(&self) -> String {
        self.x25519.to_public().to_string()
    }

    /// The account's Ed25519 public key, base64.
    pub fn verifying_key_b64(&self) -> String {
        b64(self.account_key.as_bytes())
    }

    /// Serialises what the device keeps (for the 0600 session file); the result is secret.
    pub fn to_secret_json(&self) -> Zeroizing<String> {
        let json = HeldJson {
            x25519: self.x25519.to_string().expose_secret().to_string(),
            ed25519_public: Some(self.verifying_key_b64()),
            ed25519: None,
        };
        Zeroizing::new(serde_json::to_string(&json).expect("serialisable"))
    }

    /// Parses [`HeldKeys::to_secret_json`], or a whole bundle of an earlier build (whose
    /// signing key is dropped here; `true` says the file held one and should be rewritten).
    pub fn from_secret_json(text: &str) -> Result<(Self, bool), CryptoError> {
        let json: HeldJson =
            serde_json::from_str(text).map_err(|_| CryptoError::Malformed("key bundle"))?;
        let x25519 = age::x25519::Identity::from_str(&json.x25519)
            .map_err(|_| CryptoError::Malformed("x25519 identity"))?;
        let (account_key, had_secret) = match (&json.ed25519_public, &json.ed25519) {
            (Some(public), _) => (verifying_key(public)?, json.ed25519.is_some()),
            (None, Some(_)) => (
                UserKeys::from_secret_json(text)?.ed25519.verifying_key(),
                true,
            ),
            (None, None) => return Err(CryptoError::Malformed("key bundle")),
        };
        Ok((
            Self {
                x25519,
                account_key,
            },
            had_secret,
        ))
    }
}

impl UserKeys {
    /// What a device keeps of these keys.
    pub fn held(&self) -> HeldKeys {
        HeldKeys {
            x25519: self.x25519.clone(),
            account_key: self.ed25519.verifying_key(),
        }
    }
}

/// Parses a base64 Ed25519 public key.
pub fn verifying_key(b64_key: &str) -> Result<VerifyingKey, CryptoError> {
    let raw = unb64(b64_key)?;
    let bytes: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed("ed25519 public key length"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CryptoError::Malformed("ed25519 public key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip() {
        let keys = UserKeys::generate();
        let wrapped = keys.wrap(&[9u8; 32]);
        let back = UserKeys::unwrap(&[9u8; 32], &wrapped).unwrap();
        assert_eq!(back.recipient(), keys.recipient());
        assert_eq!(back.verifying_key_b64(), keys.verifying_key_b64());
        assert!(UserKeys::unwrap(&[8u8; 32], &wrapped).is_err());
    }

    #[test]
    fn a_device_keeps_no_account_signing_key() {
        let keys = UserKeys::generate();
        let held = keys.held().to_secret_json();
        assert!(!held.contains(&b64(keys.ed25519.as_bytes())));
        assert!(!held.contains("\"ed25519\""), "{}", *held);
        let (back, had) = HeldKeys::from_secret_json(&held).unwrap();
        assert!(!had);
        assert_eq!(back.verifying_key_b64(), keys.verifying_key_b64());
        assert_eq!(back.recipient(), keys.recipient());
        // A session file of an earlier build: read for the public half, flagged for rewrite.
        let (old, had) = HeldKeys::from_secret_json(&keys.to_secret_json()).unwrap();
        assert!(had);
        assert_eq!(old.verifying_key_b64(), keys.verifying_key_b64());
    }
}
