//! `modelspec run` end to end: the binary on the tiny oracle model and on the default model,
//! ModelSpec files as MODEL, chat mode, and the errors for bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use ms_test_support::{oracle_model, shared_dir};

fn tiny() -> String {
    oracle_model("llama-spm-tiny.q8_0").display().to_string()
}

fn modelspec(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

#[test]
fn same_seed_gives_identical_output() {
    let model = tiny();
    let args = |seed: &'static str| {
        vec![
            model.as_str(),
            "--prompt",
            "Once upon a time",
            "-n",
            "24",
            "--seed",
            seed,
            "--temperature",
            "1",
            "-t",
            "2",
        ]
    };
    let a = ok(&modelspec(&args("11"), None));
    let b = ok(&modelspec(&args("11"), None));
    assert_eq!(a, b);
    assert!(a.trim().len() > 10, "{a:?}");
    let c = ok(&modelspec(&args("12"), None));
    assert_ne!(a, c);
}

#[test]
fn prompt_from_file_and_from_stdin_match_the_flag() {
    let model = tiny();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.txt");
    std::fs::write(&file, "Once upon a time").unwrap();
    let common = ["-n", "8", "--temperature", "0", "-t", "2"];
    let mut a = vec![model.as_str(), "--prompt", "Once upon a time"];
    a.extend(common);
    let f = file.display().to_string();
    let mut b = vec![model.as_str(), "--file", f.as_str()];
    b.extend(common);
    let mut c = vec![model.as_str()];
    c.extend(common);
    let from_flag = ok(&modelspec(&a, None));
    assert_eq!(ok(&modelspec(&b, None)), from_flag);
    assert_eq!(ok(&modelspec(&c, Some(b"Once upon a time"))), from_flag);
}

/// The oracle's rule (shared/oracle/check_oracle.py): greedy tokens identical up to the first
/// step where llama.cpp's own top-1 leads its runner-up by less than this many logits (there
/// llama.cpp disagrees with itself between batch sizes).
const MARGIN: f64 = 0.25;

#[test]
fn default_model_greedy_matches_llama_cpp() {
    let path = ms_fetch::default_model().unwrap();
    let out = modelspec(
        &[
            "gemma3-270m",
            "--prompt",
            "The capital of France is",
            "--max-tokens",
            "16",
            "--temperature",
            "0",
            "-v",
        ],
        None,
    );
    let text = ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("generated: 16 tokens") && err.contains("stop: max tokens"),
        "{err}"
    );
    let oracle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared_dir().join("oracle/gemma3-270m-q4_k_m.json")).unwrap(),
    )
    .unwrap();
    let case = &oracle["generate"][0];
    assert_eq!(case["prompt"], "The capital of France is");
    let margins = case["greedy_margins"].as_array().unwrap();
    let firm = margins
        .iter()
        .take(16)
        .take_while(|m| m.as_f64().unwrap() >= MARGIN)
        .count();
    let ids: Vec<u32> = case["greedy_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .take(firm)
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let model = ms_gguf::GgufFile::open(&path).unwrap();
    let tok = ms_engine::tokenizer::Tokenizer::from_gguf(&model).unwrap();
    let want = tok.decode(&ids).unwrap();
    assert!(
        firm >= 4 && text.starts_with(&want),
        "expected {want:?} to start {text:?}"
    );
    assert!(text.len() > want.len() + 20, "{text:?}");
}

#[test]
fn chat_mode_keeps_a_conversation_on_piped_stdin() {
    let model = tiny();
    let out = modelspec(
        &[
            model.as_str(),
            "--chat",
            "--system",
            "Be brief.",
            "-n",
            "6",
            "--temperature",
            "0",
            "-t",
            "2",
            "-v",
        ],
        Some(b"Hello there\n\nHow are you?\n"),
    );
    let text = ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    // The tiny llama has no template: the built-in llama2 format, said once.
    assert!(
        err.contains("no chat template; using the built-in llama2 format"),
        "{err}"
    );
    // Regression: a model without a template is probably a base model; the catalog's chat
    // model is named, once for the whole conversation.
    assert_eq!(err.matches("probably a base model").count(), 1, "{err}");
    assert!(err.contains("modelspec run smollm2-135m --chat"), "{err}");
    // Two answers (the empty line is skipped), the second reusing the first turn's tokens.
    assert_eq!(text.lines().count(), 2, "{text:?}");
    let stats: Vec<&str> = err.lines().filter(|l| l.starts_with("prompt: ")).collect();
    assert_eq!(stats.len(), 2, "{err}");
    assert!(
        stats[0].contains("(0 reused)") && !stats[1].contains("(0 reused)"),
        "{err}"
    );
}

