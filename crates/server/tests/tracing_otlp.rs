//! The server's OpenTelemetry traces as a collector sees them: a ModelSpec that declares
//! `observability.tracing.enabled: true`, the real server on loopback exporting over OTLP/HTTP
//! to a receiver that decodes the protobuf with the official `opentelemetry-proto` Python
//! package (tests/e2e/otlp_receiver.py, interpreter from [`ms_test_support::python`]), and
//! requests that carry a W3C `traceparent`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Reply, connect, read_head, tiny_model, write_request};
use serde_json::{Value, json};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

/// The Python receiver, killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
    spans: PathBuf,
}

impl Receiver {
    fn start(dir: &Path) -> Receiver {
        let spans = dir.join("spans.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/otlp_receiver.py");
        let mut child = Command::new(ms_test_support::python::python())
            .arg(script)
            .arg(&spans)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver did not say its port: {line:?}"));
        Receiver { child, port, spans }
    }

    fn spans(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.spans)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ModelSpec for the tiny model with tracing declared on.
fn spec_with_tracing(dir: &Path) -> PathBuf {
    let model = tiny_model();
    let sha = ms_fetch::sha256_file(Path::new(&model)).unwrap();
    let spec = dir.join("traced.modelspec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: traced-tiny\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: file://{model}\n          format: gguf\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n  operations:\n    observability:\n      tracing:\n        enabled: true\n"
        ),
    )
    .unwrap();
    spec
}

fn post_with(addr: SocketAddr, path: &str, body: &Value, headers: &str) -> Reply {
    let mut s = connect(addr);
    write_request(&mut s, "POST", path, body.to_string().as_bytes(), headers);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut body).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

fn time(span: &Value, which: &str) -> u64 {
    span[which]
        .as_u64()
        .unwrap_or_else(|| panic!("{which} of {span}"))
}

