//! The quantization cache's keying, reuse, verification and rebuilds, with the real quantizer
//! on a copy of the shared tiny F16 model. A build is seen through the progress it reports
//! (nothing is reported on a hit).

mod common;

use std::cell::Cell;
use std::fs;
use std::path::PathBuf;

use ms_gguf::{GgmlType, GgufFile};
use ms_quant::quantize::Algorithm;
use ms_quant::recipe::Target;
use ms_runtime::requantize::{Progress, quantize_file};
use ms_runtime::{CacheStatus, QuantCache, QuantCacheError, Quantization, artifact_sha256};
use ms_test_support::TinyGguf;

struct Setup {
    dir: tempfile::TempDir,
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
        dir,
        artifact,
        sha,
        cache_root,
    }
}

/// A progress observer that counts the builds it hears about.
fn counting(builds: &Cell<u32>) -> impl FnMut(Progress<'_>) + '_ {
    move |p| {
        if let Progress::Start { .. } = p {
            builds.set(builds.get() + 1);
        }
    }
}

#[test]
fn builds_once_then_reuses_and_never_touches_the_artifact() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let builds = Cell::new(0);
    let first = cache
        .prepare(
            &s.artifact,
            &s.sha,
            Quantization::Q8_0,
            2,
            &mut counting(&builds),
        )
        .unwrap();
    assert_eq!(first.status, CacheStatus::Built);
    assert_eq!(builds.get(), 1);
    assert_eq!(first.path, cache.entry_path(&s.sha, Quantization::Q8_0));
    assert!(
        first
            .path
            .starts_with(s.cache_root.join("quantized").join(&s.sha))
    );
    assert_eq!(first.sha256, ms_fetch::sha256_file(&first.path).unwrap());
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);

    // The entry is what `modelspec quantize --to Q8_0` writes, whatever the thread count.
    let direct = s.dir.path().join("direct.gguf");
    quantize_file(&s.artifact, &direct, Target::Q8_0, Algorithm::Refined, 1).unwrap();
    assert_eq!(ms_fetch::sha256_file(&direct).unwrap(), first.sha256);
    let types: Vec<GgmlType> = GgufFile::open(&first.path)
        .unwrap()
        .tensors()
        .iter()
        .map(|t| t.ty)
        .collect();
    assert!(types.contains(&GgmlType::Q8_0), "{types:?}");
    assert!(!types.contains(&GgmlType::F16), "{types:?}");

    let second = cache
        .prepare(
            &s.artifact,
            &s.sha,
            Quantization::Q8_0,
            2,
            &mut counting(&builds),
        )
        .unwrap();
    assert_eq!(second.status, CacheStatus::Hit);
    assert_eq!(builds.get(), 1, "a hit must not build");
    assert_eq!(second.sha256, first.sha256);

    // Another quantization is another entry.
    let q4 = cache
        .prepare(
            &s.artifact,
            &s.sha,
            Quantization::Q4KM,
            2,
            &mut counting(&builds),
        )
        .unwrap();
    assert_eq!(q4.status, CacheStatus::Built);
    assert_ne!(q4.path, first.path);
    assert_ne!(q4.sha256, first.sha256);
    assert_eq!(builds.get(), 2);

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
    let builds = Cell::new(0);
    let q = Quantization::Q8_0;
    let built = cache
        .prepare(&s.artifact, &s.sha, q, 2, &mut counting(&builds))
        .unwrap();
    let entry = built.path.clone();

    // One flipped byte in the tensor data: same size and header, wrong sha256.
    let mut bytes = fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    fs::write(&entry, &bytes).unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, q, 2, &mut counting(&builds))
        .unwrap();
    match &again.status {
        CacheStatus::Rebuilt(reason) => assert!(reason.contains("sha256"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(again.sha256, built.sha256);
    assert_eq!(builds.get(), 2);

    // A partial file.
    fs::write(&entry, &bytes[..bytes.len() / 3]).unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, q, 2, &mut counting(&builds))
        .unwrap();
    match &again.status {
        CacheStatus::Rebuilt(reason) => assert!(reason.contains("size"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(fs::metadata(&entry).unwrap().len(), bytes.len() as u64);

    // A build interrupted before its record was written.
    fs::remove_file(entry.with_extension("json")).unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, q, 2, &mut counting(&builds))
        .unwrap();
    assert!(
        matches!(again.status, CacheStatus::Rebuilt(_)),
        "{:?}",
        again.status
    );

    // A record that is not JSON.
    fs::write(entry.with_extension("json"), "{ half").unwrap();
    let again = cache
        .prepare(&s.artifact, &s.sha, q, 2, &mut counting(&builds))
        .unwrap();
    assert!(
        matches!(again.status, CacheStatus::Rebuilt(_)),
        "{:?}",
        again.status
    );
    assert_eq!(builds.get(), 5);

    let hit = cache
        .prepare(&s.artifact, &s.sha, q, 2, &mut counting(&builds))
        .unwrap();
    assert_eq!(hit.status, CacheStatus::Hit);
    assert_eq!(hit.sha256, built.sha256);
    assert_eq!(builds.get(), 5);
}

/// The files left in an entry directory, locks aside.
fn leftovers(cache: &QuantCache, sha: &str) -> Vec<String> {
    let dir = cache.root().join(sha);
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

#[test]
fn a_failed_conversion_leaves_nothing_and_names_the_artifact() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);

    // Fails while writing: a NaN in the middle of a tensor the mix converts.
    let nan = s.dir.path().join("nan.f16.gguf");
    fs::copy(&s.artifact, &nan).unwrap();
    let (at, name) = {
        let file = GgufFile::open(&nan).unwrap();
        let t = file
            .tensors()
            .iter()
            .find(|t| t.name.ends_with("ffn_down.weight") && t.ty == GgmlType::F16)
            .expect("the tiny model has an F16 ffn_down tensor");
        (t.offset + 2 * 10, t.name.clone())
    };
    let mut bytes = fs::read(&nan).unwrap();
    bytes[at as usize..at as usize + 2].copy_from_slice(&0x7e00u16.to_le_bytes());
    fs::write(&nan, &bytes).unwrap();
    let nan_sha = artifact_sha256(&s.cache_root, &nan).unwrap();
    let builds = Cell::new(0);
    let err = cache
        .prepare(
            &nan,
            &nan_sha,
            Quantization::Q8_0,
            2,
            &mut counting(&builds),
        )
        .unwrap_err();
    assert!(matches!(err, QuantCacheError::Convert { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("nan.f16.gguf")
            && msg.contains("Q8_0")
            && msg.contains(&name)
            && msg.contains("value 10 is NaN"),
        "{msg}"
    );
    assert_eq!(builds.get(), 1, "it failed while writing");
    assert!(!cache.entry_path(&nan_sha, Quantization::Q8_0).exists());
    assert!(
        leftovers(&cache, &nan_sha).is_empty(),
        "{:?}",
        leftovers(&cache, &nan_sha)
    );

    // Fails before writing: a tensor type that cannot be read.
    let odd = TinyGguf::arch("llama")
        .tensor("blk.0.ffn_up.weight", &[32, 2], GgmlType::I32, vec![0; 256])
        .write(s.dir.path().join("i32.gguf"));
    let odd_sha = artifact_sha256(&s.cache_root, &odd).unwrap();
    let err = cache
        .prepare(
            &odd,
            &odd_sha,
            Quantization::Q4KM,
            2,
            &mut counting(&builds),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("i32.gguf") && msg.contains("Q4_K_M") && msg.contains("I32"),
        "{msg}"
    );
    assert_eq!(builds.get(), 1, "nothing was written");
    assert!(leftovers(&cache, &odd_sha).is_empty());
}

#[test]
fn source_is_the_artifact_itself() {
    let s = setup();
    let cache = QuantCache::under(&s.cache_root);
    let builds = Cell::new(0);
    let p = cache
        .prepare(
            &s.artifact,
            &s.sha,
            Quantization::Source,
            2,
            &mut counting(&builds),
        )
        .unwrap();
    assert_eq!(
        (p.path.as_path(), p.status),
        (s.artifact.as_path(), CacheStatus::Source)
    );
    assert_eq!(p.sha256, s.sha);
    assert_eq!(builds.get(), 0);
    assert!(!s.cache_root.exists(), "source must not create the cache");
}

#[test]
fn no_size_gain_warns_and_an_unusable_cache_fails_first() {
    let s = setup();
    // An artifact already in Q8_0: requantizing it to Q8_0 gives the same size.
    let q8 = s.dir.path().join("tiny.q8_0.gguf");
    quantize_file(&s.artifact, &q8, Target::Q8_0, Algorithm::Refined, 2).unwrap();
    let q8_sha = artifact_sha256(&s.cache_root, &q8).unwrap();
    let cache = QuantCache::under(&s.cache_root);
    let builds = Cell::new(0);
    let p = cache
        .prepare(&q8, &q8_sha, Quantization::Q8_0, 2, &mut counting(&builds))
        .unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("gains nothing")),
        "{:?}",
        p.warnings
    );
    let hit = cache
        .prepare(&q8, &q8_sha, Quantization::Q8_0, 2, &mut counting(&builds))
        .unwrap();
    assert_eq!(hit.status, CacheStatus::Hit);
    assert!(
        hit.warnings.iter().any(|w| w.contains("gains nothing")),
        "{:?}",
        hit.warnings
    );

    // A cache root that is a regular file cannot hold directories.
    let blocked = s.cache_root.join("not-a-dir");
    fs::write(&blocked, b"x").unwrap();
    let err = QuantCache::under(&blocked)
        .prepare(
            &s.artifact,
            &s.sha,
            Quantization::Q8_0,
            2,
            &mut counting(&builds),
        )
        .unwrap_err();
    assert!(matches!(err, QuantCacheError::Unwritable { .. }), "{err}");
    assert!(err.to_string().contains("MODELSPEC_CACHE"), "{err}");
    assert_eq!(
        builds.get(),
        1,
        "nothing is built when the cache is unusable"
    );

    let err = cache
        .prepare(
            &s.artifact,
            "../../etc",
            Quantization::Q8_0,
            2,
            &mut counting(&builds),
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
