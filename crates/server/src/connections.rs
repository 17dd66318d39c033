//! The accept loop and each connection's guards (axum's `serve` has none): a limit on open
//! connections, a header-read, a body-read and an idle (keep-alive) timeout, and OpenAI-style
//! JSON bodies on the answers hyper writes by itself (400 on a malformed request, 414, 431).
//!
//! - Connection limit ([`ConnectionLimits::max_connections`]): a connection beyond it is
//!   refused at once with a 503 JSON error (`code: too_many_connections`, `Retry-After: 1`) and
//!   closed, rather than queued: a queued socket would hold a file descriptor while its client
//!   waits without a word, and a client that retries gets in as soon as a slot frees.
//! - Header read: a new connection must deliver its first request head within `header_read`,
//!   and a later request's head must arrive whole within `header_read` of its first byte.
//! - Idle: a connection with no request in flight and no byte of a new one is closed after
//!   `idle`.
//! - Body read: a request's body must be read whole within `body_read` of its head; a stalled
//!   body ends the read with an error that the handlers answer 408 (then the connection closes).
//!
//! A request in flight (an SSE stream included) is never cut by these timeouts: its own
//! deadline is the request timeout of the API.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::errors::ApiError;

/// What happened to connections, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Open now.
    pub open: AtomicUsize,
    /// Refused at the connection limit.
    pub refused: AtomicU64,
    /// Closed for a head that did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Closed after the idle timeout.
    pub idle_timeouts: AtomicU64,
}

/// Serves `app` on `listener` until `stop` turns true, then lets open connections finish
/// their requests for at most `grace`. `extra_headers` (`name: value\r\n` lines, the
/// registry version's) go into the answers written here, as the router adds them to its own.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    extra_headers: Arc<str>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors or a connection reset before accept: wait a moment
            // rather than spin, then go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let app = app.clone();
                let limits = limits.clone();
                let stop = stop.clone();
                let stats = Arc::clone(&stats);
                let extra = Arc::clone(&extra_headers);
                tasks.spawn(async move {
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    connection(stream, app, &limits, &stats, stop, extra).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            Err(_) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(refuse(
                    stream,
                    limits.max_connections,
                    Arc::clone(&extra_headers),
                ));
            }
        }
    }
    drop(listener);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tasks.abort_all();
    }
}

