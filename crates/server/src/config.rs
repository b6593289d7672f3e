//! Server configuration: one documented serde struct, layered file → `ENC_*` environment →
//! flags (the last two merged by clap), passed explicitly; never a global.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Everything `enc-server` can be told. Unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, blobs, certificate and server secret live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: String,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Idle time after which a session ends.
    #[serde(deserialize_with = "duration")]
    pub session_idle_timeout: Duration,
    /// Lifetime of an invitation token.
    #[serde(deserialize_with = "duration")]
    pub invitation_ttl: Duration,
    /// Versions kept per object name.
    pub versions_kept: u32,
    /// Role policy file (TOML); the built-in policy when unset.
    pub policy_file: Option<PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// Log filter (`tracing` syntax), e.g. `info` or `enc_server=debug`.
    pub log: String,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Mercury (Hecate's WebSocket archive protocol).
    pub mercury: MercuryConfig,
    /// PostgreSQL for metadata instead of the embedded SQLite (`postgres://…`), as the
    /// server's role: a member of `enc_app` that owns nothing and is not a superuser.
    pub database_url: Option<String>,
    /// The schema owner's connection, used only to run migrations (at start when set, or by
    /// `enc-server migrate`).
    pub database_owner_url: Option<String>,
    /// Where blobs live.
    pub blob: BlobConfig,
    /// Records (`/records`).
    pub records: RecordsConfig,
}

/// Records: the enc-server-go record routes and `enc record`'s sealed ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// The routes that seal and open records in transit (the server sees their plaintext
    /// while it handles them): off unless set. `enc record` seals on the client and works
    /// either way.
    pub enabled: bool,
    /// Largest record (its plaintext).
    #[serde(deserialize_with = "size")]
    pub max_size: u64,
    /// Largest request body of `/records` (a batch of up to 1,000 records, data in hex).
    #[serde(deserialize_with = "size")]
    pub max_batch_body: u64,
    /// The pepper that pseudonymises user ids on the store (64 hex digits in a file), kept
    /// outside the database. `ENC_RECORDS_PEPPER` takes precedence. Unset on the embedded
    /// default: `<data_dir>/records.pepper`, made at first start; a scale-out deployment
    /// (`database_url`) must give every replica the same one.
    pub pepper_file: Option<PathBuf>,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_size: 64 << 10,
            max_batch_body: 32 << 20,
            pepper_file: None,
        }
    }
}

/// How the size a Mercury client declares is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeclaredSize {
    /// What arrives must be exactly the declared size.
    Exact,
    /// The declared size is an estimate (Hecate's own client declares the size of its input
    /// before compression); only the limits apply to it and to what arrives. The default, so
    /// the unmodified Hecate client works.
    #[default]
    Estimate,
}

/// Mercury settings; `/ws` on the main listener is always on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MercuryConfig {
    /// A dedicated listener (same TLS) accepting the WebSocket upgrade on any path, as
    /// Hecate's client expects; off when unset.
    pub listen: Option<String>,
    /// Hecate-style client list (JSON): `client_id`, Argon2id `key_hash`, `permissions`.
    pub auth_config: Option<PathBuf>,
    /// Largest archive accepted (declared and actual).
    #[serde(deserialize_with = "size")]
    pub max_file_size: u64,
    /// Most bytes the preshared key's archives (and a listed client without its own limit)
    /// may hold; unlimited when unset. enc users are bound by their quota instead.
    #[serde(deserialize_with = "opt_size")]
    pub max_total_storage: Option<u64>,
    /// Mercury connections served at once, over `/ws` and the dedicated listener.
    pub max_connections: usize,
    /// A connection idle for this long is told so and closed.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// A connection must authenticate within this of opening (PING does not extend it).
    #[serde(deserialize_with = "duration")]
    pub auth_timeout: Duration,
    /// Uploads one client may start per hour.
    pub uploads_per_hour: u32,
    /// `exact` or `estimate`.
    pub declared_size: DeclaredSize,
    /// The preshared key, from `MERCURY_AUTH_KEY` or `HECATE_AUTH_KEY` only (never a file).
    #[serde(skip)]
    pub preshared_key: Option<String>,
}

