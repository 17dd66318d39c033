//! Many weight rows against up to eight activation rows in one call (generation: one activation
//! row against a task's rows; prefill: eight tokens against a chunk of rows), each output bit for
//! bit the single-row kernel's.
//!
//! What the activations contribute is prepared once per call instead of once per weight row:
//! their f16/f32 scales as vectors of eight blocks, the sums `off · Σ y` that turn products of
//! unsigned weight values into products of offset ones (Q4_0, Q5_0, Q6_K: one `maddubs` per 32
//! values instead of two), and for Q8_0 the activations widened to i16. Every integer sum is
//! still exact for any bytes (bounds at each step below), and every float operation is the
//! scalar reference's, in its order.

use std::cell::Cell;

use std::arch::x86_64::*;

use super::*;

thread_local! {
    /// Prepared activation data, reused by every call on this thread (grown, never shrunk).
    static PREP: Cell<Vec<__m256i>> = const { Cell::new(Vec::new()) };
}

/// Lane `b` is the sum of the sixteen i16 lanes of `p[b]`, for i16 lanes of magnitude at most
/// 7936 (so that sums of four still fit in i16): two levels of 16-bit horizontal adds, then
/// widening.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn tree16(p: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi16(p[0], p[1]);
    let h23 = _mm256_hadd_epi16(p[2], p[3]);
    let h45 = _mm256_hadd_epi16(p[4], p[5]);
    let h67 = _mm256_hadd_epi16(p[6], p[7]);
    let ones = _mm256_set1_epi16(1);
    // Per 128-bit half: lanes 0..4 are blocks 0..4 (resp. 4..8), each summed over that half.
    let m0123 = _mm256_madd_epi16(_mm256_hadd_epi16(h01, h23), ones);
    let m4567 = _mm256_madd_epi16(_mm256_hadd_epi16(h45, h67), ones);
    let lo = _mm256_permute2x128_si256::<0x20>(m0123, m4567);
    let hi = _mm256_permute2x128_si256::<0x31>(m0123, m4567);
    _mm256_add_epi32(lo, hi)
}

/// One group of eight weight blocks against every activation, adding the (possibly masked)
/// terms to `acc`. `by_act` decodes the eight blocks first and then takes the activations one by
/// one, so that each activation's sums go straight into its reduction (small decoded blocks:
/// Q4_0, Q5_0, Q8_0); `by_block` decodes one block at a time and takes every activation with it,
/// keeping the partial sums until the group is complete (K-quants, whose decoded blocks are large);
/// `by_group` decodes the eight blocks into one value (`$decode(&[&block; 8])`) and takes each
/// activation's eight prepared blocks at once (`$isums(&decoded, &[prep; 8])`), so that its
/// sums come out with lane `b` = block `b` and need no horizontal reduction (blocks laid out
/// across lanes, see [`avx512`]). `$a(j, i)`, `$pb(j, i)`, `$pg(j)` and `$pgb(j)` give
/// activation `j`'s block `i`, that block's preparation, the group's preparation and the
/// preparation of the group's eight blocks; `$mask(t)` masks the terms.
macro_rules! rows_group {
    (by_act, $decode:ident, $isums:ident, $reduce:ident, $terms:ident, $k:expr, $na:expr,
     $parts:ident, $wg:expr, $ws:expr, $acc:expr, $a:expr, $pb:expr, $pg:expr, $pgb:expr,
     $mask:expr) => {{
        let wg = $wg;
        let d = [
            $decode(wg[0]),
            $decode(wg[1]),
            $decode(wg[2]),
            $decode(wg[3]),
            $decode(wg[4]),
            $decode(wg[5]),
            $decode(wg[6]),
            $decode(wg[7]),
        ];
        for j in 0..$na {
            let mut p = [[_mm256_setzero_si256(); $k]; 8];
            for i in 0..8 {
                p[i] = $isums(&d[i], ($a)(j, i), ($pb)(j, i));
            }
            let t = $terms(&$ws, ($pg)(j), $reduce(&p));
            $acc[j] = _mm256_add_ps($acc[j], ($mask)(t));
        }
    }};
    (by_group, $decode:ident, $isums:ident, $reduce:ident, $terms:ident, $k:expr, $na:expr,
     $parts:ident, $wg:expr, $ws:expr, $acc:expr, $a:expr, $pb:expr, $pg:expr, $pgb:expr,
     $mask:expr) => {{
        let d = $decode(&$wg);
        for j in 0..$na {
            let t = $terms(&$ws, ($pg)(j), $reduce($isums(&d, ($pgb)(j))));
            $acc[j] = _mm256_add_ps($acc[j], ($mask)(t));
        }
    }};
    (by_group_all, $decode:ident, $isums:ident, $reduce:ident, $terms:ident, $k:expr, $na:expr,
     $parts:ident, $wg:expr, $ws:expr, $acc:expr, $a:expr, $pb:expr, $pg:expr, $pgb:expr,
     $mask:expr) => {{
        let d = $decode(&$wg);
        let sums = $isums::<$na>(&d, std::array::from_fn(|j| ($pgb)(j)));
        for j in 0..$na {
            let t = $terms(&$ws, ($pg)(j), $reduce(sums[j]));
            $acc[j] = _mm256_add_ps($acc[j], ($mask)(t));
        }
    }};
    (by_block, $decode:ident, $isums:ident, $reduce:ident, $terms:ident, $k:expr, $na:expr,
     $parts:ident, $wg:expr, $ws:expr, $acc:expr, $a:expr, $pb:expr, $pg:expr, $pgb:expr,
     $mask:expr) => {{
        let wg = $wg;
        let parts = &mut $parts;
        for i in 0..8 {
            let d = $decode(wg[i]);
            for j in 0..$na {
                parts[j][i] = $isums(&d, ($a)(j, i), ($pb)(j, i));
            }
        }
        for j in 0..$na {
            let t = $terms(&$ws, ($pg)(j), $reduce(&parts[j]));
            $acc[j] = _mm256_add_ps($acc[j], ($mask)(t));
        }
    }};
}

