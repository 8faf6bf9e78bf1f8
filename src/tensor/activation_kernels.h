// SwiGLU kernels: the plain-C reference (activation.c) and its AVX2 / AVX-512 twins (activation_avx2.c,
// activation_avx512.c; sigmoid through the polynomial exp of tensor/simd_exp.h). Same contracts as
// swiglu_fwd / swiglu_bwd in ops.h (backward accumulates; both outputs required).
#ifndef SLLM_TENSOR_ACTIVATION_KERNELS_H
#define SLLM_TENSOR_ACTIVATION_KERNELS_H
#include <stdint.h>
typedef struct {
    void (*swiglu_fwd)(float *out, const float *gate, const float *up, int64_t n);
    void (*swiglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
} act_kernels;
const act_kernels *act_kernels_for(int isa);   // ISA_SCALAR / ISA_AVX2 / ISA_AVX512 (tensor/matmul.h)
void swiglu_fwd_avx2(float *out, const float *gate, const float *up, int64_t n);
void swiglu_bwd_avx2(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void swiglu_fwd_avx512(float *out, const float *gate, const float *up, int64_t n);
void swiglu_bwd_avx512(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
#endif
