//! The load generator: `concurrency` clients, one OS thread each, every client sending streamed
//! completions back to back (closed loop) until `duration` has passed; a request still running
//! then gets [`tail`] more time and is cut off after it (counted as unfinished, its latency a
//! lower bound). Prompts are taken in turn from the profile's list, client `i` starting at
//! prompt `i`, so that every run of the same profile sends the same requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::client::{Client, Outcome};

/// A prompt and how many tokens it is (BOS included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    #[serde(skip)]
    pub text: String,
    pub tokens: usize,
}

/// What the load looks like, derived from the spec.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Clients sending at once (`serving.maxConcurrency`, default 1).
    pub concurrency: usize,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// How long requests in flight when `duration` ends may still run before they are cut off
    /// ([`tail`] of the duration unless given).
    #[serde(serialize_with = "seconds")]
    pub tail: Duration,
    /// Tokens generated per request (`max_tokens`).
    pub max_tokens: u64,
    /// The prompt lengths, in the order they are sent.
    pub prompts: Vec<Prompt>,
    /// The model name the requests carry.
    pub model: String,
    /// How the prompt lengths were chosen, in words.
    pub description: String,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One request of the run.
#[derive(Debug, Clone)]
pub struct Record {
    pub client: usize,
    /// When it was sent, from the start of the run.
    pub sent: Duration,
    pub prompt_tokens: usize,
    pub outcome: Outcome,
}

/// Everything the run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub records: Vec<Record>,
    /// From the start to the end of the last request.
    pub wall: Duration,
}

/// The completion request of `prompt` as sent by the load generator: greedy, streamed.
pub fn request_body(model: &str, prompt: &str, max_tokens: u64) -> serde_json::Value {
    json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

/// How long requests in flight at the end of the load may still run: as long as the load
/// itself, at least 30 s (a long prompt on a busy machine), at most 120 s.
pub fn tail(duration: Duration) -> Duration {
    duration.clamp(Duration::from_secs(30), Duration::from_secs(120))
}

/// Runs `profile` against `client`'s server.
pub fn run(client: &Client, profile: &Profile) -> Run {
    let end = profile.duration + profile.tail;
    let prompts = Arc::new(profile.prompts.clone());
    let start = Instant::now();
    let handles: Vec<_> = (0..profile.concurrency.max(1))
        .map(|i| {
            let client = client.clone();
            let prompts = Arc::clone(&prompts);
            let model = profile.model.clone();
            let (duration, tail, max_tokens, step) = (
                profile.duration,
                profile.tail,
                profile.max_tokens,
                profile.concurrency.max(1),
            );
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut k = i;
                while start.elapsed() < duration && !prompts.is_empty() {
                    let p = &prompts[k % prompts.len()];
                    let sent = start.elapsed();
                    let left = end.saturating_sub(sent).max(Duration::from_millis(1));
                    let mut outcome = client
                        .stream_completion(&request_body(&model, &p.text, max_tokens), Some(left));
                    if outcome.unfinished()
                        && outcome.latency + Duration::from_millis(100) >= left
                        && start.elapsed() >= end
                    {
                        outcome.error = Some(format!(
                            "still running {:.0} s after the load ended: cut off",
                            tail.as_secs_f64()
                        ));
                    }
                    let failed_fast = !outcome.ok() && outcome.latency < Duration::from_millis(5);
                    out.push(Record {
                        client: i,
                        sent,
                        prompt_tokens: p.tokens,
                        outcome,
                    });
                    // A server refusing at once (429, connection refused) would otherwise be
                    // hammered in a tight loop.
                    if failed_fast {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    k += step;
                }
                out
            })
        })
        .collect();
    let mut records = Vec::new();
    for h in handles {
        // A client thread only panics on a bug of ours; its requests are then missing.
        if let Ok(r) = h.join() {
            records.extend(r);
        }
    }
    records.sort_by_key(|r| (r.sent, r.client));
    Run {
        records,
        wall: start.elapsed(),
    }
}

/// Percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Spread {
    pub fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let p = |q| ms_runtime::percentile(&ms, q);
        Spread {
            count: ms.len(),
            p50_ms: p(50.0),
            p95_ms: p(95.0),
            p99_ms: p(99.0),
            max_ms: ms.last().copied(),
        }
    }
}

