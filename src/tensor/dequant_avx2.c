// AVX2 row dequantizers: dequantize_row_avx2 gives the bits of dequantize_row (quant.c) for F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS and the grid types (IQ2_XXS ... IQ1_M). Each element goes through the scalar
// code's float operations in its order: the integer level converted (exactly) to float, the same float
// scale products (d * sc, dmin * m) made first, then one multiply and, where the scalar code has one, one
// add or subtract -- separate instructions, never FMA (-std=c11 keeps gcc from contracting; clang is told
// below). NaN scales: a multiply gives the NaN quieted in both codes; an add or subtract of two NaNs
// returns its first operand, the product in the scalar code: subtracts keep their operand order, and
// Q4_1 / Q5_1's add (commutative, so its operand order is the compiler's) picks the product explicitly.
// (A clang-built quant.c computes x - dmin * m as x + (-dmin) * m, so there the NaN bits of Q2_K / Q4_K /
// Q5_K differ; every other value still matches.)
// Levels are widened to one int32 per element: 8 source bytes at a time (vpmovzxbd) split by masks and
// shifts as int32, or -- where they take more steps -- built 32 at a time in bytes and then widened.
#include "tensor/quant.h"
#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define AI static inline __attribute__((always_inline))

// f16 scale -> f32 (F16C; a signalling NaN comes out quiet, as the scalar code's first multiply makes it).
AI float h2f(uint16_t h) { return _cvtsh_ss(h); }
// 8 bytes at p, zero-extended to 8 int32.
AI __m256i u8x8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
AI __m256i set32(int v) { return _mm256_set1_epi32(v); }
// d * (float)q for 8 int32 levels.
AI __m256 mulq(__m256 d, __m256i q) { return _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)); }
// y[0..31] = scale * level of 32 int8 levels, scale sa for the first 16, sb for the last 16.
AI void st32_i8(float *y, __m256i lv, float sa, float sb) {
    __m128i lo = _mm256_castsi256_si128(lv), hi = _mm256_extracti128_si256(lv, 1);
    __m256 a = _mm256_set1_ps(sa), b = _mm256_set1_ps(sb);
    _mm256_storeu_ps(y, mulq(a, _mm256_cvtepi8_epi32(lo)));
    _mm256_storeu_ps(y + 8, mulq(a, _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo))));
    _mm256_storeu_ps(y + 16, mulq(b, _mm256_cvtepi8_epi32(hi)));
    _mm256_storeu_ps(y + 24, mulq(b, _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi))));
}
// y[0..31] = (d * level) - m of 32 uint8 levels.
AI void st32_u8_sub(float *y, __m256i lv, float d, float m) {
    __m128i lo = _mm256_castsi256_si128(lv), hi = _mm256_extracti128_si256(lv, 1);
    __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    _mm256_storeu_ps(y, _mm256_sub_ps(mulq(vd, _mm256_cvtepu8_epi32(lo)), vm));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(mulq(vd, _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(lo, lo))), vm));
    _mm256_storeu_ps(y + 16, _mm256_sub_ps(mulq(vd, _mm256_cvtepu8_epi32(hi)), vm));
    _mm256_storeu_ps(y + 24, _mm256_sub_ps(mulq(vd, _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(hi, hi))), vm));
}
// a + m with the scalar code's NaN: a's where a is NaN (a is a product, already quiet), else the sum.
AI __m256 add_nan_first(__m256 a, __m256 m) {
    return _mm256_blendv_ps(_mm256_add_ps(a, m), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
// 1 when an f16's exponent is all ones (Inf / NaN).
AI int h_nonfinite(uint16_t h) { return (h & 0x7c00) == 0x7c00; }

// ---------------------------------------------------------------- F16 / BF16
// Exact f32 bits of 8 f16 Inf/NaN values (sign, all-ones exponent, mantissa << 13: a signalling NaN
// stays signalling, as in f16_to_f32), blended over vcvtph2ps' result a in those lanes.
AI __m256 f16_fix_special(__m128i x, __m256 a) {
    __m256i w = _mm256_cvtepu16_epi32(x);
    __m256i ex = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, set32(0x8000)), 16),
                                 _mm256_or_si256(set32(0x7f800000), _mm256_slli_epi32(_mm256_and_si256(w, set32(0x3ff)), 13)));
    __m256i sp = _mm256_cmpeq_epi32(_mm256_and_si256(w, set32(0x7c00)), set32(0x7c00));
    return _mm256_blendv_ps(a, _mm256_castsi256_ps(ex), _mm256_castsi256_ps(sp));
}
// n f16 -> f32: vcvtph2ps equals f16_to_f32 for every input but signalling NaNs (it quiets them), so a
// 16-value group with an all-ones exponent is patched.
static void deq_f16(const uint16_t *h, float *y, int64_t n) {
    const __m256i e = _mm256_set1_epi16(0x7c00);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(h + i));
        __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
        __m256 a = _mm256_cvtph_ps(lo), b = _mm256_cvtph_ps(hi);
        if (__builtin_expect(_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_and_si256(v, e), e)) != 0, 0)) {
            a = f16_fix_special(lo, a);
            b = f16_fix_special(hi, b);
        }
        _mm256_storeu_ps(y + i, a);
        _mm256_storeu_ps(y + i + 8, b);
    }
    for (; i < n; i++) y[i] = f16_to_f32(h[i]);
}
// n bf16 -> f32: the 16 bits become the top half of the f32.
static void deq_bf16(const uint16_t *h, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i + 8)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_slli_epi32(a, 16));
        _mm256_storeu_si256((__m256i *)(y + i + 8), _mm256_slli_epi32(b, 16));
    }
    for (; i < n; i++) y[i] = bf16_to_f32(h[i]);
}

