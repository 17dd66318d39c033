//! The server as a client sees it, over raw HTTP on loopback: OpenAI responses and streams,
//! errors and limits, 429 when full, cancellation when a client disconnects, health, metrics,
//! runs, plans and the OpenAPI document. Uses the tiny random-weight llama of the oracle.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[test]
fn completion_and_chat_answer_in_openai_format() {
    let server = start();
    let addr = server.addr;
    let body = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 5,
                      "temperature": 0, "user": "ignored-field"});
    let r = post(addr, "/v1/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "tiny");
    assert_eq!(v["choices"][0]["index"], 0);
    let usage = &v["usage"];
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=5).contains(&completion), "{v}");
    assert!(usage["prompt_tokens"].as_u64().unwrap() >= 4);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + completion
    );
    if completion == 5 {
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }
    // Same request, same text (seeded sampling, greedy here).
    let again = post(addr, "/v1/completions", &body).json();
    assert_eq!(again["choices"][0]["text"], v["choices"][0]["text"]);

    // The run record behind the header.
    let id = r.header("x-modelspec-run-id").expect("run id header");
    let run = get(addr, &format!("/v1/runs/{id}"));
    assert_eq!(run.status, 200, "{}", run.text());
    let run = run.json();
    assert_eq!(run["status"], "completed");
    assert_eq!(run["completion_tokens"].as_u64(), Some(completion));
    assert_eq!(run["plan"], "default");
    assert!(run["ttft_ms"].as_f64().unwrap() > 0.0);

    let chat = json!({"model": "tiny", "max_completion_tokens": 4, "temperature": 0,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]});
    let r = post(addr, "/v1/chat/completions", &chat);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["choices"][0]["message"]["content"].is_string());
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 4);
    assert!(r.header("x-modelspec-run-id").is_some());

    let models = get(addr, "/v1/models").json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny");
    assert_eq!(get(addr, "/v1/models/tiny").status, 200);
    assert_eq!(get(addr, "/v1/models/other").status, 404);
}

#[test]
fn streams_are_openai_chunks_ending_with_done() {
    let server = start();
    let addr = server.addr;
    let body = json!({"prompt": "The sky is", "max_tokens": 6, "temperature": 0, "seed": 3});
    let whole = post(addr, "/v1/completions", &body).json();

    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let r = post(addr, "/v1/completions", &streaming);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.header("x-modelspec-run-id").is_some());
    let events = r.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "text_completion");
        if let Some(t) = c["choices"][0]["text"].as_str() {
            text.push_str(t);
        }
    }
    // The streamed pieces make the same text as the whole answer.
    assert_eq!(text, whole["choices"][0]["text"].as_str().unwrap());
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], whole["usage"]);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(
        finish["choices"][0]["finish_reason"],
        whole["choices"][0]["finish_reason"]
    );

    let chat = json!({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4,
                      "stream": true, "temperature": 0});
    let events = post(addr, "/v1/chat/completions", &chat).events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(last["choices"][0]["finish_reason"].is_string(), "{last}");
    assert!(last.get("usage").is_none(), "usage only when asked: {last}");
}

