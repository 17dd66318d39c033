//! Writes small, valid GGUF files to seed the fuzzer: `fuzz_seeds DIR`.
use ms_gguf::{Array, GgmlType, GgufWriter, Metadata, TensorDesc, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    std::fs::create_dir_all(&dir)?;

    let mut vocab = Metadata::default();
    vocab.insert("general.architecture", Value::String("llama".into()));
    vocab.insert("llama.block_count", Value::U32(2));
    vocab.insert("tokenizer.ggml.model", Value::String("llama".into()));
    let tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<0x0A>", "▁a", "b"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    vocab.insert("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    vocab.insert(
        "tokenizer.ggml.scores",
        Value::Array(Array::F32(vec![0.0, 0.0, 0.0, -1.0, -2.0, -3.5])),
    );
    vocab.insert(
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![2, 3, 3, 6, 1, 1])),
    );
    vocab.insert("tokenizer.ggml.add_bos_token", Value::Bool(true));
    GgufWriter::create(format!("{dir}/vocab.gguf"), &vocab, &[])?.finish()?;

    // Long enough (>= 1024 strings) for the reader's lazily materialized path.
    let mut long = Metadata::default();
    let many: Vec<String> = (0..1100).map(|i| format!("▁{i}")).collect();
    long.insert("tokenizer.ggml.tokens", Value::Array(Array::String(many)));
    long.insert("general.architecture", Value::String("llama".into()));
    GgufWriter::create(format!("{dir}/long-vocab.gguf"), &long, &[])?.finish()?;

    let mut all = vocab.clone();
    all.insert("general.alignment", Value::U32(64));
    all.insert("u8", Value::U8(1));
    all.insert("i8", Value::I8(-1));
    all.insert("u16", Value::U16(2));
    all.insert("i16", Value::I16(-2));
    all.insert("i32", Value::I32(-3));
    all.insert("u64", Value::U64(4));
    all.insert("i64", Value::I64(-4));
    all.insert("f64", Value::F64(0.5));
    all.insert(
        "nested",
        Value::Array(Array::Array(vec![
            Array::U16(vec![1, 2]),
            Array::Array(vec![Array::Bool(vec![true])]),
            Array::U64(vec![7]),
        ])),
    );
    let descs = [
        TensorDesc::new("token_embd.weight", [32u64, 6], GgmlType::Q8_0),
        TensorDesc::new("norm.weight", [32u64], GgmlType::F32),
        TensorDesc::new("k.weight", [256u64, 1], GgmlType::Q4K),
        TensorDesc::new("h.weight", [4u64, 2, 1, 1], GgmlType::F16),
    ];
    let mut w = GgufWriter::create(format!("{dir}/tensors.gguf"), &all, &descs)?;
    let sizes: Vec<(String, u64)> = w
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.size))
        .collect();
    for (name, size) in sizes {
        let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        w.write_tensor(&name, &data)?;
    }
    w.finish()?;

    // The same file as version 2 (identical layout, only the version differs).
    let mut v2 = std::fs::read(format!("{dir}/tensors.gguf"))?;
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(format!("{dir}/tensors-v2.gguf"), v2)?;
    Ok(())
}
