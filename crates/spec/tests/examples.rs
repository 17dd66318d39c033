//! Every example validates without a single finding (v1alpha1 copies: only the digest warning
//! that v1alpha1 cannot answer), upstream-shaped documents validate as shipped, and every
//! v1alpha1 document upgrades losslessly to a v1 document with no finding its input did not have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ms_spec::schema::DocType;
use ms_spec::{Checker, LintConfig, Severity, Source, report, source, upgrade, validate_inputs};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn all_examples_are_clean() {
    let dir = examples_dir().display().to_string();
    let run = validate_inputs(&[dir], LintConfig::default());
    assert!(!run.io_error);
    assert!(
        run.results.len() >= 15,
        "expected the 00-08 learning path plus extras, found {}",
        run.results.len()
    );
    for n in 0..=8 {
        let prefix = format!("{n:02}-");
        assert!(
            run.results.iter().any(|r| Path::new(&r.name)
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))),
            "examples/{prefix}* missing"
        );
    }
    let text = report::text(&run.results, false);
    assert_eq!(report::summarize(&run.results).errors, 0, "{text}");
    // v1alpha1 cannot hold digests, so its prod copy warns about them (MS0303); nothing else.
    for r in &run.results {
        let alpha = r.name.contains("v1alpha1");
        for d in &r.diagnostics {
            assert!(
                alpha && d.code == "MS0303" && d.severity == Severity::Warning,
                "{text}"
            );
        }
    }
}

fn upstream_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream")
}

fn codes(diags: &[ms_spec::Diagnostic]) -> BTreeSet<&'static str> {
    diags.iter().map(|d| d.code).collect()
}

/// Documents in the shapes upstream's examples ship: specRefs to specs that are not shipped, a
/// prod owner given as an annotation, weights and tokenizer in one repository.
#[test]
fn upstream_shaped_examples_validate_as_shipped() {
    let dir = upstream_dir().display().to_string();
    let run = validate_inputs(std::slice::from_ref(&dir), LintConfig::default());
    let text = report::text(&run.results, false);
    assert!(!run.io_error, "{text}");
    assert!(run.results.len() >= 3, "{text}");
    // Exit 0: warnings only.
    assert_eq!(report::summarize(&run.results).errors, 0, "{text}");
    let all: Vec<_> = run.results.iter().flat_map(|r| &r.diagnostics).collect();
    let unresolved = all.iter().filter(|d| d.code == "MS0502").count();
    assert_eq!(unresolved, 4, "{text}");
    // The owner annotation counts as an owner; one uri for two roles is no duplicate.
    assert!(
        !all.iter().any(|d| matches!(d.code, "MS0305" | "MS0402")),
        "{text}"
    );

    // --strict-refs: an unresolved specRef of a required dependency is an error, of an
    // optional one (`required: false`) still a warning.
    let mut strict = LintConfig::default();
    strict.strict_refs = true;
    let run = validate_inputs(&[dir], strict);
    let text = report::text(&run.results, false);
    let refs: Vec<_> = run
        .results
        .iter()
        .flat_map(|r| &r.diagnostics)
        .filter(|d| d.code == "MS0502")
        .map(|d| (d.pointer.as_str(), d.severity))
        .collect();
    assert_eq!(
        refs,
        [
            ("/spec/pipeline/dependencies/0/specRef", Severity::Error),
            ("/spec/pipeline/dependencies/1/specRef", Severity::Warning),
            ("/spec/pipeline/dependencies/0/specRef", Severity::Error),
            ("/spec/pipeline/dependencies/1/specRef", Severity::Warning),
        ],
        "{text}"
    );
}

