//! Every semantic rule has a document that triggers it and a close variant that does not.

use std::path::Path;

use ms_spec::{Checker, Source, catalog, source};
use serde_json::{Value, json};

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn doc(patch: &Value) -> Value {
    let mut d = json!({
        "apiVersion": "modelspec/v1",
        "kind": "ModelSpec",
        "metadata": {"name": "t"},
        "spec": {
            "identity": {"model": {"id": "m", "family": "f", "task": "t", "framework": "llama.cpp"}},
            "runtime": {"accelerator": {"type": "cpu", "count": 1}}
        }
    });
    merge(&mut d, patch);
    d
}

/// Codes found in a document written to `dir/name` (so relative references resolve).
fn codes_in(dir: &Path, name: &str, value: &Value) -> Vec<&'static str> {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    let src = source::load(path.to_str().unwrap()).unwrap();
    Checker::default()
        .check(&src)
        .into_iter()
        .map(|d| d.code)
        .collect()
}

struct Case {
    code: &'static str,
    bad: Value,
    good: Value,
    /// Extra files the references point at: (name, document).
    files: Vec<(&'static str, Value)>,
}

fn case(code: &'static str, bad: Value, good: Value) -> Case {
    Case {
        code,
        bad,
        good,
        files: Vec::new(),
    }
}

fn scaling(v: Value) -> Value {
    json!({"spec": {"operations": {"scaling": v}}})
}

fn prod(extra: Value) -> Value {
    let mut d = json!({"metadata": {"labels": {"environment": "prod"}}});
    merge(&mut d, &extra);
    d
}

fn deps(list: Value) -> Value {
    json!({"spec": {"pipeline": {"dependencies": list}}})
}

fn behavior(rules: Value, tests: Value) -> Value {
    json!({"spec": {"behavior": {"rules": rules, "tests": tests}}})
}

fn rule(id: &str) -> Value {
    json!({"id": id, "statement": "s", "authority": "system", "level": "must"})
}

fn test(id: &str, rule: &str) -> Value {
    json!({"id": id, "rule": rule, "input": [{"role": "user", "content": "hi"}], "assertions": [{"type": "refusal"}]})
}

fn plan() -> Value {
    json!({"apiVersion": "modelspec/v1", "kind": "ExecutionPlan", "metadata": {"name": "p"}, "spec": {"backend": "cpu-simd"}})
}

fn cases() -> Vec<Case> {
    let owners = json!({"spec": {"governance": {"owners": ["a"]}}});
    let art = |uri: &str| json!({"role": "weights", "uri": uri});
    vec![
        case(
            "MS0201",
            json!({"spec": {"identity": {"model": {"framework": "vllm"}}}}),
            json!({"spec": {"identity": {"model": {"framework": "vllm"}}, "runtime": {"batch": {"maxSequenceLengthTokens": 4096}}}}),
        ),
        case(
            "MS0202",
            scaling(json!({"minReplicas": 1, "maxReplicas": 3, "strategy": "manual"})),
            scaling(json!({"minReplicas": 2, "maxReplicas": 2, "strategy": "manual"})),
        ),
        case(
            "MS0203",
            scaling(json!({"minReplicas": 5, "maxReplicas": 2})),
            scaling(json!({"minReplicas": 2, "maxReplicas": 5})),
        ),
        case(
            "MS0204",
            scaling(json!({"maxReplicas": 2, "warmPool": {"size": 3}})),
            scaling(json!({"maxReplicas": 2, "warmPool": {"size": 2}})),
        ),
        case(
            "MS0205",
            json!({"spec": {"operations": {"serving": {"port": 8080}, "observability": {"metrics": {"port": 8080}}}}}),
            json!({"spec": {"operations": {"serving": {"port": 8080}, "observability": {"metrics": {"port": 9090}}}}}),
        ),
        case(
            "MS0206",
            json!({"spec": {"runtime": {"batch": {"maxBatchSize": 8}}, "operations": {"serving": {"maxConcurrency": 4}}}}),
            json!({"spec": {"runtime": {"batch": {"maxBatchSize": 8}}, "operations": {"serving": {"maxConcurrency": 8}}}}),
        ),
        case(
            "MS0207",
            json!({"spec": {"operations": {"serving": {"timeoutSeconds": 10, "livenessProbe": {"timeoutSeconds": 30}}}}}),
            json!({"spec": {"operations": {"serving": {"timeoutSeconds": 10, "livenessProbe": {"timeoutSeconds": 5}}}}}),
        ),
        case(
            "MS0208",
            json!({"spec": {"runtime": {"accelerator": {"type": "a100-80gb", "count": 1}}}}),
            json!({"spec": {"runtime": {"accelerator": {"vendor": "nvidia", "type": "a100-80gb", "count": 1}}}}),
        ),
        case(
            "MS0209",
            json!({"spec": {"operations": {"observability": {"metrics": {"enabled": false, "port": 9090}}}}}),
            json!({"spec": {"operations": {"observability": {"metrics": {"enabled": true, "port": 9090}}}}}),
        ),
        case(
            "MS0210",
            json!({"spec": {"operations": {"serving": {"port": 8080}, "scaling": {"minReplicas": 0, "maxReplicas": 0}}}}),
            json!({"spec": {"operations": {"serving": {"port": 8080}, "scaling": {"minReplicas": 0, "maxReplicas": 1}}}}),
        ),
        case(
            "MS0301",
            json!({"spec": {"operations": {"observability": {"logging": {"level": "debug"}}}, "governance": {"compliance": {"pii": {"allowed": true, "policy": "p"}}}}}),
            json!({"spec": {"operations": {"observability": {"logging": {"level": "info"}}}, "governance": {"compliance": {"pii": {"allowed": true, "policy": "p"}}}}}),
        ),
        case(
            "MS0302",
            json!({"spec": {"governance": {"compliance": {"retention": {"logsDays": 30}, "audit": {"periodDays": 90}}}}}),
            json!({"spec": {"governance": {"compliance": {"retention": {"logsDays": 90}, "audit": {"periodDays": 90}}}}}),
        ),
        case(
            "MS0303",
            prod(
                json!({"spec": {"governance": {"owners": ["a"]}, "identity": {"model": {"artifacts": [art("m.gguf")]}}}}),
            ),
            prod(
                json!({"spec": {"governance": {"owners": ["a"]}, "identity": {"model": {"artifacts": [{"role": "weights", "uri": "m.gguf", "sha256": "a".repeat(64)}]}}}}),
            ),
        ),
        case(
            "MS0304",
            json!({"spec": {"governance": {"compliance": {"pii": {"allowed": true}}}}}),
            json!({"spec": {"governance": {"compliance": {"pii": {"allowed": true, "policy": "pii-v2"}}}}}),
        ),
        case("MS0305", prod(json!({})), prod(owners.clone())),
        // Upstream's examples name the owner in an annotation.
        case(
            "MS0305",
            prod(json!({"metadata": {"annotations": {"team": "ml"}}})),
            prod(json!({"metadata": {"annotations": {"owner": "ml-platform-team"}}})),
        ),
        case(
            "MS0306",
            json!({"spec": {"governance": {"owners": ["a"], "approvals": {"prod": 2}}}}),
            json!({"spec": {"governance": {"owners": ["a", "b"], "approvals": {"prod": 2}}}}),
        ),
        case(
            "MS0401",
            json!({"spec": {"identity": {"model": {"precision": "fp16", "artifacts": [art("models/gemma.Q4_K_M.gguf")]}}}}),
            json!({"spec": {"identity": {"model": {"precision": "q4_k_m", "artifacts": [art("models/gemma.Q4_K_M.gguf")]}}}}),
        ),
        // One uri for two roles is legitimate (a Hugging Face repository, a GGUF with its
        // tokenizer); listed again for the same role, or with two digests, it is not.
        case(
            "MS0402",
            json!({"spec": {"identity": {"model": {"artifacts": [art("hf://org/repo"), {"role": "tokenizer", "uri": "t.json"}, art("hf://org/repo")]}}}}),
            json!({"spec": {"identity": {"model": {"artifacts": [art("hf://org/repo"), {"role": "tokenizer", "uri": "hf://org/repo"}]}}}}),
        ),
        case(
            "MS0402",
            json!({"spec": {"identity": {"model": {"artifacts": [{"role": "weights", "uri": "m.gguf", "sha256": "a".repeat(64)}, {"role": "tokenizer", "uri": "m.gguf", "sha256": "b".repeat(64)}]}}}}),
            json!({"spec": {"identity": {"model": {"artifacts": [{"role": "weights", "uri": "m.gguf", "sha256": "a".repeat(64)}, {"role": "tokenizer", "uri": "m.gguf", "sha256": "a".repeat(64)}]}}}}),
        ),
        case(
            "MS0403",
            json!({"spec": {"identity": {"model": {"artifacts": [{"role": "tokenizer", "uri": "t.json"}]}}}}),
            json!({"spec": {"identity": {"model": {"artifacts": [{"role": "tokenizer", "uri": "t.json"}, art("m.gguf")]}}}}),
        ),
        case(
            "MS0501",
            deps(json!([{"id": "g", "role": "guardrail"}, {"id": "g", "role": "reranker"}])),
            deps(json!([{"id": "g", "role": "guardrail"}, {"id": "r", "role": "reranker"}])),
        ),
        Case {
            code: "MS0502",
            bad: deps(json!([{"id": "g", "role": "guardrail", "specRef": "./missing.yaml"}])),
            good: deps(json!([{"id": "g", "role": "guardrail", "specRef": "./dep.json"}])),
            files: vec![("dep.json", doc(&json!({})))],
        },
        Case {
            code: "MS0503",
            bad: deps(json!([{"id": "b", "role": "custom", "specRef": "./b.json"}])),
            good: deps(json!([{"id": "c", "role": "custom", "specRef": "./c.json"}])),
            files: vec![
                (
                    "b.json",
                    doc(&deps(
                        json!([{"id": "a", "role": "custom", "specRef": "./main.json"}]),
                    )),
                ),
                ("c.json", doc(&json!({}))),
            ],
        },
        case(
            "MS0504",
            json!({"spec": {"operations": {"scaling": {"targetLatencyMsP95": 800}}, "pipeline": {"dependencies": [{"id": "g", "role": "guardrail", "interface": {"maxLatencyMs": 900}}]}}}),
            json!({"spec": {"operations": {"scaling": {"targetLatencyMsP95": 800}}, "pipeline": {"dependencies": [{"id": "g", "role": "guardrail", "required": false, "interface": {"maxLatencyMs": 900}}]}}}),
        ),
        case(
            "MS0505",
            json!({"spec": {"pipeline": {"preprocess": {"steps": [{"name": "a", "type": "x"}, {"name": "a", "type": "y"}]}}}}),
            json!({"spec": {"pipeline": {"preprocess": {"steps": [{"name": "a", "type": "x"}, {"name": "b", "type": "y"}]}}}}),
        ),
        Case {
            code: "MS0506",
            bad: deps(json!([{"id": "g", "role": "guardrail", "specRef": "./plan.json"}])),
            good: deps(json!([{"id": "g", "role": "guardrail", "specRef": "./dep.json"}])),
            files: vec![("plan.json", plan()), ("dep.json", doc(&json!({})))],
        },
        case(
            "MS0601",
            behavior(json!([rule("r"), rule("r")]), json!([test("t", "r")])),
            behavior(
                json!([rule("r"), rule("s")]),
                json!([test("t", "r"), test("u", "s")]),
            ),
        ),
        case(
            "MS0602",
            behavior(json!([rule("r")]), json!([test("t", "r"), test("u", "rr")])),
            behavior(json!([rule("r")]), json!([test("t", "r")])),
        ),
        case(
            "MS0603",
            behavior(json!([rule("r"), rule("s")]), json!([test("t", "r")])),
            behavior(
                json!([rule("r"), rule("s")]),
                json!([test("t", "r"), test("u", "s")]),
            ),
        ),
        case(
            "MS0604",
            behavior(json!([rule("r")]), json!([test("t", "r"), test("t", "r")])),
            behavior(json!([rule("r")]), json!([test("t", "r"), test("u", "r")])),
        ),
        Case {
            code: "MS0701",
            bad: json!({"spec": {"executionPlan": {"ref": "./plans/missing.plan.json"}}}),
            good: json!({"spec": {"executionPlan": {"ref": "./plan.json"}}}),
            files: vec![("plan.json", plan())],
        },
    ]
}

#[test]
fn every_rule_fails_and_passes() {
    for c in cases() {
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in &c.files {
            std::fs::write(dir.path().join(name), serde_json::to_string(v).unwrap()).unwrap();
        }
        let bad = codes_in(dir.path(), "main.json", &doc(&c.bad));
        assert!(
            bad.contains(&c.code),
            "{}: failing document did not trigger it; found {bad:?}",
            c.code
        );
        let good = codes_in(dir.path(), "main.json", &doc(&c.good));
        assert!(
            !good.contains(&c.code),
            "{}: passing document triggered it",
            c.code
        );
        assert!(
            good.iter().all(|code| !code.starts_with("MS01")),
            "{}: passing document is not schema-valid: {good:?}",
            c.code
        );
    }
}

#[test]
fn every_semantic_rule_has_a_case() {
    let covered: Vec<&str> = cases().iter().map(|c| c.code).collect();
    let semantic: Vec<&str> = catalog::RULES
        .iter()
        .map(|r| r.code)
        // MS08xx are the ExecutionPlan rules: tests/plan_rules.rs.
        .filter(|c| *c >= "MS0200" && *c < "MS0800")
        .collect();
    assert!(semantic.len() >= 15);
    for code in semantic {
        assert!(
            covered.contains(&code),
            "{code} has no failing/passing case"
        );
    }
}

#[test]
fn v1alpha1_precision_and_upstream_rule() {
    let text = "apiVersion: piqc.ai/v1alpha1\nkind: ModelSpec\nmetadata: {name: t}\nspec:\n  identity:\n    model: {id: m, family: f, task: t, framework: vllm, precision: fp16, artifacts: {modelUri: s3://b/m.q8_0.gguf}}\n  runtime:\n    accelerator: {vendor: nvidia, type: a10g, count: 1}\n";
    let codes: Vec<_> = Checker::default()
        .check(&Source::from_text("a.yaml", text))
        .into_iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(codes, ["MS0201", "MS0401"]);
}

#[test]
fn levels_are_configurable() {
    let text =
        serde_json::to_string(&doc(&scaling(json!({"minReplicas": 5, "maxReplicas": 2})))).unwrap();
    let mut cfg = ms_spec::LintConfig::default();
    cfg.set("MS0203", ms_spec::Severity::Warning).unwrap();
    let diags = Checker::new(cfg).check(&Source::from_text("a.json", text.clone()));
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].severity, ms_spec::Severity::Warning);
    let mut cfg = ms_spec::LintConfig::default();
    cfg.set("min-replicas-exceeds-max", ms_spec::Severity::Off)
        .unwrap();
    assert!(
        Checker::new(cfg)
            .check(&Source::from_text("a.json", text))
            .is_empty()
    );
}
