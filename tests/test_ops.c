// Tests for the f32 transformer ops (src/tensor/ops.h).
// 1. PyTorch oracle: every case's inputs (seeded random, awkward shapes) go to one file, one run of
//    tests/ref/ops_ref.py computes forward outputs and autograd gradients in float64, and each C result
//    is compared with max|c - ref| / max|ref| <= TOL (normwise relative error per tensor).
//    Gradients are checked as (buffer after - buffer before) so the += contract is tested too.
// 2. No oracle: central finite differences, rope identities (inverse, GGUF permutation), decode vs
//    prefill consistency, thread-split equivalence, and edge cases (ignored rows, masked rows).
#include "test.h"
#include "tensor/ops.h"
#include "tensor/attention_kernels.h"
#include "tensor/loss_kernels.h"
#include "tensor/activation_kernels.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include <errno.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#define TOL 1e-4      // oracle tolerance (normwise relative)
#define FD_TOL 1e-2   // finite-difference tolerance (normwise relative, float32 central differences)
// Gradient buffers start at random values of this size: nonzero, so "=" instead of "+=" fails, but
// small, so that (after - before) does not lose the tiny gradients of long attention rows to rounding.
#define G0 0.01f

// ---------------------------------------------------------------- random inputs
static uint64_t rng_s = 0x5eed1234abcdULL;
static uint64_t rng_next(void) {   // splitmix64
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static float frand(void) { return (float)((rng_next() >> 40) * (2.0 / 16777216.0) - 1.0); }   // [-1, 1)
static float *rnd(int64_t n, float scale, float offset) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = offset + scale * frand();
    return p;
}
static float *dup_f(const float *a, int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    memcpy(p, a, (size_t)n * sizeof(float));
    return p;
}

// ---------------------------------------------------------------- record files (see ops_ref.py)
enum { K_F32 = 0, K_I32 = 1, K_F64 = 2, K_STR = 3 };
static const char MAGIC[8] = {'S', 'L', 'O', 'P', 'S', '1', '\n', '\0'};

static void put(FILE *f, const char *cs, const char *field, int kind, int ndim, const int64_t *dims,
                const void *data) {
    char name[128];
    snprintf(name, sizeof name, "%s/%s", cs, field);
    uint32_t nl = (uint32_t)strlen(name), k = (uint32_t)kind, nd = (uint32_t)ndim;
    fwrite(&nl, 4, 1, f); fwrite(name, 1, nl, f); fwrite(&k, 4, 1, f); fwrite(&nd, 4, 1, f);
    fwrite(dims, 8, (size_t)ndim, f);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    fwrite(data, kind == K_STR ? 1 : kind == K_F64 ? 8 : 4, (size_t)n, f);
}
static void put_f(FILE *f, const char *cs, const char *field, const float *d, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    int64_t dims[3] = {d0, d1, d2};
    put(f, cs, field, K_F32, ndim, dims, d);
}
static void put_i(FILE *f, const char *cs, const char *field, const int32_t *d, int64_t n) {
    put(f, cs, field, K_I32, 1, &n, d);
}
static void put_sf(FILE *f, const char *cs, const char *field, float v) { put_f(f, cs, field, &v, 1, 1, 0, 0); }
static void put_si(FILE *f, const char *cs, const char *field, int32_t v) { put_i(f, cs, field, &v, 1); }
static void put_op(FILE *f, const char *cs, const char *op) {
    int64_t n = (int64_t)strlen(op);
    put(f, cs, "op", K_STR, 1, &n, op);
}

typedef struct { char name[128]; int kind; int64_t n; void *data; } rec;
static rec *recs;
static int n_recs;

static int load_records(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8)) { fclose(f); return -1; }
    uint32_t nl;
    while (fread(&nl, 4, 1, f) == 1) {
        rec r = {0};
        uint32_t kind, nd;
        if (nl >= sizeof r.name || fread(r.name, 1, nl, f) != nl || fread(&kind, 4, 1, f) != 1 ||
            fread(&nd, 4, 1, f) != 1 || nd > 8) break;
        int64_t dims[8];
        if (fread(dims, 8, nd, f) != nd) break;
        r.kind = (int)kind;
        r.n = 1;
        for (uint32_t i = 0; i < nd; i++) r.n *= dims[i];
        size_t es = kind == K_F64 ? 8 : kind == K_STR ? 1 : 4;
        r.data = malloc((size_t)r.n * es + 1);
        if (fread(r.data, es, (size_t)r.n, f) != (size_t)r.n) { free(r.data); break; }
        recs = realloc(recs, (size_t)(n_recs + 1) * sizeof *recs);
        recs[n_recs++] = r;
    }
    fclose(f);
    return 0;
}

static const rec *ref_get(const char *cs, const char *field, int kind, int64_t n) {
    char name[128];
    snprintf(name, sizeof name, "%s/%s", cs, field);
    for (int i = 0; i < n_recs; i++)
        if (!strcmp(recs[i].name, name)) {
            CHECK(recs[i].kind == kind && recs[i].n == n, "%s: kind %d n %lld, want kind %d n %lld", name,
                  recs[i].kind, (long long)recs[i].n, kind, (long long)n);
            return recs[i].kind == kind && recs[i].n == n ? &recs[i] : NULL;
        }
    CHECK(0, "reference has no %s", name);
    return NULL;
}

static double rel_err(const float *got, const float *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= num)) num = d;   // NaN-propagating max
        if (fabs(want[i]) > den) den = fabs(want[i]);
    }
    return den > 0 ? num / den : num;
}

static double worst_err;
static void check_arr(const char *cs, const char *field, const float *got, int64_t n) {
    const rec *r = ref_get(cs, field, K_F32, n);
    if (!r) return;
    double e = rel_err(got, r->data, n);
    if (e > worst_err || isnan(e)) worst_err = e;
    CHECK(e <= TOL, "%s/%s: relative error %.3g > %g", cs, field, e, TOL);
}
// Gradient buffers start at g0; the op must have added exactly the reference gradient.
static void check_grad(const char *cs, const char *field, const float *after, const float *g0, int64_t n) {
    float *d = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) d[i] = after[i] - g0[i];
    check_arr(cs, field, d, n);
    free(d);
}

// ---------------------------------------------------------------- cases
typedef struct { const char *name; int64_t T, C; float w_offset, eps; float *x, *w, *b, *dy; } norm_case;
typedef struct {
    const char *name; int64_t T; int H, D; rope_params p; int32_t *pos; float *x, *dy, *ff;
} rope_case;
typedef struct {
    const char *name; int64_t T, S; int Hq, Hkv, D; int64_t q_pos0; attn_params p; int32_t *doc;
    float *q, *k, *v, *dout;
} attn_case;
typedef struct { const char *name; const char *op; int64_t n; float *x, *up, *dy; } act_case;
typedef struct { const char *name; int64_t T, V; float grad_scale; float *logits; int32_t *targets; } ce_case;
typedef struct { const char *name; int64_t T, V, C; float scale; float *table, *dy; int32_t *ids; } emb_case;

static norm_case norms[3];
static rope_case ropes[5];
static attn_case attns[8];
static act_case acts[4];
static ce_case ces[1];
static emb_case embs[1];
static int n_norms, n_ropes, n_attns, n_acts, n_ces, n_embs;

static void add_norm(const char *name, int64_t T, int64_t C, float w_offset, float eps, int layer, float x_off) {
    norm_case c = {name, T, C, w_offset, eps, rnd(T * C, 2.0f, x_off), rnd(C, 0.5f, w_offset ? 0.0f : 1.0f),
                   layer ? rnd(C, 0.5f, 0) : NULL, rnd(T * C, 1.0f, 0)};
    norms[n_norms++] = c;
}
static void add_rope(const char *name, int64_t T, int H, int D, rope_params p, const int32_t *pos) {
    rope_case c = {name, T, H, D, p, malloc((size_t)T * 4), rnd(T * H * D, 1.0f, 0), rnd(T * H * D, 1.0f, 0), NULL};
    memcpy(c.pos, pos, (size_t)T * 4);
    ropes[n_ropes++] = c;
}
static void add_attn(const char *name, int64_t T, int64_t S, int Hq, int Hkv, int D, int64_t q_pos0,
                     attn_params p, const int32_t *doc, float qk_scale) {
    attn_case c = {name, T, S, Hq, Hkv, D, q_pos0, p, NULL, rnd(T * Hq * D, qk_scale, 0),
                   rnd(S * Hkv * D, qk_scale, 0), rnd(S * Hkv * D, 1.0f, 0), rnd(T * Hq * D, 1.0f, 0)};
    if (doc) {
        c.doc = malloc((size_t)T * 4);
        memcpy(c.doc, doc, (size_t)T * 4);
        c.p.doc_start = c.doc;
    }
    attns[n_attns++] = c;
}

