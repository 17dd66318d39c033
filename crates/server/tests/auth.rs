//! On the real server over raw HTTP: API keys (`Authorization: Bearer`), the
//! `Host` check against DNS rebinding, `Content-Type` on the routes that read a body, and the
//! plan routes on a non-loopback address without a key. Probes and metrics stay open.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::*;
use ms_server::guard::{AllowedHosts, ApiKeys};
use serde_json::{Value, json};

const COMPLETION: &str = r#"{"prompt": "Once upon a time", "max_tokens": 2, "temperature": 0}"#;

/// A request with exactly these headers (besides Content-Length and Connection).
fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1");
    for h in headers {
        head.push_str("\r\n");
        head.push_str(h);
    }
    raw_request(addr, &head, body.as_bytes())
}

fn error_of(r: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    v
}

const JSON: &str = "Content-Type: application/json";
const HOST: &str = "Host: localhost";

#[test]
fn api_keys_guard_the_api_but_not_probes_or_metrics() {
    let server = start_with(&tiny_model(), |c| {
        c.api_keys = ApiKeys::new(["sk-alpha-1", "sk-beta-2"]).unwrap();
    });
    let addr = server.addr;
    // No key, a wrong key, another scheme: 401 as OpenAI answers, the key never echoed.
    let r = send(addr, "GET", "/v1/models", &[HOST], "");
    error_of(&r, 401, "invalid_api_key");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = send(
        addr,
        "GET",
        "/v1/models",
        &[HOST, "Authorization: Bearer sk-wrong-secret"],
        "",
    );
    let v = error_of(&r, 401, "invalid_api_key");
    assert!(!v.to_string().contains("sk-wrong-secret"), "{v}");
    let r = send(
        addr,
        "GET",
        "/v1/models",
        &[HOST, "Authorization: Basic c2stYWxwaGEtMQ=="],
        "",
    );
    error_of(&r, 401, "invalid_api_key");
    // A prefix of a key is not the key.
    let r = send(
        addr,
        "GET",
        "/v1/models",
        &[HOST, "Authorization: Bearer sk-alpha-"],
        "",
    );
    error_of(&r, 401, "invalid_api_key");
    // Either key works, the scheme in any case.
    for auth in [
        "Authorization: Bearer sk-alpha-1",
        "Authorization: bearer sk-beta-2",
    ] {
        let r = send(addr, "GET", "/v1/models", &[HOST, auth], "");
        assert_eq!(r.status, 200, "{auth}: {}", r.text());
    }
    let auth = "Authorization: Bearer sk-beta-2";
    let r = send(
        addr,
        "POST",
        "/v1/completions",
        &[HOST, JSON, auth],
        COMPLETION,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(addr, "POST", "/v1/completions", &[HOST, JSON], COMPLETION);
    error_of(&r, 401, "invalid_api_key");
    // The plan routes need the key too.
    let plan = "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: x}\nspec: {}\n";
    let r = send(
        addr,
        "PUT",
        "/v1/plan",
        &[HOST, "Content-Type: application/yaml"],
        plan,
    );
    error_of(&r, 401, "invalid_api_key");
    let r = send(addr, "GET", "/v1/plan", &[HOST], "");
    error_of(&r, 401, "invalid_api_key");
    // Probes and metrics are open: orchestrators and scrapers have no key.
    for path in ["/healthz/live", "/healthz/ready", "/metrics"] {
        let r = send(addr, "GET", path, &[HOST], "");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // Nothing prints a key.
    let shown = format!("{:?}", server.config());
    assert!(
        !shown.contains("sk-alpha") && !shown.contains("sk-beta"),
        "{shown}"
    );
}

#[test]
fn json_routes_need_a_json_content_type_and_plan_routes_take_yaml() {
    let server = start();
    let addr = server.addr;
    // What a web page can post without a preflight: refused.
    for ct in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
    ] {
        let r = send(addr, "POST", "/v1/completions", &[HOST, ct], COMPLETION);
        let v = error_of(&r, 415, "unsupported_media_type");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{v}"
        );
    }
    let r = send(addr, "POST", "/v1/chat/completions", &[HOST], "{}");
    error_of(&r, 415, "unsupported_media_type");
    let r = send(
        addr,
        "POST",
        "/v1/completions",
        &[HOST, "Content-Type: application/yaml"],
        COMPLETION,
    );
    error_of(&r, 415, "unsupported_media_type");
    let r = send(
        addr,
        "POST",
        "/v1/completions",
        &[HOST, "Content-Type: Application/JSON; charset=utf-8"],
        COMPLETION,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // The plan takes YAML under its own types, and JSON; nothing else.
    let plan = "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: yaml-plan}\nspec:\n  sampling: {temperature: 0}\n";
    let r = send(
        addr,
        "PUT",
        "/v1/plan",
        &[HOST, "Content-Type: text/plain"],
        plan,
    );
    error_of(&r, 415, "unsupported_media_type");
    for (i, ct) in ["application/yaml", "application/x-yaml", "text/yaml"]
        .iter()
        .enumerate()
    {
        let named = plan.replace("yaml-plan", &format!("yaml-plan-{i}"));
        let r = send(
            addr,
            "PUT",
            "/v1/plan",
            &[HOST, &format!("Content-Type: {ct}")],
            &named,
        );
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
    let as_json = json!({"plan": {"apiVersion": "modelspec/v1", "kind": "ExecutionPlan",
        "metadata": {"name": "json-plan"}, "spec": {}}});
    let r = send(addr, "PUT", "/v1/plan", &[HOST, JSON], &as_json.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    // GET needs no content type.
    assert_eq!(send(addr, "GET", "/v1/models", &[HOST], "").status, 200);
}

#[test]
fn the_host_header_must_name_this_server() {
    let server = start();
    let addr = server.addr;
    let port = addr.port();
    // A page on evil.example whose name was re-pointed at 127.0.0.1 sends its own Host.
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
    ] {
        let r = send(
            addr,
            "POST",
            "/v1/completions",
            &[&format!("Host: {host}"), JSON],
            COMPLETION,
        );
        let v = error_of(&r, 403, "host_not_allowed");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--allowed-host"),
            "{v}"
        );
        let r = send(addr, "GET", "/v1/models", &[&format!("Host: {host}")], "");
        error_of(&r, 403, "host_not_allowed");
    }
    // IP addresses (what a client that connects by address sends) and localhost are fine.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
    ] {
        let r = send(addr, "GET", "/v1/models", &[&format!("Host: {host}")], "");
        assert_eq!(r.status, 200, "{host}: {}", r.text());
    }
    // Probes answer whatever name the orchestrator uses.
    let r = send(addr, "GET", "/healthz/ready", &["Host: my-pod.svc"], "");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);

    let server = start_with(&tiny_model(), |c| {
        c.allowed_hosts = AllowedHosts::new(["api.example.com"]).unwrap();
    });
    let r = send(
        server.addr,
        "GET",
        "/v1/models",
        &["Host: API.example.com:443"],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(server.addr, "GET", "/v1/models", &["Host: example.com"], "");
    error_of(&r, 403, "host_not_allowed");
    drop(server);

    let server = start_with(&tiny_model(), |c| {
        c.allowed_hosts = AllowedHosts::new(["*"]).unwrap();
    });
    assert!(server.config().warnings()[0].contains("DNS rebinding"));
    let r = send(
        server.addr,
        "GET",
        "/v1/models",
        &["Host: evil.example"],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn without_a_key_on_a_public_address_plan_routes_are_disabled() {
    let server = start_with(&tiny_model(), |c| {
        c.host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    });
    let warnings = server.config().warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("WARNING") && w.contains("--api-key")),
        "{warnings:?}"
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.addr.port()));
    let plan = "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: x}\nspec: {}\n";
    let r = send(
        addr,
        "PUT",
        "/v1/plan",
        &[HOST, "Content-Type: application/yaml"],
        plan,
    );
    let v = error_of(&r, 403, "api_key_required");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--api-key"),
        "{v}"
    );
    let r = send(addr, "POST", "/v1/plans/evaluate", &[HOST, JSON], "{}");
    error_of(&r, 403, "api_key_required");
    // Inference stays open (a deployment behind an authenticating proxy).
    let r = send(addr, "POST", "/v1/completions", &[HOST, JSON], COMPLETION);
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);

    // With a key, the plan routes work there too.
    let server = start_with(&tiny_model(), |c| {
        c.host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        c.api_keys = ApiKeys::new(["sk-x"]).unwrap();
    });
    assert!(server.config().warnings().is_empty());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.addr.port()));
    let r = send(
        addr,
        "PUT",
        "/v1/plan",
        &[
            HOST,
            "Content-Type: application/yaml",
            "Authorization: Bearer sk-x",
        ],
        plan,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Loopback without a key: no warning.
    let local = start();
    assert!(local.config().warnings().is_empty());
}
