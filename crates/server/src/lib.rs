//! `enc-server`: zero-knowledge encrypted storage over HTTPS.
//!
//! [`app`] builds the router (tests can call it without a socket); [`serve::run`] serves it on
//! a listener until a shutdown future resolves; [`open_state`] opens storage for a config.
//! Only this crate knows axum and JSON; storage sits behind `enc_store`'s traits.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod batch;
pub mod cli;
pub mod config;
pub mod error;
pub mod gc;
pub mod json;
pub mod mercury;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod policy;
pub mod restic;
pub mod serve;
pub mod state;
pub mod tls;
pub mod tokens;
pub mod users;
pub mod vaults;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use base64::Engine as _;
use rand::RngCore;
use sha2::Digest as _;

use crate::config::Config;
use crate::error::{ApiError, error_response};
use crate::policy::Policy;
use crate::state::{AppState, Inner};

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

/// Opens the metadata store: PostgreSQL when `database_url` is set (migrated first if the
/// owner's URL is given, and refused if its role would not be bound by row-level security),
/// else SQLite under the data directory.
pub async fn open_meta(config: &Config) -> anyhow::Result<enc_store::Meta> {
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
pub fn owner_only_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (0700)", dir.display()))
}

/// The deployment's server secret, which keys fake salts and client-address hashes: kept in
/// the metadata store so every replica shares it. A `server.secret` file of an older data
/// directory seeds it, so existing salts and hashes stay the same.
async fn server_secret(meta: &enc_store::Meta, data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let legacy = data_dir.join("server.secret");
    let candidate = match std::fs::read(&legacy) {
        Ok(bytes) => bytes,
        Err(_) => {
            let mut fresh = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut fresh);
            fresh.to_vec()
        }
    };
    let stored = meta.server_secret(candidate).await?;
    stored
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored server secret is damaged (expected 32 bytes)"))
}

/// Opens everything the handlers need.
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
    let meta = open_meta(&config).await?;
    let blobs: enc_store::Blobs = match config.blob.s3()? {
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
            Arc::new(blobs)
        }
    };
    let policy = match &config.policy_file {
        Some(p) => Policy::from_file(p)?,
        None => Policy::default(),
    };
    let mercury = mercury::Mercury::load(&config.mercury)?;
    let secret = server_secret(&meta, &config.data_dir).await?;
    let dummy_hash = tokio::task::spawn_blocking(auth::dummy_hash).await?;
    let tls_fingerprint = if config.tls.insecure_http {
        String::new()
    } else {
        let (cert, _) = tls::cert_files(&config.data_dir, &config.tls);
        tls::fingerprint(&tls::load_chain(&cert)?[0])
    };
    Ok(AppState(Arc::new(Inner {
        meta: meta.clone(),
        blobs,
        config,
        policy,
        secret,
        dummy_hash,
        started: Instant::now(),
        argon_slots: tokio::sync::Semaphore::new(4),
        metrics: metrics::Metrics::default(),
        gc_running: std::sync::atomic::AtomicBool::new(false),
        auth_cache: Default::default(),
        object_cache: Default::default(),
        restic_writes: batch::restic_writer(meta.clone()),
        tls_fingerprint,
        mercury,
    })))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `/livez` (Hecate's liveness probe).
pub async fn livez() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "alive": true }))
}

/// `/health` (Hecate's health report): status, version, uptime and the state of storage; 503
/// when storage does not answer.
pub async fn health(State(state): State<AppState>) -> axum::response::Response {
    let meta = state.meta.ping().await;
    let blobs = state.blobs.ping().await;
    let healthy = meta.is_ok() && blobs.is_ok();
    let word = |r: &Result<(), enc_store::StoreError>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let body = serde_json::json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "storage": { "metadata": word(&meta), "blobs": word(&blobs) },
        "mercury": { "active_connections": state.mercury.active_connections() },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `/readyz`: the database and the blob store answer.
pub async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    if let Err(e) = state.meta.ping().await {
        return ApiError::Unavailable(format!("database not ready: {e}")).into_response();
    }
    if let Err(e) = state.blobs.ping().await {
        return ApiError::Unavailable(format!("blob store not ready: {e}")).into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// Refuses request heads (request line and headers) larger than `limits.max_header_size`.
async fn limit_head(
    State(max): State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let head = req.method().as_str().len()
        + req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > max {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_too_large",
            format!("request head of {head} bytes exceeds the limit of {max}"),
        );
    }
    next.run(req).await
}

async fn not_found() -> axum::response::Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint".into(),
    )
}

async fn method_not_allowed() -> axum::response::Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint".into(),
    )
}

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let json_limit = state.config.limits.max_json_body as usize;
    let body_timeout = state.config.limits.body_read_timeout;
    let max_head = state.config.limits.max_header_size as usize;
    let v1 = Router::new()
        .route("/auth/prelogin", post(auth::prelogin))
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/ssh/challenge", post(auth::ssh_challenge))
        .route("/auth/ssh/login", post(auth::ssh_login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/me/passphrase", put(auth::change_passphrase))
        .route("/sessions", get(auth::list_sessions))
        .route("/sessions/{id}", delete(auth::revoke_session))
        .route(
            "/ssh-keys",
            get(auth::list_ssh_keys).post(auth::add_ssh_key),
        )
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{name}", delete(users::delete_user))
        .route("/users/{name}/role", put(users::set_role))
        .route("/users/{name}/quota", put(users::set_quota))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route("/restic/repos", get(users::restic_repos))
        .route("/restic/repos/{name}", delete(users::delete_restic_repo))
        .route("/users/{name}/public-keys", get(users::public_keys))
        .route("/vaults", get(vaults::list).post(vaults::create))
        .route("/vaults/{id}", delete(vaults::remove))
        .route(
            "/vaults/{id}/members",
            get(vaults::members).post(vaults::share),
        )
        .route("/vaults/{id}/unshare", post(vaults::unshare))
        .route("/vaults/{id}/uploads", put(objects::upload))
        .route(
            "/vaults/{id}/objects",
            get(objects::list).post(objects::commit),
        )
        .route(
            "/vaults/{id}/objects/{enc_name}",
            get(objects::versions).delete(objects::remove),
        )
        .route("/vaults/{id}/blobs/{version_id}", get(objects::download))
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(openapi::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_scope,
        ));
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/ws", get(mercury::ws))
        .route("/restic", axum::routing::any(restic::handle))
        .route("/restic/", axum::routing::any(restic::handle))
        .route("/restic/{*rest}", axum::routing::any(restic::handle))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(max_head, limit_head))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}