/// Prepares one activation's blocks into `$pb` (room for whole groups): block by block, or for
/// `by_group` eight blocks at a time (`$prep(&blocks, &mut [prep; 8])`, fewer than eight in a
/// partial last group).
macro_rules! rows_prep {
    (by_group, $prep:ident, $ab:expr, $pb:expr) => {
        rows_prep!(by_group_all, $prep, $ab, $pb)
    };
    (by_group_all, $prep:ident, $ab:expr, $pb:expr) => {{
        let ab = $ab;
        for (g, pb) in $pb.as_chunks_mut::<8>().0.iter_mut().enumerate() {
            $prep(&ab[8 * g..(8 * g + 8).min(ab.len())], pb);
        }
    }};
    ($order:ident, $prep:ident, $ab:expr, $pb:expr) => {
        for (b, pb) in $ab.iter().zip($pb) {
            $prep(b, pb);
        }
    };
}

/// The driver shared by every type. Per call: `$prep_block(ab, &mut [__m256i; $pb])` prepares
/// each activation block, `$prep_group(blocks) -> [__m256i; 2]` each group of (up to) eight
/// activation blocks. Per weight row and group: `$decode(wb)` unpacks a weight block once for
/// all activations, `$isums(&decoded, ab, prep)` gives a block's partial sums (`[__m256i; K]`),
/// `$reduce(&parts)` turns the eight blocks' partial sums into one vector per sum with lane `b`
/// = block `b`, `$wscales(blocks)` gathers the weights' scales and `$terms(ws, group prep, sums)`
/// the eight f32 terms. The terms of a partial last group are masked to +0.0, which leaves the
/// accumulators unchanged (they start at +0.0 and so are never -0.0).
macro_rules! rows_kernel {
    ($name:ident, $order:ident, $wb:expr, $ab:expr, $k:expr, $pb:expr, $prep_block:ident,
     $prep_group:ident, $decode:ident, $isums:ident, $reduce:ident, $wscales:ident,
     $terms:ident) => {
        rows_kernel!(
            "avx2,f16c",
            $name,
            $order,
            $wb,
            $ab,
            $k,
            $pb,
            $prep_block,
            $prep_group,
            $decode,
            $isums,
            $reduce,
            $wscales,
            $terms
        );
    };
    ($feat:literal, $name:ident, $order:ident, $wb:expr, $ab:expr, $k:expr, $pb:expr,
     $prep_block:ident, $prep_group:ident, $decode:ident, $isums:ident, $reduce:ident,
     $wscales:ident, $terms:ident) => {
        #[target_feature(enable = $feat)]
        fn $name<const NA: usize>(
            w: &[u8],
            row_bytes: usize,
            a: [&[u8]; NA],
            out: &mut [f32],
            stride: usize,
        ) {
            let mut n = row_bytes / $wb;
            let mut ab: [&[[u8; $ab]]; NA] = [&[]; NA];
            for (ab, a) in ab.iter_mut().zip(a) {
                *ab = a.as_chunks::<{ $ab }>().0;
                n = n.min(ab.len());
            }
            if row_bytes == 0 {
                return;
            }
            let full = n / 8;
            let groups = n.div_ceil(8);
            let tail = n - 8 * full;
            // Per activation: `$pb` vectors per block (the last group padded to eight blocks),
            // then two per group.
            let per_act = 8 * groups * $pb + 2 * groups;
            let mut prep_vec = PREP.take();
            if prep_vec.len() < NA * per_act + 1 {
                prep_vec.resize(NA * per_act + 1, _mm256_setzero_si256());
            }
            // Started on a 64-byte boundary (`per_act` and every block group's share are even),
            // so that the 512-bit kernels' loads of two vectors never straddle cache lines.
            let aligned = (prep_vec.as_ptr() as usize / 32) % 2;
            let prep = &mut prep_vec[aligned..];
            for j in 0..NA {
                let p = &mut prep[j * per_act..(j + 1) * per_act];
                let (pb, pg) = p.split_at_mut(8 * groups * $pb);
                rows_prep!(
                    $order,
                    $prep_block,
                    &ab[j][..n],
                    pb.as_chunks_mut::<{ $pb }>().0
                );
                for (g, pg) in pg.as_chunks_mut::<2>().0.iter_mut().enumerate() {
                    *pg = $prep_group(&ab[j][8 * g..(8 * g + 8).min(n)]);
                }
            }
            let mask = lanes_below(tail);
            let prep = &prep[..];
            // Per activation: its full groups of blocks, its per-block and per-group preparation.
            // Each order reads its own subset of these.
            #[allow(unused_variables, unused_assignments)]
            let mut agroups: [&[[[u8; $ab]; 8]]; NA] = [&[]; NA];
            #[allow(unused_variables, unused_assignments)]
            let mut pblocks: [&[[__m256i; $pb]]; NA] = [&[]; NA];
            #[allow(unused_variables, unused_assignments)]
            let mut pblocks8: [&[[[__m256i; $pb]; 8]]; NA] = [&[]; NA];
            let mut pgroups: [&[[__m256i; 2]]; NA] = [&[]; NA];
            for j in 0..NA {
                agroups[j] = ab[j][..8 * full].as_chunks::<8>().0;
                let (pb, pg) = prep[j * per_act..(j + 1) * per_act].split_at(8 * groups * $pb);
                pblocks[j] = pb.as_chunks::<{ $pb }>().0;
                pblocks8[j] = pblocks[j].as_chunks::<8>().0;
                pgroups[j] = pg.as_chunks::<2>().0;
            }
            // Stand-ins for the missing blocks of a partial last group (their terms are masked).
            let zero_w = [0u8; $wb];
            #[allow(unused_variables)]
            let zero_a = [0u8; $ab];
            #[allow(unused_variables)]
            let zero_p = [_mm256_setzero_si256(); $pb];
            // Partial sums of one group (by_block), every entry written before it is read: kept
            // across rows rather than zeroed for each.
            #[allow(unused_mut, unused_variables)]
            let mut parts = [[[_mm256_setzero_si256(); $k]; 8]; NA];
            let rows = w.len() / row_bytes;
            let ahead = PREFETCH_BYTES.div_ceil(row_bytes);
            for r in 0..rows {
                let row = &w[r * row_bytes..(r + 1) * row_bytes];
                if r + ahead < rows {
                    prefetch(&w[(r + ahead) * row_bytes..(r + ahead + 1) * row_bytes]);
                }
                let wb = &row.as_chunks::<{ $wb }>().0[..n];
                let (wgroups, wrest) = wb.as_chunks::<8>();
                let mut acc = [_mm256_setzero_ps(); NA];
                for (g, wg) in wgroups.iter().enumerate() {
                    let wg: [&[u8; $wb]; 8] = [
                        &wg[0], &wg[1], &wg[2], &wg[3], &wg[4], &wg[5], &wg[6], &wg[7],
                    ];
                    let ws = $wscales(&wgroups[g]);
                    rows_group!(
                        $order,
                        $decode,
                        $isums,
                        $reduce,
                        $terms,
                        $k,
                        NA,
                        parts,
                        wg,
                        ws,
                        acc,
                        |j: usize, i: usize| &agroups[j][g][i],
                        |j: usize, i: usize| &pblocks[j][8 * g + i],
                        |j: usize| &pgroups[j][g],
                        |j: usize| &pblocks8[j][g],
                        |t: __m256| t
                    );
                }
                if tail > 0 {
                    let wg: [&[u8; $wb]; 8] =
                        std::array::from_fn(|i| wrest.get(i).unwrap_or(&zero_w));
                    let ws = $wscales(wrest);
                    rows_group!(
                        $order,
                        $decode,
                        $isums,
                        $reduce,
                        $terms,
                        $k,
                        NA,
                        parts,
                        wg,
                        ws,
                        acc,
                        |j: usize, i: usize| if i < tail {
                            &ab[j][8 * full + i]
                        } else {
                            &zero_a
                        },
                        |j: usize, i: usize| if i < tail {
                            &pblocks[j][8 * full + i]
                        } else {
                            &zero_p
                        },
                        |j: usize| &pgroups[j][full],
                        |j: usize| &pblocks8[j][full],
                        |t: __m256| _mm256_and_ps(t, mask)
                    );
                }
                for (j, acc) in acc.into_iter().enumerate() {
                    out[r * stride + j] = finish(acc);
                }
            }
            PREP.set(prep_vec);
        }
    };
}

