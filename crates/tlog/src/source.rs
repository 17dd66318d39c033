//! Where a verifier reads a log from: a `TileSource` serves the signed checkpoint and tiles by
//! path (a directory laid out as tlog-tiles here; over HTTP in the registry), and `MemoryLog`
//! builds a log in memory and publishes it (tests, tools, benchmarks).

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ms_trust::Signer;
use ms_trust::codes::MT0614;

use crate::checkpoint::Checkpoint;
use crate::entries::encode_entries;
use crate::error::{Result, TlogError};
use crate::hash::Hash;
use crate::note;
use crate::stored::{HashReader, append_entry, check_size, tree_hash};
use crate::tile::{
    TILE_HEIGHT, TILE_WIDTH, Tile, entries_tiles_for_size, subtree_hash, tile_bytes,
    tile_for_index, tile_hashes, tiles_for_size,
};

/// A log as tlog-tiles serves it.
pub trait TileSource {
    /// The latest signed checkpoint note.
    fn checkpoint(&self) -> Result<String>;
    /// The bytes at `path` (`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`).
    fn tile(&self, path: &str) -> Result<Vec<u8>>;
}

/// A directory laid out as tlog-tiles: `<dir>/checkpoint`, `<dir>/tile/…`.
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| TlogError::new(MT0614, format!("cannot read {}: {e}", path.display())))
}

impl TileSource for DirSource {
    fn checkpoint(&self) -> Result<String> {
        let p = self.dir.join("checkpoint");
        String::from_utf8(read(&p)?)
            .map_err(|_| TlogError::new(MT0614, format!("{} is not UTF-8 text", p.display())))
    }

    fn tile(&self, path: &str) -> Result<Vec<u8>> {
        // Only canonical tile paths: never a path that climbs out of the directory.
        Tile::parse(path)?;
        read(&self.dir.join(path))
    }
}

/// Stored hashes read from the tiles of a tree of `size` records, as a source serves them: with
/// it a client computes an inclusion or consistency proof from tiles alone, and checks it
/// against the signed checkpoint's root (a tile that lies makes the check fail). Tiles are
/// fetched once each.
pub struct TileHashReader<'a> {
    source: &'a dyn TileSource,
    size: u64,
    cache: RefCell<HashMap<Tile, Vec<Hash>>>,
}

impl<'a> TileHashReader<'a> {
    pub fn new(source: &'a dyn TileSource, size: u64) -> Result<Self> {
        check_size("tree size", size)?;
        Ok(Self {
            source,
            size,
            cache: RefCell::new(HashMap::new()),
        })
    }

    /// The tile holding `smallest` as the tree of `self.size` records serves it (full, or
    /// partial at the right edge).
    fn served(&self, smallest: &Tile) -> Option<Tile> {
        let nodes = self.size >> (TILE_HEIGHT * smallest.level);
        let start = smallest.n.checked_mul(u64::from(TILE_WIDTH))?;
        let width = nodes.checked_sub(start)?.min(u64::from(TILE_WIDTH)) as u32;
        (width >= smallest.width).then(|| Tile::hashes(smallest.level, smallest.n, width))
    }
}

impl HashReader for TileHashReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        indexes
            .iter()
            .map(|&index| {
                let (smallest, start, end) = tile_for_index(index);
                let tile = self.served(&smallest).ok_or_else(|| {
                    TlogError::new(
                        MT0614,
                        format!(
                            "stored hash {index} is not in the tiles of a tree of {} records",
                            self.size
                        ),
                    )
                })?;
                let mut cache = self.cache.borrow_mut();
                let hashes = match cache.entry(tile) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let bytes = self.source.tile(&tile.path())?;
                        e.insert(tile_hashes(&tile, &bytes)?)
                    }
                };
                Ok(subtree_hash(&hashes[start..end]))
            })
            .collect()
    }
}

/// Checkpoint and tiles held in memory, by path: what `MemoryLog::publish` produces; tests
/// alter it to play a dishonest server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySource {
    pub checkpoint: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl TileSource for MemorySource {
    fn checkpoint(&self) -> Result<String> {
        Ok(self.checkpoint.clone())
    }

    fn tile(&self, path: &str) -> Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| TlogError::new(MT0614, format!("the log serves no `{path}`")))
    }
}

impl MemorySource {
    /// Writes the checkpoint and tiles into `dir` (a static tlog-tiles mirror).
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        let io = |p: &Path, e: std::io::Error| {
            TlogError::new(MT0614, format!("cannot write {}: {e}", p.display()))
        };
        for (path, bytes) in &self.files {
            let p = dir.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
        }
        let p = dir.join("checkpoint");
        std::fs::write(&p, &self.checkpoint).map_err(|e| io(&p, e))
    }
}

/// A log kept in memory: entries and their stored hashes.
#[derive(Debug, Clone)]
pub struct MemoryLog {
    pub origin: String,
    pub entries: Vec<Vec<u8>>,
    pub hashes: Vec<Hash>,
}

impl MemoryLog {
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_string(),
            entries: Vec::new(),
            hashes: Vec::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn append(&mut self, entry: &[u8]) -> Result<u64> {
        let n = append_entry(&mut self.hashes, entry)?;
        self.entries.push(entry.to_vec());
        Ok(n)
    }

    /// The checkpoint of the first `size` records.
    pub fn checkpoint(&self, size: u64) -> Result<Checkpoint> {
        Ok(Checkpoint::new(
            &self.origin,
            size,
            tree_hash(size, &self.hashes)?,
        ))
    }

    /// The checkpoint of the first `size` records signed by the log key `key_name`, and every
    /// tile of that tree.
    pub fn publish(&self, size: u64, key_name: &str, signer: &dyn Signer) -> Result<MemorySource> {
        let cp = self.checkpoint(size)?;
        let mut files = BTreeMap::new();
        for t in tiles_for_size(size) {
            files.insert(t.path(), tile_bytes(&t, &self.hashes)?);
        }
        for t in entries_tiles_for_size(size) {
            let start = t.start() as usize;
            let end = start + t.width as usize;
            files.insert(t.path(), encode_entries(&self.entries[start..end])?);
        }
        Ok(MemorySource {
            checkpoint: note::sign(&cp.body(), key_name, signer)?,
            files,
        })
    }
}
