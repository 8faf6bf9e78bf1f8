// The forward pass of every architecture, driven by its arch_desc row: T tokens at once (batched
// prefill: each matmul sees T rows) or one (decode), appending K/V to the session's cache.
//
// Per layer:  x += o_proj(attn(rope(qk_norm(q, k)), v))     [Gemma: post-attention norm on the branch]
//             x += ffn(norm(x))                             [Gemma: post-FFN norm on the branch]
// Prefill attention runs per query head (and per chunk of queries) over the thread pool on the (T, Hq, D)
// query rows against the position-major (S, Hkv, D) cache; a decode step splits the visible keys into
// one run per thread and merges the runs' partial softmaxes (attention_decode).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "model/lora.h"
#include "model/model.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"

// Decode: the products after stage `st` of layer il (0 q/k/v, 1 o, 2 gate/up or up, 3 down; layer
// n_layer: the output head), as a hint to warm their weights (mm_matmul_multi_next). n = 0: none.
typedef struct { mm_out o[3]; mm_next nx; } next_products;

static const mm_next *next_of(const sllm_model *m, int il, int st, int T, next_products *np) {
    const mweight *w[3] = {0};
    int n = 0;
    if (T != 1) return NULL;
    if (++st == 4) { st = 0; il++; }
    if (il == m->hp.n_layer) {
        w[n++] = &m->g[TR_OUTPUT];
    } else {
        const mweight *L = m->layers[il].w;
        if (st == 0) { w[0] = &L[TR_ATTN_K]; w[1] = &L[TR_ATTN_V]; w[2] = &L[TR_ATTN_Q]; n = 3; }
        else if (st == 1) w[n++] = &L[TR_ATTN_OUT];
        else if (st == 2 && m->arch->act == ACT_GELU) w[n++] = &L[TR_FFN_UP];
        else if (st == 2) { w[0] = &L[TR_FFN_GATE]; w[1] = &L[TR_FFN_UP]; n = 2; }
        else w[n++] = &L[TR_FFN_DOWN];
    }
    for (int i = 0; i < n; i++) {
        if (!w[i]->data) return NULL;
        np->o[i] = (mm_out){.W = w[i]->data, .wt = w[i]->type, .N = w[i]->rows, .Wp = w[i]->packed};
    }
    np->nx = (mm_next){.n = n, .outs = np->o, .K = w[0]->cols, .glu = st == 2 && n == 2 && !m->n_lora};
    // the norm the caller runs before those products (after o: the FFN's; after down: the next layer's)
    const mweight *nw = il == m->hp.n_layer ? &m->g[TR_OUTPUT_NORM]
                        : st == 0           ? &m->layers[il].w[TR_ATTN_NORM]
                        : st == 2           ? &m->layers[il].w[TR_FFN_NORM]
                                            : NULL;
    if (nw && nw->data && nw->type == DT_F32) {
        np->nx.pre = nw->data;
        np->nx.pre_bytes = (size_t)m->hp.n_embd * sizeof(float);
    }
    return &np->nx;
}

// Every matmul goes through this helper, which also adds the attached LoRA adapters' terms (model/lora.h);
// with none attached it is the plain product. next: the products that follow (a hint, may be NULL).
// amax (may be NULL): also the argmax of Y's last row: the product's (mm_out.argmax), or with adapters
// attached a pass after their terms.
static int mm_amax(const model_session *s, const mweight *w, const float *X, int T, const mweight *bias, float *Y,
                   const mm_next *next, int64_t *amax) {
    mm_out o = {.W = w->data, .wt = w->type, .N = w->rows, .bias = bias ? bias->data : NULL, .Y = Y, .Wp = w->packed,
                .argmax = s->m->n_lora ? NULL : amax};
    int rc = mm_matmul_multi_next(s->pool, 1, &o, w->cols, X, T, next);
    if (rc) {
        const dtype_info *di = dtype_get(w->type);
        return err_set(SLLM_ERR_UNSUPPORTED, "%s: matmul with a %s weight (%lld x %lld) failed", s->m->path,
                       di ? di->name : "?", (long long)w->rows, (long long)w->cols);
    }
    if (!s->m->n_lora) return SLLM_OK;
    if ((rc = lora_apply(s->m, w, X, T, Y, s->pool))) return rc;
    if (amax) *amax = argmax_f32(Y + (size_t)(T - 1) * (size_t)w->rows, w->rows);
    return SLLM_OK;
}

