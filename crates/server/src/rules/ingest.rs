//! What every protocol does with an upload's bytes.

use futures::StreamExt as _;

/// Most of a refused body read and discarded before answering.
pub const MAX_DRAIN: u64 = 64 << 20;

/// Reads and discards a bounded remainder of a refused body, so the client, still sending,
/// gets to read the error instead of a reset connection.
pub async fn drain(stream: &mut axum::body::BodyDataStream) {
    let mut drained = 0u64;
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(c)) => {
                    drained += c.len() as u64;
                    if drained > MAX_DRAIN {
                        return;
                    }
                }
                _ => return,
            },
            () = &mut deadline => return,
        }
    }
}
