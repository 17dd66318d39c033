//! The committed schemas under `schema/` must be exactly what the Rust types generate.
//! To regenerate after changing a type: `MODELSPEC_BLESS=1 cargo test -p ms-spec --test schema_drift`.

use std::path::PathBuf;

use ms_spec::schema::{self, DocType, Draft};

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema")
}

#[test]
fn committed_schemas_match_the_types() {
    let bless = std::env::var_os("MODELSPEC_BLESS").is_some();
    let mut stale = Vec::new();
    for doc in DocType::all() {
        for draft in [Draft::Draft2020_12, Draft::Draft07] {
            let name = format!("{}.{}", doc.file_stem(), draft.file_suffix());
            let path = schema_dir().join(&name);
            let want = schema::render(doc, draft);
            if bless {
                std::fs::write(&path, &want).unwrap();
                continue;
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            if have != want {
                stale.push(name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "schema/ is out of date with the Rust types: {stale:?}\nregenerate with: MODELSPEC_BLESS=1 cargo test -p ms-spec --test schema_drift"
    );
}

#[test]
fn schemas_are_closed_and_draft_specific() {
    let v1 = schema::generate(DocType::V1, Draft::Draft2020_12);
    assert_eq!(
        v1["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(v1["additionalProperties"], false);
    assert!(v1["$defs"]["Artifact"]["properties"]["sha256"]["pattern"].is_string());
    let v07 = schema::generate(DocType::V1, Draft::Draft07);
    assert_eq!(v07["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(v07.get("definitions").is_some() && v07.get("$defs").is_none());
    // No `null` alternatives: optional means absent.
    let text = schema::render(DocType::V1alpha1, Draft::Draft2020_12);
    assert!(!text.contains("\"null\""), "{text}");
    // Upstream v1alpha1 requirements, field for field.
    let alpha = schema::generate(DocType::V1alpha1, Draft::Draft2020_12);
    let model = &alpha["$defs"]["Model"];
    assert_eq!(
        model["required"],
        serde_json::json!(["id", "family", "task", "framework"])
    );
    assert_eq!(
        alpha["$defs"]["Accelerator"]["required"],
        serde_json::json!(["vendor", "type", "count"])
    );
    assert_eq!(
        alpha["$defs"]["Accelerator"]["properties"]["count"]["minimum"],
        1
    );
}
