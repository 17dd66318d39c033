//! `piqc.ai/v1alpha1` -> `modelspec/v1`.
//!
//! The only structural change is `spec.identity.model.artifacts`: the `{modelUri, tokenizerUri}`
//! object becomes a list of `{role, uri}` entries; `apiVersion` changes; everything else is
//! already valid v1. YAML is edited in place, so comments, key order, quoting, blank lines and
//! anchors outside the artifacts block are kept byte for byte; inside it, whole-line comments
//! and end-of-line comments on the URIs are carried over. JSON is re-printed (JSON has no
//! comments; key order is kept). Every upgrade is checked: the result is parsed again and must
//! equal the value-level upgrade, and downgrading it must give back the original.

use serde_json::{Map, Value, json};

use crate::diag::{Diagnostic, codes};
use crate::schema::{self, DocType};
use crate::source::Source;
use crate::types::{v1, v1alpha1};
use crate::yaml::{self, Node, NodeValue, Pos};

const ARTIFACTS: &str = "/spec/identity/model/artifacts";

/// The value-level upgrade of one v1alpha1 document.
pub fn upgrade_value(doc: &Value) -> Value {
    let mut v = doc.clone();
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(v1::API_VERSION.into()));
    }
    if let Some(slot) = v.pointer_mut(ARTIFACTS)
        && let Some(obj) = slot.as_object()
    {
        *slot = Value::Array(artifact_list(obj));
    }
    v
}

fn artifact_list(obj: &Map<String, Value>) -> Vec<Value> {
    let mut list = Vec::new();
    for (key, role) in [("modelUri", "weights"), ("tokenizerUri", "tokenizer")] {
        if let Some(uri) = obj.get(key) {
            list.push(json!({"role": role, "uri": uri}));
        }
    }
    list
}

/// The inverse of [`upgrade_value`], for documents that v1alpha1 can express. Errors say
/// what v1alpha1 cannot hold.
pub fn downgrade_value(doc: &Value) -> Result<Value, String> {
    let mut v = doc.clone();
    if let Some(map) = v.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            Value::String(v1alpha1::API_VERSION.into()),
        );
    }
    if let Some(slot) = v.pointer_mut(ARTIFACTS)
        && let Some(list) = slot.as_array()
    {
        let mut obj = Map::new();
        for a in list {
            let key = match a.get("role").and_then(Value::as_str) {
                Some("weights") => "modelUri",
                Some("tokenizer") => "tokenizerUri",
                other => return Err(format!("artifact role {other:?} has no v1alpha1 field")),
            };
            if a.as_object().is_some_and(|o| o.len() != 2) {
                return Err(
                    "artifact fields other than role and uri have no v1alpha1 field".into(),
                );
            }
            if obj
                .insert(key.into(), a.get("uri").cloned().unwrap_or(Value::Null))
                .is_some()
            {
                return Err(format!("v1alpha1 holds one {key}"));
            }
        }
        *slot = Value::Object(obj);
    }
    let errors: Vec<String> = schema::validator(DocType::V1alpha1)
        .iter_errors(&v)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(errors.join("; "))
    }
}

/// The result of upgrading a file.
#[derive(Debug)]
pub struct Upgraded {
    pub text: String,
    /// Documents that were v1alpha1 and are now v1.
    pub upgraded: usize,
    /// Documents left alone (already v1, or another kind).
    pub unchanged: usize,
}