/// How far ahead (in bytes, rounded up to whole rows) weights are requested while a row is
/// multiplied: generation streams every weight once per token, so it waits on memory. Chosen
/// by measurement (1.1B Q4_K_M, 2 threads, tg tok/s, alternating x3): 8 KiB 25.1-25.8, 12 KiB
/// 28.4-29.4, 16 KiB 27.9-29.7, 32-64 KiB 28.2-29.1; Gemma 270M is flat from 8 to 12 KiB and
/// loses a few percent beyond.
const PREFETCH_BYTES: usize = 12 << 10;

/// A cache hint for one row's bytes (no effect on any result).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prefetch(row: &[u8]) {
    for at in (0..row.len()).step_by(64) {
        // SAFETY: a prefetch of an address inside `row`; it never faults nor writes.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(at).cast()) };
    }
}

/// `$reduce` for sums that are one i32 vector per block: [`hsum_8x8`] each.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn reduce_i32<const K: usize>(parts: &[[__m256i; K]; 8]) -> [__m256i; K] {
    reduce_parts(parts)
}

/// `$reduce` for Q4_0 / Q5_0: the blocks' `maddubs` i16 pair sums, through [`tree16`].
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn reduce_i16(parts: &[[__m256i; 1]; 8]) -> [__m256i; 1] {
    let mut p = [_mm256_setzero_si256(); 8];
    for (p, q) in p.iter_mut().zip(parts) {
        *p = q[0];
    }
    [tree16(&p)]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn no_block_prep<const AB: usize>(_: &[u8; AB], _: &mut [__m256i; 1]) {}

/// Q8_0 activation groups for offset weights: `[scales, off · Σ y per block]`, the sums through
/// the same [`tree16`] as the products (`maddubs(off, y)`: pairs within ±2·16·128).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_group_off<const OFF: i8>(g: &[[u8; Q8_0_BYTES]]) -> [__m256i; 2] {
    let mut p = [_mm256_setzero_si256(); 8];
    for (p, b) in p.iter_mut().zip(g) {
        *p = _mm256_maddubs_epi16(_mm256_set1_epi8(OFF), ld32(b, 2));
    }
    [_mm256_castps_si256(gather_f16(g, 0)), tree16(&p)]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_group_off8(g: &[[u8; Q8_0_BYTES]]) -> [__m256i; 2] {
    prep_group_off::<8>(g)
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_group_off16(g: &[[u8; Q8_0_BYTES]]) -> [__m256i; 2] {
    prep_group_off::<16>(g)
}

/// Q4_0 / Q5_0 values (unsigned, below 32) times activation bytes: pairs within ±7936.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_u5(q: &__m256i, a: &[u8; Q8_0_BYTES], _: &[__m256i; 1]) -> [__m256i; 1] {
    [_mm256_maddubs_epi16(*q, ld32(a, 2))]
}

/// `(dw · da) · (Σ q·y - off·Σ y)`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_off(w: &[__m256; 2], a: &[__m256i; 2], s: [__m256i; 1]) -> __m256 {
    let d = _mm256_mul_ps(w[0], _mm256_castsi256_ps(a[0]));
    let isum = _mm256_sub_epi32(s[0], a[1]);
    _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q4_0_rows(w: &[u8; Q4_0_BYTES]) -> __m256i {
    decode_q4_0(w)
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q5_0_rows(w: &[u8; Q5_0_BYTES]) -> __m256i {
    decode_q5_0(w)
}

rows_kernel!(
    q4_0_rows,
    by_act,
    Q4_0_BYTES,
    Q8_0_BYTES,
    1,
    1,
    no_block_prep,
    prep_group_off8,
    decode_q4_0_rows,
    isum_u5,
    reduce_i16,
    wscales_d,
    terms_off
);
rows_kernel!(
    q5_0_rows,
    by_act,
    Q5_0_BYTES,
    Q8_0_BYTES,
    1,
    1,
    no_block_prep,
    prep_group_off16,
    decode_q5_0_rows,
    isum_u5,
    reduce_i16,
    wscales_d,
    terms_off
);

/// Q8_0 activations widened to i16 once per call.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_block_q8_0(b: &[u8; Q8_0_BYTES], p: &mut [__m256i; 2]) {
    let y = ld32(b, 2);
    p[0] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y));
    p[1] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(y));
}

