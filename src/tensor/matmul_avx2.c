// AVX2 + FMA + F16C dot kernels (256-bit). matmul_avx512.c includes this file a second time with
// MM_AVX512 defined: the same kernels then use the VNNI forms (vpdpbusd / vpdpwssd) of the integer dot
// products, and it adds 512-bit kernels of its own. Each kernel handles R = 1..4 activation rows per
// weight row (R is a compile-time constant in each instantiation so accumulators live in registers).
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include <immintrin.h>
#include <string.h>

#ifdef MM_AVX512
#define SFX(name) name##_avx512
#else
#define SFX(name) name##_avx2
#endif
#define INLINE static inline __attribute__((always_inline))
#define XROW(x, xs, r) ((const void *)((const char *)(x) + (size_t)(r) * (xs)))

INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
INLINE int hsum256_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }
// Software prefetch distance (bytes) along the weight stream: decode is otherwise compute-then-wait,
// with memory and arithmetic barely overlapping on one core.
#define PF_DIST 2048
#define PREFETCH(p) _mm_prefetch((const char *)(p) + PF_DIST, _MM_HINT_T0)

// acc + sum over groups of 4 of u8 * s8 products, into 8 int32 lanes.
INLINE __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#ifdef MM_AVX512
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
// acc + pairwise int16 products (scaling 16-bit partial sums by 16-bit scales).
INLINE __m256i dot_i16(__m256i acc, __m256i a, __m256i b) {
#ifdef MM_AVX512
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}
// 32 nibbles of 16 bytes: low nibbles in bytes 0..15, high nibbles in 16..31 (the legacy block order).
INLINE __m256i nibbles32(const uint8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}
// The 16 IQ4 levels (tensor/quant.h) in both 128-bit lanes, and the signed levels of 32 elements from
// 16 bytes of nibbles (low nibbles first) by one byte-table lookup of each nibble.
INLINE __m256i iq4_table(void) {
    __m128i t = _mm_loadu_si128((const __m128i *)iq4_levels);
    return _mm256_set_m128i(t, t);
}
INLINE __m256i iq4_levels32(const uint8_t *qs, __m256i tab) { return _mm256_shuffle_epi8(tab, nibbles32(qs)); }
// 32 bits -> 32 bytes of 0x10 where the bit is set (the 5th bit of Q5 levels).
INLINE __m256i bits_to_0x10(uint32_t bits) {
    __m256i v = _mm256_set1_epi32((int)bits);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    v = _mm256_shuffle_epi8(v, shuf);
    const __m256i bitm = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bitm), bitm);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// ---------------------------------------------------------------- f32 / f16 / bf16 weights
INLINE __m256 load_w8(const void *w, int64_t k, int kind) {
    if (kind == 0) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (kind == 1) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
INLINE float w_scalar(const void *w, int64_t k, int kind) {
    if (kind == 0) return ((const float *)w)[k];
    uint16_t h = ((const uint16_t *)w)[k];
    if (kind == 1) return h2f(h);
    uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f;
}
INLINE void kf(int64_t K, const void *w, const void *x, size_t xs, const int R, float *out, const int kind) {
    __m256 a0[4], a1[4];
    const float *xr[4];
    for (int r = 0; r < R; r++) { a0[r] = _mm256_setzero_ps(); a1[r] = _mm256_setzero_ps(); xr[r] = XROW(x, xs, r); }
    int64_t k = 0;
    const size_t esz = kind == 0 ? 4 : 2;
    for (; k + 16 <= K; k += 16) {
        PREFETCH((const char *)w + k * esz);
        if (kind == 0) PREFETCH((const char *)w + k * esz + 32);
        __m256 w0 = load_w8(w, k, kind), w1 = load_w8(w, k + 8, kind);
        for (int r = 0; r < R; r++) {
            a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr[r] + k), a0[r]);
            a1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr[r] + k + 8), a1[r]);
        }
    }
    for (; k + 8 <= K; k += 8) {
        __m256 w0 = load_w8(w, k, kind);
        for (int r = 0; r < R; r++) a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr[r] + k), a0[r]);
    }
    for (int r = 0; r < R; r++) {
        float s = hsum256(_mm256_add_ps(a0[r], a1[r]));
        for (int64_t kk = k; kk < K; kk++) s += w_scalar(w, kk, kind) * xr[r][kk];
        out[r] = s;
    }
}

