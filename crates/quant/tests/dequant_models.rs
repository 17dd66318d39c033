//! Every tensor of the shared oracle models and of the default model, dequantized by the crate,
//! equals the independent spec decoder's values bit for bit.

mod dequant_spec;

use ms_test_support::shared_dir;

use ms_gguf::GgufFile;
use ms_quant::dequantize_row;

/// Dequantizes every row of every tensor both ways and compares all values; returns the
/// number of values compared per type name.
fn check_file(path: &std::path::Path) -> std::collections::BTreeMap<&'static str, u64> {
    let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut counts = std::collections::BTreeMap::new();
    let mut row = Vec::new();
    for info in file.tensors() {
        let data = file.tensor_data(info);
        let row_len = info.row_len() as usize;
        let row_bytes = info.ty.row_bytes(row_len as u64).unwrap() as usize;
        assert_eq!(
            data.len(),
            row_bytes * info.n_rows() as usize,
            "{}",
            info.name
        );
        row.resize(row_len, 0.0);
        for (r, bytes) in data.chunks_exact(row_bytes).enumerate() {
            dequantize_row(info.ty, bytes, &mut row)
                .unwrap_or_else(|e| panic!("{} row {r}: {e}", info.name));
            let spec = dequant_spec::decode_row(info.ty, bytes);
            for (i, (a, b)) in row.iter().zip(&spec).enumerate() {
                assert!(
                    dequant_spec::same(*a, *b),
                    "{}: {} row {r} value {i}: {a} vs spec {b}",
                    path.display(),
                    info.name
                );
            }
        }
        *counts.entry(info.ty.name()).or_insert(0) += info.n_elements();
    }
    counts
}

#[test]
fn oracle_models_dequantize_like_the_spec() {
    let dir = shared_dir().join("oracle/models");
    let mut seen = std::collections::BTreeSet::new();
    for name in [
        "llama-spm-tiny.f16.gguf",
        "llama-spm-tiny.q4_k_m.gguf",
        "llama-spm-tiny.q8_0.gguf",
        "qwen2-bpe-tiny.q8_0.gguf",
    ] {
        seen.extend(check_file(&dir.join(name)).into_keys());
    }
    // The oracle files exercise these types; a silently skipped type would fail here.
    for ty in ["F16", "F32", "Q4_K", "Q6_K", "Q8_0"] {
        assert!(seen.contains(ty), "no {ty} tensor checked; saw {seen:?}");
    }
}

#[test]
fn default_model_dequantizes_like_the_spec() {
    let path = ms_fetch::default_model().expect("fetch the default model");
    let counts = check_file(&path);
    for ty in ["F32", "Q5_0", "Q8_0", "Q4_K", "Q6_K"] {
        assert!(
            counts.contains_key(ty),
            "no {ty} tensor checked; saw {counts:?}"
        );
    }
}
