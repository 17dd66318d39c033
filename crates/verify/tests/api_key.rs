//! `verify --url` against a server started with an API key: without the key (or with a wrong
//! one) the run stops at MV0201 with a reason that says 401 and how to give the key, instead of
//! a load of failed requests; with it every request is authorized, and the machine's memory
//! (MV0504) is read from the plan's `status.memoryBytes`. The key appears in no rendering of
//! the report. Served: the tiny oracle model (fast to load).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ms_runtime::LoadRequest;
use ms_server::ServerConfig;
use ms_server::guard::ApiKeys;
use ms_test_support::oracle_model;
use ms_verify::{ApiKey, Options, Verdict};

const KEY: &str = "sk-verify-test-7f3a91";

fn tiny_model() -> PathBuf {
    oracle_model("llama-spm-tiny.q4_k_m")
}

/// A spec declaring little memory (any machine has it) and a readiness probe.
fn spec(dir: &Path) -> PathBuf {
    let path = dir.join("keyed.modelspec.yaml");
    std::fs::write(
        &path,
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: keyed\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n    resources:\n      memoryGb: 0.01\n  operations:\n    serving:\n      maxConcurrency: 1\n      readinessProbe: {path: /healthz/ready}\n",
    )
    .unwrap();
    path
}

fn check<'a>(report: &'a ms_verify::Report, code: &str) -> &'a ms_verify::Check {
    report
        .checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no {code} in {}", report.to_text(false)))
}

fn renderings(report: &ms_verify::Report) -> String {
    [
        report.to_text(false),
        report.to_json(),
        report.to_sarif(false),
    ]
    .join("\n")
}

#[test]
fn verify_sends_the_api_key_and_says_when_it_is_missing() {
    let mut config = ServerConfig::new("tiny");
    config.port = 0;
    config.api_keys = ApiKeys::new([KEY]).unwrap();
    let mut req = LoadRequest::new(tiny_model().display().to_string());
    req.flags.threads = Some(1);
    let server = ms_server::start(config, req).expect("server starts");
    server.wait_ready(Duration::from_secs(60)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(spec(dir.path()));
    opts.url = Some(format!("http://{}", server.addr));
    opts.duration = Duration::from_secs(1);
    opts.max_tokens = 2;

    // No key: one clear violation naming 401 and the way to give the key; the open probe is
    // still checked, the rest is not checked rather than failed.
    let report = ms_verify::verify(&opts, &mut |_| {}).expect("verify runs");
    let text = report.to_text(false);
    let ready = check(&report, "MV0201");
    assert_eq!(ready.verdict, Verdict::Violated, "{text}");
    let why = ready.reason.as_deref().unwrap_or("");
    assert!(why.contains("401") && why.contains("--api-key"), "{text}");
    assert!(why.contains("MODELSPEC_API_KEY"), "{text}");
    assert_eq!(check(&report, "MV0601").verdict, Verdict::Held, "{text}");
    assert_eq!(
        check(&report, "MV0403").verdict,
        Verdict::NotChecked,
        "{text}"
    );
    assert!(!report.passed(false));

    // A wrong key: said so, and the wrong key is not repeated.
    opts.api_key = Some(ApiKey::new("sk-wrong-key-0000").unwrap());
    let report = ms_verify::verify(&opts, &mut |_| {}).expect("verify runs");
    let ready = check(&report, "MV0201");
    assert_eq!(ready.verdict, Verdict::Violated);
    assert!(
        ready
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("refused the API key")),
        "{}",
        report.to_text(false)
    );
    assert!(!renderings(&report).contains("sk-wrong-key-0000"));

    // The key: every request is authorized, the load completes, and the machine's memory is
    // the server's own report.
    opts.api_key = Some(ApiKey::new(KEY).unwrap());
    assert!(!format!("{opts:?}").contains(KEY), "Debug hides the key");
    let report = ms_verify::verify(&opts, &mut |_| {}).expect("verify runs");
    let text = report.to_text(false);
    assert_eq!(check(&report, "MV0201").verdict, Verdict::Held, "{text}");
    assert_eq!(check(&report, "MV0403").verdict, Verdict::Held, "{text}");
    let memory = check(&report, "MV0504");
    assert_eq!(memory.verdict, Verdict::Held, "{text}");
    assert!(
        memory.method.contains("status.memoryBytes"),
        "read at the URL, not from this process: {text}"
    );
    let reported = report
        .plan
        .as_ref()
        .and_then(|p| p.pointer("/status/memoryBytes"))
        .and_then(|v| v.as_u64());
    assert_eq!(reported, ms_runtime::machine::total_memory(), "{text}");
    assert!(!renderings(&report).contains(KEY));
    server.shutdown();
}
