//! BPE pre-tokenizers: the regexes named by `tokenizer.ggml.pre`, hand-written as llama.cpp's
//! `unicode_regex_split_custom_*` are. A split is a list of word lengths in code points; each
//! regex refines every word of the previous split, and text a regex does not match stays a
//! word of its own (llama.cpp's `unicode_regex_split`).

use super::unicode_class::RUNS;

/// The pre-tokenizers we implement, with the `tokenizer.ggml.pre` names that select them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// llama.cpp's fallback list of four regexes (`default`).
    Default,
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (`gpt-2`, ...).
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// (`llama3`, `llama-bpe`, ...).
    Llama3,
    /// Llama 3's regex with single digits (`\p{N}` instead of `\p{N}{1,3}`) (`qwen2`, ...).
    Qwen2,
    /// Every digit on its own (`\p{N}`), then GPT-2's regex (`smollm`, `refact`).
    DigitsGpt2,
}

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value, as llama.cpp maps the names.
    pub fn from_name(name: &str) -> Option<PreTokenizer> {
        Some(match name {
            "default" | "" => PreTokenizer::Default,
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" => PreTokenizer::Gpt2,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" => PreTokenizer::Llama3,
            "qwen2" | "deepseek-r1-qwen" | "megrez" => PreTokenizer::Qwen2,
            "smollm" | "refact" => PreTokenizer::DigitsGpt2,
            _ => return None,
        })
    }

    pub const SUPPORTED: &'static str = "default, gpt-2 (and phi-2, mpt, olmo, ...), \
        llama3 / llama-bpe (and falcon3, pixtral, ...), qwen2 (and deepseek-r1-qwen, ...), \
        smollm, refact";

    /// Splits `cpts` into words; returns their lengths in code points.
    pub fn split(self, cpts: &[char]) -> Vec<usize> {
        let whole = if cpts.is_empty() {
            Vec::new()
        } else {
            vec![cpts.len()]
        };
        match self {
            PreTokenizer::Gpt2 => split_gpt2(cpts, &whole),
            PreTokenizer::Llama3 => split_llama3(cpts, &whole, 3),
            PreTokenizer::Qwen2 => split_llama3(cpts, &whole, 1),
            PreTokenizer::DigitsGpt2 => {
                let s = split_each(cpts, &whole, |f| f & NUMBER != 0);
                split_gpt2(cpts, &s)
            }
            PreTokenizer::Default => {
                let s = split_runs(cpts, &whole, |c, f| {
                    f & PUNCT != 0 || matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|')
                });
                let s = split_gpt2(cpts, &s);
                let s = split_runs(cpts, &s, |_, f| f & NUMBER != 0);
                split_ascii_digit_triples(cpts, &s)
            }
        }
    }
}

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const PUNCT: u8 = 4;
const WHITESPACE: u8 = 8;
/// Set for every code point; a position outside the word has no flags at all.
const VALID: u8 = 16;

fn flags(c: char) -> u8 {
    let cp = c as u32;
    let i = RUNS.partition_point(|&(start, _)| start <= cp);
    let class = RUNS.get(i.wrapping_sub(1)).map_or(0, |r| r.1);
    let mut f = VALID
        | match class {
            1 => LETTER,
            2 => NUMBER,
            3 => PUNCT,
            _ => 0,
        };
    // Rust's White_Space set is the one llama.cpp's tables use for \s.
    if c.is_whitespace() {
        f |= WHITESPACE;
    }
    f
}

/// One word of a split with bounds-checked access: outside the word, flags are 0 and the code
/// point is `None`, like llama.cpp's `OUT_OF_RANGE`.
struct Word<'a> {
    cpts: &'a [char],
    flags: &'a [u8],
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

impl Word<'_> {
    fn cpt(&self, pos: usize) -> Option<char> {
        if pos < self.end {
            Some(self.cpts[pos])
        } else {
            None
        }
    }
    fn flags(&self, pos: usize) -> u8 {
        if pos < self.end { self.flags[pos] } else { 0 }
    }
    /// Ends the current token at `end`; returns its length.
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

