//! `modelspec quantize` on the default model (Gemma 3 270M "Q4_K_M", made by llama.cpp): most of
//! its rows are 640 wide, so llama.cpp's mix falls back to Q5_0 and Q8_0 for them. Requantizing
//! it to Q4_K_M must reproduce the file's own type of every tensor.

use std::path::Path;
use std::process::Command;

use ms_gguf::{GgmlType, GgufFile, Value};

fn quantize(input: &Path, output: &Path, to: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .arg("quantize")
        .arg(input)
        .arg(output)
        .args(["--to", to])
        .output()
        .expect("run modelspec");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn default_model_keeps_llama_cpp_types_and_requantizes_to_q8_0() {
    let src = ms_fetch::default_model().expect("default model");
    let dir = tempfile::tempdir().unwrap();
    let input = GgufFile::open(&src).unwrap();

    let q4 = dir.path().join("q4_k_m.gguf");
    quantize(&src, &q4, "Q4_K_M");
    let ours = GgufFile::open(&q4).unwrap();
    assert_eq!(ours.tensors().len(), input.tensors().len());
    let mut seen = std::collections::BTreeSet::new();
    for t in input.tensors() {
        let o = ours.tensor(&t.name).expect("every tensor is written");
        assert_eq!(
            o.ty, t.ty,
            "{}: llama.cpp chose {}, we chose {}",
            t.name, t.ty, o.ty
        );
        assert_eq!(ours.tensor_data(o), input.tensor_data(t), "{}", t.name);
        seen.insert(t.ty);
    }
    // The mix, its fallbacks and the untouched norms are all exercised.
    use GgmlType::*;
    assert_eq!(seen, [F32, Q5_0, Q8_0, Q4K, Q6K].into_iter().collect());
    assert_eq!(
        ours.metadata().get("general.file_type"),
        Some(&Value::U32(15))
    );

    let q8 = dir.path().join("q8_0.gguf");
    let warnings = quantize(&src, &q8, "Q8_0");
    assert!(warnings.contains("loses precision"), "{warnings}");
    let q8 = GgufFile::open(&q8).unwrap();
    for t in input.tensors() {
        let o = q8.tensor(&t.name).unwrap();
        let want = if t.dims.len() >= 2 { Q8_0 } else { t.ty };
        assert_eq!(o.ty, want, "{}", t.name);
        if t.ty == Q8_0 {
            assert_eq!(q8.tensor_data(o), input.tensor_data(t), "{}", t.name);
        }
    }
    // A requantized tensor stays close to its source: Q8_0's error is far below Q4_K's step.
    let t = input.tensor("blk.0.ffn_down.weight").unwrap();
    let a = ms_quant::dequantize_to_vec(t.ty, input.tensor_data(t)).unwrap();
    let o = q8.tensor(&t.name).unwrap();
    let b = ms_quant::dequantize_to_vec(o.ty, q8.tensor_data(o)).unwrap();
    let rms = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    let diff: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    assert!(rms(&diff) < rms(&a) * 0.01, "{} vs {}", rms(&diff), rms(&a));
}
