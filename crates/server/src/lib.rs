//! `enc-server`: zero-knowledge encrypted storage over HTTPS.
//!
//! The library's surface is what `main.rs` needs: [`cli`] (parse and run a command) and
//! [`config`]. Inside, the server is laid out by protocol:
//! - [`http`]: plumbing every listener shares (accept loop, TLS, limits, errors, metrics,
//!   health);
//! - [`rules`]: what every protocol applies the same way (credentials, throttling, roles and
//!   quotas, the upload path, group commit, the collector);
//! - one folder per API, each with its router, state and error mapping: [`v1`], [`restic`],
//!   [`mercury`]. No protocol imports another; this file composes them.
//!
//! Only this crate knows axum and JSON; storage sits behind `enc_store`'s traits.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod mercury;
mod restic;
mod rules;
mod scrub;
mod state;
mod v1;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use rand::RngCore;

use crate::config::Config;
use crate::rules::policy::Policy;
use crate::state::{AppState, Inner};

/// Opens the metadata store: PostgreSQL when `database_url` is set (migrated first if the
/// owner's URL is given, and refused if its role would not be bound by row-level security),
/// else SQLite under the data directory.
pub(crate) async fn open_meta(config: &Config) -> anyhow::Result<enc_store::Meta> {
    if let Some(url) = &config.database_url {
        if let Some(owner) = &config.database_owner_url {
            enc_store::postgres::migrate(owner)
                .await
                .context("migrating the PostgreSQL schema (database_owner_url)")?;
        }
        let (pg, checks) = enc_store::postgres::connect(url)
            .await
            .context("connecting to PostgreSQL (database_url)")?;
        let pending = checks.pending_migrations;
        anyhow::ensure!(
            pending == 0,
            "the PostgreSQL schema lacks {pending} migration(s): run `enc-server migrate \
             --database-owner-url postgres://OWNER@…` (or set database_owner_url)"
        );
        let role = checks.role;
        anyhow::ensure!(
            !role.bypasses_rls && !role.owns_tables,
            "database_url connects as a role that {}: row-level security would not bind it; \
             connect as a login role that is a member of enc_app (see the README's Deployment)",
            if role.bypasses_rls {
                "is a superuser or has BYPASSRLS"
            } else {
                "owns tables of the schema"
            }
        );
        return Ok(Arc::new(pg));
    }
    let data_dir = &config.data_dir;
    owner_only_dir(data_dir)?;
    let meta = enc_store::sqlite::open(&data_dir.join("meta.sqlite"))
        .await
        .with_context(|| format!("opening the database in {}", data_dir.display()))?;
    Ok(Arc::new(meta))
}

/// Creates the data directory if needed and makes it (0700) its owner's alone, whatever the
/// umask: it holds the database, the TLS key and, on a local store, every blob.
pub(crate) fn owner_only_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (0700)", dir.display()))
}

/// The deployment's server secret, which keys fake salts and client-address hashes: kept in
/// the metadata store so every replica shares it. A `server.secret` file of an older data
/// directory seeds it, so existing salts and hashes stay the same.
async fn server_secret(
    engine: &dyn enc_store::Engine,
    data_dir: &Path,
) -> anyhow::Result<[u8; 32]> {
    let legacy = data_dir.join("server.secret");
    let candidate = match std::fs::read(&legacy) {
        Ok(bytes) => bytes,
        Err(_) => {
            let mut fresh = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut fresh);
            fresh.to_vec()
        }
    };
    let stored = engine.server_secret(candidate).await?;
    stored
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored server secret is damaged (expected 32 bytes)"))
}

/// The server's shared state and each protocol's own.
pub(crate) struct Server {
    /// What every protocol shares.
    pub state: AppState,
    /// The restic backend's group commit and caches.
    pub restic: restic::Restic,
    /// Mercury's client list and preshared key.
    pub mercury: mercury::MercuryState,
}

