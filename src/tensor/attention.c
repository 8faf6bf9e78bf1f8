// Causal grouped-query attention over one sequence, forward and backward.
// Layout: q (T, Hq, D), k/v (S, Hkv, D), out (T, Hq, D), att (Hq, T, S). Query t sits at absolute
// position q_pos0 + t; key s at position s. Every mask used here (causal, sliding window, document
// start) leaves a contiguous band of visible keys [lo, hi] per query, so the loops run over that band
// with no per-key mask test and masked probabilities are plain zeros.
// The two inner loops (scores of a query against a run of keys, weighted sum of a run of value rows)
// go through attn_kernels, chosen per call by isa_active(); the plain-C twins below are the reference.
#include "tensor/ops.h"
#include "tensor/attention_kernels.h"
#include "tensor/matmul.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
// Scores kept on the stack per block of keys (online-softmax forward).
#define SCORE_BLOCK 128
// Most q heads handled together in one pass over a kv head's keys.
#define HEAD_RUN 16
// dP (and capped-score) values kept on the stack per chunk of keys in the backward.
#define DP_BUF 2048
// Head sizes up to this get a local dq accumulator in the backward.
#define DQ_LOCAL 1024

// 8 independent lanes: a fixed-width inner loop that gcc -O2 turns into SIMD without -ffast-math.
static inline float dot_f32(const float *a, const float *b, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) acc[u] += a[i + u] * b[i + u];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// gcc -O2 (very-cheap cost model) only vectorizes loops it needs no scalar epilogue for, so the
// elementwise loops also go in fixed blocks of LANES with a scalar tail.
static inline void axpy_f32(float *restrict y, float a, const float *restrict x, int n) {
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) y[i + u] += a * x[i + u];
    for (; i < n; i++) y[i] += a * x[i];
}

static inline void scale_f32(float *y, float a, int n) {
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) y[i + u] *= a;
    for (; i < n; i++) y[i] *= a;
}

// ---------------------------------------------------------------- kernels: reference and dispatch
static void attn_scores_ref(float *sc, const float *q, const float *k, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++) sc[i] = dot_f32(q, k + (int64_t)i * ks, D);
}

static void attn_accum_ref(float *o, const float *p, const float *v, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++) axpy_f32(o, p[i], v + (int64_t)i * ks, D);
}

static void attn_scores_h_ref(float *sc, const float *q, const uint16_t *k, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++) {
        const uint16_t *ki = k + (int64_t)i * ks;
        float acc[LANES] = {0};
        int d = 0;
        for (; d + LANES <= D; d += LANES)
            for (int u = 0; u < LANES; u++) acc[u] += q[d + u] * f16_to_f32(ki[d + u]);
        float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; d < D; d++) s += q[d] * f16_to_f32(ki[d]);
        sc[i] = s;
    }
}

static void attn_accum_h_ref(float *o, const float *p, const uint16_t *v, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) o[d] += p[i] * f16_to_f32(v[(int64_t)i * ks + d]);
}

// q8_0 rows (attention_kernels.h: attn_q8_at / attn_q8_elem).
_Static_assert(sizeof(blk_q8_0) == Q8_BLOCK_BYTES, "the kernels' q8_0 block is GGML's");
static void attn_scores_q8_ref(float *sc, const float *q, const uint8_t *k, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++) {
        const uint8_t *ki = attn_q8_at(k, (int64_t)i * ks);
        float acc[LANES] = {0};
        int d = 0;
        for (; d + LANES <= D; d += LANES)
            for (int u = 0; u < LANES; u++) acc[u] += q[d + u] * attn_q8_elem(ki, d + u);
        float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; d < D; d++) s += q[d] * attn_q8_elem(ki, d);
        sc[i] = s;
    }
}
static void attn_accum_q8_ref(float *o, const float *p, const uint8_t *v, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) o[d] += p[i] * attn_q8_elem(v, (int64_t)i * ks + d);
}
static void attn_scores_gq8_ref(float *sc, const float *q, int G, const uint8_t *k, int64_t ks, int n, int D) {
    for (int j = 0; j < G; j++) attn_scores_q8_ref(sc + (int64_t)j * n, q + (int64_t)j * D, k, ks, n, D);
}
static void attn_accum_gq8_ref(float *o, const float *p, int G, const uint8_t *v, int64_t ks, int n, int D) {
    for (int j = 0; j < G; j++) attn_accum_q8_ref(o + (int64_t)j * D, p + (int64_t)j * n, v, ks, n, D);
}
static void attn_scores_rowsq8_ref(float *sc, const float *q, int Hq, int Hkv, const uint8_t *k, int64_t ks, int n,
                                   int D) {
    for (int h = 0; h < Hq; h++)
        attn_scores_q8_ref(sc + (int64_t)h * n, q + (int64_t)h * D, attn_q8_at(k, (int64_t)(h / (Hq / Hkv)) * D), ks, n, D);
}
static void attn_accum_rowsq8_ref(float *o, const float *p, int Hq, int Hkv, const uint8_t *v, int64_t ks, int n,
                                  int D) {
    for (int h = 0; h < Hq; h++)
        attn_accum_q8_ref(o + (int64_t)h * D, p + (int64_t)h * n, attn_q8_at(v, (int64_t)(h / (Hq / Hkv)) * D), ks, n, D);
}

