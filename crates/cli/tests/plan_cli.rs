//! `modelspec plan validate|show` and `modelspec run --plan/--explain/--backend` end to end on
//! the shared tiny F16 model: the same model run as Q8_0 then as Q4_K_M by editing one line of
//! a plan, flags over plan fields, a ModelSpec's default plan, and the errors before any work.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ms_test_support::oracle_model;
use serde_json::Value;

fn tiny() -> PathBuf {
    oracle_model("llama-spm-tiny.f16")
}

fn modelspec(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(args)
        .env("MODELSPEC_CACHE", cache)
        .env_remove("MODELSPEC_CPU_TDP_WATTS")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PLAN: &str = "apiVersion: modelspec/v1
kind: ExecutionPlan
metadata:
  name: tiny
spec:
  quantization: Q8_0
  threads: 1
  sampling: {temperature: 0, maxTokens: 8}
  seed: 5
";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn validate_reports_plan_findings_and_non_plans() {
    let dir = tempfile::tempdir().unwrap();
    let ok = modelspec(
        dir.path(),
        &[
            "plan",
            "validate",
            examples().join("plans").to_str().unwrap(),
        ],
    );
    assert!(ok.status.success(), "{}", text(&ok.stdout));
    let bad = dir.path().join("bad.plan.yaml");
    fs::write(&bad, PLAN.replace("threads: 1", "threads: 0\n  thread: 2")).unwrap();
    let spec = examples().join("00-minimal.modelspec.yaml");
    let out = modelspec(
        dir.path(),
        &[
            "plan",
            "validate",
            bad.to_str().unwrap(),
            spec.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("error[MS0106]"), "{stdout}");
    assert!(stdout.contains("bad.plan.yaml:7:12"), "{stdout}");
    assert!(
        stdout.contains("error[MS0102]: unknown key `thread`"),
        "{stdout}"
    );
    assert!(stdout.contains("did you mean `threads`?"), "{stdout}");
    assert!(stdout.contains("error[MS0101]"), "{stdout}");
}

#[test]
fn show_writes_every_decision_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.plan.yaml");
    fs::write(&plan, PLAN).unwrap();
    let out = modelspec(
        dir.path(),
        &[
            "plan",
            "show",
            plan.to_str().unwrap(),
            "--model",
            tiny().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "ExecutionPlan");
    assert_eq!(v["spec"]["quantization"], "Q8_0");
    assert_eq!(v["spec"]["contextLength"], 2048);
    assert_eq!(v["status"]["modelContextLength"], 2048);
    assert_eq!(v["status"]["origins"]["/quantization"], "plan");
    assert_eq!(v["status"]["origins"]["/contextLength"], "model");
    assert_eq!(v["status"]["origins"]["/backend"], "engine");
    assert_eq!(v["status"]["origins"]["/sampling/topK"], "default");
    assert!(v["status"]["kernels"].is_string());

    let out = modelspec(dir.path(), &["plan", "show", plan.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("threads: 1  # plan"), "{stdout}");
    assert!(stdout.contains("contextLength: null  # model"), "{stdout}");
}

#[test]
fn one_line_of_the_plan_switches_q8_0_to_q4_k_m_and_reports_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let plan = dir.path().join("p.plan.yaml");
    let mut reports = Vec::new();
    for q in ["Q8_0", "Q4_K_M"] {
        fs::write(&plan, PLAN.replace("Q8_0", q)).unwrap();
        let report = dir.path().join(format!("{q}.json"));
        let out = modelspec(
            &cache,
            &[
                "run",
                tiny().to_str().unwrap(),
                "--plan",
                plan.to_str().unwrap(),
                "-p",
                "Once upon a time",
                "--seed",
                "9",
                "--explain",
                "--metrics-json",
                report.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("quantization: \"{q}\"  # plan")),
            "{stderr}"
        );
        assert!(stderr.contains("seed: 9  # flag"), "{stderr}");
        reports.push(serde_json::from_slice::<Value>(&fs::read(&report).unwrap()).unwrap());
    }
    let (q8, q4) = (&reports[0], &reports[1]);
    assert_eq!(q8["plan"]["spec"]["quantization"], "Q8_0");
    assert_eq!(q4["plan"]["spec"]["quantization"], "Q4_K_M");
    assert_eq!(q8["model"]["quantization"], "Q8_0");
    assert_eq!(q4["model"]["quantization"], "Q4_K_M");
    assert_eq!(
        q8["model"]["artifact_sha256"],
        q4["model"]["artifact_sha256"]
    );
    assert_ne!(q8["model"]["loaded_sha256"], q4["model"]["loaded_sha256"]);
    for r in [q8, q4] {
        assert_eq!(r["plan"]["spec"]["seed"], 9);
        assert_eq!(r["plan"]["spec"]["threads"], 1);
        assert_eq!(r["plan"]["status"]["origins"]["/seed"], "flag");
        assert_eq!(r["tokens"]["generated_count"], 8);
    }
}

#[test]
fn backends_give_the_same_tokens_and_unavailable_ones_are_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for backend in ["cpu-scalar", "cpu-simd"] {
        let report = dir.path().join(format!("{backend}.json"));
        let out = modelspec(
            dir.path(),
            &[
                "run",
                tiny().to_str().unwrap(),
                "--backend",
                backend,
                "-p",
                "Once upon a time",
                "-n",
                "10",
                "--metrics-json",
                report.to_str().unwrap(),
            ],
        );
        if backend == "cpu-simd" && !out.status.success() {
            // Only on a CPU without AVX2: the error must say what is available.
            assert!(text(&out.stderr).contains("available: cpu-scalar"));
            continue;
        }
        assert!(out.status.success(), "{}", text(&out.stderr));
        let r: Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
        assert_eq!(r["plan"]["spec"]["backend"], backend);
        assert_eq!(r["plan"]["status"]["origins"]["/backend"], "flag");
        digests.push(r["tokens"]["generated_digest"].clone());
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");

    let out = modelspec(
        dir.path(),
        &[
            "run",
            tiny().to_str().unwrap(),
            "--backend",
            "cuda",
            "-p",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("backend `cuda` is not available on this machine"),
        "{stderr}"
    );
    assert!(stderr.contains("CPU features detected"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn impossible_plans_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.plan.yaml");
    fs::write(
        &plan,
        PLAN.replace(
            "threads: 1",
            "contextLength: 4096\n  limits: {maxWatts: 30}",
        ),
    )
    .unwrap();
    // A cache "directory" under a regular file can never be created.
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"x").unwrap();
    let out = modelspec(
        &blocker.join("cache"),
        &[
            "run",
            tiny().to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
            "-t",
            "0",
            "-p",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("spec.threads: 0 threads"), "{stderr}");
    assert!(
        stderr.contains("spec.contextLength: 4096 exceeds the 2048 tokens"),
        "{stderr}"
    );
    assert!(stderr.contains("not writable"), "{stderr}");
    if !ms_runtime::rapl_readable() {
        assert!(stderr.contains("needs a power measurement"), "{stderr}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn a_modelspec_names_its_default_plan_and_the_plan_file_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("default.plan.yaml"), PLAN).unwrap();
    let sha = ms_fetch::sha256_file(&tiny()).unwrap();
    let spec = dir.path().join("tiny.modelspec.yaml");
    fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: tiny\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: file://{}\n          format: gguf\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n  executionPlan:\n    ref: ./default.plan.yaml\n",
            tiny().display()
        ),
    )
    .unwrap();
    let over = dir.path().join("over.plan.yaml");
    fs::write(
        &over,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: over}\nspec:\n  quantization: source\n",
    )
    .unwrap();
    let show = |extra: &[&str]| -> Value {
        let mut args = vec!["plan", "show", "--model", spec.to_str().unwrap()];
        args.extend(extra);
        args.extend(["--format", "json"]);
        let out = modelspec(&dir.path().join("cache"), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = show(&[]);
    assert_eq!(v["metadata"]["name"], "tiny");
    assert_eq!(v["spec"]["quantization"], "Q8_0");
    assert_eq!(v["status"]["origins"]["/quantization"], "spec-plan");
    let v = show(&[over.to_str().unwrap()]);
    assert_eq!(v["metadata"]["name"], "over");
    assert_eq!(v["spec"]["quantization"], "source");
    assert_eq!(v["status"]["origins"]["/quantization"], "plan");
    // Fields the plan file leaves out still come from the spec's plan.
    assert_eq!(v["spec"]["seed"], 5);
    assert_eq!(v["status"]["origins"]["/seed"], "spec-plan");
}

#[test]
fn the_spec_sizes_batches_and_context_of_the_default_plan() {
    // Regression: examples/03-batching declares maxBatchSize 8, and the default plan batched
    // one request at a time. Its weights are the default model (cache shared with the other
    // tests that use it).
    ms_fetch::default_model().expect("the default model (downloaded once into the cache)");
    let spec = examples().join("03-batching.modelspec.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(["plan", "show", "--model", spec.to_str().unwrap()])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["spec"]["scheduler"]["maxBatch"], 8, "{v:#}");
    assert_eq!(v["status"]["origins"]["/scheduler/maxBatch"], "spec");
    assert_eq!(v["spec"]["contextLength"], 8192);
    assert_eq!(v["status"]["origins"]["/contextLength"], "spec");
}