/// Upgrades every v1alpha1 ModelSpec document of a file. Refuses documents that do not pass
/// the v1alpha1 schema: fix those first (`modelspec validate` says how).
pub fn upgrade_source(src: &Source) -> Result<Upgraded, Vec<Diagnostic>> {
    let parsed = yaml::parse(src);
    if !parsed.diagnostics.is_empty() {
        return Err(parsed.diagnostics);
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut originals = Vec::new();
    let (mut upgraded, mut unchanged) = (0, 0);
    for doc in &parsed.documents {
        let value = doc.root.to_json();
        if value.get("apiVersion").and_then(Value::as_str) != Some(v1alpha1::API_VERSION) {
            unchanged += 1;
            originals.push(value);
            continue;
        }
        let errors: Vec<Diagnostic> = schema::validator(DocType::V1alpha1)
            .iter_errors(&value)
            .map(|e| {
                let ptr = e.instance_path().as_str().to_owned();
                let pos = doc.root.nearest(&ptr).start;
                Diagnostic::new(
                    codes::SCHEMA_OTHER,
                    &src.name,
                    pos,
                    format!("not a valid v1alpha1 document: {e}"),
                )
                .with_pointer(ptr)
                .with_document(doc.index)
            })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        upgraded += 1;
        if !src.is_json() {
            document_edits(src, &doc.root, &mut edits);
        }
        originals.push(value);
    }
    if upgraded == 0 {
        return Ok(Upgraded {
            text: src.text.clone(),
            upgraded,
            unchanged,
        });
    }
    if !src.is_json() {
        modeline_edits(src, &mut edits);
    }
    let text = if src.is_json() {
        let values: Vec<Value> = originals
            .iter()
            .map(|v| {
                if v.get("apiVersion").and_then(Value::as_str) == Some(v1alpha1::API_VERSION) {
                    upgrade_value(v)
                } else {
                    v.clone()
                }
            })
            .collect();
        let mut t = match values.as_slice() {
            [one] => serde_json::to_string_pretty(one).unwrap_or_default(),
            many => serde_json::to_string_pretty(many).unwrap_or_default(),
        };
        t.push('\n');
        t
    } else {
        let mut t = src.text.clone();
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (start, end, with) in edits {
            t.replace_range(start..end, &with);
        }
        t
    };
    verify(src, &text, &originals)?;
    Ok(Upgraded {
        text,
        upgraded,
        unchanged,
    })
}

/// Re-reads the upgraded text: it must hold exactly the value-level upgrade of each document,
/// and each upgraded document must downgrade back to the original.
fn verify(src: &Source, text: &str, originals: &[Value]) -> Result<(), Vec<Diagnostic>> {
    let fail = |msg: String| vec![Diagnostic::file_level(codes::SCHEMA_OTHER, &src.name, msg)];
    let again = yaml::parse(&Source::from_text(src.name.clone(), text));
    if !again.diagnostics.is_empty() {
        return Err(fail(
            "internal error: the upgraded text does not parse; please report this file".into(),
        ));
    }
    if again.documents.len() != originals.len() {
        return Err(fail(
            "internal error: the upgrade changed the number of documents".into(),
        ));
    }
    for (doc, original) in again.documents.iter().zip(originals) {
        let now = doc.root.to_json();
        let was_alpha =
            original.get("apiVersion").and_then(Value::as_str) == Some(v1alpha1::API_VERSION);
        let expected = if was_alpha {
            upgrade_value(original)
        } else {
            original.clone()
        };
        if now != expected {
            return Err(fail(format!(
                "internal error: document {} did not upgrade cleanly; please report this file",
                doc.index + 1
            )));
        }
        if was_alpha && downgrade_value(&now).as_ref() != Ok(original) {
            return Err(fail(format!(
                "internal error: document {} would not round-trip",
                doc.index + 1
            )));
        }
    }
    Ok(())
}

fn quoted_like(src: &Source, node: &Node, text: &str) -> String {
    match src
        .text
        .get(node.start.offset..)
        .and_then(|t| t.chars().next())
    {
        Some('"') => format!("\"{text}\""),
        Some('\'') => format!("'{text}'"),
        _ => text.to_owned(),
    }
}

fn line_start(text: &str, pos: Pos) -> usize {
    text[..pos.offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// The source text of a scalar if it can be moved verbatim (single line), else a JSON string.
fn raw_scalar(src: &Source, node: &Node) -> String {
    let raw = src
        .text
        .get(node.start.offset..node.end.offset)
        .unwrap_or_default();
    let movable = node.start.line == node.end.line
        && !raw.is_empty()
        && !raw.contains('\n')
        && matches!(node.value, NodeValue::Str(_));
    if movable {
        raw.to_owned()
    } else {
        serde_json::to_string(&node.to_json()).unwrap_or_default()
    }
}

/// Points a `# yaml-language-server: $schema=...modelspec.v1alpha1...` modeline at the v1 schema.
fn modeline_edits(src: &Source, edits: &mut Vec<(usize, usize, String)>) {
    let mut offset = 0;
    for line in src.text.split_inclusive('\n') {
        if line.trim_start().starts_with("# yaml-language-server:")
            && let Some(i) = line.find("modelspec.v1alpha1.")
        {
            let at = offset + i;
            edits.push((
                at,
                at + "modelspec.v1alpha1.".len(),
                "modelspec.v1.".to_owned(),
            ));
        }
        offset += line.len();
    }
}

fn document_edits(src: &Source, root: &Node, edits: &mut Vec<(usize, usize, String)>) {
    if let Some(api) = root.get("apiVersion") {
        edits.push((
            api.start.offset,
            api.end.offset,
            quoted_like(src, api, v1::API_VERSION),
        ));
    }
    let Some((node, _)) = root.lookup(ARTIFACTS) else {
        return;
    };
    let NodeValue::Map(entries) = &node.value else {
        return;
    };
    let items: Vec<(&str, &Node)> = ["modelUri", "tokenizerUri"]
        .iter()
        .zip(["weights", "tokenizer"])
        .filter_map(|(k, role)| {
            entries
                .iter()
                .find(|e| e.key == *k)
                .map(|e| (role, &e.value))
        })
        .collect();
    if node.flow || entries.is_empty() {
        let list: Vec<String> = items
            .iter()
            .map(|(role, v)| format!("{{role: {role}, uri: {}}}", raw_scalar(src, v)))
            .collect();
        let rendered = format!("[{}]", list.join(", "));
        if entries.is_empty() && !node.flow {
            // `artifacts:` with nothing after it is null, not an object: nothing to do.
            return;
        }
        edits.push((node.start.offset, node.end.offset, rendered));
        return;
    }
    // Block style: replace the lines from the first key to the end of the last value.
    let Some(first) = entries.iter().map(|e| e.key_pos).min_by_key(|p| p.offset) else {
        return;
    };
    let last_end = entries
        .iter()
        .map(|e| e.value.end.offset)
        .max()
        .unwrap_or(first.offset);
    let start = line_start(&src.text, first);
    let end = line_end(&src.text, last_end);
    let indent = " ".repeat(usize::try_from(first.col.saturating_sub(1)).unwrap_or(0));
    let mut out = String::new();
    // Whole-line comments inside the block keep their place relative to the entries.
    let mut ordered: Vec<(usize, String)> = Vec::new();
    let region = &src.text[start..end];
    let mut off = start;
    for line in region.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            ordered.push((
                off,
                format!("{indent}{}", trimmed.trim_end_matches(['\n', '\r'])),
            ));
        }
        off += line.len();
    }
    for (role, value) in &items {
        let key_pos = entries
            .iter()
            .find(|e| std::ptr::eq(&e.value, *value))
            .map_or(0, |e| e.key_pos.offset);
        let eol = line_end(&src.text, value.end.offset);
        let trailing = src.text[value.end.offset.min(eol)..eol].trim();
        let comment = if trailing.starts_with('#') {
            format!("  {trailing}")
        } else {
            String::new()
        };
        ordered.push((
            key_pos,
            format!(
                "{indent}- role: {role}\n{indent}  uri: {}{comment}",
                raw_scalar(src, value)
            ),
        ));
    }
    ordered.sort_by_key(|(o, _)| *o);
    for (_, line) in ordered {
        out.push_str(&line);
        out.push('\n');
    }
    if !src.text[..end].ends_with('\n') {
        out.pop();
    }
    edits.push((start, end, out));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_comments_and_round_trips() {
        let text = "# yaml-language-server: $schema=../schema/modelspec.v1alpha1.draft-07.schema.json\n# top comment\napiVersion: piqc.ai/v1alpha1 # the upstream version\nkind: ModelSpec\nmetadata:\n  name: m\nspec:\n  identity:\n    model:\n      id: m\n      family: llama\n      task: chat\n      framework: llama.cpp\n      artifacts:\n        # pinned weights\n        modelUri: \"s3://bucket/model.gguf\" # v3\n        tokenizerUri: s3://bucket/tok\n  runtime:\n    accelerator: {vendor: intel, type: cpu, count: 1}\n";
        let up = upgrade_source(&Source::from_text("a.yaml", text)).unwrap();
        assert_eq!(up.upgraded, 1);
        assert!(up.text.contains("# top comment"));
        assert!(up.text.starts_with(
            "# yaml-language-server: $schema=../schema/modelspec.v1.draft-07.schema.json\n"
        ));
        assert!(
            up.text
                .contains("apiVersion: modelspec/v1 # the upstream version")
        );
        assert!(up.text.contains("        # pinned weights\n        - role: weights\n          uri: \"s3://bucket/model.gguf\"  # v3\n"), "{}", up.text);
        assert!(
            up.text
                .contains("- role: tokenizer\n          uri: s3://bucket/tok\n  runtime:"),
            "{}",
            up.text
        );
    }

    #[test]
    fn flow_artifacts_and_json() {
        let text = "apiVersion: 'piqc.ai/v1alpha1'\nkind: ModelSpec\nmetadata: {name: m}\nspec:\n  identity:\n    model: {id: m, family: f, task: t, framework: x, artifacts: {modelUri: a.gguf}}\n  runtime:\n    accelerator: {vendor: v, type: cpu, count: 1}\n";
        let up = upgrade_source(&Source::from_text("a.yaml", text)).unwrap();
        assert!(up.text.contains("apiVersion: 'modelspec/v1'"));
        assert!(
            up.text
                .contains("artifacts: [{role: weights, uri: a.gguf}]"),
            "{}",
            up.text
        );
        let json_text = r#"{"apiVersion": "piqc.ai/v1alpha1", "kind": "ModelSpec", "metadata": {"name": "m"}, "spec": {"identity": {"model": {"id": "m", "family": "f", "task": "t", "framework": "x", "artifacts": {"tokenizerUri": "t"}}}, "runtime": {"accelerator": {"vendor": "v", "type": "cpu", "count": 1}}}}"#;
        let up = upgrade_source(&Source::from_text("a.json", json_text)).unwrap();
        let v: Value = serde_json::from_str(&up.text).unwrap();
        assert_eq!(
            v.pointer("/spec/identity/model/artifacts/0/role"),
            Some(&json!("tokenizer"))
        );
    }

    #[test]
    fn refuses_invalid_input() {
        let text =
            "apiVersion: piqc.ai/v1alpha1\nkind: ModelSpec\nmetadata: {name: m, colour: red}\n";
        assert!(upgrade_source(&Source::from_text("a.yaml", text)).is_err());
    }
}