static void attn_scores_g_ref(float *sc, const float *q, int G, const float *k, int64_t ks, int n, int D) {
    for (int j = 0; j < G; j++) attn_scores_ref(sc + (int64_t)j * n, q + (int64_t)j * D, k, ks, n, D);
}
static void attn_accum_g_ref(float *o, const float *p, int G, const float *v, int64_t ks, int n, int D) {
    for (int j = 0; j < G; j++) attn_accum_ref(o + (int64_t)j * D, p + (int64_t)j * n, v, ks, n, D);
}
static void attn_scores_gh_ref(float *sc, const float *q, int G, const uint16_t *k, int64_t ks, int n, int D) {
    for (int j = 0; j < G; j++) attn_scores_h_ref(sc + (int64_t)j * n, q + (int64_t)j * D, k, ks, n, D);
}
static void attn_accum_gh_ref(float *o, const float *p, int G, const uint16_t *v, int64_t ks, int n, int D) {
    for (int j = 0; j < G; j++) attn_accum_h_ref(o + (int64_t)j * D, p + (int64_t)j * n, v, ks, n, D);
}

static void attn_scores_rows_ref(float *sc, const float *q, int Hq, int Hkv, const float *k, int64_t ks, int n, int D) {
    for (int h = 0; h < Hq; h++)
        attn_scores_ref(sc + (int64_t)h * n, q + (int64_t)h * D, k + (int64_t)(h / (Hq / Hkv)) * D, ks, n, D);
}
static void attn_accum_rows_ref(float *o, const float *p, int Hq, int Hkv, const float *v, int64_t ks, int n, int D) {
    for (int h = 0; h < Hq; h++)
        attn_accum_ref(o + (int64_t)h * D, p + (int64_t)h * n, v + (int64_t)(h / (Hq / Hkv)) * D, ks, n, D);
}
static void attn_scores_rowsh_ref(float *sc, const float *q, int Hq, int Hkv, const uint16_t *k, int64_t ks, int n,
                                  int D) {
    for (int h = 0; h < Hq; h++)
        attn_scores_h_ref(sc + (int64_t)h * n, q + (int64_t)h * D, k + (int64_t)(h / (Hq / Hkv)) * D, ks, n, D);
}
static void attn_accum_rowsh_ref(float *o, const float *p, int Hq, int Hkv, const uint16_t *v, int64_t ks, int n,
                                 int D) {
    for (int h = 0; h < Hq; h++)
        attn_accum_h_ref(o + (int64_t)h * D, p + (int64_t)h * n, v + (int64_t)(h / (Hq / Hkv)) * D, ks, n, D);
}

static float attn_scale_max_ref(float *sc, int n, float scale) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) {
        sc[i] *= scale;
        m = sc[i] > m ? sc[i] : m;
    }
    return m;
}

static double attn_expsum_ref(float *sc, int n, float m) {
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        float x = sc[i] - m;
        sc[i] = x >= -87.0f ? expf(x) : 0.0f;   // no denormal weights (see attention_avx2.c)
        s += sc[i];
    }
    return s;
}

static void attn_tile_scores_ref(float *sc, const float *q, const float *kt, int n, int D) {
    for (int m = 0; m < ATT_TILE_ROWS; m++)
        for (int i = 0; i < n; i++) {
            float s = 0.0f;
            for (int d = 0; d < D; d++) s += q[(int64_t)m * D + d] * kt[(int64_t)d * ATT_TILE_KEYS + i];
            sc[m * ATT_TILE_KEYS + i] = s;
        }
}
static void attn_keys_t_ref(float *kt, const float *kb, int n, int D) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) kt[(int64_t)d * ATT_TILE_KEYS + i] = kb[(int64_t)i * D + d];
}
static void attn_tile_accum_ref(float *o, const float *p, const float *vb, int n, int D) {
    for (int m = 0; m < ATT_TILE_ROWS; m++)
        for (int i = 0; i < n; i++) axpy_f32(o + (int64_t)m * D, p[m * ATT_TILE_KEYS + i], vb + (int64_t)i * D, D);
}
static void attn_rows_h_ref(float *dst, const uint16_t *src, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) dst[(int64_t)i * D + d] = f16_to_f32(src[(int64_t)i * ks + d]);
}

static void attn_rows_q8_ref(float *dst, const uint8_t *src, int64_t ks, int n, int D) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) dst[(int64_t)i * D + d] = attn_q8_elem(attn_q8_at(src, (int64_t)i * ks), d);
}

static attn_kernels g_tab[3];
static atomic_int g_tab_ready;

