// AVX2 (256-bit, no VNNI) versions of the r16 kernels of matmul_avx512.c for Q2_K, Q3_K and IQ4_XS
// panels (layouts in tensor/matmul_kernels.h) against blk_q8_K activation rows, prefill tile and decode.
//
// As in matmul_r16k_avx2.c, a 64-byte panel register holds 4 bytes for each of 16 rows, so each kernel
// works on two row halves: rows 0-7 in the low 32 bytes of every register, rows 8-15 in the high 32 bytes
// (rh = 0 / 1). The products are vpmaddubsw (u8 levels x s8 activations in [-128, 127], int16 pair sums
// that saturate at +-32767), summed in int16 only as far as they cannot saturate, then vpmaddwd with the
// sub-block scale duplicated in both int16 halves of each 32-bit lane (scale * dot in int32):
//  - Q2_K / Q3_K: the 2-bit fields of shift s are taken as 1x levels for s even and 4x levels (bits 2-3 of
//    the byte, one AND and no shift) for s odd; the scales of the 1x sub-blocks are taken 4x instead, so
//    every term is 4 * sc * dot and the sum is shifted back once (exact: a sum of multiples of 4). A
//    sub-block (4 words) sums in int16: |sum| <= 8 * 28 * 128 = 28672 (Q3_K's 4x levels, 0..28).
//    Q3_K's levels are q + 4hbit (0..7, 4x: 0..28); the -4 of its true levels is one term per super-block,
//    4 * sum_k (sc_k - 32) * bsum_k (the AVX-512 kernel seeds each chain with -4 bsum_k instead).
//  - IQ4_XS: the signed levels (-127..113, vpshufb) enter as the s8 operand with the activation's sign,
//    against |activation| as the u8 operand: |x| * (lv * sgn x) = x * lv exactly, also for x = -128
//    (|x| = 128 fits u8, and -lv fits s8), where the other way round (|lv| against x * sgn lv) would
//    wrap -(-128). A pair is then up to 2 * 128 * 127 = 32512, so each word goes to vpmaddwd on its own.
// The integer sums per (super-block, row) are exactly the integers the AVX-512 kernels form (int32 sums
// are exact in any order) and the float steps that follow are theirs, in their order: the results are bit
// for bit those of the AVX-512 table, and the decode's are those of the tile with one activation row.
#include "tensor/matmul_r16_avx2.h"

// Byte operand pairs (a[l], b[l]) of rows 8rh..8rh+7 as int16 pairs: zero- (u8) or sign- (s8) extended.
INLINE __m256i pair_u8(__m128i a, __m128i b, const int rh) {
    return _mm256_cvtepu8_epi16(rh ? _mm_unpackhi_epi8(a, b) : _mm_unpacklo_epi8(a, b));
}
INLINE __m256i pair_s8(__m128i a, __m128i b, const int rh) {
    return _mm256_cvtepi8_epi16(rh ? _mm_unpackhi_epi8(a, b) : _mm_unpacklo_epi8(a, b));
}

// The activation's 16-element sums of sub-blocks 2i, 2i + 1 as one int16 pair, i < 8.
INLINE void q8k_bsum_pairs(const blk_q8_K *xb, int32_t *bp) {
    _mm256_storeu_si256((__m256i *)bp, _mm256_loadu_si256((const __m256i *)xb->bsums));
}

// acc + sumi * (d * dx) for rows 8rh.., d the rows' f16 scales at dp (one FMA: the AVX-512 step).
INLINE __m256 finish_d(const uint8_t *dp, const int rh, __m256i sumi, float dx, __m256 acc) {
    __m256 d = _mm256_cvtph_ps(ld16(dp, (size_t)(16 * rh)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, _mm256_set1_ps(dx)), acc);
}


