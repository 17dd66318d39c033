//! Verified reads. A full read hashes everything it yields and, at the end, yields an
//! Integrity error instead of EOF if the digest (or size) is not the blob's. A ranged read
//! reads the whole chunks the range touches, checks each against the blob's chunk index
//! (`<blob>.chunks`, written before the blob became visible), and only then yields the
//! requested slice of it: no unverified byte is ever returned.
//!
//! The chunk index (version 2, `sha256-midstate`) keeps no hash of its own: it keeps the
//! SHA-256 chaining value `h_i` of the blob's digest at the start of every chunk `i` (chunk
//! sizes are multiples of 64 bytes, so every boundary falls between two blocks; `h_0` is the
//! initial value). SHA-256 is Merkle–Damgård, so these values pass by anyway while the blob
//! digest is computed: an upload hashes its bytes once and gets the index for free, where
//! per-chunk digests cost a second SHA-256 pass over every byte (the upload's bottleneck).
//! Chunk `i` is verified by running the compression function from `h_i` over its bytes and
//! comparing with `h_{i+1}`; the last chunk is verified by finishing the hash from `h_{n-1}`
//! (its remaining blocks, then the padding with the blob's length) and comparing with the
//! blob digest itself. A chunk is thus checked against stored values exactly as a stored
//! per-chunk digest would check it (the compression function resists second preimages as
//! the hash does), and the last one is bound to the artifact id, which no stored per-chunk
//! digest was. As before, the index itself is trusted by a ranged read of a middle chunk:
//! someone who rewrites a chunk *and* every following state can fool reads of those
//! chunks, but not of the last one nor a full read; and `check()` re-hashes every blob once
//! and compares every stored state on the way, so a damaged or forged index is found.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, ReadBuf};

use crate::blob::backend::ByteStream;
use crate::blob::codes::*;
use crate::blob::hash::{self, ChainState, Sha256State, hex_states};
use crate::digest::Digest;
use crate::error::{ErrorKind, RegistryError, Result};

/// The chunk index format this store writes and reads.
pub const INDEX_VERSION: u32 = 2;
/// Its `algorithm`: SHA-256 chaining values at the chunk boundaries.
pub const INDEX_ALGORITHM: &str = "sha256-midstate";

/// The chunk index of a blob (`<blob>.chunks`, JSON): `{"version":2,
/// "algorithm":"sha256-midstate","digest":…,"size":…,"chunkSize":…,"states":["<64 hex>",…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkIndex {
    pub version: u32,
    pub algorithm: String,
    pub digest: Digest,
    pub size: u64,
    /// A multiple of 64.
    pub chunk_size: u64,
    /// `h_i`, the digest's chaining value at the start of chunk `i`, for every chunk (the
    /// last one possibly short); `h_0` is SHA-256's initial value.
    #[serde(with = "hex_states")]
    pub states: Vec<ChainState>,
}

/// Just what says which format an index is in, read before the rest.
#[derive(Deserialize)]
struct IndexFormat {
    version: Option<u32>,
    algorithm: Option<String>,
}

impl ChunkIndex {
    pub fn new(digest: Digest, size: u64, chunk_size: u64, states: Vec<ChainState>) -> ChunkIndex {
        ChunkIndex {
            version: INDEX_VERSION,
            algorithm: INDEX_ALGORITHM.to_string(),
            digest,
            size,
            chunk_size,
            states,
        }
    }

    /// Parses and checks the index's format and shape against the blob it belongs to.
    pub fn parse(bytes: &[u8], digest: &Digest, size: u64) -> Result<ChunkIndex> {
        let bad = |why: String| {
            RegistryError::new(
                ErrorKind::Integrity,
                MG0111,
                format!("the chunk index of {digest} is damaged: {why}"),
            )
            .hint("run `modelspec registry check`, then upload the artifact again")
        };
        let format: IndexFormat =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not an index: {e}")))?;
        if format.version != Some(INDEX_VERSION)
            || format.algorithm.as_deref() != Some(INDEX_ALGORITHM)
        {
            let shown = |v: Option<String>| v.unwrap_or_else(|| "none".into());
            return Err(RegistryError::new(
                ErrorKind::Integrity,
                MG0116,
                format!(
                    "the chunk index of {digest} is in format version {} ({}); this store reads \
                     version {INDEX_VERSION} ({INDEX_ALGORITHM})",
                    shown(format.version.map(|v| v.to_string())),
                    shown(format.algorithm),
                ),
            )
            .at("/version")
            .hint(
                "delete the blob and its `.chunks` file, then upload the artifact again with \
                 this version of modelspec",
            ));
        }
        let idx: ChunkIndex =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not an index: {e}")))?;
        if idx.digest != *digest || idx.size != size {
            return Err(bad(format!(
                "it describes {} ({} bytes), the blob is {size} bytes",
                idx.digest, idx.size
            )));
        }
        if idx.chunk_size == 0 || !idx.chunk_size.is_multiple_of(64) {
            return Err(bad(format!(
                "its chunk size {} is not a positive multiple of 64",
                idx.chunk_size
            )));
        }
        if idx.states.len() as u64 != size.div_ceil(idx.chunk_size) {
            return Err(bad(format!(
                "{} chunk states for chunks of {} bytes cannot cover {size} bytes",
                idx.states.len(),
                idx.chunk_size
            )));
        }
        if idx
            .states
            .first()
            .is_some_and(|h| *h != hash::INITIAL_STATE)
        {
            return Err(bad("its first state is not SHA-256's initial value".into()));
        }
        Ok(idx)
    }

    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("index serializes"))
    }

    /// Whether `bytes` are chunk `i` (the whole of it): they chain from its start state to
    /// the next one, or, for the last chunk, to the blob digest.
    pub fn verifies(&self, i: usize, bytes: &[u8]) -> bool {
        let lo = i as u64 * self.chunk_size;
        let hi = (lo + self.chunk_size).min(self.size);
        if i >= self.states.len() || bytes.len() as u64 != hi - lo {
            return false;
        }
        match self.states.get(i + 1) {
            Some(next) => hash::chain(self.states[i], bytes) == *next,
            None => hash::finish_from(self.states[i], self.size, bytes) == self.digest,
        }
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
    // Shared, not copied per chunk: a large blob's index holds thousands of states.
    let index = std::sync::Arc::new(index);
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
                let ok = tokio::task::spawn_blocking({
                    let (b, index) = (bytes.clone(), index.clone());
                    move || index.verifies(i as usize, &b)
                })
                .await
                .map_err(crate::blob::session::join_error)?;
                if !ok {
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
