//! The HTTP client of the `/v1` API: pinned TLS, bearer token, one error mapping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use enc_proto::ErrorBody;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ClientError, Result};

/// A connection to one server.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: Client,
    /// Async client for large transfers (big chunks instead of blocking reqwest's 8 KiB).
    bulk: reqwest::Client,
    token: Option<String>,
    pinned: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The whole cause chain of an error, for messages.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// What went wrong reaching `server`, in words a person can act on; the library's cause
/// chain only when nothing better is known.
pub(crate) fn transport_detail(server: &str, e: &reqwest::Error) -> String {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let https = server.starts_with("https://");
    if lower.contains("connection refused") {
        "connection refused: is enc-server running there, on that port? (check the URL)".into()
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        "the host name does not resolve: check the server URL".into()
    } else if e.is_timeout() || lower.contains("timed out") {
        "no answer in time: check the address, the port and any firewall in between".into()
    } else if https
        && (lower.contains("invalidcontenttype")
            || lower.contains("corrupt message")
            || lower.contains("wrong version number"))
    {
        "it does not speak TLS on that port: if the server runs with --insecure-http (behind a TLS proxy), use http:// or the proxy's URL".into()
    } else if !https
        && (lower.contains("invalid http version")
            || lower.contains("connection closed before message completed")
            || lower.contains("connection reset"))
    {
        "it does not answer plain HTTP: enc-server serves HTTPS by default, use https://".into()
    } else if lower.contains("connection reset") || lower.contains("connection closed") {
        format!(
            "the connection was closed ({chain}); the server may be restarting or over its connection limit, try again"
        )
    } else {
        chain
    }
}

