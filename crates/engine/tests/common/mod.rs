//! Shared by the engine's integration tests: where the oracle files and models are.
#![allow(dead_code)]

use std::path::PathBuf;

use ms_test_support::oracle_dir;

/// The oracle models: (name of the oracle file without `.json`, GGUF path).
pub fn oracle_models() -> Vec<(&'static str, PathBuf)> {
    let m = oracle_dir().join("models");
    let default = ms_fetch::default_model().expect("the default model can be fetched");
    vec![
        ("llama-spm-tiny.f16", m.join("llama-spm-tiny.f16.gguf")),
        ("llama-spm-tiny.q8_0", m.join("llama-spm-tiny.q8_0.gguf")),
        (
            "llama-spm-tiny.q4_k_m",
            m.join("llama-spm-tiny.q4_k_m.gguf"),
        ),
        ("qwen2-bpe-tiny.q8_0", m.join("qwen2-bpe-tiny.q8_0.gguf")),
        ("gemma3-270m-q4_k_m", default),
    ]
}

pub fn oracle(name: &str) -> serde_json::Value {
    let path = oracle_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}
