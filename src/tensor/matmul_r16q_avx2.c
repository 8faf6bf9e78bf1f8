// AVX2 (256-bit, no VNNI) versions of the r16 kernels of the 32-element-block types Q4_1, Q5_0, Q5_1 and
// IQ4_NL of matmul_avx512.c: prefill tile and decode over r16 panels (layouts in tensor/matmul_kernels.h)
// against blk_q8a activation rows seeded with -off * sum (mm_q8a_seed).
//
// A 64-byte panel register holds 4 bytes for each of 16 rows, so the kernels work on two row halves:
// rows 0-7 in the low 32 bytes of every register, rows 8-15 in the high 32 bytes (h = 0 / 1); the per-row
// arrays (f16 d[16], m[16]) split alike, and so do the Q5 fifth-bit masks (bits 0-31 of a mask: half 0).
// A block is taken in two passes of 4 activation words (words 0..3: the low nibbles, elements 0..15;
// words 4..7: the high nibbles), each with the level registers of both halves, so one broadcast word
// serves 16 rows.
// The products are vpmaddubsw (u8 x s8, int16 pair sums that saturate at +-32767) summed in int16 only
// as far as no sum can leave that range, then widened by vpmaddwd; the int32 sum per (block, row) is
// exact, so it is the integer the AVX-512 kernel forms:
//   Q4_1 (levels 0..15):  sum(q * x), both passes' 8 words in int16 (|sum| <= 8 * 2 * 15 * 128 = 30720),
//                         plus the seed (0)
//   Q5_0 / Q5_1 (0..31):  sum(q * x), each pass's 4 words in int16 (|sum| <= 4 * 2 * 31 * 128 = 31744);
//                         plus the seed (Q5_0: -16 * sum; Q4_1 / Q5_1 have off = 0: seed 0)
//   IQ4_NL (-127..113):   sum(level * x) directly, as |x| * (level with x's sign), widened per word
//                         (|pair| <= 2 * 128 * 127); the AVX-512 kernel's (level + 128) * x with the
//                         seed -128 * sum is the same integer, so the seed is not added here.
// Then the AVX-512 kernel's float steps in its order: acc = fma((float)isum, dw * dx, acc), and for
// Q4_1 / Q5_1 acc = fma(m, x.s, acc). So the results are bit for bit those of the AVX-512 table, and the
// decode's are those of the tile with one activation row.
#include <string.h>
#include "tensor/matmul_r16_avx2.h"   // OPAQUE_P / OPAQUE_V, ld, bq, r16_pf_to, R16_AVX2_PF_AHEAD

// In levels_pass: OPAQUE_P lets gcc share the two passes' nibble loads, the volatile form below has each
// pass load its own. OPAQUE_V keeps it from sinking the sums of a block's first pass into the second (it
// would spill every product instead).
#define OPAQUE_PV(p) __asm__ volatile("" : "+r"(p))

// ---------------------------------------------------------------- block formats

enum { F_Q4_1, F_Q5_0, F_Q5_1, F_IQ4 };
INLINE size_t f_pb(const int f) { return f == F_Q4_1 ? 320 : f == F_Q5_0 ? 352 : f == F_Q5_1 ? 384 : 288; }
INLINE int f_q5(const int f) { return f == F_Q5_0 || f == F_Q5_1; }
INLINE int f_has_min(const int f) { return f == F_Q4_1 || f == F_Q5_1; }
INLINE int f_seeded(const int f) { return f != F_IQ4; }             // the seed is added (see above)
INLINE size_t f_d(const int f) { return f_q5(f) ? 320 : 256; }      // offset of f16 d[16]
INLINE size_t f_m(const int f) { return f == F_Q5_1 ? 352 : 288; }  // offset of f16 m[16]

// ---------------------------------------------------------------- helpers

// The IQ4_NL levels (signed) in both 128-bit lanes, for vpshufb.
INLINE __m256i iq4_tab(void) { return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)iq4_levels)); }

// The u64 fifth-bit mask at m as [mask, mask << 4] in each 128-bit lane (fifth_bits' source).
INLINE __m256i fifth_src(const uint8_t *m) {
    long long v;
    memcpy(&v, m, 8);
    return _mm256_sllv_epi64(_mm256_set1_epi64x(v), _mm256_setr_epi64x(0, 4, 0, 4));
}
// 0x10 in byte b (0..31) where bit b of half h of the mask (bit 32h + b) is set, else 0. Byte b is bit k =
// b % 8 of mask byte 4h + b / 8; vpshufb takes that byte from the mask itself for k >= 4, from mask << 4
// for k < 4 (there it is bit k + 4), so the bit tested is always one of 4..7: min(bit, 16) is 16 or 0.
INLINE __m256i fifth_bits(__m256i src, const int h) {
    const char a = (char)(4 * h), c = (char)(8 + 4 * h);
    const __m256i ctl = _mm256_setr_epi8(c, c, c, c, a, a, a, a, c + 1, c + 1, c + 1, c + 1, a + 1, a + 1, a + 1, a + 1,
                                         c + 2, c + 2, c + 2, c + 2, a + 2, a + 2, a + 2, a + 2,
                                         c + 3, c + 3, c + 3, c + 3, a + 3, a + 3, a + 3, a + 3);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201080402010ull);
    return _mm256_min_epu8(_mm256_and_si256(_mm256_shuffle_epi8(src, ctl), sel), _mm256_set1_epi8(0x10));
}

