// Training forward + backward through the whole model (see train_model.h).
//
// The batch's B rows of T tokens are flattened to N = B*T rows for every matmul and elementwise op;
// attention runs per (row, head) over the thread pool on that row's (T, H, D) slices. Every matmul is a
// "unit" (q, k, v or GPT-2's fused qkv, o, gate, up, down): base weight of any dtype + bias + optional
// LoRA pair, with one forward (lin_fwd) and one backward (lin_bwd), as in inference.
//
// Per layer, forward:  xn1 = norm(x_in); q,k,v = units(xn1); [qk-norm]; rope; ao = attn(q,k,v)
//                      xmid = x_in + [post-norm](o(ao)); xn2 = norm(xmid); act = ffn(units(xn2))
//                      x_out = xmid + [post-norm](down(act))
// and the backward walks the same steps in reverse, accumulating into the residual gradient dx.
// The head is fused with the loss and run over chunks of counted rows only, so the (N, V) logits
// never exist at once and rows whose target is ignored (prompt tokens) cost nothing.
#include "train/train_model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/bigmem.h"
#include "base/error.h"
#include "tensor/attention_train.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"
#include "tensor/quant.h"
#include "train/dropout.h"

enum { U_Q, U_K, U_V, U_QKV, U_O, U_GATE, U_UP, U_DOWN, U_COUNT };
static const tensor_role unit_w[U_COUNT] = {TR_ATTN_Q, TR_ATTN_K, TR_ATTN_V, TR_ATTN_QKV,
                                            TR_ATTN_OUT, TR_FFN_GATE, TR_FFN_UP, TR_FFN_DOWN};
static const tensor_role unit_b[U_COUNT] = {TR_ATTN_Q_B, TR_ATTN_K_B, TR_ATTN_V_B, TR_ATTN_QKV_B,
                                            TR_ATTN_OUT_B, TR_COUNT, TR_FFN_UP_B, TR_FFN_DOWN_B};

// Activations one layer's backward needs. With checkpointing all layers share one set except x_in.
typedef struct {
    float *x_in;                       // (N, C) layer input
    float *xn1, *n1m, *n1r;            // attention norm output, mean (LayerNorm), rstd
    float *qpre, *kpre, *qr, *kr;      // q/k before their per-head norms, and its rstd (qk-norm only)
    float *q, *k, *v;                  // after rope: (N, Hq*D), (N, Hkv*D)
    float *att;                        // (B, Hq, T, T) probabilities
    float *ao;                         // (N, Hq*D) attention output
    float *opre, *por;                 // o-proj output before the post-attention norm, its rstd
    float *xmid, *xn2, *n2m, *n2r;     // residual after attention, FFN norm output
    float *gate, *up, *act;            // (N, F)
    float *fpre, *pfr;                 // down output before the post-FFN norm, its rstd
    float *lh[U_COUNT];                // LoRA x·A^T (N, r) per unit
} acts;

struct train_model {
    sllm_model *m;
    train_mode mode;
    lora_adapter *ad;
    bool attached;
    train_opts opt;
    tpool *pool;
    bool own_pool;
    // trainable tensors
    train_param *params;
    int n_params;
    char **names;                      // full mode: owned names
    float **gl;                        // (L * TR_COUNT) gradients of layer tensors (full mode)
    float *gg[TR_LAYER_FIRST];         // gradients of global tensors (full mode)
    float **lg;                        // (2 * n_pairs) gradients of LoRA A, B
    optim_param *oparams;
    float *adam;
    // shape
    bool fused, gated, quant_base;     // quant_base: some frozen weight is not f32 (needs wtile)
    int C, F, Hq, Hkv, D, V, L, r;
    int64_t qd, kd, kmax;
    bool has_lora[U_COUNT];
    // buffers, sized for cap_N rows and cap_att attention floats per layer
    int64_t cap_N, cap_att;
    float *arena;
    acts *sets;
    float *xf, *xnf, *nfm, *nfr, *dxnf, *dx, *dC, *dxn, *tmpC, *scr, *qkv, *dqkv, *dq, *dk, *dv, *dqpre,
        *dkpre, *dao, *dgate, *dup, *dact, *lgt, *dlgt, *hx, *dhx, *th, *dh, *tx, *wtile;
    int64_t head_rows, tile_rows;
    double *row_loss;
    int32_t *pos, *cidx;
    // per call
    uint64_t step;
    bool training;
    int B, T;
    const int32_t *doc_start;
};

// ---------------------------------------------------------------- small helpers
static float *G(const train_model *tm, int il, tensor_role r) {
    return tm->gl ? tm->gl[(size_t)il * TR_COUNT + r] : NULL;
}
static const float *W(const train_model *tm, int il, tensor_role r) {
    return r == TR_COUNT ? NULL : (const float *)tm->m->layers[il].w[r].data;
}

typedef struct { float *dst; const float *src; uint64_t key; float p; } drop_ctx;
static void drop_rng(void *c, int64_t i0, int64_t i1) {
    drop_ctx *d = c;
    dropout_range(d->dst, d->src, i0, i1, d->key, d->p);
}
static void par_rows(const train_model *tm, int64_t n, void (*fn)(void *, int64_t, int64_t), void *ctx);
// (split over the pool: the mask of element i depends on i only, so any split gives the same result)
static void dropout_apply(const train_model *tm, float *dst, const float *src, int64_t n, uint64_t key, float p) {
    drop_ctx d = {.dst = dst, .src = src, .key = key, .p = p};
    par_rows(tm, n, drop_rng, &d);
}

static uint64_t drop_key(const train_model *tm, int il, int u) {
    return dropout_mix64(tm->opt.dropout_seed ^ dropout_mix64(tm->step * 0x100000001B3ull + (uint64_t)il * 64 + (uint64_t)u));
}

// ---------------------------------------------------------------- matmul units
// Every product of many rows goes through tensor/gemm.h (packed AVX-512 / OpenBLAS SGEMM); a base
// weight stored as f16/bf16/quantized is dequantized a tile of rows at a time into tm->wtile, so the
// product is exact against the dequantized weights (f32 activations, as QLoRA) and the whole matrix
// never exists in f32.

// Y (N, rows) = X (N, K) · W^T + bias.
static int base_mm(train_model *tm, const mweight *w, const float *X, int64_t N, const float *bias, float *Y) {
    if (gemm_xwt_any(tm->pool, w->data, w->type, w->rows, w->cols, X, N, bias, false, Y, tm->wtile, tm->tile_rows))
        return err_wrap(SLLM_ERR_UNSUPPORTED, "train: matmul with a %s weight",
                        dtype_get(w->type) ? dtype_get(w->type)->name : "?");
    return SLLM_OK;
}

// dX (N, cols) += dY (N, rows) · W
static int base_mm_t(train_model *tm, const mweight *w, const float *dY, int64_t N, float *dX) {
    if (gemm_dx_any(tm->pool, w->data, w->type, w->rows, w->cols, dY, N, dX, tm->wtile, tm->tile_rows))
        return err_wrap(SLLM_ERR_UNSUPPORTED, "train: input gradient through a %s weight",
                        dtype_get(w->type) ? dtype_get(w->type)->name : "?");
    return SLLM_OK;
}