// ---------------------------------------------------------------- grid types (IQ1 / IQ2 / IQ3) x blk_q8_K
// Per 32 values: the grid magnitudes (unsigned) gathered by index into a register and the weights'
// signs as bytes of +-1 (iq_tabs.kpm8, or pm32 from sign bytes), moved onto the activations (vpsignb:
// the activations of a Q8_K block lie in [-127, 127], quantize_row's scale being -127 / max, so there is
// no -128 to negate), then vpmaddubsw (a pair sum is at most 2 x 62 x 127) and the 16-value scales by
// vpmaddwd / vpdpwssd. IQ1's signed levels 8 g +- 1 are built in the register too and give |level|
// and their own signs. The integer sums are the twin's (matmul.c dot_grid, on iq_grid_levels' levels),
// and so is the float step per (super-block, row): the bits are the twin's. Unrolled over the 8 groups
// of a super-block: IQ2_XXS 18 -> 21 GMAC/s a thread.
INLINE uint16_t rd16u(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
INLINE uint32_t rd32u(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
INLINE __m256i pm4(const uint64_t *tab, uint32_t i0, uint32_t i1, uint32_t i2, uint32_t i3) {
    return _mm256_set_epi64x((long long)tab[i3], (long long)tab[i2], (long long)tab[i1], (long long)tab[i0]);
}

// 32 sign bits (bit j of byte k: value 8 k + j) as bytes of +-1: each byte picks its sign byte (one
// shuffle) and tests its bit.
INLINE __m256i pm32(uint32_t bits) {
    const __m256i sel = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), sel), bit);
    return _mm256_or_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(1));
}

