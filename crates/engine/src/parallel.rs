//! Spreading work over threads with a fixed assignment of outputs to threads.

/// Splits `buf` into chunks of `chunk` values and runs `f(first_index, chunk)` on each, spread
/// over `threads` threads (the caller's thread takes the first chunk).
pub(crate) fn run_chunks(
    buf: &mut [f32],
    chunk: usize,
    threads: usize,
    f: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    if threads <= 1 || buf.len() <= chunk {
        f(0, buf);
        return;
    }
    std::thread::scope(|s| {
        let mut chunks = buf.chunks_mut(chunk).enumerate();
        let first = chunks.next();
        for (i, c) in chunks {
            s.spawn(move || f(i * chunk, c));
        }
        if let Some((_, c)) = first {
            f(0, c);
        }
    });
}
