// Matrix products against weights of any dtype: ISA dispatch, activation quantization, the split
// across threads, and the scalar reference kernels every SIMD kernel is tested against.
//
// Quantized weights are multiplied the way llama.cpp does it: the activation rows are quantized once
// to 8 bits (blk_q8a for 32-blocks, blk_q8_K for K-quants) and the kernels do integer dot products
// per block, scaling by the two block scales in f32. Prefill (T > 1) hands each kernel call up to 4
// activation rows so each weight block is unpacked once for 4 rows.
#include "tensor/matmul.h"
#include "tensor/matmul_kernels.h"
#include "tensor/ops.h"
#include "tensor/quant.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// ---------------------------------------------------------------- ISA selection
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
// F16C by cpuid directly: clang's __builtin_cpu_supports does not know the "f16c" name.
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

isa_level isa_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16") &&
        __builtin_cpu_supports("fma") && has_f16c())
        return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return ISA_AVX2;
#endif
    return ISA_SCALAR;
}

static atomic_int g_isa = -1;

isa_level isa_active(void) {
    int l = atomic_load_explicit(&g_isa, memory_order_relaxed);
    if (l >= 0) return (isa_level)l;
    l = (int)isa_detect();
    const char *e = getenv("SLLM_ISA");
    if (e && *e) {
        int cap = !strcasecmp(e, "scalar") ? ISA_SCALAR : !strcasecmp(e, "avx2") ? ISA_AVX2 : ISA_AVX512;
        if (cap < l) l = cap;
    }
    atomic_store_explicit(&g_isa, l, memory_order_relaxed);
    return (isa_level)l;
}

void isa_force(isa_level l) {
    isa_level d = isa_detect();
    atomic_store_explicit(&g_isa, (int)(l < d ? l : d), memory_order_relaxed);
}

// ---------------------------------------------------------------- scalar reference kernels
#define XROW(x, xs, r) ((const void *)((const char *)(x) + (size_t)(r) * (xs)))

static void dot_f32_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const float *wf = w;
    for (int r = 0; r < R; r++) {
        const float *xr = XROW(x, xs, r);
        float s = 0;
        for (int64_t k = 0; k < K; k++) s += wf[k] * xr[k];
        out[r] = s;
    }
}
static void dot_f16_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const uint16_t *wh = w;
    for (int r = 0; r < R; r++) {
        const float *xr = XROW(x, xs, r);
        float s = 0;
        for (int64_t k = 0; k < K; k++) s += f16_to_f32(wh[k]) * xr[k];
        out[r] = s;
    }
}
static void dot_bf16_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const uint16_t *wh = w;
    for (int r = 0; r < R; r++) {
        const float *xr = XROW(x, xs, r);
        float s = 0;
        for (int64_t k = 0; k < K; k++) s += bf16_to_f32(wh[k]) * xr[k];
        out[r] = s;
    }
}

// The grid types (IQ1 / IQ2 / IQ3, tensor/quant_iq.c) against blk_q8_K: each super-block's integer
// levels once for the R rows (iq_grid_levels), per 16 values an exact integer sum times the level scale,
// then one float step per (super-block, row): out += (D x dx) x sum.
static void dot_grid(dtype t, int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    int8_t lv[256];
    int16_t ls[16];
    size_t bb = (size_t)dtype_get((int)t)->block_bytes;
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t b = 0; b < K / 256; b++) {
        float D = iq_grid_levels(t, (const char *)w + (size_t)b * bb, lv, ls);
        for (int r = 0; r < R; r++) {
            const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + b;
            int32_t sumi = 0;
            for (int i = 0; i < 16; i++) {
                int32_t s = 0;
                for (int j = 0; j < 16; j++) s += lv[16 * i + j] * xb->qs[16 * i + j];
                sumi += ls[i] * s;
            }
            out[r] += D * xb->d * (float)sumi;
        }
    }
}
#define DOT_GRID(name, T)                                                                   \
    static void name(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) { \
        dot_grid(T, K, w, x, xs, R, out);                                                   \
    }
DOT_GRID(dot_iq2_xxs_ref, DT_IQ2_XXS)
DOT_GRID(dot_iq2_xs_ref, DT_IQ2_XS)
DOT_GRID(dot_iq2_s_ref, DT_IQ2_S)
DOT_GRID(dot_iq3_xxs_ref, DT_IQ3_XXS)
DOT_GRID(dot_iq3_s_ref, DT_IQ3_S)
DOT_GRID(dot_iq1_s_ref, DT_IQ1_S)
DOT_GRID(dot_iq1_m_ref, DT_IQ1_M)

// The 32-block quants against blk_q8a: unpack the block's integer levels q[32] (0-based, i.e. before
// subtracting any offset), then block value = dw*dx*(sum(q*xq) - off*sum(xq)) + m*s, with the integer
// offset off (8 for Q4_0, 16 for Q5_0, 128 for IQ4_NL's signed table levels) or the stored f32 min m
// (Q4_1, Q5_1).
static void unpack32(dtype t, const void *blk, int q[32], float *dw, float *m, int *off) {
    *off = 0;
    switch (t) {
    case DT_Q4_0: { const blk_q4_0 *b = blk; *dw = f16_to_f32(b->d); *m = 0; *off = 8;
        for (int j = 0; j < 16; j++) { q[j] = b->qs[j] & 0xF; q[j + 16] = b->qs[j] >> 4; } break; }
    case DT_Q4_1: { const blk_q4_1 *b = blk; *dw = f16_to_f32(b->d); *m = f16_to_f32(b->m);
        for (int j = 0; j < 16; j++) { q[j] = b->qs[j] & 0xF; q[j + 16] = b->qs[j] >> 4; } break; }
    case DT_Q5_0: { const blk_q5_0 *b = blk; *dw = f16_to_f32(b->d); *m = 0; *off = 16;
        uint32_t qh; memcpy(&qh, b->qh, 4);
        for (int j = 0; j < 16; j++) {
            q[j] = (b->qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            q[j + 16] = (b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
        } break; }
    case DT_IQ4_NL: { const blk_iq4_nl *b = blk; *dw = f16_to_f32(b->d); *m = 0; *off = 128;
        for (int j = 0; j < 16; j++) { q[j] = iq4_levels[b->qs[j] & 0xF] + 128; q[j + 16] = iq4_levels[b->qs[j] >> 4] + 128; }
        break; }
    case DT_Q5_1: { const blk_q5_1 *b = blk; *dw = f16_to_f32(b->d); *m = f16_to_f32(b->m);
        uint32_t qh; memcpy(&qh, b->qh, 4);
        for (int j = 0; j < 16; j++) {
            q[j] = (b->qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            q[j + 16] = (b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
        } break; }
    default: { const blk_q8_0 *b = blk; *dw = f16_to_f32(b->d); *m = 0;
        for (int j = 0; j < 32; j++) q[j] = b->qs[j];
        break; }
    }
}

static void dot_q32_ref(dtype t, int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    size_t bb = (size_t)dtype_get((int)t)->block_bytes;
    int64_t nb = K / 32;
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t i = 0; i < nb; i++) {
        int q[32];
        float dw, m;
        int off;
        unpack32(t, (const char *)w + i * bb, q, &dw, &m, &off);
        for (int r = 0; r < R; r++) {
            const blk_q8a *xb = (const blk_q8a *)XROW(x, xs, r) + i;
            int isum = -off * xb->sum;
            for (int j = 0; j < 32; j++) isum += q[j] * xb->qs[j];
            out[r] += dw * xb->d * (float)isum + m * xb->s;
        }
    }
}
#define DEF_Q32_REF(name, T) \
    static void name(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) { \
        dot_q32_ref(T, K, w, x, xs, R, out); }
DEF_Q32_REF(dot_q4_0_ref, DT_Q4_0)
DEF_Q32_REF(dot_iq4_nl_ref, DT_IQ4_NL)
DEF_Q32_REF(dot_q4_1_ref, DT_Q4_1)
DEF_Q32_REF(dot_q5_0_ref, DT_Q5_0)
DEF_Q32_REF(dot_q5_1_ref, DT_Q5_1)
DEF_Q32_REF(dot_q8_0_ref, DT_Q8_0)

// K-quants against blk_q8_K: integer sums over the whole super-block, then two f32 products.
static void dot_q4_K_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const blk_q4_K *b = w;
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t i = 0; i < K / 256; i++) {
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) q4k_scale_min(j, b[i].scales, &sc[j], &mn[j]);
        float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
        for (int r = 0; r < R; r++) {
            const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + i;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                const uint8_t *q = b[i].qs + 32 * (j / 2);
                int s = 0;
                for (int l = 0; l < 32; l++) s += ((j & 1) ? q[l] >> 4 : q[l] & 0xF) * xb->qs[32 * j + l];
                sumi += sc[j] * s;
                summ += mn[j] * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
            }
            out[r] += d * xb->d * (float)sumi - dmin * xb->d * (float)summ;
        }
    }
}
static void dot_q5_K_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const blk_q5_K *b = w;
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t i = 0; i < K / 256; i++) {
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) q4k_scale_min(j, b[i].scales, &sc[j], &mn[j]);
        float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
        for (int r = 0; r < R; r++) {
            const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + i;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                const uint8_t *q = b[i].qs + 32 * (j / 2);
                int s = 0;
                for (int l = 0; l < 32; l++) {
                    int v = ((j & 1) ? q[l] >> 4 : q[l] & 0xF) | (((b[i].qh[l] >> j) & 1) << 4);
                    s += v * xb->qs[32 * j + l];
                }
                sumi += sc[j] * s;
                summ += mn[j] * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
            }
            out[r] += d * xb->d * (float)sumi - dmin * xb->d * (float)summ;
        }
    }
}
// The 256 levels of a Q2_K super-block (0..3) or a Q3_K one (q + 4, 0..7) in element order.
static void unpack_q23_K(const void *blk, int q3, uint8_t q[256]) {
    const blk_q2_K *b2 = blk;
    const blk_q3_K *b3 = blk;
    for (int e = 0; e < 256; e++)
        q[e] = (uint8_t)(q3 ? q2k_low(b3->qs, e) + 4 * q3k_hbit(b3->hmask, e) : q2k_low(b2->qs, e));
}
// Q2_K / Q3_K: the 256 levels of a super-block unpacked (Q3_K's as q + 4 in 0..7), then per sub-block of
// 16 an integer sum times its scale; Q2_K's mins and Q3_K's -4 offset through the activation block sums.
static void dot_q23_K_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out, int q3) {
    const size_t bb = q3 ? sizeof(blk_q3_K) : sizeof(blk_q2_K);
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t i = 0; i < K / 256; i++) {
        const void *blk = (const char *)w + (size_t)i * bb;
        const blk_q2_K *b2 = blk;
        const blk_q3_K *b3 = blk;
        uint8_t q[256];
        int sc[16], mn[16];
        unpack_q23_K(blk, q3, q);
        for (int j = 0; j < 16; j++) {
            sc[j] = q3 ? q3k_scale(j, b3->scales) - 32 : b2->scales[j] & 0xF;
            mn[j] = q3 ? 0 : b2->scales[j] >> 4;
        }
        float d = f16_to_f32(q3 ? b3->d : b2->d), dmin = q3 ? 0.f : f16_to_f32(b2->dmin);
        for (int r = 0; r < R; r++) {
            const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + i;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 16; j++) {
                int s = q3 ? -4 * xb->bsums[j] : 0;
                for (int l = 0; l < 16; l++) s += q[16 * j + l] * xb->qs[16 * j + l];
                sumi += sc[j] * s;
                summ += mn[j] * xb->bsums[j];
            }
            out[r] += d * xb->d * (float)sumi - dmin * xb->d * (float)summ;
        }
    }
}
static void dot_q2_K_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    dot_q23_K_ref(K, w, x, xs, R, out, 0);
}
static void dot_q3_K_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    dot_q23_K_ref(K, w, x, xs, R, out, 1);
}

