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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context as _;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use enc_store::{BlobWriter, MercuryCommit, MercuryReservation, StoreError, UserRow};
use futures::StreamExt as _;
use serde::Deserialize;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::config::{DeclaredSize, MercuryConfig};
use crate::serve::ClientAddr;
use crate::state::AppState;

mod wire;
use wire::*;

/// Largest binary frame accepted, and largest chunk sent: 1 MiB.
pub const CHUNK: usize = 1 << 20;

/// Largest text frame: a JSON `DataChunk` of 1 MiB written as numbers (up to four characters
/// a byte) plus room for the envelope.
const MAX_TEXT: usize = 4 * CHUNK + (64 << 10);

/// An upload's name and blob stay reserved this long; after a crash the collector frees them.
const RESERVATION_SECS: i64 = 24 * 3600;

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
    /// Connections open now (both listeners). A limit of this process's resources, so it is
    /// counted per replica; the hourly upload allowance is shared through the database.
    active: AtomicUsize,
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
            active: AtomicUsize::new(0),
        })
    }

    /// Connections open now.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
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
pub async fn ws(
    State(state): State<AppState>,
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
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/health", axum::routing::get(crate::health))
        .route("/livez", axum::routing::get(crate::livez))
        .route("/readyz", axum::routing::get(crate::readyz))
        .fallback(ws)
        .with_state(state)
}

