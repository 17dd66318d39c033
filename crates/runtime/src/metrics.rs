//! The measured figures of one generation.
//!
//! Definitions: time to first token (TTFT) runs from the start of generation (prompt
//! evaluation included, model loading excluded) to the first sampled token. Prompt tok/s counts
//! the prompt tokens actually evaluated (a reused prefix is not) over TTFT. Generation tok/s
//! counts the tokens after the first over the time after the first. Inter-token latencies are
//! the gaps between consecutive sampled tokens; percentiles use the nearest-rank method (the
//! smallest value with at least p% of the values at or below it). Energy covers the generation
//! (prompt and steps), not loading; tokens per joule = generated tokens / joules.

use std::time::Duration;

use ms_engine::generate::Generation;
use serde::Serialize;

use crate::energy::Energy;

/// Nearest-rank percentile of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// Inter-token latency summary in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latencies {
    /// Number of gaps measured (generated tokens - 1).
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Latencies {
    /// From the times at which consecutive tokens were sampled.
    pub fn from_token_times(times: &[Duration]) -> Self {
        let mut gaps: Vec<f64> = times
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]).as_secs_f64() * 1e3)
            .collect();
        gaps.sort_by(f64::total_cmp);
        let mean = (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64);
        Self {
            count: gaps.len(),
            p50_ms: percentile(&gaps, 50.0),
            p95_ms: percentile(&gaps, 95.0),
            p99_ms: percentile(&gaps, 99.0),
            mean_ms: mean,
            max_ms: gaps.last().copied(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub prompt_tokens: usize,
    /// Prompt tokens evaluated (the rest was a reused prefix).
    pub prompt_tokens_evaluated: usize,
    pub generated_tokens: usize,
    /// Resolving, requantizing (or reusing the cached conversion) and loading the model.
    pub load_ms: f64,
    pub time_to_first_token_ms: f64,
    pub prompt_tokens_per_second: f64,
    pub generation_tokens_per_second: f64,
    pub inter_token_latency: Latencies,
    pub energy: Energy,
    /// Generated tokens per joule (= tokens per second per watt).
    pub tokens_per_joule: f64,
}

impl Metrics {
    pub fn new(generation: &Generation, load_time: Duration, energy: Energy) -> Self {
        let evaluated = generation
            .prompt_tokens
            .saturating_sub(generation.reused_tokens);
        let generated = generation.tokens.len();
        Self {
            prompt_tokens: generation.prompt_tokens,
            prompt_tokens_evaluated: evaluated,
            generated_tokens: generated,
            load_ms: ms(load_time),
            time_to_first_token_ms: ms(generation.prompt_time),
            prompt_tokens_per_second: rate(evaluated, generation.prompt_time),
            generation_tokens_per_second: rate(
                generated.saturating_sub(1),
                generation.generation_time,
            ),
            inter_token_latency: Latencies::from_token_times(&generation.token_times),
            tokens_per_joule: if energy.joules > 0.0 {
                generated as f64 / energy.joules
            } else {
                0.0
            },
            energy,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rate(n: usize, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let few = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&few, 50.0), Some(20.0));
        assert_eq!(percentile(&few, 95.0), Some(40.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latencies_are_the_gaps_between_token_times() {
        let t = |ms: u64| Duration::from_millis(ms);
        // Gaps: 10, 30, 20, 40 ms.
        let l = Latencies::from_token_times(&[t(100), t(110), t(140), t(160), t(200)]);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert_eq!(l.count, 4);
        assert!(close(l.p50_ms, 20.0), "{l:?}");
        assert!(close(l.p95_ms, 40.0), "{l:?}");
        assert!(close(l.p99_ms, 40.0), "{l:?}");
        assert!(close(l.max_ms, 40.0), "{l:?}");
        assert!(close(l.mean_ms, 25.0), "{l:?}");
        let one = Latencies::from_token_times(&[t(5)]);
        assert_eq!((one.count, one.p50_ms, one.mean_ms), (0, None, None));
    }
}