/// The run in numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Responses by HTTP status (`0`: no response).
    pub statuses: std::collections::BTreeMap<u16, usize>,
    /// The first few distinct failure messages.
    pub errors: Vec<String>,
    /// Requests that timed out or were cut off at the end of the load (part of `failed`).
    pub unfinished: usize,
    pub wall_seconds: f64,
    /// Succeeded requests over the wall time.
    pub requests_per_second: f64,
    /// End-to-end latency of the succeeded and the unfinished requests (the latter counted at
    /// the time they ran, a lower bound: with any unfinished, the percentiles are lower bounds).
    pub latency: Spread,
    /// Time to the first streamed token of the succeeded requests.
    pub ttft: Spread,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Summary {
    pub fn of(run: &Run) -> Self {
        let ok: Vec<&Record> = run.records.iter().filter(|r| r.outcome.ok()).collect();
        let mut statuses = std::collections::BTreeMap::new();
        let mut errors: Vec<String> = Vec::new();
        for r in &run.records {
            *statuses.entry(r.outcome.status).or_insert(0) += 1;
            if let Some(e) = &r.outcome.error
                && errors.len() < 5
                && !errors.contains(e)
            {
                errors.push(e.clone());
            }
        }
        let wall = run.wall.as_secs_f64();
        Summary {
            requests: run.records.len(),
            succeeded: ok.len(),
            failed: run.records.len() - ok.len(),
            unfinished: run
                .records
                .iter()
                .filter(|r| r.outcome.unfinished())
                .count(),
            statuses,
            errors,
            wall_seconds: wall,
            requests_per_second: if wall > 0.0 {
                ok.len() as f64 / wall
            } else {
                0.0
            },
            latency: Spread::of(
                run.records
                    .iter()
                    .filter(|r| r.outcome.ok() || r.outcome.unfinished())
                    .map(|r| ms(r.outcome.latency))
                    .collect(),
            ),
            ttft: Spread::of(ok.iter().filter_map(|r| r.outcome.ttft.map(ms)).collect()),
            prompt_tokens: ok
                .iter()
                .map(|r| r.outcome.prompt_tokens.unwrap_or(r.prompt_tokens as u64))
                .sum(),
            completion_tokens: ok
                .iter()
                .map(|r| r.outcome.completion_tokens.unwrap_or(r.outcome.events))
                .sum(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The prompt lengths of the load: powers of two from 16 up to `cap`, and `cap` itself, so the
/// load covers short and long prompts up to the longest the spec allows.
pub fn prompt_lengths(cap: usize) -> Vec<usize> {
    let cap = cap.max(2);
    let mut v = Vec::new();
    let mut n = 16usize;
    while n < cap {
        v.push(n);
        n *= 2;
    }
    v.push(cap);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: u16, latency_ms: u64, ttft_ms: Option<u64>, tokens: u64) -> Record {
        Record {
            client: 0,
            sent: Duration::ZERO,
            prompt_tokens: 10,
            outcome: Outcome {
                status,
                ttft: ttft_ms.map(Duration::from_millis),
                latency: Duration::from_millis(latency_ms),
                prompt_tokens: None,
                completion_tokens: Some(tokens),
                events: tokens,
                error: (status != 200).then(|| format!("HTTP {status}")),
            },
        }
    }

    #[test]
    fn summary_counts_only_successes_in_latency_and_rate() {
        // 20 successes with latencies 10, 20, ..., 200 ms; p95 (nearest rank) is the 19th.
        let mut records: Vec<Record> = (1..=20).map(|i| rec(200, i * 10, Some(i), 4)).collect();
        records.push(rec(429, 1, None, 0));
        records.push(rec(429, 1, None, 0));
        let s = Summary::of(&Run {
            records: records.clone(),
            wall: Duration::from_secs(4),
        });
        assert_eq!((s.requests, s.succeeded, s.failed), (22, 20, 2));
        assert_eq!(s.unfinished, 0);
        assert_eq!(s.statuses.get(&429), Some(&2));
        assert_eq!(s.errors, vec!["HTTP 429".to_string()]);
        assert_eq!(s.latency.p95_ms, Some(190.0));
        assert_eq!(s.latency.p50_ms, Some(100.0));
        assert_eq!(s.latency.max_ms, Some(200.0));
        // Two streams cut off after 5 s count in the latency (at 5 s), not in the rate.
        let mut cut = rec(200, 5000, Some(30), 2);
        cut.outcome.error = Some("timed out".into());
        records.push(cut.clone());
        records.push(cut);
        let s = Summary::of(&Run {
            records,
            wall: Duration::from_secs(4),
        });
        assert_eq!((s.failed, s.unfinished, s.latency.count), (4, 2, 22));
        // 22 values: rank ceil(0.95 * 22) = 21 is the first 5000 ms.
        assert_eq!(s.latency.p95_ms, Some(5000.0));
        assert_eq!(s.latency.p50_ms, Some(110.0));
        assert_eq!(s.ttft.p95_ms, Some(19.0));
        assert!((s.requests_per_second - 5.0).abs() < 1e-12);
        assert_eq!((s.prompt_tokens, s.completion_tokens), (200, 80));
    }

    #[test]
    fn prompt_ladder() {
        assert_eq!(prompt_lengths(100), vec![16, 32, 64, 100]);
        assert_eq!(prompt_lengths(64), vec![16, 32, 64]);
        assert_eq!(prompt_lengths(8), vec![8]);
    }
}