// ---------------------------------------------------------------- Q2_K / Q3_K levels
// A qs register word w (and w4 = w >> 4 in 16-bit lanes) holds the 2-bit fields of shifts 0..3: s = 0
// bits 0-1 (1x), s = 1 bits 2-3 (4x), s = 2 bits 4-5 of w = bits 0-1 of w4 (1x), s = 3 bits 2-3 of w4 (4x).
INLINE __m256i q23k_low(__m256i w, __m256i w4, const int s) {
    return _mm256_and_si256(s < 2 ? w : w4, _mm256_set1_epi8(s & 1 ? 0x0C : 0x03));
}
// Q3_K: the high bit 4h + s of an hmask register word moved to bit 2 (s even) or 4 (s odd): 4 at the
// level's scale (16-bit shifts: the bit moved stays inside its byte).
INLINE __m256i q3k_high(__m256i hm, const int h, const int s) {
    const int t = s & 1 ? 4 : 2, n = t - (4 * h + s);
    __m256i v = n > 0 ? _mm256_slli_epi16(hm, n) : n < 0 ? _mm256_srli_epi16(hm, -n) : hm;
    return _mm256_and_si256(v, _mm256_set1_epi8((char)(1 << t)));
}
// The level register of (half h, shift s, word j, row half rh) of a super-block: Q2_K q, Q3_K q + 4hbit
// (1x or 4x as above).
INLINE __m256i q23k_level(const uint8_t *p, const int h, const int s, const int j, const int rh, const int q3) {
    __m256i w = ld(p, (size_t)(512 * h + 64 * j + 32 * rh));
    __m256i lv = q23k_low(w, s < 2 ? w : _mm256_srli_epi16(w, 4), s);
    if (q3) lv = _mm256_or_si256(lv, q3k_high(ld(p, (size_t)(R16_Q3K_HM + 64 * j + 32 * rh)), h, s));
    return lv;
}

// ---------------------------------------------------------------- Q2_K scales, mins, float steps

// The 4-bit scales of a super-block, u[16k + l] = sc_k of row l, times 4 for the sub-blocks of 1x levels
// (k = 8h + 2s + jj with s even: k % 4 < 2).
INLINE void q2k_scales(const uint8_t *p, uint8_t *u) {
    const __m256i m0F = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 8; c++) {   // sub-blocks 2c, 2c + 1 (shift c % 4)
        __m256i v = _mm256_and_si256(ld(p, (size_t)(R16_Q2K_SC + 32 * c)), m0F);
        _mm256_store_si256((__m256i *)(u + 32 * c), c % 2 ? v : _mm256_slli_epi16(v, 2));
    }
}
// The mins of sub-blocks 2i, 2i + 1 of rows 8rh.. as int16 pairs (the high nibbles of the scale bytes).
INLINE __m256i q2k_minpair(const uint8_t *p, const int i, const int rh) {
    return _mm256_srli_epi16(pair_u8(ld16(p, (size_t)(R16_Q2K_SC + 32 * i)), ld16(p, (size_t)(R16_Q2K_SC + 32 * i + 16)), rh), 4);
}
// The two float steps that end a Q2_K super-block for rows 8rh.. (sumi4 = 4 * sumi).
INLINE __m256 q2k_finish8(const uint8_t *p, const int rh, __m256i sumi4, __m256i summ, float dx, __m256 acc) {
    __m256 dm = _mm256_cvtph_ps(ld16(p, (size_t)(R16_Q2K_DMIN + 16 * rh)));
    acc = finish_d(p + R16_Q2K_D, rh, _mm256_srai_epi32(sumi4, 2), dx, acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dm, _mm256_set1_ps(dx)), acc);
}

// ---------------------------------------------------------------- Q3_K scales, offset, float step

// The 6-bit scales minus 32 of a super-block as int8, u[16k + l] for sub-block k of row l (the format:
// low nibbles of bytes 0..7 for sub-blocks 0..7, high nibbles for 8..15, the top two bits at bit
// 2 (k / 4) of byte 8 + k % 4; 32 bytes = sub-blocks 2c, 2c + 1).
INLINE void q3k_scales(const uint8_t *p, uint8_t *u) {
    const uint8_t *sc = p + R16_Q3K_SC;
    const __m256i m0F = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), b32 = _mm256_set1_epi8(32);
    for (int c = 0; c < 8; c++) {
        __m256i a = ld(sc, (size_t)(32 * (c % 4))), h = ld(sc, (size_t)(128 + 32 * (c % 2)));
        __m256i lo = _mm256_and_si256(c < 4 ? a : _mm256_srli_epi16(a, 4), m0F);
        const int n = 4 - 2 * (c / 2);   // bits 2 (c / 2) -> 4
        h = n > 0 ? _mm256_slli_epi16(h, n) : n < 0 ? _mm256_srli_epi16(h, -n) : h;
        _mm256_store_si256((__m256i *)(u + 32 * c), _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_and_si256(h, m30)), b32));
    }
}
// The scales minus 32 of sub-blocks 2i, 2i + 1 of rows 8rh.. as int16 pairs.
INLINE __m256i q3k_scpair(const uint8_t *u, const int i, const int rh) {
    return pair_s8(ld16(u, (size_t)(32 * i)), ld16(u, (size_t)(32 * i + 16)), rh);
}
// The float step that ends a Q3_K super-block for rows 8rh..: sumi = sumi4 / 4 - 4 * o, with o = sum_k
// (sc_k - 32) * bsum_k.
INLINE __m256 q3k_finish8(const uint8_t *p, const int rh, __m256i sumi4, __m256i o, float dx, __m256 acc) {
    __m256i sumi = _mm256_sub_epi32(_mm256_srai_epi32(sumi4, 2), _mm256_slli_epi32(o, 2));
    return finish_d(p + R16_Q3K_D, rh, sumi, dx, acc);
}

