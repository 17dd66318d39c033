//! Speed measurement in the manner of llama-bench: prompt processing (`pp`, one evaluation of a
//! prompt of `pp` tokens) and generation (`tg`, `tg` evaluations of one token each), in tokens
//! per second, the median of `reps` repetitions after one warm-up repetition.
//!
//! The token sequence is the one `shared/bench/llamacpp_bench.py` feeds llama.cpp: BOS, then the
//! tokenization of a repeated ordinary sentence, cut to `pp` tokens; generation feeds the last
//! prompt token again and again (no sampling), so only the engine is timed.

use std::time::Instant;

use crate::tokenizer::Tokenizer;
use crate::{EngineError, Model, Session};

/// The sentence repeated to make the prompt.
const SENTENCE: &str = "The quick brown fox jumps over the lazy dog. ";

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Prompt tokens evaluated at once (BOS included).
    pub pp: usize,
    /// Tokens generated one at a time after the prompt.
    pub tg: usize,
    /// Measured repetitions (one more runs first as a warm-up).
    pub reps: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            pp: 128,
            tg: 64,
            reps: 3,
        }
    }
}

/// Speeds measured by [`bench()`], in tokens per second.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub pp_tokens: usize,
    pub tg_tokens: usize,
    /// Prompt processing speed of each measured repetition.
    pub pp_tok_s: Vec<f64>,
    /// Generation speed of each measured repetition.
    pub tg_tok_s: Vec<f64>,
}

impl BenchResult {
    pub fn pp_tok_s_median(&self) -> f64 {
        median(&self.pp_tok_s)
    }

    pub fn tg_tok_s_median(&self) -> f64 {
        median(&self.tg_tok_s)
    }
}

/// The prompt of the benchmark: BOS (when the vocabulary has one) and the tokenization of a
/// repeated sentence, `pp` tokens in all.
pub fn bench_tokens(tokenizer: &Tokenizer, pp: usize) -> Vec<u32> {
    let mut toks: Vec<u32> = tokenizer.bos().into_iter().collect();
    // Each sentence is at least one token, so `pp` repetitions are always enough.
    let text = SENTENCE.repeat(pp.max(200));
    let body = tokenizer.encode(&text, false, false);
    let want = pp.saturating_sub(toks.len());
    toks.extend(body.into_iter().take(want));
    toks
}

/// Measures `model` with `options` (see the module documentation).
pub fn bench(
    model: &Model,
    tokenizer: &Tokenizer,
    options: &BenchOptions,
) -> Result<BenchResult, EngineError> {
    let BenchOptions { pp, tg, reps } = *options;
    for (name, v) in [("pp", pp), ("tg", tg), ("reps", reps)] {
        if v == 0 {
            return Err(EngineError::InvalidOption(format!(
                "bench: {name} must be at least 1"
            )));
        }
    }
    let context = model.info().context_length;
    if pp + tg > context {
        return Err(EngineError::InvalidOption(format!(
            "bench: pp + tg = {} tokens do not fit in the context of {context} positions; \
             lower --pp or --tg, or load the model with a longer context",
            pp + tg
        )));
    }
    let toks = bench_tokens(tokenizer, pp);
    if toks.len() < pp {
        return Err(EngineError::InvalidOption(format!(
            "bench: the tokenizer made only {} prompt tokens, {pp} were asked for",
            toks.len()
        )));
    }
    let last = toks[toks.len() - 1];
    let mut session = Session::new(model);
    let mut result = BenchResult {
        pp_tokens: toks.len(),
        tg_tokens: tg,
        pp_tok_s: Vec::with_capacity(reps),
        tg_tok_s: Vec::with_capacity(reps),
    };
    for rep in 0..=reps {
        session.reset();
        let t0 = Instant::now();
        session.eval(&toks)?;
        let pp_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        for _ in 0..tg {
            session.eval(&[last])?;
        }
        let tg_s = t1.elapsed().as_secs_f64();
        if rep > 0 {
            result.pp_tok_s.push(toks.len() as f64 / pp_s.max(1e-9));
            result.tg_tok_s.push(tg as f64 / tg_s.max(1e-9));
        }
    }
    Ok(result)
}

/// The median (the mean of the two middle values for an even count); 0 for no values.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
