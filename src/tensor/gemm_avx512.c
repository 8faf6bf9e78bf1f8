// AVX-512 f32 GEMM block: C += op(A) · op(B) over one task's rows [m0, m1) and columns [n0, n1).
// Classic blocking: a KC x NC panel of op(B) is packed into 32-column strips (stays in L2), an MC x KC
// block of op(A) stored (K, M) into 8-row strips (A stored (M, K) is read in place), and an 8 x 32
// register tile (16 accumulators) runs over KC.
// Packing absorbs the transposes of op(B), so the three training products share one kernel.
#include <immintrin.h>
#include <string.h>
#include "tensor/gemm.h"

enum { MR = 8, NR = 32 };

// 8x8 transpose: rows r[0..7] (8 floats each) -> columns, stored at dst + j * dstride for j < 8.
static inline void transpose8_store(__m256 r0, __m256 r1, __m256 r2, __m256 r3, __m256 r4, __m256 r5, __m256 r6,
                                    __m256 r7, float *dst, int64_t dstride) {
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * dstride, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * dstride, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dstride, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dstride, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dstride, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dstride, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dstride, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dstride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// d[k * dstride + c] = src[c * sstride + k] for c < 8, k < kc (8 source rows, each kc long): the
// transposing copy of both packers, 8x8 blocks in registers and a scalar tail.
static void transpose_rows8(const float *src, int64_t sstride, int64_t kc, float *d, int64_t dstride) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        const float *s0 = src + k;
        transpose8_store(_mm256_loadu_ps(s0), _mm256_loadu_ps(s0 + sstride), _mm256_loadu_ps(s0 + 2 * sstride),
                         _mm256_loadu_ps(s0 + 3 * sstride), _mm256_loadu_ps(s0 + 4 * sstride),
                         _mm256_loadu_ps(s0 + 5 * sstride), _mm256_loadu_ps(s0 + 6 * sstride),
                         _mm256_loadu_ps(s0 + 7 * sstride), d + k * dstride, dstride);
    }
    for (; k < kc; k++)
        for (int c = 0; c < 8; c++) d[k * dstride + c] = src[c * sstride + k];
}

// pa[s][k][r] = op(A)(i0 + s*MR + r, p0 + k), zero past mc, for A stored (K, M) (ta): the MR values of
// one k are contiguous. (A stored (M, K) is not packed: the kernel reads its rows in place.)
static void pack_a_t(const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float *pa) {
    for (int64_t s = 0; s < mc; s += MR) {
        int64_t mr = mc - s < MR ? mc - s : MR;
        float *d = pa + s * kc;
        __mmask16 m = (__mmask16)((1u << mr) - 1);
        for (int64_t k = 0; k < kc; k++) {
            __m256 v = _mm256_maskz_loadu_ps((__mmask8)m, A + (p0 + k) * lda + i0 + s);
            _mm256_storeu_ps(d + k * MR, v);
        }
    }
}

