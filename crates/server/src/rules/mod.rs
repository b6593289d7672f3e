//! Rules every protocol shares: credentials, throttling, roles and quotas, the upload path,
//! group commit, the collector and erasure jobs.

use base64::Engine as _;
use rand::RngCore;
use sha2::Digest as _;

pub mod batch;
pub mod credentials;
pub mod erasure;
pub mod gc;
pub mod ingest;
pub mod pepper;
pub mod policy;
pub mod throttle;

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random bearer token with a recognisable prefix.
pub fn random_token(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// How tokens are stored: SHA-256 (they carry 256 bits of entropy, so a slow hash adds
/// nothing), hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Checks a vault or restic repository name (`what`): 1–64 of `A-Z a-z 0-9 . _ -`, not
/// starting with `.`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name {name:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"
        ))
    }
}
