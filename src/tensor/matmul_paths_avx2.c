// The AVX2 table of the packed / tiled product paths (mm_paths, tensor/matmul_kernels.h) for CPUs without
// AVX-512 (most laptop CPUs): the f32 GEMM of F32 / F16 / BF16 prefill, the F16 / BF16 decode kernel, and
// the r16 products of Q4_0 / Q8_0 here, of Q4_1 / Q5_0 / Q5_1 / IQ4_NL in matmul_r16q_avx2.c, of Q4_K /
// Q5_K / Q6_K in matmul_r16k_avx2.c and of Q2_K / Q3_K / IQ4_XS in matmul_r16k2_avx2.c: every r16 type. Each r16 kernel has the
// bits of its AVX-512 twin (the same exact integer sums, then the same float steps), so a model gives the
// same logits on either ISA level; the tests compare them (tests/test_matmul.c).
//
// AVX2 has no vpdpbusd: u8 x s8 products go through vpmaddubsw (pairs summed into int16, saturating) and
// vpmaddwd. The levels fed to it stay small enough that no pair or int16 partial sum can saturate
// (bounds at each use).
#include <string.h>
#include "tensor/matmul_r16_avx2.h"   // INLINE, r16_pf_to, R16_AVX2_PF_AHEAD (the AVX-512 kernels' distance)