// IQ4_NL / IQ4_XS: the signed levels of 32 elements (16 bytes of nibbles, low nibbles first) times the
// activation levels, an exact integer sum.
static int iq4_dot32(const uint8_t qs[16], const int8_t *xq) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += iq4_levels[qs[j] & 0xF] * xq[j] + iq4_levels[qs[j] >> 4] * xq[j + 16];
    return s;
}
// IQ4_XS against blk_q8_K: per super-block sum_ib (ls_ib - 32) * dot_ib in integers, then d * dx * sum.
static void dot_iq4_xs_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const blk_iq4_xs *b = w;
    for (int r = 0; r < R; r++) {
        const blk_q8_K *xb = XROW(x, xs, r);
        out[r] = 0;
        for (int64_t i = 0; i < K / 256; i++) {
            int sumi = 0;
            for (int ib = 0; ib < 8; ib++)
                sumi += (iq4xs_scale(&b[i], ib) - 32) * iq4_dot32(b[i].qs + 16 * ib, xb[i].qs + 32 * ib);
            out[r] += f16_to_f32(b[i].d) * xb[i].d * (float)sumi;
        }
    }
}

static void dot_q6_K_ref(int64_t K, const void *w, const void *x, size_t xs, int R, float *out) {
    const blk_q6_K *b = w;
    for (int r = 0; r < R; r++) out[r] = 0;
    for (int64_t i = 0; i < K / 256; i++) {
        int q[256];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            int *qq = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                qq[l] = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4);
                qq[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                qq[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                qq[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
            }
        }
        float d = f16_to_f32(b[i].d);
        for (int r = 0; r < R; r++) {
            const blk_q8_K *xb = (const blk_q8_K *)XROW(x, xs, r) + i;
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q[16 * j + l] * xb->qs[16 * j + l];
                sumi += b[i].scales[j] * (s - 32 * xb->bsums[j]);
            }
            out[r] += d * xb->d * (float)sumi;
        }
    }
}

static void axpy4_ref(int64_t n, const float a[4], const float *x0, const float *x1, const float *x2,
                      const float *x3, float *y) {
    for (int64_t k = 0; k < n; k++) y[k] += a[0] * x0[k] + a[1] * x1[k] + a[2] * x2[k] + a[3] * x3[k];
}

// ---------------------------------------------------------------- 512-bit path layouts + scalar twins
// (tensor/matmul_kernels.h describes the layouts.)
#define ALIGN64(n) (((n) + 63) & ~(size_t)63)

bool mm_xd_supported(dtype t) { return t == DT_Q4_0 || t == DT_Q8_0; }
static int xd_group(dtype t) { return t == DT_Q4_0 ? 4 : 2; }
static int xd_off(dtype t) { return t == DT_Q4_0 ? 8 : 128; }

size_t mm_xd_bytes(dtype t, int64_t K) {
    int64_t nb = K / 32, ng = nb / xd_group(t);
    return ALIGN64((size_t)K) + ALIGN64((size_t)ng * 64) * 2 + ALIGN64((size_t)nb * 4) * 2;
}

mm_xd_view mm_xd_map(dtype t, int64_t K, void *xd) {
    mm_xd_view v;
    v.G = xd_group(t);
    v.nb = (int)(K / 32);
    v.ng = v.nb / v.G;
    char *p = xd;
    v.qs = (int8_t *)p; p += ALIGN64((size_t)K);
    v.dl = (float *)p; p += ALIGN64((size_t)v.ng * 64);
    v.sl = (int32_t *)p; p += ALIGN64((size_t)v.ng * 64);
    v.d = (float *)p; p += ALIGN64((size_t)v.nb * 4);
    v.seed = (int32_t *)p;
    return v;
}

// Position in xd.qs of element e (0..31) of block b.
static int64_t xd_pos(const mm_xd_view *v, int64_t b, int e) {
    if (b >= (int64_t)v->ng * v->G || v->G != 4) return b * 32 + e;   // natural order
    int64_t g = b / 4, i = b % 4;
    return g * 128 + (e >= 16 ? 64 : 0) + i * 16 + (e & 15);
}

void mm_xd_quantize_ref(dtype t, const float *x, int64_t K, void *xd) {
    mm_xd_view v = mm_xd_map(t, K, xd);
    int off = xd_off(t), lanes = 16 / v.G;
    for (int64_t b = 0; b < v.nb; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int q = (int)lrintf(xb[j] * id);
            v.qs[xd_pos(&v, b, j)] = (int8_t)q;
            sum += q;
        }
        v.d[b] = d;
        v.seed[b] = -off * sum;
        if (b < (int64_t)v.ng * v.G) {
            int64_t g = b / v.G, i = b % v.G;
            for (int l = 0; l < lanes; l++) {
                v.dl[g * 16 + i * lanes + l] = d;
                v.sl[g * 16 + i * lanes + l] = l == 0 ? -off * sum : 0;
            }
        }
    }
}

// Twins of the xd decode kernels: integer block products exact, one f32 term per block.
static void xd_dot_ref(dtype t, int64_t K, const void *w, size_t rb, int64_t nrows, const void *xd, float *out) {
    mm_xd_view v = mm_xd_map(t, K, (void *)xd);
    for (int64_t r = 0; r < nrows; r++) {
        const char *wr = (const char *)w + r * rb;
        float s = 0;
        for (int64_t b = 0; b < v.nb; b++) {
            int q[32], off;
            float dw, m;
            unpack32(t, wr + b * dtype_get(t)->block_bytes, q, &dw, &m, &off);
            int isum = v.seed[b];
            int add = t == DT_Q8_0 ? 128 : 0;   // seed assumes w + 128 for Q8_0
            for (int e = 0; e < 32; e++) isum += (q[e] + add) * v.qs[xd_pos(&v, b, e)];
            s += dw * v.d[b] * (float)isum;
        }
        out[r] = s;
    }
}
void mm_xd_dot_q4_0_ref(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xd, float *out) {
    xd_dot_ref(DT_Q4_0, K, w, rb, nrows, xd, out);
}
void mm_xd_dot_q8_0_ref(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xd, float *out) {
    xd_dot_ref(DT_Q8_0, K, w, rb, nrows, xd, out);
}

bool mm_panel_supported(dtype t) {
    return t == DT_Q4_0 || t == DT_Q4_1 || t == DT_Q5_0 || t == DT_Q5_1 || t == DT_Q8_0 || t == DT_IQ4_NL;
}
static bool has_min(dtype t) { return t == DT_Q4_1 || t == DT_Q5_1; }
size_t mm_panel_block_bytes(dtype t) { return 512 + 64 + (has_min(t) ? 64 : 0); }
int mm_panel_offset(dtype t) {
    return t == DT_Q4_0 ? 8 : t == DT_Q5_0 ? 16 : t == DT_Q8_0 || t == DT_IQ4_NL ? 128 : 0;
}

// Where byte e of row l goes among 16-row registers (panels, r16) of 4 bytes per row: register e / 4, lane l.
static inline size_t r16_byte_at(int e, int l) { return (size_t)(64 * (e / 4) + 4 * l + e % 4); }

// Unpacking and transposing costs about as much as one pass of the decode kernel over the rows, paid
// once per prefill call and shared by all T >= MM_PACK_MIN_T activation rows.
void mm_pack_panel(dtype t, const void *W, size_t rb, int nrows, int64_t K, void *panel) {
    size_t pb = mm_panel_block_bytes(t), bb = (size_t)dtype_get(t)->block_bytes;
    int64_t nb = K / 32;
    int add = t == DT_Q8_0 ? 128 : 0;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *dst = (uint8_t *)panel + b * pb;
        float *dw = (float *)(dst + 512), *mn = (float *)(dst + 576);
        for (int l = 0; l < 16; l++) {
            if (l >= nrows) {   // a zero block: level `add`, scale 0
                for (int j = 0; j < 8; j++) memset(dst + 64 * j + 4 * l, add, 4);
                dw[l] = 0;
                if (has_min(t)) mn[l] = 0;
                continue;
            }
            int q[32], off;
            float d, m;
            unpack32(t, (const char *)W + l * rb + b * bb, q, &d, &m, &off);
            for (int e = 0; e < 32; e++) dst[r16_byte_at(e, l)] = (uint8_t)(q[e] + add);
            dw[l] = d;
            if (has_min(t)) mn[l] = m;
        }
    }
}

void mm_q8a_seed(dtype t, blk_q8a *x, int64_t nb) {
    int off = mm_panel_offset(t);
    for (int64_t i = 0; i < nb; i++) x[i].seed = -off * x[i].sum;
}

void mm_tile_q32_ref(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                     size_t ldy, int nvalid, const float *bias, int acc) {
    size_t pb = mm_panel_block_bytes(t);
    for (int r = 0; r < TT; r++)
        for (int l = 0; l < nvalid; l++) {
            const blk_q8a *xr = XROW(x, xs, r);
            float s = 0;
            for (int64_t b = 0; b < K / 32; b++) {
                const uint8_t *p = (const uint8_t *)panel + b * pb;
                int isum = xr[b].seed;
                for (int e = 0; e < 32; e++) isum += p[r16_byte_at(e, l)] * xr[b].qs[e];
                s += ((const float *)(p + 512))[l] * xr[b].d * (float)isum;
                if (has_min(t)) s += ((const float *)(p + 576))[l] * xr[b].s;
            }
            float *o = y + r * ldy + l;
            *o = acc ? *o + s : s + (bias ? bias[l] : 0.f);
        }
}

bool mm_r16_supported(dtype t) {
    return t == DT_Q4_0 || t == DT_Q4_1 || t == DT_Q5_0 || t == DT_Q5_1 || t == DT_Q8_0 || t == DT_Q4_K || t == DT_Q5_K ||
           t == DT_Q6_K || t == DT_IQ4_NL || t == DT_IQ4_XS || t == DT_Q3_K || t == DT_Q2_K;
}
size_t mm_r16_block_bytes(dtype t) {
    return t == DT_Q8_0 ? 544 : t == DT_Q6_K ? 420 : t == DT_Q5_1 ? 384 : t == DT_Q5_K || t == DT_Q5_0 ? 352
         : t == DT_Q4_1 ? 320 : t == DT_IQ4_XS ? R16_IQ4XS_SB / 8 : t == DT_Q3_K ? R16_Q3K_SB / 8
         : t == DT_Q2_K ? R16_Q2K_SB / 8 : 288;
}

