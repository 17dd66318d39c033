//! Editor support: the VS Code settings point at committed schemas, and the snippets expand
//! to documents that validate.

use std::path::{Path, PathBuf};

use ms_spec::{Checker, Source};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn settings_map_modelspec_files_to_the_draft_07_schema() {
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(".vscode/settings.json")).unwrap(),
    )
    .unwrap();
    let schemas = settings["yaml.schemas"].as_object().unwrap();
    let (file, globs) = schemas
        .iter()
        .find(|(_, g)| {
            g.as_array()
                .unwrap()
                .iter()
                .any(|x| x == "*.modelspec.yaml")
        })
        .unwrap();
    assert!(file.ends_with("modelspec.v1.draft-07.schema.json"));
    assert!(globs.is_array());
    for file in schemas.keys() {
        assert!(repo().join(file).is_file(), "{file} is not committed");
    }
}

/// Expands `${1:default}`, `${1|first,second|}`, `$0` and `\$` the way an editor would
/// with every placeholder left at its default.
fn expand(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find('$') {
        if i > 0 && rest.as_bytes()[i - 1] == b'\\' {
            out.push_str(&rest[..i - 1]);
            out.push('$');
            rest = &rest[i + 1..];
            continue;
        }
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap();
            let spec = &inner[..end];
            let value = if let Some((_, d)) = spec.split_once(':') {
                d.to_owned()
            } else if let Some((_, choices)) = spec.split_once('|') {
                choices
                    .trim_end_matches('|')
                    .split(',')
                    .next()
                    .unwrap()
                    .to_owned()
            } else {
                String::new()
            };
            out.push_str(&value);
            rest = &inner[end + 1..];
        } else {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn snippets_expand_to_valid_documents() {
    let snippets: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(".vscode/modelspec.code-snippets")).unwrap(),
    )
    .unwrap();
    let snippets = snippets.as_object().unwrap();
    assert!(snippets.len() >= 8);
    for name in ["ModelSpec (minimal, v1)", "ExecutionPlan"] {
        let body: Vec<&str> = snippets[name]["body"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let text = expand(&body.join("\n"));
        let diags = Checker::default().check(&Source::from_text("snippet.yaml", text.clone()));
        assert!(diags.is_empty(), "{name}:\n{text}\n{diags:?}");
    }
    // Section snippets are valid YAML on their own.
    for (name, s) in snippets {
        let body: Vec<&str> = s["body"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let parsed = ms_spec::yaml::parse(&Source::from_text("s.yaml", expand(&body.join("\n"))));
        assert!(
            parsed.diagnostics.is_empty(),
            "{name}: {:?}",
            parsed.diagnostics
        );
    }
}