static const lora_pair *unit_pair(const train_model *tm, int il, int u, int *idx) {
    if (!tm->ad) return NULL;
    int ix = tm->ad->index[(size_t)il * TR_COUNT + unit_w[u]];
    if (ix < 0) return NULL;
    if (idx) *idx = ix;
    return &tm->ad->pairs[ix];
}

// Y = X · W^T + b + scaling · (drop(X) · A^T) · B^T ; lh (N, r) keeps drop(X) · A^T.
static int lin_fwd(train_model *tm, int il, int u, const float *X, int64_t N, float *Y, float *lh) {
    const mweight *w = &tm->m->layers[il].w[unit_w[u]];
    const float *bias = W(tm, il, unit_b[u]);
    const lora_pair *p = unit_pair(tm, il, u, NULL);
    int rc;
    if (!p) return base_mm(tm, w, X, N, bias, Y);
    int r = tm->r;
    float pd = tm->ad->cfg.dropout, s = tm->ad->scaling;
    const float *xa = X;
    if (tm->training && pd > 0) {
        dropout_apply(tm, tm->tx, X, N * p->K, drop_key(tm, il, u), pd);
        xa = tm->tx;
    }
    gemm_xwt(tm->pool, xa, N, p->A, r, p->K, NULL, false, lh);
    for (int64_t i = 0; i < N * r; i++) tm->th[i] = lh[i] * s;
    if (w->type == DT_F32) {
        // Y = X·W^T + th·B^T in one pass over Y (the rank-r term alone would cost a whole pass)
        int64_t K = w->cols, No = w->rows;
        gemm_term t[2] = {{.ta = false, .tb = true, .K = K, .A = X, .lda = K, .B = w->data, .ldb = K},
                          {.ta = false, .tb = true, .K = r, .A = tm->th, .lda = r, .B = p->B, .ldb = r}};
        gemm_f32_sum(tm->pool, N, No, 2, t, 0.0f, Y, No);
        if (bias)
            for (int64_t i = 0; i < N; i++) add_f32(Y + i * No, bias, No);
        return SLLM_OK;
    }
    if ((rc = base_mm(tm, w, X, N, bias, Y))) return rc;
    gemm_xwt(tm->pool, tm->th, N, p->B, p->N, r, NULL, true, Y);
    return SLLM_OK;
}

// Given dY (N, rows): weight/bias gradients (full), A/B gradients (LoRA), dX += dY · W_eff (dX may be NULL).
static int lin_bwd(train_model *tm, int il, int u, const float *X, int64_t N, const float *dY, float *dX,
                   const float *lh) {
    const mweight *w = &tm->m->layers[il].w[unit_w[u]];
    int64_t No = w->rows, K = w->cols;
    float *gw = G(tm, il, unit_w[u]), *gb = unit_b[u] == TR_COUNT ? NULL : G(tm, il, unit_b[u]);
    if (gw) gemm_dw(tm->pool, dY, X, N, No, K, gw);
    if (gb)
        for (int64_t t = 0; t < N; t++) add_f32(gb, dY + t * No, No);
    int rc, ix;
    const lora_pair *p = unit_pair(tm, il, u, &ix);
    float pd = p ? tm->ad->cfg.dropout : 0.0f;
    // dX += dY·W + dh·A as one sum (below) when the base is f32 and no dropout sits on the LoRA path
    bool fuse_dx = dX && p && pd == 0 && w->type == DT_F32;
    if (dX && !fuse_dx && (rc = base_mm_t(tm, w, dY, N, dX))) return rc;
    if (!p) return SLLM_OK;
    int r = tm->r;
    float s = tm->ad->scaling;
    float *gA = tm->lg[2 * ix], *gB = tm->lg[2 * ix + 1];
    // dB += dY^T · (s lh) ; dh = s · dY · B ; dA += dh^T · drop(X) ; dX += drop'(dh · A)
    for (int64_t i = 0; i < N * r; i++) tm->th[i] = lh[i] * s;
    gemm_dw(tm->pool, dY, tm->th, N, No, r, gB);
    memset(tm->dh, 0, (size_t)(N * r) * sizeof(float));
    gemm_dx(tm->pool, dY, N, p->B, No, r, tm->dh);
    for (int64_t i = 0; i < N * r; i++) tm->dh[i] *= s;
    const float *xa = X;
    uint64_t key = drop_key(tm, il, u);
    if (pd > 0) {
        dropout_apply(tm, tm->tx, X, N * K, key, pd);
        xa = tm->tx;
    }
    gemm_dw(tm->pool, tm->dh, xa, N, r, K, gA);
    if (fuse_dx) {
        gemm_term t[2] = {{.ta = false, .tb = false, .K = No, .A = dY, .lda = No, .B = w->data, .ldb = K},
                          {.ta = false, .tb = false, .K = r, .A = tm->dh, .lda = r, .B = p->A, .ldb = K}};
        gemm_f32_sum(tm->pool, N, K, 2, t, 1.0f, dX, K);
    } else if (dX) {
        if (pd > 0) {
            memset(tm->tx, 0, (size_t)(N * K) * sizeof(float));
            gemm_dx(tm->pool, tm->dh, N, p->A, r, K, tm->tx);
            dropout_apply(tm, tm->tx, tm->tx, N * K, key, pd);
            add_f32(dX, tm->tx, N * K);
        } else {
            gemm_dx(tm->pool, tm->dh, N, p->A, r, K, dX);
        }
    }
    return SLLM_OK;
}


// ---------------------------------------------------------------- row-parallel elementwise ops
// Norms, rope, activations and residual adds are independent per row: split [0, n) into a few ranges per
// thread so they do not run on one core while the other waits (they were ~10% of a step when serial).
typedef struct { void (*fn)(void *ctx, int64_t i0, int64_t i1); void *ctx; int64_t n, chunk; } par_job;
static void par_task(void *vj, int64_t t, int thread) {
    (void)thread;
    const par_job *j = vj;
    int64_t i0 = t * j->chunk, i1 = i0 + j->chunk < j->n ? i0 + j->chunk : j->n;
    if (i0 < i1) j->fn(j->ctx, i0, i1);
}
static void par_rows(const train_model *tm, int64_t n, void (*fn)(void *, int64_t, int64_t), void *ctx) {
    int nth = tm->pool ? tpool_size(tm->pool) : 1;
    int64_t tasks = nth > 1 ? 4 * (int64_t)nth : 1;
    if (tasks > n) tasks = n > 0 ? n : 1;
    par_job j = {.fn = fn, .ctx = ctx, .n = n, .chunk = (n + tasks - 1) / tasks};
    if (tasks == 1) { if (n > 0) fn(ctx, 0, n); return; }
    tpool_run(tm->pool, tasks, par_task, &j);
}

