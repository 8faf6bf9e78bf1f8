// Quantize / dequantize rows of every dtype sllm computes with. Layouts and the reference
// (non-imatrix) quantizers follow GGML's published formats so our files load in llama.cpp and theirs
// load here; the code is written from the format description.
#include "tensor/quant.h"
#include "tensor/matmul.h"   // isa_active
#include <math.h>
#include <string.h>

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0");
_Static_assert(sizeof(blk_q2_K) == 84, "q2_K");
_Static_assert(sizeof(blk_q3_K) == 110, "q3_K");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K");
_Static_assert(sizeof(blk_q8_K) == 292, "q8_K");
_Static_assert(sizeof(blk_iq4_nl) == 18, "iq4_nl");
_Static_assert(sizeof(blk_iq4_xs) == 136, "iq4_xs");

const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

#define H2F(h) f16_to_f32(h)
#define F2H(f) f32_to_f16(f)
#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
// Round half to even, as GGML's nearest_int (valid for |v| < 2^22, which quantizer inputs respect).
static inline int nearest_int(float v) { return (int)lrintf(v); }

// ---------------------------------------------------------------- dequantize
static void deq_q4_0(const blk_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = H2F(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * ((b[i].qs[j] & 0xF) - 8);
            y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
        }
    }
}
static void deq_q4_1(const blk_q4_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = H2F(b[i].d), m = H2F(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (b[i].qs[j] & 0xF) + m;
            y[j + 16] = d * (b[i].qs[j] >> 4) + m;
        }
    }
}
static inline uint32_t load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void deq_q5_0(const blk_q5_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = H2F(b[i].d);
        uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = d * (((b[i].qs[j] & 0xF) | (h0 << 4)) - 16);
            y[j + 16] = d * (((b[i].qs[j] >> 4) | (h1 << 4)) - 16);
        }
    }
}
static void deq_q5_1(const blk_q5_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = H2F(b[i].d), m = H2F(b[i].m);
        uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = d * ((b[i].qs[j] & 0xF) | (h0 << 4)) + m;
            y[j + 16] = d * ((b[i].qs[j] >> 4) | (h1 << 4)) + m;
        }
    }
}
static void deq_q8_0(const blk_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = H2F(b[i].d);
        for (int j = 0; j < 32; j++) y[j] = d * b[i].qs[j];
    }
}
static void deq_q2_K(const blk_q2_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256) {
        float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        for (int e = 0; e < 256; e++) {
            int sc = b[i].scales[e / 16];
            y[e] = d * (float)(sc & 0xF) * (float)q2k_low(b[i].qs, e) - dmin * (float)(sc >> 4);
        }
    }
}
static void deq_q3_K(const blk_q3_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256) {
        float d = H2F(b[i].d);
        for (int e = 0; e < 256; e++) {
            int q = q2k_low(b[i].qs, e) + 4 * q3k_hbit(b[i].hmask, e);
            y[e] = d * (float)(q3k_scale(e / 16, b[i].scales) - 32) * (float)(q - 4);
        }
    }
}
// IQ4_NL / IQ4_XS: 16 nibbles of qs give 32 elements (low nibbles first), each scale * level.
static void deq_iq4_32(float dl, const uint8_t qs[16], float *y) {
    for (int j = 0; j < 16; j++) {
        y[j] = dl * (float)iq4_levels[qs[j] & 0xF];
        y[j + 16] = dl * (float)iq4_levels[qs[j] >> 4];
    }
}
static void deq_iq4_nl(const blk_iq4_nl *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) deq_iq4_32(H2F(b[i].d), b[i].qs, y);
}
static void deq_iq4_xs(const blk_iq4_xs *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = H2F(b[i].d);
        for (int ib = 0; ib < 8; ib++, y += 32)
            deq_iq4_32(d * (float)(iq4xs_scale(&b[i], ib) - 32), b[i].qs + 16 * ib, y);
    }
}
static void deq_q4_K(const blk_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc, m;
            q4k_scale_min(j, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            q4k_scale_min(j + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}
static void deq_q5_K(const blk_q5_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        for (int j = 0; j < 8; j += 2, ql += 32) {
            int sc, m;
            q4k_scale_min(j, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            q4k_scale_min(j + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            // bit j of qh[l] is the 5th bit of element l of sub-block j
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) | (((qh[l] >> j) & 1) << 4)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4)) - m2;
        }
    }
}
static void deq_q6_K(const blk_q6_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = H2F(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}
static void deq_q8_K(const blk_q8_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256)
        for (int j = 0; j < 256; j++) y[j] = b[i].d * b[i].qs[j];
}