/// Answers a connection over the limit with a 503 and closes it.
async fn refuse(stream: TcpStream, limit: usize, extra: Arc<str>) {
    let e = ApiError::unavailable(format!(
        "the server has {limit} connections open, its limit; retry in a moment or reuse a connection"
    ))
    .with_code("too_many_connections");
    let response = raw_response(StatusCode::SERVICE_UNAVAILABLE, &e, Some(1), &extra);
    let answer = async {
        let mut written = 0;
        while written < response.len() {
            stream.writable().await?;
            match stream.try_write(&response[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        let stream = stream.into_std()?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let stream = TcpStream::from_std(stream)?;
        // Read what the client sent so that closing does not reset the connection before it
        // has read the answer.
        let mut sink = [0u8; 4096];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut sink) {
                Ok(0) => return io::Result::Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// A complete HTTP/1.1 response with the error's JSON body, closing the connection.
fn raw_response(
    status: StatusCode,
    e: &ApiError,
    retry_after: Option<u64>,
    extra: &str,
) -> Vec<u8> {
    let body = e.body().to_string();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(s) = retry_after {
        out.push_str(&format!("retry-after: {s}\r\n"));
    }
    out.push_str(extra);
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// What the watchdog knows of a connection; times in ms since `epoch`.
struct Activity {
    epoch: Instant,
    /// Requests handed to the router whose response body is not yet dropped.
    in_flight: AtomicUsize,
    /// Requests handed to the router so far.
    calls: AtomicUsize,
    /// 1 + when the head being read started (the connection's start for the first); 0 when
    /// no head is being read.
    head_since: AtomicU64,
    /// When the last response ended.
    idle_since: AtomicU64,
}

impl Activity {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read_bytes(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let now = self.now() + 1;
            let _ = self
                .head_since
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.calls.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
    }

    fn response_ended(&self) {
        self.idle_since.store(self.now(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: &ConnectionLimits) -> Option<Expired> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let head = self.head_since.load(Ordering::Acquire);
        if head != 0 {
            let waited = Duration::from_millis(now.saturating_sub(head - 1));
            return (waited >= limits.header_read).then_some(Expired::Header);
        }
        let idle =
            Duration::from_millis(now.saturating_sub(self.idle_since.load(Ordering::Acquire)));
        (idle >= limits.idle).then_some(Expired::Idle)
    }
}

/// Which timeout closed a connection.
#[derive(Debug, Clone, Copy)]
enum Expired {
    Header,
    Idle,
}

async fn connection(
    stream: TcpStream,
    app: Router,
    limits: &ConnectionLimits,
    stats: &ConnectionStats,
    mut stop: watch::Receiver<bool>,
    extra_headers: Arc<str>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        epoch: Instant::now(),
        in_flight: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
        head_since: AtomicU64::new(1),
        idle_since: AtomicU64::new(0),
    });
    let io = Watched {
        inner: stream,
        activity: Arc::clone(&activity),
        heads_written: 0,
        replacement: None,
        extra_headers,
    };
    let body_read = limits.body_read;
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            activity.request_started();
            let guard = InFlight(Arc::clone(&activity));
            let req = req.map(|b| Body::new(TimedBody::new(b, body_read)));
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await.unwrap_or_else(|e| match e {});
                Ok::<_, Infallible>(response.map(|b| {
                    Body::new(Tracked {
                        inner: b,
                        _guard: guard,
                    })
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timeouts are the watchdog's (hyper's header timer also runs on idle connections).
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let tick = limits
        .header_read
        .min(limits.idle)
        .div_f64(4.0)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let watchdog = async {
        loop {
            tokio::time::sleep(tick).await;
            if let Some(why) = activity.expired(limits) {
                return why;
            }
        }
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        // Dropping the connection closes the socket.
        why = watchdog => {
            let counter = match why {
                Expired::Header => &stats.header_timeouts,
                Expired::Idle => &stats.idle_timeouts,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Counts a request as in flight until its response body is dropped (sent, or abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.response_ended();
    }
}

/// A response body carrying its request's [`InFlight`] guard.
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error a request body read past its deadline ends with; handlers answer 408.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that must be read whole within its deadline.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting reads for the watchdog and replacing hyper's own error answers (an empty
/// body) with JSON ones.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// Final response heads written (our answers to the router's responses).
    heads_written: usize,
    /// Our answer in place of hyper's, and how much of it is written; everything hyper writes
    /// after it is dropped (hyper closes the connection after such an answer).
    replacement: Option<(Vec<u8>, usize)>,
    /// Header lines every answer carries (see [`serve`]).
    extra_headers: Arc<str>,
}

impl Watched {
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((bytes, written)) = &mut self.replacement else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The status of a response head at the start of `buf`.
fn head_status(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// hyper's automatic answers: 400 (a malformed request line or header, conflicting lengths),
/// 414 (URI too long), 431 (headers too large).
fn protocol_error(status: u16, extra: &str) -> Vec<u8> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let message = match status {
        StatusCode::URI_TOO_LONG => "the request URI is too long".to_string(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request headers are too large (too many, or too long)".to_string()
        }
        StatusCode::BAD_REQUEST => "the request is not valid HTTP/1.1: a malformed request line or header (invalid bytes, or conflicting Content-Length / Transfer-Encoding)".to_string(),
        other => format!("the request could not be read ({other})"),
    };
    let e = ApiError::protocol(status, message);
    raw_response(status, &e, None, extra)
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.read_bytes();
        }
        Poll::Ready(r)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none()
            && let Some(status) = head_status(buf)
            && status >= 200
        {
            let owed = self.activity.calls.load(Ordering::Acquire);
            if self.heads_written >= owed && status >= 400 {
                // No request reached the router for this answer: hyper's own.
                self.replacement = Some((protocol_error(status, &self.extra_headers), 0));
            } else {
                self.heads_written += 1;
            }
        }
        if self.replacement.is_some() {
            ready!(self.poll_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each response from one buffer that starts with its
    // head, which is where the answers are told apart.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_recognised() {
        assert_eq!(head_status(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(head_status(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(head_status(b"{\"x\": 1}"), None);
        let r = String::from_utf8(protocol_error(431, "x-a: b\r\n")).unwrap();
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        assert!(r.contains("\r\nx-a: b\r\n\r\n"), "{r}");
        assert!(r.contains("\"type\":\"invalid_request_error\""), "{r}");
    }
}
