// Vector exp for the SIMD kernel files (included after they define W: 16 = AVX-512, 8 = AVX2).
// Hand-written because libm has no vector exp we can call portably and a scalar expf per element was a
// measurable share of training steps (softmax over the vocabulary, SiLU). exp(x) = 2^n * e^r with
// n = round(x log2 e), r = x - n ln 2 (|r| <= ln2/2, ln 2 split in two parts), e^r by its degree-7 Taylor
// polynomial: truncation error |r|^8/8! < 5e-9 relative, below float rounding. x is clamped to [-103, 88.7]: results below
// ~1e-38 become 0 (AVX2) or denormals (AVX-512), large x stays finite (~3.3e38).
#ifndef SLLM_TENSOR_SIMD_EXP_H
#define SLLM_TENSOR_SIMD_EXP_H
#include <immintrin.h>

#define SIMD_EXP_POLY(FMA, SET1, p, r)                 \
    p = SET1(1.0f / 5040.0f);                           \
    p = FMA(p, r, SET1(1.0f / 720.0f));                 \
    p = FMA(p, r, SET1(1.0f / 120.0f));                 \
    p = FMA(p, r, SET1(1.0f / 24.0f));                  \
    p = FMA(p, r, SET1(1.0f / 6.0f));                   \
    p = FMA(p, r, SET1(0.5f));                          \
    p = FMA(p, r, SET1(1.0f));                          \
    p = FMA(p, r, SET1(1.0f));

#if W == 16
static inline __m512 vexp(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-103.0f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p;
    SIMD_EXP_POLY(_mm512_fmadd_ps, _mm512_set1_ps, p, r)
    return _mm512_scalef_ps(p, n);   // p * 2^n, underflowing to 0 cleanly
}
#else
static inline __m256 vexp(__m256 x) {
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);   // 2^n would leave the normal range
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-103.0f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p;
    SIMD_EXP_POLY(_mm256_fmadd_ps, _mm256_set1_ps, p, r)
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
#endif
#endif