// ---------------------------------------------------------------- 32-blocks
// The 32 4-bit levels of 16 bytes in the Q4_0 order (element j: low nibble of qs[j], j + 16: high
// nibble) as 4 x 8 int32: q[0] elements 0..7, q[1] 8..15, q[2] 16..23, q[3] 24..31.
AI void nib32(const uint8_t *qs, __m256i q[4]) {
    __m256i t0 = u8x8(qs), t1 = u8x8(qs + 8);
    q[0] = _mm256_and_si256(t0, set32(0xF));
    q[1] = _mm256_and_si256(t1, set32(0xF));
    q[2] = _mm256_srli_epi32(t0, 4);
    q[3] = _mm256_srli_epi32(t1, 4);
}
// Q5's fifth bits: element j's is bit j of qh, added as 16 to the nibble levels.
AI void add_qh(uint32_t qh, __m256i q[4]) {
    const __m256i s0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), s1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    __m256i a = _mm256_set1_epi32((int)(qh << 4)), b = _mm256_set1_epi32((int)(qh >> 12));   // bit j / j+16 at bit 4 + j
    q[0] = _mm256_or_si256(q[0], _mm256_and_si256(_mm256_srlv_epi32(a, s0), set32(16)));
    q[1] = _mm256_or_si256(q[1], _mm256_and_si256(_mm256_srlv_epi32(a, s1), set32(16)));
    q[2] = _mm256_or_si256(q[2], _mm256_and_si256(_mm256_srlv_epi32(b, s0), set32(16)));
    q[3] = _mm256_or_si256(q[3], _mm256_and_si256(_mm256_srlv_epi32(b, s1), set32(16)));
}
// y[0..31] = d * (q - off).
AI void store_sym(float *y, __m256 d, __m256i q[4], int off) {
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 8 * k, mulq(d, _mm256_sub_epi32(q[k], set32(off))));
}
// y[0..31] = d * q + m. exact: d is Inf/NaN, so a product may be NaN and must win over a NaN m.
AI void store_aff(float *y, __m256 d, __m256 m, __m256i q[4], int exact) {
    if (__builtin_expect(exact, 0)) {
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 8 * k, add_nan_first(mulq(d, q[k]), m));
    } else {
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 8 * k, _mm256_add_ps(mulq(d, q[k]), m));
    }
}

