//! `modelspec inspect` on real files: the default model (Gemma 3 270M) and the shared tiny
//! llama, in text and JSON; figures are checked against the tensor index read independently.

use std::path::Path;
use std::process::{Command, Output};

use ms_gguf::GgufFile;
use ms_test_support::oracle_model;

fn inspect(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run modelspec")
}

fn inspect_ok(file: &Path, extra: &[&str]) -> String {
    let mut args = vec![file.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = inspect(&args);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn inspect_json(file: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend(extra);
    serde_json::from_str(&inspect_ok(file, &args)).expect("valid JSON")
}

#[test]
fn default_model_text_summary() {
    let model = ms_fetch::default_model().expect("default model");
    let text = inspect_ok(&model, &["--ctx", "1024"]);
    for line in [
        "architecture         gemma3 (Gemma 3 270m)",
        "layers               18",
        "embedding width      640",
        "attention heads      4",
        "kv heads             1",
        "head dim (k / v)     256 / 256",
        "context length       32768",
        "vocabulary           262144",
        "tokenizer            llama (SentencePiece), pre-tokenizer default",
        "rope base            1000000",
        "sliding window       512",
        "Memory at context 1024",
        // 18 layers * 1 kv head * (256 + 256) * 1024 positions * 2 bytes = 18 MiB
        "KV cache f16         18.0 MiB",
        "KV cache f32         36.0 MiB",
        "[string; 262144] [\"<pad>\", \"<eos>\", \"<bos>\"",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // Every tensor has a row in the table with its type and byte size.
    let f = GgufFile::open(&model).unwrap();
    for t in f.tensors() {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(t.name.as_str()))
            .unwrap_or_else(|| panic!("no row for {}", t.name));
        assert!(row.contains(t.ty.name()), "{row}");
        assert!(row.trim_end().ends_with(&t.size.to_string()), "{row}");
    }
}

#[test]
fn default_model_json_matches_the_index() {
    let model = ms_fetch::default_model().expect("default model");
    let j = inspect_json(&model, &["--ctx", "2048"]);
    let f = GgufFile::open(&model).unwrap();
    let params: u64 = f.tensors().iter().map(|t| t.n_elements()).sum();
    let bytes: u64 = f.tensors().iter().map(|t| t.size).sum();
    assert_eq!(j["parameters"], params);
    assert_eq!(j["tensor_bytes"], bytes);
    assert_eq!(j["tensors"].as_array().unwrap().len(), f.tensors().len());
    assert_eq!(j["architecture"]["layers"], 18);
    assert_eq!(j["architecture"]["head_count_kv"], 1);
    assert_eq!(j["architecture"]["vocab_size"], 262144);
    assert_eq!(j["memory"]["context"], 2048);
    assert_eq!(j["memory"]["kv_cache_f16_bytes"], 18 * 512 * 2048 * 2);
    assert_eq!(j["memory"]["kv_cache_f32_bytes"], 18 * 512 * 2048 * 4);
    assert_eq!(j["memory"]["weights_bytes"], bytes);
    let bpw = j["bits_per_weight"].as_f64().unwrap();
    assert!((bpw - bytes as f64 * 8.0 / params as f64).abs() < 1e-9);
    // Per-type totals add up and name the default model's five types.
    let types: Vec<&str> = j["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["F32", "Q5_0", "Q8_0", "Q4_K", "Q6_K"]);
    let typed: u64 = j["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["parameters"].as_u64().unwrap())
        .sum();
    assert_eq!(typed, params);
    let tokens = &j["metadata"]["tokenizer.ggml.tokens"];
    assert_eq!(tokens["length"], 262144);
    assert_eq!(tokens["first"][2], "<bos>");
    assert_eq!(j["metadata"]["gemma3.block_count"]["value"], 18);
}

#[test]
fn shared_tiny_llama_with_gqa() {
    let model = oracle_model("llama-spm-tiny.q4_k_m");
    let j = inspect_json(&model, &[]);
    let a = &j["architecture"];
    assert_eq!(a["name"], "llama");
    assert_eq!(a["layers"], 4);
    assert_eq!(a["embedding_length"], 256);
    assert_eq!(a["head_count"], 4);
    assert_eq!(a["head_count_kv"], 2);
    assert_eq!(
        a["key_length"], 64,
        "embedding / heads when the file has no key_length"
    );
    assert_eq!(a["vocab_size"], 32000);
    assert_eq!(a["tokenizer_kind"], "SentencePiece");
    // Without --ctx the estimate uses the trained context.
    assert_eq!(j["memory"]["context"], a["context_length"]);
}

#[test]
fn bad_files_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\0\0\0").unwrap();
    let out = inspect(&[bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.gguf") && err.contains("truncated"),
        "{err}"
    );
}
