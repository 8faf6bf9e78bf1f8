// A one-token decode step whose threads own parts of every layer, in one thread-pool dispatch for all
// the layers (forward.c's step takes five dispatches a layer, with single-threaded work between them).
//
// Thread r of n owns kv-head group r (Hkv / n kv heads, their Hq / n q heads) and starts on an n-th of
// the rows of the output projection and the FFN's products (in units of 16 rows); a thread done with its
// range of a product takes pieces from the back of another's, the q / k / v rows of another's heads
// included (their owner waits for them before rotating), so no thread idles at a barrier while the
// other, on a slower core complex, still streams. Per layer it
//   norms its own copy of x; computes the q / k / v rows of its heads; norms and rotates them; appends
//   its heads' k / v to its group's block of the cache; runs attention over that block  -> att (own heads)
//   | barrier A | o rows over the whole att                                            -> o (own rows)
//   | barrier B | x += o (every thread, same order: identical copies); norm; gate / up rows and the
//   activation                                                                           -> h (own rows)
//   | barrier C | down rows over the whole h                                              -> o (own rows)
//   | barrier D | x += o
// Why: on this VM's two core complexes a cache line crossing between the threads costs a ~415 ns round
// trip, and each dispatch, single-threaded piece and merge paid several (docs/performance.md, round
// 12). Here a layer moves only what the next products read (att, o, h, o: ~14 KiB a Qwen3-0.6B layer in
// all) and no thread waits on a single-threaded step. Before waiting at a barrier a thread requests
// the first bytes of its next product (mm_dec_warm), so its memory pipe keeps streaming.
// Each row's product has the bits forward.c's decode gives it; attention over a group is one run, so
// the step's logits equal forward.c's decode within rounding (tests/test_model.c).
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "model/model.h"
#include "tensor/matmul.h"

typedef struct { _Alignas(64) _Atomic uint64_t epoch; } tp_flag;
// A thread's range of a row stage in 16-row units: front | back << 32 (see tp_stage_run).
typedef struct { _Alignas(64) _Atomic uint64_t fb; } tp_range;
// The stages with ranges: a layer's q / k / v rows (each thread's own heads; units stolen by another
// thread are counted in ST_KVQ_DONE), then the row stages.
enum { ST_KVQ, ST_KVQ_DONE, ST_O, ST_FFN, ST_DOWN, ST_COUNT };
#define RANGE(f, b) ((uint64_t)(f) | (uint64_t)(b) << 32)
#define TP_CHUNK_BYTES (32 << 10)   // weight bytes a claim takes, about (as matmul.c's decode split)

#define TP_ACTS 3   // activation slots a thread keeps (q / k / v may need up to three forms)

// One thread's view of the step.
typedef struct {
    model_session *s;
    int r, n;              // this thread, of n
    int64_t p0;            // the token's position
    uint64_t epoch;        // barriers passed
    float *x, *xn, *tmp;   // own residual copy (thread 0: s->x), its norm, a post-norm's output
    float *ao, *am;        // attention of its heads before normalizing: outputs (Hq / n, D), maxima
    double *al;            // and sums (Hq / n)
    char *act[TP_ACTS];
    int key[TP_ACTS], nact;
} tp_thread;

int forward_tp_groups(const sllm_model *m, int threads) {
    const model_hparams *h = &m->hp;
    const char *e = getenv("SLLM_DECODE_TP");   // 0: forward.c's decode (A/B runs, tests)
    if (e && e[0] == '0') return 1;
    if (threads < 2 || threads > MAX_RUNS || h->n_head_kv % threads || h->n_head % h->n_head_kv) return 1;
    if (h->head_dim % 16) return 1;   // each thread's q / k / v rows: whole 16-row panels
    return threads;
}

static mm_out out_of(const mweight *w, const mweight *b, float *Y) {
    return (mm_out){.W = w->data, .wt = w->type, .N = w->rows, .bias = b && b->data ? b->data : NULL, .Y = Y,
                    .Wp = w->packed};
}

