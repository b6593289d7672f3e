//! Group commit: requests that arrive while a database write is in flight are gathered and
//! written together in the next transaction, so concurrent uploads share one commit to disk
//! (one `fsync`) instead of queueing for one each. When a batch finds the storage not
//! answering, the items queued behind it are told so at once instead of each batch waiting
//! out the database pool's timeout in turn.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Most items written in one transaction.
const MAX_BATCH: usize = 128;

type Job<T, R> = (T, oneshot::Sender<R>);

/// A batch item's result that can say the storage did not answer.
pub trait Outcome: Sized {
    /// `Some` (a result of its own for each item queued behind) when this is such a failure.
    fn unavailable(&self) -> Option<Self>;
}

impl<T> Outcome for Result<T, enc_store::StoreError> {
    fn unavailable(&self) -> Option<Self> {
        match self {
            Err(e) if e.is_unavailable() => Some(Err(enc_store::StoreError::Unavailable)),
            _ => None,
        }
    }
}

/// Submits items to a writer task that handles them in batches.
pub struct Batcher<T, R> {
    tx: mpsc::Sender<Job<T, R>>,
}

impl<T: Send + 'static, R: Outcome + Send + 'static> Batcher<T, R> {
    /// Spawns the writer task; `write` gets a batch and returns one result per item, in order.
    pub fn new<F, Fut>(write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<Job<T, R>>(1024);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<T>, Vec<oneshot::Sender<R>>) = jobs.into_iter().unzip();
                let results = write(items).await;
                let down = results.iter().find_map(Outcome::unavailable);
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
                if let Some(down) = down {
                    while let Ok((_, reply)) = rx.try_recv() {
                        if let Some(r) = down.unavailable() {
                            let _ = reply.send(r);
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Hands one item to the writer and waits for its result; `None` if the writer is gone
    /// (the server is shutting down).
    pub async fn submit(&self, item: T) -> Option<R> {
        let (reply, wait) = oneshot::channel();
        self.tx.send((item, reply)).await.ok()?;
        wait.await.ok()
    }
}
