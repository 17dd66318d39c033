//! Sampling: logits to the next token.
//!
//! The chain is llama.cpp's default order (`common/common.h`, `common_params_sampling::samplers`),
//! restricted to the samplers we implement:
//!
//! 0. the request's logit biases (OpenAI's `logit_bias`), added to the raw logits,
//! 1. penalties over the last `penalty_last_n` accepted tokens (repetition, frequency, presence),
//! 2. the plan's watermark, when one is switched on ([`crate::watermark`]): `delta` added to
//!    the green tokens of the step, chosen by the key and the previous accepted token (the
//!    prompt's last token for the first step) — before the filters and the temperature, as in
//!    Kirchenbauer et al., so the bias a draw sees is `delta / temperature`,
//! 3. top-k,
//! 4. top-p (nucleus),
//! 5. min-p,
//! 6. temperature,
//! 7. a draw from the softmax of what is left, with our own seeded RNG.
//!
//! A temperature of 0 (or below) means greedy: the highest logit after the biases and penalties,
//! ties broken by the lowest token id. The watermark marks sampled text only: a greedy run stays
//! the model's own argmax, bit for bit, with or without one (plan rule MS0807 warns of a plan
//! that asks for both). Without a watermark nothing here changes: the same candidates, the same
//! order of operations, the same bits. Candidates are always ordered by logit, then id, so every step
//! is deterministic: the same seed and logits give the same tokens on every machine.
//!
//! Log-probabilities ([`token_logprobs`], OpenAI's `logprobs`) are the log-softmax of the raw
//! model logits, before the biases and the chain: what the model thinks, not what the filters
//! left. They depend on the logits alone, so a request gets the same bits batched or alone.
//!
//! The RNG is xoshiro256** (Blackman and Vigna), seeded through splitmix64 from the 64-bit seed;
//! a draw is the top 53 bits of one output scaled to [0, 1).

use std::collections::VecDeque;

use crate::watermark::Watermark;

/// What the sampler does; the defaults are llama.cpp's (`common_params_sampling`), except the
/// seed, which is fixed rather than random so that runs are reproducible by default.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Divides the logits; 0 or below means greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 keeps all.
    pub min_p: f32,
    /// Logits of recently seen tokens: positive ones divided, negative ones multiplied; 1 = off.
    pub repeat_penalty: f32,
    /// Subtracted once per occurrence in the window.
    pub frequency_penalty: f32,
    /// Subtracted once if the token occurs in the window.
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at; 0 disables them.
    pub penalty_last_n: usize,
    pub seed: u64,
    /// Added to these tokens' logits before the chain (OpenAI's `logit_bias`, each in
    /// [-100, 100]; -100 effectively bans a token, 100 all but forces it).
    pub logit_bias: Vec<(u32, f32)>,
    /// Report the sampled token's log-probability and the `n` most likely tokens' (at most
    /// [`MAX_TOP_LOGPROBS`]); `None` computes nothing.
    pub logprobs: Option<usize>,
    /// The plan's green-list watermark; `None` (the default) leaves every logit as it was.
    pub watermark: Option<Watermark>,
}

/// Most alternatives a step reports with [`SamplingParams::logprobs`] (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Largest logit bias either way (OpenAI's range).
pub const MAX_LOGIT_BIAS: f32 = 100.0;

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
            logit_bias: Vec::new(),
            logprobs: None,
            watermark: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding: always the most likely token.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Checks the ranges; the message names the parameter and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        let finite = |name: &str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number, got {v}"))
            }
        };
        finite("temperature", self.temperature)?;
        finite("frequency penalty", self.frequency_penalty)?;
        finite("presence penalty", self.presence_penalty)?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top-p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min-p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(format!(
                "repeat penalty must be > 0 (1 = off), got {}",
                self.repeat_penalty
            ));
        }
        if let Some(&(id, b)) = self
            .logit_bias
            .iter()
            .find(|(_, b)| !(b.is_finite() && b.abs() <= MAX_LOGIT_BIAS))
        {
            return Err(format!(
                "logit bias of token {id} must be between -{MAX_LOGIT_BIAS} and {MAX_LOGIT_BIAS}, got {b}"
            ));
        }
        if let Some(n) = self.logprobs.filter(|&n| n > MAX_TOP_LOGPROBS) {
            return Err(format!(
                "top logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {n}"
            ));
        }
        if let Some(w) = &self.watermark {
            w.validate()?;
        }
        Ok(())
    }
}

/// xoshiro256**, seeded with splitmix64 (see the module note).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A token with its (adjusted) logit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
}

/// Logits to tokens, one step at a time, with the recent history the penalties need.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    recent: VecDeque<u32>,
    /// The last accepted token: the watermark's green list follows it.
    last: Option<u32>,
    /// Scratch reused by every step, so that sampling a token allocates nothing once warm.
    scratch: Scratch,
}

