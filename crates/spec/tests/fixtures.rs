//! Snapshot tests of the diagnostics for the invalid-document corpus in `fixtures/invalid`.
//! Each `NAME` has its expected text output in `NAME.expected`. After an intended change,
//! regenerate with `MODELSPEC_BLESS=1 cargo test -p ms-spec --test fixtures` and review the diff.

use std::path::Path;

use ms_spec::{LintConfig, report, validate_inputs};

const DIR: &str = "tests/fixtures/invalid";

fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".expected"))
        .collect();
    names.sort();
    names
}

#[test]
fn invalid_corpus_matches_snapshots() {
    // Paths in the output are relative to the crate, as cargo runs tests from there.
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let bless = std::env::var_os("MODELSPEC_BLESS").is_some();
    let names = fixtures();
    assert!(
        names.len() >= 40,
        "the corpus must hold at least 40 invalid documents, has {}",
        names.len()
    );
    let mut changed = Vec::new();
    for name in &names {
        let path = format!("{DIR}/{name}");
        let run = validate_inputs(std::slice::from_ref(&path), LintConfig::default());
        let summary = report::summarize(&run.results);
        assert!(
            summary.errors + summary.warnings > 0,
            "{name} is in the invalid corpus but has no findings"
        );
        let text = report::text(&run.results, false);
        let expected_path = format!("{path}.expected");
        if bless {
            std::fs::write(&expected_path, &text).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != text {
            changed.push(format!(
                "--- {expected_path}\n{expected}\n+++ actual\n{text}"
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "{} snapshot(s) differ (regenerate with MODELSPEC_BLESS=1 cargo test -p ms-spec --test fixtures):\n{}",
        changed.len(),
        changed.join("\n")
    );
}

#[test]
fn json_output_has_positions_pointers_and_codes() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let run = validate_inputs(
        &[format!("{DIR}/21-misspelled-key.yaml")],
        LintConfig::default(),
    );
    let v: serde_json::Value = serde_json::from_str(&report::json(&run.results)).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "MS0102");
    assert_eq!(d["rule"], "unknown-key");
    assert_eq!(d["line"], 19);
    assert_eq!(d["column"], 7);
    // The span of the whole key, for editors and for the `^^^` underline.
    assert_eq!(
        (d["end_line"].clone(), d["end_column"].clone()),
        (19.into(), 18.into())
    );
    assert_eq!(d["pointer"], "/spec/operations/scaling/maxReplcias");
    assert_eq!(d["hint"], "did you mean `maxReplicas`?");
}

#[test]
fn sarif_output_is_2_1_0() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let run = validate_inputs(
        &[format!("{DIR}/36-min-exceeds-max.yaml")],
        LintConfig::default(),
    );
    let v: serde_json::Value = serde_json::from_str(&report::sarif(&run.results)).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let result = &v["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "MS0203");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        18
    );
    let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    let idx = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[idx]["id"], "MS0203");
}
