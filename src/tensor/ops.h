// f32 transformer ops, each forward next to its backward. Shapes as in llm.c: (T, C) row-major.
// Backward functions ACCUMULATE (+=) into gradient outputs so residual branches and tied weights add up.
#ifndef SLLM_TENSOR_OPS_H
#define SLLM_TENSOR_OPS_H
#include <stdbool.h>
#include <stdint.h>
#include "tensor/dtype.h"

// ---- norms ----
// y (T, C) = x / rms(x) * (w + w_offset); w_offset is 1 for Gemma's (1+w) RMSNorm, else 0.
// rstd (T) is saved for backward (may be NULL in inference).
void rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, float w_offset, int64_t T, int64_t C, float eps);
void rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, float w_offset,
                 const float *rstd, int64_t T, int64_t C);
// y = (x - mean) * rstd * w + b ; mean, rstd (T) saved for backward (may be NULL).
void layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                   int64_t T, int64_t C, float eps);
void layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                   const float *mean, const float *rstd, int64_t T, int64_t C);

// ---- rotary position embedding ----
// x (T, H, D) in place, for positions pos[T]. Only the first n_rot dims of each head rotate.
// NORM style rotates adjacent pairs (2i, 2i+1) (GGUF llama); NEOX rotates (i, i + n_rot/2) (HF, qwen, gemma).
typedef enum { ROPE_NORM = 0, ROPE_NEOX = 2 } rope_style;
typedef struct {
    rope_style style;
    int n_rot;
    float base;
    // llama3 scaling (factor == 0: none). Also plain linear scaling via freq_scale.
    float freq_scale;            // 1.0 = none (linear scaling divides positions)
    float l3_factor, l3_low_freq_factor, l3_high_freq_factor; int l3_orig_ctx;
} rope_params;
// Fills inv_freq (n_rot/2) for the params (llama3 scaling applied).
void rope_inv_freq(const rope_params *p, float *inv_freq);
void rope_fwd(float *x, const int32_t *pos, int64_t T, int H, int D, const rope_params *p);
// Backward is the inverse rotation of the gradient, in place.
void rope_bwd(float *dx, const int32_t *pos, int64_t T, int H, int D, const rope_params *p);
// Same with per-frequency divisors freq_factors (n_rot/2; NULL = none): inv_freq[i] / freq_factors[i],
// as llama.cpp applies GGUF's rope_freqs.weight (llama3 scaling baked in; leave l3_factor 0 then).
void rope_fwd_factors(float *x, const int32_t *pos, int64_t T, int H, int D, const rope_params *p,
                      const float *freq_factors);
void rope_bwd_factors(float *dx, const int32_t *pos, int64_t T, int H, int D, const rope_params *p,
                      const float *freq_factors);

// The same rotation from tables formed once per step and reused by every layer: cs / sn (T, n_rot/2
// rotated dims, see rope_params) = cos / sin of pos[t] x frequency i (ff as freq_factors, may be NULL);
// rope_fwd_table(x, ...) then equals rope_fwd_factors(x, pos, ..., ff) bit for bit.
void rope_table(const int32_t *pos, int64_t T, int D, const rope_params *p, const float *ff, float *cs, float *sn);
void rope_fwd_table(float *x, int64_t T, int H, int D, const rope_params *p, const float *cs, const float *sn);

// ---- activations (elementwise over n) ----
// SwiGLU: out = silu(gate) * up ; GeGLU-tanh: out = gelu_tanh(gate) * up
void swiglu_fwd(float *out, const float *gate, const float *up, int64_t n);
void swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void geglu_fwd(float *out, const float *gate, const float *up, int64_t n);
void geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void gelu_fwd(float *out, const float *x, int64_t n);                  // tanh approximation (GPT-2)
void gelu_bwd(float *dx, const float *dout, const float *x, int64_t n);
void add_f32(float *y, const float *x, int64_t n);                      // y += x (a residual branch)

// ---- attention ----
// Causal grouped-query attention for one sequence.
// q (T, Hq, D), k/v (S, Hkv, D) where the query at row t has absolute position q_pos0 + t and key
// row s has position s (keys 0..S-1 are the cache). Query t attends keys s <= q_pos0 + t, and also
// s > q_pos0 + t - window when window > 0 (sliding window). doc_start (T) optional: query t attends
// only keys s >= doc_start[t] (packed rows). scale multiplies q·k; softcap > 0 applies cap*tanh(x/cap).
// out (T, Hq, D); att (Hq, T, S) saved probabilities for backward (may be NULL in inference).
// kv: the dtype of the k / v arguments of attention_fwd_heads / attention_decode_part: DT_F32 (0, the
// default), DT_F16 (an f16 KV cache) or DT_Q8_0 (rows of Q8_0 blocks; D a multiple of 32); the
// arithmetic stays f32 (q8_0 rows are widened to f32, d x q, exactly).
typedef struct { float scale; int window; float softcap; const int32_t *doc_start; dtype kv; } attn_params;
// Visible keys for query row t (absolute position q_pos0 + t) among S cached keys: [*lo, *hi], empty when
// *hi < *lo. Causal, then the sliding window, then the packed document's start.
static inline void attn_key_band(int64_t t, int64_t S, int64_t q_pos0, const attn_params *p, int64_t *lo,
                                 int64_t *hi) {
    int64_t qp = q_pos0 + t;
    int64_t h = qp < S - 1 ? qp : S - 1;
    int64_t l = 0;
    if (p->window > 0 && qp - p->window + 1 > l) l = qp - p->window + 1;
    if (p->doc_start && p->doc_start[t] > l) l = p->doc_start[t];
    *lo = l;
    *hi = h;
}
void attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                   int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p);
void attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att,
                   const float *q, const float *k, const float *v,
                   int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p);
