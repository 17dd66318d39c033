//! Prompt texts of a chosen length in tokens. With the model's tokenizer the length is exact
//! (counted as the server counts: BOS included); without it, it is extrapolated from the
//! server's own `usage.prompt_tokens` for two probe prompts, and marked approximate.

use ms_engine::tokenizer::Tokenizer;

use crate::load::Prompt;

/// The repeated word: one token per repetition in the tokenizers we know, so any length can
/// be reached.
pub const WORD: &str = "hello";

/// `n` repetitions of [`WORD`] separated by spaces.
pub fn text_of(n: usize) -> String {
    let mut s = String::with_capacity(n * (WORD.len() + 1));
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORD);
    }
    s
}

/// How prompt lengths are known.
pub enum Counter {
    /// Counted with the model's tokenizer.
    Exact(Box<Tokenizer>),
    /// `tokens = overhead + per_word * words`, fitted to the server's counts.
    Calibrated { overhead: f64, per_word: f64 },
}

impl Counter {
    /// Fits the linear model through two (words, tokens) observations.
    pub fn calibrated(a: (usize, u64), b: (usize, u64)) -> Option<Counter> {
        let dw = b.0 as f64 - a.0 as f64;
        if dw == 0.0 {
            return None;
        }
        let per_word = (b.1 as f64 - a.1 as f64) / dw;
        if per_word <= 0.0 {
            return None;
        }
        Some(Counter::Calibrated {
            overhead: a.1 as f64 - per_word * a.0 as f64,
            per_word,
        })
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Counter::Exact(_))
    }

    /// Tokens of `text` as the server counts them (BOS included).
    fn count(tok: &Tokenizer, text: &str) -> usize {
        ms_engine::generate::encode_prompt(tok, text, true).map_or(0, |ids| ids.len())
    }

    /// A prompt of `tokens` tokens (or the closest below it that can be reached; `tokens`
    /// says what it really is, exactly or by the fitted estimate).
    pub fn prompt(&self, tokens: usize) -> Prompt {
        match self {
            Counter::Exact(tok) => {
                let mut words = tokens.saturating_sub(1).max(1);
                let mut best: Option<(usize, usize)> = None;
                // Each pass corrects by the difference; one word is one token here, so this
                // settles at once; the bound keeps an odd tokenizer from looping.
                for _ in 0..6 {
                    let got = Self::count(tok, &text_of(words));
                    if got <= tokens && best.is_none_or(|(_, b)| got > b) {
                        best = Some((words, got));
                    }
                    if got == tokens {
                        break;
                    }
                    let next = if got < tokens {
                        words + (tokens - got)
                    } else {
                        words.saturating_sub(got - tokens).max(1)
                    };
                    if next == words {
                        break;
                    }
                    words = next;
                }
                let (words, got) = best.unwrap_or((1, Self::count(tok, WORD)));
                Prompt {
                    text: text_of(words),
                    tokens: got,
                }
            }
            Counter::Calibrated { overhead, per_word } => {
                let words = ((tokens as f64 - overhead) / per_word).floor().max(1.0) as usize;
                Prompt {
                    text: text_of(words),
                    tokens: (overhead + per_word * words as f64).round().max(1.0) as usize,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_fits_two_points() {
        // The server counted 9 tokens for 8 words and 65 for 64: BOS + one per word.
        let c = Counter::calibrated((8, 9), (64, 65)).expect("fit");
        let p = c.prompt(100);
        assert_eq!(p.tokens, 100);
        assert_eq!(p.text.split(' ').count(), 99);
        // Two tokens per word and 3 of overhead: 102 tokens is out of reach, 101 is the closest.
        let c = Counter::calibrated((10, 23), (20, 43)).expect("fit");
        let p = c.prompt(102);
        assert_eq!((p.tokens, p.text.split(' ').count()), (101, 49));
        assert!(Counter::calibrated((8, 9), (8, 9)).is_none());
        assert!(Counter::calibrated((8, 9), (16, 9)).is_none());
    }

    #[test]
    fn text_repeats_the_word() {
        assert_eq!(text_of(3), "hello hello hello");
        assert_eq!(text_of(1), "hello");
    }
}
