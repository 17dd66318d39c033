//! C2SP tlog-tiles: the tree cut into tiles of height 8. A hash tile at level L, number N,
//! holds the W ≤ 256 consecutive hashes of tree level 8·L that start at node N·256; its path is
//! `tile/<L>/<N>[.p/<W>]`, N written in 3-digit groups (`x001/x234/067`), `.p/<W>` only for a
//! partial tile. An entries tile `tile/entries/<N>[.p/<W>]` holds the entries of the records a
//! level-0 tile covers.

use ms_trust::codes::MT0604;

use crate::error::{Result, TlogError};
use crate::hash::{Hash, node_hash};
use crate::stored::{
    HashReader, MAX_TREE_SIZE, read_exact, split_stored_hash_index, stored_hash_index,
};

/// Height of every tile of this log (C2SP tlog-tiles fixes it at 8).
pub const TILE_HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;

/// One tile: `width` hashes of tree level `height·level` from node `n·2^height`, or (when
/// `entries`) the entries of records `n·256 .. n·256 + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub height: u32,
    pub level: u32,
    pub n: u64,
    pub width: u32,
    pub entries: bool,
}

fn bad(path: &str, why: &str) -> TlogError {
    TlogError::new(MT0604, format!("tile path `{path}`: {why}"))
}

impl Tile {
    /// A hash tile of this log's height.
    pub fn hashes(level: u32, n: u64, width: u32) -> Self {
        Self {
            height: TILE_HEIGHT,
            level,
            n,
            width,
            entries: false,
        }
    }

    /// An entries tile (the entries of the records level-0 tile `n` covers).
    pub fn entries(n: u64, width: u32) -> Self {
        Self {
            height: TILE_HEIGHT,
            level: 0,
            n,
            width,
            entries: true,
        }
    }

    pub fn is_entries(&self) -> bool {
        self.entries
    }

    pub fn is_full(&self) -> bool {
        self.width == 1 << self.height
    }

    /// The same tile at full width.
    pub fn full(&self) -> Self {
        Self {
            width: 1 << self.height,
            ..*self
        }
    }

    /// The entries tile covering the same records as this level-0 hash tile (and back).
    pub fn with_entries(&self, entries: bool) -> Self {
        Self { entries, ..*self }
    }

    /// The path relative to the log's prefix: `tile/<L>/<N>[.p/<W>]` or
    /// `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut s = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            s = format!("x{:03}/{s}", n % 1000);
        }
        let level = if self.entries {
            "entries".to_string()
        } else {
            self.level.to_string()
        };
        if self.is_full() {
            format!("tile/{level}/{s}")
        } else {
            format!("tile/{level}/{s}.p/{}", self.width)
        }
    }

    /// Parses a path as [`Tile::path`] writes it (and only such a path: the round trip is exact).
    pub fn parse(path: &str) -> Result<Self> {
        if path.len() > 64 {
            return Err(bad(path, "too long for a tile path"));
        }
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad(path, "does not start with `tile/`"))?;
        let (level, rest) = rest.split_once('/').ok_or_else(|| bad(path, "no level"))?;
        let (level, entries) = if level == "entries" {
            (0, true)
        } else {
            let l = parse_decimal(level)
                .ok_or_else(|| bad(path, "the level is not `entries` or a decimal number"))?;
            if l > 63 {
                return Err(bad(path, "the level must be at most 63"));
            }
            (l as u32, false)
        };
        let (digits, width) = match rest.split_once(".p/") {
            Some((d, w)) => {
                let w = parse_decimal(w)
                    .filter(|w| (1..u64::from(TILE_WIDTH)).contains(w))
                    .ok_or_else(|| bad(path, "a partial width must be 1 to 255"))?;
                (d, w as u32)
            }
            None => (rest, TILE_WIDTH),
        };
        let groups: Vec<&str> = digits.split('/').collect();
        let mut n = 0u64;
        for (i, g) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let g = if last {
                *g
            } else {
                g.strip_prefix('x')
                    .ok_or_else(|| bad(path, "every group of N but the last starts with `x`"))?
            };
            if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(path, "N is written in groups of 3 digits"));
            }
            let v: u64 = g.parse().map_err(|_| bad(path, "N is not a number"))?;
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(v))
                .ok_or_else(|| bad(path, "N is too large"))?;
        }
        let tile = Self {
            height: TILE_HEIGHT,
            level,
            n,
            width,
            entries,
        };
        if n > (MAX_TREE_SIZE >> TILE_HEIGHT) {
            return Err(bad(path, "N is beyond the largest log (2^62 records)"));
        }
        if tile.path() != path {
            // Leading `x000/` groups and the like: one tile, one path.
            return Err(bad(
                path,
                &format!("not canonical; the path is `{}`", tile.path()),
            ));
        }
        Ok(tile)
    }

    /// The first record (for level 0 and entries tiles) or node index at this tile's tree level
    /// the tile starts at.
    pub fn start(&self) -> u64 {
        self.n << self.height
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// The hash tiles of a tree of `size` records, level by level (full tiles, then the partial
/// one), as a verifier fetches them.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    new_tiles(0, size)
}

