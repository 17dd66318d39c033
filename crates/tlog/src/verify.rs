//! The offline verifier: reads a log's signed checkpoint and every tile, recomputes every hash,
//! checks the signatures against trusted keys and the tree against the checkpoint it kept from
//! its last run, and returns a `Diagnosis` naming exactly what differs: an entry changed,
//! removed or reordered, a hash tile changed, the log truncated or forked, a bad signature.

use std::collections::HashMap;
use std::fmt;

use ms_trust::codes::{MT0604, MT0605, MT0606, MT0608, MT0611, MT0612, MT0613};

use crate::checkpoint::Checkpoint;
use crate::entries::entry_spans;
use crate::error::{Result, TlogError};
use crate::hash::{Hash, hex, leaf_hash, node_hash};
use crate::note::{self, Verifier};
use crate::source::TileSource;
use crate::state::StateStore;
use crate::stored::{MAX_TREE_SIZE, stored_hash_index, tree_hash};
use crate::tile::{
    TILE_WIDTH, Tile, entries_tiles_iter, tile_bytes, tile_hashes, tiles_for_size, tiles_iter,
};

/// The keys a verifier trusts for one log.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The origin the checkpoint must name (None: any origin the log key signs).
    pub origin: Option<String>,
    /// The log's note key.
    pub log: Verifier,
    /// Witness cosignature keys.
    pub witnesses: Vec<Verifier>,
    /// How many of those witnesses must have cosigned the checkpoint.
    pub witness_quorum: usize,
}

impl Trust {
    pub fn log(log: Verifier) -> Self {
        Self {
            origin: None,
            log,
            witnesses: Vec::new(),
            witness_quorum: 0,
        }
    }
}

/// Options of one verification.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A checkpoint note the caller trusts (`--since`): the log must extend it.
    pub since: Option<String>,
    /// Entries are JSON objects whose `seq` field is their 1-based position: check it and use it
    /// to name changed and reordered entries.
    pub check_seq: bool,
}

/// One thing found wrong. Entries are named by their 1-based sequence number (`seq` = index + 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The checkpoint's signature by the log key is missing or does not verify.
    BadSignature { message: String },
    /// The checkpoint or its note is malformed, or names another origin.
    BadCheckpoint { message: String },
    /// Fewer trusted witnesses cosigned than required.
    NotWitnessed { cosigned: usize, required: usize },
    /// The log is smaller than a checkpoint verified before.
    Truncated { kept_size: u64, size: u64 },
    /// A tree of `size` records with another root than one verified before (or cosigned).
    Forked {
        size: u64,
        kept_root: Hash,
        root: Hash,
        /// The first entry (seq) whose leaf hash differs from the kept tiles, when known.
        first_difference: Option<u64>,
    },
    /// Neither the entries nor the hash tiles reproduce the signed root, and no kept tiles
    /// cover the part that differs.
    TreeMismatch { size: u64 },
    /// The entry at 1-based position `seq` is not the one the signed tree commits to.
    Changed { seq: u64, position: u64 },
    /// The entries `first..=last` (seq) are missing.
    Removed { first: u64, last: u64 },
    /// The entry served at position `position` (1-based) is entry `carries` of the tree.
    Reordered { position: u64, carries: u64 },
    /// An entry at `position` that the signed tree does not contain.
    Inserted { position: u64 },
    /// A hash tile differs from the hashes of the entries the signed tree commits to.
    TileChanged { path: String, first_hash: u64 },
    /// A tile cannot be decoded.
    MalformedTile { path: String, message: String },
}

