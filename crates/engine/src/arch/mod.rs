//! The forward pass of each architecture, one file each, reading top to bottom; the steps they
//! share (embedding lookup, matrix products, RoPE and attention per [`Segment`], output head)
//! live in [`Pass`]. A pass evaluates one or more segments (sequences) at once.

mod gemma3;
mod llama;
mod qwen2;

use crate::backend::WeightMatrix;
use crate::kv_cache::KvCache;
use crate::matmul;
use crate::model::{Architecture, Matrix, ModelInner, Rope};
use crate::ops::{self, AttnSeq, AttnShape};
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

/// Which logits a forward pass computes for a segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Logits {
    /// None: the segment only fills the cache.
    None,
    /// The segment's last token's.
    Last,
    /// Every token's, row-major, `n_vocab` per token.
    All,
}

/// One sequence's share of a forward pass: `tokens` at positions `pos0..` of `cache`.
///
/// A pass over several segments evaluates their rows together in every matrix product (the
/// weights are read once for all of them); RoPE positions, cache stores and attention are each
/// segment's own. Every output row depends only on its own segment, so a segment gets the same
/// bits whatever else is in the pass.
pub(crate) struct Segment<'a> {
    pub cache: &'a mut KvCache,
    pub tokens: &'a [u32],
    pub pos0: usize,
    pub logits: Logits,
}

/// Runs the model over every segment, filling their caches, and returns the logits each asked
/// for (one vector per segment, empty for [`Logits::None`]).
pub(crate) fn forward(m: &ModelInner, segs: &mut [Segment<'_>]) -> Vec<Vec<f32>> {
    let p = Pass {
        m,
        file: m.file.bytes(),
        threads: m.info.threads,
    };
    let tokens: Vec<u32> = segs.iter().flat_map(|s| s.tokens.iter().copied()).collect();
    match m.hp.arch {
        Architecture::Llama => llama::forward(&p, segs, &tokens),
        Architecture::Qwen2 => qwen2::forward(&p, segs, &tokens),
        Architecture::Gemma3 => gemma3::forward(&p, segs, &tokens),
    }
}

/// The rows of each segment in a pass's token-major buffers: `(first_row, n_rows)`.
fn rows_of<'s>(segs: &'s [Segment<'_>]) -> impl Iterator<Item = (usize, usize)> + 's {
    segs.iter().scan(0, |first, s| {
        let r = (*first, s.tokens.len());
        *first += s.tokens.len();
        Some(r)
    })
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

    /// RoPE over the rows of `x` (`n_head` heads of `head_dim` per token), each segment's
    /// rows at its own positions.
    pub fn rope(
        &self,
        x: &mut [f32],
        segs: &[Segment<'_>],
        r: &Rope,
        freq_factors: Option<&[f32]>,
    ) {
        let row = x.len() / segs.iter().map(|s| s.tokens.len()).sum::<usize>().max(1);
        for ((first, n), s) in rows_of(segs).zip(segs) {
            let rows = &mut x[first * row..(first + n) * row];
            ops::rope(
                rows,
                s.pos0..s.pos0 + n,
                self.m.hp.head_dim,
                r,
                freq_factors,
            );
        }
    }

    /// Stores each segment's keys and values of layer `il` in its cache, then returns the
    /// attention of the queries `q` over it (all segments in one dispatch over the threads).
    pub fn attend(
        &self,
        segs: &mut [Segment<'_>],
        il: usize,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        shape: &AttnShape,
    ) -> Vec<f32> {
        let kv_row = shape.n_head_kv * shape.head_dim;
        let spans: Vec<(usize, usize)> = rows_of(segs).collect();
        for (&(first, n), s) in spans.iter().zip(segs.iter_mut()) {
            let rows = first * kv_row..(first + n) * kv_row;
            s.cache.store(il, s.pos0, &k[rows.clone()], &v[rows]);
        }
        let seqs: Vec<AttnSeq> = spans
            .iter()
            .zip(segs.iter())
            .map(|(&(first_row, _), s)| AttnSeq {
                cache: &s.cache.layers[il],
                pos0: s.pos0,
                first_row,
            })
            .collect();
        let mut out = vec![0.0f32; q.len()];
        ops::attention(q, &seqs, shape, &mut out, self.threads);
        out
    }

    /// Final norm and output head over the rows of `x` each segment asks for; the logits of
    /// every segment, in order (one product for all of them).
    pub fn logits(&self, x: &[f32], segs: &[Segment<'_>]) -> Vec<Vec<f32>> {
        let d = self.m.hp.n_embd;
        let mut picked = Vec::new();
        let mut counts = Vec::with_capacity(segs.len());
        for ((first, n), s) in rows_of(segs).zip(segs) {
            let rows = match s.logits {
                Logits::None => 0..0,
                Logits::Last => first + n - 1..first + n,
                Logits::All => first..first + n,
            };
            picked.extend_from_slice(&x[rows.start * d..rows.end * d]);
            counts.push(rows.len());
        }
        if picked.is_empty() {
            return vec![Vec::new(); segs.len()];
        }
        let h = self.norm_owned(picked, &self.m.w.output_norm);
        let mut logits = self.mm(&self.m.w.output, &h);
        if let Some(cap) = self.m.hp.final_softcap {
            for v in &mut logits {
                *v = (*v / cap).tanh() * cap;
            }
        }
        if segs.len() == 1 {
            return vec![logits];
        }
        let n_vocab = self.m.w.output.rows;
        let mut rest = logits.as_slice();
        counts
            .into_iter()
            .map(|c| {
                let (mine, tail) = rest.split_at(c * n_vocab);
                rest = tail;
                mine.to_vec()
            })
            .collect()
    }
}
