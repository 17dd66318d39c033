//! The rows kernels of the types that dominate the benchmark models (Q4_K, Q6_K, Q8_0) for CPUs
//! with AVX-512 (F, BW, VL) and VNNI: the same driver, preparation and f32 arithmetic as the
//! AVX2 kernels, only the exact integer sums of a block formed with fewer instructions.
//!
//! - Q4_K and Q6_K take two 32-value sub-blocks per 512-bit register and fold the scale
//!   multiplication into the accumulation (`vpdpwssd`), then fold the two halves into the
//!   eight-lane vector the AVX2 reduction expects.
//! - Q8_0 multiplies signed weights by signed activations with `vpdpbusd`, which wants one
//!   unsigned operand: the weights are offset by 128 (`x ^ 0x80` is `x + 128` as an unsigned
//!   byte, for every byte including -128) and `128 · Σ y` is taken off per block afterwards.
//!
//! Every sum stays exact for any input bytes (bounds at each step), so each output is bit for
//! bit the scalar reference's, as the AVX2 kernels' are.

use super::*;

/// 64 bytes of `b` from `at`.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn ld64<const N: usize>(b: &[u8; N], at: usize) -> __m512i {
    let s: &[u8; 64] = b[at..at + 64].try_into().unwrap_or(&[0; 64]);
    // SAFETY: `s` is 64 readable bytes; loadu has no alignment requirement.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

/// Vectors `2k` and `2k + 1` of a block's preparation as one register.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn ld_prep<const PB: usize>(p: &[__m256i; PB], k: usize) -> __m512i {
    let pair = &p[2 * k..2 * k + 2];
    // SAFETY: `pair` is two vectors, 64 readable bytes.
    unsafe { _mm512_loadu_si512(pair.as_ptr().cast()) }
}

/// The sum of the two 256-bit halves (lane `i` + lane `i + 8`): a block's sum is unchanged.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn fold(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

/// i16 lanes `0..16` set to `a`, lanes `16..32` to `b`.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn halves_epi16(a: i16, b: i16) -> __m512i {
    _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi16(a)),
        _mm256_set1_epi16(b),
    )
}

/// A Q4_K block unpacked for 512-bit registers: `q[k]` holds sub-blocks `SUBS[k]` (32 nibbles
/// each, one per 256-bit half), `sc[k]` their scales over the matching i16 lanes.
struct Q4K512 {
    q: [__m512i; 4],
    sc: [__m512i; 4],
    mins: __m256i,
}

/// The sub-blocks in each register of [`Q4K512`]: the low nibbles of 64 stored bytes are
/// sub-blocks `2c` and `2c + 2`, their high nibbles `2c + 1` and `2c + 3`.
const SUBS: [[usize; 2]; 4] = [[0, 2], [1, 3], [4, 6], [5, 7]];

#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn decode_q4_k_512(w: &[u8; Q4_K_BYTES]) -> Q4K512 {
    let low4 = _mm512_set1_epi8(0x0f);
    let mut q = [_mm512_setzero_si512(); 4];
    for h in 0..2 {
        let bytes = ld64(w, Q4_K_QS + 64 * h);
        q[2 * h] = _mm512_and_si512(bytes, low4);
        q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16::<4>(bytes), low4);
    }
    let (sc8, m8) = k_scales_mins_simd(w);
    let both = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sc8));
    let mut sc = [_mm512_setzero_si512(); 4];
    for (k, v) in sc.iter_mut().enumerate() {
        let [a, b] = SUBS[k].map(|s| s as i16);
        let pick = halves_epi16(((2 * a + 1) << 8) | (2 * a), ((2 * b + 1) << 8) | (2 * b));
        *v = _mm512_shuffle_epi8(both, pick);
    }
    Q4K512 {
        q,
        sc,
        mins: _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)),
    }
}

/// Q8_K activation bytes in the sub-block order of [`SUBS`], 64 bytes per register.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn prep_block_q4_k_512(b: &[u8; Q8_K_BYTES], p: &mut [__m256i; 8]) {
    for (k, subs) in SUBS.iter().enumerate() {
        p[2 * k] = ld32(b, Q8_K_QS + 32 * subs[0]);
        p[2 * k + 1] = ld32(b, Q8_K_QS + 32 * subs[1]);
    }
}

/// Q4_K: `[isum, imin]`. Nibbles times bytes pair within ±3840, times scales below 64: each i32
/// lane within ±2^22 after four accumulations.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_q4_k_512(d: &Q4K512, a: &[u8; Q8_K_BYTES], p: &[__m256i; 8]) -> [__m256i; 2] {
    let mut isum = _mm512_setzero_si512();
    for k in 0..4 {
        let pairs = _mm512_maddubs_epi16(d.q[k], ld_prep(p, k));
        isum = _mm512_dpwssd_epi32(isum, pairs, d.sc[k]);
    }
    [fold(isum), _mm256_madd_epi16(ld32(a, Q8_K_BSUMS), d.mins)]
}

