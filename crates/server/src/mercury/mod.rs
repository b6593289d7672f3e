//! Mercury: Hecate's archive protocol over WebSocket, served on `/ws` of the main listener and
//! on an optional dedicated listener that accepts the upgrade on any path (Hecate's client
//! connects to `wss://host:port/`).
//!
//! Two dialects share one connection model; the first text frame decides which one a
//! connection speaks (a frame starting with `{` is JSON):
//! - **text** (Hecate's documentation): `AUTH k` → `OK`; `NAME f` → `ACCEPT f'`; `DATA`, binary
//!   frames of at most 1 MiB, `END` → `OK <bytes>`; `LIST` → one name per frame, `END`;
//!   `GET f` → `DATA`, binary frames, `END`; `PING` → `PONG`; failures `ERROR <why>`.
//! - **JSON** (what Hecate's client sends): serde-tagged objects, bytes as arrays of numbers
//!   (a base64 string is accepted too); failures `Error{code,message}` with Hecate's codes.
//!
//! Credentials, tried in this order, each compared in constant time: an enc access token of
//! kind `mercury` (`enc_…`), `client_id:password` against the `auth.json` client list
//! (Argon2id; an unknown id is verified against a dummy hash), the preshared key from
//! `MERCURY_AUTH_KEY`/`HECATE_AUTH_KEY` (SHA-256 digests compared). Authentication is always
//! required. Each credential has its own archive space (`user:<id>`, `client:<id>`, `psk`).
//!
//! An upload reserves its name when it is accepted (atomically, in the database: an existing
//! name becomes `<base>-<unix-time>.<ext>`, then `<base>-<uuid>.<ext>`), streams into a blob
//! writer, and becomes visible only after the end of data, a durable blob and the commit. A
//! dropped connection or any failure aborts it: nothing partial is ever listed. Every limit
//! answers with the dialect's error, never a silent drop.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context as _;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use enc_store::{MercuryCommit, MercuryReservation, StoreError, UserRow};
use futures::StreamExt as _;
use serde::Deserialize;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::config::{DeclaredSize, MercuryConfig};
use crate::http::serve::ClientAddr;
use crate::rules::ingest::{Hash, Ingest, Limits, Refused};
use crate::state::AppState;

mod auth;
mod dispatch;
mod transfer;
mod wire;

pub(crate) use wire::parse_for_fuzzing;
use wire::*;

/// Largest binary frame accepted, and largest chunk sent: 1 MiB.
pub const CHUNK: usize = 1 << 20;

/// Largest text frame: a JSON `DataChunk` of 1 MiB written as numbers (up to four characters
/// a byte) plus room for the envelope.
const MAX_TEXT: usize = 4 * CHUNK + (64 << 10);

/// How long a connection over the limit may take to say which dialect it speaks.
const REFUSAL_WAIT: Duration = Duration::from_secs(10);

/// After a closing refusal, how long the server keeps reading (and discarding) what the client
/// still sends, and how much of it, before it drops the connection. Closing a socket with
/// unread bytes makes the kernel send a reset, which can destroy the refusal before the client
/// reads it (an upload refused mid-stream always has bytes in flight).
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 64 << 20;

/// How often a connection authenticated by an enc token checks that the token still holds.
const REVALIDATE: Duration = Duration::from_secs(2);

/// After refusing a frame the WebSocket layer could not read, how long the connection stays
/// open so the client can read the refusal.
const READ_ERROR_HOLD: Duration = Duration::from_secs(1);

// ------------------------------------------------------------------------------------------
// Configuration loaded at start: the client list and the preshared key.

/// What a listed client may do (Hecate's `permissions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Permissions {
    /// May upload.
    pub can_upload: bool,
    /// May download.
    pub can_download: bool,
    /// May list.
    pub can_list: bool,
    /// Largest archive (bytes); the server's limit when unset (the smaller one applies).
    pub max_file_size: Option<u64>,
    /// Most bytes the client's archives may hold; `mercury.max_total_storage` when unset.
    pub max_total_storage: Option<u64>,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            can_upload: true,
            can_download: true,
            can_list: true,
            max_file_size: None,
            max_total_storage: None,
        }
    }
}

/// One entry of the client list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// The name before `:` in the client's key.
    pub client_id: String,
    /// Argon2id PHC string (`enc-server hash-password`).
    pub key_hash: String,
    /// What the client may do.
    #[serde(default)]
    pub permissions: Permissions,
}

/// Mercury's run-time state.
pub struct Mercury {
    /// SHA-256 of the preshared key.
    psk: Option<[u8; 32]>,
    /// The client list by id.
    clients: HashMap<String, ClientEntry>,
}