const attn_kernels *attn_kernels_for(int isa) {
    if (!atomic_load_explicit(&g_tab_ready, memory_order_acquire)) {
        // Idempotent: concurrent first callers build identical tables.
        attn_kernels t[3];
        t[0] = (attn_kernels){.scores = attn_scores_ref, .accum = attn_accum_ref, .scores_h = attn_scores_h_ref,
                              .accum_h = attn_accum_h_ref, .scores_g = attn_scores_g_ref, .accum_g = attn_accum_g_ref,
                              .scores_gh = attn_scores_gh_ref, .accum_gh = attn_accum_gh_ref,
                              .scores_q8 = attn_scores_q8_ref, .accum_q8 = attn_accum_q8_ref,
                              .scores_gq8 = attn_scores_gq8_ref, .accum_gq8 = attn_accum_gq8_ref,
                              .scores_rowsq8 = attn_scores_rowsq8_ref, .accum_rowsq8 = attn_accum_rowsq8_ref,
                              .scale_max = attn_scale_max_ref, .expsum = attn_expsum_ref,
                              .scores_rows = attn_scores_rows_ref, .accum_rows = attn_accum_rows_ref,
                              .scores_rowsh = attn_scores_rowsh_ref, .accum_rowsh = attn_accum_rowsh_ref,
                              .tile_scores = attn_tile_scores_ref, .tile_accum = attn_tile_accum_ref,
                              .rows_h = attn_rows_h_ref, .rows_q8 = attn_rows_q8_ref, .keys_t = attn_keys_t_ref, .tiles = 0};
        t[1] = t[2] = t[0];
        isa_level d = isa_detect();
        if (d >= ISA_AVX2) { attn_kernels_avx2(&t[1]); t[2] = t[1]; }
        if (d >= ISA_AVX512) attn_kernels_avx512(&t[2]);
        memcpy(g_tab, t, sizeof t);
        atomic_store_explicit(&g_tab_ready, 1, memory_order_release);
    }
    return &g_tab[isa < 0 ? 0 : isa > 2 ? 2 : isa];
}

const attn_kernels *attn_kernels_active(void) { return attn_kernels_for((int)isa_active()); }

// K / V rows are f32, f16 or q8_0 (p->kv): element e of a cache at base (e a multiple of 32 for q8_0:
// e is always a row's or a head's first element, D a multiple of 32), and the kernels over them.
static inline const void *kv_at(const void *base, int64_t e, const attn_params *p) {
    if (p->kv == DT_Q8_0) return attn_q8_at(base, e);
    return (const char *)base + e * (p->kv == DT_F16 ? 2 : 4);
}

static inline void kv_scores(const attn_kernels *kn, const attn_params *p, float *sc, const float *q, const void *k,
                             int64_t ks, int n, int D) {
    if (p->kv == DT_F16) kn->scores_h(sc, q, k, ks, n, D);
    else if (p->kv == DT_Q8_0) kn->scores_q8(sc, q, k, ks, n, D);
    else kn->scores(sc, q, k, ks, n, D);
}
static inline void kv_accum(const attn_kernels *kn, const attn_params *p, float *o, const float *pr, const void *v,
                            int64_t ks, int n, int D) {
    if (p->kv == DT_F16) kn->accum_h(o, pr, v, ks, n, D);
    else if (p->kv == DT_Q8_0) kn->accum_q8(o, pr, v, ks, n, D);
    else kn->accum(o, pr, v, ks, n, D);
}
static inline void kv_scores_g(const attn_kernels *kn, const attn_params *p, float *sc, const float *q, int G,
                               const void *k, int64_t ks, int n, int D) {
    if (p->kv == DT_F16) kn->scores_gh(sc, q, G, k, ks, n, D);
    else if (p->kv == DT_Q8_0) kn->scores_gq8(sc, q, G, k, ks, n, D);
    else kn->scores_g(sc, q, G, k, ks, n, D);
}
static inline void kv_accum_g(const attn_kernels *kn, const attn_params *p, float *o, const float *pr, int G,
                              const void *v, int64_t ks, int n, int D) {
    if (p->kv == DT_F16) kn->accum_gh(o, pr, G, v, ks, n, D);
    else if (p->kv == DT_Q8_0) kn->accum_gq8(o, pr, G, v, ks, n, D);
    else kn->accum_g(o, pr, G, v, ks, n, D);
}
static inline void kv_scores_rows(const attn_kernels *kn, const attn_params *p, float *sc, const float *q, int Hq,
                                  int Hkv, const void *k, int64_t ks, int n, int D) {
    if (p->kv == DT_F16) kn->scores_rowsh(sc, q, Hq, Hkv, k, ks, n, D);
    else if (p->kv == DT_Q8_0) kn->scores_rowsq8(sc, q, Hq, Hkv, k, ks, n, D);
    else kn->scores_rows(sc, q, Hq, Hkv, k, ks, n, D);
}
static inline void kv_accum_rows(const attn_kernels *kn, const attn_params *p, float *o, const float *pr, int Hq,
                                 int Hkv, const void *v, int64_t ks, int n, int D) {
    if (p->kv == DT_F16) kn->accum_rowsh(o, pr, Hq, Hkv, v, ks, n, D);
    else if (p->kv == DT_Q8_0) kn->accum_rowsq8(o, pr, Hq, Hkv, v, ks, n, D);
    else kn->accum_rows(o, pr, Hq, Hkv, v, ks, n, D);
}

// ---------------------------------------------------------------- forward