static int mm(const model_session *s, const mweight *w, const float *X, int T, const mweight *bias, float *Y,
              const mm_next *next) {
    return mm_amax(s, w, X, T, bias, Y, next, NULL);
}

// Products sharing the input X (q/k/v, gate/up): one activation quantization and one thread-pool
// dispatch for all of them (mm_matmul_multi gives each output the bits mm_matmul would), then the
// LoRA terms per weight. On failure the products run one by one, so the error names the weight.
static int mm_multi(const model_session *s, int n, const mweight *const *w, const mweight *const *b,
                    float *const *Y, const float *X, int T, const mm_next *next) {
    mm_out o[MM_MULTI_MAX] = {{0}};
    bool fuse = n >= 1 && n <= MM_MULTI_MAX;   // and one K for all (always, for one layer's projections)
    for (int i = 0; fuse && i < n; i++) {
        fuse = w[i]->cols == w[0]->cols;
        o[i] = (mm_out){.W = w[i]->data, .wt = w[i]->type, .N = w[i]->rows,
                        .bias = b[i] && b[i]->data ? b[i]->data : NULL, .Y = Y[i], .Wp = w[i]->packed};
    }
    if (!fuse || mm_matmul_multi_next(s->pool, n, o, w[0]->cols, X, T, next)) {
        for (int i = 0; i < n; i++) {
            int rc = mm(s, w[i], X, T, b[i], Y[i], NULL);
            if (rc) return rc;
        }
        return SLLM_OK;
    }
    if (s->m->n_lora)
        for (int i = 0; i < n; i++) {
            int rc = lora_apply(s->m, w[i], X, T, Y[i], s->pool);
            if (rc) return rc;
        }
    return SLLM_OK;
}

static void norm(const sllm_model *m, float *y, const float *x, const mweight *w, const mweight *b, int64_t T,
                 int64_t C) {
    if (m->arch->norm == NORM_RMS) rmsnorm_fwd(y, NULL, x, w->data, 0.0f, T, C, m->hp.norm_eps);
    else layernorm_fwd(y, NULL, NULL, x, w->data, b ? b->data : NULL, T, C, m->hp.norm_eps);
}

typedef struct {
    const model_session *s;
    const model_layer *L;
    void *kc, *vc;               // this layer's cache, rows (n_ctx, Hkv, D) of ap.kv: f32, f16 or q8_0
    int T, chunk, n_chunks, Hq, Hkv, D;
    int hpt;                     // prefill: q heads per task (all those of a kv head, or 1)
    int n_runs;                  // decode: key runs (tasks)
    int64_t p0, s0;              // first new position; decode: first visible key
    const mm_next *next;         // decode: the output projection that follows (warmed by the tasks)
    attn_params ap;
} attn_job;

// q/k norms (qk_norm archs) and rope of n rows of D (T positions of n / T heads), from x into y (may
// be x), with the norm weight `nw`.
static void rotate_rows(const attn_job *j, float *y, const float *x, int T, int H, const mweight *nw) {
    const sllm_model *m = j->s->m;
    const model_hparams *hp = &m->hp;
    int D = j->D;
    if (m->arch->qk_norm) rmsnorm_fwd(y, NULL, x, nw->data, 0.0f, (int64_t)T * H, D, hp->norm_eps);
    else if (y != x) memcpy(y, x, (size_t)T * H * D * sizeof(float));
    if (m->arch->rope) {   // from the step's tables (forward_step)
        const rope_params *rp = j->L->swa ? &hp->rope_local : &hp->rope;
        rope_fwd_table(y, T, H, D, rp, j->s->rope_cs[j->L->swa], j->s->rope_sn[j->L->swa]);
    }
}

// Row `pos` of a layer's K or V cache.
static void *cache_row(const attn_job *j, void *c, int64_t pos) {
    return (char *)c + dtype_row_bytes(j->ap.kv, pos * j->Hkv * j->D);
}

