//! The token table: texts, scores, types and a text-to-id index that looks up byte slices
//! without allocating (the SPM and BPE loops look up millions of substrings).

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    pub(super) fn from_gguf(v: i64) -> TokenType {
        match v {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }
}

pub(super) struct Vocab {
    bytes: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is token i's text in `bytes`.
    offsets: Vec<u32>,
    pub(super) scores: Vec<f32>,
    pub(super) types: Vec<TokenType>,
    index: TextIndex,
}

impl Vocab {
    /// `texts` in id order. An empty text becomes `[EMPTY_<id>]` as in llama.cpp, so that it can
    /// never match text. When two tokens share a text, lookups find the later one (llama.cpp).
    pub(super) fn new(texts: &[String], scores: Vec<f32>, types: Vec<TokenType>) -> Vocab {
        let total: usize = texts.iter().map(|t| t.len().max(16)).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut offsets = Vec::with_capacity(texts.len() + 1);
        offsets.push(0u32);
        for (i, t) in texts.iter().enumerate() {
            if t.is_empty() {
                bytes.extend_from_slice(format!("[EMPTY_{i}]").as_bytes());
            } else {
                bytes.extend_from_slice(t.as_bytes());
            }
            offsets.push(bytes.len() as u32);
        }
        let mut vocab = Vocab {
            bytes,
            offsets,
            scores,
            types,
            index: TextIndex::default(),
        };
        vocab.index = TextIndex::build(&vocab);
        vocab
    }

    pub(super) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(super) fn text(&self, id: u32) -> &[u8] {
        let i = id as usize;
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub(super) fn lookup(&self, text: &[u8]) -> Option<u32> {
        self.index.find(self, text)
    }
}

/// Open-addressing hash table of token ids keyed by their texts (stored in the vocabulary).
/// Each slot keeps the high half of the key's hash, so that probing past other keys rarely
/// touches their texts.
#[derive(Default)]
struct TextIndex {
    /// (id + 1, hash tag); id + 1 = 0 is an empty slot.
    slots: Vec<(u32, u32)>,
    mask: usize,
}

impl TextIndex {
    fn build(vocab: &Vocab) -> TextIndex {
        let cap = (vocab.len() * 2).next_power_of_two().max(16);
        let mut index = TextIndex {
            slots: vec![(0, 0); cap],
            mask: cap - 1,
        };
        // Inserting in the order of home slots walks the table once instead of missing the
        // cache on every token (a third of Gemma's build time otherwise). Same-text tokens share
        // a home slot and arrive in id order, so the later id wins.
        let mut order: Vec<u64> = Vec::with_capacity(vocab.len());
        let mut tags: Vec<u32> = Vec::with_capacity(vocab.len());
        for id in 0..vocab.len() as u32 {
            let h = hash(vocab.text(id));
            tags.push((h >> 32) as u32);
            order.push(((h as usize & index.mask) as u64) << 32 | u64::from(id));
        }
        order.sort_unstable();
        for key in order {
            let id = key as u32;
            let text = vocab.text(id);
            let tag = tags[id as usize];
            let mut i = (key >> 32) as usize;
            loop {
                match index.slots[i] {
                    (0, _) => {
                        index.slots[i] = (id + 1, tag);
                        break;
                    }
                    (s, t) if t == tag && vocab.text(s - 1) == text => {
                        index.slots[i].0 = id + 1;
                        break;
                    }
                    _ => i = (i + 1) & index.mask,
                }
            }
        }
        index
    }

    fn find(&self, vocab: &Vocab, text: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let h = hash(text);
        let tag = (h >> 32) as u32;
        let mut i = h as usize & self.mask;
        loop {
            match self.slots[i] {
                (0, _) => return None,
                (s, t) if t == tag && vocab.text(s - 1) == text => return Some(s - 1),
                _ => i = (i + 1) & self.mask,
            }
        }
    }
}

/// FxHash-style multiplicative hash over 8-byte words: fast for short keys; keys are
/// vocabulary entries, so adversarial collisions only slow lookups, never change results.
pub(super) fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // Fold the high bits down: the table index uses the low bits.
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_duplicate_wins_and_empty_texts_never_match() {
        let texts: Vec<String> = ["a", "", "bb", "a"].iter().map(|s| s.to_string()).collect();
        let v = Vocab::new(&texts, vec![0.0; 4], vec![TokenType::Normal; 4]);
        assert_eq!(v.lookup(b"a"), Some(3));
        assert_eq!(v.lookup(b"bb"), Some(2));
        assert_eq!(v.lookup(b""), None);
        assert_eq!(v.text(1), b"[EMPTY_1]");
        assert_eq!(v.lookup(b"b"), None);
    }
}
