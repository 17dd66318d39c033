//! `modelspec quantize` run as a user runs it, against llama.cpp's own quantized files of the
//! shared tiny llama model (made by llama.cpp's quantizer from `llama-spm-tiny.f16.gguf`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use half::{bf16, f16};
use ms_gguf::{GgmlType, GgufFile, Value};
use ms_test_support::{TinyGguf, shared_dir};

fn model(name: &str) -> PathBuf {
    shared_dir().join("oracle/models").join(name)
}

fn quantize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .arg("quantize")
        .args(args)
        .output()
        .expect("run modelspec")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a failing command and returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = quantize(args);
    assert!(!out.status.success(), "expected failure for {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn q8_0_file_is_byte_identical_to_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.q8_0.gguf");
    let src = model("llama-spm-tiny.f16.gguf");
    ok(&quantize(&[s(&src), s(&out), "--to", "Q8_0"]));
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(model("llama-spm-tiny.q8_0.gguf")).unwrap();
    assert!(ours == theirs, "Q8_0 output differs from llama.cpp's");
}

#[test]
fn q4_k_m_with_reference_algorithm_is_byte_identical_to_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.q4_k_m.gguf");
    let src = model("llama-spm-tiny.f16.gguf");
    ok(&quantize(&[
        s(&src),
        s(&out),
        "--to",
        "Q4_K_M",
        "--reference",
    ]));
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(model("llama-spm-tiny.q4_k_m.gguf")).unwrap();
    assert!(
        ours == theirs,
        "Q4_K_M --reference output differs from llama.cpp's"
    );
}

#[test]
fn q4_k_m_matches_llama_cpp_types_and_metadata_and_ignores_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let src = model("llama-spm-tiny.f16.gguf");
    let one = dir.path().join("one.gguf");
    let two = dir.path().join("two.gguf");
    let out = quantize(&[s(&src), s(&one), "--to", "q4_k_m", "--threads", "1"]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("F32: 9, Q4_K: 24, Q6_K: 5"), "{stdout}");
    // No warnings for a clean F16 source, and no progress bar when stderr is not a terminal.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&quantize(&[
        s(&src),
        s(&two),
        "--to",
        "Q4_K_M",
        "--threads",
        "2",
    ]));
    assert!(
        std::fs::read(&one).unwrap() == std::fs::read(&two).unwrap(),
        "output depends on the thread count"
    );

    let ours = GgufFile::open(&one).unwrap();
    let theirs = GgufFile::open(model("llama-spm-tiny.q4_k_m.gguf")).unwrap();
    let names = |f: &GgufFile| {
        f.tensors()
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&ours), names(&theirs));
    for (a, b) in ours.tensors().iter().zip(theirs.tensors()) {
        assert_eq!((a.ty, &a.dims), (b.ty, &b.dims), "{}", a.name);
    }
    let kv = |f: &GgufFile| {
        f.metadata()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(kv(&ours), kv(&theirs));
    assert_eq!(
        ours.metadata().get("general.file_type"),
        Some(&Value::U32(15))
    );
    // Same types, refined scales: the K-quant tensors differ from llama.cpp's bytes.
    let t = ours.tensor("blk.0.attn_q.weight").unwrap();
    let u = theirs.tensor("blk.0.attn_q.weight").unwrap();
    assert_ne!(ours.tensor_data(t), theirs.tensor_data(u));
}

/// A Gemma-like model: 640-wide rows (not a multiple of 256), tied embeddings, BF16 and F32
/// weights, an F32 norm.
fn gemma_like(dir: &Path) -> (PathBuf, Vec<f32>) {
    let vals: Vec<f32> = (0..640 * 8)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.2)
        .collect();
    let path = TinyGguf::arch("gemma3")
        .meta("gemma3.block_count", Value::U32(1))
        .meta("general.file_type", Value::U32(32))
        .tensor_bf16("token_embd.weight", &[640, 8], &vals)
        .tensor_f32("blk.0.attn_q.weight", &[640, 8], &vals)
        .tensor_bf16("blk.0.attn_v.weight", &[640, 8], &vals)
        .tensor_f32("blk.0.attn_norm.weight", &[640], &[1.0; 640])
        .write(dir.join("gemma-like.gguf"));
    let rounded = vals.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
    (path, rounded)
}

fn types(path: &Path) -> Vec<(String, GgmlType)> {
    let f = GgufFile::open(path).unwrap();
    f.tensors().iter().map(|t| (t.name.clone(), t.ty)).collect()
}