// The T new rows' k (normed and rotated in place) and v appended to the cache at positions p0...
static void append_kv(const attn_job *j) {
    const model_session *s = j->s;
    size_t row = (size_t)j->Hkv * j->D;
    rotate_rows(j, s->k, s->k, j->T, j->Hkv, &j->L->w[TR_ATTN_K_NORM]);
    int64_t n = (int64_t)j->T * (int64_t)row;
    if (j->ap.kv == DT_F16) {
        f32_to_f16_row(s->k, cache_row(j, j->kc, j->p0), n);
        f32_to_f16_row(s->v, cache_row(j, j->vc, j->p0), n);
    } else if (j->ap.kv == DT_Q8_0) {
        quantize_row(DT_Q8_0, s->k, cache_row(j, j->kc, j->p0), n);
        quantize_row(DT_Q8_0, s->v, cache_row(j, j->vc, j->p0), n);
    } else {
        memcpy(cache_row(j, j->kc, j->p0), s->k, (size_t)n * sizeof(float));
        memcpy(cache_row(j, j->vc, j->p0), s->v, (size_t)n * sizeof(float));
    }
}

// Prefill: task = (query heads [h, h + hpt), chunk of queries [t0, t1)), q and outputs in their (T, Hq, D)
// rows. hpt = the q heads of one kv head when that leaves enough tasks for the threads (they then go
// through each key block together, loading its K / V once), else 1.
// Keys outside the band the chunk can see are skipped by offsetting the cache pointers: positions
// shift equally for queries and keys.
static void attn_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    const model_session *s = j->s;
    int h = (int)(task / j->n_chunks) * j->hpt, c = (int)(task % j->n_chunks);
    int t0 = c * j->chunk, t1 = t0 + j->chunk < j->T ? t0 + j->chunk : j->T;
    int64_t s0 = 0;
    if (j->ap.window > 0 && j->p0 + t0 - j->ap.window + 1 > 0) s0 = j->p0 + t0 - j->ap.window + 1;
    size_t qoff = (size_t)t0 * j->Hq * j->D;
    attention_fwd_heads(s->att + qoff, NULL, s->q + qoff, cache_row(j, j->kc, s0), cache_row(j, j->vc, s0), t1 - t0,
                        j->p0 + t1 - s0, j->Hq, j->Hkv, j->D, j->p0 + t0 - s0, &j->ap, h, h + j->hpt);
}

// Decode (T = 1): task r = the r-th run of the visible keys [s0, p0], every head: the cache rows of a
// run (all heads of consecutive positions) are one contiguous stream per K and V, split evenly over
// the threads; attention_decode_merge then combines the runs. Each task rotates its own copy of the
// query (the heads' norms and rope: cheap, and no single-threaded step between the q/k/v product and
// attention); run 0 holds the newest keys, the new position among them, so its task appends the new
// k / v row first: run 0 is the calling thread's (tpool_next_task), which also computed k and v (the
// first range of the q/k/v product), and it starts its task before the worker does. A task
// done with its run requests the first rows of its range of the output projection into L2 (as each
// product does for the next), so that product does not start cold.
// Run r's scratch in the session: rotated query q (Hq, D), partial output o (Hq, D), max m (Hq), sum l (Hq).
static float *dec_slot(const model_session *s, const attn_job *j, int64_t r, float **o, float **m, double **l) {
    size_t hd = (size_t)j->Hq * j->D;
    float *q = s->dec_f + (size_t)r * (2 * hd + (size_t)j->Hq);
    *o = q + hd;
    *m = q + 2 * hd;
    *l = s->dec_l + (size_t)r * j->Hq;
    return q;
}

// Keys [*a, *b) of run r, run 0 the newest. Run 0's task also appends the new k / v row (its norm, rope
// and f16 conversion: ~3 us a layer for Qwen3-0.6B against ~0.4 us a key; the even split left that thread
// ~4.6 us behind), so it gets DEC_APPEND_KEYS keys fewer than each other run.
#ifndef DEC_APPEND_KEYS   // (-DDEC_APPEND_KEYS=... to experiment)
#define DEC_APPEND_KEYS 12
#endif
static void dec_run(const attn_job *j, int64_t r, int64_t *a, int64_t *b) {
    int64_t n = j->p0 + 1 - j->s0, e = j->n_runs > 1 && n > 4 * DEC_APPEND_KEYS ? DEC_APPEND_KEYS : 0;
    int64_t i = j->n_runs - 1 - r;   // position of the run, oldest keys first
    *a = j->s0 + (n + e) * i / j->n_runs;
    *b = i == j->n_runs - 1 ? j->p0 + 1 : j->s0 + (n + e) * (i + 1) / j->n_runs;
}

