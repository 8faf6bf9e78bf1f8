// Training attention as blocked GEMMs (see attention_train.h for the why and the layout).
//
// Query rows go in blocks of BLOCK. A block's visible keys [klo, khi] are the union of its rows' bands
// (attn_key_band in ops.h, shared with attention.c). Under a causal mask the first rows of a block see
// fewer keys than the last, so the block's products are cut into "pieces": piece j covers the rows
// from sub-block j (SUB rows each) to the block's end and the keys that sub-block j adds to the ones
// before it. The rows of sub-block j then have scores for keys [klo, end_j) (a superset of their
// band), which skips most of the diagonal tile's upper triangle while each piece stays a whole GEMM.
// Forward, per q head h (kv head g = h / group) and row block:
//   att[piece] = Q K^T;  per row: cap, zeros outside its band, softmax;  out = sum over pieces P V
// Backward, per q head of kv head g and row block (dS kept for one block of rows only):
//   dS[piece] = dO V^T, then per row dS = P (dS - delta) scale (x (1 - tanh^2) under softcap)
//   per piece: dq += dS K,  dv += P^T dO,  dk += dS^T Q
// Probabilities are exact zeros outside each row's band, so none of the products needs a mask.
#include "tensor/attention_train.h"
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "base/scratch.h"
#include "tensor/gemm.h"
#include "tensor/matmul.h"

// Rows per block and per sub-block (measured at T = 256: 64/32 beats 64/64, 128/32 ties). With SUB = 32
// a causal piece adds 32 keys, one whole column tile of the GEMM kernel (keys are the N of Q K^T, dO V^T).
#define BLOCK 64
#define SUB 32
_Static_assert(BLOCK % SUB == 0, "BLOCK must be whole sub-blocks");
#define MAX_PIECES (BLOCK / SUB)
#define LANES 8

// ---------------------------------------------------------------- row kernels: scalar twins
// Fixed-width LANES loops so gcc -O2 vectorizes without -ffast-math (as in attention.c).
static void softmax_ref(float *x, int n, float scale) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) { x[i] *= scale; m = x[i] > m ? x[i] : m; }
    double sum = 0.0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) x[i + u] *= inv;
    for (; i < n; i++) x[i] *= inv;
}

static void dsoftmax_ref(float *d, const float *p, int n, float scale) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) acc[u] += p[i + u] * d[i + u];
    float delta = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) delta += p[i] * d[i];
    i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) d[i + u] = p[i + u] * (d[i + u] - delta) * scale;
    for (; i < n; i++) d[i] = p[i] * (d[i] - delta) * scale;
}

static attn_train_kernels g_tab[3];
static atomic_int g_tab_ready;

const attn_train_kernels *attn_train_kernels_for(int isa) {
    if (!atomic_load_explicit(&g_tab_ready, memory_order_acquire)) {
        // Idempotent: concurrent first callers build identical tables.
        attn_train_kernels t[3];
        t[0] = (attn_train_kernels){softmax_ref, dsoftmax_ref};
        t[1] = t[2] = t[0];
        if (isa_detect() >= ISA_AVX512) attn_train_kernels_avx512(&t[2]);
        memcpy(g_tab, t, sizeof t);
        atomic_store_explicit(&g_tab_ready, 1, memory_order_release);
    }
    return &g_tab[isa < 0 ? 0 : isa > 2 ? 2 : isa];
}

const attn_train_kernels *attn_train_kernels_active(void) { return attn_train_kernels_for((int)isa_active()); }

// ---------------------------------------------------------------- shared pieces

// The pieces of row block [t0, t1): piece j is rows [r0, t1) x keys [c0, c1); row t of sub-block j has
// scores for keys [klo, end[j]). Returns the number of pieces (0: every row's band is empty).
typedef struct { int64_t r0, c0, c1; } piece;
typedef struct { int n; int64_t klo, end[MAX_PIECES]; piece pc[MAX_PIECES]; } block_plan;

