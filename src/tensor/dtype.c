// The dtype table (GGML type ids, block geometry exactly as GGML defines it) and the scalar
// half/bfloat conversions every layer shares.
#include "tensor/dtype.h"
#include "tensor/matmul.h"
#include <stdint.h>
#include <string.h>
#include <strings.h>

static const dtype_info g_types[DT_COUNT] = {
    [DT_F32]  = {"f32", 1, 4, false},
    [DT_F16]  = {"f16", 1, 2, false},
    [DT_Q4_0] = {"q4_0", 32, 18, true},    // f16 scale + 16 bytes of nibbles
    [DT_Q4_1] = {"q4_1", 32, 20, true},    // f16 scale, f16 min + 16 bytes
    [DT_Q5_0] = {"q5_0", 32, 22, true},    // f16 scale + 4 bytes high bits + 16 bytes
    [DT_Q5_1] = {"q5_1", 32, 24, true},
    [DT_Q8_0] = {"q8_0", 32, 34, true},    // f16 scale + 32 int8
    [DT_Q8_1] = {"q8_1", 32, 36, true},    // f16 scale, f16 sum + 32 int8
    [DT_Q2_K] = {"q2_K", 256, 84, true},
    [DT_Q3_K] = {"q3_K", 256, 110, true},
    [DT_Q4_K] = {"q4_K", 256, 144, true},
    [DT_Q5_K] = {"q5_K", 256, 176, true},
    [DT_Q6_K] = {"q6_K", 256, 210, true},
    [DT_Q8_K] = {"q8_K", 256, 292, true},  // f32 scale + 256 int8 + 16 int16 block sums
    [DT_IQ4_NL] = {"iq4_nl", 32, 18, true},   // f16 scale + 16 bytes of nibbles indexing 16 fixed levels
    [DT_IQ4_XS] = {"iq4_xs", 256, 136, true}, // f16 scale, 6-bit sub-block scales + 128 bytes of nibbles
    // grid types (tensor/quant_iq.c): indices into fixed codebooks of 8 (or 4) levels, signs, scales
    [DT_IQ2_XXS] = {"iq2_xxs", 256, 66, true},
    [DT_IQ2_XS] = {"iq2_xs", 256, 74, true},
    [DT_IQ2_S] = {"iq2_s", 256, 82, true},
    [DT_IQ3_XXS] = {"iq3_xxs", 256, 98, true},
    [DT_IQ3_S] = {"iq3_s", 256, 110, true},
    [DT_IQ1_S] = {"iq1_s", 256, 50, true},
    [DT_IQ1_M] = {"iq1_m", 256, 56, true},
    [DT_I8]   = {"i8", 1, 1, false},
    [DT_I16]  = {"i16", 1, 2, false},
    [DT_I32]  = {"i32", 1, 4, false},
    [DT_I64]  = {"i64", 1, 8, false},
    [DT_F64]  = {"f64", 1, 8, false},
    [DT_BF16] = {"bf16", 1, 2, false},
};

const dtype_info *dtype_get(int type) {
    if (type < 0 || type >= DT_COUNT || !g_types[type].name) return NULL;
    return &g_types[type];
}

int dtype_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < DT_COUNT; t++)
        if (g_types[t].name && strcasecmp(g_types[t].name, name) == 0) return t;
    return -1;
}

size_t dtype_row_bytes(dtype t, int64_t n) {
    const dtype_info *d = dtype_get((int)t);
    if (!d || n < 0 || n % d->block) return 0;
    uint64_t blocks = (uint64_t)(n / d->block);
    if (blocks > SIZE_MAX / (uint64_t)d->block_bytes) return 0;   // would overflow size_t
    return (size_t)(blocks * (uint64_t)d->block_bytes);
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24 is exact in f32
        float v = (float)mant * 5.9604644775390625e-8f;
        return bits_f32(sign | f32_bits(v));
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));   // Inf / NaN (payload kept)
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

void f32_to_f16_row_ref(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_f16(x[i]);
}

void f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    if (isa_active() >= ISA_AVX2) f32_to_f16_row_f16c(x, y, n);   // AVX2 level implies F16C (isa_detect)
    else f32_to_f16_row_ref(x, y, n);
}

uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {                       // Inf or NaN
        if (ax == 0x7f800000u) return sign | 0x7c00;
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));   // stays a (quiet) NaN
    }
    if (ax >= 0x477ff000u) return sign | 0x7c00;   // >= 65520 rounds to Inf (tie goes to even = Inf)
    if (ax >= 0x38800000u) {                       // normal half: rebias exponent 127 -> 15
        uint32_t h = (ax - 0x38000000u) >> 13, rb = ax & 0x1fff;
        if (rb > 0x1000 || (rb == 0x1000 && (h & 1))) h++;   // carry into the exponent is correct
        return (uint16_t)(sign | h);
    }
    if (ax <= 0x33000000u) return sign;            // <= 2^-25 (half of the smallest subnormal) -> 0
    // subnormal half: value / 2^-24, rounded to nearest even
    uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;                      // 14..24
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);   // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1);                // round to nearest even; overflow goes to Inf
    return (uint16_t)(x >> 16);
}
