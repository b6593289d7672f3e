//! Client library of enc: configuration, a pinned-TLS HTTP client for the `/v1` API, and the
//! operations the `enc` CLI offers (register, login, push, pull, share, …). Everything is
//! encrypted and decrypted here; the server only ever receives ciphertext.
#![forbid(unsafe_code)]

mod admin;
mod api;
pub mod backups;
pub mod devices;
mod direct;
mod erasure;
mod error;
pub mod export;
mod ops;
mod profile;
pub mod records;
pub mod scan;
mod tls;
mod transfer;
pub mod tree;

pub use admin::{ChainCheck, check_chain};
pub use api::Api;
pub use enc_crypto::{plaintext_len, validate_name};
pub use erasure::follow_erasure;
pub use error::ClientError;
pub use ops::{Account, LoginMethod, Unlock, VaultCtx, key_fingerprint, login, register};
pub use profile::{HeadPin, Profile, SavedConfig, SavedSession, ServerPins};
pub use tls::probe_fingerprint;
pub use transfer::{Progress, PullOptions};

/// Shorthand.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
