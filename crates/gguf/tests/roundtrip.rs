//! Read → write → read on the shared real files: same metadata, same tensor index and bytes,
//! and the same file byte for byte (llama.cpp's writers use the layout ours does).

use std::path::PathBuf;

use ms_gguf::{Array, GgmlType, GgufFile, GgufWriter, Metadata, TensorDesc, Value};
use ms_test_support::shared_dir;

fn shared_files() -> Vec<PathBuf> {
    let s = shared_dir();
    [
        "oracle/models/llama-spm-tiny.f16.gguf",
        "oracle/models/llama-spm-tiny.q4_k_m.gguf",
        "oracle/models/llama-spm-tiny.q8_0.gguf",
        "oracle/models/qwen2-bpe-tiny.q8_0.gguf",
        "oracle/vocab/ggml-vocab-gpt-2.gguf",
        "oracle/vocab/ggml-vocab-llama-spm.gguf",
    ]
    .iter()
    .map(|p| s.join(p))
    .collect()
}

#[test]
fn shared_files_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for src in shared_files() {
        let a = GgufFile::open(&src).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join(src.file_name().unwrap());
        ms_gguf::copy(&a, &out).unwrap();
        let b = GgufFile::open(&out).unwrap();
        assert_eq!(a.metadata(), b.metadata(), "{}", src.display());
        assert_eq!(a.tensors().len(), b.tensors().len());
        for (ta, tb) in a.tensors().iter().zip(b.tensors()) {
            assert_eq!(ta, tb, "{}", src.display());
            assert_eq!(a.tensor_data(ta), b.tensor_data(tb), "{}", ta.name);
        }
        assert!(
            a.bytes() == b.bytes(),
            "{} is not reproduced byte for byte",
            src.display()
        );
        // Nothing but the output is left in the directory (the temp file was renamed).
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".partial-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

fn every_value_type() -> Metadata {
    let mut m = Metadata::default();
    m.insert("general.architecture", Value::String("test".into()));
    m.insert("u8", Value::U8(200));
    m.insert("i8", Value::I8(-100));
    m.insert("u16", Value::U16(60000));
    m.insert("i16", Value::I16(-30000));
    m.insert("u32", Value::U32(4_000_000_000));
    m.insert("i32", Value::I32(-2_000_000_000));
    m.insert("f32", Value::F32(-1.5e-7));
    m.insert("bool", Value::Bool(true));
    m.insert("string", Value::String("héllo ▁world".into()));
    m.insert("u64", Value::U64(u64::MAX));
    m.insert("i64", Value::I64(i64::MIN));
    m.insert("f64", Value::F64(std::f64::consts::PI));
    m.insert("a.u8", Value::Array(Array::U8(vec![1, 2, 255])));
    m.insert("a.i8", Value::Array(Array::I8(vec![-1, 0, 127])));
    m.insert("a.u16", Value::Array(Array::U16(vec![1, 65535])));
    m.insert("a.i16", Value::Array(Array::I16(vec![-32768, 7])));
    m.insert("a.u32", Value::Array(Array::U32(vec![])));
    m.insert("a.i32", Value::Array(Array::I32(vec![-5, 5])));
    m.insert("a.f32", Value::Array(Array::F32(vec![0.25, -0.0])));
    m.insert("a.bool", Value::Array(Array::Bool(vec![true, false])));
    m.insert(
        "a.string",
        Value::Array(Array::String(vec!["".into(), "<0x0A>".into()])),
    );
    m.insert("a.u64", Value::Array(Array::U64(vec![u64::MAX])));
    m.insert("a.i64", Value::Array(Array::I64(vec![i64::MIN, 0])));
    m.insert("a.f64", Value::Array(Array::F64(vec![1e300])));
    m.insert(
        "a.nested",
        Value::Array(Array::Array(vec![
            Array::String(vec!["x".into()]),
            Array::Array(vec![Array::I32(vec![1, 2]), Array::F32(vec![])]),
            Array::U8(vec![]),
        ])),
    );
    m
}

#[test]
fn every_value_type_and_nested_arrays_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.gguf");
    let m = every_value_type();
    let w = GgufWriter::create(&path, &m, &[]).unwrap();
    w.finish().unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.metadata(), &m);
    assert_eq!(f.version(), 3);
    assert!(f.tensors().is_empty());
}

/// Deterministic bytes for a tensor of `n` bytes.
fn pattern(n: u64, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn tensors_streamed_in_chunks_honour_the_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.gguf");
    let mut m = Metadata::default();
    m.insert("general.alignment", Value::U32(64));
    let descs = [
        TensorDesc::new("a", [3u64], GgmlType::F32),
        TensorDesc::new("b", [64u64, 3], GgmlType::Q8_0),
        TensorDesc::new("empty", [0u64, 4], GgmlType::F16),
        TensorDesc::new("c", [5u64], GgmlType::F16),
    ];
    let mut w = GgufWriter::create(&path, &m, &descs).unwrap();
    let sizes: Vec<u64> = w.tensors().iter().map(|t| t.size).collect();
    assert_eq!(sizes, [12, 2 * 34 * 3, 0, 10]);
    w.write_tensor("a", &pattern(12, 1)).unwrap();
    // "b" in uneven pieces.
    let b = pattern(204, 2);
    for piece in b.chunks(50) {
        w.write_tensor_data(piece).unwrap();
    }
    assert_eq!(w.next_tensor().unwrap().name, "empty");
    w.write_tensor("empty", &[]).unwrap();
    w.write_tensor("c", &pattern(10, 3)).unwrap();
    assert!(w.next_tensor().is_none());
    w.finish().unwrap();

    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    for t in f.tensors() {
        assert_eq!(t.offset % 64, 0, "{}", t.name);
    }
    assert_eq!(f.tensor_data(f.tensor("a").unwrap()), pattern(12, 1));
    assert_eq!(f.tensor_data(f.tensor("b").unwrap()), b);
    assert_eq!(f.tensor_data(f.tensor("c").unwrap()), pattern(10, 3));
    assert!(f.tensor_data(f.tensor("empty").unwrap()).is_empty());
    assert_eq!(f.file_size() % 64, 0, "the last tensor is padded too");
}

