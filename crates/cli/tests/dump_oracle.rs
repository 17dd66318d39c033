//! `modelspec dump` on every oracle model, judged by the real `check_oracle.py`: every rule
//! must hold (tokenizations, greedy continuations, per-position log-probabilities).

use std::path::{Path, PathBuf};
use std::process::Command;

use ms_test_support::shared_dir;

/// Dumps `model` with the shared prompts and checks the result against `oracle_name`.json.
fn dump_and_check(model: &Path, oracle_name: &str) {
    let oracle = shared_dir().join("oracle");
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join(format!("{oracle_name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .arg("dump")
        .arg(model)
        .arg("--prompts")
        .arg(oracle.join("prompts.json"))
        .arg("--out")
        .arg(&ours)
        .args(["--threads", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = Command::new("python3")
        .arg(oracle.join("check_oracle.py"))
        .arg(oracle.join(format!("{oracle_name}.json")))
        .arg(&ours)
        .output()
        .expect("python3 runs check_oracle.py");
    let report = String::from_utf8_lossy(&check.stdout);
    eprintln!("{oracle_name}: {report}");
    assert!(
        check.status.success(),
        "{oracle_name}: check_oracle.py failed:\n{report}"
    );
    assert!(report.contains("0 failures"), "{report}");
}

fn shared_model(name: &str) -> PathBuf {
    shared_dir()
        .join("oracle/models")
        .join(format!("{name}.gguf"))
}

#[test]
fn llama_f16_passes_the_oracle() {
    dump_and_check(&shared_model("llama-spm-tiny.f16"), "llama-spm-tiny.f16");
}

#[test]
fn llama_q8_0_passes_the_oracle() {
    dump_and_check(&shared_model("llama-spm-tiny.q8_0"), "llama-spm-tiny.q8_0");
}

#[test]
fn llama_q4_k_m_passes_the_oracle() {
    dump_and_check(
        &shared_model("llama-spm-tiny.q4_k_m"),
        "llama-spm-tiny.q4_k_m",
    );
}

#[test]
fn qwen2_q8_0_passes_the_oracle() {
    dump_and_check(&shared_model("qwen2-bpe-tiny.q8_0"), "qwen2-bpe-tiny.q8_0");
}

#[test]
fn gemma3_default_model_passes_the_oracle() {
    let model = ms_fetch::default_model().expect("the default model can be fetched");
    dump_and_check(&model, "gemma3-270m-q4_k_m");
}

#[test]
fn dump_reports_bad_prompts_files_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("prompts.json");
    std::fs::write(&bad, r#"{"gen_tokens": 4}"#).unwrap();
    let run = |prompts: &Path| {
        Command::new(env!("CARGO_BIN_EXE_modelspec"))
            .arg("dump")
            .arg(shared_model("llama-spm-tiny.q8_0"))
            .arg("--prompts")
            .arg(prompts)
            .arg("--out")
            .arg(dir.path().join("out.json"))
            .output()
            .unwrap()
    };
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prompts.json") && err.contains("top_k"),
        "{err}"
    );
    let out = run(&dir.path().join("missing.json"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.json"), "{err}");
    assert!(!dir.path().join("out.json").exists());
}