rows_kernel!(
    "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    q4_k_rows_512,
    by_block,
    Q4_K_BYTES,
    Q8_K_BYTES,
    2,
    8,
    prep_block_q4_k_512,
    prep_group_q8_k,
    decode_q4_k_512,
    isum_q4_k_512,
    reduce_i32,
    wscales_d_m,
    terms_q4_k_rows
);

/// A Q6_K block unpacked for 512-bit registers: `q[m]` holds the 64 values `64m..64m + 64`,
/// `sc[m]` the scales of their four 16-value quarters over the matching i16 lanes.
struct Q6K512 {
    q: [__m512i; 4],
    sc: [__m512i; 4],
    /// The sixteen scales in the lane order of [`q6_k_scales_by_pairs`].
    pairs: __m256i,
}

#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn decode_q6_k_512(w: &[u8; Q6_K_BYTES]) -> Q6K512 {
    let low4 = _mm512_set1_epi8(0x0f);
    // The high bits of the 64 values of each register come from the same 32 bytes of `qh`:
    // bits 0-1 and 4-5 for the first 32 values, bits 2-3 and 6-7 for the next. Masking before
    // each 16-bit shift keeps bits from crossing into a neighbour byte.
    let lo_mask = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi8(0x03)),
        _mm256_set1_epi8(0x0c),
    );
    let hi_mask = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi8(0x30)),
        _mm256_set1_epi8(0xc0u8 as i8),
    );
    let lo_shift = halves_epi16(4, 2);
    let hi_shift = halves_epi16(0, 2);
    let mut q = [_mm512_setzero_si512(); 4];
    for h in 0..2 {
        let ql = ld64(w, 64 * h);
        let qh = _mm512_broadcast_i64x4(ld32(w, Q6_K_QH + 32 * h));
        q[2 * h] = _mm512_or_si512(
            _mm512_and_si512(ql, low4),
            _mm512_sllv_epi16(_mm512_and_si512(qh, lo_mask), lo_shift),
        );
        q[2 * h + 1] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16::<4>(ql), low4),
            _mm512_srlv_epi16(_mm512_and_si512(qh, hi_mask), hi_shift),
        );
    }
    // Values 64m..64m + 64 are the four quarters 4m..4m + 4, one per 128-bit lane.
    let scales = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(ld16(w, Q6_K_SCALES)));
    let mut sc = [_mm512_setzero_si512(); 4];
    for (m, v) in sc.iter_mut().enumerate() {
        let base = 4 * m as i16;
        let idx = _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm256_setr_epi16(
                base,
                base,
                base,
                base,
                base,
                base,
                base,
                base,
                base + 1,
                base + 1,
                base + 1,
                base + 1,
                base + 1,
                base + 1,
                base + 1,
                base + 1,
            )),
            _mm256_setr_epi16(
                base + 2,
                base + 2,
                base + 2,
                base + 2,
                base + 2,
                base + 2,
                base + 2,
                base + 2,
                base + 3,
                base + 3,
                base + 3,
                base + 3,
                base + 3,
                base + 3,
                base + 3,
                base + 3,
            ),
        );
        *v = _mm512_permutexvar_epi16(idx, scales);
    }
    Q6K512 {
        q,
        sc,
        pairs: q6_k_scales_by_pairs(w),
    }
}

/// As [`isum_q6_k_rows`]: unsigned 6-bit values times bytes pair within ±16128, times a scale
/// within ±128, four accumulations per i32 lane, the whole block within ±2^29.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_q6_k_512(d: &Q6K512, a: &[u8; Q8_K_BYTES], sums: &[__m256i; 1]) -> [__m256i; 1] {
    let mut isum = _mm512_setzero_si512();
    for m in 0..4 {
        let pairs = _mm512_maddubs_epi16(d.q[m], ld64(a, Q8_K_QS + 64 * m));
        isum = _mm512_dpwssd_epi32(isum, pairs, d.sc[m]);
    }
    let off = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sums[0], d.pairs));
    [_mm256_sub_epi32(fold(isum), off)]
}

rows_kernel!(
    "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    q6_k_rows_512,
    by_block,
    Q6_K_BYTES,
    Q8_K_BYTES,
    1,
    1,
    prep_block_q6_k,
    prep_group_q8_k,
    decode_q6_k_512,
    isum_q6_k_512,
    reduce_i32,
    wscales_q6_k,
    terms_q6_k_rows
);