// ---------------------------------------------------------------- Q2_K / Q3_K kernels

// Decode, one super-block of 16 rows against one activation super-block: per row half, half h and
// sub-block parity jj, the 4 words' levels of the 4 shifts (one qs load each) into 4 int16 sums, each
// scaled into sumi4; then the mins (Q2_K) or the level offset (Q3_K) and the float steps.
INLINE void r16_q23k_sb1(const uint8_t *p, const blk_q8_K *xb, __m256 acc[2], uintptr_t *pf, uintptr_t end,
                         const int q3) {
    const size_t sbb = q3 ? R16_Q3K_SB : R16_Q2K_SB;
    _Alignas(32) uint8_t u[256];
    _Alignas(32) int32_t bp[8];
    if (q3) q3k_scales(p, u);
    else q2k_scales(p, u);
    q8k_bsum_pairs(xb, bp);
#pragma GCC unroll 2
    for (int rh = 0; rh < 2; rh++) {
        const int32_t *q = (const int32_t *)xb->qs;
        OPAQUE_P(q);   // (each pass its own activation loads: gcc would keep them live across passes)
        __m256i s4 = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            r16_pf_to(pf, (uintptr_t)p + sbb / 2 * (size_t)(h + 1) + R16_AVX2_PF_AHEAD, end);
#pragma GCC unroll 2
            for (int jj = 0; jj < 2; jj++) {
                __m256i a[4];
#pragma GCC unroll 4
                for (int j4 = 0; j4 < 4; j4++) {
                    const int j = 4 * jj + j4;
                    const __m256i w = ld(p, (size_t)(512 * h + 64 * j + 32 * rh)), w4 = _mm256_srli_epi16(w, 4);
                    const __m256i hm = q3 ? ld(p, (size_t)(R16_Q3K_HM + 64 * j + 32 * rh)) : w;
#pragma GCC unroll 4
                    for (int s = 0; s < 4; s++) {
                        __m256i lv = q23k_low(w, w4, s);
                        if (q3) lv = _mm256_or_si256(lv, q3k_high(hm, h, s));
                        __m256i m = mul16(lv, bq(q, 32 * h + 8 * s + j));
                        a[s] = j4 ? add16(a[s], m) : m;
                    }
                }
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) {
                    const uint8_t *uk = u + 16 * (8 * h + 2 * s + jj);
                    s4 = madd_acc(s4, a[s], q3 ? dup_s8(uk, rh, !(s & 1)) : dup_u8(uk, rh));
                    OPAQUE_V(s4);
                }
            }
        }
        __m256i t = _mm256_setzero_si256();   // Q2_K: sum_k m_k bsum_k; Q3_K: sum_k (sc_k - 32) bsum_k
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            t = madd_acc(t, q3 ? q3k_scpair(u, i, rh) : q2k_minpair(p, i, rh), _mm256_set1_epi32(bp[i]));
        acc[rh] = q3 ? q3k_finish8(p, rh, s4, t, xb->d, acc[rh]) : q2k_finish8(p, rh, s4, t, xb->d, acc[rh]);
    }
    r16_pf_to(pf, (uintptr_t)p + sbb + R16_AVX2_PF_AHEAD, end);
}