impl Finding {
    /// A stable one-word name of the kind of finding (for JSON output and scripts).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } => "bad-signature",
            Self::BadCheckpoint { .. } => "bad-checkpoint",
            Self::NotWitnessed { .. } => "not-witnessed",
            Self::Truncated { .. } => "truncated",
            Self::Forked { .. } => "forked",
            Self::TreeMismatch { .. } => "tree-mismatch",
            Self::Changed { .. } => "changed",
            Self::Removed { .. } => "removed",
            Self::Reordered { .. } => "reordered",
            Self::Inserted { .. } => "inserted",
            Self::TileChanged { .. } => "tile-changed",
            Self::MalformedTile { .. } => "malformed-tile",
        }
    }

    /// The documented code of this kind of finding.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } | Self::NotWitnessed { .. } => MT0608,
            Self::BadCheckpoint { .. } => MT0606,
            Self::Truncated { .. } | Self::Forked { .. } | Self::TreeMismatch { .. } => MT0611,
            Self::Changed { .. }
            | Self::Removed { .. }
            | Self::Reordered { .. }
            | Self::Inserted { .. } => MT0612,
            Self::TileChanged { .. } => MT0604,
            Self::MalformedTile { .. } => MT0605,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSignature { message } => write!(f, "bad signature: {message}"),
            Self::BadCheckpoint { message } => write!(f, "bad checkpoint: {message}"),
            Self::NotWitnessed { cosigned, required } => write!(
                f,
                "not witnessed: {cosigned} trusted witness(es) cosigned, {required} required"
            ),
            Self::Truncated { kept_size, size } => write!(
                f,
                "truncated: the log has {size} entries, but a checkpoint of {kept_size} entries was verified before"
            ),
            Self::Forked {
                size,
                kept_root,
                root,
                first_difference,
            } => {
                write!(
                    f,
                    "forked: the tree of {size} entries has root {} now, {} before",
                    hex(root),
                    hex(kept_root)
                )?;
                if let Some(s) = first_difference {
                    write!(f, "; entry {s} is the first that differs")?;
                }
                Ok(())
            }
            Self::TreeMismatch { size } => write!(
                f,
                "the tiles of {size} entries do not reproduce the signed root, and no kept tiles say which entry differs"
            ),
            Self::Changed { seq, position } if seq == position => write!(
                f,
                "entry {seq} changed: its hash differs from the one the signed tree commits to"
            ),
            Self::Changed { seq, position } => write!(
                f,
                "entry {seq} changed (served at position {position}): its hash differs from the one the signed tree commits to"
            ),
            Self::Removed { first, last } if first == last => write!(f, "entry {first} removed"),
            Self::Removed { first, last } => write!(f, "entries {first} to {last} removed"),
            Self::Reordered { position, carries } => {
                write!(f, "reordered: position {position} carries entry {carries}")
            }
            Self::Inserted { position } => write!(
                f,
                "inserted: the entry at position {position} is not in the signed tree"
            ),
            Self::TileChanged { path, first_hash } => write!(
                f,
                "hash tile {path} changed (hash {first_hash} of the tile differs from the entries')"
            ),
            Self::MalformedTile { path, message } => write!(f, "malformed tile {path}: {message}"),
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// The checkpoint served (when its signature verified).
    pub checkpoint: Option<Checkpoint>,
    /// The checkpoint kept from the last successful run.
    pub previous: Option<Checkpoint>,
    /// Trusted witnesses that cosigned the checkpoint.
    pub cosigned_by: Vec<String>,
    /// Entries whose hashes were recomputed.
    pub entries_checked: u64,
    /// Where a signed checkpoint contradicting the kept one (fork, truncation) was kept.
    pub evidence: Option<String>,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cp) = &self.checkpoint {
            writeln!(
                f,
                "log {} size {} root {}",
                cp.origin,
                cp.size,
                hex(&cp.root)
            )?;
        }
        if let Some(p) = &self.previous {
            writeln!(
                f,
                "previously verified: size {} root {}",
                p.size,
                hex(&p.root)
            )?;
        }
        if !self.cosigned_by.is_empty() {
            writeln!(f, "cosigned by: {}", self.cosigned_by.join(", "))?;
        }
        if self.is_ok() {
            writeln!(f, "ok: {} entries verified", self.entries_checked)
        } else {
            for x in &self.findings {
                writeln!(f, "{}: {x}", x.code())?;
            }
            if let Some(e) = &self.evidence {
                writeln!(
                    f,
                    "the contradicting signed checkpoint is kept as evidence: {e}"
                )?;
            }
            Ok(())
        }
    }
}

