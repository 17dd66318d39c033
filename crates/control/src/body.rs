//! Bodies as streams, never whole in memory: a request body becomes the registry's
//! `ByteReader` and an artifact's reader becomes a response body. Every request body carries
//! a stall timer ([`StallGuard`]): a body that stops arriving for the body timeout ends with
//! an error the handlers answer 408 — a stall, not a total, so that a 50 GB upload at a
//! steady pace is never cut.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::TryStreamExt;
use http_body::{Body as HttpBody, Frame, SizeHint};
use ms_registry::api::ByteReader;
use tokio_util::io::{ReaderStream, StreamReader};

use crate::error::ApiError;

/// The error a request body ends with when no byte arrived for the body timeout.
#[derive(Debug)]
pub struct BodyStalled(pub Duration);

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no byte of the request body arrived for {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyStalled {}

/// A request body that fails with [`BodyStalled`] when no frame arrives for `limit`.
pub struct StallGuard<B> {
    inner: B,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<B> StallGuard<B> {
    pub fn new(inner: B, limit: Duration) -> StallGuard<B> {
        StallGuard {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> HttpBody for StallGuard<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            let deadline = tokio::time::Instant::now() + self.limit;
            self.timer.as_mut().reset(deadline);
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyStalled(self.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The stall in an error's source chain, if that is what ended the body.
pub fn stalled(e: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(s) = err.downcast_ref::<BodyStalled>() {
            return Some(s.0);
        }
        cur = err.source();
    }
    None
}

/// A request body that ended with an error: a stall (408) or a broken connection (400).
pub fn body_error(e: &axum::Error) -> ApiError {
    match stalled(e) {
        Some(after) => ApiError::body_timeout(after),
        None => ApiError::new(
            ms_registry::ErrorKind::Invalid,
            ms_registry::remote::codes::BAD_JSON,
            format!("the request body could not be read: {e}"),
        ),
    }
}

/// A request body as the registry's reader. A stall or a dropped connection is an
/// `io::Error` that names it.
pub fn reader(body: Body) -> ByteReader {
    let stream = body.into_data_stream().map_err(|e| match stalled(&e) {
        Some(after) => io::Error::new(io::ErrorKind::TimedOut, BodyStalled(after)),
        None => io::Error::other(format!("the request body broke off: {e}")),
    });
    Box::new(StreamReader::new(stream))
}

/// An artifact's reader as a response body (chunks of 64 KiB). Each chunk is sent only once
/// the next one (or the reader's clean end) is in: the store's reader verifies the digest at
/// the end of a whole read and ends with an error instead of EOF on a damaged blob, and
/// holding the last chunk back turns that error into a body short of its `Content-Length` (the
/// client sees a broken transfer), never a complete 200 of damaged bytes.
pub fn response_body(reader: ByteReader) -> Body {
    let chunks = ReaderStream::with_capacity(reader, 64 * 1024);
    let held =
        futures_util::stream::unfold((chunks, None::<Bytes>), |(mut chunks, held)| async move {
            use futures_util::StreamExt;
            let mut held = held;
            loop {
                match chunks.next().await {
                    Some(Ok(next)) => match held.replace(next) {
                        Some(previous) => return Some((Ok(previous), (chunks, held))),
                        None => continue,
                    },
                    Some(Err(e)) => return Some((Err(e), (chunks, None))),
                    None => return held.map(|last| (Ok(last), (chunks, None))),
                }
            }
        });
    Body::from_stream(held)
}
