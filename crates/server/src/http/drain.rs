//! Request bodies a handler did not read to the end are read and discarded after its answer,
//! up to a bound. A connection closed with unread bytes in its receive buffer is reset by the
//! kernel, and the reset can destroy the answer before the client has read it (the client
//! then sees a broken connection instead of, say, a 400 about its path). Within the bound the
//! connection also stays usable for the next request.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};

/// Most of an unread body read after the answer.
const MAX: u64 = 64 << 20;

/// Longest a drain after the answer may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// Longest a drain waits for the next bytes: a body that stopped arriving (the reason some
/// handlers gave up on it) is not waited for.
const STALL: Duration = Duration::from_secs(1);

/// A request body that drains what is left of itself when dropped unread.
pub struct DrainOnDrop {
    inner: Option<Pin<Box<Incoming>>>,
    done: bool,
}

impl DrainOnDrop {
    /// Wraps a connection's request body.
    pub fn new(body: Incoming) -> Self {
        Self {
            inner: Some(Box::pin(body)),
            done: false,
        }
    }
}

impl hyper::body::Body for DrainOnDrop {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = inner.as_mut().poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_default()
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if self.done || body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut read = 0u64;
            let _ = tokio::time::timeout(DEADLINE, async {
                while let Ok(Some(Ok(frame))) = tokio::time::timeout(STALL, body.frame()).await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > MAX {
                        return;
                    }
                }
            })
            .await;
        });
    }
}