/// The candidate list, its probabilities and the penalty counts of one step.
#[derive(Debug, Clone, Default)]
struct Scratch {
    cands: Vec<Candidate>,
    probs: Vec<f64>,
    counts: Vec<(u32, u32)>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = Rng::new(params.seed);
        // Sized for the whole window up front (up to a bound: the window is user input), so
        // the history never reallocates.
        let window = params.penalty_last_n.min(1 << 16);
        Self {
            rng,
            recent: VecDeque::with_capacity(window),
            last: None,
            scratch: Scratch {
                counts: Vec::with_capacity(window),
                ..Scratch::default()
            },
            params,
        }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Records a token (of the prompt or generated) for the penalties, as llama.cpp's
    /// `common_sampler_accept` does.
    pub fn accept(&mut self, token: u32) {
        self.last = Some(token);
        if self.params.penalty_last_n == 0 {
            return;
        }
        if self.recent.len() == self.params.penalty_last_n {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
    }

    /// Forgets the history and restarts the RNG from the seed.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.last = None;
        self.rng = Rng::new(self.params.seed);
    }

    /// The next token for these logits (one per vocabulary entry). Does not [`accept`] it.
    ///
    /// [`accept`]: Sampler::accept
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        if p.temperature <= 0.0
            && p.logit_bias.is_empty()
            && (self.recent.is_empty() || penalties_off(p))
        {
            // Plain greedy: no candidate list (262k entries for Gemma) needed.
            return argmax(logits);
        }
        let Scratch {
            cands,
            probs,
            counts,
        } = &mut self.scratch;
        cands.clear();
        cands.extend(logits.iter().enumerate().map(|(i, &l)| Candidate {
            id: i as u32,
            // A NaN logit (a broken model) can never win.
            logit: if l.is_nan() { f32::NEG_INFINITY } else { l },
        }));
        if cands.is_empty() {
            return 0;
        }
        apply_logit_bias(cands, &p.logit_bias);
        penalties_with(cands, &self.recent, p, counts);
        if p.temperature <= 0.0 {
            return greedy(cands);
        }
        if let (Some(w), Some(prev)) = (&p.watermark, self.last) {
            // Candidates are still in id order (nothing has sorted them yet).
            w.apply(cands, prev);
        }
        top_k(cands, p.top_k);
        top_p_with(cands, p.top_p, probs);
        min_p(cands, p.min_p);
        temperature(cands, p.temperature);
        draw_with(cands, self.rng.next_f64(), probs)
    }
}

/// Adds each bias to its token's logit (llama.cpp's `llama_sampler_logit_bias`, first in the
/// chain); ids outside the vocabulary are ignored (the server refuses them earlier).
pub fn apply_logit_bias(cands: &mut [Candidate], bias: &[(u32, f32)]) {
    for &(id, b) in bias {
        // Candidates are in id order here (the biases come first).
        if let Some(c) = cands.get_mut(id as usize).filter(|c| c.id == id) {
            c.logit += b;
        }
    }
}

/// A sampled token's log-probability and the most likely alternatives, all log-softmax of the
/// raw logits (see the module note).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprobs {
    pub token: u32,
    pub logprob: f32,
    /// The `n` most likely tokens, most likely first (equal logits: lowest id first).
    pub top: Vec<(u32, f32)>,
}

/// `token`'s log-probability under `logits` and the `top` most likely tokens'. The sum runs in
/// f64 in vocabulary order, so the result is a function of the logits' bits alone.
pub fn token_logprobs(logits: &[f32], token: u32, top: usize) -> TokenLogprobs {
    let clean = |l: f32| if l.is_nan() { f32::NEG_INFINITY } else { l };
    let max = logits
        .iter()
        .map(|&l| clean(l))
        .fold(f32::NEG_INFINITY, f32::max);
    let log_z = if max.is_finite() {
        let sum: f64 = logits
            .iter()
            .map(|&l| (f64::from(clean(l)) - f64::from(max)).exp())
            .sum();
        f64::from(max) + sum.ln()
    } else {
        // No finite logit: nothing has a probability.
        f64::INFINITY
    };
    let logprob = |l: f32| (f64::from(clean(l)) - log_z) as f32;
    // The best `top`, kept sorted by insertion (top is at most 20: cheaper than a sort).
    let mut best: Vec<Candidate> = Vec::with_capacity(top + 1);
    if top > 0 {
        for (i, &l) in logits.iter().enumerate() {
            let c = Candidate {
                id: i as u32,
                logit: clean(l),
            };
            if best.len() == top && by_logit(&c, &best[top - 1]).is_ge() {
                continue;
            }
            let at = best.partition_point(|b| by_logit(b, &c).is_lt());
            best.insert(at, c);
            best.truncate(top);
        }
    }
    TokenLogprobs {
        token,
        logprob: logits
            .get(token as usize)
            .map_or(f32::NEG_INFINITY, |&l| logprob(l)),
        top: best.iter().map(|c| (c.id, logprob(c.logit))).collect(),
    }
}

