//! Checking one source: parse, pick the schema from apiVersion/kind, map schema errors to
//! findings with positions and suggestions, then run the semantic rules.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::config::LintConfig;
use crate::diag::{Diagnostic, Severity, codes};
use crate::refs::RefGraph;
use crate::rules;
use crate::schema::{self, DocType};
use crate::source::Source;
use crate::suggest::closest;
use crate::types::{v1, v1alpha1};
use crate::yaml::{self, Document, Node, NodeValue, Pos};

/// Validates files and keeps what is worth sharing between them (the specRef graph).
#[derive(Default)]
pub struct Checker {
    pub config: LintConfig,
    refs: RefGraph,
}

/// What one document turned out to be.
pub struct Checked {
    pub doc_type: Option<DocType>,
    pub value: Value,
}

impl Checker {
    pub fn new(config: LintConfig) -> Self {
        Checker {
            config,
            refs: RefGraph::default(),
        }
    }

    /// Every finding for `src`, levels applied and `off` findings dropped, in source order.
    pub fn check(&mut self, src: &Source) -> Vec<Diagnostic> {
        let mut out = self.check_raw(src).0;
        self.config.apply(&mut out);
        out
    }

    /// Findings at default levels plus what each document was.
    pub fn check_raw(&mut self, src: &Source) -> (Vec<Diagnostic>, Vec<Checked>) {
        let parsed = yaml::parse(src);
        let mut out = parsed.diagnostics;
        let mut checked = Vec::new();
        if parsed.documents.is_empty() && out.is_empty() {
            out.push(
                Diagnostic::new(
                    codes::EMPTY,
                    &src.name,
                    Pos {
                        line: 1,
                        col: 1,
                        offset: 0,
                    },
                    "file contains no YAML document",
                )
                .with_hint(
                    "a ModelSpec starts with `apiVersion: modelspec/v1` and `kind: ModelSpec`",
                ),
            );
        }
        for doc in &parsed.documents {
            let (diags, c) = self.check_document(src, doc);
            out.extend(diags.into_iter().map(|d| d.with_document(doc.index)));
            checked.push(c);
        }
        out.sort_by(|a, b| {
            (a.document, a.line, a.column, a.code).cmp(&(b.document, b.line, b.column, b.code))
        });
        out.dedup();
        (out, checked)
    }

    fn check_document(&mut self, src: &Source, doc: &Document) -> (Vec<Diagnostic>, Checked) {
        let root = &doc.root;
        let mut out = Vec::new();
        let value = root.to_json();
        let mut checked = Checked {
            doc_type: None,
            value: Value::Null,
        };
        match &root.value {
            NodeValue::Null => {
                out.push(
                    Diagnostic::new(codes::EMPTY, &src.name, root.start, "empty YAML document")
                        .with_hint("remove the stray `---` or fill the document in"),
                );
                return (out, checked);
            }
            NodeValue::Map(_) => {}
            _ => {
                out.push(
                    Diagnostic::new(
                        codes::WRONG_TYPE,
                        &src.name,
                        root.start,
                        "a ModelSpec document must be a mapping",
                    )
                    .with_expected("a mapping with apiVersion, kind, metadata and spec")
                    .with_found(describe(&value)),
                );
                return (out, checked);
            }
        }
        let Some(doc_type) = doc_type(src, root, &mut out) else {
            return (out, checked);
        };
        let validator = schema::validator(doc_type);
        let schema_root = schema::schema_value(doc_type);
        for err in validator.iter_errors(&value) {
            let pointer = err.instance_path().as_str().to_owned();
            if pointer == "/apiVersion" || pointer == "/kind" {
                continue;
            }
            schema_finding(
                src,
                root,
                schema_root,
                &pointer,
                err.kind(),
                &err.to_string(),
                &mut out,
            );
        }
        let ctx = rules::Ctx {
            src,
            root,
            value: &value,
            doc_type,
            strict_refs: self.config.strict_refs,
        };
        if doc_type == DocType::Plan {
            out.extend(crate::plan::check(&ctx));
        } else {
            out.extend(rules::check(&ctx, &mut self.refs));
        }
        checked.doc_type = Some(doc_type);
        checked.value = value;
        (out, checked)
    }
}

