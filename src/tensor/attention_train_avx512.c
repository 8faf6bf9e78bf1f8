// AVX-512 row kernels of the training attention (see attention_train.h); scalar twins in
// attention_train.c. exp is the shared polynomial of tensor/simd_exp.h (libm has no vector expf we can
// call without -ffast-math).
#include "tensor/attention_train.h"
#include <immintrin.h>
#include <math.h>

#define W 16
#include "tensor/simd_exp.h"
#define exp512 vexp

static inline __mmask16 tail_mask(int left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

// Two passes over x plus the normalization: max of the raw values (scale * max x is the max of the
// scaled ones for scale > 0; min for scale < 0), then e^(x scale - m) with its sum.
static void softmax_avx512(float *x, int n, float scale) {
    __m512 vmax = _mm512_set1_ps(-INFINITY), vmin = _mm512_set1_ps(INFINITY);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 y = _mm512_maskz_loadu_ps(k, x + i);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, y);
        vmin = _mm512_mask_min_ps(vmin, k, vmin, y);
    }
    float m = scale >= 0 ? scale * _mm512_reduce_max_ps(vmax) : scale * _mm512_reduce_min_ps(vmin);
    __m512 vs = _mm512_set1_ps(scale), nm = _mm512_set1_ps(-m), vsum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 e = exp512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), vs, nm));
        _mm512_mask_storeu_ps(x + i, k, e);
        vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(k, e));
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
}

static void dsoftmax_avx512(float *d, const float *p, int n, float scale) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + i), _mm512_maskz_loadu_ps(k, d + i), acc);
    }
    __m512 delta = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), vs = _mm512_set1_ps(scale);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 pv = _mm512_maskz_loadu_ps(k, p + i);
        __m512 r = _mm512_mul_ps(_mm512_mul_ps(pv, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, d + i), delta)), vs);
        _mm512_mask_storeu_ps(d + i, k, r);
    }
}

void attn_train_kernels_avx512(attn_train_kernels *k) {
    k->softmax = softmax_avx512;
    k->dsoftmax = dsoftmax_avx512;
}