// Raw dot products -> scaled (and soft-capped) scores, in place; returns their max.
static float finish_scores(const attn_kernels *kn, float *sc, int n, const attn_params *p) {
    if (p->softcap <= 0) return kn->scale_max(sc, n, p->scale);
    float m = -INFINITY, cap = p->softcap, f = p->scale / cap;
    for (int i = 0; i < n; i++) {
        sc[i] = cap * tanhf(sc[i] * f);
        m = sc[i] > m ? sc[i] : m;
    }
    return m;
}

// One query row, probabilities stored in row[0..S) (zeros outside the band) for the backward.
static void attend_store(const attn_kernels *kn, float *o, float *row, const float *q, const void *k,
                         const void *v, int64_t S, int64_t lo, int64_t hi, int64_t ks, int D,
                         const attn_params *p) {
    memset(o, 0, (size_t)D * sizeof(float));
    if (hi < lo) { memset(row, 0, (size_t)S * sizeof(float)); return; }
    if (lo > 0) memset(row, 0, (size_t)lo * sizeof(float));
    if (hi + 1 < S) memset(row + hi + 1, 0, (size_t)(S - hi - 1) * sizeof(float));
    float m = -INFINITY;
    for (int64_t b0 = lo; b0 <= hi; b0 += SCORE_BLOCK) {
        int n = (int)(hi - b0 + 1 < SCORE_BLOCK ? hi - b0 + 1 : SCORE_BLOCK);
        kv_scores(kn, p, row + b0, q, kv_at(k, b0 * ks, p), ks, n, D);
        float bm = finish_scores(kn, row + b0, n, p);
        m = bm > m ? bm : m;
    }
    double sum = 0.0;
    for (int64_t s = lo; s <= hi; s++) { row[s] = expf(row[s] - m); sum += row[s]; }
    float inv = (float)(1.0 / sum);
    for (int64_t s = lo; s <= hi; s++) row[s] *= inv;
    for (int64_t b0 = lo; b0 <= hi; b0 += SCORE_BLOCK) {
        int n = (int)(hi - b0 + 1 < SCORE_BLOCK ? hi - b0 + 1 : SCORE_BLOCK);
        kv_accum(kn, p, o, row + b0, kv_at(v, b0 * ks, p), ks, n, D);
    }
}

// The online-softmax step of G heads that share a kv head over a block of n keys: their scores (head j's
// in sc[j*n ..]), each head's running max m[j] (its output o_j and sum l[j] rescaled when it grows), then
// l[j] += the block's exp sum and o_j += its probability-weighted values, the values read once for
// the G heads.
// The softmax part of that step for G heads whose raw scores over the block are in sc (head j's at j*n).
static void online_update(const attn_kernels *kn, float *sc, float *o, float *m, double *l, int G, int n, int D,
                          const attn_params *p) {
    for (int j = 0; j < G; j++) {
        float *sj = sc + (int64_t)j * n;
        float bm = finish_scores(kn, sj, n, p);
        if (bm > m[j]) {
            if (m[j] != -INFINITY) {
                float f = expf(m[j] - bm);
                l[j] *= f;
                scale_f32(o + (int64_t)j * D, f, D);
            }
            m[j] = bm;
        }
        l[j] += kn->expsum(sj, n, m[j]);
    }
}

static void online_block(const attn_kernels *kn, float *sc, float *o, float *m, double *l, const float *q, int G,
                         const void *k, const void *v, int64_t ks, int n, int D, const attn_params *p) {
    kv_scores_g(kn, p, sc, q, G, k, ks, n, D);
    online_update(kn, sc, o, m, l, G, n, D, p);
    kv_accum_g(kn, p, o, sc, G, v, ks, n, D);
}

// One query row for a run of nh consecutive q heads sharing one kv head, without storing
// probabilities: online softmax over blocks of keys, accumulating straight into each head's output
// and rescaling it whenever that head's running max grows. The heads go through each block together,
// so a block of K/V rows is read from memory once per kv head and loaded once for the whole group
// (decode is bound by reading the cache). No heap, any S.
static void attend_online(const attn_kernels *kn, float *o, const float *q, int nh, const void *k,
                          const void *v, int64_t lo, int64_t hi, int64_t ks, int D, const attn_params *p) {
    float sc[SCORE_BLOCK * HEAD_RUN], m[HEAD_RUN];
    double l[HEAD_RUN];
    memset(o, 0, (size_t)nh * D * sizeof(float));
    for (int j = 0; j < nh; j++) { m[j] = -INFINITY; l[j] = 0.0; }
    for (int64_t b0 = lo; b0 <= hi; b0 += SCORE_BLOCK) {
        int n = (int)(hi - b0 + 1 < SCORE_BLOCK ? hi - b0 + 1 : SCORE_BLOCK);
        online_block(kn, sc, o, m, l, q, nh, kv_at(k, b0 * ks, p), kv_at(v, b0 * ks, p), ks, n, D, p);
    }
    for (int j = 0; j < nh; j++)
        if (l[j] > 0) scale_f32(o + (int64_t)j * D, (float)(1.0 / l[j]), D);
}