int dequantize_row(dtype t, const void *src, float *dst, int64_t n) {
    const dtype_info *di = dtype_get((int)t);
    if (!di || n < 0 || n % di->block) return -1;
    int64_t nb = n / di->block;
    switch (t) {
    case DT_F32: memmove(dst, src, (size_t)n * sizeof(float)); return 0;
    case DT_F16: { const uint16_t *h = src; for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(h[i]); return 0; }
    case DT_BF16: { const uint16_t *h = src; for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(h[i]); return 0; }
    case DT_Q4_0: deq_q4_0(src, dst, nb); return 0;
    case DT_Q4_1: deq_q4_1(src, dst, nb); return 0;
    case DT_Q5_0: deq_q5_0(src, dst, nb); return 0;
    case DT_Q5_1: deq_q5_1(src, dst, nb); return 0;
    case DT_Q8_0: deq_q8_0(src, dst, nb); return 0;
    case DT_Q2_K: deq_q2_K(src, dst, nb); return 0;
    case DT_Q3_K: deq_q3_K(src, dst, nb); return 0;
    case DT_Q4_K: deq_q4_K(src, dst, nb); return 0;
    case DT_Q5_K: deq_q5_K(src, dst, nb); return 0;
    case DT_Q6_K: deq_q6_K(src, dst, nb); return 0;
    case DT_IQ4_NL: deq_iq4_nl(src, dst, nb); return 0;
    case DT_IQ4_XS: deq_iq4_xs(src, dst, nb); return 0;
    case DT_Q8_K: deq_q8_K(src, dst, nb); return 0;
    default: return dequantize_row_iq(t, src, dst, n);   // the grid types (quant_iq.c), or -1
    }
}

int dequantize_row_fast(dtype t, const void *src, float *dst, int64_t n) {
    if (isa_active() >= ISA_AVX2 && dequantize_row_avx2(t, src, dst, n) == 0) return 0;
    return dequantize_row(t, src, dst, n);
}