/// What Mercury's handlers get: the server's state and Mercury's own.
#[derive(Clone)]
pub struct MercuryState {
    app: AppState,
    mercury: std::sync::Arc<Mercury>,
}

impl MercuryState {
    /// Mercury on the server's state.
    pub fn new(app: AppState, mercury: Mercury) -> Self {
        Self {
            app,
            mercury: std::sync::Arc::new(mercury),
        }
    }
}

impl Mercury {
    /// Reads the client list (if configured) and the preshared key; a bad list is an error
    /// naming the entry.
    pub fn load(config: &MercuryConfig) -> anyhow::Result<Self> {
        let mut clients = HashMap::new();
        if let Some(path) = &config.auth_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading mercury.auth_config {}", path.display()))?;
            let list: Vec<ClientEntry> = serde_json::from_str(&text)
                .with_context(|| format!("mercury.auth_config {}", path.display()))?;
            for c in list {
                anyhow::ensure!(
                    !c.client_id.is_empty()
                        && !c.client_id.contains(':')
                        && !c.client_id.chars().any(char::is_control),
                    "mercury.auth_config {}: client_id {:?} must be non-empty, without ':'",
                    path.display(),
                    c.client_id
                );
                let parsed = argon2::PasswordHash::new(&c.key_hash).map_err(|e| {
                    anyhow::anyhow!(
                        "mercury.auth_config {}: key_hash of {:?} is not a PHC hash ({e}); make one with `enc-server hash-password`",
                        path.display(),
                        c.client_id
                    )
                })?;
                anyhow::ensure!(
                    parsed.algorithm.as_str() == "argon2id",
                    "mercury.auth_config {}: key_hash of {:?} must be Argon2id",
                    path.display(),
                    c.client_id
                );
                let id = c.client_id.clone();
                anyhow::ensure!(
                    clients.insert(id.clone(), c).is_none(),
                    "mercury.auth_config {}: client_id {id:?} appears twice",
                    path.display()
                );
            }
        }
        Ok(Self {
            psk: config
                .preshared_key
                .as_ref()
                .map(|k| sha2::Sha256::digest(k.as_bytes()).into()),
            clients,
        })
    }
}

/// An Argon2id hash (crate defaults) of `password`, for the client list.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::PasswordHasher as _;
    let salt =
        argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

// ------------------------------------------------------------------------------------------
// Routing.

/// `/ws` on the main listener.
pub fn main_router<S>(state: MercuryState) -> axum::Router<S> {
    axum::Router::new()
        .route("/ws", axum::routing::get(ws))
        .with_state(state)
}

async fn ws(
    State(state): State<MercuryState>,
    peer: Option<axum::Extension<ClientAddr>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(u) => accept(state, u, peer.map(|p| p.0)),
        Err(_) => (
            StatusCode::UPGRADE_REQUIRED,
            [(axum::http::header::UPGRADE, "websocket")],
            "this is the Mercury WebSocket endpoint: connect with a WebSocket client\n",
        )
            .into_response(),
    }
}

/// The dedicated listener: the upgrade on any path, Hecate's health endpoints without one.
pub fn router(state: MercuryState) -> axum::Router {
    axum::Router::new()
        .route("/health", axum::routing::get(crate::http::health::health))
        .route("/livez", axum::routing::get(crate::http::health::livez))
        .route("/readyz", axum::routing::get(crate::http::health::readyz))
        .fallback(ws)
        .with_state(state)
}

impl axum::extract::FromRef<MercuryState> for AppState {
    fn from_ref(state: &MercuryState) -> AppState {
        state.app.clone()
    }
}

fn accept(hub: MercuryState, upgrade: WebSocketUpgrade, peer: Option<ClientAddr>) -> Response {
    let ip = peer.map(|p| p.0.ip().to_string()).unwrap_or_default();
    let MercuryState {
        app: state,
        mercury,
    } = hub;
    let client = state.keyed_hash("client", ip.as_bytes());
    upgrade
        .max_message_size(MAX_TEXT)
        .max_frame_size(MAX_TEXT)
        .on_upgrade(move |socket| async move {
            // Connections open now, on both listeners: a limit of this process's resources,
            // so it is counted per replica (the hourly upload allowance is shared through the
            // database). The gauge is what `/health` and `/metrics` report.
            let open = &state.metrics.mercury_connections;
            let n = open.inc() as usize + 1;
            let _slot = Slot(open);
            let max = state.config.mercury.max_connections;
            let mut conn = Conn {
                state: state.clone(),
                mercury,
                socket,
                client,
                dialect: None,
                who: None,
                upload: None,
            };
            if n > max {
                conn.refuse_busy(max).await;
            } else {
                conn.run().await;
            }
        })
}

