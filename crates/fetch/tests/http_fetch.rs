//! http:// and hf:// downloads against a local server on 127.0.0.1.

mod support;

#[path = "support/http_server.rs"]
mod http_server;

use ms_fetch::{Artifact, Cache, FetchError, FetchOptions, fetch, resolve};
use support::sha256_hex;

fn body() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
fn http_download_resumes_after_a_broken_connection() {
    let data = body();
    let server = http_server::start(http_server::Behaviour {
        body: data.clone(),
        cut_first_after: Some(100_000),
        status: None,
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let url = format!("{}/models/m.gguf", server.base);
    let artifact = Artifact::from_uri(&url, Some(&sha256_hex(&data))).unwrap();
    let path = fetch(&cache, &artifact, &FetchOptions::default()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].range, None);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=100000-"));
    // No partial download is left once the blob is in place.
    let partial: Vec<_> = std::fs::read_dir(cache_dir.path().join("partial"))
        .unwrap()
        .collect();
    assert!(partial.is_empty(), "{partial:?}");

    // Second call: from the cache, no request.
    fetch(&cache, &artifact, &FetchOptions::default()).unwrap();
    assert_eq!(server.requests.lock().unwrap().len(), 2);
}

#[test]
fn http_download_without_digest_is_found_again_by_address() {
    let data = body();
    let server = http_server::start(http_server::Behaviour {
        body: data.clone(),
        cut_first_after: None,
        status: None,
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let url = format!("{}/x.bin", server.base);
    let first = resolve(&cache, &url, None, &FetchOptions::default()).unwrap();
    assert_eq!(first, cache.blob_path(&sha256_hex(&data)));
    let second = resolve(&cache, &url, None, &FetchOptions::default()).unwrap();
    assert_eq!(first, second);
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[test]
fn http_checksum_mismatch_caches_nothing() {
    let data = body();
    let server = http_server::start(http_server::Behaviour {
        body: data.clone(),
        cut_first_after: None,
        status: None,
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let wrong = sha256_hex(b"other");
    let artifact = Artifact::from_uri(&format!("{}/y", server.base), Some(&wrong)).unwrap();
    let err = fetch(&cache, &artifact, &FetchOptions::default()).unwrap_err();
    assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
    assert!(!cache.blob_path(&wrong).exists());
    assert!(!cache.blob_path(&sha256_hex(&data)).exists());
}

#[test]
fn http_404_is_a_clear_error_without_retries() {
    let server = http_server::start(http_server::Behaviour {
        body: vec![],
        cut_first_after: None,
        status: Some(404),
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let url = format!("{}/missing.gguf", server.base);
    let err = resolve(
        &Cache::at(cache_dir.path()),
        &url,
        None,
        &FetchOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("404") && msg.contains("not found") && msg.contains(&url),
        "{msg}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[test]
fn hf_address_goes_to_the_endpoint_with_token() {
    let data = body();
    let server = http_server::start(http_server::Behaviour {
        body: data.clone(),
        cut_first_after: None,
        status: None,
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        hf_endpoint: Some(server.base.clone()),
        hf_token: Some("secret".into()),
        ..Default::default()
    };
    let path = resolve(
        &Cache::at(cache_dir.path()),
        "hf://org/repo/sub/m.gguf@v1.0",
        None,
        &opts,
    )
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs[0].path, "/org/repo/resolve/v1.0/sub/m.gguf");
    assert_eq!(reqs[0].authorization.as_deref(), Some("Bearer secret"));
}

#[test]
fn unreachable_hf_hub_says_what_to_do() {
    // A port nothing listens on: bind, note the address, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        hf_endpoint: Some(format!("http://{addr}")),
        ..Default::default()
    };
    let err = resolve(
        &Cache::at(cache_dir.path()),
        "hf://org/repo/m.gguf",
        None,
        &opts,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("http://{addr}/org/repo/resolve/main/m.gguf")),
        "{msg}"
    );
    assert!(
        msg.contains("download the file elsewhere and pass its path"),
        "{msg}"
    );
}

#[test]
fn a_stale_partial_download_is_dropped_after_a_checksum_failure() {
    let data = body();
    let server = http_server::start(http_server::Behaviour {
        body: data.clone(),
        cut_first_after: None,
        status: None,
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let sha = sha256_hex(&data);
    // Left by an interrupted run against a different version of the file.
    let partial = cache_dir.path().join("partial").join(format!("{sha}.0"));
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, vec![0xAAu8; 1000]).unwrap();
    let artifact = Artifact::from_uri(&format!("{}/m", server.base), Some(&sha)).unwrap();
    let err = fetch(&cache, &artifact, &FetchOptions::default()).unwrap_err();
    assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
    assert!(!partial.exists());
    let path = fetch(&cache, &artifact, &FetchOptions::default()).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=1000-"));
    assert_eq!(reqs[1].range, None);
}
