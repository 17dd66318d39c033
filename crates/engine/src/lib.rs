//! The CPU inference engine: tokenizers, model architectures, KV cache, sampling and chat
//! templates over GGUF files.
//!
//! ```no_run
//! use ms_engine::{LoadOptions, Model, Session};
//! let model = Model::load("model.gguf", &LoadOptions::default())?;
//! let mut session = Session::new(&model);
//! let logits = session.eval(&[2, 818, 5279])?; // next-token logits after the prompt
//! let next = logits
//!     .iter()
//!     .enumerate()
//!     .max_by(|a, b| a.1.total_cmp(b.1))
//!     .map(|(i, _)| i as u32)
//!     .unwrap();
//! session.eval(&[next])?; // and so on, one token at a time
//! # Ok::<(), ms_engine::EngineError>(())
//! ```
//!
//! Supported architectures: [`SUPPORTED_ARCHITECTURES`] (`arch/<name>.rs` holds each forward
//! pass, top to bottom). Weights stay memory-mapped: only norm weights and biases are copied.
//! The KV cache is f16, allocated for the whole context but touched only as it fills. A long
//! input is evaluated in batches of [`MAX_BATCH`] tokens.
//!
//! # Numerics
//! The engine tracks llama.cpp's CPU backend, operation for operation where it matters:
//! activations quantized to the weights' `vec_dot_type` (Q8_0 the x86 way, Q8_K, f16) before
//! integer dot products (ms-quant's kernels), llama.cpp's f16 GELU table, f16 KV cache and
//! attention operands, its vectorised `exp` and 8-lane FMA reductions in attention. Every output
//! value is computed by one thread with one fixed order of operations, so results are identical
//! bit for bit for any thread count and any split of the input into batches.

mod arch;
mod attention;
pub mod backend;
mod batch;
pub mod bench;
mod buf;
pub mod dump;
mod error;
mod kernels;
mod kv_cache;
mod matmul;
mod model;
mod ops;
mod parallel;
mod pool;
mod session;

pub mod chat;
pub mod generate;
pub mod sampler;
pub mod tokenizer;
pub mod watermark;

pub use batch::{BatchError, BatchItem, eval_batch};
pub use error::EngineError;
pub use model::{
    Architecture, DEFAULT_MAX_CONTEXT, LoadOptions, Model, ModelInfo, SUPPORTED_ARCHITECTURES,
};
pub use session::{MAX_BATCH, Session};