// The largest activation any product of the model needs; 0 when some product has no decode path.
static size_t act_bytes_needed(const sllm_model *m) {
    static const int mats[] = {TR_ATTN_Q, TR_ATTN_K, TR_ATTN_V, TR_ATTN_OUT, TR_FFN_GATE, TR_FFN_UP, TR_FFN_DOWN};
    size_t most = 0;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            const mweight *w = &m->layers[il].w[mats[i]];
            if (mats[i] == TR_FFN_GATE && m->arch->act == ACT_GELU) continue;
            if (!w->data) return 0;
            mm_out o = out_of(w, NULL, NULL);
            size_t b = mm_dec_act_bytes(&o, w->cols);
            if (!b) return 0;
            if (b > most) most = b;
        }
    return (most + 63) / 64 * 64;
}

// A thread's f32 / f64 scratch, in whole lines (no line shared with another thread's): attention's sums
// (Hq doubles), then xn, tmp, x (C each), attention's partial outputs (Hq / n heads of D; sized for all
// Hq) and maxima (Hq).
static size_t tp_floats_bytes(const sllm_model *m) {
    size_t C = (size_t)m->hp.n_embd, Hq = (size_t)m->hp.n_head, D = (size_t)m->hp.head_dim;
    return ((3 * C + Hq * D + Hq) * sizeof(float) + Hq * sizeof(double) + 63) / 64 * 64;
}

int forward_tp_setup(model_session *s) {
    s->tp = false;
    int n = s->kv_groups;
    if (n < 2) return SLLM_OK;
    size_t act = act_bytes_needed(s->m);
    if (!act) return SLLM_OK;   // forward.c's decode (the cache layout works for both)
    s->tp_act_bytes = act;
    s->tp_stride = tp_floats_bytes(s->m) + TP_ACTS * act;
    s->tp_buf = aligned_alloc(64, s->tp_stride * (size_t)n);
    s->tp_flags = aligned_alloc(64, (sizeof(tp_flag) + ST_COUNT * sizeof(tp_range)) * (size_t)n);
    if (!s->tp_buf || !s->tp_flags) return err_set(SLLM_ERR_NOMEM, "session: out of memory for the decode threads");
    s->tp = true;
    return SLLM_OK;
}

// Every thread has written what it wrote before its barrier call; afterwards it reads the others'.
static void tp_barrier(tp_thread *t) {
    tp_flag *f = t->s->tp_flags;
    uint64_t e = ++t->epoch;
    atomic_store_explicit(&f[t->r].epoch, e, memory_order_release);
    for (int i = 0; i < t->n; i++) {
        if (i == t->r) continue;
        for (unsigned spins = 0; atomic_load_explicit(&f[i].epoch, memory_order_acquire) < e;)
            if (++spins % 4096 == 0) sched_yield();   // more threads than cores: let the others run
#if defined(__x86_64__) || defined(__i386__)
            else __builtin_ia32_pause();
#endif
    }
}

// o's activation of X (K): quantized once per form for the products of one input (call tp_new_input
// between inputs).
static const void *tp_act(tp_thread *t, const mm_out *o, int64_t K, const float *X) {
    int key = mm_dec_act_key(o, K), i = 0;
    while (i < t->nact && t->key[i] != key) i++;
    if (i == t->nact) {
        if (i == TP_ACTS) i = t->nact - 1;   // (never: at most three products share an input)
        else t->nact++;
        t->key[i] = key;
        mm_dec_act(o, K, X, t->act[i]);
    }
    return t->act[i];
}
static void tp_new_input(tp_thread *t) { t->nact = 0; }

// A row stage: rows of a (and the same rows of b: the FFN's up beside its gate), then the activation over
// them when act is set (a gated FFN: H = act(gate, up) into b's rows; GELU: b NULL, gelu(a) into H).
typedef struct {
    const mm_out *a, *b;
    int64_t K;
    const void *xa, *xb;   // their activations
    mm_glu_fn glu;         // gated FFN
    float *gelu_out;       // GELU FFN
} tp_stage;

