// AVX2+FMA AdamW update; same IEEE operations in the same order as adamw_update_ref in optim.c.
#include "train/optim_kernels.h"
#include <immintrin.h>
#include <math.h>

void adamw_update_avx2(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, int64_t n,
                       float decay, float neg_step, float b1, float omb1, float b2, float omb2, float bc2_sqrt,
                       float eps) {
    const __m256 vdecay = _mm256_set1_ps(decay), vns = _mm256_set1_ps(neg_step), vb1 = _mm256_set1_ps(b1),
                 vomb1 = _mm256_set1_ps(omb1), vb2 = _mm256_set1_ps(b2), vomb2 = _mm256_set1_ps(omb2),
                 vbc2 = _mm256_set1_ps(bc2_sqrt), veps = _mm256_set1_ps(eps);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 wi = _mm256_mul_ps(_mm256_loadu_ps(w + i), vdecay);
        __m256 mi = _mm256_fmadd_ps(gi, vomb1, _mm256_mul_ps(_mm256_loadu_ps(m + i), vb1));
        __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(vomb2, gi), gi, _mm256_mul_ps(_mm256_loadu_ps(v + i), vb2));
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc2), veps);
        wi = _mm256_add_ps(wi, _mm256_div_ps(_mm256_mul_ps(vns, mi), den));
        _mm256_storeu_ps(w + i, wi);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
    }
    for (; i < n; i++) {
        w[i] = w[i] * decay;
        m[i] = fmaf(g[i], omb1, m[i] * b1);
        v[i] = fmaf(omb2 * g[i], g[i], v[i] * b2);
        const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] = w[i] + neg_step * m[i] / denom;
    }
}