static void make_cases(void) {
    add_norm("rms", 7, 48, 0.0f, 1e-6f, 0, 0.0f);
    add_norm("rms_gemma", 5, 50, 1.0f, 1e-6f, 0, 0.0f);
    add_norm("ln", 7, 53, 0.0f, 1e-5f, 1, 3.0f);   // offset rows test the two-pass variance

    int32_t p7[7] = {0, 1, 2, 3, 4, 5, 6};
    int32_t plong[7] = {0, 1, 5000, 32767, 100000, 7, 131071};
    rope_params neox_partial = {ROPE_NEOX, 8, 10000.0f, 1.0f, 0, 0, 0, 0};
    add_rope("rope_neox_partial", 7, 6, 16, neox_partial, p7);
    rope_params norm_l3 = {ROPE_NORM, 32, 500000.0f, 1.0f, 8.0f, 1.0f, 4.0f, 8192};
    add_rope("rope_norm_llama3_long", 7, 3, 32, norm_l3, plong);
    rope_params neox_lin = {ROPE_NEOX, 16, 1000000.0f, 0.25f, 0, 0, 0, 0};
    add_rope("rope_neox_linear_long", 7, 2, 16, neox_lin, plong);
    rope_params norm_partial = {ROPE_NORM, 10, 10000.0f, 1.0f, 0, 0, 0, 0};
    add_rope("rope_norm_partial", 7, 6, 16, norm_partial, p7);
    rope_params norm_ff = {ROPE_NORM, 16, 500000.0f, 1.0f, 0, 0, 0, 0};
    add_rope("rope_norm_freq_factors", 7, 2, 16, norm_ff, plong);
    ropes[n_ropes - 1].ff = rnd(8, 3.0f, 4.5f);   // divisors in [1.5, 7.5)

    int32_t docs[7] = {0, 0, 0, 3, 3, 3, 3};
    add_attn("attn_gqa", 7, 7, 6, 2, 16, 0, (attn_params){0.25f, 0, 0, NULL, 0}, NULL, 1.0f);
    add_attn("attn_window_cap_docs", 7, 7, 6, 2, 16, 0, (attn_params){0.25f, 3, 5.0f, NULL, 0}, docs, 2.0f);
    add_attn("attn_cache_mha", 3, 10, 4, 4, 12, 7, (attn_params){0.3f, 5, 0, NULL, 0}, NULL, 1.0f);
    add_attn("attn_mqa_d72", 5, 5, 3, 1, 72, 0, (attn_params){1.0f / sqrtf(72.0f), 0, 0, NULL, 0}, NULL, 1.5f);
    // Rows longer than the forward's score block (256) and the backward's dP buffer (4096).
    add_attn("attn_decode_600", 2, 600, 4, 2, 64, 598, (attn_params){0.125f, 0, 0, NULL, 0}, NULL, 1.5f);
    add_attn("attn_long_4500", 2, 4500, 2, 1, 8, 4498, (attn_params){0.35f, 0, 30.0f, NULL, 0}, NULL, 1.0f);
    // More q heads per kv head than the forward handles in one run (16).
    add_attn("attn_mqa_18", 3, 3, 18, 1, 8, 0, (attn_params){0.5f, 0, 0, NULL, 0}, NULL, 1.0f);

    acts[n_acts++] = (act_case){"gelu", "gelu", 1000, rnd(1000, 8.0f, 0), NULL, rnd(1000, 1.0f, 0)};
    acts[n_acts++] = (act_case){"swiglu", "swiglu", 777, rnd(777, 12.0f, 0), rnd(777, 1.0f, 0), rnd(777, 1.0f, 0)};
    acts[n_acts++] = (act_case){"geglu", "geglu", 777, rnd(777, 6.0f, 0), rnd(777, 1.0f, 0), rnd(777, 1.0f, 0)};
    acts[n_acts++] = (act_case){"softmax", "softmax", 333, rnd(333, 30.0f, 50.0f), NULL, NULL};
    acts[1].x[0] = -100.0f; acts[1].x[1] = 100.0f; acts[2].x[0] = -30.0f;

    ce_case ce = {"ce", 7, 1001, 0.2f, rnd(7 * 1001, 5.0f, 0), malloc(7 * 4)};
    int32_t tg[7] = {3, -100, 1000, 0, -1, 517, 3};
    memcpy(ce.targets, tg, sizeof tg);
    for (int i = 0; i < 1001; i++) ce.logits[5 * 1001 + i] += 100.0f;   // large common offset
    ces[n_ces++] = ce;

    emb_case e = {"emb", 7, 11, 48, sqrtf(48.0f), rnd(11 * 48, 1.0f, 0), rnd(7 * 48, 1.0f, 0), malloc(7 * 4)};
    int32_t ids[7] = {3, 0, 10, 3, 7, 3, 0};
    memcpy(e.ids, ids, sizeof ids);
    embs[n_embs++] = e;
}

static void write_cases(FILE *f) {
    for (int i = 0; i < n_norms; i++) {
        norm_case *c = &norms[i];
        put_op(f, c->name, c->b ? "layernorm" : "rmsnorm");
        put_f(f, c->name, "x", c->x, 2, c->T, c->C, 0);
        put_f(f, c->name, "w", c->w, 1, c->C, 0, 0);
        if (c->b) put_f(f, c->name, "b", c->b, 1, c->C, 0, 0);
        put_f(f, c->name, "dy", c->dy, 2, c->T, c->C, 0);
        put_sf(f, c->name, "w_offset", c->w_offset);
        put_sf(f, c->name, "eps", c->eps);
    }
    for (int i = 0; i < n_ropes; i++) {
        rope_case *c = &ropes[i];
        put_op(f, c->name, "rope");
        put_f(f, c->name, "x", c->x, 3, c->T, c->H, c->D);
        put_f(f, c->name, "dy", c->dy, 3, c->T, c->H, c->D);
        put_i(f, c->name, "pos", c->pos, c->T);
        put_si(f, c->name, "style", (int32_t)c->p.style);
        put_si(f, c->name, "n_rot", c->p.n_rot);
        put_sf(f, c->name, "base", c->p.base);
        put_sf(f, c->name, "freq_scale", c->p.freq_scale);
        put_sf(f, c->name, "l3_factor", c->p.l3_factor);
        put_sf(f, c->name, "l3_low_freq_factor", c->p.l3_low_freq_factor);
        put_sf(f, c->name, "l3_high_freq_factor", c->p.l3_high_freq_factor);
        put_si(f, c->name, "l3_orig_ctx", c->p.l3_orig_ctx);
        if (c->ff) put_f(f, c->name, "freq_factors", c->ff, 1, c->p.n_rot / 2, 0, 0);
    }
    for (int i = 0; i < n_attns; i++) {
        attn_case *c = &attns[i];
        put_op(f, c->name, "attention");
        put_f(f, c->name, "q", c->q, 3, c->T, c->Hq, c->D);
        put_f(f, c->name, "k", c->k, 3, c->S, c->Hkv, c->D);
        put_f(f, c->name, "v", c->v, 3, c->S, c->Hkv, c->D);
        put_f(f, c->name, "dout", c->dout, 3, c->T, c->Hq, c->D);
        put_si(f, c->name, "q_pos0", (int32_t)c->q_pos0);
        put_si(f, c->name, "window", c->p.window);
        put_sf(f, c->name, "scale", c->p.scale);
        put_sf(f, c->name, "softcap", c->p.softcap);
        if (c->doc) put_i(f, c->name, "doc_start", c->doc, c->T);
    }
    for (int i = 0; i < n_acts; i++) {
        act_case *c = &acts[i];
        put_op(f, c->name, c->op);
        put_f(f, c->name, c->up ? "gate" : "x", c->x, 1, c->n, 0, 0);
        if (c->up) put_f(f, c->name, "up", c->up, 1, c->n, 0, 0);
        if (c->dy) put_f(f, c->name, "dy", c->dy, 1, c->n, 0, 0);
    }
    for (int i = 0; i < n_ces; i++) {
        ce_case *c = &ces[i];
        put_op(f, c->name, "cross_entropy");
        put_f(f, c->name, "logits", c->logits, 2, c->T, c->V, 0);
        put_i(f, c->name, "targets", c->targets, c->T);
        put_sf(f, c->name, "grad_scale", c->grad_scale);
    }
    for (int i = 0; i < n_embs; i++) {
        emb_case *c = &embs[i];
        put_op(f, c->name, "embedding");
        put_f(f, c->name, "table", c->table, 2, c->V, c->C, 0);
        put_f(f, c->name, "dy", c->dy, 2, c->T, c->C, 0);
        put_i(f, c->name, "ids", c->ids, c->T);
        put_sf(f, c->name, "scale", c->scale);
    }
}

// ---------------------------------------------------------------- comparisons with the oracle
static void check_norms(void) {
    for (int i = 0; i < n_norms; i++) {
        norm_case *c = &norms[i];
        int64_t n = c->T * c->C;
        float *y = malloc((size_t)n * 4), *mean = malloc((size_t)c->T * 4), *rstd = malloc((size_t)c->T * 4);
        float *dx0 = rnd(n, G0, 0), *dw0 = rnd(c->C, G0, 0), *db0 = rnd(c->C, G0, 0);
        float *dx = dup_f(dx0, n), *dw = dup_f(dw0, c->C), *db = dup_f(db0, c->C);
        if (c->b) {
            layernorm_fwd(y, mean, rstd, c->x, c->w, c->b, c->T, c->C, c->eps);
            layernorm_bwd(dx, dw, db, c->dy, c->x, c->w, mean, rstd, c->T, c->C);
            check_arr(c->name, "mean", mean, c->T);
            check_grad(c->name, "db", db, db0, c->C);
        } else {
            rmsnorm_fwd(y, rstd, c->x, c->w, c->w_offset, c->T, c->C, c->eps);
            rmsnorm_bwd(dx, dw, c->dy, c->x, c->w, c->w_offset, rstd, c->T, c->C);
        }
        check_arr(c->name, "y", y, n);
        check_arr(c->name, "rstd", rstd, c->T);
        check_grad(c->name, "dx", dx, dx0, n);
        check_grad(c->name, "dw", dw, dw0, c->C);
        free(y); free(mean); free(rstd); free(dx0); free(dw0); free(db0); free(dx); free(dw); free(db);
    }
}

static void check_ropes(void) {
    for (int i = 0; i < n_ropes; i++) {
        rope_case *c = &ropes[i];
        int64_t n = c->T * c->H * c->D;
        float *y = dup_f(c->x, n), *dx = dup_f(c->dy, n);
        float inv[64];
        rope_inv_freq(&c->p, inv);
        if (c->ff)
            for (int j = 0; j < c->p.n_rot / 2; j++) inv[j] /= c->ff[j];
        check_arr(c->name, "inv_freq", inv, c->p.n_rot / 2);
        if (c->ff) {
            rope_fwd_factors(y, c->pos, c->T, c->H, c->D, &c->p, c->ff);
            rope_bwd_factors(dx, c->pos, c->T, c->H, c->D, &c->p, c->ff);
        } else {
            rope_fwd(y, c->pos, c->T, c->H, c->D, &c->p);
            rope_bwd(dx, c->pos, c->T, c->H, c->D, &c->p);   // in place: dx = R^T dy
        }
        check_arr(c->name, "y", y, n);
        check_arr(c->name, "dx", dx, n);
        // the inference path: tables once per step, then the rotation: rope_fwd_factors' bits
        int half = (c->p.n_rot <= 0 || c->p.n_rot > c->D ? c->D : c->p.n_rot) / 2;
        float *cs = malloc(sizeof(float) * (size_t)(c->T * half)), *sn = malloc(sizeof(float) * (size_t)(c->T * half));
        float *yt = dup_f(c->x, n);
        rope_table(c->pos, c->T, c->D, &c->p, c->ff, cs, sn);
        rope_fwd_table(yt, c->T, c->H, c->D, &c->p, cs, sn);
        CHECK(memcmp(yt, y, sizeof(float) * (size_t)n) == 0, "%s: rope_fwd_table differs from rope_fwd", c->name);
        free(cs); free(sn); free(yt);
        free(y); free(dx);
    }
}

static void check_attn(attn_case *c) {
    int64_t nq = c->T * c->Hq * c->D, nk = c->S * c->Hkv * c->D, na = (int64_t)c->Hq * c->T * c->S;
    float *out = malloc((size_t)nq * 4), *out2 = malloc((size_t)nq * 4), *att = malloc((size_t)na * 4);
    attention_fwd(out, att, c->q, c->k, c->v, c->T, c->S, c->Hq, c->Hkv, c->D, c->q_pos0, &c->p);
    check_arr(c->name, "out", out, nq);
    check_arr(c->name, "att", att, na);
    attention_fwd(out2, NULL, c->q, c->k, c->v, c->T, c->S, c->Hq, c->Hkv, c->D, c->q_pos0, &c->p);
    check_arr(c->name, "out", out2, nq);   // the online-softmax inference path
    float *dq0 = rnd(nq, G0, 0), *dk0 = rnd(nk, G0, 0), *dv0 = rnd(nk, G0, 0);
    float *dq = dup_f(dq0, nq), *dk = dup_f(dk0, nk), *dv = dup_f(dv0, nk);
    attention_bwd(dq, dk, dv, c->dout, att, c->q, c->k, c->v, c->T, c->S, c->Hq, c->Hkv, c->D, c->q_pos0, &c->p);
    check_grad(c->name, "dq", dq, dq0, nq);
    check_grad(c->name, "dk", dk, dk0, nk);
    check_grad(c->name, "dv", dv, dv0, nk);
    free(out); free(out2); free(att); free(dq0); free(dk0); free(dv0); free(dq); free(dk); free(dv);
}

