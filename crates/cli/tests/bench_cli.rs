//! `modelspec bench` end to end on the tiny oracle model: the JSON object `compare.sh` reads,
//! the table, and clear errors for bad arguments.

use std::process::{Command, Output};

use ms_test_support::oracle_model;

fn tiny() -> String {
    oracle_model("llama-spm-tiny.q8_0").display().to_string()
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_has_positive_medians_of_the_measured_repetitions() {
    let model = tiny();
    let out = bench(&[
        &model,
        "--threads",
        "2",
        "--pp",
        "16",
        "--tg",
        "4",
        "--reps",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["pp_tok_s_median", "tg_tok_s_median"] {
        let v = doc[key].as_f64().unwrap_or(0.0);
        assert!(v > 0.0 && v.is_finite(), "{key} = {v} in {doc}");
    }
    for key in ["pp_tok_s_all", "tg_tok_s_all"] {
        let all = doc[key].as_array().unwrap();
        assert_eq!(all.len(), 3, "{doc}");
        let mut v: Vec<f64> = all.iter().map(|x| x.as_f64().unwrap()).collect();
        v.sort_by(f64::total_cmp);
        let median_key = key.replace("_all", "_median");
        assert_eq!(doc[&median_key].as_f64().unwrap(), v[1], "{doc}");
    }
    assert_eq!(doc["pp_tokens"], 16);
    assert_eq!(doc["tg_tokens"], 4);
    assert_eq!(doc["threads"], 2);
    assert_eq!(doc["architecture"], "llama");
    assert!(
        doc["backend"].as_str().unwrap().starts_with("cpu-"),
        "{doc}"
    );
    assert!(doc["kernels"].is_string(), "{doc}");
}

#[test]
fn table_names_the_tests_and_scalar_backend_runs() {
    let model = tiny();
    let out = bench(&[
        &model,
        "--threads",
        "1",
        "--pp",
        "8",
        "--tg",
        "2",
        "--reps",
        "1",
        "--backend",
        "cpu-scalar",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pp8") && text.contains("tg2"), "{text}");
    assert!(text.contains("cpu-scalar (scalar)"), "{text}");
}

#[test]
fn bad_arguments_are_explained() {
    let model = tiny();
    let err = failure(&bench(&[&model, "--pp", "0"]));
    assert!(err.contains("--pp must be at least 1"), "{err}");
    let err = failure(&bench(&[&model, "--threads", "0"]));
    assert!(err.contains("--threads must be at least 1"), "{err}");
    let err = failure(&bench(&[&model, "--pp", "5000", "--tg", "1"]));
    assert!(err.contains("context of pp + tg = 5001 positions"), "{err}");
    assert!(err.contains("2048"), "{err}");
    let err = failure(&bench(&[&model, "--backend", "gpu"]));
    assert!(err.contains("`gpu` is unknown"), "{err}");
    let err = failure(&bench(&["/nonexistent/model.gguf", "--pp", "4"]));
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
    // Not a number: clap's own message, exit status 2.
    let out = bench(&[&model, "--reps", "many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reps"));
}