typedef struct { float *o, *dg, *du; const float *a, *b, *d; float *y; const float *x; int64_t w; } ew_ctx;
static void swiglu_f_rng(void *c, int64_t i0, int64_t i1) {
    ew_ctx *e = c;
    swiglu_fwd(e->o + i0, e->a + i0, e->b + i0, i1 - i0);
}
static void swiglu_b_rng(void *c, int64_t i0, int64_t i1) {
    ew_ctx *e = c;
    swiglu_bwd(e->dg + i0, e->du + i0, e->d + i0, e->a + i0, e->b + i0, i1 - i0);
}
static void add3_rng(void *c, int64_t i0, int64_t i1) {   // o = a + b
    ew_ctx *e = c;
    for (int64_t i = i0; i < i1; i++) e->o[i] = e->a[i] + e->b[i];
}
static void par_swiglu_fwd(const train_model *tm, float *out, const float *gate, const float *up, int64_t n) {
    ew_ctx e = {.o = out, .a = gate, .b = up};
    par_rows(tm, n, swiglu_f_rng, &e);
}
static void par_swiglu_bwd(const train_model *tm, float *dg, float *du, const float *dout, const float *gate,
                           const float *up, int64_t n) {
    ew_ctx e = {.dg = dg, .du = du, .d = dout, .a = gate, .b = up};
    par_rows(tm, n, swiglu_b_rng, &e);
}
static void par_add(const train_model *tm, float *out, const float *a, const float *b, int64_t n) {
    ew_ctx e = {.o = out, .a = a, .b = b};
    par_rows(tm, n, add3_rng, &e);
}

typedef struct { const train_model *tm; float *y, *mean, *rstd, *dx; const float *x, *w, *b, *dy, *cm, *cr; int64_t C; } norm_ctx;
static void norm_f_rng(void *c, int64_t i0, int64_t i1) {
    norm_ctx *n = c;
    const train_model *tm = n->tm;
    int64_t C = n->C;
    if (tm->m->arch->norm == NORM_RMS)
        rmsnorm_fwd(n->y + i0 * C, n->rstd + i0, n->x + i0 * C, n->w, 0.0f, i1 - i0, C, tm->m->hp.norm_eps);
    else
        layernorm_fwd(n->y + i0 * C, n->mean + i0, n->rstd + i0, n->x + i0 * C, n->w, n->b, i1 - i0, C, tm->m->hp.norm_eps);
}
static void norm_b_rng(void *c, int64_t i0, int64_t i1) {   // input gradient only (no weight gradient)
    norm_ctx *n = c;
    int64_t C = n->C;
    if (n->tm->m->arch->norm == NORM_RMS)
        rmsnorm_bwd(n->dx + i0 * C, NULL, n->dy + i0 * C, n->x + i0 * C, n->w, 0.0f, n->cr + i0, i1 - i0, C);
    else
        layernorm_bwd(n->dx + i0 * C, NULL, NULL, n->dy + i0 * C, n->x + i0 * C, n->w, n->cm + i0, n->cr + i0, i1 - i0, C);
}

typedef struct { const train_model *tm; float *x; int H; const rope_params *rp; const float *ff; bool bwd; } rope_ctx;
static void rope_rng(void *c, int64_t i0, int64_t i1) {
    rope_ctx *r = c;
    float *x = r->x + i0 * (int64_t)r->H * r->tm->D;
    if (r->bwd) rope_bwd_factors(x, r->tm->pos + i0, i1 - i0, r->H, r->tm->D, r->rp, r->ff);
    else rope_fwd_factors(x, r->tm->pos + i0, i1 - i0, r->H, r->tm->D, r->rp, r->ff);
}

// ---------------------------------------------------------------- norms
static void norm_fwd(const train_model *tm, float *y, float *mean, float *rstd, const float *x, const float *w,
                     const float *b, int64_t N) {
    norm_ctx n = {.tm = tm, .y = y, .mean = mean, .rstd = rstd, .x = x, .w = w, .b = b, .C = tm->C};
    par_rows(tm, N, norm_f_rng, &n);
}
static void norm_bwd(const train_model *tm, float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *w, const float *mean, const float *rstd, int64_t N) {
    if (dw || db) {   // weight gradients sum over rows: one pass on this thread
        if (tm->m->arch->norm == NORM_RMS) rmsnorm_bwd(dx, dw, dy, x, w, 0.0f, rstd, N, tm->C);
        else layernorm_bwd(dx, dw, db, dy, x, w, mean, rstd, N, tm->C);
        return;
    }
    norm_ctx n = {.tm = tm, .dx = dx, .dy = dy, .x = x, .w = w, .cm = mean, .cr = rstd, .C = tm->C};
    par_rows(tm, N, norm_b_rng, &n);
}

// ---------------------------------------------------------------- attention over (row, head) tasks
typedef struct {
    const train_model *tm;
    const acts *a;
    attn_params ap;
} attn_job;

static attn_params row_params(const attn_job *j, int64_t b) {
    attn_params ap = j->ap;
    ap.doc_start = j->tm->doc_start ? j->tm->doc_start + b * j->tm->T : NULL;
    return ap;
}

static void attn_fwd_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    const train_model *tm = j->tm;
    int64_t b = task / tm->Hq, T = tm->T;
    int h = (int)(task % tm->Hq);
    attn_params ap = row_params(j, b);
    size_t rq = (size_t)(b * T * tm->qd), rk = (size_t)(b * T * tm->kd), ra = (size_t)(b * tm->Hq * T * T);
    attention_train_fwd_heads(j->a->ao + rq, j->a->att + ra, j->a->q + rq, j->a->k + rk, j->a->v + rk, T, T, tm->Hq,
                        tm->Hkv, tm->D, 0, &ap, h, h + 1);
}

static void attn_bwd_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    const train_model *tm = j->tm;
    int64_t b = task / tm->Hkv, T = tm->T;
    int g = (int)(task % tm->Hkv);
    attn_params ap = row_params(j, b);
    size_t rq = (size_t)(b * T * tm->qd), rk = (size_t)(b * T * tm->kd), ra = (size_t)(b * tm->Hq * T * T);
    attention_train_bwd_kvheads(tm->dq + rq, tm->dk + rk, tm->dv + rk, tm->dao + rq, j->a->att + ra, j->a->q + rq,
                          j->a->k + rk, j->a->v + rk, T, T, tm->Hq, tm->Hkv, tm->D, 0, &ap, g, g + 1);
}

static attn_params layer_attn_params(const train_model *tm, int il) {
    attn_params ap = {.scale = tm->m->hp.attn_scale, .window = tm->m->layers[il].swa ? tm->m->hp.swa_window : 0,
                      .softcap = 0, .doc_start = NULL};
    return ap;
}

static void rope_layer(const train_model *tm, int il, float *x, int H, bool backward) {
    const sllm_model *m = tm->m;
    if (!m->arch->rope) return;
    bool swa = m->layers[il].swa;
    const rope_params *rp = swa ? &m->hp.rope_local : &m->hp.rope;
    const float *ff = swa ? NULL : m->rope_factors;
    rope_ctx r = {.tm = tm, .x = x, .H = H, .rp = rp, .ff = ff, .bwd = backward};
    par_rows(tm, (int64_t)tm->B * tm->T, rope_rng, &r);
}

