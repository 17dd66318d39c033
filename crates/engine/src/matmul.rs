//! Weight matrix × activations, multithreaded over row chunks.
//!
//! Determinism: every output element is one call of the same dot kernel on the same inputs,
//! whatever the number of threads or tokens; threads only decide who computes which rows.

use std::cell::Cell;

use ms_quant::dot::Backend;

use crate::backend::WeightMatrix;
use crate::kernels;
use crate::model::Matrix;
use crate::parallel::run_chunks;

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
    let row_bytes = data.len() / w.rows.max(1);

    // Quantize every token's activations once, as the weight type's dot kernel expects.
    let (dot, act_ty) = kernels::kernel(w.ty);
    // The scalar backend swaps in the reference kernel, which gives the same bits.
    let dot = match backend {
        Backend::Simd => dot,
        Backend::Scalar => ms_quant::dot::kernel_for(w.ty, Backend::Scalar).unwrap_or(dot),
    };
    let act_bytes = kernels::act_row_bytes(act_ty, w.cols);
    // Scratch kept per thread: a generated token allocates nothing here.
    let mut acts = ACTS.take();
    acts.clear();
    acts.resize(n * act_bytes, 0);
    for (a, xt) in acts.chunks_exact_mut(act_bytes).zip(x.chunks_exact(w.cols)) {
        kernels::quantize_row(act_ty, xt, a);
    }

    let work = w.rows * w.cols * n;
    let tasks = (threads.max(1) * TASKS_PER_THREAD).min((work / MIN_WORK_PER_TASK).max(1));
    let threads = if tasks > 1 { threads } else { 1 };
    let rows_per_task = w.rows.div_ceil(tasks);
    // Prefill: one weight row against four tokens at a time, each output bit for bit the
    // single-row kernel's (ms-quant's contract), the row unpacked once per four tokens.
    let dot4 = ms_quant::dot::kernel4_for(w.ty, backend).ok();
    let compute = |first_row: usize, dst: &mut [f32]| {
        // dst is row-major over (row, token) for this chunk of rows.
        for (i, row_out) in dst.chunks_exact_mut(n).enumerate() {
            let r = first_row + i;
            let wr = &data[r * row_bytes..(r + 1) * row_bytes];
            let mut done = 0;
            if let Some(dot4) = dot4 {
                for (o, a) in row_out
                    .as_chunks_mut::<4>()
                    .0
                    .iter_mut()
                    .zip(acts.chunks_exact(4 * act_bytes))
                {
                    let (a0, rest) = a.split_at(act_bytes);
                    let (a1, rest) = rest.split_at(act_bytes);
                    let (a2, a3) = rest.split_at(act_bytes);
                    dot4(wr, [a0, a1, a2, a3], o);
                }
                done = n - n % 4;
            }
            for (o, a) in row_out[done..]
                .iter_mut()
                .zip(acts[done * act_bytes..].chunks_exact(act_bytes))
            {
                *o = dot(wr, a);
            }
        }
    };
    if n == 1 {
        // One token: (row, token) order is the output order itself.
        run_chunks(out, rows_per_task, threads, &compute);
    } else {
        let mut by_row = BY_ROW.take();
        by_row.clear();
        by_row.resize(w.rows * n, 0.0);
        run_chunks(&mut by_row, rows_per_task * n, threads, &|start, dst| {
            compute(start / n, dst)
        });
        for (r, row) in by_row.chunks_exact(n).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                out[t * w.rows + r] = v;
            }
        }
        BY_ROW.set(by_row);
    }
    ACTS.set(acts);
}

thread_local! {
    static ACTS: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static BY_ROW: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Dequantizes row `r` of `w` (embedding lookup).
pub(crate) fn get_row(file: &[u8], w: &Matrix, r: usize, out: &mut [f32]) {
    let start = w.offset + r * w.row_bytes;
    dequantize_row(w.ty, &file[start..start + w.row_bytes], out);
}
