//! ModelSpec and ExecutionPlan documents: parsing YAML and JSON with source positions, JSON Schema
//! generated from the typed documents, semantic lint rules with stable codes, the specRef
//! graph, and the lossless upgrade from upstream `piqc.ai/v1alpha1` to `modelspec/v1`.
//! It never runs anything a spec names.

pub mod catalog;
pub mod check;
pub mod config;
pub mod diag;
pub mod discover;
pub mod json;
pub mod plan;
pub mod refs;
pub mod report;
pub mod rules;
pub mod schema;
pub mod source;
pub mod suggest;
pub mod types;
pub mod upgrade;
pub mod yaml;

pub use check::Checker;
pub use config::LintConfig;
pub use diag::{Diagnostic, Severity};
pub use report::FileResult;
pub use source::Source;

/// The outcome of checking a set of command-line inputs.
pub struct Run {
    pub results: Vec<FileResult>,
    /// Some input could not be read (missing path, unreadable file, directory without
    /// specs): the command exits 2.
    pub io_error: bool,
}

/// Checks every file named by `inputs` (files, directories, globs, `-`). One unreadable or
/// broken file never stops the others from being checked.
pub fn validate_inputs(inputs: &[String], config: LintConfig) -> Run {
    let disc = discover::expand(inputs);
    let mut io_error = !disc.errors.is_empty();
    let mut results: Vec<FileResult> = disc
        .errors
        .into_iter()
        .map(|d| FileResult {
            name: d.file.clone(),
            source: None,
            diagnostics: vec![d],
        })
        .collect();
    let mut checker = Checker::new(config);
    for name in disc.files {
        match source::load(&name) {
            Ok(src) => {
                let diagnostics = checker.check(&src);
                results.push(FileResult {
                    name,
                    source: Some(src),
                    diagnostics,
                });
            }
            Err(e) => {
                io_error |= matches!(e, source::LoadError::Io(_));
                let mut diagnostics = vec![e.into_diagnostic()];
                checker.config.apply(&mut diagnostics);
                results.push(FileResult {
                    name,
                    source: None,
                    diagnostics,
                });
            }
        }
    }
    Run { results, io_error }
}

/// Reads a ModelSpec of either apiVersion as a typed `modelspec/v1` document (v1alpha1 is
/// upgraded in memory). Errors are the findings that make it invalid.
pub fn load_model_spec(path: &std::path::Path) -> Result<types::v1::ModelSpec, Vec<Diagnostic>> {
    let src = source::load(&path.display().to_string()).map_err(|e| vec![e.into_diagnostic()])?;
    load_model_spec_source(&src, &[])
}

/// Like [`load_model_spec`], for a spec's text received from elsewhere (the registry gets it in
/// a request): `name` is the file name that findings report (`.json` picks the JSON parser).
/// Findings about relative references (specRef, executionPlan: MS0502, MS0701) are dropped:
/// those files live beside the spec on the machine that sent it, which checked them.
pub fn load_model_spec_str(
    name: &str,
    text: &str,
) -> Result<types::v1::ModelSpec, Vec<Diagnostic>> {
    load_model_spec_source(&Source::from_text(name, text), &["MS0502", "MS0701"])
}

fn load_model_spec_source(
    src: &Source,
    ignore: &[&str],
) -> Result<types::v1::ModelSpec, Vec<Diagnostic>> {
    let mut checker = Checker::default();
    let (mut diags, checked) = checker.check_raw(src);
    diags.retain(|d| !ignore.contains(&d.code));
    checker.config.apply(&mut diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    let Some(doc) = checked.into_iter().find(|c| {
        matches!(
            c.doc_type,
            Some(schema::DocType::V1 | schema::DocType::V1alpha1)
        )
    }) else {
        return Err(vec![Diagnostic::file_level(
            diag::codes::KIND,
            &src.name,
            "file contains no ModelSpec document",
        )]);
    };
    let value = if doc.doc_type == Some(schema::DocType::V1alpha1) {
        upgrade::upgrade_value(&doc.value)
    } else {
        doc.value
    };
    serde_json::from_value(value).map_err(|e| {
        vec![Diagnostic::file_level(
            diag::codes::SCHEMA_OTHER,
            &src.name,
            e.to_string(),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_from_text_loads_and_its_errors_have_positions() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/08-full-production.modelspec.yaml"
        ))
        .unwrap();
        let spec = load_model_spec_str("prod.yaml", &text).expect("the example is valid");
        assert_eq!(spec.metadata.name, "support-chat-prod");

        let bad = text.replacen("family: gemma3", "family: [gemma3]", 1);
        let errs = load_model_spec_str("prod.yaml", &bad).unwrap_err();
        let e = errs.iter().find(|d| d.severity == Severity::Error).unwrap();
        assert_eq!(e.file, "prod.yaml");
        assert!(e.line > 0 && e.column > 0, "{e:?}");
        assert_eq!(e.pointer, "/spec/identity/model/family");
    }
}
