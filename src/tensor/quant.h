// Quantize / dequantize rows of every supported dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS; Q8_K as the activation format of the K-quant
// and IQ4_XS dot products).
// Block layouts are byte-identical to GGML's so GGUF tensors are used in place.
#ifndef SLLM_TENSOR_QUANT_H
#define SLLM_TENSOR_QUANT_H
#include "tensor/dtype.h"

// dst (n) <- src row of dtype t. n must be a multiple of the block size. Returns 0, or -1 if t is unsupported.
int dequantize_row(dtype t, const void *src, float *dst, int64_t n);
// The grid types' decoders alone (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S; quant_iq.c): 0,
// or -1 for another dtype. GGUF files of these types are read (llama.cpp writes them); sllm does not
// write them (their quantizers search the codebooks against an importance matrix).
int dequantize_row_iq(dtype t, const void *src, float *dst, int64_t n);
// One super-block of a grid type as integer levels for the products against Q8_K activations: value j
// = D x ls[j / 16] x lv[j] (D returned: the block's f16 scale times the type's constant, 1/8, 1/4 or 1),
// the same values as the decoders up to float rounding (tests/test_quant.c). 0 for another dtype.
float iq_grid_levels(dtype t, const void *blk, int8_t lv[256], int16_t ls[16]);
// D of iq_grid_levels = f16 (iq_grid_dbits) x iq_grid_c, inline for the SIMD products, which build the
// levels themselves: the bits of the f16 super-block scale (IQ1_M keeps it in the top nibbles of its
// four scale words, after 48 bytes), and the type's constant.
static inline uint16_t iq_grid_dbits(dtype t, const void *blk) {
    const uint8_t *b = blk;
    if (t != DT_IQ1_M) return (uint16_t)(b[0] | b[1] << 8);
    uint16_t s[4];
    for (int i = 0; i < 4; i++) s[i] = (uint16_t)(b[48 + 2 * i] | b[49 + 2 * i] << 8);
    return (uint16_t)((s[0] >> 12) | ((s[1] >> 8) & 0x00f0) | ((s[2] >> 4) & 0x0f00) | (s[3] & 0xf000));
}
static inline float iq_grid_c(dtype t) { return t == DT_IQ3_S ? 1.0f : t == DT_IQ3_XXS ? 0.25f : 0.125f; }
// The IQ2 / IQ3 codebooks (tensor/iq_grids.h, defined once in quant_iq.c) for the SIMD products
// (matmul_avx2.c), which build the same levels in registers.
typedef struct {
    const uint64_t *iq2xxs, *iq2xs, *iq2s;
    const uint32_t *iq3xxs, *iq3s;
    const uint64_t *kpm8;    // 7 sign bits -> 8 bytes of +1 / -1 (the eighth bit as ksigns)
    const uint64_t *iq1s;    // IQ1_S / IQ1_M rows: 8 int8 levels -1, 0, 1
} iq_tables;
extern const iq_tables iq_tabs;
// The same bits, with the AVX2 dequantizers (dequant_avx2.c) where the CPU has them: for the weight tiles
// of training and the prefill's widened rows (7-24x the scalar loops).
int dequantize_row_fast(dtype t, const void *src, float *dst, int64_t n);
// The AVX2 dequantizers themselves (call only on an AVX2 CPU): 0, or -1 for a dtype they do not take.
int dequantize_row_avx2(dtype t, const void *src, float *dst, int64_t n);
// dst row of dtype t <- src (n). Round-to-nearest with the same scale choice as GGML's reference
// quantizers (so files we write load in llama.cpp). Returns 0, or -1 if t is unsupported.
int quantize_row(dtype t, const float *src, void *dst, int64_t n);
bool dtype_can_quantize(dtype t);

