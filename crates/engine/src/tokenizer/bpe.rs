//! Byte-level BPE (GPT-2 style) as llama.cpp's `llm_tokenizer_bpe` does it: each pre-tokenized
//! word is mapped byte by byte to printable characters, then the adjacent pair with the lowest
//! merge rank (leftmost on ties) is merged until no ranked pair remains.

use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::vocab::Vocab;

/// GPT-2's reversible byte-to-character mapping: printable Latin-1 bytes map to themselves,
/// the others to U+0100 upwards in byte order.
pub(super) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

/// The inverse of [`byte_to_char_table`].
pub(super) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cp as u8),
        // The 68 non-printable bytes in order: 0x00..=0x20, 0x7F..=0xA0, 0xAD.
        0x100..=0x120 => Some((cp - 0x100) as u8),
        0x121..=0x142 => Some((cp - 0x121 + 0x7F) as u8),
        0x143 => Some(0xAD),
        _ => None,
    }
}

#[derive(Default)]
struct PairHasher(u64);
impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = super::vocab::hash(bytes) ^ self.0.rotate_left(17);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}
type PairMap = HashMap<u64, Merge, BuildHasherDefault<PairHasher>>;

#[derive(Clone, Copy)]
struct Merge {
    rank: u32,
    /// The piece the pair becomes.
    result: u32,
}

/// Merge ranks over "pieces": vocabulary ids, plus ids above the vocabulary for merge operands
/// or results that are not tokens (rare, but a merge table may hold them).
pub(super) struct Merges {
    pairs: PairMap,
    extra: HashMap<Vec<u8>, u32>,
}

fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

/// A piece that has no text in the vocabulary nor in the merges: it never merges.
const NO_PIECE: u32 = u32::MAX;

impl Merges {
    /// `merges` are "left right" strings in rank order. Malformed entries (no space after the
    /// first character) are skipped as llama.cpp does; a repeated pair keeps its first rank.
    pub(super) fn new(vocab: &Vocab, merges: &[String]) -> Merges {
        let mut m = Merges {
            pairs: PairMap::with_capacity_and_hasher(merges.len(), Default::default()),
            extra: HashMap::new(),
        };
        for (rank, line) in merges.iter().enumerate() {
            let first_len = line.chars().next().map_or(0, char::len_utf8);
            let Some(space) = line.get(first_len..).and_then(|r| r.find(' ')) else {
                continue;
            };
            let (left, right) = (&line[..first_len + space], &line[first_len + space + 1..]);
            let a = m.intern(vocab, left.as_bytes());
            let b = m.intern(vocab, right.as_bytes());
            let result = m.intern(vocab, format!("{left}{right}").as_bytes());
            m.pairs.entry(pair_key(a, b)).or_insert(Merge {
                rank: rank as u32,
                result,
            });
        }
        m
    }

    fn intern(&mut self, vocab: &Vocab, text: &[u8]) -> u32 {
        if let Some(id) = vocab.lookup(text) {
            return id;
        }
        let next = (vocab.len() + self.extra.len()) as u32;
        *self.extra.entry(text.to_vec()).or_insert(next)
    }

    fn piece(&self, vocab: &Vocab, text: &[u8]) -> u32 {
        vocab
            .lookup(text)
            .or_else(|| self.extra.get(text).copied())
            .unwrap_or(NO_PIECE)
    }
}

struct Symbol {
    start: usize,
    len: usize,
    piece: u32,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Bigram {
    /// Reversed so that the max-heap pops the lowest rank, then the leftmost pair.
    key: std::cmp::Reverse<(u32, usize)>,
    right: usize,
    left_piece: u32,
    right_piece: u32,
    result: u32,
}

/// Tokenizes one byte-encoded word, appending ids to `out`.
pub(super) fn tokenize_word(
    vocab: &Vocab,
    merges: &Merges,
    word: &[u8],
    ignore_merges: bool,
    out: &mut Vec<u32>,
) {
    if ignore_merges && let Some(id) = vocab.lookup(word) {
        out.push(id);
        return;
    }
    let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
    let mut offs = 0;
    while offs < word.len() {
        let len = super::spm::utf8_len(word[offs]).min(word.len() - offs);
        let index = symbols.len();
        symbols.push(Symbol {
            start: offs,
            len,
            piece: merges.piece(vocab, &word[offs..offs + len]),
            prev: index.checked_sub(1),
            next: None,
        });
        offs += len;
        if offs < word.len() {
            symbols[index].next = Some(index + 1);
        }
    }

    let mut queue = BinaryHeap::new();
    let try_add =
        |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize, right: usize| {
            let (a, b) = (symbols[left].piece, symbols[right].piece);
            if a == NO_PIECE || b == NO_PIECE {
                return;
            }
            if let Some(m) = merges.pairs.get(&pair_key(a, b)) {
                queue.push(Bigram {
                    key: std::cmp::Reverse((m.rank, left)),
                    right,
                    left_piece: a,
                    right_piece: b,
                    result: m.result,
                });
            }
        };
    for i in 1..symbols.len() {
        try_add(&mut queue, &symbols, i - 1, i);
    }
    while let Some(b) = queue.pop() {
        let left = b.key.0.1;
        let (l, r) = (&symbols[left], &symbols[b.right]);
        // Stale: a side changed since the pair was queued (pieces are unique per text).
        if l.len == 0 || r.len == 0 || l.piece != b.left_piece || r.piece != b.right_piece {
            continue;
        }
        let right_next = r.next;
        symbols[left].len += symbols[b.right].len;
        symbols[left].piece = b.result;
        symbols[b.right].len = 0;
        symbols[left].next = right_next;
        if let Some(n) = right_next {
            symbols[n].prev = Some(left);
        }
        if let Some(p) = symbols[left].prev {
            try_add(&mut queue, &symbols, p, left);
        }
        if let Some(n) = right_next {
            try_add(&mut queue, &symbols, left, n);
        }
    }

    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(idx) = i {
        let s = &symbols[idx];
        if (s.piece as usize) < vocab.len() {
            out.push(s.piece);
        } else {
            // Not a token: each byte that is a token on its own (llama.cpp's fallback).
            for &b in &word[s.start..s.start + s.len] {
                if let Some(id) = vocab.lookup(&[b]) {
                    out.push(id);
                }
            }
        }
        i = s.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_mapping_round_trips_and_matches_gpt2() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(t[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
