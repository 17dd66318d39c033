//! SHA-256 whose intermediate state can be saved and restored, so that a resumed upload never
//! re-reads the bytes already stored: the state is the eight chaining words over the
//! 64-byte-aligned prefix, its length, and the (< 64 byte) tail not yet compressed. The final
//! padding is done here (FIPS 180-4 §5.1.1), because `sha2` 0.10 exposes only the raw
//! compression function for this.
//!
//! The same chaining words, taken at every chunk boundary while the blob digest is computed
//! ([`ChunkedSha256`]), are the chunk index that verifies ranged reads (see `read.rs`): one
//! hash pass per uploaded byte gives both.

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

/// A SHA-256 chaining value: the eight words `h` between two 64-byte blocks.
pub type ChainState = [u32; 8];

/// The chaining value every SHA-256 starts from.
pub const INITIAL_STATE: ChainState = H0;

/// Runs the compression function from `h` over `data` (whole 64-byte blocks): what the hash
/// of a blob does between two chunk boundaries.
pub fn chain(mut h: ChainState, data: &[u8]) -> ChainState {
    assert_eq!(data.len() % 64, 0, "chain() takes whole 64-byte blocks");
    compress_blocks(&mut h, data);
    h
}

/// The digest of a blob of `total` bytes whose last `tail.len()` bytes start at a block
/// boundary reached with chaining value `h`: the remaining blocks, then the padding.
pub fn finish_from(h: ChainState, total: u64, tail: &[u8]) -> Digest {
    let mut s = Sha256State {
        h,
        compressed: total - tail.len() as u64,
        tail: Vec::with_capacity(64),
    };
    s.update(tail);
    s.finish()
}

/// The blob digest, recording the chaining value at every chunk boundary on the way (the
/// chunk index, see `read.rs`): one pass over the bytes gives both. Resumable like
/// [`Sha256State`], whose `h` is the recorded value whenever a boundary is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkedSha256 {
    /// A multiple of 64, so that every boundary falls between two blocks.
    pub chunk_size: u64,
    pub sha256: Sha256State,
    /// The chaining value after each complete chunk: `h_1, h_2, …`.
    #[serde(with = "hex_states")]
    pub boundaries: Vec<ChainState>,
}

impl ChunkedSha256 {
    pub fn new(chunk_size: u64) -> ChunkedSha256 {
        assert!(
            chunk_size > 0 && chunk_size.is_multiple_of(64),
            "chunk size {chunk_size} is not a positive multiple of 64"
        );
        ChunkedSha256 {
            chunk_size,
            sha256: Sha256State::new(),
            boundaries: Vec::new(),
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.sha256.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (self.chunk_size - self.len() % self.chunk_size) as usize;
            let take = room.min(data.len());
            self.sha256.update(&data[..take]);
            data = &data[take..];
            if take == room {
                // A boundary: a multiple of 64 bytes hashed, so the tail is empty and `h`
                // covers everything.
                debug_assert!(self.sha256.tail.is_empty());
                self.boundaries.push(self.sha256.h);
            }
        }
    }

    /// The digest of everything hashed so far.
    pub fn finish(&self) -> Digest {
        self.sha256.finish()
    }

    /// The chunk index's states: `h_0` (the initial value) … `h_{n-1}`, the value at the
    /// start of each of the `n` chunks (the last possibly short). An empty blob has none.
    pub fn midstates(&self) -> Vec<ChainState> {
        let n = self.len().div_ceil(self.chunk_size) as usize;
        std::iter::once(H0)
            .chain(self.boundaries.iter().copied())
            .take(n)
            .collect()
    }
}

/// Chaining values as 64-hex-digit strings (big-endian words, like a digest).
pub(crate) mod hex_states {
    use super::ChainState;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn to_hex(h: &ChainState) -> String {
        h.iter().map(|w| format!("{w:08x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<ChainState> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut h = [0u32; 8];
        for (i, w) in h.iter_mut().enumerate() {
            *w = u32::from_str_radix(&s[8 * i..8 * i + 8], 16).ok()?;
        }
        Some(h)
    }

    pub fn serialize<S: Serializer>(states: &[ChainState], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(states.iter().map(to_hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChainState>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                from_hex(s).ok_or_else(|| {
                    serde::de::Error::custom(format!("chain state {s:?}: expected 64 hex digits"))
                })
            })
            .collect()
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

    /// The chaining value after `prefix`, recomputed from scratch.
    fn state_after(prefix: &[u8]) -> ChainState {
        let mut s = Sha256State::new();
        s.update(prefix);
        assert!(s.tail.is_empty());
        s.h
    }

    #[test]
    fn midstates_are_the_chaining_values_at_every_boundary() {
        let cs = 128usize;
        let bytes = data(10 * cs);
        for n in [
            0,
            1,
            63,
            64,
            127,
            cs,
            cs + 1,
            2 * cs - 1,
            2 * cs,
            5 * cs,
            5 * cs + 77,
            10 * cs,
        ] {
            let want: Vec<ChainState> = (0..n.div_ceil(cs))
                .map(|i| state_after(&bytes[..i * cs]))
                .collect();
            for split in [0, 1, 64, cs, n / 2, n] {
                let split = split.min(n);
                let mut c = ChunkedSha256::new(cs as u64);
                c.update(&bytes[..split]);
                // Through JSON, as a resumed session would.
                let mut c: ChunkedSha256 =
                    serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
                for piece in bytes[split..n].chunks(50) {
                    c.update(piece);
                }
                assert_eq!(c.midstates(), want, "length {n} split at {split}");
                assert_eq!(c.finish(), Digest::of(&bytes[..n]), "length {n}");
            }
        }
        assert_eq!(ChunkedSha256::new(64).midstates(), Vec::<ChainState>::new());
    }

    #[test]
    fn chunks_verify_from_their_start_state() {
        let cs = 256usize;
        for n in [cs, 3 * cs, 3 * cs + 5] {
            let bytes = data(n);
            let mut c = ChunkedSha256::new(cs as u64);
            c.update(&bytes);
            let states = c.midstates();
            let pieces: Vec<&[u8]> = bytes.chunks(cs).collect();
            let last = pieces.len() - 1;
            for (i, piece) in pieces.iter().enumerate() {
                if i < last {
                    assert_eq!(chain(states[i], piece), states[i + 1]);
                } else {
                    assert_eq!(finish_from(states[i], n as u64, piece), c.finish());
                }
            }
            let mut bad = pieces[last].to_vec();
            bad[0] ^= 1;
            assert_ne!(finish_from(states[last], n as u64, &bad), c.finish());
        }
        let h = INITIAL_STATE;
        assert_eq!(hex_states::from_hex(&hex_states::to_hex(&h)), Some(h));
        assert!(hex_states::to_hex(&h).starts_with("6a09e667"));
        assert_eq!(hex_states::from_hex("zz"), None);
    }
}
