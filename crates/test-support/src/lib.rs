//! What the workspace's tests share, so that no test writes it out again: where the shared
//! oracle files and tiny models are ([`shared_dir`], [`oracle_model`]), and a builder of tiny
//! synthetic GGUF files ([`TinyGguf`]), and the start-up lines of a `modelspec serve` child
//! ([`serve_banner`]); and the real servers and tools tests run against: a SeaweedFS S3 server
//! ([`seaweed`]), PostgreSQL ([`postgres`]), a SoftHSM2 PKCS#11 token with Ed25519 and P-256 keys
//! ([`softhsm`]), the pinned Python tools ([`python`]), and processes that die with the test
//! process ([`tied_child`]). A dev-dependency only
//! (`publish = false`).

pub mod postgres;
pub mod python;
pub mod seaweed;
pub mod softhsm;

mod ports;
mod s3_request;
pub mod tied_child;
pub mod tiny_llama;

pub mod registry_suite;
pub mod signing_suite;

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr};

use half::bf16;
use ms_gguf::{GgmlType, GgufWriter, Metadata, TensorDesc, Value};

/// The team's read-only shared directory: oracle outputs, tiny models, vocabularies.
/// `MODELSPEC_SHARED` overrides the default, `../shared` beside the repository (a worktree
/// elsewhere sets the variable instead of copying the directory).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("MODELSPEC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// `oracle/` under [`shared_dir`]: the reference outputs (`<name>.json`), `models/`, `vocab/`.
pub fn oracle_dir() -> PathBuf {
    shared_dir().join("oracle")
}

/// An oracle model by its name without `.gguf`, e.g. `llama-spm-tiny.q8_0`.
pub fn oracle_model(name: &str) -> PathBuf {
    oracle_dir().join("models").join(format!("{name}.gguf"))
}

/// What `modelspec serve` (or `modelspec registry serve`) printed on stderr up to its
/// "Ctrl-C stops" line.
pub struct ServeBanner {
    /// `host:port` from the "listening on http(s)://…" line, if it was printed.
    pub addr: Option<String>,
    /// Every line read, each ending in a newline.
    pub printed: String,
    /// The rest of stderr, for tests that read what the server says later (drain it, or
    /// hand it to a thread, so that the server never blocks writing).
    pub rest: Lines<BufReader<ChildStderr>>,
}

/// Reads a `modelspec serve` child's stderr (spawned with `Stdio::piped()` for stderr) up to
/// the line that says it is serving.
pub fn serve_banner(child: &mut Child) -> ServeBanner {
    let stderr = child
        .stderr
        .take()
        .expect("serve spawned with a piped stderr");
    let mut rest = BufReader::new(stderr).lines();
    let (mut addr, mut printed) = (None, String::new());
    for line in rest.by_ref() {
        let Ok(line) = line else { break };
        printed.push_str(&line);
        printed.push('\n');
        // `modelspec serve: listening on http://…`, `modelspec registry serve: listening on
        // https://…`.
        if let Some((_, at)) = line.split_once(": listening on ")
            && let Some(at) = at
                .strip_prefix("http://")
                .or_else(|| at.strip_prefix("https://"))
        {
            addr = at.split_whitespace().next().map(str::to_string);
        }
        if line.starts_with("Ctrl-C stops") {
            break;
        }
    }
    ServeBanner {
        addr,
        printed,
        rest,
    }
}

/// A tiny synthetic GGUF file: metadata and tensors given by the test, written with ms-gguf's
/// own writer. Tests build what they need instead of committing model files.
///
/// ```
/// use ms_gguf::GgmlType;
/// let dir = tempfile::tempdir().unwrap();
/// let path = ms_test_support::TinyGguf::arch("llama")
///     .tensor_f32("blk.0.attn_norm.weight", &[4], &[1.0; 4])
///     .write(dir.path().join("tiny.gguf"));
/// assert!(path.exists());
/// ```
#[derive(Clone, Default)]
pub struct TinyGguf {
    metadata: Metadata,
    tensors: Vec<(TensorDesc, Vec<u8>)>,
}

impl TinyGguf {
    /// No metadata and no tensors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from `general.architecture = arch`.
    pub fn arch(arch: &str) -> Self {
        Self::new().meta("general.architecture", Value::String(arch.into()))
    }

    /// Starts from a whole metadata section (e.g. a real model's, to be edited).
    pub fn with_metadata(metadata: Metadata) -> Self {
        Self {
            metadata,
            tensors: Vec::new(),
        }
    }

    /// Sets (or replaces) one metadata value.
    pub fn meta(mut self, key: &str, value: Value) -> Self {
        self.metadata.insert(key, value);
        self
    }

    /// Removes one metadata key.
    pub fn without(mut self, key: &str) -> Self {
        self.metadata.remove(key);
        self
    }

    /// A tensor given as its raw bytes in type `ty` (`dims` innermost first, as GGUF stores them).
    pub fn tensor(mut self, name: &str, dims: &[u64], ty: GgmlType, bytes: Vec<u8>) -> Self {
        self.tensors
            .push((TensorDesc::new(name, dims.to_vec(), ty), bytes));
        self
    }

    /// An F32 tensor.
    pub fn tensor_f32(self, name: &str, dims: &[u64], values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, GgmlType::F32, bytes)
    }

    /// A BF16 tensor: `values` rounded to bf16 (round to nearest even).
    pub fn tensor_bf16(self, name: &str, dims: &[u64], values: &[f32]) -> Self {
        let bytes = values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        self.tensor(name, dims, GgmlType::Bf16, bytes)
    }

    /// Writes the file (temp file + rename, as the writer does) and returns its path.
    /// Panics with the writer's error: a test's own input is wrong, not the code under test.
    pub fn write(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let descs: Vec<TensorDesc> = self.tensors.iter().map(|(d, _)| d.clone()).collect();
        let mut w = GgufWriter::create(path, &self.metadata, &descs)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (d, data) in &self.tensors {
            w.write_tensor(&d.name, data)
                .unwrap_or_else(|e| panic!("{}: tensor {}: {e}", path.display(), d.name));
        }
        w.finish()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path.to_path_buf()
    }

    /// The file's bytes, for `GgufFile::from_bytes` (written through a temporary directory).
    pub fn bytes(&self) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = self.write(dir.path().join("tiny.gguf"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}
