//! The f32 buffers of a forward pass, recycled through a per-thread free list: once the first
//! tokens have sized them, generating a token allocates nothing (the shapes repeat from token to
//! token, and a prompt's larger buffers serve the tokens after it).

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Most buffers kept per thread; a pass holds fewer than this at any time.
const KEEP: usize = 32;

/// Most f32 values kept per thread (64 MiB): a long prompt's large buffers are freed rather
/// than held for the tokens after it, which need far smaller ones.
const KEEP_VALUES: usize = 16 << 20;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// An f32 buffer that goes back to this thread's free list when dropped.
pub(crate) struct Buf(Vec<f32>);

impl Buf {
    /// `len` zeros, in the smallest free buffer that holds them, else in a new one. Free
    /// buffers never grow: a token's requests are the same as the previous token's, so from
    /// the second generated token on, each finds the buffer it had.
    pub fn zeros(len: usize) -> Buf {
        let mut v = Self::take(len);
        v.resize(len, 0.0);
        Buf(v)
    }

    /// A copy of `values`.
    pub fn copy_of(values: &[f32]) -> Buf {
        let mut v = Self::take(values.len());
        v.extend_from_slice(values);
        Buf(v)
    }

    fn take(len: usize) -> Vec<f32> {
        let found = FREE.with(|free| {
            let mut free = free.borrow_mut();
            let fits = (0..free.len())
                .filter(|&i| free[i].capacity() >= len)
                .min_by_key(|&i| free[i].capacity());
            fits.map(|i| free.swap_remove(i))
        });
        match found {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(len),
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if self.0.capacity() == 0 {
            return;
        }
        let v = std::mem::take(&mut self.0);
        // `try_with`: a buffer dropped while its thread shuts down is simply freed.
        let _ = FREE.try_with(|free| {
            let mut free = free.borrow_mut();
            let kept: usize = free.iter().map(Vec::capacity).sum();
            if free.len() < KEEP && kept + v.capacity() <= KEEP_VALUES {
                free.push(v);
            }
        });
    }
}

impl Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_zeroed() {
        let mut a = Buf::zeros(100);
        a[7] = 3.0;
        let ptr = a.as_ptr();
        drop(a);
        // The same allocation comes back, cleared.
        let b = Buf::zeros(80);
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.iter().all(|&v| v == 0.0));
        assert_eq!(b.len(), 80);
        // A copy holds exactly its values.
        drop(b);
        let c = Buf::copy_of(&[1.0, 2.0, 3.0]);
        assert_eq!(&c[..], &[1.0, 2.0, 3.0]);
    }
}
