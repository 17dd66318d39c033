//! The registry version a server runs, on every response of the real server over raw HTTP:
//! completions (plain and streamed), chat, models, plans, errors, the guard's refusals and the
//! accept loop's answers to malformed HTTP; and
//! none of these headers when no version is configured.

mod common;

use common::*;
use ms_server::VersionHeaders;
use ms_server::guard::ApiKeys;
use ms_server::version_headers::{MANIFEST_DIGEST, MODEL_VERSION, SIGNER};
use serde_json::json;

fn configured() -> VersionHeaders {
    VersionHeaders {
        model_version: "tiny@3".into(),
        manifest_digest: format!("sha256:{}", "5e".repeat(32)),
        signer: "release-2026 sha256:0123abcd".into(),
    }
}

fn assert_headers(r: &Reply, what: &str) {
    let want = configured();
    assert_eq!(r.header(MODEL_VERSION), Some("tiny@3"), "{what}: {r:?}");
    assert_eq!(
        r.header(MANIFEST_DIGEST),
        Some(want.manifest_digest.as_str()),
        "{what}"
    );
    assert_eq!(r.header(SIGNER), Some(want.signer.as_str()), "{what}");
}

#[test]
fn every_response_names_the_version_its_manifest_and_signer() {
    let server = start_with(&tiny_model(), |c| {
        c.version_headers = Some(configured());
    });
    let addr = server.addr;
    let completion = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Once upon a time", "max_tokens": 2, "temperature": 0}),
    );
    assert_eq!(completion.status, 200, "{}", completion.text());
    assert_headers(&completion, "completion");
    let streamed = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Once", "max_tokens": 2, "stream": true}),
    );
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert!(streamed.text().contains("[DONE]"), "{}", streamed.text());
    assert_headers(&streamed, "streamed completion");
    let chat = post(
        addr,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}),
    );
    assert_eq!(chat.status, 200, "{}", chat.text());
    assert_headers(&chat, "chat");
    for path in ["/v1/models", "/v1/models/tiny", "/v1/plan", "/openapi.json"] {
        let r = get(addr, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_headers(&r, path);
    }
    let doc = get(addr, "/openapi.json").json();
    let documented = &doc["paths"]["/v1/completions"]["post"]["responses"]["200"]["headers"];
    for h in [MODEL_VERSION, MANIFEST_DIGEST, SIGNER] {
        assert!(
            documented[h].is_object(),
            "{h} in /openapi.json: {documented}"
        );
    }
    // Errors too: a bad parameter, an unknown model, an unknown route.
    let bad = post(addr, "/v1/completions", &json!({"prompt": 7}));
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_headers(&bad, "400");
    let unknown = get(addr, "/v1/models/other");
    assert_eq!(unknown.status, 404);
    assert_headers(&unknown, "unknown model");
    assert_headers(&get(addr, "/nowhere"), "no route");
    // Malformed HTTP, answered by the accept loop rather than the router.
    let malformed = raw_request(
        addr,
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nbad header line",
        b"",
    );
    assert_eq!(malformed.status, 400, "{malformed:?}");
    assert_headers(&malformed, "malformed HTTP");
}

#[test]
fn the_guards_refusals_carry_them_and_plain_models_send_none() {
    let server = start_with(&tiny_model(), |c| {
        c.version_headers = Some(configured());
        c.api_keys = ApiKeys::new(["sk-v"]).unwrap();
    });
    let refused = get(server.addr, "/v1/models");
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_headers(&refused, "refused");
    drop(server);

    let plain = start_with(&tiny_model(), |_| {});
    let r = get(plain.addr, "/v1/models");
    assert_eq!(r.status, 200);
    for h in [MODEL_VERSION, MANIFEST_DIGEST, SIGNER] {
        assert_eq!(r.header(h), None, "{h} without a registry version");
    }
    let doc = get(plain.addr, "/openapi.json").json();
    assert!(doc["paths"]["/v1/completions"]["post"]["responses"]["200"]["headers"].is_null());
}

#[test]
fn a_value_that_is_not_a_header_value_stops_the_start() {
    let mut config = ms_server::ServerConfig::new("tiny");
    config.port = 0;
    config.version_headers = Some(VersionHeaders {
        signer: "evil\r\nx-injected: 1".into(),
        ..configured()
    });
    let e = ms_server::start(config, ms_runtime::LoadRequest::new(tiny_model()))
        .err()
        .expect("refused");
    assert!(e.to_string().contains(SIGNER), "{e}");
}

#[test]
fn a_refusal_over_the_connection_limit_carries_them() {
    let server = start_with(&tiny_model(), |c| {
        c.version_headers = Some(configured());
        c.connections.max_connections = 1;
    });
    let addr = server.addr;
    let _held = connect(addr);
    let mut refused = None;
    assert!(eventually(std::time::Duration::from_secs(10), || {
        let r = get(addr, "/healthz/live");
        let over = r.status == 503;
        refused = Some(r);
        over
    }));
    assert_headers(&refused.unwrap(), "over the connection limit");
}
