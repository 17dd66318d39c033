//! The forward pass of each architecture, one file each, reading top to bottom; the steps they
//! share (embedding lookup, matrix products, RoPE and attention per [`Segment`], output head)
//! live in [`Pass`]. A pass evaluates one or more segments (sequences) at once.

mod gemma3;
mod llama;
mod qwen2;

use crate::attention::{self, AttnSeq, AttnShape};
use crate::backend::WeightMatrix;
use crate::buf::Buf;
use crate::kv_cache::KvCache;
use crate::matmul;
use crate::model::{Architecture, Matrix, ModelInner, Rope};
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

impl Logits {
    /// How many rows of logits this asks for out of `tokens`.
    pub fn rows(self, tokens: usize) -> usize {
        match self {
            Logits::None => 0,
            Logits::Last => 1,
            Logits::All => tokens,
        }
    }
}

impl Segment<'_> {
    /// How many rows of logits the segment asks for.
    pub fn logit_rows(&self) -> usize {
        self.logits.rows(self.tokens.len())
    }
}

/// Runs the model over every segment, filling their caches, and returns the logits they asked
/// for: each segment's [`Segment::logit_rows`] rows of `n_vocab`, in segment order (`None` when
/// no segment asked for any).
pub(crate) fn forward(m: &ModelInner, segs: &mut [Segment<'_>]) -> Option<Buf> {
    let p = Pass {
        m,
        file: m.file.bytes(),
        threads: m.info.threads,
    };
    // One segment (a generated token) reads its own tokens: no copy.
    let joined: Vec<u32>;
    let tokens = if let [one] = segs {
        one.tokens
    } else {
        joined = segs.iter().flat_map(|s| s.tokens.iter().copied()).collect();
        &joined
    };
    match m.hp.arch {
        Architecture::Llama => llama::forward(&p, segs, tokens),
        Architecture::Qwen2 => qwen2::forward(&p, segs, tokens),
        Architecture::Gemma3 => gemma3::forward(&p, segs, tokens),
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
    pub fn embed(&self, tokens: &[u32]) -> Buf {
        let d = self.m.hp.n_embd;
        let mut x = Buf::zeros(tokens.len() * d);
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            matmul::get_row(self.file, &self.m.w.token_embd, t as usize, row);
        }
        x
    }

    /// `w × x` for every token row of `x`.
    pub fn mm(&self, w: &Matrix, x: &[f32]) -> Buf {
        let n = x.len() / w.cols;
        let mut out = Buf::zeros(n * w.rows);
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
    pub fn norm(&self, x: &[f32], w: &[f32]) -> Buf {
        self.norm_owned(Buf::copy_of(x), w)
    }

    /// `h` normalized in place (RMS norm with weight `w` over rows of `w.len()`).
    pub fn norm_owned(&self, mut h: Buf, w: &[f32]) -> Buf {
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
    ) -> Buf {
        let kv_row = shape.n_head_kv * shape.head_dim;
        let mut first = 0;
        for s in segs.iter_mut() {
            let rows = first * kv_row..(first + s.tokens.len()) * kv_row;
            s.cache.store(il, s.pos0, &k[rows.clone()], &v[rows]);
            first += s.tokens.len();
        }
        fn seq<'c>(s: &'c Segment<'_>, il: usize, first_row: usize) -> AttnSeq<'c> {
            AttnSeq {
                cache: &s.cache.layers[il],
                pos0: s.pos0,
                first_row,
            }
        }
        let mut out = Buf::zeros(q.len());
        // One segment (a generated token) without a list on the heap.
        if let [one] = &*segs {
            let seqs = [seq(one, il, 0)];
            attention::attention(q, &seqs, shape, &mut out, self.threads);
        } else {
            let seqs: Vec<AttnSeq> = rows_of(segs)
                .zip(segs.iter())
                .map(|((first_row, _), s)| seq(s, il, first_row))
                .collect();
            attention::attention(q, &seqs, shape, &mut out, self.threads);
        }
        out
    }

    /// Final norm and output head over the rows of `x` each segment asks for: their logits in
    /// segment order, in one product for all of them (see [`forward`]).
    pub fn logits(&self, x: &[f32], segs: &[Segment<'_>]) -> Option<Buf> {
        let d = self.m.hp.n_embd;
        let picked_rows: usize = segs.iter().map(Segment::logit_rows).sum();
        if picked_rows == 0 {
            return None;
        }
        let mut picked = Buf::zeros(picked_rows * d);
        let mut at = 0;
        for ((first, n), s) in rows_of(segs).zip(segs) {
            let last = first + n;
            let rows = (last - s.logit_rows()) * d..last * d;
            picked[at..at + rows.len()].copy_from_slice(&x[rows.clone()]);
            at += rows.len();
        }
        let h = self.norm_owned(picked, &self.m.w.output_norm);
        let mut logits = self.mm(&self.m.w.output, &h);
        if let Some(cap) = self.m.hp.final_softcap {
            for v in logits.iter_mut() {
                *v = (*v / cap).tanh() * cap;
            }
        }
        Some(logits)
    }
}
