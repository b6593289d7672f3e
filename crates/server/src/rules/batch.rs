//! Group commit: requests that arrive while a database write is in flight are gathered and
//! written together in the next transaction, so concurrent uploads share one commit to disk
//! (one `fsync`) instead of queueing for one each.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Most items written in one transaction.
const MAX_BATCH: usize = 128;

type Job<T, R> = (T, oneshot::Sender<R>);

/// Submits items to a writer task that handles them in batches.
pub struct Batcher<T, R> {
    tx: mpsc::Sender<Job<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
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
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
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

/// One restic write for the group commit.
pub enum ResticWrite {
    /// Reserve a blob key until the given time (before its bytes are made durable).
    Reserve(String, i64),
    /// Record a file whose blob is durable.
    Put(enc_store::NewResticObject),
}

/// `None` for a reservation, the outcome for a record.
pub type WriteResult = enc_store::Result<Option<enc_store::PutOutcome>>;

/// The writer of restic reservations and records: each batch is one transaction.
pub fn restic_writer(meta: enc_store::Meta) -> Batcher<ResticWrite, WriteResult> {
    Batcher::new(move |items: Vec<ResticWrite>| {
        let meta = meta.clone();
        async move {
            let mut reserve = Vec::new();
            let mut puts = Vec::new();
            let mut order = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    ResticWrite::Reserve(k, at) => {
                        reserve.push((k, at));
                        order.push(false);
                    }
                    ResticWrite::Put(o) => {
                        puts.push(o);
                        order.push(true);
                    }
                }
            }
            let n = order.len();
            match meta.restic_write_batch(reserve, puts).await {
                Ok(results) => {
                    let mut results = results.into_iter();
                    order
                        .into_iter()
                        .map(|is_put| {
                            if is_put {
                                results
                                    .next()
                                    .unwrap_or(Err(enc_store::StoreError::Batch(
                                        "missing result".into(),
                                    )))
                                    .map(Some)
                            } else {
                                Ok(None)
                            }
                        })
                        .collect()
                }
                Err(e) => {
                    let msg = e.to_string();
                    (0..n)
                        .map(|_| Err(enc_store::StoreError::Batch(msg.clone())))
                        .collect()
                }
            }
        }
    })
}