#define XROW(x, xs, r) ((const void *)((const char *)(x) + (size_t)(r) * (xs)))

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---------------------------------------------------------------- decode: F16 / BF16 x f32
INLINE __m256 half8(const uint16_t *p, const int bf) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    return bf ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16)) : _mm256_cvtph_ps(v);
}
INLINE float half1(uint16_t h, const int bf) {
    if (!bf) return _cvtsh_ss(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
// One row at a time, 4 chains of 8 lanes, prefetching R16_AVX2_PF_AHEAD bytes ahead (one line per 64
// bytes read).
INLINE void dec_half(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out, const int bf) {
    const float *x = xv;
    for (int64_t r = 0; r < nrows; r++) {
        const uint16_t *wr = (const uint16_t *)((const char *)w + r * rb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
            _mm_prefetch((const char *)(wr + k) + R16_AVX2_PF_AHEAD, _MM_HINT_NTA);
            a0 = _mm256_fmadd_ps(half8(wr + k, bf), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(half8(wr + k + 8, bf), _mm256_loadu_ps(x + k + 8), a1);
            a2 = _mm256_fmadd_ps(half8(wr + k + 16, bf), _mm256_loadu_ps(x + k + 16), a2);
            a3 = _mm256_fmadd_ps(half8(wr + k + 24, bf), _mm256_loadu_ps(x + k + 24), a3);
        }
        for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(half8(wr + k, bf), _mm256_loadu_ps(x + k), a0);
        float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; k < K; k++) s += half1(wr[k], bf) * x[k];
        out[r] = s;
    }
}
static void dec_f16_avx2(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out) {
    dec_half(K, w, rb, nrows, xv, out, 0);
}
static void dec_bf16_avx2(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out) {
    dec_half(K, w, rb, nrows, xv, out, 1);
}

// ---------------------------------------------------------------- prefill: f32 GEMM
// The MM_GEMM_NR x MM_GEMM_TB tile as 2 x 2 sub-tiles of 6 weight rows x 16 activations: 12 accumulators,
// per k 2 activation loads and 6 broadcasts for 12 FMAs (16 registers: a 12-row tile as the 512-bit
// kernel's would spill). Each output is one FMA chain over k from 0, as in the 512-bit kernel, so both
// give the same bits.
// (Named accumulators: with an array gcc 12 stores all twelve back to the stack every k, at half the speed.)
INLINE void f32gemm_6x16(int64_t K, const float *w, size_t ldw, const float *xp, float *out) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    for (int64_t k = 0; k < K; k++) {
        __m256 x0 = _mm256_load_ps(xp + k * MM_GEMM_TB), x1 = _mm256_load_ps(xp + k * MM_GEMM_TB + 8), wi;
#define ROW(i)                                   \
        wi = _mm256_broadcast_ss(w + i * ldw + k); \
        a##i##0 = _mm256_fmadd_ps(wi, x0, a##i##0); \
        a##i##1 = _mm256_fmadd_ps(wi, x1, a##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
#define OUT(i)                                           \
    _mm256_storeu_ps(out + i * MM_GEMM_TB, a##i##0);     \
    _mm256_storeu_ps(out + i * MM_GEMM_TB + 8, a##i##1);
    OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5)
#undef OUT
}
static void f32gemm_avx2(int64_t K, const float *w, size_t ldw, const float *xp, float *out) {
    for (int r = 0; r < MM_GEMM_NR; r += 6)
        for (int t = 0; t < MM_GEMM_TB; t += 16) f32gemm_6x16(K, w + r * ldw, ldw, xp + t, out + r * MM_GEMM_TB + t);
}

// Rows to f32 for the GEMM (dequantize_row's bits, with the AVX2 dequantizers).
static void tof32_avx2(dtype t, const void *src, float *dst, int64_t n) { dequantize_row_fast(t, src, dst, n); }

// ---------------------------------------------------------------- r16 Q4_0 / Q8_0
// A panel's 64-byte registers hold 4 bytes of each of its 16 rows (row l at bytes 4l..4l+3): the low 32
// bytes are rows 0..7, the high 32 bytes rows 8..15, so each kernel runs the two halves as two 8-lane
// products with the AVX-512 kernel's integer sums and float steps per block:
// acc = fma((float)isum, dw * dx, acc).

// Q4_0, one block (288 bytes) of half h against one activation block: the 8 nibble registers (levels
// 0..15) times the activation words, int16 pair sums (each <= 2 * 15 * 127 in magnitude: q8a levels are
// within +-127), all 8 added in int16 (<= 30480 < 2^15), widened once, plus the seed (-8 * sum).
INLINE __m256i q4_isum_half(const uint8_t *p, const int h, const blk_q8a *xb) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int32_t *q = (const int32_t *)xb->qs;
    __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(p + 64 * j + 32 * h));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(v, m4), _mm256_set1_epi32(q[j])));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_set1_epi32(q[4 + j])));
    }
    return _mm256_add_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)), _mm256_set1_epi32(xb->seed));
}
// Q8_0, one block (544 bytes) of half h: the stored levels are w + 128; flipped back to signed w, each
// product is |w| * (x with w's sign) (|w| <= 128, pair sums <= 2 * 128 * 127 < 2^15), widened per
// register. That sum is sum(w * x) itself: the seed (-128 * sum, for the w + 128 form) is not added.
INLINE __m256i q8_isum_half(const uint8_t *p, const int h, const blk_q8a *xb) {
    const __m256i x80 = _mm256_set1_epi8((char)0x80), one = _mm256_set1_epi16(1);
    const int32_t *q = (const int32_t *)xb->qs;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m256i w = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 64 * j + 32 * h)), x80);
        __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(_mm256_set1_epi32(q[j]), w)), one);
        if (j & 1) s1 = _mm256_add_epi32(s1, d);
        else s0 = _mm256_add_epi32(s0, d);
    }
    return _mm256_add_epi32(s0, s1);
}
INLINE __m256i q32_isum_half(const uint8_t *p, const int h, const blk_q8a *xb, const int q8) {
    return q8 ? q8_isum_half(p, h, xb) : q4_isum_half(p, h, xb);
}
// The block's float step for half h: the 8 rows' f16 scales (at byte 256 / 512 of the block).
INLINE __m256 q32_step(const uint8_t *p, const int h, const int q8, __m256i isum, float dx, __m256 acc) {
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + (q8 ? 512 : 256) + 16 * h)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(dx)), acc);
}

// y[r * ldy + l] for l < nvalid of one half (rows 8h..8h+7) from its accumulator (the AVX-512 tile's
// store: acc ? y + v : v + bias).
INLINE void store_half(__m256 v, const int h, float *y, int nvalid, const float *bias, int accum) {
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int l = 8 * h; l < 8 * h + 8 && l < nvalid; l++) y[l] = accum ? y[l] + t[l - 8 * h] : t[l - 8 * h] + (bias ? bias[l] : 0.f);
}

// Prefill tile: per half, the TT activation rows' accumulators over all blocks (the block's bytes are in
// L1 for the rows after the first).
INLINE void r16_q32_tile(const void *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                         int nvalid, const float *bias, int accum, const int q8) {
    const size_t pb = q8 ? 544 : 288;
    for (int h = 0; h < 2 && 8 * h < nvalid; h++) {
        __m256 acc[MM_TILE_T];
        for (int r = 0; r < TT; r++) acc[r] = _mm256_setzero_ps();
        for (int64_t b = 0; b < K / 32; b++) {
            const uint8_t *p = (const uint8_t *)panel + b * pb;
            for (int r = 0; r < TT; r++) {
                const blk_q8a *xb = (const blk_q8a *)XROW(x, xs, r) + b;
                acc[r] = q32_step(p, h, q8, q32_isum_half(p, h, xb, q8), xb->d, acc[r]);
            }
        }
        for (int r = 0; r < TT; r++) store_half(acc[r], h, y + r * ldy, nvalid, bias, accum);
    }
}