static void tp_units(const tp_stage *st, int64_t u0, int64_t u1, int64_t pf_u, bool cold) {
    int64_t N = st->a->N, n0 = 16 * u0, n1 = 16 * u1 < N ? 16 * u1 : N, pf = 16 * pf_u < N ? 16 * pf_u : N;
    mm_dec_rows(st->a, st->K, st->xa, n0, n1, pf, cold);
    if (st->b) mm_dec_rows(st->b, st->K, st->xb, n0, n1, pf, cold);
    if (st->glu) st->glu(st->b->Y + n0, st->a->Y + n0, st->b->Y + n0, n1 - n0);
    if (st->gelu_out) gelu_fwd(st->gelu_out + n0, st->a->Y + n0, n1 - n0);
}

static tp_range *tp_ranges(const tp_thread *t, int stage) {
    return (tp_range *)((tp_flag *)t->s->tp_flags + t->n) + (size_t)stage * t->n;
}

// Before the barrier ahead of the stage: this thread's range (an n-th of N rows' units) set, its first
// bytes requested.
static void tp_stage_own(tp_thread *t, int stage, const mm_out *a, const mm_out *b, int64_t K) {
    int64_t u = (a->N + 15) / 16, u0 = u * t->r / t->n, u1 = u * (t->r + 1) / t->n;
    atomic_store_explicit(&tp_ranges(t, stage)[t->r].fb, RANGE(u0, u1), memory_order_relaxed);
    mm_dec_warm(a, K, 16 * u0, 16 * u1);
    if (b) mm_dec_warm(b, K, 16 * u0, 16 * u1);
}

// Claims over a stage's ranges R: the own range from the front in chunks, then pieces from the back of
// the fullest other range (half of what is left there, at most a chunk), so the threads reach the next
// barrier together even when one streams slower (a static split lost ~3-5% of decode to such waits on
// two core complexes). f(t, ctx, owner, u0, u1, pf_u, cold) runs units [u0, u1) of owner's range (it may
// prefetch to unit pf_u); done (may be NULL): per range, the units other threads took from it, counted
// once computed.
typedef void (*tp_units_fn)(tp_thread *t, const void *ctx, int owner, int64_t u0, int64_t u1, int64_t pf_u, bool cold);
static int64_t tp_chunk(size_t unit_bytes) {
    int64_t c = (int64_t)(TP_CHUNK_BYTES / (unit_bytes ? unit_bytes : 1));
    return c < 1 ? 1 : c > 64 ? 64 : c;
}

