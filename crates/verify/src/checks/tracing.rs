//! MV0605: a spec that declares `operations.observability.tracing.enabled: true` gets spans.
//! Verify listens as an OTLP/HTTP receiver on loopback (a local server is pointed at it; a
//! server at `--url` must be configured to export to `--otlp-receiver ADDR`) and counts the
//! export requests that arrive: `POST /v1/traces` with `Content-Type: application/x-protobuf`.
//! The protobuf is not decoded: arriving exports are what the declaration promises.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::check::{self, Check, Verdict};
use crate::spec_file::SpecFile;

const POINTER: &str = "/spec/operations/observability/tracing/enabled";

/// Largest export body read (the SDK's batches are far smaller).
const MAX_BODY: usize = 64 << 20;

/// How long a server at `--url` gets for its batch processor to send (its default delay is 5 s).
pub const REMOTE_WAIT: Duration = Duration::from_secs(12);

/// What arrived at the receiver.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Accepted export requests and their bytes.
    pub exports: u64,
    pub bytes: u64,
    /// Requests refused (wrong path, method or content type), the first few described.
    pub refused: Vec<String>,
}

/// A minimal OTLP/HTTP trace receiver on its own thread.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start(addr: SocketAddr) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("verify-otlp".into())
            .spawn(move || accept(&listener, &r, &s))?;
        Ok(Receiver {
            addr,
            received,
            stop,
            thread: Some(thread),
        })
    }

    /// The base URL to give a server (its spans go to base + `/v1/traces`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Received {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for a first export.
    pub fn wait_for_export(&self, timeout: Duration) -> Received {
        let start = Instant::now();
        loop {
            let r = self.received();
            if r.exports > 0 || start.elapsed() >= timeout {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept(listener: &TcpListener, received: &Arc<Mutex<Received>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let r = received.clone();
                let _ = std::thread::Builder::new()
                    .name("verify-otlp-conn".into())
                    .spawn(move || serve(stream, &r));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Answers the requests of one keep-alive connection until it closes or idles.
fn serve(stream: TcpStream, received: &Mutex<Received>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (mut length, mut content_type, mut chunked) = (None::<usize>, String::new(), false);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).map_or(true, |n| n == 0) {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.parse().ok(),
                    "content-type" => content_type = v.to_ascii_lowercase(),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let Some(length) = length.filter(|&n| n <= MAX_BODY && !chunked) else {
            let _ = writer.write_all(
                b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            note_refused(
                received,
                format!("{method} {path} without a Content-Length"),
            );
            return;
        };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let media = content_type.split(';').next().unwrap_or("").trim();
        let status = if method != "POST" || path != "/v1/traces" {
            note_refused(received, format!("{method} {path}"));
            "404 Not Found"
        } else if media != "application/x-protobuf" {
            note_refused(
                received,
                format!("POST /v1/traces with Content-Type {content_type:?}"),
            );
            "415 Unsupported Media Type"
        } else {
            let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
            r.exports += 1;
            r.bytes += length as u64;
            "200 OK"
        };
        // An empty ExportTraceServiceResponse is zero bytes of protobuf: full success.
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        );
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
    }
}

fn note_refused(received: &Mutex<Received>, what: String) {
    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
    if r.refused.len() < 5 {
        r.refused.push(what);
    }
}

/// The tracing declaration of a spec, and the receiver checking it.
pub struct Tracing {
    pub receiver: Option<Receiver>,
    method: String,
}

impl Tracing {
    /// `None` when the spec does not declare tracing on. A local server (`url` false) always
    /// gets a receiver on 127.0.0.1:0; a remote one only with `listen`.
    pub fn start(
        spec: &SpecFile,
        remote: bool,
        listen: Option<SocketAddr>,
    ) -> Result<Option<Tracing>, String> {
        let declared = spec
            .info
            .document
            .spec
            .operations
            .as_ref()
            .and_then(|o| o.observability.as_ref())
            .and_then(|o| o.tracing.as_ref())
            .and_then(|t| t.enabled);
        if declared != Some(true) {
            return Ok(None);
        }
        let listen = match (remote, listen) {
            (false, l) => Some(l.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))),
            (true, l) => l,
        };
        let receiver = listen
            .map(Receiver::start)
            .transpose()
            .map_err(|e| format!("cannot listen for OTLP spans: {e}"))?;
        let method = match (&receiver, remote) {
            (Some(r), false) => format!(
                "OTLP/HTTP receiver on {}; the local server exports there; POST /v1/traces with Content-Type application/x-protobuf counted after the server stopped (a stop flushes its spans)",
                r.addr
            ),
            (Some(r), true) => format!(
                "OTLP/HTTP receiver on {} (--otlp-receiver); POST /v1/traces with Content-Type application/x-protobuf counted up to {} s after the load",
                r.addr,
                REMOTE_WAIT.as_secs()
            ),
            (None, _) => "an OTLP/HTTP receiver (--otlp-receiver) the server exports to".into(),
        };
        Ok(Some(Tracing { receiver, method }))
    }

    /// The full traces URL a local server should export to.
    pub fn endpoint(&self) -> Option<String> {
        self.receiver
            .as_ref()
            .map(|r| format!("{}/v1/traces", r.base_url()))
    }

    fn check(&self) -> Check {
        Check::new(check::TRACING, POINTER, "spans exported over OTLP").method(&self.method)
    }

    pub fn not_checked(&self, why: &str) -> Check {
        self.check().not_checked(why)
    }

    /// The verdict once the server has stopped (local) or the load is over (remote).
    pub fn finish(self, remote: bool) -> Check {
        let c = self.check();
        let Some(receiver) = &self.receiver else {
            return c.not_checked(
                "the server at --url exports where it is configured to; give --otlp-receiver ADDR and point its OTEL_EXPORTER_OTLP_ENDPOINT at http://ADDR",
            );
        };
        let got = if remote {
            receiver.wait_for_export(REMOTE_WAIT)
        } else {
            receiver.received()
        };
        if got.exports > 0 {
            return c.measured(
                format!(
                    "{} export requests, {} bytes of spans",
                    got.exports, got.bytes
                ),
                Verdict::Held,
            );
        }
        let c = c.measured("no spans received", Verdict::Violated);
        if got.refused.is_empty() {
            c.reason("nothing was posted to the receiver")
        } else {
            c.reason(format!("refused: {}", got.refused.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(addr: SocketAddr, path: &str, ctype: &str, body: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn the_receiver_counts_protobuf_posts_to_v1_traces_only() {
        let r = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        assert!(post(r.addr, "/v1/traces", "application/x-protobuf", b"\x0a\x00").contains("200"));
        assert!(post(r.addr, "/v1/traces", "application/json", b"{}").contains("415"));
        assert!(post(r.addr, "/v1/metrics", "application/x-protobuf", b"").contains("404"));
        let got = r.received();
        assert_eq!((got.exports, got.bytes), (1, 2));
        assert_eq!(got.refused.len(), 2, "{:?}", got.refused);
    }
}
