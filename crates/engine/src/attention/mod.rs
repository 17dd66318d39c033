//! Causal attention over the f16 KV cache: [`attention`] picks a path, hands out one task per
//! (token, head) output, and keeps each thread's scratch. The paths give the same bits:
//! `portable` (plain Rust, also compiled with hardware FMA) and `avx2` (AVX2 + F16C + FMA,
//! reading the f16 cache directly, the query heads of a KV head together).
//!
//! Where llama.cpp rounds through f16 (KV cache, attention operands) we round the same way, so
//! that our logits track its outputs closely.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod portable;

use crate::kv_cache::LayerCache;
use crate::parallel::run_chunks;

/// Shape of one attention call.
pub(crate) struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Multiplies Q·K before the softmax.
    pub scale: f32,
    /// Keys visible to a query: its own position and the `window - 1` before it.
    pub window: Option<usize>,
}

/// One sequence's rows of an attention call: its cache (already holding these tokens' keys and
/// values) and the position of its first query row, `first_row` in the call's `q`.
pub(crate) struct AttnSeq<'a> {
    pub cache: &'a LayerCache,
    pub pos0: usize,
    pub first_row: usize,
}

/// Causal attention of the queries `q` (one row of `n_head * head_dim` per token) of one or
/// more sequences, each over its own cache: `seqs` in row order, the first at row 0, each
/// running up to the next one's `first_row` (the last to the end of `q`).
///
/// The arithmetic is llama.cpp's CPU path (without flash attention) on x86, operation for
/// operation: Q rounded to f16; Q·K and P·V as 8-lane fused multiply-adds reduced like an AVX
/// horizontal sum; the softmax with its vectorised `exp`, sums of 8 in f64, and weights
/// rounded to f16. Lanes follow the cache position (`j mod 8`), so results do not depend on the
/// batch split, the other sequences of the call or the thread count.
pub(crate) fn attention(
    q: &[f32],
    seqs: &[AttnSeq<'_>],
    s: &AttnShape,
    out: &mut [f32],
    threads: usize,
) {
    attention_with(Kernel::detect(s.head_dim), q, seqs, s, out, threads)
}

/// The code path of an attention call. All give the same bits; they differ in speed only.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    /// Plain Rust, with `mul_add` in software where the CPU has no FMA.
    Portable,
    /// The portable code compiled with hardware FMA.
    #[cfg(target_arch = "x86_64")]
    Fma,
    /// AVX2 straight from the f16 cache, the heads of a KV head together ([`avx2`]).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest path this CPU runs for heads of `head_dim` values.
    fn detect(head_dim: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if head_dim.is_multiple_of(8) && has!("avx2") && has!("fma") && has!("f16c") {
                return Kernel::Avx2;
            }
            if has!("fma") {
                return Kernel::Fma;
            }
        }
        let _ = head_dim;
        Kernel::Portable
    }
}

fn attention_with(
    kernel: Kernel,
    q: &[f32],
    seqs: &[AttnSeq<'_>],
    s: &AttnShape,
    out: &mut [f32],
    threads: usize,
) {
    // One task per (token, head) output slice: later tokens see more keys, and the pool hands
    // tasks out one at a time, so the causal imbalance evens out; a single generated token
    // still spreads its heads over the threads, and so do the tokens of several sequences.
    // The AVX2 path reads each cached row once for all the query heads of its KV head, so
    // when there are tokens enough to keep the threads busy a task takes all those heads.
    let hd = s.head_dim;
    let group = s.n_head / s.n_head_kv.max(1);
    let rows = out.len() / (s.n_head * hd).max(1);
    #[cfg(target_arch = "x86_64")]
    let grouped = kernel == Kernel::Avx2 && rows * s.n_head_kv >= 4 * threads;
    #[cfg(not(target_arch = "x86_64"))]
    let grouped = false;
    let heads = if grouped { group.max(1) } else { 1 };
    run_chunks(out, heads * hd, threads, &|start, dst| {
        let job = AttnJob {
            q,
            seqs,
            s,
            first_head: start / hd,
        };
        ATTN_SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            // Room for the scores of the longest context the caches hold, taken once: a
            // sequence growing token by token never reallocates.
            let kv_row = (s.n_head_kv * hd).max(1);
            let n_ctx = seqs
                .iter()
                .map(|q| q.cache.k.len() / kv_row)
                .max()
                .unwrap_or(0);
            let need = group.max(1) * n_ctx.next_multiple_of(8);
            scratch
                .weights
                .reserve(need.saturating_sub(scratch.weights.len()));
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::detect` found AVX2, FMA and F16C, and the head size is a
                // multiple of 8 (tests pass `Avx2` only after the same checks).
                Kernel::Avx2 => unsafe { avx2::attend(&job, dst, scratch) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::detect` found FMA.
                Kernel::Fma => unsafe { portable::attend_fma(&job, dst, scratch) },
                Kernel::Portable => portable::attend(&job, dst, scratch),
            }
        })
    });
}

