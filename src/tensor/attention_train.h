// Attention forward + backward for training, as blocked matrix products over the f32 GEMM.
// Same layout, arguments and results as attention_fwd_heads / attention_bwd_kvheads (tensor/ops.h):
// q (T, Hq, D), k/v (S, Hkv, D), out (T, Hq, D), att (Hq, T, S) probabilities (zeros outside each
// query's visible band). Query t sits at absolute position q_pos0 + t, key s at position s; masks are
// causal, sliding window p->window, packed documents p->doc_start; p->softcap > 0 soft-caps scores.
//
// Why a second implementation: the reference walks one query row at a time (dot products and axpys
// of length D), ~10-15 GFLOP/s. Here each (q head, block of query rows) does S = Q K^T and O = P V as
// GEMMs over only the keys the block can see, and the backward does dP = dO V^T, dQ = dS K,
// dV = P^T dO, dK = dS^T Q the same way (GEMM kernel ~100+ GFLOP/s on one core); ~4-5x faster overall.
// The row softmax and the dS = P (dP - delta) scale step are vectorized (attention_train_avx512.c).
//
// Both run on the calling thread (the GEMMs get pool NULL), so disjoint head ranges can run on
// different threads exactly like the reference. Scratch for the backward (64 * S floats, twice that
// under softcap) lives in a per-thread cache kept between calls (no malloc per call). Where our AVX-512 GEMM
// kernel is not in use (OpenBLAS backend must not be called from pool tasks), when att is NULL, or
// when the scratch cannot be allocated, they fall back to the reference functions: same results.
#ifndef SLLM_TENSOR_ATTENTION_TRAIN_H
#define SLLM_TENSOR_ATTENTION_TRAIN_H
#include <stdint.h>
#include "tensor/ops.h"

// Forward for q heads [h0, h1): out rows of those heads and their att planes (att must be non-NULL
// for the fast path; it is what the backward reads).
void attention_train_fwd_heads(float *out, float *att, const float *q, const float *k, const float *v,
                               int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p,
                               int h0, int h1);
// Backward through kv heads [g0, g1) (q heads [g0*Hq/Hkv, g1*Hq/Hkv)). ADDS into dq, dk, dv (the
// caller zeroes them); any of them may be NULL to skip that gradient. att is the forward's output.
void attention_train_bwd_kvheads(float *dq, float *dk, float *dv, const float *dout, const float *att,
                                 const float *q, const float *k, const float *v,
                                 int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0,
                                 const attn_params *p, int g0, int g1);

// ---- row kernels (scalar twins in attention_train.c, AVX-512 in attention_train_avx512.c) ----
typedef struct {
    // x[0..n) <- softmax(x * scale) (max subtracted first); n >= 1.
    void (*softmax)(float *x, int n, float scale);
    // d holds dP on entry: d[i] <- p[i] * (d[i] - delta) * scale with delta = sum_i p[i] dP[i].
    void (*dsoftmax)(float *d, const float *p, int n, float scale);
} attn_train_kernels;
// Table for an isa_level (tensor/matmul.h): levels below AVX-512 (or a CPU without it) get the
// scalar twins. attn_train_kernels_active() follows isa_active().
const attn_train_kernels *attn_train_kernels_for(int isa);
const attn_train_kernels *attn_train_kernels_active(void);
void attn_train_kernels_avx512(attn_train_kernels *k);
#endif
