//! The forward pass of each architecture, one file each, reading top to bottom; the steps they
//! share (embedding lookup, matrix products, output head) live in [`Pass`].

mod gemma3;
mod llama;
mod qwen2;

use crate::backend::WeightMatrix;
use crate::kv_cache::KvCache;
use crate::matmul;
use crate::model::{Architecture, Matrix, ModelInner};
use crate::ops;
use crate::parallel::run_chunks;

/// Fewest values for an element-wise step to be spread over the pool (a generated token's
/// norms and activations, a few thousand values, take less than a dispatch).
const MIN_PARALLEL_VALUES: usize = 1 << 14;

/// One evaluation of a batch of tokens: the model, its mapped bytes and the thread budget.
pub(crate) struct Pass<'a> {
    pub m: &'a ModelInner,
    pub file: &'a [u8],
    pub threads: usize,
}

/// Which logits a forward pass computes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logits {
    /// None: the batch only fills the cache.
    None,
    /// The last token's.
    Last,
    /// Every token's, row-major, `n_vocab` per token.
    All,
}

/// Runs the model over `tokens` (positions `pos0..`), filling the cache, and returns the
/// logits asked for.
pub(crate) fn forward(
    m: &ModelInner,
    cache: &mut KvCache,
    tokens: &[u32],
    pos0: usize,
    all: Logits,
) -> Vec<f32> {
    let p = Pass {
        m,
        file: m.file.bytes(),
        threads: m.info.threads,
    };
    match m.hp.arch {
        Architecture::Llama => llama::forward(&p, cache, tokens, pos0, all),
        Architecture::Qwen2 => qwen2::forward(&p, cache, tokens, pos0, all),
        Architecture::Gemma3 => gemma3::forward(&p, cache, tokens, pos0, all),
    }
}

impl Pass<'_> {
    /// The embedding rows of `tokens` (ids already checked against the vocabulary).
    pub fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        let d = self.m.hp.n_embd;
        let mut x = vec![0.0f32; tokens.len() * d];
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            matmul::get_row(self.file, &self.m.w.token_embd, t as usize, row);
        }
        x
    }

    /// `w × x` for every token row of `x`.
    pub fn mm(&self, w: &Matrix, x: &[f32]) -> Vec<f32> {
        let n = x.len() / w.cols;
        let mut out = vec![0.0f32; n * w.rows];
        let weights = WeightMatrix {
            ty: w.ty,
            rows: w.rows,
            cols: w.cols,
            data: &self.file[w.offset..w.offset + w.rows * w.row_bytes],
        };
        self.m.backend.matmul(&weights, x, &mut out, self.threads);
        out
    }

    /// A normalized copy of `x` (RMS norm with weight `w` over rows of `w.len()`).
    pub fn norm(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        self.norm_owned(x.to_vec(), w)
    }

    /// `h` normalized in place (RMS norm with weight `w` over rows of `w.len()`).
    pub fn norm_owned(&self, mut h: Vec<f32>, w: &[f32]) -> Vec<f32> {
        let eps = self.m.hp.rms_eps;
        self.by_rows(&mut h, w.len(), &|_, rows| ops::rms_norm(rows, w, eps));
        h
    }

    /// `gate = gelu_tanh(gate) * up` over rows of `width` values, rows spread over the threads.
    pub fn geglu(&self, gate: &mut [f32], up: &[f32], width: usize) {
        self.by_rows(gate, width, &|start, g| {
            ops::geglu(g, &up[start..start + g.len()])
        });
    }

    /// Runs `f(first_index, rows)` over groups of whole rows of `width` values of `buf`, on the
    /// pool for a prompt's many rows and inline for a generated token's few values, where
    /// dispatching would cost more than the work. Each row is computed by one call, the same
    /// way whatever the split.
    fn by_rows(&self, buf: &mut [f32], width: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        let rows = buf.len() / width.max(1);
        if rows < 2 || self.threads <= 1 || buf.len() < MIN_PARALLEL_VALUES {
            return f(0, buf);
        }
        let per_task = rows.div_ceil(self.threads * 4).max(1);
        run_chunks(buf, per_task * width, self.threads, f);
    }

    /// Final norm and output head over the rows of `x` that `which` asks for.
    pub fn logits(&self, x: &[f32], which: Logits) -> Vec<f32> {
        let d = self.m.hp.n_embd;
        let rows = match which {
            Logits::None => return Vec::new(),
            Logits::Last => &x[x.len() - d..],
            Logits::All => x,
        };
        let h = self.norm(rows, &self.m.w.output_norm);
        let mut logits = self.mm(&self.m.w.output, &h);
        if let Some(cap) = self.m.hp.final_softcap {
            for v in &mut logits {
                *v = (*v / cap).tanh() * cap;
            }
        }
        logits
    }
}
