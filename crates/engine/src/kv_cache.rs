//! The KV cache: every layer's keys and values for the positions evaluated so far.
//!
//! Stored as f16, like llama.cpp's default cache, which both halves its size and keeps our
//! attention numerics close to llama.cpp's. Allocated for the whole context at once; the
//! zeroed pages are only touched (and count toward memory use) as positions fill.

use half::f16;

/// One layer's keys and values: `n_ctx` rows of `n_head_kv * head_dim` f16 values each, kept
/// as raw bits so that a fresh cache is zeroed memory the OS maps lazily.
pub(crate) struct LayerCache {
    pub k: Vec<u16>,
    pub v: Vec<u16>,
}

pub(crate) struct KvCache {
    pub layers: Vec<LayerCache>,
    row: usize,
}

impl KvCache {
    pub fn new(n_layer: usize, n_ctx: usize, row: usize) -> KvCache {
        let zeros = || vec![0u16; n_ctx * row];
        KvCache {
            layers: (0..n_layer)
                .map(|_| LayerCache {
                    k: zeros(),
                    v: zeros(),
                })
                .collect(),
            row,
        }
    }

    /// Writes the keys and values of consecutive tokens starting at position `pos0`.
    pub fn store(&mut self, il: usize, pos0: usize, k: &[f32], v: &[f32]) {
        let layer = &mut self.layers[il];
        let start = pos0 * self.row;
        for (dst, &src) in layer.k[start..start + k.len()].iter_mut().zip(k) {
            *dst = f16::from_f32(src).to_bits();
        }
        for (dst, &src) in layer.v[start..start + v.len()].iter_mut().zip(v) {
            *dst = f16::from_f32(src).to_bits();
        }
    }
}
