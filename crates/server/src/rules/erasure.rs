//! Erasure jobs: a user's every trace taken off the server, step by step
//! ([`enc_store::ERASURE_STEPS`]), each step committed with the next one's number, so a job
//! interrupted by a crash or a restart is resumed (at start-up and every minute, by whichever
//! replica gets there first; each step runs once) and always finishes. Its last step deletes
//! the blobs the others queued and compacts the database, so that when the job reports done
//! nothing of the user is left in the data directory, the database or the bucket.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use enc_store::{ErasureRow, StoreError};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// A test's hook: the name of a step the job stops before (and waits at until the server
/// stops), so a test can kill the server in the middle of an erasure.
const PAUSE_VAR: &str = "ENC_TEST_PAUSE_ERASURE_AT";

/// How long after the start the data steps wait: other replicas' caches of verified
/// credentials (2 s) have forgotten the user's by then, so no new request of theirs begins.
const CACHES_FORGET: Duration = Duration::from_secs(3);

/// Jobs this process is driving (a job is driven by one task per process at a time).
static DRIVING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// Starts erasing `user_id`: their credentials stop working at once (on this replica now,
/// on others within the credential cache's time), and the job runs in the background.
pub async fn begin(
    state: &AppState,
    user_id: &str,
    by_admin: bool,
) -> Result<ErasureRow, StoreError> {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let id = hex::encode(raw);
    let pseudonym = state.records_pepper.as_ref().map(|p| p.pseudonym(user_id));
    let job = state
        .meta
        .erasure_begin(&id, user_id, by_admin, pseudonym.as_deref())
        .await?;
    state.revocations.revoke(None);
    let (state, id) = (state.clone(), job.id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(CACHES_FORGET).await;
        drive(&state, &id, &CancellationToken::new()).await
    });
    Ok(job)
}

/// Resumes the jobs a stop left unfinished, at start-up and then every minute (a job whose
/// replica stopped is taken over by another; each step still runs once), each in a task of
/// its own, until `cancel` fires.
pub async fn resume(state: AppState, cancel: CancellationToken) {
    loop {
        match state.meta.erasures_pending().await {
            Ok(pending) => {
                for job in pending {
                    // One begun this moment waits for the caches first (see `begin`).
                    if crate::rules::now() - job.started < CACHES_FORGET.as_secs() as i64 {
                        continue;
                    }
                    let (state, cancel) = (state.clone(), cancel.clone());
                    tokio::spawn(async move { drive(&state, &job.id, &cancel).await });
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading unfinished erasures failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

/// Runs job `id` to its end, retrying a failed step every few seconds (the database or the
/// bucket may be away for a while) until it is done or `cancel` fires. Returns at once if
/// this process drives the job already.
async fn drive(state: &AppState, id: &str, cancel: &CancellationToken) {
    {
        let mut driving = DRIVING.lock().expect("not poisoned");
        if !driving.insert(id.to_string()) {
            return;
        }
    }
    struct Release<'a>(&'a str);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            DRIVING.lock().expect("not poisoned").remove(self.0);
        }
    }
    let _release = Release(id);
    let pause = std::env::var(PAUSE_VAR).ok();
    loop {
        let wait = match step(state, id, pause.as_deref()).await {
            Ok(Some(job)) if job.is_done() => {
                tracing::info!(erasure = %job.id, counts = %job.counts, "erasure done");
                return;
            }
            Ok(Some(_)) => continue,
            Ok(None) => {
                tracing::warn!(erasure = %id, "erasure paused by {PAUSE_VAR}");
                cancel.cancelled().await;
                return;
            }
            Err(e) => {
                tracing::warn!(erasure = %id, error = %e, "an erasure step failed; retrying");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Runs the job's next step: the job after it, or `None` when the test hook pauses it there.
async fn step(
    state: &AppState,
    id: &str,
    pause: Option<&str>,
) -> Result<Option<ErasureRow>, StoreError> {
    let job = state.meta.erasure(id).await?.ok_or(StoreError::NotFound)?;
    let next = job.next_step();
    if job.is_done() {
        return Ok(Some(job));
    }
    if pause == Some(next) {
        return Ok(None);
    }
    if next == "collect" {
        collect(state, id).await?;
    }
    let job = state.meta.erasure_step(id, next).await?;
    if next == "credentials" || next == "account" {
        state.revocations.revoke(None);
    }
    Ok(Some(job))
}

/// Deletes the queued blobs (the job's among them), then has the database forget deleted
/// rows' bytes. An error, to be retried, while any of the job's blobs is left (the store
/// refused it); others' blobs the store refuses do not hold the job.
async fn collect(state: &AppState, id: &str) -> Result<(), StoreError> {
    crate::rules::gc::sweep(state).await;
    let left = state.meta.erasure_blobs_left(id).await?;
    if left > 0 {
        return Err(StoreError::Conflict(
            "blobs of the erased user are left (the blob store refused them); retrying",
        ));
    }
    state.meta.compact().await
}
