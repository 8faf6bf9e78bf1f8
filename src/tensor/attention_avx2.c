// AVX2 (and, recompiled by attention_avx512.c, AVX-512) versions of the attention inner kernels.
// Twins of attn_scores_ref / attn_accum_ref in attention.c.
#include "tensor/attention_kernels.h"
#include <immintrin.h>

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
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

// Four keys at a time: four independent FMA chains share each load of q.
static void KNAME(attn_scores)(float *sc, const float *q, const float *k, int64_t ks, int n, int D) {
    int Dv = D - D % W, i = 0;
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
}
