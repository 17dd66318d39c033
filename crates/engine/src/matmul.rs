//! Weight matrix × activations, multithreaded over row chunks.
//!
//! Determinism: every output element is one call of the same dot kernel on the same inputs,
//! whatever the number of threads or tokens; threads only decide who computes which rows.

use std::cell::Cell;

use ms_quant::dot::Backend;

use crate::backend::WeightMatrix;
use crate::kernels;
use crate::model::Matrix;
use crate::parallel::SharedMut;
use crate::pool;

pub(crate) use kernels::{dequantize_row, supported, supported_types};

/// Fewest multiply-adds per task: below this, handing work to another thread costs more.
const MIN_WORK_PER_TASK: usize = 1 << 15;

/// Tasks per thread: threads claim tasks as they go, so a core slowed by other processes
/// takes fewer of them.
const TASKS_PER_THREAD: usize = 8;

/// `out[t][r] = dot(w[r], x[t])` for the `n = x.len() / w.cols` tokens of `x` with the
/// kernels of `backend`; `out` is `n × w.rows`.
pub(crate) fn matmul(
    w: &WeightMatrix<'_>,
    x: &[f32],
    out: &mut [f32],
    threads: usize,
    backend: Backend,
) {
    let n = x.len() / w.cols;
    debug_assert_eq!(x.len(), n * w.cols);
    debug_assert_eq!(out.len(), n * w.rows);
    let data = w.data;
    let rows = w.rows;
    let row_bytes = data.len() / rows.max(1);

    // Quantize every token's activations once, as the weight type's dot kernel expects.
    let (dot, act_ty) = kernels::kernel(w.ty);
    // The scalar backend swaps in the reference kernel, which gives the same bits.
    let dot = match backend {
        Backend::Simd => dot,
        Backend::Scalar => ms_quant::dot::kernel_for(w.ty, Backend::Scalar).unwrap_or(dot),
    };
    let act_bytes = kernels::act_row_bytes(act_ty, w.cols);
    // Scratch kept per thread: a generated token allocates nothing here. Every byte used is
    // written by the quantization below, so growing it is the only fill.
    let mut scratch = ACTS.take();
    if scratch.len() < n * act_bytes {
        scratch.resize(n * act_bytes, 0);
    }
    let acts = &mut scratch[..n * act_bytes];
    let quantize_threads = if n >= 4 { threads } else { 1 };
    let acts_ptr = SharedMut(acts.as_mut_ptr());
    pool::run(n, quantize_threads, &|t| {
        // SAFETY: task t alone writes activation row t, inside `acts`, alive during the call.
        let a =
            unsafe { std::slice::from_raw_parts_mut(acts_ptr.get().add(t * act_bytes), act_bytes) };
        kernels::quantize_row(act_ty, &x[t * w.cols..(t + 1) * w.cols], a);
    });
    let acts = &*acts;

    let work = rows * w.cols * n;
    let tasks = (threads.max(1) * TASKS_PER_THREAD).min((work / MIN_WORK_PER_TASK).max(1));
    let threads = if tasks > 1 { threads } else { 1 };
    let rows_per_task = rows.div_ceil(tasks);
    // Prefill: one weight row against eight (then four) tokens at a time, each output bit for
    // bit the single-row kernel's (ms-quant's contract), the row unpacked once per group.
    let dot8 = ms_quant::dot::kernel8_for(w.ty, backend).ok();
    let dot4 = ms_quant::dot::kernel4_for(w.ty, backend).ok();
    let out_ptr = SharedMut(out.as_mut_ptr());
    pool::run(rows.div_ceil(rows_per_task), threads, &|task| {
        let first = task * rows_per_task;
        for r in first..(first + rows_per_task).min(rows) {
            let wr = &data[r * row_bytes..(r + 1) * row_bytes];
            prefetch(data, (r + PREFETCH_ROWS) * row_bytes, row_bytes);
            // SAFETY: the outputs of row r (`out[t * rows + r]` for every token t) belong to
            // this task alone, and `out` outlives the call.
            let put = |t: usize, v: f32| unsafe { *out_ptr.get().add(t * rows + r) = v };
            let mut done = 0;
            if let Some(dot8) = dot8 {
                let mut o = [0.0f32; 8];
                for (i, a) in acts.chunks_exact(8 * act_bytes).enumerate() {
                    let a: [&[u8]; 8] =
                        std::array::from_fn(|j| &a[j * act_bytes..(j + 1) * act_bytes]);
                    dot8(wr, a, &mut o);
                    for (j, &v) in o.iter().enumerate() {
                        put(8 * i + j, v);
                    }
                }
                done = n - n % 8;
            }
            if let Some(dot4) = dot4 {
                let mut o = [0.0f32; 4];
                let skip = done / 4;
                for (i, a) in acts.chunks_exact(4 * act_bytes).enumerate().skip(skip) {
                    let (a0, rest) = a.split_at(act_bytes);
                    let (a1, rest) = rest.split_at(act_bytes);
                    let (a2, a3) = rest.split_at(act_bytes);
                    dot4(wr, [a0, a1, a2, a3], &mut o);
                    for (j, &v) in o.iter().enumerate() {
                        put(4 * i + j, v);
                    }
                }
                done = n - n % 4;
            }
            for (t, a) in acts.chunks_exact(act_bytes).enumerate().skip(done) {
                put(t, dot(wr, a));
            }
        }
    });
    ACTS.set(scratch);
}

/// Rows ahead whose weights are requested from memory while this one is multiplied.
const PREFETCH_ROWS: usize = 4;

/// Asks for `data[start..start + len]` to be brought into the cache (a hint: no effect on
/// any result). Token generation streams the weights once per token, so it waits on memory.
#[inline]
fn prefetch(data: &[u8], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let end = (start + len).min(data.len());
        let mut at = start;
        while at < end {
            // SAFETY: a prefetch of an address inside `data`; it never faults nor writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().add(at).cast()) };
            at += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, start, len);
}

thread_local! {
    static ACTS: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Dequantizes row `r` of `w` (embedding lookup).
pub(crate) fn get_row(file: &[u8], w: &Matrix, r: usize, out: &mut [f32]) {
    let start = w.offset + r * w.row_bytes;
    dequantize_row(w.ty, &file[start..start + w.row_bytes], out);
}