// Every ISA level this CPU has runs the oracle comparison (the kernels differ per level).
static void check_attns(void) {
    isa_level keep = isa_active();
    for (int lvl = ISA_SCALAR; lvl <= (int)isa_detect(); lvl++) {
        isa_force((isa_level)lvl);
        for (int i = 0; i < n_attns; i++) check_attn(&attns[i]);
    }
    isa_force(keep);
}

// |x| element by element (f32, and f16 bit patterns: the sign bit cleared).
static float *abs_f(const float *a, int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = fabsf(a[i]);
    return p;
}
static uint16_t *abs_h(const uint16_t *a, int64_t n) {
    uint16_t *p = malloc((size_t)n * sizeof(uint16_t));
    for (int64_t i = 0; i < n; i++) p[i] = a[i] & 0x7FFF;
    return p;
}

// Largest |got - want| over the largest sum of absolute terms (absum: the same kernel run on |inputs|).
// Two summation orders of the same terms differ by a few float epsilons of that sum, however much the
// terms cancel; relative to the result itself they can differ by any amount when it is near zero.
static double cond_err(const float *got, const float *want, const float *absum, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= num)) num = d;   // NaN-propagating max
        if (absum[i] > den) den = absum[i];
    }
    return den > 0 ? num / den : num;
}

// Every head over whole cache rows (scores_rows / accum_rows, f32 and f16 rows): SIMD against the scalar
// twins on the shapes with an AVX-512 row path (Qwen3 16/8 x 128, Llama 3.2 1B 32/8 x 64, Llama 3.2 3B
// 24/8 x 128, Gemma 3 4/1 x 256 and 8/4 x 256, GPT-2 12/12 x 64, 64 heads sharing one kv head) and on
// shapes that go kv head by kv head (14/2 x 64, 6/3 x 20, 3/1 x 16), key counts with and without a
// remainder, padded rows; error against the sum of absolute terms below 1e-5.
static void test_attn_rows(void) {
    static const int S[][3] = {{16, 8, 128}, {32, 8, 64}, {24, 8, 128}, {4, 1, 256}, {8, 4, 256}, {12, 12, 64},
                               {64, 1, 32}, {14, 2, 64}, {6, 3, 20}, {3, 1, 16}};
    const attn_kernels *ref = attn_kernels_for(ISA_SCALAR);
    int ns[] = {1, 3, 4, 5, 16, 33};
    for (int lvl = ISA_AVX2; lvl <= (int)isa_detect(); lvl++) {
        const attn_kernels *kn = attn_kernels_for(lvl);
        double worst = 0;
        for (size_t c = 0; c < sizeof S / sizeof *S; c++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
                int Hq = S[c][0], Hkv = S[c][1], D = S[c][2], n = ns[b];
                int64_t ks = (int64_t)Hkv * D + (c % 2 ? 16 : 0), nk = n * ks;
                float *q = rnd(Hq * D, 1.0f, 0), *k = rnd(nk, 1.0f, 0), *pr = rnd(Hq * n, 1.0f, 0);
                float *o0 = rnd(Hq * D, 1.0f, 0), *qa = abs_f(q, Hq * D), *ka = abs_f(k, nk), *pa = abs_f(pr, Hq * n);
                uint16_t *kh = malloc(sizeof(uint16_t) * (size_t)nk);
                f32_to_f16_row_ref(k, kh, nk);
                uint16_t *kha = abs_h(kh, nk);
                float *s1 = malloc(sizeof(float) * Hq * n), *s2 = malloc(sizeof(float) * Hq * n);
                float *sa = malloc(sizeof(float) * Hq * n);
                for (int h16 = 0; h16 < 2; h16++) {
                    float *o1 = dup_f(o0, Hq * D), *o2 = dup_f(o0, Hq * D), *oa = abs_f(o0, Hq * D);
                    if (h16) {
                        ref->scores_rowsh(sa, qa, Hq, Hkv, kha, ks, n, D), ref->accum_rowsh(oa, pa, Hq, Hkv, kha, ks, n, D);
                        ref->scores_rowsh(s1, q, Hq, Hkv, kh, ks, n, D), kn->scores_rowsh(s2, q, Hq, Hkv, kh, ks, n, D);
                        ref->accum_rowsh(o1, pr, Hq, Hkv, kh, ks, n, D), kn->accum_rowsh(o2, pr, Hq, Hkv, kh, ks, n, D);
                    } else {
                        ref->scores_rows(sa, qa, Hq, Hkv, ka, ks, n, D), ref->accum_rows(oa, pa, Hq, Hkv, ka, ks, n, D);
                        ref->scores_rows(s1, q, Hq, Hkv, k, ks, n, D), kn->scores_rows(s2, q, Hq, Hkv, k, ks, n, D);
                        ref->accum_rows(o1, pr, Hq, Hkv, k, ks, n, D), kn->accum_rows(o2, pr, Hq, Hkv, k, ks, n, D);
                    }
                    double e = fmax(cond_err(s2, s1, sa, Hq * n), cond_err(o2, o1, oa, Hq * D));
                    if (!(e < 1e-5)) CHECK(0, "attention rows isa %d, %d/%d heads x %d, %d keys, %s: error %.3g", lvl, Hq, Hkv,
                                           D, n, h16 ? "f16" : "f32", e);
                    worst = fmax(worst, e);
                    free(o1); free(o2); free(oa);
                }
                // the twin itself: head h's scores are those of the single-head kernel on kv head h / G
                int G = Hq / Hkv, h = Hq - 1;
                ref->scores(sa, q + (int64_t)h * D, k + (int64_t)(h / G) * D, ks, n, D);
                ref->scores_rows(s1, q, Hq, Hkv, k, ks, n, D);
                CHECK(!memcmp(sa, s1 + (int64_t)h * n, sizeof(float) * n), "scores_rows twin: head %d of %d/%d", h, Hq, Hkv);
                free(q); free(k); free(pr); free(o0); free(qa); free(ka); free(pa); free(kh); free(kha);
                free(s1); free(s2); free(sa);
            }
        CHECK(worst < 1e-5, "attention row kernels isa %d vs scalar: worst error %.3g", lvl, worst);
    }
    if (isa_detect() < ISA_AVX512) SKIP("attention row kernels: this CPU lacks AVX-512 (or AVX2); those twins untested");
}

// The q8_0-row kernels (a q8_0 KV cache): at AVX2 and AVX-512 against their scalar twins (error against
// the sums of absolute terms below 1e-5, as the f32 / f16 ones), and the twins against the f32 twins
// over the same values widened (d x q is exact in f32, and the twins sum in the f32 twins' order: bit
// for bit: single rows, G heads and whole rows). Single rows (D 32..256, strides padded by a block), G
// heads of one kv head (G 1, 2, 3, 4, 7, 8, 64; the AVX-512 G paths' column tails at D 96 / 160), and
// whole rows of every head on the row test's shapes with D a multiple of 32 (14/2 x 64: kv head by kv
// head). The twins are checked at every level the loop runs (the scalar one included).
static uint8_t *abs_q8(const uint8_t *a, int64_t n) {   // |x| of every element (d >= 0, q in [-127, 127])
    size_t bytes = (size_t)n / 32 * 34;
    uint8_t *r = malloc(bytes);
    memcpy(r, a, bytes);
    for (size_t b = 0; b < bytes; b += 34)
        for (int j = 0; j < 32; j++) r[b + 2 + j] = (uint8_t)abs((int8_t)r[b + 2 + j]);
    return r;
}
static void test_attn_q8_kernels(void) {
    const attn_kernels *ref = attn_kernels_for(ISA_SCALAR);
    static const int S[][3] = {{16, 8, 128}, {32, 8, 64}, {24, 8, 128}, {4, 1, 256}, {8, 4, 256}, {12, 12, 64},
                               {64, 1, 32}, {14, 2, 64}, {2, 1, 32}, {6, 3, 96}, {8, 1, 64}, {4, 2, 160},
                               {8, 2, 96}};
    int ns[] = {1, 3, 4, 5, 16, 33, 130};
    int exact = 1;
    for (int lvl = ISA_SCALAR; lvl <= (int)isa_detect(); lvl++) {
        const attn_kernels *kn = attn_kernels_for(lvl);
        double worst = 0;
        for (size_t c = 0; c < sizeof S / sizeof *S; c++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
                int Hq = S[c][0], Hkv = S[c][1], D = S[c][2], n = ns[b], G = Hq / Hkv;
                int64_t ks = (int64_t)Hkv * D + (c % 2 ? 32 : 0), nk = n * ks;
                float *q = rnd(Hq * D, 1.0f, 0), *k = rnd(nk, 1.0f, 0), *pr = rnd(Hq * n, 1.0f, 0);
                float *o0 = rnd(Hq * D, 1.0f, 0), *qa = abs_f(q, Hq * D), *pa = abs_f(pr, Hq * n);
                uint8_t *kq = malloc((size_t)nk / 32 * 34);
                quantize_row(DT_Q8_0, k, kq, nk);
                dequantize_row(DT_Q8_0, kq, k, nk);
                uint8_t *kqa = abs_q8(kq, nk);
                float *s1 = malloc(sizeof(float) * Hq * n), *s2 = malloc(sizeof(float) * Hq * n), *sa = malloc(sizeof(float) * Hq * n);
                float *o1 = dup_f(o0, Hq * D), *o2 = dup_f(o0, Hq * D), *oa = abs_f(o0, Hq * D);
                // whole rows, every head
                ref->scores_rowsq8(sa, qa, Hq, Hkv, kqa, ks, n, D), ref->accum_rowsq8(oa, pa, Hq, Hkv, kqa, ks, n, D);
                ref->scores_rowsq8(s1, q, Hq, Hkv, kq, ks, n, D), kn->scores_rowsq8(s2, q, Hq, Hkv, kq, ks, n, D);
                ref->accum_rowsq8(o1, pr, Hq, Hkv, kq, ks, n, D), kn->accum_rowsq8(o2, pr, Hq, Hkv, kq, ks, n, D);
                double e = fmax(cond_err(s2, s1, sa, Hq * n), cond_err(o2, o1, oa, Hq * D));
                if (!(e < 1e-5)) CHECK(0, "q8_0 rows isa %d, %d/%d heads x %d, %d keys: error %.3g", lvl, Hq, Hkv, D, n, e);
                worst = fmax(worst, e);
                ref->scores_rows(s2, q, Hq, Hkv, k, ks, n, D);
                memcpy(o2, o0, sizeof(float) * Hq * D);
                ref->accum_rows(o2, pr, Hq, Hkv, k, ks, n, D);
                exact &= !memcmp(s1, s2, sizeof(float) * Hq * n) && !memcmp(o1, o2, sizeof(float) * Hq * D);
                // the G heads of kv head 0, then one head: rows D apart inside the cache rows
                memcpy(o1, o0, sizeof(float) * G * D); memcpy(o2, o0, sizeof(float) * G * D);
                for (int i = 0; i < G * D; i++) oa[i] = fabsf(o0[i]);
                ref->scores_gq8(sa, qa, G, kqa, ks, n, D), ref->accum_gq8(oa, pa, G, kqa, ks, n, D);
                ref->scores_gq8(s1, q, G, kq, ks, n, D), kn->scores_gq8(s2, q, G, kq, ks, n, D);
                ref->accum_gq8(o1, pr, G, kq, ks, n, D), kn->accum_gq8(o2, pr, G, kq, ks, n, D);
                e = fmax(cond_err(s2, s1, sa, G * n), cond_err(o2, o1, oa, G * D));
                {   // the G-head twins against the f32 ones over the widened values, bit for bit
                    float *t1 = malloc(sizeof(float) * G * n), *u1 = dup_f(o0, G * D);
                    ref->scores_g(t1, q, G, k, ks, n, D);
                    ref->accum_g(u1, pr, G, k, ks, n, D);
                    exact &= !memcmp(t1, s1, sizeof(float) * G * n) && !memcmp(u1, o1, sizeof(float) * G * D);
                    free(t1); free(u1);
                }
                ref->scores_q8(sa, qa, kqa, ks, n, D);
                ref->scores_q8(s1, q, kq, ks, n, D), kn->scores_q8(s2, q, kq, ks, n, D);
                e = fmax(e, cond_err(s2, s1, sa, n));
                ref->scores(sa, q, k, ks, n, D);   // (sa is free again: the single twin against the f32 one)
                exact &= !memcmp(sa, s1, sizeof(float) * n);
                memcpy(o1, o0, sizeof(float) * D); memcpy(o2, o0, sizeof(float) * D);
                for (int i = 0; i < D; i++) oa[i] = fabsf(o0[i]);
                ref->accum_q8(oa, pa, kqa, ks, n, D);
                ref->accum_q8(o1, pr, kq, ks, n, D), kn->accum_q8(o2, pr, kq, ks, n, D);
                e = fmax(e, cond_err(o2, o1, oa, D));
                if (!(e < 1e-5)) CHECK(0, "q8_0 single / %d-head kernels isa %d, D %d, %d keys: error %.3g", G, lvl, D, n, e);
                worst = fmax(worst, e);
                free(q); free(k); free(pr); free(o0); free(qa); free(pa); free(kq); free(kqa);
                free(s1); free(s2); free(sa); free(o1); free(o2); free(oa);
            }
        CHECK(worst < 1e-5, "q8_0 attention kernels isa %d vs scalar: worst error %.3g", lvl, worst);
    }
    CHECK(exact, "q8_0 twins differ from the f32 twins over the widened values");
    if (isa_detect() < ISA_AVX512) SKIP("q8_0 attention kernels: this CPU lacks AVX-512 (or AVX2); those kernels untested");
}