#[test]
fn request_spans_reach_the_collector_as_children_of_the_incoming_trace() {
    let dir = std::env::temp_dir().join(format!("ms-server-tracing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let receiver = Receiver::start(&dir);
    let spec = spec_with_tracing(&dir);
    let mut req = ms_runtime::LoadRequest::new(spec.to_str().unwrap());
    req.flags.threads = Some(1);
    let mut config = ms_server::ServerConfig::for_request(&req).unwrap();
    let export = config.tracing.as_mut().expect("the spec turns tracing on");
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        assert_eq!(export.service_name, "traced-tiny", "metadata.name");
    }
    export.service_name = "traced-tiny".into();
    export.endpoint =
        ms_server::telemetry::traces_url(&format!("http://127.0.0.1:{}", receiver.port));
    config.port = 0;
    let server = ms_server::start(config, req).unwrap();
    server.wait_ready(Duration::from_secs(60)).unwrap();
    let addr = server.addr;

    let parent =
        format!("traceparent: 00-{TRACE_ID}-{PARENT_ID}-01\r\ntracestate: congo=t61rcWkgMzE\r\n");
    let chat = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    let r = post_with(addr, "/v1/chat/completions", &chat, &parent);
    assert_eq!(r.status, 200, "{}", r.text());
    let run_id: i64 = r.header("x-modelspec-run-id").unwrap().parse().unwrap();
    // The answer names our span in the caller's trace.
    let tp = r
        .header("traceparent")
        .expect("a traceparent answer header");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE_ID, "01"),
        "{tp}"
    );
    let our_span = parts[2].to_string();
    assert_ne!(our_span, PARENT_ID);
    assert_eq!(r.header("tracestate"), Some("congo=t61rcWkgMzE"));

    let streamed = json!({"prompt": "Once upon", "max_tokens": 3, "stream": true});
    let s = post_with(addr, "/v1/completions", &streamed, "");
    assert_eq!(s.status, 200);
    assert!(s.header("traceparent").is_some() && s.header("tracestate").is_none());
    assert!(s.text().contains("[DONE]"), "{}", s.text());
    // A request refused before the scheduler still has its span, with the status.
    let bad = post_with(addr, "/v1/completions", &json!({"max_tokens": 3}), &parent);
    assert_eq!(bad.status, 400);

    // A caller that does not sample its trace: we follow it and record nothing.
    const UNSAMPLED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = post_with(
        addr,
        "/v1/completions",
        &json!({"prompt": "Hi", "max_tokens": 1}),
        &format!("traceparent: 00-{UNSAMPLED}-{PARENT_ID}-00\r\n"),
    );
    assert_eq!(r.status, 200);
    let tp = r
        .header("traceparent")
        .expect("a traceparent answer header");
    assert!(
        tp.starts_with(&format!("00-{UNSAMPLED}-")) && tp.ends_with("-00"),
        "{tp}"
    );

    // Shutting down flushes the batch processor: every span is at the receiver after it.
    server.shutdown();
    let spans = receiver.spans();
    assert!(!spans.is_empty(), "no spans received");
    let by_id: HashMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap(), s))
        .collect();
    let children_of = |id: &str| -> HashMap<String, &Value> {
        spans
            .iter()
            .filter(|s| s["parent_span_id"] == id)
            .map(|s| (s["name"].as_str().unwrap().to_string(), s))
            .collect()
    };

    // The chat request: a server span under the caller's span, in the caller's trace.
    let request = by_id[our_span.as_str()];
    assert_eq!(request["name"], "POST /v1/chat/completions");
    assert_eq!(request["trace_id"], TRACE_ID);
    assert_eq!(request["parent_span_id"], PARENT_ID);
    assert_eq!(request["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(request["service"], "traced-tiny");
    assert_eq!(request["scope"], "ms-server");
    assert_eq!(attr(request, "http.request.method"), "POST");
    assert_eq!(attr(request, "http.route"), "/v1/chat/completions");
    assert_eq!(attr(request, "http.response.status_code"), 200);
    assert_eq!(attr(request, "gen_ai.request.model"), "tiny");
    assert_eq!(attr(request, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(request, "modelspec.run_id"), run_id);
    assert_eq!(attr(request, "modelspec.outcome"), "completed");
    assert!(attr(request, "gen_ai.usage.input_tokens").as_i64().unwrap() > 0);
    assert_eq!(attr(request, "gen_ai.usage.output_tokens"), 4);
    let (start, end) = (time(request, "start"), time(request, "end"));
    assert!(start <= end);

    // queue, prefill, decode: inside the request, one after the other.
    let kids = children_of(&our_span);
    let mut names: Vec<&str> = kids.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["decode", "prefill", "queue"],
        "no stream span when not streamed"
    );
    let mut previous_end = start;
    for name in ["queue", "prefill", "decode"] {
        let k = kids[name];
        assert_eq!(k["trace_id"], TRACE_ID);
        assert_eq!(k["kind"], 1, "SPAN_KIND_INTERNAL");
        let (ks, ke) = (time(k, "start"), time(k, "end"));
        assert!(
            ks >= previous_end && ks <= ke && ke <= end,
            "{name}: {ks}..{ke} in {start}..{end}, after {previous_end}"
        );
        previous_end = ke;
    }
    assert_eq!(attr(kids["decode"], "gen_ai.usage.output_tokens"), 4);

    // The streamed request: its own trace, and a stream child that ends with the request.
    let streamed = spans
        .iter()
        .find(|s| s["name"] == "POST /v1/completions" && attr(s, "modelspec.stream") == true)
        .expect("the streamed request's span");
    assert_ne!(streamed["trace_id"], TRACE_ID);
    assert_eq!(streamed["parent_span_id"], "");
    assert_eq!(attr(streamed, "gen_ai.operation.name"), "text_completion");
    assert_eq!(attr(streamed, "gen_ai.usage.output_tokens"), 3);
    let kids = children_of(streamed["span_id"].as_str().unwrap());
    for name in ["queue", "prefill", "decode", "stream"] {
        let k = kids.get(name).unwrap_or_else(|| panic!("no {name} span"));
        assert!(
            time(k, "start") >= time(streamed, "start") && time(k, "end") <= time(streamed, "end"),
            "{name}"
        );
    }
    assert!(time(kids["stream"], "end") >= time(kids["decode"], "end"));

    // The refused request: a span with its status, no children.
    let refused = spans
        .iter()
        .find(|s| attr(s, "http.response.status_code") == 400)
        .expect("the refused request's span");
    assert_eq!(refused["trace_id"], TRACE_ID);
    assert_eq!(attr(refused, "modelspec.outcome"), "rejected");
    assert!(children_of(refused["span_id"].as_str().unwrap()).is_empty());
    assert!(
        spans.iter().all(|s| s["trace_id"] != UNSAMPLED),
        "an unsampled trace was recorded"
    );

    drop(receiver);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_tracing_there_is_no_exporter_and_no_traceparent() {
    let server = common::start();
    let r = post_with(
        server.addr,
        "/v1/completions",
        &json!({"prompt": "Hi", "max_tokens": 1}),
        &format!("traceparent: 00-{TRACE_ID}-{PARENT_ID}-01\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("traceparent").is_none());
    assert!(server.config().tracing.is_none());
}