static void deq_q4_0(const blk_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        __m256i q[4];
        nib32(b[i].qs, q);
        store_sym(y, _mm256_set1_ps(h2f(b[i].d)), q, 8);
    }
}
static void deq_q4_1(const blk_q4_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        __m256i q[4];
        nib32(b[i].qs, q);
        store_aff(y, _mm256_set1_ps(h2f(b[i].d)), _mm256_set1_ps(h2f(b[i].m)), q, h_nonfinite(b[i].d));
    }
}
static void deq_q5_0(const blk_q5_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        __m256i q[4];
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        nib32(b[i].qs, q);
        add_qh(qh, q);
        store_sym(y, _mm256_set1_ps(h2f(b[i].d)), q, 16);
    }
}
static void deq_q5_1(const blk_q5_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        __m256i q[4];
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        nib32(b[i].qs, q);
        add_qh(qh, q);
        store_aff(y, _mm256_set1_ps(h2f(b[i].d)), _mm256_set1_ps(h2f(b[i].m)), q, h_nonfinite(b[i].d));
    }
}
static void deq_q8_0(const blk_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        __m256 d = _mm256_set1_ps(h2f(b[i].d));
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(y + 8 * k, mulq(d, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b[i].qs + 8 * k)))));
    }
}

// IQ4 levels of 8 zero-extended bytes t: vpshufb looks each nibble up in the level table (both lanes)
// with the nibble in byte 3 of its int32, and the arithmetic shift sign-extends the looked-up byte (the
// other bytes' lookups are shifted out). lo: low nibbles, hi: high nibbles.
AI __m256i iq4_lo(__m256i tab, __m256i t) {
    return _mm256_srai_epi32(_mm256_shuffle_epi8(tab, _mm256_slli_epi32(_mm256_and_si256(t, set32(0xF)), 24)), 24);
}
AI __m256i iq4_hi(__m256i tab, __m256i t) {
    return _mm256_srai_epi32(_mm256_shuffle_epi8(tab, _mm256_slli_epi32(t, 20)), 24);   // byte 3 = t >> 4
}
// y[0..31] = dl * level of the 16 bytes at qs (IQ4_NL order).
AI void iq4_32(float *y, __m256i tab, float dl, const uint8_t *qs) {
    __m256 d = _mm256_set1_ps(dl);
    __m256i t0 = u8x8(qs), t1 = u8x8(qs + 8);
    _mm256_storeu_ps(y, mulq(d, iq4_lo(tab, t0)));
    _mm256_storeu_ps(y + 8, mulq(d, iq4_lo(tab, t1)));
    _mm256_storeu_ps(y + 16, mulq(d, iq4_hi(tab, t0)));
    _mm256_storeu_ps(y + 24, mulq(d, iq4_hi(tab, t1)));
}
AI __m256i iq4_table(void) { return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)iq4_levels)); }
static void deq_iq4_nl(const blk_iq4_nl *b, float *y, int64_t nb) {
    const __m256i tab = iq4_table();
    for (int64_t i = 0; i < nb; i++, y += 32) iq4_32(y, tab, h2f(b[i].d), b[i].qs);
}
static void deq_iq4_xs(const blk_iq4_xs *b, float *y, int64_t nb) {
    const __m256i tab = iq4_table();
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d);
        #pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++, y += 32) iq4_32(y, tab, d * (float)(iq4xs_scale(&b[i], ib) - 32), b[i].qs + 16 * ib);
    }
}

