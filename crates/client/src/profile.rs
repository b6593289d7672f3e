//! The client's configuration directory: `$ENC_CONFIG_DIR`, else `$XDG_CONFIG_HOME/enc`,
//! else `~/.config/enc`. `config.json` keeps the server, user and pinned fingerprints;
//! `session.json` (0600) keeps the session token and the unwrapped account keys until
//! `enc logout`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{ClientError, Result};

/// Saved settings.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SavedConfig {
    /// Server URL.
    pub server: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Server URL → pinned `SHA256:` fingerprint.
    #[serde(default)]
    pub fingerprints: BTreeMap<String, String>,
    /// Server URL → what this device has seen there and will not let the server change.
    #[serde(default)]
    pub pins: BTreeMap<String, ServerPins>,
}

/// Trust on first use for keys the server relays: other users' Ed25519 keys, and the highest
/// key generation seen per vault (so old keys cannot be replayed after an unshare).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ServerPins {
    /// User name → Ed25519 public key (base64).
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Vault id → highest key generation seen.
    #[serde(default)]
    pub generations: BTreeMap<String, u32>,
    /// Vault id → the newest tree commit this device has verified (the server may never
    /// show it an older state or another history).
    #[serde(default)]
    pub heads: BTreeMap<String, HeadPin>,
    /// `VAULT:HASH` → the commit (hex hash) a local directory last matched, by
    /// a pull of the tree's PATH into it or a push of it: what a later pull may overwrite
    /// without `--force` (anything changed here since is a local change). HASH is keyed by
    /// the vault's key over the tree's path and the directory's real path, so the file does
    /// not say which directories mirror which vault.
    #[serde(default)]
    pub synced: BTreeMap<String, String>,
    /// User id, or `key:` and the account key → the newest account chain link this device
    /// has verified of that account (a server may
    /// never show it a shorter chain, or another one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub chains: BTreeMap<String, HeadPin>,
    /// Device id → the newest entry of its backup chain this device has verified.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub device_heads: BTreeMap<String, HeadPin>,
    /// Vault id → the first commit seen signed by a device: no later commit signed by an
    /// account key counts (devices keep none since then; an old copy of one signs nothing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub device_signed: BTreeMap<String, u64>,
}

/// A vault's newest verified commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadPin {
    pub seq: u64,
    /// The commit hash, hex.
    pub hash: String,
}

/// A logged-in session on this device.
#[derive(Clone, Serialize, Deserialize)]
pub struct SavedSession {
    /// Server URL.
    pub server: String,
    /// User name.
    pub user: String,
    /// Role.
    pub role: String,
    /// Bearer token.
    pub token: String,
    /// Session id.
    pub session_id: String,
    /// The account's secret keys (see `enc_crypto::UserKeys::to_secret_json`).
    pub keys: String,
    /// This device's id, once its login certified its key.
    #[serde(default)]
    pub device_id: Option<String>,
    /// This device's Ed25519 secret, base64.
    #[serde(default)]
    pub device_key: Option<String>,
    /// The account's user id, as this login saw it (a server that later names another is
    /// refused: the pins of the account chain are kept by it).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The server's instance id, as this login saw it.
    #[serde(default)]
    pub server_id: Option<String>,
}

impl std::fmt::Debug for SavedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedSession")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The configuration directory.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// Finds the directory from the environment.
    pub fn locate() -> Result<Self> {
        let dir = if let Some(d) = std::env::var_os("ENC_CONFIG_DIR") {
            PathBuf::from(d)
        } else if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
            PathBuf::from(d).join("enc")
        } else if let Some(h) = std::env::var_os("HOME") {
            PathBuf::from(h).join(".config").join("enc")
        } else {
            return Err(ClientError::Usage(
                "cannot find a configuration directory: set ENC_CONFIG_DIR or HOME".into(),
            ));
        };
        Ok(Self { dir })
    }

    /// A profile in an explicit directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(ClientError::io(format!("creating {}", self.dir.display())))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(ClientError::io(format!("securing {}", self.dir.display())))?;
        Ok(())
    }

    fn write_private(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let ctx = format!("writing {}", path.display());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(ClientError::io(ctx.clone()))?;
        f.write_all(bytes).map_err(ClientError::io(ctx.clone()))?;
        f.sync_all().map_err(ClientError::io(ctx.clone()))?;
        std::fs::rename(&tmp, &path).map_err(ClientError::io(ctx))?;
        Ok(())
    }

    fn read(&self, name: &str) -> Result<Option<Zeroizing<String>>> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(Zeroizing::new(s))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            }),
        }
    }

    /// Saved settings (defaults when none).
    pub fn config(&self) -> Result<SavedConfig> {
        match self.read("config.json")? {
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                ClientError::Usage(format!(
                    "{} is damaged ({e}); fix or delete it",
                    self.dir.join("config.json").display()
                ))
            }),
            None => Ok(SavedConfig::default()),
        }
    }

    /// Saves settings.
    pub fn save_config(&self, c: &SavedConfig) -> Result<()> {
        let text = serde_json::to_string_pretty(c).expect("serialisable");
        self.write_private("config.json", text.as_bytes())
    }

    /// The stored session, if any.
    pub fn session(&self) -> Result<Option<SavedSession>> {
        match self.read("session.json")? {
            Some(text) => Ok(serde_json::from_str(&text).ok()),
            None => Ok(None),
        }
    }

    /// Stores a session (0600).
    pub fn save_session(&self, s: &SavedSession) -> Result<()> {
        let text = Zeroizing::new(serde_json::to_string(s).expect("serialisable"));
        self.write_private("session.json", text.as_bytes())
    }

    /// Forgets the session and the keys stored with it.
    pub fn clear_session(&self) -> Result<()> {
        match std::fs::remove_file(self.dir.join("session.json")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClientError::Io {
                context: "removing the session".into(),
                source: e,
            }),
        }
    }
}
