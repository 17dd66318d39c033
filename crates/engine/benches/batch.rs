//! Decode throughput of several sessions: one `eval_batch` step for all of them against the
//! same steps one session after another (aggregate generated tokens per second).
//!
//! `cargo bench -p ms-engine --bench batch` (env `BATCH_THREADS`, default 2; `BATCH_SESSIONS`,
//! default 8; `BATCH_STEPS`, default 32). Uses the default model (Gemma 3 270M Q4_K_M).
//! Without `--bench` (as `cargo test --benches` runs it) it does one short round as a check.

use std::time::{Duration, Instant};

use ms_engine::{BatchItem, LoadOptions, Model, Session, eval_batch};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prompts of different lengths (16 to 30 tokens), different for each session.
fn prompts(n: usize, n_vocab: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            (0..16 + 2 * i as u32)
                .map(|j| (i as u32 * 7919 + j * 104_729 + 13) % (n_vocab as u32 - 1) + 1)
                .collect()
        })
        .collect()
}

fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
        .unwrap_or(0)
}

/// CPU time of the whole process so far (user + system, all threads; Linux only, else zero).
/// Less disturbed than wall time when other processes share the cores, but it includes the
/// time pool workers spin waiting for work.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Prefills one session per prompt (not timed), then times `steps` greedy decode steps of all
/// of them, batched or one after another; returns the wall and CPU time and every generated
/// token.
fn decode(
    model: &Model,
    prompts: &[Vec<u32>],
    steps: usize,
    batched: bool,
) -> (Duration, Duration, Vec<u32>) {
    let mut sessions: Vec<Session> = prompts
        .iter()
        .map(|p| {
            let mut s = Session::new(model);
            s.eval(p).expect("prompt evaluates");
            s
        })
        .collect();
    let mut generated = Vec::new();
    let (start, cpu_start) = (Instant::now(), cpu_time());
    for _ in 0..steps {
        let next: Vec<[u32; 1]> = sessions.iter().map(|s| [argmax(s.logits())]).collect();
        generated.extend(next.iter().map(|t| t[0]));
        if batched {
            let mut items: Vec<BatchItem> = sessions
                .iter_mut()
                .zip(&next)
                .map(|(session, tokens)| BatchItem { session, tokens })
                .collect();
            eval_batch(&mut items).expect("batch evaluates");
        } else {
            for (s, t) in sessions.iter_mut().zip(&next) {
                s.eval(t).expect("token evaluates");
            }
        }
    }
    (start.elapsed(), cpu_time() - cpu_start, generated)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let threads = env_or("BATCH_THREADS", 2);
    let n = env_or("BATCH_SESSIONS", 8);
    let (steps, reps) = if full {
        (env_or("BATCH_STEPS", 32), 3)
    } else {
        (2, 1)
    };
    let path = ms_fetch::default_model().expect("the default model can be fetched");
    let model = Model::load(
        &path,
        &LoadOptions {
            threads,
            context_length: Some(256),
            ..LoadOptions::default()
        },
    )
    .expect("the default model loads");
    let prompts = prompts(n, model.info().n_vocab);
    let tokens = (n * steps) as f64;
    // Warm-up (page in the weights), then alternate the two ways so both see the same machine.
    decode(&model, &prompts, 1, true);
    let (mut one_by_one, mut together) = (Vec::new(), Vec::new());
    let (mut cpu_seq, mut cpu_bat) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (t_seq, c_seq, seq_tokens) = decode(&model, &prompts, steps, false);
        let (t_bat, c_bat, bat_tokens) = decode(&model, &prompts, steps, true);
        assert_eq!(
            seq_tokens, bat_tokens,
            "batched decoding chose other tokens"
        );
        one_by_one.push(tokens / t_seq.as_secs_f64());
        together.push(tokens / t_bat.as_secs_f64());
        cpu_seq.push(c_seq.as_secs_f64() * 1e3 / tokens);
        cpu_bat.push(c_bat.as_secs_f64() * 1e3 / tokens);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (seq, bat) = (median(&mut one_by_one), median(&mut together));
    println!(
        "{n} sessions x {steps} decode steps, {threads} threads (median of {reps}): \
         one after another {seq:.1} tok/s, batched {bat:.1} tok/s ({:.2}x)",
        bat / seq
    );
    println!(
        "CPU time per generated token: one after another {:.1} ms, batched {:.1} ms",
        median(&mut cpu_seq),
        median(&mut cpu_bat)
    );
}
