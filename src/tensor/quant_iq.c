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

// ---------------------------------------------------------------- integer levels (products against Q8_K)
// Every grid type's value is an integer level times a small odd integer scale times a per-block float:
// IQ2: d x (2s + 1) / 8 x magnitude x sign; IQ3_XXS: d x (2s + 1) / 4 x ...; IQ3_S: d x (2s + 1) x ...;
// IQ1: d x (2s + 1) / 8 x (8 g +- 1) (the grid level g in -1..1 shifted by +-1/8, times 8). So a product
// against 8-bit activations is exact in integers up to one float multiply per super-block, as GGML's
// vec_dot kernels compute it; matmul.c's dot_grid and its SIMD twins take the levels from here.

// Byte j of the mask is 0xFF when bit j of the index is set.
#define SM1(i)                                                                                             \
    (((i) & 1 ? 0xFFull : 0) | ((i) & 2 ? 0xFF00ull : 0) | ((i) & 4 ? 0xFF0000ull : 0) |                  \
     ((i) & 8 ? 0xFF000000ull : 0) | ((i) & 16 ? 0xFF00000000ull : 0) | ((i) & 32 ? 0xFF0000000000ull : 0) | \
     ((i) & 64 ? 0xFF000000000000ull : 0) | ((i) & 128 ? 0xFF00000000000000ull : 0))
#define SM4(i) SM1(i), SM1((i) + 1), SM1((i) + 2), SM1((i) + 3)
#define SM16(i) SM4(i), SM4((i) + 4), SM4((i) + 8), SM4((i) + 12)
#define SM64(i) SM16(i), SM16((i) + 16), SM16((i) + 32), SM16((i) + 48)
static const uint64_t sign_mask8[256] = {SM64(0), SM64(64), SM64(128), SM64(192)};

// 8 signed levels: the magnitudes of a grid row (bytes, never 0) negated where a sign bit is set, all 8
// at once: (g ^ 0xFF) + 1 = -g in a byte, and with g >= 1 no carry crosses into the next byte.
static inline void lv8(int8_t *lv, uint64_t row, unsigned signs) {
    uint64_t m = sign_mask8[signs & 255];
    uint64_t v = (row ^ m) + (m & 0x0101010101010101ull);
    memcpy(lv, &v, 8);
}
static inline uint64_t row4x2(uint32_t a, uint32_t b) { return (uint64_t)a | (uint64_t)b << 32; }
// 8 IQ1 levels 8 g + ds (ds = +-1, the delta's sign) of grid row idx.
static inline void lv8_iq1(int8_t *lv, int idx, int ds) {
    const int8_t *g = (const int8_t *)&iq_iq1s_grid[idx];
    for (int j = 0; j < 8; j++) lv[j] = (int8_t)(8 * g[j] + ds);
}