// Q4_1 / Q5_0 / Q5_1 r16: Q4_0's nibble registers, then (Q5_x) 8 masks of fifth bits (mask j: bit 4l + i
// = the fifth bit of row l's element 4j + i, elements 16.. in masks 4..7), then f16 d[16], then (Q4_1,
// Q5_1) f16 m[16]. Source blocks: d[, m][, qh[4]], qs[16].
static void r16_pack_q32_min_hi(dtype t, const void *W, size_t rb, int nrows, int64_t K, void *panel) {
    const int has_min = t != DT_Q5_0, has_qh = t != DT_Q4_1;
    const size_t bb = (size_t)dtype_get(t)->block_bytes, pb = mm_r16_block_bytes(t), d_off = 256 + (has_qh ? 64 : 0);
    const size_t qh_src = has_min ? 4 : 2, qs_src = qh_src + (has_qh ? 4 : 0);
    for (int64_t b = 0; b < K / 32; b++) {
        uint8_t *dst = (uint8_t *)panel + b * pb;
        uint64_t m[8] = {0};
        for (int l = 0; l < 16; l++) {   // rows past nrows: level 0, scale 0
            const uint8_t *s = l < nrows ? (const uint8_t *)W + l * rb + b * bb : NULL;
            uint32_t qh = 0;
            uint16_t d = 0, mn = 0;
            if (s) {
                memcpy(&d, s, 2);
                if (has_min) memcpy(&mn, s + 2, 2);
                if (has_qh) memcpy(&qh, s + qh_src, 4);
            }
            for (int e = 0; e < 16; e++) dst[r16_byte_at(e, l)] = s ? s[qs_src + e] : 0;
            for (int e = 0; e < 32; e++)   // element e: mask e / 4 (low nibbles 0..15, then high 16..31)
                m[e / 4] |= (uint64_t)((qh >> e) & 1) << (4 * l + e % 4);
            memcpy(dst + d_off + 2 * l, &d, 2);
            if (has_min) memcpy(dst + d_off + 32 + 2 * l, &mn, 2);
        }
        if (has_qh) memcpy(dst + 256, m, 64);
    }
}

// ---- the 256-column super-block types (Q2_K .. Q6_K, IQ4_XS): per type one row's bytes moved into an
// r16 super-block (pack), and one row's exact integer sums plus float steps against one activation
// super-block (the twin); the loops over super-blocks, rows and activation rows are shared.

// Row l's super-block `b` (NULL for the zero rows past nrows) into the r16 super-block at dst.
typedef void (*r16_sb_pack_fn)(uint8_t *dst, int l, const uint8_t *b, int variant);
// Row l of the r16 super-block at p against one activation super-block: s plus the row's contribution,
// with the kernels' float steps.
typedef float (*r16_sb_twin_fn)(const uint8_t *p, int l, const blk_q8_K *xb, float s, int variant);

static void r16_pack_sb(const void *W, size_t rb, int nrows, int64_t K, void *panel, size_t sbb, size_t bb,
                        r16_sb_pack_fn f, int variant) {
    for (int64_t s = 0; s < K / 256; s++)
        for (int l = 0; l < 16; l++)
            f((uint8_t *)panel + s * sbb, l, l < nrows ? (const uint8_t *)W + l * rb + s * bb : NULL, variant);
}

static void r16_tile_sb_ref(const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y, size_t ldy,
                            int nvalid, const float *bias, int acc, size_t sbb, r16_sb_twin_fn f, int variant) {
    for (int r = 0; r < TT; r++)
        for (int l = 0; l < nvalid; l++) {
            float s = 0;
            for (int64_t sb = 0; sb < K / 256; sb++)
                s = f((const uint8_t *)panel + sb * sbb, l, (const blk_q8_K *)XROW(x, xs, r) + sb, s, variant);
            float *o = y + r * ldy + l;
            *o = acc ? *o + s : s + (bias ? bias[l] : 0.f);
        }
}

// Q4_K r16 (layout in matmul_kernels.h): where byte e (0..127) of row l's qs goes in a super-block.
static inline size_t q4k_qs_at(int e, int l) { return (size_t)(512 * (e / 32)) + r16_byte_at(e % 32, l); }

// Q5_K r16: Q4_K's nibbles, then the fifth bits hb[8][64] (word j, row l, byte i: from qh[4j + i]; the
// bits of group g (sub-blocks 2g, 2g + 1) at positions q5k_pos(g) and q5k_pos(g) + 2), then the scales
// and d / dmin as Q4_K's, 512 bytes further.
static inline int q5k_pos(int g) { return (int[]){4, 5, 0, 1}[g]; }

// Q4_K (q5 = 0) or Q5_K (q5 = 1): rows past nrows have zero levels, scales and d (they add 0).
static void r16_pack_q45k(uint8_t *dst, int l, const uint8_t *b, int q5) {
    const size_t sc_off = q5 ? R16_Q5K_SC : R16_Q4K_SC;
    const blk_q4_K *b4 = (const blk_q4_K *)b;
    const blk_q5_K *b5 = (const blk_q5_K *)b;
    const uint8_t *qs = !b ? NULL : q5 ? b5->qs : b4->qs, *scales = !b ? NULL : q5 ? b5->scales : b4->scales;
    for (int w = 0; w < 32; w++) {   // 4-byte groups: bytes 4w.. go to q4k_qs_at(4w, l)
        uint32_t v = 0;
        if (b) memcpy(&v, qs + 4 * w, 4);
        memcpy(dst + q4k_qs_at(4 * w, l), &v, 4);
    }
    for (int i = 0; i < 12; i++) dst[sc_off + 16 * i + l] = b ? scales[i] : 0;
    uint16_t d = !b ? 0 : q5 ? b5->d : b4->d, dm = !b ? 0 : q5 ? b5->dmin : b4->dmin;
    memcpy(dst + sc_off + 192 + 2 * l, &d, 2);
    memcpy(dst + sc_off + 192 + 32 + 2 * l, &dm, 2);
    for (int e = 0; q5 && e < 32; e++) {
        uint8_t h = b ? b5->qh[e] : 0, v = 0;
        for (int g = 0; g < 4; g++)
            v |= (uint8_t)(((h >> (2 * g)) & 1) << q5k_pos(g) | ((h >> (2 * g + 1)) & 1) << (q5k_pos(g) + 2));
        dst[R16_Q5K_HB + r16_byte_at(e, l)] = v;
    }
}

// The Q4_K / Q5_K twin of the r16 tile and decode kernels: the exact integer sums, then the two float steps
// in the kernels' order.
static float r16_sb_q45k_ref(const uint8_t *p, int l, const blk_q8_K *xb, float s, int q5) {
    const size_t sc_off = q5 ? R16_Q5K_SC : R16_Q4K_SC;
    uint8_t sc12[12];
    for (int i = 0; i < 12; i++) sc12[i] = p[sc_off + 16 * i + l];
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m, dot = 0;
        q4k_scale_min(j, sc12, &sc, &m);
        for (int e = 0; e < 32; e++) {
            uint8_t v = p[q4k_qs_at(32 * (j / 2) + e, l)];
            int lv = (j & 1) ? v >> 4 : v & 0xF;
            if (q5) lv |= ((p[R16_Q5K_HB + r16_byte_at(e, l)] >> (q5k_pos(j / 2) + 2 * (j & 1))) & 1) << 4;
            dot += lv * xb->qs[32 * j + e];
        }
        sumi += sc * dot;
        summ += m * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
    }
    uint16_t d, dm;
    memcpy(&d, p + sc_off + 192 + 2 * l, 2);
    memcpy(&dm, p + sc_off + 192 + 32 + 2 * l, 2);
    s = fmaf((float)sumi, f16_to_f32(d) * xb->d, s);
    return fmaf(-(float)summ, f16_to_f32(dm) * xb->d, s);
}

// Q6_K r16 (layout in matmul_kernels.h): the three level bytes of (half h, word j, row l, byte i) at
// q6k_at(h, j, reg, l, i); element 128h + 32c + 4j + i has level c in reg c (c < 3, low 6 bits), level 3
// in the top 2 bits of all three (bits 0-1 in reg 0, 2-3 in reg 1, 4-5 in reg 2).
static inline size_t q6k_at(int h, int j, int reg, int l, int i) { return (size_t)(1536 * h + 192 * j + 64 * reg + 4 * l + i); }

// The 256 levels (0..63) of a Q6_K source block in element order (the format's bit layout: element
// 128h + 32c + k has its low 4 bits in ql[64h + 32(c & 1) + k], low nibble for c < 2, and bits 2c of
// qh[32h + k] on top).
static void q6k_src_levels(const blk_q6_K *b, uint8_t lv[256]) {
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 32; k++) {
            uint8_t q0 = b->ql[64 * h + k], q1 = b->ql[64 * h + 32 + k], qh = b->qh[32 * h + k];
            uint8_t *o = lv + 128 * h + k;
            o[0] = (uint8_t)((q0 & 0xF) | (qh & 3) << 4);
            o[32] = (uint8_t)((q1 & 0xF) | ((qh >> 2) & 3) << 4);
            o[64] = (uint8_t)((q0 >> 4) | ((qh >> 4) & 3) << 4);
            o[96] = (uint8_t)((q1 >> 4) | ((qh >> 6) & 3) << 4);
        }
}

static void r16_pack_q6k(uint8_t *dst, int l, const uint8_t *src, int unused) {
    (void)unused;
    const blk_q6_K *b = (const blk_q6_K *)src;
    uint8_t lv[256];
    if (b) q6k_src_levels(b, lv);
    else memset(lv, 0, sizeof lv);   // zero rows: level 0, scale 0
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 8; j++)
            for (int i = 0; i < 4; i++) {
                int e = 128 * h + 4 * j + i, L3 = lv[e + 96];
                for (int reg = 0; reg < 3; reg++)
                    dst[q6k_at(h, j, reg, l, i)] = (uint8_t)(lv[e + 32 * reg] | ((L3 >> (2 * reg)) & 3) << 6);
            }
    for (int i = 0; i < 16; i++) dst[R16_Q6K_SC + 16 * i + l] = b ? (uint8_t)b->scales[i] : 0;
    uint16_t d = b ? b->d : 0;
    memcpy(dst + R16_Q6K_D + 2 * l, &d, 2);
}

// Level (0..63) of element e (0..255) of row l in a Q6_K r16 super-block.
static int q6k_level(const uint8_t *p, int e, int l) {
    int h = e / 128, c = (e % 128) / 32, j = (e % 32) / 4, i = e % 4;
    if (c < 3) return p[q6k_at(h, j, c, l, i)] & 63;
    return (p[q6k_at(h, j, 0, l, i)] >> 6) | (p[q6k_at(h, j, 1, l, i)] >> 6) << 2 | (p[q6k_at(h, j, 2, l, i)] >> 6) << 4;
}

// The Q6_K twin: sumi = sum_j sc_j * (dot_j - 32 * bsum_j), exact, then one FMA.
static float r16_sb_q6k_ref(const uint8_t *p, int l, const blk_q8_K *xb, float s, int unused) {
    (void)unused;
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
        int dot = -32 * xb->bsums[j];
        for (int e = 16 * j; e < 16 * j + 16; e++) dot += q6k_level(p, e, l) * xb->qs[e];
        sumi += (int8_t)p[R16_Q6K_SC + 16 * j + l] * dot;
    }
    uint16_t d;
    memcpy(&d, p + R16_Q6K_D + 2 * l, 2);
    return fmaf((float)sumi, f16_to_f32(d) * xb->d, s);
}

// Q2_K / Q3_K r16 (layout in matmul_kernels.h): a row's 64 qs bytes in two halves of registers, moved to
// (put) or back from (get) the super-block at p.
static void r16_qs64_put(uint8_t *p, int l, const uint8_t *qs) {
    for (int k = 0; k < 32; k++) {
        p[r16_byte_at(k, l)] = qs ? qs[k] : 0;
        p[512 + r16_byte_at(k, l)] = qs ? qs[32 + k] : 0;
    }
}
static void r16_qs64_get(const uint8_t *p, int l, uint8_t *qs) {
    for (int k = 0; k < 32; k++) { qs[k] = p[r16_byte_at(k, l)]; qs[32 + k] = p[512 + r16_byte_at(k, l)]; }
}

