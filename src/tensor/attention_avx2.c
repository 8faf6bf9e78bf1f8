// AVX2 (and, recompiled by attention_avx512.c, AVX-512) versions of the attention inner kernels.
// Twins of attn_scores_ref / attn_accum_ref in attention.c.
#include "tensor/attention_kernels.h"
#include <immintrin.h>
#include <math.h>

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
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif
#include "tensor/simd_exp.h"

#ifdef ATT_AVX512
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

static void KNAME(attn_scores)(float *sc, const float *q, const float *k, int64_t ks, int n, int D) {
    int Dv = D - D % W, i = 0;
#ifdef ATT_AVX512
    // the AVX-512 build: 16 keys at a time while they last
    if (D % 16 == 0)
        for (; i + 16 <= n; i += 16) {
            __m512 a[16];
            for (int r = 0; r < 16; r++) a[r] = _mm512_setzero_ps();
            const float *k0 = k + (int64_t)i * ks;
            for (int d = 0; d < D; d += 16) {
                __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
                for (int r = 0; r < 16; r++) a[r] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + (int64_t)r * ks + d), a[r]);
            }
            _mm512_storeu_ps(sc + i, hsum16x16(a));
        }
#endif
    // four keys at a time: four independent FMA chains share each load of q
    for (; i + 4 <= n; i += 4) {
        const float *k0 = k + (int64_t)i * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;
        vf a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
        for (int d = 0; d < Dv; d += W) {
            vf qv = VLOAD(q + d);
            a0 = VFMA(qv, VLOAD(k0 + d), a0);
            a1 = VFMA(qv, VLOAD(k1 + d), a1);
            a2 = VFMA(qv, VLOAD(k2 + d), a2);
            a3 = VFMA(qv, VLOAD(k3 + d), a3);
        }
        float s0 = VSUM(a0), s1 = VSUM(a1), s2 = VSUM(a2), s3 = VSUM(a3);
        for (int d = Dv; d < D; d++) {
            s0 += q[d] * k0[d]; s1 += q[d] * k1[d]; s2 += q[d] * k2[d]; s3 += q[d] * k3[d];
        }
        sc[i] = s0; sc[i + 1] = s1; sc[i + 2] = s2; sc[i + 3] = s3;
    }
    for (; i < n; i++) {
        const float *k0 = k + (int64_t)i * ks;
        vf a0 = VZERO();
        for (int d = 0; d < Dv; d += W) a0 = VFMA(VLOAD(q + d), VLOAD(k0 + d), a0);
        float s0 = VSUM(a0);
        for (int d = Dv; d < D; d++) s0 += q[d] * k0[d];
        sc[i] = s0;
    }
}

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

// The output slice stays in registers (8 vectors at a time) while every value row streams past.
static void KNAME(attn_accum)(float *o, const float *p, const float *v, int64_t ks, int n, int D) {
    int Dv = D - D % W, d0 = 0;
    for (; d0 + 8 * W <= Dv; d0 += 8 * W) {
        vf o0 = VLOAD(o + d0), o1 = VLOAD(o + d0 + W), o2 = VLOAD(o + d0 + 2 * W), o3 = VLOAD(o + d0 + 3 * W);
        vf o4 = VLOAD(o + d0 + 4 * W), o5 = VLOAD(o + d0 + 5 * W), o6 = VLOAD(o + d0 + 6 * W), o7 = VLOAD(o + d0 + 7 * W);
        for (int i = 0; i < n; i++) {
            const float *vi = v + (int64_t)i * ks + d0;
            vf pb = VSET1(p[i]);
            o0 = VFMA(pb, VLOAD(vi), o0); o1 = VFMA(pb, VLOAD(vi + W), o1);
            o2 = VFMA(pb, VLOAD(vi + 2 * W), o2); o3 = VFMA(pb, VLOAD(vi + 3 * W), o3);
            o4 = VFMA(pb, VLOAD(vi + 4 * W), o4); o5 = VFMA(pb, VLOAD(vi + 5 * W), o5);
            o6 = VFMA(pb, VLOAD(vi + 6 * W), o6); o7 = VFMA(pb, VLOAD(vi + 7 * W), o7);
        }
        VSTORE(o + d0, o0); VSTORE(o + d0 + W, o1); VSTORE(o + d0 + 2 * W, o2); VSTORE(o + d0 + 3 * W, o3);
        VSTORE(o + d0 + 4 * W, o4); VSTORE(o + d0 + 5 * W, o5); VSTORE(o + d0 + 6 * W, o6); VSTORE(o + d0 + 7 * W, o7);
    }
    for (; d0 + 2 * W <= Dv; d0 += 2 * W) {
        vf o0 = VLOAD(o + d0), o1 = VLOAD(o + d0 + W);
        for (int i = 0; i < n; i++) {
            const float *vi = v + (int64_t)i * ks + d0;
            vf pb = VSET1(p[i]);
            o0 = VFMA(pb, VLOAD(vi), o0);
            o1 = VFMA(pb, VLOAD(vi + W), o1);
        }
        VSTORE(o + d0, o0); VSTORE(o + d0 + W, o1);
    }
    for (; d0 < Dv; d0 += W) {
        vf o0 = VLOAD(o + d0);
        for (int i = 0; i < n; i++) o0 = VFMA(VSET1(p[i]), VLOAD(v + (int64_t)i * ks + d0), o0);
        VSTORE(o + d0, o0);
    }
    for (int d = Dv; d < D; d++) {
        float s = o[d];
        for (int i = 0; i < n; i++) s += p[i] * v[(int64_t)i * ks + d];
        o[d] = s;
    }
}

void KNAME(attn_kernels)(attn_kernels *k) {
    k->scores = KNAME(attn_scores);
    k->accum = KNAME(attn_accum);
    k->expsum = KNAME(attn_expsum);
}