/// llama.cpp's `llama_sampler_penalties_apply`: for each token seen `count` times in the window,
/// a positive logit is divided by the repeat penalty and a negative one multiplied, then
/// `count * frequency + presence` is subtracted.
pub fn apply_penalties(cands: &mut [Candidate], recent: &VecDeque<u32>, p: &SamplingParams) {
    penalties_with(cands, recent, p, &mut Vec::new());
}

/// [`apply_penalties`] counting in `counts` (scratch).
fn penalties_with(
    cands: &mut [Candidate],
    recent: &VecDeque<u32>,
    p: &SamplingParams,
    counts: &mut Vec<(u32, u32)>,
) {
    if penalties_off(p) || recent.is_empty() {
        return;
    }
    counts.clear();
    for &t in recent {
        match counts.iter_mut().find(|(id, _)| *id == t) {
            Some((_, c)) => *c += 1,
            None => counts.push((t, 1)),
        }
    }
    for &(id, count) in counts.iter() {
        // Candidates are still in id order here (penalties come first in the chain).
        let Some(c) = cands.get_mut(id as usize).filter(|c| c.id == id) else {
            continue;
        };
        if c.logit <= 0.0 {
            c.logit *= p.repeat_penalty;
        } else {
            c.logit /= p.repeat_penalty;
        }
        c.logit -= count as f32 * p.frequency_penalty + p.presence_penalty;
    }
}

fn penalties_off(p: &SamplingParams) -> bool {
    p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0
}

/// The index of the highest logit, the lowest on ties; NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_logit = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best_logit {
            best = i;
            best_logit = l;
        }
    }
    best as u32
}

/// Highest logit first; equal logits by lowest id.
fn by_logit(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// The highest logit, ties broken by the lowest id.
pub fn greedy(cands: &[Candidate]) -> u32 {
    cands
        .iter()
        .min_by(|a, b| by_logit(a, b))
        .map_or(0, |c| c.id)
}

/// Keeps the `k` best (all when `k` is 0 or at least the count); leaves `cands` sorted.
pub fn top_k(cands: &mut Vec<Candidate>, k: usize) {
    if k > 0 && k < cands.len() {
        cands.select_nth_unstable_by(k - 1, by_logit);
        cands.truncate(k);
    }
    cands.sort_unstable_by(by_logit);
}

/// Probabilities of sorted candidates (softmax, max subtracted), into `probs`.
fn softmax(cands: &[Candidate], probs: &mut Vec<f64>) {
    let max = cands.first().map_or(0.0, |c| c.logit);
    probs.clear();
    probs.extend(cands.iter().map(|c| f64::from(c.logit - max).exp()));
    let sum: f64 = probs.iter().sum();
    for q in probs.iter_mut() {
        *q = if sum > 0.0 { *q / sum } else { 0.0 };
    }
}

/// Keeps the shortest prefix of the sorted candidates whose probability reaches `p` (at least
/// one). Expects sorted candidates.
pub fn top_p(cands: &mut Vec<Candidate>, p: f32) {
    top_p_with(cands, p, &mut Vec::new());
}

/// [`top_p`] with `probs` as scratch.
fn top_p_with(cands: &mut Vec<Candidate>, p: f32, probs: &mut Vec<f64>) {
    if p >= 1.0 || cands.len() <= 1 {
        return;
    }
    softmax(cands, probs);
    let mut cum = 0.0;
    let mut keep = cands.len();
    for (i, q) in probs.iter().enumerate() {
        cum += q;
        if cum >= f64::from(p) {
            keep = i + 1;
            break;
        }
    }
    cands.truncate(keep.max(1));
}

/// Keeps the candidates at least `p` times as likely as the best one: in logits,
/// `logit >= max + ln(p)` (llama.cpp's form). Expects sorted candidates.
pub fn min_p(cands: &mut Vec<Candidate>, p: f32) {
    if p <= 0.0 || cands.len() <= 1 {
        return;
    }
    let Some(max) = cands.first().map(|c| c.logit) else {
        return;
    };
    let floor = max + p.ln();
    let keep = cands.iter().take_while(|c| c.logit >= floor).count();
    cands.truncate(keep.max(1));
}

pub fn temperature(cands: &mut [Candidate], t: f32) {
    for c in cands {
        c.logit /= t;
    }
}

/// The candidate where the cumulative softmax first exceeds `u` (in [0, 1)).
pub fn draw(cands: &[Candidate], u: f64) -> u32 {
    draw_with(cands, u, &mut Vec::new())
}

/// [`draw`] with `probs` as scratch.
fn draw_with(cands: &[Candidate], u: f64, probs: &mut Vec<f64>) -> u32 {
    softmax(cands, probs);
    let mut cum = 0.0;
    for (c, q) in cands.iter().zip(probs.iter()) {
        cum += q;
        if u < cum {
            return c.id;
        }
    }
    // Rounding left the sum just below u: the last candidate with any mass.
    cands
        .iter()
        .zip(probs.iter())
        .rev()
        .find(|(_, q)| **q > 0.0)
        .or(cands.first().map(|c| (c, &0.0)))
        .map_or(0, |(c, _)| c.id)
}
