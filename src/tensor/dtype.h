// Tensor element types. Values equal the GGML type ids used in GGUF files, so a GGUF tensor's
// type field maps to this enum unchanged.
#ifndef SLLM_TENSOR_DTYPE_H
#define SLLM_TENSOR_DTYPE_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum {
    DT_F32 = 0, DT_F16 = 1, DT_Q4_0 = 2, DT_Q4_1 = 3, DT_Q5_0 = 6, DT_Q5_1 = 7,
    DT_Q8_0 = 8, DT_Q8_1 = 9, DT_Q2_K = 10, DT_Q3_K = 11, DT_Q4_K = 12, DT_Q5_K = 13,
    DT_Q6_K = 14, DT_Q8_K = 15, DT_IQ2_XXS = 16, DT_IQ2_XS = 17, DT_IQ3_XXS = 18, DT_IQ1_S = 19,
    DT_IQ4_NL = 20, DT_IQ3_S = 21, DT_IQ2_S = 22, DT_IQ4_XS = 23, DT_I8 = 24, DT_I16 = 25, DT_I32 = 26,
    DT_I64 = 27, DT_F64 = 28, DT_IQ1_M = 29, DT_BF16 = 30, DT_COUNT = 40
} dtype;

typedef struct {
    const char *name;   // "f32", "q4_0", ... (lower case, as llama.cpp prints them)
    int block;          // elements per block (1 for plain types)
    int block_bytes;    // bytes per block
    bool quantized;
} dtype_info;

// NULL for ids sllm does not know.
const dtype_info *dtype_get(int type);
// Parses "f16", "Q4_K", "q8_0"... case-insensitively; returns -1 when unknown.
int dtype_from_name(const char *name);
// Bytes for a row of n elements; 0 when n is not a multiple of the block size.
size_t dtype_row_bytes(dtype t, int64_t n);

// Scalar half/bfloat conversions (round-to-nearest-even), shared by every layer.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// n values at once, the bits of f32_to_f16 each (F16C's vcvtps2ph where the CPU has it and SLLM_ISA
// allows; f32_to_f16_row_ref is the scalar twin, f32_to_f16_row_f16c the SIMD one, for tests).
void f32_to_f16_row(const float *x, uint16_t *y, int64_t n);
void f32_to_f16_row_ref(const float *x, uint16_t *y, int64_t n);
void f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
#endif