// SIMD kernels against their scalar twins on odd head sizes, key counts and strides; errors measured
// against the sums of absolute terms (cond_err), below 1e-5 (a head of 256 terms in float: ~256 eps at
// worst, ~16 eps typical).
static void test_attn_kernels(void) {
    const attn_kernels *ref = attn_kernels_for(ISA_SCALAR);
    int Ds[] = {1, 5, 8, 16, 17, 64, 72, 128, 200, 256}, ns[] = {1, 3, 4, 7, 16, 35, 130};
    for (int lvl = ISA_AVX2; lvl <= (int)isa_detect(); lvl++) {
        const attn_kernels *kn = attn_kernels_for(lvl);
        double worst = 0;
        for (size_t a = 0; a < sizeof Ds / sizeof *Ds; a++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
                int D = Ds[a], n = ns[b];
                int64_t ks = D + 3;
                float *q = rnd(D, 1.0f, 0), *k = rnd(n * ks, 1.0f, 0), *pr = rnd(n, 1.0f, 0);
                float *s1 = malloc((size_t)n * 4), *s2 = malloc((size_t)n * 4);
                float *o1 = rnd(D, 1.0f, 0), *o2 = dup_f(o1, D);
                // the condition of each sum: the scalar kernels over absolute values
                float *qa = abs_f(q, D), *ka = abs_f(k, n * ks), *pa = abs_f(pr, n), *sa = malloc((size_t)n * 4);
                float *oa = abs_f(o1, D);
                ref->scores(sa, qa, ka, ks, n, D);
                ref->accum(oa, pa, ka, ks, n, D);
                ref->scores(s1, q, k, ks, n, D);
                kn->scores(s2, q, k, ks, n, D);
                ref->accum(o1, pr, k, ks, n, D);
                kn->accum(o2, pr, k, ks, n, D);
                worst = fmax(worst, fmax(cond_err(s2, s1, sa, n), cond_err(o2, o1, oa, D)));
                // f16 rows (an f16 KV cache): SIMD vs scalar twin, and the twin vs the f32 kernels over
                // the same values widened (exact: every f16 is an f32)
                uint16_t *kh = malloc(sizeof(uint16_t) * (size_t)(n * ks));
                float *kw = malloc(sizeof(float) * (size_t)(n * ks));
                f32_to_f16_row_ref(k, kh, n * ks);
                for (int64_t i = 0; i < n * ks; i++) kw[i] = f16_to_f32(kh[i]);
                uint16_t *kha = abs_h(kh, n * ks);
                ref->scores_h(sa, qa, kha, ks, n, D);
                ref->scores_h(s1, q, kh, ks, n, D);
                kn->scores_h(s2, q, kh, ks, n, D);
                worst = fmax(worst, cond_err(s2, s1, sa, n));
                ref->scores(s2, q, kw, ks, n, D);
                worst = fmax(worst, cond_err(s2, s1, sa, n));
                for (int d = 0; d < D; d++) { o2[d] = o1[d]; oa[d] = fabsf(o1[d]); }
                ref->accum_h(oa, pa, kha, ks, n, D);
                ref->accum_h(o1, pr, kh, ks, n, D);
                kn->accum_h(o2, pr, kh, ks, n, D);
                worst = fmax(worst, cond_err(o2, o1, oa, D));
                // G query heads of one kv head at once (G = 2, 4, 8 have their own AVX-512 paths; 3 goes
                // head by head), f32 and f16 rows, against the scalar twins
                for (int G = 2; G <= 8; G = G == 4 ? 8 : G + 1) {
                    float *qg = rnd(G * D, 1.0f, 0), *pg = rnd(G * n, 1.0f, 0), *g1 = malloc(sizeof(float) * G * n);
                    float *g2 = malloc(sizeof(float) * G * n), *og1 = rnd(G * D, 1.0f, 0);
                    float *qga = abs_f(qg, G * D), *pga = abs_f(pg, G * n), *ga = malloc(sizeof(float) * G * n);
                    for (int h16 = 0; h16 < 2; h16++) {   // f32 rows, then f16 rows
                        float *oa = dup_f(og1, G * D), *ob = dup_f(og1, G * D), *oc = abs_f(og1, G * D);
                        if (h16) {
                            ref->scores_gh(ga, qga, G, kha, ks, n, D), ref->accum_gh(oc, pga, G, kha, ks, n, D);
                            ref->scores_gh(g1, qg, G, kh, ks, n, D), kn->scores_gh(g2, qg, G, kh, ks, n, D);
                            ref->accum_gh(oa, pg, G, kh, ks, n, D), kn->accum_gh(ob, pg, G, kh, ks, n, D);
                        } else {
                            ref->scores_g(ga, qga, G, ka, ks, n, D), ref->accum_g(oc, pga, G, ka, ks, n, D);
                            ref->scores_g(g1, qg, G, k, ks, n, D), kn->scores_g(g2, qg, G, k, ks, n, D);
                            ref->accum_g(oa, pg, G, k, ks, n, D), kn->accum_g(ob, pg, G, k, ks, n, D);
                        }
                        worst = fmax(worst, fmax(cond_err(g2, g1, ga, G * n), cond_err(ob, oa, oc, G * D)));
                        free(oa); free(ob); free(oc);
                    }
                    free(qg); free(pg); free(g1); free(g2); free(og1); free(qga); free(pga); free(ga);
                }
                // scale and max: the scaled values bit for bit, the max exactly
                float *x1 = rnd(n, 5.0f, 0), *x2 = dup_f(x1, n);
                float m1 = ref->scale_max(x1, n, 0.37f), m2 = kn->scale_max(x2, n, 0.37f);
                CHECK(m1 == m2 && !memcmp(x1, x2, sizeof(float) * n), "scale_max isa %d, n %d: %g vs %g", lvl, n, m2, m1);
                free(x1); free(x2);
                free(kh); free(kw); free(kha);
                free(q); free(k); free(pr); free(s1); free(s2); free(o1); free(o2);
                free(qa); free(ka); free(pa); free(sa); free(oa);
            }
        CHECK(worst < 1e-5, "attention kernels isa %d vs scalar: relative error %.3g", lvl, worst);
        // exp of the shifted scores: the polynomial against libm within 1e-6 relative per element and in
        // the sum; below -87 both give exactly 0 (no denormal weights)
        for (int n = 1; n <= 70; n += 23) {
            float *x = rnd(n, 60.0f, 0), *e1, *e2;
            for (int i = 0; i < n; i++) x[i] = 0.25f - fabsf(x[i]);   // scores at or below their max
            x[0] = -200.0f;                       // far below: 0
            if (n > 1) x[1] = -86.5f;             // just above the cut (-87): a small normal number
            if (n > 2) x[2] = 0.25f;              // the max itself: 1
            e1 = dup_f(x, n); e2 = dup_f(x, n);
            double s1 = ref->expsum(e1, n, 0.25f), s2 = kn->expsum(e2, n, 0.25f);
            int ok = e1[0] == 0.0f && e2[0] == 0.0f && fabs(s2 - s1) <= 1e-6 * fabs(s1) + 1e-30;
            for (int i = 0; i < n; i++) ok &= fabs((double)e2[i] - e1[i]) <= 1e-6 * fabs(e1[i]) + 1e-44 && (e2[i] == 0 || e2[i] >= 1e-38f);
            CHECK(ok, "attention expsum isa %d n=%d: differs from libm expf (sum %.9g vs %.9g)", lvl, n, s2, s1);
            free(x); free(e1); free(e2);
        }
    }
    if (isa_detect() < ISA_AVX512) SKIP("attention kernels: this CPU lacks AVX-512 (or AVX2); those twins untested");
}