const API_VERSIONS: [&str; 2] = [v1::API_VERSION, v1alpha1::API_VERSION];

fn doc_type(src: &Source, root: &Node, out: &mut Vec<Diagnostic>) -> Option<DocType> {
    let api = match root.get("apiVersion") {
        None => {
            out.push(
                Diagnostic::new(
                    codes::API_VERSION,
                    &src.name,
                    root.start,
                    "missing apiVersion",
                )
                .with_pointer("")
                .with_expected("`modelspec/v1` or `piqc.ai/v1alpha1`")
                .with_hint("add `apiVersion: modelspec/v1` as the first line"),
            );
            return None;
        }
        Some(n) => n,
    };
    let api_str = match &api.value {
        NodeValue::Str(s) if API_VERSIONS.contains(&s.as_str()) => s.as_str(),
        other => {
            let found = Node {
                value: other.clone(),
                ..api.clone()
            }
            .to_json();
            let mut d = Diagnostic::new(
                codes::API_VERSION,
                &src.name,
                api.start,
                "unknown apiVersion",
            )
            .with_end(api.token_end(&src.text))
            .with_pointer("/apiVersion")
            .with_expected("`modelspec/v1` or `piqc.ai/v1alpha1`")
            .with_found(describe(&found));
            if let NodeValue::Str(s) = other
                && let Some(c) = closest(s, API_VERSIONS)
            {
                d = d.with_hint(format!("did you mean `{c}`?"));
            }
            out.push(d);
            return None;
        }
    };
    let kinds: &[&str] = if api_str == v1::API_VERSION {
        &["ModelSpec", "ExecutionPlan"]
    } else {
        &["ModelSpec"]
    };
    let Some(kind) = root.get("kind") else {
        out.push(
            Diagnostic::new(codes::KIND, &src.name, root.start, "missing kind")
                .with_expected(kinds.join(" or "))
                .with_hint("add `kind: ModelSpec` after apiVersion"),
        );
        return None;
    };
    match &kind.value {
        NodeValue::Str(k) if kinds.contains(&k.as_str()) => Some(match (api_str, k.as_str()) {
            (v1alpha1::API_VERSION, _) => DocType::V1alpha1,
            (_, "ExecutionPlan") => DocType::Plan,
            _ => DocType::V1,
        }),
        other => {
            let found = Node {
                value: other.clone(),
                ..kind.clone()
            }
            .to_json();
            let mut d = Diagnostic::new(
                codes::KIND,
                &src.name,
                kind.start,
                format!("unknown kind for {api_str}"),
            )
            .with_end(kind.token_end(&src.text))
            .with_pointer("/kind")
            .with_expected(kinds.join(" or "))
            .with_found(describe(&found));
            if let NodeValue::Str(s) = other {
                if let Some(c) = closest(s, kinds.iter().copied()) {
                    d = d.with_hint(format!("did you mean `{c}`?"));
                } else if s == "ExecutionPlan" {
                    d = d.with_hint("ExecutionPlan documents use apiVersion modelspec/v1");
                }
            }
            out.push(d);
            None
        }
    }
}

/// A short human description of a JSON value for "found: ...".
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null (an empty value)".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 60 => {
            format!("string \"{}...\"", s.chars().take(57).collect::<String>())
        }
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(a) => format!(
            "a list of {} item{}",
            a.len(),
            if a.len() == 1 { "" } else { "s" }
        ),
        Value::Object(_) => "a mapping".into(),
    }
}