/// Every v1alpha1 file of the repository (examples and test fixtures).
fn v1alpha1_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut todo = vec![examples_dir(), root.join("tests/fixtures")];
    let mut files = Vec::new();
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains("piqc.ai/v1alpha1"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `upgrade` never produces a document that `validate` faults for a reason its input did not
/// have: the output's finding codes are a subset of the input's.
#[test]
fn upgrading_adds_no_finding_code() {
    let mut upgraded = 0;
    for path in v1alpha1_files() {
        let src = source::load(path.to_str().unwrap()).unwrap();
        let before = Checker::default().check(&src);
        let Ok(up) = upgrade::upgrade_source(&src) else {
            // Refused: the input has errors, which `upgrade` reports as `validate` does.
            assert!(
                before.iter().any(|d| d.severity == Severity::Error),
                "{}: refused although it validates",
                path.display()
            );
            continue;
        };
        upgraded += 1;
        // Same path, so specRefs resolve as they did for the input.
        let out_src = Source {
            text: up.text,
            ..src.clone()
        };
        let after = Checker::default().check(&out_src);
        let new: Vec<_> = codes(&after).difference(&codes(&before)).copied().collect();
        assert!(
            new.is_empty(),
            "{}: upgrading added {new:?}\n{}",
            path.display(),
            out_src.text
        );
    }
    assert!(upgraded >= 6, "only {upgraded} v1alpha1 files upgraded");
}

#[test]
fn examples_load_as_typed_v1() {
    for name in [
        "08-full-production.modelspec.yaml",
        "v1alpha1/08-full-production.modelspec.yaml",
    ] {
        let spec = ms_spec::load_model_spec(&examples_dir().join(name)).unwrap();
        assert_eq!(spec.api_version, ms_spec::types::v1::ApiVersion::V1);
        assert!(
            spec.spec
                .identity
                .model
                .artifacts
                .is_some_and(|a| !a.is_empty())
        );
    }
}

fn alpha_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir().join("v1alpha1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn v1alpha1_examples_upgrade_losslessly() {
    let files = alpha_files();
    assert!(files.len() >= 3);
    for path in files {
        let src = source::load(path.to_str().unwrap()).unwrap();
        let up = upgrade::upgrade_source(&src).unwrap();
        assert_eq!(up.upgraded, 1);
        // Every comment line survives.
        for line in src.text.lines().filter(|l| l.trim_start().starts_with('#')) {
            let expected = line.trim().replace("modelspec.v1alpha1.", "modelspec.v1.");
            assert!(
                up.text.contains(&expected),
                "{}: lost comment {line:?}",
                path.display()
            );
        }
        // Round trip: v1alpha1 -> v1 -> v1alpha1 gives the same data back.
        let before = ms_spec::yaml::parse(&src).documents[0].root.to_json();
        let mut new_src = src.clone();
        new_src.text = up.text.clone();
        let after = ms_spec::yaml::parse(&new_src).documents[0].root.to_json();
        assert_eq!(after["apiVersion"], "modelspec/v1");
        assert_eq!(
            upgrade::downgrade_value(&after).unwrap(),
            before,
            "{}",
            path.display()
        );
        // The upgraded document is schema-valid v1 (rules may add findings v1 can now express).
        let (diags, checked) = Checker::default().check_raw(&new_src);
        assert_eq!(checked[0].doc_type, Some(DocType::V1));
        let schema: Vec<_> = diags
            .iter()
            .filter(|d| d.code.starts_with("MS01") || d.code.starts_with("MS00"))
            .collect();
        assert!(schema.is_empty(), "{}: {schema:?}", path.display());
    }
}

#[test]
fn downgrade_refuses_what_v1alpha1_cannot_hold() {
    let v = serde_json::json!({
        "apiVersion": "modelspec/v1", "kind": "ModelSpec", "metadata": {"name": "m"},
        "spec": {"identity": {"model": {"id": "m", "family": "f", "task": "t", "framework": "x",
            "artifacts": [{"role": "weights", "uri": "a", "sha256": "0".repeat(64)}]}},
            "runtime": {"accelerator": {"vendor": "v", "type": "cpu", "count": 1}}}
    });
    assert!(upgrade::downgrade_value(&v).is_err());
}