// ---------------------------------------------------------------- one layer
static int layer_fwd(train_model *tm, int il, acts *a, float *x_out) {
    const sllm_model *m = tm->m;
    const arch_desc *ar = m->arch;
    int64_t N = (int64_t)tm->B * tm->T, C = tm->C, F = tm->F, qd = tm->qd, kd = tm->kd;
    float eps = m->hp.norm_eps;
    int rc;
    norm_fwd(tm, a->xn1, a->n1m, a->n1r, a->x_in, W(tm, il, TR_ATTN_NORM), W(tm, il, TR_ATTN_NORM_B), N);
    float *qdst = ar->qk_norm ? a->qpre : a->q, *kdst = ar->qk_norm ? a->kpre : a->k;
    if (tm->fused) {
        if ((rc = lin_fwd(tm, il, U_QKV, a->xn1, N, tm->qkv, a->lh[U_QKV]))) return rc;
        int64_t S = qd + 2 * kd;
        for (int64_t t = 0; t < N; t++) {
            memcpy(qdst + t * qd, tm->qkv + t * S, (size_t)qd * sizeof(float));
            memcpy(kdst + t * kd, tm->qkv + t * S + qd, (size_t)kd * sizeof(float));
            memcpy(a->v + t * kd, tm->qkv + t * S + qd + kd, (size_t)kd * sizeof(float));
        }
    } else if ((rc = lin_fwd(tm, il, U_Q, a->xn1, N, qdst, a->lh[U_Q])) ||
               (rc = lin_fwd(tm, il, U_K, a->xn1, N, kdst, a->lh[U_K])) ||
               (rc = lin_fwd(tm, il, U_V, a->xn1, N, a->v, a->lh[U_V]))) {
        return rc;
    }
    if (ar->qk_norm) {
        rmsnorm_fwd(a->q, a->qr, a->qpre, W(tm, il, TR_ATTN_Q_NORM), 0.0f, N * tm->Hq, tm->D, eps);
        rmsnorm_fwd(a->k, a->kr, a->kpre, W(tm, il, TR_ATTN_K_NORM), 0.0f, N * tm->Hkv, tm->D, eps);
    }
    rope_layer(tm, il, a->q, tm->Hq, false);
    rope_layer(tm, il, a->k, tm->Hkv, false);
    attn_job job = {.tm = tm, .a = a, .ap = layer_attn_params(tm, il)};
    tpool_run(tm->pool, (int64_t)tm->B * tm->Hq, attn_fwd_task, &job);
    float *o = ar->post_norms ? a->opre : tm->tmpC;
    if ((rc = lin_fwd(tm, il, U_O, a->ao, N, o, a->lh[U_O]))) return rc;
    if (ar->post_norms) rmsnorm_fwd(tm->tmpC, a->por, a->opre, W(tm, il, TR_POST_ATTN_NORM), 0.0f, N, C, eps);
    par_add(tm, a->xmid, a->x_in, tm->tmpC, N * C);
    norm_fwd(tm, a->xn2, a->n2m, a->n2r, a->xmid, W(tm, il, TR_FFN_NORM), W(tm, il, TR_FFN_NORM_B), N);
    if (!tm->gated) {
        if ((rc = lin_fwd(tm, il, U_UP, a->xn2, N, a->up, a->lh[U_UP]))) return rc;
        gelu_fwd(a->act, a->up, N * F);
    } else {
        if ((rc = lin_fwd(tm, il, U_GATE, a->xn2, N, a->gate, a->lh[U_GATE])) ||
            (rc = lin_fwd(tm, il, U_UP, a->xn2, N, a->up, a->lh[U_UP])))
            return rc;
        if (ar->act == ACT_GEGLU) geglu_fwd(a->act, a->gate, a->up, N * F);
        else par_swiglu_fwd(tm, a->act, a->gate, a->up, N * F);
    }
    float *f = ar->post_norms ? a->fpre : tm->tmpC;
    if ((rc = lin_fwd(tm, il, U_DOWN, a->act, N, f, a->lh[U_DOWN]))) return rc;
    if (ar->post_norms) rmsnorm_fwd(tm->tmpC, a->pfr, a->fpre, W(tm, il, TR_POST_FFN_NORM), 0.0f, N, C, eps);
    par_add(tm, x_out, a->xmid, tm->tmpC, N * C);
    return SLLM_OK;
}

// tm->dx holds dL/dx_out on entry and dL/dx_in on return (when need_dx).
static int layer_bwd(train_model *tm, int il, const acts *a, bool need_dx) {
    const sllm_model *m = tm->m;
    const arch_desc *ar = m->arch;
    int64_t N = (int64_t)tm->B * tm->T, C = tm->C, F = tm->F, qd = tm->qd, kd = tm->kd;
    size_t fC = (size_t)(N * C) * sizeof(float), fF = (size_t)(N * F) * sizeof(float);
    float *dx = tm->dx;
    int rc;
    // ---- feed-forward branch
    const float *dyf = dx;
    if (ar->post_norms) {
        memset(tm->dC, 0, fC);
        rmsnorm_bwd(tm->dC, G(tm, il, TR_POST_FFN_NORM), dx, a->fpre, W(tm, il, TR_POST_FFN_NORM), 0.0f, a->pfr, N, C);
        dyf = tm->dC;
    }
    memset(tm->dact, 0, fF);
    if ((rc = lin_bwd(tm, il, U_DOWN, a->act, N, dyf, tm->dact, a->lh[U_DOWN]))) return rc;
    memset(tm->dxn, 0, fC);
    memset(tm->dup, 0, fF);
    if (!tm->gated) {
        gelu_bwd(tm->dup, tm->dact, a->up, N * F);
        if ((rc = lin_bwd(tm, il, U_UP, a->xn2, N, tm->dup, tm->dxn, a->lh[U_UP]))) return rc;
    } else {
        memset(tm->dgate, 0, fF);
        if (ar->act == ACT_GEGLU) geglu_bwd(tm->dgate, tm->dup, tm->dact, a->gate, a->up, N * F);
        else par_swiglu_bwd(tm, tm->dgate, tm->dup, tm->dact, a->gate, a->up, N * F);
        if ((rc = lin_bwd(tm, il, U_GATE, a->xn2, N, tm->dgate, tm->dxn, a->lh[U_GATE])) ||
            (rc = lin_bwd(tm, il, U_UP, a->xn2, N, tm->dup, tm->dxn, a->lh[U_UP])))
            return rc;
    }
    norm_bwd(tm, dx, G(tm, il, TR_FFN_NORM), G(tm, il, TR_FFN_NORM_B), tm->dxn, a->xmid, W(tm, il, TR_FFN_NORM),
             a->n2m, a->n2r, N);
    // ---- attention branch (dx is now dL/dxmid)
    const float *dyo = dx;
    if (ar->post_norms) {
        memset(tm->dC, 0, fC);
        rmsnorm_bwd(tm->dC, G(tm, il, TR_POST_ATTN_NORM), dx, a->opre, W(tm, il, TR_POST_ATTN_NORM), 0.0f, a->por, N, C);
        dyo = tm->dC;
    }
    memset(tm->dao, 0, (size_t)(N * qd) * sizeof(float));
    if ((rc = lin_bwd(tm, il, U_O, a->ao, N, dyo, tm->dao, a->lh[U_O]))) return rc;
    memset(tm->dq, 0, (size_t)(N * qd) * sizeof(float));
    memset(tm->dk, 0, (size_t)(N * kd) * sizeof(float));
    memset(tm->dv, 0, (size_t)(N * kd) * sizeof(float));
    attn_job job = {.tm = tm, .a = a, .ap = layer_attn_params(tm, il)};
    tpool_run(tm->pool, (int64_t)tm->B * tm->Hkv, attn_bwd_task, &job);
    rope_layer(tm, il, tm->dq, tm->Hq, true);
    rope_layer(tm, il, tm->dk, tm->Hkv, true);
    float *dqf = tm->dq, *dkf = tm->dk;
    if (ar->qk_norm) {
        memset(tm->dqpre, 0, (size_t)(N * qd) * sizeof(float));
        memset(tm->dkpre, 0, (size_t)(N * kd) * sizeof(float));
        rmsnorm_bwd(tm->dqpre, G(tm, il, TR_ATTN_Q_NORM), tm->dq, a->qpre, W(tm, il, TR_ATTN_Q_NORM), 0.0f, a->qr,
                    N * tm->Hq, tm->D);
        rmsnorm_bwd(tm->dkpre, G(tm, il, TR_ATTN_K_NORM), tm->dk, a->kpre, W(tm, il, TR_ATTN_K_NORM), 0.0f, a->kr,
                    N * tm->Hkv, tm->D);
        dqf = tm->dqpre;
        dkf = tm->dkpre;
    }
    float *dxin = need_dx ? tm->dxn : NULL;
    if (need_dx) memset(tm->dxn, 0, fC);
    if (tm->fused) {
        int64_t S = qd + 2 * kd;
        for (int64_t t = 0; t < N; t++) {
            memcpy(tm->dqkv + t * S, dqf + t * qd, (size_t)qd * sizeof(float));
            memcpy(tm->dqkv + t * S + qd, dkf + t * kd, (size_t)kd * sizeof(float));
            memcpy(tm->dqkv + t * S + qd + kd, tm->dv + t * kd, (size_t)kd * sizeof(float));
        }
        if ((rc = lin_bwd(tm, il, U_QKV, a->xn1, N, tm->dqkv, dxin, a->lh[U_QKV]))) return rc;
    } else if ((rc = lin_bwd(tm, il, U_Q, a->xn1, N, dqf, dxin, a->lh[U_Q])) ||
               (rc = lin_bwd(tm, il, U_K, a->xn1, N, dkf, dxin, a->lh[U_K])) ||
               (rc = lin_bwd(tm, il, U_V, a->xn1, N, tm->dv, dxin, a->lh[U_V]))) {
        return rc;
    }
    if (need_dx)
        norm_bwd(tm, dx, G(tm, il, TR_ATTN_NORM), G(tm, il, TR_ATTN_NORM_B), tm->dxn, a->x_in,
                 W(tm, il, TR_ATTN_NORM), a->n1m, a->n1r, N);
    return SLLM_OK;
}