// ---------------------------------------------------------------- quantize (legacy 32-blocks)
static void q_q4_0(const float *x, blk_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < 16; j++) {
            // truncation of (v + 8.5) = round-half-up of v + 8, as the reference does
            int a = imin(15, (int8_t)(x[j] * id + 8.5f)), b = imin(15, (int8_t)(x[j + 16] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}
static void q_q4_1(const float *x, blk_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float mn = INFINITY, mx = -INFINITY;
        for (int j = 0; j < 32; j++) { if (x[j] < mn) mn = x[j]; if (x[j] > mx) mx = x[j]; }
        float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(mn);
        for (int j = 0; j < 16; j++) {
            int a = imin(15, (int8_t)((x[j] - mn) * id + 0.5f)), b = imin(15, (int8_t)((x[j + 16] - mn) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}
static void q_q5_0(const float *x, blk_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -16, id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = imin(31, (int8_t)(x[j] * id + 16.5f)), b = imin(31, (int8_t)(x[j + 16] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            qh |= (uint32_t)((a >> 4) & 1) << j;
            qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}
static void q_q5_1(const float *x, blk_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float mn = INFINITY, mx = -INFINITY;
        for (int j = 0; j < 32; j++) { if (x[j] < mn) mn = x[j]; if (x[j] > mx) mx = x[j]; }
        float d = (mx - mn) / 31, id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(mn);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = imin(31, (uint8_t)((x[j] - mn) * id + 0.5f)), b = imin(31, (uint8_t)((x[j + 16] - mn) * id + 0.5f));
            y[i].qs[j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            qh |= (uint32_t)((a >> 4) & 1) << j;
            qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}
static void q_q8_0(const float *x, blk_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void quantize_row_q8a(const float *x, blk_q8a *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = nearest_int(x[j] * id);
            y[i].qs[j] = (int8_t)v;
            sum += v;
        }
        y[i].d = d;
        y[i].s = d * (float)sum;
        y[i].sum = sum;
        y[i].seed = 0;
    }
}

// ---------------------------------------------------------------- quantize (K-quants)
// Weighted least-squares fit of x ~ scale * L + min with L in [0, nmax], min <= 0, searching a few
// candidate inverse scales around nmax / (max - min) (GGML's make_qkx2_quants procedure).
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                           uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        memset(L, 0, (size_t)n);
        *the_min = -mn;
        return 0.f;
    }
    float iscale = nmax / (mx - mn), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - mn))));
        L[i] = (uint8_t)l;
        float diff = scale * l + mn - x[i];
        best += w[i] * diff * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - mn))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) { this_min = 0; this_scale = sum_xl / sum_l2; }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * diff * diff;
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    *the_min = -mn;
    return scale;
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-sub-block scale/min fit, 6-bit packing of the
// scales, then requantization of every element against the rounded scales. L gets 256 levels.
static void kquant_scales(const float *x, int nmax, float rmin, int nstep, uint16_t *dh, uint16_t *dminh,
                          uint8_t scales_out[12], uint8_t L[256]) {
    float scales[8], mins[8], w[32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = imin(63, nearest_int(inv_scale * scales[j]));
        int lm = imin(63, nearest_int(inv_min * mins[j]));
        if (j < 4) {
            scales_out[j] = (uint8_t)ls;
            scales_out[j + 4] = (uint8_t)lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dh = F2H(max_scale / 63.f);
    *dminh = F2H(max_min / 63.f);
    float d = H2F(*dh), dmin = H2F(*dminh);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_scale_min(j, scales_out, &sc, &m);
        float dd = d * sc;
        if (!dd) continue;
        float dm = dmin * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, nearest_int((x[32 * j + ii] + dm) / dd)));
    }
}

static void q_q4_K(const float *x, blk_q4_K *y, int64_t nb) {
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        kquant_scales(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < 256; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}
static void q_q5_K(const float *x, blk_q5_K *y, int64_t nb) {
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        kquant_scales(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, 32);
        uint8_t *ql = y[i].qs, m1 = 1, m2 = 2;
        for (int n = 0; n < 256; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; y[i].qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; y[i].qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

// Symmetric fit x ~ scale * (L - nmax) weighted by x^2, searching 18 candidate scales
// (GGML's make_qx_quants with rmse_type 1), used for Q6_K's 16-element sub-blocks.
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax < GROUP_MAX_EPS) { memset(L, 0, (size_t)n); return 0.f; }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// fit_scale_sym over the 16 sub-blocks of 16 of a super-block: scales[], and the scale of largest
// magnitude (returned, with its magnitude in *amax).
static float fit_sym_16x16(const float *x, int nmax, int8_t L[256], float scales[16], float *amax) {
    float max_scale = 0;
    *amax = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = fit_scale_sym(16, nmax, x + 16 * j, L + 16 * j);
        if (fabsf(scales[j]) > *amax) { *amax = fabsf(scales[j]); max_scale = scales[j]; }
    }
    return max_scale;
}

static void q_q6_K(const float *x, blk_q6_K *y, int64_t nb) {
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_abs, max_scale = fit_sym_16x16(x, 32, L, scales, &max_abs);
        if (max_abs < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = F2H(1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; j++) {
            float d = H2F(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + ii] / d))) + 32);
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

// The 2-bit fields of 256 levels (Q2_K's, Q3_K's low bits) into qs[64] (q2k_low's layout).
static void pack_q2_low(const uint8_t L[256], uint8_t qs[64]) {
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *a = L + 128 * n + l;
            qs[32 * n + l] = (uint8_t)((a[0] & 3) | ((a[32] & 3) << 2) | ((a[64] & 3) << 4) | ((a[96] & 3) << 6));
        }
}

