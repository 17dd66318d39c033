//! MV0605: a spec declaring `observability.tracing.enabled: true` is verified by receiving the
//! server's spans. Locally verify points the server it starts at its own receiver; at `--url`
//! it listens where `--otlp-receiver` says, and the check holds only if the server exports
//! there. Served: the tiny oracle model (fast to load).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ms_runtime::LoadRequest;
use ms_server::ServerConfig;
use ms_server::telemetry::{TraceExport, traces_url};
use ms_test_support::oracle_model;
use ms_verify::{Options, Verdict};

fn tiny_model() -> PathBuf {
    oracle_model("llama-spm-tiny.q4_k_m")
}

fn traced_spec(dir: &Path) -> PathBuf {
    let model = tiny_model();
    let sha = ms_fetch::sha256_file(&model).unwrap();
    let path = dir.join("traced.modelspec.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: traced\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: file://{}\n          format: gguf\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n  operations:\n    observability:\n      tracing:\n        enabled: true\n",
            model.display()
        ),
    )
    .unwrap();
    path
}

fn options(spec: &Path) -> Options {
    let mut opts = Options::new(spec);
    opts.duration = Duration::from_secs(1);
    opts.max_tokens = 2;
    opts
}

fn tracing_check(report: &ms_verify::Report) -> &ms_verify::Check {
    report
        .checks
        .iter()
        .find(|c| c.code == "MV0605")
        .unwrap_or_else(|| panic!("no MV0605 in {}", report.to_text(false)))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_local_server_declaring_tracing_sends_spans_to_verify() {
    let dir = tempfile::tempdir().unwrap();
    let spec = traced_spec(dir.path());
    let report = ms_verify::verify(&options(&spec), &mut |_| {}).expect("verify runs");
    let c = tracing_check(&report);
    let text = report.to_text(false);
    assert_eq!(c.verdict, Verdict::Held, "{text}");
    assert!(
        c.measured
            .as_deref()
            .is_some_and(|m| m.contains("export requests")),
        "{text}"
    );
    assert_eq!(c.pointer, "/spec/operations/observability/tracing/enabled");
    assert!(c.line > 0, "located in the spec: {text}");
}

#[test]
fn at_a_url_the_receiver_must_be_given_and_must_receive() {
    let dir = tempfile::tempdir().unwrap();
    let spec = traced_spec(dir.path());
    let port = free_port();
    let mut config = ServerConfig::new("tiny");
    config.port = 0;
    config.tracing = Some(TraceExport {
        endpoint: traces_url(&format!("http://127.0.0.1:{port}")),
        endpoint_from: "test".into(),
        service_name: "traced".into(),
    });
    let mut req = LoadRequest::new(tiny_model().display().to_string());
    req.flags.threads = Some(1);
    let server = ms_server::start(config, req).expect("server starts");
    server.wait_ready(Duration::from_secs(60)).unwrap();
    let url = format!("http://{}", server.addr);

    // Without a receiver nothing can be said.
    let mut opts = options(&spec);
    opts.url = Some(url.clone());
    let report = ms_verify::verify(&opts, &mut |_| {}).unwrap();
    let c = tracing_check(&report);
    assert_eq!(c.verdict, Verdict::NotChecked, "{}", report.to_text(false));
    assert!(
        c.reason
            .as_deref()
            .is_some_and(|r| r.contains("--otlp-receiver"))
    );

    // Listening where the server exports: held.
    opts.otlp_receiver = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    let report = ms_verify::verify(&opts, &mut |_| {}).unwrap();
    assert_eq!(
        tracing_check(&report).verdict,
        Verdict::Held,
        "{}",
        report.to_text(false)
    );

    // Listening elsewhere: the declaration is not kept as far as verify can see.
    opts.otlp_receiver = Some(SocketAddr::from(([127, 0, 0, 1], free_port())));
    let report = ms_verify::verify(&opts, &mut |_| {}).unwrap();
    let c = tracing_check(&report);
    assert_eq!(c.verdict, Verdict::Violated, "{}", report.to_text(false));
    assert_eq!(c.measured.as_deref(), Some("no spans received"));
    server.shutdown();
}