// The SIMD cross-entropy rows (polynomial exp, double sums) against the libm reference: loss and
// dlogits within 2e-6 relative (normwise) over vocabulary sizes around the vector widths, a real one,
// a wide logit range (entries far below the max underflow to 0) and a constant row.
static void test_ce_kernels(void) {
    int64_t Vs[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 1001, 32000};
    float scales[] = {0.1f, 5.0f, 60.0f};
    for (int lvl = ISA_AVX2; lvl <= (int)isa_detect(); lvl++) {
        double (*kn)(float *, const float *, int64_t, int32_t, float) = lvl == ISA_AVX2 ? ce_row_avx2 : ce_row_avx512;
        double worst_l = 0, worst_g = 0;
        for (size_t a = 0; a < sizeof Vs / sizeof *Vs; a++)
            for (size_t b = 0; b < sizeof scales / sizeof *scales; b++) {
                int64_t V = Vs[a];
                float *z = rnd(V, scales[b], 0), *d1 = malloc((size_t)V * 4), *d2 = malloc((size_t)V * 4);
                if (b == 0 && V > 3) for (int64_t i = 0; i < V; i++) z[i] = 1.5f;   // constant row
                int32_t y = (int32_t)(rng_next() % (uint64_t)V);
                double l1 = ce_row_ref(d1, z, V, y, 0.25f), l2 = kn(d2, z, V, y, 0.25f);
                double l3 = kn(NULL, z, V, y, 0.25f);
                float *zi = dup_f(z, V);   // in place: dlogits overwrite the logits
                double l4 = kn(zi, zi, V, y, 0.25f);
                worst_l = fmax(worst_l, fmax(fmax(fabs(l2 - l1), fabs(l3 - l1)), fabs(l4 - l1)) / fmax(fabs(l1), 1e-3));
                worst_g = fmax(worst_g, fmax(rel_err(d2, d1, V), rel_err(zi, d1, V)));
                free(zi);
                free(z); free(d1); free(d2);
            }
        CHECK(worst_l < 2e-6, "cross-entropy kernel isa %d vs scalar: loss relative error %.3g", lvl, worst_l);
        CHECK(worst_g < 2e-6, "cross-entropy kernel isa %d vs scalar: dlogits relative error %.3g", lvl, worst_g);
    }
    int prev = loss_use_simd(0);
    float z[5] = {1, 2, 3, 4, 5}, d[5];
    int32_t tg = 2;
    double l = cross_entropy_fwd_bwd(d, z, &tg, 1, 5, 1.0f, NULL);
    CHECK(fabs(l - 2.4519143959375933) < 1e-6, "cross-entropy reference: loss %.9f (want 2.451914396)", l);
    loss_use_simd(prev);
    if (isa_detect() < ISA_AVX512) SKIP("cross-entropy kernels: this CPU lacks AVX-512 (or AVX2); those twins untested");
}

// SIMD SwiGLU / GELU / GeGLU (polynomial-exp sigmoids) against the scalar twins: forward and accumulated
// backward within 1e-6 relative (normwise), lengths around the vector widths, inputs up to +-90
// (saturated sigmoids), GeGLU's output over its up input in place as the decode writes it.
static double act_pair_err(const act_kernels *ref, const act_kernels *kn, int64_t n, float scale) {
    float *g = rnd(n, scale, 0), *u = rnd(n, 1.0f, 0), *d = rnd(n, 1.0f, 0);
    float *o1 = malloc((size_t)n * 4), *o2 = malloc((size_t)n * 4), *o3 = malloc((size_t)n * 4);
    float *dg1 = rnd(n, 0.1f, 0), *dg2 = dup_f(dg1, n), *du1 = rnd(n, 0.1f, 0), *du2 = dup_f(du1, n);
    double e = 0;
    ref->swiglu_fwd(o1, g, u, n);
    kn->swiglu_fwd(o2, g, u, n);
    ref->swiglu_bwd(dg1, du1, d, g, u, n);
    kn->swiglu_bwd(dg2, du2, d, g, u, n);
    e = fmax(e, fmax(rel_err(o2, o1, n), fmax(rel_err(dg2, dg1, n), rel_err(du2, du1, n))));
    ref->gelu_fwd(o1, g, n);
    kn->gelu_fwd(o2, g, n);
    ref->gelu_bwd(dg1, d, g, n);
    kn->gelu_bwd(dg2, d, g, n);
    e = fmax(e, fmax(rel_err(o2, o1, n), rel_err(dg2, dg1, n)));
    ref->geglu_fwd(o1, g, u, n);
    memcpy(o3, u, (size_t)n * 4);
    kn->geglu_fwd(o3, g, o3, n);   // in place over up
    ref->geglu_bwd(dg1, du1, d, g, u, n);
    kn->geglu_bwd(dg2, du2, d, g, u, n);
    e = fmax(e, fmax(rel_err(o3, o1, n), fmax(rel_err(dg2, dg1, n), rel_err(du2, du1, n))));
    free(g); free(u); free(d); free(o1); free(o2); free(o3); free(dg1); free(dg2); free(du1); free(du2);
    return e;
}

static void test_act_kernels(void) {
    const act_kernels *ref = act_kernels_for(ISA_SCALAR);
    int64_t ns[] = {1, 7, 8, 9, 16, 17, 33, 1000};
    float scales[] = {1.0f, 8.0f, 90.0f};
    for (int lvl = ISA_AVX2; lvl <= (int)isa_detect(); lvl++) {
        double worst = 0;
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof scales / sizeof *scales; b++)
                worst = fmax(worst, act_pair_err(ref, act_kernels_for(lvl), ns[a], scales[b]));
        CHECK(worst < 1e-6, "activation kernels isa %d vs scalar: relative error %.3g", lvl, worst);
    }
    // the scalar GELU's sigmoid form against tanh in double: 0.5 x (1 + tanh u)
    double werr = 0;
    for (int i = -4000; i <= 4000; i++) {
        float x = (float)i * 0.0025f, y;
        ref->gelu_fwd(&y, &x, 1);
        double u = 0.7978845608028654 * ((double)x + 0.044715 * (double)x * x * x);
        double want = 0.5 * x * (1.0 + tanh(u));
        werr = fmax(werr, fabs(y - want) / fmax(fabs(want), 1e-3));
    }
    CHECK(werr < 2e-6, "scalar gelu vs tanh form in double on [-10, 10]: %.3g", werr);
    if (isa_detect() < ISA_AVX512) SKIP("activation kernels: this CPU lacks AVX-512 (or AVX2); those twins untested");
}

static void check_acts(void) {
    for (int i = 0; i < n_acts; i++) {
        act_case *c = &acts[i];
        float *y = malloc((size_t)c->n * 4);
        float *d10 = rnd(c->n, G0, 0), *d20 = rnd(c->n, G0, 0);
        float *d1 = dup_f(d10, c->n), *d2 = dup_f(d20, c->n);
        if (!strcmp(c->op, "gelu")) {
            gelu_fwd(y, c->x, c->n);
            gelu_bwd(d1, c->dy, c->x, c->n);
            check_grad(c->name, "dx", d1, d10, c->n);
        } else if (!strcmp(c->op, "softmax")) {
            memcpy(y, c->x, (size_t)c->n * 4);
            softmax_inplace(y, c->n);
        } else {
            int sw = !strcmp(c->op, "swiglu");
            (sw ? swiglu_fwd : geglu_fwd)(y, c->x, c->up, c->n);
            (sw ? swiglu_bwd : geglu_bwd)(d1, d2, c->dy, c->x, c->up, c->n);
            check_grad(c->name, "dgate", d1, d10, c->n);
            check_grad(c->name, "dup", d2, d20, c->n);
        }
        check_arr(c->name, "y", y, c->n);
        free(y); free(d10); free(d20); free(d1); free(d2);
    }
}

static void check_ces(void) {
    for (int i = 0; i < n_ces; i++) {
        ce_case *c = &ces[i];
        float *dl = rnd(c->T * c->V, 1.0f, 0);   // garbage: the op overwrites it
        int64_t cnt = -1, cnt2 = -1;
        double loss = cross_entropy_fwd_bwd(dl, c->logits, c->targets, c->T, c->V, c->grad_scale, &cnt);
        double loss2 = cross_entropy_fwd_bwd(NULL, c->logits, c->targets, c->T, c->V, c->grad_scale, &cnt2);
        const rec *rl = ref_get(c->name, "loss", K_F64, 1), *rn = ref_get(c->name, "n_counted", K_I32, 1);
        if (rl) CHECK(fabs(loss - *(double *)rl->data) <= TOL * fabs(*(double *)rl->data), "ce loss %.9g vs %.9g",
                      loss, *(double *)rl->data);
        if (rn) CHECK(cnt == *(int32_t *)rn->data, "n_counted %lld vs %d", (long long)cnt, *(int32_t *)rn->data);
        CHECK(loss2 == loss && cnt2 == cnt, "loss without dlogits differs");
        check_arr(c->name, "dlogits", dl, c->T * c->V);
        free(dl);
    }
}

static void check_embs(void) {
    for (int i = 0; i < n_embs; i++) {
        emb_case *c = &embs[i];
        float *y = malloc((size_t)(c->T * c->C) * 4), *dt0 = rnd(c->V * c->C, G0, 0), *dt = dup_f(dt0, c->V * c->C);
        embedding_fwd(y, c->table, c->ids, c->T, c->C, c->scale);
        embedding_bwd(dt, c->dy, c->ids, c->T, c->C, c->scale);
        check_arr(c->name, "y", y, c->T * c->C);
        check_grad(c->name, "dtable", dt, dt0, c->V * c->C);
        free(y); free(dt0); free(dt);
    }
}

static void free_cases(void) {
    for (int i = 0; i < n_norms; i++) { free(norms[i].x); free(norms[i].w); free(norms[i].b); free(norms[i].dy); }
    for (int i = 0; i < n_ropes; i++) { free(ropes[i].pos); free(ropes[i].x); free(ropes[i].dy); free(ropes[i].ff); }
    for (int i = 0; i < n_attns; i++) {
        attn_case *c = &attns[i];
        free(c->doc); free(c->q); free(c->k); free(c->v); free(c->dout);
    }
    for (int i = 0; i < n_acts; i++) { free(acts[i].x); free(acts[i].up); free(acts[i].dy); }
    for (int i = 0; i < n_ces; i++) { free(ces[i].logits); free(ces[i].targets); }
    for (int i = 0; i < n_embs; i++) { free(embs[i].table); free(embs[i].dy); free(embs[i].ids); }
    for (int i = 0; i < n_recs; i++) free(recs[i].data);
    free(recs);
}

