//! The quantization cache's keying, reuse, verification and rebuilds, on a copy of the shared
//! tiny F16 model. The conversion here is a byte copy standing in for the quantizer (which
//! lives in the CLI; `crates/cli/tests/run_metrics.rs` runs the real one through this cache):
//! what is under test is what the cache does around any conversion.

mod common;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use ms_runtime::quant_cache::BuildError;
use ms_runtime::{CacheStatus, QuantCache, QuantCacheError, Quantization, artifact_sha256};

struct Setup {
    _dir: tempfile::TempDir,
    artifact: PathBuf,
    sha: String,
    cache_root: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("tiny.f16.gguf");
    fs::copy(common::tiny_f16(), &artifact).unwrap();
    let cache_root = dir.path().join("cache");
    let sha = artifact_sha256(&cache_root, &artifact).unwrap();
    Setup {
        _dir: dir,
        artifact,
        sha,
        cache_root,
    }
}

/// A conversion that copies its input and counts its calls.
fn copying(calls: &Cell<u32>) -> impl FnOnce(&Path, &Path) -> Result<Vec<String>, BuildError> + '_ {
    move |input, output| {
        calls.set(calls.get() + 1);
        fs::copy(input, output)?;
        Ok(vec!["from the build".to_string()])
    }
}

#[test]
fn builds_once_then_reuses_and_never_touches_the_artifact() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let calls = Cell::new(0);
    let first = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q8_0, copying(&calls))
        .unwrap();
    assert_eq!(first.status, CacheStatus::Built);
    assert_eq!(calls.get(), 1);
    assert_eq!(first.path, cache.entry_path(&s.sha, Quantization::Q8_0));
    assert!(
        first
            .path
            .starts_with(s.cache_root.join("quantized").join(&s.sha))
    );
    assert_eq!(first.sha256, ms_fetch::sha256_file(&first.path).unwrap());
    assert!(first.warnings.iter().any(|w| w == "from the build"));

    let second = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q8_0, copying(&calls))
        .unwrap();
    assert_eq!(second.status, CacheStatus::Hit);
    assert_eq!(calls.get(), 1, "a hit must not build");
    assert_eq!(second.sha256, first.sha256);

    // Another quantization is another entry.
    let q4 = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q4KM, copying(&calls))
        .unwrap();
    assert_eq!(q4.status, CacheStatus::Built);
    assert_ne!(q4.path, first.path);
    assert_eq!(calls.get(), 2);

    assert_eq!(ms_fetch::sha256_file(&s.artifact).unwrap(), s.sha);
    // Nothing but entries, records and locks: no temporary left behind.
    let dir = s.cache_root.join("quantized").join(&s.sha);
    for e in fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".gguf") || name.ends_with(".json") || name.ends_with(".lock"),
            "{name}"
        );
        assert!(!name.starts_with('.'), "{name}");
    }
}

