//! restic's group commit: blob reservations and file records of concurrent uploads written in
//! one transaction (see [`crate::rules::batch`]).

use crate::rules::batch::Batcher;

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
pub fn restic_writer(
    store: std::sync::Arc<dyn enc_store::Restic>,
) -> Batcher<ResticWrite, WriteResult> {
    Batcher::new(move |items: Vec<ResticWrite>| {
        let store = store.clone();
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
            match store.restic_write_batch(reserve, puts).await {
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
                Err(e) => (0..n).map(|_| Err(e.for_each_of_batch())).collect(),
            }
        }
    })
}
