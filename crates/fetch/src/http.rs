//! HTTP(S) downloads into a partial file that survives interruptions: the next attempt (in the
//! same call, or a later run) asks for the rest with `Range: bytes=N-`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use ureq::Agent;
use ureq::http::StatusCode;

use crate::FetchError;
use crate::progress::Progress;

/// Attempts per download (the first one and resumptions after a broken connection).
const ATTEMPTS: u32 = 4;

pub(crate) struct Download<'a> {
    pub url: &'a str,
    /// `Authorization: Bearer ...` (e.g. `$HF_TOKEN` for the Hugging Face hub).
    pub bearer: Option<&'a str>,
    /// Added to connection errors: what the user can do instead.
    pub hint: &'a str,
}

impl Download<'_> {
    /// Completes `partial` (creating it if needed) with the body at `url`.
    pub(crate) fn run(&self, partial: &Path, progress: &Progress) -> Result<(), FetchError> {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(None)
            .user_agent(concat!("modelspec/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut last_error = None;
        let len = || std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        for _ in 0..ATTEMPTS {
            let before = len();
            match self.attempt(&agent, partial, progress) {
                Ok(()) => return Ok(()),
                Err(Attempt::Fatal(e)) => return Err(e),
                // Only a transfer that was moving is worth resuming: an unreachable host or a
                // failing server fails at once instead of after every attempt's timeout.
                Err(Attempt::Retry(e)) if len() <= before => return Err(e),
                Err(Attempt::Retry(e) | Attempt::Restart(e)) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| self.error("no attempt made")))
    }

    fn attempt(&self, agent: &Agent, partial: &Path, progress: &Progress) -> Result<(), Attempt> {
        let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        let mut req = agent.get(self.url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        if let Some(token) = self.bearer {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let resp = req
            .call()
            .map_err(|e| Attempt::Retry(self.error(&e.to_string())))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
        let (mut file, start) = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = header("content-range").unwrap_or_default();
                if content_range_start(&range) != Some(have) {
                    // Not the range we asked for: start over rather than splice wrong bytes.
                    remove(partial)?;
                    return Err(Attempt::Restart(self.error(&format!(
                        "server sent range {range:?}, asked for bytes={have}-"
                    ))));
                }
                let f = OpenOptions::new()
                    .append(true)
                    .open(partial)
                    .map_err(|e| Attempt::Fatal(FetchError::io(partial, e)))?;
                (f, have)
            }
            StatusCode::OK => {
                let f = File::create(partial)
                    .map_err(|e| Attempt::Fatal(FetchError::io(partial, e)))?;
                (f, 0)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The partial file is longer than the resource: it changed; start over.
                remove(partial)?;
                return Err(Attempt::Restart(
                    self.error("416 range not satisfiable; restarting"),
                ));
            }
            s => {
                let why = match s.as_u16() {
                    401 | 403 => format!(
                        "HTTP {s}: access denied (for a gated Hugging Face repository set HF_TOKEN)"
                    ),
                    404 => {
                        format!("HTTP {s}: not found (check the address, file name and revision)")
                    }
                    _ => format!("HTTP {s}"),
                };
                let err = self.error(&why);
                return Err(if s.is_server_error() {
                    Attempt::Retry(err)
                } else {
                    Attempt::Fatal(err)
                });
            }
        };
        let total = length.map(|l| start + l);
        progress.start_bytes(total, start);
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = file.flush();
                    return Err(Attempt::Retry(self.error(&format!(
                        "connection broken after {} bytes: {e}",
                        start + got
                    ))));
                }
            };
            file.write_all(&buf[..n])
                .map_err(|e| Attempt::Fatal(FetchError::io(partial, e)))?;
            got += n as u64;
            progress.advance(n as u64);
        }
        file.sync_all()
            .map_err(|e| Attempt::Fatal(FetchError::io(partial, e)))?;
        if let Some(len) = length
            && got < len
        {
            return Err(Attempt::Retry(
                self.error(&format!("body ended after {got} of {len} bytes")),
            ));
        }
        Ok(())
    }

    fn error(&self, why: &str) -> FetchError {
        FetchError::Http {
            url: self.url.to_string(),
            why: why.to_string(),
            hint: self.hint.to_string(),
        }
    }
}

enum Attempt {
    /// Try again, resuming what the partial file holds.
    Retry(FetchError),
    /// The partial file was dropped: try again from the start.
    Restart(FetchError),
    Fatal(FetchError),
}

fn remove(path: &Path) -> Result<(), Attempt> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Attempt::Fatal(FetchError::io(path, e))),
    }
}

/// The first byte of `bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}