/// The hash tiles of a tree of `size` records, lazily (a size from an untrusted checkpoint can
/// be far larger than any real log: fetching stops at the first tile the source lacks).
pub fn tiles_iter(size: u64) -> impl Iterator<Item = Tile> {
    let h = TILE_HEIGHT;
    (0u32..64)
        .take_while(move |&level| h * level < 64 && size >> (h * level) > 0)
        .flat_map(move |level| {
            let width_n = size >> (h * level);
            let full = width_n >> h;
            let w = (width_n - (full << h)) as u32;
            (0..full)
                .map(move |n| Tile::hashes(level, n, TILE_WIDTH))
                .chain((w > 0).then(|| Tile::hashes(level, full, w)))
        })
}

/// The entries tiles of a tree of `size` records, lazily.
pub fn entries_tiles_iter(size: u64) -> impl Iterator<Item = Tile> {
    tiles_iter(size)
        .take_while(|t| t.level == 0)
        .map(|t| t.with_entries(true))
}

/// The hash tiles that appear or grow when the tree grows from `old` to `new` records.
pub fn new_tiles(old: u64, new: u64) -> Vec<Tile> {
    let h = TILE_HEIGHT;
    let mut tiles = Vec::new();
    let mut level = 0u32;
    while level < 64 && new >> (h * level) > 0 {
        let old_n = if h * level < 64 {
            old >> (h * level)
        } else {
            0
        };
        let new_n = new >> (h * level);
        if old_n != new_n {
            for n in (old_n >> h)..(new_n >> h) {
                tiles.push(Tile::hashes(level, n, TILE_WIDTH));
            }
            let n = new_n >> h;
            let w = (new_n - (n << h)) as u32;
            if w > 0 {
                tiles.push(Tile::hashes(level, n, w));
            }
        }
        level += 1;
        if h * level >= 64 {
            break;
        }
    }
    tiles
}

/// The entries tiles of a tree of `size` records.
pub fn entries_tiles_for_size(size: u64) -> Vec<Tile> {
    new_tiles(0, size)
        .into_iter()
        .filter(|t| t.level == 0)
        .map(|t| t.with_entries(true))
        .collect()
}

/// The bytes of hash tile `tile` (W × 32 bytes), read from the stored hashes.
pub fn tile_bytes(tile: &Tile, r: &dyn HashReader) -> Result<Vec<u8>> {
    if tile.entries {
        return Err(TlogError::new(
            MT0604,
            format!(
                "`{}` is an entries tile: its bytes are the entries, not stored hashes",
                tile.path()
            ),
        ));
    }
    let level = tile.height * tile.level;
    let indexes: Vec<u64> = (0..u64::from(tile.width))
        .map(|i| stored_hash_index(level, tile.start() + i))
        .collect();
    let hashes = read_exact(r, &indexes)?;
    Ok(hashes.concat())
}

/// The stored-hash indexes [`tile_bytes`] reads, for callers that fetch hashes themselves.
pub fn tile_indexes(tile: &Tile) -> Vec<u64> {
    let level = tile.height * tile.level;
    (0..u64::from(tile.width))
        .map(|i| stored_hash_index(level, tile.start() + i))
        .collect()
}