// Q3_K: byte moves; rows past nrows are zero (d 0).
static void r16_pack_q3k(uint8_t *dst, int l, const uint8_t *src, int unused) {
    (void)unused;
    const blk_q3_K *b = (const blk_q3_K *)src;
    r16_qs64_put(dst, l, b ? b->qs : NULL);
    for (int k = 0; k < 32; k++) dst[R16_Q3K_HM + r16_byte_at(k, l)] = b ? b->hmask[k] : 0;
    for (int i = 0; i < 12; i++) dst[R16_Q3K_SC + 16 * i + l] = b ? b->scales[i] : 0;
    uint16_t d = b ? b->d : 0;
    memcpy(dst + R16_Q3K_D + 2 * l, &d, 2);
}

// Q2_K: byte moves; rows past nrows are zero (d, dmin 0).
static void r16_pack_q2k(uint8_t *dst, int l, const uint8_t *src, int unused) {
    (void)unused;
    const blk_q2_K *b = (const blk_q2_K *)src;
    r16_qs64_put(dst, l, b ? b->qs : NULL);
    for (int j = 0; j < 16; j++) dst[R16_Q2K_SC + 16 * j + l] = b ? b->scales[j] : 0;
    uint16_t d = b ? b->d : 0, dm = b ? b->dmin : 0;
    memcpy(dst + R16_Q2K_D + 2 * l, &d, 2);
    memcpy(dst + R16_Q2K_DMIN + 2 * l, &dm, 2);
}

// The Q2_K twin: sumi = sum_j sc_j * dot_j and summ = sum_j m_j * bsum_j, exact, then two FMAs (acc +=
// sumi * d * dx, acc -= summ * dmin * dx).
static float r16_sb_q2k_ref(const uint8_t *p, int l, const blk_q8_K *xb, float s, int unused) {
    (void)unused;
    uint8_t qs[64];
    r16_qs64_get(p, l, qs);
    int sumi = 0, summ = 0;
    for (int j = 0; j < 16; j++) {
        int sc = p[R16_Q2K_SC + 16 * j + l], dot = 0;
        for (int e = 16 * j; e < 16 * j + 16; e++) dot += q2k_low(qs, e) * xb->qs[e];
        sumi += (sc & 0xF) * dot;
        summ += (sc >> 4) * xb->bsums[j];
    }
    uint16_t d, dm;
    memcpy(&d, p + R16_Q2K_D + 2 * l, 2);
    memcpy(&dm, p + R16_Q2K_DMIN + 2 * l, 2);
    s = fmaf((float)sumi, f16_to_f32(d) * xb->d, s);
    return fmaf(-(float)summ, f16_to_f32(dm) * xb->d, s);
}

// The Q3_K twin: row l's block rebuilt from the super-block and read through the format's helpers; sumi =
// sum_j (sc_j - 32) * sum (q - 4) x over sub-block j, exact, then one FMA.
static float r16_sb_q3k_ref(const uint8_t *p, int l, const blk_q8_K *xb, float s, int unused) {
    (void)unused;
    blk_q3_K b;
    r16_qs64_get(p, l, b.qs);
    for (int k = 0; k < 32; k++) b.hmask[k] = p[R16_Q3K_HM + r16_byte_at(k, l)];
    for (int i = 0; i < 12; i++) b.scales[i] = p[R16_Q3K_SC + 16 * i + l];
    memcpy(&b.d, p + R16_Q3K_D + 2 * l, 2);
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
        int dot = 0;
        for (int e = 16 * j; e < 16 * j + 16; e++) dot += (q2k_low(b.qs, e) + 4 * q3k_hbit(b.hmask, e) - 4) * xb->qs[e];
        sumi += (q3k_scale(j, b.scales) - 32) * dot;
    }
    return fmaf((float)sumi, f16_to_f32(b.d) * xb->d, s);
}

// IQ4_XS: byte moves; rows past nrows are zero (scale 0).
static void r16_pack_iq4xs(uint8_t *dst, int l, const uint8_t *src, int unused) {
    (void)unused;
    const blk_iq4_xs *b = (const blk_iq4_xs *)src;
    for (int ib = 0; ib < 8; ib++)
        for (int e = 0; e < 16; e++) dst[256 * ib + r16_byte_at(e, l)] = b ? b->qs[16 * ib + e] : 0;
    for (int i = 0; i < 4; i++) dst[R16_IQ4XS_SL + 16 * i + l] = b ? b->scales_l[i] : 0;
    uint16_t sh = b ? b->scales_h : 0, d = b ? b->d : 0;
    memcpy(dst + R16_IQ4XS_SH + 2 * l, &sh, 2);
    memcpy(dst + R16_IQ4XS_D + 2 * l, &d, 2);
}

// The IQ4_XS twin: row l's block rebuilt from the super-block; sumi = sum_ib (ls_ib - 32) * dot_ib over
// the signed levels (iq4_dot32), exact, then one FMA.
static float r16_sb_iq4xs_ref(const uint8_t *p, int l, const blk_q8_K *xb, float s, int unused) {
    (void)unused;
    blk_iq4_xs b;
    for (int ib = 0; ib < 8; ib++)
        for (int e = 0; e < 16; e++) b.qs[16 * ib + e] = p[256 * ib + r16_byte_at(e, l)];
    for (int i = 0; i < 4; i++) b.scales_l[i] = p[R16_IQ4XS_SL + 16 * i + l];
    memcpy(&b.scales_h, p + R16_IQ4XS_SH + 2 * l, 2);
    memcpy(&b.d, p + R16_IQ4XS_D + 2 * l, 2);
    int sumi = 0;
    for (int ib = 0; ib < 8; ib++) sumi += (iq4xs_scale(&b, ib) - 32) * iq4_dot32(b.qs + 16 * ib, xb->qs + 32 * ib);
    return fmaf((float)sumi, f16_to_f32(b.d) * xb->d, s);
}

// The super-block types' pack and twin (either pointer may be NULL); false for the 32-block types. Their
// r16 super-block is 8 * mm_r16_block_bytes(t) bytes; the variant argument is 1 for Q5_K.
static bool r16_sb_type(dtype t, r16_sb_pack_fn *pack, r16_sb_twin_fn *twin) {
    r16_sb_pack_fn p = NULL;
    r16_sb_twin_fn f = NULL;
    switch (t) {
    case DT_Q4_K: case DT_Q5_K: p = r16_pack_q45k; f = r16_sb_q45k_ref; break;
    case DT_Q6_K: p = r16_pack_q6k; f = r16_sb_q6k_ref; break;
    case DT_Q3_K: p = r16_pack_q3k; f = r16_sb_q3k_ref; break;
    case DT_Q2_K: p = r16_pack_q2k; f = r16_sb_q2k_ref; break;
    case DT_IQ4_XS: p = r16_pack_iq4xs; f = r16_sb_iq4xs_ref; break;
    default: return false;
    }
    if (pack) *pack = p;
    if (twin) *twin = f;
    return true;
}

void mm_r16_pack_ref(dtype t, const void *W, size_t rb, int nrows, int64_t K, void *panel) {
    r16_sb_pack_fn sbp;
    if (r16_sb_type(t, &sbp, NULL)) {
        r16_pack_sb(W, rb, nrows, K, panel, 8 * mm_r16_block_bytes(t), (size_t)dtype_get(t)->block_bytes, sbp, t == DT_Q5_K);
        return;
    }
    if (t == DT_Q4_1 || t == DT_Q5_0 || t == DT_Q5_1) { r16_pack_q32_min_hi(t, W, rb, nrows, K, panel); return; }
    const size_t pb = mm_r16_block_bytes(t), bb = (size_t)dtype_get(t)->block_bytes;
    const int q4 = t == DT_Q4_0 || t == DT_IQ4_NL, qbytes = q4 ? 16 : 32;   // (IQ4_NL: Q4_0's bytes)
    for (int64_t b = 0; b < K / 32; b++) {
        uint8_t *dst = (uint8_t *)panel + b * pb;
        uint16_t *d = (uint16_t *)(dst + (q4 ? 256 : 512));
        for (int l = 0; l < 16; l++) {
            const uint8_t *src = l < nrows ? (const uint8_t *)W + l * rb + b * bb : NULL;
            for (int e = 0; e < qbytes; e++) {
                // zero rows: level 0 (Q8_0 stores it as 128) and scale 0
                uint8_t v = src ? src[2 + e] : 0;
                dst[r16_byte_at(e, l)] = q4 ? v : (uint8_t)(v ^ 0x80);
            }
            if (src) memcpy(&d[l], src, 2);
            else d[l] = 0;
        }
    }
}

// The r16 blocks re-encoded as packed-panel blocks (the same levels, the f16 scales widened), then the
// panel twin: the two layouts hold the same numbers, so one reference serves both.
void mm_r16_tile_ref(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                     size_t ldy, int nvalid, const float *bias, int acc) {
    r16_sb_twin_fn sbt;
    if (r16_sb_type(t, NULL, &sbt)) {
        r16_tile_sb_ref(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 8 * mm_r16_block_bytes(t), sbt, t == DT_Q5_K);
        return;
    }
    const size_t pb = mm_r16_block_bytes(t), qb = mm_panel_block_bytes(t);
    const int q4 = t == DT_Q4_0 || t == DT_Q4_1 || t == DT_Q5_0 || t == DT_Q5_1 || t == DT_IQ4_NL;
    const int q5 = t == DT_Q5_0 || t == DT_Q5_1;
    uint8_t *pp = malloc((size_t)(K / 32) * qb);
    if (!pp) {   // (tests only: an unusable result rather than a silent one)
        for (int r = 0; r < TT; r++)
            for (int l = 0; l < nvalid; l++) y[r * ldy + l] = NAN;
        return;
    }
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *src = (const uint8_t *)panel + b * pb;
        uint8_t *dst = pp + b * qb;
        for (int j = 0; j < 8; j++)   // lv[j]: elements 4j..4j+3; Q4_0 keeps 16..31 in the high nibbles
            for (int i = 0; i < 64; i++) {
                dst[64 * j + i] = q4 ? (uint8_t)((src[64 * (j & 3) + i] >> (j < 4 ? 0 : 4)) & 0xF) : src[64 * j + i];
                if (t == DT_IQ4_NL) dst[64 * j + i] = (uint8_t)(iq4_levels[dst[64 * j + i]] + 128);   // the panel's levels
                if (q5) {   // Q5_0: the fifth bit from mask j
                    uint64_t mk;
                    memcpy(&mk, src + 256 + 8 * j, 8);
                    dst[64 * j + i] |= (uint8_t)(((mk >> i) & 1) << 4);
                }
            }
        const size_t d_off = q5 ? 320 : q4 ? 256 : 512;   // f16 d[16], then (Q4_1 / Q5_1) f16 m[16]
        for (int l = 0; l < 16; l++) {
            uint16_t h;
            memcpy(&h, src + d_off + 2 * l, 2);
            ((float *)(dst + 512))[l] = f16_to_f32(h);
            if (t == DT_Q5_1 || t == DT_Q4_1) {   // the panel's f32 minimums
                memcpy(&h, src + d_off + 32 + 2 * l, 2);
                ((float *)(dst + 576))[l] = f16_to_f32(h);
            }
        }
    }
    mm_tile_q32_ref(t, pp, K, x, xs, TT, y, ldy, nvalid, bias, acc);
    free(pp);
}