#[test]
fn a_corrupt_truncated_or_unrecorded_entry_is_rebuilt() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let calls = Cell::new(0);
    let built = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q6K, copying(&calls))
        .unwrap();
    let entry = built.path.clone();

    // One flipped byte in the tensor data: same size and header, wrong sha256.
    let mut bytes = fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    fs::write(&entry, &bytes).unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q6K, copying(&calls))
        .unwrap();
    match &again.status {
        CacheStatus::Rebuilt(reason) => assert!(reason.contains("sha256"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(again.sha256, built.sha256);
    assert_eq!(calls.get(), 2);

    // A partial file.
    let bytes = fs::read(&entry).unwrap();
    fs::write(&entry, &bytes[..bytes.len() / 3]).unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q6K, copying(&calls))
        .unwrap();
    match &again.status {
        CacheStatus::Rebuilt(reason) => assert!(reason.contains("size"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(fs::metadata(&entry).unwrap().len(), bytes.len() as u64);

    // A build interrupted before its record was written.
    fs::remove_file(entry.with_extension("json")).unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q6K, copying(&calls))
        .unwrap();
    assert!(
        matches!(again.status, CacheStatus::Rebuilt(_)),
        "{:?}",
        again.status
    );

    // A record that is not JSON.
    fs::write(entry.with_extension("json"), "{ half").unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q6K, copying(&calls))
        .unwrap();
    assert!(
        matches!(again.status, CacheStatus::Rebuilt(_)),
        "{:?}",
        again.status
    );
    assert_eq!(calls.get(), 5);

    let hit = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q6K, copying(&calls))
        .unwrap();
    assert_eq!(hit.status, CacheStatus::Hit);
    assert_eq!(calls.get(), 5);
}

#[test]
fn a_failed_conversion_leaves_nothing_and_names_the_artifact() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let err = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q8_0, |_, output| {
            // Half a file, then the failure.
            fs::write(output, b"GGUF")?;
            Err("tensor 'x' is stored as IQ2_XXS, which cannot be read".into())
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, QuantCacheError::Convert { .. }));
    assert!(
        msg.contains("tiny.f16.gguf") && msg.contains("Q8_0") && msg.contains("IQ2_XXS"),
        "{msg}"
    );
    let entry = cache.entry_path(&s.sha, Quantization::Q8_0);
    assert!(!entry.exists());
    assert!(!entry.with_extension("json").exists());
    let dir = entry.parent().unwrap();
    let leftovers: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn source_is_the_artifact_itself() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let calls = Cell::new(0);
    let p = cache
        .prepare(&s.artifact, &s.sha, Quantization::Source, copying(&calls))
        .unwrap();
    assert_eq!(
        (p.path.as_path(), p.status),
        (s.artifact.as_path(), CacheStatus::Source)
    );
    assert_eq!(p.sha256, s.sha);
    assert_eq!(calls.get(), 0);
    assert!(!s.cache_root.exists(), "source must not create the cache");
}

#[test]
fn no_size_gain_warns_and_an_unusable_cache_fails_first() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let calls = Cell::new(0);
    // The copy is exactly as large as the artifact.
    let p = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q8_0, copying(&calls))
        .unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("gains nothing")),
        "{:?}",
        p.warnings
    );
    let hit = cache
        .prepare(&s.artifact, &s.sha, Quantization::Q8_0, copying(&calls))
        .unwrap();
    assert!(
        hit.warnings.iter().any(|w| w.contains("gains nothing")),
        "{:?}",
        hit.warnings
    );

    // A cache root that is a regular file cannot hold directories.
    let blocked = s.cache_root.join("not-a-dir");
    fs::write(&blocked, b"x").unwrap();
    let err = QuantCache::under(&blocked)
        .prepare(&s.artifact, &s.sha, Quantization::Q8_0, copying(&calls))
        .unwrap_err();
    assert!(matches!(err, QuantCacheError::Unwritable { .. }), "{err}");
    assert!(err.to_string().contains("MODELSPEC_CACHE"), "{err}");
    assert_eq!(
        calls.get(),
        1,
        "nothing is built when the cache is unusable"
    );

    let err = cache
        .prepare(
            &s.artifact,
            "../../etc",
            Quantization::Q8_0,
            copying(&calls),
        )
        .unwrap_err();
    assert!(matches!(err, QuantCacheError::BadDigest(_)), "{err}");
}

#[test]
fn a_cache_blob_is_named_by_its_digest() {
    let s = setup();
    let blob_dir = s.cache_root.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).unwrap();
    let blob = blob_dir.join(&s.sha);
    fs::copy(&s.artifact, &blob).unwrap();
    assert_eq!(artifact_sha256(&s.cache_root, &blob).unwrap(), s.sha);
    assert_eq!(
        s.sha,
        "c2e2217b3b2f55289ffaf1cdbfff7aa40cfaeac5a8d5834b34f8cfc68cd5af5c"
    );
}
