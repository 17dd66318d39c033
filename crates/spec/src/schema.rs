//! JSON Schemas generated from the typed documents, in the two drafts editors and tools use.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::types;

/// Which document type a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocType {
    /// `piqc.ai/v1alpha1` ModelSpec (upstream).
    V1alpha1,
    /// `modelspec/v1` ModelSpec.
    V1,
    /// `modelspec/v1` ExecutionPlan.
    Plan,
}

impl DocType {
    /// File stem of the committed copy under `schema/`.
    pub fn file_stem(self) -> &'static str {
        match self {
            DocType::V1alpha1 => "modelspec.v1alpha1",
            DocType::V1 => "modelspec.v1",
            DocType::Plan => "executionplan.v1",
        }
    }
    pub fn all() -> [DocType; 3] {
        [DocType::V1alpha1, DocType::V1, DocType::Plan]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Draft {
    Draft2020_12,
    Draft07,
}

impl Draft {
    pub fn file_suffix(self) -> &'static str {
        match self {
            Draft::Draft2020_12 => "schema.json",
            Draft::Draft07 => "draft-07.schema.json",
        }
    }
}

/// The schema of `doc` in `draft`, exactly as committed under `schema/`.
pub fn generate(doc: DocType, draft: Draft) -> Value {
    let settings = match draft {
        Draft::Draft2020_12 => SchemaSettings::draft2020_12(),
        Draft::Draft07 => SchemaSettings::draft07(),
    };
    let generator = settings.into_generator();
    let schema = match doc {
        DocType::V1alpha1 => generator.into_root_schema_for::<types::v1alpha1::ModelSpec>(),
        DocType::V1 => generator.into_root_schema_for::<types::v1::ModelSpec>(),
        DocType::Plan => generator.into_root_schema_for::<types::plan::ExecutionPlan>(),
    };
    let mut value = schema.to_value();
    tidy(&mut value);
    value
}

/// Pretty JSON with a final newline: the committed file format.
pub fn render(doc: DocType, draft: Draft) -> String {
    let mut s = serde_json::to_string_pretty(&generate(doc, draft)).unwrap_or_default();
    s.push('\n');
    s
}

/// Fields are optional by being absent, never by being null: drop the `null` alternatives
/// schemars adds for `Option`, and the Rust-only integer `format`s editors would flag.
fn tidy(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::String(f)) = map.get("format")
                && matches!(
                    f.as_str(),
                    "uint"
                        | "uint8"
                        | "uint16"
                        | "uint32"
                        | "uint64"
                        | "int"
                        | "int32"
                        | "int64"
                        | "double"
                        | "float"
                )
            {
                map.remove("format");
            }
            if let Some(Value::Array(alts)) = map.get_mut("anyOf") {
                alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
                if alts.len() == 1 {
                    let only = alts.remove(0);
                    map.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, val) in inner {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            for child in map.values_mut() {
                tidy(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// The compiled 2020-12 validator for `doc`, built once per process.
pub fn validator(doc: DocType) -> &'static jsonschema::Validator {
    static CELLS: [OnceLock<(Value, jsonschema::Validator)>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match doc {
        DocType::V1alpha1 => 0,
        DocType::V1 => 1,
        DocType::Plan => 2,
    };
    &CELLS[i].get_or_init(|| compile(doc)).1
}

/// The 2020-12 schema value the validator was built from.
pub fn schema_value(doc: DocType) -> &'static Value {
    static CELLS: [OnceLock<Value>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match doc {
        DocType::V1alpha1 => 0,
        DocType::V1 => 1,
        DocType::Plan => 2,
    };
    CELLS[i].get_or_init(|| generate(doc, Draft::Draft2020_12))
}

fn compile(doc: DocType) -> (Value, jsonschema::Validator) {
    let schema = schema_value(doc).clone();
    // Our own generated schema: failing to compile is a bug caught by the schema tests.
    #[allow(clippy::expect_used)]
    let v = jsonschema::draft202012::new(&schema).expect("generated schema compiles");
    (schema, v)
}

/// The subschema that applies at an instance location (following `$ref`, `properties`,
/// `additionalProperties`, `items`), used to list the keys a misspelled key could have been.
pub fn subschema_at<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut node = deref(root, root)?;
    for raw in pointer
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
    {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let next = if let Some(p) = node.get("properties").and_then(|p| p.get(&seg)) {
            p
        } else if let Some(items) = node.get("items") {
            items
        } else {
            node.get("additionalProperties").filter(|a| a.is_object())?
        };
        node = deref(root, next)?;
    }
    Some(node)
}

fn deref<'a>(root: &'a Value, mut node: &'a Value) -> Option<&'a Value> {
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => node = root.pointer(r.strip_prefix('#')?)?,
            None => return Some(node),
        }
    }
    None
}

/// Property names a schema object allows.
pub fn property_names(schema: &Value) -> Vec<&str> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}