/// `[scales, unused]`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_group_d(g: &[[u8; Q8_0_BYTES]]) -> [__m256i; 2] {
    [
        _mm256_castps_si256(gather_f16(g, 0)),
        _mm256_setzero_si256(),
    ]
}

/// Widened products: each i32 lane within 2·128·128.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q8_0_rows(x: &[__m256i; 2], _: &[u8; Q8_0_BYTES], y: &[__m256i; 2]) -> [__m256i; 1] {
    [_mm256_add_epi32(
        _mm256_madd_epi16(x[0], y[0]),
        _mm256_madd_epi16(x[1], y[1]),
    )]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_d(w: &[__m256; 2], a: &[__m256i; 2], s: [__m256i; 1]) -> __m256 {
    let d = _mm256_mul_ps(w[0], _mm256_castsi256_ps(a[0]));
    _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0]))
}

rows_kernel!(
    q8_0_rows,
    by_act,
    Q8_0_BYTES,
    Q8_0_BYTES,
    1,
    2,
    prep_block_q8_0,
    prep_group_d,
    decode_q8_0,
    isum_q8_0_rows,
    reduce_i32,
    wscales_d,
    terms_d
);

/// Q8_K activation groups: `[d as f32, unused]`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_group_q8_k(g: &[[u8; Q8_K_BYTES]]) -> [__m256i; 2] {
    [
        _mm256_castps_si256(gather_f32(g, 0)),
        _mm256_setzero_si256(),
    ]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q4_k_rows(d: &Q4K, a: &[u8; Q8_K_BYTES], _: &[__m256i; 1]) -> [__m256i; 2] {
    isum_q4_k(d, a)
}

