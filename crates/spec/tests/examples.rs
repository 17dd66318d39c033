//! Every example validates without a single finding, and every v1alpha1 document upgrades
//! losslessly to a v1 document that validates too.

use std::path::{Path, PathBuf};

use ms_spec::schema::DocType;
use ms_spec::{Checker, LintConfig, report, source, upgrade, validate_inputs};

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
    assert_eq!(
        report::summarize(&run.results).errors + report::summarize(&run.results).warnings,
        0,
        "{text}"
    );
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
