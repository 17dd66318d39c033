//! The README's client examples name models of the catalog, and a chat example names a model
//! with a chat template: the default `gemma3-270m` is a base model without one (it echoes a
//! chat), so `chat.completions` examples must use the catalog's chat model.

use ms_fetch::catalog::{self, CHAT_MODEL};

const README: &str = include_str!("../../../README.md");

/// The `model="..."` of every call to `call` (e.g. `chat.completions.create(`) in the README.
fn models_of(call: &str) -> Vec<&'static str> {
    README
        .match_indices(call)
        .filter_map(|(i, _)| {
            let rest = &README[i + call.len()..];
            let m = rest.split_once("model=\"")?.1;
            Some(m.split('"').next().unwrap_or(""))
        })
        .collect()
}

#[test]
fn chat_examples_use_the_chat_model_and_every_example_model_exists() {
    let chats = models_of("chat.completions.create(");
    assert!(!chats.is_empty(), "the README shows a chat request");
    for m in &chats {
        let entry = catalog::find(m).unwrap_or_else(|| panic!("{m} is not a catalog name"));
        assert_eq!(
            entry.name, CHAT_MODEL,
            "the README's chat example uses {m}, a model without a chat template"
        );
    }
    for m in models_of(".completions.create(") {
        assert!(catalog::find(m).is_some(), "{m} is not a catalog name");
    }
}
