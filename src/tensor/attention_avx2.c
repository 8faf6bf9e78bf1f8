// AVX2 (and, recompiled by attention_avx512.c, AVX-512) versions of the attention inner kernels.
// Twins of attn_scores_ref / attn_accum_ref in attention.c.
#include "tensor/attention_kernels.h"
#include <immintrin.h>
#include <math.h>
#include "tensor/dtype.h"

#ifdef ATT_AVX512
#define W 16
typedef __m512 vf;
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSET1(x) _mm512_set1_ps(x)
#define VSUM(x) _mm512_reduce_add_ps(x)
#define KNAME(x) x##_avx512
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VLOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#else
#define W 8
typedef __m256 vf;
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSET1(x) _mm256_set1_ps(x)
#define VSUM(x) hsum256(x)
#define KNAME(x) x##_avx2
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VLOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif
#include "tensor/simd_exp.h"

#ifdef ATT_AVX512
// The row-order kernels stream the cache as the decode products stream their weights (matmul_avx512.c
// R16_PF_AHEAD): each prefetches ATT_PF_AHEAD bytes ahead of what it reads, a few lines per step of
// its arithmetic (a burst of prefetches would wait for the core's miss slots with the arithmetic stalled
// behind it).
// (ATT_PF_AHEAD: tensor/attention_kernels.h)
// Prefetches the lines from *pf up to `to` (exclusive) and advances *pf.
static inline void attn_pf_to(uintptr_t *pf, uintptr_t to) {
    // asm, not _mm_prefetch: gcc 12 drops the builtin from the inlined score kernels (seen in the
    // disassembly). The address goes in a register operand: as a memory operand ("m") it told gcc the
    // asm may read any memory, so the score kernels stored their 16 accumulators to the stack before
    // every prefetch (Zen 5, Qwen3 shape, one thread from L1/L2: 265 cycles a row against 169).
    // prefetchnta, as the decode products (matmul_avx512.c DEC_PF_HINT): one thread, a 72-key run of an
    // f16 cache from memory (Qwen3 shape, huge pages), 12.2-12.6 us with prefetcht2, 11.6-11.7 with nta.
    for (; *pf < to; *pf += 64) __asm__ volatile("prefetchnta (%0)" : : "r"(*pf));
}

// Sixteen keys at a time (D a multiple of 16): one accumulator per key, then a transposing reduction
// tree (4 levels of shuffle + add) turns the 16 accumulators into one vector of 16 scores: ~3 ops per
// key where one horizontal sum per key took ~10, which was most of a decode step's attention time.
static inline __m512 hsum16x16(__m512 a[16]) {
    __m512 c[8], d[4], e[2];
    for (int i = 0; i < 8; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++)
        e[i] = _mm512_add_ps(_mm512_shuffle_ps(d[2 * i], d[2 * i + 1], 0x44), _mm512_shuffle_ps(d[2 * i], d[2 * i + 1], 0xEE));
    __m512 f = _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xDD));
    // lane 4j + t of f holds key j + 4t
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, f);
}
#endif