fn assert_error(r: &Reply, status: u16, param: Option<&str>, says: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    let e = &v["error"];
    assert!(e["message"].as_str().unwrap().contains(says), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert_eq!(e["param"].as_str(), param, "{v}");
    assert!(e.as_object().unwrap().contains_key("code"), "{v}");
}

#[test]
fn bad_requests_get_openai_errors() {
    let server = start_with(&tiny_model(), |c| {
        c.limits.max_body_bytes = 4096;
        c.limits.max_tokens = 64;
    });
    let addr = server.addr;
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        b"{\"messages\": [\n  oops]}",
    );
    assert_error(&r, 400, None, "line 2 column 3");
    let r = request(addr, "POST", "/v1/completions", b"");
    assert_error(&r, 400, None, "empty");
    let r = post(addr, "/v1/completions", &json!({"prompt": "x", "n": 2}));
    assert_error(&r, 400, Some("n"), "must be 1");
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "x", "max_tokens": 65}),
    );
    assert_error(&r, 400, Some("max_tokens"), "limit of 64");
    let r = post(
        addr,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 1000}),
    );
    assert_error(&r, 400, Some("max_completion_tokens"), "limit of 64");
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "x", "temperature": "hot"}),
    );
    assert_error(&r, 400, Some("temperature"), "must be a number");
    let r = post(addr, "/v1/completions", &json!({"prompt": "x", "stop": 7}));
    assert_error(&r, 400, Some("stop"), "string");
    let r = post(addr, "/v1/chat/completions", &json!({"model": "tiny"}));
    assert_error(&r, 400, Some("messages"), "required");
    let r = post(addr, "/v1/completions", &json!({"prompt": [999999]}));
    assert_error(&r, 400, Some("prompt"), "vocabulary");
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "x", "echo": true}),
    );
    assert_error(&r, 400, Some("echo"), "not supported");
    let big = json!({"prompt": "x".repeat(5000)});
    let r = post(addr, "/v1/completions", &big);
    assert_error(&r, 413, None, "4096 bytes");
    let r = get(addr, "/v1/nothing");
    assert_error(&r, 404, None, "no route GET /v1/nothing");
    let r = get(addr, "/v1/completions");
    assert_error(&r, 405, None, "not allowed");
    let r = get(addr, "/v1/runs/12345");
    assert_error(&r, 404, None, "no run");
    let r = get(addr, "/v1/runs/abc");
    assert_eq!(r.status, 404);

    // Still serving after all that; stop strings end the text before them.
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "a", "max_tokens": 3, "stop": ["zzzz", "yyyy"], "temperature": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let metrics = get(addr, "/metrics").text();
    assert!(metric(&metrics, "modelspec_requests_total{status=\"400\"}").unwrap() >= 10.0);
    assert_eq!(
        metric(&metrics, "modelspec_requests_total{status=\"413\"}"),
        Some(1.0)
    );
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let server = start_with(&tiny_model(), |c| c.limits.max_body_bytes = 1 << 20);
    let ids: Vec<u32> = (0..2100).map(|i| 100 + i % 1000).collect();
    let r = post(
        server.addr,
        "/v1/completions",
        &json!({"prompt": ids, "max_tokens": 1}),
    );
    assert_error(&r, 400, Some("prompt"), "context holds 2048");
    assert_eq!(r.json()["error"]["code"], "context_length_exceeded");
}

/// Starts a long streaming request and reads until its first text arrives (it is running).
fn running_stream(addr: std::net::SocketAddr) -> (BufReader<std::net::TcpStream>, String) {
    let mut s = connect(addr);
    let body = json!({"prompt": "Tell me a long story", "max_tokens": 2000, "stream": true});
    write_request(
        &mut s,
        "POST",
        "/v1/completions",
        body.to_string().as_bytes(),
        "",
    );
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    assert_eq!(status, 200);
    let id = headers
        .iter()
        .find(|(k, _)| k == "x-modelspec-run-id")
        .map(|(_, v)| v.clone())
        .unwrap();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with("data: {") && line.contains("\"text\"") {
            break;
        }
    }
    (r, id)
}

#[test]
fn full_server_refuses_with_429_and_a_dropped_stream_frees_its_slot() {
    // One request at a time, no queue.
    let server = start_with(&tiny_model(), |c| c.limits.max_concurrency = 1);
    let addr = server.addr;
    let (stream, id) = running_stream(addr);
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "x", "max_tokens": 1}),
    );
    assert_error(&r, 429, None, "concurrency limit");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(
        get(addr, &format!("/v1/runs/{id}")).json()["status"],
        "running"
    );

    // 2000 tokens take far longer than this test: only a cancellation frees the slot.
    drop(stream);
    assert!(
        eventually(Duration::from_secs(10), || {
            post(
                addr,
                "/v1/completions",
                &json!({"prompt": "x", "max_tokens": 1}),
            )
            .status
                == 200
        }),
        "the slot was not freed after the client disconnected"
    );
    let run = get(addr, &format!("/v1/runs/{id}")).json();
    assert_eq!(run["status"], "cancelled", "{run}");
    let metrics = get(addr, "/metrics").text();
    // The first refusal, and those while the cancellation was on its way.
    assert!(metric(&metrics, "modelspec_requests_total{status=\"429\"}").unwrap() >= 1.0);
    assert!(
        metric(
            &metrics,
            "modelspec_scheduler_requests_total{outcome=\"cancelled\"}"
        )
        .unwrap()
            >= 1.0
    );
}