/// `(d · da) · isum - (dmin · da) · imin`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_q4_k_rows(w: &[__m256; 2], a: &[__m256i; 2], s: [__m256i; 2]) -> __m256 {
    let da = _mm256_castsi256_ps(a[0]);
    let d = _mm256_mul_ps(w[0], da);
    let dmin = _mm256_mul_ps(w[1], da);
    _mm256_sub_ps(
        _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0])),
        _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(s[1])),
    )
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q4_k_rows(w: &[u8; Q4_K_BYTES]) -> Q4K {
    decode_q4_k(w)
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q5_k_rows(w: &[u8; Q5_K_BYTES]) -> Q4K {
    decode_q5_k(w)
}

rows_kernel!(
    q4_k_rows,
    by_block,
    Q4_K_BYTES,
    Q8_K_BYTES,
    2,
    1,
    no_block_prep,
    prep_group_q8_k,
    decode_q4_k_rows,
    isum_q4_k_rows,
    reduce_i32,
    wscales_d_m,
    terms_q4_k_rows
);
rows_kernel!(
    q5_k_rows,
    by_block,
    Q5_K_BYTES,
    Q8_K_BYTES,
    2,
    1,
    no_block_prep,
    prep_group_q8_k,
    decode_q5_k_rows,
    isum_q4_k_rows,
    reduce_i32,
    wscales_d_m,
    terms_q4_k_rows
);

/// Q8_K activation blocks for Q6_K: the sixteen sums `Σ y` of its 16-value sub-blocks, sub-block
/// `2g` in lane `g` of the low half and `2g + 1` in lane `g` of the high half (each within
/// ±2048), computed from the bytes themselves (not the block's stored sums, which the scalar
/// reference does not use for Q6_K).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_block_q6_k(b: &[u8; Q8_K_BYTES], p: &mut [__m256i; 1]) {
    let ones = _mm256_set1_epi8(1);
    let mut u = [_mm256_setzero_si256(); 8];
    for (g, u) in u.iter_mut().enumerate() {
        *u = _mm256_maddubs_epi16(ones, ld32(b, Q8_K_QS + 32 * g));
    }
    let h01 = _mm256_hadd_epi16(u[0], u[1]);
    let h23 = _mm256_hadd_epi16(u[2], u[3]);
    let h45 = _mm256_hadd_epi16(u[4], u[5]);
    let h67 = _mm256_hadd_epi16(u[6], u[7]);
    p[0] = _mm256_hadd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_hadd_epi16(h45, h67));
}

