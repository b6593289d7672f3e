//! Background deletion of unreferenced blobs, stale uploads, idle sessions and old throttle
//! entries.
//!
//! Rows that stop referencing a blob queue it in `blob_gc` in the same transaction; this task
//! deletes queued blobs afterwards. It runs at start-up (repairing whatever a crash left),
//! every minute, and when a handler kicks it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Asks the collector to run soon (unless a pass is already running).
pub fn kick(state: &AppState) {
    use std::sync::atomic::Ordering;
    if state.gc_running.swap(true, Ordering::AcqRel) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        sweep(&state).await;
        state.gc_running.store(false, Ordering::Release);
    });
}

/// One pass: expire stale uploads, delete queued blobs.
pub async fn sweep(state: &AppState) {
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    if let Err(e) = state.meta.prune(crate::rules::now(), idle).await {
        tracing::warn!(error = %e, "pruning sessions and throttle entries failed");
    }
    let completed = state.config.limits.upload_expiry.as_secs() as i64;
    let now = crate::rules::now();
    if let Err(e) = state
        .meta
        // Uploads still streaming after their reservation are a crash's leftovers (a live one
        // is released when its connection ends), as are Mercury reservations as old.
        .expire_uploads(
            now - completed,
            now - state.config.limits.reservation.as_secs() as i64,
        )
        .await
    {
        tracing::warn!(error = %e, "expiring uploads failed");
    }
    loop {
        let keys = match state.meta.gc_pending(crate::rules::now(), 256).await {
            Ok(k) if k.is_empty() => return,
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "reading the blob queue failed");
                return;
            }
        };
        let mut done = Vec::with_capacity(keys.len());
        let mut failed = Vec::new();
        for k in keys {
            if k.is_empty() {
                // Not a blob (a small file's row has none): a bug queued it. Never hand it to
                // the store (on a local store it names the root).
                tracing::warn!("an empty blob key was queued for collection; dropped");
                done.push(k);
                continue;
            }
            match state.blobs.delete(&k).await {
                Ok(()) => done.push(k),
                Err(e) => {
                    tracing::warn!(error = %e, key = %k, "deleting blob failed; will retry");
                    failed.push(k);
                }
            }
        }
        if !failed.is_empty() {
            // To the back of the queue, so one bad key does not stall the rest.
            if let Err(e) = state
                .meta
                .gc_retry_later(&failed, crate::rules::now())
                .await
            {
                tracing::warn!(error = %e, "updating the blob queue failed");
            }
        }
        if done.is_empty() {
            return;
        }
        if let Err(e) = state.meta.gc_done(&done).await {
            tracing::warn!(error = %e, "updating the blob queue failed");
            return;
        }
    }
}

/// Runs [`sweep`] now and then every minute until cancelled.
pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        sweep(&state).await;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