static int plan_block(int64_t t0, int64_t t1, int64_t S, int64_t q_pos0, const attn_params *p, block_plan *pl) {
    int64_t klo = S, khi = -1, sub_hi[MAX_PIECES];
    int ns = (int)((t1 - t0 + SUB - 1) / SUB);
    for (int j = 0; j < ns; j++) {
        int64_t r1 = t0 + (j + 1) * SUB < t1 ? t0 + (j + 1) * SUB : t1;
        for (int64_t t = t0 + j * SUB; t < r1; t++) {
            int64_t lo, hi;
            attn_key_band(t, S, q_pos0, p, &lo, &hi);
            if (hi < lo) continue;
            if (lo < klo) klo = lo;
            if (hi > khi) khi = hi;
        }
        sub_hi[j] = khi;   // running max: keys seen by sub-blocks 0..j
    }
    pl->n = 0;
    pl->klo = klo;
    if (khi < klo) return 0;
    int64_t prev = klo;   // first key not yet covered by a piece
    for (int j = 0; j < ns; j++) {
        int64_t end = sub_hi[j] + 1 > prev ? sub_hi[j] + 1 : prev;
        pl->end[j] = end;
        if (end > prev) pl->pc[pl->n++] = (piece){t0 + j * SUB, prev, end};
        prev = end;
    }
    return pl->n;
}

// Our GEMM kernel (or the plain-C reference) may run on any thread; OpenBLAS is kept to the
// thread that owns the pool (gemm.c), so with it the reference attention runs instead.
static bool fast_ok(void) { return gemm_backend_active() != GEMM_BLAS; }

// ---------------------------------------------------------------- forward
void attention_train_fwd_heads(float *out, float *att, const float *q, const float *k, const float *v,
                               int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0, const attn_params *p,
                               int h0, int h1) {
    if (!att || !fast_ok()) {
        attention_fwd_heads(out, att, q, k, v, T, S, Hq, Hkv, D, q_pos0, p, h0, h1);
        return;
    }
    const attn_train_kernels *kn = attn_train_kernels_active();
    int group = Hq / Hkv;
    int64_t qs = (int64_t)Hq * D, ks = (int64_t)Hkv * D;
    for (int h = h0; h < h1; h++) {
        const float *qh = q + (int64_t)h * D, *kg = k + (int64_t)(h / group) * D, *vg = v + (int64_t)(h / group) * D;
        float *oh = out + (int64_t)h * D, *ah = att + (int64_t)h * T * S;
        for (int64_t t0 = 0; t0 < T; t0 += BLOCK) {
            int64_t t1 = t0 + BLOCK < T ? t0 + BLOCK : T;
            block_plan pl;
            if (!plan_block(t0, t1, S, q_pos0, p, &pl)) {
                memset(ah + t0 * S, 0, (size_t)((t1 - t0) * S) * sizeof(float));
                for (int64_t t = t0; t < t1; t++) memset(oh + t * qs, 0, (size_t)D * sizeof(float));
                continue;
            }
            // raw scores Q K^T, straight into the probability rows
            for (int j = 0; j < pl.n; j++) {
                piece c = pl.pc[j];
                gemm_f32(NULL, false, true, t1 - c.r0, c.c1 - c.c0, D, qh + c.r0 * qs, qs, kg + c.c0 * ks, ks, 0.0f,
                         ah + c.r0 * S + c.c0, S);
            }
            for (int64_t t = t0; t < t1; t++) {
                float *row = ah + t * S;
                int64_t lo, hi;
                attn_key_band(t, S, q_pos0, p, &lo, &hi);
                if (hi < lo) { memset(row, 0, (size_t)S * sizeof(float)); continue; }
                if (lo > 0) memset(row, 0, (size_t)lo * sizeof(float));
                if (hi + 1 < S) memset(row + hi + 1, 0, (size_t)(S - hi - 1) * sizeof(float));
                float *r = row + lo;
                int m = (int)(hi - lo + 1);
                if (p->softcap > 0) {
                    float cap = p->softcap, f = p->scale / cap;
                    for (int i = 0; i < m; i++) r[i] = cap * tanhf(r[i] * f);
                    kn->softmax(r, m, 1.0f);
                } else {
                    kn->softmax(r, m, p->scale);
                }
            }
            // out = P V, piece by piece; rows before the first piece see no key
            for (int64_t t = t0; t < pl.pc[0].r0; t++) memset(oh + t * qs, 0, (size_t)D * sizeof(float));
            for (int j = 0; j < pl.n; j++) {
                piece c = pl.pc[j];
                gemm_f32(NULL, false, false, t1 - c.r0, D, c.c1 - c.c0, ah + c.r0 * S + c.c0, S, vg + c.c0 * ks, ks,
                         j ? 1.0f : 0.0f, oh + c.r0 * qs, qs);
            }
        }
    }
}

