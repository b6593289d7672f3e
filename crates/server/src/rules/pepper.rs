//! The records pepper: the key of the pseudonyms user ids get on the store (HMAC-SHA256),
//! kept outside the metadata database, so a copy of the database alone cannot tell whose
//! records are whose.

use std::path::Path;

use anyhow::Context as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;

/// The pepper's 32 bytes.
pub struct Pepper([u8; 32]);

impl Pepper {
    /// The pseudonym of a user id (64 hex digits).
    pub fn pseudonym(&self, user_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any length");
        mac.update(b"enc-records-owner\0");
        mac.update(user_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn parse(text: &str, from: &str) -> anyhow::Result<Self> {
        let raw = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .with_context(|| format!("{from}: the records pepper must be 64 hex digits"))?;
        Ok(Self(raw))
    }

    /// The deployment's pepper: `ENC_RECORDS_PEPPER`, else `[records] pepper_file`, else (on
    /// the embedded default only) `<data_dir>/records.pepper`, made now if missing. `None`
    /// on a scale-out deployment that names none (every replica must share one): the
    /// records routes then say so.
    pub fn load(config: &Config) -> anyhow::Result<Option<Self>> {
        if let Ok(text) = std::env::var("ENC_RECORDS_PEPPER") {
            return Self::parse(&text, "ENC_RECORDS_PEPPER").map(Some);
        }
        if let Some(path) = &config.records.pepper_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading records.pepper_file {}", path.display()))?;
            return Self::parse(&text, &path.display().to_string()).map(Some);
        }
        if config.database_url.is_some() {
            return Ok(None);
        }
        Self::in_data_dir(&config.data_dir).map(Some)
    }

    fn in_data_dir(dir: &Path) -> anyhow::Result<Self> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join("records.pepper");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Self::parse(&text, &path.display().to_string());
        }
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        // Written whole and made durable before it is used: a pepper lost after records were
        // stored under it would orphan them.
        let tmp = dir.join("records.pepper.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(hex::encode(fresh).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(Self(fresh))
    }
}