impl Api {
    /// A client for `server` (`https://host:port`), trusting only the certificate with
    /// `fingerprint`. Plain `http://` servers need no fingerprint.
    pub fn new(server: &str, fingerprint: Option<&str>) -> Result<Self> {
        let base = server.trim_end_matches('/').to_string();
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(None::<Duration>)
            .user_agent(concat!("enc/", env!("CARGO_PKG_VERSION")));
        let mut bulk = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("enc/", env!("CARGO_PKG_VERSION")));
        let mut seen = Arc::new(Mutex::new(None));
        let mut pinned = None;
        if base.starts_with("https://") {
            let fp = fingerprint.ok_or_else(|| {
                ClientError::Usage(format!(
                    "no certificate fingerprint pinned for {base}: run `enc login` (or pass --fingerprint SHA256:…)"
                ))
            })?;
            let (config, cell) = crate::tls::pinned_config(Some(fp.to_string()));
            bulk = bulk.tls_backend_preconfigured(config.clone());
            builder = builder.tls_backend_preconfigured(config);
            pinned = Some(fp.to_string());
            seen = cell;
        } else if !base.starts_with("http://") {
            return Err(ClientError::Usage(format!(
                "server must be an https:// URL, not {server:?}: try --server https://{}",
                base.split("://").last().unwrap_or(&base)
            )));
        }
        Ok(Self {
            base,
            http: builder
                .build()
                .map_err(|e| ClientError::Usage(e.to_string()))?,
            bulk: bulk
                .build()
                .map_err(|e| ClientError::Usage(e.to_string()))?,
            token: None,
            pinned,
            seen,
        })
    }

    /// The same connection, authenticated with a session token.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// The same connection without credentials.
    pub fn anonymous(mut self) -> Self {
        self.token = None;
        self
    }

    /// The pinned certificate fingerprint (empty for plain HTTP).
    pub fn pinned_fingerprint(&self) -> &str {
        self.pinned.as_deref().unwrap_or("")
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends a request and turns every failure into a [`ClientError`].
    pub(crate) fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let resp = rb.send().map_err(|e| self.transport(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.api_error(resp))
    }

    pub(crate) fn transport(&self, e: &reqwest::Error) -> ClientError {
        if let (Some(pinned), Some(seen)) = (
            &self.pinned,
            self.seen.lock().expect("not poisoned").clone(),
        ) && !pinned.eq_ignore_ascii_case(&seen)
        {
            return ClientError::FingerprintMismatch {
                seen,
                pinned: pinned.clone(),
            };
        }
        ClientError::Transport {
            server: self.base.clone(),
            detail: transport_detail(&self.base, e),
        }
    }

    /// Whether the server answers at all (before asking anyone for a passphrase).
    pub fn reachable(&self) -> Result<()> {
        self.http
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(15))
            .send()
            .map_err(|e| self.transport(&e))?;
        Ok(())
    }

    fn api_error(&self, resp: Response) -> ClientError {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().unwrap_or_default();
        self.error_from(status, retry_after, &body)
    }

    fn error_from(&self, status: u16, retry_after: Option<String>, body: &[u8]) -> ClientError {
        let body: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let (code, mut message) = match body {
            Some(b) => (b.error.code, b.error.message),
            None => ("http".to_string(), format!("server answered HTTP {status}")),
        };
        match code.as_str() {
            "session_expired" => return ClientError::SessionExpired,
            "unauthenticated" if self.token.is_some() => {
                message = "session ended (logged out or revoked) — run `enc login`".into();
            }
            "too_many_attempts" => {
                if let Some(r) = retry_after {
                    message = format!("too many failed attempts; retry in {r} s");
                }
            }
            _ => {}
        }
        ClientError::Api {
            status,
            code,
            message,
        }
    }

    fn runtime(&self) -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::io("starting the transfer runtime"))
    }

    fn bulk_request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.bulk.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// `PUT`s the chunks arriving on `chunks` as a streamed body; JSON answer.
    pub(crate) fn put_chunks<T: DeserializeOwned>(
        &self,
        path: &str,
        chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> Result<T> {
        let stream = futures::stream::unfold(chunks, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        let rb = self
            .bulk_request(reqwest::Method::PUT, path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        self.runtime()?.block_on(async {
            let resp = rb.send().await.map_err(|e| self.transport(&e))?;
            let status = resp.status().as_u16();
            let retry = retry_after(resp.headers());
            let body = resp.bytes().await.map_err(|e| self.transport(&e))?;
            if !(200..300).contains(&status) {
                return Err(self.error_from(status, retry, &body));
            }
            serde_json::from_slice(&body).map_err(|e| ClientError::Transport {
                server: self.base.clone(),
                detail: format!("unexpected answer: {e}"),
            })
        })
    }

    /// `GET`s a streamed body, handing each chunk to `sink` (which may block: that is the
    /// backpressure). A failure mid-body is sent to the sink as an error too.
    pub(crate) fn get_chunks(
        &self,
        path: &str,
        sink: std::sync::mpsc::SyncSender<std::io::Result<bytes::Bytes>>,
    ) -> Result<()> {
        self.stream_chunks(self.bulk_request(reqwest::Method::GET, path), sink)
    }

    /// `POST`s JSON and streams the answer's body to `sink`, like [`Api::get_chunks`].
    pub(crate) fn post_chunks<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        sink: std::sync::mpsc::SyncSender<std::io::Result<bytes::Bytes>>,
    ) -> Result<()> {
        let rb = self.bulk_request(reqwest::Method::POST, path).json(body);
        self.stream_chunks(rb, sink)
    }

    /// `POST`s JSON; the answer's whole body (on the pooled connection).
    pub(crate) fn post_bytes<B: Serialize>(&self, path: &str, body: &B) -> Result<bytes::Bytes> {
        let resp = self.send(self.request(reqwest::Method::POST, path).json(body))?;
        resp.bytes().map_err(|e| self.transport(&e))
    }

    /// `PUT`s `bytes` as one body (on the pooled connection); JSON answer.
    pub(crate) fn put_bytes<T: DeserializeOwned>(&self, path: &str, bytes: Vec<u8>) -> Result<T> {
        let rb = self
            .request(reqwest::Method::PUT, path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.json(self.send(rb)?)
    }

    fn stream_chunks(
        &self,
        rb: reqwest::RequestBuilder,
        sink: std::sync::mpsc::SyncSender<std::io::Result<bytes::Bytes>>,
    ) -> Result<()> {
        use futures::StreamExt as _;
        self.runtime()?.block_on(async {
            let resp = rb.send().await.map_err(|e| self.transport(&e))?;
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                let retry = retry_after(resp.headers());
                let body = resp.bytes().await.unwrap_or_default();
                return Err(self.error_from(status, retry, &body));
            }
            // TLS hands over 16 KiB at a time; batching to 1 MiB saves a thread hand-off per
            // record.
            const BATCH: usize = 1 << 20;
            let mut stream = resp.bytes_stream();
            let mut batch = bytes::BytesMut::with_capacity(BATCH);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => {
                        batch.extend_from_slice(&c);
                        if batch.len() >= BATCH && sink.send(Ok(batch.split().freeze())).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        let _ = sink.send(Err(std::io::Error::other(error_chain(&e))));
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = sink.send(Ok(batch.freeze()));
            }
            Ok(())
        })
    }

    /// `GET` JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.send(self.request(reqwest::Method::GET, path))?)
    }

    /// `POST` JSON, JSON answer.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.send(self.request(reqwest::Method::POST, path).json(body))?)
    }

    /// `POST` JSON, no answer body.
    pub fn post_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<()> {
        self.send(self.request(reqwest::Method::POST, path).json(body))?;
        Ok(())
    }

    /// `PUT` JSON, JSON answer.
    pub fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.send(self.request(reqwest::Method::PUT, path).json(body))?)
    }

    /// `PUT` JSON, no answer body.
    pub fn put_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<()> {
        self.send(self.request(reqwest::Method::PUT, path).json(body))?;
        Ok(())
    }

    /// `POST`s `len` bytes of `file` as a streamed body; JSON answer.
    pub(crate) fn post_file<T: DeserializeOwned>(
        &self,
        path: &str,
        file: std::fs::File,
        len: u64,
    ) -> Result<T> {
        let rb = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::blocking::Body::sized(file, len));
        self.json(self.send(rb)?)
    }

    /// `DELETE`, JSON answer.
    pub(crate) fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.send(self.request(reqwest::Method::DELETE, path))?)
    }

    /// `GET`s a body into `out`, at most `max` bytes of it; the bytes written.
    pub(crate) fn get_to(
        &self,
        path: &str,
        out: &mut impl std::io::Write,
        max: u64,
    ) -> Result<u64> {
        use std::io::Read as _;
        let resp = self.send(self.request(reqwest::Method::GET, path))?;
        std::io::copy(&mut resp.take(max), out).map_err(|e| ClientError::Transport {
            server: self.base.clone(),
            detail: format!("reading the answer: {e}"),
        })
    }

    /// `GET` with HTTP Basic credentials (a restic token) into `out`, at most `max` bytes;
    /// with `accept`, that `Accept` header. The bytes written.
    pub(crate) fn get_basic_to(
        &self,
        path: &str,
        (user, password): (&str, &str),
        accept: Option<&str>,
        out: &mut impl std::io::Write,
        max: u64,
    ) -> Result<u64> {
        use std::io::Read as _;
        let mut rb = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(user, Some(password));
        if let Some(a) = accept {
            rb = rb.header(reqwest::header::ACCEPT, a);
        }
        let resp = self.send(rb)?;
        std::io::copy(&mut resp.take(max), out).map_err(|e| ClientError::Transport {
            server: self.base.clone(),
            detail: format!("reading the answer: {e}"),
        })
    }

    /// `GET` JSON, with one more header.
    pub(crate) fn get_with<T: DeserializeOwned>(
        &self,
        path: &str,
        header: (&str, &str),
    ) -> Result<T> {
        let rb = self
            .request(reqwest::Method::GET, path)
            .header(header.0, header.1);
        self.json(self.send(rb)?)
    }

    /// `DELETE`, with one more header.
    pub(crate) fn delete_with(&self, path: &str, header: (&str, &str)) -> Result<()> {
        let rb = self
            .request(reqwest::Method::DELETE, path)
            .header(header.0, header.1);
        self.send(rb)?;
        Ok(())
    }

    /// `DELETE`.
    pub fn delete(&self, path: &str) -> Result<()> {
        self.send(self.request(reqwest::Method::DELETE, path))?;
        Ok(())
    }

    fn json<T: DeserializeOwned>(&self, resp: Response) -> Result<T> {
        resp.json().map_err(|e| ClientError::Transport {
            server: self.base.clone(),
            detail: format!("unexpected answer: {}", error_chain(&e)),
        })
    }
}

/// `?name=value&…` with every value percent-encoded (all but unreserved characters).
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// `v` percent-encoded (all but unreserved characters), for a query value or a path segment.
pub(crate) fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
