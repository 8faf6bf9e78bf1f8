// Quantize / dequantize rows of every supported dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K, Q5_K, Q6_K; Q8_K as the activation format of the K-quant dot products).
// Block layouts are byte-identical to GGML's so GGUF tensors are used in place.
#ifndef SLLM_TENSOR_QUANT_H
#define SLLM_TENSOR_QUANT_H
#include "tensor/dtype.h"

// dst (n) <- src row of dtype t. n must be a multiple of the block size. Returns 0, or -1 if t is unsupported.
int dequantize_row(dtype t, const void *src, float *dst, int64_t n);
// dst row of dtype t <- src (n). Round-to-nearest with the same scale choice as GGML's reference
// quantizers (so files we write load in llama.cpp). Returns 0, or -1 if t is unsupported.
int quantize_row(dtype t, const float *src, void *dst, int64_t n);
bool dtype_can_quantize(dtype t);
#endif