impl Default for MercuryConfig {
    fn default() -> Self {
        Self {
            listen: None,
            auth_config: None,
            max_file_size: 10 << 30,
            max_total_storage: None,
            max_connections: 64,
            idle_timeout: Duration::from_secs(300),
            auth_timeout: Duration::from_secs(10),
            uploads_per_hour: 100,
            declared_size: DeclaredSize::Estimate,
            preshared_key: None,
        }
    }
}

/// Prometheus metrics settings.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Separate plain-HTTP listener serving `/metrics`; off when unset.
    pub listen: Option<String>,
}

/// Where blobs live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobConfig {
    /// `s3://bucket/prefix` for an S3-compatible store; unset: `<data_dir>/objects`.
    pub url: Option<String>,
    /// Endpoint of a store other than AWS, e.g. `http://127.0.0.1:3900`.
    pub endpoint: Option<String>,
    /// The store's region (Garage: its `s3_region`).
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), as most self-hosted stores need.
    pub path_style: bool,
    /// TOML file with `access_key_id` and `secret_access_key`; else the environment.
    pub credentials_file: Option<PathBuf>,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            url: None,
            endpoint: None,
            region: "us-east-1".into(),
            path_style: false,
            credentials_file: None,
        }
    }
}

impl BlobConfig {
    /// The S3 settings, with credentials from `credentials_file`, else `ENC_S3_ACCESS_KEY_ID`
    /// / `ENC_S3_SECRET_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    /// `None` for the local directory.
    pub fn s3(&self) -> anyhow::Result<Option<enc_store::blob::S3Settings>> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow::anyhow!("blob.url = {url:?}: use s3://BUCKET[/PREFIX]"))?;
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, Some(p.trim_matches('/').to_string())),
            None => (rest, None),
        };
        anyhow::ensure!(!bucket.is_empty(), "blob.url = {url:?} names no bucket");
        let (access_key_id, secret_access_key) = match &self.credentials_file {
            Some(path) => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Creds {
                    access_key_id: String,
                    secret_access_key: String,
                }
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("blob.credentials_file {}: {e}", path.display())
                })?;
                let c: Creds = toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("blob.credentials_file {}: {e}", path.display())
                })?;
                (c.access_key_id, c.secret_access_key)
            }
            None => {
                let env = |a: &str, b: &str| {
                    std::env::var(a)
                        .or_else(|_| std::env::var(b))
                        .ok()
                        .filter(|v| !v.is_empty())
                };
                match (
                    env("ENC_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
                    env("ENC_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
                ) {
                    (Some(a), Some(s)) => (a, s),
                    _ => anyhow::bail!(
                        "blob.url is S3 but no credentials: set blob.credentials_file, or \
                         ENC_S3_ACCESS_KEY_ID and ENC_S3_SECRET_ACCESS_KEY"
                    ),
                }
            }
        };
        Ok(Some(enc_store::blob::S3Settings {
            bucket: bucket.to_string(),
            prefix: prefix.filter(|p| !p.is_empty()),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id,
            secret_access_key,
            path_style: self.path_style,
        }))
    }
}

/// TLS settings.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`, replaces the self-signed certificate.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Extra names the self-signed certificate covers.
    pub names: Vec<String>,
    /// Serve plain HTTP (only behind a TLS-terminating proxy).
    pub insecure_http: bool,
}

