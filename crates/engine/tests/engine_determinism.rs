//! Results do not depend on the thread count or on how the input is split into batches.

mod common;

use ms_engine::{LoadOptions, Model, Session};

fn load(name: &str, threads: usize) -> Model {
    let path = ms_test_support::oracle_dir().join("models").join(name);
    Model::load(
        path,
        &LoadOptions {
            threads,
            context_length: Some(64),
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

const PROMPT: [u32; 12] = [
    1, 450, 7483, 310, 3444, 338, 3681, 29892, 322, 372, 338, 263,
];

#[test]
fn logits_are_identical_for_1_2_and_3_threads() {
    for name in [
        "llama-spm-tiny.q4_k_m.gguf",
        "qwen2-bpe-tiny.q8_0.gguf",
        "llama-spm-tiny.f16.gguf",
    ] {
        let reference = bits(Session::new(&load(name, 1)).eval_all(&PROMPT).unwrap());
        for threads in [2, 3] {
            let got = bits(
                Session::new(&load(name, threads))
                    .eval_all(&PROMPT)
                    .unwrap(),
            );
            assert!(
                got == reference,
                "{name}: {threads} threads differ from 1 thread"
            );
        }
    }
}

#[test]
fn gemma3_logits_are_identical_for_1_2_and_3_threads() {
    let path = ms_fetch::default_model().expect("the default model can be fetched");
    let run = |threads| {
        let opts = LoadOptions {
            threads,
            context_length: Some(64),
            ..LoadOptions::default()
        };
        let model = Model::load(&path, &opts).unwrap();
        let mut s = Session::new(&model);
        s.eval(&[2, 818, 5279, 529]).unwrap();
        bits(s.eval_all(&[7001, 563]).unwrap())
    };
    let reference = run(1);
    assert!(run(2) == reference, "2 threads differ from 1");
    assert!(run(3) == reference, "3 threads differ from 1");
}

#[test]
fn batch_and_token_by_token_evaluation_agree_bit_for_bit() {
    let model = load("llama-spm-tiny.q4_k_m.gguf", 2);
    let n_vocab = model.info().n_vocab;
    let all = Session::new(&model).eval_all(&PROMPT).unwrap().to_vec();
    let mut s = Session::new(&model);
    for (i, &t) in PROMPT.iter().enumerate() {
        let row = s.eval(&[t]).unwrap();
        assert!(
            bits(row) == bits(&all[i * n_vocab..(i + 1) * n_vocab]),
            "position {i}"
        );
    }
    // A split batch (5 + 7) ends with the same logits as the whole prompt.
    let mut s = Session::new(&model);
    s.eval(&PROMPT[..5]).unwrap();
    let last = s.eval(&PROMPT[5..]).unwrap();
    assert!(bits(last) == bits(&all[(PROMPT.len() - 1) * n_vocab..]));
    assert_eq!(s.position(), PROMPT.len());
}

#[test]
fn reset_starts_a_new_sequence() {
    let model = load("qwen2-bpe-tiny.q8_0.gguf", 2);
    let mut s = Session::new(&model);
    let first = s.eval(&PROMPT[..4]).unwrap().to_vec();
    s.eval(&PROMPT[4..]).unwrap();
    s.reset();
    assert_eq!(s.position(), 0);
    assert!(bits(s.eval(&PROMPT[..4]).unwrap()) == bits(&first));
}