// ---------------------------------------------------------------- buffers
typedef struct { float *base; size_t off; } carver;
static float *carve(carver *c, int64_t n) {
    if (n <= 0) return NULL;
    float *p = c->base ? c->base + c->off : NULL;
    c->off += ((size_t)n + 15) & ~(size_t)15;   // 64-byte aligned pieces
    return p;
}

// Lays out every buffer for N rows and `att` attention floats per layer inside base (NULL: only
// measures). Returns the float count.
static size_t layout(train_model *tm, int64_t N, int64_t att, float *base) {
    carver c = {base, 0};
    const arch_desc *ar = tm->m->arch;
    int64_t C = tm->C, F = tm->F, qd = tm->qd, kd = tm->kd;
    bool ln = ar->norm == NORM_LAYER, qk = ar->qk_norm, post = ar->post_norms;
    int n_sets = tm->opt.checkpointing ? 1 : tm->L;
    for (int s = 0; s < n_sets; s++) {
        acts a = {0};
        a.xn1 = carve(&c, N * C); a.n1m = ln ? carve(&c, N) : NULL; a.n1r = carve(&c, N);
        if (qk) { a.qpre = carve(&c, N * qd); a.kpre = carve(&c, N * kd); a.qr = carve(&c, N * tm->Hq); a.kr = carve(&c, N * tm->Hkv); }
        a.q = carve(&c, N * qd); a.k = carve(&c, N * kd); a.v = carve(&c, N * kd);
        a.att = carve(&c, att); a.ao = carve(&c, N * qd);
        if (post) { a.opre = carve(&c, N * C); a.por = carve(&c, N); a.fpre = carve(&c, N * C); a.pfr = carve(&c, N); }
        a.xmid = carve(&c, N * C); a.xn2 = carve(&c, N * C); a.n2m = ln ? carve(&c, N) : NULL; a.n2r = carve(&c, N);
        a.gate = tm->gated ? carve(&c, N * F) : NULL; a.up = carve(&c, N * F); a.act = carve(&c, N * F);
        for (int u = 0; u < U_COUNT; u++) a.lh[u] = tm->has_lora[u] ? carve(&c, N * tm->r) : NULL;
        if (base) {
            if (tm->opt.checkpointing)
                for (int il = 0; il < tm->L; il++) tm->sets[il] = a;
            else
                tm->sets[s] = a;
        }
    }
    for (int il = 0; il < tm->L; il++) {
        float *x = carve(&c, N * C);
        if (base) tm->sets[il].x_in = x;
    }
    tm->xf = carve(&c, N * C); tm->xnf = carve(&c, N * C); tm->nfm = ln ? carve(&c, N) : NULL; tm->nfr = carve(&c, N);
    tm->dxnf = carve(&c, N * C); tm->dx = carve(&c, N * C); tm->dC = carve(&c, N * C); tm->dxn = carve(&c, N * C);
    tm->tmpC = carve(&c, N * C); tm->scr = carve(&c, N * C);
    tm->qkv = tm->fused ? carve(&c, N * (qd + 2 * kd)) : NULL;
    tm->dqkv = tm->fused ? carve(&c, N * (qd + 2 * kd)) : NULL;
    tm->dq = carve(&c, N * qd); tm->dk = carve(&c, N * kd); tm->dv = carve(&c, N * kd);
    tm->dqpre = qk ? carve(&c, N * qd) : NULL; tm->dkpre = qk ? carve(&c, N * kd) : NULL;
    tm->dao = carve(&c, N * qd);
    tm->dgate = tm->gated ? carve(&c, N * F) : NULL; tm->dup = carve(&c, N * F); tm->dact = carve(&c, N * F);
    // head chunk: 16M logits (64 MiB). Without a final softcap the loss gradient overwrites the logits in
    // place (one buffer); with one, the backward needs both (two buffers of 8M). Each chunk re-reads (and
    // re-packs) the whole head matrix, so fewer, larger chunks are faster.
    bool capped = tm->m->hp.final_softcap > 0;
    int64_t hr = ((int64_t)1 << (capped ? 23 : 24)) / tm->V;
    if (hr < 1) hr = 1;
    if (hr > N) hr = N;
    tm->head_rows = hr;
    tm->lgt = carve(&c, hr * tm->V);
    tm->dlgt = capped ? carve(&c, hr * tm->V) : tm->lgt;
    tm->hx = carve(&c, hr * C); tm->dhx = carve(&c, hr * C);
    if (tm->ad) {
        tm->th = carve(&c, N * tm->r); tm->dh = carve(&c, N * tm->r);
        tm->tx = tm->ad->cfg.dropout > 0 ? carve(&c, N * tm->kmax) : NULL;
    }
    if (tm->quant_base) {
        tm->wtile = carve(&c, tm->tile_rows * tm->kmax);
    }
    return c.off;
}

