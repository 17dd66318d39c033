//! On the real server: no request field is dropped silently (tool
//! calling, unknown fields, roles, models, `top_p: 0`), `logit_bias` and `logprobs` work
//! (streamed too, the same bits batched or alone), OpenAI's defaults apply where the plan sets
//! nothing, and an end-of-generation token is not a completion token.

mod common;

use std::net::SocketAddr;

use common::*;
use ms_engine::tokenizer::Tokenizer;
use serde_json::{Value, json};

fn assert_400(r: &Reply, param: &str, code: Option<&str>, says: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    let e = &v["error"];
    assert_eq!(e["type"], "invalid_request_error", "{v}");
    assert_eq!(e["param"], param, "{v}");
    if let Some(code) = code {
        assert_eq!(e["code"], code, "{v}");
    }
    assert!(e["message"].as_str().unwrap().contains(says), "{v}");
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "max_tokens": 3, "temperature": 0,
        "messages": [{"role": "user", "content": "Hello"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn completion(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "max_tokens": 3, "temperature": 0,
        "prompt": "Once upon a time"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn tokenizer() -> Tokenizer {
    let options = ms_engine::LoadOptions {
        threads: 1,
        context_length: Some(16),
        ..ms_engine::LoadOptions::default()
    };
    let model = ms_engine::Model::load(tiny_model(), &options).unwrap();
    Tokenizer::from_gguf(model.gguf()).unwrap()
}

#[test]
fn tool_calling_and_unknown_fields_are_refused_by_name() {
    let server = start();
    let addr = server.addr;
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    for (extra, param) in [
        (json!({"tools": tools}), "tools"),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"tool_choice": "auto"}), "tool_choice"),
        (
            json!({"tool_choice": {"type": "function", "function": {"name": "f"}}}),
            "tool_choice",
        ),
        (json!({"function_call": "auto"}), "function_call"),
        (json!({"tools": tools, "tool_choice": "none"}), "tools"),
    ] {
        let r = post(addr, "/v1/chat/completions", &chat(extra));
        assert_400(
            &r,
            param,
            Some("unsupported_parameter"),
            "tool (function) calling",
        );
    }
    // Asking for no tools asks for nothing.
    for extra in [
        json!({"tool_choice": "none"}),
        json!({"function_call": "none", "tools": []}),
    ] {
        let r = post(addr, "/v1/chat/completions", &chat(extra));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Unknown fields, at the top: named; the harmless bookkeeping ones pass.
    let r = post(addr, "/v1/chat/completions", &chat(json!({"top_k": 5})));
    assert_400(&r, "top_k", Some("unknown_parameter"), "Unrecognized");
    let r = post(
        addr,
        "/v1/completions",
        &completion(json!({"mystery": true})),
    );
    assert_400(&r, "mystery", Some("unknown_parameter"), "Unrecognized");
    let r = post(
        addr,
        "/v1/completions",
        &completion(json!({"messages": []})),
    );
    assert_400(&r, "messages", Some("unknown_parameter"), "Unrecognized");
    let harmless = json!({"user": "u-1", "store": false, "metadata": {"k": "v"},
        "service_tier": "auto", "parallel_tool_calls": false});
    let r = post(addr, "/v1/chat/completions", &chat(harmless));
    assert_eq!(r.status, 200, "{}", r.text());
    // The other unsupported ones say so.
    for (extra, param) in [
        (json!({"n": 2}), "n"),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
    ] {
        let r = post(addr, "/v1/chat/completions", &chat(extra));
        assert_400(&r, param, Some("unsupported_parameter"), "");
    }
    let r = post(addr, "/v1/completions", &completion(json!({"echo": true})));
    assert_400(&r, "echo", Some("unsupported_parameter"), "not supported");
}

#[test]
fn roles_models_and_top_p_are_checked() {
    let server = start();
    let addr = server.addr;
    for (role, says) in [
        ("wizard", "not one of OpenAI's roles"),
        ("tool", "tool calling"),
    ] {
        let body = chat(json!({"messages": [{"role": "user", "content": "a"},
            {"role": role, "content": "b"}]}));
        let r = post(addr, "/v1/chat/completions", &body);
        assert_400(&r, "messages[1].role", None, says);
    }
    let r = post(
        addr,
        "/v1/chat/completions",
        &chat(
            json!({"messages": [{"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi"}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // An unknown model: 404 model_not_found, as OpenAI; the model's other names are fine.
    for path in ["/v1/chat/completions", "/v1/completions"] {
        let body = if path.contains("chat") {
            chat(json!({"model": "gpt-4o"}))
        } else {
            completion(json!({"model": "gpt-4o"}))
        };
        let r = post(addr, path, &body);
        assert_eq!(r.status, 404, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], "model_not_found", "{v}");
        assert_eq!(v["error"]["param"], "model", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-4o"));
    }
    let path = tiny_model();
    let file = std::path::Path::new(&path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    for name in [
        "tiny",
        path.as_str(),
        file,
        file.strip_suffix(".gguf").unwrap(),
    ] {
        let r = post(addr, "/v1/completions", &completion(json!({"model": name})));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.json()["model"], "tiny");
        if !name.contains('/') {
            assert_eq!(
                get(addr, &format!("/v1/models/{name}")).status,
                200,
                "{name}"
            );
        }
    }
    assert_eq!(
        get(addr, "/v1/models/gpt-4o").json()["error"]["code"],
        "model_not_found"
    );
    let r = post(addr, "/v1/completions", &completion(json!({"model": 5})));
    assert_400(&r, "model", None, "string");

    let r = post(addr, "/v1/completions", &completion(json!({"top_p": 0})));
    assert_400(&r, "top_p", None, "above 0");
    let r = post(addr, "/v1/completions", &completion(json!({"top_p": 1e-9})));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The token id whose piece is `bytes` (the first, when several share a piece).
fn id_of(tok: &Tokenizer, bytes: &[u8]) -> u32 {
    (0..tok.vocab_size() as u32)
        .find(|&id| tok.token_to_piece(id).unwrap() == bytes)
        .expect("a token with these bytes")
}

fn bytes_of(entry: &Value) -> Vec<u8> {
    entry["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect()
}

#[test]
fn logit_bias_bans_and_forces_tokens_and_logprobs_report_raw_logits() {
    let server = start();
    let addr = server.addr;
    let tok = tokenizer();
    let r = post(
        addr,
        "/v1/chat/completions",
        &chat(json!({"logprobs": true, "top_logprobs": 3, "max_tokens": 4})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(
        content.len() as u64,
        v["usage"]["completion_tokens"].as_u64().unwrap()
    );
    let first = &content[0];
    assert_eq!(first["top_logprobs"].as_array().unwrap().len(), 3);
    // Greedy: the token is the likeliest, its log-probability the top one's.
    assert_eq!(first["logprob"], first["top_logprobs"][0]["logprob"]);
    assert!(first["logprob"].as_f64().unwrap() <= 0.0);
    let text: Vec<u8> = content.iter().flat_map(bytes_of).collect();
    assert_eq!(
        String::from_utf8_lossy(&text),
        v["choices"][0]["message"]["content"].as_str().unwrap()
    );

    // Ban the first token: the runner-up comes, with the same reported numbers.
    let banned = id_of(&tok, &bytes_of(first));
    let r = post(
        addr,
        "/v1/chat/completions",
        &chat(json!({"logprobs": true, "top_logprobs": 3, "max_tokens": 4,
            "logit_bias": {banned.to_string(): -100}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let w = r.json();
    let other = &w["choices"][0]["logprobs"]["content"][0];
    assert_eq!(other["token"], first["top_logprobs"][1]["token"], "{w}");
    assert_eq!(other["top_logprobs"], first["top_logprobs"]);

    // Force a token: every step is that token.
    let forced = id_of(&tok, b" the");
    let r = post(
        addr,
        "/v1/completions",
        &completion(
            json!({"logit_bias": {forced.to_string(): 100}, "temperature": 1.0,
            "seed": 3}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.json()["choices"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(text.trim_start(), "the the the", "{text:?}");

    // Out of range or outside the vocabulary: 400 naming logit_bias.
    for bias in [
        json!({"5": 100.5}),
        json!({"99999999": 1}),
        json!({"-1": 1}),
    ] {
        let r = post(
            addr,
            "/v1/completions",
            &completion(json!({"logit_bias": bias})),
        );
        assert_400(&r, "logit_bias", None, "");
    }
    for (extra, param) in [
        (json!({"top_logprobs": 2}), "top_logprobs"),
        (
            json!({"logprobs": true, "top_logprobs": 21}),
            "top_logprobs",
        ),
        (json!({"logprobs": 2}), "logprobs"),
    ] {
        let r = post(addr, "/v1/chat/completions", &chat(extra));
        assert_400(&r, param, None, "");
    }
}

#[test]
fn completion_logprobs_and_streamed_logprobs_match_the_whole_answer() {
    let server = start();
    let addr = server.addr;
    let body = completion(json!({"logprobs": 2, "max_tokens": 6}));
    let r = post(addr, "/v1/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let lp = &v["choices"][0]["logprobs"];
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), 6);
    assert_eq!(tokens.concat(), v["choices"][0]["text"].as_str().unwrap());
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 6);
    let offsets: Vec<u64> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap())
        .collect();
    assert_eq!(offsets[0], 0);
    assert_eq!(offsets[1], tokens[0].chars().count() as u64);
    for top in lp["top_logprobs"].as_array().unwrap() {
        assert!(top.as_object().unwrap().len() <= 2, "{top}");
    }

    // Streamed: each token's entry in its chunk, the same numbers.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = post(addr, "/v1/completions", &streamed);
    let mut s_tokens = Vec::new();
    let mut s_logprobs = Vec::new();
    let mut s_offsets = Vec::new();
    for e in r.events().iter().filter(|e| e.as_str() != "[DONE]") {
        let c: Value = serde_json::from_str(e).unwrap();
        let l = &c["choices"][0]["logprobs"];
        if l.is_null() {
            continue;
        }
        s_tokens.extend(l["tokens"].as_array().unwrap().clone());
        s_logprobs.extend(l["token_logprobs"].as_array().unwrap().clone());
        s_offsets.extend(l["text_offset"].as_array().unwrap().clone());
    }
    assert_eq!(Value::Array(s_tokens), lp["tokens"]);
    assert_eq!(Value::Array(s_logprobs), lp["token_logprobs"]);
    assert_eq!(Value::Array(s_offsets), lp["text_offset"]);

    // Chat streams the same way.
    let body = chat(json!({"logprobs": true, "top_logprobs": 2, "max_tokens": 5}));
    let whole = post(addr, "/v1/chat/completions", &body).json();
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = post(addr, "/v1/chat/completions", &streamed);
    let mut entries = Vec::new();
    for e in r.events().iter().filter(|e| e.as_str() != "[DONE]") {
        let c: Value = serde_json::from_str(e).unwrap();
        if let Some(list) = c["choices"][0]["logprobs"]["content"].as_array() {
            entries.extend(list.clone());
        }
    }
    assert_eq!(
        Value::Array(entries),
        whole["choices"][0]["logprobs"]["content"]
    );
}

fn put_plan(addr: SocketAddr, yaml: &str) {
    let r = request(addr, "PUT", "/v1/plan", yaml.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn logprobs_are_the_same_batched_or_alone() {
    let server = start();
    let addr = server.addr;
    put_plan(
        addr,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: wide}\nspec:\n  scheduler: {policy: fifo, maxBatch: 4}\n",
    );
    let target = completion(json!({"logprobs": 5, "max_tokens": 12, "temperature": 0.9,
        "seed": 11, "logit_bias": {"29": 2.5}}));
    let alone = post(addr, "/v1/completions", &target).json();
    let others: Vec<_> = (0..3)
        .map(|i| {
            let body = completion(json!({"prompt": format!("Story {i}: the"),
                "max_tokens": 16, "logprobs": 1}));
            std::thread::spawn(move || post(addr, "/v1/completions", &body))
        })
        .collect();
    let again = post(addr, "/v1/completions", &target).json();
    for o in others {
        assert_eq!(o.join().unwrap().status, 200);
    }
    assert_eq!(
        alone["choices"][0]["logprobs"], again["choices"][0]["logprobs"],
        "logprobs differ when batched"
    );
    assert_eq!(alone["choices"][0]["text"], again["choices"][0]["text"]);
}

#[test]
fn an_end_of_generation_token_is_not_counted_and_openai_defaults_apply() {
    let server = start();
    let addr = server.addr;
    let eos = tokenizer().eos().unwrap();
    // The EOS forced at once: nothing visible, nothing counted.
    for path in ["/v1/completions", "/v1/chat/completions"] {
        let body = if path.contains("chat") {
            chat(json!({"logit_bias": {eos.to_string(): 100}, "logprobs": true}))
        } else {
            completion(json!({"logit_bias": {eos.to_string(): 100}, "logprobs": 0}))
        };
        let v = post(addr, path, &body).json();
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        assert_eq!(v["usage"]["completion_tokens"], 0, "{v}");
        assert_eq!(
            v["usage"]["total_tokens"], v["usage"]["prompt_tokens"],
            "{v}"
        );
        let lp = &v["choices"][0]["logprobs"];
        let listed = lp["content"].as_array().or(lp["tokens"].as_array());
        assert_eq!(listed.map(Vec::len), Some(0), "{v}");
    }

    // Omitted sampling fields are OpenAI's (temperature 1, top-p 1, nothing else), not
    // modelspec's defaults (0.8, top-k 40, top-p 0.95, min-p 0.05).
    let omitted = json!({"prompt": "Once upon a time", "max_tokens": 24, "seed": 5});
    let openai = json!({"prompt": "Once upon a time", "max_tokens": 24, "seed": 5,
        "temperature": 1, "top_p": 1});
    let a = post(addr, "/v1/completions", &omitted).json();
    let b = post(addr, "/v1/completions", &openai).json();
    assert_eq!(a["choices"][0]["text"], b["choices"][0]["text"]);
    // No seed: the plan's, so the same request gives the same answer.
    let no_seed = json!({"prompt": "Once upon a time", "max_tokens": 24});
    let c = post(addr, "/v1/completions", &no_seed).json();
    let d = post(addr, "/v1/completions", &no_seed).json();
    assert_eq!(c["choices"][0]["text"], d["choices"][0]["text"]);

    // Without max_tokens: to a full context (320 here), not modelspec's default of 256 ...
    put_plan(
        addr,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: short}\nspec:\n  contextLength: 320\n",
    );
    let v = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Once upon a time"}),
    )
    .json();
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{v}");
    let used = v["usage"]["total_tokens"].as_u64().unwrap();
    assert!((316..=321).contains(&used), "{v}");
    assert!(
        v["usage"]["completion_tokens"].as_u64().unwrap() > 256,
        "{v}"
    );
    // ... and what the plan sets itself applies: greedy, 5 tokens.
    put_plan(
        addr,
        "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: set}\nspec:\n  sampling: {temperature: 0, maxTokens: 5}\n",
    );
    let v = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Once upon a time"}),
    )
    .json();
    assert_eq!(v["usage"]["completion_tokens"], 5, "{v}");
    let greedy = post(
        addr,
        "/v1/completions",
        &json!({"prompt": "Once upon a time", "temperature": 0, "max_tokens": 5, "seed": 99}),
    )
    .json();
    assert_eq!(v["choices"][0]["text"], greedy["choices"][0]["text"]);
}