// Runs the oracle once for every case; returns 0 on success, 1 if it must be skipped, -1 on failure.
static int run_oracle(void) {
    const char *py = getenv("SLLM_PYTHON");
    if (!py) py = "/usr/bin/python3";
    const char *script = "tests/ref/ops_ref.py";
    if (access(py, X_OK) != 0) { SKIP("oracle: %s not found (set SLLM_PYTHON)", py); return 1; }
    if (access(script, R_OK) != 0) { SKIP("oracle: %s not found (run from the repository root)", script); return 1; }
    char dir[] = "/tmp/sllm_ops_XXXXXX", in[64], out[64];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp: %s", strerror(errno)); return -1; }
    snprintf(in, sizeof in, "%s/in.bin", dir);
    snprintf(out, sizeof out, "%s/out.bin", dir);
    FILE *f = fopen(in, "wb");
    if (!f) { CHECK(0, "%s: %s", in, strerror(errno)); rmdir(dir); return -1; }
    fwrite(MAGIC, 1, 8, f);
    write_cases(f);
    int ok = fclose(f) == 0;
    CHECK(ok, "writing %s", in);
    int rc = -1;
    pid_t pid = fork();
    if (pid == 0) {
        execl(py, py, script, "run", in, out, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st)) {
        int ec = WEXITSTATUS(st);
        if (ec == 0) {
            rc = load_records(out);
            CHECK(rc == 0, "cannot read oracle output %s", out);
        } else if (ec == 3) {
            SKIP("oracle: torch is not importable by %s", py);
            rc = 1;
        } else {
            CHECK(0, "oracle %s %s exited with %d", py, script, ec);
        }
    } else {
        CHECK(0, "could not run %s", py);
    }
    unlink(in); unlink(out); rmdir(dir);
    return rc;
}