/// Eight Q8_0-sized blocks' 32 values across lanes ([`bytes32_by_block`]).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_0_by_block(b: &[&[u8; Q8_0_BYTES]; 8]) -> [__m512i; 4] {
    bytes32_by_block(b, 2)
}

/// Q8_0 activations of one group across lanes ([`q8_0_by_block`]); a partial group's missing
/// blocks are zeros.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn prep_group_blocks_q8_0(g: &[[u8; Q8_0_BYTES]], p: &mut [[__m256i; 1]; 8]) {
    let zero = [0u8; Q8_0_BYTES];
    let b: [&[u8; Q8_0_BYTES]; 8] = std::array::from_fn(|k| g.get(k).unwrap_or(&zero));
    for (m, v) in q8_0_by_block(&b).into_iter().enumerate() {
        p[2 * m] = [_mm512_castsi512_si256(v)];
        p[2 * m + 1] = [_mm512_extracti64x4_epi64::<1>(v)];
    }
}

/// `Σ w · y` of eight blocks, lane `k` (+ lane `8 + k`) = block `k`, for unsigned weight bytes
/// in the layout of [`q8_0_by_block`].
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_by_block(w: &[__m512i; 4], p: &[[__m256i; 1]; 8]) -> __m512i {
    let mut acc = _mm512_setzero_si512();
    for (m, w) in w.iter().enumerate() {
        // SAFETY: `p[2m]` and `p[2m + 1]` are adjacent, 64 readable bytes.
        let y = unsafe { _mm512_loadu_si512(p[2 * m..2 * m + 2].as_ptr().cast()) };
        acc = _mm512_dpbusd_epi32(acc, *w, y);
    }
    acc
}

#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn fold1(v: __m512i) -> [__m256i; 1] {
    [fold(v)]
}

/// Eight Q5_0 blocks' values (unsigned, below 32) across lanes: each stored byte's low nibble
/// is value `i`, its high nibble value `16 + i`, and bit `i` of `qh` the fifth bit of value `i`.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn decode_q5_0_by_block(w: &[&[u8; Q5_0_BYTES]; 8]) -> [__m512i; 4] {
    let qs = dwords_by_block(w.map(|b| ld16(b, 6)));
    let qh = w.map(|b| i32::from_le_bytes([b[2], b[3], b[4], b[5]]));
    let qh = _mm256_setr_epi32(qh[0], qh[1], qh[2], qh[3], qh[4], qh[5], qh[6], qh[7]);
    let qh = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(qh), qh);
    // Four bits of `qh` (values 4m..4m + 4, resp. 16 + 4m..) to 0x10 in their four bytes.
    let spread = _mm512_setr_epi32(
        0x00000000, 0x00000010, 0x00001000, 0x00001010, 0x00100000, 0x00100010, 0x00101000,
        0x00101010, 0x10000000, 0x10000010, 0x10001000, 0x10001010, 0x10100000, 0x10100010,
        0x10101000, 0x10101010,
    );
    let low4 = _mm512_set1_epi8(0x0f);
    let nib = _mm512_set1_epi32(0x0f);
    std::array::from_fn(|m| {
        let m4 = 4 * m as i32;
        let shift = _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm256_set1_epi32(m4)),
            _mm256_set1_epi32(16 + m4),
        );
        let high =
            _mm512_permutexvar_epi32(_mm512_and_si512(_mm512_srlv_epi32(qh, shift), nib), spread);
        let both =
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(qs[m]), _mm256_srli_epi16::<4>(qs[m]));
        _mm512_or_si512(_mm512_and_si512(both, low4), high)
    })
}

/// `Σ q · y` of eight Q5_0 blocks (values below 32 times bytes: each i32 lane within
/// ±4 · 4 · 31 · 128 before the fold, ±2^17 after).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_q5_0_by_block(w: &[__m512i; 4], p: &[[__m256i; 1]; 8]) -> __m512i {
    isum_by_block(w, p)
}

rows_kernel!(
    "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    q5_0_rows_512,
    by_group,
    Q5_0_BYTES,
    Q8_0_BYTES,
    1,
    1,
    prep_group_blocks_q8_0,
    prep_group_off16,
    decode_q5_0_by_block,
    isum_q5_0_by_block,
    fold1,
    wscales_d,
    terms_off
);

/// Q8_0 activation groups for offset weights: `[scales, 128 · Σ y per block]` (Σ y within
/// ±4096 per block).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn prep_group_q8_0_512(g: &[[u8; Q8_0_BYTES]]) -> [__m256i; 2] {
    let ones = _mm256_set1_epi8(1);
    let mut p = [_mm256_setzero_si256(); 8];
    for (p, b) in p.iter_mut().zip(g) {
        *p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, ld32(b, 2));
    }
    [
        _mm256_castps_si256(gather_f16(g, 0)),
        _mm256_slli_epi32::<7>(hsum_8x8(p)),
    ]
}