// Q2_K: per 16-element sub-block a weighted scale / min fit (levels 0..3), the 16 scales and mins
// rounded to 4 bits against the largest of each, then every element requantized with the rounded ones.
static void q_q2_K(const float *x, blk_q2_K *y, int64_t nb) {
    uint8_t L[256], Laux[16];
    float scales[16], mins[16], w[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float is = max_scale > 0 ? 15.f / max_scale : 0.f, im = max_min > 0 ? 15.f / max_min : 0.f;
        for (int j = 0; j < 16; j++)
            y[i].scales[j] = (uint8_t)(imin(15, nearest_int(is * scales[j])) | (imin(15, nearest_int(im * mins[j])) << 4));
        y[i].d = F2H(max_scale / 15.f);
        y[i].dmin = F2H(max_min / 15.f);
        float d = H2F(y[i].d), dmin = H2F(y[i].dmin);
        for (int j = 0; j < 16; j++) {
            float dd = d * (float)(y[i].scales[j] & 0xF);
            if (!dd) continue;
            float dm = dmin * (float)(y[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)imax(0, imin(3, nearest_int((x[16 * j + l] + dm) / dd)));
        }
        pack_q2_low(L, y[i].qs);
    }
}

// Q3_K: per 16-element sub-block a symmetric fit (levels -4..3), the 16 scales rounded to 6 bits
// against the largest magnitude (as -32), then every element requantized with the rounded scales.
static void q_q3_K(const float *x, blk_q3_K *y, int64_t nb) {
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float amax, max_scale = fit_sym_16x16(x, 4, L, scales, &amax);
        memset(&y[i], 0, sizeof y[i]);
        if (amax < GROUP_MAX_EPS) continue;
        float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; j++) {
            int l = imax(-32, imin(31, nearest_int(iscale * scales[j]))) + 32;
            if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
            else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
            y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        y[i].d = F2H(1 / iscale);
        float d = H2F(y[i].d);
        uint8_t U[256];
        for (int e = 0; e < 256; e++) {
            float dd = d * (float)(q3k_scale(e / 16, y[i].scales) - 32);
            int q = dd ? imax(-4, imin(3, nearest_int(x[e] / dd))) + 4 : 4;
            if (q > 3) y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
            U[e] = (uint8_t)(q & 3);
        }
        pack_q2_low(U, y[i].qs);
    }
}

// ---------------------------------------------------------------- quantize (IQ4_NL / IQ4_XS)
// Indices of the IQ4 levels nearest v[0..31] (the lower one on a tie): the number of midpoints between
// consecutive levels below each value (branch-free, and the compiler vectorizes it across the 32).
static void iq4_nearest32(const float *restrict v, int *restrict k) {
    for (int i = 0; i < 32; i++) k[i] = 0;
    for (int m = 0; m < 15; m++) {
        float mid = 0.5f * (float)(iq4_levels[m] + iq4_levels[m + 1]);
        for (int i = 0; i < 32; i++) k[i] += v[i] > mid;
    }
}

// Scale of 32 values against the IQ4 levels: candidate inverse scales put the value of largest magnitude
// on an end level (-127 or 113) or up to IQ4_TRY level units inside or past it; each candidate's nearest
// levels are refit by least squares, and the fit of least squared error (largest sum(x l)^2 / sum(l^2))
// is kept. 0 for an all-zero block.
#define IQ4_TRY 7
static float iq4_fit(const float x[32]) {
    float amax = 0, max = 0;
    for (int i = 0; i < 32; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax < GROUP_MAX_EPS) return 0.f;
    float best = -1, d = 0, v[32];
    int k[32];
    for (int end = 0; end < 2; end++)
        for (int s = -IQ4_TRY; s <= IQ4_TRY; s++) {
            float id = ((end ? 113.f : -127.f) + (float)s) / max, sxl = 0, sll = 0;
            for (int i = 0; i < 32; i++) v[i] = id * x[i];
            iq4_nearest32(v, k);
            for (int i = 0; i < 32; i++) {
                float l = iq4_levels[k[i]];
                sxl += x[i] * l;
                sll += l * l;
            }
            if (sxl * sxl / sll > best) {   // sll >= 32: no level is 0
                best = sxl * sxl / sll;
                d = sxl / sll;
            }
        }
    return d;
}