// Decode over consecutive panels: both halves of a block in turn, one linear stream prefetched ahead.
INLINE void r16_q32_dec(const uint8_t *p, int64_t np, int64_t K, const blk_q8a *x, float *out, size_t pf_bytes,
                        const int q8) {
    const size_t pb = q8 ? 544 : 288;
    uintptr_t pf = (uintptr_t)p + R16_AVX2_PF_AHEAD, end = (uintptr_t)p + pf_bytes;
    for (int64_t i = 0; i < np; i++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int64_t b = 0; b < K / 32; b++, p += pb) {
            r16_pf_to(&pf, (uintptr_t)p + pb + R16_AVX2_PF_AHEAD, end);
            a0 = q32_step(p, 0, q8, q32_isum_half(p, 0, x + b, q8), x[b].d, a0);
            a1 = q32_step(p, 1, q8, q32_isum_half(p, 1, x + b, q8), x[b].d, a1);
        }
        _mm256_storeu_ps(out + 16 * i, a0);
        _mm256_storeu_ps(out + 16 * i + 8, a1);
    }
}

// Q4_0 / Q8_0 panels at load: dword moves (row l's qs word j to word 16j + l; Q8_0's levels + 128 by
// flipping each byte's sign bit), 10x the scalar byte-by-byte pack on a 1B model; the other types by
// the scalar pack (their byte moves are few per weight).
static void r16_pack_avx2(dtype t, const void *W, size_t rb, int nrows, int64_t K, void *panel) {
    if (t != DT_Q4_0 && t != DT_Q8_0) { mm_r16_pack_ref(t, W, rb, nrows, K, panel); return; }
    const int q8 = t == DT_Q8_0, nw = q8 ? 8 : 4;
    const size_t pb = q8 ? 544 : 288, bb = q8 ? 34 : 18;
    const uint32_t flip = q8 ? 0x80808080u : 0;
    for (int64_t b = 0; b < K / 32; b++) {
        uint8_t *dst = (uint8_t *)panel + b * pb;
        uint16_t d[16] = {0};
        for (int l = 0; l < 16; l++) {
            const uint8_t *src = (const uint8_t *)W + l * rb + b * bb;
            for (int j = 0; j < nw; j++) {
                uint32_t v = 0;   // rows past nrows: level 0 (Q8_0: 128), scale 0
                if (l < nrows) memcpy(&v, src + 2 + 4 * j, 4);
                v ^= flip;
                memcpy(dst + 64 * j + 4 * l, &v, 4);
            }
            if (l < nrows) memcpy(&d[l], src, 2);
        }
        memcpy(dst + (q8 ? 512 : 256), d, 32);
    }
}

static void r16_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                          size_t ldy, int nvalid, const float *bias, int acc) {
    if (t == DT_Q4_0) r16_q32_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 0);
    else if (t == DT_Q8_0) r16_q32_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 1);
    else if (t == DT_Q4_1 || t == DT_Q5_0 || t == DT_Q5_1 || t == DT_IQ4_NL) mm_r16q_tile_avx2(t, panel, K, x, xs, TT, y, ldy, nvalid, bias, acc);
    else if (t == DT_Q2_K || t == DT_Q3_K || t == DT_IQ4_XS) mm_r16k2_tile_avx2(t, panel, K, x, xs, TT, y, ldy, nvalid, bias, acc);
    else mm_r16k_tile_avx2(t, panel, K, x, xs, TT, y, ldy, nvalid, bias, acc);
}
static void r16_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes) {
    if (t == DT_Q4_0) r16_q32_dec(panels, np, K, x, out, pf_bytes, 0);
    else if (t == DT_Q8_0) r16_q32_dec(panels, np, K, x, out, pf_bytes, 1);
    else if (t == DT_Q4_1 || t == DT_Q5_0 || t == DT_Q5_1 || t == DT_IQ4_NL) mm_r16q_dec_avx2(t, panels, np, K, x, out, pf_bytes);
    else if (t == DT_Q2_K || t == DT_Q3_K || t == DT_IQ4_XS) mm_r16k2_dec_avx2(t, panels, np, K, x, out, pf_bytes);
    else mm_r16k_dec_avx2(t, panels, np, K, x, out, pf_bytes);
}

