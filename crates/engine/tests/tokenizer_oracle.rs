//! Our tokenizers against llama.cpp: the vocabulary test vectors of llama.cpp's own tokenizer
//! tests, and every tokenization and detokenization in the oracle files.

use std::path::Path;

use ms_engine::tokenizer::{PreTokenizer, Tokenizer, TokenizerKind};
use ms_gguf::GgufFile;
use ms_test_support::{oracle_model, shared_dir};
use serde_json::Value;

fn load(path: &Path) -> Tokenizer {
    let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array of ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// llama.cpp's `test-tokenizer-0` vectors: `.inp` cases separated by a marker line, `.out` one
/// line of ids per case, encoded without BOS and without parsing special tokens.
fn check_vocab_vectors(name: &str, expected_kind: TokenizerKind) {
    let dir = shared_dir().join("oracle/vocab");
    let tok = load(&dir.join(name));
    assert_eq!(tok.kind(), expected_kind);
    let inp = std::fs::read_to_string(dir.join(format!("{name}.inp"))).unwrap();
    let out = std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap();
    let mut cases: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    assert_eq!(cases.pop(), Some(""), "the .inp file ends with a marker");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(cases.len(), lines.len(), "{name}: one .out line per case");
    let mut failures = Vec::new();
    for (text, line) in cases.iter().zip(&lines) {
        let want: Vec<u32> = line
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        let got = tok.encode(text, false, false);
        if got != want {
            failures.push(format!("{text:?}: want {want:?} got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn vocab_vectors_llama_spm() {
    check_vocab_vectors("ggml-vocab-llama-spm.gguf", TokenizerKind::Spm);
}

#[test]
fn vocab_vectors_gpt2() {
    check_vocab_vectors(
        "ggml-vocab-gpt-2.gguf",
        TokenizerKind::Bpe(PreTokenizer::Gpt2),
    );
}

/// Every tokenization in an oracle file, and the decoding of its greedy continuations.
fn check_oracle(tok: &Tokenizer, oracle_name: &str) {
    let path = shared_dir().join("oracle").join(oracle_name);
    let oracle: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(oracle["n_vocab"].as_u64(), Some(tok.vocab_size() as u64));
    assert_eq!(oracle["bos_id"].as_u64().map(|b| b as u32), tok.bos());
    assert_eq!(oracle["eos_id"].as_u64().map(|b| b as u32), tok.eos());
    let mut failures = Vec::new();
    let mut n = 0;
    for case in oracle["tokenize"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        for (mode, special) in [("special_false", false), ("special_true", true)] {
            n += 1;
            let want = ids(&case[mode]);
            let got = tok.encode(text, false, special);
            if got != want {
                failures.push(format!(
                    "tokenize {text:?} {mode}: want {want:?} got {got:?}"
                ));
            }
        }
    }
    for (section, special) in [("generate", true), ("logits", false)] {
        for case in oracle[section].as_array().unwrap() {
            n += 1;
            let prompt = case["prompt"].as_str().unwrap();
            let want = ids(&case["prompt_tokens"]);
            let got = tok.encode(prompt, true, special);
            if got != want {
                failures.push(format!("{section} {prompt:?}: want {want:?} got {got:?}"));
            }
        }
    }
    for case in oracle["generate"].as_array().unwrap() {
        n += 1;
        let want = case["greedy_text"].as_str().unwrap();
        let got = tok.decode(&ids(&case["greedy_tokens"])).unwrap();
        if got != want {
            failures.push(format!("decode greedy tokens: want {want:?} got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{oracle_name}: {} of {n} checks differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn oracle_llama_spm_tiny() {
    for quant in ["f16", "q4_k_m", "q8_0"] {
        let tok = load(&shared_dir().join(format!("oracle/models/llama-spm-tiny.{quant}.gguf")));
        check_oracle(&tok, &format!("llama-spm-tiny.{quant}.json"));
    }
}

#[test]
fn oracle_qwen2_bpe_tiny() {
    let tok = load(&oracle_model("qwen2-bpe-tiny.q8_0"));
    assert_eq!(tok.kind(), TokenizerKind::Bpe(PreTokenizer::Gpt2));
    check_oracle(&tok, "qwen2-bpe-tiny.q8_0.json");
}

#[test]
fn oracle_gemma3_default_model() {
    let path = ms_fetch::default_model().unwrap_or_else(|e| panic!("default model: {e}"));
    let tok = load(&path);
    assert_eq!(tok.kind(), TokenizerKind::Spm);
    assert!(!tok.add_space_prefix());
    let end_of_turn = tok.token_id("<end_of_turn>").unwrap();
    assert!(tok.is_eog(end_of_turn) && tok.is_eog(tok.eos().unwrap()));
    assert!(!tok.is_eog(tok.token_id("<start_of_turn>").unwrap()));
    check_oracle(&tok, "gemma3-270m-q4_k_m.json");
}