// One body (tensor/attention_kvbody.h) per row type: its names, storage unit and loads (the body
// undefines them at its end).
#define KV_SCORES KNAME(attn_scores)
#define KV_ACCUM KNAME(attn_accum)
#define KV_SCORES_G KNAME(attn_scores_g)
#define KV_ACCUM_G KNAME(attn_accum_g)
#define KV_SCORES_GC KNAME(attn_scores_gc)
#define KV_ACCUM_GC KNAME(attn_accum_gc)
#define KV_SCORES_R KNAME(attn_scores_rows)
#define KV_ACCUM_R KNAME(attn_accum_rows)
#define KV_SCORES_RC KNAME(attn_scores_rc)
#define KV_ACCUM_RV KNAME(attn_accum_rv)
#define KV_ACCUM_RVC KNAME(attn_accum_rvc)
#define KV_T float
#define KV_ADV(p, e) ((p) + (e))
#define KV_VLD(p, e) VLOAD((p) + (e))
#define KV_SLD(p, e) ((p)[e])
#define KV_BYTES(n) ((size_t)(n) * sizeof(float))
#include "tensor/attention_kvbody.h"
#define KV_SCORES KNAME(attn_scores_h)
#define KV_ACCUM KNAME(attn_accum_h)
#define KV_SCORES_G KNAME(attn_scores_gh)
#define KV_ACCUM_G KNAME(attn_accum_gh)
#define KV_SCORES_GC KNAME(attn_scores_gch)
#define KV_ACCUM_GC KNAME(attn_accum_gch)
#define KV_SCORES_R KNAME(attn_scores_rowsh)
#define KV_ACCUM_R KNAME(attn_accum_rowsh)
#define KV_SCORES_RC KNAME(attn_scores_rch)
#define KV_ACCUM_RV KNAME(attn_accum_rvh)
#define KV_ACCUM_RVC KNAME(attn_accum_rvch)
#define KV_T uint16_t
#define KV_ADV(p, e) ((p) + (e))
#define KV_VLD(p, e) VLOADH((p) + (e))
#define KV_SLD(p, e) f16_to_f32((p)[e])
#define KV_BYTES(n) ((size_t)(n) * sizeof(uint16_t))
#include "tensor/attention_kvbody.h"
// q8_0 rows (attention_kernels.h: attn_q8_at / attn_q8_elem): W elements from element e widened on
// load, d x q (an exact product in f32); W divides 32, so a load never straddles two blocks.
static inline vf KNAME(q8_vld)(const uint8_t *p, int64_t e) {
    const uint8_t *b = attn_q8_at(p, e);
    uint16_t d;
    __builtin_memcpy(&d, b, 2);
#ifdef ATT_AVX512
    __m512 x = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2 + (e & 31)))));
    return _mm512_mul_ps(x, _mm512_cvtph_ps(_mm256_set1_epi16((short)d)));
#else
    __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + (e & 31)))));
    return _mm256_mul_ps(x, _mm256_cvtph_ps(_mm_set1_epi16((short)d)));
#endif
}
#define KV_SCORES KNAME(attn_scores_q8)
#define KV_ACCUM KNAME(attn_accum_q8)
#define KV_SCORES_G KNAME(attn_scores_gq8)
#define KV_ACCUM_G KNAME(attn_accum_gq8)
#define KV_SCORES_GC KNAME(attn_scores_gcq8)
#define KV_ACCUM_GC KNAME(attn_accum_gcq8)
#define KV_SCORES_R KNAME(attn_scores_rowsq8)
#define KV_ACCUM_R KNAME(attn_accum_rowsq8)
#define KV_SCORES_RC KNAME(attn_scores_rcq8)
#define KV_ACCUM_RV KNAME(attn_accum_rvq8)
#define KV_ACCUM_RVC KNAME(attn_accum_rvcq8)
#define KV_T uint8_t
#define KV_ADV(p, e) attn_q8_at(p, e)
#define KV_VLD(p, e) KNAME(q8_vld)(p, e)
#define KV_SLD(p, e) attn_q8_elem(p, e)
#define KV_BYTES(n) ((size_t)(n) / 32 * Q8_BLOCK_BYTES)
#include "tensor/attention_kvbody.h"

// sc[i] = exp(sc[i] - m) for i < n; returns their sum. Probabilities below 2^-126 (x < -87) are
// flushed to 0: a denormal weight makes every FMA of the value pass that meets it take a microcode
// assist (a random-weight model's attention ran ~15x slower on them).
static double KNAME(attn_expsum)(float *sc, int n, float m) {
    vf vm = VSET1(m), acc = VZERO(), lo = VSET1(-87.0f);
    int i = 0;
    for (; i + W <= n; i += W) {
        vf x = VSUB(VLOAD(sc + i), vm);
#ifdef ATT_AVX512
        vf e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), vexp(x));
#else
        vf e = _mm256_and_ps(_mm256_cmp_ps(x, lo, _CMP_GE_OQ), vexp(x));
#endif
        VSTORE(sc + i, e);
        acc = VADD(acc, e);
    }
    double s = VSUM(acc);
    for (; i < n; i++) {
        float x = sc[i] - m;
        sc[i] = x >= -87.0f ? expf(x) : 0.0f;
        s += sc[i];
    }
    return s;
}

// sc[i] *= scale for i < n; returns the max (max is exact, so any order gives the twin's value).
static float KNAME(attn_scale_max)(float *sc, int n, float scale) {
    vf vs = VSET1(scale), mx = VSET1(-INFINITY);
    int i = 0;
    for (; i + W <= n; i += W) {
        vf x = VMUL(VLOAD(sc + i), vs);
        VSTORE(sc + i, x);
        mx = VMAX(mx, x);
    }
#ifdef ATT_AVX512
    float m = _mm512_reduce_max_ps(mx);
#else
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    float m = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
#endif
    for (; i < n; i++) {
        sc[i] *= scale;
        m = sc[i] > m ? sc[i] : m;
    }
    return m;
}

