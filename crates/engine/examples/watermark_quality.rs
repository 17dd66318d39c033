//! The watermark measured on a real model: detection rate, false positives and quality cost.
//!
//! For each of N prompts (built from 40 subjects × 5 openings) it generates `--tokens` tokens
//! twice with the same seed, once plain and once watermarked, then detects the watermark in
//! both texts as `modelspec watermark detect` does (the text re-tokenized, the key, gamma).
//! Quality cost: the mean log-probability per generated token under the unwatermarked model
//! (the log-softmax of the raw logits, the same figure the server's `logprobs` gives), watermarked
//! minus plain. Sampling is the engine's default (temperature 0.8, top-k 40, top-p 0.95,
//! min-p 0.05, `modelspec run`'s), unless flags say otherwise.
//!
//! ```sh
//! nice cargo run -p ms-engine --example watermark_quality -- [--model GGUF] [--n 200] \
//!     [--from 0] [--tokens 64] [--gamma 0.25] [--delta 2] [--temperature 0.8] [--threads 2] [--out FILE]
//! ```
//!
//! Without `--model` it runs the default model (Gemma 3 270M), fetched into the cache. One
//! JSON line per generation goes to `--out` (default `watermark_quality.jsonl`), the summary to
//! stdout.

use std::io::Write;
use std::sync::Arc;

