//! SHA-256 whose intermediate state can be saved and restored, so that a resumed upload never
//! re-reads the bytes already stored: the state is the eight chaining words over the
//! 64-byte-aligned prefix, its length, and the (< 64 byte) tail not yet compressed. The final
//! padding is done here (FIPS 180-4 §5.1.1), because `sha2` 0.10 exposes only the raw
//! compression function for this.

use serde::{Deserialize, Serialize};
use sha2::compress256;
use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;

use crate::digest::Digest;

/// FIPS 180-4 §5.3.3: the initial hash value.
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A running SHA-256 that can be serialized at any point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha256State {
    /// The chaining value after `compressed` bytes.
    pub h: [u32; 8],
    /// Bytes compressed into `h` (a multiple of 64).
    pub compressed: u64,
    /// Bytes after `compressed`, fewer than 64, as hex.
    #[serde(with = "hex_bytes")]
    pub tail: Vec<u8>,
}

impl Default for Sha256State {
    fn default() -> Sha256State {
        Sha256State::new()
    }
}

fn compress_blocks(h: &mut [u32; 8], data: &[u8]) {
    debug_assert_eq!(data.len() % 64, 0);
    let (blocks, _) = data.as_chunks::<64>();
    // SAFETY: `GenericArray<u8, U64>` is `#[repr(transparent)]` over 64 `u8`s, the same layout
    // as `[u8; 64]` (sha2's own `compress256` relies on this in the other direction), and the
    // alignment of both is 1; the length is the number of whole blocks of `data`.
    let blocks: &[GenericArray<u8, U64>] =
        unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), blocks.len()) };
    compress256(h, blocks);
}

impl Sha256State {
    pub fn new() -> Sha256State {
        Sha256State {
            h: H0,
            compressed: 0,
            tail: Vec::with_capacity(64),
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.compressed + self.tail.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if !self.tail.is_empty() {
            let take = (64 - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.tail);
            compress_blocks(&mut self.h, &block);
            self.compressed += 64;
            self.tail = block;
            self.tail.clear();
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            compress_blocks(&mut self.h, &data[..whole]);
            self.compressed += whole as u64;
        }
        self.tail.extend_from_slice(&data[whole..]);
    }

    /// The digest of everything hashed so far (the state is not consumed).
    pub fn finish(&self) -> Digest {
        let mut h = self.h;
        let bit_len = self.len().wrapping_mul(8);
        let mut last = [0u8; 128];
        let n = self.tail.len();
        last[..n].copy_from_slice(&self.tail);
        last[n] = 0x80;
        // One block if the tail, the 0x80 byte and the 8 length bytes fit in 64, else two.
        let blocks = if n + 1 + 8 <= 64 { 64 } else { 128 };
        last[blocks - 8..blocks].copy_from_slice(&bit_len.to_be_bytes());
        compress_blocks(&mut h, &last[..blocks]);
        let mut out = [0u8; 32];
        for (i, word) in h.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
        }
        Digest(out)
    }
}

/// Per-chunk digests of a blob as it streams by (the chunk sidecar, for verified ranged reads),
/// resumable like [`Sha256State`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkHasher {
    pub chunk_size: u64,
    /// Digests of the complete chunks, in order.
    pub done: Vec<Digest>,
    /// The chunk being hashed.
    pub current: Sha256State,
}

impl ChunkHasher {
    pub fn new(chunk_size: u64) -> ChunkHasher {
        ChunkHasher {
            chunk_size,
            done: Vec::new(),
            current: Sha256State::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (self.chunk_size - self.current.len()) as usize;
            let take = room.min(data.len());
            self.current.update(&data[..take]);
            data = &data[take..];
            if self.current.len() == self.chunk_size {
                self.done.push(self.current.finish());
                self.current = Sha256State::new();
            }
        }
    }

    /// All chunk digests; the last chunk may be short. An empty blob has no chunk.
    pub fn finish(&self) -> Vec<Digest> {
        let mut out = self.done.clone();
        if !self.current.is_empty() {
            out.push(self.current.finish());
        }
        out
    }
}

/// `Vec<u8>` as a hex string in JSON.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 || s.len() > 126 {
            return Err(serde::de::Error::custom(
                "hash tail: expected at most 63 hex bytes",
            ));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 131 + 7) as u8).collect()
    }

    #[test]
    fn matches_sha256_for_every_length_and_split() {
        for n in 0..300 {
            let bytes = data(n);
            let want = Digest(Sha256::digest(&bytes).into());
            let mut whole = Sha256State::new();
            whole.update(&bytes);
            assert_eq!(whole.finish(), want, "length {n}");
            for split in (0..=n)
                .step_by(7)
                .chain([n.saturating_sub(1), 63.min(n), 64.min(n)])
            {
                let mut s = Sha256State::new();
                s.update(&bytes[..split]);
                // Through JSON, as a resumed session would.
                let mut s: Sha256State =
                    serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
                s.update(&bytes[split..]);
                assert_eq!(s.finish(), want, "length {n} split at {split}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_large() {
        let bytes = data(5000);
        let mut s = Sha256State::new();
        for b in &bytes {
            s.update(std::slice::from_ref(b));
        }
        assert_eq!(s.finish(), Digest(Sha256::digest(&bytes).into()));
        assert_eq!(s.len(), 5000);
    }

    #[test]
    fn chunk_digests() {
        let bytes = data(1000);
        for size in [1u64, 64, 100, 999, 1000, 4096] {
            let mut c = ChunkHasher::new(size);
            c.update(&bytes[..333]);
            c.update(&bytes[333..]);
            let want: Vec<Digest> = bytes.chunks(size as usize).map(Digest::of).collect();
            assert_eq!(c.finish(), want, "chunk size {size}");
        }
        assert!(ChunkHasher::new(10).finish().is_empty());
    }
}
