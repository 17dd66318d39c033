//! What a verifier keeps between runs, per log origin: the last checkpoint it verified (the
//! signed note) and the full tiles of that tree (which never change once full), plus, as
//! evidence, any signed checkpoint that contradicted them. On disk each file is written to a
//! temporary name and renamed, so a kill leaves the old state or the new.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ms_trust::codes::MT0613;
use sha2::{Digest, Sha256};

use crate::error::{Result, TlogError};
use crate::tile::Tile;

/// Storage of a verifier's state.
pub trait StateStore {
    /// The last verified checkpoint note of `origin`.
    fn checkpoint(&self, origin: &str) -> Result<Option<String>>;
    /// A kept full tile of `origin`.
    fn tile(&self, origin: &str, path: &str) -> Result<Option<Vec<u8>>>;
    /// Keeps full tiles, then the checkpoint note (in that order: the checkpoint is the commit).
    fn save(&mut self, origin: &str, checkpoint: &str, tiles: &[(String, Vec<u8>)]) -> Result<()>;
    /// Keeps a signed checkpoint that contradicts the kept one (a fork or a truncation signed
    /// by the log key is proof of misbehaviour worth showing to others). Returns where.
    fn keep_evidence(&mut self, origin: &str, checkpoint: &str) -> Result<Option<String>> {
        let _ = (origin, checkpoint);
        Ok(None)
    }
}

/// State in memory (tests, property tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    pub checkpoints: BTreeMap<String, String>,
    pub tiles: BTreeMap<(String, String), Vec<u8>>,
    /// (origin, checkpoint note) kept as evidence.
    pub evidence: Vec<(String, String)>,
}

impl StateStore for MemoryState {
    fn checkpoint(&self, origin: &str) -> Result<Option<String>> {
        Ok(self.checkpoints.get(origin).cloned())
    }

    fn tile(&self, origin: &str, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tiles
            .get(&(origin.to_string(), path.to_string()))
            .cloned())
    }

    fn save(&mut self, origin: &str, checkpoint: &str, tiles: &[(String, Vec<u8>)]) -> Result<()> {
        for (p, b) in tiles {
            self.tiles
                .insert((origin.to_string(), p.clone()), b.clone());
        }
        self.checkpoints
            .insert(origin.to_string(), checkpoint.to_string());
        Ok(())
    }

    fn keep_evidence(&mut self, origin: &str, checkpoint: &str) -> Result<Option<String>> {
        self.evidence
            .push((origin.to_string(), checkpoint.to_string()));
        Ok(Some(format!("evidence #{}", self.evidence.len())))
    }
}

/// State in a directory: `<dir>/<origin key>/checkpoint` and `<dir>/<origin key>/tile/…`.
pub struct DirState {
    dir: PathBuf,
}

fn io_err(p: &Path, e: std::io::Error) -> TlogError {
    TlogError::new(MT0613, format!("verifier state {}: {e}", p.display()))
}

impl DirState {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory of one origin: its name made file-safe, plus a hash so that two origins
    /// never share one.
    pub fn origin_dir(&self, origin: &str) -> PathBuf {
        let safe: String = origin
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let h = Sha256::digest(origin.as_bytes());
        self.dir.join(format!(
            "{safe}-{:02x}{:02x}{:02x}{:02x}",
            h[0], h[1], h[2], h[3]
        ))
    }

    fn read(&self, p: &Path) -> Result<Option<Vec<u8>>> {
        match std::fs::read(p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(p, e)),
        }
    }

    fn write_atomic(p: &Path, bytes: &[u8]) -> Result<()> {
        let parent = p.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, p).map_err(|e| io_err(p, e))
    }
}

impl StateStore for DirState {
    fn checkpoint(&self, origin: &str) -> Result<Option<String>> {
        let p = self.origin_dir(origin).join("checkpoint");
        match self.read(&p)? {
            None => Ok(None),
            Some(b) => String::from_utf8(b).map(Some).map_err(|_| {
                TlogError::new(
                    MT0613,
                    format!("{} is not text: move it aside", p.display()),
                )
            }),
        }
    }

    fn tile(&self, origin: &str, path: &str) -> Result<Option<Vec<u8>>> {
        Tile::parse(path)?;
        self.read(&self.origin_dir(origin).join(path))
    }

    fn save(&mut self, origin: &str, checkpoint: &str, tiles: &[(String, Vec<u8>)]) -> Result<()> {
        let dir = self.origin_dir(origin);
        for (path, bytes) in tiles {
            Tile::parse(path)?;
            let p = dir.join(path);
            if !p.exists() {
                Self::write_atomic(&p, bytes)?;
            }
        }
        Self::write_atomic(&dir.join("checkpoint"), checkpoint.as_bytes())
    }

    fn keep_evidence(&mut self, origin: &str, checkpoint: &str) -> Result<Option<String>> {
        let h = Sha256::digest(checkpoint.as_bytes());
        let name: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
        let p = self
            .origin_dir(origin)
            .join("evidence")
            .join(format!("{name}.note"));
        if !p.exists() {
            Self::write_atomic(&p, checkpoint.as_bytes())?;
        }
        Ok(Some(p.display().to_string()))
    }
}
