//! The generation loop on the tiny llama oracle model: determinism, max tokens, stop strings,
//! streaming, prefix reuse, and the errors for empty and too long prompts.

use ms_test_support::{oracle_model, shared_dir};

use ms_engine::generate::{GenerateError, GenerateOptions, Generator, StopReason, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model};

fn load(ctx: Option<usize>) -> (Model, Tokenizer) {
    let path = oracle_model("llama-spm-tiny.q8_0");
    let model = Model::load(
        &path,
        &LoadOptions {
            threads: 2,
            context_length: ctx,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    (model, tok)
}

fn sampled(seed: u64, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingParams {
            seed,
            temperature: 1.0,
            ..SamplingParams::default()
        },
        max_tokens,
        stop: vec![],
    }
}

#[test]
fn same_seed_same_text_and_streaming_adds_up() {
    let (model, tok) = load(Some(256));
    let prompt = encode_prompt(&tok, "Once upon a time", true).unwrap();
    let run = |seed| {
        let mut g = Generator::new(&model);
        let mut streamed = String::new();
        let out = g
            .generate(&tok, &prompt, &sampled(seed, 24), |s| {
                streamed.push_str(s);
                true
            })
            .unwrap();
        assert_eq!(streamed, out.text);
        out
    };
    let a = run(5);
    let b = run(5);
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.text, b.text);
    assert_eq!(a.stop, StopReason::MaxTokens);
    assert_eq!(a.tokens.len(), 24);
    assert_ne!(run(6).tokens, a.tokens);
}

#[test]
fn greedy_matches_the_oracle_continuation() {
    let (model, tok) = load(Some(512));
    let oracle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared_dir().join("oracle/llama-spm-tiny.q8_0.json")).unwrap(),
    )
    .unwrap();
    let case = &oracle["generate"][0];
    let prompt = encode_prompt(&tok, case["prompt"].as_str().unwrap(), true).unwrap();
    let want_prompt: Vec<u32> = case["prompt_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(prompt, want_prompt);
    let want: Vec<u32> = case["greedy_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    // shared/oracle/check_oracle.py's rule: identical up to the first step where llama.cpp's
    // top-1 leads by less than 0.25 logits.
    let firm = case["greedy_margins"]
        .as_array()
        .unwrap()
        .iter()
        .take_while(|m| m.as_f64().unwrap() >= 0.25)
        .count()
        .min(16);
    assert!(firm >= 8, "the oracle case is firm for {firm} steps");
    let opts = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens: firm,
        stop: vec![],
    };
    let out = Generator::new(&model)
        .generate(&tok, &prompt, &opts, |_| true)
        .unwrap();
    assert_eq!(out.tokens, want[..firm]);
}

#[test]
fn stop_strings_end_generation_before_them() {
    let (model, tok) = load(Some(256));
    let prompt = encode_prompt(&tok, "The capital of France is", true).unwrap();
    let greedy = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens: 20,
        stop: vec![],
    };
    let full = Generator::new(&model)
        .generate(&tok, &prompt, &greedy, |_| true)
        .unwrap();
    // A stop string taken from the middle of the free-running text.
    let cut = full
        .text
        .char_indices()
        .nth(full.text.chars().count() / 2)
        .unwrap()
        .0;
    let stop: String = full.text[cut..].chars().take(3).collect();
    let first = full.text.find(&stop).unwrap();
    let opts = GenerateOptions {
        stop: vec!["never-produced".into(), stop.clone()],
        ..greedy
    };
    let mut streamed = String::new();
    let out = Generator::new(&model)
        .generate(&tok, &prompt, &opts, |s| {
            streamed.push_str(s);
            true
        })
        .unwrap();
    assert_eq!(out.stop, StopReason::StopString(stop.clone()));
    assert_eq!(out.text, full.text[..first]);
    assert_eq!(streamed, out.text, "the stop string never reaches the sink");
}

