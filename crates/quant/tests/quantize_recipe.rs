//! llama.cpp's tensor mix on synthetic tensor lists: which layers get more bits, tied and
//! untied embeddings, fallbacks, tensors that are never quantized.

use ms_quant::GgmlType::{self, *};
use ms_quant::recipe::{ModelInfo, RecipeError, Target, TensorDesc, llama_cpp_order, plan};

fn llama(n_layer: u32) -> ModelInfo {
    ModelInfo {
        arch: "llama".into(),
        n_layer,
        n_expert: 0,
        n_head: 32,
        n_head_kv: 8,
    }
}

/// A llama-style model: per layer norms and the seven projections, `width` wide.
fn tensors(n_layer: u32, width: u64, with_output: bool) -> Vec<(String, Vec<u64>)> {
    let mut v = vec![("token_embd.weight".to_string(), vec![width, 1000])];
    for i in 0..n_layer {
        for (name, dims) in [
            ("attn_norm.weight", vec![width]),
            ("attn_q.weight", vec![width, width]),
            ("attn_k.weight", vec![width, width / 4]),
            ("attn_v.weight", vec![width, width / 4]),
            ("attn_output.weight", vec![width, width]),
            ("ffn_norm.weight", vec![width]),
            ("ffn_gate.weight", vec![width, 3 * width]),
            ("ffn_up.weight", vec![width, 3 * width]),
            ("ffn_down.weight", vec![3 * width, width]),
        ] {
            v.push((format!("blk.{i}.{name}"), dims));
        }
    }
    v.push(("output_norm.weight".to_string(), vec![width]));
    if with_output {
        v.push(("output.weight".to_string(), vec![width, 1000]));
    }
    v
}

fn run(target: Target, model: &ModelInfo, t: &[(String, Vec<u64>)]) -> Vec<(String, GgmlType)> {
    let descs: Vec<TensorDesc> = t
        .iter()
        .map(|(n, d)| TensorDesc {
            name: n,
            dims: d,
            ty: if d.len() == 1 { F32 } else { F16 },
        })
        .collect();
    let choices = plan(target, model, &descs).unwrap();
    t.iter()
        .zip(choices)
        .map(|((n, _), c)| (n.clone(), c.ty))
        .collect()
}

fn ty_of(r: &[(String, GgmlType)], name: &str) -> GgmlType {
    r.iter().find(|(n, _)| n == name).unwrap().1
}

