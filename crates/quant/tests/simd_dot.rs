//! The SIMD dot kernels against the scalar reference, bit for bit: random blocks with any
//! bytes (extreme, subnormal and non-finite scales, -128 quants), every length class, and every
//! row of every 2-D tensor of the oracle models and the default model.

use std::path::Path;

use ms_gguf::GgufFile;
use ms_quant::dot::{self, Backend, SimdLevel};
use ms_quant::{GgmlType, QuantizedRow};
use ms_test_support::shared_dir;
use proptest::prelude::*;

const TYPES: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

/// Types with an AVX2 kernel: all of them.
const AVX2_TYPES: [GgmlType; 11] = TYPES;

/// Equal bits, or both NaN (a NaN's payload may depend on operand order).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn both(ty: GgmlType, w: &[u8], a: &[u8]) -> (f32, f32) {
    let scalar = dot::kernel_for(ty, Backend::Scalar).unwrap();
    let simd = dot::kernel_for(ty, Backend::Simd).unwrap();
    (scalar(w, a), simd(w, a))
}

#[test]
fn simd_kernels_are_chosen_when_the_cpu_has_avx2() {
    let f = dot::cpu_features();
    let level = dot::simd_level();
    assert_eq!(level >= SimdLevel::Avx2, f.avx2 && f.f16c, "{f:?}");
    assert_eq!(
        level == SimdLevel::Avx512Vnni,
        f.avx2 && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni,
        "{f:?}"
    );
    for ty in TYPES {
        let scalar = dot::kernel_for(ty, Backend::Scalar).unwrap() as usize;
        let simd = dot::kernel_for(ty, Backend::Simd).unwrap() as usize;
        let expect_simd = level >= SimdLevel::Avx2 && AVX2_TYPES.contains(&ty);
        assert_eq!(scalar != simd, expect_simd, "{ty}");
        assert_eq!(dot::kernel(ty).unwrap() as usize, simd, "{ty}");
    }
    assert!(f.names().contains(&"avx2") == f.avx2);
}

/// A value of magnitude spread over many binades (as f16 bits), sometimes non-finite.
fn wild_f16(r: u64) -> [u8; 2] {
    let bits = match r % 16 {
        0 => 0x7c00,                   // inf
        1 => 0x7e01,                   // NaN
        2 => (r >> 8) as u16 & 0x83ff, // zero or subnormal
        _ => (r >> 8) as u16 & 0xfbff, // any finite
    };
    bits.to_le_bytes()
}

fn wild_f32(r: u64) -> [u8; 4] {
    let v = match r % 32 {
        0 => f32::INFINITY,
        1 => f32::NAN,
        2 => f32::from_bits((r >> 8) as u32 & 0x807f_ffff),
        _ => f32::from_bits((r >> 16) as u32 & 0xbfff_ffff | ((r as u32 & 0x4000_0000) >> 1)),
    };
    v.to_le_bytes()
}

struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `n` values of `ty` with random bytes, scale fields replaced by wild values when `wild`,
/// else by moderate finite ones (so that the result is finite and every bit is compared).
fn random_row(ty: GgmlType, n: usize, wild: bool, g: &mut Gen) -> Vec<u8> {
    let bytes = ty.row_bytes(n as u64).unwrap() as usize;
    let mut v = g.bytes(bytes);
    let f16 = |g: &mut Gen| {
        let r = g.next();
        if wild {
            wild_f16(r)
        } else {
            half::f16::from_f32(((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1)
                .to_bits()
                .to_le_bytes()
        }
    };
    let f32v = |g: &mut Gen| {
        let r = g.next();
        if wild {
            wild_f32(r)
        } else {
            (((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1).to_le_bytes()
        }
    };
    match ty {
        GgmlType::F32 => v
            .as_chunks_mut::<4>()
            .0
            .iter_mut()
            .for_each(|c| *c = f32v(g)),
        GgmlType::F16 => v
            .as_chunks_mut::<2>()
            .0
            .iter_mut()
            .for_each(|c| *c = f16(g)),
        GgmlType::Bf16 => {
            for c in v.as_chunks_mut::<2>().0 {
                *c = [g.next() as u8, f32v(g)[3]];
            }
        }
        _ => {
            let heads: &[(usize, usize)] = match ty {
                GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[(0, 2)],
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => &[(0, 2), (2, 2)],
                GgmlType::Q4K | GgmlType::Q5K => &[(0, 2), (2, 2)],
                GgmlType::Q6K => &[(208, 2)],
                GgmlType::Q8K => &[(0, 4)],
                _ => unreachable!("{ty}"),
            };
            for b in v.chunks_exact_mut(ty.block_bytes()) {
                for &(at, size) in heads {
                    if size == 2 {
                        b[at..at + 2].copy_from_slice(&f16(g));
                    } else {
                        b[at..at + 4].copy_from_slice(&f32v(g));
                    }
                }
            }
        }
    }
    v
}

fn check_random(ty: GgmlType, blocks: usize, seed: u64, wild: bool) -> Result<(), TestCaseError> {
    let mut g = Gen(seed);
    // Float types: lengths that are not multiples of 32 exercise the tails.
    let n = if ty.block_len() == 1 {
        blocks * 13
    } else {
        blocks * ty.block_len()
    };
    let w = random_row(ty, n, wild, &mut g);
    let a = random_row(dot::dot_type(ty).unwrap(), n, wild, &mut g);
    let (scalar, simd) = both(ty, &w, &a);
    prop_assert!(
        same(scalar, simd),
        "{} n={} seed={}: scalar {:e} ({:#x}) vs simd {:e} ({:#x})",
        ty,
        n,
        seed,
        scalar,
        scalar.to_bits(),
        simd,
        simd.to_bits()
    );
    if !wild {
        prop_assert!(scalar.is_finite());
    }
    // Four and eight activation rows against the same weights: each output equals its
    // single-row result.
    let acts: Vec<Vec<u8>> = (0..8)
        .map(|j| {
            if j == 1 {
                a.clone()
            } else {
                random_row(dot::dot_type(ty).unwrap(), n, wild, &mut g)
            }
        })
        .collect();
    let four = [&acts[0][..], &acts[1][..], &acts[2][..], &acts[3][..]];
    let single = dot::kernel_for(ty, Backend::Scalar).unwrap();
    for backend in [Backend::Scalar, Backend::Simd] {
        let mut out = [0.0f32; 4];
        dot::kernel4_for(ty, backend).unwrap()(&w, four, &mut out);
        for (j, a) in four.iter().enumerate() {
            let want = single(&w, a);
            prop_assert!(
                same(want, out[j]),
                "{} n={} seed={} {:?} x4 lane {}: {:e} vs {:e}",
                ty,
                n,
                seed,
                backend,
                j,
                want,
                out[j]
            );
        }
        let eight: [&[u8]; 8] = std::array::from_fn(|j| &acts[j][..]);
        let mut out = [0.0f32; 8];
        dot::kernel8_for(ty, backend).unwrap()(&w, eight, &mut out);
        for (j, a) in eight.iter().enumerate() {
            let want = single(&w, a);
            prop_assert!(
                same(want, out[j]),
                "{} n={} seed={} {:?} x8 lane {}: {:e} vs {:e}",
                ty,
                n,
                seed,
                backend,
                j,
                want,
                out[j]
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn simd_equals_scalar_on_random_blocks(
        ty in proptest::sample::select(TYPES.to_vec()),
        blocks in 1usize..40,
        seed in any::<u64>(),
        wild in any::<bool>(),
    ) {
        check_random(ty, blocks, seed, wild)?;
    }
}

/// `rows` weight rows against `n_acts` activation rows through [`dot::rows_kernel_for`] (both
/// backends): every output equals the scalar single-row kernel's, bit for bit.
fn check_rows(
    ty: GgmlType,
    blocks: usize,
    rows: usize,
    n_acts: usize,
    seed: u64,
    wild: bool,
    extreme: Option<(u8, u8)>,
) -> Result<(), TestCaseError> {
    let mut g = Gen(seed);
    let n = if ty.block_len() == 1 {
        blocks * 13
    } else {
        blocks * ty.block_len()
    };
    let row_bytes = ty.row_bytes(n as u64).unwrap() as usize;
    let act_ty = dot::dot_type(ty).unwrap();
    let mut w = random_row(ty, n * rows, wild, &mut g);
    let mut acts: Vec<Vec<u8>> = (0..n_acts)
        .map(|_| random_row(act_ty, n, wild, &mut g))
        .collect();
    if let (Some((wb, ab)), true) = (extreme, ty.block_len() > 1) {
        let wh = w.clone();
        w.fill(wb);
        restore_heads(ty, &mut w, &wh);
        for a in &mut acts {
            let ah = a.clone();
            a.fill(ab);
            restore_heads(act_ty, a, &ah);
        }
    }
    let acts: Vec<&[u8]> = acts.iter().map(|a| &a[..]).collect();
    let single = dot::kernel_for(ty, Backend::Scalar).unwrap();
    // The backends, then each kernel family this CPU runs (AVX2 and AVX-512 alike).
    let kernels = [Backend::Scalar, Backend::Simd]
        .map(|b| (format!("{b:?}"), dot::rows_kernel_for(ty, b).unwrap()))
        .into_iter()
        .chain(
            SimdLevel::supported()
                .into_iter()
                .map(|l| (l.name().to_string(), dot::rows_kernel_at(ty, l).unwrap())),
        );
    for (backend, kernel) in kernels {
        let mut out = vec![f32::NAN; rows * n_acts];
        kernel(&w, row_bytes, &acts, &mut out);
        for r in 0..rows {
            for (j, a) in acts.iter().enumerate() {
                let want = single(&w[r * row_bytes..(r + 1) * row_bytes], a);
                let got = out[r * n_acts + j];
                prop_assert!(
                    same(want, got),
                    "{} n={} rows={} acts={} seed={} {:?} row {} act {}: {:e} vs {:e}",
                    ty,
                    n,
                    rows,
                    n_acts,
                    seed,
                    backend,
                    r,
                    j,
                    want,
                    got
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rows_kernels_equal_single_dots(
        ty in proptest::sample::select(TYPES.to_vec()),
        blocks in 1usize..30,
        rows in 1usize..6,
        n_acts in 1usize..14,
        seed in any::<u64>(),
        wild in any::<bool>(),
    ) {
        check_rows(ty, blocks, rows, n_acts, seed, wild, None)?;
    }
}

#[test]
fn rows_kernels_equal_single_dots_on_extreme_quants() {
    for ty in AVX2_TYPES {
        for ext in [
            (0x80u8, 0x80u8),
            (0xff, 0x80),
            (0x80, 0x7f),
            (0xff, 0xff),
            (0x00, 0x80),
        ] {
            for blocks in [3, 8, 17] {
                check_rows(ty, blocks, 3, 9, ty as u64, false, Some(ext)).unwrap();
            }
        }
    }
}

#[test]
fn simd_equals_scalar_on_extreme_quants() {
    // All quant bytes at their extremes (-128 / 0x80 and 0xff patterns) in both operands,
    // where a saturating 16-bit shortcut would go wrong.
    for ty in AVX2_TYPES {
        let n = 16 * ty.block_len().max(32);
        for (wb, ab) in [(0x80u8, 0x80u8), (0xff, 0x80), (0x80, 0x7f), (0xff, 0xff)] {
            let mut g = Gen(ty as u64);
            let mut w = random_row(ty, n, false, &mut g);
            let mut a = random_row(dot::dot_type(ty).unwrap(), n, false, &mut g);
            if ty.block_len() > 1 {
                let (wh, ah) = (w.clone(), a.clone());
                w.fill(wb);
                a.fill(ab);
                // Keep the moderate scales.
                restore_heads(ty, &mut w, &wh);
                restore_heads(dot::dot_type(ty).unwrap(), &mut a, &ah);
            }
            let (scalar, simd) = both(ty, &w, &a);
            assert!(
                same(scalar, simd),
                "{ty} {wb:#x}/{ab:#x}: {scalar} vs {simd}"
            );
        }
    }
}

#[test]
fn vec_dot4_checks_its_rows() {
    let ty = GgmlType::Q5_0;
    let mut g = Gen(3);
    let w = random_row(ty, 64, false, &mut g);
    let x: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) / 7.0).collect();
    let mut act = QuantizedRow::new();
    act.quantize(ty, &x).unwrap();
    let mut short = QuantizedRow::new();
    short.quantize(ty, &x[..32]).unwrap();
    let mut out = [0.0; 4];
    ms_quant::dot::vec_dot4(ty, &w, [&act; 4], &mut out).unwrap();
    let one = ms_quant::vec_dot(ty, &w, &act).unwrap();
    assert_eq!(out.map(f32::to_bits), [one.to_bits(); 4]);
    let err = ms_quant::dot::vec_dot4(ty, &w, [&act, &act, &short, &act], &mut out).unwrap_err();
    assert!(err.to_string().contains("row of 64 values"), "{err}");
    assert!(ms_quant::dot::vec_dot4(ty, &w[1..], [&act; 4], &mut out).is_err());
}

#[test]
fn mat_mul_rows_equals_single_dots() {
    for ty in [
        GgmlType::Q5_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
        GgmlType::F16,
        GgmlType::Q4_1,
    ] {
        let n = 512;
        let rows = 5;
        let mut g = Gen(ty as u64 + 100);
        let w = random_row(ty, n * rows, false, &mut g);
        let row_bytes = w.len() / rows;
        for tokens in [1usize, 4, 7, 8, 13] {
            let acts: Vec<QuantizedRow> = (0..tokens)
                .map(|t| {
                    let x: Vec<f32> = (0..n)
                        .map(|i| ((i * 7 + t * 13) % 23) as f32 - 11.0)
                        .collect();
                    let mut q = QuantizedRow::new();
                    q.quantize(ty, &x).unwrap();
                    q
                })
                .collect();
            for backend in [Backend::Scalar, Backend::Simd] {
                let mut out = vec![f32::NAN; tokens * rows];
                dot::mat_mul_rows(ty, backend, &w, &acts, &mut out).unwrap();
                for t in 0..tokens {
                    for r in 0..rows {
                        let want =
                            ms_quant::vec_dot(ty, &w[r * row_bytes..(r + 1) * row_bytes], &acts[t])
                                .unwrap();
                        assert_eq!(
                            out[t * rows + r].to_bits(),
                            want.to_bits(),
                            "{ty} t{t} r{r}"
                        );
                    }
                }
            }
            let mut out = vec![0.0; tokens * rows + 1];
            let err = dot::mat_mul_rows(ty, Backend::Simd, &w, &acts, &mut out).unwrap_err();
            assert!(err.to_string().contains("bytes were given"), "{err}");
        }
    }
}

fn restore_heads(ty: GgmlType, v: &mut [u8], from: &[u8]) {
    let heads: &[(usize, usize)] = match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[(0, 2)],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => &[(0, 4)],
        GgmlType::Q4K | GgmlType::Q5K => &[(0, 4)],
        GgmlType::Q6K => &[(208, 2)],
        GgmlType::Q8K => &[(0, 4)],
        _ => &[],
    };
    for (b, f) in v
        .chunks_exact_mut(ty.block_bytes())
        .zip(from.chunks_exact(ty.block_bytes()))
    {
        for &(at, size) in heads {
            b[at..at + size].copy_from_slice(&f[at..at + size]);
        }
    }
}

/// Every row of every 2-D tensor with a kernel, against a hidden-state-like activation
/// (small values with large outliers) quantized for its type; returns the types seen.
fn check_model(path: &Path) -> Vec<&'static str> {
    let file = GgufFile::open(path).unwrap();
    let mut g = Gen(11);
    let mut act = QuantizedRow::new();
    let mut seen = Vec::new();
    for info in file.tensors().iter().filter(|t| t.dims.len() == 2) {
        let (Ok(scalar), Ok(simd)) = (
            dot::kernel_for(info.ty, Backend::Scalar),
            dot::kernel_for(info.ty, Backend::Simd),
        ) else {
            continue;
        };
        let n = info.row_len() as usize;
        let row_bytes = info.ty.row_bytes(n as u64).unwrap() as usize;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let u = (g.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
                u * if i % 97 == 0 { 20.0 } else { 1.0 }
            })
            .collect();
        act.quantize(info.ty, &x).unwrap();
        let a = act.as_bytes();
        // Three more activations (scaled, negated, reversed) for the four-row kernel.
        let others: Vec<QuantizedRow> = [
            x.iter().map(|v| v * 1e-3).collect::<Vec<f32>>(),
            x.iter().map(|v| -v).collect(),
            x.iter().rev().copied().collect(),
        ]
        .iter()
        .map(|x| {
            let mut q = QuantizedRow::new();
            q.quantize(info.ty, x).unwrap();
            q
        })
        .collect();
        let four = [
            a,
            others[0].as_bytes(),
            others[1].as_bytes(),
            others[2].as_bytes(),
        ];
        let simd4 = dot::kernel4_for(info.ty, Backend::Simd).unwrap();
        let simd8 = dot::kernel8_for(info.ty, Backend::Simd).unwrap();
        let eight: [&[u8]; 8] = std::array::from_fn(|j| four[j % 4]);
        for (r, w) in file.tensor_data(info).chunks_exact(row_bytes).enumerate() {
            let (s, v) = (scalar(w, a), simd(w, a));
            assert_eq!(
                s.to_bits(),
                v.to_bits(),
                "{} row {r}: {s} vs {v}",
                info.name
            );
            let mut out = [0.0f32; 4];
            simd4(w, four, &mut out);
            for (j, a) in four.iter().enumerate() {
                let s = scalar(w, a);
                assert_eq!(
                    s.to_bits(),
                    out[j].to_bits(),
                    "{} row {r} x4 lane {j}",
                    info.name
                );
            }
            let mut out8 = [0.0f32; 8];
            simd8(w, eight, &mut out8);
            assert_eq!(
                out8.map(f32::to_bits),
                std::array::from_fn(|j| out[j % 4].to_bits()),
                "{} row {r} x8",
                info.name
            );
        }
        // The whole matrix in one call of the rows kernel, against one and against five
        // activations (eight, then four, then one at a time inside).
        let data = file.tensor_data(info);
        let rows = data.len() / row_bytes;
        // Every SIMD family this CPU runs (AVX2, and AVX-512 where present).
        for level in SimdLevel::supported() {
            if level == SimdLevel::None {
                continue;
            }
            let rows_kernel = dot::rows_kernel_at(info.ty, level).unwrap();
            let mut out1 = vec![0.0f32; rows];
            rows_kernel(data, row_bytes, &[a], &mut out1);
            let five = [a, four[1], four[2], four[3], a];
            let mut out5 = vec![0.0f32; 5 * rows];
            rows_kernel(data, row_bytes, &five, &mut out5);
            for (r, w) in data.chunks_exact(row_bytes).enumerate() {
                assert_eq!(
                    out1[r].to_bits(),
                    scalar(w, a).to_bits(),
                    "{} row {r} rows kernel {}",
                    info.name,
                    level.name()
                );
                for (j, a) in five.iter().enumerate() {
                    assert_eq!(
                        out5[5 * r + j].to_bits(),
                        scalar(w, a).to_bits(),
                        "{} row {r} rows kernel {}, activation {j}",
                        info.name,
                        level.name()
                    );
                }
            }
        }
        if !seen.contains(&info.ty.name()) {
            seen.push(info.ty.name());
        }
    }
    seen.sort();
    seen
}

#[test]
fn simd_equals_scalar_on_every_row_of_the_oracle_models() {
    let mut seen = Vec::new();
    for name in [
        "llama-spm-tiny.f16.gguf",
        "llama-spm-tiny.q4_k_m.gguf",
        "llama-spm-tiny.q8_0.gguf",
        "qwen2-bpe-tiny.q8_0.gguf",
    ] {
        seen.extend(check_model(&shared_dir().join("oracle/models").join(name)));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["F16", "Q4_K", "Q6_K", "Q8_0"]);
}

#[test]
fn simd_equals_scalar_on_every_row_of_the_default_model() {
    let path = ms_fetch::default_model().expect("fetch the default model");
    assert_eq!(check_model(&path), ["Q4_K", "Q5_0", "Q6_K", "Q8_0"]);
}
