//! SentencePiece-style tokenization as llama.cpp's `llm_tokenizer_spm` does it: start from
//! single characters, repeatedly merge the adjacent pair whose concatenation is the vocabulary
//! token with the highest score (leftmost on ties), and spell what never became a token as
//! `<0xXX>` byte tokens.

use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// Replaces every space by `▁` (U+2581), as SentencePiece vocabularies spell spaces.
pub(super) fn escape_whitespace(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        if b == b' ' {
            out.extend_from_slice(super::SPM_SPACE);
        } else {
            out.push(b);
        }
    }
}

/// A run of the text, linked to its neighbours (`NONE` at the ends); u32 fields keep the
/// array of a long text small.
struct Symbol {
    start: u32,
    len: u32,
    prev: u32,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// A candidate merge, 16 bytes so that the queue of a long text stays cache-friendly.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Bigram {
    /// Orders the max-heap: the highest score first, then the leftmost pair.
    key: u64,
    right: u32,
    len: u32,
}

impl Bigram {
    fn new(score: f32, left: u32, right: u32, len: u32) -> Bigram {
        // f32 bits mapped to an unsigned order that follows `f32::total_cmp`.
        let bits = score.to_bits();
        let ordered = if bits >> 31 == 1 {
            !bits
        } else {
            bits | 0x8000_0000
        };
        Bigram {
            key: (u64::from(ordered) << 32) | u64::from(u32::MAX - left),
            right,
            len,
        }
    }

    fn left(&self) -> u32 {
        u32::MAX - self.key as u32
    }
}

/// Tokenizes already-escaped text, appending ids to `out`. `byte_token` gives the token of
/// a raw byte (byte fallback) when one exists.
pub(super) fn tokenize(
    vocab: &Vocab,
    text: &[u8],
    byte_token: &dyn Fn(u8) -> Option<u32>,
    out: &mut Vec<u32>,
) {
    if text.is_empty() {
        return;
    }
    const MAX_LEN: usize = (u32::MAX / 2) as usize;
    if text.len() > MAX_LEN {
        // Offsets are u32: a text over 2 GiB is tokenized in pieces cut between characters.
        let mut cut = MAX_LEN;
        while cut > 0 && text[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        tokenize(vocab, &text[..cut], byte_token, out);
        tokenize(vocab, &text[cut..], byte_token, out);
        return;
    }
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    let mut offs = 0usize;
    while offs < text.len() {
        let len = utf8_len(text[offs]).min(text.len() - offs);
        let index = symbols.len() as u32;
        offs += len;
        symbols.push(Symbol {
            start: (offs - len) as u32,
            len: len as u32,
            prev: index.checked_sub(1).unwrap_or(NONE),
            next: if offs < text.len() { index + 1 } else { NONE },
        });
    }

    let mut queue = BinaryHeap::new();
    let try_add = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: u32, right: u32| {
        let (l, r) = (&symbols[left as usize], &symbols[right as usize]);
        let start = l.start as usize;
        let len = (l.len + r.len) as usize;
        if let Some(id) = vocab.lookup(&text[start..start + len]) {
            queue.push(Bigram::new(
                vocab.scores[id as usize],
                left,
                right,
                len as u32,
            ));
        }
    };
    for i in 1..symbols.len() as u32 {
        try_add(&mut queue, &symbols, i - 1, i);
    }

    while let Some(b) = queue.pop() {
        let (left, right) = (b.left(), b.right);
        let (l, r) = (&symbols[left as usize], &symbols[right as usize]);
        // Stale: one side was merged since this pair was queued.
        if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
            continue;
        }
        let right_next = r.next;
        let right_len = r.len;
        symbols[left as usize].len += right_len;
        symbols[right as usize].len = 0;
        symbols[left as usize].next = right_next;
        if right_next != NONE {
            symbols[right_next as usize].prev = left;
        }
        let left_prev = symbols[left as usize].prev;
        if left_prev != NONE {
            try_add(&mut queue, &symbols, left_prev, left);
        }
        if right_next != NONE {
            try_add(&mut queue, &symbols, left, right_next);
        }
    }

    let mut i = 0u32;
    while i != NONE {
        let s = &symbols[i as usize];
        let piece = &text[s.start as usize..(s.start + s.len) as usize];
        // A merged symbol is always a token; only single characters can miss.
        if let Some(id) = vocab.lookup(piece) {
            out.push(id);
        } else {
            out.extend(piece.iter().filter_map(|&b| byte_token(b)));
        }
        i = s.next;
    }
}

/// Length of the UTF-8 sequence that starts with `first` (1 for a stray continuation byte).
pub(super) fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
