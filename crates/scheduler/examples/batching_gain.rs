//! The batching gain: aggregate generation tok/s of N concurrent requests (max batch N) against
//! the same requests one at a time (max batch 1), and the same requests one by one through the
//! engine's own generation loop (the scheduler's overhead).
//!
//! ```text
//! cargo build --release -p ms-scheduler --example batching_gain
//! target/release/examples/batching_gain [MODEL.gguf] [--threads 2] [--requests 8] [--tokens 64]
//! ```
//! Without a model path it uses the default model (Gemma 3 270M Q4_K_M, fetched when missing).
//! Every request is greedy with its own prompt and generates exactly `--tokens` tokens (no
//! end-of-generation stop), so both runs do the same work; their tokens are checked equal.

use std::sync::Arc;
use std::time::Instant;

use ms_engine::generate::{GenerateOptions, Generator, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model};
use ms_scheduler::{Config, Engine, Event, Policy, Request, Scheduler};

const PROMPTS: [&str; 8] = [
    "Once upon a time",
    "The capital of France is",
    "In a distant galaxy, the crew of the starship",
    "Here is a recipe for bread:",
    "The three laws of motion are",
    "Dear diary, today",
    "def fibonacci(n):",
    "The weather tomorrow will be",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut model_path = None;
    let (mut threads, mut n, mut tokens) = (2usize, 8usize, 64usize);
    while let Some(a) = args.next() {
        let mut value = || -> Result<usize, Box<dyn std::error::Error>> {
            Ok(args.next().ok_or(format!("{a} needs a value"))?.parse()?)
        };
        match a.as_str() {
            "--threads" => threads = value()?,
            "--requests" => n = value()?,
            "--tokens" => tokens = value()?,
            _ => model_path = Some(std::path::PathBuf::from(a)),
        }
    }
    let path = match model_path {
        Some(p) => p,
        None => ms_fetch::default_model()?,
    };
    let model = Model::load(
        &path,
        &LoadOptions {
            threads,
            context_length: Some(1024),
            ..LoadOptions::default()
        },
    )?;
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
    let options = GenerateOptions {
        sampling: SamplingParams {
            // Greedy without stopping at end-of-generation: a fixed amount of work.
            penalty_last_n: 0,
            ..SamplingParams::greedy()
        },
        max_tokens: tokens,
        stop: vec![],
    };
    let requests: Vec<Request> = (0..n)
        .map(|i| {
            Ok(Request {
                prompt: encode_prompt(&tokenizer, PROMPTS[i % PROMPTS.len()], true)?,
                options: options.clone(),
                timeout: None,
            })
        })
        .collect::<Result<_, ms_engine::generate::GenerateError>>()?;
    let engine = Engine {
        model: model.clone(),
        tokenizer: Arc::clone(&tokenizer),
        plan_name: "bench".into(),
    };

    // The same requests one after the other through the engine's own loop: the scheduler's
    // overhead is the difference to max_batch 1.
    let start = Instant::now();
    let mut direct_tokens = Vec::new();
    for r in &requests {
        let out = Generator::new(&model).generate(&tokenizer, &r.prompt, &options, |_| true)?;
        direct_tokens.push(out.tokens);
    }
    let direct =
        direct_tokens.iter().map(Vec::len).sum::<usize>() as f64 / start.elapsed().as_secs_f64();
    println!("engine loop, one by one: {direct:.1} tok/s aggregate");

    let mut results = Vec::new();
    for max_batch in [1, n] {
        let scheduler = Scheduler::start(
            engine.clone(),
            Config {
                policy: Policy::Fifo,
                max_batch,
                max_queue: n,
            },
        );
        let start = Instant::now();
        let mut tickets: Vec<_> = requests
            .iter()
            .map(|r| scheduler.submit(r.clone()))
            .collect::<Result<_, _>>()?;
        let mut outs = Vec::new();
        for t in &mut tickets {
            let mut toks = Vec::new();
            while let Some(e) = t.blocking_next() {
                match e {
                    Event::Token { token, .. } => toks.push(token),
                    Event::Finished(o) => outs.push((toks.clone(), o)),
                    Event::Failed(m) => return Err(m.into()),
                }
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let generated: usize = outs.iter().map(|(t, _)| t.len()).sum();
        let mean_itl = {
            let all: Vec<f64> = outs
                .iter()
                .flat_map(|(_, o)| o.inter_token_ms.iter().copied())
                .collect();
            all.iter().sum::<f64>() / all.len().max(1) as f64
        };
        let joules: f64 = outs.iter().map(|(_, o)| o.joules).sum();
        println!(
            "max_batch {max_batch:>2}: {n} requests x {tokens} tokens in {wall:.2} s = {:.1} tok/s aggregate, mean inter-token {mean_itl:.1} ms, {:.2} tok/J",
            generated as f64 / wall,
            generated as f64 / joules.max(f64::MIN_POSITIVE),
        );
        results.push((generated as f64 / wall, outs));
    }
    let same = results.iter().all(|(_, outs)| {
        outs.iter()
            .zip(&direct_tokens)
            .all(|((tokens, _), direct)| tokens == direct)
    });
    println!(
        "batching gain x{:.2}; scheduler at max_batch 1 vs engine loop: {:+.1}%; tokens identical in all three: {same}",
        results[1].0 / results[0].0,
        (results[0].0 / direct - 1.0) * 100.0
    );
    if !same {
        return Err("batched tokens differ".into());
    }
    Ok(())
}