#[test]
fn sink_can_cancel() {
    let (model, tok) = load(Some(128));
    let prompt = encode_prompt(&tok, "Hello", true).unwrap();
    let mut calls = 0;
    let out = Generator::new(&model)
        .generate(&tok, &prompt, &sampled(1, 50), |_| {
            calls += 1;
            calls < 3
        })
        .unwrap();
    assert_eq!(out.stop, StopReason::Cancelled);
    assert!(out.tokens.len() < 50);
}

#[test]
fn a_longer_prompt_reuses_the_evaluated_prefix() {
    let (model, tok) = load(Some(256));
    let mut g = Generator::new(&model);
    let p1 = encode_prompt(&tok, "One two three", true).unwrap();
    let greedy = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens: 4,
        stop: vec![],
    };
    let first = g.generate(&tok, &p1, &greedy, |_| true).unwrap();
    assert_eq!(first.reused_tokens, 0);
    let mut p2 = g.tokens().to_vec();
    p2.extend(tok.encode(" four", false, false));
    let second = g.generate(&tok, &p2, &greedy, |_| true).unwrap();
    // Everything but the generated last token (sampled, never evaluated) is reused.
    assert_eq!(second.reused_tokens, p1.len() + first.tokens.len() - 1);
    // Same tokens as from a fresh session.
    let fresh = Generator::new(&model)
        .generate(&tok, &p2, &greedy, |_| true)
        .unwrap();
    assert_eq!(second.tokens, fresh.tokens);
}

#[test]
fn context_limits_and_empty_prompts_are_clear_errors() {
    let (model, tok) = load(Some(16));
    let long = encode_prompt(&tok, &"word ".repeat(40), true).unwrap();
    let err = Generator::new(&model)
        .generate(&tok, &long, &sampled(0, 4), |_| true)
        .unwrap_err();
    assert!(
        matches!(err, GenerateError::PromptTooLong { context: 16, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--ctx"), "{err}");
    assert!(matches!(
        encode_prompt(&tok, "", true),
        Err(GenerateError::EmptyPrompt)
    ));

    // A prompt that fits stops when the context is full.
    let p = encode_prompt(&tok, "word word word", true).unwrap();
    let out = Generator::new(&model)
        .generate(&tok, &p, &sampled(0, 0), |_| true)
        .unwrap();
    assert!(
        matches!(
            out.stop,
            StopReason::ContextFull | StopReason::EndOfGeneration(_)
        ),
        "{:?}",
        out.stop
    );
    if out.stop == StopReason::ContextFull {
        assert_eq!(
            p.len() + out.tokens.len(),
            17,
            "every position used, plus the last sampled token"
        );
    }
}

#[test]
fn bad_sampling_parameters_are_rejected() {
    let (model, tok) = load(Some(64));
    let p = encode_prompt(&tok, "Hi", true).unwrap();
    let opts = GenerateOptions {
        sampling: SamplingParams {
            top_p: 2.0,
            ..SamplingParams::default()
        },
        ..GenerateOptions::default()
    };
    let err = Generator::new(&model)
        .generate(&tok, &p, &opts, |_| true)
        .unwrap_err();
    assert!(err.to_string().contains("top-p"), "{err}");
}

#[test]
fn a_bos_written_by_a_chat_template_is_not_doubled() {
    let (_model, tok) = load(Some(64));
    let bos = tok.bos().unwrap();
    let plain = encode_prompt(&tok, "[INST] Hello [/INST]", true).unwrap();
    let templated = encode_prompt(&tok, "<s>[INST] Hello [/INST]", true).unwrap();
    assert_eq!(plain, templated);
    assert_eq!(templated.iter().filter(|&&t| t == bos).count(), 1);
    // Without special-token parsing, "<s>" is text.
    let literal = encode_prompt(&tok, "<s>Hello", false).unwrap();
    assert_eq!(literal.iter().filter(|&&t| t == bos).count(), 1);
    assert!(literal.len() > encode_prompt(&tok, "Hello", false).unwrap().len());
}