static void attn_decode_task(void *ctx, int64_t r, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    const model_session *s = j->s;
    float *o, *m;
    double *l;
    float *q = dec_slot(s, j, r, &o, &m, &l);
    int64_t a, b;
    dec_run(j, r, &a, &b);
    // the run's first rows are requested before the rotation (and the append) so their misses overlap it;
    // run 0 ends at the new key, whose row the append writes
    attention_decode_prefetch(j->kc, j->vc, j->Hkv, j->D, a, r == 0 ? b - 2 : b - 1, &j->ap);
    rotate_rows(j, q, s->q, 1, j->Hq, &j->L->w[TR_ATTN_Q_NORM]);
    if (r == 0) append_kv(j);
    attention_decode_part(o, m, l, q, j->kc, j->vc, j->Hq, j->Hkv, j->D, a, b - 1, &j->ap);
    mm_next_warm(j->next, r, tpool_size(s->pool), thread != 0);   // the output projection's first rows
}

static void attention_decode(model_session *s, attn_job *j) {
    int nth = tpool_size(s->pool);
    int64_t n = j->p0 + 1 - j->s0;
    // runs of at least ~64 keys: shorter ones cost more in setup and merging than they save
    j->n_runs = (int)(n / 64 < nth ? n / 64 : nth);
    if (j->n_runs < 1) j->n_runs = 1;
    if (j->n_runs > s->dec_runs) j->n_runs = s->dec_runs;
    tpool_run(s->pool, j->n_runs, attn_decode_task, j);
    float *o[MAX_RUNS], *m[MAX_RUNS];
    double *l[MAX_RUNS];
    for (int r = 0; r < j->n_runs; r++) dec_slot(s, j, r, &o[r], &m[r], &l[r]);
    attention_decode_merge(s->att, (const float *const *)o, (const float *const *)m, (const double *const *)l,
                           j->n_runs, j->Hq, j->D);
}

// Decode of a gated feed-forward (gate, up, then SwiGLU / GeGLU into ff_b) in one dispatch whose threads
// apply the activation to the rows they computed (mm_glu_decode); false when it does not apply (prefill,
// LoRA adapters attached: their terms come before the activation, dtypes without a decode path), and
// the caller then runs the products and the activation apart.
static bool ffn_glu_decode(const model_session *s, const model_layer *L, int T, const mm_next *next) {
    const sllm_model *m = s->m;
    const mweight *g = &L->w[TR_FFN_GATE], *u = &L->w[TR_FFN_UP];
    if (T != 1 || m->n_lora || !g->data || !u->data || g->cols != u->cols) return false;
    mm_out og = {.W = g->data, .wt = g->type, .N = g->rows, .Y = s->ff_a, .Wp = g->packed};
    mm_out ou = {.W = u->data, .wt = u->type, .N = u->rows, .Y = s->ff_b, .Wp = u->packed};
    return mm_glu_decode(s->pool, &og, &ou, g->cols, s->xn, m->arch->act == ACT_GEGLU ? geglu_fwd : swiglu_fwd,
                         s->ff_b, next) == 0;
}