// Thread splits. attention_fwd_heads computes only q heads [h0, h1) (their out rows and att planes).
// attention_bwd_kvheads computes the gradient flowing through kv heads [g0, g1) (q heads
// [g0*Hq/Hkv, g1*Hq/Hkv)): the dq, dk, dv rows it touches belong to those heads only, so disjoint
// ranges can run on different threads. dq, dk or dv may be NULL to skip that gradient.
// (k / v: rows of p->kv: f32, f16 or q8_0.)
void attention_fwd_heads(float *out, float *att, const float *q, const void *k, const void *v,
                         int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p,
                         int h0, int h1);
void attention_bwd_kvheads(float *dq, float *dk, float *dv, const float *dout, const float *att,
                           const float *q, const float *k, const float *v,
                           int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p,
                           int g0, int g1);
// Queries per task of a threaded prefill (attention_fwd_heads over chunks of queries): 16, or where
// prefill runs in tiles (AVX2 / AVX-512: each block of keys widened once for the chunk's rows) up to 128 while
// that leaves at least 8 tasks a thread. The tiled rows' results do not depend on the chunk; the
// per-query path's do not either, but its head grouping (which the caller picks from the task count)
// does, so there the chunk stays 16 whatever the threads.
int64_t attention_prefill_chunk(int64_t T, int Hkv, int nthreads);
// Decode split over runs of keys (one query row; the runs go to different threads, then merge):
// attention_decode_part takes q (Hq, D) against keys / values [lo, hi] of a cache of rows (S, Hkv, D)
// and leaves, per q head, the running max m, the sum l of exp(score - m) and the unnormalized output
// o = sum exp(score - m) v (m = -inf, l = 0, o = 0 for an empty run). attention_decode_merge combines
// n such parts into out (Hq, D), the softmax-weighted sum over all the runs' keys.
// (k / v: rows of p->kv: f32, f16 or q8_0.)
void attention_decode_part(float *o, float *m, double *l, const float *q, const void *k, const void *v, int Hq,
                           int Hkv, int D, int64_t lo, int64_t hi, const attn_params *p);
// Requests the first lines of the K and V rows of keys [lo, hi] (cold: a decode run's start).
void attention_decode_prefetch(const void *k, const void *v, int Hkv, int D, int64_t lo, int64_t hi,
                               const attn_params *p);
void attention_decode_merge(float *out, const float *const *o, const float *const *m, const double *const *l, int n,
                            int Hq, int D);

// ---- softmax / loss ----
void softmax_inplace(float *x, int64_t n);
// log(sum_i exp(x_i)) over n values (f32 exps summed in double, by the cross-entropy row kernels: SIMD
// where the CPU has it). A vocabulary-sized row in ~0.1 ms where libm's double exp took ~2 ms.
double logsumexp_f32(const float *x, int64_t n);
// Index of the largest of n values: the lowest index among equal ones, NaN never chosen, 0 when no value
// compares (n <= 0, all NaN). Greedy decoding's pick.
int64_t argmax_f32(const float *x, int64_t n);
// The same over pieces: merges values x[0..n), whose indices are off..off+n-1, into a running best
// (*bv, *bi), which starts at (-INFINITY, -1); *bi stays -1 while no value compared.
void argmax_f32_merge(float *bv, int64_t *bi, const float *x, int64_t off, int64_t n);
// Mean cross-entropy over rows whose target >= 0 (target < 0 = ignored). logits (T, V).
// Returns the SUM of per-token losses and writes the count of counted rows to *n_counted.
// dlogits (may be NULL, or logits itself) gets (softmax - onehot) * grad_scale for counted rows, 0 for
// ignored rows.
double cross_entropy_fwd_bwd(float *dlogits, const float *logits, const int32_t *targets,
                             int64_t T, int64_t V, float grad_scale, int64_t *n_counted);

// ---- embedding ----
// out (T, C) = table[ids[t]] * scale (table f32 (V, C)).
void embedding_fwd(float *out, const float *table, const int32_t *ids, int64_t T, int64_t C, float scale);
void embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C, float scale);
#endif