/// `Σ_16 scale · Σ (q - 32) · y` as `Σ_16 scale · Σ q · y - 32 · Σ_16 scale · Σ y`: unsigned
/// 6-bit values times bytes pair within ±16128, times a scale within ±2^21 per i32 lane, and
/// the whole block within ±2^29.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q6_k_rows(d: &Q6K, a: &[u8; Q8_K_BYTES], sums: &[__m256i; 1]) -> [__m256i; 1] {
    let mut isum = _mm256_setzero_si256();
    for g in 0..8 {
        let p = _mm256_maddubs_epi16(d.q[g], ld32(a, Q8_K_QS + 32 * g));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, d.sc[g]));
    }
    let off = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sums[0], d.pairs));
    [_mm256_sub_epi32(isum, off)]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_q6_k_rows(w: &[__m256; 2], a: &[__m256i; 2], s: [__m256i; 1]) -> __m256 {
    let d = _mm256_mul_ps(w[0], _mm256_castsi256_ps(a[0]));
    _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0]))
}

rows_kernel!(
    q6_k_rows,
    by_block,
    Q6_K_BYTES,
    Q8_K_BYTES,
    1,
    1,
    prep_block_q6_k,
    prep_group_q8_k,
    decode_q6_k,
    isum_q6_k_rows,
    reduce_i32,
    wscales_q6_k,
    terms_q6_k_rows
);

/// The 6-bit scales and mins of eight Q4_K blocks at once, as `k_scales_mins_simd` unpacks one
/// block's, lane `k` = block `k`: `[scales 0..4, scales 4..8, mins 0..4, mins 4..8]`, a byte
/// each (the dwords after the two f16 are u0, u1, u2).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn k_scales_mins_by_block(w: &[&[u8; Q4_K_BYTES]; 8]) -> [__m256i; 4] {
    let ld = |b: &[u8; Q4_K_BYTES]| ld16(b, 0);
    let [_, u0, u1, u2] = dwords_by_block(w.map(ld));
    let low6 = _mm256_set1_epi32(0x3f3f_3f3f);
    let low4 = _mm256_set1_epi32(0x0f0f_0f0f);
    let low2 = _mm256_set1_epi32(0x0303_0303);
    let top2 =
        |u: __m256i| _mm256_slli_epi32::<4>(_mm256_and_si256(_mm256_srli_epi32::<6>(u), low2));
    [
        _mm256_and_si256(u0, low6),
        _mm256_or_si256(_mm256_and_si256(u2, low4), top2(u0)),
        _mm256_and_si256(u1, low6),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32::<4>(u2), low4), top2(u1)),
    ]
}

/// Lane `k` (a dword) of `x[m]` is dword `m` of `x[k]`'s 16 bytes, for eight 16-byte values:
/// eight blocks' bytes laid across the lanes.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn dwords_by_block(x: [__m128i; 8]) -> [__m256i; 4] {
    let y: [__m256i; 4] = std::array::from_fn(|i| {
        _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(x[i]), x[i + 4])
    });
    let t0 = _mm256_unpacklo_epi32(y[0], y[1]);
    let t1 = _mm256_unpackhi_epi32(y[0], y[1]);
    let t2 = _mm256_unpacklo_epi32(y[2], y[3]);
    let t3 = _mm256_unpackhi_epi32(y[2], y[3]);
    [
        _mm256_unpacklo_epi64(t0, t2),
        _mm256_unpackhi_epi64(t0, t2),
        _mm256_unpacklo_epi64(t1, t3),
        _mm256_unpackhi_epi64(t1, t3),
    ]
}