// Magnitudes *g and signs *s of values 32 ib .. 32 ib + 31 of super-block b (t a constant in each
// instantiation), their two 16-value scales into ls.
INLINE void grid32(const dtype t, const uint8_t *b, int ib, __m256i *g, __m256i *s, int16_t *ls) {
    const iq_tables *T = &iq_tabs;
    switch (t) {
    case DT_IQ2_XXS: {
        const uint8_t *q = b + 2 + 8 * ib;
        uint32_t w = rd32u(q + 4);
        ls[0] = ls[1] = (int16_t)(2 * (w >> 28) + 1);
        *g = pm4(T->iq2xxs, q[0], q[1], q[2], q[3]);
        *s = pm4(T->kpm8, w & 127, (w >> 7) & 127, (w >> 14) & 127, (w >> 21) & 127);
        return;
    }
    case DT_IQ2_XS: {
        const uint8_t *sc = b + 2 + 64, *q = b + 2 + 8 * ib;
        ls[0] = (int16_t)(2 * (sc[ib] & 15) + 1);
        ls[1] = (int16_t)(2 * (sc[ib] >> 4) + 1);
        uint32_t w0 = rd16u(q), w1 = rd16u(q + 2), w2 = rd16u(q + 4), w3 = rd16u(q + 6);
        *g = pm4(T->iq2xs, w0 & 511, w1 & 511, w2 & 511, w3 & 511);
        *s = pm4(T->kpm8, w0 >> 9, w1 >> 9, w2 >> 9, w3 >> 9);
        return;
    }
    case DT_IQ2_S: {
        const uint8_t *qs = b + 2 + 4 * ib, *sg = b + 2 + 32 + 4 * ib, *sc = b + 2 + 72;
        ls[0] = (int16_t)(2 * (sc[ib] & 15) + 1);
        ls[1] = (int16_t)(2 * (sc[ib] >> 4) + 1);
        uint32_t h = b[2 + 64 + ib];   // (index bits 8-9 of row l: bits 2l, 2l + 1 of qh)
        *g = pm4(T->iq2s, qs[0] | ((h << 8) & 0x300), qs[1] | ((h << 6) & 0x300), qs[2] | ((h << 4) & 0x300),
                 qs[3] | ((h << 2) & 0x300));
        *s = pm32(rd32u(sg));
        return;
    }
    case DT_IQ3_XXS: {
        const uint8_t *q = b + 2 + 8 * ib;
        uint32_t w = rd32u(b + 2 + 64 + 4 * ib);
        ls[0] = ls[1] = (int16_t)(2 * (w >> 28) + 1);
        const uint32_t *G = T->iq3xxs;
        *g = _mm256_set_epi32((int)G[q[7]], (int)G[q[6]], (int)G[q[5]], (int)G[q[4]], (int)G[q[3]], (int)G[q[2]],
                              (int)G[q[1]], (int)G[q[0]]);
        *s = pm4(T->kpm8, w & 127, (w >> 7) & 127, (w >> 14) & 127, (w >> 21) & 127);
        return;
    }
    case DT_IQ1_S: case DT_IQ1_M: {   // levels 8 g + ds, ds the delta's sign (per 32 / per 8 values)
        const uint64_t one = 0x0101010101010101ull, neg = ~0ull;
        uint32_t i0, i1, i2, i3;
        uint64_t d0, d1, d2, d3;
        if (t == DT_IQ1_S) {
            const uint8_t *qs = b + 2 + 4 * ib;
            uint32_t h = rd16u(b + 2 + 32 + 2 * ib);
            ls[0] = ls[1] = (int16_t)(2 * ((h >> 12) & 7) + 1);
            i0 = qs[0] | (h & 7) << 8; i1 = qs[1] | ((h >> 3) & 7) << 8;
            i2 = qs[2] | ((h >> 6) & 7) << 8; i3 = qs[3] | ((h >> 9) & 7) << 8;
            d0 = d1 = d2 = d3 = h & 0x8000 ? neg : one;
        } else {
            const uint8_t *qs = b + 4 * ib, *h = b + 32 + 2 * ib;
            uint32_t sc = rd16u(b + 48 + 2 * (ib / 2)) >> (6 * (ib % 2));
            ls[0] = (int16_t)(2 * (sc & 7) + 1);
            ls[1] = (int16_t)(2 * ((sc >> 3) & 7) + 1);
            i0 = qs[0] | ((h[0] << 8) & 0x700); i1 = qs[1] | ((h[0] << 4) & 0x700);
            i2 = qs[2] | ((h[1] << 8) & 0x700); i3 = qs[3] | ((h[1] << 4) & 0x700);
            d0 = h[0] & 0x08 ? neg : one; d1 = h[0] & 0x80 ? neg : one;
            d2 = h[1] & 0x08 ? neg : one; d3 = h[1] & 0x80 ? neg : one;
        }
        __m256i r = pm4(T->iq1s, i0, i1, i2, i3), g2 = _mm256_add_epi8(r, r), g4 = _mm256_add_epi8(g2, g2);
        __m256i lv = _mm256_add_epi8(_mm256_add_epi8(g4, g4),
                                     _mm256_set_epi64x((long long)d3, (long long)d2, (long long)d1, (long long)d0));
        *g = _mm256_abs_epi8(lv);   // (never 0: 8 g +- 1 is odd)
        *s = lv;
        return;
    }
    default: {   // DT_IQ3_S
        const uint8_t *q = b + 2 + 8 * ib, *sg = b + 2 + 72 + 4 * ib, *sc = b + 2 + 104;
        int h = b[2 + 64 + ib], sv = ib % 2 ? sc[ib / 2] >> 4 : sc[ib / 2] & 15;
        ls[0] = ls[1] = (int16_t)(2 * sv + 1);
        const uint32_t *G = T->iq3s;   // (index bit 8 of row k: bit k of qh, shifted to 256)
        *g = _mm256_set_epi32((int)G[q[7] | ((h << 1) & 256)], (int)G[q[6] | ((h << 2) & 256)],
                              (int)G[q[5] | ((h << 3) & 256)], (int)G[q[4] | ((h << 4) & 256)],
                              (int)G[q[3] | ((h << 5) & 256)], (int)G[q[2] | ((h << 6) & 256)],
                              (int)G[q[1] | ((h << 7) & 256)], (int)G[q[0] | ((h << 8) & 256)]);
        *s = pm32(rd32u(sg));
        return;
    }
    }
}

// The decode product over R activation rows (R a constant in each instantiation: 1, or up to 4).
INLINE void grid_dot_r(const dtype t, int64_t K, const void *w, const void *x, size_t xs, const int R, float *out) {
    size_t bb = (size_t)dtype_get((int)t)->block_bytes;
    const bool per16 = t == DT_IQ2_XS || t == DT_IQ2_S || t == DT_IQ1_M;
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t b = 0; b < K / 256; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * bb;
        int16_t ls[16];
        float D = h2f(iq_grid_dbits(t, blk)) * iq_grid_c(t);
        __m256i acc[4];
        for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            __m256i g, sg;
            grid32(t, blk, c, &g, &sg, ls + 2 * c);
            __m256i sc = per16 ? _mm256_set_m128i(_mm_set1_epi16(ls[2 * c + 1]), _mm_set1_epi16(ls[2 * c]))
                               : _mm256_set1_epi16(ls[2 * c]);
            for (int r = 0; r < R; r++) {
                const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + b;
                __m256i q = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xb->qs + 32 * c)), sg);
                acc[r] = dot_i16(acc[r], _mm256_maddubs_epi16(g, q), sc);
            }
        }
        for (int r = 0; r < R; r++) {
            const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + b;
            float p = D * xb->d * (float)hsum256_i32(acc[r]);   // (two statements: no fused multiply-add,
            out[r] += p;                                        // which clang would form and the twin lacks)
        }
    }
}
INLINE void grid_dot(const dtype t, int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    if (R == 1) grid_dot_r(t, K, w, x, xs, 1, out);
    else grid_dot_r(t, K, w, x, xs, R, out);
}
#define DOT_GRID(name, T)                                                                          \
    static void SFX(name)(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) { \
        grid_dot(T, K, w, x, xs, R, out);                                                          \
    }