/// Eight Q8_0 weight blocks across lanes ([`q8_0_by_block`]), offset to unsigned bytes:
/// `x ^ 0x80` is `x + 128` for every byte.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn decode_q8_0_by_block(w: &[&[u8; Q8_0_BYTES]; 8]) -> [__m512i; 4] {
    let flip = _mm512_set1_epi8(0x80u8 as i8);
    q8_0_by_block(w).map(|v| _mm512_xor_si512(v, flip))
}

/// `Σ (x + 128) · y` of eight blocks: four products of at most 255 · 128 per i32 lane and
/// step, eight steps.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_q8_0_by_block(w: &[__m512i; 4], p: &[[__m256i; 1]; 8]) -> __m512i {
    isum_by_block(w, p)
}

rows_kernel!(
    "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    q8_0_rows_512,
    by_group,
    Q8_0_BYTES,
    Q8_0_BYTES,
    1,
    1,
    prep_group_blocks_q8_0,
    prep_group_q8_0_512,
    decode_q8_0_by_block,
    isum_q8_0_by_block,
    fold1,
    wscales_d,
    terms_off
);

/// Eight Q4_K blocks across lanes ([`bytes32_by_block`]), for prefill: their 32-value
/// sub-blocks accumulate with one `vpdpbusd` per 64 products, each lane one block's, and are
/// scaled only once summed, so a weight byte costs half the multiplies of [`Q4K512`]'s
/// `maddubs` + `vpdpwssd`. The transposition costs more than it saves with one activation, so
/// generation keeps [`q4_k_rows_512`].
struct Q4KGroup {
    /// `lo[c][m]`: the low nibbles of the 32 bytes of chunk `c` (sub-block `2c`), register `m`
    /// of [`bytes32_by_block`]; `hi[c][m]` the high nibbles (sub-block `2c + 1`).
    lo: [[__m512i; 4]; 4],
    hi: [[__m512i; 4]; 4],
    /// The scales of sub-blocks `2c` and `2c + 1` as an i16 pair, block `k` in lanes `k` and
    /// `8 + k`.
    scales: [__m512i; 4],
    /// The min of sub-block `m` twice (i16 pair), block `k` in lane `k`, and that of sub-block
    /// `4 + m` in lane `8 + k`: the layout of the activations' paired 16-value sums.
    mins: [__m512i; 4],
}

/// Eight blocks' 32 bytes from byte `at` across lanes, as four 512-bit registers: register `m`
/// holds bytes `4m..4m + 4` of block `k` in lane `k` and bytes `16 + 4m..20 + 4m` in lane
/// `8 + k` (so that the two nibbles of a Q4_0/Q5_0 byte land in one register). Two rounds of
/// two-source permutes of whole 512-bit registers: twelve shuffles for the eight blocks.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn bytes32_by_block<const N: usize>(b: &[&[u8; N]; 8], at: usize) -> [__m512i; 4] {
    // `x[i]`: blocks 2i and 2i + 1, eight dwords each; dword `d` of block `k` of a pair of
    // registers is lane `8 (k mod 4) + d` of the pair.
    let x: [__m512i; 4] = std::array::from_fn(|i| {
        _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(ld32(b[2 * i], at)),
            ld32(b[2 * i + 1], at),
        )
    });
    // First round, per half `h` and four blocks: lanes `8u + 4e + k` hold dword `2h + u + 4e`
    // of block `k`.
    let first = |h: i32| {
        _mm512_setr_epi32(
            2 * h,
            8 + 2 * h,
            16 + 2 * h,
            24 + 2 * h,
            2 * h + 4,
            8 + 2 * h + 4,
            16 + 2 * h + 4,
            24 + 2 * h + 4,
            2 * h + 1,
            8 + 2 * h + 1,
            16 + 2 * h + 1,
            24 + 2 * h + 1,
            2 * h + 5,
            8 + 2 * h + 5,
            16 + 2 * h + 5,
            24 + 2 * h + 5,
        )
    };
    let (f0, f1) = (first(0), first(1));
    let lo = [
        _mm512_permutex2var_epi32(x[0], f0, x[1]),
        _mm512_permutex2var_epi32(x[0], f1, x[1]),
    ];
    let hi = [
        _mm512_permutex2var_epi32(x[2], f0, x[3]),
        _mm512_permutex2var_epi32(x[2], f1, x[3]),
    ];
    // Second round: blocks 0..4 from `lo`, 4..8 from `hi`, dword `m` then `m + 4`.
    let second = |u: i32| {
        let v = 8 * u;
        _mm512_setr_epi32(
            v,
            v + 1,
            v + 2,
            v + 3,
            16 + v,
            16 + v + 1,
            16 + v + 2,
            16 + v + 3,
            v + 4,
            v + 5,
            v + 6,
            v + 7,
            16 + v + 4,
            16 + v + 5,
            16 + v + 6,
            16 + v + 7,
        )
    };
    let (s0, s1) = (second(0), second(1));
    [
        _mm512_permutex2var_epi32(lo[0], s0, hi[0]),
        _mm512_permutex2var_epi32(lo[0], s1, hi[0]),
        _mm512_permutex2var_epi32(lo[1], s0, hi[1]),
        _mm512_permutex2var_epi32(lo[1], s1, hi[1]),
    ]
}