fn for_each_word(
    cpts: &[char],
    lengths: &[usize],
    mut f: impl FnMut(&mut Word<'_>, usize),
) -> Vec<usize> {
    let all_flags: Vec<u8> = cpts.iter().map(|&c| flags(c)).collect();
    let mut out = Vec::with_capacity(lengths.len());
    let mut start = 0usize;
    for &len in lengths {
        let mut w = Word {
            cpts,
            flags: &all_flags,
            end: start + len,
            prev_end: start,
            out: &mut out,
        };
        f(&mut w, start);
        start += len;
    }
    out
}

fn fold_case(c: Option<char>, fold: bool) -> Option<char> {
    let c = c?;
    Some(if fold { c.to_ascii_lowercase() } else { c })
}

/// `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (case-insensitively if `fold`): the match length.
fn contraction(w: &Word<'_>, pos: usize, fold: bool) -> Option<usize> {
    if w.cpt(pos) != Some('\'') {
        return None;
    }
    let n1 = fold_case(w.cpt(pos + 1), fold)?;
    if matches!(n1, 's' | 't' | 'm' | 'd') {
        return Some(2);
    }
    let n2 = fold_case(w.cpt(pos + 2), fold)?;
    match (n1, n2) {
        ('r', 'e') | ('v', 'e') | ('l', 'l') => Some(3),
        _ => None,
    }
}

/// ` ?X+` at `pos` for a class X of flags: the end of the match, if any.
fn space_then_run(w: &Word<'_>, pos: usize, class: impl Fn(u8) -> bool) -> Option<usize> {
    let mut p = pos + usize::from(w.cpts[pos] == ' ');
    if !class(w.flags(p)) {
        return None;
    }
    while class(w.flags(p)) {
        p += 1;
    }
    Some(p)
}

fn is_letter(f: u8) -> bool {
    f & LETTER != 0
}
fn is_number(f: u8) -> bool {
    f & NUMBER != 0
}
/// `[^\s\p{L}\p{N}]` inside the word.
fn is_other(f: u8) -> bool {
    f & (WHITESPACE | LETTER | NUMBER) == 0 && f != 0
}

/// Whitespace at `pos`: `\s+(?!\S)` (leaving the last space to the next word when a
/// non-space follows), else `\s+`. The end of the match, if any.
fn whitespace_run(w: &Word<'_>, pos: usize) -> Option<usize> {
    let mut n = 0;
    while w.flags(pos + n) & WHITESPACE != 0 {
        n += 1;
    }
    if n > 1 && w.cpt(pos + n).is_some() {
        Some(pos + n - 1)
    } else if n > 0 {
        Some(pos + n)
    } else {
        None
    }
}

fn split_gpt2(cpts: &[char], lengths: &[usize]) -> Vec<usize> {
    for_each_word(cpts, lengths, |w, start| {
        let mut pos = start;
        while pos < w.end {
            let end = contraction(w, pos, false)
                .map(|n| pos + n)
                .or_else(|| space_then_run(w, pos, is_letter))
                .or_else(|| space_then_run(w, pos, is_number))
                .or_else(|| space_then_run(w, pos, is_other))
                .or_else(|| whitespace_run(w, pos))
                .unwrap_or(pos + 1);
            pos = end;
            w.add(pos);
        }
    })
}

fn split_llama3(cpts: &[char], lengths: &[usize], max_digits: usize) -> Vec<usize> {
    for_each_word(cpts, lengths, |w, start| {
        let mut pos = start;
        while pos < w.end {
            let cpt = w.cpts[pos];
            let f = w.flags(pos);
            if let Some(n) = contraction(w, pos, true) {
                pos += n;
                w.add(pos);
                continue;
            }
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !(cpt == '\r' || cpt == '\n' || is_number(f))
                && (is_letter(f) || is_letter(w.flags(pos + 1)))
            {
                pos += 1;
                while is_letter(w.flags(pos)) {
                    pos += 1;
                }
                w.add(pos);
                continue;
            }
            // `\p{N}{1,max_digits}`
            if is_number(f) {
                let mut ini = pos;
                while is_number(w.flags(pos)) {
                    pos += 1;
                    if pos - ini >= max_digits {
                        w.add(pos);
                        ini = pos;
                    }
                }
                w.add(pos);
                continue;
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            if let Some(mut end) = space_then_run(w, pos, is_other) {
                while matches!(w.cpt(end), Some('\r' | '\n')) {
                    end += 1;
                }
                pos = end;
                w.add(pos);
                continue;
            }
            // `\s*[\r\n]+`: up to the last line break of the whitespace run.
            let mut n = 0;
            let mut last_break_end = None;
            while w.flags(pos + n) & WHITESPACE != 0 {
                if matches!(w.cpt(pos + n), Some('\r' | '\n')) {
                    last_break_end = Some(pos + n + 1);
                }
                n += 1;
            }
            pos = last_break_end
                .or_else(|| whitespace_run(w, pos))
                .unwrap_or(pos + 1);
            w.add(pos);
        }
    })
}

/// `[class]+` as a regex of its own: runs of the class become words, and so does the text
/// between them.
fn split_runs(cpts: &[char], lengths: &[usize], class: impl Fn(char, u8) -> bool) -> Vec<usize> {
    for_each_word(cpts, lengths, |w, start| {
        let mut pos = start;
        while pos < w.end {
            let inside = class(w.cpts[pos], w.flags[pos]);
            while pos < w.end && class(w.cpts[pos], w.flags[pos]) == inside {
                pos += 1;
            }
            w.add(pos);
        }
    })
}

/// `X` for a one-character class X: each such character becomes a word, and so does the text
/// between them.
fn split_each(cpts: &[char], lengths: &[usize], class: impl Fn(u8) -> bool) -> Vec<usize> {
    for_each_word(cpts, lengths, |w, start| {
        for pos in start..w.end {
            if class(w.flags[pos]) {
                w.add(pos);
                w.add(pos + 1);
            }
        }
        w.add(w.end);
    })
}

/// `[0-9][0-9][0-9]`: each leftmost group of three ASCII digits becomes a word.
fn split_ascii_digit_triples(cpts: &[char], lengths: &[usize]) -> Vec<usize> {
    for_each_word(cpts, lengths, |w, start| {
        let mut pos = start;
        while pos + 3 <= w.end {
            if w.cpts[pos..pos + 3].iter().all(char::is_ascii_digit) {
                w.add(pos);
                pos += 3;
                w.add(pos);
            } else {
                pos += 1;
            }
        }
        w.add(w.end);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, text: &str) -> Vec<String> {
        let cpts: Vec<char> = text.chars().collect();
        let mut at = 0;
        pre.split(&cpts)
            .into_iter()
            .map(|n| {
                let w: String = cpts[at..at + n].iter().collect();
                at += n;
                w
            })
            .collect()
    }

    #[test]
    fn gpt2_regex() {
        assert_eq!(
            words(PreTokenizer::Gpt2, "Hello  world's 123\tx  "),
            ["Hello", " ", " world", "'s", " 123", "\t", "x", "  "]
        );
        assert_eq!(words(PreTokenizer::Gpt2, "a\n\n b"), ["a", "\n\n", " b"]);
    }

    #[test]
    fn llama3_and_qwen2_regexes() {
        assert_eq!(
            words(PreTokenizer::Llama3, "I'M 12345 ok!!\n\n  \nx"),
            ["I", "'M", " ", "123", "45", " ok", "!!\n\n", "  \n", "x"]
        );
        assert_eq!(words(PreTokenizer::Qwen2, "(12)é"), ["(", "1", "2", ")é"]);
    }

    /// Random texts split by Python's `regex` module with the same regexes
    /// (testdata/gen_pretokenizer_splits.py).
    #[test]
    fn matches_a_regex_engine_on_random_texts() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("testdata/pretokenizer_splits.json")).unwrap();
        let cases = cases.as_array().unwrap();
        assert!(cases.len() > 300);
        let mut failures = Vec::new();
        for c in cases {
            let text = c["text"].as_str().unwrap();
            for (name, pre) in [
                ("gpt2", PreTokenizer::Gpt2),
                ("llama3", PreTokenizer::Llama3),
                ("qwen2", PreTokenizer::Qwen2),
                ("default", PreTokenizer::Default),
                ("smollm", PreTokenizer::DigitsGpt2),
            ] {
                let want: Vec<&str> = c[name]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
                    .collect();
                let got = words(pre, text);
                if got != want {
                    failures.push(format!("{name} {text:?}: want {want:?} got {got:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn default_regex_list() {
        assert_eq!(
            words(PreTokenizer::Default, "a+b=12345, x"),
            ["a", "+", "b", "=", "123", "45", ",", " x"]
        );
    }
}
