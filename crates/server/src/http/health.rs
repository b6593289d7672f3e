//! Health endpoints: `/healthz`, `/readyz`, and Hecate's `/health` and `/livez`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::http::error::ApiError;
use crate::state::AppState;

/// `/healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `/livez` (Hecate's liveness probe).
pub async fn livez() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "alive": true }))
}

/// How long a probe waits for each store: a probe's own timeout is short (Kubernetes' is
/// 1 s), and a database that is down would otherwise hold it for the pool's 10 s.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(900);

/// Pings the metadata and the blob store at once, each within [`PROBE_WAIT`].
async fn ping_both(state: &AppState) -> (Result<(), String>, Result<(), String>) {
    tokio::join!(within(state.meta.ping()), within(state.blobs.ping()))
}

async fn within(
    ping: impl std::future::Future<Output = enc_store::Result<()>>,
) -> Result<(), String> {
    match tokio::time::timeout(PROBE_WAIT, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", PROBE_WAIT.as_millis())),
    }
}

/// `/health` (Hecate's health report): status, version, uptime and the state of storage; 503
/// when storage does not answer.
pub async fn health(State(state): State<AppState>) -> axum::response::Response {
    let (meta, blobs) = ping_both(&state).await;
    let healthy = meta.is_ok() && blobs.is_ok();
    let word = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let body = serde_json::json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "storage": { "metadata": word(&meta), "blobs": word(&blobs) },
        "mercury": { "active_connections": state.metrics.mercury_connections.get() },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `/readyz`: the database and the blob store answer, each within [`PROBE_WAIT`]; a 503
/// that says which does not, otherwise.
pub async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let (meta, blobs) = ping_both(&state).await;
    if let Err(e) = meta {
        return ApiError::Unavailable(format!("database not ready: {e}")).into_response();
    }
    if let Err(e) = blobs {
        return ApiError::Unavailable(format!("blob store not ready: {e}")).into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}