#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn decode_q4_k_by_group(w: &[&[u8; Q4_K_BYTES]; 8]) -> Q4KGroup {
    let low4 = _mm512_set1_epi8(0x0f);
    let mut lo = [[_mm512_setzero_si512(); 4]; 4];
    let mut hi = [[_mm512_setzero_si512(); 4]; 4];
    for c in 0..4 {
        let q = bytes32_by_block(w, Q4_K_QS + 32 * c);
        for m in 0..4 {
            lo[c][m] = _mm512_and_si512(q[m], low4);
            hi[c][m] = _mm512_and_si512(_mm512_srli_epi16::<4>(q[m]), low4);
        }
    }
    let [sc_lo, sc_hi, m_lo, m_hi] = k_scales_mins_by_block(w);
    let scales = [
        byte_pair_epi16(sc_lo, 0, 1),
        byte_pair_epi16(sc_lo, 2, 3),
        byte_pair_epi16(sc_hi, 0, 1),
        byte_pair_epi16(sc_hi, 2, 3),
    ];
    Q4KGroup {
        lo,
        hi,
        scales: scales.map(|v| _mm512_broadcast_i64x4(v)),
        mins: std::array::from_fn(|m| {
            let m = m as i8;
            _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(byte_pair_epi16(m_lo, m, m)),
                byte_pair_epi16(m_hi, m, m),
            )
        }),
    }
}

/// Vectors per Q8_K activation block of a [`Q4KGroup`] preparation: eight groups of eight
/// blocks' sub-block values (registers `4s + m` of sub-block `s`), then their 16-value sums
/// (registers `32 + m`), 36 512-bit registers per group.
const Q4K_GROUP_PREP: usize = 9;

/// Eight activation blocks (missing ones zero) and the writer of their 512-bit registers into a
/// group's preparation.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q8_k_group<'a, const PB: usize>(
    g: &'a [[u8; Q8_K_BYTES]],
    zero: &'a [u8; Q8_K_BYTES],
    p: &mut [[__m256i; PB]; 8],
) -> [&'a [u8; Q8_K_BYTES]; 8] {
    let b: [&[u8; Q8_K_BYTES]; 8] = std::array::from_fn(|k| g.get(k).unwrap_or(zero));
    for s in 0..8 {
        for (m, v) in bytes32_by_block(&b, Q8_K_QS + 32 * s)
            .into_iter()
            .enumerate()
        {
            put_512(p, 4 * s + m, v);
        }
    }
    b
}

/// Stores `v` as register `i` of a group's preparation (vectors `2i` and `2i + 1`).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn put_512<const PB: usize>(p: &mut [[__m256i; PB]; 8], i: usize, v: __m512i) {
    let p = p.as_flattened_mut();
    p[2 * i] = _mm512_castsi512_si256(v);
    p[2 * i + 1] = _mm512_extracti64x4_epi64::<1>(v);
}

/// Register `i` of each activation's group preparation, for `i` below `8 PB / 2`.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn prep_regs<const PB: usize, const NA: usize>(
    p: [&[[__m256i; PB]; 8]; NA],
) -> impl Fn(usize, usize) -> __m512i {
    let base: [*const __m512i; NA] = std::array::from_fn(|j| p[j].as_ptr().cast());
    move |j: usize, i: usize| {
        debug_assert!(i < 4 * PB);
        // SAFETY: register `i < 4 PB` of activation `j` is vectors `2i` and `2i + 1` of its
        // `8 PB`, borrowed for as long as `p`.
        unsafe { _mm512_loadu_si512(base[j].add(i)) }
    }
}