fn list(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn schema_finding(
    src: &Source,
    root: &Node,
    schema_root: &Value,
    pointer: &str,
    kind: &ValidationErrorKind,
    message: &str,
    out: &mut Vec<Diagnostic>,
) {
    let found_node = root.lookup(pointer);
    let pos = found_node.map_or_else(|| root.nearest(pointer).start, |(n, _)| n.start);
    // The whole offending value is underlined (its first line, for collections).
    let end = found_node.map_or(pos, |(n, _)| n.token_end(&src.text));
    let value = found_node.map(|(n, _)| n.to_json()).unwrap_or(Value::Null);
    let sub = schema::subschema_at(schema_root, pointer);
    let what = subject(pointer);
    let out_len = out.len();
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = sub.map(schema::property_names).unwrap_or_default();
            for key in unexpected {
                let child = format!("{pointer}/{}", yaml::escape_pointer(key));
                let key_pos = root.lookup(&child).and_then(|(_, k)| k).unwrap_or(pos);
                let mut d = Diagnostic::new(
                    codes::UNKNOWN_KEY,
                    &src.name,
                    key_pos,
                    format!("unknown key `{key}`"),
                )
                .with_end(yaml::key_end(&src.text, key_pos, key))
                .with_pointer(child)
                .with_expected(if allowed.is_empty() {
                    "no other keys".to_owned()
                } else {
                    format!("one of {}", list(&allowed))
                });
                if key == "<<" {
                    d = d.with_hint(yaml::MERGE_KEY_HINT);
                } else if let Some(c) = closest(key, allowed.iter().copied()) {
                    d = d.with_hint(format!("did you mean `{c}`?"));
                } else if pointer.is_empty() || pointer == "/spec" {
                    d = d.with_hint(
                        "every object is closed: remove the key or move it to where it belongs",
                    );
                }
                out.push(d);
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let parent_key = found_node.and_then(|(_, k)| k);
            let key_pos = parent_key.unwrap_or(pos);
            let key_end = parent_key.map_or(pos, |k| {
                let key = pointer.rsplit('/').next().unwrap_or_default();
                yaml::key_end(&src.text, k, &yaml::unescape_pointer(key))
            });
            let where_ = if pointer.is_empty() {
                "the document".to_owned()
            } else {
                format!("`{}`", pointer.rsplit('/').next().unwrap_or(pointer))
            };
            out.push(
                Diagnostic::new(
                    codes::MISSING_KEY,
                    &src.name,
                    key_pos,
                    format!("missing required key `{name}` in {where_}"),
                )
                .with_end(key_end)
                .with_pointer(format!("{pointer}/{}", yaml::escape_pointer(name)))
                .with_expected(format!("key `{name}`")),
            );
        }
        ValidationErrorKind::Type { .. } => {
            let expected = sub
                .and_then(|s| s.get("type"))
                .map_or_else(|| "another type".to_owned(), type_words);
            let mut d = Diagnostic::new(
                codes::WRONG_TYPE,
                &src.name,
                pos,
                format!("wrong type for {what}: expected {expected}"),
            )
            .with_pointer(pointer)
            .with_expected(expected.clone())
            .with_found(describe(&value));
            if expected == "a string" && matches!(value, Value::Number(_) | Value::Bool(_)) {
                d = d.with_hint(
                    "YAML read this as a number or boolean: quote it to make it a string",
                );
            } else if expected == "a boolean"
                && let Value::String(s) = &value
                && matches!(
                    s.to_ascii_lowercase().as_str(),
                    "yes" | "no" | "on" | "off" | "y" | "n"
                )
            {
                d = d.with_hint("YAML 1.2 reads yes/no/on/off as strings: write true or false");
            } else if value.is_null() {
                d = d.with_hint("the key has no value; fill it in or remove the key");
            }
            out.push(d);
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<&str> = options
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut d = Diagnostic::new(
                codes::INVALID_VALUE,
                &src.name,
                pos,
                format!("invalid value for {what}"),
            )
            .with_pointer(pointer)
            .with_expected(format!("one of {}", list(&opts)))
            .with_found(describe(&value));
            if let Value::String(s) = &value
                && let Some(c) = closest(s, opts.iter().copied())
            {
                d = d.with_hint(format!("did you mean `{c}`?"));
            }
            out.push(d);
        }
        ValidationErrorKind::Constant { expected_value } => out.push(
            Diagnostic::new(
                codes::INVALID_VALUE,
                &src.name,
                pos,
                format!("{what} is not the required constant"),
            )
            .with_pointer(pointer)
            .with_expected(expected_value.to_string())
            .with_found(describe(&value)),
        ),
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => out.push(
            Diagnostic::new(
                codes::OUT_OF_RANGE,
                &src.name,
                pos,
                format!("{what} is below the minimum {limit}"),
            )
            .with_pointer(pointer)
            .with_expected(range_words(sub))
            .with_found(describe(&value)),
        ),
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => out.push(
            Diagnostic::new(
                codes::OUT_OF_RANGE,
                &src.name,
                pos,
                format!("{what} is above the maximum {limit}"),
            )
            .with_pointer(pointer)
            .with_expected(range_words(sub))
            .with_found(describe(&value)),
        ),
        ValidationErrorKind::Pattern { pattern } => {
            let expected = if pattern == "^[0-9a-f]{64}$" {
                "64 lower-case hexadecimal digits (a SHA-256 digest)".to_owned()
            } else {
                format!("a string matching `{pattern}`")
            };
            let mut d = Diagnostic::new(
                codes::INVALID_FORMAT,
                &src.name,
                pos,
                format!("{what} does not have the required form"),
            )
            .with_pointer(pointer)
            .with_expected(expected)
            .with_found(describe(&value));
            if let Value::String(s) = &value
                && s.len() == 64
                && s.chars().all(|c| c.is_ascii_hexdigit())
            {
                d = d.with_hint("write the digest in lower case");
            } else if let Value::String(s) = &value
                && s.starts_with("sha256:")
            {
                d = d.with_hint("drop the `sha256:` prefix");
            }
            out.push(d);
        }
        ValidationErrorKind::MinLength { limit } => out.push(
            Diagnostic::new(
                codes::INVALID_FORMAT,
                &src.name,
                pos,
                format!("{what} is shorter than {limit} character(s)"),
            )
            .with_pointer(pointer)
            .with_expected(format!("at least {limit} character(s)"))
            .with_found(describe(&value)),
        ),
        _ => out.push(
            Diagnostic::new(codes::SCHEMA_OTHER, &src.name, pos, message.to_owned())
                .with_pointer(pointer)
                .with_found(describe(&value)),
        ),
    }
    // Findings about a value (not about a key) underline the value.
    if !matches!(
        kind,
        ValidationErrorKind::AdditionalProperties { .. } | ValidationErrorKind::Required { .. }
    ) {
        for d in &mut out[out_len..] {
            d.set_end(end);
        }
    }
}

