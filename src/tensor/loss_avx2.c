// AVX2 (and, recompiled by loss_avx512.c, AVX-512) cross-entropy row kernel; twin of ce_row_ref in loss.c.
// exp is computed here (tensor/simd_exp.h) rather than by libm because the row is the vocabulary
// (32k-256k entries) and a scalar expf call per entry was ~10% of a training step.
#include "tensor/loss_kernels.h"
#include <immintrin.h>
#include <math.h>

#ifdef LOSS_AVX512
#define W 16
typedef __m512 vf;
typedef __m512d vd;
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VHMAX(x) _mm512_reduce_max_ps(x)
#define DZERO() _mm512_setzero_pd()
#define DADD(a, b) _mm512_add_pd(a, b)
#define DSUM(x) _mm512_reduce_add_pd(x)
#define LO_PD(x) _mm512_cvtps_pd(_mm512_castps512_ps256(x))
#define HI_PD(x) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))
#define KNAME(x) x##_avx512
#else
#define W 8
typedef __m256 vf;
typedef __m256d vd;
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define DZERO() _mm256_setzero_pd()
#define DADD(a, b) _mm256_add_pd(a, b)
#define LO_PD(x) _mm256_cvtps_pd(_mm256_castps256_ps128(x))
#define HI_PD(x) _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))
#define KNAME(x) x##_avx2
static inline float VHMAX(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline double DSUM(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
#endif
#include "tensor/simd_exp.h"

// Scalar exp with the same formula, for the tail (so a row's result does not depend on where it ends).
static inline float sexp(float x) {
    if (x < -87.0f) return 0.0f;
    float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(-n, 0.693145751953125f, x);
    r = fmaf(-n, 1.428606765330187e-06f, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return ldexpf(p, (int)n);
}

double KNAME(ce_row)(float *dz, const float *z, int64_t V, int32_t y, float gs) {
    int64_t Vv = V - V % W, i;
    vf mv = VSET1(-INFINITY);
    for (i = 0; i < Vv; i += W) mv = VMAX(mv, VLOAD(z + i));
    float m = VHMAX(mv);
    for (; i < V; i++) m = z[i] > m ? z[i] : m;
    if (m == -INFINITY || m != m) return ce_row_ref(dz, z, V, y, gs);   // degenerate row: the reference decides
    float zy = z[y];   // before the loop below: dz may be z itself
    vf vm = VSET1(m);
    vd s0 = DZERO(), s1 = DZERO();
    for (i = 0; i < Vv; i += W) {
        vf e = vexp(VSUB(VLOAD(z + i), vm));
        if (dz) VSTORE(dz + i, e);
        s0 = DADD(s0, LO_PD(e));
        s1 = DADD(s1, HI_PD(e));
    }
    double sum = DSUM(DADD(s0, s1));
    for (; i < V; i++) {
        float e = sexp(z[i] - m);
        if (dz) dz[i] = e;
        sum += e;
    }
    if (dz) {
        vf inv = VSET1((float)(1.0 / sum) * gs);
        for (i = 0; i < Vv; i += W) VSTORE(dz + i, VMUL(VLOAD(dz + i), inv));
        float fi = (float)(1.0 / sum) * gs;
        for (; i < V; i++) dz[i] *= fi;
        dz[y] -= gs;
    }
    return (double)m + log(sum) - (double)zy;
}