// ---- block layouts (GGML's, byte for byte; f16 fields stored as raw uint16_t bits) ----
#define QK32 32                 // elements per block of the legacy quants
#define QK_K 256                // elements per super-block of the K-quants
typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;                  // x = d * (q - 8)
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;               // x = d * q + m
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;   // x = d * (q - 16)
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;
// Q2_K: 16 sub-blocks of 16, 2-bit levels, 4-bit scale (low nibble) and min (high nibble) per sub-block:
// x = d*sc*q - dmin*m. Element 128n + 32j + l is bits 2j..2j+1 of qs[32n + l], sub-block 8n + 2j + l/16.
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } blk_q2_K;
// Q3_K: 16 sub-blocks of 16, 3-bit levels (2 in qs as in Q2_K, the third in bit 4n + j of hmask[l]),
// 6-bit scales packed in 12 bytes (q3k_scale): x = d * (sc - 32) * (q - 4), q = low2 + 4 * hbit.
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } blk_q3_K;
// K-quants: 8 sub-blocks of 32 with 6-bit scales/mins packed in 12 bytes: x = d*sc*q - dmin*m
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
// 16 sub-blocks of 16 with int8 scales: x = d * sc * (q - 32), q 6 bits (4 in ql, 2 in qh)
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;
// IQ4_NL: blocks of 32, x = d * iq4_levels[nibble]; element j (0..15) is the low nibble of qs[j], element
// j + 16 its high nibble (the Q4_0 order).
typedef struct { uint16_t d; uint8_t qs[16]; } blk_iq4_nl;
// IQ4_XS: 8 sub-blocks of 32 with 6-bit scales (iq4xs_scale): x = d * (ls - 32) * iq4_levels[nibble],
// sub-block ib's nibbles in qs[16ib .. 16ib + 15] in IQ4_NL's order.
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } blk_iq4_xs;
// Activation format of the K-quant dot products: x ~ d * qs, bsums = sums of 16 consecutive qs.
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } blk_q8_K;
// sllm's own activation format for the 32-block quants (not a GGUF type): x ~ d * qs, sum = sum(qs),
// s = d * sum (the offset terms of Q4_0/Q5_0 use the integer sum, those of Q4_1/Q5_1 the float one).
// seed = -off * sum, filled by the matmul for the weight type at hand (0 after quantize_row_q8a): the
// packed prefill kernels start each block's integer product from it (tensor/matmul_kernels.h).
typedef struct { float d; float s; int32_t sum; int32_t seed; int8_t qs[32]; } blk_q8a;

// Q2_K / Q3_K level of element e (0..255): the 2-bit field (bits 2 * (e / 32 % 4) of qs[32 * (e / 128) +
// e % 32]), and Q3_K's third bit (bit e / 32 of hmask[e % 32]; set: level = low2, clear: low2 - 4).
static inline int q2k_low(const uint8_t *qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3; }
static inline int q3k_hbit(const uint8_t *hmask, int e) { return (hmask[e % 32] >> (e / 32)) & 1; }

// 6-bit scale (0..63; the factor is the value - 32) of sub-block j (0..15) of a Q3_K scales[12] array:
// low nibbles of bytes 0..7 for j < 8, high nibbles for j >= 8; the top two bits in bytes 8..11, at bit
// 2 * (j / 4) of byte 8 + j % 4.
static inline int q3k_scale(int j, const uint8_t *s) {
    int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    return lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// The 16 levels of IQ4_NL / IQ4_XS, in nibble order (ascending, non-uniform, none zero).
extern const int8_t iq4_levels[16];
// 6-bit scale (0..63; the factor is the value - 32) of IQ4_XS sub-block ib (0..7): the low 4 bits from
// nibble ib % 2 of scales_l[ib / 2], the top 2 bits from bits 2ib..2ib+1 of scales_h.
static inline int iq4xs_scale(const blk_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b->scales_h >> (2 * ib)) & 3) << 4);
}

// 6-bit scale / min of sub-block j (0..7) from a Q4_K/Q5_K scales[12] array.
static inline void q4k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}
// x (n) -> n/32 blk_q8a blocks (round to nearest, scale amax/127).
void quantize_row_q8a(const float *x, blk_q8a *y, int64_t n);
#endif