// Rows of q / out a pass of attend_tiles holds (the q copies and the outputs, 2 x rows x D floats).
#define TILE_PASS_FLOATS 65536

// The tile-row state of one pass of attend_tiles: rows r = (query t0 + r / nh, head h + r % nh).
typedef struct {
    float *q, *o, *kb, *kt, *vb, *mx;
    double *l;
    int64_t *lo, *hi;   // per query of the pass: its visible keys
} tile_pass;

// One block of n keys from b0 (widened in kb / vb) through the 8 rows from r0: scores, each row's
// online-softmax step over the part of the block it sees (the rest of its scores zeroed), the values.
static void tile_block(const attn_kernels *kn, const tile_pass *tp, float *sc, int r0, int nh, int nrows, int64_t b0,
                       int n, int D, const attn_params *p) {
    kn->tile_scores(sc, tp->q + (int64_t)r0 * D, tp->kt, n, D);
    for (int m = 0; m < ATT_TILE_ROWS; m++) {
        int r = r0 + m;
        float *sj = sc + m * ATT_TILE_KEYS;
        int64_t a = r < nrows ? tp->lo[r / nh] - b0 : n, b = r < nrows ? tp->hi[r / nh] - b0 : -1;
        a = a < 0 ? 0 : a;
        b = b > n - 1 ? n - 1 : b;
        if (b < a) { memset(sj, 0, (size_t)n * sizeof(float)); continue; }
        float bm = finish_scores(kn, sj + a, (int)(b - a + 1), p);
        memset(sj, 0, (size_t)a * sizeof(float));
        memset(sj + b + 1, 0, (size_t)(n - 1 - b) * sizeof(float));
        if (bm > tp->mx[r]) {
            if (tp->mx[r] != -INFINITY) {
                float f = expf(tp->mx[r] - bm);
                tp->l[r] *= f;
                scale_f32(tp->o + (int64_t)r * D, f, D);
            }
            tp->mx[r] = bm;
        }
        tp->l[r] += kn->expsum(sj + a, (int)(b - a + 1), tp->mx[r]);
    }
    kn->tile_accum(tp->o + (int64_t)r0 * D, sc, tp->vb, n, D);
}

// K / V rows [b0, b0 + n) of one kv head as contiguous f32 rows of D.
static void widen_rows(const attn_kernels *kn, float *dst, const void *src, int64_t b0, int n, int64_t ks, int D,
                       const attn_params *p) {
    if (p->kv == DT_F16) { kn->rows_h(dst, (const uint16_t *)src + b0 * ks, ks, n, D); return; }
    if (p->kv == DT_Q8_0) { kn->rows_q8(dst, kv_at(src, b0 * ks, p), ks, n, D); return; }
    for (int i = 0; i < n; i++) memcpy(dst + (int64_t)i * D, (const float *)src + (b0 + i) * ks, (size_t)D * sizeof(float));
}

// Queries [t0, t1) of q heads [h, h + nh) (one kv head): their rows copied into the pass, every block of
// keys any of them sees widened once and taken by each tile of 8 rows that sees part of it.
static void tile_pass_run(const attn_kernels *kn, const tile_pass *tp, float *out, const float *q, int64_t t0,
                          int64_t t1, int64_t S, int Hq, int h, int nh, const void *kh, const void *vh, int64_t ks,
                          int D, int64_t q_pos0, const attn_params *p) {
    int nrows = (int)(t1 - t0) * nh, rows = (nrows + ATT_TILE_ROWS - 1) / ATT_TILE_ROWS * ATT_TILE_ROWS;
    int64_t kmin = S, kmax = -1;
    for (int64_t t = t0; t < t1; t++) {
        attn_key_band(t, S, q_pos0, p, &tp->lo[t - t0], &tp->hi[t - t0]);
        if (tp->hi[t - t0] < tp->lo[t - t0]) continue;
        kmin = tp->lo[t - t0] < kmin ? tp->lo[t - t0] : kmin;
        kmax = tp->hi[t - t0] > kmax ? tp->hi[t - t0] : kmax;
        memcpy(tp->q + (t - t0) * nh * D, q + (t * Hq + h) * (int64_t)D, (size_t)nh * D * sizeof(float));
    }
    memset(tp->q + (int64_t)nrows * D, 0, (size_t)(rows - nrows) * D * sizeof(float));
    memset(tp->o, 0, (size_t)rows * D * sizeof(float));
    for (int r = 0; r < rows; r++) { tp->mx[r] = -INFINITY; tp->l[r] = 0.0; }
    float sc[ATT_TILE_ROWS * ATT_TILE_KEYS];
    // blocks at multiples of ATT_TILE_KEYS: a row's sums do not depend on which rows share its pass
    for (int64_t b0 = kmin / ATT_TILE_KEYS * ATT_TILE_KEYS; b0 <= kmax; b0 += ATT_TILE_KEYS) {
        int n = (int)(kmax - b0 + 1 < ATT_TILE_KEYS ? kmax - b0 + 1 : ATT_TILE_KEYS);
        widen_rows(kn, tp->kb, kh, b0, n, ks, D, p);
        int n32 = (n + 31) / 32 * 32;   // the keys the score kernel reads: zero rows past n
        memset(tp->kb + (int64_t)n * D, 0, (size_t)(n32 - n) * D * sizeof(float));
        kn->keys_t(tp->kt, tp->kb, n32, D);
        widen_rows(kn, tp->vb, vh, b0, n, ks, D, p);
        for (int r0 = 0; r0 < nrows; r0 += ATT_TILE_ROWS) {
            int64_t qa = r0 / nh, qb = (r0 + ATT_TILE_ROWS < nrows ? r0 + ATT_TILE_ROWS : nrows) - 1;
            qb /= nh;
            int64_t lo = S, hi = -1;   // the keys the tile's queries see
            for (int64_t t = qa; t <= qb; t++) {
                if (tp->hi[t] < tp->lo[t]) continue;
                lo = tp->lo[t] < lo ? tp->lo[t] : lo;
                hi = tp->hi[t] > hi ? tp->hi[t] : hi;
            }
            if (hi < b0 || lo > b0 + n - 1) continue;
            tile_block(kn, tp, sc, r0, nh, nrows, b0, n, D, p);
        }
    }
    for (int r = 0; r < nrows; r++) {
        float *o = out + ((t0 + r / nh) * Hq + h + r % nh) * (int64_t)D;
        if (tp->l[r] > 0) {
            float inv = (float)(1.0 / tp->l[r]);
            for (int d = 0; d < D; d++) o[d] = tp->o[(int64_t)r * D + d] * inv;
        } else {
            memset(o, 0, (size_t)D * sizeof(float));
        }
    }
}

