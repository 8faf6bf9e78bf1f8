// Shared pieces of the AVX2 kernels over r16 panels (matmul_paths_avx2.c: Q4_0 / Q8_0; matmul_r16q_avx2.c:
// Q4_1 / Q5_0 / Q5_1 / IQ4_NL; matmul_r16k_avx2.c: Q4_K / Q5_K / Q6_K; matmul_r16k2_avx2.c: Q2_K / Q3_K /
// IQ4_XS). Internal to those files (compiled with the AVX2 flags).
#ifndef SLLM_TENSOR_MATMUL_R16_AVX2_H
#define SLLM_TENSOR_MATMUL_R16_AVX2_H
#include <immintrin.h>
#include "tensor/matmul_kernels.h"

// Empty asm statements that make a vector / pointer opaque to the compiler (no instruction): they keep
// gcc from re-associating a chain of int32 sums (it would form every product first and spill them) and
// from sharing loads between passes that should each load their own (it would keep them all live).
#define OPAQUE_V(v) __asm__("" : "+x"(v))
#define OPAQUE_P(p) __asm__("" : "+r"(p))
#define INLINE static inline __attribute__((always_inline))
#define R16_AVX2_PF_AHEAD 8192   // decode prefetch distance along the panel stream (as the AVX-512 kernels)

// ---------------------------------------------------------------- shared helpers

// Prefetch (non-temporal) the lines from *pf up to `to`, never past `end`.
INLINE void r16_pf_to(uintptr_t *pf, uintptr_t to, uintptr_t end) {
    for (to = to < end ? to : end; *pf < to; *pf += 64) _mm_prefetch((const char *)*pf, _MM_HINT_NTA);
}

// 32 / 16 bytes at p + off.
INLINE __m256i ld(const uint8_t *p, size_t off) { return _mm256_loadu_si256((const __m256i *)(p + off)); }
INLINE __m128i ld16(const uint8_t *p, size_t off) { return _mm_loadu_si128((const __m128i *)(p + off)); }
// The 4 activation bytes of word i, in every lane.
INLINE __m256i bq(const int32_t *q, int i) { return _mm256_set1_epi32(q[i]); }
// int16 pair sums of u8 levels x s8 activations (exact: the callers keep |sum| <= 32767).
INLINE __m256i mul16(__m256i w, __m256i x) { return _mm256_maddubs_epi16(w, x); }
// Sum of such int16 sums. The callers' bounds keep it exact, so the saturating form gives the plain sum;
// it is used because gcc does not re-associate it.
INLINE __m256i add16(__m256i a, __m256i b) { return _mm256_adds_epi16(a, b); }
// acc + scale * (both int16 halves of each lane) in int32.
INLINE __m256i madd_acc(__m256i acc, __m256i v16, __m256i scd) { return _mm256_add_epi32(acc, _mm256_madd_epi16(v16, scd)); }

// pshufb control that spreads byte 8rh + l of a 16-byte row (both 128-bit lanes alike) over int32 lane l,
// in both int16 halves: hi = 0 puts it in their low bytes (u8 zero-extended), hi = 1 in their high bytes
// (the low ones zero), for an arithmetic shift to sign-extend (and scale) it.
INLINE __m256i dup_ctl(const int rh, const int hi) {
    const char z = (char)0x80, b = (char)(8 * rh);
#define DUP_B(i) (hi ? z : (char)(b + (i))), (hi ? (char)(b + (i)) : z)
    return _mm256_setr_epi8(DUP_B(0), DUP_B(0), DUP_B(1), DUP_B(1), DUP_B(2), DUP_B(2), DUP_B(3), DUP_B(3),
                            DUP_B(4), DUP_B(4), DUP_B(5), DUP_B(5), DUP_B(6), DUP_B(6), DUP_B(7), DUP_B(7));
#undef DUP_B
}
// The 16 bytes at s in both 128-bit lanes.
INLINE __m256i bc16(const uint8_t *s) { return _mm256_broadcastsi128_si256(ld16(s, 0)); }
// The u8 values s[0..15] of 16 rows as duplicated int16 pairs for row half rh (vpmaddwd operand).
INLINE __m256i dup_u8(const uint8_t *s, const int rh) { return _mm256_shuffle_epi8(bc16(s), dup_ctl(rh, 0)); }
// The int8 values s[0..15] of 16 rows, times 4 if x4, as duplicated int16 pairs for row half rh.
INLINE __m256i dup_s8(const uint8_t *s, const int rh, const int x4) {
    __m256i v = _mm256_shuffle_epi8(bc16(s), dup_ctl(rh, 1));
    return x4 ? _mm256_srai_epi16(v, 6) : _mm256_srai_epi16(v, 8);
}

// A tile's activation rows (TT of them, xs bytes apart) and its zeroed accumulators.
INLINE void tile_begin(const void *x, size_t xs, int TT, const blk_q8_K **xr, __m256 (*acc)[2]) {
    for (int r = 0; r < TT; r++) {
        xr[r] = (const blk_q8_K *)((const char *)x + (size_t)r * xs);
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
}
// Tile results into Y for row half rh: y[r*ldy + 8rh + l] for 8rh + l < nvalid, plus bias (+0 without
// one, as the AVX-512 store does), or added to what Y holds.
INLINE void tile_store8(const __m256 (*acc)[2], int TT, float *y, size_t ldy, int nvalid, const float *bias,
                        int accum) {
    for (int rh = 0; rh < 2; rh++) {
        int n = nvalid - 8 * rh;
        if (n <= 0) break;
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 bv = bias ? _mm256_maskload_ps(bias + 8 * rh, m) : _mm256_setzero_ps();
        for (int r = 0; r < TT; r++) {
            float *o = y + (size_t)r * ldy + 8 * rh;
            __m256 v = accum ? _mm256_add_ps(_mm256_maskload_ps(o, m), acc[r][rh]) : _mm256_add_ps(acc[r][rh], bv);
            _mm256_maskstore_ps(o, m, v);
        }
    }
}

// Decode over np consecutive panels of SBB-byte super-blocks (one linear stream): sb1(p, xb, acc, pf, end)
// adds one super-block of 16 rows against one activation row into the two row halves' accumulators.
#define R16_AVX2_DEC(np, K, p, x, out, pf_bytes, SBB, sb1)                                   \
    do {                                                                                  \
        uintptr_t pf_ = (uintptr_t)(p) + R16_AVX2_PF_AHEAD, end_ = (uintptr_t)(p) + (pf_bytes); \
        for (int64_t i_ = 0; i_ < (np); i_++) {                                           \
            __m256 acc_[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};                   \
            for (int64_t s_ = 0; s_ < (K) / 256; s_++, (p) += (SBB)) sb1;                  \
            _mm256_storeu_ps((out) + 16 * i_, acc_[0]);                                   \
            _mm256_storeu_ps((out) + 16 * i_ + 8, acc_[1]);                               \
        }                                                                                 \
    } while (0)
#endif
