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
        let mut h = x.to_vec();
        ops::rms_norm(&mut h, w, self.m.hp.rms_eps);
        h
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