use ms_engine::generate::{Decoding, GenerateOptions, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_engine::tokenizer::Tokenizer;
use ms_engine::watermark::{DEFAULT_Z_THRESHOLD, Watermark, WatermarkKey, detect};
use ms_engine::{LoadOptions, Model, Session};

const SUBJECTS: [&str; 40] = [
    "the Roman Empire",
    "photosynthesis",
    "jazz music",
    "the stock market",
    "volcanoes",
    "the French Revolution",
    "machine learning",
    "honey bees",
    "the Moon landing",
    "coffee",
    "the Amazon rainforest",
    "chess",
    "quantum mechanics",
    "the printing press",
    "climate change",
    "the Olympic Games",
    "ancient Egypt",
    "electric cars",
    "the human heart",
    "Shakespeare",
    "the internet",
    "the Great Wall of China",
    "vaccines",
    "football",
    "the ocean floor",
    "bread baking",
    "the Industrial Revolution",
    "black holes",
    "democracy",
    "the piano",
    "mountain climbing",
    "the Renaissance",
    "solar power",
    "dinosaurs",
    "the city of Tokyo",
    "medieval castles",
    "the theory of evolution",
    "gardening",
    "the Silk Road",
    "artificial satellites",
];

const OPENINGS: [&str; 5] = [
    "{} is",
    "Here is a short history of {}:",
    "The most surprising thing about {} is that",
    "In today's lecture we will talk about {}. First,",
    "My grandmother always told me stories about {}, and",
];

struct Args {
    model: Option<String>,
    /// Prompts `from..n` (several processes can share the work; the JSON lines merge).
    from: usize,
    n: usize,
    tokens: usize,
    gamma: f64,
    delta: f32,
    temperature: f32,
    threads: usize,
    out: String,
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> T
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .unwrap_or_else(|e| panic!("{flag} {value}: {e}"))
}

fn args() -> Args {
    let mut a = Args {
        model: None,
        from: 0,
        n: 200,
        tokens: 64,
        gamma: 0.25,
        delta: 2.0,
        temperature: SamplingParams::default().temperature,
        threads: 2,
        out: "watermark_quality.jsonl".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = Some(value),
            "--from" => a.from = parse(&flag, &value),
            "--n" => a.n = parse(&flag, &value),
            "--tokens" => a.tokens = parse(&flag, &value),
            "--gamma" => a.gamma = parse(&flag, &value),
            "--delta" => a.delta = parse(&flag, &value),
            "--temperature" => a.temperature = parse(&flag, &value),
            "--threads" => a.threads = parse(&flag, &value),
            "--out" => a.out = value,
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// One generation: its text, tokens, and the raw-logit log-probability of each token.
struct Sample {
    text: String,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
}

fn generate(model: &Model, tok: &Tokenizer, prompt: &[u32], opts: &GenerateOptions) -> Sample {
    let mut session = Session::new(model);
    let mut decoding = Decoding::new(tok, prompt, opts).expect("valid options");
    session.eval(prompt).expect("the prompt fits");
    let mut logprobs = Vec::new();
    loop {
        let step = decoding
            .step(session.logits(), session.remaining())
            .expect("a step");
        logprobs.push(step.logprobs.expect("asked for").logprob);
        if step.stop.is_some() {
            break;
        }
        session.eval(&[step.token]).expect("context left");
    }
    let (text, tokens) = decoding.into_output();
    Sample {
        text,
        tokens,
        logprobs,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() {
    let a = args();
    let path = match &a.model {
        Some(m) => m.into(),
        None => ms_fetch::default_model().expect("the default model"),
    };
    let model = Model::load(
        &path,
        &LoadOptions {
            threads: a.threads,
            context_length: Some(256),
            ..LoadOptions::default()
        },
    )
    .expect("the model loads");
    let tok = Tokenizer::from_gguf(model.gguf()).expect("its tokenizer");
    // A fixed key: the figures are reproducible (any key gives the same statistics).
    let key = Arc::new(WatermarkKey::new("bench", [0x5a; 32]).unwrap());
    let base = SamplingParams {
        temperature: a.temperature,
        logprobs: Some(0),
        ..SamplingParams::default()
    };
    let options = |seed: u64, watermark: bool| GenerateOptions {
        sampling: SamplingParams {
            seed,
            watermark: watermark.then(|| Watermark {
                key: key.clone(),
                gamma: a.gamma,
                delta: a.delta,
            }),
            ..base.clone()
        },
        max_tokens: a.tokens,
        stop: vec![],
    };
    let mut out = std::fs::File::create(&a.out).expect("the output file");
    let (mut z_wm, mut z_plain) = (Vec::new(), Vec::new());
    let (mut lp_wm, mut lp_plain) = (Vec::new(), Vec::new());
    let (mut gen_wm, mut gen_plain) = (Vec::new(), Vec::new());
    let start = std::time::Instant::now();
    for i in a.from..a.n {
        let subject = SUBJECTS[i % SUBJECTS.len()];
        let opening = OPENINGS[(i / SUBJECTS.len()) % OPENINGS.len()];
        let prompt_text = opening.replace("{}", subject);
        let prompt_text = if !opening.starts_with("{}") {
            prompt_text
        } else {
            // Capitalise a subject that opens the prompt.
            let mut c = prompt_text.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        let prompt = encode_prompt(&tok, &prompt_text, true).expect("a prompt");
        for watermark in [false, true] {
            let s = generate(&model, &tok, &prompt, &options(i as u64, watermark));
            let retokenized = tok.encode(&s.text, false, false);
            let d = detect(&key, a.gamma, &retokenized);
            let d_ids = detect(&key, a.gamma, &s.tokens);
            let lp: Vec<f64> = s.logprobs.iter().map(|&l| f64::from(l)).collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "i": i, "watermark": watermark, "prompt": prompt_text, "text": s.text,
                    "tokens": s.tokens.len(), "scored": d.scored, "green": d.green, "z": d.z,
                    "z_generated_ids": d_ids.z, "mean_logprob": mean(&lp),
                })
            )
            .expect("written");
            if watermark {
                z_wm.push(d.z);
                lp_wm.extend(lp);
                gen_wm.push(s.tokens.len());
            } else {
                z_plain.push(d.z);
                lp_plain.extend(lp);
                gen_plain.push(s.tokens.len());
            }
        }
        eprintln!(
            "{}/{} after {:.0} s: z watermarked {:.2}, plain {:.2}",
            i + 1,
            a.n,
            start.elapsed().as_secs_f64(),
            z_wm.last().unwrap(),
            z_plain.last().unwrap()
        );
    }
    let rate = |z: &[f64]| z.iter().filter(|&&z| z >= DEFAULT_Z_THRESHOLD).count();
    let median = |z: &[f64]| {
        let mut z = z.to_vec();
        z.sort_by(f64::total_cmp);
        z.get(z.len() / 2).copied().unwrap_or(0.0)
    };
    let (mw, mp) = (mean(&lp_wm), mean(&lp_plain));
    println!(
        "model {}\n{} prompts, up to {} tokens, gamma {}, delta {}, temperature {} (top-k 40, top-p 0.95, min-p 0.05), threshold z >= {}",
        path.display(),
        a.n,
        a.tokens,
        a.gamma,
        a.delta,
        a.temperature,
        DEFAULT_Z_THRESHOLD
    );
    println!(
        "watermarked: detected {}/{} ({:.1}%), median z {:.2}, mean tokens {:.1}",
        rate(&z_wm),
        z_wm.len(),
        100.0 * rate(&z_wm) as f64 / z_wm.len().max(1) as f64,
        median(&z_wm),
        mean(&gen_wm.iter().map(|&n| n as f64).collect::<Vec<_>>())
    );
    println!(
        "plain: false positives {}/{} ({:.1}%), median z {:.2}, max z {:.2}",
        rate(&z_plain),
        z_plain.len(),
        100.0 * rate(&z_plain) as f64 / z_plain.len().max(1) as f64,
        median(&z_plain),
        z_plain.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    println!(
        "mean log-prob per token under the unwatermarked model: plain {mp:.4}, watermarked {mw:.4}, shift {:.4} nats ({} and {} tokens)",
        mw - mp,
        lp_plain.len(),
        lp_wm.len()
    );
    println!("took {:.0} s", start.elapsed().as_secs_f64());
}
