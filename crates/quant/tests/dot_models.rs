//! The dot kernels on real weight rows: a sample of rows from every tensor of the oracle models
//! and the default model, against the documented arithmetic (bit-exact) and the f64 bound.

mod dequant_spec;
mod dot_contract;

use std::collections::BTreeSet;
use std::path::Path;

use dot_contract::{Rng, contract, exact_and_bound};
use ms_gguf::GgufFile;
use ms_quant::{QuantizedRow, dot, vec_dot};
use ms_test_support::shared_dir;

/// Checks rows 0, 1, a middle one and the last of every 2-D tensor with a dot kernel, against
/// activations shaped like a hidden state (mostly small, a few large outliers).
fn check(path: &Path) -> BTreeSet<&'static str> {
    let file = GgufFile::open(path).unwrap();
    let mut rng = Rng(7);
    let mut act = QuantizedRow::new();
    let mut seen = BTreeSet::new();
    for info in file.tensors().iter().filter(|t| t.dims.len() == 2) {
        if dot::kernel(info.ty).is_err() {
            continue;
        }
        let n = info.row_len() as usize;
        let rows = info.n_rows() as usize;
        let row_bytes = info.ty.row_bytes(n as u64).unwrap() as usize;
        let data = file.tensor_data(info);
        let x: Vec<f32> = (0..n)
            .map(|i| rng.unit() * if i % 97 == 0 { 20.0 } else { 1.0 })
            .collect();
        act.quantize(info.ty, &x).unwrap();
        for r in [0, 1.min(rows - 1), rows / 2, rows - 1] {
            let w = &data[r * row_bytes..(r + 1) * row_bytes];
            let got = vec_dot(info.ty, w, &act).unwrap();
            let want = contract(info.ty, w, &act);
            assert_eq!(got.to_bits(), want.to_bits(), "{} row {r}", info.name);
            let (exact, bound) = exact_and_bound(info.ty, w, &act);
            assert!(
                (got as f64 - exact).abs() <= bound,
                "{} row {r}: {got} vs exact {exact} (bound {bound})",
                info.name
            );
        }
        seen.insert(info.ty.name());
    }
    seen
}

#[test]
fn oracle_model_rows() {
    let mut seen = BTreeSet::new();
    for name in [
        "llama-spm-tiny.f16.gguf",
        "llama-spm-tiny.q4_k_m.gguf",
        "llama-spm-tiny.q8_0.gguf",
        "qwen2-bpe-tiny.q8_0.gguf",
    ] {
        seen.extend(check(&shared_dir().join("oracle/models").join(name)));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["F16", "Q4_K", "Q6_K", "Q8_0"]
    );
}

#[test]
fn default_model_rows() {
    let path = ms_fetch::default_model().expect("fetch the default model");
    let seen = check(&path);
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["Q4_K", "Q5_0", "Q6_K", "Q8_0"]
    );
}