// ---------------------------------------------------------------- one block

// Pass g of one block (g = 0: words 0..3, elements 0..15, the low nibbles; g = 1: words 4..7, elements
// 16..31), both halves: w[4h + j] = the levels of word 4g + j of half h. Q4_1: 0..15; Q5: plus 16 where
// the fifth-bit mask 4g + j says so; IQ4_NL: the signed levels the nibbles index. reload: this pass loads
// the nibble bytes anew, else gcc may keep the first pass's loads for the second (measured with gcc 12:
// reloading is faster where registers run short, i.e. the tile for Q5, the decode for all but Q4_1).
INLINE void levels_pass(const uint8_t *p, const int g, const int f, __m256i w[8], const int reload) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (reload) OPAQUE_PV(p);
    else OPAQUE_P(p);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m256i fs = f_q5(f) ? fifth_src(p + 256 + 32 * g + 8 * j) : _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i v = ld(p, 64 * j + 32 * h);
            __m256i lv = _mm256_and_si256(g ? _mm256_srli_epi16(v, 4) : v, m4);
            if (f_q5(f)) lv = _mm256_or_si256(lv, fifth_bits(fs, h));
            if (f == F_IQ4) lv = _mm256_shuffle_epi8(iq4_tab(), lv);
            w[4 * h + j] = lv;
        }
    }
}

// One pass of one activation row (q: the pass's 4 words) against the pass's levels, both halves.
// Q4_1 / Q5: int16 sums of the 4 products. IQ4_NL: int32 sums of |x| * (level with x's sign), |x| once
// per word for both halves.
INLINE void pass_row(const __m256i w[8], const int32_t *q, __m256i s[2], const int f) {
    const __m256i one = _mm256_set1_epi16(1);
    __m256i ax[4];
    if (f == F_IQ4)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) ax[j] = _mm256_abs_epi8(bq(q, j));
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i *a = w + 4 * h;
        if (f == F_IQ4) {
#define IQ4_D(j) _mm256_madd_epi16(_mm256_maddubs_epi16(ax[j], _mm256_sign_epi8(a[j], bq(q, j))), one)
            s[h] = _mm256_add_epi32(_mm256_add_epi32(IQ4_D(0), IQ4_D(1)), _mm256_add_epi32(IQ4_D(2), IQ4_D(3)));
#undef IQ4_D
        } else {
#define Q_P(j) _mm256_maddubs_epi16(a[j], bq(q, j))
            s[h] = _mm256_add_epi16(_mm256_add_epi16(Q_P(0), Q_P(1)), _mm256_add_epi16(Q_P(2), Q_P(3)));
#undef Q_P
        }
    }
}

// The block's exact int32 sum of one half from its two passes' sums (s0, s1), plus the seed of Q5_0.
INLINE __m256i block_isum(__m256i s0, __m256i s1, const blk_q8a *xb, const int f) {
    const __m256i one = _mm256_set1_epi16(1);
    if (f == F_IQ4) return _mm256_add_epi32(s0, s1);
    __m256i s = f_q5(f) ? _mm256_add_epi32(_mm256_madd_epi16(s0, one), _mm256_madd_epi16(s1, one))
                        : _mm256_madd_epi16(_mm256_add_epi16(s0, s1), one);
    return f_seeded(f) ? _mm256_add_epi32(s, _mm256_set1_epi32(xb->seed)) : s;
}

// The block's float steps for one activation row: dwh = the half's row scales, mh its minimums.
INLINE __m256 step(__m256i isum, __m256 dwh, __m256 mh, const blk_q8a *xb, __m256 acc, const int f) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dwh, _mm256_set1_ps(xb->d)), acc);
    if (f_has_min(f)) acc = _mm256_fmadd_ps(mh, _mm256_set1_ps(xb->s), acc);
    return acc;
}
// A half's 8 row scales / minimums (f16 at offset off of the block).
INLINE __m256 half_f16(const uint8_t *p, size_t off, const int h) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + off + 16 * h)));
}

// ---------------------------------------------------------------- prefill tile

// Tile results into Y: y[r*ldy + l] for l < nvalid, as the AVX-512 tile_store: plus bias (+0 without
// one), or added to what Y holds (half h: rows 8h..8h+7).
INLINE void store_tile(const __m256 (*acc)[2], const int TT, float *y, size_t ldy, int nvalid, const float *bias,
                       int accum) {
    for (int h = 0; h < 2 && 8 * h < nvalid; h++) {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(nvalid - 8 * h), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 bv = bias ? _mm256_maskload_ps(bias + 8 * h, m) : _mm256_setzero_ps();
        for (int r = 0; r < TT; r++) {
            float *o = y + (size_t)r * ldy + 8 * h;
            __m256 v = accum ? _mm256_add_ps(_mm256_maskload_ps(o, m), acc[r][h]) : _mm256_add_ps(acc[r][h], bv);
            _mm256_maskstore_ps(o, m, v);
        }
    }
}

