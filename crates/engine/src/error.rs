//! Errors of model loading and evaluation.

use std::path::PathBuf;

/// Why a model could not be loaded or evaluated. Every message names the file, key, tensor or
/// limit involved and, where there is one, how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gguf(#[from] ms_gguf::GgufError),

    #[error("{path}: architecture '{found}' is not supported (supported: {supported})")]
    UnsupportedArchitecture {
        path: PathBuf,
        found: String,
        supported: String,
    },

    #[error("{path}: {source}")]
    Metadata {
        path: PathBuf,
        #[source]
        source: ms_gguf::MetaError,
    },

    #[error("{path}: {what}")]
    BadModel { path: PathBuf, what: String },

    #[error("{path}: tensor '{tensor}': {what}")]
    BadTensor {
        path: PathBuf,
        tensor: String,
        what: String,
    },

    #[error(
        "the input has {tokens} tokens but only {available} fit in the context \
         ({used} of {context_length} positions already used); shorten the prompt or raise \
         the context length"
    )]
    ContextFull {
        tokens: usize,
        available: usize,
        used: usize,
        context_length: usize,
    },

    #[error(
        "token id {token} at input position {index} is outside the vocabulary (size {n_vocab})"
    )]
    BadToken {
        token: u32,
        index: usize,
        n_vocab: usize,
    },

    #[error("nothing to evaluate: the input has no tokens")]
    EmptyInput,

    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),

    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// A batch whose sessions are not all over one loaded model (a caller's bug, not a
    /// request's: the scheduler keeps one batch per engine).
    #[error(
        "batch item {index} is over another loaded model than item 0; all sessions of a batch must be over the same loaded model"
    )]
    MixedModels { index: usize },
}