/// Gives a connection slot back when the connection ends, however it ends.
struct Slot<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

// ------------------------------------------------------------------------------------------
// One connection.

/// Who is on the other end, and what they may do.
struct Principal {
    /// For the audit log and metrics: the user name, `client:<id>` or `psk`.
    who: String,
    /// The enc user behind a token.
    user: Option<UserRow>,
    /// The token's id (re-checked while the connection lasts).
    token_id: Option<String>,
    /// Whose archives.
    space: Space,
    can_upload: bool,
    can_download: bool,
    can_list: bool,
    /// Largest archive.
    max_file_size: u64,
    /// Most bytes the space may hold.
    space_limit: Option<u64>,
    /// The user's quota.
    quota: Option<u64>,
}

/// Whose archives a connection reaches: each credential has its own space.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Space {
    /// An enc user's, reached with a token of kind `mercury` (by user id).
    User(String),
    /// A client of the `auth.json` list's (by client id).
    Client(String),
    /// The preshared key's, one for everyone who holds it.
    Preshared,
}

impl std::fmt::Display for Space {
    /// The stored form: `user:<id>`, `client:<id>` or `psk`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Space::User(id) => f.write_str(&enc_store::mercury_user_space(id)),
            Space::Client(id) => write!(f, "client:{id}"),
            Space::Preshared => f.write_str("psk"),
        }
    }
}

impl Space {
    /// Whose hourly upload allowance an upload takes from: the space's, except that the
    /// preshared key's is counted per client address (everyone holding it shares one space).
    fn allowance(&self, client: &str) -> String {
        match self {
            Space::Preshared => format!("psk:{client}"),
            other => other.to_string(),
        }
    }
}

/// An upload in progress.
struct Upload {
    name: String,
    blob_key: String,
    /// The bytes on their way, held to the size, space and quota limits.
    ingest: Ingest,
    declared: Option<u64>,
    /// Text dialect: `DATA` was sent.
    receiving: bool,
}

/// A refusal, sent in the connection's dialect.
struct Fail {
    code: Code,
    message: String,
    /// Close the connection after saying so.
    close: bool,
    /// JSON dialect: answer `UploadRejected` rather than `Error`.
    reject: bool,
}

impl Fail {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            close: false,
            reject: false,
        }
    }
    fn closing(mut self) -> Self {
        self.close = true;
        self
    }
    fn rejecting(mut self) -> Self {
        self.reject = true;
        self
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "mercury storage failure");
        if e.is_full() {
            return Fail::new(
                Code::ServerError,
                "the server's storage is full: nothing was stored; try again once its admin has made room",
            )
            .closing();
        }
        if e.is_unavailable() {
            return Fail::new(Code::ServerError, crate::http::error::STORAGE_UNAVAILABLE).closing();
        }
        Fail::new(Code::ServerError, "storage error").closing()
    }
}

/// Why a connection's loop stops.
enum Stop {
    /// Say this, then carry on (or close if it says so).
    Fail(Fail),
    /// The peer is gone (a send failed or timed out).
    Gone,
}

impl From<Fail> for Stop {
    fn from(f: Fail) -> Self {
        Stop::Fail(f)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Fail(e.into())
    }
}

type Step = Result<(), Stop>;

struct Conn {
    state: AppState,
    /// The client list and the preshared key.
    mercury: std::sync::Arc<Mercury>,
    socket: WebSocket,
    /// Keyed hash of the client's address.
    client: String,
    dialect: Option<Dialect>,
    who: Option<Principal>,
    upload: Option<Upload>,
}

impl Conn {
    fn config(&self) -> &MercuryConfig {
        &self.state.config.mercury
    }

