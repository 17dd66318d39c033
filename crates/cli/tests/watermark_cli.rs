//! `modelspec watermark keygen|detect` and `run` under a plan with a watermark, end to end on
//! the shared tiny synthetic llama: the key file, the run report naming the key (never holding
//! it), detection of the watermarked text (exit 0) and not of the plain one (exit 1), and the
//! errors (no key, the wrong key, an existing key file).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            model: ms_test_support::oracle_model("llama-spm-tiny.q8_0"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `modelspec ARGS` with no key in the environment but `vars`, and a home of its own.
    fn modelspec(&self, args: &[&str], vars: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelspec"));
        cmd.args(args)
            .env("HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("MODELSPEC_WATERMARK_KEY")
            .env_remove("MODELSPEC_WATERMARK_KEY_FILE")
            .env_remove("MODELSPEC_WATERMARK_KEY_DIR");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn plan(&self, name: &str, watermark: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(
            &path,
            format!(
                "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {{name: {name}}}\nspec:\n  threads: 1\n  seed: 3\n  sampling: {{temperature: 1, topK: 0, topP: 1, minP: 0, maxTokens: 60}}\n{watermark}"
            ),
        )
        .unwrap();
        path
    }

    /// Runs the tiny model under `plan`; the text and the run report.
    fn run(&self, plan: &Path, vars: &[(&str, &Path)]) -> (String, Value) {
        let report = self.path("report.json");
        let out = self.modelspec(
            &[
                "run",
                &self.model.display().to_string(),
                "--plan",
                &plan.display().to_string(),
                "-p",
                "Once upon a time",
                "--metrics-json",
                &report.display().to_string(),
            ],
            vars,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let json = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
        (String::from_utf8(out.stdout).unwrap(), json)
    }

    fn detect(&self, key: &Path, text: &str, extra: &[&str]) -> Output {
        let file = self.path("text.txt");
        fs::write(&file, text).unwrap();
        let mut args = vec![
            "watermark".to_string(),
            "detect".into(),
            "--key".into(),
            key.display().to_string(),
            "--model".into(),
            self.model.display().to_string(),
            file.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.modelspec(&args, &[])
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_watermarked_run_is_detected_and_a_plain_one_is_not() {
    let env = Env::new();
    let key = env.path("news.key");
    let out = env.modelspec(
        &[
            "watermark",
            "keygen",
            "--id",
            "news",
            "--out",
            &key.display().to_string(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("wrote watermark key news (sha256:"));
    let key_text = fs::read_to_string(&key).unwrap();
    let secret = key_text
        .lines()
        .find(|l| l.starts_with("modelspec-watermark-key/v1"))
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(secret.len(), 64);
    assert!(!stdout(&out).contains(&secret), "keygen printed the secret");
    // Never over an existing key.
    let again = env.modelspec(
        &[
            "watermark",
            "keygen",
            "--id",
            "news",
            "--out",
            &key.display().to_string(),
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(fs::read_to_string(&key).unwrap(), key_text);

    // The run and detection use a fixed key, so that the text (and its z-score) is the same
    // on every machine; a random key could draw a weak case on the tiny model, which loops.
    let key = env.path("fixed.key");
    let secret = "6e".repeat(32);
    fs::write(&key, format!("modelspec-watermark-key/v1 news {secret}\n")).unwrap();
    let marked_plan = env.plan(
        "marked",
        "  watermark: {keyId: news, gamma: 0.25, delta: 4}\n",
    );
    let (marked, report) = env.run(&marked_plan, &[("MODELSPEC_WATERMARK_KEY_FILE", &key)]);
    assert_eq!(
        report.pointer("/plan/spec/watermark"),
        Some(&serde_json::json!({"keyId": "news", "gamma": 0.25, "delta": 4.0}))
    );
    let status = report.pointer("/plan/status/watermarkKey").unwrap();
    assert!(
        status["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(status["source"], key.display().to_string());
    let report_text = fs::read_to_string(env.path("report.json")).unwrap();
    assert!(
        !report_text.contains(&secret),
        "the report holds the secret"
    );

    let out = env.detect(&key, &marked, &["--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["verdict"], "watermarked");
    assert!(doc["z"].as_f64().unwrap() >= 4.0, "{doc}");
    assert_eq!(doc["keyId"], "news");
    // The gamma and key id from the plan give the same verdict, in text.
    let out = env.detect(
        &key,
        &marked,
        &["--plan", &marked_plan.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with("watermarked: z = "),
        "{}",
        stdout(&out)
    );

    // The same seed without a watermark: not detected (exit 1).
    let (plain, report) = env.run(&env.plan("plain", ""), &[]);
    assert_eq!(report.pointer("/plan/spec/watermark"), Some(&Value::Null));
    assert!(report.pointer("/plan/status/watermarkKey").is_none());
    assert_ne!(plain, marked);
    let out = env.detect(&key, &plain, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("not watermarked: z = "));

    // Another key finds nothing in the watermarked text; a key that is not the plan's is
    // refused.
    let other = env.path("other.key");
    env.modelspec(
        &[
            "watermark",
            "keygen",
            "--id",
            "other",
            "--out",
            &other.display().to_string(),
        ],
        &[],
    );
    assert_eq!(env.detect(&other, &marked, &[]).status.code(), Some(1));
    let out = env.detect(
        &other,
        &marked,
        &["--plan", &marked_plan.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds key \"other\", not \"news\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_plan_whose_key_cannot_be_found_does_not_run() {
    let env = Env::new();
    let plan = env.plan("marked", "  watermark: {keyId: missing}\n");
    let empty = env.path("keys");
    fs::create_dir_all(&empty).unwrap();
    let out = env.modelspec(
        &[
            "run",
            &env.model.display().to_string(),
            "--plan",
            &plan.display().to_string(),
            "-p",
            "Hello",
        ],
        &[("MODELSPEC_WATERMARK_KEY_DIR", &empty)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("MR0112"), "{stderr}");
    assert!(stderr.contains("missing.key (absent)"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was generated");
    // A malformed key file is named, its content is not.
    let bad = env.path("bad.key");
    fs::write(&bad, "modelspec-watermark-key/v1 missing 0badc0ffee\n").unwrap();
    let out = env.modelspec(
        &["plan", "show", &plan.display().to_string()],
        &[("MODELSPEC_WATERMARK_KEY_FILE", &bad)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("MR0113") && stderr.contains("bad.key"),
        "{stderr}"
    );
    assert!(!stderr.contains("0badc0ffee"), "{stderr}");
}
