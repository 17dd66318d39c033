//! Datasets: a set of files digested as a sorted manifest (one `<sha256 hex>  <size>  <path>\n`
//! line per file, sorted by path; `checksum` = sha256 of that text), registered with what is
//! known about the data. The registry computes the checksum and the `datasetId` (sha256 of the
//! canonical JSON of the record without `createdAt`/`createdBy`) itself: a client cannot send a
//! wrong one. `manifest_of` builds the file list from a file or a directory for the CLI.

use std::io::Read;
use std::path::Path;

use serde_json::json;
use sqlx::Row;

use crate::canonical;
use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::digest::Digest;
use crate::entity::{Dataset, DatasetFile, DatasetRegistration};
use crate::error::{ErrorKind, RegistryError, Result};

/// Longest path in a manifest, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most files in one dataset.
pub const MAX_FILES: usize = 1_000_000;

fn invalid(code: &str, msg: String, pointer: String) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, code, msg).at(pointer)
}

/// A manifest path: relative, `/`-separated, no empty, `.` or `..` components, no NUL or
/// backslash, at most 4096 bytes.
pub fn validate_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "the path is {} bytes, above {MAX_PATH_BYTES}",
            path.len()
        ));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err("the path contains NUL or a backslash".into());
    }
    if path.starts_with('/') {
        return Err("the path is absolute".into());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("the path has an empty, `.` or `..` component".into());
    }
    Ok(())
}

/// The manifest text of `files` (sorted by path here, whatever order they came in).
pub fn manifest_text(files: &[DatasetFile]) -> String {
    let mut sorted: Vec<&DatasetFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = String::new();
    for f in sorted {
        out.push_str(&format!("{}  {}  {}\n", f.sha256.hex(), f.size, f.path));
    }
    out
}

/// sha256 of the manifest text.
pub fn manifest_checksum(files: &[DatasetFile]) -> Digest {
    Digest::of(manifest_text(files).as_bytes())
}

/// The `datasetId` of a record: canonical JSON without `createdAt`, `createdBy` and `files`
/// (the checksum covers the files).
pub fn dataset_id(d: &Dataset) -> Digest {
    let mut v = serde_json::to_value(d).expect("records serialize");
    if let serde_json::Value::Object(m) = &mut v {
        for k in ["datasetId", "createdAt", "createdBy", "files"] {
            m.remove(k);
        }
    }
    Digest::of(canonical::to_string(&v).as_bytes())
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(invalid(
        codes::MG0310,
        format!("dataset name {name:?} is not allowed"),
        "/name".into(),
    )
    .hint("1 to 128 letters, digits, `.`, `_`, `-`, starting with a letter or digit"))
}

fn validate_license(l: &str) -> Result<()> {
    let ok = !l.trim().is_empty()
        && l.len() <= 256
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+-() :".contains(&b));
    if ok {
        return Ok(());
    }
    Err(invalid(
        codes::MG0304,
        format!("license {l:?} is not an SPDX identifier or expression"),
        "/license".into(),
    )
    .hint("e.g. --license CC-BY-4.0, Apache-2.0, `MIT OR Apache-2.0`, LicenseRef-internal"))
}

/// A source URI (`scheme:…`, printable, no spaces) or a registered dataset id.
fn validate_source(s: &str, i: usize) -> Result<()> {
    let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme.as_bytes()[0].is_ascii_alphabetic()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
            && !rest.is_empty()
    });
    if scheme_ok && s.len() <= 2048 && s.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err(invalid(
        codes::MG0305,
        format!("source {s:?} is neither a URI nor a dataset id"),
        format!("/sourceRefs/{i}"),
    )
    .hint("a URI like https://…, s3://…, hf://datasets/…, or sha256:… of a registered dataset"))
}

