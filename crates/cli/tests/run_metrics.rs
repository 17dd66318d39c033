//! `modelspec run --quantization` and `--metrics-json` end to end on a copy of the shared tiny
//! F16 model: the real quantizer through the cache (built, reused, rebuilt when corrupt), run
//! reports side by side, thread-count determinism, and the errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ms_test_support::shared_dir;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Env {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(name);
        fs::copy(shared_dir().join("oracle/models").join(name), &model).unwrap();
        Self { dir, model }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn modelspec(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_modelspec"))
            .args(args)
            .env("MODELSPEC_CACHE", self.cache())
            .env_remove("MODELSPEC_CPU_TDP_WATTS")
            .output()
            .unwrap()
    }

    /// Runs with a report; returns the report and stderr.
    fn run(&self, extra: &[&str], report: &str) -> (Value, String) {
        let file = self.dir.path().join(report);
        let model = self.model.display().to_string();
        let file_arg = file.display().to_string();
        let mut args = vec![
            "run",
            model.as_str(),
            "-p",
            "Once upon a time",
            "-n",
            "12",
            "--metrics-json",
            file_arg.as_str(),
        ];
        if !extra.contains(&"--temperature") {
            args.extend(["--temperature", "0"]);
        }
        args.extend_from_slice(extra);
        let out = self.modelspec(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let json = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        (json, stderr)
    }
}

fn sha(path: &Path) -> String {
    ms_fetch::sha256_file(path).unwrap()
}

fn status(report: &Value) -> &str {
    report["model"]["cache"]["status"].as_str().unwrap()
}

