//! A runnable llama of a few kilobytes, made here rather than committed: one layer, width 32,
//! a SentencePiece vocabulary of the 256 byte tokens plus `<unk>`, `<s>`, `</s>` (any text
//! tokenizes through byte fallback), F16 matrices of fixed pseudo-random weights. Its text is
//! noise; what it is for is a real GGUF that loads, generates and serves in milliseconds
//! (registry round trips, signatures, tampering).

use half::f16;
use ms_gguf::{Array, GgmlType, Value};

use crate::TinyGguf;

const WIDTH: u64 = 32;
const HEADS: u64 = 2;
const FF: u64 = 64;
/// `<unk>`, `<s>`, `</s>` and `<0x00>`..`<0xFF>`.
const VOCAB: u64 = 3 + 256;

/// The tiny llama; `seed` changes every weight (two seeds, two different artifacts).
pub fn tiny_llama(seed: u64) -> TinyGguf {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    // llama.cpp's token types: 2 unknown, 3 control, 6 byte.
    let mut types = vec![2i32, 3, 3];
    types.extend(std::iter::repeat_n(6, 256));
    let u32v = |v: u64| Value::U32(v as u32);
    let mut rng = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut matrix = |g: TinyGguf, name: &str, cols: u64, rows: u64| {
        let bytes = (0..cols * rows)
            .flat_map(|_| f16::from_f32(rng.next() * 0.5).to_le_bytes())
            .collect();
        g.tensor(name, &[cols, rows], GgmlType::F16, bytes)
    };
    let ones = vec![1.0f32; WIDTH as usize];
    let g = TinyGguf::arch("llama")
        .meta("general.name", Value::String("tiny-synthetic".into()))
        .meta("llama.context_length", u32v(256))
        .meta("llama.embedding_length", u32v(WIDTH))
        .meta("llama.feed_forward_length", u32v(FF))
        .meta("llama.block_count", u32v(1))
        .meta("llama.attention.head_count", u32v(HEADS))
        .meta("llama.attention.head_count_kv", u32v(HEADS))
        .meta("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
        .meta("llama.rope.freq_base", Value::F32(10000.0))
        .meta("llama.rope.dimension_count", u32v(WIDTH / HEADS))
        .meta("tokenizer.ggml.model", Value::String("llama".into()))
        .meta("tokenizer.ggml.pre", Value::String("default".into()))
        .meta("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
        .meta(
            "tokenizer.ggml.scores",
            Value::Array(Array::F32(vec![0.0; VOCAB as usize])),
        )
        .meta("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
        .meta("tokenizer.ggml.bos_token_id", u32v(1))
        .meta("tokenizer.ggml.eos_token_id", u32v(2))
        .meta("tokenizer.ggml.unknown_token_id", u32v(0))
        .meta("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .meta("tokenizer.ggml.add_eos_token", Value::Bool(false))
        .tensor_f32("output_norm.weight", &[WIDTH], &ones)
        .tensor_f32("blk.0.attn_norm.weight", &[WIDTH], &ones)
        .tensor_f32("blk.0.ffn_norm.weight", &[WIDTH], &ones);
    let g = matrix(g, "token_embd.weight", WIDTH, VOCAB);
    let g = matrix(g, "blk.0.attn_q.weight", WIDTH, WIDTH);
    let g = matrix(g, "blk.0.attn_k.weight", WIDTH, WIDTH);
    let g = matrix(g, "blk.0.attn_v.weight", WIDTH, WIDTH);
    let g = matrix(g, "blk.0.attn_output.weight", WIDTH, WIDTH);
    let g = matrix(g, "blk.0.ffn_gate.weight", WIDTH, FF);
    let g = matrix(g, "blk.0.ffn_up.weight", WIDTH, FF);
    matrix(g, "blk.0.ffn_down.weight", FF, WIDTH)
}

/// xorshift64: values in [-1, 1).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}