size_t mm_packx_floats(int64_t T, int64_t K) {
    return (size_t)((T + MM_GEMM_TB - 1) / MM_GEMM_TB) * MM_GEMM_TB * (size_t)K;
}

void mm_packx_ref(const float *X, int64_t T, int64_t K, float *Xp) {
    int64_t nblk = (T + MM_GEMM_TB - 1) / MM_GEMM_TB;
    for (int64_t tb = 0; tb < nblk; tb++)
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < MM_GEMM_TB; i++) {
                int64_t t = tb * MM_GEMM_TB + i;
                Xp[(tb * K + k) * MM_GEMM_TB + i] = t < T ? X[t * K + k] : 0.f;
            }
}

void mm_f32gemm_ref(int64_t K, const float *w, size_t ldw, const float *xp, float *out) {
    for (int i = 0; i < MM_GEMM_NR; i++)
        for (int t = 0; t < MM_GEMM_TB; t++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++) s += w[i * ldw + k] * xp[k * MM_GEMM_TB + t];
            out[i * MM_GEMM_TB + t] = s;
        }
}

static mm_kernels g_tab[3];
static atomic_int g_tab_ready;

static const mm_kernels *kernels(void) {
    if (!atomic_load_explicit(&g_tab_ready, memory_order_acquire)) {
        // Idempotent: concurrent first callers compute identical tables.
        mm_kernels s = {0};
        s.dot[DT_F32] = dot_f32_ref; s.dot[DT_F16] = dot_f16_ref; s.dot[DT_BF16] = dot_bf16_ref;
        s.dot[DT_Q4_0] = dot_q4_0_ref; s.dot[DT_Q4_1] = dot_q4_1_ref; s.dot[DT_Q5_0] = dot_q5_0_ref;
        s.dot[DT_Q5_1] = dot_q5_1_ref; s.dot[DT_Q8_0] = dot_q8_0_ref;
        s.dot[DT_Q4_K] = dot_q4_K_ref; s.dot[DT_Q5_K] = dot_q5_K_ref; s.dot[DT_Q6_K] = dot_q6_K_ref;
        s.dot[DT_Q2_K] = dot_q2_K_ref; s.dot[DT_Q3_K] = dot_q3_K_ref;
        s.dot[DT_IQ4_NL] = dot_iq4_nl_ref; s.dot[DT_IQ4_XS] = dot_iq4_xs_ref;
        s.dot[DT_IQ2_XXS] = dot_iq2_xxs_ref; s.dot[DT_IQ2_XS] = dot_iq2_xs_ref; s.dot[DT_IQ2_S] = dot_iq2_s_ref;
        s.dot[DT_IQ3_XXS] = dot_iq3_xxs_ref; s.dot[DT_IQ3_S] = dot_iq3_s_ref;
        s.dot[DT_IQ1_S] = dot_iq1_s_ref; s.dot[DT_IQ1_M] = dot_iq1_m_ref;
        s.axpy4 = axpy4_ref;
        mm_kernels a2 = s, a5 = s;
        isa_level d = isa_detect();
        if (d >= ISA_AVX2) mm_kernels_avx2(&a2);
        a5 = a2;
        if (d >= ISA_AVX512) mm_kernels_avx512(&a5);
        g_tab[0] = s; g_tab[1] = a2; g_tab[2] = a5;
        atomic_store_explicit(&g_tab_ready, 1, memory_order_release);
    }
    return &g_tab[isa_active()];
}

static mm_paths g_paths[2];   // [0] AVX2, [1] AVX-512
static atomic_int g_paths_ready;

const mm_paths *mm_paths_active(void) {
    isa_level l = isa_active();
    if (l < ISA_AVX2) return NULL;
    if (!atomic_load_explicit(&g_paths_ready, memory_order_acquire)) {
        // Idempotent: concurrent first callers compute identical tables.
        mm_paths a = {0}, b = {0};
        mm_paths_avx2(&a);
        if (isa_detect() >= ISA_AVX512) mm_paths_avx512(&b);
        g_paths[0] = a;
        g_paths[1] = b;
        atomic_store_explicit(&g_paths_ready, 1, memory_order_release);
    }
    return &g_paths[l >= ISA_AVX512 ? 1 : 0];
}

bool mm_paths_r16(const mm_paths *k, dtype t) {
    return k && (unsigned)t < 64 && (k->r16_types >> t & 1) && mm_r16_supported(t);
}

// ---------------------------------------------------------------- f32 reference dot
float mm_dot_ref(dtype wt, const void *wrow, const float *x, int64_t K) {
    float stackbuf[1024];
    float *buf = K <= 1024 ? stackbuf : malloc((size_t)K * sizeof(float));
    if (!buf || dequantize_row(wt, wrow, buf, K) != 0) {
        if (buf != stackbuf) free(buf);
        return NAN;
    }
    double s = 0;
    for (int64_t k = 0; k < K; k++) s += (double)buf[k] * x[k];
    if (buf != stackbuf) free(buf);
    return (float)s;
}

// ---------------------------------------------------------------- the product
typedef enum { ACT_F32, ACT_Q8A, ACT_Q8K } act_kind;

static int act_kind_of(dtype t) {
    switch (t) {
    case DT_F32: case DT_F16: case DT_BF16: return ACT_F32;
    case DT_IQ2_XXS: case DT_IQ2_XS: case DT_IQ2_S: case DT_IQ3_XXS: case DT_IQ3_S: case DT_IQ1_S: case DT_IQ1_M:
        return ACT_Q8K;   // (integer levels: dot_grid; the prefill widens them to f32 for the f32 tiles)
    case DT_Q4_0: case DT_Q4_1: case DT_Q5_0: case DT_Q5_1: case DT_Q8_0: case DT_IQ4_NL: return ACT_Q8A;
    case DT_Q2_K: case DT_Q3_K: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: case DT_IQ4_XS: return ACT_Q8K;
    default: return -1;
    }
}

// Q2_K / Q3_K / IQ4_XS and the grid types have no packed-panel (per-call) form: unless packed at load
// (r16), their prefill widens each task's rows to f32 (mm_paths.tof32) for the f32 tile.
static bool widens_to_f32(dtype t) {
    switch (t) {
    case DT_Q2_K: case DT_Q3_K: case DT_IQ4_XS: case DT_IQ2_XXS: case DT_IQ2_XS: case DT_IQ2_S: case DT_IQ3_XXS:
    case DT_IQ3_S: case DT_IQ1_S: case DT_IQ1_M: return true;
    default: return false;
    }
}

// F16 / BF16: packed as a plain copy of the rows (same layout, on huge pages) and decoded by dec_f16 /
// dec_bf16 against f32 activations.
static bool is_half(dtype t) { return t == DT_F16 || t == DT_BF16; }

// Which loop runs the product: the generic per-row dot kernels, or one of the 512-bit paths.
typedef enum { PATH_DOT, PATH_XD, PATH_DEC_F16, PATH_PANEL, PATH_F32TILE, PATH_R16 } mm_path;

typedef struct {
    mm_dot_fn dot;
    const mm_paths *kp;
    mm_path path;
    dtype wt;
    const char *W;
    const char *Wp;       // r16 copy of W (PATH_R16)
    size_t wrow_bytes;
    int64_t N, K, T;
    const void *xa;       // activations (f32 X or quantized rows)
    size_t xstride;       // bytes between activation rows
    const float *bias;
    float *Y;
    int64_t *argmax;      // mm_out's: argmax_f32 of Y's last row wanted
    int acc;
    int64_t rows_per_task;
    // activation quantization
    const float *X;
    void *xq;
    int kind;
    // per-thread scratch (packed panels, f32 rows)
    char *scratch;
    size_t scratch_bytes;
} mm_job;

static void quant_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    mm_job *j = ctx;
    void *dst = (char *)j->xq + (size_t)t * j->xstride;
    const float *x = j->X + t * j->K;
    if (j->kind == ACT_Q8A) {
        if (j->kp) j->kp->q8a_quantize(x, dst, j->K);
        else quantize_row_q8a(x, dst, j->K);
        if (j->path == PATH_PANEL || j->path == PATH_R16) mm_q8a_seed(j->wt, dst, j->K / 32);
    } else if (j->kp) j->kp->q8k_quantize(x, dst, j->K);
    else quantize_row(DT_Q8_K, x, dst, j->K);
}

// Y[t, n0 + i] = out[i * ostride] (+ bias, or accumulated) for i < cnt.
static inline void store_out(const mm_job *j, int64_t t, int64_t n0, int cnt, const float *out, int ostride) {
    float *y = j->Y + t * j->N + n0;
    for (int i = 0; i < cnt; i++) {
        float v = out[i * ostride];
        y[i] = j->acc ? y[i] + v : v + (j->bias ? j->bias[n0 + i] : 0.f);
    }
}

#define DEC_PROLOGUE 4096   // bytes

// The decode kernels prefetch a fixed distance ahead along a task's weights; its first lines are
// requested here so the stream does not start cold (a few % of decode at 2 threads).
static void prefetch_start(const char *p, size_t bytes) {
    size_t pre = bytes < DEC_PROLOGUE ? bytes : DEC_PROLOGUE;
    for (size_t o = 0; o < pre; o += 64) __builtin_prefetch(p + o, 0, 3);
}

// One panel of 16 weight rows (outputs n0.., nr of them valid) against every activation row, in tiles of
// at most MM_TILE_T rows.
static void tile_rows(const mm_job *j, mm_tile_fn f, const void *panel, int64_t n0, int nr) {
    for (int64_t t0 = 0; t0 < j->T; t0 += MM_TILE_T) {
        int TT = j->T - t0 < MM_TILE_T ? (int)(j->T - t0) : MM_TILE_T;
        f(j->wt, panel, j->K, (const char *)j->xa + (size_t)t0 * j->xstride, j->xstride, TT,
          j->Y + t0 * j->N + n0, (size_t)j->N, nr, j->bias ? j->bias + n0 : NULL, j->acc);
    }
}

