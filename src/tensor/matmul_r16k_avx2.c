// AVX2 (256-bit, no VNNI) versions of the r16 K-quant kernels of matmul_avx512.c: Q4_K, Q5_K, Q6_K
// panels (layouts in tensor/matmul_kernels.h) against blk_q8_K activation rows, prefill tile and decode.
//
// A 64-byte panel register holds 4 bytes for each of 16 rows, so each kernel works on two row halves:
// rows 0-7 in the low 32 bytes of every register, rows 8-15 in the high 32 bytes (rh = 0 / 1).
// The products are vpmaddubsw (u8 levels x s8 activations, int16 pairs that saturate at +-32767) summed
// in int16 over as many words as cannot overflow (8 for Q4_K's levels 0..15, 4 for Q5_K's 0..31, 2 for
// Q6_K's 0..63; activations in [-128, 127]), then vpmaddwd with the sub-block scale duplicated in both
// int16 halves of each 32-bit lane, which yields scale * dot in int32. The levels are always the true
// ones (never the in-place 4x / 16x forms of the AVX-512 code, which would saturate here), so the integer
// sums per (super-block, row) are exactly the integers the AVX-512 kernels form (int32 sums are exact in
// any order), and the float steps that follow are theirs, in their order: the results are bit for bit
// those of the AVX-512 table, and the decode's are those of the tile with one activation row.
#include "tensor/matmul_r16_avx2.h"

// ---------------------------------------------------------------- Q4_K / Q5_K

// The 6-bit scales and mins of a super-block's 16 rows from the 12 transposed scale bytes sc[12][16]:
// u[16k + l] = scale k (k < 8) or min k - 8 (k >= 8) of row l (the format's bit layout: j < 4 in the low
// 6 bits of bytes j / j + 4, j >= 4 split over the nibbles of bytes j + 4 and the top bits of bytes
// j - 4 / j).
INLINE void q4k_unpack(const uint8_t *sc, uint8_t *u) {
    const __m256i m63 = _mm256_set1_epi8(63), m0F = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    for (int i = 0; i < 2; i++) {   // scale / min pairs 2i, 2i + 1 (and 4 + 2i, 5 + 2i)
        __m256i z0 = ld(sc, 32 * i), z1 = ld(sc, 64 + 32 * i), z2 = ld(sc, 128 + 32 * i);
        __m256i s4 = _mm256_or_si256(_mm256_and_si256(z2, m0F), _mm256_and_si256(_mm256_srli_epi16(z0, 2), m30));
        __m256i m4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(z2, 4), m0F),
                                     _mm256_and_si256(_mm256_srli_epi16(z1, 2), m30));
        _mm256_store_si256((__m256i *)(u + 32 * i), _mm256_and_si256(z0, m63));
        _mm256_store_si256((__m256i *)(u + 64 + 32 * i), s4);
        _mm256_store_si256((__m256i *)(u + 128 + 32 * i), _mm256_and_si256(z1, m63));
        _mm256_store_si256((__m256i *)(u + 192 + 32 * i), m4);
    }
}

// Activation sums per 32-element sub-block as int16 pairs: bp[i] = (bs[2i], bs[2i + 1]).
INLINE void q8k_bspairs(const blk_q8_K *xb, int32_t *bp) {
    const uint8_t *b = (const uint8_t *)xb->bsums;
    _mm_storeu_si128((__m128i *)bp, _mm_hadd_epi16(ld16(b, 0), ld16(b, 16)));
}

// summ = sum_j min_j * bs_j of rows 8rh..8rh+7, exact in int32 (the value the AVX-512 f32 sum holds):
// the mins of sub-blocks 2i, 2i + 1 interleaved as int16 pairs against bp[i].
INLINE __m256i q4k_summ8(const uint8_t *u, const int32_t *bp, const int rh) {
    __m256i s = _mm256_setzero_si256();
    for (int i = 0; i < 4; i++) {
        __m128i a = ld16(u, 16 * (8 + 2 * i)), b = ld16(u, 16 * (9 + 2 * i));
        __m256i m = _mm256_cvtepu8_epi16(rh ? _mm_unpackhi_epi8(a, b) : _mm_unpacklo_epi8(a, b));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(m, _mm256_set1_epi32(bp[i])));
    }
    return s;
}