#[test]
fn rows_not_divisible_by_256_fall_back_as_in_llama_cpp() {
    use GgmlType::*;
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = gemma_like(dir.path());
    let out = dir.path().join("q4km.gguf");
    let run = quantize(&[s(&src), s(&out), "--to", "Q4_K_M"]);
    ok(&run);
    assert!(
        String::from_utf8_lossy(&run.stderr)
            .contains("do not fit Q4_K's 256-value blocks; using Q5_0"),
        "fallback warning missing"
    );
    let want = |v: &[(&str, GgmlType)]| {
        v.iter()
            .map(|(n, t)| (n.to_string(), *t))
            .collect::<Vec<_>>()
    };
    // Tied embeddings take the output's type: Q8_0 when rows are not whole Q4_K blocks.
    // attn_v of the only layer is a "more bits" layer: Q6_K, falling back to Q8_0.
    assert_eq!(
        types(&out),
        want(&[
            ("token_embd.weight", Q8_0),
            ("blk.0.attn_norm.weight", F32),
            ("blk.0.attn_q.weight", Q5_0),
            ("blk.0.attn_v.weight", Q8_0),
        ])
    );
    let out6 = dir.path().join("q6k.gguf");
    ok(&quantize(&[s(&src), s(&out6), "--to", "Q6_K"]));
    assert!(
        types(&out6)
            .iter()
            .all(|(n, t)| *t == if n.contains("norm") { F32 } else { Q8_0 })
    );
}

#[test]
fn bf16_input_quantizes_to_q8_0_within_half_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let (src, vals) = gemma_like(dir.path());
    let out = dir.path().join("q8.gguf");
    ok(&quantize(&[s(&src), s(&out), "--to", "Q8_0"]));
    let f = GgufFile::open(&out).unwrap();
    let t = f.tensor("blk.0.attn_v.weight").unwrap();
    assert_eq!(t.ty, GgmlType::Q8_0);
    for (b, x) in f.tensor_data(t).chunks_exact(34).zip(vals.chunks_exact(32)) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((d - amax / 127.0).abs() <= amax / 127.0 * 1e-3);
        // Codes are rounded against the exact scale amax/127; the stored scale is its f16.
        let bound = d * 0.5 + 127.0 * (d - amax / 127.0).abs() + 1e-6;
        for (&q, &v) in b[2..].iter().zip(x) {
            assert!((q as i8 as f32 * d - v).abs() <= bound);
        }
    }
}

#[test]
fn bad_inputs_give_clear_errors_and_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = model("llama-spm-tiny.f16.gguf");

    let text = d.join("notes.txt");
    std::fs::write(&text, "not a model").unwrap();
    let err = fails(&[s(&text), s(&d.join("o.gguf")), "--to", "Q8_0"]);
    // The input is a MODEL like every command's: a file that is not GGUF must be a ModelSpec.
    assert!(
        err.contains("neither a GGUF file nor a valid ModelSpec") && err.contains("notes.txt"),
        "{err}"
    );

    let err = fails(&[
        s(&d.join("missing.gguf")),
        s(&d.join("o.gguf")),
        "--to",
        "Q8_0",
    ]);
    assert!(err.contains("missing.gguf"), "{err}");

    let err = fails(&[s(&src), s(&d.join("no/such/dir/o.gguf")), "--to", "Q8_0"]);
    assert!(
        err.contains("cannot create the output file") && err.contains("no/such/dir"),
        "{err}"
    );

    let err = fails(&[s(&src), s(&d.join("o.gguf")), "--to", "Q3_K"]);
    assert!(
        err.contains("unknown target 'Q3_K'") && err.contains("Q4_K_M"),
        "{err}"
    );

    // The input itself, also through another spelling of its path.
    let copy = d.join("model.gguf");
    std::fs::copy(&src, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let err = fails(&[s(&copy), s(&copy), "--to", "Q8_0"]);
    assert!(err.contains("refusing to overwrite the input"), "{err}");
    let other_spelling = d.join("sub/../model.gguf");
    std::fs::create_dir(d.join("sub")).unwrap();
    let err = fails(&[s(&copy), s(&other_spelling), "--to", "Q8_0"]);
    assert!(err.contains("refusing to overwrite the input"), "{err}");
    let link = d.join("link.gguf");
    std::fs::hard_link(&copy, &link).unwrap();
    let err = fails(&[s(&copy), s(&link), "--to", "Q8_0"]);
    assert!(err.contains("refusing to overwrite the input"), "{err}");
    std::fs::remove_file(&link).unwrap();
    assert!(std::fs::read(&copy).unwrap() == before);

    let err = fails(&[s(&src), s(&d.join("sub")), "--to", "Q8_0"]);
    assert!(err.contains("is a directory"), "{err}");

    // A 2-D tensor in a type we cannot read.
    let odd = TinyGguf::arch("llama")
        .tensor("blk.0.ffn_up.weight", &[32, 2], GgmlType::I32, vec![0; 256])
        .write(d.join("i32.gguf"));
    let err = fails(&[s(&odd), s(&d.join("o.gguf")), "--to", "Q8_0"]);
    assert!(
        err.contains("blk.0.ffn_up.weight") && err.contains("I32") && err.contains("F16"),
        "{err}"
    );

    assert_eq!(
        files_in(d),
        vec!["i32.gguf", "model.gguf", "notes.txt", "sub"],
        "a failed run left files behind"
    );
}
