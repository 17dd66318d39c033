//! llama: pre-norm blocks with grouped-query attention (normal RoPE) and a SwiGLU feed-forward.

use super::{Logits, Pass};
use crate::kv_cache::KvCache;
use crate::ops::{self, AttnShape};

pub(crate) fn forward(
    p: &Pass,
    cache: &mut KvCache,
    tokens: &[u32],
    pos0: usize,
    all: Logits,
) -> Vec<f32> {
    let hp = &p.m.hp;
    let n = tokens.len();
    let positions = pos0..pos0 + n;
    let shape = AttnShape {
        n_head: hp.n_head,
        n_head_kv: hp.n_head_kv,
        head_dim: hp.head_dim,
        scale: 1.0 / (hp.head_dim as f32).sqrt(),
        window: None,
    };
    let freq_factors = p.m.w.rope_freqs.as_deref();

    let mut x = p.embed(tokens);
    for (il, l) in p.m.w.layers.iter().enumerate() {
        // Self-attention.
        let h = p.norm(&x, &l.attn_norm);
        let mut q = p.mm(&l.wq, &h);
        let mut k = p.mm(&l.wk, &h);
        let v = p.mm(&l.wv, &h);
        ops::rope(
            &mut q,
            positions.clone(),
            hp.head_dim,
            &hp.rope(il),
            freq_factors,
        );
        ops::rope(
            &mut k,
            positions.clone(),
            hp.head_dim,
            &hp.rope(il),
            freq_factors,
        );
        cache.store(il, pos0, &k, &v);
        let mut attn = vec![0.0f32; q.len()];
        ops::attention(&q, &cache.layers[il], pos0, &shape, &mut attn, p.threads);
        ops::add(&mut x, &p.mm(&l.wo, &attn));

        // Feed-forward: down(silu(gate h) * up h).
        let h = p.norm(&x, &l.ffn_norm);
        let mut g = p.mm(&l.gate, &h);
        ops::swiglu(&mut g, &p.mm(&l.up, &h));
        ops::add(&mut x, &p.mm(&l.down, &g));
    }
    p.logits(&x, all)
}
