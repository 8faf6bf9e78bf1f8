// Decoders of the GGUF grid quantization types: IQ2_XXS / IQ2_XS / IQ2_S (2-2.6 bits a weight), IQ3_XXS /
// IQ3_S (3-3.4) and IQ1_S / IQ1_M (1.6-1.75). Every 256-value super-block holds indices into fixed
// codebooks (tensor/iq_grids.h: rows of 8 or 4 small magnitudes), sign bits and per-32 (or per-16)
// scales. Block layouts are GGML's byte for byte, and each value is formed with the same float
// operations in the same order as GGML's reference decoder (scale x magnitude, then the sign), so the
// results are bit-identical to it (tests/test_quant.c checks that against llama.cpp's own library).
// Written here rather than taken from a library: no packaged library decodes these blocks, and the
// decoders are what sllm's matmul widens weights with (inference reads these files in place).
#include <string.h>
#include "tensor/dtype.h"
#include "tensor/iq_grids.h"
#include "tensor/quant.h"

#define IQ1_DELTA 0.125f   // IQ1_S / IQ1_M: a grid row's levels are shifted by +-1/8 before the scale

static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// v with its sign bit flipped when bit is 1: exactly -v, without a branch (the sign bits are random
// data: as a branch, half of them mispredicted and the decoders ran ~4 ns a value).
static inline float flip(float v, unsigned bit) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u ^= (uint32_t)bit << 31;
    memcpy(&v, &u, 4);
    return v;
}
// 8 values of a grid row (byte j of the row's little-endian word), sign bit j of `signs` flipping value j.
static inline void put8(float *y, float scale, const uint8_t *row, unsigned signs) {
    for (int j = 0; j < 8; j++) y[j] = flip(scale * (float)row[j], signs >> j & 1);
}
// 8 values from two 4-value rows (IQ3): row a for values 0-3, row b for 4-7.
static inline void put4x2(float *y, float scale, const uint8_t *a, const uint8_t *b, unsigned signs) {
    for (int j = 0; j < 4; j++) {
        y[j] = flip(scale * (float)a[j], signs >> j & 1);
        y[j + 4] = flip(scale * (float)b[j], signs >> (j + 4) & 1);
    }
}

// 8 values of a signed IQ1 grid row (levels -1, 0, 1) shifted by delta, times dl.
static inline void put8_iq1(float *y, float dl, int idx, float delta) {
    const int8_t *g = (const int8_t *)&iq_iq1s_grid[idx];
    for (int j = 0; j < 8; j++) y[j] = dl * ((float)g[j] + delta);
}

#define IQ_NAME(x) x
#define IQ_PUT8 put8
#define IQ_PUT4X2 put4x2
#define IQ_PUT8_IQ1 put8_iq1
#include "tensor/quant_iq_body.h"

int dequantize_row_iq(dtype t, const void *src, float *dst, int64_t n) {
    if (n < 0 || n % 256) return -1;
    return deq_grid_row(t, src, dst, n / 256);
}