    async fn run(&mut self) {
        let idle = self.config().idle_timeout;
        // Until authenticated, a fixed deadline from the opening that nothing extends.
        let auth_deadline = Instant::now() + self.config().auth_timeout;
        let mut idle_deadline = Instant::now() + idle;
        let mut next_check = Instant::now() + REVALIDATE;
        loop {
            let authenticated = self.who.is_some();
            let mut wake = if authenticated {
                idle_deadline
            } else {
                idle_deadline.min(auth_deadline)
            };
            if self.token_id().is_some() {
                wake = wake.min(next_check);
            }
            let msg = match tokio::time::timeout_at(wake, self.socket.recv()).await {
                Err(_) => {
                    let now = Instant::now();
                    if self.token_id().is_some() && now >= next_check && now < idle_deadline {
                        next_check = now + REVALIDATE;
                        if self.revalidate().await.is_err() {
                            break;
                        }
                        continue;
                    }
                    let message = if !authenticated && now >= auth_deadline {
                        format!(
                            "not authenticated within {} s; closing the connection",
                            self.config().auth_timeout.as_secs()
                        )
                    } else {
                        format!("idle for {} s; closing the connection", idle.as_secs())
                    };
                    let f = Fail::new(Code::InvalidRequest, message).closing();
                    let _ = self.fail(f).await;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    self.on_read_error(e).await;
                    break;
                }
                Ok(Some(Ok(m))) => m,
            };
            if matches!(msg, Message::Close(_)) {
                break;
            }
            idle_deadline = Instant::now() + idle;
            if self.token_id().is_some() && Instant::now() >= next_check {
                next_check = Instant::now() + REVALIDATE;
                if self.revalidate().await.is_err() {
                    break;
                }
            }
            // An enc token's archives are its user's: row-level security binds the work to
            // them (PostgreSQL). Client-list and preshared-key spaces belong to no enc user.
            let step = match self.tenant() {
                Some(user_id) => enc_store::tenant::scope(user_id, self.on_message(msg)).await,
                None => self.on_message(msg).await,
            };
            match step {
                Ok(()) => {}
                Err(Stop::Gone) => break,
                Err(Stop::Fail(f)) => {
                    if f.close {
                        self.abort_upload().await;
                    }
                    match self.fail(f).await {
                        Ok(true) => {}
                        Ok(false) | Err(Stop::Gone | Stop::Fail(_)) => break,
                    }
                }
            }
        }
        self.abort_upload().await;
    }

    /// The access token behind this connection, if it authenticated with one.
    fn token_id(&self) -> Option<&str> {
        self.who.as_ref()?.token_id.as_deref()
    }

    /// An enc token's connection lives only as long as the token and its user: a revoked or
    /// expired token, or a user removed or suspended, ends it with the dialect's error.
    /// `Err` when the connection was closed.
    async fn revalidate(&mut self) -> Result<(), ()> {
        let Some(id) = self.token_id().map(str::to_owned) else {
            return Ok(());
        };
        let state = self.state.clone();
        let valid = match self.tenant() {
            Some(user_id) => {
                enc_store::tenant::scope(
                    user_id,
                    crate::rules::credentials::still_valid(&*state.meta, &id),
                )
                .await
            }
            None => crate::rules::credentials::still_valid(&*state.meta, &id).await,
        };
        if valid {
            return Ok(());
        }
        self.abort_upload().await;
        let f = Fail::new(
            Code::AuthFailed,
            "the token was revoked or has expired; closing the connection",
        )
        .closing();
        let _ = self.fail(f).await;
        Err(())
    }