DOT_GRID(dot_iq2_xxs, DT_IQ2_XXS)
DOT_GRID(dot_iq2_xs, DT_IQ2_XS)
DOT_GRID(dot_iq2_s, DT_IQ2_S)
DOT_GRID(dot_iq3_xxs, DT_IQ3_XXS)
DOT_GRID(dot_iq3_s, DT_IQ3_S)
DOT_GRID(dot_iq1_s, DT_IQ1_S)
DOT_GRID(dot_iq1_m, DT_IQ1_M)

// ---------------------------------------------------------------- 32-block quants x blk_q8a
// Block b, row r: dw*dx*(sum(q*xq) - off*sum(xq)) + m*s, q the 0-based levels. The integer offset is
// folded into the dot product by seeding its 8 lanes with -off/8 * sum(xq); only the stored f32 min
// of Q4_1/Q5_1 needs a scalar term. Blocks alternate between two accumulator sets so consecutive FMAs
// do not wait on each other (the FMA latency otherwise bounds decode).
INLINE void q32_block(const void *w, int64_t i, const blk_q8a *const *xb, const int R, __m256 *acc, float *corr,
                      const dtype t) {
    __m256i q;
    float dw, m = 0;
    int off8 = 0;   // offset / 8, subtracted per lane
    if (t == DT_Q4_0) {
        const blk_q4_0 *b = (const blk_q4_0 *)w + i;
        dw = h2f(b->d); off8 = 1; q = nibbles32(b->qs);
    } else if (t == DT_Q4_1) {
        const blk_q4_1 *b = (const blk_q4_1 *)w + i;
        dw = h2f(b->d); m = h2f(b->m); q = nibbles32(b->qs);
    } else if (t == DT_Q5_0) {
        const blk_q5_0 *b = (const blk_q5_0 *)w + i;
        uint32_t qh; memcpy(&qh, b->qh, 4);
        dw = h2f(b->d); off8 = 2; q = _mm256_or_si256(nibbles32(b->qs), bits_to_0x10(qh));
    } else if (t == DT_Q5_1) {
        const blk_q5_1 *b = (const blk_q5_1 *)w + i;
        uint32_t qh; memcpy(&qh, b->qh, 4);
        dw = h2f(b->d); m = h2f(b->m); q = _mm256_or_si256(nibbles32(b->qs), bits_to_0x10(qh));
    } else if (t == DT_IQ4_NL) {
        const blk_iq4_nl *b = (const blk_iq4_nl *)w + i;
        dw = h2f(b->d); q = iq4_levels32(b->qs, iq4_table());
    } else {   // Q8_0
        const blk_q8_0 *b = (const blk_q8_0 *)w + i;
        dw = h2f(b->d); q = _mm256_loadu_si256((const __m256i *)b->qs);
    }
    if (t == DT_Q8_0 || t == DT_IQ4_NL) {   // signed levels (|w| <= 127): |w| * sign(x, w), no offset
        __m256i aq = _mm256_sign_epi8(q, q);
        for (int r = 0; r < R; r++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)xb[r][i].qs);
            __m256i p = dot_u8s8(_mm256_setzero_si256(), aq, _mm256_sign_epi8(xv, q));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xb[r][i].d), acc[r]);
        }
    } else {
        for (int r = 0; r < R; r++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)xb[r][i].qs);
            __m256i seed = off8 ? _mm256_set1_epi32(-off8 * xb[r][i].sum) : _mm256_setzero_si256();
            __m256i p = dot_u8s8(seed, q, xv);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xb[r][i].d), acc[r]);
            if (t == DT_Q4_1 || t == DT_Q5_1) corr[r] += m * xb[r][i].s;
        }
    }
}