/// Stored hashes of a tree built from its leaf hashes (what `stored_hashes_for_leaf` appends
/// record by record, without its per-record allocations).
fn build(leaves: &[Hash]) -> Result<Vec<Hash>> {
    let mut store: Vec<Hash> = Vec::with_capacity(leaves.len() * 2);
    for (i, leaf) in leaves.iter().enumerate() {
        let n = i as u64;
        store.push(*leaf);
        let mut h = *leaf;
        // Each trailing 1 bit of n completes a subtree whose left half is stored.
        for level in 0..(n + 1).trailing_zeros() {
            let left = stored_hash_index(level, (n >> level) - 1) as usize;
            h = node_hash(&store[left], &h);
            store.push(h);
        }
    }
    Ok(store)
}

/// Opens the served checkpoint note with the log's and the witnesses' keys: the checkpoint and
/// the witnesses that cosigned it, or the finding that stops the verification.
fn open_checkpoint(
    note_text: &str,
    trust: &Trust,
) -> std::result::Result<(Checkpoint, Vec<String>), Finding> {
    let mut keys = vec![trust.log.clone()];
    keys.extend(trust.witnesses.iter().cloned());
    let opened = note::open(note_text, &keys).map_err(|e| {
        if e.code == MT0608 {
            Finding::BadSignature { message: e.message }
        } else {
            Finding::BadCheckpoint { message: e.message }
        }
    })?;
    if !opened.signed_by(&trust.log) {
        return Err(Finding::BadSignature {
            message: format!(
                "the checkpoint carries no signature by the log key `{}`",
                trust.log
            ),
        });
    }
    let cp = Checkpoint::parse(opened.body())
        .map_err(|e| Finding::BadCheckpoint { message: e.message })?;
    if let Some(origin) = &trust.origin
        && &cp.origin != origin
    {
        return Err(Finding::BadCheckpoint {
            message: format!("the checkpoint is of log `{}`, not `{origin}`", cp.origin),
        });
    }
    if cp.size > MAX_TREE_SIZE {
        return Err(Finding::BadCheckpoint {
            message: format!("the checkpoint's size {} is beyond any real log", cp.size),
        });
    }
    let cosigned_by = opened
        .verified
        .iter()
        .filter(|v| v.cosigned_at.is_some())
        .map(|v| v.name.clone())
        .collect();
    Ok((cp, cosigned_by))
}

