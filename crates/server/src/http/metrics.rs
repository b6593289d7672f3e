//! Prometheus metrics: blob reads, writes and deletes with their bytes by user, repository and
//! type, and request latency histograms by API, method and status.
//!
//! They are served on a separate plain-HTTP listener (`[metrics] listen`), off by default, so
//! scraping needs no credentials on the public port and the public port exposes nothing.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// Labels of a blob operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BlobLabels {
    /// User name.
    pub user: String,
    /// Repository (restic) name.
    pub repo: String,
    /// Object type: config, data, index, keys, locks, snapshots.
    pub r#type: String,
    /// `read`, `write` or `delete`.
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: String,
    method: String,
    status: String,
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    blob_ops: Family<BlobLabels, Counter>,
    blob_bytes: Family<BlobLabels, Counter>,
    requests: Family<RequestLabels, Histogram>,
    /// Mercury connections open now, on both of its listeners.
    pub mercury_connections: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("enc");
        let blob_ops = Family::<BlobLabels, Counter>::default();
        let blob_bytes = Family::<BlobLabels, Counter>::default();
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ])
        });
        registry.register(
            "blob_operations",
            "Blob reads, writes and deletes",
            blob_ops.clone(),
        );
        registry.register(
            "blob_bytes",
            "Bytes read, written or deleted",
            blob_bytes.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to response head",
            requests.clone(),
        );
        let mercury_connections = Gauge::default();
        registry.register(
            "mercury_connections",
            "Mercury connections open now",
            mercury_connections.clone(),
        );
        Self {
            registry,
            mercury_connections,
            blob_ops,
            blob_bytes,
            requests,
        }
    }
}

impl Metrics {
    /// Counts one blob operation of `bytes` bytes.
    pub fn blob(&self, user: &str, repo: &str, kind: &str, op: &str, bytes: u64) {
        let labels = BlobLabels {
            user: user.to_string(),
            repo: repo.to_string(),
            r#type: kind.to_string(),
            op: op.to_string(),
        };
        self.blob_ops.get_or_create(&labels).inc();
        self.blob_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// Middleware: observes every request's latency (to the response head).
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req.uri().path();
    let api = if path.starts_with("/v1/") {
        "v1"
    } else if path.starts_with("/restic/") {
        "restic"
    } else {
        "other"
    };
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let resp = next.run(req).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: api.into(),
            method: method.into(),
            status: resp.status().as_u16().to_string(),
        })
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// The router of the metrics listener.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    state.metrics.render(),
                )
                    .into_response()
            }),
        )
        .route("/health", axum::routing::get(crate::http::health::health))
        .route("/livez", axum::routing::get(crate::http::health::livez))
        .route("/readyz", axum::routing::get(crate::http::health::readyz))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .with_state(state)
}
