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

// IQ2_XXS (66 bytes): f16 d, then per 32 values two u32: four 8-bit grid indices, and 4 x 7-bit sign
// patterns (iq_ksigns_iq2xs expands 7 bits to 8 with even parity) under a 4-bit scale.
static void deq_iq2_xxs(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    for (int ib = 0; ib < 8; ib++, y += 32) {
        const uint8_t *q = b + 2 + 8 * ib;
        uint32_t signs = rd32(q + 4);
        float db = d * (0.5f + (float)(signs >> 28)) * 0.25f;
        for (int l = 0; l < 4; l++)
            put8(y + 8 * l, db, (const uint8_t *)&iq_iq2xxs_grid[q[l]], iq_ksigns_iq2xs[(signs >> (7 * l)) & 127]);
    }
}

// IQ2_XS (74 bytes): f16 d, 32 u16 (9-bit grid index, 7-bit sign pattern), 8 bytes of two 4-bit scales.
static void deq_iq2_xs(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *sc = b + 2 + 64;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        float db[2] = {d * (0.5f + (float)(sc[ib] & 15)) * 0.25f, d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f};
        for (int l = 0; l < 4; l++) {
            uint16_t w = rd16(b + 2 + 2 * (4 * ib + l));
            put8(y + 8 * l, db[l / 2], (const uint8_t *)&iq_iq2xs_grid[w & 511], iq_ksigns_iq2xs[w >> 9]);
        }
    }
}

// IQ2_S (82 bytes): f16 d, 32 low index bytes, 32 sign bytes, 8 bytes of the indices' top 2 bits (2 per
// 8 values), 8 bytes of two 4-bit scales.
static void deq_iq2_s(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2, *signs = b + 2 + 32, *qh = b + 2 + 64, *sc = b + 2 + 72;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        float db[2] = {d * (0.5f + (float)(sc[ib] & 15)) * 0.25f, d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f};
        for (int l = 0; l < 4; l++) {
            int idx = qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);
            put8(y + 8 * l, db[l / 2], (const uint8_t *)&iq_iq2s_grid[idx], signs[4 * ib + l]);
        }
    }
}

// IQ3_XXS (98 bytes): f16 d, 64 index bytes (two 4-value rows per 8 values), then per 32 values a u32
// of 4 x 7-bit sign patterns under a 4-bit scale.
static void deq_iq3_xxs(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2, *ss = b + 2 + 64;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        uint32_t w = rd32(ss + 4 * ib);
        float db = d * (0.5f + (float)(w >> 28)) * 0.5f;
        for (int l = 0; l < 4; l++)
            put4x2(y + 8 * l, db, (const uint8_t *)&iq_iq3xxs_grid[qs[8 * ib + 2 * l]],
                   (const uint8_t *)&iq_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], iq_ksigns_iq2xs[(w >> (7 * l)) & 127]);
    }
}

// IQ3_S (110 bytes): f16 d, 64 low index bytes, 8 bytes of the indices' 9th bits, 32 sign bytes, 4
// bytes of two 4-bit odd scales (1 + 2s) per 64 values.
static void deq_iq3_s(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2, *qh = b + 2 + 64, *signs = b + 2 + 72, *sc = b + 2 + 104;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        int s = ib % 2 ? sc[ib / 2] >> 4 : sc[ib / 2] & 15;
        float db = d * (float)(1 + 2 * s);
        for (int l = 0; l < 4; l++) {
            int i1 = qs[8 * ib + 2 * l] | ((qh[ib] << (8 - 2 * l)) & 256);
            int i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] << (7 - 2 * l)) & 256);
            put4x2(y + 8 * l, db, (const uint8_t *)&iq_iq3s_grid[i1], (const uint8_t *)&iq_iq3s_grid[i2],
                   signs[4 * ib + l]);
        }
    }
}

// 8 values of a signed IQ1 grid row (levels -1, 0, 1) shifted by delta, times dl.
static inline void put8_iq1(float *y, float dl, int idx, float delta) {
    const int8_t *g = (const int8_t *)&iq_iq1s_grid[idx];
    for (int j = 0; j < 8; j++) y[j] = dl * ((float)g[j] + delta);
}

// IQ1_S (50 bytes): f16 d, 32 low index bytes, then per 32 values a u16: 4 x 3 high index bits, a 3-bit
// odd scale and the delta's sign (bit 15).
static void deq_iq1_s(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        uint16_t h = rd16(b + 2 + 32 + 2 * ib);
        float dl = d * (float)(2 * ((h >> 12) & 7) + 1), delta = h & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
        for (int l = 0; l < 4; l++) put8_iq1(y + 8 * l, dl, qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8), delta);
    }
}

// IQ1_M (56 bytes, no separate scale field): 32 low index bytes, 16 bytes of (3 high index bits, delta
// sign) per 8 values, 8 bytes of 3-bit odd scales per 16 values whose top nibbles, four of them, hold
// the f16 super-block scale.
static void deq_iq1_m(const uint8_t *b, float *y) {
    const uint8_t *qs = b, *qh = b + 32;
    uint16_t sc[4];
    for (int i = 0; i < 4; i++) sc[i] = rd16(b + 48 + 2 * i);
    uint16_t dbits = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    float d = f16_to_f32(dbits);
    for (int ib = 0; ib < 8; ib++, y += 32) {
        float dl1 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1);
        float dl2 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1);
        const uint8_t *h = qh + 2 * ib;
        int idx[4] = {qs[4 * ib] | ((h[0] << 8) & 0x700), qs[4 * ib + 1] | ((h[0] << 4) & 0x700),
                      qs[4 * ib + 2] | ((h[1] << 8) & 0x700), qs[4 * ib + 3] | ((h[1] << 4) & 0x700)};
        float delta[4] = {h[0] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, h[0] & 0x80 ? -IQ1_DELTA : IQ1_DELTA,
                          h[1] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, h[1] & 0x80 ? -IQ1_DELTA : IQ1_DELTA};
        for (int l = 0; l < 4; l++) put8_iq1(y + 8 * l, l < 2 ? dl1 : dl2, idx[l], delta[l]);
    }
}

bool dtype_is_grid(dtype t) {
    return t == DT_IQ2_XXS || t == DT_IQ2_XS || t == DT_IQ2_S || t == DT_IQ3_XXS || t == DT_IQ3_S || t == DT_IQ1_S ||
           t == DT_IQ1_M;
}

int dequantize_row_iq(dtype t, const void *src, float *dst, int64_t n) {
    void (*f)(const uint8_t *, float *);
    switch (t) {
    case DT_IQ2_XXS: f = deq_iq2_xxs; break;
    case DT_IQ2_XS: f = deq_iq2_xs; break;
    case DT_IQ2_S: f = deq_iq2_s; break;
    case DT_IQ3_XXS: f = deq_iq3_xxs; break;
    case DT_IQ3_S: f = deq_iq3_s; break;
    case DT_IQ1_S: f = deq_iq1_s; break;
    case DT_IQ1_M: f = deq_iq1_m; break;
    default: return -1;
    }
    const dtype_info *di = dtype_get((int)t);
    if (n < 0 || n % 256) return -1;
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++) f(b + i * di->block_bytes, dst + i * 256);
    return 0;
}