// ---------------------------------------------------------------- backward
void attention_train_bwd_kvheads(float *dq, float *dk, float *dv, const float *dout, const float *att,
                                 const float *q, const float *k, const float *v,
                                 int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0,
                                 const attn_params *p, int g0, int g1) {
    if (T <= 0 || S <= 0 || g1 <= g0 || (!dq && !dk && !dv)) return;
    bool need_ds = dq || dk, cap = p->softcap > 0;
    // dS of one row block (BLOCK, S) [+ its capped scores (BLOCK, S)]
    size_t n_ds = (size_t)BLOCK * (size_t)S;
    float *ds = NULL;   // stays NULL for dv alone
    bool fast = fast_ok();
    if (fast && need_ds) fast = (ds = scratch_floats(SCRATCH_ATTN_TRAIN, cap ? 2 * n_ds : n_ds)) != NULL;
    if (!fast) {
        attention_bwd_kvheads(dq, dk, dv, dout, att, q, k, v, T, S, Hq, Hkv, D, q_pos0, p, g0, g1);
        return;
    }
    float *xc = cap ? ds + n_ds : NULL;
    const attn_train_kernels *kn = attn_train_kernels_active();
    int group = Hq / Hkv;
    int64_t qs = (int64_t)Hq * D, ks = (int64_t)Hkv * D;
    float f = cap ? p->scale / p->softcap : 0.0f;
    for (int64_t t0 = 0; t0 < T; t0 += BLOCK) {
        int64_t t1 = t0 + BLOCK < T ? t0 + BLOCK : T;
        block_plan pl;
        if (!plan_block(t0, t1, S, q_pos0, p, &pl)) continue;
        for (int g = g0; g < g1; g++) {
            const float *kg = k + (int64_t)g * D, *vg = v + (int64_t)g * D;
            float *dkg = dk ? dk + (int64_t)g * D : NULL, *dvg = dv ? dv + (int64_t)g * D : NULL;
            for (int h = g * group; h < (g + 1) * group; h++) {
                const float *ah = att + (int64_t)h * T * S, *qh = q + (int64_t)h * D, *gh = dout + (int64_t)h * D;
                if (need_ds) {
                    // ds row t - t0 holds keys [klo, end of t's sub-block) of row t
                    for (int j = 0; j < pl.n; j++) {
                        piece c = pl.pc[j];
                        int64_t o = (c.r0 - t0) * S + c.c0;
                        gemm_f32(NULL, false, true, t1 - c.r0, c.c1 - c.c0, D, gh + c.r0 * qs, qs, vg + c.c0 * ks, ks,
                                 0.0f, ds + o, S);   // dP
                        if (cap)
                            gemm_f32(NULL, false, true, t1 - c.r0, c.c1 - c.c0, D, qh + c.r0 * qs, qs, kg + c.c0 * ks, ks,
                                     0.0f, xc + o, S);
                    }
                    for (int64_t t = pl.pc[0].r0; t < t1; t++) {
                        int64_t n = pl.end[(t - t0) / SUB] - pl.klo, o = (t - t0) * S + pl.klo;
                        float *d = ds + o;
                        kn->dsoftmax(d, ah + t * S + pl.klo, (int)n, p->scale);
                        if (cap)
                            for (int64_t s = 0; s < n; s++) {
                                float th = tanhf(xc[o + s] * f);
                                d[s] *= 1.0f - th * th;
                            }
                    }
                }
                for (int j = 0; j < pl.n; j++) {
                    piece c = pl.pc[j];
                    int64_t rows = t1 - c.r0, n = c.c1 - c.c0;
                    const float *dsp = need_ds ? ds + (c.r0 - t0) * S + c.c0 : NULL;
                    if (dq) gemm_f32(NULL, false, false, rows, D, n, dsp, S, kg + c.c0 * ks, ks, 1.0f, dq + c.r0 * qs + (int64_t)h * D, qs);
                    if (dvg) gemm_f32(NULL, true, false, n, D, rows, ah + c.r0 * S + c.c0, S, gh + c.r0 * qs, qs, 1.0f, dvg + c.c0 * ks, ks);
                    if (dkg) gemm_f32(NULL, true, false, n, D, rows, dsp, S, qh + c.r0 * qs, qs, 1.0f, dkg + c.c0 * ks, ks);
                }
            }
        }
    }
}
