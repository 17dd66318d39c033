//! Moving bytes between local files and the registry: hashing with a progress bar, pushing an
//! artifact (skipped when the store has it; resumable upload sessions for large files, whose id
//! is kept in a state file under the data directory so that a re-run continues from the
//! registry's offset), and pulling one (verified, written atomically: temp file + rename).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ms_registry::api::{ByteReader, Registered};
use ms_registry::client_codes::{MG0704, MG0708};
use ms_registry::entity::{Artifact, ArtifactUpload};
use ms_registry::locate::{self, Location};
use ms_registry::{Digest, ErrorKind, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, ReadBuf};

use super::connect::local_io;

/// Files at least this large go through a resumable upload session.
pub const SESSION_THRESHOLD: u64 = 16 << 20;
/// The bytes of one session chunk: what an interruption can lose at most.
pub const CHUNK: u64 = 8 << 20;

/// A byte progress bar on stderr, drawn only on a terminal and never with `--json`.
pub fn bar(quiet: bool, len: u64, label: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}

/// The sha256 and size of a file, read once with a progress bar.
pub fn hash_file(path: &Path, quiet: bool) -> Result<(Digest, u64), RegistryError> {
    let mut file = std::fs::File::open(path).map_err(|e| local_io(path, "cannot open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| local_io(path, "cannot read", e))?;
    if !meta.is_file() {
        return Err(local_io(path, "cannot read", "not a regular file"));
    }
    let progress = bar(
        quiet,
        meta.len(),
        &format!("hashing {}", display_name(path)),
    );
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| local_io(path, "cannot read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        progress.inc(n as u64);
    }
    progress.finish_and_clear();
    Ok((Digest(hasher.finalize().into()), size))
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A reader that moves a progress bar and, under `MODELSPEC_TEST_THROTTLE` (bytes per
/// second; for the crash tests, which need a transfer slow enough to interrupt), paces itself.
struct Metered<R> {
    inner: R,
    bar: ProgressBar,
    rate: Option<u64>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<R> Metered<R> {
    fn new(inner: R, bar: ProgressBar) -> Metered<R> {
        let rate = std::env::var("MODELSPEC_TEST_THROTTLE")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&r| r > 0);
        Metered {
            inner,
            bar,
            rate,
            pause: None,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let before = buf.filled().len();
        // Throttled reads are small (through a scratch buffer) so that the pacing is smooth.
        let poll = if self.rate.is_some() && buf.remaining() > THROTTLED_READ {
            let mut scratch = [0u8; THROTTLED_READ];
            let mut small = ReadBuf::new(&mut scratch);
            let p = Pin::new(&mut self.inner).poll_read(cx, &mut small);
            buf.put_slice(small.filled());
            p
        } else {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        };
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            self.bar.inc(n);
            if let Some(rate) = self.rate {
                let pause = Duration::from_secs_f64(n as f64 / rate as f64);
                self.pause = Some(Box::pin(tokio::time::sleep(pause)));
            }
        }
        poll
    }
}

const THROTTLED_READ: usize = 64 << 10;

/// Attempts at a chunk the registry refused as busy or that lost its connection.
const RETRIES: u32 = 60;
const RETRY_PAUSE: Duration = Duration::from_secs(1);

fn retryable(e: &RegistryError) -> bool {
    matches!(e.kind, ErrorKind::Conflict | ErrorKind::Unavailable)
}

/// The session of an interrupted upload, kept under the data directory by file digest.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadState {
    registry: String,
    upload_id: String,
}

fn state_path(digest: &Digest) -> Result<PathBuf, RegistryError> {
    let dir = locate::data_dir()?.join("uploads");
    Ok(dir.join(format!("{}.json", digest.hex())))
}

fn read_state(path: &Path, location: &Location) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let state: UploadState = serde_json::from_str(&text).ok()?;
    (state.registry == location.key()).then_some(state.upload_id)
}

fn write_state(path: &Path, location: &Location, upload_id: &str) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        RegistryError::new(
            ErrorKind::Invalid,
            MG0704,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let state = UploadState {
        registry: location.key(),
        upload_id: upload_id.to_string(),
    };
    let text = serde_json::to_string(&state).unwrap_or_default();
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| local_io(path, "cannot write", e))
}

/// How a push went.
pub struct Pushed {
    pub artifact: Registered<Artifact>,
    /// The artifact was already in the store: nothing was sent.
    pub skipped: bool,
    /// Bytes the registry had from an earlier, interrupted run.
    pub resumed_at: Option<u64>,
}

/// Pushes `path` (already hashed to `digest`, `size`) unless the store has it.
pub async fn push(
    registry: &dyn Registry,
    location: &Location,
    path: &Path,
    digest: Digest,
    size: u64,
    mut req: ArtifactUpload,
    quiet: bool,
) -> Result<Pushed, RegistryError> {
    match registry.artifact(&digest).await {
        Ok(artifact) => {
            return Ok(Pushed {
                artifact: Registered {
                    created: false,
                    record: artifact,
                },
                skipped: true,
                resumed_at: None,
            });
        }
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    req.expected_digest = Some(digest);
    req.size = Some(size);
    let label = format!("pushing {}", req.name);
    if size < SESSION_THRESHOLD {
        let file = open_at(path, 0).await?;
        let body: ByteReader = Box::new(Metered::new(file, bar(quiet, size, &label)));
        let artifact = registry.upload_artifact(req, body).await?;
        return Ok(Pushed {
            artifact,
            skipped: false,
            resumed_at: None,
        });
    }
    let state = state_path(&digest)?;
    let mut session = None;
    if let Some(id) = read_state(&state, location) {
        match registry.upload_status(&id).await {
            Ok(s) => session = Some(s),
            // Expired or finished elsewhere: start again.
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let resumed_at = session.as_ref().map(|s| s.offset).filter(|&o| o > 0);
    let mut session = match session {
        Some(s) => s,
        None => {
            let s = registry.start_upload(req).await?;
            write_state(&state, location, &s.upload_id)?;
            s
        }
    };
    if let Some(at) = resumed_at
        && !quiet
    {
        eprintln!("resuming the upload at byte {at} of {size}");
    }
    let progress = bar(quiet, size, &label);
    progress.set_position(session.offset);
    let mut retries = 0;
    while session.offset < size {
        let len = CHUNK.min(size - session.offset);
        let file = open_at(path, session.offset).await?;
        let body: ByteReader = Box::new(Metered::new(
            tokio::io::AsyncReadExt::take(file, len),
            progress.clone(),
        ));
        match registry
            .upload_chunk(&session.upload_id, session.offset, body)
            .await
        {
            Ok(s) => {
                session = s;
                retries = 0;
            }
            // The session is still held by an interrupted transfer the server has not yet
            // seen end, or the connection dropped: wait, ask where the session stands, and
            // continue from there.
            Err(e) if retryable(&e) && retries < RETRIES => {
                retries += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
                match registry.upload_status(&session.upload_id).await {
                    Ok(s) => session = s,
                    Err(e) if retryable(&e) => {}
                    // Completed meanwhile: the bytes are stored (checked below).
                    Err(e) if e.kind == ErrorKind::NotFound => break,
                    Err(e) => return Err(e),
                }
                progress.set_position(session.offset);
            }
            Err(e) => return Err(e),
        }
    }
    progress.finish_and_clear();
    let artifact = match registry.finish_upload(&session.upload_id).await {
        Ok(a) => a,
        // A session that completed while this run retried (its last chunk arrived, the answer
        // did not) is gone: the blob it made is the answer.
        Err(e) if e.kind == ErrorKind::NotFound => match registry.artifact(&digest).await {
            Ok(record) => Registered {
                created: true,
                record,
            },
            Err(_) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let _ = std::fs::remove_file(&state);
    Ok(Pushed {
        artifact,
        skipped: false,
        resumed_at,
    })
}

async fn open_at(path: &Path, offset: u64) -> Result<tokio::fs::File, RegistryError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| local_io(path, "cannot open", e))?;
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| local_io(path, "cannot seek in", e))?;
    }
    Ok(file)
}

/// Writes artifact `id` to `out`: streamed into a temporary file beside it, hashed on the
/// way, renamed into place only if the bytes hash to `id` (else nothing is left behind).
pub async fn pull(
    registry: &dyn Registry,
    id: &Digest,
    out: &Path,
    quiet: bool,
) -> Result<Artifact, RegistryError> {
    let content = registry.artifact_content(id, None).await?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        display_name(out),
        std::process::id()
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| local_io(&tmp, "cannot create", e))?;
        let progress = bar(
            quiet,
            content.artifact.size,
            &format!("pulling {}", content.artifact.name),
        );
        let mut body = Metered::new(content.body, progress.clone());
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut body, &mut buf)
                .await
                .map_err(|e| read_error(id, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            got += n as u64;
            file.write_all(&buf[..n])
                .await
                .map_err(|e| local_io(&tmp, "cannot write", e))?;
        }
        progress.finish_and_clear();
        let actual = Digest(hasher.finalize().into());
        if actual != *id || got != content.artifact.size {
            return Err(RegistryError::new(
                ErrorKind::Integrity,
                MG0708,
                format!(
                    "artifact {id}: received {got} bytes hashing to {actual}, expected {} bytes",
                    content.artifact.size
                ),
            )
            .hint("nothing was written; run `modelspec registry check` on the registry"));
        }
        file.sync_all()
            .await
            .map_err(|e| local_io(&tmp, "cannot write", e))?;
        drop(file);
        tokio::fs::rename(&tmp, out)
            .await
            .map_err(|e| local_io(out, "cannot write", e))?;
        Ok(content.artifact)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A failing read of the content: the registry's own error when it is one (a digest mismatch
/// found by the store), else an I/O error of the transfer.
fn read_error(id: &Digest, e: std::io::Error) -> RegistryError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<RegistryError>()) {
        return inner.clone();
    }
    RegistryError::new(
        ErrorKind::Unavailable,
        MG0708,
        format!("artifact {id}: the transfer failed: {e}"),
    )
}