static int layer_forward(model_session *s, int il, int T, int64_t p0) {
    const sllm_model *m = s->m;
    const model_hparams *hp = &m->hp;
    const model_layer *L = &m->layers[il];
    const mweight *w = L->w;
    int C = hp->n_embd, D = hp->head_dim, Hq = hp->n_head, Hkv = hp->n_head_kv;
    int rc;

    // ---- attention ----
    norm(m, s->xn, s->x, &w[TR_ATTN_NORM], &w[TR_ATTN_NORM_B], T, C);     // xn (T, C)
    {   // q (T, Hq*D), k (T, Hkv*D), v (T, Hkv*D)
        // k and v first: a decode step's first range (the calling thread's, tpool_next_task) is then k
        // and v, which that thread appends to the cache in attention's run 0 (attn_decode_task)
        const mweight *pw[3] = {&w[TR_ATTN_K], &w[TR_ATTN_V], &w[TR_ATTN_Q]};
        const mweight *pb[3] = {&w[TR_ATTN_K_B], &w[TR_ATTN_V_B], &w[TR_ATTN_Q_B]};
        float *py[3] = {s->k, s->v, s->q};
        if ((rc = mm_multi(s, 3, pw, pb, py, s->xn, T, NULL))) return rc;
    }
    attn_job job = {.s = s, .L = L, .kc = model_session_k(s, il), .vc = model_session_v(s, il), .T = T, .Hq = Hq,
                    .Hkv = Hkv, .D = D, .p0 = p0};
    job.ap.scale = hp->attn_scale;
    job.ap.window = L->swa ? hp->swa_window : 0;
    job.ap.softcap = 0;
    job.ap.doc_start = NULL;
    job.ap.kv = s->kv_type;
    next_products np;
    if (T == 1) {
        job.next = next_of(m, il, 0, T, &np);
        if (job.ap.window > 0 && p0 - job.ap.window + 1 > 0) job.s0 = p0 - job.ap.window + 1;
        attention_decode(s, &job);   // att (1, Hq*D)
    } else {
        rotate_rows(&job, s->q, s->q, T, Hq, &w[TR_ATTN_Q_NORM]);
        append_kv(&job);
        job.chunk = (int)attention_prefill_chunk(T, Hkv, tpool_size(s->pool));
        job.n_chunks = (T + job.chunk - 1) / job.chunk;
        job.hpt = Hq / Hkv;
        if ((int64_t)Hkv * job.n_chunks < 4 * (int64_t)tpool_size(s->pool)) job.hpt = 1;
        tpool_run(s->pool, (int64_t)(Hq / job.hpt) * job.n_chunks, attn_task, &job);   // att (T, Hq*D)
    }
    if ((rc = mm(s, &w[TR_ATTN_OUT], s->att, T, &w[TR_ATTN_OUT_B], s->o, next_of(m, il, 1, T, &np)))) return rc;   // o (T, C)
    if (m->arch->post_norms) rmsnorm_fwd(s->o, NULL, s->o, w[TR_POST_ATTN_NORM].data, 0.0f, T, C, hp->norm_eps);
    int64_t n = (int64_t)T * C;
    add_f32(s->x, s->o, n);

    // ---- feed-forward ----
    norm(m, s->xn, s->x, &w[TR_FFN_NORM], &w[TR_FFN_NORM_B], T, C);
    int64_t nf = (int64_t)T * hp->n_ff;
    const mm_next *nx_down = next_of(m, il, 2, T, &np);   // the FFN's last product, after these
    if (m->arch->act == ACT_GELU) {
        if ((rc = mm(s, &w[TR_FFN_UP], s->xn, T, &w[TR_FFN_UP_B], s->ff_a, nx_down))) return rc;   // (T, F)
        gelu_fwd(s->ff_b, s->ff_a, nf);
    } else if (!ffn_glu_decode(s, L, T, nx_down)) {
        const mweight *pw[2] = {&w[TR_FFN_GATE], &w[TR_FFN_UP]}, *pb[2] = {NULL, NULL};
        float *py[2] = {s->ff_a, s->ff_b};
        if ((rc = mm_multi(s, 2, pw, pb, py, s->xn, T, nx_down))) return rc;   // gate, up (T, F)
        if (m->arch->act == ACT_GEGLU) geglu_fwd(s->ff_b, s->ff_a, s->ff_b, nf);
        else swiglu_fwd(s->ff_b, s->ff_a, s->ff_b, nf);
    }
    if ((rc = mm(s, &w[TR_FFN_DOWN], s->ff_b, T, &w[TR_FFN_DOWN_B], s->o, next_of(m, il, 3, T, &np)))) return rc;   // (T, C)
    if (m->arch->post_norms) rmsnorm_fwd(s->o, NULL, s->o, w[TR_POST_FFN_NORM].data, 0.0f, T, C, hp->norm_eps);
    add_f32(s->x, s->o, n);
    return SLLM_OK;
}