static void mm_task(void *ctx, int64_t task, int thread) {
    const mm_job *j = ctx;
    int64_t n0 = task * j->rows_per_task, n1 = n0 + j->rows_per_task;
    if (n1 > j->N) n1 = j->N;
    if (j->path == PATH_R16) {   // prefill over the packed panels (decode: dec_task)
        const size_t psz = (size_t)(j->K / 32) * mm_r16_block_bytes(j->wt);   // bytes per panel
        const char *P = j->Wp + (size_t)(n0 / 16) * psz;
        for (int64_t n = n0; n < n1; n += 16, P += psz)
            tile_rows(j, j->kp->r16_tile, P, n, n1 - n < 16 ? (int)(n1 - n) : 16);
        return;
    }
    if (j->path == PATH_PANEL) {
        // one panel of 16 rows: unpack once, then every activation row in tiles of MM_TILE_T
        char *panel = j->scratch + (size_t)thread * j->scratch_bytes;
        int nr = (int)(n1 - n0);
        j->kp->pack(j->wt, j->W + (size_t)n0 * j->wrow_bytes, j->wrow_bytes, nr, j->K, panel);
        tile_rows(j, j->kp->tile_q32, panel, n0, nr);
        return;
    }
    if (j->path == PATH_F32TILE) {
        // MM_GEMM_NR rows converted to f32 (zero rows pad the last group), then each packed block of
        // activation rows; the tile comes back (rows x activations) and is stored transposed
        float *wf = (float *)(j->scratch + (size_t)thread * j->scratch_bytes);
        int nr = (int)(n1 - n0);
        for (int i = 0; i < MM_GEMM_NR; i++) {
            if (i < nr) j->kp->tof32(j->wt, j->W + (size_t)(n0 + i) * j->wrow_bytes, wf + i * j->K, j->K);
            else memset(wf + i * j->K, 0, (size_t)j->K * sizeof(float));
        }
        float out[MM_GEMM_NR * MM_GEMM_TB];
        for (int64_t t0 = 0; t0 < j->T; t0 += MM_GEMM_TB) {
            int TT = j->T - t0 < MM_GEMM_TB ? (int)(j->T - t0) : MM_GEMM_TB;
            j->kp->f32gemm(j->K, wf, (size_t)j->K, (const float *)j->xa + (size_t)t0 * (size_t)j->K, out);
            for (int r = 0; r < TT; r++) store_out(j, t0 + r, n0, nr, out + r, MM_GEMM_TB);
        }
        return;
    }
    // Loop order: activation groups of 4 rows outside, this task's weight rows inside, so the weight
    // chunk stays in L2 while each group of activation rows is reused from L1 across the chunk.
    for (int64_t t0 = 0; t0 < j->T; t0 += 4) {
        int R = j->T - t0 < 4 ? (int)(j->T - t0) : 4;
        const void *xr = (const char *)j->xa + (size_t)t0 * j->xstride;
        for (int64_t n = n0; n < n1; n++) {
            float out[4];
            j->dot(j->K, j->W + (size_t)n * j->wrow_bytes, xr, j->xstride, R, out);
            for (int r = 0; r < R; r++) store_out(j, t0 + r, n, 1, out + r, 1);
        }
    }
}

// Sets up one product: checks the arguments, picks the path, and (unless `share` already holds the
// activations in the form this job needs) quantizes / packs X into a buffer returned in *owned.
// prev[0..nprev): the jobs prepared before this one in the same call, whose activations it may reuse.
static int job_prepare(mm_job *j, tpool *pool, const void *W, const void *Wp, dtype wt, int64_t N, int64_t K,
                       const float *X, int64_t T, const float *bias, float *Y, int acc, const mm_job *prev,
                       int nprev, void **owned) {
    *owned = NULL;
    memset(j, 0, sizeof *j);
    int kind = act_kind_of(wt);
    const dtype_info *di = dtype_get((int)wt);
    if (kind < 0 || !di || N < 0 || K <= 0 || T < 0 || K % di->block) return -1;
    j->dot = kernels()->dot[wt];
    j->kp = mm_paths_active();
    j->wt = wt;
    // F16's / BF16's packed form is a copy with the same layout (on huge pages): read it in place of W
    j->W = Wp && is_half(wt) ? Wp : W;
    j->Wp = Wp;
    j->wrow_bytes = dtype_row_bytes(wt, K);
    j->N = N; j->K = K; j->T = T; j->bias = bias; j->Y = Y; j->acc = acc;
    j->X = X; j->kind = kind;
    j->path = PATH_DOT;
    const mm_paths *kp = j->kp;
    if (kp) {   // (a NULL entry: the path is not taken at this ISA level)
        if (Wp && mm_paths_r16(kp, wt)) j->path = PATH_R16;
        else if (T == 1 && kp->xd_quantize && mm_xd_supported(wt)) j->path = PATH_XD;
        else if (T == 1 && is_half(wt) && (wt == DT_BF16 ? kp->dec_bf16 : kp->dec_f16)) j->path = PATH_DEC_F16;
        else if (T >= MM_PACK_MIN_T && kp->tile_q32 && mm_panel_supported(wt)) j->path = PATH_PANEL;
        else if (T >= MM_PACK_MIN_T && kp->f32gemm && (kind == ACT_F32 || widens_to_f32(wt))) j->path = PATH_F32TILE;
    }
    if (N == 0 || T == 0) return 0;
    // The activations depend on the path, the activation kind and, for the xd layout and the panel
    // seeds, the weight dtype: equal on those, an earlier job's buffer serves this one too.
    for (int i = 0; i < nprev; i++) {
        const mm_job *o = &prev[i];
        if (o->xa && o->path == j->path && o->kind == kind && o->X == X && o->T == T && o->K == K &&
            (o->wt == wt || (j->path != PATH_XD && j->path != PATH_PANEL && j->path != PATH_R16))) {
            j->xa = o->xa;
            j->xq = o->xq;
            j->xstride = o->xstride;
            return 0;
        }
    }
    void *xq = NULL;
    if (j->path == PATH_XD) {
        j->xstride = mm_xd_bytes(wt, K);
        if (!(xq = aligned_alloc(64, j->xstride))) return -1;
        j->kp->xd_quantize(wt, X, K, xq);
        j->xa = xq;
    } else if (j->path == PATH_F32TILE) {
        if (!(xq = aligned_alloc(64, mm_packx_floats(T, K) * sizeof(float)))) return -1;
        j->kp->packx(X, T, K, xq);
        j->xa = xq;
    } else if (kind == ACT_F32) {
        j->xa = X;
        j->xstride = (size_t)K * sizeof(float);
    } else {
        j->xstride = kind == ACT_Q8A ? (size_t)(K / 32) * sizeof(blk_q8a) : (size_t)(K / 256) * sizeof(blk_q8_K);
        if (!(xq = malloc(j->xstride * (size_t)T))) return -1;
        j->xq = xq;
        j->xa = xq;
        if (T * K >= 65536) tpool_run(pool, T, quant_task, j);
        else for (int64_t t = 0; t < T; t++) quant_task(j, t, 0);
    }
    *owned = xq;
    return 0;
}

// Rows per task and the per-thread scratch size (scratch itself is allocated by the caller); returns
// the number of tasks.
static int64_t job_split(mm_job *j, int nth) {
    if (j->N == 0 || j->T == 0) return 0;
    int64_t rpt;
    if (j->path == PATH_R16 && j->T > 1) {
        rpt = 16;   // one panel per task, tiled over the activation rows
    } else if (j->path == PATH_PANEL || j->path == PATH_F32TILE) {
        // one 16-row panel (or MM_GEMM_NR f32 rows) per task, held in a per-thread scratch
        rpt = j->path == PATH_PANEL ? 16 : MM_GEMM_NR;
        j->scratch_bytes = j->path == PATH_PANEL ? ALIGN64((size_t)(j->K / 32) * mm_panel_block_bytes(j->wt))
                                                 : ALIGN64((size_t)j->K * MM_GEMM_NR * sizeof(float));
    } else {
        // Rows per task: multiples of 16 (64-byte lines of Y never shared between threads), aiming for
        // ~8 tasks per thread for balance while keeping a task's weight chunk within L2.
        rpt = (j->N + 8 * nth - 1) / (8 * nth);
        int64_t cap = (int64_t)((512 * 1024) / (j->wrow_bytes ? j->wrow_bytes : 1));
        if (j->T > 4 && rpt > cap) rpt = cap;
        rpt = (rpt + 15) / 16 * 16;
        if (rpt < 16) rpt = 16;
    }
    j->rows_per_task = rpt;
    return (j->N + rpt - 1) / rpt;
}

// ---------------------------------------------------------------- decode: the split across threads
// With one activation row a product streams its weights once, so the split decides how busy the memory
// pipe stays. Each thread owns one contiguous range of the dispatch's rows (all its products' rows laid
// end to end, in units of 16 rows) and streams it front to back in chunks; a thread done with its own
// range takes pieces from the back of the fullest other range (half of what is left there, at most a
// chunk). So each thread reads one long stream per dispatch, and the threads finish within a small
// piece of each other. (Before: fixed tasks claimed from a counter. The last task of each dispatch left
// the other thread idle for half a task on average, ~10% of decode time at 2 threads, and smaller tasks
// each restart the stream cold.)
#define DEC_UNIT 16                  // rows per unit of the split (one r16 panel)
// Weight bytes per claim, about. 128 KiB against 32 KiB (round 13, alternated shuffled rounds of
// `bench -n 64`): two core complexes +2.9% decode (Llama-1B Q4_0, 59 rounds) and +2.4% (Qwen3 Q4_0, 22;
// 256 KiB +3.1%), one complex +0.2-0.3% (30 / 100 rounds). Fewer switches between the gate and up
// streams of a fused GLU, and fewer claims; the ranges' ends still balance by halves.
#ifndef DEC_CHUNK_BYTES   // (-DDEC_CHUNK_BYTES=... to experiment)
#define DEC_CHUNK_BYTES (128 << 10)
#endif
#define DEC_CHUNK_MAX 64             // units per claim at most (the output buffer is on the stack)

typedef struct { _Alignas(64) _Atomic uint64_t fb; } dec_range;   // front | back << 32, in global units
// A thread's running argmax over the rows of one product it computed (mm_out.argmax)
typedef struct { _Alignas(64) float v; int64_t i; } dec_best;

// The split of a dispatch (dec_run), also used to warm the next one (dec_warm): product i's units start
// at us[i] (us[n] = all units); nth threads get min(units, nth) ranges, range r starting at unit
// units * r / nr.
static int64_t dec_layout(const int64_t *N, int n, int64_t us[MM_MULTI_MAX + 1]) {
    us[0] = 0;
    for (int i = 0; i < n; i++) us[i + 1] = us[i] + (N[i] + DEC_UNIT - 1) / DEC_UNIT;
    return us[n];
}
static int dec_ranges(int64_t units, int nth) { return units < nth ? (int)units : nth; }
static int64_t dec_range_start(int64_t units, int64_t r, int nr) { return units * r / nr; }

typedef struct {
    const mm_job *jobs;
    int nr;
    int64_t ustart[MM_MULTI_MAX + 1];   // first global unit of each product
    int64_t chunk;                      // units per claim
    dec_range *r;                       // nr ranges, range i is task i
    dec_best *best;                     // [thread * MM_MULTI_MAX + product]: argmax pieces
    const mm_next *next;                // products of the next dispatch (may be NULL)
    mm_glu_fn glu;                      // mm_glu_decode: jobs[0] gate, jobs[1] up, unit = rows of both
    float *H;                           // mm_glu_decode's output
    int nthreads;
    _Alignas(64) atomic_int busy;       // tasks inside their unit loops
} dec_sched;

// Rows [n0, n1) of one product (n1 - n0 <= DEC_UNIT * DEC_CHUNK_MAX); the kernel may prefetch up to row
// pf_row. cold: the first read of a new stream, whose first lines are requested at once. bb: merge the
// rows' outputs into this running argmax (NULL: none).
static void dec_rows(const mm_job *j, int64_t n0, int64_t n1, int64_t pf_row, bool cold, dec_best *bb) {
    float out[DEC_UNIT * DEC_CHUNK_MAX];
    if (j->path == PATH_R16) {
        const size_t psz = (size_t)(j->K / 32) * mm_r16_block_bytes(j->wt);   // bytes per panel
        const char *P = j->Wp + (size_t)(n0 / 16) * psz;
        int64_t np = (n1 - n0 + 15) / 16, npf = (pf_row - n0 + 15) / 16;
        if (cold) prefetch_start(P, (size_t)np * psz);
        j->kp->r16_dec(j->wt, P, np, j->K, j->xa, out, (size_t)npf * psz);
        store_out(j, 0, n0, (int)(n1 - n0), out, 1);
        if (bb) argmax_f32_merge(&bb->v, &bb->i, j->Y + n0, n0, n1 - n0);
        return;
    }
    // PATH_XD / PATH_DEC_F16: rows in order, 64 outputs per kernel call
    mm_xd_dot_fn f = j->path == PATH_XD ? j->kp->xd_dot[j->wt] : j->wt == DT_BF16 ? j->kp->dec_bf16 : j->kp->dec_f16;
    if (cold) prefetch_start(j->W + (size_t)n0 * j->wrow_bytes, (size_t)(n1 - n0) * j->wrow_bytes);
    for (int64_t n = n0; n < n1; n += 64) {
        int cnt = n1 - n < 64 ? (int)(n1 - n) : 64;
        f(j->K, j->W + (size_t)n * j->wrow_bytes, j->wrow_bytes, cnt, j->xa, out);
        store_out(j, 0, n, cnt, out, 1);
    }
    if (bb) argmax_f32_merge(&bb->v, &bb->i, j->Y + n0, n0, n1 - n0);
}