/// Verifies the log `source` serves against `trust` and the state kept in `state`; on success
/// the state is advanced to the verified checkpoint. `Err` only when something could not be
/// read (the source, the state); everything found wrong with the log is in the diagnosis.
pub fn verify(
    source: &dyn TileSource,
    state: &mut dyn StateStore,
    trust: &Trust,
    options: &Options,
) -> Result<Diagnosis> {
    let mut d = Diagnosis::default();
    let note_text = source.checkpoint()?;
    let (cp, cosigned_by) = match open_checkpoint(&note_text, trust) {
        Ok(x) => x,
        Err(finding) => {
            d.findings.push(finding);
            return Ok(d);
        }
    };
    d.cosigned_by = cosigned_by;
    if d.cosigned_by.len() < trust.witness_quorum {
        d.findings.push(Finding::NotWitnessed {
            cosigned: d.cosigned_by.len(),
            required: trust.witness_quorum,
        });
    }
    d.checkpoint = Some(cp.clone());

    // Checkpoints trusted before: the one kept from the last run, and --since.
    let mut refs: Vec<Checkpoint> = Vec::new();
    if let Some(kept) = state.checkpoint(&cp.origin)? {
        let c = note::open(&kept, std::slice::from_ref(&trust.log))
            .and_then(|o| Checkpoint::parse(o.body()))
            .map_err(|e| {
                TlogError::new(
                    MT0613,
                    format!(
                        "the kept checkpoint of `{}` does not open with the log key ({}): the state is damaged or the key changed; move the state aside after looking at it",
                        cp.origin, e.message
                    ),
                )
            })?;
        d.previous = Some(c.clone());
        refs.push(c);
    }
    if let Some(since) = &options.since {
        let c = note::open(since, std::slice::from_ref(&trust.log))
            .and_then(|o| Checkpoint::parse(o.body()))
            .map_err(|e| TlogError::new(e.code, format!("--since: {}", e.message)))?;
        refs.push(c);
    }
    for r in &refs {
        if r.size > cp.size {
            d.findings.push(Finding::Truncated {
                kept_size: r.size,
                size: cp.size,
            });
        } else if r.size == cp.size && r.root != cp.root {
            d.findings.push(Finding::Forked {
                size: r.size,
                kept_root: r.root,
                root: cp.root,
                first_difference: None,
            });
        }
    }
    let n = cp.size;

    // The entries, in served order; None for the entries of a tile that cannot be decoded. The
    // bundles are kept whole and the entries borrowed from them: a million entries cost a few
    // thousand allocations, not a million.
    let mut bundles: Vec<Vec<u8>> = Vec::new();
    let mut spans: Vec<Option<(usize, usize, usize)>> = Vec::with_capacity(n.min(1 << 20) as usize);
    for t in entries_tiles_iter(n) {
        let path = t.path();
        let bytes = source.tile(&path)?;
        match entry_spans(&bytes) {
            Ok(es) => {
                let k = bundles.len();
                spans.extend(es.into_iter().map(|(x, y)| Some((k, x, y))));
            }
            Err(e) => {
                d.findings.push(Finding::MalformedTile {
                    path,
                    message: e.message,
                });
                spans.extend((0..t.width).map(|_| None));
            }
        }
        bundles.push(bytes);
    }
    let served: Vec<Option<&[u8]>> = spans
        .iter()
        .map(|s| s.map(|(k, x, y)| &bundles[k][x..y]))
        .collect();
    drop(spans);
    let leaves: Vec<Option<Hash>> = served.iter().map(|e| e.map(leaf_hash)).collect();

    // The hash tiles.
    let mut served_tiles: Vec<(Tile, Option<Vec<Hash>>)> = Vec::new();
    for t in tiles_iter(n) {
        let path = t.path();
        let bytes = source.tile(&path)?;
        match tile_hashes(&t, &bytes) {
            Ok(h) => served_tiles.push((t, Some(h))),
            Err(e) => {
                d.findings.push(Finding::MalformedTile {
                    path,
                    message: e.message,
                });
                served_tiles.push((t, None));
            }
        }
    }
    let tile_leaves: Option<Vec<Hash>> = served_tiles
        .iter()
        .filter(|(t, _)| t.level == 0)
        .map(|(_, h)| h.clone())
        .collect::<Option<Vec<Vec<Hash>>>>()
        .map(|v| v.concat());

    // The authentic leaf hashes: the entries' or the hash tiles', whichever reproduces the
    // signed root; else the kept full tiles' (verified on an earlier run).
    let mut authentic: Option<(Vec<Hash>, Vec<Hash>)> = None;
    if served.len() as u64 == n
        && let Some(ls) = leaves.iter().copied().collect::<Option<Vec<Hash>>>()
    {
        let store = build(&ls)?;
        if tree_hash(n, &store)? == cp.root {
            authentic = Some((ls, store));
        }
    }
    if authentic.is_none()
        && let Some(tl) = tile_leaves.filter(|tl| tl.len() as u64 == n)
    {
        let store = build(&tl)?;
        if tree_hash(n, &store)? == cp.root {
            authentic = Some((tl, store));
        }
    }
    let full = authentic.is_some();
    let auth: Vec<Hash> = match &authentic {
        Some((a, _)) => a.clone(),
        None => {
            d.findings.push(Finding::TreeMismatch { size: n });
            kept_leaves(state, &cp.origin, n)?
        }
    };
    diagnose_entries(
        &served,
        &leaves,
        &auth,
        full,
        options.check_seq,
        &mut d.findings,
    );
    d.entries_checked = served.len() as u64;

    if let Some((auth, store)) = &authentic {
        // Every served hash tile must be the one the entries give.
        for (t, hashes) in &served_tiles {
            if let Some(h) = hashes {
                let want = tile_hashes(t, &tile_bytes(t, store)?)?;
                if let Some(i) = h.iter().zip(&want).position(|(a, b)| a != b) {
                    d.findings.push(Finding::TileChanged {
                        path: t.path(),
                        first_hash: i as u64,
                    });
                }
            }
        }
        // The tree must extend every checkpoint trusted before.
        let kept = kept_leaves(state, &cp.origin, n)?;
        let first_difference = kept
            .iter()
            .zip(auth)
            .position(|(a, b)| a != b)
            .map(|i| i as u64 + 1);
        for r in &refs {
            if r.size == 0 || r.size >= n {
                continue;
            }
            let root = tree_hash(r.size, store)?;
            if root != r.root {
                d.findings.push(Finding::Forked {
                    size: r.size,
                    kept_root: r.root,
                    root,
                    first_difference,
                });
            }
        }
        for f in d.findings.iter_mut() {
            if let Finding::Forked {
                first_difference: fd @ None,
                ..
            } = f
            {
                *fd = first_difference;
            }
        }
        if d.findings.is_empty() {
            let tiles: Vec<(String, Vec<u8>)> = tiles_for_size(n)
                .into_iter()
                .filter(Tile::is_full)
                .map(|t| Ok((t.path(), tile_bytes(&t, store)?)))
                .collect::<Result<_>>()?;
            state.save(&cp.origin, &note_text, &tiles)?;
        }
    }
    if d.findings
        .iter()
        .any(|f| matches!(f, Finding::Forked { .. } | Finding::Truncated { .. }))
    {
        d.evidence = state.keep_evidence(&cp.origin, &note_text)?;
    }
    Ok(d)
}