#[test]
fn quantization_at_load_is_built_once_reused_and_rebuilt_when_corrupt() {
    let env = Env::new("llama-spm-tiny.f16.gguf");
    let artifact_sha = sha(&env.model);

    let (first, _) = env.run(&["--quantization", "Q8_0"], "q8-1.json");
    assert_eq!(status(&first), "built");
    assert_eq!(first["model"]["artifact_sha256"], artifact_sha.as_str());
    assert_eq!(first["model"]["quantization"], "Q8_0");
    assert_eq!(first["plan"]["spec"]["quantization"], "Q8_0");
    let entry = PathBuf::from(first["model"]["loaded"].as_str().unwrap());
    assert!(
        entry.starts_with(env.cache().join("quantized")),
        "{entry:?}"
    );
    assert_eq!(first["model"]["loaded_sha256"], sha(&entry).as_str());

    // The cache holds what `modelspec quantize` writes, byte for byte.
    let direct = env.dir.path().join("direct.q8_0.gguf");
    let out = env.modelspec(&[
        "quantize",
        &env.model.display().to_string(),
        &direct.display().to_string(),
        "--to",
        "Q8_0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha(&direct), sha(&entry));

    let (second, _) = env.run(&["--quantization", "Q8_0"], "q8-2.json");
    assert_eq!(status(&second), "hit");
    assert_eq!(second["tokens"], first["tokens"]);

    let mut bytes = fs::read(&entry).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0xff;
    fs::write(&entry, bytes).unwrap();
    let (third, _) = env.run(&["--quantization", "Q8_0"], "q8-3.json");
    assert_eq!(status(&third), "rebuilt");
    assert!(
        third["model"]["cache"]["reason"]
            .as_str()
            .unwrap()
            .contains("sha256")
    );
    assert_eq!(
        third["model"]["loaded_sha256"],
        first["model"]["loaded_sha256"]
    );
    assert_eq!(third["tokens"], first["tokens"]);

    // The logical artifact is never changed.
    assert_eq!(sha(&env.model), artifact_sha);
}

#[test]
fn one_setting_switches_q8_0_to_q4_k_m_and_the_reports_compare() {
    let env = Env::new("llama-spm-tiny.f16.gguf");
    let (q8, _) = env.run(&["--quantization", "Q8_0"], "q8.json");
    let (q4, _) = env.run(&["--quantization", "Q4_K_M"], "q4.json");
    let (source, _) = env.run(&[], "source.json");
    assert_eq!(status(&source), "source");
    assert_eq!(
        source["model"]["loaded_sha256"],
        source["model"]["artifact_sha256"]
    );
    assert_eq!(
        q8["model"]["artifact_sha256"],
        q4["model"]["artifact_sha256"]
    );
    assert_ne!(q8["model"]["loaded_sha256"], q4["model"]["loaded_sha256"]);
    let size = |r: &Value| {
        fs::metadata(r["model"]["loaded"].as_str().unwrap())
            .unwrap()
            .len()
    };
    assert!(size(&q4) < size(&q8) && size(&q8) < size(&source));
    for r in [&q8, &q4, &source] {
        assert_eq!(r["tokens"]["generated_count"], 12);
        assert!(
            r["metrics"]["generation_tokens_per_second"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        assert!(r["metrics"]["energy"]["joules"].as_f64().unwrap() > 0.0);
        assert!(
            r["metrics"]["inter_token_latency"]["p99_ms"]
                .as_f64()
                .is_some()
        );
    }
}

#[test]
fn the_token_digest_does_not_depend_on_threads() {
    let env = Env::new("llama-spm-tiny.f16.gguf");
    let digests: Vec<Value> = ["1", "2", "3"]
        .iter()
        .map(|t| {
            let (r, _) = env.run(
                &[
                    "--quantization",
                    "Q4_K_M",
                    "--threads",
                    t,
                    // 3 threads on a 2-core machine: on purpose.
                    "--oversubscribe",
                    "--temperature",
                    "0.8",
                ],
                &format!("t{t}.json"),
            );
            assert_eq!(r["plan"]["spec"]["threads"], t.parse::<u64>().unwrap());
            r["tokens"]["generated_digest"].clone()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

#[test]
fn requantizing_to_a_larger_format_warns_that_it_gains_nothing() {
    let env = Env::new("llama-spm-tiny.q4_k_m.gguf");
    let (report, stderr) = env.run(&["--quantization", "Q8_0"], "up.json");
    assert!(stderr.contains("gains nothing"), "{stderr}");
    assert_eq!(status(&report), "built");
    let (_, stderr) = env.run(&["--quantization", "Q8_0"], "up2.json");
    assert!(stderr.contains("gains nothing"), "{stderr}");
}

#[test]
fn bad_settings_fail_before_any_work() {
    let env = Env::new("llama-spm-tiny.f16.gguf");
    let model = env.model.display().to_string();

    let out = env.modelspec(&["run", &model, "-p", "x", "--quantization", "Q5_1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Q5_1") && stderr.contains("Q4_K_M") && stderr.contains("source"),
        "{stderr}"
    );

    let missing = env.dir.path().join("no-such-dir").join("r.json");
    let out = env.modelspec(&[
        "run",
        &model,
        "-p",
        "x",
        "--quantization",
        "Q8_0",
        "--metrics-json",
        &missing.display().to_string(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-dir") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!env.cache().exists(), "no work before the error");

    // A cache root that cannot hold directories.
    let blocked = env.dir.path().join("blocked");
    fs::write(&blocked, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(["run", &model, "-p", "x", "--quantization", "Q8_0"])
        .env("MODELSPEC_CACHE", &blocked)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MODELSPEC_CACHE"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_artifact_that_cannot_be_converted_is_a_clear_error_and_caches_nothing() {
    let env = Env::new("llama-spm-tiny.f16.gguf");
    let file = ms_gguf::GgufFile::open(&env.model).unwrap();
    let t = file
        .tensors()
        .iter()
        .find(|t| t.name == "blk.0.attn_q.weight")
        .unwrap();
    assert_eq!(t.ty, ms_gguf::GgmlType::F16);
    let at = t.offset as usize + 2 * 5;
    drop(file);
    let mut bytes = fs::read(&env.model).unwrap();
    // f16 NaN at value 5 of the tensor.
    bytes[at..at + 2].copy_from_slice(&0x7e00u16.to_le_bytes());
    fs::write(&env.model, &bytes).unwrap();

    let model = env.model.display().to_string();
    let out = env.modelspec(&["run", &model, "-p", "x", "--quantization", "Q4_K_M"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot convert")
            && stderr.contains("Q4_K_M")
            && stderr.contains("blk.0.attn_q.weight")
            && stderr.contains("not a finite number"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let entries: Vec<String> = walk(&env.cache().join("quantized"))
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
    assert_eq!(fs::read(&env.model).unwrap(), bytes);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files.extend(walk(&p));
            } else {
                files.push(p.display().to_string());
            }
        }
    }
    files
}
