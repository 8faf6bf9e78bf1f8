// SwiGLU, GELU (tanh approximation) and GeGLU kernels: the plain-C references (activation.c) and their
// AVX2 / AVX-512 twins (activation_avx2.c, activation_avx512.c; sigmoids through the polynomial exp of
// tensor/simd_exp.h, GELU as x sigmoid(2u): 0.5 (1 + tanh u) = sigmoid(2u)). Same contracts as the
// functions of ops.h (backward accumulates; both outputs of a gated backward required).
#ifndef SLLM_TENSOR_ACTIVATION_KERNELS_H
#define SLLM_TENSOR_ACTIVATION_KERNELS_H
#include <stdint.h>
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