// Prefill tiles (see attention_kernels.h). TV vectors of keys / columns per row: 2 with AVX-512's 32
// registers (16 accumulators), 1 with AVX2's 16 (8 accumulators and the operands).
#ifdef ATT_AVX512
#define TV 2
#else
#define TV 1
#endif

// 8 rows x TV*W keys in registers: per element d of the rows, TV vectors of kt and a broadcast q_m[d] per row.
static void KNAME(attn_tile_scores)(float *sc, const float *q, const float *kt, int n, int D) {
    for (int i0 = 0; i0 < n; i0 += TV * W) {
        vf a[ATT_TILE_ROWS * TV];
#pragma GCC unroll 16
        for (int s = 0; s < ATT_TILE_ROWS * TV; s++) a[s] = VZERO();
        for (int d = 0; d < D; d++) {
            vf k[TV];
#pragma GCC unroll 2
            for (int v = 0; v < TV; v++) k[v] = VLOAD(kt + (int64_t)d * ATT_TILE_KEYS + i0 + v * W);
#pragma GCC unroll 8
            for (int m = 0; m < ATT_TILE_ROWS; m++) {
                vf qb = VSET1(q[(int64_t)m * D + d]);
#pragma GCC unroll 2
                for (int v = 0; v < TV; v++) a[m * TV + v] = VFMA(qb, k[v], a[m * TV + v]);
            }
        }
#pragma GCC unroll 8
        for (int m = 0; m < ATT_TILE_ROWS; m++)
#pragma GCC unroll 2
            for (int v = 0; v < TV; v++) VSTORE(sc + m * ATT_TILE_KEYS + i0 + v * W, a[m * TV + v]);
    }
}

// 8 rows x TV*W columns of o in registers while the n value rows stream past (D a multiple of 16, so of
// TV*W on AVX2; AVX-512 ends an odd multiple of 16 with one vector per row).
static void KNAME(attn_tile_accum)(float *o, const float *p, const float *vb, int n, int D) {
    int d0 = 0;
    for (; d0 + TV * W <= D; d0 += TV * W) {
        vf a[ATT_TILE_ROWS * TV];
#pragma GCC unroll 8
        for (int m = 0; m < ATT_TILE_ROWS; m++)
#pragma GCC unroll 2
            for (int v = 0; v < TV; v++) a[m * TV + v] = VLOAD(o + (int64_t)m * D + d0 + v * W);
        for (int i = 0; i < n; i++) {
            vf x[TV];
#pragma GCC unroll 2
            for (int v = 0; v < TV; v++) x[v] = VLOAD(vb + (int64_t)i * D + d0 + v * W);
#pragma GCC unroll 8
            for (int m = 0; m < ATT_TILE_ROWS; m++) {
                vf pb = VSET1(p[m * ATT_TILE_KEYS + i]);
#pragma GCC unroll 2
                for (int v = 0; v < TV; v++) a[m * TV + v] = VFMA(pb, x[v], a[m * TV + v]);
            }
        }
#pragma GCC unroll 8
        for (int m = 0; m < ATT_TILE_ROWS; m++)
#pragma GCC unroll 2
            for (int v = 0; v < TV; v++) VSTORE(o + (int64_t)m * D + d0 + v * W, a[m * TV + v]);
    }
    for (; d0 < D; d0 += W) {
        vf a[ATT_TILE_ROWS];
#pragma GCC unroll 8
        for (int m = 0; m < ATT_TILE_ROWS; m++) a[m] = VLOAD(o + (int64_t)m * D + d0);
        for (int i = 0; i < n; i++) {
            vf x = VLOAD(vb + (int64_t)i * D + d0);
#pragma GCC unroll 8
            for (int m = 0; m < ATT_TILE_ROWS; m++) a[m] = VFMA(VSET1(p[m * ATT_TILE_KEYS + i]), x, a[m]);
        }
#pragma GCC unroll 8
        for (int m = 0; m < ATT_TILE_ROWS; m++) VSTORE(o + (int64_t)m * D + d0, a[m]);
    }
}
#undef TV