/// One activation group laid out as [`Q4KGroup`] expects: the values of 32-value sub-block `s`
/// in registers `4s..4s + 4`, the stored 16-value sums in registers `32..36`.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn prep_group_blocks_q8_k(g: &[[u8; Q8_K_BYTES]], p: &mut [[__m256i; Q4K_GROUP_PREP]; 8]) {
    let zero = [0u8; Q8_K_BYTES];
    let b = q8_k_group(g, &zero, p);
    for (m, v) in bytes32_by_block(&b, Q8_K_BSUMS).into_iter().enumerate() {
        put_512(p, 32 + m, v);
    }
}

/// `[isum, imin]` of eight blocks for each activation, lane `k` = block `k`; a chunk's decoded
/// weights stay in registers while every activation takes them. A sub-block's products
/// (nibbles times bytes) sum to at most 32 · 15 · 128 = 61440 in magnitude, at most 30720 in
/// each of its two lanes, so the two sub-blocks of a chunk pair up as exact i16 and take their
/// scales (below 64) in one `vpdpwssd`; a lane of `isum` stays within 8 · 30720 · 63 < 2^24, of
/// `imin` within 8 · 2^15 · 63 < 2^24 (any 16-value sums).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_q4_k_by_group<const NA: usize>(
    d: &Q4KGroup,
    p: [&[[__m256i; Q4K_GROUP_PREP]; 8]; NA],
) -> [[__m256i; 2]; NA] {
    let y = prep_regs(p);
    let mut isum = [_mm512_setzero_si512(); NA];
    for c in 0..4 {
        let (lo, hi, sc) = (d.lo[c], d.hi[c], d.scales[c]);
        for (j, isum) in isum.iter_mut().enumerate() {
            let mut even = _mm512_setzero_si512();
            let mut odd = _mm512_setzero_si512();
            for m in 0..4 {
                even = _mm512_dpbusd_epi32(even, lo[m], y(j, 8 * c + m));
                odd = _mm512_dpbusd_epi32(odd, hi[m], y(j, 8 * c + 4 + m));
            }
            let pair = _mm512_mask_blend_epi16(0xaaaa_aaaa, even, _mm512_slli_epi32::<16>(odd));
            *isum = _mm512_dpwssd_epi32(*isum, pair, sc);
        }
    }
    std::array::from_fn(|j| {
        let mut imin = _mm512_setzero_si512();
        for m in 0..4 {
            imin = _mm512_dpwssd_epi32(imin, y(j, 32 + m), d.mins[m]);
        }
        [fold(isum[j]), fold(imin)]
    })
}

rows_kernel!(
    "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    q4_k_rows_512_by_group,
    by_group_all,
    Q4_K_BYTES,
    Q8_K_BYTES,
    2,
    Q4K_GROUP_PREP,
    prep_group_blocks_q8_k,
    prep_group_q8_k,
    decode_q4_k_by_group,
    isum_q4_k_by_group,
    as_reduced,
    wscales_d_m,
    terms_q4_k_rows
);

/// Eight Q6_K blocks across lanes, as [`Q4KGroup`] for Q4_K: `q[t][m]` the unsigned 6-bit
/// values of 32-value chunk `t` (register `m` of [`bytes32_by_block`], so the lanes `k` hold
/// 16-value group `2t` of block `k`, lanes `8 + k` group `2t + 1`), `scales[t]` those groups'
/// scales as i32 in the same lanes.
struct Q6KGroup {
    q: [[__m512i; 4]; 8],
    scales: [__m512i; 8],
}

#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn decode_q6_k_by_group(w: &[&[u8; Q6_K_BYTES]; 8]) -> Q6KGroup {
    let low4 = _mm512_set1_epi8(0x0f);
    let bits = |m: u8| _mm512_set1_epi8(m as i8);
    let mut q = [[_mm512_setzero_si512(); 4]; 8];
    for h in 0..2 {
        let ql0 = bytes32_by_block(w, 64 * h);
        let ql1 = bytes32_by_block(w, 64 * h + 32);
        let qh = bytes32_by_block(w, Q6_K_QH + 32 * h);
        for m in 0..4 {
            // As the AVX2 decode: each high pair masked before its 16-bit shift, so no bit
            // crosses into a neighbour byte; `(a & 0x0f) | b` is one ternary-logic op.
            let or_low = |a: __m512i, b: __m512i| _mm512_ternarylogic_epi32::<0xf8>(b, a, low4);
            q[4 * h][m] = or_low(
                ql0[m],
                _mm512_slli_epi16::<4>(_mm512_and_si512(qh[m], bits(0x03))),
            );
            q[4 * h + 1][m] = or_low(
                ql1[m],
                _mm512_slli_epi16::<2>(_mm512_and_si512(qh[m], bits(0x0c))),
            );
            q[4 * h + 2][m] = or_low(
                _mm512_srli_epi16::<4>(ql0[m]),
                _mm512_and_si512(qh[m], bits(0x30)),
            );
            q[4 * h + 3][m] = or_low(
                _mm512_srli_epi16::<4>(ql1[m]),
                _mm512_srli_epi16::<2>(_mm512_and_si512(qh[m], bits(0xc0))),
            );
        }
    }
    // Lane `k` of `sc[m]`: the i8 scales `4m..4m + 4` of block `k`.
    let sc = dwords_by_block(w.map(|b| ld16(b, Q6_K_SCALES)));
    let byte = |v: __m256i, i: usize| match i {
        0 => _mm256_srai_epi32::<24>(_mm256_slli_epi32::<24>(v)),
        1 => _mm256_srai_epi32::<24>(_mm256_slli_epi32::<16>(v)),
        2 => _mm256_srai_epi32::<24>(_mm256_slli_epi32::<8>(v)),
        _ => _mm256_srai_epi32::<24>(v),
    };
    Q6KGroup {
        q,
        scales: std::array::from_fn(|t| {
            let v = sc[t / 2];
            let i = 2 * (t % 2);
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(byte(v, i)), byte(v, i + 1))
        }),
    }
}