/// Checks a registration and builds the record it describes (`createdAt`/`createdBy` from
/// the caller). Nothing is stored.
pub fn build(req: &DatasetRegistration, at: &str, by: &str) -> Result<Dataset> {
    validate_name(&req.name)?;
    validate_license(&req.license)?;
    if req.files.is_empty() {
        return Err(invalid(
            codes::MG0301,
            "the dataset has no files".into(),
            "/files".into(),
        ));
    }
    if req.files.len() > MAX_FILES {
        return Err(RegistryError::new(
            ErrorKind::TooLarge,
            codes::MG0301,
            format!("{} files, above the limit of {MAX_FILES}", req.files.len()),
        )
        .at("/files"));
    }
    let mut total: u64 = 0;
    for (i, f) in req.files.iter().enumerate() {
        validate_path(&f.path).map_err(|why| {
            invalid(
                codes::MG0301,
                format!("file path {:?}: {why}", f.path.escape_debug().to_string()),
                format!("/files/{i}/path"),
            )
            .hint("paths are relative to the dataset root, `/`-separated, without `.` or `..`")
        })?;
        total = total.checked_add(f.size).ok_or_else(|| {
            invalid(
                codes::MG0301,
                "the file sizes add up to more than 2^64 bytes".into(),
                format!("/files/{i}/size"),
            )
        })?;
        if f.size > i64::MAX as u64 {
            return Err(invalid(
                codes::MG0301,
                format!("size {} is not possible", f.size),
                format!("/files/{i}/size"),
            ));
        }
    }
    let mut files = req.files.clone();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        let i = req
            .files
            .iter()
            .rposition(|f| f.path == w[0].path)
            .unwrap_or(0);
        return Err(invalid(
            codes::MG0302,
            format!("file {:?} is listed twice", w[0].path),
            format!("/files/{i}/path"),
        ));
    }
    for (i, flag) in req.pii_flags.iter().enumerate() {
        let ok = !flag.is_empty()
            && flag.len() <= 64
            && flag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !ok {
            return Err(invalid(
                codes::MG0311,
                format!("PII flag {flag:?} is not allowed"),
                format!("/piiFlags/{i}"),
            )
            .hint("lower-case words like `email`, `names`, `health`"));
        }
    }
    for (i, s) in req.source_refs.iter().enumerate() {
        validate_source(s, i)?;
    }
    for (i, t) in req.transformations.iter().enumerate() {
        if t.code_ref.trim().is_empty() || t.code_ref.len() > 2048 {
            return Err(invalid(
                codes::MG0312,
                "a transformation needs a codeRef".into(),
                format!("/transformations/{i}/codeRef"),
            )
            .hint("e.g. git+https://host/repo/prep.py@<commit>"));
        }
    }
    let mut pii = req.pii_flags.clone();
    pii.sort();
    pii.dedup();
    let mut sources = req.source_refs.clone();
    sources.sort();
    sources.dedup();
    let mut d = Dataset {
        dataset_id: Digest([0; 32]),
        name: req.name.clone(),
        checksum: manifest_checksum(&files),
        license: req.license.clone(),
        pii_flags: pii,
        source_refs: sources,
        transformations: req.transformations.clone(),
        file_count: files.len() as u64,
        total_size: total,
        created_at: at.into(),
        created_by: by.into(),
        files: Some(files),
    };
    d.dataset_id = dataset_id(&d);
    Ok(d)
}

pub fn node_id(id: &Digest) -> String {
    format!("dataset:{id}")
}

/// Whether a dataset exists.
pub async fn exists(tx: &mut Tx, id: &Digest) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM datasets WHERE dataset_id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(row.is_some())
}

