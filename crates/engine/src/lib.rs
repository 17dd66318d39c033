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
//! Supported architectures: [`SUPPORTED_ARCHITECTURES`]. Weights stay memory-mapped; results
//! are identical for any thread count and batch split.

mod arch;
pub mod dump;
mod error;
mod kernels;
mod kv_cache;
mod matmul;
mod model;
mod ops;
mod parallel;
mod session;

pub mod chat;
pub mod generate;
pub mod sampler;
pub mod tokenizer;

pub use error::EngineError;
pub use model::{
    Architecture, DEFAULT_MAX_CONTEXT, LoadOptions, Model, ModelInfo, SUPPORTED_ARCHITECTURES,
};
pub use session::{MAX_BATCH, Session};