#[test]
fn misuse_is_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    let m = Metadata::default();
    let descs = [
        TensorDesc::new("a", [4u64], GgmlType::F32),
        TensorDesc::new("b", [4u64], GgmlType::F32),
    ];
    let mut w = GgufWriter::create(&path, &m, &descs).unwrap();
    let e = w.write_tensor("b", &[0; 16]).unwrap_err().to_string();
    assert!(e.contains("next data belongs to tensor 'a'"), "{e}");
    let e = w.write_tensor("a", &[0; 15]).unwrap_err().to_string();
    assert!(e.contains("takes 16 bytes, 15 given"), "{e}");
    w.write_tensor_data(&[0; 10]).unwrap();
    let e = w.write_tensor_data(&[0; 10]).unwrap_err().to_string();
    assert!(e.contains("only 6 bytes left"), "{e}");
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("finished before tensor 'a' was complete"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Dropped mid-way: no final file, no temporary file.
    let mut w = GgufWriter::create(&path, &m, &descs).unwrap();
    w.write_tensor("a", &[0; 16]).unwrap();
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn invalid_tensor_lists_are_rejected_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gguf");
    let m = Metadata::default();
    let cases: [(&[TensorDesc], &str); 4] = [
        (
            &[
                TensorDesc::new("a", [4u64], GgmlType::F32),
                TensorDesc::new("a", [4u64], GgmlType::F32),
            ],
            "duplicate tensor name 'a'",
        ),
        (
            &[TensorDesc::new("q", [100u64], GgmlType::Q8_0)],
            "not a multiple of the Q8_0 block size 32",
        ),
        (
            &[TensorDesc::new("d", [1u64; 5], GgmlType::F32)],
            "has 5 dimensions",
        ),
        (
            &[TensorDesc::new("o", [u64::MAX, 2], GgmlType::F32)],
            "overflow",
        ),
    ];
    for (descs, msg) in cases {
        let e = GgufWriter::create(&path, &m, descs)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{e}");
        assert!(e.contains("x.gguf"), "{e}");
    }
    let mut bad_align = Metadata::default();
    bad_align.insert("general.alignment", Value::U32(48));
    let e = GgufWriter::create(&path, &bad_align, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("power of two"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_existing_file_is_replaced_only_on_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, b"old").unwrap();
    let descs = [TensorDesc::new("a", [2u64], GgmlType::F32)];
    let mut w = GgufWriter::create(&path, &Metadata::default(), &descs).unwrap();
    w.write_tensor("a", &[1; 8]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    w.finish().unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.tensor_data(&f.tensors()[0]), [1; 8]);
}

#[test]
fn long_string_arrays_read_back_and_can_be_taken_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vocab.gguf");
    let tokens: Vec<String> = (0..5000).map(|i| format!("▁tok{i}")).collect();
    let mut m = Metadata::default();
    m.insert(
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(tokens.clone())),
    );
    m.insert("n", Value::U32(1));
    GgufWriter::create(&path, &m, &[])
        .unwrap()
        .finish()
        .unwrap();

    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.metadata(), &m);
    let copy = f.metadata().clone();
    assert_eq!(copy.get_str_array("tokenizer.ggml.tokens").unwrap(), tokens);
    let mut owned = f.metadata().clone();
    assert_eq!(
        owned.remove("tokenizer.ggml.tokens"),
        Some(Value::Array(Array::String(tokens)))
    );
    assert_eq!(owned.len(), 1);
    assert_eq!(owned.get_u32("n"), Ok(1));
}

#[test]
fn default_model_round_trips_byte_for_byte() {
    let src = ms_fetch::default_model().expect("default model");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gemma3.gguf");
    let a = GgufFile::open(&src).unwrap();
    ms_gguf::copy(&a, &out).unwrap();
    let b = GgufFile::open(&out).unwrap();
    assert_eq!(a.metadata(), b.metadata());
    assert_eq!(a.tensors(), b.tensors());
    assert!(
        a.bytes() == b.bytes(),
        "the default model is not reproduced"
    );
}

#[test]
fn a_failed_rename_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a non-empty directory: the rename fails at the very end.
    let target = dir.path().join("taken.gguf");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("x"), b"x").unwrap();
    let w = GgufWriter::create(&target, &Metadata::default(), &[]).unwrap();
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("taken.gguf"), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["taken.gguf"]);
}

#[test]
fn files_and_metadata_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<GgufFile>();
    shareable::<Metadata>();
    // A lazily read vocabulary is materialized once even when threads race for it.
    let src = shared_dir().join("oracle/vocab/ggml-vocab-llama-spm.gguf");
    let f = GgufFile::open(src).unwrap();
    let lens: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let t = f.metadata().get_str_array("tokenizer.ggml.tokens").unwrap();
                    (t.len(), t.as_ptr() as usize)
                })
            })
            .collect();
        let r: Vec<(usize, usize)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            r[0].1, r[1].1,
            "both threads see the same materialized array"
        );
        r.into_iter().map(|x| x.0).collect()
    });
    assert_eq!(lens, [32000, 32000]);
}
