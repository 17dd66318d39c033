//! gemma3: scaled embeddings, per-head RMS norm of Q and K, post-norms after attention and
//! feed-forward, a GELU-tanh gated feed-forward, and sliding-window attention on 5 of every 6
//! layers (those with their own RoPE base). The GGUF norm weights already include Gemma's +1.

use super::{Pass, Segment};
use crate::attention::AttnShape;
use crate::buf::Buf;
use crate::ops;

pub(crate) fn forward(p: &Pass, segs: &mut [Segment<'_>], tokens: &[u32]) -> Option<Buf> {
    let hp = &p.m.hp;
    let hd = hp.head_dim;
    // Q is scaled by 1/sqrt(key_length) before attention, which then scales by 1.
    let q_scale = 1.0 / (hd as f32).sqrt();

    let mut x = p.embed(tokens);
    ops::scale(&mut x, (hp.n_embd as f32).sqrt());
    for (il, l) in p.m.w.layers.iter().enumerate() {
        let rope = hp.rope(il);
        let shape = AttnShape {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hd,
            scale: 1.0,
            window: hp.window(il),
        };
        let (Some(q_norm), Some(k_norm), Some(post_attn), Some(post_ffw)) =
            (&l.q_norm, &l.k_norm, &l.post_attn_norm, &l.post_ffw_norm)
        else {
            unreachable!("gemma3 layers are loaded with all their norms");
        };

        // Self-attention: per-head norms on Q and K, then RoPE.
        let h = p.norm(&x, &l.attn_norm);
        let mut q = p.norm_owned(p.mm(&l.wq, &h), q_norm);
        let mut k = p.norm_owned(p.mm(&l.wk, &h), k_norm);
        let v = p.mm(&l.wv, &h);
        p.rope(&mut q, segs, &rope, None);
        p.rope(&mut k, segs, &rope, None);
        ops::scale(&mut q, q_scale);
        let attn = p.attend(segs, il, &q, &k, &v, &shape);
        let o = p.norm_owned(p.mm(&l.wo, &attn), post_attn);
        ops::add(&mut x, &o);

        // Feed-forward: down(gelu_tanh(gate h) * up h), then its post-norm.
        let h = p.norm(&x, &l.ffn_norm);
        let mut g = p.mm(&l.gate, &h);
        p.geglu(&mut g, &p.mm(&l.up, &h), l.up.rows);
        let f = p.norm_owned(p.mm(&l.down, &g), post_ffw);
        ops::add(&mut x, &f);
    }
    p.logits(&x, segs)
}