static void tp_claims(tp_thread *t, tp_range *R, tp_range *done, int64_t chunk, tp_units_fn f, const void *ctx) {
    tp_range *own = &R[t->r];
    bool cold = true;
    for (;;) {
        uint64_t v = atomic_load_explicit(&own->fb, memory_order_acquire);
        int64_t a = (int64_t)(v & 0xffffffffu), b = (int64_t)(v >> 32);
        if (a >= b) break;
        int64_t c = b - a < chunk ? b - a : chunk;
        if (!atomic_compare_exchange_weak_explicit(&own->fb, &v, RANGE(a + c, b), memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        f(t, ctx, t->r, a, a + c, b, cold);
        cold = false;
    }
    for (;;) {
        int vi = -1;
        int64_t most = 0;
        for (int i = 0; i < t->n; i++) {
            uint64_t v = atomic_load_explicit(&R[i].fb, memory_order_relaxed);
            int64_t left = (int64_t)(v >> 32) - (int64_t)(v & 0xffffffffu);
            if (left > most) { most = left; vi = i; }
        }
        if (vi < 0) break;
        uint64_t v = atomic_load_explicit(&R[vi].fb, memory_order_acquire);
        int64_t a = (int64_t)(v & 0xffffffffu), b = (int64_t)(v >> 32);
        if (a >= b) continue;
        int64_t c = (b - a + 1) / 2 < chunk ? (b - a + 1) / 2 : chunk;
        if (!atomic_compare_exchange_weak_explicit(&R[vi].fb, &v, RANGE(a, b - c), memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        f(t, ctx, vi, b - c, b, b, true);
        if (done) atomic_fetch_add_explicit(&done[vi].fb, (uint64_t)c, memory_order_release);
    }
}

static void tp_stage_units(tp_thread *t, const void *ctx, int owner, int64_t u0, int64_t u1, int64_t pf_u, bool cold) {
    (void)t; (void)owner;
    tp_units(ctx, u0, u1, pf_u, cold);
}

// A row stage after its barrier.
static void tp_stage_run(tp_thread *t, int stage, const tp_stage *st) {
    size_t ub = 16 * dtype_row_bytes(st->a->wt, st->K) + (st->b ? 16 * dtype_row_bytes(st->b->wt, st->K) : 0);
    tp_claims(t, tp_ranges(t, stage), NULL, tp_chunk(ub), tp_stage_units, st);
}

// ---- q / k / v: each thread's range is its heads' k, v and q rows, in units of 16 (range-local)
typedef struct { mm_out o[3]; int64_t K; int hk, hq, D; } tp_kvq_job;   // o: k, v, q

static int64_t tp_kvq_unit_count(const model_hparams *hp, int n) {
    return (int64_t)(2 * (hp->n_head_kv / n) + hp->n_head / n) * hp->head_dim / 16;
}

// This thread's q / k / v range of layer il set (and the count of units others took from it cleared), its
// first bytes requested; before the barrier ahead of that layer (layer 0: the caller, for every thread).
static void tp_kvq_own(tp_thread *t, int il) {
    const sllm_model *m = t->s->m;
    atomic_store_explicit(&tp_ranges(t, ST_KVQ)[t->r].fb, RANGE(0, tp_kvq_unit_count(&m->hp, t->n)),
                          memory_order_relaxed);
    atomic_store_explicit(&tp_ranges(t, ST_KVQ_DONE)[t->r].fb, 0, memory_order_relaxed);
    if (il < 0) return;
    mm_out ok = out_of(&m->layers[il].w[TR_ATTN_K], NULL, NULL);
    int hk = m->hp.n_head_kv / t->n, D = m->hp.head_dim;
    mm_dec_warm(&ok, m->hp.n_embd, (int64_t)t->r * hk * D, (int64_t)(t->r + 1) * hk * D);
}

static void tp_kvq_units(tp_thread *t, const void *ctx, int owner, int64_t u0, int64_t u1, int64_t pf_u, bool cold) {
    const tp_kvq_job *j = ctx;
    int64_t seg[3] = {(int64_t)j->hk * j->D / 16, (int64_t)j->hk * j->D / 16, (int64_t)j->hq * j->D / 16};
    int64_t base = 0;
    for (int i = 0; i < 3 && u0 < u1; base += seg[i], i++) {
        if (u0 >= base + seg[i]) continue;
        int64_t e = u1 < base + seg[i] ? u1 : base + seg[i], pe = pf_u < base + seg[i] ? pf_u : base + seg[i];
        int64_t row0 = (int64_t)owner * seg[i] * 16;   // the owner's first row of this product
        const mm_out *o = &j->o[i];
        mm_dec_rows(o, j->K, tp_act(t, o, j->K, t->xn), row0 + 16 * (u0 - base), row0 + 16 * (e - base),
                    row0 + 16 * (pe - base), cold);
        cold = true;   // the next product is a new stream
        u0 = e;
    }
}

// The q / k / v rows of this thread's heads (with others' help), and then of others' heads it takes.
static void tp_kvq(tp_thread *t, int il) {
    model_session *s = t->s;
    const model_hparams *hp = &s->m->hp;
    const mweight *w = s->m->layers[il].w;
    tp_kvq_job j = {.o = {out_of(&w[TR_ATTN_K], &w[TR_ATTN_K_B], s->k), out_of(&w[TR_ATTN_V], &w[TR_ATTN_V_B], s->v),
                          out_of(&w[TR_ATTN_Q], &w[TR_ATTN_Q_B], s->q)},
                    .K = hp->n_embd, .hk = hp->n_head_kv / t->n, .hq = hp->n_head / t->n, .D = hp->head_dim};
    size_t ub = 0;
    for (int i = 0; i < 3; i++) ub += 16 * dtype_row_bytes(j.o[i].wt, j.K);
    tp_new_input(t);
    tp_range *done = tp_ranges(t, ST_KVQ_DONE);
    tp_claims(t, tp_ranges(t, ST_KVQ), done, tp_chunk(ub / 3), tp_kvq_units, &j);
    // the units others took from this thread's range, computed by them before it reads them
    uint64_t v = atomic_load_explicit(&tp_ranges(t, ST_KVQ)[t->r].fb, memory_order_acquire);
    uint64_t taken = (uint64_t)(tp_kvq_unit_count(hp, t->n) - (int64_t)(v >> 32));
    for (unsigned spins = 0; atomic_load_explicit(&done[t->r].fb, memory_order_acquire) < taken;)
        if (++spins % 4096 == 0) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else __builtin_ia32_pause();
#endif
}

// Attention of this thread's heads: q / k / v rows, norms and rope, the new k / v into its cache group,
// attention over the group's visible keys -> s->att (own heads).
static void tp_attention(tp_thread *t, int il) {
    model_session *s = t->s;
    const model_hparams *hp = &s->m->hp;
    const model_layer *L = &s->m->layers[il];
    const mweight *w = L->w;
    int D = hp->head_dim, hq = hp->n_head / t->n, hk = hp->n_head_kv / t->n, r = t->r;
    tp_kvq(t, il);
    float *q = s->q + (size_t)r * hq * D, *k = s->k + (size_t)r * hk * D, *v = s->v + (size_t)r * hk * D;
    fwd_rotate(s, L, q, q, 1, hq, &w[TR_ATTN_Q_NORM]);
    fwd_rotate(s, L, k, k, 1, hk, &w[TR_ATTN_K_NORM]);
    void *kc = model_session_k(s, il), *vc = model_session_v(s, il);
    fwd_append_kv(s, kc, vc, r, t->p0, k, v, (int64_t)hk * D);
    attn_params ap = {.scale = hp->attn_scale, .kv_f16 = s->kv_f16};
    int64_t s0 = 0;
    if (L->swa && hp->swa_window > 0 && t->p0 - hp->swa_window + 1 > 0) s0 = t->p0 - hp->swa_window + 1;
    ap.window = L->swa ? hp->swa_window : 0;
    float *o = t->ao, *m = t->am;
    double *l = t->al;
    attention_decode_part(o, m, l, q, fwd_cache_row(s, kc, r, 0), fwd_cache_row(s, vc, r, 0), hq, hk, D, s0, t->p0,
                          &ap);
    const float *op = o, *mp = m;
    const double *lp = l;
    attention_decode_merge(s->att + (size_t)r * hq * D, &op, &mp, &lp, 1, hq, D);
}

// x += the product in s->o (after Gemma's post-norm, into the thread's own tmp: s->o is shared).
static void tp_residual(tp_thread *t, const mweight *post) {
    const sllm_model *m = t->s->m;
    const float *o = t->s->o;
    if (m->arch->post_norms) {
        rmsnorm_fwd(t->tmp, NULL, o, post->data, 0.0f, 1, m->hp.n_embd, m->hp.norm_eps);
        o = t->tmp;
    }
    add_f32(t->x, o, m->hp.n_embd);
}

static void tp_layer(tp_thread *t, int il) {
    model_session *s = t->s;
    const sllm_model *m = s->m;
    const model_hparams *hp = &m->hp;
    const mweight *w = m->layers[il].w;
    int C = hp->n_embd, HD = hp->n_head * hp->head_dim;
    int64_t F = hp->n_ff;
    bool gelu = m->arch->act == ACT_GELU;
    mm_out oo = out_of(&w[TR_ATTN_OUT], &w[TR_ATTN_OUT_B], s->o);
    mm_out og = out_of(&w[TR_FFN_GATE], NULL, s->ff_a);
    mm_out ou = out_of(&w[TR_FFN_UP], &w[TR_FFN_UP_B], gelu ? s->ff_a : s->ff_b);
    mm_out od = out_of(&w[TR_FFN_DOWN], &w[TR_FFN_DOWN_B], s->o);

    fwd_norm(m, t->xn, t->x, &w[TR_ATTN_NORM], &w[TR_ATTN_NORM_B], 1, C);
    tp_attention(t, il);
    tp_stage_own(t, ST_O, &oo, NULL, HD);
    tp_barrier(t);   // A: every head's attention output
    tp_new_input(t);
    tp_stage so = {.a = &oo, .K = HD, .xa = tp_act(t, &oo, HD, s->att)};
    tp_stage_run(t, ST_O, &so);
    if (gelu) tp_stage_own(t, ST_FFN, &ou, NULL, C);
    else tp_stage_own(t, ST_FFN, &og, &ou, C);
    tp_barrier(t);   // B: the output projection
    tp_residual(t, &w[TR_POST_ATTN_NORM]);

    fwd_norm(m, t->xn, t->x, &w[TR_FFN_NORM], &w[TR_FFN_NORM_B], 1, C);
    tp_new_input(t);
    tp_stage sf = {.K = C};
    if (gelu) {
        sf.a = &ou;
        sf.xa = tp_act(t, &ou, C, t->xn);
        sf.gelu_out = s->ff_b;
    } else {
        sf.a = &og;
        sf.b = &ou;
        sf.xa = tp_act(t, &og, C, t->xn);
        sf.xb = tp_act(t, &ou, C, t->xn);
        sf.glu = m->arch->act == ACT_GEGLU ? geglu_fwd : swiglu_fwd;
    }
    tp_stage_run(t, ST_FFN, &sf);
    tp_stage_own(t, ST_DOWN, &od, NULL, F);
    tp_barrier(t);   // C: the FFN's hidden activations
    tp_new_input(t);
    tp_stage sd = {.a = &od, .K = F, .xa = tp_act(t, &od, F, s->ff_b)};
    tp_stage_run(t, ST_DOWN, &sd);
    if (il + 1 < hp->n_layer) tp_kvq_own(t, il + 1);   // the next layer's q / k / v range
    tp_barrier(t);   // D: the down projection
    tp_residual(t, &w[TR_POST_FFN_NORM]);
}

typedef struct { model_session *s; int64_t p0; } tp_job;

static void tp_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const tp_job *j = ctx;
    model_session *s = j->s;
    tp_thread t = {.s = s, .r = (int)task, .n = s->kv_groups, .p0 = j->p0};
    size_t C = (size_t)s->m->hp.n_embd, fl = tp_floats_bytes(s->m);
    char *buf = s->tp_buf + (size_t)task * s->tp_stride;
    t.al = (double *)buf;
    t.xn = (float *)(t.al + s->m->hp.n_head);
    t.tmp = t.xn + C;
    t.x = task == 0 ? s->x : t.tmp + C;
    t.ao = t.tmp + 2 * C;
    t.am = t.ao + (size_t)s->m->hp.n_head * s->m->hp.head_dim;
    if (task != 0) memcpy(t.x, s->x, C * sizeof(float));
    for (int i = 0; i < TP_ACTS; i++) t.act[i] = buf + fl + (size_t)i * s->tp_act_bytes;
    for (int il = 0; il < s->m->hp.n_layer; il++) tp_layer(&t, il);
}

bool forward_tp_layers(model_session *s, int64_t p0) {
    if (!s->tp || s->m->n_lora || tpool_size(s->pool) != s->kv_groups) return false;
    tp_flag *f = s->tp_flags;
    for (int i = 0; i < s->kv_groups; i++) {
        atomic_init(&f[i].epoch, 0);
        tp_thread t = {.s = s, .r = i, .n = s->kv_groups};
        tp_kvq_own(&t, -1);   // layer 0's q / k / v ranges: before any thread may take from them
    }
    tp_job j = {.s = s, .p0 = p0};
    tpool_run(s->pool, s->kv_groups, tp_task, &j);
    return true;
}