// The two float steps that end a super-block for rows 8rh..: dp: the 16 rows' f16 d, then dmin.
INLINE __m256 q4k_finish8(const uint8_t *dp, const int rh, __m256i sumi, __m256i summ, float dx, __m256 acc) {
    __m256 d = _mm256_cvtph_ps(ld16(dp, 16 * rh)), dm = _mm256_cvtph_ps(ld16(dp, 32 + 16 * rh));
    __m256 vx = _mm256_set1_ps(dx);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, vx), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dm, vx), acc);
}

// True levels of word j of group g, row half rh: lo = sub-block 2g (0..15 / 0..31), hi = 2g + 1. Q5_K's
// fifth bits of group g sit at q5k_pos(g) = {4, 5, 0, 1}[g] and 2 above: one shift puts them at 4 and 6.
INLINE void q45k_lv(const uint8_t *p, const int g, int j, const int rh, const int q5, __m256i *lo, __m256i *hi) {
    const __m256i m0F = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    __m256i w = ld(p, (size_t)(512 * g + 64 * j + 32 * rh));
    *lo = _mm256_and_si256(w, m0F);
    *hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m0F);
    if (q5) {
        __m256i b = ld(p, (size_t)(R16_Q5K_HB + 64 * j + 32 * rh));
        b = g == 0 ? b : g == 1 ? _mm256_srli_epi16(b, 1) : g == 2 ? _mm256_slli_epi16(b, 4) : _mm256_slli_epi16(b, 3);
        *lo = _mm256_or_si256(*lo, _mm256_and_si256(b, m10));
        *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_srli_epi16(b, 2), m10));
    }
}

// Decode, group g (sub-blocks 2g, 2g + 1) of a super-block, both row halves: int16 sums over n words
// (8 Q4_K, 4 Q5_K), each scaled into sumi[rh].
INLINE void r16k_q45k_group1(const uint8_t *p, const int g, const int32_t *q, const uint8_t *u, __m256i sumi[2],
                             const int q5) {
    const int n = q5 ? 4 : 8;
    __m256i sl[2], sh[2], l16[2], h16[2];
    for (int rh = 0; rh < 2; rh++) { sl[rh] = dup_u8(u + 32 * g, rh); sh[rh] = dup_u8(u + 32 * g + 16, rh); }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m256i bl = bq(q, j), bh = bq(q, 8 + j);
#pragma GCC unroll 2
        for (int rh = 0; rh < 2; rh++) {
            __m256i lo, hi;
            q45k_lv(p, g, j, rh, q5, &lo, &hi);
            l16[rh] = j % n ? add16(l16[rh], mul16(lo, bl)) : mul16(lo, bl);
            h16[rh] = j % n ? add16(h16[rh], mul16(hi, bh)) : mul16(hi, bh);
            if (j % n == n - 1) {
                sumi[rh] = _mm256_add_epi32(sumi[rh], _mm256_add_epi32(_mm256_madd_epi16(l16[rh], sl[rh]),
                                                                       _mm256_madd_epi16(h16[rh], sh[rh])));
                OPAQUE_V(sumi[rh]);
            }
        }
    }
}

// Decode, one super-block of 16 rows against one activation super-block; prefetch group by group.
INLINE void r16k_q45k_sb1(const uint8_t *p, const blk_q8_K *xb, __m256 acc[2], uintptr_t *pf, uintptr_t end,
                          const int q5) {
    const int32_t *q = (const int32_t *)xb->qs;
    const uint8_t *sc = p + (q5 ? R16_Q5K_SC : R16_Q4K_SC);
    const size_t gb = (q5 ? R16_Q5K_SB : R16_Q4K_SB) / 4;
    _Alignas(32) uint8_t u[256];
    int32_t bp[4];
    q4k_unpack(sc, u);
    q8k_bspairs(xb, bp);
    __m256i sumi[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        r16_pf_to(pf, (uintptr_t)p + gb * (size_t)(g + 1) + R16_AVX2_PF_AHEAD, end);
        const uint8_t *pg = p;
        OPAQUE_P(pg);   // (a new pointer per group: gcc would keep the fifth-bit loads of all groups live)
        r16k_q45k_group1(pg, g, q + 16 * g, u, sumi, q5);
    }
    for (int rh = 0; rh < 2; rh++) acc[rh] = q4k_finish8(sc + 192, rh, sumi[rh], q4k_summ8(u, bp, rh), xb->d, acc[rh]);
}

