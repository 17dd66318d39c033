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
    let act_ty = kernels::act_type(w.ty);
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
    // One call of ms-quant's rows kernel per chunk of weight rows and group of up to eight
    // tokens: each output bit for bit the single-row kernel's (ms-quant's contract), the
    // activations prepared once per call, each weight row unpacked once per group.
    let rows_kernel = ms_quant::dot::rows_kernel_for(w.ty, backend)
        .unwrap_or_else(|e| unreachable!("{} was checked when the model was loaded: {e}", w.ty));
    let chunk_rows = (CHUNK_BYTES / row_bytes.max(1)).clamp(1, rows_per_task.max(1));
    let out_ptr = SharedMut(out.as_mut_ptr());
    pool::run(rows.div_ceil(rows_per_task), threads, &|task| {
        let first = task * rows_per_task;
        let last = (first + rows_per_task).min(rows);
        if n == 1 {
            // SAFETY: outputs `first..last` of the single token belong to this task alone, and
            // `out` outlives the call.
            let o =
                unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(first), last - first) };
            rows_kernel(
                &data[first * row_bytes..last * row_bytes],
                row_bytes,
                &[acts],
                o,
            );
            return;
        }
        let mut tile = [0.0f32; 8 * MAX_CHUNK_ROWS];
        let mut start = first;
        while start < last {
            let end = (start + chunk_rows.min(MAX_CHUNK_ROWS)).min(last);
            let wc = &data[start * row_bytes..end * row_bytes];
            for t0 in (0..n).step_by(8) {
                let m = (n - t0).min(8);
                let mut group: [&[u8]; 8] = [&[]; 8];
                for (j, g) in group[..m].iter_mut().enumerate() {
                    *g = &acts[(t0 + j) * act_bytes..(t0 + j + 1) * act_bytes];
                }
                let tile = &mut tile[..(end - start) * m];
                rows_kernel(wc, row_bytes, &group[..m], tile);
                for (i, o) in tile.chunks_exact(m).enumerate() {
                    for (j, &v) in o.iter().enumerate() {
                        // SAFETY: the outputs of rows `first..last` (`out[t * rows + r]` for every
                        // token t) belong to this task alone, and `out` outlives the call.
                        unsafe { *out_ptr.get().add((t0 + j) * rows + start + i) = v };
                    }
                }
            }
            start = end;
        }
    });
    ACTS.set(scratch);
}

/// Weight bytes per chunk of rows in prefill: a chunk stays in the core's L2 while every group
/// of eight tokens is multiplied with it, and the more rows a call has, the more of them share
/// its preparation of the activations. 1.1B Q4_K_M pp128, 2 threads, alternating x3: 32 KiB
/// ~97 (before the by-group kernels), 128 KiB 156/164/166, 256 KiB 164/167/173 tok/s.
const CHUNK_BYTES: usize = 256 << 10;

/// Most rows per chunk (the per-task output tile lives on the stack).
const MAX_CHUNK_ROWS: usize = 256;

thread_local! {
    static ACTS: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Dequantizes row `r` of `w` (embedding lookup).
pub(crate) fn get_row(file: &[u8], w: &Matrix, r: usize, out: &mut [f32]) {
    let start = w.offset + r * w.row_bytes;
    dequantize_row(w.ty, &file[start..start + w.row_bytes], out);
}
