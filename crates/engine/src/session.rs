//! A session: one sequence being evaluated, with its KV cache and position.

use std::cell::Cell;
use std::sync::Arc;

use crate::arch::{self, Logits, Segment};
use crate::kv_cache::KvCache;
use crate::model::ModelInner;
use crate::{EngineError, Model};

/// Most token rows evaluated in one forward pass, over all the sessions of a batch: longer
/// inputs are split over several passes (bounds scratch memory; results do not change).
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
        let model = Arc::clone(&self.model.inner);
        eval_sessions(
            &model,
            &mut [Job {
                session: self,
                tokens,
                all,
            }],
        );
        Ok(())
    }
}

/// One session's share of [`eval_sessions`].
pub(crate) struct Job<'a> {
    pub session: &'a mut Session,
    pub tokens: &'a [u32],
    /// Whether to keep every token's logits (else the last token's).
    pub all: bool,
}

/// Evaluates every job's tokens after its session's, in forward passes of at most
/// [`MAX_BATCH`] rows in all: jobs fill a pass in order, and the one that does not fit in what
/// is left continues in the next pass. The jobs must be over `m` and already checked with
/// [`Session::check`]. How the rows are grouped never changes a result.
pub(crate) fn eval_sessions(m: &ModelInner, jobs: &mut [Job<'_>]) {
    for job in jobs.iter_mut() {
        job.session.logits.clear();
    }
    // Tokens of each job evaluated so far, and the first job not finished (kept per thread:
    // a generated token allocates nothing here).
    let mut done = DONE.take();
    done.clear();
    done.resize(jobs.len(), 0);
    let mut plan = PLAN.take();
    let mut next = 0;
    while next < jobs.len() {
        plan.clear();
        let mut room = MAX_BATCH;
        for (i, job) in jobs.iter().enumerate().skip(next) {
            if room == 0 {
                break;
            }
            let take = (job.tokens.len() - done[i]).min(room);
            plan.push(done[i]..done[i] + take);
            room -= take;
        }
        let n_vocab = m.w.output.rows;
        // One segment (a generated token) without a list on the heap.
        let logits = if let ([job], [range]) = (&mut jobs[next..], &plan[..]) {
            arch::forward(m, &mut [segment(job, range)])
        } else {
            let mut segs: Vec<Segment> = jobs[next..]
                .iter_mut()
                .zip(&plan)
                .map(|(job, range)| segment(job, range))
                .collect();
            arch::forward(m, &mut segs)
        };
        // Each job's share of the pass's logits, in order.
        let mut rest = logits.as_deref().unwrap_or(&[]);
        for (job, range) in jobs[next..].iter_mut().zip(plan.iter()) {
            let share = logits_of(job, range).rows(range.len());
            let (mine, tail) = rest.split_at(share * n_vocab);
            let s = &mut *job.session;
            s.pos += range.len();
            s.logits.extend_from_slice(mine);
            rest = tail;
        }
        for (i, range) in plan.iter().enumerate() {
            done[next + i] = range.end;
        }
        next += plan
            .iter()
            .zip(&jobs[next..])
            .take_while(|(range, job)| range.end == job.tokens.len())
            .count();
    }
    DONE.set(done);
    PLAN.set(plan);
}

/// Job `job`'s share `range` of its tokens as a pass's segment.
fn segment<'s>(job: &'s mut Job<'_>, range: &std::ops::Range<usize>) -> Segment<'s> {
    Segment {
        logits: logits_of(job, range),
        tokens: &job.tokens[range.clone()],
        pos0: job.session.pos,
        cache: &mut job.session.cache,
    }
}

/// Which logits job `job` keeps from its share `range`: every token's, or the last one's once
/// its tokens are done.
fn logits_of(job: &Job<'_>, range: &std::ops::Range<usize>) -> Logits {
    match (job.all, range.end == job.tokens.len()) {
        (true, _) => Logits::All,
        (false, true) => Logits::Last,
        (false, false) => Logits::None,
    }
}

thread_local! {
    static DONE: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
    static PLAN: Cell<Vec<std::ops::Range<usize>>> = const { Cell::new(Vec::new()) };
}
