// f32 GEMM for the training products (many rows at once), over our own packed AVX-512 kernel or
// OpenBLAS's cblas_sgemm, whichever is faster here (see gemm_backend).
//
// Why an own kernel next to OpenBLAS: Debian's OpenBLAS is a DYNAMIC_ARCH build that picks its kernels
// from CPUID at load time; on CPUs it does not know (e.g. newer Xeons behind a hypervisor) it falls back
// to SSE3 "Prescott" kernels that run ~10x below AVX-512 peak, and the choice can only be overridden
// through OPENBLAS_CORETYPE before the library loads. The own kernel runs at AVX-512 speed regardless;
// OpenBLAS is used when it reports an AVX-512 or AVX2 core and we have no AVX-512 kernel to offer.
//
// All matrices are row-major. Weights W are (N, K) as everywhere in sllm (tensor/matmul.h).
#ifndef SLLM_TENSOR_GEMM_H
#define SLLM_TENSOR_GEMM_H
#include <stdbool.h>
#include <stdint.h>
#include "base/threadpool.h"
#include "tensor/dtype.h"

typedef enum { GEMM_AUTO = 0, GEMM_OWN = 1, GEMM_BLAS = 2, GEMM_REF = 3 } gemm_backend;
// The backend in use: SLLM_GEMM=own|blas|ref overrides the automatic choice. Tests may force one.
gemm_backend gemm_backend_active(void);
void gemm_backend_force(gemm_backend b);   // GEMM_AUTO restores the automatic choice
const char *gemm_backend_name(gemm_backend b);

// C (M, N) = beta * C + op(A) · op(B), op(A) (M, K), op(B) (K, N). ta: A is stored (K, M) with row
// stride lda (else (M, K)); tb: B is stored (N, K) (else (K, N)). beta 0 ignores C's old contents.
// Threads over pool (tasks split the larger of M and N); NULL: the calling thread only.
void gemm_f32(tpool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// A sum of products into one C: C (M, N) = beta * C + sum_i op(A_i) · op(B_i), each term with its own K,
// transposes and strides (as gemm_f32). The k-loop runs through the terms in turn, so C is read and
// written once, not once per term: e.g. a LoRA layer's X·W^T + (s·X·A^T)·B^T, whose rank-r term alone
// would cost a whole pass over C. Up to GEMM_MAX_TERMS terms share one packing of op(B) across the
// pool's tasks; more still give the right sum, each task packing its own.
typedef struct { bool ta, tb; int64_t K; const float *A; int64_t lda; const float *B; int64_t ldb; } gemm_term;
enum { GEMM_MAX_TERMS = 4 };
void gemm_f32_sum(tpool *pool, int64_t M, int64_t N, int n_terms, const gemm_term *terms, float beta, float *C,
                  int64_t ldc);

// The three products of a linear layer y = x · W^T (+ bias):
// Y (T, N) = X (T, K) · W (N, K)^T + bias (N, may be NULL); acc: Y += instead of =.
void gemm_xwt(tpool *pool, const float *X, int64_t T, const float *W, int64_t N, int64_t K, const float *bias,
              bool acc, float *Y);
// dX (T, K) += dY (T, N) · W (N, K)
void gemm_dx(tpool *pool, const float *dY, int64_t T, const float *W, int64_t N, int64_t K, float *dX);
// dW (N, K) += dY (T, N)^T · X (T, K)
void gemm_dw(tpool *pool, const float *dY, const float *X, int64_t T, int64_t N, int64_t K, float *dW);

// Same two input-side products for a weight of any dtype (f16, bf16, quantized): rows of W are
// dequantized (tensor/quant.h) a tile at a time into `tile` (tile_rows * K floats, caller-owned; NULL:
// allocated for the call) and each tile goes through the f32 GEMM, so the whole matrix never exists in
// f32. tile_rows <= 0 picks ~16 MiB. Returns SLLM_OK or SLLM_ERR_UNSUPPORTED (dtype without dequantize).
int gemm_xwt_any(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *X, int64_t T,
                 const float *bias, bool acc, float *Y, float *tile, int64_t tile_rows);
int gemm_dx_any(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *dY, int64_t T, float *dX,
                float *tile, int64_t tile_rows);
// Rows of W per tile for a ~16 MiB f32 tile of K columns (at least 16).
int64_t gemm_tile_rows(int64_t K);

// ---- internal: the AVX-512 kernel (gemm_avx512.c). One task's share of C += op(A)·op(B) for rows
// [m0, m1) and columns [n0, n1) of C; pa/pb are packing buffers of GEMM_PACK_A / GEMM_PACK_B floats.
// pball: when non-NULL, pball[t] holds term t's op(B) packed whole by gemm_pack_b_avx512 (npad = N rounded
// up to 32; then n0 must be 0) and pb is unused: tasks splitting M share one packing instead of each
// redoing it.
// overwrite: C = op(A)·op(B) (its old contents are never read) instead of +=.
enum { GEMM_MC = 128, GEMM_KC = 512, GEMM_NC = 512 };
#define GEMM_PACK_A ((size_t)GEMM_MC * GEMM_KC)
#define GEMM_PACK_B ((size_t)GEMM_KC * GEMM_NC)
void gemm_block_avx512(const gemm_term *terms, int n_terms, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                       float *C, int64_t ldc, float *pa, float *pb, float *const *pball, int64_t npad, bool overwrite);
// Packs 32-column strips [s0, s1) of op(B)'s KC block starting at row pc into pball (npad * K floats).
void gemm_pack_b_avx512(bool tb, const float *B, int64_t ldb, int64_t K, int64_t N, int64_t pc, int64_t s0,
                        int64_t s1, float *pball);
#endif