/// Vectors per Q8_K activation block of a [`Q6KGroup`] preparation: the values as for Q4_K
/// (registers `4t + m`), then `-32 ·` the sum of each 16-value group (register `32 + t`,
/// groups `2t` and `2t + 1` in the lanes of the values), 40 512-bit registers per group.
const Q6K_GROUP_PREP: usize = 10;

/// One activation group laid out as [`Q6KGroup`] expects. The group sums come from the bytes
/// themselves, as the scalar reference's do (within 16 · 128 in magnitude).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn prep_group_blocks_q6_k(g: &[[u8; Q8_K_BYTES]], p: &mut [[__m256i; Q6K_GROUP_PREP]; 8]) {
    let zero = [0u8; Q8_K_BYTES];
    q8_k_group(g, &zero, p);
    let ones = _mm512_set1_epi8(1);
    let offsets: [__m512i; 8] = {
        let y = prep_regs([&*p]);
        std::array::from_fn(|t| {
            let mut sum = _mm512_setzero_si512();
            for m in 0..4 {
                sum = _mm512_dpbusd_epi32(sum, ones, y(0, 4 * t + m));
            }
            _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32::<5>(sum))
        })
    };
    for (t, v) in offsets.into_iter().enumerate() {
        put_512(p, 32 + t, v);
    }
}

/// `isum` of eight blocks for each activation, lane `k` = block `k`: per 16-value group,
/// `Σ (q - 32) · y` formed exactly in i32 (starting from `-32 Σ y`, then unsigned values below
/// 64 times bytes: within 16 · 63 · 128 + 16 · 32 · 128 < 2^18) and multiplied by its i8 scale
/// (< 2^25); eight chunks and the fold of the halves stay below 2^29.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn isum_q6_k_by_group<const NA: usize>(
    d: &Q6KGroup,
    p: [&[[__m256i; Q6K_GROUP_PREP]; 8]; NA],
) -> [[__m256i; 1]; NA] {
    let y = prep_regs(p);
    let mut isum = [_mm512_setzero_si512(); NA];
    for t in 0..8 {
        let (q, sc) = (d.q[t], d.scales[t]);
        for (j, isum) in isum.iter_mut().enumerate() {
            let mut acc = y(j, 32 + t);
            for (m, &q) in q.iter().enumerate() {
                acc = _mm512_dpbusd_epi32(acc, q, y(j, 4 * t + m));
            }
            *isum = _mm512_add_epi32(*isum, _mm512_mullo_epi32(acc, sc));
        }
    }
    isum.map(|v| [fold(v)])
}

rows_kernel!(
    "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    q6_k_rows_512_by_group,
    by_group_all,
    Q6_K_BYTES,
    Q8_K_BYTES,
    1,
    Q6K_GROUP_PREP,
    prep_group_blocks_q6_k,
    prep_group_q8_k,
    decode_q6_k_by_group,
    isum_q6_k_by_group,
    as_reduced,
    wscales_q6_k,
    terms_q6_k_rows
);

/// Sixteen f32 values from value `at` (4 bytes each).
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn load16_f32(b: &[u8], at: usize) -> __m512 {
    let s: &[u8; 64] = b[4 * at..4 * at + 64].try_into().unwrap_or(&[0; 64]);
    // SAFETY: `s` is 64 readable bytes.
    unsafe { _mm512_loadu_ps(s.as_ptr().cast()) }
}