#[test]
fn a_dropped_non_streaming_request_is_cancelled() {
    let server = start_with(&tiny_model(), |c| c.limits.max_concurrency = 1);
    let addr = server.addr;
    let mut s = connect(addr);
    let body = json!({"prompt": "Tell me a long story", "max_tokens": 2000});
    write_request(
        &mut s,
        "POST",
        "/v1/completions",
        body.to_string().as_bytes(),
        "",
    );
    let batch = || metric(&get(addr, "/metrics").text(), "modelspec_batch_size");
    assert!(
        eventually(Duration::from_secs(10), || batch() == Some(1.0)),
        "never ran"
    );
    drop(s);
    assert!(
        eventually(Duration::from_secs(10), || batch() == Some(0.0)),
        "still running after the client went away"
    );
    let metrics = get(addr, "/metrics").text();
    assert_eq!(
        metric(
            &metrics,
            "modelspec_scheduler_requests_total{outcome=\"cancelled\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "modelspec_scheduler_requests_total{outcome=\"completed\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn requests_over_the_timeout_end_with_504_or_an_error_event() {
    let server = start_with(&tiny_model(), |c| {
        c.limits.timeout = Duration::from_millis(300)
    });
    let addr = server.addr;
    let long = json!({"prompt": "Tell me a long story", "max_tokens": 2000});
    let r = post(addr, "/v1/completions", &long);
    assert_error(&r, 504, None, "timed out");
    assert_eq!(r.json()["error"]["type"], "timeout_error");
    let id = r
        .header("x-modelspec-run-id")
        .expect("run id on errors after submission");
    let run = get(addr, &format!("/v1/runs/{id}")).json();
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("timed out"),
        "{run}"
    );

    let mut streaming = long.clone();
    streaming["stream"] = json!(true);
    let r = post(addr, "/v1/completions", &streaming);
    assert_eq!(r.status, 200);
    let events = r.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let error: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(error["error"]["type"], "timeout_error", "{error}");
    let id = r.header("x-modelspec-run-id").unwrap();
    let run = get(addr, &format!("/v1/runs/{id}")).json();
    assert_eq!(run["status"], "failed", "{run}");
    let metrics = get(addr, "/metrics").text();
    assert_eq!(
        metric(&metrics, "modelspec_requests_total{status=\"504\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "modelspec_scheduler_requests_total{outcome=\"timed_out\"}"
        ),
        Some(2.0)
    );
}

#[test]
fn health_probes_follow_the_model_and_configured_paths() {
    let mut config = ms_server::ServerConfig::new("missing");
    config.port = 0;
    config.live_path = "/alive".into();
    config.ready_path = "/ready".into();
    config.metrics_path = "/prom".into();
    let req = ms_runtime::LoadRequest::new("/nonexistent/model.gguf");
    let server = ms_server::start(config, req).unwrap();
    let addr = server.addr;
    assert_eq!(get(addr, "/alive").status, 200);
    let err = server.wait_ready(Duration::from_secs(30)).unwrap_err();
    assert!(err.to_string().contains("model.gguf"), "{err}");
    let r = get(addr, "/ready");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "failed");
    let r = post(addr, "/v1/completions", &json!({"prompt": "x"}));
    assert_error(&r, 503, None, "could not be loaded");
    assert_eq!(get(addr, "/healthz/live").status, 404);
    let prom = get(addr, "/prom").text();
    assert!(prom.contains("modelspec_queue_depth 0"), "{prom}");
    assert_eq!(
        metric(&prom, "modelspec_requests_total{status=\"200\"}"),
        Some(0.0)
    );
    drop(server);

    let server = start();
    let r = get(server.addr, "/healthz/ready");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(get(server.addr, "/healthz/live").status, 200);

    // Colliding paths are refused before binding.
    let mut bad = ms_server::ServerConfig::new("x");
    bad.port = 0;
    bad.ready_path = "/v1/plan".into();
    assert!(ms_server::start(bad, ms_runtime::LoadRequest::new("x")).is_err());
    let mut bad = ms_server::ServerConfig::new("x");
    bad.port = 0;
    bad.metrics_path = "/healthz/ready".into();
    assert!(ms_server::start(bad, ms_runtime::LoadRequest::new("x")).is_err());

    // One path for both probes (as Kubernetes specs often give) answers readiness.
    let mut one = ms_server::ServerConfig::new("missing");
    one.port = 0;
    one.live_path = "/health".into();
    one.ready_path = "/health".into();
    let server =
        ms_server::start(one, ms_runtime::LoadRequest::new("/nonexistent/model.gguf")).unwrap();
    assert!(server.wait_ready(Duration::from_secs(30)).is_err());
    let r = get(server.addr, "/health");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "failed");
}

#[test]
fn metrics_report_requests_latencies_tokens_and_energy() {
    let server = start();
    let addr = server.addr;
    for _ in 0..2 {
        let r = post(
            addr,
            "/v1/completions",
            &json!({"prompt": "Hi", "max_tokens": 3}),
        );
        assert_eq!(r.status, 200);
    }
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    assert_eq!(
        metric(&text, "modelspec_requests_total{status=\"200\"}"),
        Some(2.0)
    );
    assert_eq!(metric(&text, "modelspec_queue_depth"), Some(0.0));
    assert_eq!(metric(&text, "modelspec_batch_size"), Some(0.0));
    assert_eq!(
        metric(&text, "modelspec_time_to_first_token_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, "modelspec_request_duration_seconds_count"),
        Some(2.0)
    );
    assert!(metric(&text, "modelspec_inter_token_latency_seconds_count").unwrap() >= 2.0);
    assert!(text.contains("modelspec_time_to_first_token_seconds_bucket{le=\"0.1\"}"));
    assert!(text.contains("# TYPE modelspec_inter_token_latency_seconds histogram"));
    assert!(metric(&text, "modelspec_generated_tokens_total").unwrap() >= 2.0);
    assert!(metric(&text, "modelspec_prompt_tokens_total").unwrap() >= 2.0);
    assert!(metric(&text, "modelspec_energy_joules_total").unwrap() > 0.0);
    assert!(metric(&text, "modelspec_process_resident_memory_bytes").unwrap() > 1e6);
}

#[test]
fn plans_are_shown_evaluated_and_applied() {
    let server = start_with(&tiny_f16(), |_| {});
    let addr = server.addr;
    let plan = get(addr, "/v1/plan").json();
    assert_eq!(plan["kind"], "ExecutionPlan");
    assert_eq!(plan["metadata"]["name"], "default");
    assert_eq!(plan["spec"]["quantization"], "source");

    // Invalid: schema findings with pointers, 422, nothing changed.
    let bad = "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: bad}\nspec:\n  threads: 0\n  quantization: Q9\n";
    let r = request(addr, "POST", "/v1/plans/evaluate", bad.as_bytes());
    assert_eq!(r.status, 422, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["pointer"].as_str().unwrap().starts_with("/spec/")),
        "{v}"
    );
    let r = request(addr, "PUT", "/v1/plan", bad.as_bytes());
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(get(addr, "/v1/plan").json()["metadata"]["name"], "default");

    // Another quantization measured beside the current plan.
    let candidate = json!({"plan": {"apiVersion": "modelspec/v1", "kind": "ExecutionPlan",
        "metadata": {"name": "q8"}, "spec": {"quantization": "Q8_0"}},
        "workload": {"prompts": ["Once upon a time"], "maxTokens": 4}});
    let r = post(addr, "/v1/plans/evaluate", &candidate);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json();
    assert_eq!(e["current"]["plan"], "default", "{e}");
    assert_eq!(e["candidate"]["plan"], "q8", "{e}");
    assert_eq!(e["candidate"]["quantization"], "Q8_0", "{e}");
    assert!(
        e["candidate"]["generationTokensPerSecond"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{e}"
    );
    assert!(e["sameTokens"].is_boolean());
    // Evaluating did not apply it.
    assert_eq!(get(addr, "/v1/plan").json()["metadata"]["name"], "default");

    // Apply (YAML body) while a request runs: it finishes under the old plan, new requests
    // run under the new one.
    let mut s = connect(addr);
    let body = json!({"prompt": "Tell me a story", "max_tokens": 40, "stream": true});
    write_request(
        &mut s,
        "POST",
        "/v1/completions",
        body.to_string().as_bytes(),
        "",
    );
    let mut in_flight = BufReader::new(s);
    let (status, headers) = read_head(&mut in_flight);
    assert_eq!(status, 200);
    let old_id = headers
        .iter()
        .find(|(k, _)| k == "x-modelspec-run-id")
        .unwrap()
        .1
        .clone();
    let yaml = "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: greedy}\nspec:\n  scheduler: {policy: fifo, maxBatch: 2}\n  sampling: {temperature: 0, maxTokens: 3}\n";
    let r = request(addr, "PUT", "/v1/plan", yaml.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["previous"], "default");
    assert_eq!(get(addr, "/v1/plan").json()["metadata"]["name"], "greedy");
    let rest: Vec<String> = in_flight.lines().map(Result::unwrap).collect();
    assert!(rest.iter().any(|l| l == "data: [DONE]"), "{rest:?}");
    let old_run = get(addr, &format!("/v1/runs/{old_id}")).json();
    assert_eq!(old_run["status"], "completed", "{old_run}");
    assert_eq!(old_run["plan"], "default", "{old_run}");
    assert_eq!(old_run["completion_tokens"], 40, "{old_run}");
    let r = post(addr, "/v1/completions", &json!({"prompt": "Hello"}));
    assert_eq!(r.status, 200);
    assert!(r.json()["usage"]["completion_tokens"].as_u64().unwrap() <= 3);
    let id = r.header("x-modelspec-run-id").unwrap();
    assert_eq!(
        get(addr, &format!("/v1/runs/{id}")).json()["plan"],
        "greedy"
    );
}

#[test]
fn openapi_lists_every_route() {
    let server = start();
    let addr = server.addr;
    let doc = get(addr, "/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in ms_server::openapi::ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        // Every listed route exists on the server (errors are fine, 404/405 are not).
        let concrete = path.replace("{id}", "tiny");
        let r = request(addr, &method.to_uppercase(), &concrete, b"");
        assert!(![405].contains(&r.status), "{method} {path}: {}", r.status);
        if !path.contains("{id}") {
            assert_ne!(r.status, 404, "{method} {path}");
        }
    }
    for path in ["/healthz/live", "/healthz/ready", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
}

#[test]
fn a_modelspec_sets_the_model_id_probe_paths_and_limits() {
    let dir = std::env::temp_dir().join(format!("ms-server-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = tiny_model();
    let sha = ms_fetch::sha256_file(std::path::Path::new(&model)).unwrap();
    let spec = dir.join("tiny.modelspec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: tiny-spec\nspec:\n  identity:\n    model:\n      id: tiny-chat\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: file://{model}\n          format: gguf\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n  operations:\n    serving:\n      protocol: http\n      port: 9123\n      readinessProbe: {{path: /ready, timeoutSeconds: 2}}\n      livenessProbe: {{path: /live, timeoutSeconds: 2}}\n      maxConcurrency: 3\n      timeoutSeconds: 7\n"
        ),
    )
    .unwrap();
    let req = ms_runtime::LoadRequest::new(spec.to_str().unwrap());
    let mut config = ms_server::ServerConfig::for_request(&req).unwrap();
    assert_eq!(config.model_id, "tiny-chat");
    assert_eq!(config.port, 9123);
    assert_eq!(
        (config.live_path.as_str(), config.ready_path.as_str()),
        ("/live", "/ready")
    );
    assert_eq!(config.limits.max_concurrency, 3);
    assert_eq!(config.limits.timeout, Duration::from_secs(7));
    config.port = 0;
    let server = ms_server::start(config, req).unwrap();
    server.wait_ready(Duration::from_secs(60)).unwrap();
    let addr = server.addr;
    assert_eq!(get(addr, "/ready").status, 200);
    assert_eq!(get(addr, "/live").status, 200);
    assert_eq!(get(addr, "/healthz/ready").status, 404);
    assert_eq!(get(addr, "/v1/models").json()["data"][0]["id"], "tiny-chat");
    let doc = get(addr, "/openapi.json").json();
    assert!(doc["paths"]["/ready"]["get"].is_object());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
