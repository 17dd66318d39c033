//! `--url` mode: the test starts a server on the default model itself, then verifies specs
//! against it from outside, as a deployment would be checked. The metrics port is declared as
//! the server's real port so that it can hold; a spec without artifacts has its prompt lengths
//! calibrated against the server's own counts. JSON and SARIF renderings parse and carry the
//! codes.

use std::fs;
use std::path::Path;
use std::time::Duration;

use ms_runtime::LoadRequest;
use ms_server::ServerConfig;
use ms_verify::{Options, Verdict};
use serde_json::Value;

fn spec(dir: &Path, name: &str, artifacts: &str, port: u16) -> std::path::PathBuf {
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
{artifacts}  runtime:
    accelerator:
      type: cpu
      count: 1
    batch:
      maxSequenceLengthTokens: 64
  operations:
    serving:
      maxConcurrency: 1
      readinessProbe: {{path: /healthz/ready}}
    scaling:
      targetLatencyMsP95: 1
    observability:
      metrics: {{enabled: true, port: {port}}}
"
    );
    let path = dir.join(format!("{name}.modelspec.yaml"));
    fs::write(&path, yaml).unwrap();
    path
}

fn verdict(report: &ms_verify::Report, code: &str) -> Verdict {
    report
        .checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no {code} in {}", report.to_text(false)))
        .verdict
}

#[test]
fn verifies_a_running_server_from_outside() {
    let model = ms_fetch::default_model().expect("default model");
    let mut config = ServerConfig::new("gemma-3-270m-it");
    config.port = 0;
    let server = ms_server::start(config, LoadRequest::new(model.display().to_string()))
        .expect("server starts");
    // No wait_ready: verify itself waits while the server answers 503 (loading).
    let url = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();

    // Pinned weights: exact prompt lengths from the local copy of the declared file.
    let pinned = spec(
        dir.path(),
        "pinned",
        &format!(
            "      artifacts:\n        - {{role: weights, format: gguf, uri: {}, sha256: {}}}\n",
            model.display(),
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
        ),
        server.addr.port(),
    );
    let mut opts = Options::new(&pinned);
    opts.url = Some(url.clone());
    opts.duration = Duration::from_secs(1);
    opts.max_tokens = 2;
    let report = ms_verify::verify(&opts, &mut |_| {}).expect("verify runs");
    let text = report.to_text(false);
    assert_eq!(report.target.mode, "url", "{text}");
    assert_eq!(verdict(&report, "MV0101"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0201"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0301"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0302"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0401"), Verdict::Violated, "{text}");
    assert_eq!(verdict(&report, "MV0601"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0603"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0604"), Verdict::Held, "{text}");
    assert_eq!(verdict(&report, "MV0801"), Verdict::Held, "{text}");
    assert!(!report.passed(false));
    assert!(text.contains("the server at http://"), "{text}");
    assert!(
        text.contains("✗ MV0401 p95 latency: declared ≤ 1 ms"),
        "{text}"
    );

    let json: Value = serde_json::from_str(&report.to_json()).expect("JSON parses");
    let codes: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    for code in ["MV0101", "MV0201", "MV0301", "MV0302", "MV0401", "MV0601"] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert_eq!(json["target"]["mode"], "url");
    assert!(
        json["plan"]["spec"]["contextLength"].as_u64().is_some(),
        "{json:#}"
    );
    let sarif: Value = serde_json::from_str(&report.to_sarif(false)).expect("SARIF parses");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let latency = results.iter().find(|r| r["ruleId"] == "MV0401").unwrap();
    assert_eq!(latency["kind"], "fail");
    assert_eq!(latency["level"], "error");
    assert!(
        latency["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .is_some_and(|l| l > 0)
    );
    assert_eq!(
        results.iter().find(|r| r["ruleId"] == "MV0101").unwrap()["kind"],
        "pass"
    );

    // No artifact: prompt lengths are fitted to the server's usage counts, and said so.
    let bare = spec(dir.path(), "bare", "", server.addr.port());
    let mut opts = Options::new(&bare);
    opts.url = Some(url);
    opts.duration = Duration::from_secs(1);
    opts.max_tokens = 2;
    let report = ms_verify::verify(&opts, &mut |_| {}).expect("verify runs");
    let text = report.to_text(false);
    assert_eq!(verdict(&report, "MV0301"), Verdict::Held, "{text}");
    assert!(text.contains("approximate"), "{text}");
    // The plan runs the stored file, whose type verify cannot see without the artifact.
    assert_eq!(verdict(&report, "MV0801"), Verdict::NotChecked, "{text}");
    assert!(!report.passed(true));
    server
        .wait_ready(Duration::from_secs(1))
        .expect("the server was ready all along");
    server.shutdown();
}
