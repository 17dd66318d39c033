//! The specRef graph: which spec files refer to which, loaded lazily and shared by all files
//! of a run, so that 10,000 specs referring to the same guardrail read it once.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::source;
use crate::yaml;

/// Upper bound on files explored when looking for a cycle.
const MAX_EXPLORED: usize = 10_000;

/// Where a reference points.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A URI with a scheme (https://, s3://...): not resolved offline.
    Remote,
    /// A local path that does not exist (as joined with the base directory).
    Missing(PathBuf),
    /// An existing file, canonicalized.
    Found(PathBuf),
}

/// Resolves `reference` relative to `base` (the referring file's directory).
pub fn resolve(base: &Path, reference: &str) -> Target {
    if let Some((scheme, _)) = reference.split_once("://") {
        if scheme == "file" {
            return resolve(base, reference.trim_start_matches("file://"));
        }
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return Target::Remote;
        }
    }
    // `a/./b` reads badly in findings; `..` is kept (it may cross a symlink).
    let joined: PathBuf = base
        .join(reference)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    match joined.canonicalize() {
        Ok(p) if p.is_file() => Target::Found(p),
        _ => Target::Missing(joined),
    }
}

/// What a referenced file is, as far as the graph cares.
#[derive(Debug, Clone, PartialEq)]
pub struct RefNode {
    /// `kind` of the first document, or why it could not be read.
    pub kind: Result<String, String>,
    /// Local specRef targets of its dependencies.
    pub refs: Vec<PathBuf>,
}

#[derive(Default)]
pub struct RefGraph {
    nodes: HashMap<PathBuf, RefNode>,
}

impl RefGraph {
    /// The node for a canonical path, reading the file on first use.
    pub fn node(&mut self, path: &Path) -> &RefNode {
        if !self.nodes.contains_key(path) {
            let node = read_node(path);
            self.nodes.insert(path.to_path_buf(), node);
        }
        &self.nodes[path]
    }

    /// A chain `from -> ... -> to` of specRefs, if `to` is reachable from `from`.
    pub fn path_between(&mut self, from: &Path, to: &Path) -> Option<Vec<PathBuf>> {
        let mut parent: HashMap<PathBuf, PathBuf> = HashMap::new();
        let mut queue = VecDeque::from([from.to_path_buf()]);
        let mut seen = 1usize;
        while let Some(cur) = queue.pop_front() {
            if cur == to {
                let mut chain = vec![cur.clone()];
                let mut at = cur;
                while let Some(p) = parent.get(&at) {
                    chain.push(p.clone());
                    at = p.clone();
                }
                chain.reverse();
                return Some(chain);
            }
            let refs = self.node(&cur).refs.clone();
            for next in refs {
                if next != from && !parent.contains_key(&next) && seen < MAX_EXPLORED {
                    seen += 1;
                    parent.insert(next.clone(), cur.clone());
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

fn read_node(path: &Path) -> RefNode {
    let name = path.to_string_lossy();
    let src = match source::load(&name) {
        Ok(s) => s,
        Err(e) => {
            return RefNode {
                kind: Err(e.into_diagnostic().message),
                refs: Vec::new(),
            };
        }
    };
    let parsed = yaml::parse(&src);
    if let Some(d) = parsed.diagnostics.first() {
        return RefNode {
            kind: Err(format!("{} at line {}", d.message, d.line)),
            refs: Vec::new(),
        };
    }
    let Some(doc) = parsed.documents.first() else {
        return RefNode {
            kind: Err("the file is empty".into()),
            refs: Vec::new(),
        };
    };
    let value = doc.root.to_json();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "it has no `kind`".to_owned());
    let base = src.base_dir();
    let refs = value
        .pointer("/spec/pipeline/dependencies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("specRef").and_then(Value::as_str))
        .filter_map(|r| match resolve(&base, r) {
            Target::Found(p) => Some(p),
            _ => None,
        })
        .collect();
    RefNode { kind, refs }
}