// ---------------------------------------------------------------- activation quantizers
// Both bit-identical to the scalar ones (tensor/quant.c): the same float multiply per element, rounded
// half to even (the default rounding of vcvtps2dq, as lrintf), and the low byte of each level stored, as
// the scalar (int8_t) casts (so an out-of-range level from a scale that overflowed wraps the same way).
INLINE float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}
INLINE __m256 abs8(__m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
// The low bytes of 4 x 8 int32 lanes, in order, as 32 bytes.
INLINE __m256i low_bytes32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i lo = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    // per vector: dword 0 (lane 0) and dword 4 (lane 1) hold its 8 bytes
    __m256i ab = _mm256_or_si256(_mm256_shuffle_epi8(a, lo), _mm256_slli_si256(_mm256_shuffle_epi8(b, lo), 4));
    __m256i cd = _mm256_or_si256(_mm256_shuffle_epi8(c, lo), _mm256_slli_si256(_mm256_shuffle_epi8(d, lo), 4));
    __m256i v = _mm256_unpacklo_epi64(ab, cd);   // dwords: a0 b0 c0 d0 | a1 b1 c1 d1
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
INLINE int hsum8_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

// blk_q8a (quantize_row_q8a): d = amax / 127, levels round(x / d), their sum.
static void q8a_quantize_avx2(const float *x, blk_q8a *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m256 v[4];
        for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + 8 * j);
        float amax = hmax8(_mm256_max_ps(_mm256_max_ps(abs8(v[0]), abs8(v[1])), _mm256_max_ps(abs8(v[2]), abs8(v[3]))));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        __m256i q[4];
        for (int j = 0; j < 4; j++) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], _mm256_set1_ps(id)));
        _mm256_storeu_si256((__m256i *)y[i].qs, low_bytes32(q[0], q[1], q[2], q[3]));
        int sum = hsum8_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        y[i].d = d;
        y[i].s = d * (float)sum;
        y[i].sum = sum;
        y[i].seed = 0;
    }
}

// blk_q8_K (quantize_row(DT_Q8_K)): the value of largest magnitude (its first occurrence) sets
// iscale = -127 / max, levels round(iscale * x) capped at 127, 16-element sums of the stored levels.
static void q8k_quantize_avx2(const float *x, blk_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + j)));
        float amax = hmax8(m);
        if (!(amax > 0)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        for (int j = 0; j < 256; j += 8) {
            int k = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (k) { first = j + __builtin_ctz((unsigned)k); break; }
        }
        float iscale = -127.f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi32(127);
        for (int j = 0; j < 256; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * k))), cap);
            __m256i b = low_bytes32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), b);
            // sums of the stored levels, 16 at a time (widened to int16, pairs summed twice)
            __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)), w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1));
            __m256i s0 = _mm256_madd_epi16(w0, _mm256_set1_epi16(1)), s1 = _mm256_madd_epi16(w1, _mm256_set1_epi16(1));
            y[i].bsums[j / 16] = (int16_t)hsum8_i32(s0);
            y[i].bsums[j / 16 + 1] = (int16_t)hsum8_i32(s1);
        }
        y[i].d = 1 / iscale;
    }
}

void mm_paths_avx2(mm_paths *k) {
    k->dec_f16 = dec_f16_avx2;
    k->dec_bf16 = dec_bf16_avx2;
    k->q8a_quantize = q8a_quantize_avx2;
    k->q8k_quantize = q8k_quantize_avx2;
    k->packx = mm_packx_ref;
    k->f32gemm = f32gemm_avx2;
    k->tof32 = tof32_avx2;
    k->r16_pack = r16_pack_avx2;
    k->r16_tile = r16_tile_avx2;
    k->r16_dec = r16_dec_avx2;
    static const dtype r16[] = {DT_Q4_0, DT_Q8_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_IQ4_NL, DT_Q4_K, DT_Q5_K, DT_Q6_K,
                                DT_Q2_K, DT_Q3_K, DT_IQ4_XS};
    for (size_t i = 0; i < sizeof r16 / sizeof *r16; i++) k->r16_types |= (uint64_t)1 << r16[i];
}
