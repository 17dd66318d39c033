//! Verified reads. A full read hashes everything it yields and, at the end, yields an
//! Integrity error instead of EOF if the digest (or size) is not the blob's. A ranged read
//! reads the whole chunks the range touches, checks each against the blob's chunk index
//! (`<blob>.chunks`, written before the blob became visible), and only then yields the
//! requested slice of it: no unverified byte is ever returned.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, ReadBuf};

use crate::blob::backend::ByteStream;
use crate::blob::codes::*;
use crate::blob::hash::Sha256State;
use crate::digest::Digest;
use crate::error::{ErrorKind, RegistryError, Result};

/// The chunk index of a blob (`<blob>.chunks`, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkIndex {
    pub digest: Digest,
    pub size: u64,
    pub chunk_size: u64,
    /// sha256 of each `chunk_size` piece, the last one possibly short.
    pub chunks: Vec<Digest>,
}

impl ChunkIndex {
    /// Parses and checks the index's shape against the blob it belongs to.
    pub fn parse(bytes: &[u8], digest: &Digest, size: u64) -> Result<ChunkIndex> {
        let bad = |why: String| {
            RegistryError::new(
                ErrorKind::Integrity,
                MG0111,
                format!("the chunk index of {digest} is damaged: {why}"),
            )
            .hint("run `modelspec registry check`, then upload the artifact again")
        };
        let idx: ChunkIndex =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not an index: {e}")))?;
        if idx.digest != *digest || idx.size != size {
            return Err(bad(format!(
                "it describes {} ({} bytes), the blob is {size} bytes",
                idx.digest, idx.size
            )));
        }
        if idx.chunk_size == 0 || idx.chunks.len() as u64 != size.div_ceil(idx.chunk_size) {
            return Err(bad(format!(
                "{} chunks of {} bytes cannot cover {size} bytes",
                idx.chunks.len(),
                idx.chunk_size
            )));
        }
        Ok(idx)
    }

    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("index serializes"))
    }
}

pub fn damaged(digest: &Digest, what: String) -> RegistryError {
    RegistryError::new(
        ErrorKind::Integrity,
        MG0110,
        format!("stored blob {digest} is damaged: {what}"),
    )
    .hint("run `modelspec registry check`, then upload the artifact again from a good copy")
}

/// Wraps a full read: every byte is hashed; the end is an error unless it matches.
pub fn verify_full(inner: ByteStream, digest: Digest, size: u64) -> ByteStream {
    struct St {
        inner: ByteStream,
        sha: Sha256State,
        done: bool,
    }
    let st = St {
        inner,
        sha: Sha256State::new(),
        done: false,
    };
    futures_util::stream::unfold(st, move |mut st| async move {
        if st.done {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(b)) => {
                if b.len() >= 256 * 1024 {
                    // Off the async workers: a server streams many reads at once.
                    let (mut sha, piece) = (std::mem::take(&mut st.sha), b.clone());
                    match tokio::task::spawn_blocking(move || {
                        sha.update(&piece);
                        sha
                    })
                    .await
                    {
                        Ok(sha) => st.sha = sha,
                        Err(e) => {
                            st.done = true;
                            return Some((Err(std::io::Error::other(e)), st));
                        }
                    }
                } else {
                    st.sha.update(&b);
                }
                if st.sha.len() > size {
                    st.done = true;
                    let e = damaged(&digest, format!("it is longer than {size} bytes"));
                    return Some((Err(std::io::Error::other(e)), st));
                }
                Some((Ok(b), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            None => {
                st.done = true;
                let got = st.sha.finish();
                if st.sha.len() != size || got != digest {
                    let e = damaged(&digest, format!("its {} bytes hash to {got}", st.sha.len()));
                    Some((Err(std::io::Error::other(e)), st))
                } else {
                    None
                }
            }
        }
    })
    .boxed()
}

/// A ranged read: fetches chunk `i` with `fetch(i)` for each chunk the range touches,
/// verifies it and yields the part of it inside `start..end`.
pub fn verify_ranged<F, Fut>(index: ChunkIndex, start: u64, end: u64, fetch: F) -> ByteStream
where
    F: Fn(std::ops::Range<u64>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Bytes>> + Send + 'static,
{
    let cs = index.chunk_size;
    let first = start / cs;
    let last = (end - 1) / cs;
    futures_util::stream::unfold(Some(first), move |next| {
        let index = index.clone();
        let fut = next.filter(|i| *i <= last).map(|i| {
            let lo = i * cs;
            let hi = (lo + cs).min(index.size);
            (i, lo, hi, fetch(lo..hi))
        });
        async move {
            let (i, lo, hi, fut) = fut?;
            let result = async {
                let bytes = fut.await?;
                let got = tokio::task::spawn_blocking({
                    let b = bytes.clone();
                    move || Digest::of(&b)
                })
                .await
                .map_err(crate::blob::session::join_error)?;
                if bytes.len() as u64 != hi - lo || got != index.chunks[i as usize] {
                    return Err(damaged(
                        &index.digest,
                        format!("bytes {lo}..{hi} do not match the chunk index"),
                    ));
                }
                let s = (start.max(lo) - lo) as usize;
                let e = (end.min(hi) - lo) as usize;
                Ok(bytes.slice(s..e))
            }
            .await;
            match result {
                Ok(b) => Some((Ok(b), Some(i + 1))),
                Err(e) => Some((Err(std::io::Error::other(e)), None)),
            }
        }
    })
    .boxed()
}

/// An `AsyncRead` over a stream of byte buffers.
pub struct StreamReader {
    stream: ByteStream,
    current: Bytes,
}

impl StreamReader {
    pub fn new(stream: ByteStream) -> StreamReader {
        StreamReader {
            stream,
            current: Bytes::new(),
        }
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.current.is_empty() {
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Ready(Some(Ok(b))) => self.current = b,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.current.len().min(buf.remaining());
        buf.put_slice(&self.current[..n]);
        self.current.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The [`RegistryError`] inside an I/O error from a blob reader (an Integrity error on a
/// damaged blob, or the store failing), if it is one.
pub fn registry_error(e: &std::io::Error) -> Option<&RegistryError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<RegistryError>())
}