/// The leaf hashes of the kept full level-0 tiles of `origin`, up to `n` (stops at the first
/// tile not kept).
fn kept_leaves(state: &dyn StateStore, origin: &str, n: u64) -> Result<Vec<Hash>> {
    let mut out = Vec::new();
    let mut k = 0u64;
    while (k + 1) * u64::from(TILE_WIDTH) <= n {
        let t = Tile::hashes(0, k, TILE_WIDTH);
        let Some(bytes) = state.tile(origin, &t.path())? else {
            break;
        };
        out.extend(tile_hashes(&t, &bytes).map_err(|e| {
            TlogError::new(MT0613, format!("kept tile {}: {}", t.path(), e.message))
        })?);
        k += 1;
    }
    Ok(out)
}

/// The top-level `seq` value of a JSON object entry, and where its digits are. A single pass
/// that tracks strings and nesting, so a `seq` inside a nested object or a string is not taken
/// for the entry's own.
fn seq_of(e: &[u8]) -> Option<(u64, usize, usize)> {
    let mut depth = 0u32;
    let mut i = 0;
    while i < e.len() {
        match e[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < e.len() && e[i] != b'"' {
                    i += if e[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(e.len());
                i += 1;
                if depth == 1 && &e[start..end] == b"seq" {
                    let mut k = i;
                    while k < e.len() && e[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < e.len() && e[k] == b':' {
                        k += 1;
                        while k < e.len() && e[k].is_ascii_whitespace() {
                            k += 1;
                        }
                        let d0 = k;
                        while k < e.len() && e[k].is_ascii_digit() {
                            k += 1;
                        }
                        let v = std::str::from_utf8(&e[d0..k]).ok()?.parse().ok()?;
                        return Some((v, d0, k));
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The entry with its `seq` replaced by `seq`.
fn with_seq(entry: &[u8], seq: u64) -> Option<Vec<u8>> {
    let (_, a, b) = seq_of(entry)?;
    let mut out = entry[..a].to_vec();
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(&entry[b..]);
    Some(out)
}

/// Names the entries that differ between the served ones and the authentic leaf hashes
/// (`auth`: the whole tree when `full`, else a prefix of it).
fn diagnose_entries(
    served: &[Option<&[u8]>],
    leaves: &[Option<Hash>],
    auth: &[Hash],
    full: bool,
    check_seq: bool,
    findings: &mut Vec<Finding>,
) {
    let m = auth.len();
    let considered = if full {
        served.len()
    } else {
        served.len().min(m)
    };
    let in_place = served.len() == m && leaves.iter().zip(auth).all(|(l, a)| l.as_ref() == Some(a));
    if in_place {
        if check_seq {
            for (j, e) in served.iter().enumerate() {
                if let Some((s, _, _)) = e.and_then(seq_of)
                    && s != j as u64 + 1
                {
                    findings.push(Finding::Reordered {
                        position: j as u64 + 1,
                        carries: s,
                    });
                }
            }
        }
        return;
    }
    let mut index_of: HashMap<Hash, Vec<usize>> = HashMap::new();
    for (i, a) in auth.iter().enumerate() {
        index_of.entry(*a).or_default().push(i);
    }
    let mut matched = vec![false; m];
    let mut carried: Vec<Option<usize>> = vec![None; considered];
    // Unreadable positions: their authentic entries are not reported again as removed.
    let mut unknown = vec![false; m];
    for j in 0..considered {
        let Some(h) = leaves[j] else {
            if j < m {
                unknown[j] = true;
            }
            continue;
        };
        if let Some(list) = index_of.get(&h) {
            let pick = if list.contains(&j) && !matched[j] {
                Some(j)
            } else {
                list.iter().copied().find(|&i| !matched[i])
            };
            if let Some(i) = pick {
                matched[i] = true;
                carried[j] = Some(i);
            }
        }
    }
    // An unmatched entry that is another unmatched entry's content under its own seq: moved.
    let unmatched_served: Vec<usize> = (0..considered)
        .filter(|&j| carried[j].is_none() && leaves[j].is_some())
        .collect();
    if check_seq && unmatched_served.len() <= 256 {
        let unmatched_auth: Vec<usize> = (0..m).filter(|&i| !matched[i]).take(256).collect();
        for &j in &unmatched_served {
            let Some(e) = served[j] else {
                continue;
            };
            for &i in &unmatched_auth {
                // i == j would be the entry itself with its seq altered: that is a change.
                if matched[i] || i == j {
                    continue;
                }
                if with_seq(e, i as u64 + 1).is_some_and(|x| leaf_hash(&x) == auth[i]) {
                    matched[i] = true;
                    carried[j] = Some(i);
                    break;
                }
            }
        }
    }
    // Out of order: the carried indexes, compared with the same indexes sorted.
    let order: Vec<(usize, usize)> = carried
        .iter()
        .enumerate()
        .filter_map(|(j, c)| c.map(|i| (j, i)))
        .collect();
    let mut sorted: Vec<usize> = order.iter().map(|&(_, i)| i).collect();
    sorted.sort_unstable();
    for (&(j, i), &s) in order.iter().zip(&sorted) {
        if i != s || (check_seq && i != j && leaves[j] != Some(auth[i])) {
            findings.push(Finding::Reordered {
                position: j as u64 + 1,
                carries: i as u64 + 1,
            });
        }
    }
    // Changed: an entry that matches nothing, named by its seq (or its position).
    let mut claimed = vec![false; m];
    for j in 0..considered {
        if carried[j].is_some() || leaves[j].is_none() {
            continue;
        }
        let by_seq = if check_seq {
            served[j]
                .and_then(seq_of)
                .map(|(s, _, _)| s as usize)
                .filter(|&s| s >= 1 && s <= m && !matched[s - 1] && !claimed[s - 1])
                .map(|s| s - 1)
        } else {
            None
        };
        let target = by_seq.or((j < m && !matched[j] && !claimed[j]).then_some(j));
        match target {
            Some(i) => {
                claimed[i] = true;
                findings.push(Finding::Changed {
                    seq: i as u64 + 1,
                    position: j as u64 + 1,
                });
            }
            None if !full && j >= m => {}
            None => findings.push(Finding::Inserted {
                position: j as u64 + 1,
            }),
        }
    }
    // Removed: authentic entries nobody carries, in runs.
    let mut i = 0;
    while i < m {
        if matched[i] || claimed[i] || unknown[i] {
            i += 1;
            continue;
        }
        let first = i;
        while i < m && !(matched[i] || claimed[i] || unknown[i]) {
            i += 1;
        }
        findings.push(Finding::Removed {
            first: first as u64 + 1,
            last: i as u64,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_the_top_level_field() {
        let e = br#"{"a":{"seq":9},"b":"\"seq\":8","seq":12,"z":[{"seq":7}]}"#;
        let (v, a, b) = seq_of(e).unwrap();
        assert_eq!((v, &e[a..b]), (12, &b"12"[..]));
        assert_eq!(
            with_seq(e, 5).unwrap(),
            br#"{"a":{"seq":9},"b":"\"seq\":8","seq":5,"z":[{"seq":7}]}"#
        );
        assert_eq!(seq_of(br#"{"a":{"seq":9}}"#), None);
        assert_eq!(seq_of(br#"{"seq":"x"}"#), None);
        assert_eq!(seq_of(b"{\"seq"), None);
        assert_eq!(seq_of(b""), None);
    }
}
