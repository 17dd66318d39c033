//! Spreading work over threads with a fixed assignment of outputs to tasks.

use crate::pool;

/// A pointer that tasks share to write their own, disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);

// SAFETY: `run_chunks` hands each task a disjoint range of the buffer behind the pointer.
unsafe impl Sync for SharedMut {}
unsafe impl Send for SharedMut {}

impl SharedMut {
    fn get(self) -> *mut f32 {
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
