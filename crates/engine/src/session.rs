//! A session: one sequence being evaluated, with its KV cache and position.

use crate::arch::{self, Logits};
use crate::kv_cache::KvCache;
use crate::{EngineError, Model};

/// Tokens evaluated per forward pass when a long input is split (bounds scratch memory).
pub const MAX_BATCH: usize = 128;

/// One sequence over a [`Model`]: feed tokens with [`Session::eval`], read the next-token
/// logits, feed the chosen token, and so on. Positions start at 0 and grow by one per token
/// until the model's context length; [`Session::reset`] starts a new sequence.
pub struct Session {
    model: Model,
    cache: KvCache,
    pos: usize,
    context_length: usize,
    logits: Vec<f32>,
}

impl Session {
    /// A new, empty session with the model's context length (see `LoadOptions`).
    pub fn new(model: &Model) -> Session {
        let hp = &model.inner.hp;
        let context_length = model.info().context_length;
        Session {
            cache: KvCache::new(hp.n_layer, context_length, hp.n_head_kv * hp.head_dim),
            model: model.clone(),
            pos: 0,
            context_length,
            logits: Vec::new(),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Evaluates `tokens` after those already in the session and returns the logits (one per
    /// vocabulary entry) predicting the token that follows the last of them.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32], EngineError> {
        self.run(tokens, false)?;
        Ok(&self.logits)
    }

    /// Like [`Session::eval`] but returns the logits after every token of `tokens`:
    /// `tokens.len()` rows of `n_vocab` values, row `i` predicting the token after `tokens[i]`.
    pub fn eval_all(&mut self, tokens: &[u32]) -> Result<&[f32], EngineError> {
        self.run(tokens, true)?;
        Ok(&self.logits)
    }

    /// The logits returned by the last evaluation.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Number of tokens evaluated so far (the position of the next token).
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// How many more tokens fit in the context.
    pub fn remaining(&self) -> usize {
        self.context_length - self.pos
    }

    /// Forgets every token: the next evaluation starts at position 0.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.logits.clear();
    }

    /// Keeps only the first `n` tokens (for reusing a shared prefix); no-op if `n` is not
    /// smaller than the current position.
    pub fn truncate(&mut self, n: usize) {
        self.pos = self.pos.min(n);
    }

    /// Checks that `tokens` can be evaluated next: not empty, inside the vocabulary, within
    /// the context left. Nothing changes.
    pub(crate) fn check(&self, tokens: &[u32]) -> Result<(), EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyInput);
        }
        if tokens.len() > self.remaining() {
            return Err(EngineError::ContextFull {
                tokens: tokens.len(),
                available: self.remaining(),
                used: self.pos,
                context_length: self.context_length,
            });
        }
        let n_vocab = self.model.info().n_vocab;
        if let Some((index, &token)) = tokens
            .iter()
            .enumerate()
            .find(|&(_, &t)| t as usize >= n_vocab)
        {
            return Err(EngineError::BadToken {
                token,
                index,
                n_vocab,
            });
        }
        Ok(())
    }

    fn run(&mut self, tokens: &[u32], all: bool) -> Result<(), EngineError> {
        self.check(tokens)?;
        self.logits.clear();
        let batches = tokens.chunks(MAX_BATCH);
        let last = batches.len() - 1;
        for (i, batch) in batches.enumerate() {
            let which = match (all, i == last) {
                (true, _) => Logits::All,
                (false, true) => Logits::Last,
                (false, false) => Logits::None,
            };
            let logits = arch::forward(&self.model.inner, &mut self.cache, batch, self.pos, which);
            self.pos += batch.len();
            self.logits.extend_from_slice(&logits);
        }
        Ok(())
    }
}