// Decode over np consecutive panels (one linear stream).
INLINE void r16_dec_q23k(const uint8_t *p, int64_t np, int64_t K, const blk_q8_K *x, float *out, size_t pf_bytes,
                         const int q3) {
    const size_t sbb = q3 ? R16_Q3K_SB : R16_Q2K_SB;
    R16_AVX2_DEC(np, K, p, x, out, pf_bytes, sbb, r16_q23k_sb1(p, x + s_, acc_, &pf_, end_, q3));
}

// Prefill: per (half h, shift s, row half) the 8 level registers (sub-blocks 8h + 2s, + 1) stay live while
// each of the TT activation rows adds its 8 products, summed per sub-block in int16 and scaled into its
// sumi4; the mins / level offset (from pairs built once per super-block) and the float steps once per
// (super-block, row).
INLINE void r16_q23k_tile(const uint8_t *panel, int64_t K, const void *x, size_t xs, const int TT, float *y,
                          size_t ldy, int nvalid, const float *bias, int accum, const int q3) {
    const size_t sbb = q3 ? R16_Q3K_SB : R16_Q2K_SB;
    const blk_q8_K *xr[MM_TILE_T];
    __m256 acc[MM_TILE_T][2];
    tile_begin(x, xs, TT, xr, acc);
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = panel + sb * sbb;
        _Alignas(32) uint8_t u[256];
        __m256i sumi[MM_TILE_T][2], pr[8][2];
        if (q3) q3k_scales(p, u);
        else q2k_scales(p, u);
        for (int i = 0; i < 8; i++)
            for (int rh = 0; rh < 2; rh++) pr[i][rh] = q3 ? q3k_scpair(u, i, rh) : q2k_minpair(p, i, rh);
        for (int r = 0; r < TT; r++) sumi[r][0] = sumi[r][1] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++)
#pragma GCC unroll 2
                for (int rh = 0; rh < 2; rh++) {
                    __m256i w[8];
                    const uint8_t *ps = p;
                    OPAQUE_P(ps);
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) w[j] = q23k_level(ps, h, s, j, rh, q3);
                    const uint8_t *uk = u + 16 * (8 * h + 2 * s);
                    const __m256i s0 = q3 ? dup_s8(uk, rh, !(s & 1)) : dup_u8(uk, rh);
                    const __m256i s1 = q3 ? dup_s8(uk + 16, rh, !(s & 1)) : dup_u8(uk + 16, rh);
                    for (int r = 0; r < TT; r++) {
                        const int32_t *q = (const int32_t *)xr[r][sb].qs + 32 * h + 8 * s;
                        __m256i a = add16(mul16(w[0], bq(q, 0)), mul16(w[1], bq(q, 1)));
                        __m256i b = add16(mul16(w[4], bq(q, 4)), mul16(w[5], bq(q, 5)));
                        a = add16(a, add16(mul16(w[2], bq(q, 2)), mul16(w[3], bq(q, 3))));
                        b = add16(b, add16(mul16(w[6], bq(q, 6)), mul16(w[7], bq(q, 7))));
                        __m256i t = _mm256_add_epi32(_mm256_madd_epi16(a, s0), _mm256_madd_epi16(b, s1));
                        sumi[r][rh] = _mm256_add_epi32(sumi[r][rh], t);
                    }
                }
        for (int r = 0; r < TT; r++) {
            _Alignas(32) int32_t bp[8];
            q8k_bsum_pairs(&xr[r][sb], bp);
            for (int rh = 0; rh < 2; rh++) {
                __m256i t = _mm256_setzero_si256();
                for (int i = 0; i < 8; i++) t = madd_acc(t, pr[i][rh], _mm256_set1_epi32(bp[i]));
                acc[r][rh] = q3 ? q3k_finish8(p, rh, sumi[r][rh], t, xr[r][sb].d, acc[r][rh])
                                : q2k_finish8(p, rh, sumi[r][rh], t, xr[r][sb].d, acc[r][rh]);
            }
        }
    }
    tile_store8((const __m256(*)[2])acc, TT, y, ldy, nvalid, bias, accum);
}

// ---------------------------------------------------------------- IQ4_XS

// The 16 signed IQ4 levels in both 128-bit lanes (vpshufb table).
INLINE __m256i iq4_tab(void) { return bc16((const uint8_t *)iq4_levels); }