// Decode over np consecutive panels (one linear stream).
INLINE void r16k_dec_q45k(const uint8_t *p, int64_t np, int64_t K, const blk_q8_K *x, float *out, size_t pf_bytes,
                          const int q5) {
    const size_t sbb = q5 ? R16_Q5K_SB : R16_Q4K_SB;
    R16_AVX2_DEC(np, K, p, x, out, pf_bytes, sbb, r16k_q45k_sb1(p, x + s_, acc_, &pf_, end_, q5));
}

// Prefill: per super-block, sub-block k and row half, the 8 level registers stay live while each of the
// TT activation rows adds its 8 products and scales the sub-block's sum; the mins and the float steps
// once per (super-block, row).
INLINE void r16k_q45k_tile(const uint8_t *panel, int64_t K, const void *x, size_t xs, const int TT, float *y,
                           size_t ldy, int nvalid, const float *bias, int accum, const int q5) {
    const size_t sbb = q5 ? R16_Q5K_SB : R16_Q4K_SB;
    const blk_q8_K *xr[MM_TILE_T];
    __m256 acc[MM_TILE_T][2];
    tile_begin(x, xs, TT, xr, acc);
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = panel + sb * sbb, *sc = p + (q5 ? R16_Q5K_SC : R16_Q4K_SC);
        _Alignas(32) uint8_t u[256];
        __m256i sumi[MM_TILE_T][2];
        q4k_unpack(sc, u);
        for (int r = 0; r < TT; r++) sumi[r][0] = sumi[r][1] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
#pragma GCC unroll 2
            for (int rh = 0; rh < 2; rh++) {
                __m256i w[8];
                const uint8_t *pk = p;
                OPAQUE_P(pk);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    __m256i lo, hi;
                    q45k_lv(pk, k / 2, j, rh, q5, &lo, &hi);   // (the unused set is dead code)
                    w[j] = k & 1 ? hi : lo;
                }
                __m256i s = dup_u8(u + 16 * k, rh);
                for (int r = 0; r < TT; r++) {
                    const int32_t *q = (const int32_t *)xr[r][sb].qs + 8 * k;
                    __m256i a = add16(mul16(w[0], bq(q, 0)), mul16(w[1], bq(q, 1)));
                    __m256i b = add16(mul16(w[4], bq(q, 4)), mul16(w[5], bq(q, 5)));
                    a = add16(a, add16(mul16(w[2], bq(q, 2)), mul16(w[3], bq(q, 3))));
                    b = add16(b, add16(mul16(w[6], bq(q, 6)), mul16(w[7], bq(q, 7))));
                    __m256i t = q5 ? _mm256_add_epi32(_mm256_madd_epi16(a, s), _mm256_madd_epi16(b, s))
                                   : _mm256_madd_epi16(add16(a, b), s);
                    sumi[r][rh] = _mm256_add_epi32(sumi[r][rh], t);
                }
            }
        for (int r = 0; r < TT; r++) {
            int32_t bp[4];
            q8k_bspairs(&xr[r][sb], bp);
            for (int rh = 0; rh < 2; rh++)
                acc[r][rh] = q4k_finish8(sc + 192, rh, sumi[r][rh], q4k_summ8(u, bp, rh), xr[r][sb].d, acc[r][rh]);
        }
    }
    tile_store8((const __m256(*)[2])acc, TT, y, ldy, nvalid, bias, accum);
}

// ---------------------------------------------------------------- Q6_K
// sumi = sum_k sc_k * (dot_k - 32 * bsum_k) per row, as sum_k sc_k * dot_k - 32 * sum_k sc_k * bsum_k
// (the same int32; the AVX-512 kernels seed each sub-block's chain with -32 * bsum_k instead).

// Set c (0..3) of the true 6-bit levels of word j of half H (v = p + 1536H + 192j + 32rh): sets 0..2 are
// the low 6 bits of registers 0..2, set 3 their top 2 bits (bits 0-1 from register 0, 2-3 from 1, 4-5 from 2).
INLINE __m256i q6k_set(const uint8_t *v, const int c) {
    const __m256i m3F = _mm256_set1_epi8(0x3F);
    if (c < 3) return _mm256_and_si256(ld(v, (size_t)(64 * c)), m3F);
    __m256i a = _mm256_and_si256(_mm256_srli_epi16(ld(v, 0), 6), _mm256_set1_epi8(0x03));
    __m256i b = _mm256_and_si256(_mm256_srli_epi16(ld(v, 64), 4), _mm256_set1_epi8(0x0C));
    __m256i d = _mm256_and_si256(_mm256_srli_epi16(ld(v, 128), 2), _mm256_set1_epi8(0x30));
    return _mm256_or_si256(_mm256_or_si256(a, b), d);
}