static void KNAME(attn_rows_h)(float *dst, const uint16_t *src, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d += W) VSTORE(dst + (int64_t)i * D + d, VLOADH(src + (int64_t)i * ks + d));
}

static void KNAME(attn_rows_q8)(float *dst, const uint8_t *src, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++) {
        const uint8_t *row = attn_q8_at(src, (int64_t)i * ks);
        for (int d = 0; d < D; d += W) VSTORE(dst + (int64_t)i * D + d, KNAME(q8_vld)(row, d));
    }
}

#ifdef ATT_AVX512
// 16 x 16 floats transposed: dst row c = column c of the src rows (unpacks within 128-bit lanes, then
// lane shuffles).
static inline void transpose16(float *dst, int64_t ds, const float *src, int64_t ss) {
    __m512 r[16], t[16], u[16], v[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ss);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        const __m512 *T = t + 4 * g;
        __m512 *U = u + 4 * g;
        U[0] = _mm512_shuffle_ps(T[0], T[2], 0x44);
        U[1] = _mm512_shuffle_ps(T[0], T[2], 0xEE);
        U[2] = _mm512_shuffle_ps(T[1], T[3], 0x44);
        U[3] = _mm512_shuffle_ps(T[1], T[3], 0xEE);
    }
    for (int g = 0; g < 2; g++)
        for (int k = 0; k < 4; k++) {
            v[8 * g + k] = _mm512_shuffle_f32x4(u[8 * g + k], u[8 * g + 4 + k], 0x88);
            v[8 * g + 4 + k] = _mm512_shuffle_f32x4(u[8 * g + k], u[8 * g + 4 + k], 0xDD);
        }
    for (int k = 0; k < 8; k++) {
        _mm512_storeu_ps(dst + k * ds, _mm512_shuffle_f32x4(v[k], v[8 + k], 0x88));
        _mm512_storeu_ps(dst + (k + 8) * ds, _mm512_shuffle_f32x4(v[k], v[8 + k], 0xDD));
    }
}

static void attn_keys_t_avx512(float *kt, const float *kb, int n, int D) {
    for (int i0 = 0; i0 < n; i0 += 16)
        for (int d0 = 0; d0 < D; d0 += 16) transpose16(kt + (int64_t)d0 * ATT_TILE_KEYS + i0, ATT_TILE_KEYS, kb + (int64_t)i0 * D + d0, D);
}

#endif

void KNAME(attn_kernels)(attn_kernels *k) {
    k->tile_scores = KNAME(attn_tile_scores);
    k->tile_accum = KNAME(attn_tile_accum);
    k->rows_h = KNAME(attn_rows_h);
    k->rows_q8 = KNAME(attn_rows_q8);
#ifdef ATT_AVX512
    k->keys_t = attn_keys_t_avx512;   // (AVX2 keeps the scalar transpose: a few % of a tile pass, as each
#endif                                //  block serves every tile of it)
#ifndef ATT_NO_TILES   // (-DATT_NO_TILES: prefill through the per-query kernels, to compare)
    k->tiles = 1;
#endif
    k->scores = KNAME(attn_scores);
    k->accum = KNAME(attn_accum);
    k->expsum = KNAME(attn_expsum);
    k->scores_h = KNAME(attn_scores_h);
    k->accum_h = KNAME(attn_accum_h);
    k->scores_g = KNAME(attn_scores_g);
    k->accum_g = KNAME(attn_accum_g);
    k->scores_gh = KNAME(attn_scores_gh);
    k->accum_gh = KNAME(attn_accum_gh);
    k->scale_max = KNAME(attn_scale_max);
    k->scores_rows = KNAME(attn_scores_rows);
    k->accum_rows = KNAME(attn_accum_rows);
    k->scores_rowsh = KNAME(attn_scores_rowsh);
    k->accum_rowsh = KNAME(attn_accum_rowsh);
    k->scores_q8 = KNAME(attn_scores_q8);
    k->accum_q8 = KNAME(attn_accum_q8);
    k->scores_gq8 = KNAME(attn_scores_gq8);
    k->accum_gq8 = KNAME(attn_accum_gq8);
    k->scores_rowsq8 = KNAME(attn_scores_rowsq8);
    k->accum_rowsq8 = KNAME(attn_accum_rowsq8);
}