// Prefill without stored probabilities for nh q heads of one kv head (nh divides ATT_TILE_ROWS): passes of
// queries whose rows fit TILE_PASS_FLOATS, each as tile_pass_run. Returns -1 (nothing written) when
// its buffers cannot be had.
static int attend_tiles(const attn_kernels *kn, float *out, const float *q, int64_t T, int64_t S, int Hq, int h,
                        int nh, const void *kh, const void *vh, int64_t ks, int D, int64_t q_pos0,
                        const attn_params *p) {
    int rows = TILE_PASS_FLOATS / 2 / D / ATT_TILE_ROWS * ATT_TILE_ROWS;
    if (rows < ATT_TILE_ROWS) rows = ATT_TILE_ROWS;
    int64_t qc = rows / nh;   // queries a pass
    if (qc > T) { qc = T; rows = (int)((T * nh + ATT_TILE_ROWS - 1) / ATT_TILE_ROWS * ATT_TILE_ROWS); }
    size_t fl = (size_t)rows * D * 2 + (size_t)ATT_TILE_KEYS * D * 3 + (size_t)rows;
    char *buf = malloc(fl * sizeof(float) + (size_t)rows * sizeof(double) + (size_t)qc * 2 * sizeof(int64_t));
    if (!buf) return -1;
    tile_pass tp;
    tp.l = (double *)buf;
    tp.lo = (int64_t *)(tp.l + rows);
    tp.hi = tp.lo + qc;
    tp.q = (float *)(tp.hi + qc);
    tp.o = tp.q + (size_t)rows * D;
    tp.kb = tp.o + (size_t)rows * D;
    tp.kt = tp.kb + (size_t)ATT_TILE_KEYS * D;
    tp.vb = tp.kt + (size_t)ATT_TILE_KEYS * D;
    tp.mx = tp.vb + (size_t)ATT_TILE_KEYS * D;
    for (int64_t t0 = 0; t0 < T; t0 += qc)
        tile_pass_run(kn, &tp, out, q, t0, t0 + qc < T ? t0 + qc : T, S, Hq, h, nh, kh, vh, ks, D, q_pos0, p);
    free(buf);
    return 0;
}

void attention_fwd_heads(float *out, float *att, const float *q, const void *k, const void *v,
                         int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p,
                         int h0, int h1) {
    const attn_kernels *kn = attn_kernels_active();
    int group = Hq / Hkv;
    int64_t ks = (int64_t)Hkv * D;
    // Runs of consecutive q heads that read the same kv head (at most HEAD_RUN, inside [h0, h1)).
    for (int h = h0; h < h1;) {
        int kvh = h / group;
        int hend = (kvh + 1) * group < h1 ? (kvh + 1) * group : h1;
        if (hend - h > HEAD_RUN) hend = h + HEAD_RUN;
        const void *kh = kv_at(k, (int64_t)kvh * D, p), *vh = kv_at(v, (int64_t)kvh * D, p);
        // without stored probabilities or documents, at a level with tile kernels, more than one query (a
        // single one, as in a decode step, is faster per query): tiles of 8 query rows, the run's heads in
        // groups of g, the largest power of two up to 8 dividing their count (3 heads a kv head, as Llama
        // 3.2 3B: 1; 7, as Qwen2.5 0.5B: 1)
        int nh = hend - h, g = 8;
        while (nh % g) g /= 2;
        if (!att && !p->doc_start && kn->tiles && T > 1 && D % 16 == 0) {
            int ok = 1;
            for (int h1 = h; h1 < hend && ok; h1 += g)
                ok = attend_tiles(kn, out, q, T, S, Hq, h1, g, kh, vh, ks, D, q_pos0, p) == 0;
            if (ok) {
                h = hend;
                continue;
            }
        }
        for (int64_t t = 0; t < T; t++) {
            const float *qt = q + (t * Hq + h) * (int64_t)D;
            float *ot = out + (t * Hq + h) * (int64_t)D;
            int64_t lo, hi;
            attn_key_band(t, S, q_pos0, p, &lo, &hi);
            if (att) {
                for (int j = 0; j < hend - h; j++)
                    attend_store(kn, ot + (int64_t)j * D, att + ((int64_t)(h + j) * T + t) * S, qt + (int64_t)j * D,
                                 kh, vh, S, lo, hi, ks, D, p);
            } else if (hi < lo) {
                memset(ot, 0, (size_t)(hend - h) * D * sizeof(float));
            } else {
                attend_online(kn, ot, qt, hend - h, kh, vh, lo, hi, ks, D, p);
            }
        }
        h = hend;
    }
}