/// How a finding's headline names the node at `pointer`: its key (`` `port` ``), a list item
/// (`` `artifacts[0]` ``), or the document.
fn subject(pointer: &str) -> String {
    let mut segs = pointer.rsplit('/').filter(|s| !s.is_empty());
    match (segs.next(), segs.next()) {
        (None, _) => "the document".to_owned(),
        (Some(last), parent) if last.parse::<usize>().is_ok() => match parent {
            Some(p) => format!("`{}[{last}]`", yaml::unescape_pointer(p)),
            None => format!("item {last}"),
        },
        (Some(last), _) => format!("`{}`", yaml::unescape_pointer(last)),
    }
}

fn type_words(t: &Value) -> String {
    let one = |s: &str| match s {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        other => format!("a {other}"),
    };
    match t {
        Value::String(s) => one(s),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "another type".to_owned(),
    }
}

fn range_words(sub: Option<&Value>) -> String {
    let min = sub.and_then(|s| s.get("minimum"));
    let max = sub.and_then(|s| s.get("maximum"));
    match (min, max) {
        (Some(a), Some(b)) => format!("a number from {a} to {b}"),
        (Some(a), None) => format!("a number >= {a}"),
        (None, Some(b)) => format!("a number <= {b}"),
        _ => "a number in range".to_owned(),
    }
}

/// Severity helper for rules that need to know whether a finding would fail the run.
pub fn is_error(d: &Diagnostic) -> bool {
    d.severity == Severity::Error
}