/// Bytes `first` and `second` of each dword of `v` (0..4) widened to an i16 pair.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn byte_pair_epi16(v: __m256i, first: i8, second: i8) -> __m256i {
    // Per dword: byte `first`, zero, byte `second`, zero (a -128 control byte writes zero).
    let ctrl: [i8; 16] = std::array::from_fn(|i| {
        let dword = 4 * (i / 4) as i8;
        match i % 4 {
            0 => dword + first,
            2 => dword + second,
            _ => -128,
        }
    });
    // SAFETY: `ctrl` is 16 readable bytes.
    let ctrl = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(ctrl.as_ptr().cast()) });
    _mm256_shuffle_epi8(v, ctrl)
}

/// Eight Q4_K blocks across the lanes of 256-bit registers, for prefill with AVX2 (the layout
/// of the AVX-512 kernel's, see [`avx512`]): `lo[c][m]` lane `k` the low nibbles of dword `m`
/// of chunk `c` of block `k` (sub-block `2c`), `hi[c][m]` the high ones (sub-block `2c + 1`).
struct Q4KGroup256 {
    lo: [[__m256i; 8]; 4],
    hi: [[__m256i; 8]; 4],
    /// Sub-block `s`'s scale twice (an i16 pair) per lane.
    scales: [__m256i; 8],
    /// Sub-block `t`'s min twice per lane, the layout of the activations' paired 16-value sums.
    mins: [__m256i; 8],
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q4_k_by_group(w: &[&[u8; Q4_K_BYTES]; 8]) -> Q4KGroup256 {
    let low4 = _mm256_set1_epi8(0x0f);
    let mut lo = [[_mm256_setzero_si256(); 8]; 4];
    let mut hi = [[_mm256_setzero_si256(); 8]; 4];
    for c in 0..4 {
        let first = dwords_by_block(w.map(|b| ld16(b, Q4_K_QS + 32 * c)));
        let second = dwords_by_block(w.map(|b| ld16(b, Q4_K_QS + 32 * c + 16)));
        for (m, q) in first.into_iter().chain(second).enumerate() {
            lo[c][m] = _mm256_and_si256(q, low4);
            hi[c][m] = _mm256_and_si256(_mm256_srli_epi16::<4>(q), low4);
        }
    }
    let [sc_lo, sc_hi, m_lo, m_hi] = k_scales_mins_by_block(w);
    let twice = |v: __m256i, s: usize| {
        let s = s as i8;
        byte_pair_epi16(v, s, s)
    };
    Q4KGroup256 {
        lo,
        hi,
        scales: std::array::from_fn(|s| twice(if s < 4 { sc_lo } else { sc_hi }, s % 4)),
        mins: std::array::from_fn(|t| twice(if t < 4 { m_lo } else { m_hi }, t % 4)),
    }
}

/// Vectors per Q8_K activation block of a [`Q4KGroup256`] preparation: eight blocks' values of
/// sub-block `s`, dword `m` in vector `8s + m`, then their paired 16-value sums (vector `64 + t`
/// = the sums `2t`, `2t + 1`), 72 vectors per group.
const Q4K_GROUP_PREP_256: usize = 9;

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn prep_group_blocks_q4_k(g: &[[u8; Q8_K_BYTES]], p: &mut [[__m256i; Q4K_GROUP_PREP_256]; 8]) {
    let zero = [0u8; Q8_K_BYTES];
    let b: [&[u8; Q8_K_BYTES]; 8] = std::array::from_fn(|k| g.get(k).unwrap_or(&zero));
    let p = p.as_flattened_mut();
    for s in 0..9 {
        let at = if s < 8 { Q8_K_QS + 32 * s } else { Q8_K_BSUMS };
        let first = dwords_by_block(b.map(|b| ld16(b, at)));
        let second = dwords_by_block(b.map(|b| ld16(b, at + 16)));
        for (m, v) in first.into_iter().chain(second).enumerate() {
            p[8 * s + m] = v;
        }
    }
}

/// `[isum, imin]` of eight blocks for each activation, lane `k` = block `k`. `maddubs` pairs of
/// nibbles times bytes are within 2 · 15 · 128 = 3840, eight of them within 30720, so a
/// sub-block's sums stay exact i16 until one `madd` takes its scale; `isum` within
/// 8 · 2 · 30720 · 63 < 2^25, `imin` within 8 · 2 · 2^15 · 63 < 2^26.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q4_k_by_group<const NA: usize>(
    d: &Q4KGroup256,
    p: [&[[__m256i; Q4K_GROUP_PREP_256]; 8]; NA],
) -> [[__m256i; 2]; NA] {
    std::array::from_fn(|j| {
        let y = p[j].as_flattened();
        let mut isum = _mm256_setzero_si256();
        for c in 0..4 {
            let mut even = _mm256_setzero_si256();
            let mut odd = _mm256_setzero_si256();
            for m in 0..8 {
                even = _mm256_add_epi16(even, _mm256_maddubs_epi16(d.lo[c][m], y[16 * c + m]));
                odd = _mm256_add_epi16(odd, _mm256_maddubs_epi16(d.hi[c][m], y[16 * c + 8 + m]));
            }
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(even, d.scales[2 * c]));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(odd, d.scales[2 * c + 1]));
        }
        let mut imin = _mm256_setzero_si256();
        for t in 0..8 {
            imin = _mm256_add_epi32(imin, _mm256_madd_epi16(y[64 + t], d.mins[t]));
        }
        [isum, imin]
    })
}