/// Bounds on what a client may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest object (ciphertext) accepted.
    #[serde(deserialize_with = "size")]
    pub max_object_size: u64,
    /// Largest JSON request body.
    #[serde(deserialize_with = "size")]
    pub max_json_body: u64,
    /// Time allowed for a TLS handshake plus the request head.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// A connection with no request open (keep-alive, HTTP/2 without streams) is closed after
    /// this.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Largest request head (request line plus headers).
    #[serde(deserialize_with = "size")]
    pub max_header_size: u64,
    /// Time in-flight requests get to finish at shutdown.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// A `/v1` upload not committed within this of its last byte is discarded.
    #[serde(deserialize_with = "duration")]
    pub upload_expiry: Duration,
    /// `/v1` uploads one user may have streamed or streaming but not committed.
    pub max_pending_uploads: u32,
    /// How long an upload's blob is reserved while it streams (restic, Mercury, device
    /// backups, `/v1`): after a crash, the collector deletes a blob whose reservation is
    /// this old and that nothing references. An upload that outlasts it is refused.
    #[serde(deserialize_with = "duration")]
    pub reservation: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./enc-data"),
            listen: "127.0.0.1:8443".into(),
            tls: TlsConfig::default(),
            session_idle_timeout: Duration::from_secs(600),
            invitation_ttl: Duration::from_secs(24 * 3600),
            versions_kept: 10,
            policy_file: None,
            limits: Limits::default(),
            log: "info".into(),
            metrics: MetricsConfig::default(),
            mercury: MercuryConfig::default(),
            records: RecordsConfig::default(),
            database_url: None,
            database_owner_url: None,
            blob: BlobConfig::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_object_size: 64 << 30,
            max_json_body: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_header_size: 16 << 10,
            shutdown_grace: Duration::from_secs(30),
            upload_expiry: Duration::from_secs(3600),
            max_pending_uploads: 256,
            reservation: Duration::from_secs(24 * 3600),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys and bad values are errors naming the key.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// Checks values that parse but make no sense.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.session_idle_timeout >= Duration::from_secs(1),
            "session_idle_timeout must be at least 1s"
        );
        anyhow::ensure!(self.versions_kept >= 1, "versions_kept must be at least 1");
        anyhow::ensure!(
            self.limits.upload_expiry >= Duration::from_secs(1),
            "limits.upload_expiry must be at least 1s"
        );
        anyhow::ensure!(
            self.limits.max_pending_uploads >= 1,
            "limits.max_pending_uploads must be at least 1"
        );
        anyhow::ensure!(
            self.limits.reservation >= Duration::from_secs(1),
            "limits.reservation must be at least 1s"
        );
        anyhow::ensure!(
            self.limits.idle_timeout >= Duration::from_secs(1),
            "limits.idle_timeout must be at least 1s"
        );
        anyhow::ensure!(
            self.limits.max_connections >= 1,
            "limits.max_connections must be at least 1"
        );
        anyhow::ensure!(
            self.limits.max_header_size >= 8192,
            "limits.max_header_size must be at least 8KiB"
        );
        anyhow::ensure!(
            self.tls.cert.is_some() == self.tls.key.is_some(),
            "tls.cert and tls.key go together"
        );
        anyhow::ensure!(
            (1..=16 << 20).contains(&self.records.max_size),
            "records.max_size must be between 1 byte and 16MiB"
        );
        anyhow::ensure!(
            self.records.max_batch_body >= 2 * self.records.max_size + 1024,
            "records.max_batch_body must hold at least one record of records.max_size in hex"
        );
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| anyhow::anyhow!("listen = {:?}: {e}", self.listen))?;
        if let Some(m) = &self.mercury.listen {
            m.parse::<std::net::SocketAddr>()
                .map_err(|e| anyhow::anyhow!("mercury.listen = {m:?}: {e}"))?;
        }
        anyhow::ensure!(
            self.mercury.max_connections >= 1,
            "mercury.max_connections must be at least 1"
        );
        anyhow::ensure!(
            self.mercury.idle_timeout >= Duration::from_secs(1),
            "mercury.idle_timeout must be at least 1s"
        );
        anyhow::ensure!(
            self.mercury.auth_timeout >= Duration::from_secs(1),
            "mercury.auth_timeout must be at least 1s"
        );
        anyhow::ensure!(
            self.mercury.uploads_per_hour >= 1,
            "mercury.uploads_per_hour must be at least 1"
        );
        for (key, url) in [
            ("database_url", &self.database_url),
            ("database_owner_url", &self.database_owner_url),
        ] {
            if let Some(u) = url {
                anyhow::ensure!(
                    u.starts_with("postgres://") || u.starts_with("postgresql://"),
                    "{key} must be a postgres:// URL"
                );
            }
        }
        anyhow::ensure!(
            self.database_owner_url.is_none() || self.database_url.is_some(),
            "database_owner_url needs database_url (the server's own connection)"
        );
        self.blob.s3()?;
        if let Some(m) = &self.metrics.listen {
            m.parse::<std::net::SocketAddr>()
                .map_err(|e| anyhow::anyhow!("metrics.listen = {m:?}: {e}"))?;
        }
        Ok(())
    }
}

