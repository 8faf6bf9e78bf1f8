// The AVX2 table of the packed / tiled product paths (mm_paths, tensor/matmul_kernels.h) for CPUs without
// AVX-512 (most laptop CPUs): the f32 GEMM of F32 / F16 / BF16 prefill, the F16 / BF16 decode kernel, and
// the r16 products of Q4_0 / Q8_0 here, the r16 K-quants in matmul_r16k_avx2.c. Each r16 kernel has the
// bits of its AVX-512 twin (the same exact integer sums, then the same float steps), so a model gives the
// same logits on either ISA level; the tests compare them (tests/test_matmul.c).
//
// AVX2 has no vpdpbusd: u8 x s8 products go through vpmaddubsw (pairs summed into int16, saturating) and
// vpmaddwd. The levels fed to it stay small enough that no pair or int16 partial sum can saturate
// (bounds at each use).
#include <immintrin.h>
#include <string.h>
#include "tensor/matmul_kernels.h"

#define INLINE static inline __attribute__((always_inline))
#define XROW(x, xs, r) ((const void *)((const char *)(x) + (size_t)(r) * (xs)))

// Prefetch along the weight stream, as the AVX-512 decode kernels (matmul_avx512.c DEC_PF_AHEAD / HINT).
#define PF_AHEAD 8192
INLINE void pf_to(uintptr_t *pf, uintptr_t to, uintptr_t end) {
    for (to = to < end ? to : end; *pf < to; *pf += 64) _mm_prefetch((const char *)*pf, _MM_HINT_NTA);
}

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
// One row at a time, 4 chains of 8 lanes, prefetching PF_AHEAD bytes ahead (two lines per 64 bytes read).
INLINE void dec_half(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out, const int bf) {
    const float *x = xv;
    for (int64_t r = 0; r < nrows; r++) {
        const uint16_t *wr = (const uint16_t *)((const char *)w + r * rb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
            _mm_prefetch((const char *)(wr + k) + PF_AHEAD, _MM_HINT_NTA);
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

// Rows to f32 for the GEMM: F32 copied, F16 / BF16 widened (exact), other types by dequantize_row.
static void tof32_avx2(dtype t, const void *src, float *dst, int64_t n) {
    if (t == DT_F32) { memcpy(dst, src, (size_t)n * sizeof(float)); return; }
    if (t != DT_F16 && t != DT_BF16) { dequantize_row(t, src, dst, n); return; }
    const int bf = t == DT_BF16;
    const uint16_t *h = src;
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, half8(h + k, bf));
    for (; k < n; k++) dst[k] = half1(h[k], bf);
}

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
    uintptr_t pf = (uintptr_t)p + PF_AHEAD, end = (uintptr_t)p + pf_bytes;
    for (int64_t i = 0; i < np; i++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int64_t b = 0; b < K / 32; b++, p += pb) {
            pf_to(&pf, (uintptr_t)p + pb + PF_AHEAD, end);
            a0 = q32_step(p, 0, q8, q32_isum_half(p, 0, x + b, q8), x[b].d, a0);
            a1 = q32_step(p, 1, q8, q32_isum_half(p, 1, x + b, q8), x[b].d, a1);
        }
        _mm256_storeu_ps(out + 16 * i, a0);
        _mm256_storeu_ps(out + 16 * i + 8, a1);
    }
}

static void r16_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                          size_t ldy, int nvalid, const float *bias, int acc) {
    if (t == DT_Q4_0) r16_q32_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 0);
    else r16_q32_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, 1);
}
static void r16_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes) {
    if (t == DT_Q4_0) r16_q32_dec(panels, np, K, x, out, pf_bytes, 0);
    else r16_q32_dec(panels, np, K, x, out, pf_bytes, 1);
}

static void q8k_quantize_ref(const float *x, blk_q8_K *y, int64_t n) { quantize_row(DT_Q8_K, x, y, n); }

void mm_paths_avx2(mm_paths *k) {
    k->dec_f16 = dec_f16_avx2;
    k->dec_bf16 = dec_bf16_avx2;
    // activation quantizers: the scalar ones (one pass over a row per product; the SIMD forms in
    // matmul_avx512.c are bit-identical to these)
    k->q8a_quantize = quantize_row_q8a;
    k->q8k_quantize = q8k_quantize_ref;
    k->packx = mm_packx_ref;
    k->f32gemm = f32gemm_avx2;
    k->tof32 = tof32_avx2;
    k->r16_pack = mm_r16_pack_ref;   // (byte moves, once at load)
    k->r16_tile = r16_tile_avx2;
    k->r16_dec = r16_dec_avx2;
    static const dtype r16[] = {DT_Q4_0, DT_Q8_0};
    for (size_t i = 0; i < sizeof r16 / sizeof *r16; i++) k->r16_types |= (uint64_t)1 << r16[i];
}
