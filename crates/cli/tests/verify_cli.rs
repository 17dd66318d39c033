//! `modelspec verify` end to end: specs written into a temporary directory pointing at the
//! default model (its file in the cache, pinned by sha256), verified by starting the server
//! in-process. A spec declaring an impossible p95 and a context beyond the model's sees both
//! violated; a reasonable one holds; a wrong digest is violated; input errors exit 2.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use ms_test_support::oracle_model;
use serde_json::Value;

const DEFAULT_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// One verification at a time: each runs a server with a thread per core plus its load, and
/// two at once would measure each other.
static SERIAL: Mutex<()> = Mutex::new(());

fn modelspec(args: &[&str]) -> Output {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(args)
        .env_remove("MODELSPEC_CPU_TDP_WATTS")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn default_model() -> PathBuf {
    ms_fetch::default_model().expect("the default model (downloaded once into the cache)")
}

/// A ModelSpec for `weights` (absolute path) with `sha256`, plus `extra` YAML under `spec:`
/// (already indented by two spaces).
fn spec(
    dir: &Path,
    name: &str,
    weights: &Path,
    sha256: &str,
    runtime: &str,
    extra: &str,
) -> PathBuf {
    let yaml = format!(
        "apiVersion: modelspec/v1
kind: ModelSpec
metadata:
  name: {name}
spec:
  identity:
    model:
      id: gemma-3-270m-it
      family: gemma3
      task: chat-completion
      framework: llama.cpp
      precision: q4_k_m
      artifacts:
        - name: weights
          role: weights
          uri: {uri}
          format: gguf
          quantization: Q4_K_M
          sha256: {sha256}
  runtime:
    accelerator:
      type: cpu
      count: 1
{runtime}{extra}",
        uri = weights.display()
    );
    let path = dir.join(format!("{name}.modelspec.yaml"));
    fs::write(&path, yaml).unwrap();
    path
}

fn checks(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap_or("").to_string(),
                c["verdict"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn verdict(report: &Value, code: &str) -> String {
    checks(report)
        .into_iter()
        .find(|(c, _)| c == code)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no check {code} in {report:#}"))
}

#[test]
fn impossible_latency_and_too_long_context_are_violated() {
    let dir = tempfile::tempdir().unwrap();
    let model = default_model();
    // Gemma 3 270M was trained for 32768 tokens: 40000 cannot be served; 1 ms p95 cannot be
    // met by any request that generates tokens; no CPU has the declared feature.
    let path = spec(
        dir.path(),
        "impossible",
        &model,
        DEFAULT_SHA256,
        "      features: [no-such-cpu-feature]\n    batch:\n      maxSequenceLengthTokens: 40000\n",
        "  operations:\n    serving:\n      maxConcurrency: 2\n    scaling:\n      targetLatencyMsP95: 1\n",
    );
    let out = modelspec(&[
        "verify",
        path.to_str().unwrap(),
        "--duration",
        "2",
        "--max-tokens",
        "4",
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(verdict(&report, "MV0101"), "held");
    assert_eq!(verdict(&report, "MV0201"), "held");
    assert_eq!(verdict(&report, "MV0401"), "violated", "{report:#}");
    assert_eq!(verdict(&report, "MV0301"), "violated", "{report:#}");
    assert_eq!(verdict(&report, "MV0302"), "violated", "{report:#}");
    assert_eq!(verdict(&report, "MV0503"), "violated", "{report:#}");
    assert_eq!(verdict(&report, "MV0801"), "held");
    assert_eq!(verdict(&report, "MV0802"), "held");
    let p95 = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "MV0401")
        .unwrap();
    assert_eq!(p95["declared"], "≤ 1 ms");
    assert_eq!(
        (&p95["unit"], &p95["declared_value"]),
        (&"ms".into(), &1.0.into())
    );
    assert!(
        p95["measured_value"].as_f64().unwrap_or(0.0) > 1.0,
        "{p95:#}"
    );
    assert!(p95["line"].as_u64().unwrap_or(0) > 0, "{p95:#}");
    assert!(
        report["load"]["succeeded"].as_u64().unwrap_or(0) >= 1,
        "{report:#}"
    );
    assert_eq!(report["profile"]["concurrency"], 2);
    assert!(
        report["plan"]["spec"]["quantization"].is_string(),
        "{report:#}"
    );
    assert!(report["machine"]["logical_cores"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn reasonable_spec_holds_in_text_and_sarif() {
    let dir = tempfile::tempdir().unwrap();
    let model = default_model();
    let path = spec(
        dir.path(),
        "reasonable",
        &model,
        DEFAULT_SHA256,
        "    batch:\n      maxBatchSize: 8\n      maxSequenceLengthTokens: 128\n    resources:\n      cpuCores: 1\n      memoryGb: 2\n",
        "  operations:
    serving:
      maxConcurrency: 1
      readinessProbe: {path: /ready}
      livenessProbe: {path: /live}
    scaling:
      targetLatencyMsP95: 120000
      targetRps: 0.01
    observability:
      metrics: {enabled: true, port: 9090}
  governance:
    cost:
      targetCostPer1kTokensUsd: 1.0
",
    );
    let out = modelspec(&[
        "verify",
        path.to_str().unwrap(),
        "--duration",
        "2",
        "--max-tokens",
        "2",
        "--quiet",
    ]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    for code in [
        "MV0101", "MV0201", "MV0301", "MV0302", "MV0303", "MV0401", "MV0402", "MV0403", "MV0501",
        "MV0502", "MV0504", "MV0601", "MV0602", "MV0603", "MV0701", "MV0801", "MV0802",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(&format!("✓ {code} "))),
            "{code} did not hold:\n{report}"
        );
    }
    // The metrics port cannot be checked on a server bound to a free loopback port.
    assert!(
        report.lines().any(|l| l.starts_with("? MV0604 ")),
        "{report}"
    );
    assert!(
        report.contains("PASSED: 17 held, 0 violated, 1 not checked"),
        "{report}"
    );
    assert!(report.contains("machine: "), "{report}");
    assert!(report.contains("plan: "), "{report}");

    // The same spec as SARIF with --strict: one result per check, located in the spec; the
    // unchecked port now fails the run.
    let out = modelspec(&[
        "verify",
        "--strict",
        path.to_str().unwrap(),
        "--duration",
        "1",
        "--max-tokens",
        "2",
        "--format",
        "sarif",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("SARIF");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 18, "{sarif:#}");
    let port = results
        .iter()
        .find(|r| r["ruleId"] == "MV0604")
        .expect("MV0604");
    assert_eq!(
        (&port["kind"], &port["level"]),
        (&"fail".into(), &"error".into())
    );
    let latency = results
        .iter()
        .find(|r| r["ruleId"] == "MV0401")
        .expect("MV0401");
    let line = latency["locations"][0]["physicalLocation"]["region"]["startLine"]
        .as_u64()
        .unwrap_or(0);
    let source = fs::read_to_string(&path).unwrap();
    assert!(
        source
            .lines()
            .nth(line as usize - 1)
            .is_some_and(|l| l.contains("targetLatencyMsP95")),
        "line {line} of\n{source}"
    );
}

/// The tiny model's spec with `runtime` under `spec.runtime` (after the accelerator).
fn tiny_spec(dir: &Path, runtime: &str) -> PathBuf {
    let tiny = oracle_model("llama-spm-tiny.f16");
    let sha = ms_fetch::sha256_file(&tiny).unwrap();
    let yaml = format!(
        "apiVersion: modelspec/v1
kind: ModelSpec
metadata:
  name: tiny
spec:
  identity:
    model:
      id: llama-spm-tiny
      family: llama
      task: text-generation
      framework: llama.cpp
      artifacts:
        - {{role: weights, format: gguf, uri: {}, sha256: {sha}}}
  runtime:
    accelerator: {{type: cpu, count: 1}}
{runtime}",
        tiny.display()
    );
    let path = dir.join("tiny.modelspec.yaml");
    fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_machine_with_less_than_declared_is_violated() {
    // Regression: "CPU cores: declared 4, measured 2 threads" was held on a 2-core machine.
    // No machine has 100000 cores or a petabyte of memory.
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_spec(
        dir.path(),
        "    resources:\n      cpuCores: 100000\n      memoryGb: 1000000\n",
    );
    let out = modelspec(&[
        "verify",
        path.to_str().unwrap(),
        "--duration",
        "1",
        "--max-tokens",
        "2",
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let check = |code: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {report:#}"))
            .clone()
    };
    let cores = check("MV0502");
    assert_eq!(cores["verdict"], "violated", "{cores:#}");
    let machine = report["machine"]["logical_cores"].as_u64().unwrap();
    assert_eq!(cores["measured_value"].as_f64(), Some(machine as f64));
    assert!(
        cores["measured"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{machine} logical cores")),
        "{cores:#}"
    );
    assert!(
        cores["reason"]
            .as_str()
            .unwrap_or("")
            .contains("fewer than the 100000 declared"),
        "{cores:#}"
    );
    assert_eq!(check("MV0504")["verdict"], "violated", "{report:#}");
    // The load itself was fine.
    assert_eq!(check("MV0403")["verdict"], "held", "{report:#}");

    // Declaring what the machine has holds.
    let path = tiny_spec(
        dir.path(),
        "    resources:\n      cpuCores: 1\n      memoryGb: 1\n",
    );
    let out = modelspec(&[
        "verify",
        path.to_str().unwrap(),
        "--duration",
        "1",
        "--max-tokens",
        "2",
        "--quiet",
    ]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    for code in ["MV0403", "MV0502", "MV0504"] {
        assert!(
            report.lines().any(|l| l.starts_with(&format!("✓ {code} "))),
            "{code} did not hold:\n{report}"
        );
    }
}

#[test]
fn a_load_whose_requests_are_cut_off_does_not_pass() {
    // Regression: PASSED with 14 of 26 load requests cut off. Here every request asks for more
    // tokens than fit in the 1 s the load and its 1 s tail allow.
    let dir = tempfile::tempdir().unwrap();
    let model = default_model();
    let path = spec(
        dir.path(),
        "cut-off",
        &model,
        DEFAULT_SHA256,
        "",
        "  operations:\n    serving:\n      maxConcurrency: 2\n",
    );
    let out = modelspec(&[
        "verify",
        path.to_str().unwrap(),
        "--duration",
        "1",
        "--tail",
        "1",
        "--max-tokens",
        "2000",
        "--quiet",
    ]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}{}", text(&out.stderr));
    assert!(!report.contains("PASSED"), "{report}");
    let line = report
        .lines()
        .find(|l| l.starts_with("✗ MV0403 "))
        .unwrap_or_else(|| panic!("MV0403 not violated:\n{report}"));
    assert!(
        line.contains(" cut off") && !line.contains(" 0 cut off"),
        "{report}"
    );
    assert!(
        report.contains("still running 1 s after the load ended"),
        "{report}"
    );
}

#[test]
fn wrong_digest_is_violated_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let model = default_model();
    let wrong = "ab".repeat(32);
    let path = spec(dir.path(), "wrong-digest", &model, &wrong, "", "");
    let out = modelspec(&[
        "verify",
        path.to_str().unwrap(),
        "--duration",
        "1",
        "--max-tokens",
        "2",
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let digest = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "MV0101")
        .expect("MV0101");
    assert_eq!(digest["verdict"], "violated");
    assert_eq!(digest["declared"], format!("sha256 {wrong}"));
    assert_eq!(digest["measured"], format!("sha256 {DEFAULT_SHA256}"));
    assert!(
        digest["reason"]
            .as_str()
            .unwrap_or("")
            .contains(DEFAULT_SHA256)
    );
}

#[test]
fn input_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = modelspec(&["verify", "/nonexistent/x.modelspec.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such file"),
        "{}",
        text(&out.stderr)
    );

    let bad = dir.path().join("bad.modelspec.yaml");
    fs::write(
        &bad,
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata: {name: x}\nspec: {}\n",
    )
    .unwrap();
    let out = modelspec(&["verify", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a valid ModelSpec"),
        "{}",
        text(&out.stderr)
    );

    let ok = spec(
        dir.path(),
        "ok",
        Path::new("/x.gguf"),
        DEFAULT_SHA256,
        "",
        "",
    );
    let out = modelspec(&[
        "verify",
        ok.to_str().unwrap(),
        "--url",
        "http://127.0.0.1:1",
        "--plan",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--plan"),
        "{}",
        text(&out.stderr)
    );
    let plan = dir.path().join("bad.plan.yaml");
    fs::write(
        &plan,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: p}\nspec: {threads: 0}\n",
    )
    .unwrap();
    let out = modelspec(&[
        "verify",
        ok.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not a valid ExecutionPlan"),
        "{}",
        text(&out.stderr)
    );
    let out = modelspec(&["verify", ok.to_str().unwrap(), "--duration", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_flag_changes_what_runs_and_precision_follows() {
    // The tiny F16 model declared as f16, served under a plan that requantizes it to Q8_0:
    // the artifact is what it says, but what ran is not the declared precision.
    let dir = tempfile::tempdir().unwrap();
    let tiny = oracle_model("llama-spm-tiny.f16");
    let sha = ms_fetch::sha256_file(&tiny).unwrap();
    let yaml = format!(
        "apiVersion: modelspec/v1
kind: ModelSpec
metadata:
  name: tiny
spec:
  identity:
    model:
      id: llama-spm-tiny
      family: llama
      task: text-generation
      framework: llama.cpp
      precision: f16
      artifacts:
        - {{role: weights, format: gguf, quantization: F16, uri: {}, sha256: {sha}}}
  runtime:
    accelerator: {{type: cpu, count: 1}}
    batch: {{maxSequenceLengthTokens: 64}}
",
        tiny.display()
    );
    let path = dir.path().join("tiny.modelspec.yaml");
    fs::write(&path, yaml).unwrap();
    let plan = dir.path().join("q8.plan.yaml");
    fs::write(
        &plan,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: q8}\nspec: {quantization: Q8_0}\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args([
            "verify",
            path.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
        ])
        .args([
            "--duration",
            "1",
            "--max-tokens",
            "2",
            "--format",
            "json",
            "--quiet",
        ])
        .env("MODELSPEC_CACHE", &cache)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(verdict(&report, "MV0101"), "held");
    assert_eq!(verdict(&report, "MV0802"), "held");
    assert_eq!(verdict(&report, "MV0301"), "held", "{report:#}");
    assert_eq!(verdict(&report, "MV0801"), "violated", "{report:#}");
    let precision = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "MV0801")
        .unwrap();
    assert_eq!(precision["measured"], "Q8_0");
    assert_eq!(report["plan"]["metadata"]["name"], "q8");
}
