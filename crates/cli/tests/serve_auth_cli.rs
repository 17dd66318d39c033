//! `modelspec serve --api-key`, `--api-key-file` and `MODELSPEC_API_KEYS` as a user runs them:
//! every source of keys works, the keys are never printed, a key file
//! without keys is an error before binding, and a public address without a key is warned about.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ms_test_support::oracle_model;

fn model() -> String {
    oracle_model("llama-spm-tiny.q4_k_m").display().to_string()
}

fn get(addr: &str, path: &str, auth: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = auth.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts the server and reads its start-up lines up to "Ctrl-C stops"; the address and all
/// that was printed.
fn serve(cmd: &mut Command) -> (Child, String, String) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ms_test_support::ServeBanner {
        addr,
        printed,
        rest: lines,
    } = ms_test_support::serve_banner(&mut child);
    let addr = addr.unwrap_or_else(|| panic!("no address printed:\n{printed}"));
    // Keep the pipe drained so the server never blocks writing to it.
    std::thread::spawn(move || for _ in lines {});
    (child, addr, printed)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn keys_from_flags_file_and_environment_are_required_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.txt");
    std::fs::write(&file, "# team keys\nsk-from-file-3\n\n").unwrap();
    let (child, addr, printed) = serve(
        Command::new(env!("CARGO_BIN_EXE_modelspec"))
            .args(["serve", &model(), "--port", "0", "--threads", "1"])
            .args(["--api-key", "sk-flag-1", "--api-key-file"])
            .arg(&file)
            .env("MODELSPEC_API_KEYS", "sk-env-2a, sk-env-2b"),
    );
    assert!(printed.contains("4 API key(s)"), "{printed}");
    for key in ["sk-flag-1", "sk-env-2a", "sk-env-2b", "sk-from-file-3"] {
        assert!(!printed.contains(key), "key {key} printed:\n{printed}");
        assert_eq!(get(&addr, "/v1/models", Some(key)), 200, "{key}");
    }
    assert_eq!(get(&addr, "/v1/models", None), 401);
    assert_eq!(get(&addr, "/v1/models", Some("sk-flag")), 401);
    assert_eq!(get(&addr, "/healthz/ready", None), 200);
    assert_eq!(get(&addr, "/metrics", None), 200);
    stop(child);
}

#[test]
fn an_empty_key_file_stops_before_binding_and_a_public_address_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.txt");
    std::fs::write(&file, "# nothing yet\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(["serve", &model(), "--port", "0", "--api-key-file"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no API key"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");

    let (child, _, printed) = serve(
        Command::new(env!("CARGO_BIN_EXE_modelspec"))
            .args(["serve", &model(), "--port", "0", "--threads", "1"])
            .args(["--host", "0.0.0.0"])
            .env_remove("MODELSPEC_API_KEYS"),
    );
    assert!(
        printed.contains("WARNING: listening on 0.0.0.0") && printed.contains("--api-key"),
        "{printed}"
    );
    stop(child);
}

/// `verify --url` against a keyed server: the key from `MODELSPEC_API_KEY` (or `--api-key`,
/// or, when `MODELSPEC_API_KEY` is unset, the first of `serve`'s `MODELSPEC_API_KEYS`) is sent, `OPENAI_API_KEY` is not read, a missing key is one clear MV0201 violation naming
/// 401, `--api-key` without `--url` is a usage error, and the key is never printed.
#[test]
fn verify_reaches_a_keyed_server_with_its_key_only() {
    const KEY: &str = "sk-verify-cli-9b";
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("keyed.modelspec.yaml");
    std::fs::write(
        &spec,
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: keyed\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n  runtime:\n    accelerator: {type: cpu, count: 1}\n  operations:\n    serving: {maxConcurrency: 1}\n",
    )
    .unwrap();
    let (child, addr, _) = serve(
        Command::new(env!("CARGO_BIN_EXE_modelspec"))
            .args(["serve", &model(), "--port", "0", "--threads", "1"])
            .args(["--api-key", KEY])
            .env_remove("MODELSPEC_API_KEYS"),
    );
    let url = format!("http://{addr}");
    let verify = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelspec"));
        cmd.arg("verify")
            .arg(&spec)
            .args(["--duration", "1", "--max-tokens", "2", "--format", "json"])
            .args(extra)
            .env_remove("MODELSPEC_API_KEY")
            .env_remove("MODELSPEC_API_KEYS")
            .env_remove("OPENAI_API_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stdout.contains(KEY) && !stderr.contains(KEY),
            "key printed:\n{stdout}\n{stderr}"
        );
        (out.status.code(), stdout, stderr)
    };
    let ready = |stdout: &str| -> serde_json::Value {
        let report: serde_json::Value = serde_json::from_str(stdout).expect("a JSON report");
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == "MV0201")
            .cloned()
            .unwrap_or_else(|| panic!("no MV0201 in {stdout}"))
    };

    // OPENAI_API_KEY is not sent to the server under test.
    let (code, stdout, _) = verify(&[("OPENAI_API_KEY", KEY)], &["--url", &url]);
    assert_eq!(code, Some(1), "{stdout}");
    let c = ready(&stdout);
    assert_eq!(c["verdict"], "violated", "{c:#}");
    let why = c["reason"].as_str().unwrap_or("");
    assert!(why.contains("401") && why.contains("--api-key"), "{c:#}");

    let (code, stdout, stderr) = verify(&[("MODELSPEC_API_KEY", KEY)], &["--url", &url]);
    assert_eq!(ready(&stdout)["verdict"], "held", "{stdout}\n{stderr}");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    let (code, _, stderr) = verify(&[], &["--url", &url, "--api-key", KEY]);
    assert_eq!(code, Some(0), "{stderr}");

    // One shell for both: the variable `serve` reads, its first key.
    let keys = format!(" {KEY} , sk-other-key");
    let (code, stdout, stderr) = verify(&[("MODELSPEC_API_KEYS", &keys)], &["--url", &url]);
    assert_eq!(ready(&stdout)["verdict"], "held", "{stdout}\n{stderr}");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    let (code, _, stderr) = verify(&[], &["--api-key", KEY]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--api-key applies to a server given with --url"),
        "{stderr}"
    );
    stop(child);
}
