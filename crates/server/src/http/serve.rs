//! The accept loop: TLS, connection limits, slow-client and idle timeouts, graceful shutdown.
//!
//! `run` takes a bound listener and a shutdown future, so tests (and `main`) choose the port
//! and the signal. On shutdown it stops accepting, lets in-flight requests finish up to the
//! grace period, then returns; objects only become visible on commit, so an interrupted
//! upload leaves nothing half-visible.
//!
//! Every connection must make progress or go. Until its first request head has arrived (TLS
//! handshake included) it gets `header_read_timeout`; afterwards, whenever it has no request
//! open (an idle HTTP/1 keep-alive, an HTTP/2 connection without streams), it gets
//! `idle_timeout`. Bytes alone (HTTP/2 PINGs, a trickled head) never count as progress: only
//! requests do. A request in flight is bounded by its own timeouts (`body_read_timeout`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// hyper's per-connection read buffer.
const READ_BUFFER: usize = 512 << 10;

/// How long a connection told to close (idle, or shutting down with nothing open) may take to
/// say goodbye (an HTTP/2 GOAWAY) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The client's address, put into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// TLS handshake and the first request head must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection with no request open is closed after this.
    pub idle_timeout: Duration,
    /// Largest request head.
    pub max_header_size: usize,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace: Duration,
}

/// Requests open on one connection, and since when it has had none.
struct Activity {
    open: AtomicUsize,
    seen: AtomicBool,
    idle_since: std::sync::Mutex<Instant>,
}

impl Activity {
    fn new(since: Instant) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            seen: AtomicBool::new(false),
            idle_since: std::sync::Mutex::new(since),
        })
    }

    fn begin(self: &Arc<Self>) -> OpenRequest {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.seen.store(true, Ordering::SeqCst);
        OpenRequest(self.clone())
    }

    /// When the connection's idle time runs out, or `None` while a request is open.
    fn idle_deadline(&self, limit: Duration) -> Option<Instant> {
        let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        (self.open.load(Ordering::SeqCst) == 0).then_some(since + limit)
    }
}

/// Held from a request's arrival until its response body is finished or dropped.
struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        let mut since = self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            *since = Instant::now();
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // The read buffer bounds what a request head can occupy; `max_header_size` itself is
        // enforced per request in `app`. Larger than the head limit so bodies stream in big
        // reads.
        .max_buf_size(READ_BUFFER.max(limits.max_header_size));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_size as u32);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let accepted_at = Instant::now();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            builder: builder.clone(),
            limits: limits.clone(),
            peer,
            activity: Activity::new(accepted_at),
            stop: stop_rx.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                Some(acceptor) => {
                    let deadline = accepted_at + conn.limits.header_read_timeout;
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => conn.serve(tls).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => conn.serve(stream).await,
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("grace period over; closing remaining connections");
        }
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: ServeLimits,
    peer: SocketAddr,
    activity: Arc<Activity>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn serve<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let activity = self.activity.clone();
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            let open = activity.begin();
            // A body the handler leaves unread is drained after the answer (see `drain`).
            let response = app
                .clone()
                .oneshot(req.map(|b| Body::new(super::drain::DrainOnDrop::new(b))));
            async move {
                let response = response.await?;
                // The request stays open until its response body is done or dropped.
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _open = &open;
                        frame
                    }))
                }))
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut closing: Option<Instant> = None;
        loop {
            if closing.is_none() && *self.stop.borrow() {
                // Shutdown: finish what is open, take nothing new.
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + self.limits.shutdown_grace);
            }
            // The first request must come within the head timeout (counted from accept),
            // later ones within the idle timeout of the last response.
            let limit = if self.activity.seen.load(Ordering::SeqCst) {
                self.limits.idle_timeout
            } else {
                self.limits.header_read_timeout
            };
            let wake = match closing {
                Some(at) => at,
                None => self
                    .activity
                    .idle_deadline(limit)
                    .unwrap_or_else(|| Instant::now() + limit),
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = self.stop.changed(), if closing.is_none() => {
                    if changed.is_err() {
                        // The accept loop is gone: treat as shutdown.
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + self.limits.shutdown_grace);
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if closing.is_some() {
                        tracing::debug!(%peer, "connection did not close in time; dropped");
                        return;
                    }
                    if self
                        .activity
                        .idle_deadline(limit)
                        .is_some_and(|deadline| deadline <= Instant::now())
                    {
                        tracing::debug!(%peer, "idle connection closed");
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
            }
        }
    }
}
