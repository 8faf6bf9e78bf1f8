// The grid types' super-block decoders (IQ2_XXS ... IQ1_M), included by quant_iq.c (scalar) and
// dequant_avx2.c (AVX2): the block walking is written once, the includer defines how 8 values are
// formed. Before including, define IQ_NAME(x) (the functions' names), IQ_PUT8(y, scale, row, signs) (8
// values scale x row[j], sign bit j of signs flipping value j), IQ_PUT4X2(y, scale, a, b, signs) (the
// same from two 4-byte rows) and IQ_PUT8_IQ1(y, dl, idx, delta) (dl x (grid row idx's int8 j + delta)).
// Every value is formed with GGML's float operations in GGML's order, so either includer's results are
// bit-identical to GGML's decoders. rd16 / rd32 / IQ1_DELTA and tensor/iq_grids.h come from the includer.
// IQ2_XXS (66 bytes): f16 d, then per 32 values two u32: four 8-bit grid indices, and 4 x 7-bit sign
// patterns (iq_ksigns_iq2xs expands 7 bits to 8 with even parity) under a 4-bit scale.
static void IQ_NAME(deq_iq2_xxs)(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    for (int ib = 0; ib < 8; ib++, y += 32) {
        const uint8_t *q = b + 2 + 8 * ib;
        uint32_t signs = rd32(q + 4);
        float db = d * (0.5f + (float)(signs >> 28)) * 0.25f;
        for (int l = 0; l < 4; l++)
            IQ_PUT8(y + 8 * l, db, (const uint8_t *)&iq_iq2xxs_grid[q[l]], iq_ksigns_iq2xs[(signs >> (7 * l)) & 127]);
    }
}

// IQ2_XS (74 bytes): f16 d, 32 u16 (9-bit grid index, 7-bit sign pattern), 8 bytes of two 4-bit scales.
static void IQ_NAME(deq_iq2_xs)(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *sc = b + 2 + 64;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        float db[2] = {d * (0.5f + (float)(sc[ib] & 15)) * 0.25f, d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f};
        for (int l = 0; l < 4; l++) {
            uint16_t w = rd16(b + 2 + 2 * (4 * ib + l));
            IQ_PUT8(y + 8 * l, db[l / 2], (const uint8_t *)&iq_iq2xs_grid[w & 511], iq_ksigns_iq2xs[w >> 9]);
        }
    }
}

// IQ2_S (82 bytes): f16 d, 32 low index bytes, 32 sign bytes, 8 bytes of the indices' top 2 bits (2 per
// 8 values), 8 bytes of two 4-bit scales.
static void IQ_NAME(deq_iq2_s)(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2, *signs = b + 2 + 32, *qh = b + 2 + 64, *sc = b + 2 + 72;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        float db[2] = {d * (0.5f + (float)(sc[ib] & 15)) * 0.25f, d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f};
        for (int l = 0; l < 4; l++) {
            int idx = qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);
            IQ_PUT8(y + 8 * l, db[l / 2], (const uint8_t *)&iq_iq2s_grid[idx], signs[4 * ib + l]);
        }
    }
}

// IQ3_XXS (98 bytes): f16 d, 64 index bytes (two 4-value rows per 8 values), then per 32 values a u32
// of 4 x 7-bit sign patterns under a 4-bit scale.
static void IQ_NAME(deq_iq3_xxs)(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2, *ss = b + 2 + 64;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        uint32_t w = rd32(ss + 4 * ib);
        float db = d * (0.5f + (float)(w >> 28)) * 0.5f;
        for (int l = 0; l < 4; l++)
            IQ_PUT4X2(y + 8 * l, db, (const uint8_t *)&iq_iq3xxs_grid[qs[8 * ib + 2 * l]],
                   (const uint8_t *)&iq_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], iq_ksigns_iq2xs[(w >> (7 * l)) & 127]);
    }
}