/// The hashes of a hash tile's bytes, checking the length against its width.
pub fn tile_hashes(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>> {
    if data.len() != tile.width as usize * 32 {
        return Err(TlogError::new(
            MT0604,
            format!(
                "tile `{}` holds {} bytes; a tile of width {} holds {} bytes",
                tile.path(),
                data.len(),
                tile.width,
                tile.width as usize * 32
            ),
        ));
    }
    Ok(data
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// The smallest tile holding stored hash `index`, and where in its hashes the hash's subtree
/// lies (`start..end`, in hashes): the hash is the subtree hash of those.
pub fn tile_for_index(index: u64) -> (Tile, usize, usize) {
    let (level, n) = split_stored_hash_index(index);
    let tile_level = level / TILE_HEIGHT;
    let within = level - tile_level * TILE_HEIGHT;
    let tn = (n << within) >> TILE_HEIGHT;
    let n_in = n - ((tn << TILE_HEIGHT) >> within);
    let width = ((n_in + 1) << within) as u32;
    let start = (n_in << within) as usize;
    let end = ((n_in + 1) << within) as usize;
    (Tile::hashes(tile_level, tn, width), start, end)
}

/// The subtree hash of a power-of-two run of hashes.
pub fn subtree_hash(hashes: &[Hash]) -> Hash {
    if hashes.len() == 1 {
        return hashes[0];
    }
    let mid = hashes.len() / 2;
    node_hash(&subtree_hash(&hashes[..mid]), &subtree_hash(&hashes[mid..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp_tlog_tiles() {
        assert_eq!(Tile::hashes(0, 0, 256).path(), "tile/0/000");
        assert_eq!(
            Tile::hashes(1, 1_234_067, 256).path(),
            "tile/1/x001/x234/067"
        );
        assert_eq!(
            Tile::hashes(2, 1_234_067, 8).path(),
            "tile/2/x001/x234/067.p/8"
        );
        assert_eq!(Tile::entries(5, 3).path(), "tile/entries/005.p/3");
        for t in [
            Tile::hashes(0, 0, 256),
            Tile::hashes(63, MAX_TREE_SIZE >> 8, 255),
            Tile::entries(1000, 1),
        ] {
            assert_eq!(Tile::parse(&t.path()).unwrap(), t);
        }
        for bad in [
            "tile/0/x000/001",
            "tile/0/1",
            "tile/00/001",
            "tile/64/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/08",
            "tile/data/001",
            "tiles/0/001",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/001/",
            "tile/0/x018/x446/x744/x073/x709/x551/615",
        ] {
            assert_eq!(Tile::parse(bad).unwrap_err().code, MT0604, "{bad}");
        }
    }

    #[test]
    fn lazy_tiles_are_the_same_tiles() {
        for size in [
            0u64, 1, 255, 256, 257, 65_535, 65_536, 65_537, 70_000, 16_777_216,
        ] {
            assert_eq!(
                tiles_iter(size).collect::<Vec<_>>(),
                tiles_for_size(size),
                "{size}"
            );
            assert_eq!(
                entries_tiles_iter(size).collect::<Vec<_>>(),
                entries_tiles_for_size(size)
            );
        }
        // An absurd size costs nothing until tiles are fetched.
        assert_eq!(tiles_iter(u64::MAX).take(3).count(), 3);
    }

    #[test]
    fn a_tree_of_70000_records_has_these_tiles() {
        let tiles = tiles_for_size(70_000);
        // 273 full level-0 tiles and one of 112; one full level-1 tile and one of 17; one
        // level-2 tile of width 1.
        assert_eq!(tiles.iter().filter(|t| t.level == 0).count(), 274);
        assert_eq!(tiles[273], Tile::hashes(0, 273, 112));
        assert_eq!(tiles[274], Tile::hashes(1, 0, 256));
        assert_eq!(tiles[275], Tile::hashes(1, 1, 17));
        assert_eq!(tiles[276], Tile::hashes(2, 0, 1));
        assert_eq!(tiles.len(), 277);
    }
}
