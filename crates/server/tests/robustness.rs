//! The server against bad plans, dying batch loops, slow and idle clients, too many
//! connections, malformed HTTP and abandoned plan evaluations, over raw TCP on loopback with
//! the tiny random-weight llama of the oracle.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use ms_scheduler::Faults;
use serde_json::{Value, json};

fn plan(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn completion_works(addr: std::net::SocketAddr) {
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Hello", "max_tokens": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A server without a `--threads` flag (a flag would override the plans' threads).
fn start_without_flags() -> ms_server::ServerHandle {
    let mut config = ms_server::ServerConfig::new("tiny");
    config.port = 0;
    let server = ms_server::start(config, ms_runtime::LoadRequest::new(tiny_model())).unwrap();
    server.wait_ready(Duration::from_secs(60)).unwrap();
    server
}

#[test]
fn a_plan_beyond_the_machine_is_refused_and_the_old_plan_keeps_serving() {
    let server = start_without_flags();
    let addr = server.addr;
    let huge = plan("huge", "  threads: 100000\n");
    for _ in 0..3 {
        let r = request(addr, "PUT", "/v1/plan", huge.as_bytes());
        assert_eq!(r.status, 422, "{}", r.text());
        let v = r.json();
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["pointer"] == "/spec/threads")
            .unwrap_or_else(|| panic!("no /spec/threads finding: {v}"));
        let m = f["message"].as_str().unwrap();
        assert!(m.contains(&format!("{} cores", cores())), "{m}");
        assert!(m.contains("oversubscribe: true"), "{m}");
    }
    assert_eq!(get(addr, "/v1/plan").json()["metadata"]["name"], "default");
    assert_eq!(get(addr, "/healthz/ready").status, 200);
    completion_works(addr);

    // More threads than cores only when the plan says so, and never past the ceiling.
    let over = format!("  threads: {}\n", cores() + 1);
    let r = request(addr, "PUT", "/v1/plan", plan("over", &over).as_bytes());
    assert_eq!(r.status, 422, "{}", r.text());
    let on_purpose = plan("over", &format!("{over}  oversubscribe: true\n"));
    let r = request(addr, "PUT", "/v1/plan", on_purpose.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["plan"]["spec"]["oversubscribe"], true);
    completion_works(addr);
    let r = request(
        addr,
        "PUT",
        "/v1/plan",
        plan("huge", "  threads: 100000\n  oversubscribe: true\n").as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("ceiling"), "{}", r.text());
}

#[test]
fn a_plan_whose_batch_thread_cannot_start_leaves_the_old_plan_serving() {
    let server = start();
    let addr = server.addr;
    server.scheduler().unwrap().inject_faults(Faults {
        thread_starts: 1,
        ..Faults::default()
    });
    let r = request(
        addr,
        "PUT",
        "/v1/plan",
        plan("next", "  threads: 1\n").as_bytes(),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "plan_not_applied");
    assert_eq!(get(addr, "/v1/plan").json()["metadata"]["name"], "default");
    assert_eq!(get(addr, "/healthz/ready").status, 200);
    completion_works(addr);
}

#[test]
fn a_dead_batch_loop_fails_readiness_and_is_restarted() {
    let server = start();
    let addr = server.addr;
    // The loop panics outside a step and its next threads cannot start: it is down until
    // supervision gets a thread started.
    server.scheduler().unwrap().inject_faults(Faults {
        loop_panics: 1,
        thread_starts: 3,
        ..Faults::default()
    });
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Hello", "max_tokens": 2}),
    );
    assert!(r.status >= 500, "{}", r.text());
    let ready = get(addr, "/healthz/ready");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["status"], "scheduler_stopped");
    assert!(eventually(Duration::from_secs(30), || get(
        addr,
        "/healthz/ready"
    )
    .status
        == 200));
    completion_works(addr);
    let m = get(addr, "/metrics").text();
    assert_eq!(metric(&m, "modelspec_batch_loop_panics_total"), Some(1.0));
}

/// Reads until the server closes the connection; what it sent.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

fn short_timeouts(c: &mut ms_server::ServerConfig) {
    c.connections.header_read = Duration::from_millis(500);
    c.connections.body_read = Duration::from_millis(500);
    c.connections.idle = Duration::from_millis(800);
}

