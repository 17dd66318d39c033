//! What the registry CLI tests share: a registry to run `modelspec` against (embedded SQLite +
//! local files under a temp data directory, embedded PostgreSQL + SeaweedFS, or a `modelspec
//! registry serve` child in front of either), a model spec with a synthetic artifact, and
//! helpers to run the real binary and read its JSON.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_modelspec")
}

/// A registry under test and the environment that points `modelspec` at it.
pub struct Reg {
    pub dir: tempfile::TempDir,
    /// Environment for every child (`MODELSPEC_REGISTRY`, `MODELSPEC_STORE`, AWS_*, …).
    pub env: Vec<(String, String)>,
    /// The remote server, when there is one (killed on drop).
    pub server: Option<Child>,
    /// The embedded registry a server serves (kept alive with it).
    pub backing: Option<Box<Reg>>,
    pub label: &'static str,
}

impl Drop for Reg {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn base_env(dir: &Path) -> Vec<(String, String)> {
    vec![
        // The data directory (default registry, upload state files) and an empty model cache,
        // so that nothing of the user's leaks in.
        (
            "MODELSPEC_DATA_DIR".into(),
            dir.join("data").display().to_string(),
        ),
        (
            "MODELSPEC_CACHE".into(),
            dir.join("cache").display().to_string(),
        ),
    ]
}

impl Reg {
    /// The default: nothing but the data directory, so SQLite + blobs under it.
    pub fn sqlite() -> Reg {
        let dir = tempfile::tempdir().unwrap();
        let env = base_env(dir.path());
        Reg {
            dir,
            env,
            server: None,
            backing: None,
            label: "sqlite+file",
        }
    }

    /// Embedded PostgreSQL (a fresh database) + SeaweedFS (a fresh bucket).
    pub fn postgres_s3() -> Reg {
        let dir = tempfile::tempdir().unwrap();
        let mut env = base_env(dir.path());
        let db = ms_test_support::postgres::database();
        let s3 = ms_test_support::seaweed::seaweed();
        let bucket = s3.bucket();
        env.push(("MODELSPEC_REGISTRY".into(), db));
        env.push(("MODELSPEC_STORE".into(), format!("s3://{bucket}/registry")));
        for (k, v) in s3.aws_env() {
            env.push((k.to_string(), v));
        }
        Reg {
            dir,
            env,
            server: None,
            backing: None,
            label: "postgres+s3",
        }
    }

    /// `modelspec registry serve` in front of `backing`'s database and store, reached with an
    /// admin token created through the embedded registry.
    pub fn remote(backing: Reg) -> Reg {
        let db = backing.var("MODELSPEC_REGISTRY").unwrap_or_else(|| {
            format!("sqlite://{}/data/registry.db", backing.dir.path().display())
        });
        let store = backing
            .var("MODELSPEC_STORE")
            .unwrap_or_else(|| format!("file://{}/data/blobs", backing.dir.path().display()));
        let created = backing.json(&[
            "registry", "token", "create", "--name", "ci", "--role", "admin",
        ]);
        let token = created["token"].as_str().unwrap().to_string();
        let mut cmd = Command::new(bin());
        cmd.args([
            "registry", "serve", "--db", &db, "--store", &store, "--port", "0",
        ]);
        for (k, v) in &backing.env {
            if !k.starts_with("MODELSPEC_") {
                cmd.env(k, v);
            }
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = listening_url(&mut child);
        let dir = tempfile::tempdir().unwrap();
        let mut env = base_env(dir.path());
        env.push(("MODELSPEC_REGISTRY".into(), url));
        env.push(("MODELSPEC_REGISTRY_TOKEN".into(), token));
        let label = if backing.label == "sqlite+file" {
            "remote(sqlite+file)"
        } else {
            "remote(postgres+s3)"
        };
        Reg {
            dir,
            env,
            server: Some(child),
            backing: Some(Box::new(backing)),
            label,
        }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        for k in [
            "MODELSPEC_REGISTRY",
            "MODELSPEC_STORE",
            "MODELSPEC_REGISTRY_TOKEN",
            "MODELSPEC_TEST_THROTTLE",
        ] {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and requires exit 0; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "[{}] modelspec {}\nstdout: {}\nstderr: {}",
            self.label,
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs with `--json`, requires exit 0, parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Runs and requires exit `code`; (stdout, stderr).
    pub fn fails(&self, args: &[&str], code: i32) -> (String, String) {
        let o = self.run(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(code),
            "[{}] modelspec {}\nstdout: {out}\nstderr: {err}",
            self.label,
            args.join(" ")
        );
        (out, err)
    }

    /// Every audit event, checking that `seq` runs 1, 2, 3… without a gap.
    pub fn audit_gapless(&self) -> Vec<Value> {
        let events = self.json(&["registry", "audit", "--limit", "1000"]);
        let events = events.as_array().unwrap().clone();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                e["seq"].as_u64(),
                Some(i as u64 + 1),
                "[{}] {events:#?}",
                self.label
            );
        }
        events
    }

    /// `registry check` exits 0 with no problems.
    pub fn check_clean(&self) {
        let report = self.json(&["registry", "check"]);
        assert_eq!(
            report["problems"].as_array().map(Vec::len),
            Some(0),
            "[{}] {report:#}",
            self.label
        );
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` bytes of deterministic noise (xorshift), different per `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A ModelSpec named `name` whose one artifact is a local synthetic file (next to the spec,
/// named by a relative `uri`), pinned by sha256. Returns (spec path, artifact path, sha hex).
pub fn spec_with_artifact(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, PathBuf, String) {
    let artifact = dir.join(format!("{name}.gguf"));
    std::fs::write(&artifact, bytes).unwrap();
    let sha = sha256_hex(bytes);
    let spec = dir.join(format!("{name}.modelspec.yaml"));
    std::fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1
kind: ModelSpec
metadata:
  name: {name}
  version: \"1\"
spec:
  identity:
    model:
      id: {name}
      family: tiny
      task: text-generation
      framework: llama.cpp
      artifacts:
        - name: weights
          role: weights
          uri: {name}.gguf
          format: gguf
          sha256: {sha}
          sizeBytes: {}
  runtime:
    accelerator:
      type: cpu
      count: 1
",
            bytes.len()
        ),
    )
    .unwrap();
    (spec, artifact, sha)
}

/// Waits until `cond` holds (generous: a loaded 2-core machine), panicking with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL, as `kill -9` (no destructor, no flush, nothing of ours runs).
pub fn kill9(child: &mut Child) {
    child.kill().unwrap();
    let _ = child.wait();
}

/// Reads a server child's stderr up to its "listening on http://HOST:PORT" line; the URL. The
/// rest of stderr is drained by a thread so that the server never blocks writing.
pub fn listening_url(child: &mut Child) -> String {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("spawned with a piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        printed.push_str(&line);
        printed.push('\n');
        if let Some(at) = line.find("listening on http") {
            let url = line[at + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches(['.', ',', ';'])
                .to_string();
            std::thread::spawn(move || for _ in lines {});
            return url;
        }
    }
    panic!("the server printed no \"listening on http://…\" line:\n{printed}");
}
