//! Our dequantization of every tensor of the oracle models and the default model against
//! llama.cpp's own Python implementation (gguf-py's numpy dequantizers): `py/gguf_py_digests.py`
//! recorded the sha256 of each tensor's f32 values in `py/gguf_py_dequant.json`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use ms_gguf::GgufFile;
use ms_quant::dequantize_to_vec;
use ms_test_support::shared_dir;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn digests() -> Value {
    let text = include_str!("py/gguf_py_dequant.json");
    serde_json::from_str(text).unwrap()
}

fn file_sha256(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

/// Compares every tensor; returns the set of types seen.
fn check(path: &Path, all: &Value) -> BTreeSet<String> {
    let key = file_sha256(path);
    let want = &all["files"][&key]["tensors"];
    let want = want
        .as_object()
        .unwrap_or_else(|| panic!("{}: no digests for sha256 {key}", path.display()));
    let file = GgufFile::open(path).unwrap();
    assert_eq!(file.tensors().len(), want.len(), "{}", path.display());
    let mut types = BTreeSet::new();
    for info in file.tensors() {
        let w = &want[&info.name];
        assert_eq!(w["type"].as_str(), Some(info.ty.name()), "{}", info.name);
        let values = dequantize_to_vec(info.ty, file.tensor_data(info)).unwrap();
        assert_eq!(
            w["values"].as_u64(),
            Some(values.len() as u64),
            "{}",
            info.name
        );
        let mut h = Sha256::new();
        let mut bytes = Vec::with_capacity(4 * 4096);
        for chunk in values.chunks(4096) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            h.update(&bytes);
        }
        assert_eq!(
            w["sha256"].as_str(),
            Some(format!("{:x}", h.finalize()).as_str()),
            "{}: {} differs from gguf-py's dequantization",
            path.display(),
            info.name
        );
        types.insert(info.ty.name().to_string());
    }
    types
}

#[test]
fn oracle_models_match_gguf_py() {
    let all = digests();
    let mut types = BTreeSet::new();
    for name in [
        "llama-spm-tiny.f16.gguf",
        "llama-spm-tiny.q4_k_m.gguf",
        "llama-spm-tiny.q8_0.gguf",
        "qwen2-bpe-tiny.q8_0.gguf",
    ] {
        types.extend(check(&shared_dir().join("oracle/models").join(name), &all));
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["F16", "F32", "Q4_K", "Q6_K", "Q8_0"]
    );
}

#[test]
fn default_model_matches_gguf_py() {
    let path = ms_fetch::default_model().expect("fetch the default model");
    let types = check(&path, &digests());
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"]
    );
}