INLINE void kq32(int64_t K, const void *w, const void *x, size_t xs, const int R, float *out, const dtype t) {
    __m256 acc0[4], acc1[4];
    float corr[4];
    const blk_q8a *xb[4];
    for (int r = 0; r < R; r++) {
        acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); corr[r] = 0; xb[r] = XROW(x, xs, r);
    }
    const int64_t nb = K / 32;
    int64_t i = 0;
    const size_t bb = t == DT_Q4_0 ? sizeof(blk_q4_0) : t == DT_Q4_1 ? sizeof(blk_q4_1) : t == DT_Q5_0 ? sizeof(blk_q5_0)
                    : t == DT_Q5_1 ? sizeof(blk_q5_1) : t == DT_IQ4_NL ? sizeof(blk_iq4_nl) : sizeof(blk_q8_0);
    for (; i + 2 <= nb; i += 2) {
        PREFETCH((const char *)w + i * bb);
        if (t == DT_Q8_0) PREFETCH((const char *)w + i * bb + 64);
        q32_block(w, i, xb, R, acc0, corr, t);
        q32_block(w, i + 1, xb, R, acc1, corr, t);
    }
    if (i < nb) q32_block(w, i, xb, R, acc0, corr, t);
    for (int r = 0; r < R; r++) out[r] = hsum256(_mm256_add_ps(acc0[r], acc1[r])) + corr[r];
}

// ---------------------------------------------------------------- K-quants x blk_q8_K
// Unpacks the 8 6-bit scales and mins of a Q4_K/Q5_K super-block into bytes.
INLINE void kq_scales(const uint8_t s12[12], uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u[3], a[2], b[2];
    memcpy(u, s12, 12);
    a[0] = u[0] & 0x3f3f3f3f;
    a[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 2) & 0x30303030);
    b[0] = u[1] & 0x3f3f3f3f;
    b[1] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 2) & 0x30303030);
    memcpy(sc, a, 8);
    memcpy(mn, b, 8);
}

// Q4_K (t == DT_Q4_K) and Q5_K: per pair of sub-blocks, 32 bytes of nibbles (+ 32 bytes of high bits).
INLINE void kq45k(int64_t K, const void *w, const void *x, size_t xs, const int R, float *out, const dtype t) {
    __m256 acc[4];
    float corr[4];
    const blk_q8_K *xb[4];
    for (int r = 0; r < R; r++) { acc[r] = _mm256_setzero_ps(); corr[r] = 0; xb[r] = XROW(x, xs, r); }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < K / 256; i++) {
        const uint8_t *qs, *s12, *qhp = NULL;
        float d, dmin;
        if (t == DT_Q4_K) {
            const blk_q4_K *b = (const blk_q4_K *)w + i;
            qs = b->qs; s12 = b->scales; d = h2f(b->d); dmin = h2f(b->dmin);
            PREFETCH(b); PREFETCH((const char *)b + 64); PREFETCH((const char *)b + 128);
        } else {
            const blk_q5_K *b = (const blk_q5_K *)w + i;
            qs = b->qs; s12 = b->scales; d = h2f(b->d); dmin = h2f(b->dmin); qhp = b->qh;
            PREFETCH(b); PREFETCH((const char *)b + 64); PREFETCH((const char *)b + 128);
        }
        uint8_t sc[8], mn[8];
        kq_scales(s12, sc, mn);
        // mins . (pair sums of bsums) via one madd: mins duplicated per 16-element half
        __m128i mn8 = _mm_loadl_epi64((const __m128i *)mn);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
        __m256i sumi[4], sumh[4];
        for (int r = 0; r < R; r++) {
            sumi[r] = _mm256_setzero_si256();
            sumh[r] = _mm256_setzero_si256();
            __m256i bs = _mm256_loadu_si256((const __m256i *)xb[r][i].bsums);
            int summ = hsum256_i32(_mm256_madd_epi16(bs, mn16));
            corr[r] -= dmin * xb[r][i].d * (float)summ;
        }
        __m256i hb = qhp ? _mm256_loadu_si256((const __m256i *)qhp) : _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(raw, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if (t == DT_Q5_K) {
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            __m256i s_lo = _mm256_set1_epi16(sc[2 * j]), s_hi = _mm256_set1_epi16(sc[2 * j + 1]);
            for (int r = 0; r < R; r++) {
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(xb[r][i].qs + 64 * j));
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb[r][i].qs + 64 * j + 32));
                sumi[r] = dot_i16(sumi[r], _mm256_maddubs_epi16(lo, x0), s_lo);
                sumh[r] = dot_i16(sumh[r], _mm256_maddubs_epi16(hi, x1), s_hi);
            }
        }
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sumi[r], sumh[r])),
                                     _mm256_set1_ps(d * xb[r][i].d), acc[r]);
    }
    for (int r = 0; r < R; r++) out[r] = hsum256(acc[r]) + corr[r];
}

