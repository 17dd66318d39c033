//! Several sessions evaluated together: each item's tokens after its own session's, with the
//! same bits as evaluating each session alone.
//!
//! All items go through one forward pass (see `arch::Segment`): every matrix product runs over
//! the rows of all items at once, so the weights are streamed from memory once per step rather
//! than once per session, which is what makes decoding several sequences cheaper than one after
//! another. RoPE positions, KV-cache stores and attention stay per item. The kernels give each
//! output row the same bits whatever rows it is grouped with, so a session cannot tell whether
//! it was batched. A pass holds at most [`crate::MAX_BATCH`] rows in all; more are split over
//! several passes (an item may straddle two), which changes no result either.

use std::sync::Arc;

use crate::session::{Job, eval_sessions};
use crate::{EngineError, Session};

/// One sequence of a batch: the session and the tokens to evaluate after those it holds.
pub struct BatchItem<'a> {
    pub session: &'a mut Session,
    pub tokens: &'a [u32],
}

/// Why a batch was refused: the first item that cannot be evaluated, and why.
#[derive(Debug, thiserror::Error)]
#[error("batch item {index}: {source}")]
pub struct BatchError {
    pub index: usize,
    #[source]
    pub source: EngineError,
}

/// Evaluates each item's tokens after the tokens its session already holds. Afterwards each
/// session's [`Session::logits`] are bit for bit what `session.eval(tokens)` alone would have
/// returned (the last token's logits).
///
/// All sessions must be over the same [`crate::Model`] (the same load: clones share it, two
/// loads of one file do not). Every item is checked before any work (same model, tokens in the
/// vocabulary, room in its context, not empty): on error no session has changed. An empty
/// batch does nothing.
pub fn eval_batch(items: &mut [BatchItem<'_>]) -> Result<(), BatchError> {
    let Some(first) = items.first() else {
        return Ok(());
    };
    let model = first.session.model().clone();
    for (index, item) in items.iter().enumerate() {
        if !Arc::ptr_eq(&item.session.model().inner, &model.inner) {
            return Err(BatchError {
                index,
                source: EngineError::MixedModels { index },
            });
        }
        item.session
            .check(item.tokens)
            .map_err(|source| BatchError { index, source })?;
    }
    let mut jobs: Vec<Job> = items
        .iter_mut()
        .map(|item| Job {
            session: &mut *item.session,
            tokens: item.tokens,
            all: false,
        })
        .collect();
    eval_sessions(&model.inner, &mut jobs);
    Ok(())
}