#[test]
fn silent_slow_and_idle_connections_are_closed() {
    let server = start_with(&tiny_model(), short_timeouts);
    let addr = server.addr;

    // Sends nothing: closed after the header-read timeout, without an answer.
    let mut s = connect(addr);
    assert!(read_until_closed(&mut s).is_empty());

    // Headers byte by byte, slower than the timeout allows in total.
    let mut s = connect(addr);
    let head =
        b"GET /healthz/live HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut sent = 0;
    for b in head {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = read_until_closed(&mut s);
    assert!(sent < head.len() || answer.is_empty(), "{sent} bytes sent");
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 200 "),
        "{answer:?}"
    );

    // A body that stalls: 408 with an OpenAI error, then the connection closes.
    let mut s = connect(addr);
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
        .unwrap();
    let answer = String::from_utf8(read_until_closed(&mut s)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");

    // Keep-alive: served, then closed once idle.
    let mut s = connect(addr);
    s.write_all(b"GET /healthz/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = String::from_utf8(read_until_closed(&mut s)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let m = get(addr, "/metrics").text();
    let closed = |reason: &str| {
        metric(
            &m,
            &format!("modelspec_connections_closed_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(closed("header_timeout") >= 2.0, "{m}");
    assert!(closed("idle_timeout") >= 1.0, "{m}");

    // A request in flight is not cut by the idle timeout: a stream longer than it completes.
    let body = json!({"prompt": "Tell me a story", "max_tokens": 64, "stream": true});
    let r = request(addr, "POST", "/v1/completions", body.to_string().as_bytes());
    assert_eq!(r.events().last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn connections_over_the_limit_are_refused_and_slots_free_up() {
    let server = start_with(&tiny_model(), |c| c.connections.max_connections = 3);
    let addr = server.addr;
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    // The held ones are counted once the server has accepted them.
    assert!(eventually(Duration::from_secs(10), || {
        let r = get(addr, "/healthz/live");
        r.status == 503
    }));
    let r = get(addr, "/healthz/live");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_many_connections");
    assert_eq!(r.header("retry-after"), Some("1"));
    // A slot frees when a client goes away: the next request is served.
    drop(held.pop());
    assert!(eventually(Duration::from_secs(10), || get(
        addr,
        "/healthz/live"
    )
    .status
        == 200));
    // The server counts a closed connection once it sees the close, which may come after the
    // client's next connect: read the metrics through the same wait.
    let mut m = String::new();
    assert!(eventually(Duration::from_secs(10), || {
        let r = get(addr, "/metrics");
        m = r.text();
        r.status == 200
    }));
    assert!(
        metric(&m, "modelspec_connections_closed_total{reason=\"limit\"}") >= Some(2.0),
        "{m}"
    );
    drop(held);
}

/// Sends raw bytes and reads the whole answer.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> (u16, Value) {
    let mut s = connect(addr);
    // The server may answer before it has read everything (and then close).
    let _ = s.write_all(bytes);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/json"),
        "{headers:?}"
    );
    let mut body = Vec::new();
    let _ = r.read_to_end(&mut body);
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

#[test]
fn the_http_layers_own_errors_are_openai_json() {
    let server = start();
    let addr = server.addr;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nBad\x01Header: y\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
            400,
        ),
        (
            format!(
                "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
                "a".repeat(70_000)
            )
            .into_bytes(),
            414,
        ),
        (
            format!(
                "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
                "b".repeat(600_000)
            )
            .into_bytes(),
            431,
        ),
    ];
    for (bytes, expected) in cases {
        let (status, v) = raw(addr, &bytes);
        assert_eq!(status, expected, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 10, "{v}");
    }
    // The server still serves.
    assert_eq!(get(addr, "/v1/models").status, 200);
}

#[test]
fn an_abandoned_evaluation_stops_before_the_next_one_runs() {
    let server = start_with(&tiny_f16(), |_| {});
    let addr = server.addr;
    let candidate = |prompts: Vec<&str>, max_tokens: usize| {
        json!({"plan": {"apiVersion": "modelspec/v1", "kind": "ExecutionPlan",
            "metadata": {"name": "same"}, "spec": {"threads": 1}},
            "workload": {"prompts": prompts, "maxTokens": max_tokens}})
    };
    // Long enough to be running when its client leaves (eight prompts, 1000 tokens each, on
    // both plans).
    let long = candidate(vec!["Once upon a time"; 8], 1000);
    let mut s = connect(addr);
    write_request(
        &mut s,
        "POST",
        "/v1/plans/evaluate",
        long.to_string().as_bytes(),
        "",
    );
    let running = |n: f64| {
        let m = get(addr, "/metrics").text();
        metric(&m, "modelspec_plan_evaluations_running") == Some(n)
    };
    assert!(eventually(Duration::from_secs(60), || running(1.0)));
    drop(s);
    // The next evaluation gets the lock once the abandoned one has stopped.
    let r = post(addr, "/v1/plans/evaluate", &candidate(vec!["Hello"], 2));
    assert_eq!(r.status, 200, "{}", r.text());
    let m = get(addr, "/metrics").text();
    let ended = |outcome: &str| {
        metric(
            &m,
            &format!("modelspec_plan_evaluations_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(ended("cancelled"), Some(1.0), "{m}");
    assert_eq!(ended("completed"), Some(1.0), "{m}");
    assert_eq!(metric(&m, "modelspec_plan_evaluations_running"), Some(0.0));
}

#[test]
fn retry_after_grows_with_the_queue() {
    // One slot, a queue of 8: the 429s beyond it estimate from the requests' service time.
    let server = start();
    let addr = server.addr;
    let r = request(
        addr,
        "PUT",
        "/v1/plan",
        plan(
            "one",
            "  threads: 1\n  scheduler: {maxBatch: 1}\n  limits: {maxQueue: 8}\n",
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Measure the service time on a few completed requests.
    for _ in 0..3 {
        completion_works(addr);
    }
    let long = json!({"prompt": "Tell me a story", "max_tokens": 400, "stream": true});
    let mut streams = Vec::new();
    for _ in 0..9 {
        let mut s = connect(addr);
        write_request(
            &mut s,
            "POST",
            "/v1/completions",
            long.to_string().as_bytes(),
            "",
        );
        streams.push(s);
    }
    assert!(eventually(Duration::from_secs(30), || {
        let m = get(addr, "/metrics").text();
        metric(&m, "modelspec_queue_depth") == Some(8.0)
    }));
    let r = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Hi", "max_tokens": 2}),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    let full: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&full), "{full}");
    drop(streams);
}