fn layers_with(r: &[(String, GgmlType)], suffix: &str, ty: GgmlType) -> Vec<u32> {
    r.iter()
        .filter(|(n, t)| n.ends_with(suffix) && *t == ty)
        .map(|(n, _)| n.split('.').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn q4_k_m_gives_more_bits_to_attn_v_and_ffn_down_of_chosen_layers() {
    let t = tensors(32, 4096, true);
    let r = run(Target::Q4KM, &llama(32), &t);
    // i < 4, i >= 28, (i - 4) % 3 == 2.
    let want = vec![0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
    assert_eq!(layers_with(&r, "attn_v.weight", Q6K), want);
    assert_eq!(layers_with(&r, "ffn_down.weight", Q6K), want);
    assert_eq!(layers_with(&r, "attn_q.weight", Q4K).len(), 32);
    assert_eq!(ty_of(&r, "output.weight"), Q6K);
    // Untied: the embedding keeps the default type.
    assert_eq!(ty_of(&r, "token_embd.weight"), Q4K);
    assert_eq!(ty_of(&r, "blk.7.attn_norm.weight"), F32);
    assert_eq!(ty_of(&r, "output_norm.weight"), F32);
}

#[test]
fn tied_embeddings_take_the_output_type() {
    let t = tensors(4, 256, false);
    for (target, want) in [
        (Target::Q4KM, Q6K),
        (Target::Q6K, Q6K),
        (Target::Q5_0, Q6K),
        (Target::Q8_0, Q8_0),
    ] {
        let r = run(target, &llama(4), &t);
        assert_eq!(ty_of(&r, "token_embd.weight"), want, "{target}");
    }
    let with_output = run(Target::Q5_0, &llama(4), &tensors(4, 256, true));
    assert_eq!(ty_of(&with_output, "token_embd.weight"), Q5_0);
    assert_eq!(ty_of(&with_output, "output.weight"), Q6K);
}

#[test]
fn rows_that_are_not_whole_blocks_fall_back() {
    // 640 = 20 * 32: no K-quant fits.
    let t = tensors(6, 640, false);
    let r = run(Target::Q4KM, &llama(6), &t);
    assert_eq!(ty_of(&r, "token_embd.weight"), Q8_0);
    assert_eq!(ty_of(&r, "blk.1.attn_q.weight"), Q5_0);
    // n = 6: more bits on layers 2 (i - 0) % 3 == 2, 5 (i >= 5); Q6_K falls back to Q8_0.
    assert_eq!(layers_with(&r, "attn_v.weight", Q8_0), vec![2, 5]);
    assert_eq!(layers_with(&r, "attn_v.weight", Q5_0), vec![0, 1, 3, 4]);
    // ffn_down rows are 3 * 640 = 1920 wide: 7.5 blocks of 256, still no fit.
    assert_eq!(layers_with(&r, "ffn_down.weight", Q8_0), vec![2, 5]);

    // 1000 wide: not even a multiple of 32. Q4_K -> Q5_0 -> F16, but the tied embedding
    // wants Q8_0, which has no fallback: llama.cpp refuses, and so do we.
    let odd = tensors(1, 1000, false);
    let descs: Vec<TensorDesc> = odd
        .iter()
        .map(|(n, d)| TensorDesc {
            name: n,
            dims: d,
            ty: F16,
        })
        .collect();
    let err = plan(Target::Q4KM, &llama(1), &descs).unwrap_err();
    assert!(
        matches!(err, RecipeError::NoFallback { ty: Q8_0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("token_embd.weight"), "{err}");
    let layers_only: Vec<_> = odd
        .into_iter()
        .filter(|(n, _)| n.starts_with("blk."))
        .collect();
    let r = run(Target::Q4KM, &llama(1), &layers_only);
    assert_eq!(ty_of(&r, "blk.0.attn_q.weight"), F16);
    assert_eq!(ty_of(&r, "blk.0.attn_v.weight"), F16);
}

#[test]
fn q8_0_q6_k_and_q5_0_are_uniform_apart_from_the_output() {
    let t = tensors(8, 512, true);
    for (target, ty) in [
        (Target::Q8_0, Q8_0),
        (Target::Q6K, Q6K),
        (Target::Q5_0, Q5_0),
    ] {
        let r = run(target, &llama(8), &t);
        for (n, got) in &r {
            let want = if n.contains("norm") {
                F32
            } else if n == "output.weight" && target != Target::Q8_0 {
                Q6K
            } else {
                ty
            };
            assert_eq!(*got, want, "{target} {n}");
        }
    }
}

#[test]
fn special_architectures_follow_llama_cpp() {
    let t = tensors(80, 8192, true);
    // Llama 70B (80 layers, GQA): attn_v that would be Q4_K becomes Q5_K.
    let r = run(Target::Q4KM, &llama(80), &t);
    assert_eq!(ty_of(&r, "blk.40.attn_v.weight"), Q5K);
    assert_eq!(ty_of(&r, "blk.0.attn_v.weight"), Q6K);

    // Falcon: output Q8_0, ffn_down Q6_K on the first n/16 layers, Q5_K on more-bits layers.
    let falcon = ModelInfo {
        arch: "falcon".into(),
        ..llama(32)
    };
    let r = run(Target::Q4KM, &falcon, &tensors(32, 4096, true));
    assert_eq!(ty_of(&r, "output.weight"), Q8_0);
    assert_eq!(ty_of(&r, "blk.1.ffn_down.weight"), Q6K);
    assert_eq!(ty_of(&r, "blk.3.ffn_down.weight"), Q5K);
    assert_eq!(ty_of(&r, "blk.4.ffn_down.weight"), Q4K);

    // Eight experts: attn_v and attn_k Q8_0, attn_output Q5_K; layers come from names.
    let moe = ModelInfo {
        n_expert: 8,
        ..llama(4)
    };
    let r = run(Target::Q4KM, &moe, &tensors(4, 256, true));
    assert_eq!(ty_of(&r, "blk.1.attn_v.weight"), Q8_0);
    assert_eq!(ty_of(&r, "blk.1.attn_k.weight"), Q8_0);
    assert_eq!(ty_of(&r, "blk.1.attn_output.weight"), Q5K);
    let mut bad = tensors(4, 256, true);
    bad.push(("mystery.ffn_down.weight".into(), vec![768, 256]));
    let descs: Vec<TensorDesc> = bad
        .iter()
        .map(|(n, d)| TensorDesc {
            name: n,
            dims: d,
            ty: F16,
        })
        .collect();
    let err = plan(Target::Q4KM, &moe, &descs).unwrap_err();
    assert!(err.to_string().contains("mystery.ffn_down.weight"), "{err}");
}

#[test]
fn llama_cpp_order_puts_global_tensors_first_then_layers_numerically() {
    let names = [
        "blk.10.attn_q.weight",
        "token_embd.weight",
        "blk.2.ffn_up.weight",
        "blk.2.attn_q.weight",
        "output_norm.weight",
    ];
    let order: Vec<&str> = llama_cpp_order(&names).iter().map(|&i| names[i]).collect();
    assert_eq!(
        order,
        [
            "output_norm.weight",
            "token_embd.weight",
            "blk.2.attn_q.weight",
            "blk.2.ffn_up.weight",
            "blk.10.attn_q.weight",
        ]
    );
}