static void lv_iq2_xxs(const uint8_t *b, int8_t *lv, int16_t *ls) {
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        const uint8_t *q = b + 2 + 8 * ib;
        uint32_t signs = rd32(q + 4);
        ls[2 * ib] = ls[2 * ib + 1] = (int16_t)(2 * (signs >> 28) + 1);
        for (int l = 0; l < 4; l++) lv8(lv + 8 * l, iq_iq2xxs_grid[q[l]], iq_ksigns_iq2xs[(signs >> (7 * l)) & 127]);
    }
}
static void lv_iq2_xs(const uint8_t *b, int8_t *lv, int16_t *ls) {
    const uint8_t *sc = b + 2 + 64;
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        ls[2 * ib] = (int16_t)(2 * (sc[ib] & 15) + 1);
        ls[2 * ib + 1] = (int16_t)(2 * (sc[ib] >> 4) + 1);
        for (int l = 0; l < 4; l++) {
            uint16_t w = rd16(b + 2 + 2 * (4 * ib + l));
            lv8(lv + 8 * l, iq_iq2xs_grid[w & 511], iq_ksigns_iq2xs[w >> 9]);
        }
    }
}
static void lv_iq2_s(const uint8_t *b, int8_t *lv, int16_t *ls) {
    const uint8_t *qs = b + 2, *signs = b + 2 + 32, *qh = b + 2 + 64, *sc = b + 2 + 72;
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        ls[2 * ib] = (int16_t)(2 * (sc[ib] & 15) + 1);
        ls[2 * ib + 1] = (int16_t)(2 * (sc[ib] >> 4) + 1);
        for (int l = 0; l < 4; l++)
            lv8(lv + 8 * l, iq_iq2s_grid[qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300)], signs[4 * ib + l]);
    }
}
static void lv_iq3_xxs(const uint8_t *b, int8_t *lv, int16_t *ls) {
    const uint8_t *qs = b + 2, *ss = b + 2 + 64;
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        uint32_t w = rd32(ss + 4 * ib);
        ls[2 * ib] = ls[2 * ib + 1] = (int16_t)(2 * (w >> 28) + 1);
        for (int l = 0; l < 4; l++)
            lv8(lv + 8 * l, row4x2(iq_iq3xxs_grid[qs[8 * ib + 2 * l]], iq_iq3xxs_grid[qs[8 * ib + 2 * l + 1]]),
                iq_ksigns_iq2xs[(w >> (7 * l)) & 127]);
    }
}
static void lv_iq3_s(const uint8_t *b, int8_t *lv, int16_t *ls) {
    const uint8_t *qs = b + 2, *qh = b + 2 + 64, *signs = b + 2 + 72, *sc = b + 2 + 104;
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        int s = ib % 2 ? sc[ib / 2] >> 4 : sc[ib / 2] & 15;
        ls[2 * ib] = ls[2 * ib + 1] = (int16_t)(2 * s + 1);
        for (int l = 0; l < 4; l++) {
            int i1 = qs[8 * ib + 2 * l] | ((qh[ib] << (8 - 2 * l)) & 256);
            int i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] << (7 - 2 * l)) & 256);
            lv8(lv + 8 * l, row4x2(iq_iq3s_grid[i1], iq_iq3s_grid[i2]), signs[4 * ib + l]);
        }
    }
}
static void lv_iq1_s(const uint8_t *b, int8_t *lv, int16_t *ls) {
    const uint8_t *qs = b + 2;
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        uint16_t h = rd16(b + 2 + 32 + 2 * ib);
        ls[2 * ib] = ls[2 * ib + 1] = (int16_t)(2 * ((h >> 12) & 7) + 1);
        int ds = h & 0x8000 ? -1 : 1;
        for (int l = 0; l < 4; l++) lv8_iq1(lv + 8 * l, qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8), ds);
    }
}
static void lv_iq1_m(const uint8_t *b, int8_t *lv, int16_t *ls) {
    const uint8_t *qs = b, *qh = b + 32;
    uint16_t sc[4];
    for (int i = 0; i < 4; i++) sc[i] = rd16(b + 48 + 2 * i);
    for (int ib = 0; ib < 8; ib++, lv += 32) {
        ls[2 * ib] = (int16_t)(2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1);
        ls[2 * ib + 1] = (int16_t)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1);
        const uint8_t *h = qh + 2 * ib;
        lv8_iq1(lv, qs[4 * ib] | ((h[0] << 8) & 0x700), h[0] & 0x08 ? -1 : 1);
        lv8_iq1(lv + 8, qs[4 * ib + 1] | ((h[0] << 4) & 0x700), h[0] & 0x80 ? -1 : 1);
        lv8_iq1(lv + 16, qs[4 * ib + 2] | ((h[1] << 8) & 0x700), h[1] & 0x08 ? -1 : 1);
        lv8_iq1(lv + 24, qs[4 * ib + 3] | ((h[1] << 4) & 0x700), h[1] & 0x80 ? -1 : 1);
    }
}

float iq_grid_levels(dtype t, const void *blk, int8_t lv[256], int16_t ls[16]) {
    const uint8_t *b = blk;
    switch (t) {
    case DT_IQ2_XXS: lv_iq2_xxs(b, lv, ls); break;
    case DT_IQ2_XS: lv_iq2_xs(b, lv, ls); break;
    case DT_IQ2_S: lv_iq2_s(b, lv, ls); break;
    case DT_IQ3_XXS: lv_iq3_xxs(b, lv, ls); break;
    case DT_IQ3_S: lv_iq3_s(b, lv, ls); break;
    case DT_IQ1_S: lv_iq1_s(b, lv, ls); break;
    case DT_IQ1_M: lv_iq1_m(b, lv, ls); break;
    default: return 0.0f;
    }
    return f16_to_f32(iq_grid_dbits(t, b)) * iq_grid_c(t);
}

// Sign bytes for the SIMD products, for the 7-bit patterns the IQ2_XXS / IQ2_XS / IQ3_XXS blocks store
// (whose eighth bit makes the count of set bits even, as iq_ksigns_iq2xs): byte j is -1 (0xFF) where
// bit j of the full pattern is set, else +1.
#define PM1(i) (SM1(i) | (~SM1(i) & 0x0101010101010101ull))
#define PAR7(i) (((i) ^ (i) >> 1 ^ (i) >> 2 ^ (i) >> 3 ^ (i) >> 4 ^ (i) >> 5 ^ (i) >> 6) & 1)
#define KPM1(i) PM1((i) | PAR7(i) << 7)
#define KPM4(i) KPM1(i), KPM1((i) + 1), KPM1((i) + 2), KPM1((i) + 3)
#define KPM16(i) KPM4(i), KPM4((i) + 4), KPM4((i) + 8), KPM4((i) + 12)
#define KPM64(i) KPM16(i), KPM16((i) + 16), KPM16((i) + 32), KPM16((i) + 48)
static const uint64_t ksign_pm8[128] = {KPM64(0), KPM64(64)};

const iq_tables iq_tabs = {iq_iq2xxs_grid, iq_iq2xs_grid, iq_iq2s_grid, iq_iq3xxs_grid, iq_iq3s_grid,
                           ksign_pm8, iq_iq1s_grid};