/// The documented default configuration printed by `--generate-config`.
pub const DEFAULT_CONFIG: &str = r#"# enc-server configuration. Every key is optional; shown are the defaults.
# Precedence: this file < ENC_* environment variables < command-line flags.

# Database, blobs, TLS certificate and server secret live here (ENC_DATA_DIR, --data-dir).
data_dir = "./enc-data"

# Address to listen on (ENC_LISTEN, --listen). Port 0 picks a free port.
listen = "127.0.0.1:8443"

# Sessions end after this much inactivity; every request refreshes them
# (ENC_SESSION_IDLE_TIMEOUT, --session-idle-timeout).
session_idle_timeout = "600s"

# How long an invitation token from `user create` stays valid.
invitation_ttl = "24h"

# Versions kept for each object name; older ones are deleted.
versions_kept = 10

# Role policy (TOML). Unset: built-in roles `admin` and `user`. See `--generate-policy`.
# policy_file = "/etc/enc/policy.toml"

# Log filter, e.g. "info", "debug", "enc_server=debug" (ENC_LOG, --log).
log = "info"

# Metadata in PostgreSQL instead of <data_dir>/meta.sqlite, for several replicas behind a load
# balancer (ENC_DATABASE_URL, --database-url). Connect as a login role that is a member of
# `enc_app`, owns no table and is not a superuser, so row-level security binds it.
# database_url = "postgres://enc@db.example/enc"
# The schema owner, only for migrations (ENC_DATABASE_OWNER_URL, --database-owner-url): run
# at start when set, else by `enc-server migrate`.
# database_owner_url = "postgres://enc_owner@db.example/enc"

[tls]
# Real certificate and key (PEM). Unset: a self-signed P-256 certificate is made at first
# start in <data_dir>/tls and reused; its names cover localhost, 127.0.0.1 and ::1.
# cert = "/etc/enc/cert.pem"
# key = "/etc/enc/key.pem"
# Extra names for the self-signed certificate (--tls-name).
names = []
# Plain HTTP, only behind a TLS-terminating proxy (--insecure-http).
insecure_http = false

[limits]
# Largest object accepted (ciphertext bytes; KiB, MiB, GiB, TiB suffixes).
max_object_size = "64GiB"
# Largest JSON request body.
max_json_body = "1MiB"
# Time for the TLS handshake and the first request head; slower clients are dropped.
header_read_timeout = "10s"
# Longest pause allowed between two pieces of a request body.
body_read_timeout = "30s"
# A connection with no request open (an idle keep-alive, HTTP/2 without streams) is closed
# after this; pings and stray bytes do not count as activity.
idle_timeout = "60s"
# Connections served at once; more are closed immediately.
max_connections = 1024
# Largest request head (request line and headers).
max_header_size = "16KiB"
# At shutdown, in-flight requests get this long to finish.
shutdown_grace = "30s"
# An upload (`enc push`) not committed within this of its last byte is discarded. Uploads are
# charged to the vault owner's quota while they stream and until then.
upload_expiry = "1h"
# Uploads one user may have streamed or streaming but not yet committed.
max_pending_uploads = 256
# How long an upload's blob is reserved while it streams. After a crash, the collector
# deletes a blob nothing references once its reservation is this old; an upload still
# streaming after this long is refused (the client sends it again).
reservation = "24h"

[blob]
# Blobs (ciphertext) in an S3-compatible bucket instead of <data_dir>/objects, so replicas share
# them: url = "s3://BUCKET/PREFIX". Credentials come from credentials_file (TOML with
# access_key_id and secret_access_key) or ENC_S3_ACCESS_KEY_ID / ENC_S3_SECRET_ACCESS_KEY (or
# AWS_*); they are never logged.
# url = "s3://enc-blobs/prod"
# endpoint = "http://127.0.0.1:3900"   # a store other than AWS (Garage, MinIO, Ceph…)
region = "us-east-1"                   # Garage: its s3_region
path_style = false                     # true for most self-hosted stores
# credentials_file = "/etc/enc/s3.toml"