// The int8 scales of a super-block as duplicated int16 pairs: scd[2k + rh] for sub-block k, row half rh.
INLINE void q6k_dup_scales(const uint8_t *p, __m256i *scd) {
    for (int k = 0; k < 16; k++) {
        __m128i a = ld16(p, (size_t)(R16_Q6K_SC + 16 * k));
        scd[2 * k] = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, a));
        scd[2 * k + 1] = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, a));
    }
}
// The activations' 16-element sums duplicated as int16 pairs: bd[k] = (bsums[k], bsums[k]).
INLINE void q6k_bsdup(const blk_q8_K *xb, int32_t *bd) {
    const uint8_t *b = (const uint8_t *)xb->bsums;
    __m128i a = ld16(b, 0), c = ld16(b, 16);
    _mm_storeu_si128((__m128i *)bd, _mm_unpacklo_epi16(a, a));
    _mm_storeu_si128((__m128i *)(bd + 4), _mm_unpackhi_epi16(a, a));
    _mm_storeu_si128((__m128i *)(bd + 8), _mm_unpacklo_epi16(c, c));
    _mm_storeu_si128((__m128i *)(bd + 12), _mm_unpackhi_epi16(c, c));
}
// The level offset's term of both row halves: o[rh] = 32 * sum_k sc_k * bsum_k (vpmaddwd gives 2 sc bsum).
INLINE void q6k_offset(const __m256i *scd, const int32_t *bd, __m256i o[2]) {
    __m256i a = _mm256_setzero_si256(), b = a;
    for (int k = 0; k < 16; k++) {
        __m256i v = _mm256_set1_epi32(bd[k]);
        a = _mm256_add_epi32(a, _mm256_madd_epi16(scd[2 * k], v));
        b = _mm256_add_epi32(b, _mm256_madd_epi16(scd[2 * k + 1], v));
        OPAQUE_V(a);
        OPAQUE_V(b);
    }
    o[0] = _mm256_slli_epi32(a, 4);
    o[1] = _mm256_slli_epi32(b, 4);
}
// The float step that ends a super-block for rows 8rh..
INLINE __m256 q6k_finish8(const uint8_t *p, const int rh, __m256i sumi, float dx, __m256 acc) {
    __m256 d = _mm256_cvtph_ps(ld16(p, (size_t)(R16_Q6K_D + 16 * rh)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, _mm256_set1_ps(dx)), acc);
}

// Decode, half H of a super-block for row half rh: per word the four sets' products, summed in int16
// over word pairs and scaled by their sub-block's scale (sub-block 8H + 2c + j / 4).
INLINE __m256i r16k_q6k_half1(const uint8_t *p, const int H, const int rh, const int32_t *q, const __m256i *scd) {
    __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int jp = 0; jp < 4; jp++) {
        const uint8_t *v0 = p + 1536 * H + 192 * (2 * jp) + 32 * rh, *v1 = v0 + 192;
        __m256i t[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            t[c] = add16(mul16(q6k_set(v0, c), bq(q, 32 * H + 8 * c + 2 * jp)),
                         mul16(q6k_set(v1, c), bq(q, 32 * H + 8 * c + 2 * jp + 1)));
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            s = _mm256_add_epi32(s, _mm256_madd_epi16(t[c], scd[2 * (8 * H + 2 * c + jp / 2) + rh]));
            OPAQUE_V(s);
        }
    }
    return s;
}

// Decode, one super-block against one activation super-block: row half 0 streams it in (prefetching
// ahead), row half 1 reads it again from L1.
INLINE void r16k_q6k_sb1(const uint8_t *p, const blk_q8_K *xb, __m256 acc[2], uintptr_t *pf, uintptr_t end) {
    const int32_t *q = (const int32_t *)xb->qs;
    __m256i scd[32];
    int32_t bd[16];
    q6k_dup_scales(p, scd);
    q6k_bsdup(xb, bd);
    __m256i o[2];
    q6k_offset(scd, bd, o);
#pragma GCC unroll 2
    for (int rh = 0; rh < 2; rh++) {
        __m256i s = _mm256_setzero_si256();
        const int32_t *qq = q;
        OPAQUE_P(qq);
#pragma GCC unroll 2
        for (int H = 0; H < 2; H++) {
            r16_pf_to(pf, (uintptr_t)p + 1536 * (size_t)(H + 1) + R16_AVX2_PF_AHEAD, end);
            s = _mm256_add_epi32(s, r16k_q6k_half1(p, H, rh, qq, scd));
        }
        acc[rh] = q6k_finish8(p, rh, _mm256_sub_epi32(s, o[rh]), xb->d, acc[rh]);
    }
    r16_pf_to(pf, (uintptr_t)p + R16_Q6K_SB + R16_AVX2_PF_AHEAD, end);
}