static int ensure_buffers(train_model *tm, int B, int T) {
    int64_t N = (int64_t)B * T, att = (int64_t)B * tm->Hq * T * T;
    if (tm->arena && N <= tm->cap_N && att <= tm->cap_att) return SLLM_OK;   // buffers hold cap_N rows
    int64_t nN = N > tm->cap_N ? N : tm->cap_N, nA = att > tm->cap_att ? att : tm->cap_att;
    size_t nf = layout(tm, nN, nA, NULL);
    float *ar = bigmem_calloc(nf * sizeof(float));
    double *rl = malloc((size_t)nN * sizeof(double));
    int32_t *pos = malloc((size_t)nN * sizeof(int32_t)), *ci = malloc((size_t)nN * sizeof(int32_t));
    if (!ar || !rl || !pos || !ci) {
        bigmem_free(ar); free(rl); free(pos); free(ci);
        return err_set(SLLM_ERR_NOMEM, "train: out of memory for activations of %d x %d tokens (%.1f MiB)", B, T,
                       (double)nf * 4.0 / 1048576.0);
    }
    bigmem_free(tm->arena); free(tm->row_loss); free(tm->pos); free(tm->cidx);
    tm->arena = ar; tm->row_loss = rl; tm->pos = pos; tm->cidx = ci;
    tm->cap_N = nN; tm->cap_att = nA;
    layout(tm, nN, nA, ar);
    return SLLM_OK;
}

// ---------------------------------------------------------------- head + loss
typedef struct {
    const float *lg;
    float *dlg;
    const int32_t *targets, *rows;   // rows: the chunk's row indices into the batch
    int64_t V;
    float gs;
    double *loss;
} ce_job;

static void ce_task(void *ctx, int64_t i, int thread) {
    (void)thread;
    const ce_job *j = ctx;
    int32_t y = j->targets[j->rows[i]];
    int64_t cnt;
    j->loss[i] = cross_entropy_fwd_bwd(j->dlg ? j->dlg + i * j->V : NULL, j->lg + i * j->V, &y, 1, j->V, j->gs, &cnt);
}

// Final norm output xnf -> logits -> loss over the counted rows, in chunks; backward fills dxnf.
static int head_loss(train_model *tm, const int32_t *targets, bool backward, float gs, double *loss_sum,
                     int64_t *n_tok) {
    const sllm_model *m = tm->m;
    int64_t N = (int64_t)tm->B * tm->T, C = tm->C, V = tm->V;
    int64_t nc_tot = 0;
    for (int64_t t = 0; t < N; t++)
        if (targets[t] >= 0) tm->cidx[nc_tot++] = (int32_t)t;
    const mweight *head = &m->g[TR_OUTPUT];
    float *gH = tm->gl ? (m->hp.tied ? tm->gg[TR_TOKEN_EMBD] : tm->gg[TR_OUTPUT]) : NULL;
    float cap = m->hp.final_softcap;
    if (backward) memset(tm->dxnf, 0, (size_t)(N * C) * sizeof(float));
    double total = 0;
    for (int64_t r0 = 0; r0 < nc_tot; r0 += tm->head_rows) {
        int64_t nc = nc_tot - r0 < tm->head_rows ? nc_tot - r0 : tm->head_rows;
        for (int64_t i = 0; i < nc; i++) memcpy(tm->hx + i * C, tm->xnf + (int64_t)tm->cidx[r0 + i] * C, (size_t)C * sizeof(float));
        int rc = base_mm(tm, head, tm->hx, nc, NULL, tm->lgt);
        if (rc) return rc;
        if (cap > 0)
            for (int64_t i = 0; i < nc * V; i++) tm->lgt[i] = cap * tanhf(tm->lgt[i] / cap);
        ce_job cj = {.lg = tm->lgt, .dlg = backward ? tm->dlgt : NULL, .targets = targets, .rows = tm->cidx + r0,
                     .V = V, .gs = gs, .loss = tm->row_loss + r0};
        tpool_run(tm->pool, nc, ce_task, &cj);
        if (!backward) continue;
        if (cap > 0)
            for (int64_t i = 0; i < nc * V; i++) {
                float th = tm->lgt[i] / cap;
                tm->dlgt[i] *= 1.0f - th * th;
            }
        memset(tm->dhx, 0, (size_t)(nc * C) * sizeof(float));
        if ((rc = base_mm_t(tm, head, tm->dlgt, nc, tm->dhx))) return rc;
        if (gH) gemm_dw(tm->pool, tm->dlgt, tm->hx, nc, V, C, gH);
        for (int64_t i = 0; i < nc; i++) add_f32(tm->dxnf + (int64_t)tm->cidx[r0 + i] * C, tm->dhx + i * C, C);
    }
    for (int64_t i = 0; i < nc_tot; i++) total += tm->row_loss[i];
    if (loss_sum) *loss_sum = total;
    if (n_tok) *n_tok = nc_tot;
    return SLLM_OK;
}

// ---------------------------------------------------------------- the step
static int check_batch(const train_model *tm, const train_batch *b) {
    const model_hparams *hp = &tm->m->hp;
    if (!b || b->B <= 0 || b->T <= 0 || !b->ids || !b->targets)
        return err_set(SLLM_ERR_ARG, "train: empty batch (B=%d T=%d) or missing ids/targets", b ? b->B : 0, b ? b->T : 0);
    if ((int64_t)b->B * b->T > ((int64_t)1 << 31) / (hp->n_embd > 0 ? hp->n_embd : 1))
        return err_set(SLLM_ERR_ARG, "train: batch %d x %d is too large", b->B, b->T);
    bool learned = tm->m->g[TR_POS_EMBD].data != NULL;
    int64_t N = (int64_t)b->B * b->T;
    for (int64_t i = 0; i < N; i++) {
        int t = (int)(i % b->T);
        if (b->ids[i] < 0 || b->ids[i] >= hp->n_vocab)
            return err_set(SLLM_ERR_ARG, "train: token id %d at row %lld, position %d is outside the vocabulary [0, %d)",
                           b->ids[i], (long long)(i / b->T), t, hp->n_vocab);
        if (b->targets[i] >= hp->n_vocab)
            return err_set(SLLM_ERR_ARG, "train: target %d at row %lld, position %d is outside the vocabulary [0, %d)",
                           b->targets[i], (long long)(i / b->T), t, hp->n_vocab);
        int32_t p = b->pos ? b->pos[i] : t;
        if (p < 0 || (learned && p >= hp->n_ctx_train))
            return err_set(SLLM_ERR_ARG, "train: position %d at row %lld, column %d is outside [0, %d)", p,
                           (long long)(i / b->T), t, learned ? hp->n_ctx_train : INT32_MAX);
        if (b->doc_start && (b->doc_start[i] < 0 || b->doc_start[i] > t))
            return err_set(SLLM_ERR_ARG, "train: doc_start %d at row %lld, column %d must be in [0, %d]",
                           b->doc_start[i], (long long)(i / b->T), t, t);
    }
    return SLLM_OK;
}

