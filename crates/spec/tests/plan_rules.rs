//! Every ExecutionPlan rule (MS08xx) has a plan that triggers it and a close variant that does
//! not; plans load as typed documents.

use ms_spec::{Checker, Source, catalog};
use serde_json::{Value, json};

fn plan(spec: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "apiVersion": "modelspec/v1",
        "kind": "ExecutionPlan",
        "metadata": {"name": "p"},
        "spec": spec,
    }))
    .unwrap()
}

fn codes(spec: Value) -> Vec<&'static str> {
    Checker::default()
        .check(&Source::from_text("p.json", plan(spec)))
        .into_iter()
        .map(|d| d.code)
        .collect()
}

fn cases() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "MS0801",
            json!({"scheduler": {"maxBatch": 16}, "limits": {"maxQueue": 8}}),
            json!({"scheduler": {"maxBatch": 8}, "limits": {"maxQueue": 8}}),
        ),
        (
            "MS0802",
            json!({"sampling": {"maxTokens": 2048}, "limits": {"maxTokensPerRequest": 1024}}),
            json!({"sampling": {"maxTokens": 512}, "limits": {"maxTokensPerRequest": 1024}}),
        ),
        (
            "MS0803",
            json!({"contextLength": 512, "limits": {"maxTokensPerRequest": 1024}}),
            json!({"contextLength": 2048, "limits": {"maxTokensPerRequest": 1024}}),
        ),
        (
            "MS0804",
            json!({"backend": "cuda"}),
            json!({"backend": "cpu-simd"}),
        ),
        (
            "MS0805",
            json!({"sampling": {"temperature": 0, "topK": 40}}),
            json!({"sampling": {"temperature": 0, "topK": 0, "topP": 1}}),
        ),
        (
            "MS0806",
            json!({"watermark": {"keyId": "news", "gamma": 1}}),
            json!({"watermark": {"keyId": "news", "gamma": 0.5, "delta": 2}}),
        ),
        (
            "MS0806",
            json!({"watermark": {"keyId": "news", "delta": 0}}),
            json!({"watermark": {"keyId": "news"}}),
        ),
        (
            "MS0807",
            json!({"sampling": {"temperature": 0}, "watermark": {"keyId": "news"}}),
            json!({"sampling": {"temperature": 0.7}, "watermark": {"keyId": "news"}}),
        ),
    ]
}

#[test]
fn each_plan_rule_fails_and_passes() {
    for (code, bad, good) in cases() {
        let found = codes(bad);
        assert!(
            found.contains(&code),
            "{code}: not triggered; found {found:?}"
        );
        let found = codes(good);
        assert!(
            found.is_empty(),
            "{code}: passing plan has findings {found:?}"
        );
    }
}

#[test]
fn every_plan_rule_has_a_case_and_docs() {
    let covered: Vec<&str> = cases().iter().map(|c| c.0).collect();
    let plan_rules: Vec<_> = catalog::RULES
        .iter()
        .filter(|r| r.code.starts_with("MS08"))
        .collect();
    assert!(plan_rules.len() >= 5);
    for r in plan_rules {
        assert!(covered.contains(&r.code), "{} has no case", r.code);
        assert!(r.doc.len() > 40 && r.name.starts_with("plan-"));
    }
}

#[test]
fn schema_rejects_impossible_values_with_positions() {
    let text = "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: p}\nspec:\n  threads: 0\n  backend: gpu\n  sampling: {topP: 1.5, temprature: 1}\n";
    let diags = Checker::default().check(&Source::from_text("p.yaml", text));
    let got: Vec<(&str, u32, &str)> = diags
        .iter()
        .map(|d| (d.code, d.line, d.pointer.as_str()))
        .collect();
    assert!(got.contains(&("MS0106", 5, "/spec/threads")), "{got:?}");
    assert!(got.contains(&("MS0105", 6, "/spec/backend")), "{got:?}");
    assert!(
        got.contains(&("MS0106", 7, "/spec/sampling/topP")),
        "{got:?}"
    );
    let unknown = diags.iter().find(|d| d.code == "MS0102").unwrap();
    assert_eq!(unknown.pointer, "/spec/sampling/temprature");
    assert_eq!(unknown.hint.as_deref(), Some("did you mean `temperature`?"));
}

#[test]
fn load_gives_a_typed_plan_or_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.plan.json");
    std::fs::write(
        &good,
        plan(
            json!({"backend": "cpu-scalar", "quantization": "Q8_0", "threads": 2, "seed": 7,
                    "scheduler": {"maxBatch": 16}, "limits": {"maxQueue": 8}}),
        ),
    )
    .unwrap();
    let loaded = ms_spec::plan::load(&good).unwrap();
    let spec = &loaded.plan.spec;
    assert_eq!(spec.threads, Some(2));
    assert_eq!(spec.seed, Some(7));
    assert_eq!(spec.quantization.map(|q| q.name()), Some("Q8_0"));
    // A warning does not stop loading, it is handed back.
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].code, "MS0801");

    let bad = dir.path().join("bad.plan.json");
    std::fs::write(&bad, plan(json!({"threads": 0}))).unwrap();
    let errs = ms_spec::plan::load(&bad).err().unwrap();
    assert_eq!(errs[0].code, "MS0106");

    let spec_doc = dir.path().join("model.json");
    std::fs::write(
        &spec_doc,
        r#"{"apiVersion": "modelspec/v1", "kind": "ModelSpec", "metadata": {"name": "m"}, "spec": {"identity": {"model": {"id": "m", "family": "f", "task": "t", "framework": "llama.cpp"}}, "runtime": {"accelerator": {"type": "cpu", "count": 1}}}}"#,
    )
    .unwrap();
    let errs = ms_spec::plan::load(&spec_doc).err().unwrap();
    assert!(
        errs[0].message.contains("ExecutionPlan"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_watermark_names_its_key_by_id_and_never_holds_it() {
    let at = |spec: Value| -> Vec<(&'static str, String)> {
        Checker::default()
            .check(&Source::from_text("p.json", plan(spec)))
            .into_iter()
            .map(|d| (d.code, d.pointer))
            .collect()
    };
    let got = at(json!({"watermark": {"keyId": "a b"}}));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "/spec/watermark/keyId");
    // Key material has no place in a plan: an unknown key.
    let got = at(json!({"watermark": {"keyId": "news", "key": "00ff"}}));
    assert!(
        got.contains(&("MS0102", "/spec/watermark/key".into())),
        "{got:?}"
    );
    let got = at(json!({"watermark": {"gamma": 0.25}}));
    assert!(!got.is_empty(), "a watermark without keyId: {got:?}");
    let got = at(json!({"watermark": {"keyId": "news", "gamma": 1.5}}));
    assert!(
        got.iter().any(|(_, p)| p == "/spec/watermark/gamma"),
        "{got:?}"
    );
}