static void r16k_dec_q6k(const uint8_t *p, int64_t np, int64_t K, const blk_q8_K *x, float *out, size_t pf_bytes) {
    R16_AVX2_DEC(np, K, p, x, out, pf_bytes, R16_Q6K_SB, r16k_q6k_sb1(p, x + s_, acc_, &pf_, end_));
}

// Prefill: per (half H, set c, row half) the 8 level registers (two sub-blocks) stay live while each
// activation row adds its products; the offset term and the float step once per (super-block, row).
INLINE void r16k_q6k_tile(const uint8_t *panel, int64_t K, const void *x, size_t xs, const int TT, float *y,
                          size_t ldy, int nvalid, const float *bias, int accum) {
    const blk_q8_K *xr[MM_TILE_T];
    __m256 acc[MM_TILE_T][2];
    tile_begin(x, xs, TT, xr, acc);
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = panel + sb * R16_Q6K_SB;
        __m256i scd[32], sumi[MM_TILE_T][2];
        q6k_dup_scales(p, scd);
        for (int r = 0; r < TT; r++) sumi[r][0] = sumi[r][1] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int H = 0; H < 2; H++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
#pragma GCC unroll 2
                for (int rh = 0; rh < 2; rh++) {
                    __m256i w[8];
                    const uint8_t *pc = p + 1536 * H + 32 * rh;
                    OPAQUE_P(pc);
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) w[j] = q6k_set(pc + 192 * j, c);
                    const int k0 = 8 * H + 2 * c;   // the two sub-blocks: words 0..3, 4..7
                    const __m256i s0 = scd[2 * k0 + rh], s1 = scd[2 * k0 + 2 + rh];
                    for (int r = 0; r < TT; r++) {
                        const int32_t *q = (const int32_t *)xr[r][sb].qs + 32 * H + 8 * c;
                        __m256i a = add16(mul16(w[0], bq(q, 0)), mul16(w[1], bq(q, 1)));
                        __m256i b = add16(mul16(w[2], bq(q, 2)), mul16(w[3], bq(q, 3)));
                        __m256i e = add16(mul16(w[4], bq(q, 4)), mul16(w[5], bq(q, 5)));
                        __m256i f = add16(mul16(w[6], bq(q, 6)), mul16(w[7], bq(q, 7)));
                        __m256i t = _mm256_add_epi32(_mm256_madd_epi16(a, s0), _mm256_madd_epi16(b, s0));
                        t = _mm256_add_epi32(t, _mm256_add_epi32(_mm256_madd_epi16(e, s1), _mm256_madd_epi16(f, s1)));
                        sumi[r][rh] = _mm256_add_epi32(sumi[r][rh], t);
                    }
                }
        for (int r = 0; r < TT; r++) {
            int32_t bd[16];
            __m256i o[2];
            q6k_bsdup(&xr[r][sb], bd);
            q6k_offset(scd, bd, o);
            for (int rh = 0; rh < 2; rh++)
                acc[r][rh] = q6k_finish8(p, rh, _mm256_sub_epi32(sumi[r][rh], o[rh]), xr[r][sb].d, acc[r][rh]);
        }
    }
    tile_store8((const __m256(*)[2])acc, TT, y, ldy, nvalid, bias, accum);
}

// ---------------------------------------------------------------- entry points

void mm_r16k_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                       size_t ldy, int nvalid, const float *bias, int acc) {
    if (TT < 1) return;
    if (TT > MM_TILE_T) TT = MM_TILE_T;   // (the contract; the row arrays hold MM_TILE_T)
    if (t == DT_Q4_K) r16k_q45k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 0);
    else if (t == DT_Q5_K) r16k_q45k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 1);
    else if (t == DT_Q6_K) r16k_q6k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc);
}

void mm_r16k_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes) {
    if (t == DT_Q4_K) r16k_dec_q45k(panels, np, K, x, out, pf_bytes, 0);
    else if (t == DT_Q5_K) r16k_dec_q45k(panels, np, K, x, out, pf_bytes, 1);
    else if (t == DT_Q6_K) r16k_dec_q6k(panels, np, K, x, out, pf_bytes);
}