/// Sixteen f16 values from value `at`, widened (exactly) to f32.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn load16_f16(b: &[u8], at: usize) -> __m512 {
    let s: &[u8; 32] = b[2 * at..2 * at + 32].try_into().unwrap_or(&[0; 32]);
    // SAFETY: `s` is 32 readable bytes.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(s.as_ptr().cast()) })
}

/// Sixteen bf16 values from value `at`, widened (exactly) to f32.
#[inline]
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn load16_bf16(b: &[u8], at: usize) -> __m512 {
    let s: &[u8; 32] = b[2 * at..2 * at + 32].try_into().unwrap_or(&[0; 32]);
    // SAFETY: `s` is 32 readable bytes.
    let h = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
}

/// The float types' rows kernels: the reference's 32 accumulators (value `i` to accumulator
/// `i mod 32`, products rounded to f32 and added, no FMA) are exactly two 512-bit registers, so
/// each multiply and add covers twice the values of the AVX2 kernel's with the same bits. A
/// weight row is loaded once per group of up to eight activation rows.
macro_rules! float_rows_512 {
    ($name:ident, $entry:ident, $size:expr, $load:ident, $one:ident) => {
        #[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $name<const NA: usize>(w: &[u8], a: [&[u8]; NA], out: &mut [f32], stride: usize) {
            let n = a
                .iter()
                .fold(w.len() / $size, |n, a| n.min(a.len() / $size));
            let full = n / 32;
            let mut acc = [[_mm512_setzero_ps(); 2]; NA];
            for c in 0..full {
                for k in 0..2 {
                    let at = 32 * c + 16 * k;
                    let wv = $load(w, at);
                    for (acc, a) in acc.iter_mut().zip(a) {
                        acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(wv, $load(a, at)));
                    }
                }
            }
            for (j, (acc, a)) in acc.iter().zip(a).enumerate() {
                let mut lanes = [0f32; 32];
                for (k, acc) in acc.iter().enumerate() {
                    // SAFETY: lanes[16k..16k + 16] is 16 writable f32.
                    unsafe { _mm512_storeu_ps(lanes[16 * k..16 * k + 16].as_mut_ptr(), *acc) };
                }
                for i in 32 * full..n {
                    lanes[i - 32 * full] += $one(w, i) * $one(a, i);
                }
                out[j * stride] = reduce32(&lanes);
            }
        }

        /// Every row of `w` against every activation row, in the shape of
        /// [`crate::dot::RowsKernel`]. Sound only after AVX-512 F/BW/VL and VNNI were detected.
        pub(in crate::dot) fn $entry(w: &[u8], row_bytes: usize, acts: &[&[u8]], out: &mut [f32]) {
            if row_bytes == 0 {
                return;
            }
            let stride = acts.len();
            let rows = w.len() / row_bytes;
            let ahead = PREFETCH_BYTES.div_ceil(row_bytes);
            for (r, row) in w.chunks_exact(row_bytes).enumerate() {
                if r + ahead < rows {
                    // SAFETY: as below (a cache hint inside `w`).
                    unsafe { prefetch(&w[(r + ahead) * row_bytes..(r + ahead + 1) * row_bytes]) };
                }
                let o = &mut out[r * stride..];
                let mut done = 0;
                while done < stride {
                    let left = stride - done;
                    // SAFETY: only reachable through `rows_kernel_for` / `rows_kernel_at`,
                    // after the features this kernel is compiled for were detected.
                    unsafe {
                        if left >= 8 {
                            $name::<8>(
                                row,
                                std::array::from_fn(|j| acts[done + j]),
                                &mut o[done..],
                                1,
                            );
                            done += 8;
                        } else if left >= 4 {
                            $name::<4>(
                                row,
                                std::array::from_fn(|j| acts[done + j]),
                                &mut o[done..],
                                1,
                            );
                            done += 4;
                        } else {
                            $name::<1>(row, [acts[done]], &mut o[done..], 1);
                            done += 1;
                        }
                    }
                }
            }
        }
    };
}

float_rows_512!(f32_rows_512, f32_f32_rows_512, 4, load16_f32, one_f32);
float_rows_512!(f16_rows_512, f16_f16_rows_512, 2, load16_f16, one_f16);
float_rows_512!(bf16_rows_512, bf16_bf16_rows_512, 2, load16_bf16, one_bf16);

entry_rows! {
    q5_0_q8_0_rows_512 => q5_0_rows_512;
    q4_k_q8_k_rows_512 => q4_k_rows_512_by_group, single q4_k_rows_512;
    q6_k_q8_k_rows_512 => q6_k_rows_512_by_group, single q6_k_rows_512;
    q8_0_q8_0_rows_512 => q8_0_rows_512;
}
