// Training attention (tensor/attention_train.h) against the reference attention_fwd_heads /
// attention_bwd_kvheads (tensor/ops.h, itself checked against PyTorch in test_ops / test_train_grad).
// Tolerance: every output tensor (out, att, dq, dk, dv) must satisfy
//   max_i |new_i - ref_i| <= 1e-5 * max_i |ref_i|
// (the two sum the same products in different orders; float rounding is ~1e-7 relative per term).
// Also: the AVX-512 row kernels against their scalar twins, the scalar-kernel and reference-GEMM
// paths, and a timing printout (not an assertion) of old vs new at B=4, T=256, H=8, D=64.
#include "test.h"
#include <stdint.h>
#include <time.h>
#include "tensor/attention_train.h"
#include "tensor/gemm.h"
#include "tensor/matmul.h"
#include "tensor/ops.h"

#define TOL 1e-5

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {   // uniform in [-1, 1)
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 23)) - 1.0f;
}
static float *rnd(int64_t n, float amp) {
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = amp * frand();
    return x;
}
static float *zeros(int64_t n) { return calloc((size_t)n, sizeof(float)); }

// max |a-b| relative to max |b|; 0 when both are all zeros.
static double rel_err(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;   // NaN propagates as a failure
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

typedef struct { int Hq, Hkv, D; int64_t T, S, q_pos0; int window, docs; float softcap; } cfg;

static void run_case(cfg c, const char *what) {
    int64_t T = c.T, S = c.S;
    int64_t nq = T * c.Hq * c.D, nk = S * c.Hkv * c.D, na = (int64_t)c.Hq * T * S;
    // scores of order ~4 after scaling so softmax is far from uniform
    float *q = rnd(nq, 2.0f), *k = rnd(nk, 2.0f), *v = rnd(nk, 1.0f), *dout = rnd(nq, 1.0f);
    int32_t *doc = NULL;
    if (c.docs < 0) {   // arbitrary starts, not monotone, some past the row itself (empty rows)
        doc = malloc((size_t)T * sizeof(int32_t));
        for (int64_t t = 0; t < T; t++) doc[t] = (int32_t)((frand() + 1.0f) * 0.5f * (float)(t + 4));
    } else if (c.docs > 1) {   // c.docs documents of about equal length packed into the T rows
        doc = malloc((size_t)T * sizeof(int32_t));
        for (int64_t t = 0; t < T; t++) {   // start of t's document d: first s with s*docs/T == d
            int64_t d = t * c.docs / T;
            doc[t] = (int32_t)((d * T + c.docs - 1) / c.docs);
        }
    }
    attn_params p = {.scale = 1.0f / sqrtf((float)c.D), .window = c.window, .softcap = c.softcap, .doc_start = doc};
    float *o_ref = zeros(nq), *a_ref = rnd(na, 9.0f), *o_new = zeros(nq), *a_new = rnd(na, 7.0f);
    attention_fwd_heads(o_ref, a_ref, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, 0, c.Hq);
    // new forward split over two head ranges, as threads would
    int hm = c.Hq / 2;
    attention_train_fwd_heads(o_new, a_new, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, 0, hm);
    attention_train_fwd_heads(o_new, a_new, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, hm, c.Hq);
    double eo = rel_err(o_new, o_ref, nq), ea = rel_err(a_new, a_ref, na);
    CHECK(eo <= TOL, "%s: out rel err %.3g", what, eo);
    CHECK(ea <= TOL, "%s: att rel err %.3g", what, ea);
    // masked probabilities must be exact zeros (the backward relies on it)
    int64_t bad = 0;
    for (int64_t i = 0; i < na; i++) bad += (a_ref[i] == 0.0f) != (a_new[i] == 0.0f);
    CHECK(bad == 0, "%s: %lld probabilities differ in being zero", what, (long long)bad);

    float *dq_r = zeros(nq), *dk_r = zeros(nk), *dv_r = zeros(nk);
    float *dq_n = zeros(nq), *dk_n = zeros(nk), *dv_n = zeros(nk);
    attention_bwd_kvheads(dq_r, dk_r, dv_r, dout, a_ref, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, 0, c.Hkv);
    int gm = c.Hkv / 2;
    attention_train_bwd_kvheads(dq_n, dk_n, dv_n, dout, a_ref, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, 0, gm);
    attention_train_bwd_kvheads(dq_n, dk_n, dv_n, dout, a_ref, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, gm,
                                c.Hkv);
    double eq = rel_err(dq_n, dq_r, nq), ek = rel_err(dk_n, dk_r, nk), ev = rel_err(dv_n, dv_r, nk);
    CHECK(eq <= TOL, "%s: dq rel err %.3g", what, eq);
    CHECK(ek <= TOL, "%s: dk rel err %.3g", what, ek);
    CHECK(ev <= TOL, "%s: dv rel err %.3g", what, ev);

    // gradients ADD into what is there, and NULL skips one: dq, dv start from the result above
    // (so they must double), dk is skipped.
    attention_train_bwd_kvheads(dq_n, NULL, dv_n, dout, a_ref, q, k, v, T, S, c.Hq, c.Hkv, c.D, c.q_pos0, &p, 0,
                                c.Hkv);
    for (int64_t i = 0; i < nq; i++) dq_r[i] *= 2;
    for (int64_t i = 0; i < nk; i++) dv_r[i] *= 2;
    eq = rel_err(dq_n, dq_r, nq); ev = rel_err(dv_n, dv_r, nk); ek = rel_err(dk_n, dk_r, nk);
    CHECK(eq <= TOL && ev <= TOL && ek <= TOL, "%s: accumulate/NULL: dq %.3g dk %.3g dv %.3g", what, eq, ek, ev);

    free(q); free(k); free(v); free(dout); free(doc); free(o_ref); free(a_ref); free(o_new); free(a_new);
    free(dq_r); free(dk_r); free(dv_r); free(dq_n); free(dk_n); free(dv_n);
}

static void test_against_reference(const char *tag) {
    static const int64_t Ts[] = {1, 7, 33, 256};
    static const struct { int Hq, Hkv; } heads[] = {{4, 4}, {8, 2}};
    static const struct { const char *name; int window, docs; float softcap; } masks[] = {
        {"causal", 0, 0, 0}, {"window16", 16, 0, 0}, {"docs3", 0, 3, 0}, {"softcap30", 0, 0, 30},
        {"window+docs+cap", 16, 3, 30}, {"random-doc-starts", 0, -1, 0}};
    for (size_t hi = 0; hi < 2; hi++)
        for (int D = 64; D >= 32; D -= 32)
            for (size_t ti = 0; ti < 4; ti++)
                for (size_t mi = 0; mi < sizeof masks / sizeof masks[0]; mi++) {
                    cfg c = {.Hq = heads[hi].Hq, .Hkv = heads[hi].Hkv, .D = D, .T = Ts[ti], .S = Ts[ti],
                             .window = masks[mi].window, .docs = masks[mi].docs, .softcap = masks[mi].softcap};
                    char what[160];
                    snprintf(what, sizeof what, "%s Hq=%d Hkv=%d D=%d T=%lld %s", tag, c.Hq, c.Hkv, D, (long long)c.T,
                             masks[mi].name);
                    run_case(c, what);
                }
    // queries that continue a cached prefix: S > T, q_pos0 > 0 (not used by training, same rule)
    cfg c = {.Hq = 8, .Hkv = 2, .D = 32, .T = 70, .S = 100, .q_pos0 = 30, .window = 40};
    char what[64];
    snprintf(what, sizeof what, "%s q_pos0=30 S=100 window40", tag);
    run_case(c, what);
}

// AVX-512 row kernels vs the scalar twins.
static void test_kernels(void) {
    if (isa_detect() < ISA_AVX512) { SKIP("no AVX-512 on this CPU: row kernels not compared"); return; }
    const attn_train_kernels *ks = attn_train_kernels_for(ISA_SCALAR), *kv = attn_train_kernels_for(ISA_AVX512);
    CHECK(ks->softmax != kv->softmax && ks->dsoftmax != kv->dsoftmax, "AVX-512 table differs from scalar");
    static const int ns[] = {1, 2, 15, 16, 17, 31, 33, 64, 100, 257, 1000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        int n = ns[i];
        float *x = rnd(n, 30.0f), *y = malloc((size_t)n * sizeof(float)), *p = rnd(n, 1.0f);
        x[n / 2] = -200.0f;   // underflows to 0 after scaling (exp far below the float range)
        memcpy(y, x, (size_t)n * sizeof(float));
        ks->softmax(x, n, 0.7f);
        kv->softmax(y, n, 0.7f);
        double e = rel_err(y, x, n);
        // x scale - m is rounded once (fma) in one and twice in the other: for |x scale| ~ 20 that is
        // ~2e-6 absolute in the exponent, so the same relative error in e^(..)
        CHECK(e <= TOL, "softmax n=%d rel err %.3g", n, e);
        double sum = 0;
        for (int j = 0; j < n; j++) sum += y[j];
        CHECK(fabs(sum - 1.0) < 1e-5, "softmax n=%d sums to %.9g", n, sum);
        for (int j = 0; j < n; j++) p[j] = fabsf(p[j]) / n;
        float *d1 = rnd(n, 3.0f), *d2 = malloc((size_t)n * sizeof(float));
        memcpy(d2, d1, (size_t)n * sizeof(float));
        ks->dsoftmax(d1, p, n, 0.125f);
        kv->dsoftmax(d2, p, n, 0.125f);
        e = rel_err(d2, d1, n);
        CHECK(e <= 1e-5, "dsoftmax n=%d rel err %.3g", n, e);
        free(x); free(y); free(p); free(d1); free(d2);
    }
    // exp accuracy over the range softmax feeds it (x - max <= 0)
    double worst = 0;
    for (int i = 0; i <= 2000; i++) {
        float x[2] = {0.0f, -87.0f * i / 2000.0f};
        double want = exp((double)x[1]);
        kv->softmax(x, 2, 1.0f);   // x[1]/x[0] = e^x[1]
        double got = (double)x[1] / x[0];
        double r = fabs(got - want) / want;
        if (r > worst) worst = r;
    }
    CHECK(worst < 1e-6, "vector exp worst relative error %.3g", worst);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Old vs new, one thread, the training benchmark's shape: B=4, T=256, H=8 (MHA), D=64, causal.
static void timing(void) {
    const int B = 4, H = 8, D = 64, reps = 3;
    const int64_t T = 256, nq = B * T * H * D, na = (int64_t)B * H * T * T;
    float *q = rnd(nq, 1), *k = rnd(nq, 1), *v = rnd(nq, 1), *g = rnd(nq, 1), *o = zeros(nq), *a = zeros(na);
    float *dq = zeros(nq), *dk = zeros(nq), *dv = zeros(nq);
    attn_params p = {.scale = 0.125f};
    double tf[2] = {1e9, 1e9}, tb[2] = {1e9, 1e9};
    for (int r = 0; r < reps; r++)
        for (int which = 0; which < 2; which++) {
            double t0 = now();
            for (int b = 0; b < B; b++)
                for (int h = 0; h < H; h++) {
                    int64_t ro = (int64_t)b * T * H * D, ra = (int64_t)b * H * T * T;
                    if (which) attention_train_fwd_heads(o + ro, a + ra, q + ro, k + ro, v + ro, T, T, H, H, D, 0, &p, h, h + 1);
                    else attention_fwd_heads(o + ro, a + ra, q + ro, k + ro, v + ro, T, T, H, H, D, 0, &p, h, h + 1);
                }
            double t1 = now();
            for (int b = 0; b < B; b++)
                for (int h = 0; h < H; h++) {
                    int64_t ro = (int64_t)b * T * H * D, ra = (int64_t)b * H * T * T;
                    if (which)
                        attention_train_bwd_kvheads(dq + ro, dk + ro, dv + ro, g + ro, a + ra, q + ro, k + ro, v + ro, T,
                                                    T, H, H, D, 0, &p, h, h + 1);
                    else
                        attention_bwd_kvheads(dq + ro, dk + ro, dv + ro, g + ro, a + ra, q + ro, k + ro, v + ro, T, T, H,
                                              H, D, 0, &p, h, h + 1);
                }
            double t2 = now();
            if (t1 - t0 < tf[which]) tf[which] = t1 - t0;
            if (t2 - t1 < tb[which]) tb[which] = t2 - t1;
        }
    // causal useful work: fwd 2 products, bwd 4, each T*T/2*D multiply-adds per (b, h)
    double fl = 2.0 * B * H * (T * T / 2.0) * D;
    printf("timing B=%d T=%lld H=%d D=%d causal, 1 thread, best of %d (gemm %s):\n", B, (long long)T, H, D, reps,
           gemm_backend_name(gemm_backend_active()));
    printf("  fwd: old %.2f ms (%.1f GFLOP/s)  new %.2f ms (%.1f GFLOP/s)  x%.1f\n", tf[0] * 1e3, 2 * fl / tf[0] * 1e-9,
           tf[1] * 1e3, 2 * fl / tf[1] * 1e-9, tf[0] / tf[1]);
    printf("  bwd: old %.2f ms (%.1f GFLOP/s)  new %.2f ms (%.1f GFLOP/s)  x%.1f\n", tb[0] * 1e3, 4 * fl / tb[0] * 1e-9,
           tb[1] * 1e3, 4 * fl / tb[1] * 1e-9, tb[0] / tb[1]);
    printf("  fwd+bwd: x%.1f\n", (tf[0] + tb[0]) / (tf[1] + tb[1]));
    free(q); free(k); free(v); free(g); free(o); free(a); free(dq); free(dk); free(dv);
}

int main(void) {
    test_kernels();
    test_against_reference("default");
    // the scalar row kernels and the plain-C GEMM take the same path through the blocking
    isa_level isa0 = isa_active();
    isa_force(ISA_SCALAR);
    gemm_backend_force(GEMM_REF);
    {
        cfg c = {.Hq = 8, .Hkv = 2, .D = 32, .T = 100, .S = 100, .window = 16, .docs = 3, .softcap = 30};
        run_case(c, "scalar+refgemm window+docs+cap");
        cfg c2 = {.Hq = 4, .Hkv = 4, .D = 64, .T = 130, .S = 130};
        run_case(c2, "scalar+refgemm causal");
    }
    isa_force(isa0);
    gemm_backend_force(GEMM_AUTO);
    if (!getenv("SLLM_NO_TIMING")) timing();
    return test_report();
}
