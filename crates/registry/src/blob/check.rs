//! fsck for the blob store: every blob re-hashed once (and every chaining state its chunk
//! index stores compared with the one the hash passes through, see `read.rs`),
//! files under `blobs/` that are not blobs, chunk indexes without a blob, and uploads left
//! by dead writers; `gc_uploads` removes the latter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::blob::BlobStore;
use crate::blob::backend::Entry;
use crate::blob::codes::*;
use crate::blob::hash::{ChunkedSha256, hex_states};
use crate::blob::layout::{self, BlobEntry, UploadId};
use crate::blob::read::ChunkIndex;
use crate::blob::session::join_error;
use crate::digest::Digest;
use crate::entity::CheckProblem;
use crate::error::Result;

/// What `check()` did and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobCheck {
    pub blobs_checked: u64,
    pub bytes_hashed: u64,
    /// Empty when healthy.
    pub problems: Vec<CheckProblem>,
    /// Uploads younger than the store's `upload_ttl`: perhaps still being written, invisible
    /// to readers, not problems.
    pub uploads_in_progress: Vec<String>,
}

fn problem(code: &str, subject: String, message: String) -> CheckProblem {
    CheckProblem {
        code: code.to_string(),
        subject,
        message,
    }
}

/// An upload's entries under `uploads/`, by session id or temp file name.
struct Upload {
    name: String,
    id: Option<UploadId>,
    newest: SystemTime,
}

fn uploads(entries: Vec<Entry>, problems: &mut Vec<CheckProblem>) -> Vec<Upload> {
    let mut by_name: BTreeMap<String, Upload> = BTreeMap::new();
    for e in entries {
        let rest = e
            .key
            .strip_prefix(layout::UPLOADS)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(&e.key);
        let (first, nested) = match rest.split_once('/') {
            Some((f, _)) => (f, true),
            None => (rest, false),
        };
        let id = if nested {
            UploadId::parse(first).ok()
        } else {
            first
                .strip_suffix(".tmp")
                .and_then(|s| UploadId::parse(s).ok())
        };
        if id.is_none() {
            problems.push(problem(
                MG0153,
                format!("file:{}", e.key),
                format!("{} is not part of an upload", e.key),
            ));
            continue;
        }
        let u = by_name.entry(first.to_string()).or_insert(Upload {
            name: first.to_string(),
            id: if nested { id } else { None },
            newest: SystemTime::UNIX_EPOCH,
        });
        u.newest = u.newest.max(e.modified);
    }
    by_name.into_values().collect()
}

fn older_than(t: SystemTime, age: Duration) -> bool {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d > age)
        .unwrap_or(false)
}

impl BlobStore {
    /// Re-hashes every blob and reports what is wrong (see [`BlobCheck`]).
    pub async fn check(&self) -> Result<BlobCheck> {
        let mut report = BlobCheck::default();
        let ttl = self.opts.upload_ttl;
        let mut blobs = Vec::new();
        let mut indexes = BTreeMap::new();
        for e in self.storage.list("blobs").await? {
            match layout::parse_blob_key(&e.key) {
                BlobEntry::Blob(d) => blobs.push((d, e.size)),
                BlobEntry::Chunks(d) => {
                    indexes.insert(d, e.modified);
                }
                BlobEntry::Stray => report.problems.push(problem(
                    MG0153,
                    format!("file:{}", e.key),
                    format!("{} is not a blob: its name is not its digest", e.key),
                )),
            }
        }
        let blob_set: BTreeSet<Digest> = blobs.iter().map(|(d, _)| *d).collect();
        for (d, modified) in &indexes {
            if !blob_set.contains(d) && older_than(*modified, ttl) {
                report.problems.push(problem(
                    MG0155,
                    format!("blob:{d}"),
                    format!("a chunk index for {d} exists without its blob"),
                ));
            }
        }
        for (d, size) in blobs {
            self.check_blob(&d, size, &mut report).await?;
        }
        let entries = self.storage.list(layout::UPLOADS).await?;
        for u in uploads(entries, &mut report.problems) {
            if older_than(u.newest, ttl) {
                report.problems.push(problem(
                    MG0154,
                    format!("upload:{}", u.name),
                    format!(
                        "upload {} was last written more than {} s ago: its writer is gone",
                        u.name,
                        ttl.as_secs()
                    ),
                ));
            } else {
                report.uploads_in_progress.push(u.name);
            }
        }
        Ok(report)
    }