// 32 values at scale dl (as stored, so the levels fit the rounded scale) into 16 bytes of nibbles.
static void iq4_pack32(const float *x, float dl, uint8_t qs[16]) {
    float id = dl ? 1.f / dl : 0.f, v[32];
    int k[32];
    for (int i = 0; i < 32; i++) v[i] = x[i] * id;
    iq4_nearest32(v, k);
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(k[j] | (k[j + 16] << 4));
}
static void q_iq4_nl(const float *x, blk_iq4_nl *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        y[i].d = F2H(iq4_fit(x));
        iq4_pack32(x, H2F(y[i].d), y[i].qs);
    }
}

// IQ4_XS: iq4_fit per 32-element sub-block, the 8 scales rounded to 6 bits (ls - 32 in -32..31) against
// the one of largest magnitude (as -32), then each sub-block's levels refit to its rounded scale.
static void q_iq4_xs(const float *x, blk_iq4_xs *y, int64_t nb) {
    float sc[8];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float amax = 0, max_scale = 0;
        for (int ib = 0; ib < 8; ib++) {
            sc[ib] = iq4_fit(x + 32 * ib);
            if (fabsf(sc[ib]) > amax) { amax = fabsf(sc[ib]); max_scale = sc[ib]; }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (amax < GROUP_MAX_EPS) continue;
        y[i].d = F2H(max_scale / -32.f);
        float d = H2F(y[i].d), id = d ? 1.f / d : 0.f;
        for (int ib = 0; ib < 8; ib++) {
            int ls = imax(-32, imin(31, nearest_int(id * sc[ib]))) + 32;
            y[i].scales_l[ib / 2] |= (uint8_t)((ls & 0xF) << (4 * (ib % 2)));
            y[i].scales_h |= (uint16_t)((ls >> 4) << (2 * ib));
            iq4_pack32(x + 32 * ib, d * (float)(ls - 32), y[i].qs + 16 * ib);
        }
    }
}

static void q_q8_K(const float *x, blk_q8_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int k = 0; k < 16; k++) s += y[i].qs[16 * j + k];
            y[i].bsums[j] = (int16_t)s;
        }
        y[i].d = 1 / iscale;
    }
}

bool dtype_can_quantize(dtype t) {
    switch (t) {
    case DT_F32: case DT_F16: case DT_BF16: case DT_Q4_0: case DT_Q4_1: case DT_Q5_0: case DT_Q5_1:
    case DT_Q8_0: case DT_Q2_K: case DT_Q3_K: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: case DT_Q8_K:
    case DT_IQ4_NL: case DT_IQ4_XS:
        return true;
    default:
        return false;
    }
}

int quantize_row(dtype t, const float *src, void *dst, int64_t n) {
    const dtype_info *di = dtype_get((int)t);
    if (!di || !dtype_can_quantize(t) || n < 0 || n % di->block) return -1;
    int64_t nb = n / di->block;
    switch (t) {
    case DT_F32: memmove(dst, src, (size_t)n * sizeof(float)); return 0;
    case DT_F16: { uint16_t *h = dst; for (int64_t i = 0; i < n; i++) h[i] = f32_to_f16(src[i]); return 0; }
    case DT_BF16: { uint16_t *h = dst; for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16(src[i]); return 0; }
    case DT_Q4_0: q_q4_0(src, dst, nb); return 0;
    case DT_Q4_1: q_q4_1(src, dst, nb); return 0;
    case DT_Q5_0: q_q5_0(src, dst, nb); return 0;
    case DT_Q5_1: q_q5_1(src, dst, nb); return 0;
    case DT_Q8_0: q_q8_0(src, dst, nb); return 0;
    case DT_Q2_K: q_q2_K(src, dst, nb); return 0;
    case DT_Q3_K: q_q3_K(src, dst, nb); return 0;
    case DT_Q4_K: q_q4_K(src, dst, nb); return 0;
    case DT_Q5_K: q_q5_K(src, dst, nb); return 0;
    case DT_Q6_K: q_q6_K(src, dst, nb); return 0;
    case DT_Q8_K: q_q8_K(src, dst, nb); return 0;
    case DT_IQ4_NL: q_iq4_nl(src, dst, nb); return 0;
    case DT_IQ4_XS: q_iq4_xs(src, dst, nb); return 0;
    default: return -1;
    }
}
