//! The CPU inference engine: tokenizers, model architectures, KV cache, sampling and chat
//! templates over GGUF files.

pub mod chat;
pub mod sampler;
pub mod tokenizer;
