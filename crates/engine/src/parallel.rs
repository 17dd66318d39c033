//! Spreading work over threads with a fixed assignment of outputs to tasks.

use crate::pool;

/// A pointer that tasks share to write their own, disjoint parts of one buffer.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub *mut T);

// SAFETY: users hand each task a disjoint part of the buffer behind the pointer (each output
// is written by one task only) and keep the buffer alive while the tasks run.
unsafe impl<T: Send> Sync for SharedMut<T> {}
unsafe impl<T: Send> Send for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Splits `buf` into chunks of `chunk` values and runs `f(first_index, chunk)` on each, spread
/// over `threads` threads of the calling thread's resident pool (the caller included); each
/// chunk is computed entirely by one call of `f`, whichever thread runs it.
pub(crate) fn run_chunks(
    buf: &mut [f32],
    chunk: usize,
    threads: usize,
    f: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let len = buf.len();
    let chunk = chunk.max(1);
    if threads <= 1 || len <= chunk {
        f(0, buf);
        return;
    }
    let base = SharedMut(buf.as_mut_ptr());
    pool::run(len.div_ceil(chunk), threads, &|i| {
        let start = i * chunk;
        let end = (start + chunk).min(len);
        // SAFETY: task i alone gets [start, end), inside `buf`, which outlives the call.
        let dst = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
        f(start, dst);
    });
}
