//! SentencePiece-style tokenization as llama.cpp's `llm_tokenizer_spm` does it: start from
//! single characters, repeatedly merge the adjacent pair whose concatenation is the vocabulary
//! token with the highest score (leftmost on ties), and spell what never became a token as
//! `<0xXX>` byte tokens.

use std::cmp::Ordering;
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

struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: the highest score first, then the leftmost pair.
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}

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
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    let mut offs = 0usize;
    while offs < text.len() {
        let len = utf8_len(text[offs]).min(text.len() - offs);
        let index = symbols.len();
        symbols.push(Symbol {
            start: offs,
            len,
            prev: index.checked_sub(1),
            next: None,
        });
        offs += len;
        if offs < text.len() {
            symbols[index].next = Some(index + 1);
        }
    }

    let mut queue = BinaryHeap::new();
    let try_add =
        |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize, right: usize| {
            let (l, r) = (&symbols[left], &symbols[right]);
            let len = l.len + r.len;
            if let Some(id) = vocab.lookup(&text[l.start..l.start + len]) {
                queue.push(Bigram {
                    score: vocab.scores[id as usize],
                    left,
                    right,
                    len,
                });
            }
        };
    for i in 1..symbols.len() {
        try_add(&mut queue, &symbols, i - 1, i);
    }

    while let Some(b) = queue.pop() {
        let (l, r) = (&symbols[b.left], &symbols[b.right]);
        // Stale: one side was merged since this pair was queued.
        if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
            continue;
        }
        let right_next = r.next;
        symbols[b.left].len += symbols[b.right].len;
        symbols[b.right].len = 0;
        symbols[b.left].next = right_next;
        if let Some(n) = right_next {
            symbols[n].prev = Some(b.left);
        }
        if let Some(p) = symbols[b.left].prev {
            try_add(&mut queue, &symbols, p, b.left);
        }
        if let Some(n) = right_next {
            try_add(&mut queue, &symbols, b.left, n);
        }
    }

    let mut i = Some(0usize);
    while let Some(idx) = i {
        let s = &symbols[idx];
        let piece = &text[s.start..s.start + s.len];
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
