//! Splitting text at special tokens before the model tokenizer runs, with the results of
//! llama.cpp's `tokenizer_st_partition`: control, user-defined and unknown tokens are matched
//! longest text first (ties by id), each leftmost and non-overlapping inside the text that
//! earlier tokens left over. User-defined tokens are always matched; control and unknown tokens
//! only when `parse_special` is set.
//!
//! llama.cpp searches the text once per special token (6,400 of them in Gemma's vocabulary);
//! one pass over a trie first finds which of them occur at all, and only those are searched.

use std::ops::Range;

use super::vocab::{TokenType, Vocab};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Fragment {
    Text(Range<usize>),
    Token(u32),
}

struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    /// Priority rank of the special token ending here.
    rank: Option<u32>,
}

pub(super) struct SpecialTokens {
    /// Token ids by priority rank.
    by_rank: Vec<u32>,
    /// Whether the token of a rank is matched only when `parse_special` (control, unknown).
    needs_parse_special: Vec<bool>,
    /// Whether whitespace after the token of a rank is dropped (llama.cpp's RSTRIP attribute).
    rstrip: Vec<bool>,
    nodes: Vec<Node>,
}

impl SpecialTokens {
    pub(super) fn new(vocab: &Vocab) -> SpecialTokens {
        let mut ids: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&id| {
                matches!(
                    vocab.types[id as usize],
                    TokenType::Control | TokenType::UserDefined | TokenType::Unknown
                )
            })
            .collect();
        ids.sort_by_key(|&id| (std::cmp::Reverse(vocab.text(id).len()), id));
        let mut nodes = vec![Node {
            children: Vec::new(),
            rank: None,
        }];
        for (rank, &id) in ids.iter().enumerate() {
            let mut n = 0usize;
            for &b in vocab.text(id) {
                n = match nodes[n].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => nodes[n].children[i].1 as usize,
                    Err(i) => {
                        let new = nodes.len();
                        nodes[n].children.insert(i, (b, new as u32));
                        nodes.push(Node {
                            children: Vec::new(),
                            rank: None,
                        });
                        new
                    }
                };
            }
            // Two tokens with one text: the first in priority order claims every occurrence.
            nodes[n].rank.get_or_insert(rank as u32);
        }
        let needs_parse_special = ids
            .iter()
            .map(|&id| vocab.types[id as usize] != TokenType::UserDefined)
            .collect();
        SpecialTokens {
            rstrip: vec![false; ids.len()],
            by_rank: ids,
            needs_parse_special,
            nodes,
        }
    }

    /// Sets the RSTRIP attribute of a special token (`None`: of all of them).
    pub(super) fn set_rstrip(&mut self, id: Option<u32>, value: bool) {
        for (rank, &r_id) in self.by_rank.iter().enumerate() {
            if id.is_none_or(|id| id == r_id) {
                self.rstrip[rank] = value;
            }
        }
    }

    pub(super) fn partition(
        &self,
        vocab: &Vocab,
        text: &str,
        parse_special: bool,
    ) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut fragments = vec![Fragment::Text(0..text.len())];
        for rank in self.ranks_present(text.as_bytes(), parse_special) {
            let id = self.by_rank[rank as usize];
            // Special token texts are valid UTF-8, so matches fall on character boundaries.
            let Ok(needle) = std::str::from_utf8(vocab.text(id)) else {
                continue;
            };
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for f in fragments {
                let Fragment::Text(r) = f else {
                    next.push(f);
                    continue;
                };
                let mut pos = r.start;
                while let Some(m) = text[pos..r.end].find(needle) {
                    if m > 0 {
                        next.push(Fragment::Text(pos..pos + m));
                    }
                    next.push(Fragment::Token(id));
                    pos += m + needle.len();
                    if self.rstrip[rank as usize] {
                        // C's isspace, as llama.cpp trims.
                        while pos < r.end
                            && matches!(
                                text.as_bytes()[pos],
                                b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r'
                            )
                        {
                            pos += 1;
                        }
                    }
                }
                if pos < r.end {
                    next.push(Fragment::Text(pos..r.end));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// The ranks of the enabled special tokens that occur in `text`, in priority order.
    fn ranks_present(&self, text: &[u8], parse_special: bool) -> Vec<u32> {
        let mut seen = vec![false; self.by_rank.len()];
        for start in 0..text.len() {
            let mut n = 0usize;
            for &b in &text[start..] {
                match self.nodes[n].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => n = self.nodes[n].children[i].1 as usize,
                    Err(_) => break,
                }
                if let Some(rank) = self.nodes[n].rank
                    && (parse_special || !self.needs_parse_special[rank as usize])
                {
                    seen[rank as usize] = true;
                }
            }
        }
        (0..seen.len() as u32)
            .filter(|&r| seen[r as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(entries: &[(&str, TokenType)]) -> Vocab {
        let texts: Vec<String> = entries.iter().map(|e| e.0.to_string()).collect();
        let types = entries.iter().map(|e| e.1).collect();
        Vocab::new(&texts, vec![0.0; entries.len()], types)
    }

    #[test]
    fn longest_first_then_leftmost_and_control_only_when_asked() {
        use TokenType::*;
        let v = vocab(&[
            ("a", Normal),
            ("<s>", Control),
            ("\n", UserDefined),
            ("\n\n", UserDefined),
        ]);
        let st = SpecialTokens::new(&v);
        let text = "x\n\n\n<s>y";
        assert_eq!(
            st.partition(&v, text, true),
            vec![
                Fragment::Text(0..1),
                Fragment::Token(3),
                Fragment::Token(2),
                Fragment::Token(1),
                Fragment::Text(7..8),
            ]
        );
        assert_eq!(
            st.partition(&v, text, false),
            vec![
                Fragment::Text(0..1),
                Fragment::Token(3),
                Fragment::Token(2),
                Fragment::Text(4..8),
            ]
        );
        assert!(st.partition(&v, "", true).is_empty());
    }

    #[test]
    fn a_longer_token_blocks_overlapping_shorter_ones() {
        use TokenType::*;
        let v = vocab(&[
            ("ab", UserDefined),
            ("bc", UserDefined),
            ("abc", UserDefined),
        ]);
        let st = SpecialTokens::new(&v);
        assert_eq!(
            st.partition(&v, "abcbc", false),
            vec![Fragment::Token(2), Fragment::Token(1)]
        );
    }
}