// pb[s][k][c] = op(B)(p0 + k, j0 + s*NR + c), zero past nc.
static void pack_b(bool tb, const float *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *pb) {
    for (int64_t s = 0; s < nc; s += NR) {
        int64_t nr = nc - s < NR ? nc - s : NR;
        float *d = pb + s * kc;
        if (!tb) {
            __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
            __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
            for (int64_t k = 0; k < kc; k++) {
                const float *src = B + (p0 + k) * ldb + j0 + s;
                _mm512_storeu_ps(d + k * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_storeu_ps(d + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else {
            // B stored (N, K): 8 columns of op(B) at a time through the register transpose
            if (nr < NR) memset(d, 0, (size_t)(kc * NR) * sizeof(float));
            int64_t c = 0;
            for (; c + 8 <= nr; c += 8) transpose_rows8(B + (j0 + s + c) * ldb + p0, ldb, kc, d + c, NR);
            for (; c < nr; c++) {
                const float *src = B + (j0 + s + c) * ldb + p0;
                for (int64_t k = 0; k < kc; k++) d[k * NR + c] = src[k];
            }
        }
    }
}

// C (mr x nr tile at C, stride ldc) (+)= A (8 x kc) · pb (kc x 32). A is either a packed strip (a[k*8 + r],
// as = 0) or 8 rows of the row-major operand read in place (a[r*as + k]): for op(A) = A the kernel
// broadcasts one element per row and k anyway, so reading the rows where they lie saves the transposing
// copy that packing would cost (rows past mr repeat row 0 and are never stored). ovw: C = instead of +=.
// two = false: a tile of at most 16 columns (half the FMAs; the strip's zero half is not read).
static inline __attribute__((always_inline)) void kernel_body(int64_t kc, const float *a, int64_t as, const float *pb,
                                                              float *C, int64_t ldc, int64_t mr, int64_t nr, bool ovw,
                                                              bool two) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    if (!ovw)   // the tile is read back at the end: start fetching it now
        for (int64_t r = 0; r < mr; r++) {
            _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
            if (two) _mm_prefetch((const char *)(C + r * ldc + 16), _MM_HINT_T0);
        }
    if (as == 0) {
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_loadu_ps(pb), b1 = two ? _mm512_loadu_ps(pb + 16) : b0;
            __m512 x;
#define ROW(r, x0, x1)                       \
    x = _mm512_set1_ps(a[r]);                \
    x0 = _mm512_fmadd_ps(x, b0, x0);         \
    if (two) x1 = _mm512_fmadd_ps(x, b1, x1);
            ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
            ROW(4, c40, c41) ROW(5, c50, c51) ROW(6, c60, c61) ROW(7, c70, c71)
#undef ROW
            a += MR;
            pb += NR;
        }
    } else {
        const float *r0 = a, *r1 = mr > 1 ? a + as : a, *r2 = mr > 2 ? a + 2 * as : a, *r3 = mr > 3 ? a + 3 * as : a,
                    *r4 = mr > 4 ? a + 4 * as : a, *r5 = mr > 5 ? a + 5 * as : a, *r6 = mr > 6 ? a + 6 * as : a,
                    *r7 = mr > 7 ? a + 7 * as : a;
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_loadu_ps(pb), b1 = two ? _mm512_loadu_ps(pb + 16) : b0;
            __m512 x;
#define ROW(p, x0, x1)                       \
    x = _mm512_set1_ps(p[k]);                \
    x0 = _mm512_fmadd_ps(x, b0, x0);         \
    if (two) x1 = _mm512_fmadd_ps(x, b1, x1);
            ROW(r0, c00, c01) ROW(r1, c10, c11) ROW(r2, c20, c21) ROW(r3, c30, c31)
            ROW(r4, c40, c41) ROW(r5, c50, c51) ROW(r6, c60, c61) ROW(r7, c70, c71)
#undef ROW
            pb += NR;
        }
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    for (int64_t r = 0; r < mr; r++) {
        float *y = C + r * ldc;
        if (ovw) {
            _mm512_mask_storeu_ps(y, m0, acc[r][0]);
            _mm512_mask_storeu_ps(y + 16, m1, acc[r][1]);
        } else {
            _mm512_mask_storeu_ps(y, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, y), acc[r][0]));
            _mm512_mask_storeu_ps(y + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, y + 16), acc[r][1]));
        }
    }
}
static void kernel_8x32(int64_t kc, const float *pa, const float *pb, float *C, int64_t ldc, int64_t mr, int64_t nr,
                        bool ovw) {
    if (nr > 16) kernel_body(kc, pa, 0, pb, C, ldc, mr, nr, ovw, true);
    else kernel_body(kc, pa, 0, pb, C, ldc, mr, nr, ovw, false);
}
static void kernel_8x32_rows(int64_t kc, const float *a, int64_t lda, const float *pb, float *C, int64_t ldc,
                             int64_t mr, int64_t nr, bool ovw) {
    if (nr > 16) kernel_body(kc, a, lda, pb, C, ldc, mr, nr, ovw, true);
    else kernel_body(kc, a, lda, pb, C, ldc, mr, nr, ovw, false);
}

void gemm_pack_b_avx512(bool tb, const float *B, int64_t ldb, int64_t K, int64_t N, int64_t pc, int64_t s0,
                        int64_t s1, float *pball) {
    int64_t kc = K - pc < GEMM_KC ? K - pc : GEMM_KC, npad = (N + NR - 1) / NR * NR;
    int64_t j1 = s1 * NR < N ? s1 * NR : N;
    if (s0 * NR < j1) pack_b(tb, B, ldb, pc, kc, s0 * NR, j1 - s0 * NR, pball + pc * npad + s0 * NR * kc);
}

void gemm_block_avx512(const gemm_term *terms, int n_terms, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                       float *C, int64_t ldc, float *pa, float *pb, float *const *pball, int64_t npad, bool overwrite) {
    for (int64_t jc = n0; jc < n1; jc += GEMM_NC) {
        int64_t nc = n1 - jc < GEMM_NC ? n1 - jc : GEMM_NC;
        for (int ti = 0; ti < n_terms; ti++) {
            const gemm_term *tm = &terms[ti];
            for (int64_t pc = 0; pc < tm->K; pc += GEMM_KC) {
                int64_t kc = tm->K - pc < GEMM_KC ? tm->K - pc : GEMM_KC;
                bool ovw = overwrite && ti == 0 && pc == 0;
                const float *pbk = pb;
                if (pball) pbk = pball[ti] + pc * npad + jc * kc;   // packed once for all tasks
                else pack_b(tm->tb, tm->B, tm->ldb, pc, kc, jc, nc, pb);
                for (int64_t ic = m0; ic < m1; ic += GEMM_MC) {
                    int64_t mc = m1 - ic < GEMM_MC ? m1 - ic : GEMM_MC;
                    if (tm->ta) pack_a_t(tm->A, tm->lda, ic, mc, pc, kc, pa);
                    for (int64_t jr = 0; jr < nc; jr += NR) {
                        int64_t nr = nc - jr < NR ? nc - jr : NR;
                        for (int64_t ir = 0; ir < mc; ir += MR) {
                            int64_t mr = mc - ir < MR ? mc - ir : MR;
                            float *c = C + (ic + ir) * ldc + jc + jr;
                            if (tm->ta) kernel_8x32(kc, pa + ir * kc, pbk + jr * kc, c, ldc, mr, nr, ovw);
                            else kernel_8x32_rows(kc, tm->A + (ic + ir) * tm->lda + pc, tm->lda, pbk + jr * kc, c, ldc,
                                                  mr, nr, ovw);
                        }
                    }
                }
            }
        }
    }
}