// The 6-bit scales minus 32 of a super-block as int8, u[16 ib + l] for sub-block ib of row l: the nibble
// ib % 2 of scales_l byte ib / 2, and bits 2ib, 2ib + 1 of scales_h above (32 bytes = sub-blocks 2m, 2m + 1,
// one in each 128-bit lane, so the shifts per lane are variable shifts).
INLINE void iq4xs_scales(const uint8_t *p, uint8_t *u) {
    const __m128i mFF = _mm_set1_epi16(0xFF);
    __m128i a = ld16(p, R16_IQ4XS_SH), b = ld16(p, R16_IQ4XS_SH + 16);   // the rows' u16 scales_h
    __m128i h0 = _mm_packus_epi16(_mm_and_si128(a, mFF), _mm_and_si128(b, mFF));   // bits 0..7 (ib 0..3)
    __m128i h1 = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));     // bits 8..15 (ib 4..7)
    const __m256i m0F = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), b32 = _mm256_set1_epi8(32);
    const __m256i nib = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    for (int m = 0; m < 4; m++) {
        __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(bc16(p + R16_IQ4XS_SL + 16 * m), nib), m0F);
        __m256i h = _mm256_broadcastsi128_si256(m < 2 ? h0 : h1);   // ib = 2m, 2m + 1: bits 4 (m % 2), + 2
        h = m % 2 ? _mm256_srlv_epi32(h, _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2))
                  : _mm256_sllv_epi32(h, _mm256_setr_epi32(4, 4, 4, 4, 2, 2, 2, 2));
        _mm256_store_si256((__m256i *)(u + 32 * m), _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_and_si256(h, m30)), b32));
    }
}
// The levels of register j (0..3) of sub-block ib for row half rh: lo = elements 4j.. (activation word
// j), hi = elements 16 + 4j.. (word 4 + j), signed.
INLINE void iq4xs_lv(const uint8_t *p, const int ib, const int j, const int rh, __m256i tab, __m256i *lo, __m256i *hi) {
    const __m256i m0F = _mm256_set1_epi8(0x0F);
    __m256i w = ld(p, (size_t)(256 * ib + 64 * j + 32 * rh));
    *lo = _mm256_shuffle_epi8(tab, _mm256_and_si256(w, m0F));
    *hi = _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(w, 4), m0F));
}
// sc * (x . lv) of one word's 4 elements per lane, added to acc: ax = |x| (u8), x's sign moved to the level.
INLINE __m256i iq4_word(__m256i acc, __m256i lv, __m256i xv, __m256i ax, __m256i sc) {
    return madd_acc(acc, mul16(ax, _mm256_sign_epi8(lv, xv)), sc);
}

// Decode, one super-block against one activation super-block: per sub-block and word both row halves
// (the activation word and its |x| shared).
INLINE void r16_iq4xs_sb1(const uint8_t *p, const blk_q8_K *xb, __m256 acc[2], uintptr_t *pf, uintptr_t end) {
    const int32_t *q = (const int32_t *)xb->qs;
    const __m256i tab = iq4_tab();
    _Alignas(32) uint8_t u[128];
    iq4xs_scales(p, u);
    __m256i s[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 8
    for (int ib = 0; ib < 8; ib++) {
        r16_pf_to(pf, (uintptr_t)p + 256 * (size_t)(ib + 1) + R16_AVX2_PF_AHEAD, end);
        const __m256i sc[2] = {dup_s8(u + 16 * ib, 0, 0), dup_s8(u + 16 * ib, 1, 0)};
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256i xl = bq(q, 8 * ib + j), xh = bq(q, 8 * ib + 4 + j);
            const __m256i al = _mm256_abs_epi8(xl), ah = _mm256_abs_epi8(xh);
#pragma GCC unroll 2
            for (int rh = 0; rh < 2; rh++) {
                __m256i lo, hi;
                iq4xs_lv(p, ib, j, rh, tab, &lo, &hi);
                s[rh] = iq4_word(s[rh], lo, xl, al, sc[rh]);
                s[rh] = iq4_word(s[rh], hi, xh, ah, sc[rh]);
                OPAQUE_V(s[rh]);
            }
        }
    }
    r16_pf_to(pf, (uintptr_t)p + R16_IQ4XS_SB + R16_AVX2_PF_AHEAD, end);
    for (int rh = 0; rh < 2; rh++) acc[rh] = finish_d(p + R16_IQ4XS_D, rh, s[rh], xb->d, acc[rh]);
}