// Global units [u0, u1), split at product boundaries; prefetching may run to unit pf_u.
static void dec_units(const dec_sched *d, int64_t u0, int64_t u1, int64_t pf_u, bool cold, int thread) {
    if (d->glu) {   // the same rows of gate and up, then H over them (two streams, each continued)
        const mm_job *g = &d->jobs[0], *up = &d->jobs[1];
        int64_t n0 = u0 * DEC_UNIT, n1 = u1 * DEC_UNIT < g->N ? u1 * DEC_UNIT : g->N;
        int64_t pf = pf_u * DEC_UNIT < g->N ? pf_u * DEC_UNIT : g->N;
        dec_rows(g, n0, n1, pf, cold, NULL);
        dec_rows(up, n0, n1, pf, cold, NULL);
        d->glu(d->H + n0, g->Y + n0, up->Y + n0, n1 - n0);
        return;
    }
    int i = 0;
    while (u0 < u1) {
        while (u0 >= d->ustart[i + 1]) i++;
        const mm_job *j = &d->jobs[i];
        int64_t e = u1 < d->ustart[i + 1] ? u1 : d->ustart[i + 1];
        int64_t pe = pf_u < d->ustart[i + 1] ? pf_u : d->ustart[i + 1];
        int64_t n1 = (e - d->ustart[i]) * DEC_UNIT, pf = (pe - d->ustart[i]) * DEC_UNIT;
        dec_best *bb = j->argmax ? &d->best[thread * MM_MULTI_MAX + i] : NULL;
        dec_rows(j, (u0 - d->ustart[i]) * DEC_UNIT, n1 < j->N ? n1 : j->N, pf < j->N ? pf : j->N, cold, bb);
        cold = true;   // the next product is a new stream
        u0 = e;
    }
}

#define RANGE(f, b) ((uint64_t)(f) | (uint64_t)(b) << 32)

#ifndef DEC_WARM_BYTES   // (-DDEC_WARM_BYTES=... to experiment)
#define DEC_WARM_BYTES (32 << 10)
#endif

// Bytes of one unit of a product's weights as the decode reads them, and where they start.
static const char *dec_base(const mm_out *o, int64_t K, size_t *ubytes) {
    if (o->Wp && mm_paths_r16(mm_paths_active(), o->wt)) {
        *ubytes = (size_t)(K / 32) * mm_r16_block_bytes(o->wt);
        return o->Wp;
    }
    *ubytes = DEC_UNIT * dtype_row_bytes(o->wt, K);
    return o->Wp && is_half(o->wt) ? o->Wp : o->W;
}

// Where the first DEC_WARM_BYTES of range `task` of the next dispatch (dec_run's split of its
// products) lie: 0 bytes when that range is empty.
static size_t dec_warm_target(const mm_next *nx, int64_t task, int nth, const char **p) {
    int64_t us[MM_MULTI_MAX + 1], N[MM_MULTI_MAX];
    int n = nx->n < MM_MULTI_MAX ? nx->n : MM_MULTI_MAX;
    if (nx->glu && n == 2) n = 1;   // mm_glu_decode: units of gate rows, each with up's (as dec_run)
    for (int i = 0; i < n; i++) N[i] = nx->outs[i].N;
    int64_t units = dec_layout(N, n, us);
    if (units == 0) return 0;
    int nr = dec_ranges(units, nth);
    if (task >= nr) return 0;
    int64_t u = dec_range_start(units, task, nr);
    int i = 0;
    while (u >= us[i + 1]) i++;
    size_t ub;
    *p = dec_base(&nx->outs[i], nx->K, &ub) + (size_t)(u - us[i]) * ub;
    size_t left = (size_t)(us[i + 1] - u) * ub;
    return left < DEC_WARM_BYTES ? left : DEC_WARM_BYTES;
}

// A task done with its units requests the start of its range of the next dispatch into L2, so its
// memory pipe keeps streaming while the caller does the single-threaded work between the two. A worker
// first counts its task done (tpool_task_done: the caller need not wait for the prefetch; the target is
// computed before, as the schedule lives on the caller's stack); the caller prefetches only while
// another task is still streaming (it would wait anyway) and otherwise returns at once to its own work.
void mm_next_warm(const mm_next *next, int64_t task, int nthreads, bool done_first) {
    const char *p = NULL;
    size_t bytes = next ? dec_warm_target(next, task, nthreads, &p) : 0;
    if (done_first) tpool_task_done();
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 2);   // prefetcht1: L2
}

static void dec_warm(const dec_sched *d, int64_t task, int thread, bool others_busy) {
    if (thread == 0 && d->next && d->next->pre)   // the caller's next reads (one thread, cold: 0.65 -> 0.19
        for (size_t o = 0; o < d->next->pre_bytes; o += 64)   // us for the 4 KiB of a 1024-wide norm)
            __builtin_prefetch((const char *)d->next->pre + o, 0, 3);
    if (thread == 0 && !others_busy) return;
    mm_next_warm(d->next, task, d->nthreads, thread != 0);
}

// Units a thread claims from the front of its own range with `left` still there: a chunk, and near the
// end half of what is left (at least a quarter chunk), so the claim in progress when another thread runs
// dry and takes from the back is short and the two finish closer together. Alternated shuffled rounds
// (Qwen3 Q4_0, round 14): +0.6% decode on one core complex (202 rounds), +0.9% on two (61); with an
// eighth-chunk floor 0.3% / -0.4%.
static int64_t dec_claim(int64_t chunk, int64_t left) {
    if (left >= 2 * chunk) return chunk;
    int64_t half = (left + 1) / 2, floor = chunk / 4 > 0 ? chunk / 4 : 1;
    int64_t c = half > floor ? half : floor;
    return c < left ? c : left;
}

