//! Bad input to the engine gives clear errors, never a panic.

mod common;

use ms_engine::{EngineError, LoadOptions, Model, Session};
use ms_test_support::TinyGguf;

fn llama(context_length: usize) -> Model {
    let path = ms_test_support::oracle_model("llama-spm-tiny.q8_0");
    Model::load(
        path,
        &LoadOptions {
            threads: 1,
            context_length: Some(context_length),
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn a_prompt_longer_than_the_context_says_how_many_tokens_fit() {
    let model = llama(8);
    let mut s = Session::new(&model);
    let err = s.eval(&[1; 9]).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::ContextFull {
                tokens: 9,
                available: 8,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("9 tokens") && msg.contains("only 8 fit"),
        "{msg}"
    );
    // After 6 tokens, 3 more do not fit either, and nothing was consumed.
    s.eval(&[1; 6]).unwrap();
    let msg = s.eval(&[1; 3]).unwrap_err().to_string();
    assert!(
        msg.contains("only 2 fit") && msg.contains("6 of 8"),
        "{msg}"
    );
    assert_eq!(s.position(), 6);
    s.eval(&[1; 2]).unwrap();
    assert_eq!(s.remaining(), 0);
}

#[test]
fn empty_input_and_unknown_token_ids_are_errors() {
    let model = llama(16);
    let mut s = Session::new(&model);
    assert!(matches!(s.eval(&[]), Err(EngineError::EmptyInput)));
    let msg = s.eval(&[1, 32000]).unwrap_err().to_string();
    assert!(
        msg.contains("32000") && msg.contains("position 1") && msg.contains("32000)"),
        "{msg}"
    );
    assert_eq!(s.position(), 0);
}

#[test]
fn context_length_beyond_training_and_zero_threads_are_refused() {
    let path = ms_test_support::oracle_model("llama-spm-tiny.q8_0");
    let err = Model::load(
        &path,
        &LoadOptions {
            threads: 1,
            context_length: Some(4096),
            ..LoadOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("2048"), "{err}");
    let err = Model::load(
        &path,
        &LoadOptions {
            threads: 0,
            context_length: None,
            ..LoadOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("threads"), "{err}");
}

#[test]
fn an_unsupported_architecture_lists_the_supported_ones() {
    let file =
        ms_gguf::GgufFile::from_bytes("mamba.gguf", TinyGguf::arch("mamba").bytes()).unwrap();
    let err = Model::from_gguf(file, &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("mamba.gguf") && msg.contains("'mamba'"),
        "{msg}"
    );
    assert!(msg.contains("llama, qwen2, gemma3"), "{msg}");
}

#[test]
fn missing_hyper_parameters_and_tensors_are_named() {
    let file = ms_gguf::GgufFile::from_bytes("x.gguf", TinyGguf::arch("llama").bytes()).unwrap();
    let msg = Model::from_gguf(file, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("llama.embedding_length"), "{msg}");
}