int64_t attention_prefill_chunk(int64_t T, int Hkv, int nthreads) {
    if (!attn_kernels_active()->tiles) return T < 16 ? T : 16;
    int64_t c = 128;
    while (c > 16 && (int64_t)Hkv * ((T + c - 1) / c) < 8 * (int64_t)nthreads) c /= 2;
    return c < T ? c : T;
}

// Keys per block of the decode parts, and scores kept on the stack per block (every head's).
#define DEC_BLOCK 32
#define DEC_SCORES 2048

// One block of n whole cache rows for every head: the scores (rows read in address order, see
// attn_kernels.scores_rows), each head's online-softmax step, then the values (again in row order).
void attention_decode_part(float *o, float *m, double *l, const float *q, const void *k, const void *v, int Hq,
                           int Hkv, int D, int64_t lo, int64_t hi, const attn_params *p) {
    const attn_kernels *kn = attn_kernels_active();
    const int64_t ks = (int64_t)Hkv * D;
    float sc[DEC_SCORES];
    _Static_assert(DEC_SCORES >= DEC_BLOCK * HEAD_RUN, "the kv-head path keeps HEAD_RUN heads' block scores");
    memset(o, 0, (size_t)Hq * D * sizeof(float));
    for (int h = 0; h < Hq; h++) { m[h] = -INFINITY; l[h] = 0.0; }
    if (Hq > DEC_SCORES) {   // more heads than the stack holds scores for (none known): kv head by kv head
        const int G = Hq / Hkv;
        int g = G < HEAD_RUN ? G : HEAD_RUN;   // heads per step: the largest divisor of G up to HEAD_RUN
        while (G % g) g--;
        for (int64_t b0 = lo; b0 <= hi; b0 += DEC_BLOCK) {
            int n = (int)(hi - b0 + 1 < DEC_BLOCK ? hi - b0 + 1 : DEC_BLOCK);
            for (int h = 0; h < Hq; h += g) {
                int64_t off = b0 * ks + (int64_t)(h / G) * D;
                online_block(kn, sc, o + (int64_t)h * D, &m[h], &l[h], q + (int64_t)h * D, g, kv_at(k, off, p),
                             kv_at(v, off, p), ks, n, D, p);
            }
        }
        return;
    }
    const int nb = DEC_SCORES / Hq < DEC_BLOCK ? DEC_SCORES / Hq : DEC_BLOCK;   // rows per block
    for (int64_t b0 = lo; b0 <= hi; b0 += nb) {
        int n = (int)(hi - b0 + 1 < nb ? hi - b0 + 1 : nb);
        kv_scores_rows(kn, p, sc, q, Hq, Hkv, kv_at(k, b0 * ks, p), ks, n, D);
        online_update(kn, sc, o, m, l, Hq, n, D, p);
        kv_accum_rows(kn, p, o, sc, Hq, Hkv, kv_at(v, b0 * ks, p), ks, n, D);
    }
}

// The first bytes of a run's K and V rows, requested at once (the row kernels prefetch ATT_PF_AHEAD bytes
// ahead of what they read, so a run's first ATT_PF_AHEAD bytes of each would otherwise come in at
// demand-miss pace).
void attention_decode_prefetch(const void *k, const void *v, int Hkv, int D, int64_t lo, int64_t hi,
                               const attn_params *p) {
    if (hi < lo) return;
    const int64_t ks = (int64_t)Hkv * D;
    size_t run = dtype_row_bytes(p->kv, (hi - lo + 1) * ks);
    size_t n = run < ATT_PF_AHEAD ? run : ATT_PF_AHEAD;
    const char *kr = kv_at(k, lo * ks, p), *vr = kv_at(v, lo * ks, p);
    for (size_t o = 0; o < n; o += 64) {
        __builtin_prefetch(kr + o, 0, 0);
        __builtin_prefetch(vr + o, 0, 0);
    }
}