static int run(train_model *tm, const train_batch *b, bool backward, float gs, double *loss_sum, int64_t *n_tok) {
    sllm_model *m = tm->m;
    int rc = check_batch(tm, b);
    if (rc) return rc;
    if ((rc = ensure_buffers(tm, b->B, b->T))) return rc;
    tm->B = b->B;
    tm->T = b->T;
    tm->doc_start = b->doc_start;
    int64_t N = (int64_t)b->B * b->T, C = tm->C;
    for (int64_t i = 0; i < N; i++) tm->pos[i] = b->pos ? b->pos[i] : (int32_t)(i % b->T);
    // embeddings: one dequantized row per token
    float *x0 = tm->sets[0].x_in;
    const mweight *te = &m->g[TR_TOKEN_EMBD], *pe = &m->g[TR_POS_EMBD];
    size_t rb = dtype_row_bytes(te->type, C), prb = pe->data ? dtype_row_bytes(pe->type, C) : 0;
    float es = m->hp.embed_scale;
    for (int64_t t = 0; t < N; t++) {
        float *xt = x0 + t * C;
        if (dequantize_row(te->type, (const char *)te->data + rb * (size_t)b->ids[t], xt, C))
            return err_set(SLLM_ERR_UNSUPPORTED, "train: token_embd dtype %d cannot be dequantized", (int)te->type);
        if (es != 1.0f)
            for (int64_t i = 0; i < C; i++) xt[i] *= es;
        if (pe->data) {
            if (dequantize_row(pe->type, (const char *)pe->data + prb * (size_t)tm->pos[t], tm->tmpC, C))
                return err_set(SLLM_ERR_UNSUPPORTED, "train: position_embd dtype cannot be dequantized");
            add_f32(xt, tm->tmpC, C);
        }
    }
    for (int il = 0; il < tm->L; il++) {
        float *x_out = il + 1 < tm->L ? tm->sets[il + 1].x_in : tm->xf;
        if ((rc = layer_fwd(tm, il, &tm->sets[il], x_out))) return rc;
    }
    norm_fwd(tm, tm->xnf, tm->nfm, tm->nfr, tm->xf, m->g[TR_OUTPUT_NORM].data, m->g[TR_OUTPUT_NORM_B].data, N);
    if ((rc = head_loss(tm, b->targets, backward, gs, loss_sum, n_tok))) return rc;
    if (!backward) return SLLM_OK;

    memset(tm->dx, 0, (size_t)(N * C) * sizeof(float));
    norm_bwd(tm, tm->dx, tm->gl ? tm->gg[TR_OUTPUT_NORM] : NULL, tm->gl ? tm->gg[TR_OUTPUT_NORM_B] : NULL, tm->dxnf,
             tm->xf, m->g[TR_OUTPUT_NORM].data, tm->nfm, tm->nfr, N);
    bool full = tm->mode == TRAIN_FULL;
    for (int il = tm->L - 1; il >= 0; il--) {
        // the last layer's activations are still in the shared set from the forward
        if (tm->opt.checkpointing && il != tm->L - 1 && (rc = layer_fwd(tm, il, &tm->sets[il], tm->scr))) return rc;
        if ((rc = layer_bwd(tm, il, &tm->sets[il], full || il > 0))) return rc;
    }
    if (full) {
        embedding_bwd(tm->gg[TR_TOKEN_EMBD], tm->dx, b->ids, N, C, es);
        if (tm->gg[TR_POS_EMBD]) embedding_bwd(tm->gg[TR_POS_EMBD], tm->dx, tm->pos, N, C, 1.0f);
    }
    return SLLM_OK;
}

int train_step_fwd_bwd(train_model *tm, const train_batch *b, float grad_scale, double *loss_sum, int64_t *n_tokens) {
    tm->step++;
    tm->training = true;
    return run(tm, b, true, grad_scale, loss_sum, n_tokens);
}

int train_eval_loss(train_model *tm, const train_batch *b, double *loss_sum, int64_t *n_tokens) {
    tm->training = false;
    return run(tm, b, false, 0.0f, loss_sum, n_tokens);
}

uint64_t train_step_count(const train_model *tm) { return tm->step; }
void train_set_step_count(train_model *tm, uint64_t n) { tm->step = n; }

// ---------------------------------------------------------------- construction
static int add_param(train_model *tm, const char *name, float *p, float *g, int64_t rows, int64_t cols, bool decay,
                     tensor_role role, int layer, int lora) {
    train_param *np = realloc(tm->params, (size_t)(tm->n_params + 1) * sizeof *np);
    if (!np) return err_set(SLLM_ERR_NOMEM, "train: out of memory");
    tm->params = np;
    np[tm->n_params++] = (train_param){.name = name, .p = p, .g = g, .n = rows * cols, .rows = rows, .cols = cols,
                                       .decay = decay, .role = role, .layer = layer, .lora = lora};
    return SLLM_OK;
}

// Full mode: every stored tensor becomes an f32 master owned by the model, with a gradient.
static int make_full_params(train_model *tm) {
    sllm_model *m = tm->m;
    bool tied = m->hp.tied;
    tm->gl = calloc((size_t)tm->L * TR_COUNT, sizeof *tm->gl);
    int n_names = 0;
    for (const arch_tensor *t = m->arch->tensors; t->role != TR_COUNT; t++) n_names += arch_role_is_layer(t->role) ? tm->L : 1;
    tm->names = calloc((size_t)n_names, sizeof *tm->names);
    if (!tm->gl || !tm->names) return err_set(SLLM_ERR_NOMEM, "train: out of memory");
    int k = 0;
    for (const arch_tensor *t = m->arch->tensors; t->role != TR_COUNT; t++) {
        if (t->role == TR_ROPE_FREQS || (t->role == TR_OUTPUT && tied)) continue;
        bool lay = arch_role_is_layer(t->role);
        for (int il = 0; il < (lay ? tm->L : 1); il++) {
            mweight *w = lay ? &m->layers[il].w[t->role] : &m->g[t->role];
            if (!w->data) continue;
            int64_t rows = w->rows, cols = w->cols;
            size_t rb = dtype_row_bytes(w->type, cols);
            float *d = model_own(m, malloc((size_t)(rows * cols) * sizeof(float)));
            float *g = bigmem_calloc((size_t)(rows * cols) * sizeof(float));
            char name[200];
            arch_tensor_name(name, sizeof name, t->gguf, il);
            tm->names[k] = strdup(name);
            if (!d || !g || !tm->names[k]) { bigmem_free(g); return err_set(SLLM_ERR_NOMEM, "train: out of memory for f32 master weights"); }
            for (int64_t r = 0; r < rows; r++)
                if (dequantize_row_fast(w->type, (const char *)w->data + rb * (size_t)r, d + r * cols, cols)) {
                    bigmem_free(g);
                    return err_set(SLLM_ERR_UNSUPPORTED, "train: %s: dtype %d cannot be dequantized", name, (int)w->type);
                }
            *w = MWEIGHT(d, DT_F32, rows, cols);
            if (lay) tm->gl[(size_t)il * TR_COUNT + t->role] = g;
            else tm->gg[t->role] = g;
            int rc = add_param(tm, tm->names[k], d, g, rows, cols, !arch_role_is_vector(t->role), t->role, lay ? il : -1, 0);
            k++;
            if (rc) return rc;
        }
    }
    if (tied) m->g[TR_OUTPUT].data = NULL;   // re-tied to the new embedding master below
    model_bind_views(m);
    return SLLM_OK;
}

