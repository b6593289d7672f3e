//! Client-side cryptography of enc.
//!
//! Everything secret is created and used here, on the client: the server only ever sees the
//! outputs (an auth key it hashes again, wrapped bundles, ciphertext, signatures). This crate
//! does no I/O beyond the `Read`/`Write` streams handed to it ([`encrypt_stream`] and
//! [`decrypt_stream`] seal and open on worker threads of their own).
//!
//! - [`kdf`]: passphrase → Argon2id → HKDF → auth key and key-encryption key.
//! - [`UserKeys`]: the account's X25519 (age) and Ed25519 secrets, wrapped under the KEK.
//! - [`VaultKeys`]: a vault's age identities (one per generation) and its name key, wrapped
//!   to each member's age recipient.
//! - [`commit_message`]: the exact bytes a device signs when it commits an object version.
//! - [`device`]: the account chain of device keys, and device backups' signed entries.
//! - [`record`]: records sealed under keys only their callers keep (`/records`).
//! - [`tree`]: a vault tree's directory nodes and commits, in canonical bytes.
#![forbid(unsafe_code)]

pub mod audit;
mod bundle;
pub mod device;
mod error;
pub mod kdf;
pub mod record;
mod seal;
mod sign;
mod stream;
pub mod tree;
mod vault;

pub use bundle::{HeldKeys, UserKeys, verifying_key};
pub use error::CryptoError;
pub use kdf::{AccountKeys, KdfParams};
pub use sign::{
    CommitFields, commit_message, recipient_message, ssh_login_message, vault_keys_message,
    verify_b64, verify_commit,
};
pub use stream::{
    DecryptFailure, decrypt as decrypt_stream, encrypt as encrypt_stream, open as open_piece,
    plaintext_len, seal as seal_piece,
};
pub use vault::{MAX_NAME_LEN, VaultKeys, validate_name};

/// Re-exported so callers name one version of the age crate.
pub use age;

use base64::Engine as _;

/// Standard base64 (with padding), the encoding of every binary field on the wire.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64.
pub fn unb64(text: &str) -> Result<Vec<u8>, CryptoError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| CryptoError::Malformed("invalid base64"))
}
