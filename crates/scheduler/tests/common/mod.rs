//! Helpers of the scheduler tests: models, requests, and reading a ticket to its end.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ms_engine::generate::{GenerateOptions, Generator, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model};
use ms_scheduler::{Config, Engine, Event, Outcome, Policy, Request, Scheduler, Ticket};

use ms_test_support::oracle_model;

pub fn load(path: &std::path::Path, ctx: usize, threads: usize, plan: &str) -> Engine {
    let model = Model::load(
        path,
        &LoadOptions {
            threads,
            context_length: Some(ctx),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf()).unwrap());
    Engine {
        model,
        tokenizer,
        plan_name: plan.to_string(),
    }
}

/// The tiny llama of the oracle set, with a context of `ctx`, on one thread: the tests run
/// side by side on few cores, and a pool's hand-offs would cost more than this model's work
/// (results do not depend on the thread count).
pub fn tiny(ctx: usize, plan: &str) -> Engine {
    load(&oracle_model("llama-spm-tiny.q8_0"), ctx, 1, plan)
}

pub fn config(policy: Policy, max_batch: usize, max_queue: usize) -> Config {
    Config {
        policy,
        max_batch,
        max_queue,
    }
}

pub fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: vec![],
    }
}

pub fn seeded(seed: u64, temperature: f32, top_p: f32, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingParams {
            seed,
            temperature,
            top_p,
            ..SamplingParams::default()
        },
        max_tokens,
        stop: vec![],
    }
}

pub fn request(engine: &Engine, text: &str, options: GenerateOptions) -> Request {
    Request {
        prompt: encode_prompt(&engine.tokenizer, text, true).unwrap(),
        options,
        timeout: None,
    }
}

/// Eight requests with different prompts (one long enough to be prefilled in chunks), lengths,
/// stop strings and sampling.
pub fn mixed_requests(engine: &Engine) -> Vec<Request> {
    let long = "The history of the city begins with a small settlement on the river, where \
                traders met to exchange salt, wool and grain; over the centuries it grew into \
                a market town, then a walled city with a cathedral, a university and a port \
                that sent ships to every coast of the known world.";
    let mut with_stop = greedy(24);
    with_stop.stop = vec![".".to_string(), "\n\n".to_string()];
    vec![
        request(engine, "Once upon a time", greedy(12)),
        request(engine, long, greedy(6)),
        request(engine, "The capital of France is", seeded(7, 0.8, 0.9, 16)),
        request(engine, "1, 2, 3, 4,", greedy(5)),
        request(engine, "In the beginning", seeded(42, 1.0, 0.95, 10)),
        request(engine, "Q: What is a cat?\nA:", with_stop),
        request(engine, long, seeded(3, 0.7, 0.8, 8)),
        request(engine, "Hello", seeded(11, 1.2, 1.0, 20)),
    ]
}

/// What a ticket delivered: the streamed tokens and text, and how it ended.
#[derive(Debug)]
pub struct Collected {
    pub tokens: Vec<u32>,
    pub text: String,
    pub end: End,
}

#[derive(Debug)]
pub enum End {
    Finished(Outcome),
    Failed(String),
    Closed,
}

impl Collected {
    pub fn outcome(&self) -> &Outcome {
        match &self.end {
            End::Finished(o) => o,
            other => panic!("expected a finished request, got {other:?}"),
        }
    }
}

pub fn collect(ticket: &mut Ticket) -> Collected {
    collect_after(ticket, (Vec::new(), String::new()))
}

/// [`collect`] when the first events were already read (`first_token`).
pub fn collect_after(ticket: &mut Ticket, read: (Vec<u32>, String)) -> Collected {
    let (mut tokens, mut text) = read;
    loop {
        match ticket.blocking_next() {
            Some(Event::Token { token, text: t, .. }) => {
                tokens.push(token);
                text.push_str(&t);
            }
            Some(Event::Finished(o)) => {
                assert_eq!(ticket.blocking_next(), None, "events after Finished");
                assert_eq!(
                    o.tokens, tokens,
                    "streamed tokens differ from the outcome's"
                );
                assert_eq!(o.text, text, "streamed text differs from the outcome's");
                // An end-of-generation token is streamed but not counted.
                let eog = usize::from(o.stop_detail == "eog");
                assert_eq!(o.completion_tokens + eog, tokens.len());
                return Collected {
                    tokens,
                    text,
                    end: End::Finished(o),
                };
            }
            Some(Event::Failed(m)) => {
                return Collected {
                    tokens,
                    text,
                    end: End::Failed(m),
                };
            }
            None => {
                return Collected {
                    tokens,
                    text,
                    end: End::Closed,
                };
            }
        }
    }
}

/// Waits for the first token of a ticket (the request is then in the batch); its token and text
/// go to `collect_after`.
pub fn first_token(ticket: &mut Ticket) -> (Vec<u32>, String) {
    match ticket.blocking_next() {
        Some(Event::Token { token, text, .. }) => (vec![token], text),
        other => panic!("expected a token, got {other:?}"),
    }
}

/// The requests one at a time through the engine's own generation loop.
pub fn reference(engine: &Engine, requests: &[Request]) -> Vec<(Vec<u32>, String)> {
    requests
        .iter()
        .map(|r| {
            let mut g = Generator::new(&engine.model);
            let out = g
                .generate(&engine.tokenizer, &r.prompt, &r.options, |_| true)
                .unwrap();
            (out.tokens, out.text)
        })
        .collect()
}

/// Submits all requests at once and reads every ticket to its end.
pub fn run_all(scheduler: &Scheduler, requests: &[Request]) -> Vec<Collected> {
    let mut tickets: Vec<Ticket> = requests
        .iter()
        .map(|r| scheduler.submit(r.clone()).unwrap())
        .collect();
    tickets.iter_mut().map(collect).collect()
}

/// Polls `cond` on the snapshot until it holds (or fails after 10 s).
pub fn wait_until(
    scheduler: &Scheduler,
    what: &str,
    cond: impl Fn(&ms_scheduler::Snapshot) -> bool,
) {
    let start = Instant::now();
    while !cond(&scheduler.snapshot()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}: {:?}",
            scheduler.snapshot()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