// ---------------------------------------------------------------- finite differences (no oracle)
// L = sum(f(x) * dy) evaluated in double; grad estimated by central differences of step h.
typedef double (*loss_fn)(void *ctx);
static void fd_check(const char *what, loss_fn L, void *ctx, float *param, const float *grad, int64_t n) {
    const float h = 1e-2f;
    float *est = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        float keep = param[i];
        param[i] = keep + h; double lp = L(ctx);
        param[i] = keep - h; double lm = L(ctx);
        param[i] = keep;
        est[i] = (float)((lp - lm) / (2.0 * h));
    }
    double e = rel_err(grad, est, n);
    CHECK(e <= FD_TOL, "finite differences %s: relative error %.3g > %g", what, e, FD_TOL);
    free(est);
}
static double dot_d(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef struct { norm_case c; float *y; } fd_norm;
static double fd_norm_loss(void *ctx) {
    fd_norm *f = ctx;
    norm_case *c = &f->c;
    if (c->b) layernorm_fwd(f->y, NULL, NULL, c->x, c->w, c->b, c->T, c->C, c->eps);
    else rmsnorm_fwd(f->y, NULL, c->x, c->w, c->w_offset, c->T, c->C, c->eps);
    return dot_d(f->y, c->dy, c->T * c->C);
}
typedef struct { attn_case c; float *out; } fd_attn;
static double fd_attn_loss(void *ctx) {
    fd_attn *f = ctx;
    attn_case *c = &f->c;
    attention_fwd(f->out, NULL, c->q, c->k, c->v, c->T, c->S, c->Hq, c->Hkv, c->D, c->q_pos0, &c->p);
    return dot_d(f->out, c->dout, c->T * c->Hq * c->D);
}
typedef struct { ce_case c; } fd_ce;
static double fd_ce_loss(void *ctx) {
    fd_ce *f = ctx;
    return f->c.grad_scale * cross_entropy_fwd_bwd(NULL, f->c.logits, f->c.targets, f->c.T, f->c.V, 1.0f, NULL);
}

static void test_finite_differences(void) {
    for (int layer = 0; layer < 2; layer++) {
        fd_norm f = {{"fd", 4, 21, layer ? 0.0f : 1.0f, 1e-5f, rnd(84, 2.0f, 0.5f), rnd(21, 0.5f, 0.3f),
                      layer ? rnd(21, 0.5f, 0) : NULL, rnd(84, 1.0f, 0)}, malloc(84 * 4)};
        norm_case *c = &f.c;
        float mean[4], rstd[4], *dx = calloc(84, 4), *dw = calloc(21, 4), *db = calloc(21, 4);
        if (layer) {
            layernorm_fwd(f.y, mean, rstd, c->x, c->w, c->b, c->T, c->C, c->eps);
            layernorm_bwd(dx, dw, db, c->dy, c->x, c->w, mean, rstd, c->T, c->C);
            fd_check("layernorm db", fd_norm_loss, &f, c->b, db, 21);
        } else {
            rmsnorm_fwd(f.y, rstd, c->x, c->w, c->w_offset, c->T, c->C, c->eps);
            rmsnorm_bwd(dx, dw, c->dy, c->x, c->w, c->w_offset, rstd, c->T, c->C);
        }
        fd_check(layer ? "layernorm dx" : "rmsnorm dx", fd_norm_loss, &f, c->x, dx, 84);
        fd_check(layer ? "layernorm dw" : "rmsnorm dw", fd_norm_loss, &f, c->w, dw, 21);
        free(c->x); free(c->w); free(c->b); free(c->dy); free(f.y); free(dx); free(dw); free(db);
    }
    {
        int32_t doc[5] = {0, 0, 2, 2, 2};
        fd_attn f = {{"fd", 5, 5, 4, 2, 8, 0, {0.4f, 2, 3.0f, doc, 0}, NULL, rnd(160, 1.5f, 0), rnd(80, 1.5f, 0),
                      rnd(80, 1.0f, 0), rnd(160, 1.0f, 0)}, malloc(160 * 4)};
        attn_case *c = &f.c;
        float att[4 * 5 * 5], *dq = calloc(160, 4), *dk = calloc(80, 4), *dv = calloc(80, 4);
        attention_fwd(f.out, att, c->q, c->k, c->v, c->T, c->S, c->Hq, c->Hkv, c->D, 0, &c->p);
        attention_bwd(dq, dk, dv, c->dout, att, c->q, c->k, c->v, c->T, c->S, c->Hq, c->Hkv, c->D, 0, &c->p);
        fd_check("attention dq", fd_attn_loss, &f, c->q, dq, 160);
        fd_check("attention dk", fd_attn_loss, &f, c->k, dk, 80);
        fd_check("attention dv", fd_attn_loss, &f, c->v, dv, 80);
        free(c->q); free(c->k); free(c->v); free(c->dout); free(f.out); free(dq); free(dk); free(dv);
    }
    {
        int32_t tg[4] = {2, -1, 0, 16};
        fd_ce f = {{"fd", 4, 17, 0.5f, rnd(68, 3.0f, 0), tg}};
        float dl[68];
        cross_entropy_fwd_bwd(dl, f.c.logits, tg, 4, 17, 0.5f, NULL);
        fd_check("cross-entropy dlogits", fd_ce_loss, &f, f.c.logits, dl, 68);
        free(f.c.logits);
    }
}

// ---------------------------------------------------------------- identities and edge cases
static void test_rope_identities(void) {
    enum { T = 5, H = 3, D = 16 };
    int32_t pos[T] = {0, 3, 17, 4000, 9};
    rope_params p = {ROPE_NEOX, D, 10000.0f, 1.0f, 0, 0, 0, 0};
    float *x = rnd(T * H * D, 1.0f, 0), *y = dup_f(x, T * H * D);
    rope_fwd(y, pos, T, H, D, &p);
    rope_bwd(y, pos, T, H, D, &p);
    CHECK(rel_err(y, x, T * H * D) < 1e-6, "rope_bwd(rope_fwd(x)) != x");
    // The GGUF converter permutes q/k rows so that NORM on permuted weights equals NEOX on HF's:
    // GGUF dim 2i+j holds HF dim j*D/2+i. So NORM(perm x) == perm(NEOX x).
    float *xp = malloc(sizeof(float) * T * H * D), *yn = dup_f(x, T * H * D);
    for (int r = 0; r < T * H; r++)
        for (int i = 0; i < D / 2; i++)
            for (int j = 0; j < 2; j++) xp[r * D + 2 * i + j] = x[r * D + j * D / 2 + i];
    rope_fwd(yn, pos, T, H, D, &p);   // NEOX on x
    p.style = ROPE_NORM;
    rope_fwd(xp, pos, T, H, D, &p);   // NORM on perm(x)
    double e = 0;
    for (int r = 0; r < T * H; r++)
        for (int i = 0; i < D / 2; i++)
            for (int j = 0; j < 2; j++) e = fmax(e, fabs(xp[r * D + 2 * i + j] - yn[r * D + j * D / 2 + i]));
    CHECK(e < 1e-6, "NORM(perm x) vs perm(NEOX x): %g", e);
    free(x); free(y); free(xp); free(yn);
}

// Decode split over runs of keys (attention_decode_part + attention_decode_merge) against attention_fwd
// for the same query row: GQA groups 1 to 1026, the last position with and without a sliding window,
// splits into 1..5 runs including empty ones, softcap; within 1e-6 relative (the split only changes the
// summation order). Then f16 and q8_0 caches against f32 rows of the same values.
static void test_attention_decode_split(void) {
    static const struct { int Hq, Hkv, D, S, window; float softcap; } C[] = {
        {6, 6, 20, 37, 0, 0}, {8, 4, 32, 150, 0, 0}, {8, 2, 64, 70, 16, 0}, {4, 1, 48, 33, 0, 30.0f}, {16, 8, 128, 129, 0, 0},
        {32, 8, 64, 101, 0, 0}, {24, 8, 128, 77, 0, 0}, {12, 12, 64, 66, 0, 0}, {4, 1, 256, 90, 40, 0},
        {2052, 2, 16, 40, 0, 0},   // more heads than a block's scores on the stack: the kv-head path
        {40, 40, 256, 20, 0, 0},   // wide cache rows (40 kv heads x 256: 10240 values a row)
    };
    for (size_t c = 0; c < sizeof C / sizeof C[0]; c++) {
        int Hq = C[c].Hq, Hkv = C[c].Hkv, D = C[c].D, S = C[c].S;
        attn_params p = {1.0f / sqrtf((float)D), C[c].window, C[c].softcap, NULL, 0};
        float *q = rnd(Hq * D, 1.5f, 0), *k = rnd((int64_t)S * Hkv * D, 1.5f, 0), *v = rnd((int64_t)S * Hkv * D, 1.0f, 0);
        float *want = malloc(sizeof(float) * Hq * D), *got = malloc(sizeof(float) * Hq * D);
        attention_fwd(want, NULL, q, k, v, 1, S, Hq, Hkv, D, S - 1, &p);
        int64_t lo = C[c].window > 0 ? S - C[c].window : 0, hi = S - 1;
        for (int runs = 1; runs <= 5; runs++) {
            float *o[5], *m[5];
            double *l[5];
            for (int r = 0; r < runs; r++) {
                // uneven runs; with 5 runs over a short band some are empty
                int64_t a = r == 0 ? lo : lo + (hi - lo + 1) * r * r / (runs * runs), b = lo + (hi - lo + 1) * (r + 1) * (r + 1) / (runs * runs);
                if (runs == 5 && r == 1) b = a;   // an empty run
                o[r] = malloc(sizeof(float) * Hq * D); m[r] = malloc(sizeof(float) * Hq); l[r] = malloc(sizeof(double) * Hq);
                attention_decode_part(o[r], m[r], l[r], q, k, v, Hq, Hkv, D, a, b - 1, &p);
                if (runs == 5 && r == 1) CHECK(l[r][0] == 0.0 && m[r][0] == -INFINITY, "empty run: l %g m %g", l[r][0], m[r][0]);
            }
            if (runs == 5) {   // runs 1 and 2 together cover what run 2 would have
                int64_t a = lo + (hi - lo + 1) * 1 / 25, b = lo + (hi - lo + 1) * 9 / 25;
                attention_decode_part(o[2], m[2], l[2], q, k, v, Hq, Hkv, D, a, b - 1, &p);
            }
            attention_decode_merge(got, (const float *const *)o, (const float *const *)m, (const double *const *)l, runs, Hq, D);
            double e = rel_err(got, want, Hq * D);
            CHECK(e < 1e-6, "decode split case %zu, %d runs: rel err %.3g", c, runs, e);
            for (int r = 0; r < runs; r++) { free(o[r]); free(m[r]); free(l[r]); }
        }
        // f16 and q8_0 caches (q8_0 where D is a multiple of 32): the decode parts (2 runs, merged) and the
        // prefill paths (online, and storing probabilities) over those rows against the f32 ones over the
        // same values widened (1e-5 relative: only the summation order may differ)
        for (int kt = 0; kt < 2; kt++) {
            dtype t = kt ? DT_Q8_0 : DT_F16;
            if (t == DT_Q8_0 && D % 32) continue;
            int64_t nkv = (int64_t)S * Hkv * D;
            size_t bytes = dtype_row_bytes(t, nkv);
            void *kh = malloc(bytes), *vh = malloc(bytes);
            CHECK(quantize_row(t, k, kh, nkv) == 0 && quantize_row(t, v, vh, nkv) == 0, "quantize %s cache", dtype_get(t)->name);
            dequantize_row(t, kh, k, nkv);
            dequantize_row(t, vh, v, nkv);
            attention_fwd(want, NULL, q, k, v, 1, S, Hq, Hkv, D, S - 1, &p);
            attn_params ph = p;
            ph.kv = t;
            float *o[2], *m[2];
            double *l[2];
            int64_t mid = (lo + hi + 1) / 2;
            for (int r = 0; r < 2; r++) {
                o[r] = malloc(sizeof(float) * Hq * D); m[r] = malloc(sizeof(float) * Hq); l[r] = malloc(sizeof(double) * Hq);
                attention_decode_part(o[r], m[r], l[r], q, kh, vh, Hq, Hkv, D, r ? mid : lo, r ? hi : mid - 1, &ph);
            }
            attention_decode_merge(got, (const float *const *)o, (const float *const *)m, (const double *const *)l, 2, Hq, D);
            const char *tn = dtype_get(t)->name;
            CHECK(rel_err(got, want, Hq * D) < 1e-5, "%s cache decode case %zu: rel err %.3g", tn, c, rel_err(got, want, Hq * D));
            attention_fwd_heads(got, NULL, q, kh, vh, 1, S, Hq, Hkv, D, S - 1, &ph, 0, Hq);
            CHECK(rel_err(got, want, Hq * D) < 1e-5, "%s cache prefill path case %zu: rel err %.3g", tn, c, rel_err(got, want, Hq * D));
            if (Hq <= 64) {   // the path that stores probabilities (training's), over the same rows
                float *att = malloc(sizeof(float) * (size_t)Hq * S);
                attention_fwd_heads(got, att, q, kh, vh, 1, S, Hq, Hkv, D, S - 1, &ph, 0, Hq);
                CHECK(rel_err(got, want, Hq * D) < 1e-5, "%s cache stored-probability path case %zu: rel err %.3g", tn, c,
                      rel_err(got, want, Hq * D));
                free(att);
            }
            for (int r = 0; r < 2; r++) { free(o[r]); free(m[r]); free(l[r]); }
            free(kh); free(vh);
        }
        free(q); free(k); free(v); free(want); free(got);
    }
    // no visible key at all: zeros
    float q[8] = {1}, k[8] = {1}, o[8], out[8];
    float m;
    double l;
    attn_params p = {1.0f, 0, 0, NULL, 0};
    attention_decode_part(o, &m, &l, q, k, k, 1, 1, 8, 1, 0, &p);
    const float *op[1] = {o}, *mp[1] = {&m};
    const double *lp[1] = {&l};
    attention_decode_merge(out, op, mp, lp, 1, 1, 8);
    int zero = 1;
    for (int i = 0; i < 8; i++) zero &= out[i] == 0.0f;
    CHECK(zero, "decode split with no visible key: not zeros");
}

// Prefill tile kernels (attn_kernels.tile_scores / tile_accum / keys_t / rows_h) at AVX2 and AVX-512
// against their scalar twins: 8 rows against blocks of 1..64 keys, D multiples of 16 (16..256). Scores and sums within 1e-5
// of the twins' (against the sums of absolute terms; each sums D or n products in another order); the transpose and the
// f16 / q8_0 widening exact.
static void tile_kernels_at(int lvl);
static void test_tile_kernels(void) {
    if (isa_detect() < ISA_AVX2) { SKIP("tile kernels: this CPU lacks AVX2"); return; }
    for (int lvl = ISA_AVX2; lvl <= (int)isa_detect(); lvl++) tile_kernels_at(lvl);
    if (isa_detect() < ISA_AVX512) SKIP("tile kernels: this CPU lacks AVX-512; those twins untested");
}

static void tile_kernels_at(int lvl) {
    const attn_kernels *ref = attn_kernels_for(ISA_SCALAR), *kn = attn_kernels_for(lvl);
    int Ds[] = {16, 48, 64, 128, 256}, ns[] = {1, 5, 16, 31, 32, 33, 63, 64};
    double worst = 0;
    int exact = 1;
    for (size_t a = 0; a < sizeof Ds / sizeof *Ds; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
            int D = Ds[a], n = ns[b], n32 = (n + 31) / 32 * 32;
            const int R = ATT_TILE_ROWS, TK = ATT_TILE_KEYS;
            float *q = rnd(R * D, 1.0f, 0), *kb = calloc((size_t)TK * D, 4), *vb = rnd(TK * D, 1.0f, 0);
            float *kt1 = calloc((size_t)TK * D, 4), *kt2 = calloc((size_t)TK * D, 4);
            float *s1 = calloc((size_t)R * TK, 4), *s2 = calloc((size_t)R * TK, 4), *pr = rnd(R * TK, 1.0f, 0);
            float *o1 = rnd(R * D, 1.0f, 0), *o2 = dup_f(o1, R * D);
            float *kr = rnd(n * D, 1.0f, 0);
            memcpy(kb, kr, (size_t)n * D * 4);
            ref->keys_t(kt1, kb, n32, D);
            kn->keys_t(kt2, kb, n32, D);
            exact &= !memcmp(kt1, kt2, (size_t)TK * D * 4);
            for (int i = 0; i < n && exact; i++)
                for (int d = 0; d < D; d++) exact &= kt1[d * TK + i] == kb[i * D + d];
            ref->tile_scores(s1, q, kt1, n, D);
            kn->tile_scores(s2, q, kt1, n, D);
            // errors against the sums of absolute terms (cond_err): a row of one or a few keys can
            // cancel to near zero, where a relative error measures only the cancellation
            float *qa = abs_f(q, R * D), *kta = abs_f(kt1, TK * D), *sa = calloc((size_t)R * TK, 4);
            float *pa = abs_f(pr, R * TK), *va = abs_f(vb, TK * D), *oa = abs_f(o1, R * D);
            ref->tile_scores(sa, qa, kta, n, D);
            for (int m = 0; m < R; m++) worst = fmax(worst, cond_err(s2 + m * TK, s1 + m * TK, sa + m * TK, n));
            ref->tile_accum(o1, pr, vb, n, D);
            kn->tile_accum(o2, pr, vb, n, D);
            ref->tile_accum(oa, pa, va, n, D);
            worst = fmax(worst, cond_err(o2, o1, oa, R * D));
            free(qa); free(kta); free(sa); free(pa); free(va); free(oa);
            // f16 rows ks apart, widened
            int64_t ks = D + 16;
            uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n * ks));
            float *src = rnd(n * ks, 2.0f, 0), *w1 = malloc((size_t)n * D * 4), *w2 = malloc((size_t)n * D * 4);
            f32_to_f16_row_ref(src, h, n * ks);
            ref->rows_h(w1, h, ks, n, D);
            kn->rows_h(w2, h, ks, n, D);
            exact &= !memcmp(w1, w2, (size_t)n * D * 4) && w1[(n - 1) * D + D - 1] == f16_to_f32(h[(n - 1) * ks + D - 1]);
            if (D % 32 == 0) {   // q8_0 rows (ks a multiple of 32) widened: the scalar twin's values, = dequantize_row's
                int64_t k8 = D + 32;
                uint8_t *q8 = malloc((size_t)(n * k8) / 32 * 34);
                float *dq = malloc(sizeof(float) * (size_t)(n * k8)), *s8 = rnd(n * k8, 2.0f, 0);
                quantize_row(DT_Q8_0, s8, q8, n * k8);
                dequantize_row(DT_Q8_0, q8, dq, n * k8);
                ref->rows_q8(w1, q8, k8, n, D);
                kn->rows_q8(w2, q8, k8, n, D);
                exact &= !memcmp(w1, w2, (size_t)n * D * 4);
                for (int i = 0; i < n; i++) exact &= !memcmp(w1 + (int64_t)i * D, dq + (int64_t)i * k8, (size_t)D * 4);
                free(q8); free(dq); free(s8);
            }
            free(q); free(kb); free(vb); free(kt1); free(kt2); free(s1); free(s2); free(pr); free(o1); free(o2);
            free(kr); free(h); free(src); free(w1); free(w2);
        }
    CHECK(worst < 1e-5, "tile kernels isa %d vs scalar: relative error %.3g", lvl, worst);
    CHECK(exact && kn->tiles, "tile kernels isa %d: transpose / f16 / q8_0 widening differ from the scalar twins", lvl);
}

// The tiled prefill (no stored probabilities; AVX2 and AVX-512) against the per-query path that stores them (the
// oracle-checked one): heads per kv head 1 / 2 / 4 / 8 and 3 / 6 / 7 (tiles of 1 / 2 / 1 of them), D 16..256, several passes of queries (D 256:
// 128 rows a pass), a cache ahead of the queries, sliding windows, soft caps, f16 and q8_0 caches; within 1e-5.
static void tiled_prefill_at(isa_level lvl);
static void test_tiled_prefill(void) {
    if (isa_detect() < ISA_AVX2) { SKIP("tiled prefill: this CPU lacks AVX2"); return; }
    isa_level keep = isa_active();
    for (int lvl = ISA_AVX2; lvl <= (int)isa_detect(); lvl++) tiled_prefill_at((isa_level)lvl);
    isa_force(keep);
}