/// Stores a built dataset, its files and its lineage edges (sources must exist).
pub async fn insert(tx: &mut Tx, d: &Dataset) -> Result<()> {
    for (i, s) in d.source_refs.iter().enumerate() {
        if let Ok(src) = s.parse::<Digest>()
            && !exists(tx, &src).await?
        {
            return Err(RegistryError::new(
                ErrorKind::NotFound,
                codes::MG0307,
                format!("source dataset {src} is not registered"),
            )
            .at(format!("/sourceRefs/{i}"))
            .hint("register the source dataset first, or name it by URI"));
        }
    }
    sqlx::query(
        "INSERT INTO datasets (dataset_id, name, checksum, license, pii_flags, source_refs, \
         transformations, file_count, total_size, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(d.dataset_id.to_string())
    .bind(&d.name)
    .bind(d.checksum.to_string())
    .bind(&d.license)
    .bind(json!(d.pii_flags).to_string())
    .bind(json!(d.source_refs).to_string())
    .bind(serde_json::to_string(&d.transformations).expect("serializes"))
    .bind(d.file_count as i64)
    .bind(d.total_size as i64)
    .bind(&d.created_at)
    .bind(&d.created_by)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    for chunk in d.files.as_deref().unwrap_or_default().chunks(200) {
        let mut sql =
            String::from("INSERT INTO dataset_files (dataset_id, path, sha256, size) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${})",
                4 * i + 1,
                4 * i + 2,
                4 * i + 3,
                4 * i + 4
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for f in chunk {
            q = q
                .bind(d.dataset_id.to_string())
                .bind(f.path.clone())
                .bind(f.sha256.to_string())
                .bind(f.size as i64);
        }
        q.execute(&mut **tx).await.map_err(db_err)?;
    }
    let me = node_id(&d.dataset_id);
    for s in &d.source_refs {
        let parent = match s.parse::<Digest>() {
            Ok(src) => node_id(&src),
            Err(_) => format!("source:{s}"),
        };
        crate::lineage::insert_edge(tx, &me, &parent, "sourcedFrom").await?;
    }
    Ok(())
}

fn not_found(id: &Digest) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0303,
        format!("no dataset {id}"),
    )
    .hint("modelspec dataset register PATH registers one")
}

/// A dataset with or without its file list.
pub async fn get(db: &Db, id: &Digest, with_files: bool) -> Result<Dataset> {
    let row = sqlx::query(
        "SELECT name, checksum, license, pii_flags, source_refs, transformations, file_count, \
         total_size, created_at, created_by FROM datasets WHERE dataset_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(id))?;
    let js = |col: &str| -> Result<serde_json::Value> {
        let t: String = row.try_get(col).map_err(db_err)?;
        serde_json::from_str(&t).map_err(|e| internal(e.to_string()))
    };
    let files = if with_files {
        let rows = sqlx::query(
            "SELECT path, sha256, size FROM dataset_files WHERE dataset_id = $1 ORDER BY path",
        )
        .bind(id.to_string())
        .fetch_all(db.pool())
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(DatasetFile {
                path: r.try_get("path").map_err(db_err)?,
                sha256: r
                    .try_get::<String, _>("sha256")
                    .map_err(db_err)?
                    .parse()
                    .map_err(|e: crate::digest::BadDigest| internal(e.to_string()))?,
                size: r.try_get::<i64, _>("size").map_err(db_err)? as u64,
            });
        }
        Some(out)
    } else {
        None
    };
    Ok(Dataset {
        dataset_id: *id,
        name: row.try_get("name").map_err(db_err)?,
        checksum: row
            .try_get::<String, _>("checksum")
            .map_err(db_err)?
            .parse()
            .map_err(|e: crate::digest::BadDigest| internal(e.to_string()))?,
        license: row.try_get("license").map_err(db_err)?,
        pii_flags: serde_json::from_value(js("pii_flags")?).map_err(|e| internal(e.to_string()))?,
        source_refs: serde_json::from_value(js("source_refs")?)
            .map_err(|e| internal(e.to_string()))?,
        transformations: serde_json::from_value(js("transformations")?)
            .map_err(|e| internal(e.to_string()))?,
        file_count: row.try_get::<i64, _>("file_count").map_err(db_err)? as u64,
        total_size: row.try_get::<i64, _>("total_size").map_err(db_err)? as u64,
        created_at: row.try_get("created_at").map_err(db_err)?,
        created_by: row.try_get("created_by").map_err(db_err)?,
        files,
    })
}

pub(crate) fn internal(msg: String) -> RegistryError {
    RegistryError::new(
        ErrorKind::Internal,
        codes::MG0009,
        format!("stored record unreadable: {msg}"),
    )
}