// IQ3_S (110 bytes): f16 d, 64 low index bytes, 8 bytes of the indices' 9th bits, 32 sign bytes, 4
// bytes of two 4-bit odd scales (1 + 2s) per 64 values.
static void IQ_NAME(deq_iq3_s)(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2, *qh = b + 2 + 64, *signs = b + 2 + 72, *sc = b + 2 + 104;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        int s = ib % 2 ? sc[ib / 2] >> 4 : sc[ib / 2] & 15;
        float db = d * (float)(1 + 2 * s);
        for (int l = 0; l < 4; l++) {
            int i1 = qs[8 * ib + 2 * l] | ((qh[ib] << (8 - 2 * l)) & 256);
            int i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] << (7 - 2 * l)) & 256);
            IQ_PUT4X2(y + 8 * l, db, (const uint8_t *)&iq_iq3s_grid[i1], (const uint8_t *)&iq_iq3s_grid[i2],
                   signs[4 * ib + l]);
        }
    }
}

// IQ1_S (50 bytes): f16 d, 32 low index bytes, then per 32 values a u16: 4 x 3 high index bits, a 3-bit
// odd scale and the delta's sign (bit 15).
static void IQ_NAME(deq_iq1_s)(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    const uint8_t *qs = b + 2;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        uint16_t h = rd16(b + 2 + 32 + 2 * ib);
        float dl = d * (float)(2 * ((h >> 12) & 7) + 1), delta = h & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
        for (int l = 0; l < 4; l++) IQ_PUT8_IQ1(y + 8 * l, dl, qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8), delta);
    }
}

// IQ1_M (56 bytes, no separate scale field): 32 low index bytes, 16 bytes of (3 high index bits, delta
// sign) per 8 values, 8 bytes of 3-bit odd scales per 16 values whose top nibbles, four of them, hold
// the f16 super-block scale.
static void IQ_NAME(deq_iq1_m)(const uint8_t *b, float *y) {
    const uint8_t *qs = b, *qh = b + 32;
    uint16_t sc[4];
    for (int i = 0; i < 4; i++) sc[i] = rd16(b + 48 + 2 * i);
    float d = f16_to_f32(iq_grid_dbits(DT_IQ1_M, b));
    for (int ib = 0; ib < 8; ib++, y += 32) {
        float dl1 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1);
        float dl2 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1);
        const uint8_t *h = qh + 2 * ib;
        int idx[4] = {qs[4 * ib] | ((h[0] << 8) & 0x700), qs[4 * ib + 1] | ((h[0] << 4) & 0x700),
                      qs[4 * ib + 2] | ((h[1] << 8) & 0x700), qs[4 * ib + 3] | ((h[1] << 4) & 0x700)};
        float delta[4] = {h[0] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, h[0] & 0x80 ? -IQ1_DELTA : IQ1_DELTA,
                          h[1] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, h[1] & 0x80 ? -IQ1_DELTA : IQ1_DELTA};
        for (int l = 0; l < 4; l++) IQ_PUT8_IQ1(y + 8 * l, l < 2 ? dl1 : dl2, idx[l], delta[l]);
    }
}

// n / 256 super-blocks of dtype t from b into y: 0, or -1 for a dtype that is not a grid type.
static int IQ_NAME(deq_grid_row)(dtype t, const uint8_t *b, float *y, int64_t nb) {
    void (*f)(const uint8_t *, float *);
    switch (t) {
    case DT_IQ2_XXS: f = IQ_NAME(deq_iq2_xxs); break;
    case DT_IQ2_XS: f = IQ_NAME(deq_iq2_xs); break;
    case DT_IQ2_S: f = IQ_NAME(deq_iq2_s); break;
    case DT_IQ3_XXS: f = IQ_NAME(deq_iq3_xxs); break;
    case DT_IQ3_S: f = IQ_NAME(deq_iq3_s); break;
    case DT_IQ1_S: f = IQ_NAME(deq_iq1_s); break;
    case DT_IQ1_M: f = IQ_NAME(deq_iq1_m); break;
    default: return -1;
    }
    size_t bb = (size_t)dtype_get((int)t)->block_bytes;
    for (int64_t i = 0; i < nb; i++) f(b + (size_t)i * bb, y + i * 256);
    return 0;
}

#undef IQ_NAME
#undef IQ_PUT8
#undef IQ_PUT4X2
#undef IQ_PUT8_IQ1