/// One task's share of an attention call: the (token, head) slices whose outputs are in its
/// `dst`, numbered `token * n_head + head` from `first_head`.
struct AttnJob<'a> {
    q: &'a [f32],
    seqs: &'a [AttnSeq<'a>],
    s: &'a AttnShape,
    first_head: usize,
}

/// Per-thread working memory of [`portable::attend`], kept between calls so that a task allocates
/// nothing once it has seen the longest context.
#[derive(Default)]
struct AttnScratch {
    weights: Vec<f32>,
    q16: Vec<f32>,
    kv: Vec<f32>,
    /// acc[l * head_dim + d]: lane l (cache position mod 8) of output value d.
    acc: Vec<f32>,
}

impl AttnJob<'_> {
    /// The cache of query row `t`, its position and the first position it sees.
    #[inline(always)]
    fn locate(&self, t: usize) -> (&LayerCache, usize, usize) {
        // The sequence holding row t: the last one starting at or before it.
        let seq = &self.seqs[self.seqs.partition_point(|x| x.first_row <= t) - 1];
        let pos = seq.pos0 + t - seq.first_row;
        let first = match self.s.window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        };
        (seq.cache, pos, first)
    }
}

thread_local! {
    static ATTN_SCRATCH: std::cell::RefCell<AttnScratch> =
        std::cell::RefCell::new(AttnScratch::default());
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    fn cache(values: &[f32]) -> LayerCache {
        let bits: Vec<u16> = values.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
        LayerCache {
            k: bits.clone(),
            v: bits,
        }
    }

    #[test]
    fn sliding_window_hides_positions_outside_it() {
        let shape = |window| AttnShape {
            n_head: 1,
            n_head_kv: 1,
            head_dim: 8,
            scale: 0.5,
            window,
        };
        let q: Vec<f32> = (0..8).map(|i| i as f32 * 0.1).collect();
        let a: Vec<f32> = (0..24).map(|i| (i % 7) as f32 * 0.3 - 0.5).collect();
        let mut b = a.clone();
        b[..8].copy_from_slice(&[9.0; 8]); // position 0 changed
        let run = |c: &LayerCache, w| {
            let mut out = vec![0.0f32; 8];
            let seq = AttnSeq {
                cache: c,
                pos0: 2,
                first_row: 0,
            };
            attention(&q, &[seq], &shape(w), &mut out, 1);
            out
        };
        // The query at position 2 with a window of 2 sees positions 1 and 2 only.
        assert_eq!(run(&cache(&a), Some(2)), run(&cache(&b), Some(2)));
        assert_ne!(run(&cache(&a), None), run(&cache(&b), None));
        // A window wider than the sequence changes nothing.
        assert_eq!(run(&cache(&a), Some(3)), run(&cache(&a), None));
        // A window of 1: the token attends to itself only, so the output is its value.
        let own: Vec<f32> = a[16..24]
            .iter()
            .map(|&v| f16::from_f32(v).to_f32())
            .collect();
        assert_eq!(run(&cache(&a), Some(1)), own);
    }

    /// Xorshift: the tests need varied bits, not statistical quality.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Uniform in [-r, r).
        fn f32(&mut self, r: f32) -> f32 {
            ((self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * r
        }
    }

    /// Each kernel the CPU runs gives the portable code's bits, on random caches: head sizes
    /// with and without a tail of 8, GQA groups split into runs of 4, 3, 2 and 1 heads,
    /// windows, positions off multiples of 8, several sequences per call, one thread (every
    /// head in one task) and two (tasks of a head or of a KV head's group), and scores wide
    /// enough that `exp` takes its slow branch and underflows.
    #[test]
    fn attention_kernels_match_portable_bit_for_bit() {
        let mut kernels = vec![];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("fma") {
                kernels.push(Kernel::Fma);
            }
            if has!("avx2") && has!("fma") && has!("f16c") {
                kernels.push(Kernel::Avx2);
            } else {
                eprintln!("no AVX2 + FMA + F16C: the AVX2 kernel is not tested");
            }
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0;
        for hd in [8, 16, 24, 40, 64, 256] {
            for (n_head, n_head_kv) in [
                (1, 1),
                (2, 2),
                (4, 1),
                (4, 2),
                (3, 1),
                (6, 1),
                (8, 2),
                (7, 1),
            ] {
                for window in [None, Some(1), Some(5), Some(19)] {
                    let range = [0.5f32, 2.0, 8.0][rng.below(3)];
                    let s = AttnShape {
                        n_head,
                        n_head_kv,
                        head_dim: hd,
                        scale: [0.125f32, 1.0, 16.0][rng.below(3)],
                        window,
                    };
                    // A decode step (one row) or a batch of 1 to 3 sequences.
                    let lens: Vec<usize> = if rng.below(4) == 0 {
                        vec![1]
                    } else {
                        (0..1 + rng.below(3)).map(|_| 1 + rng.below(21)).collect()
                    };
                    let kv_row = n_head_kv * hd;
                    let mut caches = vec![];
                    let mut starts = vec![];
                    for &rows in &lens {
                        let pos0 = rng.below(45);
                        let n = (pos0 + rows) * kv_row;
                        let mut half = || f16::from_f32(rng.f32(range)).to_bits();
                        let k = (0..n).map(|_| half()).collect();
                        let v = (0..n).map(|_| half()).collect();
                        caches.push(LayerCache { k, v });
                        starts.push(pos0);
                    }
                    let mut seqs = vec![];
                    let mut first_row = 0;
                    for ((cache, &pos0), &rows) in caches.iter().zip(&starts).zip(&lens) {
                        seqs.push(AttnSeq {
                            cache,
                            pos0,
                            first_row,
                        });
                        first_row += rows;
                    }
                    let q: Vec<f32> = (0..first_row * n_head * hd)
                        .map(|_| rng.f32(range))
                        .collect();
                    let run = |kernel, threads| {
                        let mut out = vec![f32::NAN; q.len()];
                        attention_with(kernel, &q, &seqs, &s, &mut out, threads);
                        out
                    };
                    let want = run(Kernel::Portable, 1);
                    for &kernel in &kernels {
                        // `Kernel::detect` never picks AVX2 for these head sizes.
                        #[cfg(target_arch = "x86_64")]
                        if kernel == Kernel::Avx2 && !hd.is_multiple_of(8) {
                            continue;
                        }
                        for threads in [1, 2] {
                            let got = run(kernel, threads);
                            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                                assert_eq!(
                                    g.to_bits(),
                                    w.to_bits(),
                                    "{kernel:?}, {threads} threads, head_dim {hd}, heads \
                                     {n_head}/{n_head_kv}, window {window:?}, rows {lens:?} \
                                     from {starts:?}: value {i} is {g}, portable {w}"
                                );
                            }
                            compared += 1;
                        }
                    }
                }
            }
        }
        eprintln!("{compared} kernel runs compared");
    }
}