static int make_lora_params(train_model *tm) {
    lora_adapter *ad = tm->ad;
    tm->lg = calloc((size_t)(2 * ad->n_pairs + 1), sizeof *tm->lg);
    if (!tm->lg) return err_set(SLLM_ERR_NOMEM, "train: out of memory");
    for (int i = 0; i < 2 * ad->n_pairs; i++) {
        lora_tensor lt;
        lora_tensor_get(ad, i, &lt);
        tm->lg[i] = calloc((size_t)(lt.rows * lt.cols), sizeof(float));
        if (!tm->lg[i]) return err_set(SLLM_ERR_NOMEM, "train: out of memory");
        int rc = add_param(tm, lt.peft_name, lt.data, tm->lg[i], lt.rows, lt.cols, true, lt.role, lt.layer, lt.is_A ? 1 : 2);
        if (rc) return rc;
    }
    return SLLM_OK;
}

void train_model_free(train_model *tm) {
    if (!tm) return;
    if (tm->attached) lora_detach(tm->m, tm->ad);
    if (tm->own_pool) tpool_free(tm->pool);
    if (tm->gl) for (size_t i = 0; i < (size_t)tm->L * TR_COUNT; i++) bigmem_free(tm->gl[i]);
    free(tm->gl);
    for (int i = 0; i < TR_LAYER_FIRST; i++) bigmem_free(tm->gg[i]);
    if (tm->lg) for (int i = 0; tm->lg[i]; i++) free(tm->lg[i]);
    free(tm->lg);
    if (tm->names) {
        int n_names = 0;
        for (const arch_tensor *t = tm->m->arch->tensors; t->role != TR_COUNT; t++) n_names += arch_role_is_layer(t->role) ? tm->L : 1;
        for (int i = 0; i < n_names; i++) free(tm->names[i]);
    }
    free(tm->names);
    free(tm->params);
    free(tm->oparams);
    bigmem_free(tm->adam);
    bigmem_free(tm->arena);
    free(tm->sets);
    free(tm->row_loss);
    free(tm->pos);
    free(tm->cidx);
    free(tm);
}

int train_model_new(sllm_model *m, train_mode mode, lora_adapter *ad, const train_opts *opts, train_model **out) {
    *out = NULL;
    if (mode != TRAIN_FULL && mode != TRAIN_LORA) return err_set(SLLM_ERR_ARG, "train: unknown mode %d", (int)mode);
    if (mode == TRAIN_LORA && !ad) return err_set(SLLM_ERR_ARG, "train: LoRA mode needs an adapter");
    if (mode == TRAIN_FULL && ad) return err_set(SLLM_ERR_ARG, "train: full fine-tuning takes no adapter");
    if (ad) {
        int rc = lora_check_model(m, ad);
        if (rc) return rc;
    }
    train_model *tm = calloc(1, sizeof *tm);
    if (!tm) return err_set(SLLM_ERR_NOMEM, "train: out of memory");
    tm->m = m;
    tm->mode = mode;
    tm->ad = ad;
    if (opts) tm->opt = *opts;
    const model_hparams *hp = &m->hp;
    tm->C = hp->n_embd; tm->F = hp->n_ff; tm->Hq = hp->n_head; tm->Hkv = hp->n_head_kv; tm->D = hp->head_dim;
    tm->V = hp->n_vocab; tm->L = hp->n_layer;
    tm->qd = (int64_t)tm->Hq * tm->D; tm->kd = (int64_t)tm->Hkv * tm->D;
    tm->fused = m->layers[0].w[TR_ATTN_QKV].data != NULL;
    tm->gated = m->arch->act != ACT_GELU;
    tm->r = ad ? ad->cfg.r : 0;
    tm->kmax = tm->C > tm->F ? tm->C : tm->F;
    if (tm->qd > tm->kmax) tm->kmax = tm->qd;
    if (ad)
        for (int i = 0; i < ad->n_pairs; i++)
            for (int u = 0; u < U_COUNT; u++)
                if (unit_w[u] == ad->pairs[i].role) tm->has_lora[u] = true;
    tm->sets = calloc((size_t)tm->L, sizeof *tm->sets);
    int rc = tm->sets ? SLLM_OK : err_set(SLLM_ERR_NOMEM, "train: out of memory");
    if (!rc && opts && opts->pool) tm->pool = opts->pool;
    else if (!rc && !(opts && opts->n_threads == 1)) {
        tm->pool = tpool_new(opts ? opts->n_threads : 0);
        tm->own_pool = tm->pool != NULL;
    }
    if (!rc) rc = mode == TRAIN_FULL ? make_full_params(tm) : make_lora_params(tm);
    if (!rc && mode == TRAIN_LORA) {
        // f16/bf16/quantized frozen weights go through dequantized row tiles of ~16 MiB
        const mweight *ws[2] = {&m->g[TR_OUTPUT], &m->g[TR_TOKEN_EMBD]};
        for (int i = 0; i < 2; i++) if (ws[i]->data && ws[i]->type != DT_F32) tm->quant_base = true;
        for (int il = 0; il < tm->L; il++)
            for (int u = 0; u < U_COUNT; u++) {
                const mweight *w = &m->layers[il].w[unit_w[u]];
                if (w->data && w->type != DT_F32) tm->quant_base = true;
            }
        tm->tile_rows = gemm_tile_rows(tm->kmax);
        bool was = false;
        for (int i = 0; i < m->n_lora; i++) was |= m->lora[i] == ad;
        if (!was) {
            rc = lora_attach(m, ad, 1.0f);
            tm->attached = rc == SLLM_OK;
        }
    }
    if (rc) { train_model_free(tm); return rc; }
    *out = tm;
    return SLLM_OK;
}

int train_params(const train_model *tm, const train_param **out) {
    *out = tm->params;
    return tm->n_params;
}

int train_optim_groups(train_model *tm, double weight_decay, optim_group groups[2]) {
    int64_t total = 0;
    for (int i = 0; i < tm->n_params; i++) total += tm->params[i].n;
    if (!tm->oparams) {
        tm->oparams = calloc((size_t)(tm->n_params ? tm->n_params : 1), sizeof *tm->oparams);
        tm->adam = bigmem_calloc((size_t)(2 * total + 1) * sizeof(float));
        if (!tm->oparams || !tm->adam) return err_set(SLLM_ERR_NOMEM, "train: out of memory for optimizer state");
        int k = 0;
        float *st = tm->adam;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < tm->n_params; i++) {
                const train_param *p = &tm->params[i];
                if (p->decay != (pass == 0)) continue;
                tm->oparams[k++] = (optim_param){.p = p->p, .g = p->g, .m = st, .v = st + p->n, .n = p->n};
                st += 2 * p->n;
            }
    }
    int nd = 0;
    for (int i = 0; i < tm->n_params; i++) nd += tm->params[i].decay;
    groups[0] = (optim_group){.params = tm->oparams, .n_params = nd, .weight_decay = weight_decay, .lr_scale = 1.0};
    groups[1] = (optim_group){.params = tm->oparams + nd, .n_params = tm->n_params - nd, .weight_decay = 0.0, .lr_scale = 1.0};
    return SLLM_OK;
}

void train_zero_grad(train_model *tm) {
    for (int i = 0; i < tm->n_params; i++) memset(tm->params[i].g, 0, (size_t)tm->params[i].n * sizeof(float));
}

void train_sync_to_model(train_model *tm) {
    if (tm->mode != TRAIN_FULL) return;
    if (tm->m->hp.tied) tm->m->g[TR_OUTPUT].data = NULL;
    model_bind_views(tm->m);
}