static void tiled_prefill_at(isa_level lvl) {
    // kvt: the cache's rows f32 (0), f16 (1) or q8_0 (2)
    struct { int T, S, Hq, Hkv, D, window; float cap; int kvt; } cs[] = {
        {9, 9, 2, 2, 16, 0, 0, 0},       {37, 50, 4, 2, 64, 0, 0, 0},   {130, 130, 8, 2, 128, 0, 0, 1},
        {300, 300, 4, 4, 256, 0, 0, 0}, {70, 90, 8, 1, 64, 16, 0, 1},  {41, 41, 16, 2, 48, 0, 30.0f, 0},
        {200, 260, 4, 1, 256, 100, 0, 1}, {8, 8, 1, 1, 32, 3, 0, 0},   {150, 150, 6, 3, 128, 0, 0, 1},
        {70, 70, 6, 2, 64, 0, 0, 1},     {45, 60, 14, 2, 64, 20, 0, 0}, {33, 33, 12, 2, 128, 0, 0, 1},   // 3 / 7 / 6 a kv head
        {130, 130, 8, 2, 128, 0, 0, 2},  {200, 260, 4, 1, 256, 100, 0, 2}, {70, 90, 6, 2, 64, 16, 0, 2},   // q8_0 caches
    };
    const dtype kvts[3] = {DT_F32, DT_F16, DT_Q8_0};
    isa_force(lvl);
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
        int T = cs[c].T, S = cs[c].S, Hq = cs[c].Hq, Hkv = cs[c].Hkv, D = cs[c].D;
        attn_params p = {1.0f / sqrtf((float)D), cs[c].window, cs[c].cap, NULL, kvts[cs[c].kvt]};
        float *q = rnd((int64_t)T * Hq * D, 1.5f, 0), *k = rnd((int64_t)S * Hkv * D, 1.5f, 0), *v = rnd((int64_t)S * Hkv * D, 1.0f, 0);
        float *want = malloc(sizeof(float) * (size_t)T * Hq * D), *got = malloc(sizeof(float) * (size_t)T * Hq * D);
        float *att = malloc(sizeof(float) * (size_t)Hq * T * S);
        const void *kk = k, *vv = v;
        void *kh = NULL, *vh = NULL;
        if (p.kv != DT_F32) {
            size_t bytes = dtype_row_bytes(p.kv, (int64_t)S * Hkv * D);
            kh = malloc(bytes);
            vh = malloc(bytes);
            quantize_row(p.kv, k, kh, (int64_t)S * Hkv * D);
            quantize_row(p.kv, v, vh, (int64_t)S * Hkv * D);
            kk = kh;
            vv = vh;
        }
        attention_fwd_heads(want, att, q, kk, vv, T, S, Hq, Hkv, D, S - T, &p, 0, Hq);
        attention_fwd_heads(got, NULL, q, kk, vv, T, S, Hq, Hkv, D, S - T, &p, 0, Hq);
        double e = rel_err(got, want, (int64_t)T * Hq * D);
        CHECK(e < 1e-5, "tiled prefill isa %d case %zu (T %d S %d heads %d/%d D %d): rel err %.3g", (int)lvl, c, T, S, Hq, Hkv, D, e);
        free(q); free(k); free(v); free(want); free(got); free(att); free(kh); free(vh);
    }
}

static void test_attention_consistency(void) {
    enum { T = 9, Hq = 6, Hkv = 3, D = 20 };
    int32_t doc[T] = {0, 0, 0, 0, 4, 4, 4, 4, 4};
    attn_params p = {0.3f, 4, 0, doc, 0};
    float *q = rnd(T * Hq * D, 1.5f, 0), *k = rnd(T * Hkv * D, 1.5f, 0), *v = rnd(T * Hkv * D, 1.0f, 0);
    float *out = malloc(sizeof(float) * T * Hq * D), *att = malloc(sizeof(float) * Hq * T * T);
    attention_fwd(out, att, q, k, v, T, T, Hq, Hkv, D, 0, &p);
    // Decode one token at a time against a growing cache gives the prefill rows.
    double e = 0;
    float o1[Hq * D];
    for (int t = 0; t < T; t++) {
        attn_params p1 = {p.scale, p.window, p.softcap, doc + t, 0};
        attention_fwd(o1, NULL, q + t * Hq * D, k, v, 1, t + 1, Hq, Hkv, D, t, &p1);
        e = fmax(e, rel_err(o1, out + t * Hq * D, Hq * D));
    }
    CHECK(e < 1e-6, "decode vs prefill: %g", e);
    // Head splits reproduce the whole call bit for bit.
    float *out2 = malloc(sizeof(float) * T * Hq * D), *att2 = malloc(sizeof(float) * Hq * T * T);
    attention_fwd_heads(out2, att2, q, k, v, T, T, Hq, Hkv, D, 0, &p, 0, 1);
    attention_fwd_heads(out2, att2, q, k, v, T, T, Hq, Hkv, D, 0, &p, 1, 4);
    attention_fwd_heads(out2, att2, q, k, v, T, T, Hq, Hkv, D, 0, &p, 4, Hq);
    CHECK(!memcmp(out, out2, sizeof(float) * T * Hq * D) && !memcmp(att, att2, sizeof(float) * Hq * T * T),
          "attention_fwd_heads split differs");
    float *dout = rnd(T * Hq * D, 1.0f, 0);
    float *g[6];
    for (int i = 0; i < 6; i++) g[i] = calloc((size_t)T * Hq * D, sizeof(float));
    attention_bwd(g[0], g[1], g[2], dout, att, q, k, v, T, T, Hq, Hkv, D, 0, &p);
    for (int s = 0; s < Hkv; s++)
        attention_bwd_kvheads(g[3], g[4], g[5], dout, att, q, k, v, T, T, Hq, Hkv, D, 0, &p, s, s + 1);
    CHECK(!memcmp(g[0], g[3], sizeof(float) * T * Hq * D) && !memcmp(g[1], g[4], sizeof(float) * T * Hkv * D) &&
          !memcmp(g[2], g[5], sizeof(float) * T * Hkv * D), "attention_bwd_kvheads split differs");
    // Skipped gradients (NULL) leave the others unchanged.
    float *dv = calloc((size_t)T * Hkv * D, sizeof(float));
    attention_bwd(NULL, NULL, dv, dout, att, q, k, v, T, T, Hq, Hkv, D, 0, &p);
    CHECK(!memcmp(dv, g[2], sizeof(float) * T * Hkv * D), "attention_bwd with only dv differs");
    // A query whose document starts after it (no visible key) gives zeros, not NaN.
    int32_t late = 5;
    attn_params pl = {0.3f, 0, 0, &late, 0};
    float a1[Hq * 5];
    attention_fwd(o1, a1, q, k, v, 1, 5, Hq, Hkv, D, 4, &pl);
    int zeros = 1;
    for (int i = 0; i < Hq * D; i++) zeros &= o1[i] == 0.0f;
    for (int i = 0; i < Hq * 5; i++) zeros &= a1[i] == 0.0f;
    attention_fwd(o1, NULL, q, k, v, 1, 5, Hq, Hkv, D, 4, &pl);
    for (int i = 0; i < Hq * D; i++) zeros &= o1[i] == 0.0f;
    CHECK(zeros, "fully masked query row is not zero");
    free(q); free(k); free(v); free(out); free(att); free(out2); free(att2); free(dout); free(dv);
    for (int i = 0; i < 6; i++) free(g[i]);
}

static void test_edges(void) {
    // rmsnorm without a weight equals a unit weight.
    float *x = rnd(3 * 10, 1.0f, 0), w1[10], y1[30], y2[30], r1[3], r2[3];
    for (int i = 0; i < 10; i++) w1[i] = 1.0f;
    rmsnorm_fwd(y1, r1, x, w1, 0.0f, 3, 10, 1e-6f);
    rmsnorm_fwd(y2, r2, x, NULL, 0.0f, 3, 10, 1e-6f);
    CHECK(!memcmp(y1, y2, sizeof y1), "rmsnorm w=NULL differs from unit weight");
    free(x);
    // Softmax of a fully masked row is zeros, not NaN.
    float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    softmax_inplace(m, 4);
    CHECK(m[0] == 0 && m[3] == 0, "softmax of -inf row");
    // Cross-entropy with every row ignored.
    float lg[6] = {1, 2, 3, 4, 5, 6}, dl[6];
    int32_t tg[2] = {-100, -1};
    int64_t cnt = 7;
    double L = cross_entropy_fwd_bwd(dl, lg, tg, 2, 3, 1.0f, &cnt);
    CHECK(L == 0 && cnt == 0 && dl[0] == 0 && dl[5] == 0, "all-ignored cross-entropy");
    // Negative ids give zero rows and no gradient.
    float tab[6] = {1, 2, 3, 4, 5, 6}, out[4] = {9, 9, 9, 9}, dt[6] = {0};
    int32_t ids[2] = {-1, 2};
    embedding_fwd(out, tab, ids, 2, 2, 1.0f);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 5 && out[3] == 6, "embedding with a negative id");
    embedding_bwd(dt, out, ids, 2, 2, 1.0f);
    CHECK(dt[0] == 0 && dt[4] == 5, "embedding_bwd with a negative id");
}

// Not a pass/fail check: prints decode and prefill attention speed for the record.
static void bench_attention(void) {
    enum { Hq = 16, Hkv = 4, D = 64, S = 2048, TP = 256 };
    float *q = rnd(TP * Hq * D, 1.0f, 0), *k = rnd(S * Hkv * D, 1.0f, 0), *v = rnd(S * Hkv * D, 1.0f, 0);
    float *out = malloc(sizeof(float) * TP * Hq * D);
    attn_params p = {0.125f, 0, 0, NULL, 0};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 10; i++) attention_fwd(out, NULL, q, k, v, 1, S, Hq, Hkv, D, S - 1, &p);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double dec = ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / 10;
    clock_gettime(CLOCK_MONOTONIC, &a);
    attention_fwd(out, NULL, q, k, v, TP, TP, Hq, Hkv, D, 0, &p);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double pre = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    printf("bench: attention decode S=%d Hq=%d D=%d: %.3f ms; prefill T=%d: %.3f ms (1 thread)\n",
           S, Hq, D, dec, TP, pre);
    free(q); free(k); free(v); free(out);
}

int main(void) {
    make_cases();
    if (run_oracle() == 0) {
        check_norms();
        check_ropes();
        check_attns();
        check_acts();
        check_ces();
        check_embs();
        printf("oracle: worst relative error %.3g (tolerance %g)\n", worst_err, TOL);
    }
    test_attn_kernels();
    test_attn_rows();
    test_attn_q8_kernels();
    test_ce_kernels();
    test_act_kernels();
    test_finite_differences();
    test_rope_identities();
    test_attention_consistency();
    test_attention_decode_split();
    test_tile_kernels();
    test_tiled_prefill();
    test_edges();
    if (!getenv("SLLM_ASAN")) bench_attention();
    free_cases();
    return test_report();
}