    async fn check_blob(&self, d: &Digest, size: u64, report: &mut BlobCheck) -> Result<()> {
        let subject = format!("blob:{d}");
        let index = self.storage.get_small(&layout::chunks_key(d)).await?;
        let parsed = index.as_ref().map(|b| ChunkIndex::parse(b, d, size));
        // The index's chunk size, so that the states the hash passes through are comparable
        // with the stored ones (any multiple of 64 is valid, a parsed index has one).
        let chunk_size = match &parsed {
            Some(Ok(i)) => i.chunk_size,
            _ => self.opts.chunk_size,
        };
        let mut stream = self.storage.stream(&layout::blob_key(d), 0..size);
        let mut hash = ChunkedSha256::new(chunk_size);
        let mut read_error = None;
        while let Some(next) = stream.next().await {
            match next {
                Ok(bytes) => {
                    hash = tokio::task::spawn_blocking(move || {
                        hash.update(&bytes);
                        hash
                    })
                    .await
                    .map_err(join_error)?;
                }
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        report.blobs_checked += 1;
        report.bytes_hashed += hash.len();
        if let Some(e) = read_error {
            report.problems.push(problem(
                MG0150,
                subject,
                format!("reading it failed after {} bytes: {e}", hash.len()),
            ));
            return Ok(());
        }
        let got = hash.finish();
        if got != *d || hash.len() != size {
            report.problems.push(problem(
                MG0150,
                subject,
                format!("its {} bytes hash to {got}", hash.len()),
            ));
            return Ok(());
        }
        match parsed {
            None => report.problems.push(problem(
                MG0151,
                subject,
                "it has no chunk index (.chunks): its ranges cannot be verified".into(),
            )),
            Some(Err(e)) => report
                .problems
                .push(problem(MG0152, subject, e.message.clone())),
            Some(Ok(i)) => {
                let found = hash.midstates();
                if let Some(k) = (0..found.len()).find(|&k| i.states.get(k) != Some(&found[k])) {
                    report.problems.push(problem(
                        MG0152,
                        subject,
                        format!(
                            "its chunk index does not match its bytes: the state at the start \
                             of chunk {k} (byte {}) is {}, the bytes give {}",
                            k as u64 * chunk_size,
                            i.states
                                .get(k)
                                .map(hex_states::to_hex)
                                .unwrap_or_else(|| "missing".into()),
                            hex_states::to_hex(&found[k])
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Removes uploads (sessions and temporary files) last written more than `older_than`
    /// ago, aborting their S3 multipart uploads; a session being written by this or (locally)
    /// another process is skipped. Returns what was removed.
    pub async fn gc_uploads(&self, older_than_age: Duration) -> Result<Vec<String>> {
        let mut ignored = Vec::new();
        let entries = self.storage.list(layout::UPLOADS).await?;
        let mut removed = Vec::new();
        for u in uploads(entries, &mut ignored) {
            if !older_than(u.newest, older_than_age) {
                continue;
            }
            match &u.id {
                Some(id) => {
                    let Ok(_held) = self.hold(id) else { continue };
                    // Busy: another process is writing it. Not found: a session that died
                    // before its data file existed; remove what there is.
                    let _lock = match self.storage.lock_upload(id).await {
                        Ok(lock) => lock,
                        Err(e) if e.code == MG0113 => continue,
                        Err(_) => None,
                    };
                    let state = self.load(id).await.ok();
                    self.storage.remove_upload(id, state.as_ref()).await?;
                }
                None => {
                    self.storage
                        .delete(&format!("{}/{}", layout::UPLOADS, u.name))
                        .await?
                }
            }
            removed.push(u.name);
        }
        Ok(removed)
    }
}