INLINE void kq6k(int64_t K, const void *w, const void *x, size_t xs, const int R, float *out) {
    __m256 acc[4];
    const blk_q8_K *xb[4];
    for (int r = 0; r < R; r++) { acc[r] = _mm256_setzero_ps(); xb[r] = XROW(x, xs, r); }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < K / 256; i++) {
        const blk_q6_K *b = (const blk_q6_K *)w + i;
        PREFETCH(b); PREFETCH((const char *)b + 64); PREFETCH((const char *)b + 128); PREFETCH((const char *)b + 192);
        float d = h2f(b->d);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        __m256i sumi[4], sumh[4];
        for (int r = 0; r < R; r++) {
            sumh[r] = _mm256_setzero_si256();
            // the -32 offset: 32 * sum_j sc_j * bsums_j, subtracted in integers
            __m256i bs = _mm256_loadu_si256((const __m256i *)xb[r][i].bsums);
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        }
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
            for (int g = 0; g < 4; g++) {
                int s0 = b->scales[8 * h + 2 * g], s1 = b->scales[8 * h + 2 * g + 1];
                __m256i sv = _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
                for (int r = 0; r < R; r++) {
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[r][i].qs + 128 * h + 32 * g));
                    if (g & 1) sumh[r] = dot_i16(sumh[r], _mm256_maddubs_epi16(q[g], xv), sv);
                    else sumi[r] = dot_i16(sumi[r], _mm256_maddubs_epi16(q[g], xv), sv);
                }
            }
        }
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sumi[r], sumh[r])),
                                     _mm256_set1_ps(d * xb[r][i].d), acc[r]);
    }
    for (int r = 0; r < R; r++) out[r] = hsum256(acc[r]);
}

// The 16 scales of a Q3_K super-block minus 32 as int16 (q3k_scale's unpacking, 12 bytes read).
INLINE __m256i q3k_scales16(const uint8_t *s) {
    uint32_t h;
    memcpy(&h, s + 8, 4);
    __m128i lo8 = _mm_loadl_epi64((const __m128i *)s), m4 = _mm_set1_epi8(0x0F);
    __m128i low = _mm_unpacklo_epi64(_mm_and_si128(lo8, m4), _mm_and_si128(_mm_srli_epi16(lo8, 4), m4));
    const uint32_t m3 = 0x03030303u;
    __m128i high = _mm_set_epi32((int)((h >> 6) & m3), (int)((h >> 4) & m3), (int)((h >> 2) & m3), (int)(h & m3));
    __m128i v = _mm_or_si128(low, _mm_slli_epi16(high, 4));   // high < 4: no carry across bytes
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), _mm256_set1_epi16(32));
}

// Levels of 32-element chunk c (0..7) of a Q2_K / Q3_K super-block, elements 32c.. (q2k_low / q3k_hbit):
// a shift and mask of the 32 qs bytes of its half; Q3_K adds 4x its hmask bit (levels 0..7 = q + 4).
INLINE __m256i q23k_chunk(const uint8_t *qs, __m256i hmask, int c, int q3) {
    __m256i Q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 4)));
    __m256i lv = _mm256_and_si256(_mm256_srli_epi16(Q, 2 * (c % 4)), _mm256_set1_epi8(3));
    if (q3) lv = _mm256_add_epi8(lv, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hmask, c), _mm256_set1_epi8(1)), 2));
    return lv;
}

