// Cross-entropy row kernels: the plain-C reference (loss.c) and its AVX2 / AVX-512 twins
// (loss_avx2.c, loss_avx512.c). One row z[0..V) with target y in [0, V):
//   returns logsumexp(z) - z[y]; when dz is not NULL, dz = (softmax(z) - onehot(y)) * gs. dz may be z.
// The SIMD versions use a polynomial exp (relative error < 2e-7, see loss_avx2.c) and sum in double.
#ifndef SLLM_TENSOR_LOSS_KERNELS_H
#define SLLM_TENSOR_LOSS_KERNELS_H
#include <stdint.h>
double ce_row_ref(float *dz, const float *z, int64_t V, int32_t y, float gs);
double ce_row_avx2(float *dz, const float *z, int64_t V, int32_t y, float gs);
double ce_row_avx512(float *dz, const float *z, int64_t V, int32_t y, float gs);
// Tests: on = 0 forces the reference, on = 1 lets the CPU's best kernel run. Returns the previous setting.
int loss_use_simd(int on);
#endif
