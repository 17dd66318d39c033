//! OpenAI's `logit_bias` and `logprobs` in the sampler: a bias is added to
//! the raw logits before the chain (-100 bans a token, +100 forces it), and log-probabilities
//! are the log-softmax of the raw logits, the same bits whatever was sampled.

use ms_engine::generate::{Decoding, GenerateOptions, encode_prompt};
use ms_engine::sampler::{Sampler, SamplingParams, token_logprobs};
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model, Session};

#[test]
fn a_bias_of_minus_100_bans_the_best_token_greedy_and_sampled() {
    let logits = [1.0, 5.0, 3.0, 2.5];
    let mut greedy = Sampler::new(SamplingParams {
        logit_bias: vec![(1, -100.0)],
        ..SamplingParams::greedy()
    });
    assert_eq!(greedy.sample(&logits), 2);
    for seed in 0..200 {
        let mut s = Sampler::new(SamplingParams {
            seed,
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            logit_bias: vec![(1, -100.0)],
            ..SamplingParams::default()
        });
        assert_ne!(s.sample(&logits), 1, "seed {seed}");
    }
}

#[test]
fn a_bias_of_plus_100_forces_a_token_and_ids_beyond_the_vocabulary_are_ignored() {
    let logits = [1.0, 5.0, 3.0, 2.5];
    for seed in 0..50 {
        let mut s = Sampler::new(SamplingParams {
            seed,
            logit_bias: vec![(0, 100.0), (99, 100.0)],
            ..SamplingParams::default()
        });
        assert_eq!(s.sample(&logits), 0, "seed {seed}");
    }
}

#[test]
fn bias_and_top_logprobs_ranges_are_checked() {
    for (bias, top) in [
        (100.5, None),
        (f32::NAN, None),
        (-101.0, None),
        (0.0, Some(21)),
    ] {
        let p = SamplingParams {
            logit_bias: vec![(3, bias)],
            logprobs: top,
            ..SamplingParams::default()
        };
        assert!(p.validate().is_err(), "{bias} {top:?}");
    }
    let ok = SamplingParams {
        logit_bias: vec![(3, -100.0), (4, 100.0)],
        logprobs: Some(20),
        ..SamplingParams::default()
    };
    assert_eq!(ok.validate(), Ok(()));
}

#[test]
fn logprobs_are_the_log_softmax_of_the_raw_logits() {
    let logits = [0.5f32, 2.0, -1.0, 2.0, f32::NAN];
    let lp = token_logprobs(&logits, 2, 3);
    let z: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| f64::from(l).exp())
        .sum();
    let expect = |l: f32| (f64::from(l) - z.ln()) as f32;
    assert_eq!(lp.token, 2);
    assert!((lp.logprob - expect(-1.0)).abs() < 1e-6, "{lp:?}");
    // Most likely first, equal logits lowest id first; the NaN is never likely.
    let ids: Vec<u32> = lp.top.iter().map(|t| t.0).collect();
    assert_eq!(ids, vec![1, 3, 0]);
    assert!((lp.top[0].1 - expect(2.0)).abs() < 1e-6);
    assert_eq!(token_logprobs(&logits, 4, 0).logprob, f32::NEG_INFINITY);
    assert!(token_logprobs(&logits, 4, 0).top.is_empty());
    // More alternatives than tokens: all of them.
    assert_eq!(token_logprobs(&[1.0, 2.0], 0, 20).top.len(), 2);
}

fn tiny() -> (Model, Tokenizer) {
    let options = LoadOptions {
        threads: 1,
        context_length: Some(128),
        ..LoadOptions::default()
    };
    let model = Model::load(
        ms_test_support::oracle_model("llama-spm-tiny.q8_0"),
        &options,
    )
    .expect("the tiny oracle model under MODELSPEC_SHARED");
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    (model, tok)
}

/// Steps carry the log-probabilities of the raw logits: a bias changes the token sampled, not
/// the numbers reported for the tokens.
#[test]
fn decoding_steps_report_logprobs_of_the_raw_logits() {
    let (model, tok) = tiny();
    let prompt = encode_prompt(&tok, "Once upon a time", true).unwrap();
    let mut session = Session::new(&model);
    session.eval(&prompt).unwrap();
    let plain = GenerateOptions {
        sampling: SamplingParams {
            logprobs: Some(5),
            ..SamplingParams::greedy()
        },
        max_tokens: 4,
        stop: vec![],
    };
    let step = Decoding::new(&tok, &prompt, &plain)
        .unwrap()
        .step(session.logits(), session.remaining())
        .unwrap();
    let lp = step.logprobs.clone().expect("logprobs asked for");
    // Greedy: the sampled token is the most likely one.
    assert_eq!(lp.top.len(), 5);
    assert_eq!((lp.token, lp.top[0].0), (step.token, step.token));
    assert_eq!(lp.logprob.to_bits(), lp.top[0].1.to_bits());
    assert!(lp.top.windows(2).all(|w| w[0].1 >= w[1].1));

    let banned = GenerateOptions {
        sampling: SamplingParams {
            logit_bias: vec![(step.token, -100.0)],
            ..plain.sampling.clone()
        },
        ..plain
    };
    let other = Decoding::new(&tok, &prompt, &banned)
        .unwrap()
        .step(session.logits(), session.remaining())
        .unwrap();
    assert_ne!(other.token, step.token);
    let olp = other.logprobs.unwrap();
    assert_eq!(
        olp.top, lp.top,
        "the bias does not change the reported numbers"
    );
    assert_eq!(other.token, lp.top[1].0, "the runner-up is sampled");

    let off = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens: 4,
        stop: vec![],
    };
    let step = Decoding::new(&tok, &prompt, &off)
        .unwrap()
        .step(session.logits(), session.remaining())
        .unwrap();
    assert_eq!(step.logprobs, None);
}