/// `$reduce` of the kernels whose sums come out reduced already (lane `b` = block `b`).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn as_reduced<const K: usize>(v: [__m256i; K]) -> [__m256i; K] {
    v
}

rows_kernel!(
    q4_k_rows_by_group,
    by_group_all,
    Q4_K_BYTES,
    Q8_K_BYTES,
    2,
    Q4K_GROUP_PREP_256,
    prep_group_blocks_q4_k,
    prep_group_q8_k,
    decode_q4_k_by_group,
    isum_q4_k_by_group,
    as_reduced,
    wscales_d_m,
    terms_q4_k_rows
);

/// The safe entry points, in the shape of [`crate::dot::RowsKernel`]: activations in groups of
/// eight, then four, then one (with `single`, a kernel of its own for the last ones). Sound only
/// after the kernels' features were detected.
macro_rules! entry_rows {
    (@one [$imp:ident], $($args:tt)*) => { $imp::<1>($($args)*) };
    (@one [$imp:ident $one:ident], $($args:tt)*) => { $one::<1>($($args)*) };
    ($($entry:ident => $imp:ident $(, single $one:ident)?;)*) => {$(
        pub(in crate::dot) fn $entry(w: &[u8], row_bytes: usize, acts: &[&[u8]], out: &mut [f32]) {
            let stride = acts.len();
            let mut done = 0;
            while done < stride {
                let left = stride - done;
                let o = &mut out[done..];
                // SAFETY: only reachable through `rows_kernel_for`, after the features the
                // kernel is compiled for were detected.
                unsafe {
                    if left >= 8 {
                        $imp::<8>(w, row_bytes, std::array::from_fn(|j| acts[done + j]), o, stride);
                        done += 8;
                    } else if left >= 4 {
                        $imp::<4>(w, row_bytes, std::array::from_fn(|j| acts[done + j]), o, stride);
                        done += 4;
                    } else {
                        entry_rows!(@one [$imp $($one)?], w, row_bytes, [acts[done]], o, stride);
                        done += 1;
                    }
                }
            }
        }
    )*};
}

#[path = "rows/avx512.rs"]
mod avx512;
pub(in crate::dot) use avx512::{
    bf16_bf16_rows_512, f16_f16_rows_512, f32_f32_rows_512, q4_k_q8_k_rows_512, q5_0_q8_0_rows_512,
    q6_k_q8_k_rows_512, q8_0_q8_0_rows_512,
};

entry_rows! {
    q4_0_q8_0_rows => q4_0_rows;
    q5_0_q8_0_rows => q5_0_rows;
    q8_0_q8_0_rows => q8_0_rows;
    q4_k_q8_k_rows => q4_k_rows_by_group, single q4_k_rows;
    q5_k_q8_k_rows => q5_k_rows;
    q6_k_q8_k_rows => q6_k_rows;
}