void attention_decode_merge(float *out, const float *const *o, const float *const *m, const double *const *l, int n,
                            int Hq, int D) {
    for (int h = 0; h < Hq; h++) {
        float mx = -INFINITY;
        for (int i = 0; i < n; i++) mx = m[i][h] > mx ? m[i][h] : mx;
        float *oh = out + (int64_t)h * D;
        memset(oh, 0, (size_t)D * sizeof(float));
        if (mx == -INFINITY) continue;   // no visible key
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            if (l[i][h] == 0.0) continue;
            float f = expf(m[i][h] - mx);
            sum += l[i][h] * f;
            axpy_f32(oh, f, o[i] + (int64_t)h * D, D);
        }
        scale_f32(oh, (float)(1.0 / sum), D);
    }
}

void attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                   int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p) {
    attention_fwd_heads(out, att, q, k, v, T, S, Hq, Hkv, D, q_pos0, p, 0, Hq);
}

// ---------------------------------------------------------------- backward
// With P the probabilities, c the (capped) scores and x = scale q.k the raw ones:
//   dv_s += P_s dout,  dP_s = dout.v_s,  dc_s = P_s (dP_s - delta),  delta = sum_j P_j dP_j,
//   dx_s = dc_s (1 - (c_s/cap)^2) under softcap,  dq += scale dx_s k_s,  dk_s += scale dx_s q.
// Keys go in chunks of DP_BUF; a row longer than one chunk recomputes dP in the second pass.
void attention_bwd_kvheads(float *dq, float *dk, float *dv, const float *dout, const float *att,
                           const float *q, const float *k, const float *v,
                           int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p,
                           int g0, int g1) {
    const attn_kernels *kn = attn_kernels_active();
    int group = Hq / Hkv;
    int64_t ks = (int64_t)Hkv * D;
    float dp_buf[DP_BUF], qk_buf[DP_BUF], dq_local[DQ_LOCAL];
    for (int h = g0 * group; h < g1 * group; h++) {
        int kvh = h / group;
        const float *kh = k + (int64_t)kvh * D, *vh = v + (int64_t)kvh * D;
        float *dkh = dk ? dk + (int64_t)kvh * D : NULL, *dvh = dv ? dv + (int64_t)kvh * D : NULL;
        for (int64_t t = 0; t < T; t++) {
            int64_t lo, hi;
            attn_key_band(t, S, q_pos0, p, &lo, &hi);
            if (hi < lo) continue;
            const float *row = att + ((int64_t)h * T + t) * S;
            const float *qt = q + (t * Hq + h) * (int64_t)D, *gt = dout + (t * Hq + h) * (int64_t)D;
            float *dqt = dq ? dq + (t * Hq + h) * (int64_t)D : NULL;
            bool one_chunk = hi - lo + 1 <= DP_BUF;
            double delta = 0.0;
            for (int64_t c0 = lo; c0 <= hi; c0 += DP_BUF) {
                int n = (int)(hi - c0 + 1 < DP_BUF ? hi - c0 + 1 : DP_BUF);
                kn->scores(dp_buf, gt, vh + c0 * ks, ks, n, D);
                for (int i = 0; i < n; i++) delta += (double)row[c0 + i] * dp_buf[i];
                if (dvh)
                    for (int i = 0; i < n; i++) axpy_f32(dvh + (c0 + i) * ks, row[c0 + i], gt, D);
            }
            if (!dqt && !dkh) continue;
            // dq of this row is summed locally first: adding thousands of small terms straight into a
            // gradient buffer that already holds larger values would round each one away.
            float *dq_acc = dqt && D <= DQ_LOCAL ? dq_local : dqt;
            if (dq_acc == dq_local) memset(dq_local, 0, (size_t)D * sizeof(float));
            float fdelta = (float)delta;
            for (int64_t c0 = lo; c0 <= hi; c0 += DP_BUF) {
                int n = (int)(hi - c0 + 1 < DP_BUF ? hi - c0 + 1 : DP_BUF);
                if (!one_chunk) kn->scores(dp_buf, gt, vh + c0 * ks, ks, n, D);
                // dp_buf becomes dx in place.
                for (int i = 0; i < n; i++) dp_buf[i] = row[c0 + i] * (dp_buf[i] - fdelta) * p->scale;
                if (p->softcap > 0) {
                    kn->scores(qk_buf, qt, kh + c0 * ks, ks, n, D);
                    float f = p->scale / p->softcap;
                    for (int i = 0; i < n; i++) {
                        float th = tanhf(qk_buf[i] * f);
                        dp_buf[i] *= 1.0f - th * th;
                    }
                }
                if (dq_acc) kn->accum(dq_acc, dp_buf, kh + c0 * ks, ks, n, D);
                if (dkh)
                    for (int i = 0; i < n; i++) axpy_f32(dkh + (c0 + i) * ks, dp_buf[i], qt, D);
            }
            if (dq_acc == dq_local) axpy_f32(dqt, 1.0f, dq_local, D);
        }
    }
}

void attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att,
                   const float *q, const float *k, const float *v,
                   int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p) {
    attention_bwd_kvheads(dq, dk, dv, dout, att, q, k, v, T, S, Hq, Hkv, D, q_pos0, p, 0, Hkv);
}
