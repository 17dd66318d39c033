//! Tokenizer speed: building from GGUF metadata, and encoding / decoding throughput (bytes of
//! text per second) for the SentencePiece (Gemma 3, 262k tokens; llama, 32k) and byte-level
//! BPE (GPT-2 vocabulary, 50k) tokenizers.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ms_engine::tokenizer::Tokenizer;
use ms_gguf::GgufFile;
use ms_test_support::oracle_model;

/// About 64 KiB of mixed prose, code, accents and CJK, with line breaks.
fn sample_text() -> String {
    let base = "The quick brown fox jumps over the lazy dog. naïve café résumé — “quotes” \
                日本語のテキストです。Привет, мир! fn main() { println!(\"hi\"); }\n\
                def f(x):\n    return x ** 2\n\n1234567890 3.14159 -42 emoji 🙂🚀\n";
    let mut text = String::new();
    while text.len() < 64 * 1024 {
        text.push_str(base);
    }
    text
}

fn models() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("gemma3", ms_fetch::default_model().expect("default model")),
        ("llama-spm", oracle_model("llama-spm-tiny.q8_0")),
        ("gpt2-bpe", oracle_model("qwen2-bpe-tiny.q8_0")),
    ]
}

fn bench(c: &mut Criterion) {
    let text = sample_text();
    for (name, path) in models() {
        let file = GgufFile::open(&path).expect("model file");
        let mut g = c.benchmark_group(format!("tokenizer/{name}"));
        g.sample_size(10);
        g.bench_function("build", |b| b.iter(|| Tokenizer::from_gguf(&file).unwrap()));
        let tok = Tokenizer::from_gguf(&file).unwrap();
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function("encode", |b| b.iter(|| tok.encode(&text, true, true)));
        let ids = tok.encode(&text, true, true);
        g.bench_function("decode", |b| b.iter(|| tok.decode(&ids).unwrap()));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