// Per block the two passes; in each, the 8 level registers (both halves) stay live while each of the TT
// activation rows adds its products. The first pass's sums wait in `part`; the second ends the block.
INLINE void tile(const uint8_t *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                 int nvalid, const float *bias, int accum, const int f) {
    const size_t pb = f_pb(f);
    const blk_q8a *xr[MM_TILE_T];
    __m256 acc[MM_TILE_T][2];
    __m256i part[MM_TILE_T][2];
    for (int r = 0; r < TT; r++) {
        xr[r] = (const blk_q8a *)((const char *)x + (size_t)r * xs);
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *p = panel + b * pb;
        __m256i w[8];
        levels_pass(p, 0, f, w, f_q5(f));
#pragma GCC unroll 8
        for (int r = 0; r < TT; r++) {
            pass_row(w, (const int32_t *)xr[r][b].qs, part[r], f);
            OPAQUE_V(part[r][0]);
            OPAQUE_V(part[r][1]);
        }
        levels_pass(p, 1, f, w, f_q5(f));
        const __m256 dw0 = half_f16(p, f_d(f), 0), dw1 = half_f16(p, f_d(f), 1);
        const __m256 m0 = f_has_min(f) ? half_f16(p, f_m(f), 0) : _mm256_setzero_ps();
        const __m256 m1 = f_has_min(f) ? half_f16(p, f_m(f), 1) : _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int r = 0; r < TT; r++) {
            const blk_q8a *xb = xr[r] + b;
            __m256i s[2];
            pass_row(w, (const int32_t *)xb->qs + 4, s, f);
            acc[r][0] = step(block_isum(part[r][0], s[0], xb, f), dw0, m0, xb, acc[r][0], f);
            acc[r][1] = step(block_isum(part[r][1], s[1], xb, f), dw1, m1, xb, acc[r][1], f);
        }
    }
    store_tile((const __m256(*)[2])acc, TT, y, ldy, nvalid, bias, accum);
}

// ---------------------------------------------------------------- decode

// One block against one activation row: the tile's two passes, integer sums and float steps.
INLINE void dec_block(const uint8_t *p, const blk_q8a *xb, __m256 acc[2], const int f) {
    const int32_t *q = (const int32_t *)xb->qs;
    __m256i w[8], s0[2], s1[2];
    levels_pass(p, 0, f, w, f != F_Q4_1);
    pass_row(w, q, s0, f);
    OPAQUE_V(s0[0]);
    OPAQUE_V(s0[1]);
    levels_pass(p, 1, f, w, f != F_Q4_1);
    pass_row(w, q + 4, s1, f);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256 mh = f_has_min(f) ? half_f16(p, f_m(f), h) : _mm256_setzero_ps();
        acc[h] = step(block_isum(s0[h], s1[h], xb, f), half_f16(p, f_d(f), h), mh, xb, acc[h], f);
    }
}

// Decode over np consecutive panels: one linear stream, prefetched ahead.
INLINE void dec(const uint8_t *p, int64_t np, int64_t K, const blk_q8a *x, float *out, size_t pf_bytes, const int f) {
    const size_t pb = f_pb(f);
    uintptr_t pf = (uintptr_t)p + R16_AVX2_PF_AHEAD, end = (uintptr_t)p + pf_bytes;
    for (int64_t i = 0; i < np; i++) {
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t b = 0; b < K / 32; b++, p += pb) {
            r16_pf_to(&pf, (uintptr_t)p + pb + R16_AVX2_PF_AHEAD, end);
            dec_block(p, x + b, acc, f);
        }
        _mm256_storeu_ps(out + 16 * i, acc[0]);
        _mm256_storeu_ps(out + 16 * i + 8, acc[1]);
    }
}

// ---------------------------------------------------------------- entry points

void mm_r16q_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                       size_t ldy, int nvalid, const float *bias, int acc) {
    if (TT < 1) return;
    if (t == DT_Q4_1) { TT_CASES(tile, F_Q4_1) }
    else if (t == DT_Q5_0) { TT_CASES(tile, F_Q5_0) }
    else if (t == DT_Q5_1) { TT_CASES(tile, F_Q5_1) }
    else if (t == DT_IQ4_NL) { TT_CASES(tile, F_IQ4) }
}

void mm_r16q_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes) {
    if (t == DT_Q4_1) dec(panels, np, K, x, out, pf_bytes, F_Q4_1);
    else if (t == DT_Q5_0) dec(panels, np, K, x, out, pf_bytes, F_Q5_0);
    else if (t == DT_Q5_1) dec(panels, np, K, x, out, pf_bytes, F_Q5_1);
    else if (t == DT_IQ4_NL) dec(panels, np, K, x, out, pf_bytes, F_IQ4);
}
