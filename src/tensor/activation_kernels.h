// SwiGLU, GELU (tanh approximation) and GeGLU kernels: the plain-C references (activation.c) and their
// AVX2 / AVX-512 twins (activation_avx2.c, activation_avx512.c; sigmoids through the polynomial exp of
// tensor/simd_exp.h, GELU as x sigmoid(2u): 0.5 (1 + tanh u) = sigmoid(2u)). Same contracts as the
// functions of ops.h (backward accumulates; both outputs of a gated backward required).
#ifndef SLLM_TENSOR_ACTIVATION_KERNELS_H
#define SLLM_TENSOR_ACTIVATION_KERNELS_H
#include <math.h>
#include <stdint.h>

// GELU's scalar pieces, shared by the references and the SIMD kernels' tails: gelu_tanh(x) =
// 0.5 x (1 + tanh u) = x sigmoid(2u) = x / gelu_den1(x), u = k x (1 + c x^2) (the sigmoid form keeps its
// precision where tanh u nears -1); d/dx = s + 2 x s (1 - s) k (1 + 3c x^2), s = sigmoid(2u).
#define GELU_K 0.7978845608028654f   // sqrt(2/pi)
#define GELU_C 0.044715f
static inline float gelu_den1(float x) { return 1.0f + expf(-2.0f * (GELU_K * x * (1.0f + GELU_C * x * x))); }
static inline float gelu1(float x) { return x / gelu_den1(x); }
static inline float gelu_grad_s1(float x, float s) {
    return s + 2.0f * x * s * (1.0f - s) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
}
typedef struct {
    void (*swiglu_fwd)(float *out, const float *gate, const float *up, int64_t n);
    void (*swiglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
    void (*gelu_fwd)(float *out, const float *x, int64_t n);
    void (*gelu_bwd)(float *dx, const float *dout, const float *x, int64_t n);
    void (*geglu_fwd)(float *out, const float *gate, const float *up, int64_t n);
    void (*geglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
} act_kernels;
const act_kernels *act_kernels_for(int isa);   // ISA_SCALAR / ISA_AVX2 / ISA_AVX512 (tensor/matmul.h)
void swiglu_fwd_avx2(float *out, const float *gate, const float *up, int64_t n);
void swiglu_bwd_avx2(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
#define ACT_DECLARE(S)                                                                                          \
    void gelu_fwd_##S(float *out, const float *x, int64_t n);                                                   \
    void gelu_bwd_##S(float *dx, const float *dout, const float *x, int64_t n);                                 \
    void geglu_fwd_##S(float *out, const float *gate, const float *up, int64_t n);                              \
    void geglu_bwd_##S(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
ACT_DECLARE(avx2)
ACT_DECLARE(avx512)
#undef ACT_DECLARE
void swiglu_fwd_avx512(float *out, const float *gate, const float *up, int64_t n);
void swiglu_bwd_avx512(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
#endif