/// Opens the blob store: the S3 bucket when one is configured, else `objects/` under the
/// data directory, whose staging files (uploads a crash interrupted) are removed first when
/// `sweep` (never while a server may be running on it).
pub(crate) async fn open_blobs(config: &Config, sweep: bool) -> anyhow::Result<enc_store::Blobs> {
    Ok(match config.blob.s3()? {
        Some(s3) => {
            let blobs = enc_store::blob::ObjectBlobs::s3(&s3).context("configuring S3")?;
            // Multipart uploads a crash left open are never visible; the bucket's lifecycle
            // rule (AbortIncompleteMultipartUpload) reclaims them.
            Arc::new(blobs)
        }
        None => {
            let blob_dir = config.data_dir.join("objects");
            let blobs = enc_store::blob::ObjectBlobs::local(&blob_dir)
                .context("opening the blob directory")?;
            if sweep {
                // Nothing is in flight yet: staging files are leftovers of a crash.
                let swept = tokio::task::spawn_blocking(move || {
                    enc_store::blob::sweep_local_staging(&blob_dir)
                })
                .await?
                .context("removing interrupted uploads")?;
                if swept > 0 {
                    tracing::info!(
                        files = swept,
                        "removed staging files of uploads interrupted by a crash"
                    );
                }
            }
            Arc::new(blobs)
        }
    })
}

/// Opens everything the handlers need.
pub(crate) async fn open_state(config: Config) -> anyhow::Result<Server> {
    let meta = open_meta(&config).await?;
    let blobs = open_blobs(&config, true).await?;
    let policy = match &config.policy_file {
        Some(p) => Policy::from_file(p)?,
        None => Policy::default(),
    };
    let mercury = mercury::Mercury::load(&config.mercury)?;
    let secret = server_secret(&*meta, &config.data_dir).await?;
    let records_pepper = rules::pepper::Pepper::load(&config)?;
    let dummy_hash = tokio::task::spawn_blocking(rules::credentials::dummy_hash).await?;
    let tls_fingerprint = if config.tls.insecure_http {
        String::new()
    } else {
        let (cert, _) = http::tls::cert_files(&config.data_dir, &config.tls);
        http::tls::fingerprint(&http::tls::load_chain(&cert)?[0])
    };
    let state = AppState(Arc::new(Inner {
        meta: meta.clone(),
        blobs,
        config,
        policy,
        secret,
        dummy_hash,
        started: Instant::now(),
        argon_slots: tokio::sync::Semaphore::new(4),
        metrics: http::metrics::Metrics::default(),
        gc_running: std::sync::atomic::AtomicBool::new(false),
        revocations: Default::default(),
        tls_fingerprint,
        backup_writer: state::backup_writer(meta.clone()),
        backup_tokens: Default::default(),
        records_pepper,
        records_tokens: Default::default(),
    }));
    {
        let weak = Arc::downgrade(&state.0);
        state.revocations.subscribe(move |_| {
            if let Some(s) = weak.upgrade() {
                s.backup_tokens.clear();
                s.records_tokens.clear();
            }
        });
    }
    Ok(Server {
        restic: restic::Restic::new(state.clone()),
        mercury: mercury::MercuryState::new(state.clone(), mercury),
        state,
    })
}

/// The whole HTTP API of the main listener.
pub(crate) fn app(server: &Server) -> Router {
    let state = server.state.clone();
    let json_limit = state.config.limits.max_json_body as usize;
    let body_timeout = state.config.limits.body_read_timeout;
    let max_head = state.config.limits.max_header_size as usize;
    Router::<AppState>::new()
        .nest("/v1", v1::router(state.clone()))
        .merge(v1::records::router(state.clone()))
        .merge(restic::router(server.restic.clone()))
        .merge(mercury::main_router(server.mercury.clone()))
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/health", get(http::health::health))
        .route("/livez", get(http::health::livez))
        .fallback(http::not_found)
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            max_head,
            http::limit_head,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::metrics::observe,
        ))
        .with_state(state)
}

#[cfg(test)]
mod layout {
    /// The shape this file's doc states: no protocol folder imports another, and the shared
    /// layers (plumbing, rules, state) import none of them.
    #[test]
    fn no_protocol_imports_another_and_shared_layers_import_none() {
        const PROTOCOLS: [&str; 3] = ["v1", "restic", "mercury"];
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&src).expect("below src");
                let top = rel.iter().next().expect("non-empty").to_string_lossy();
                let top = top.trim_end_matches(".rs");
                let text = std::fs::read_to_string(&path).expect("readable");
                let bound = match top {
                    "http" | "rules" | "state" => PROTOCOLS.to_vec(),
                    t if PROTOCOLS.contains(&t) => {
                        PROTOCOLS.iter().copied().filter(|p| *p != t).collect()
                    }
                    _ => continue,
                };
                for other in bound {
                    if text.contains(&format!("crate::{other}::"))
                        || text.contains(&format!("crate::{other};"))
                    {
                        found.push(format!("{} imports crate::{other}", rel.display()));
                    }
                }
            }
        }
        assert!(found.is_empty(), "{found:#?}");
    }
}