// Q2_K / Q3_K: per 32-element chunk (sub-blocks 2c, 2c + 1) the 2-bit levels are one shift and mask of a
// 32-byte load of qs (Q3_K adds 4x the hmask bit: levels 0..7, the -4 offset applied through the block
// sums as Q6_K's -32), products with maddubs, scaled per sub-block with 16-bit scales. Q2_K's mins go
// through the block sums into a float correction.
INLINE void kq23k(int64_t K, const void *w, const void *x, size_t xs, const int R, float *out, const int q3) {
    __m256 acc[4];
    float corr[4];
    const blk_q8_K *xb[4];
    for (int r = 0; r < R; r++) { acc[r] = _mm256_setzero_ps(); corr[r] = 0; xb[r] = XROW(x, xs, r); }
    const size_t bb = q3 ? sizeof(blk_q3_K) : sizeof(blk_q2_K);
    for (int64_t i = 0; i < K / 256; i++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)i * bb;
        PREFETCH(blk); PREFETCH(blk + 64);
        const uint8_t *qs;
        int16_t sc[16];
        float d, dmin = 0;
        __m256i H = _mm256_setzero_si256(), mn16 = _mm256_setzero_si256();
        if (q3) {
            const blk_q3_K *b = (const blk_q3_K *)blk;
            qs = b->qs;
            d = h2f(b->d);
            _mm256_storeu_si256((__m256i *)sc, q3k_scales16(b->scales));
            H = _mm256_loadu_si256((const __m256i *)b->hmask);
        } else {
            const blk_q2_K *b = (const blk_q2_K *)blk;
            qs = b->qs;
            d = h2f(b->d);
            dmin = h2f(b->dmin);
            __m128i s8 = _mm_loadu_si128((const __m128i *)b->scales);
            _mm256_storeu_si256((__m256i *)sc, _mm256_cvtepu8_epi16(_mm_and_si128(s8, _mm_set1_epi8(0x0F))));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
        }
        __m256i sc16 = _mm256_loadu_si256((const __m256i *)sc), sumi[4];
        for (int r = 0; r < R; r++) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)xb[r][i].bsums);
            if (q3) sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 2));
            else {
                sumi[r] = _mm256_setzero_si256();
                corr[r] -= dmin * xb[r][i].d * (float)hsum256_i32(_mm256_madd_epi16(bs, mn16));
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            __m256i lv = q23k_chunk(qs, H, c, q3);
            __m256i sv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * c + 1]), _mm_set1_epi16(sc[2 * c]));
            for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[r][i].qs + 32 * c));
                sumi[r] = dot_i16(sumi[r], _mm256_maddubs_epi16(lv, xv), sv);
            }
        }
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[r]), _mm256_set1_ps(d * xb[r][i].d), acc[r]);
    }
    for (int r = 0; r < R; r++) out[r] = hsum256(acc[r]) + corr[r];
}

// IQ4_XS: per 32-element sub-block the signed levels by table lookup, products as |w| * sign(x, w) with
// maddubs (pairs at most 2 * 127 * 127: no int16 saturation), scaled by the sub-block's ls - 32 in 16
// bits; one f32 step per super-block.
INLINE void kiq4xs(int64_t K, const void *w, const void *x, size_t xs, const int R, float *out) {
    __m256 acc[4];
    const blk_q8_K *xb[4];
    for (int r = 0; r < R; r++) { acc[r] = _mm256_setzero_ps(); xb[r] = XROW(x, xs, r); }
    const __m256i tab = iq4_table();
    for (int64_t i = 0; i < K / 256; i++) {
        const blk_iq4_xs *b = (const blk_iq4_xs *)w + i;
        PREFETCH(b); PREFETCH((const char *)b + 64); PREFETCH((const char *)b + 128);
        __m256i sumi[4];
        for (int r = 0; r < R; r++) sumi[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++) {
            __m256i lv = iq4_levels32(b->qs + 16 * ib, tab), alv = _mm256_sign_epi8(lv, lv);
            __m256i sv = _mm256_set1_epi16((short)(iq4xs_scale(b, ib) - 32));
            for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[r][i].qs + 32 * ib));
                sumi[r] = dot_i16(sumi[r], _mm256_maddubs_epi16(alv, _mm256_sign_epi8(xv, lv)), sv);
            }
        }
        float d = h2f(b->d);
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[r]), _mm256_set1_ps(d * xb[r][i].d), acc[r]);
    }
    for (int r = 0; r < R; r++) out[r] = hsum256(acc[r]);
}

// ---------------------------------------------------------------- instantiation per R
#define DEF_R(name, body) \
    static void name(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) { \
        switch (R) { \
        case 1: body(1); break; \
        case 2: body(2); break; \
        case 3: body(3); break; \
        default: body(4); break; \
        } }