#[test]
fn the_base_model_warning_names_the_model_as_the_user_gave_it() {
    // The default Gemma file is a base model; the warning speaks of `gemma3-270m`, not of the
    // cache blob it resolved to.
    let out = modelspec(
        &["gemma3-270m", "--chat", "-n", "1", "--temperature", "0"],
        Some(b"Hello\n"),
    );
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: gemma3-270m has no chat template, so it is probably a base model"),
        "{err}"
    );
    assert!(!err.contains("blobs/sha256"), "{err}");
}

#[test]
fn a_model_spec_whose_artifact_resolves_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sha = ms_fetch::sha256_file(std::path::Path::new(&tiny())).unwrap();
    let spec = |sha: &str| {
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: tiny\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: file://{}\n          format: gguf\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n",
            tiny()
        )
    };
    let good = dir.path().join("tiny.modelspec.yaml");
    std::fs::write(&good, spec(&sha)).unwrap();
    let cache = dir.path().join("cache");
    let run = |path: &PathBuf| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelspec"));
        cmd.env("MODELSPEC_CACHE", &cache).args([
            "run",
            path.to_str().unwrap(),
            "--prompt",
            "Once upon a time",
            "-n",
            "8",
            "--temperature",
            "0",
            "-t",
            "2",
        ]);
        cmd.output().unwrap()
    };
    let via_spec = ok(&run(&good));
    let direct = ok(&modelspec(
        &[
            tiny().as_str(),
            "--prompt",
            "Once upon a time",
            "-n",
            "8",
            "--temperature",
            "0",
            "-t",
            "2",
        ],
        None,
    ));
    assert_eq!(via_spec, direct);

    let bad = dir.path().join("bad.modelspec.yaml");
    std::fs::write(&bad, spec(&"ab".repeat(32))).unwrap();
    fails_with(&run(&bad), &["sha256 mismatch", &sha]);
}

#[test]
fn bad_input_gets_clear_errors() {
    let model = tiny();
    fails_with(
        &modelspec(&["/nonexistent/model.gguf", "--prompt", "hi"], None),
        &["/nonexistent/model.gguf: no such file", "modelspec pull"],
    );
    fails_with(
        &modelspec(&["no-such-model", "--prompt", "hi"], None),
        &["unknown model name", "--list"],
    );

    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9").unwrap();
    fails_with(
        &modelspec(&[model.as_str(), "--file", latin1.to_str().unwrap()], None),
        &["not valid UTF-8", "offset 3", "latin1.txt"],
    );
    fails_with(
        &modelspec(&[model.as_str(), "--prompt", ""], None),
        &["the prompt is empty"],
    );
    fails_with(
        &modelspec(&[model.as_str(), "--prompt", "   \n"], None),
        &["the prompt is empty"],
    );
    let long = "word ".repeat(64);
    fails_with(
        &modelspec(
            &[model.as_str(), "--prompt", &long, "--ctx", "16", "-t", "2"],
            None,
        ),
        &["tokens but the context holds 16", "--ctx"],
    );
    fails_with(
        &modelspec(&[model.as_str(), "--prompt", "hi", "--top-p", "0"], None),
        &["top-p"],
    );
    fails_with(
        &modelspec(
            &[
                model.as_str(),
                "--prompt",
                "hi",
                "--chat",
                "--chat-format",
                "jinja9",
            ],
            None,
        ),
        &["unknown chat format", "chatml"],
    );
    fails_with(
        &modelspec(
            &[
                model.as_str(),
                "--prompt",
                "hi",
                "--chat",
                "--chat-format",
                "template",
                "-t",
                "2",
            ],
            None,
        ),
        &["has no chat template", "gemma, chatml"],
    );
}