fn accept(state: AppState, upgrade: WebSocketUpgrade, peer: Option<ClientAddr>) -> Response {
    let ip = peer.map(|p| p.0.ip().to_string()).unwrap_or_default();
    let client = state.keyed_hash("client", ip.as_bytes());
    upgrade
        .max_message_size(MAX_TEXT)
        .max_frame_size(MAX_TEXT)
        .on_upgrade(move |socket| async move {
            let mercury = &state.mercury;
            let n = mercury.active.fetch_add(1, Ordering::AcqRel) + 1;
            let _slot = Slot(&state);
            let max = state.config.mercury.max_connections;
            let mut conn = Conn {
                state: state.clone(),
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
struct Slot<'a>(&'a AppState);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.mercury.active.fetch_sub(1, Ordering::AcqRel);
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
    space: String,
    can_upload: bool,
    can_download: bool,
    can_list: bool,
    /// Largest archive.
    max_file_size: u64,
    /// Most bytes the space may hold.
    space_limit: Option<u64>,
    /// The user's quota.
    quota: Option<u64>,
    /// Key of the hourly upload allowance.
    rate_key: String,
}

/// An upload in progress.
struct Upload {
    name: String,
    blob_key: String,
    writer: Box<dyn BlobWriter>,
    declared: Option<u64>,
    received: u64,
    /// Text dialect: `DATA` was sent.
    receiving: bool,
    /// Bytes already counted against the space limit / the user's quota when it started.
    space_used: u64,
    user_used: u64,
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
                enc_store::tenant::scope(user_id, crate::tokens::still_valid(&state, &id)).await
            }
            None => crate::tokens::still_valid(&state, &id).await,
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

    // ---- dispatch

    async fn on_text(&mut self, text: &str) -> Step {
        let dialect = *self.dialect.get_or_insert_with(|| detect(text));
        match dialect {
            Dialect::Text => self.on_command(text.trim_end_matches(['\r', '\n'])).await,
            Dialect::Json => self.on_json(text).await,
        }
    }

    async fn on_binary(&mut self, data: Bytes) -> Step {
        let dialect = *self.dialect.get_or_insert(Dialect::Text);
        if dialect == Dialect::Json {
            return Err(Fail::new(
                Code::InvalidRequest,
                "binary frames are not part of the JSON dialect; send DataChunk messages",
            )
            .into());
        }
        let receiving = self.upload.as_ref().map(|u| u.receiving);
        match receiving {
            Some(true) => self.write_chunk(data).await,
            Some(false) => Err(Fail::new(
                Code::InvalidRequest,
                "binary frame before DATA; send DATA first",
            )
            .into()),
            None => Err(Fail::new(
                Code::InvalidRequest,
                "binary frame before DATA: no upload in progress (send NAME, then DATA)",
            )
            .into()),
        }
    }

    fn principal(&self) -> Result<&Principal, Fail> {
        self.who
            .as_ref()
            .ok_or_else(|| Fail::new(Code::AuthRequired, "Authentication required"))
    }

    /// Text dialect.
    async fn on_command(&mut self, line: &str) -> Step {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, Some(a)),
            None => (line, None),
        };
        match (verb, arg) {
            ("PING", None) => self.send_text("PONG".into()).await,
            ("AUTH", Some(key)) => {
                let key = key.to_string();
                self.authenticate(&key).await?;
                self.send_text("OK".into()).await
            }
            ("NAME", Some(name)) => {
                let accepted = self.start_upload(name, None).await?;
                self.send_text(format!("ACCEPT {accepted}")).await
            }
            ("DATA", None) => {
                self.principal()?;
                match &mut self.upload {
                    Some(u) if !u.receiving => {
                        u.receiving = true;
                        Ok(())
                    }
                    Some(_) => Err(Fail::new(Code::InvalidRequest, "DATA was already sent").into()),
                    None => Err(Fail::new(
                        Code::InvalidRequest,
                        "No active upload: send NAME first",
                    )
                    .into()),
                }
            }
            ("END", None) => {
                self.principal()?;
                let receiving = self.upload.as_ref().is_some_and(|u| u.receiving);
                match receiving {
                    true => {
                        let total = self.finish_upload().await?;
                        self.send_text(format!("OK {total}")).await
                    }
                    false => Err(Fail::new(
                        Code::InvalidRequest,
                        "No active upload: send NAME and DATA first",
                    )
                    .into()),
                }
            }
            ("LIST", None) => {
                let names: Vec<String> = self.list().await?.into_iter().map(|f| f.name).collect();
                for n in names {
                    self.send_text(n).await?;
                }
                self.send_text("END".into()).await
            }
            ("GET", Some(name)) => {
                let name = name.to_string();
                self.download(&name).await
            }
            _ => {
                let shown: String = verb.chars().take(32).collect();
                Err(Fail::new(
                    Code::InvalidRequest,
                    format!(
                        "Invalid command {shown:?}: commands are AUTH, NAME, DATA, END, LIST, GET, PING"
                    ),
                )
                .into())
            }
        }
    }

    /// JSON dialect.
    async fn on_json(&mut self, text: &str) -> Step {
        let msg: In<'_> = serde_json::from_str(text)
            .map_err(|e| Fail::new(Code::InvalidRequest, format!("Invalid message format: {e}")))?;
        let missing =
            |field: &str| Fail::new(Code::InvalidRequest, format!("{} needs {field}", msg.kind));
        match msg.kind.as_ref() {
            "Ping" => self.send_json(&Out::Pong).await,
            "Auth" => {
                let key = msg.key.clone().ok_or_else(|| missing("key"))?;
                let who = self.authenticate(&key).await?;
                self.send_json(&Out::AuthResult {
                    success: true,
                    message: Some(format!("authenticated as {who}")),
                    user_id: Some(who),
                })
                .await
            }
            "UploadRequest" => {
                let name = msg.name.as_deref().ok_or_else(|| missing("name"))?;
                let size = msg.size.ok_or_else(|| missing("size"))?;
                let accepted = self.start_upload(name, Some(size)).await?;
                self.send_json(&Out::UploadAccepted { name: accepted })
                    .await
            }
            "DataChunk" => {
                self.principal()?;
                let raw = msg.data.ok_or_else(|| missing("data"))?;
                let is_final = msg.is_final.ok_or_else(|| missing("is_final"))?;
                if self.upload.is_none() {
                    return Err(Fail::new(
                        Code::InvalidRequest,
                        "No upload in progress: send UploadRequest first",
                    )
                    .into());
                }
                let data = parse_bytes(raw.get())
                    .map_err(|m| Fail::new(Code::InvalidRequest, m).closing())?;
                let empty = data.is_empty();
                if !empty {
                    self.write_chunk(Bytes::from(data)).await?;
                }
                let received = self.upload.as_ref().map_or(0, |u| u.received);
                // Hecate's client reads ChunkReceived after every chunk with data, and only
                // UploadComplete after an empty final one.
                if !empty || !is_final {
                    self.send_json(&Out::ChunkReceived {
                        bytes_received: received,
                    })
                    .await?;
                }
                if is_final {
                    let total = self.finish_upload().await?;
                    self.send_json(&Out::UploadComplete { total_bytes: total })
                        .await?;
                }
                Ok(())
            }
            "ListRequest" => {
                let files = self
                    .list()
                    .await?
                    .into_iter()
                    .map(|f| FileInfo {
                        name: f.name,
                        size: f.size.max(0) as u64,
                        created: humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + Duration::from_secs(f.created.max(0) as u64),
                        )
                        .to_string(),
                    })
                    .collect();
                self.send_json(&Out::FileList { files }).await
            }
            "GetRequest" => {
                let name = msg.name.clone().ok_or_else(|| missing("name"))?;
                self.download(&name).await
            }
            other => {
                let shown: String = other.chars().take(32).collect();
                Err(Fail::new(
                    Code::InvalidRequest,
                    format!(
                        "unsupported message type {shown:?}: types are Auth, UploadRequest, DataChunk, ListRequest, GetRequest, Ping"
                    ),
                )
                .into())
            }
        }
    }

    // ---- authentication

    /// Checks a key; on success remembers the principal and returns its name. A wrong key
    /// closes the connection (as Hecate documents).
    async fn authenticate(&mut self, key: &str) -> Result<String, Stop> {
        if self.who.is_some() {
            return Err(Fail::new(Code::InvalidRequest, "already authenticated").into());
        }
        let state = self.state.clone();
        let keys = [format!("mercury-ip:{}", self.client)];
        if let Err(crate::error::ApiError::TooManyAttempts(secs)) =
            crate::auth::check_throttle(&state, &keys).await
        {
            return Err(self
                .auth_failed(
                    Code::RateLimited,
                    format!("too many failed attempts; retry in {secs} s"),
                )
                .await);
        }
        let principal = if key.starts_with("enc_") {
            match crate::tokens::verify(&state, None, key, "mercury", &self.client).await {
                Ok((user, token)) => Some(self.user_principal(user, &token)),
                Err(crate::tokens::Refusal::Throttled(secs)) => {
                    return Err(self
                        .auth_failed(
                            Code::RateLimited,
                            format!("too many failed attempts; retry in {secs} s"),
                        )
                        .await);
                }
                // verify counted and audited the failure.
                Err(crate::tokens::Refusal::Denied) => {
                    return Err(self
                        .auth_failed(Code::AuthFailed, "Invalid authentication".into())
                        .await);
                }
            }
        } else {
            key_principal(&state, &self.client, key).await
        };
        let Some(p) = principal else {
            let t = crate::now();
            for k in &keys {
                if let Err(e) = state.meta.throttle_fail(k, t, crate::auth::backoff).await {
                    tracing::warn!(error = %e, "counting a failed mercury attempt failed");
                }
            }
            state
                .audit("-", None, "mercury.auth", "key", "denied", &self.client)
                .await;
            return Err(self
                .auth_failed(Code::AuthFailed, "Invalid authentication".into())
                .await);
        };
        if p.user.is_none() {
            state
                .audit(&p.who, None, "mercury.auth", &p.space, "ok", &self.client)
                .await;
        }
        let who = p.who.clone();
        self.who = Some(p);
        Ok(who)
    }

    /// The refusal of a key: `AuthResult{success:false}` in JSON, `ERROR …` in text; closes.
    async fn auth_failed(&mut self, code: Code, message: String) -> Stop {
        if self.dialect == Some(Dialect::Json) && matches!(code, Code::AuthFailed) {
            let _ = self
                .send_json(&Out::AuthResult {
                    success: false,
                    message: Some(message),
                    user_id: None,
                })
                .await;
            self.close(1008).await;
            return Stop::Gone;
        }
        Stop::Fail(Fail::new(code, message).closing())
    }

    fn user_principal(&self, user: UserRow, token: &enc_store::AccessTokenRow) -> Principal {
        let quota = self.state.policy.quota_of(&user);
        let mode = token.mode.as_str();
        Principal {
            token_id: Some(token.id.clone()),
            who: user.name.clone(),
            space: format!("user:{}", user.id),
            rate_key: format!("user:{}", user.id),
            can_upload: mode != "read-only",
            can_download: true,
            can_list: true,
            max_file_size: self.config().max_file_size,
            space_limit: None,
            quota,
            user: Some(user),
        }
    }

    // ---- uploads

    /// Checks an upload request, reserves a free name and opens the blob writer.
    async fn start_upload(&mut self, name: &str, declared: Option<u64>) -> Result<String, Stop> {
        let p = self.principal()?;
        if !p.can_upload {
            return Err(Fail::new(
                Code::AuthFailed,
                "Permission denied: this key may not upload",
            )
            .rejecting()
            .into());
        }
        if self.upload.is_some() {
            return Err(Fail::new(Code::InvalidRequest, "an upload is already in progress").into());
        }
        check_name(name).map_err(|m| Fail::new(Code::InvalidRequest, m).rejecting())?;
        let state = self.state.clone();
        let (space, rate_key, max, limit, quota) = (
            p.space.clone(),
            p.rate_key.clone(),
            p.max_file_size,
            p.space_limit,
            p.quota,
        );
        let user_id = p.user.as_ref().map(|u| u.id.clone());
        let who = p.who.clone();
        if let Some(d) = declared
            && d > max
        {
            return Err(Fail::new(
                Code::FileTooLarge,
                format!("File too large: {d} bytes declared, the limit is {max}"),
            )
            .into());
        }
        let space_used = match limit {
            Some(_) => state.meta.mercury_usage(&space).await?.max(0) as u64,
            None => 0,
        };
        let user_used = match (&user_id, quota) {
            (Some(id), Some(_)) => state
                .meta
                .user_by_id(id)
                .await?
                .map_or(0, |u| u.usage_bytes.max(0) as u64),
            _ => 0,
        };
        let incoming = declared.unwrap_or(0);
        if limit.is_some_and(|l| space_used + incoming > l)
            || quota.is_some_and(|q| user_used + incoming > q)
        {
            state
                .audit(
                    &who,
                    user_id.as_deref(),
                    "mercury.refused",
                    name,
                    "quota exceeded",
                    &self.client,
                )
                .await;
            return Err(Fail::new(Code::QuotaExceeded, "Quota exceeded").into());
        }
        let per_hour = self.config().uploads_per_hour;
        // Counted in the database, so replicas share one allowance.
        if !state
            .meta
            .rate_take(
                &format!("mercury.upload:{rate_key}"),
                crate::now(),
                3600,
                i64::from(per_hour),
            )
            .await?
        {
            return Err(Fail::new(
                Code::RateLimited,
                format!("Upload rate limit exceeded ({per_hour} per hour)"),
            )
            .into());
        }
        let now = crate::now();
        let blob_key = format!("mercury/{}", uuid::Uuid::new_v4());
        let reserved = state
            .meta
            .mercury_reserve(MercuryReservation {
                space: space.clone(),
                candidates: candidates(name, now),
                blob_key: blob_key.clone(),
                user_id,
                now,
                until: now + RESERVATION_SECS,
            })
            .await?;
        let Some(accepted) = reserved else {
            return Err(Fail::new(Code::ServerError, "no free name; try again").into());
        };
        let writer = match state.blobs.writer(&blob_key).await {
            Ok(w) => w,
            Err(e) => {
                let _ = state.meta.mercury_abort(&space, &accepted).await;
                return Err(e.into());
            }
        };
        self.upload = Some(Upload {
            name: accepted.clone(),
            blob_key,
            writer,
            declared,
            received: 0,
            receiving: false,
            space_used,
            user_used,
        });
        Ok(accepted)
    }

    /// Appends one chunk, enforcing every limit before the bytes are written.
    async fn write_chunk(&mut self, data: Bytes) -> Step {
        if data.len() > CHUNK {
            return Err(Fail::new(
                Code::InvalidRequest,
                format!("chunk of {} bytes: the limit is 1 MiB", data.len()),
            )
            .closing()
            .into());
        }
        let exact = self.config().declared_size == DeclaredSize::Exact;
        let p = self.principal()?;
        let (max, limit, quota) = (p.max_file_size, p.space_limit, p.quota);
        let Some(u) = self.upload.as_mut() else {
            return Err(Fail::new(Code::InvalidRequest, "No upload in progress").into());
        };
        let received = u.received + data.len() as u64;
        if received > max {
            return Err(Fail::new(
                Code::FileTooLarge,
                format!("File too large: more than {max} bytes; nothing stored"),
            )
            .closing()
            .into());
        }
        if exact && u.declared.is_some_and(|d| received > d) {
            return Err(Fail::new(
                Code::InvalidRequest,
                format!(
                    "more bytes than the {} declared; nothing stored",
                    u.declared.unwrap_or(0)
                ),
            )
            .closing()
            .into());
        }
        if limit.is_some_and(|l| u.space_used + received > l)
            || quota.is_some_and(|q| u.user_used + received > q)
        {
            return Err(
                Fail::new(Code::QuotaExceeded, "Quota exceeded; nothing stored")
                    .closing()
                    .into(),
            );
        }
        u.received = received;
        u.writer.write(data).await.map_err(Fail::from)?;
        Ok(())
    }

    /// Makes the upload durable and visible; returns its size.
    async fn finish_upload(&mut self) -> Result<u64, Stop> {
        let exact = self.config().declared_size == DeclaredSize::Exact;
        let Some(u) = self.upload.take() else {
            return Err(Fail::new(Code::InvalidRequest, "No upload in progress").into());
        };
        let p = self.principal()?;
        let (space, who) = (p.space.clone(), p.who.clone());
        let user = p.user.as_ref().map(|user| {
            (
                user.id.clone(),
                p.quota.map(|q| q.min(i64::MAX as u64) as i64),
            )
        });
        let limit = p.space_limit;
        let state = self.state.clone();
        if exact && u.declared.is_some_and(|d| d != u.received) {
            let declared = u.declared.unwrap_or(0);
            let received = u.received;
            self.upload = Some(u);
            self.abort_upload().await;
            return Err(Fail::new(
                Code::InvalidRequest,
                format!("declared {declared} bytes but received {received}; nothing stored"),
            )
            .into());
        }
        let (name, blob_key, size) = (u.name.clone(), u.blob_key.clone(), u.received);
        if let Err(e) = u.writer.finish().await {
            let _ = state.meta.mercury_abort(&space, &name).await;
            crate::gc::kick(&state);
            return Err(e.into());
        }
        let committed = state
            .meta
            .mercury_commit(MercuryCommit {
                space: space.clone(),
                name: name.clone(),
                blob_key,
                size: size as i64,
                user: user.clone(),
                space_limit: limit.map(|l| l.min(i64::MAX as u64) as i64),
                now: crate::now(),
            })
            .await;
        let user_id = user.map(|u| u.0);
        match committed {
            Ok(()) => {
                state
                    .audit(
                        &who,
                        user_id.as_deref(),
                        "mercury.upload",
                        &name,
                        "ok",
                        &self.client,
                    )
                    .await;
                state
                    .metrics
                    .blob(&who, "mercury", "archive", "write", size);
                Ok(size)
            }
            Err(e) => {
                let _ = state.meta.mercury_abort(&space, &name).await;
                crate::gc::kick(&state);
                match e {
                    StoreError::QuotaExceeded => {
                        state
                            .audit(
                                &who,
                                user_id.as_deref(),
                                "mercury.refused",
                                &name,
                                "quota exceeded",
                                &self.client,
                            )
                            .await;
                        Err(Fail::new(Code::QuotaExceeded, "Quota exceeded; nothing stored").into())
                    }
                    other => Err(other.into()),
                }
            }
        }
    }

    /// Drops an unfinished upload: nothing of it stays.
    async fn abort_upload(&mut self) {
        let Some(u) = self.upload.take() else {
            return;
        };
        let _ = u.writer.abort().await;
        if let Some(p) = &self.who
            && let Err(e) = self.state.meta.mercury_abort(&p.space, &u.name).await
        {
            tracing::warn!(error = %e, "dropping a mercury reservation failed; it expires later");
        }
        crate::gc::kick(&self.state);
    }

    // ---- listing and downloads

    async fn list(&mut self) -> Result<Vec<enc_store::MercuryFileRow>, Stop> {
        let p = self.principal()?;
        if !p.can_list {
            return Err(
                Fail::new(Code::AuthFailed, "Permission denied: this key may not list").into(),
            );
        }
        let space = p.space.clone();
        Ok(self.state.meta.mercury_files(&space).await?)
    }

    /// Streams every byte of an archive in chunks of at most 1 MiB.
    async fn download(&mut self, name: &str) -> Step {
        let p = self.principal()?;
        if !p.can_download {
            return Err(Fail::new(
                Code::AuthFailed,
                "Permission denied: this key may not download",
            )
            .into());
        }
        check_name(name).map_err(|m| Fail::new(Code::InvalidRequest, m))?;
        let (space, who) = (p.space.clone(), p.who.clone());
        let state = self.state.clone();
        let Some(file) = state.meta.mercury_file(&space, name).await? else {
            return Err(Fail::new(Code::FileNotFound, format!("File not found: {name}")).into());
        };
        let size = file.size.max(0) as u64;
        let mut stream = state.blobs.read(&file.blob_key).await.map_err(Fail::from)?;
        let json = self.dialect == Some(Dialect::Json);
        if !json {
            self.send_text("DATA".into()).await?;
        } else if size == 0 {
            return self.send_text(data_chunk_json(&[], true)).await;
        }
        let mut sent = 0u64;
        while let Some(piece) = stream.next().await {
            let mut piece = piece.map_err(Fail::from)?;
            while !piece.is_empty() {
                let chunk = piece.split_to(piece.len().min(CHUNK));
                sent += chunk.len() as u64;
                if sent > size {
                    break;
                }
                if json {
                    self.send_text(data_chunk_json(&chunk, sent == size))
                        .await?;
                } else {
                    self.send(Message::Binary(chunk)).await?;
                }
            }
        }
        if sent != size {
            tracing::error!(name, sent, size, "mercury blob has the wrong size");
            return Err(Fail::new(Code::ServerError, "stored archive is damaged")
                .closing()
                .into());
        }
        state.metrics.blob(&who, "mercury", "archive", "read", size);
        if !json {
            self.send_text("END".into()).await?;
        }
        Ok(())
    }
}

