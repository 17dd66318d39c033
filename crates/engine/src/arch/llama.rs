//! llama: pre-norm blocks with grouped-query attention (normal RoPE) and a SwiGLU feed-forward.

use super::{Pass, Segment};
use crate::attention::AttnShape;
use crate::buf::Buf;
use crate::ops;

pub(crate) fn forward(p: &Pass, segs: &mut [Segment<'_>], tokens: &[u32]) -> Option<Buf> {
    let hp = &p.m.hp;
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
        p.rope(&mut q, segs, &hp.rope(il), freq_factors);
        p.rope(&mut k, segs, &hp.rope(il), freq_factors);
        let attn = p.attend(segs, il, &q, &k, &v, &shape);
        ops::add(&mut x, &p.mm(&l.wo, &attn));

        // Feed-forward: down(silu(gate h) * up h).
        let h = p.norm(&x, &l.ffn_norm);
        let mut g = p.mm(&l.gate, &h);
        ops::swiglu(&mut g, &p.mm(&l.up, &h));
        ops::add(&mut x, &p.mm(&l.down, &g));
    }
    p.logits(&x, segs)
}