    /// A frame the WebSocket layer refused (over [`MAX_TEXT`], or broken framing): say why
    /// and close, rather than drop the connection silently. The rest of an oversized frame is
    /// never read (it could be of any length), so the connection stays open a moment for the
    /// client to read the refusal before it is dropped.
    async fn on_read_error(&mut self, e: axum::Error) {
        // tungstenite's capacity error ("Space limit exceeded: Message too long: …").
        let mut too_big = false;
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            too_big |= c.to_string().contains("Space limit exceeded");
            cause = c.source();
        }
        let f = if too_big {
            Fail::new(
                Code::FileTooLarge,
                format!("frame too large: the limit is {MAX_TEXT} bytes; closing the connection"),
            )
        } else {
            Fail::new(
                Code::InvalidRequest,
                format!("broken WebSocket frame ({e}); closing the connection"),
            )
        };
        self.abort_upload().await;
        let code = if too_big { 1009 } else { 1002 };
        if self.send_refusal(&f).await.is_ok() {
            let frame = CloseFrame {
                code,
                reason: "".into(),
            };
            if self.send(Message::Close(Some(frame))).await.is_ok() {
                tokio::time::sleep(READ_ERROR_HOLD).await;
            }
        }
    }

    fn tenant(&self) -> Option<String> {
        self.who.as_ref()?.user.as_ref().map(|u| u.id.clone())
    }

    async fn on_message(&mut self, msg: Message) -> Step {
        match msg {
            Message::Text(t) => self.on_text(t.as_str()).await,
            Message::Binary(b) => self.on_binary(b).await,
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => Ok(()),
        }
    }

    /// Over the connection limit: answer the first frame in its dialect, then close.
    async fn refuse_busy(&mut self, max: usize) {
        if let Ok(Some(Ok(first))) = tokio::time::timeout(REFUSAL_WAIT, self.socket.recv()).await {
            if let Message::Text(t) = &first {
                self.dialect = Some(detect(t.as_str()));
            }
            let f = Fail::new(
                Code::RateLimited,
                format!("too many connections (limit {max}); try again later"),
            )
            .closing();
            let _ = self.fail(f).await;
        }
    }

    /// Sends a refusal; `Ok(false)` if the connection was closed because of it.
    async fn fail(&mut self, f: Fail) -> Result<bool, Stop> {
        self.send_refusal(&f).await?;
        if f.close {
            let code = match f.code {
                Code::RateLimited => 1013,
                Code::FileTooLarge => 1009,
                Code::ServerError => 1011,
                _ => 1008,
            };
            self.close(code).await;
            return Ok(false);
        }
        Ok(true)
    }

    /// Says what went wrong, in the connection's dialect.
    async fn send_refusal(&mut self, f: &Fail) -> Step {
        match self.dialect.unwrap_or(Dialect::Text) {
            Dialect::Text => self.send_text(format!("ERROR {}", f.message)).await,
            Dialect::Json if f.reject => {
                self.send_json(&Out::UploadRejected {
                    reason: f.message.clone(),
                })
                .await
            }
            Dialect::Json => {
                self.send_json(&Out::Error {
                    code: f.code,
                    message: f.message.clone(),
                })
                .await
            }
        }
    }

    /// Sends a close frame with `code`, then lingers for the client's.
    async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        if self.send(Message::Close(Some(frame))).await.is_ok() {
            self.linger().await;
        }
    }

    /// The closing handshake: reads until the client answers our close frame, discarding data
    /// frames, for at most [`LINGER`] and [`LINGER_BYTES`].
    async fn linger(&mut self) {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut discarded = 0usize;
        while discarded <= LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.socket.recv()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None | Some(Err(_))) | Err(_) => break,
                Ok(Some(Ok(Message::Binary(b)))) => discarded += b.len(),
                Ok(Some(Ok(Message::Text(t)))) => discarded += t.len(),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    async fn send(&mut self, msg: Message) -> Step {
        let idle = self.config().idle_timeout;
        match tokio::time::timeout(idle, self.socket.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop::Gone),
        }
    }

    async fn send_text(&mut self, text: String) -> Step {
        self.send(Message::Text(text.into())).await
    }

    async fn send_json(&mut self, out: &Out) -> Step {
        let text = serde_json::to_string(out).expect("serialisable");
        self.send_text(text).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_both_ways() {
        let data: Vec<u8> = (0..=255).chain([0, 9, 10, 99, 100]).collect();
        let json = data_chunk_json(&data, true);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["type"], "DataChunk");
        assert_eq!(v["is_final"], true);
        let raw = serde_json::to_string(&v["data"]).unwrap();
        assert_eq!(parse_bytes(&raw).unwrap(), data);
        assert_eq!(parse_bytes("[ 1, 2 ,3 ]").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_bytes("[]").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_bytes("\"AQID\"").unwrap(), vec![1, 2, 3]);
        for bad in [
            "[256]", "[1,]", "[,1]", "[1 2]", "[-1]", "[1.5]", "{}", "[0001]", "[\"1\"]",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("backup.hecate").is_ok());
        assert!(check_name("with space.tar.hecate").is_ok());
        for bad in [
            "",
            "a/b",
            "a\\b",
            "..",
            "a..b",
            "tab\there",
            &"x".repeat(256),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        let c = candidates("backup.hecate", 1700000000);
        assert_eq!(c[0], "backup.hecate");
        assert_eq!(c[1], "backup-1700000000.hecate");
        assert!(c[2].starts_with("backup-") && c[2].ends_with(".hecate") && c[2].len() == 50);
        // Found by the fuzz target `mercury_frame`: an extension of nearly 255 bytes made
        // the second and third names longer than any name may be.
        for long_ext in [
            format!("a.{}", "e".repeat(250)),
            format!("baup-202,,.hecate{}", "J".repeat(230)),
            format!(".{}", "x".repeat(254)),
        ] {
            assert!(check_name(&long_ext).is_ok());
            for n in candidates(&long_ext, 1_700_000_000) {
                assert!(
                    check_name(&n).is_ok(),
                    "{long_ext:?} may be stored as {n:?}"
                );
            }
        }
        let long = format!("{}.hecate", "é".repeat(120));
        for n in candidates(&long, 1) {
            assert!(n.len() <= 255 && check_name(&n).is_ok() && n.ends_with(".hecate"));
        }
        assert_eq!(candidates("noext", 5)[1], "noext-5");
        assert_eq!(candidates(".hidden", 5)[1], ".hidden-5");
    }
}