static void dec_task(void *ctx, int64_t task, int thread) {
    dec_sched *d = ctx;
    dec_range *own = &d->r[task];
    bool cold = true;
    atomic_fetch_add_explicit(&d->busy, 1, memory_order_relaxed);
    for (;;) {   // own range, from the front
        uint64_t v = atomic_load_explicit(&own->fb, memory_order_acquire);
        int64_t f = (int64_t)(v & 0xffffffffu), b = (int64_t)(v >> 32);
        if (f >= b) break;
        int64_t c = dec_claim(d->chunk, b - f);
        if (!atomic_compare_exchange_weak_explicit(&own->fb, &v, RANGE(f + c, b), memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        dec_units(d, f, f + c, b, cold, thread);
        cold = false;
    }
    for (;;) {   // then pieces from the back of the fullest other range
        dec_range *vr = NULL;
        int64_t most = 0;
        for (int i = 0; i < d->nr; i++) {
            uint64_t v = atomic_load_explicit(&d->r[i].fb, memory_order_relaxed);
            int64_t left = (int64_t)(v >> 32) - (int64_t)(v & 0xffffffffu);
            if (left > most) { most = left; vr = &d->r[i]; }
        }
        if (!vr) break;
        uint64_t v = atomic_load_explicit(&vr->fb, memory_order_acquire);
        int64_t f = (int64_t)(v & 0xffffffffu), b = (int64_t)(v >> 32);
        if (f >= b) continue;
        int64_t c = (b - f + 1) / 2;
        if (c > d->chunk) c = d->chunk;
        if (atomic_compare_exchange_weak_explicit(&vr->fb, &v, RANGE(f, b - c), memory_order_acq_rel,
                                                  memory_order_relaxed))
            dec_units(d, b - c, b, b, true, thread);
    }
    bool others_busy = atomic_fetch_sub_explicit(&d->busy, 1, memory_order_acq_rel) > 1;
    dec_warm(d, task, thread, others_busy);
}

static bool is_decode(const mm_job *j) {
    return j->T == 1 && (j->path == PATH_R16 || j->path == PATH_XD || j->path == PATH_DEC_F16);
}

// All n products in one dispatch of one task per range.
static int dec_run(tpool *pool, const mm_job *jobs, int n, const mm_next *next, mm_glu_fn glu, float *H) {
    dec_sched d = {.jobs = jobs, .next = next, .glu = glu, .H = H, .nthreads = tpool_size(pool)};
    atomic_init(&d.busy, 0);
    size_t bytes = 0;
    int64_t N[MM_MULTI_MAX];
    for (int i = 0; i < n; i++) {
        N[i] = jobs[i].N;
        bytes += (size_t)jobs[i].N * jobs[i].wrow_bytes;
    }
    int64_t units = dec_layout(N, glu ? 1 : n, d.ustart);   // glu: units of gate rows, each with up's
    if (units == 0) return 0;
    if (units > 0xffffffffLL) return -1;
    d.chunk = (int64_t)(DEC_CHUNK_BYTES / (bytes / (size_t)units + 1));
    d.chunk = d.chunk < 1 ? 1 : d.chunk > DEC_CHUNK_MAX ? DEC_CHUNK_MAX : d.chunk;
    d.nr = dec_ranges(units, d.nthreads);
    bool amax = false;
    for (int i = 0; i < n; i++) amax |= !glu && jobs[i].argmax;
    size_t nbest = amax ? (size_t)d.nthreads * MM_MULTI_MAX : 0;
    if (!(d.r = aligned_alloc(64, (size_t)d.nr * sizeof *d.r + nbest * sizeof(dec_best)))) return -1;
    d.best = nbest ? (dec_best *)(d.r + d.nr) : NULL;
    for (size_t i = 0; i < nbest; i++) d.best[i] = (dec_best){.v = -INFINITY, .i = -1};
    for (int i = 0; i < d.nr; i++)
        atomic_init(&d.r[i].fb, RANGE(dec_range_start(units, i, d.nr), dec_range_start(units, i + 1, d.nr)));
    tpool_run(pool, d.nr, dec_task, &d);
    for (int i = 0; amax && i < n; i++) {   // the threads' pieces: the largest, the lowest index among equal
        if (!jobs[i].argmax) continue;
        dec_best b = {.v = -INFINITY, .i = -1};
        for (int t = 0; t < d.nthreads; t++) {
            const dec_best *p = &d.best[t * MM_MULTI_MAX + i];
            if (p->i >= 0 && (b.i < 0 || p->v > b.v || (p->v == b.v && p->i < b.i))) b = *p;
        }
        *jobs[i].argmax = b.i < 0 ? 0 : b.i;
    }
    free(d.r);
    return 0;
}

// Several products in one thread-pool dispatch: task ranges of the jobs laid end to end.
typedef struct {
    mm_job *jobs;
    int n;
    int64_t start[MM_MULTI_MAX + 1];
} multi_job;

static void multi_task(void *ctx, int64_t task, int thread) {
    const multi_job *mj = ctx;
    int i = 0;
    while (task >= mj->start[i + 1]) i++;
    mm_task(&mj->jobs[i], task - mj->start[i], thread);
}

static int matmul_run(tpool *pool, int n, const mm_out *outs, int64_t K, const float *X, int64_t T, int acc,
                      const mm_next *next) {
    if (n <= 0 || n > MM_MULTI_MAX || !outs) return -1;
    mm_job prep[MM_MULTI_MAX], jobs[MM_MULTI_MAX], dec[MM_MULTI_MAX];
    void *owned[MM_MULTI_MAX] = {0};
    multi_job mj = {.jobs = jobs};
    int nth = tpool_size(pool), rc = 0, np = 0, nd = 0;
    for (; np < n && !rc; np++)
        rc = job_prepare(&prep[np], pool, outs[np].W, outs[np].Wp, outs[np].wt, outs[np].N, K, X, T, outs[np].bias,
                         outs[np].Y, acc, prep, np, &owned[np]);
    for (int i = 0; i < np; i++) prep[i].argmax = outs[i].argmax;
    // one activation row: the decode split (dec_run, which also takes the argmax); otherwise tasks of rows
    size_t scratch = 0;
    for (int i = 0; i < np && !rc; i++) {
        if (is_decode(&prep[i])) { dec[nd++] = prep[i]; continue; }
        jobs[mj.n] = prep[i];
        mj.start[mj.n + 1] = mj.start[mj.n] + job_split(&jobs[mj.n], nth);
        if (jobs[mj.n].scratch_bytes > scratch) scratch = jobs[mj.n].scratch_bytes;
        mj.n++;
    }
    if (!rc && nd) rc = dec_run(pool, dec, nd, next, NULL, NULL);
    char *sbuf = NULL;
    if (!rc && scratch) {
        // one per-thread scratch for all jobs (a thread runs one task at a time), with a common stride
        if (!(sbuf = aligned_alloc(64, scratch * (size_t)nth))) rc = -1;
        for (int i = 0; i < mj.n; i++) { jobs[i].scratch = sbuf; jobs[i].scratch_bytes = scratch; }
    }
    if (!rc && mj.start[mj.n] > 0) {
        if (mj.n == 1) tpool_run(pool, mj.start[1], mm_task, &jobs[0]);
        else tpool_run(pool, mj.start[mj.n], multi_task, &mj);
        for (int i = 0; i < mj.n; i++)
            if (jobs[i].argmax) *jobs[i].argmax = argmax_f32(jobs[i].Y + (size_t)(T - 1) * (size_t)jobs[i].N, jobs[i].N);
    }
    free(sbuf);
    for (int i = 0; i < np; i++) free(owned[i]);
    return rc;
}

int mm_matmul(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *X, int64_t T,
              const float *bias, float *Y) {
    mm_out o = {.W = W, .wt = wt, .N = N, .bias = bias, .Y = Y};
    return matmul_run(pool, 1, &o, K, X, T, 0, NULL);
}

int mm_matmul_acc(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *X, int64_t T,
                  float *Y) {
    mm_out o = {.W = W, .wt = wt, .N = N, .Y = Y};
    return matmul_run(pool, 1, &o, K, X, T, 1, NULL);
}

int mm_matmul_multi(tpool *pool, int n, const mm_out *outs, int64_t K, const float *X, int64_t T) {
    return matmul_run(pool, n, outs, K, X, T, 0, NULL);
}

// A warm-up hint with products in it, or NULL.
static const mm_next *usable_next(const mm_next *next) { return next && next->n > 0 && next->outs ? next : NULL; }

int mm_matmul_multi_next(tpool *pool, int n, const mm_out *outs, int64_t K, const float *X, int64_t T,
                         const mm_next *next) {
    return matmul_run(pool, n, outs, K, X, T, 0, usable_next(next));
}

int mm_glu_decode(tpool *pool, const mm_out *gate, const mm_out *up, int64_t K, const float *X, mm_glu_fn glu,
                  float *H, const mm_next *next) {
    if (!gate || !up || !glu || !H || gate->N != up->N || gate->N <= 0) return -1;
    mm_job jobs[2];
    void *owned[2] = {0};
    int rc = job_prepare(&jobs[0], pool, gate->W, gate->Wp, gate->wt, gate->N, K, X, 1, gate->bias, gate->Y, 0,
                         NULL, 0, &owned[0]);
    if (!rc) rc = job_prepare(&jobs[1], pool, up->W, up->Wp, up->wt, up->N, K, X, 1, up->bias, up->Y, 0, jobs, 1,
                              &owned[1]);
    if (!rc && (!is_decode(&jobs[0]) || !is_decode(&jobs[1]))) rc = -1;   // (nothing computed yet)
    if (!rc) rc = dec_run(pool, jobs, 2, usable_next(next), glu, H);
    free(owned[0]);
    free(owned[1]);
    return rc;
}

// ---------------------------------------------------------------- weights packed at load
size_t mm_pack_bytes(dtype wt, int64_t N, int64_t K) {
    const mm_paths *kp = mm_paths_active();
    if (!kp || N <= 0 || K <= 0) return 0;
    if (is_half(wt)) return kp->dec_f16 ? (size_t)N * (size_t)K * 2 : 0;   // same layout: a copy on huge pages (see mm_pack)
    if (!mm_paths_r16(kp, wt) || K % 32) return 0;
    return (size_t)((N + 15) / 16) * (size_t)(K / 32) * mm_r16_block_bytes(wt);
}

typedef struct { const char *W; dtype wt; int64_t N, K; char *dst; size_t rb, psz; int64_t per; } pack_job;

static void pack_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const pack_job *p = ctx;
    const mm_paths *kp = mm_paths_active();
    if (is_half(p->wt)) {   // rows [16 * per * task, ...) copied as they are
        int64_t r0 = 16 * p->per * task, r1 = r0 + 16 * p->per < p->N ? r0 + 16 * p->per : p->N;
        memcpy(p->dst + (size_t)r0 * p->rb, p->W + (size_t)r0 * p->rb, (size_t)(r1 - r0) * p->rb);
        return;
    }
    for (int64_t i = task * p->per; i < (task + 1) * p->per && 16 * i < p->N; i++) {
        int nr = p->N - 16 * i < 16 ? (int)(p->N - 16 * i) : 16;
        kp->r16_pack(p->wt, p->W + (size_t)(16 * i) * p->rb, p->rb, nr, p->K, p->dst + (size_t)i * p->psz);
    }
}

int mm_pack(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, void *dst) {
    if (!mm_pack_bytes(wt, N, K) || !W || !dst) return -1;
    int64_t np = (N + 15) / 16;
    pack_job p = {.W = W, .wt = wt, .N = N, .K = K, .dst = dst, .rb = dtype_row_bytes(wt, K),
                  .psz = is_half(wt) ? 0 : (size_t)(K / 32) * mm_r16_block_bytes(wt), .per = 64};
    tpool_run(pool, (np + p.per - 1) / p.per, pack_task, &p);
    return 0;
}

// ---------------------------------------------------------------- backward products
// Both split the written matrix into disjoint column (dX) or row (dW) ranges, so threads never write
// the same cache lines, and feed 4 source rows per axpy4 so each destination row is loaded and stored
// once per 4 updates.
#define BW_COLS 512   // columns of dX per task (a multiple of every block size)

typedef struct {
    const char *W; dtype wt; size_t wrow_bytes; int blk, blk_bytes;
    int64_t N, K, T;
    const float *dY, *X;
    float *out;
    mm_axpy4_fn axpy4;
    int64_t rows_per_task;
} bw_job;

static void mmt_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const bw_job *j = ctx;
    int64_t k0 = task * BW_COLS, k1 = k0 + BW_COLS;
    if (k1 > j->K) k1 = j->K;
    int64_t kc = k1 - k0;
    float wbuf[4][BW_COLS];
    static const float zero[BW_COLS];
    for (int64_t n0 = 0; n0 < j->N; n0 += 4) {
        int nr = j->N - n0 < 4 ? (int)(j->N - n0) : 4;
        const float *w[4];
        for (int i = 0; i < 4; i++) {
            if (i >= nr) { w[i] = zero; continue; }
            const char *row = j->W + (size_t)(n0 + i) * j->wrow_bytes;
            if (j->wt == DT_F32) w[i] = (const float *)row + k0;
            else {
                dequantize_row(j->wt, row + (size_t)(k0 / j->blk) * (size_t)j->blk_bytes, wbuf[i], kc);
                w[i] = wbuf[i];
            }
        }
        for (int64_t t = 0; t < j->T; t++) {
            const float *dy = j->dY + t * j->N + n0;
            float a[4] = {0, 0, 0, 0};
            for (int i = 0; i < nr; i++) a[i] = dy[i];
            if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) continue;   // masked positions
            j->axpy4(kc, a, w[0], w[1], w[2], w[3], j->out + t * j->K + k0);
        }
    }
}

int mm_matmul_t(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *dY, int64_t T,
                float *dX) {
    const dtype_info *di = dtype_get((int)wt);
    if (act_kind_of(wt) < 0 || !di || N < 0 || K <= 0 || T < 0 || K % di->block) return -1;
    if (N == 0 || T == 0) return 0;
    bw_job j = {.W = W, .wt = wt, .wrow_bytes = dtype_row_bytes(wt, K), .blk = di->block,
                .blk_bytes = di->block_bytes, .N = N, .K = K, .T = T, .dY = dY, .out = dX,
                .axpy4 = kernels()->axpy4};
    tpool_run(pool, (K + BW_COLS - 1) / BW_COLS, mmt_task, &j);
    return 0;
}

static void wgrad_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const bw_job *j = ctx;
    int64_t n0 = task * j->rows_per_task, n1 = n0 + j->rows_per_task;
    if (n1 > j->N) n1 = j->N;
    // K in chunks so the X panel (T x chunk) is reused from cache across this task's rows.
    for (int64_t k0 = 0; k0 < j->K; k0 += 1024) {
        int64_t kc = j->K - k0 < 1024 ? j->K - k0 : 1024;
        for (int64_t n = n0; n < n1; n++) {
            float *dw = j->out + n * j->K + k0;
            for (int64_t t = 0; t < j->T; t += 4) {
                int tr = j->T - t < 4 ? (int)(j->T - t) : 4;
                float a[4] = {0, 0, 0, 0};
                const float *x[4];
                for (int i = 0; i < 4; i++) {
                    if (i < tr) { a[i] = j->dY[(t + i) * j->N + n]; x[i] = j->X + (t + i) * j->K + k0; }
                    else x[i] = j->X + t * j->K + k0;   // weight 0
                }
                if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) continue;
                j->axpy4(kc, a, x[0], x[1], x[2], x[3], dw);
            }
        }
    }
}

void mm_matmul_wgrad(tpool *pool, const float *dY, const float *X, int64_t T, int64_t N, int64_t K, float *dW) {
    if (N <= 0 || K <= 0 || T <= 0) return;
    bw_job j = {.N = N, .K = K, .T = T, .dY = dY, .X = X, .out = dW, .axpy4 = kernels()->axpy4};
    int nth = tpool_size(pool);
    int64_t rpt = (N + 4 * nth - 1) / (4 * nth);
    if (rpt < 1) rpt = 1;
    j.rows_per_task = rpt;
    tpool_run(pool, (N + rpt - 1) / rpt, wgrad_task, &j);
}