[metrics]
# Prometheus `/metrics` on a separate plain-HTTP listener, off unless set (ENC_METRICS_LISTEN,
# --metrics-listen). It needs no credentials: keep it on loopback or a private network.
# listen = "127.0.0.1:9464"

[mercury]
# Hecate's archive protocol (both its text and JSON dialects) is always served on /ws of the
# main listener. A dedicated listener (same TLS) accepts the upgrade on any path, as Hecate's
# own client expects (ENC_MERCURY_LISTEN, --mercury-listen); off unless set.
# listen = "127.0.0.1:10112"
# Hecate-style client list: [{"client_id", "key_hash" (from `enc-server hash-password`),
# "permissions": {"can_upload", "can_download", "can_list", "max_file_size",
# "max_total_storage"}}]. Clients authenticate with the key `<client_id>:<password>`.
# auth_config = "/etc/enc/mercury-auth.json"
# A preshared key is read only from MERCURY_AUTH_KEY or HECATE_AUTH_KEY. enc users
# authenticate with a token from `enc token create --mercury`.
# Largest archive (declared and actual).
max_file_size = "10GiB"
# Total for the preshared key's archives and for listed clients without their own limit;
# unlimited unless set. enc users are bound by their quota.
# max_total_storage = "100GiB"
# Mercury connections at once; one more is told "too many connections" and closed.
max_connections = 64
# A connection silent for this long is told so and closed.
idle_timeout = "300s"
# A connection must authenticate within this of opening; PING does not extend it.
auth_timeout = "10s"
# Uploads one client may start per hour.
uploads_per_hour = 100
# "estimate" (the default): the declared size is only checked against the limits, and the
# bytes actually received are held to them as they arrive (Hecate's own client declares the
# size of its input before compression, so its archives can be larger than declared).
# "exact": what arrives must match the size an UploadRequest declares.
declared_size = "estimate"

[records]
# The enc-server-go record routes (POST /records, GET/DELETE /records/{id}, batch calls) seal
# and open records on the server: the one place where enc-server sees plaintext, in memory,
# while it handles the request (it keeps neither plaintext nor key). Off unless enabled.
# `enc record put|get|rm` seals on the client and works either way.
enabled = false
# Largest record (plaintext), and largest request body (a batch of up to 1,000 records).
max_size = "64KiB"
max_batch_body = "32MiB"
# The pepper (64 hex digits) that pseudonymises user ids on the store, outside the database;
# ENC_RECORDS_PEPPER takes precedence. Unset: <data_dir>/records.pepper, made at first start.
# Replicas of a scale-out deployment must share one: set it here or in the environment.
# pepper_file = "/etc/enc/records.pepper"
"#;

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Int(n) => Ok(n),
        Size::Text(t) => parse_size(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses `600s`, `10m`, `24h`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write e.g. \"600s\", \"10m\", \"24h\"")
    })
}

/// Parses `1048576`, `512KiB`, `10MiB`, `10GiB`, `1TiB` (also `KB`/`MB`/`GB` as powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {text:?}; write e.g. \"10GiB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "invalid size unit in {text:?}; use KiB, MiB, GiB or TiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_is_the_default() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        let d = Config::default();
        assert_eq!(parsed.listen, d.listen);
        assert_eq!(parsed.session_idle_timeout, d.session_idle_timeout);
        assert_eq!(parsed.limits.max_object_size, d.limits.max_object_size);
        assert_eq!(parsed.limits.max_header_size, d.limits.max_header_size);
        assert_eq!(parsed.invitation_ttl, d.invitation_ttl);
        parsed.check().unwrap();
    }

    #[test]
    fn deploy_sample_is_valid() {
        let sample: Config =
            toml::from_str(include_str!("../../../deploy/enc-server.toml")).unwrap();
        sample.check().unwrap();
        assert_eq!(sample.mercury.listen.as_deref(), Some("0.0.0.0:10112"));
        assert_eq!(sample.mercury.declared_size, DeclaredSize::Estimate);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        assert!(toml::from_str::<Config>("[limits]\nmax_object = 1").is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("5").unwrap(), 5);
        assert!(parse_size("10 parsecs").is_err());
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon").is_err());
    }
}