/// The manifest of a file (one entry, its file name) or a directory (every regular file
/// below it, paths relative to it), hashed streaming, sorted by path. Symbolic links are
/// refused: following them would digest bytes outside the dataset, or loop.
pub fn manifest_of(root: &Path) -> Result<Vec<DatasetFile>> {
    manifest_of_with(root, &mut |_| {})
}

/// [`manifest_of`], calling `on_bytes` with the number of bytes hashed since its last call
/// (for a progress bar).
pub fn manifest_of_with(root: &Path, on_bytes: &mut dyn FnMut(u64)) -> Result<Vec<DatasetFile>> {
    let io = |p: &Path, e: std::io::Error| {
        RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0309,
            format!("cannot read {}: {e}", p.display()),
        )
    };
    let meta = std::fs::symlink_metadata(root).map_err(|e| io(root, e))?;
    let mut out = Vec::new();
    if meta.is_file() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        out.push(hash_file(root, name, on_bytes).map_err(|e| io(root, e))?);
        return Ok(out);
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        for ent in entries {
            let ent = ent.map_err(|e| io(&dir, e))?;
            let path = ent.path();
            let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                return Err(RegistryError::new(
                    ErrorKind::Invalid,
                    codes::MG0301,
                    format!("{} is not valid UTF-8", path.display()),
                )
                .hint("rename the file: manifest paths are UTF-8"));
            };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = ent.file_type().map_err(|e| io(&path, e))?;
            if ft.is_symlink() {
                return Err(RegistryError::new(
                    ErrorKind::Invalid,
                    codes::MG0308,
                    format!("{} is a symbolic link", path.display()),
                )
                .hint("copy the target into the dataset directory, or remove the link"));
            } else if ft.is_dir() {
                stack.push((path, rel));
            } else if ft.is_file() {
                validate_path(&rel).map_err(|why| {
                    RegistryError::new(ErrorKind::Invalid, codes::MG0301, format!("{rel}: {why}"))
                })?;
                out.push(hash_file(&path, rel, on_bytes).map_err(|e| io(&path, e))?);
            }
        }
    }
    if out.is_empty() {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0301,
            format!("{} holds no files", root.display()),
        ));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn hash_file(
    path: &Path,
    rel: String,
    on_bytes: &mut dyn FnMut(u64),
) -> std::io::Result<DatasetFile> {
    use sha2::{Digest as _, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
        on_bytes(n as u64);
    }
    Ok(DatasetFile {
        path: rel,
        sha256: Digest(h.finalize().into()),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        for ok in ["a", "a/b.txt", "x/y/z", "ünï/cødé"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(4097);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\0b",
            "a\\b",
            &long,
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_manifest_is_sorted_and_digested() {
        let f = |p: &str, b: &[u8]| DatasetFile {
            path: p.into(),
            sha256: Digest::of(b),
            size: b.len() as u64,
        };
        let files = vec![f("b", b"2"), f("a", b"1")];
        let text = manifest_text(&files);
        assert_eq!(
            text,
            format!(
                "{}  1  a\n{}  1  b\n",
                Digest::of(b"1").hex(),
                Digest::of(b"2").hex()
            )
        );
        assert_eq!(manifest_checksum(&files), Digest::of(text.as_bytes()));
    }

    #[test]
    fn a_directory_walk_is_deterministic_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/deep")).unwrap();
        std::fs::write(dir.path().join("b.txt"), b"bb").unwrap();
        std::fs::write(dir.path().join("sub/deep/a.txt"), b"a").unwrap();
        let mut hashed = 0;
        let m = manifest_of_with(dir.path(), &mut |n| hashed += n).unwrap();
        assert_eq!(hashed, 3, "progress counts every byte hashed");
        let paths: Vec<_> = m.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["b.txt", "sub/deep/a.txt"]);
        assert_eq!(m[0].sha256, Digest::of(b"bb"));
        let one = manifest_of(&dir.path().join("b.txt")).unwrap();
        assert_eq!(one[0].path, "b.txt");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert_eq!(manifest_of(dir.path()).unwrap_err().code, codes::MG0308);
    }
}
