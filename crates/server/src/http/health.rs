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
        "mercury": { "active_connections": state.metrics.mercury_connections.get() },
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