// ---------------------------------------------------------------- K-quants
// The 8 sub-blocks' float scales d * sc and minimums dmin * m of a Q4_K / Q5_K super-block (the scalar
// code's products).
AI void q4k_steps(uint16_t hd, uint16_t hdmin, const uint8_t *scales, float dl[8], float ml[8]) {
    float d = h2f(hd), dmin = h2f(hdmin);
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_scale_min(j, scales, &sc, &m);
        dl[j] = d * (float)sc;
        ml[j] = dmin * (float)m;
    }
}
// Q4_K: per sub-block pair (32 bytes), y = d1 * low nibble - m1, then d2 * high nibble - m2.
static void deq_q4_K(const blk_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float dl[8], ml[8];
        q4k_steps(b[i].d, b[i].dmin, b[i].scales, dl, ml);
        const uint8_t *q = b[i].qs;
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
            __m256 d1 = _mm256_set1_ps(dl[j]), m1 = _mm256_set1_ps(ml[j]);
            __m256 d2 = _mm256_set1_ps(dl[j + 1]), m2 = _mm256_set1_ps(ml[j + 1]);
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i t = u8x8(q + 8 * k);
                _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(mulq(d1, _mm256_and_si256(t, set32(0xF))), m1));
                _mm256_storeu_ps(y + 32 + 8 * k, _mm256_sub_ps(mulq(d2, _mm256_srli_epi32(t, 4)), m2));
            }
        }
    }
}
// Q5_K: Q4_K plus bit j of qh[l] as 16 for element l of sub-block j; per sub-block pair, the 32 + 32
// levels are built in bytes (16-bit shifts; the masks drop the bits that cross a byte), then widened.
static void deq_q5_K(const blk_q5_K *b, float *y, int64_t nb) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m10 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < nb; i++) {
        float dl[8], ml[8];
        q4k_steps(b[i].d, b[i].dmin, b[i].scales, dl, ml);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b[i].qh);
        #pragma GCC unroll 4
        for (int jp = 0; jp < 4; jp++, y += 64) {
            __m256i ql = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * jp));
            __m256i h = _mm256_srli_epi16(qh, 2 * jp);   // bits 2jp, 2jp + 1 of each byte at bits 0, 1
            __m256i lo = _mm256_or_si256(_mm256_and_si256(ql, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m10));
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql, 4), m4), _mm256_and_si256(_mm256_slli_epi16(h, 3), m10));
            st32_u8_sub(y, lo, dl[2 * jp], ml[2 * jp]);
            st32_u8_sub(y + 32, hi, dl[2 * jp + 1], ml[2 * jp + 1]);
        }
    }
}
// Q6_K: per 128-element half, element l + 32r (r = 0..3) is (d * sc[l / 16 + 2r]) * (q - 32): q's low
// 4 bits the low (r < 2) or high (r >= 2) nibble of ql[l + 32 (r % 2)], its top 2 bits bits 2r, 2r + 1
// of qh[l]. The levels of 32 elements are built at once in bytes (16-bit shifts; the masks drop the
// bits that cross a byte), then widened.
static void deq_q6_K(const blk_q6_K *b, float *y, int64_t nb) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d), ds[16];
        #pragma GCC unroll 16
        for (int j = 0; j < 16; j++) ds[j] = d * (float)b[i].scales[j];
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        #pragma GCC unroll 2
        for (int n = 0; n < 2; n++, y += 128, ql += 64, qh += 32) {
            const float *s = ds + 8 * n;
            __m256i a = _mm256_loadu_si256((const __m256i *)ql), c = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(c, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(h, m30));
            __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            st32_i8(y, _mm256_sub_epi8(q1, k32), s[0], s[1]);
            st32_i8(y + 32, _mm256_sub_epi8(q2, k32), s[2], s[3]);
            st32_i8(y + 64, _mm256_sub_epi8(q3, k32), s[4], s[5]);
            st32_i8(y + 96, _mm256_sub_epi8(q4, k32), s[6], s[7]);
        }
    }
}
// Q2_K: element 128n + 32j + l (sub-block 8n + 2j + l / 16) is (dl * q) - ml, q bits 2j..2j+1 of
// qs[32n + l], dl = d * (sc & 0xF), ml = dmin * (sc >> 4).
static void deq_q2_K(const blk_q2_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256) {
        float d = h2f(b[i].d), dmin = h2f(b[i].dmin), dl[16], ml[16];
        #pragma GCC unroll 16
        for (int s = 0; s < 16; s++) {
            dl[s] = d * (float)(b[i].scales[s] & 0xF);
            ml[s] = dmin * (float)(b[i].scales[s] >> 4);
        }
        #pragma GCC unroll 2
        for (int n = 0; n < 2; n++) {
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i t = u8x8(b[i].qs + 32 * n + 8 * k);
                #pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    int s = 8 * n + 2 * j + k / 2;
                    __m256i q = _mm256_and_si256(_mm256_srli_epi32(t, 2 * j), set32(3));
                    _mm256_storeu_ps(y + 128 * n + 32 * j + 8 * k,
                                     _mm256_sub_ps(mulq(_mm256_set1_ps(dl[s]), q), _mm256_set1_ps(ml[s])));
                }
            }
        }
    }
}
// Q3_K: as Q2_K's levels, minus 4 where the hmask bit (4n + j of hmask[l]) is clear, times
// dl = d * (sc - 32).
static void deq_q3_K(const blk_q3_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256) {
        float d = h2f(b[i].d), dl[16];
        #pragma GCC unroll 16
        for (int s = 0; s < 16; s++) dl[s] = d * (float)(q3k_scale(s, b[i].scales) - 32);
        __m256i hn[4];   // inverted hmask bytes << 2: bit b clear -> 4 at bit 2 + b
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) hn[k] = _mm256_slli_epi32(_mm256_xor_si256(u8x8(b[i].hmask + 8 * k), set32(0xFF)), 2);
        #pragma GCC unroll 2
        for (int n = 0; n < 2; n++) {
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i t = u8x8(b[i].qs + 32 * n + 8 * k);
                #pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    int s = 8 * n + 2 * j + k / 2;
                    __m256i q = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(t, 2 * j), set32(3)),
                                                 _mm256_and_si256(_mm256_srli_epi32(hn[k], 4 * n + j), set32(4)));
                    _mm256_storeu_ps(y + 128 * n + 32 * j + 8 * k, mulq(_mm256_set1_ps(dl[s]), q));
                }
            }
        }
    }
}