// One step of at most n_batch tokens. logits: (T, V) rows, or only the last row. amax (may be NULL): the
// argmax of the last row.
static int forward_step(model_session *s, const int32_t *ids, int T, float *logits, bool all_logits, int64_t *amax) {
    const sllm_model *m = s->m;
    const model_hparams *hp = &m->hp;
    int C = hp->n_embd;
    int64_t p0 = s->n_past;
    for (int t = 0; t < T; t++) s->pos[t] = (int32_t)(p0 + t);
    // token embeddings: one dequantized row per token, never the whole table
    const mweight *te = &m->g[TR_TOKEN_EMBD];
    size_t rb = dtype_row_bytes(te->type, te->cols);
    for (int t = 0; t < T; t++) {
        float *xt = s->x + (size_t)t * C;
        if (dequantize_row(te->type, (const char *)te->data + rb * (size_t)ids[t], xt, C))
            return err_set(SLLM_ERR_UNSUPPORTED, "%s: token_embd dtype cannot be dequantized", m->path);
        if (hp->embed_scale != 1.0f)
            for (int i = 0; i < C; i++) xt[i] *= hp->embed_scale;
    }
    if (m->g[TR_POS_EMBD].data) {
        const mweight *pe = &m->g[TR_POS_EMBD];
        size_t prb = dtype_row_bytes(pe->type, pe->cols);
        for (int t = 0; t < T; t++) {
            if (dequantize_row(pe->type, (const char *)pe->data + prb * (size_t)(p0 + t), s->xn, C))
                return err_set(SLLM_ERR_UNSUPPORTED, "%s: position_embd dtype cannot be dequantized", m->path);
            add_f32(s->x + (size_t)t * C, s->xn, C);
        }
    }
    if (m->arch->rope) {   // cos / sin of this step's positions, for every layer (GGUF rope_freqs: global layers)
        rope_table(s->pos, T, hp->head_dim, &hp->rope, m->rope_factors, s->rope_cs[0], s->rope_sn[0]);
        if (hp->swa_window > 0)
            rope_table(s->pos, T, hp->head_dim, &hp->rope_local, NULL, s->rope_cs[1], s->rope_sn[1]);
    }
    int rc;
    for (int il = 0; il < hp->n_layer; il++)
        if ((rc = layer_forward(s, il, T, p0))) return rc;
    s->n_past += T;
    if (!logits) return SLLM_OK;
    // final norm + head over all rows, or over the last row only
    int r0 = all_logits ? 0 : T - 1, nr = all_logits ? T : 1;
    norm(m, s->xn, s->x + (size_t)r0 * C, &m->g[TR_OUTPUT_NORM], &m->g[TR_OUTPUT_NORM_B], nr, C);
    // (the cap below can round different logits to one value, so under it the argmax is taken after it)
    bool capped = hp->final_softcap > 0;
    if ((rc = mm_amax(s, &m->g[TR_OUTPUT], s->xn, nr, NULL, logits, NULL, capped ? NULL : amax))) return rc;   // (nr, V)
    if (capped) {
        float cap = hp->final_softcap;
        int64_t nl = (int64_t)nr * hp->n_vocab;
        for (int64_t i = 0; i < nl; i++) logits[i] = cap * tanhf(logits[i] / cap);
        if (amax) *amax = argmax_f32(logits + (size_t)(nr - 1) * (size_t)hp->n_vocab, hp->n_vocab);
    }
    return SLLM_OK;
}

static int forward_tokens(model_session *s, const int32_t *ids, int T, float *logits, bool all_logits,
                          int64_t *amax) {
    const sllm_model *m = s->m;
    if (T <= 0 || !ids) return err_set(SLLM_ERR_ARG, "forward: no tokens (T=%d)", T);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->hp.n_vocab)
            return err_set(SLLM_ERR_ARG, "forward: token id %d at position %d is outside the vocabulary [0, %d)",
                           ids[t], t, m->hp.n_vocab);
    if ((int64_t)s->n_past + T > s->n_ctx)
        return err_set(SLLM_ERR_ARG, "forward: context full: %d cached + %d new tokens > n_ctx %d", s->n_past, T,
                       s->n_ctx);
    if (m->g[TR_POS_EMBD].data && (int64_t)s->n_past + T > m->hp.n_ctx_train)
        return err_set(SLLM_ERR_ARG, "forward: %s has learned positions for %d tokens only", m->arch->name,
                       m->hp.n_ctx_train);
    for (int t0 = 0; t0 < T; t0 += s->n_batch) {
        int n = T - t0 < s->n_batch ? T - t0 : s->n_batch;
        bool last = t0 + n == T;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + (size_t)t0 * (size_t)m->hp.n_vocab;
        else if (logits && last) lg = logits;
        int rc = forward_step(s, ids + t0, n, lg, all_logits, last ? amax : NULL);
        if (rc) return rc;
    }
    return SLLM_OK;
}

int model_forward(model_session *s, const int32_t *ids, int T, float *logits, bool all_logits) {
    return forward_tokens(s, ids, T, logits, all_logits, NULL);
}

int model_forward_argmax(model_session *s, const int32_t *ids, int T, float *logits, int32_t *next) {
    if (!logits || !next) return err_set(SLLM_ERR_ARG, "forward: model_forward_argmax needs logits and next");
    int64_t a = 0;
    int rc = forward_tokens(s, ids, T, logits, false, &a);
    if (rc == SLLM_OK) *next = (int32_t)a;
    return rc;
}
