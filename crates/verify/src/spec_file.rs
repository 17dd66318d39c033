//! The spec being verified: its declarations as ms-runtime reads them for serving
//! ([`ModelSpecInfo`], the typed document included) and the position of every declaration, so
//! that a report can point at the line that made the claim.

use std::path::{Path, PathBuf};

use ms_runtime::ModelSpecInfo;
use ms_spec::yaml::Node;

use crate::VerifyError;

pub struct SpecFile {
    /// As the user named it.
    pub name: String,
    pub path: PathBuf,
    /// What the spec declares, read once (the same reading `serve` uses).
    pub info: ModelSpecInfo,
    /// The YAML tree of the ModelSpec document, for positions.
    root: Option<Node>,
}

impl SpecFile {
    /// Reads and validates `path`; an invalid spec is an input error (every finding listed).
    pub fn load(path: &Path) -> Result<SpecFile, VerifyError> {
        let name = path.display().to_string();
        let doc = ms_spec::load_model_spec(path).map_err(|diags| VerifyError::Spec {
            file: name.clone(),
            problems: diags
                .iter()
                .filter(|d| d.severity == ms_spec::Severity::Error)
                .map(|d| {
                    if d.line > 0 {
                        format!(
                            "{}:{}:{}: [{}] {}",
                            d.file, d.line, d.column, d.code, d.message
                        )
                    } else {
                        format!("{}: [{}] {}", d.file, d.code, d.message)
                    }
                })
                .collect(),
        })?;
        let root = ms_spec::source::load(&name).ok().and_then(|src| {
            ms_spec::yaml::parse(&src)
                .documents
                .into_iter()
                .map(|d| d.root)
                .find(|r| r.get("kind").is_some_and(|k| k.to_json() == "ModelSpec"))
        });
        Ok(SpecFile {
            name,
            path: path.to_path_buf(),
            info: ModelSpecInfo::from_document(path, doc),
            root,
        })
    }

    /// 1-based line and column of the declaration at `pointer` (its key when it is a mapping
    /// value), else of its nearest existing parent; (0, 0) when the tree is unknown (a
    /// v1alpha1 spec is checked in its upgraded form, whose pointers differ).
    pub fn position(&self, pointer: &str) -> (u32, u32) {
        let Some(root) = &self.root else {
            return (0, 0);
        };
        let pos = match root.lookup(pointer) {
            Some((node, key)) => key.unwrap_or(node.start),
            None => root.nearest(pointer).start,
        };
        (pos.line, pos.col)
    }

    /// The directory relative artifact paths resolve against.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}