/// The client list, then the preshared key; both compared in constant time.
async fn key_principal(state: &AppState, client: &str, key: &str) -> Option<Principal> {
    let mercury = &state.mercury;
    let config = &state.config.mercury;
    let psk_ok = mercury.psk.is_some_and(|want| {
        let got: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
        bool::from(got.ct_eq(&want))
    });
    let mut listed = None;
    // A listed client's key is `id:password`; a key without ':' cannot be one, so it costs no
    // Argon2 run (an unknown id still does, against the dummy hash).
    if !mercury.clients.is_empty()
        && let Some((id, secret)) = key.split_once(':')
    {
        let entry = mercury.clients.get(id);
        let hash = entry.map_or(state.dummy_hash.clone(), |e| e.key_hash.clone());
        let secret = secret.to_string();
        let ok = {
            let _permit = state.argon_slots.acquire().await.ok()?;
            tokio::task::spawn_blocking(move || {
                use argon2::PasswordVerifier as _;
                argon2::PasswordHash::new(&hash).is_ok_and(|h| {
                    argon2::Argon2::default()
                        .verify_password(secret.as_bytes(), &h)
                        .is_ok()
                })
            })
            .await
            .unwrap_or(false)
        };
        if ok {
            listed = entry;
        }
    }
    if let Some(c) = listed {
        let p = &c.permissions;
        return Some(Principal {
            token_id: None,
            who: format!("client:{}", c.client_id),
            user: None,
            space: format!("client:{}", c.client_id),
            rate_key: format!("client:{}", c.client_id),
            can_upload: p.can_upload,
            can_download: p.can_download,
            can_list: p.can_list,
            max_file_size: p
                .max_file_size
                .map_or(config.max_file_size, |m| m.min(config.max_file_size)),
            space_limit: p.max_total_storage.or(config.max_total_storage),
            quota: None,
        });
    }
    psk_ok.then(|| Principal {
        token_id: None,
        who: "psk".into(),
        user: None,
        space: "psk".into(),
        rate_key: format!("psk:{}", client),
        can_upload: true,
        can_download: true,
        can_list: true,
        max_file_size: config.max_file_size,
        space_limit: config.max_total_storage,
        quota: None,
    })
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
        let long = format!("{}.hecate", "é".repeat(120));
        for n in candidates(&long, 1) {
            assert!(n.len() <= 255 && check_name(&n).is_ok() && n.ends_with(".hecate"));
        }
        assert_eq!(candidates("noext", 5)[1], "noext-5");
        assert_eq!(candidates(".hidden", 5)[1], ".hidden-5");
    }
}