static void r16_dec_iq4xs(const uint8_t *p, int64_t np, int64_t K, const blk_q8_K *x, float *out, size_t pf_bytes) {
    R16_AVX2_DEC(np, K, p, x, out, pf_bytes, R16_IQ4XS_SB, r16_iq4xs_sb1(p, x + s_, acc_, &pf_, end_));
}

// Prefill: per (sub-block, row half) the 8 level registers stay live while each of the TT activation rows
// adds its 8 words (|x| of the rows' super-block taken once into ax).
INLINE void r16_iq4xs_tile(const uint8_t *panel, int64_t K, const void *x, size_t xs, const int TT, float *y,
                           size_t ldy, int nvalid, const float *bias, int accum) {
    const blk_q8_K *xr[MM_TILE_T];
    __m256 acc[MM_TILE_T][2];
    tile_begin(x, xs, TT, xr, acc);
    const __m256i tab = iq4_tab();
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = panel + sb * R16_IQ4XS_SB;
        _Alignas(32) uint8_t u[128];
        _Alignas(32) int32_t ax[MM_TILE_T][64];
        __m256i sumi[MM_TILE_T][2];
        iq4xs_scales(p, u);
        for (int r = 0; r < TT; r++) {
            sumi[r][0] = sumi[r][1] = _mm256_setzero_si256();
            for (int c = 0; c < 8; c++)
                _mm256_store_si256((__m256i *)(ax[r] + 8 * c), _mm256_abs_epi8(ld((const uint8_t *)xr[r][sb].qs, (size_t)(32 * c))));
        }
        for (int ib = 0; ib < 8; ib++)
#pragma GCC unroll 2
            for (int rh = 0; rh < 2; rh++) {
                __m256i w[8];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) iq4xs_lv(p, ib, j, rh, tab, &w[j], &w[4 + j]);
                const __m256i sc = dup_s8(u + 16 * ib, rh, 0);
                for (int r = 0; r < TT; r++) {
                    const int32_t *q = (const int32_t *)xr[r][sb].qs + 8 * ib, *a = ax[r] + 8 * ib;
                    __m256i t = _mm256_madd_epi16(mul16(bq(a, 0), _mm256_sign_epi8(w[0], bq(q, 0))), sc);
                    __m256i v = _mm256_madd_epi16(mul16(bq(a, 1), _mm256_sign_epi8(w[1], bq(q, 1))), sc);
#pragma GCC unroll 3
                    for (int j = 2; j < 8; j += 2) {
                        t = iq4_word(t, w[j], bq(q, j), bq(a, j), sc);
                        v = iq4_word(v, w[j + 1], bq(q, j + 1), bq(a, j + 1), sc);
                    }
                    sumi[r][rh] = _mm256_add_epi32(sumi[r][rh], _mm256_add_epi32(t, v));
                }
            }
        for (int r = 0; r < TT; r++)
            for (int rh = 0; rh < 2; rh++) acc[r][rh] = finish_d(p + R16_IQ4XS_D, rh, sumi[r][rh], xr[r][sb].d, acc[r][rh]);
    }
    tile_store8((const __m256(*)[2])acc, TT, y, ldy, nvalid, bias, accum);
}

// ---------------------------------------------------------------- entry points

void mm_r16k2_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                        size_t ldy, int nvalid, const float *bias, int acc) {
    if (TT < 1) return;
    if (TT > MM_TILE_T) TT = MM_TILE_T;   // (the contract; the row arrays hold MM_TILE_T)
    if (t == DT_Q2_K) r16_q23k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 0);
    else if (t == DT_Q3_K) r16_q23k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 1);
    else if (t == DT_IQ4_XS) r16_iq4xs_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc);
}

void mm_r16k2_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes) {
    if (t == DT_Q2_K) r16_dec_q23k(panels, np, K, x, out, pf_bytes, 0);
    else if (t == DT_Q3_K) r16_dec_q23k(panels, np, K, x, out, pf_bytes, 1);
    else if (t == DT_IQ4_XS) r16_dec_iq4xs(panels, np, K, x, out, pf_bytes);
}