// ---- the grid types (IQ2_XXS ... IQ1_M): tensor/quant_iq_body.h's block walking with 8 values a vector
// (the same float operations as quant_iq.c's scalar puts: scale x level, then the sign bit flipped by
// an XOR; IQ1: (level + delta) x scale).
#include "tensor/iq_grids.h"
#define IQ1_DELTA 0.125f
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
// the sign bit of lane j set where bit j of signs is
AI __m256 sign_mask(unsigned signs) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(set32((int)signs), bit), bit);
    return _mm256_castsi256_ps(_mm256_slli_epi32(on, 31));
}
AI void put8_avx2(float *y, float scale, const uint8_t *row, unsigned signs) {
    _mm256_storeu_ps(y, _mm256_xor_ps(mulq(_mm256_set1_ps(scale), u8x8(row)), sign_mask(signs)));
}
AI void put4x2_avx2(float *y, float scale, const uint8_t *a, const uint8_t *b, unsigned signs) {
    __m256i q = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)rd32(b), (int)rd32(a)));
    _mm256_storeu_ps(y, _mm256_xor_ps(mulq(_mm256_set1_ps(scale), q), sign_mask(signs)));
}
AI void put8_iq1_avx2(float *y, float dl, int idx, float delta) {
    __m256 g = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)&iq_iq1s_grid[idx])));
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_set1_ps(dl), _mm256_add_ps(g, _mm256_set1_ps(delta))));
}
#define IQ_NAME(x) x##_avx2
#define IQ_PUT8 put8_avx2
#define IQ_PUT4X2 put4x2_avx2
#define IQ_PUT8_IQ1 put8_iq1_avx2
#include "tensor/quant_iq_body.h"

int dequantize_row_avx2(dtype t, const void *src, float *dst, int64_t n) {
    const dtype_info *di = dtype_get((int)t);
    if (!di || n < 0 || n % di->block) return -1;
    int64_t nb = n / di->block;
    switch (t) {
    case DT_F16: deq_f16(src, dst, n); return 0;
    case DT_BF16: deq_bf16(src, dst, n); return 0;
    case DT_Q4_0: deq_q4_0(src, dst, nb); return 0;
    case DT_Q4_1: deq_q4_1(src, dst, nb); return 0;
    case DT_Q5_0: deq_q5_0(src, dst, nb); return 0;
    case DT_Q5_1: deq_q5_1(src, dst, nb); return 0;
    case DT_Q8_0: deq_q8_0(src, dst, nb); return 0;
    case DT_Q2_K: deq_q2_K(src, dst, nb); return 0;
    case DT_Q3_K: deq_q3_K(src, dst, nb); return 0;
    case DT_Q4_K: deq_q4_K(src, dst, nb); return 0;
    case DT_Q5_K: deq_q5_K(src, dst, nb); return 0;
    case DT_Q6_K: deq_q6_K(src, dst, nb); return 0;
    case DT_IQ4_NL: deq_iq4_nl(src, dst, nb); return 0;
    case DT_IQ4_XS: deq_iq4_xs(src, dst, nb); return 0;
    default: return deq_grid_row_avx2(t, src, dst, nb);
    }
}
