//! `modelspec serve` as a user runs it: prints where it listens, serves, stops cleanly on
//! Ctrl-C (SIGINT) and SIGTERM; a bad plan stops it before it binds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ms_test_support::oracle_model;

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

fn serve_and_stop(signal: &str) {
    let model = oracle_model("llama-spm-tiny.q4_k_m");
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args([
            "serve",
            model.to_str().unwrap(),
            "--port",
            "0",
            "--threads",
            "2",
        ])
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
    assert!(printed.contains("model: "), "{printed}");
    assert!(
        printed.contains("metadata:\n  name: default"),
        "the plan is printed:\n{printed}"
    );
    assert_eq!(http(&addr, "GET", "/healthz/ready", "").0, 200);
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/completions",
        r#"{"prompt": "Hello", "max_tokens": 3}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"text_completion\""), "{body}");

    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "exit {status:?}: {rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("stopping")), "{rest:?}");
    assert!(TcpStream::connect(&addr).is_err(), "the port is closed");
}

#[test]
fn serves_then_stops_on_ctrl_c() {
    serve_and_stop("-INT");
}

#[test]
fn serves_then_stops_on_sigterm() {
    serve_and_stop("-TERM");
}

#[test]
fn an_invalid_plan_stops_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("bad.plan.yaml");
    std::fs::write(
        &plan,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: bad}\nspec:\n  threads: 0\n",
    )
    .unwrap();
    let model = oracle_model("llama-spm-tiny.q4_k_m");
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(["serve", model.to_str().unwrap(), "--port", "0", "--plan"])
        .arg(&plan)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.plan.yaml"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn a_bad_otlp_endpoint_stops_it_before_it_binds() {
    let model = oracle_model("llama-spm-tiny.q4_k_m");
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(["serve", model.to_str().unwrap(), "--port", "0"])
        .args(["--otlp-endpoint", "collector:4318"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "an input error: {stderr}");
    assert!(
        stderr.contains("--otlp-endpoint") && stderr.contains("http://"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}
