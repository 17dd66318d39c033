//! The green-list watermark in the sampler, on synthetic logits and on the tiny synthetic llama:
//! green tokens get `delta` before the chain (greedy included), a watermarked generation is the
//! same for the same seed and is detected in its text, a plain one is not, and bad settings
//! are refused.

use std::sync::Arc;

use ms_engine::generate::{Decoding, GenerateError, GenerateOptions, encode_prompt};
use ms_engine::sampler::{Sampler, SamplingParams};
use ms_engine::tokenizer::Tokenizer;
use ms_engine::watermark::{DEFAULT_Z_THRESHOLD, Watermark, WatermarkKey, detect};
use ms_engine::{LoadOptions, Model, Session};

fn key(id: &str, byte: u8) -> Arc<WatermarkKey> {
    Arc::new(WatermarkKey::new(id, [byte; 32]).unwrap())
}

fn mark(key: &Arc<WatermarkKey>, gamma: f64, delta: f32) -> Option<Watermark> {
    Some(Watermark {
        key: key.clone(),
        gamma,
        delta,
    })
}

#[test]
fn greedy_stays_the_models_argmax_under_a_watermark() {
    let k = key("k", 1);
    let prev = 17;
    let green = k.green_list(prev, 0.5);
    // A green and a red token, the red one ahead by less than delta: a bias would flip it.
    let g = (0..64).find(|&t| green.contains(t)).unwrap();
    let r = (0..64).find(|&t| !green.contains(t)).unwrap();
    let mut logits = vec![0.0f32; 64];
    logits[r as usize] = 5.0;
    logits[g as usize] = 4.0;
    let mut plain = Sampler::new(SamplingParams::greedy());
    plain.accept(prev);
    assert_eq!(plain.sample(&logits), r);
    let mut marked = Sampler::new(SamplingParams {
        watermark: mark(&k, 0.5, 2.0),
        ..SamplingParams::greedy()
    });
    marked.accept(prev);
    assert_eq!(marked.sample(&logits), r);
    // The same logits sampled at a low temperature do take the green token.
    let mut sampled = Sampler::new(SamplingParams {
        temperature: 0.05,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        watermark: mark(&k, 0.5, 2.0),
        ..SamplingParams::greedy()
    });
    sampled.accept(prev);
    assert_eq!(sampled.sample(&logits), g);
}

#[test]
fn sampled_tokens_lean_green_by_the_bias() {
    // Flat logits: without the watermark about gamma of the draws are green; with delta 2
    // the green share is gamma·e² / (gamma·e² + 1 − gamma) ≈ 0.71 for gamma 0.25.
    let k = key("k", 2);
    let logits = vec![0.0f32; 512];
    let share = |watermark: Option<Watermark>| {
        let mut green = 0;
        for seed in 0..400u64 {
            let prev = (seed % 50) as u32;
            let mut s = Sampler::new(SamplingParams {
                seed,
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                watermark: watermark.clone(),
                ..SamplingParams::default()
            });
            s.accept(prev);
            if k.green_list(prev, 0.25).contains(s.sample(&logits)) {
                green += 1;
            }
        }
        green as f64 / 400.0
    };
    let plain = share(None);
    let marked = share(mark(&k, 0.25, 2.0));
    assert!((0.17..0.33).contains(&plain), "{plain}");
    assert!((0.63..0.79).contains(&marked), "{marked}");
}

#[test]
fn out_of_range_settings_are_refused_by_name() {
    let model = tiny();
    let prompt = encode_prompt(&model.1, "Hello", true).unwrap();
    for (gamma, delta, want) in [
        (0.0, 2.0, "gamma"),
        (1.0, 2.0, "gamma"),
        (f64::NAN, 2.0, "gamma"),
        (0.25, 0.0, "delta"),
        (0.25, 101.0, "delta"),
        (0.25, f32::INFINITY, "delta"),
    ] {
        let opts = GenerateOptions {
            sampling: SamplingParams {
                watermark: mark(&key("k", 3), gamma, delta),
                ..SamplingParams::default()
            },
            ..GenerateOptions::default()
        };
        match Decoding::new(&model.1, &prompt, &opts) {
            Err(GenerateError::Sampling(m)) => assert!(m.contains(want), "{m}"),
            Err(e) => panic!("{gamma} {delta}: {e}"),
            Ok(_) => panic!("{gamma} {delta} accepted"),
        }
    }
}

fn tiny() -> (Model, Tokenizer) {
    let model = Model::load(
        ms_test_support::oracle_model("llama-spm-tiny.q8_0"),
        &LoadOptions {
            threads: 1,
            context_length: Some(256),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    (model, tok)
}

/// Up to 80 tokens after `text`, and their text.
fn generate(
    model: &Model,
    tok: &Tokenizer,
    text: &str,
    sampling: SamplingParams,
) -> (Vec<u32>, String) {
    let prompt = encode_prompt(tok, text, true).unwrap();
    let opts = GenerateOptions {
        sampling,
        max_tokens: 80,
        stop: vec![],
    };
    let mut session = Session::new(model);
    let mut decoding = Decoding::new(tok, &prompt, &opts).unwrap();
    session.eval(&prompt).unwrap();
    loop {
        let step = decoding
            .step(session.logits(), session.remaining())
            .unwrap();
        if step.stop.is_some() {
            break;
        }
        session.eval(&[step.token]).unwrap();
    }
    let (text, tokens) = decoding.into_output();
    (tokens, text)
}

#[test]
fn a_watermarked_generation_is_reproducible_and_detected_a_plain_one_is_not() {
    let (model, tok) = tiny();
    let k = key("news", 9);
    let sampled = |seed, watermark| SamplingParams {
        seed,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        watermark,
        ..SamplingParams::default()
    };
    for (seed, text) in [(1, "Once upon a time"), (2, "The weather today")] {
        let (plain, _) = generate(&model, &tok, text, sampled(seed, None));
        let (marked, marked_text) =
            generate(&model, &tok, text, sampled(seed, mark(&k, 0.25, 4.0)));
        assert_eq!(
            generate(&model, &tok, text, sampled(seed, mark(&k, 0.25, 4.0))).0,
            marked,
            "same seed, same watermark, same tokens"
        );
        assert_ne!(plain, marked);
        let d = detect(&k, 0.25, &marked);
        // The tiny model repeats itself: repeated pairs count once.
        assert!(d.scored >= 20, "{d:?}");
        assert!(d.is_watermarked(DEFAULT_Z_THRESHOLD), "{text}: {d:?}");
        // The text, tokenized again, carries it too.
        let again = detect(&k, 0.25, &tok.encode(&marked_text, false, false));
        assert!(again.is_watermarked(DEFAULT_Z_THRESHOLD), "{again:?}");
        let d = detect(&k, 0.25, &plain);
        assert!(!d.is_watermarked(DEFAULT_Z_THRESHOLD), "{text}: {d:?}");
        // Another key finds nothing in the watermarked text.
        let other = detect(&key("other", 10), 0.25, &marked);
        assert!(!other.is_watermarked(DEFAULT_Z_THRESHOLD), "{other:?}");
    }
}