#define B_F32(R) kf(K, w, x, xs, R, out, 0)
#define B_F16(R) kf(K, w, x, xs, R, out, 1)
#define B_BF16(R) kf(K, w, x, xs, R, out, 2)
#define B_Q4_0(R) kq32(K, w, x, xs, R, out, DT_Q4_0)
#define B_Q4_1(R) kq32(K, w, x, xs, R, out, DT_Q4_1)
#define B_Q5_0(R) kq32(K, w, x, xs, R, out, DT_Q5_0)
#define B_Q5_1(R) kq32(K, w, x, xs, R, out, DT_Q5_1)
#define B_Q8_0(R) kq32(K, w, x, xs, R, out, DT_Q8_0)
#define B_Q4_K(R) kq45k(K, w, x, xs, R, out, DT_Q4_K)
#define B_Q5_K(R) kq45k(K, w, x, xs, R, out, DT_Q5_K)
#define B_Q6_K(R) kq6k(K, w, x, xs, R, out)
#define B_Q2_K(R) kq23k(K, w, x, xs, R, out, 0)
#define B_Q3_K(R) kq23k(K, w, x, xs, R, out, 1)
#define B_IQ4_NL(R) kq32(K, w, x, xs, R, out, DT_IQ4_NL)
#define B_IQ4_XS(R) kiq4xs(K, w, x, xs, R, out)
DEF_R(SFX(dot_f32), B_F32)
DEF_R(SFX(dot_f16), B_F16)
DEF_R(SFX(dot_bf16), B_BF16)
DEF_R(SFX(dot_q4_0), B_Q4_0)
DEF_R(SFX(dot_q4_1), B_Q4_1)
DEF_R(SFX(dot_q5_0), B_Q5_0)
DEF_R(SFX(dot_q5_1), B_Q5_1)
DEF_R(SFX(dot_q8_0), B_Q8_0)
DEF_R(SFX(dot_q4_K), B_Q4_K)
DEF_R(SFX(dot_q5_K), B_Q5_K)
DEF_R(SFX(dot_q6_K), B_Q6_K)
DEF_R(SFX(dot_q2_K), B_Q2_K)
DEF_R(SFX(dot_q3_K), B_Q3_K)
DEF_R(SFX(dot_iq4_nl), B_IQ4_NL)
DEF_R(SFX(dot_iq4_xs), B_IQ4_XS)

static void SFX(axpy4)(int64_t n, const float a[4], const float *x0, const float *x1, const float *x2,
                       const float *x3, float *y) {
    __m256 a0 = _mm256_set1_ps(a[0]), a1 = _mm256_set1_ps(a[1]), a2 = _mm256_set1_ps(a[2]), a3 = _mm256_set1_ps(a[3]);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        // same association as the scalar twin: ((a0*x0 + a1*x1) + a2*x2) + a3*x3, then + y
        __m256 s = _mm256_mul_ps(a0, _mm256_loadu_ps(x0 + k));
        s = _mm256_fmadd_ps(a1, _mm256_loadu_ps(x1 + k), s);
        s = _mm256_fmadd_ps(a2, _mm256_loadu_ps(x2 + k), s);
        s = _mm256_fmadd_ps(a3, _mm256_loadu_ps(x3 + k), s);
        _mm256_storeu_ps(y + k, _mm256_add_ps(_mm256_loadu_ps(y + k), s));
    }
    for (; k < n; k++) y[k] += a[0] * x0[k] + a[1] * x1[k] + a[2] * x2[k] + a[3] * x3[k];
}

#ifdef MM_AVX512
static void mm_kernels_fill256_avx512(mm_kernels *k) {
#else
void mm_kernels_avx2(mm_kernels *k) {
#endif
    k->dot[DT_F32] = SFX(dot_f32);
    k->dot[DT_F16] = SFX(dot_f16);
    k->dot[DT_BF16] = SFX(dot_bf16);
    k->dot[DT_Q4_0] = SFX(dot_q4_0);
    k->dot[DT_Q4_1] = SFX(dot_q4_1);
    k->dot[DT_Q5_0] = SFX(dot_q5_0);
    k->dot[DT_Q5_1] = SFX(dot_q5_1);
    k->dot[DT_Q8_0] = SFX(dot_q8_0);
    k->dot[DT_Q4_K] = SFX(dot_q4_K);
    k->dot[DT_Q5_K] = SFX(dot_q5_K);
    k->dot[DT_Q6_K] = SFX(dot_q6_K);
    k->dot[DT_Q2_K] = SFX(dot_q2_K);
    k->dot[DT_Q3_K] = SFX(dot_q3_K);
    k->dot[DT_IQ4_NL] = SFX(dot_iq4_nl);
    k->dot[DT_IQ4_XS] = SFX(dot_iq4_xs);
    k->dot[DT_IQ2_XXS] = SFX(dot_iq2_xxs);
    k->dot[DT_IQ2_XS] = SFX(dot_iq2_xs);
    k->dot[DT_IQ2_S] = SFX(dot_iq2_s);
    k->dot[DT_IQ3_XXS] = SFX(dot_iq3_xxs);
    k->dot[DT_IQ3_S] = SFX(dot_iq3_s);
    k->dot[DT_IQ1_S] = SFX(dot_iq1_s);
    k->dot[DT_IQ1_M] = SFX(dot_iq1_m);
    k->axpy4 = SFX(axpy4);
}
