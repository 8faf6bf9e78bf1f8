// Matrix products for every weight dtype and every ISA level this CPU has:
//  - SIMD kernels vs their scalar twin (same q8 activations): |diff| <= 1e-5 * sum|w*x| (only the f32
//    summation order differs; integer block sums are exact).
//  - every level vs an f32 reference on dequantized weights (mm_dot_ref, double accumulation). For the
//    quantized types the activations are rounded to 8 bits, each element by at most amax(block)/254,
//    so the bound is sum_k |w_k| * amax(x block of k) / 254 (+1e-5 * sum|w*x| for f32 rounding);
//    f32/f16/bf16 weights use f32 activations: 1e-5 * sum|w*x|.
//  - the 512-bit layouts and kernels (tensor/matmul_kernels.h) against their scalar twins directly:
//    activation quantizers bit-identical, panel packing bit-identical and equal to the dequantized
//    weights, decode / tile / GEMM kernels within 1e-5 * sum|w*x|.
//  - threaded results bit-identical to single-threaded, bias / accumulate variants, mm_matmul_t and
//    mm_matmul_wgrad vs naive loops, the thread pool itself, and argument errors.
//  - mm_matmul_multi (several weights sharing one input, one dispatch): every output bit-identical to
//    its own mm_matmul, for mixed and equal dtypes, T = 1 (decode) and prefill, every ISA level.
//  - IQ4_NL / IQ4_XS: products whose every step is exact (integer data, scales 1) equal on every ISA and
//    path, including the largest int16 pair sums of the maddubs kernels.
//  - base/membw.h: the AVX2 / AVX-512 read loops equal their scalar twin; a small measurement runs.
#include "test.h"
#include "tensor/matmul.h"
#include "tensor/matmul_kernels.h"
#include "tensor/quant.h"
#include "tensor/ops.h"
#include "base/membw.h"
#include "sllm.h"
#include <stdatomic.h>
#include <time.h>

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t rnd32(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 11); }
static float rndn(void) {
    float s = 0;
    for (int i = 0; i < 12; i++) s += (float)(rnd32() & 0xFFFFFF) / 16777216.0f;
    return s - 6;
}

static const dtype TYPES[] = {DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1,
                              DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS};
#define NTYPES (int)(sizeof TYPES / sizeof TYPES[0])
static const char *ISA_NAME[] = {"scalar", "avx2", "avx512"};

typedef struct {
    dtype t;
    int64_t N, K;
    uint8_t *W;
    float *Wf;      // dequantized (N, K)
} wmat;

static wmat make_w(dtype t, int64_t N, int64_t K) {
    wmat m = {t, N, K, NULL, NULL};
    size_t rb = dtype_row_bytes(t, K);
    m.W = malloc(rb * N);
    m.Wf = malloc(sizeof(float) * N * K);
    float *row = malloc(sizeof(float) * K);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) row[k] = rndn() * 0.5f + (k % 7 == 0 ? 0.3f : 0.f);
        quantize_row(t, row, m.W + rb * n, K);
        dequantize_row(t, m.W + rb * n, m.Wf + K * n, K);
    }
    free(row);
    return m;
}
static void free_w(wmat *m) { free(m->W); free(m->Wf); }

static int block_of_act(dtype t) {
    switch (t) {
    case DT_F32: case DT_F16: case DT_BF16: return 0;
    case DT_Q2_K: case DT_Q3_K: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: case DT_IQ4_XS: return 256;
    default: return 32;
    }
}

static void check_matmul_type(dtype t, int64_t N, int64_t K, tpool *pool2) {
    const char *tn = dtype_get(t)->name;
    wmat w = make_w(t, N, K);
    // 1: decode kernels; 2..33: packed-panel / f32 GEMM prefill with full and partial tiles of activation
    // rows (per-row dot kernels below AVX-512 and for the K-quants)
    static const int64_t Ts[] = {1, 2, 3, 5, 8, 17, 33};
    int ab = block_of_act(t);
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int64_t T = Ts[ti];
        float *X = malloc(sizeof(float) * T * K), *Ys = malloc(sizeof(float) * T * N);
        float *Y = malloc(sizeof(float) * T * N), *Yt = malloc(sizeof(float) * T * N);
        double *scale = malloc(sizeof(double) * T * N), *qbound = malloc(sizeof(double) * T * N);
        float *ref = malloc(sizeof(float) * T * N);
        for (int64_t i = 0; i < T * K; i++) X[i] = rndn();
        float *amax = malloc(sizeof(float) * K);   // amax of the activation block of each element
        for (int64_t tt = 0; tt < T; tt++) {
            const float *x = X + tt * K;
            if (ab)
                for (int64_t b0 = 0; b0 < K; b0 += ab) {
                    float m = 0;
                    for (int64_t j = b0; j < b0 + ab; j++) m = fmaxf(m, fabsf(x[j]));
                    for (int64_t j = b0; j < b0 + ab; j++) amax[j] = m;
                }
            for (int64_t n = 0; n < N; n++) {
                const float *wf = w.Wf + n * K;
                double s = 0, qb = 0;
                for (int64_t k = 0; k < K; k++) {
                    s += fabs((double)wf[k] * x[k]);
                    if (ab) qb += fabs(wf[k]) * amax[k] / 254.0;
                }
                scale[tt * N + n] = s;
                qbound[tt * N + n] = qb * 1.001;
                ref[tt * N + n] = mm_dot_ref(t, w.W + dtype_row_bytes(t, K) * n, x, K);
            }
        }
        free(amax);
        isa_force(ISA_SCALAR);
        CHECK(mm_matmul(NULL, w.W, t, N, K, X, T, NULL, Ys) == 0);
        for (int l = ISA_SCALAR; l <= (int)isa_detect(); l++) {
            isa_force((isa_level)l);
            CHECK(mm_matmul(NULL, w.W, t, N, K, X, T, NULL, Y) == 0);
            int bad_twin = 0, bad_ref = 0;
            // Q2_K / Q3_K / IQ4_XS prefill with AVX2 / AVX-512 widens the weights to f32 for the f32 tile and
            // keeps the activations f32: its twin is then the f32 reference itself (no activation rounding)
            const bool widened = t == DT_Q2_K || t == DT_Q3_K || t == DT_IQ4_XS;
            const float *twin = l >= ISA_AVX2 && T >= 2 && widened ? ref : Ys;
            for (int64_t i = 0; i < T * N; i++) {
                double tol = 1e-5 * scale[i] + 1e-6;
                if (!(fabs((double)Y[i] - twin[i]) <= tol)) {
                    if (bad_twin++ < 2) fprintf(stderr, "  %s %s T=%ld [%ld]: %.7g vs twin %.7g\n", tn,
                                                ISA_NAME[l], (long)T, (long)i, Y[i], twin[i]);
                }
                if (!(fabs((double)Y[i] - ref[i]) <= tol + qbound[i])) {
                    if (bad_ref++ < 2) fprintf(stderr, "  %s %s T=%ld [%ld]: %.7g vs f32 ref %.7g (bound %.3g)\n", tn,
                                               ISA_NAME[l], (long)T, (long)i, Y[i], ref[i], tol + qbound[i]);
                }
            }
            CHECK(bad_twin == 0, "%s %s T=%ld: %d outputs differ from the scalar twin", tn, ISA_NAME[l], (long)T, bad_twin);
            CHECK(bad_ref == 0, "%s %s T=%ld: %d outputs outside the f32 reference bound", tn, ISA_NAME[l], (long)T, bad_ref);
            // threads: bit-identical
            CHECK(mm_matmul(pool2, w.W, t, N, K, X, T, NULL, Yt) == 0);
            CHECK(memcmp(Y, Yt, sizeof(float) * T * N) == 0, "%s %s T=%ld: threaded result differs", tn, ISA_NAME[l], (long)T);
            if (T == 3 || T == 17) {   // a per-row dot path and the packed / GEMM prefill paths
                // bias and accumulate
                float *bias = malloc(sizeof(float) * N);
                for (int64_t n = 0; n < N; n++) bias[n] = rndn();
                CHECK(mm_matmul(pool2, w.W, t, N, K, X, T, bias, Yt) == 0);
                int ok = 1;
                for (int64_t i = 0; i < T * N; i++) ok &= Yt[i] == Y[i] + bias[i % N];
                CHECK(ok, "%s %s: bias", tn, ISA_NAME[l]);
                for (int64_t i = 0; i < T * N; i++) Yt[i] = (float)i;
                CHECK(mm_matmul_acc(pool2, w.W, t, N, K, X, T, Yt) == 0);
                ok = 1;
                for (int64_t i = 0; i < T * N; i++) ok &= Yt[i] == (float)i + Y[i];
                CHECK(ok, "%s %s: accumulate", tn, ISA_NAME[l]);
                free(bias);
            }
        }
        free(X); free(Ys); free(Y); free(Yt); free(scale); free(qbound); free(ref);
    }
    free_w(&w);
}

static void set_iq4xs_scale(blk_iq4_xs *b, int ib, int ls) {
    int sh = 4 * (ib % 2);
    b->scales_l[ib / 2] = (uint8_t)((b->scales_l[ib / 2] & ~(0xF << sh)) | (ls & 0xF) << sh);
    b->scales_h = (uint16_t)((b->scales_h & ~(3 << (2 * ib))) | (ls >> 4) << (2 * ib));
}

// IQ4_NL / IQ4_XS products that every path must get exactly: scales 1 (IQ4_XS sub-block factors -2..2),
// integer activations with a +-127 in every 32-block (so the 8-bit activation rounding is the identity),
// and sums below 2^24, so the f32 steps are exact too. Rows of all -127 or all 113 levels against
// activations of all +-127 drive every int16 pair sum of the maddubs kernels to its extreme (2 * 127^2).
static void check_iq4_exact(dtype t, tpool *pool2) {
    enum { N = 5, K = 512, T = 5 };
    const size_t rb = dtype_row_bytes(t, K);
    uint8_t *W = malloc(rb * N);
    float *X = malloc(sizeof(float) * T * K), *Y = malloc(sizeof(float) * T * N), *want = malloc(sizeof(float) * T * N);
    for (size_t i = 0; i < rb * N; i++) W[i] = (uint8_t)rnd32();
    memset(W + 3 * rb, 0x00, rb);                    // row 3: every level -127
    memset(W + 4 * rb, 0xFF, rb);                    // row 4: every level 113
    uint16_t one = f32_to_f16(1.0f);
    for (int n = 0; n < N; n++) {
        if (t == DT_IQ4_NL)
            for (int b = 0; b < K / 32; b++) memcpy(W + n * rb + 18 * b, &one, 2);
        else
            for (int b = 0; b < K / 256; b++) {
                blk_iq4_xs *q = (blk_iq4_xs *)(W + n * rb) + b;
                q->d = one;
                for (int ib = 0; ib < 8; ib++)   // factor ls - 32: 2 (row 3), -2 (row 4), else -2..2
                    set_iq4xs_scale(q, ib, 32 + (n == 3 ? 2 : n == 4 ? -2 : (int)(rnd32() % 5) - 2));
            }
    }
    for (int64_t k = 0; k < T * K; k++) {
        int tt = (int)(k / K);
        X[k] = tt == 0 ? 127.f : tt == 1 ? -127.f : (float)((int)(rnd32() % 255) - 127);
        if (tt >= 2 && k % 32 == 0) X[k] = rnd32() % 2 ? 127.f : -127.f;
    }
    float wrow[K];
    for (int n = 0; n < N; n++) {
        CHECK(dequantize_row(t, W + n * rb, wrow, K) == 0);
        for (int tt = 0; tt < T; tt++) {
            int64_t e = 0;
            for (int k = 0; k < K; k++) e += (int64_t)wrow[k] * (int64_t)X[tt * K + k];   // integer weights
            CHECK(e > -(1 << 24) && e < (1 << 24), "%s: sum %lld out of the exact range", dtype_get(t)->name,
                  (long long)e);
            want[tt * N + n] = (float)e;
        }
    }
    for (int l = ISA_SCALAR; l <= (int)isa_detect(); l++) {
        isa_force((isa_level)l);
        for (int tt = 1; tt <= T; tt += 2) {   // T = 1: decode; 3, 5: prefill (the f32 tile with AVX-512)
            CHECK(mm_matmul(l == ISA_SCALAR ? NULL : pool2, W, t, N, K, X, tt, NULL, Y) == 0);
            int bad = 0;
            for (int i = 0; i < tt * N; i++) bad += Y[i] != want[i];
            CHECK(bad == 0, "%s %s T=%d: %d of %d products inexact (first %g want %g)", dtype_get(t)->name, ISA_NAME[l],
                  tt, bad, tt * N, Y[0], want[0]);
        }
    }
    free(W); free(X); free(Y); free(want);
}

// dX (T, K) += dY (T, N) . W (N, K) against a double-precision loop over the dequantized weight.
static void check_matmul_t(dtype t, int64_t N, int64_t K, tpool *pool2) {
    wmat w = make_w(t, N, K);
    const int64_t T = 5;
    float *dY = malloc(sizeof(float) * T * N), *dX = malloc(sizeof(float) * T * K), *dX2 = malloc(sizeof(float) * T * K);
    float *init = malloc(sizeof(float) * T * K);
    for (int64_t i = 0; i < T * N; i++) dY[i] = (i % 11 == 3) ? 0.f : rndn();
    for (int64_t i = 0; i < T * K; i++) init[i] = rndn();
    for (int l = ISA_SCALAR; l <= (int)isa_detect(); l++) {
        isa_force((isa_level)l);
        memcpy(dX, init, sizeof(float) * T * K);
        memcpy(dX2, init, sizeof(float) * T * K);
        CHECK(mm_matmul_t(NULL, w.W, t, N, K, dY, T, dX) == 0);
        CHECK(mm_matmul_t(pool2, w.W, t, N, K, dY, T, dX2) == 0);
        CHECK(memcmp(dX, dX2, sizeof(float) * T * K) == 0, "%s %s: matmul_t threaded differs", dtype_get(t)->name, ISA_NAME[l]);
        int bad = 0;
        for (int64_t tt = 0; tt < T; tt++)
            for (int64_t k = 0; k < K; k++) {
                double s = init[tt * K + k], sa = fabs(s);
                for (int64_t n = 0; n < N; n++) {
                    s += (double)dY[tt * N + n] * w.Wf[n * K + k];
                    sa += fabs((double)dY[tt * N + n] * w.Wf[n * K + k]);
                }
                if (!(fabs(s - dX[tt * K + k]) <= 1e-5 * sa + 1e-6)) bad++;
            }
        CHECK(bad == 0, "%s %s: matmul_t %d values off", dtype_get(t)->name, ISA_NAME[l], bad);
    }
    free(dY); free(dX); free(dX2); free(init);
    free_w(&w);
}

static void check_wgrad(tpool *pool2) {
    const int64_t T = 7, N = 21, K = 1100;   // K > one 1024 chunk, odd sizes
    float *dY = malloc(sizeof(float) * T * N), *X = malloc(sizeof(float) * T * K);
    float *dW = malloc(sizeof(float) * N * K), *dW2 = malloc(sizeof(float) * N * K), *init = malloc(sizeof(float) * N * K);
    for (int64_t i = 0; i < T * N; i++) dY[i] = rndn();
    for (int64_t i = 0; i < T * K; i++) X[i] = rndn();
    for (int64_t i = 0; i < N * K; i++) init[i] = rndn();
    for (int l = ISA_SCALAR; l <= (int)isa_detect(); l++) {
        isa_force((isa_level)l);
        memcpy(dW, init, sizeof(float) * N * K);
        memcpy(dW2, init, sizeof(float) * N * K);
        mm_matmul_wgrad(NULL, dY, X, T, N, K, dW);
        mm_matmul_wgrad(pool2, dY, X, T, N, K, dW2);
        CHECK(memcmp(dW, dW2, sizeof(float) * N * K) == 0, "wgrad %s threaded differs", ISA_NAME[l]);
        int bad = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                double s = init[n * K + k], sa = fabs(s);
                for (int64_t t = 0; t < T; t++) {
                    s += (double)dY[t * N + n] * X[t * K + k];
                    sa += fabs((double)dY[t * N + n] * X[t * K + k]);
                }
                if (!(fabs(s - dW[n * K + k]) <= 1e-5 * sa + 1e-6)) bad++;
            }
        CHECK(bad == 0, "wgrad %s: %d values off", ISA_NAME[l], bad);
    }
    free(dY); free(X); free(dW); free(dW2); free(init);
}

// ---------------------------------------------------------------- path tables vs scalar twins
// The packed / tiled paths (mm_paths) run once per ISA level this CPU has (AVX2, AVX-512): g_lvl is the
// level of the current pass, forced before each check (mm_paths_active follows it).
static isa_level g_lvl = ISA_AVX512;
// The table of the level above the current pass (AVX-512 during the AVX2 pass), NULL where there is none:
// the AVX2 kernels must give its bits.
static const mm_paths *paths_above(void) {
    if (g_lvl != ISA_AVX2 || isa_detect() < ISA_AVX512) return NULL;
    isa_force(ISA_AVX512);
    const mm_paths *k = mm_paths_active();
    isa_force(g_lvl);
    return k;
}
// op <- the AVX-512 r16 tile (TT rows of 16) where the pass is AVX2 on an AVX-512 CPU, else ov itself.
static void other_r16_tile(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *op,
                           const float *ov) {
    const mm_paths *k = paths_above();
    if (k) k->r16_tile(t, panel, K, x, xs, TT, op, 16, 16, NULL, 0);
    else memcpy(op, ov, sizeof(float) * 16 * (size_t)TT);
}
static int close_rel(float a, float b, double scale) { return fabs((double)a - b) <= 1e-5 * scale + 1e-6; }
// sum_k |w[k] * x[k]|: the scale of a product's rounding, for close_rel.
static double abs_dot(const float *w, const float *x, int64_t K) {
    double s = 0;
    for (int64_t k = 0; k < K; k++) s += fabs((double)w[k] * x[k]);
    return s;
}

static void check_paths(void) {
    isa_force(g_lvl);
    const mm_paths *kp = mm_paths_active();
    if (!kp) { SKIP("no AVX2 on this CPU: path kernel twins not run"); return; }
    static const int64_t Ks[] = {96, 320, 1024};
    // Q8_K activations (K-quants): bit-identical to quantize_row, with an all-zero super-block, a tie of
    // +a and -a for the largest magnitude (the first one sets the sign), and a super-block of denormals
    {
        const int64_t K = 1280;
        float *x = malloc(sizeof(float) * K);
        for (int64_t i = 0; i < K; i++) x[i] = rndn() * (i % 37 == 0 ? 6 : 1);
        for (int64_t i = 256; i < 512; i++) x[i] = 0;
        x[600] = -40.f; x[700] = 40.f;
        for (int64_t i = 1024; i < 1280; i++) x[i] = (float)(i - 1100) * 1e-40f;
        blk_q8_K *a = malloc(sizeof(blk_q8_K) * (K / 256)), *b = malloc(sizeof(blk_q8_K) * (K / 256));
        memset(a, 0x11, sizeof(blk_q8_K) * (K / 256)); memset(b, 0x22, sizeof(blk_q8_K) * (K / 256));
        quantize_row(DT_Q8_K, x, a, K);
        kp->q8k_quantize(x, b, K);
        CHECK(memcmp(a, b, sizeof(blk_q8_K) * (K / 256)) == 0, "q8_K quantizer: SIMD differs from scalar");
        CHECK(a[2].d > 0, "q8_K: the first of two equal magnitudes (-40) sets the sign");
        free(x); free(a); free(b);
    }
    // activation quantizers
    for (size_t ki = 0; ki < 3; ki++) {
        int64_t K = Ks[ki];
        float *x = malloc(sizeof(float) * K);
        for (int64_t i = 0; i < K; i++) x[i] = rndn() * (i % 40 == 0 ? 8 : 1);
        for (int64_t i = 0; i < 32; i++) x[i] = 0;   // an all-zero block
        blk_q8a *a = malloc(sizeof(blk_q8a) * (K / 32)), *b = malloc(sizeof(blk_q8a) * (K / 32));
        quantize_row_q8a(x, a, K);
        kp->q8a_quantize(x, b, K);
        CHECK(memcmp(a, b, sizeof(blk_q8a) * (K / 32)) == 0, "q8a quantizer K=%ld: SIMD differs from scalar", (long)K);
        static const dtype xt[] = {DT_Q4_0, DT_Q8_0};
        for (int d = 0; d < 2 && kp->xd_quantize; d++) {   // (AVX2: no xd decode)
            size_t nb = mm_xd_bytes(xt[d], K);
            uint8_t *p = aligned_alloc(64, nb), *q = aligned_alloc(64, nb);
            memset(p, 0x55, nb); memset(q, 0x55, nb);
            mm_xd_quantize_ref(xt[d], x, K, p);
            kp->xd_quantize(xt[d], x, K, q);
            CHECK(memcmp(p, q, nb) == 0, "xd quantizer %s K=%ld: SIMD differs from scalar", dtype_get(xt[d])->name, (long)K);
            // the layout holds the same integers as blk_q8a
            mm_xd_view v = mm_xd_map(xt[d], K, p);
            int ok = 1;
            for (int64_t bi = 0; bi < K / 32; bi++) ok &= v.d[bi] == a[bi].d && v.seed[bi] == -(xt[d] == DT_Q4_0 ? 8 : 128) * a[bi].sum;
            CHECK(ok, "xd layout %s K=%ld: scales / seeds differ from blk_q8a", dtype_get(xt[d])->name, (long)K);
            // decode kernel vs twin
            const int64_t N = 21;
            wmat w = make_w(xt[d], N, K);
            float ys[21], yv[21];
            size_t rb = dtype_row_bytes(xt[d], K);
            (xt[d] == DT_Q4_0 ? mm_xd_dot_q4_0_ref : mm_xd_dot_q8_0_ref)(K, w.W, rb, N, p, ys);
            kp->xd_dot[xt[d]](K, w.W, rb, N, q, yv);
            int bad = 0;
            for (int64_t n = 0; n < N; n++) {
                bad += !close_rel(yv[n], ys[n], abs_dot(w.Wf + n * K, x, K));
            }
            CHECK(bad == 0, "xd decode %s K=%ld: %d rows differ from the twin", dtype_get(xt[d])->name, (long)K, bad);
            free_w(&w);
            free(p); free(q);
        }
        free(a); free(b); free(x);
    }
    // panels: pack twins, unpacked values, tile twins
    static const dtype pt[] = {DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_IQ4_NL};
    for (int d = 0; d < 6 && kp->pack; d++) {   // (AVX2: no packed panels)
        dtype t = pt[d];
        const int64_t K = 320;
        wmat w = make_w(t, 16, K);
        size_t rb = dtype_row_bytes(t, K), pbytes = (size_t)(K / 32) * mm_panel_block_bytes(t);
        int off = mm_panel_offset(t);
        for (int nrows = 16; nrows >= 5; nrows -= 11) {
            uint8_t *p = aligned_alloc(64, pbytes), *q = aligned_alloc(64, pbytes);
            memset(p, 0x55, pbytes); memset(q, 0xAA, pbytes);
            mm_pack_panel(t, w.W, rb, nrows, K, p);
            kp->pack(t, w.W, rb, nrows, K, q);
            CHECK(memcmp(p, q, pbytes) == 0, "pack %s nrows=%d: SIMD differs from scalar", dtype_get(t)->name, nrows);
            int ok = 1;
            for (int l = 0; l < 16; l++)
                for (int64_t kk = 0; kk < K; kk++) {
                    const uint8_t *blk = p + (kk / 32) * mm_panel_block_bytes(t);
                    int e = (int)(kk % 32);
                    float dw = ((const float *)(blk + 512))[l];
                    float m = (t == DT_Q4_1 || t == DT_Q5_1) ? ((const float *)(blk + 576))[l] : 0.f;
                    float v = dw * (float)(blk[64 * (e / 4) + 4 * l + e % 4] - off) + m;
                    ok &= v == (l < nrows ? w.Wf[l * K + kk] : 0.f);
                }
            CHECK(ok, "pack %s nrows=%d: unpacked panel differs from the dequantized weights", dtype_get(t)->name, nrows);
            // tile vs twin, TT = 1..8
            const int TT = 8;
            float *x = malloc(sizeof(float) * TT * K);
            for (int64_t i = 0; i < TT * K; i++) x[i] = rndn();
            blk_q8a *xa = malloc(sizeof(blk_q8a) * TT * (K / 32));
            for (int r = 0; r < TT; r++) {
                quantize_row_q8a(x + r * K, xa + r * (K / 32), K);
                mm_q8a_seed(t, xa + r * (K / 32), K / 32);
            }
            for (int tt = 1; tt <= TT; tt += 3) {
                float os[8 * 16], ov[8 * 16];
                mm_tile_q32_ref(t, p, K, xa, sizeof(blk_q8a) * (K / 32), tt, os, 16, 16, NULL, 0);
                kp->tile_q32(t, q, K, xa, sizeof(blk_q8a) * (K / 32), tt, ov, 16, 16, NULL, 0);
                int bad = 0;
                for (int r = 0; r < tt; r++)
                    for (int l = 0; l < 16; l++) {
                        bad += !close_rel(ov[r * 16 + l], os[r * 16 + l], abs_dot(w.Wf + l * K, x + r * K, K));
                    }
                CHECK(bad == 0, "tile %s TT=%d: %d outputs differ from the twin", dtype_get(t)->name, tt, bad);
            }
            free(x); free(xa);
            free(p); free(q);
        }
        free_w(&w);
    }
    // f32 GEMM: activation packing (exact) and the register tile
    {
        const int64_t T = 40, K = 35;
        float *X = malloc(sizeof(float) * T * K);
        for (int64_t i = 0; i < T * K; i++) X[i] = rndn();
        size_t nf = mm_packx_floats(T, K);
        float *a = aligned_alloc(64, nf * sizeof(float)), *b = aligned_alloc(64, nf * sizeof(float));
        mm_packx_ref(X, T, K, a);
        kp->packx(X, T, K, b);
        CHECK(memcmp(a, b, nf * sizeof(float)) == 0, "packx: SIMD differs from scalar");
        CHECK(a[(1 * K + 3) * MM_GEMM_TB + 2] == X[(32 + 2) * K + 3] && a[(1 * K + 3) * MM_GEMM_TB + 9] == 0.f,
              "packx layout");
        float *wr = malloc(sizeof(float) * MM_GEMM_NR * K);
        for (int64_t i = 0; i < MM_GEMM_NR * K; i++) wr[i] = rndn();
        float os[MM_GEMM_NR * MM_GEMM_TB], ov[MM_GEMM_NR * MM_GEMM_TB];
        mm_f32gemm_ref(K, wr, (size_t)K, a, os);
        kp->f32gemm(K, wr, (size_t)K, b, ov);
        int bad = 0;
        for (int i = 0; i < MM_GEMM_NR; i++)
            for (int t = 0; t < MM_GEMM_TB; t++) {
                double sc = 0;
                for (int64_t kk = 0; kk < K; kk++) sc += fabs((double)wr[i * K + kk] * a[kk * MM_GEMM_TB + t]);
                bad += !close_rel(ov[i * MM_GEMM_TB + t], os[i * MM_GEMM_TB + t], sc);
            }
        CHECK(bad == 0, "f32 GEMM tile: %d outputs differ from the twin", bad);
        const mm_paths *up = paths_above();
        if (up) {   // AVX2: the bits of the AVX-512 tile (one FMA chain per output in both)
            up->f32gemm(K, wr, (size_t)K, b, os);
            CHECK(memcmp(os, ov, sizeof os) == 0, "f32 GEMM tile: AVX2 differs from AVX-512");
        }
        free(X); free(a); free(b); free(wr);
    }
}

// The r16 panels of w (N rows, NP panels of psz bytes) by the scalar pack (*p) and the kernel table's (*q):
// they must be identical, and mm_pack (all panels at once) must give the same bytes.
static void r16_pack_both(const mm_paths *kp, dtype t, const wmat *w, int64_t N, int64_t K, int64_t NP,
                          size_t psz, uint8_t **p, uint8_t **q) {
    const char *tn = dtype_get(t)->name;
    size_t rb = dtype_row_bytes(t, K), al = (psz * NP + 63) / 64 * 64;   // (aligned_alloc: a multiple of 64)
    *p = aligned_alloc(64, al);
    *q = aligned_alloc(64, al);
    memset(*p, 0x55, psz * NP); memset(*q, 0xAA, psz * NP);
    for (int64_t i = 0; i < NP; i++) {
        int nr = N - 16 * i < 16 ? (int)(N - 16 * i) : 16;
        mm_r16_pack_ref(t, w->W + (size_t)(16 * i) * rb, rb, nr, K, *p + i * psz);
        kp->r16_pack(t, w->W + (size_t)(16 * i) * rb, rb, nr, K, *q + i * psz);
    }
    CHECK(memcmp(*p, *q, psz * NP) == 0, "r16 pack %s: the table's pack differs from the scalar one", tn);
    CHECK(mm_pack_bytes(t, N, K) == psz * NP, "mm_pack_bytes %s", tn);
    uint8_t *m = aligned_alloc(64, al);
    CHECK(mm_pack(NULL, w->W, t, N, K, m) == 0 && memcmp(m, *p, psz * NP) == 0, "mm_pack %s = panel by panel", tn);
    free(m);
}

// Decode over NP panels at once has the bits of the tile with one activation row, panel by panel.
static void r16_check_dec_is_tile(const mm_paths *kp, dtype t, const uint8_t *q, int64_t NP, size_t psz, int64_t K,
                                  const void *x, size_t xs) {
    float *od = malloc(sizeof(float) * 16 * (size_t)NP), ot[16];
    kp->r16_dec(t, q, NP, K, x, od, (size_t)NP * psz);
    int same = 1;
    for (int64_t i = 0; i < NP; i++) {
        kp->r16_tile(t, q + i * psz, K, x, xs, 1, ot, 16, 16, NULL, 0);
        for (int l = 0; l < 16; l++) same &= od[16 * i + l] == ot[l];
    }
    CHECK(same, "r16 decode %s: differs from the one-row tile", dtype_get(t)->name);
    free(od);
}

// ---------------------------------------------------------------- r16: weights packed at load
// Kernel twins: the SIMD pack is bit-identical to the scalar one and holds exactly the weights' levels and
// scales; the r16 tile (TT 1..8) and decode kernels equal their scalar twin within 1e-5 * sum|w*x|, and
// equal the packed-panel tile (the prefill path over unpacked weights) bit for bit.
static void check_r16_kernels(void) {
    isa_force(g_lvl);
    const mm_paths *kp = mm_paths_active();
    if (!kp) { SKIP("no AVX2 on this CPU: r16 kernel twins not run"); return; }
    static const dtype rt[] = {DT_Q4_0, DT_Q8_0, DT_Q5_0, DT_Q5_1, DT_Q4_1, DT_IQ4_NL};
    for (int d = 0; d < 6; d++) {
        dtype t = rt[d];
        if (!mm_paths_r16(kp, t)) continue;   // (not an r16 type at this level)
        const char *tn = dtype_get(t)->name;
        const int64_t K = 320, nb = K / 32, NP = 3;   // 3 panels, the last with 5 rows
        const int64_t N = 16 * (NP - 1) + 5;
        wmat w = make_w(t, N, K);
        size_t rb = dtype_row_bytes(t, K), psz = (size_t)nb * mm_r16_block_bytes(t);
        uint8_t *p, *q;
        r16_pack_both(kp, t, &w, N, K, NP, psz, &p, &q);
        // the packed bytes decode to the dequantized weights (zero past row N)
        int ok = 1;
        for (int64_t i = 0; i < NP; i++)
            for (int l = 0; l < 16; l++)
                for (int64_t kk = 0; kk < K; kk++) {
                    const uint8_t *blk = p + i * psz + (kk / 32) * mm_r16_block_bytes(t);
                    int e = (int)(kk % 32), lv;
                    uint16_t h;
                    if (t == DT_Q4_0 || t == DT_Q4_1 || t == DT_IQ4_NL) {   // (IQ4_NL: the nibble indexes the levels)
                        lv = ((blk[64 * ((e & 15) / 4) + 4 * l + e % 4] >> (e < 16 ? 0 : 4)) & 0xF);
                        lv = t == DT_IQ4_NL ? iq4_levels[lv] : lv - (t == DT_Q4_0 ? 8 : 0);
                        memcpy(&h, blk + 256 + 2 * l, 2);
                    } else if (t == DT_Q5_0 || t == DT_Q5_1) {   // plus the fifth bit: mask e / 4, bit 4l + e % 4
                        uint64_t mk;
                        memcpy(&mk, blk + 256 + 8 * (e / 4), 8);
                        lv = (((blk[64 * ((e & 15) / 4) + 4 * l + e % 4] >> (e < 16 ? 0 : 4)) & 0xF) |
                              (int)((mk >> (4 * l + e % 4)) & 1) << 4) - (t == DT_Q5_0 ? 16 : 0);
                        memcpy(&h, blk + 320 + 2 * l, 2);
                    } else {
                        lv = blk[64 * (e / 4) + 4 * l + e % 4] - 128;
                        memcpy(&h, blk + 512 + 2 * l, 2);
                    }
                    int64_t row = 16 * i + l;
                    float mn = 0;   // Q4_1 / Q5_1: value = d * level + m
                    if (t == DT_Q5_1 || t == DT_Q4_1) {
                        uint16_t hm;
                        memcpy(&hm, blk + (t == DT_Q5_1 ? 352 : 288) + 2 * l, 2);
                        mn = f16_to_f32(hm);
                    }
                    ok &= f16_to_f32(h) * (float)lv + mn == (row < N ? w.Wf[row * K + kk] : 0.f);
                }
        CHECK(ok, "r16 pack %s: unpacked values differ from the dequantized weights", tn);
        // activations (seeded blk_q8a rows)
        const int TT = 8;
        float *x = malloc(sizeof(float) * TT * K);
        for (int64_t i = 0; i < TT * K; i++) x[i] = rndn();
        blk_q8a *xa = malloc(sizeof(blk_q8a) * TT * nb);
        for (int r = 0; r < TT; r++) {
            quantize_row_q8a(x + r * K, xa + r * nb, K);
            mm_q8a_seed(t, xa + r * nb, nb);
        }
        size_t xs = sizeof(blk_q8a) * nb;
        uint8_t *panel = aligned_alloc(64, (size_t)nb * mm_panel_block_bytes(t));
        for (int64_t i = 0; i < NP; i++) {
            int nr = N - 16 * i < 16 ? (int)(N - 16 * i) : 16;
            mm_pack_panel(t, w.W + (size_t)(16 * i) * rb, rb, nr, K, panel);
            for (int tt = 1; tt <= TT; tt++) {
                float os[8 * 16], ov[8 * 16], op[8 * 16];
                mm_r16_tile_ref(t, p + i * psz, K, xa, xs, tt, os, 16, 16, NULL, 0);
                kp->r16_tile(t, q + i * psz, K, xa, xs, tt, ov, 16, 16, NULL, 0);
                // the packed-panel tile where this level has it, else the AVX-512 r16 tile: the same bits
                if (kp->tile_q32) kp->tile_q32(t, panel, K, xa, xs, tt, op, 16, 16, NULL, 0);
                else other_r16_tile(t, q + i * psz, K, xa, xs, tt, op, ov);
                int bad = 0, same = 1;
                for (int r = 0; r < tt; r++)
                    for (int l = 0; l < 16; l++) {
                        int64_t row = 16 * i + l;
                        double sc = row < N ? abs_dot(w.Wf + row * K, x + r * K, K) : 0;
                        bad += !close_rel(ov[r * 16 + l], os[r * 16 + l], sc);
                        same &= ov[r * 16 + l] == op[r * 16 + l];
                    }
                CHECK(bad == 0, "r16 tile %s panel %ld TT=%d: %d outputs differ from the twin", tn, (long)i, tt, bad);
                CHECK(same, "r16 tile %s panel %ld TT=%d: not the bits of the packed-panel tile (AVX2: of the AVX-512 tile)",
                      tn, (long)i, tt);
            }
        }
        r16_check_dec_is_tile(kp, t, q, NP, psz, K, xa, xs);
        free(panel); free(x); free(xa); free(p); free(q);
        free_w(&w);
    }
    CHECK(mm_pack_bytes(DT_Q8_K, 16, 256) == 0 && mm_pack_bytes(DT_Q8_0, 16, 48) == 0, "no packed form");
    uint8_t dummy[64];
    CHECK(mm_pack(NULL, dummy, DT_Q8_K, 1, 256, dummy) == -1, "mm_pack: unsupported dtype is an error");
}

// Value of element e of row l in one r16 super-block of a K-quant, with the dequantizer's arithmetic.
static float r16k_value(dtype t, const uint8_t *sb, int l, int e) {
    uint16_t hd;
    if (t == DT_Q2_K) {   // element 128h + 32s + k: qs register byte; scale / min nibbles of byte e / 16
        int h = e / 128, s = (e % 128) / 32, k = e % 32, sc = sb[R16_Q2K_SC + 16 * (e / 16) + l];
        uint16_t hm;
        memcpy(&hd, sb + R16_Q2K_D + 2 * l, 2);
        memcpy(&hm, sb + R16_Q2K_DMIN + 2 * l, 2);
        int low = (sb[512 * h + 64 * (k / 4) + 4 * l + k % 4] >> (2 * s)) & 3;
        return f16_to_f32(hd) * (float)(sc & 0xF) * (float)low - f16_to_f32(hm) * (float)(sc >> 4);
    }
    if (t == DT_Q3_K) {   // element 128h + 32s + k: qs register byte, hmask bit 4h + s, scale byte e / 16
        int h = e / 128, s = (e % 128) / 32, k = e % 32;
        uint8_t sc12[12];
        for (int b = 0; b < 12; b++) sc12[b] = sb[R16_Q3K_SC + 16 * b + l];
        memcpy(&hd, sb + R16_Q3K_D + 2 * l, 2);
        int low = (sb[512 * h + 64 * (k / 4) + 4 * l + k % 4] >> (2 * s)) & 3;
        int hb = (sb[R16_Q3K_HM + 64 * (k / 4) + 4 * l + k % 4] >> (4 * h + s)) & 1;
        return f16_to_f32(hd) * (float)(q3k_scale(e / 16, sc12) - 32) * (float)(low + 4 * hb - 4);
    }
    if (t == DT_IQ4_XS) {   // sub-block e / 32: Q4_0's nibble order, the row's scales_l / scales_h / d
        blk_iq4_xs b;
        memcpy(&b.scales_h, sb + R16_IQ4XS_SH + 2 * l, 2);
        for (int i = 0; i < 4; i++) b.scales_l[i] = sb[R16_IQ4XS_SL + 16 * i + l];
        memcpy(&hd, sb + R16_IQ4XS_D + 2 * l, 2);
        int ib = e / 32, k = e % 32;
        uint8_t v = sb[256 * ib + 64 * ((k % 16) / 4) + 4 * l + k % 4];
        return (f16_to_f32(hd) * (float)(iq4xs_scale(&b, ib) - 32)) * (float)iq4_levels[k < 16 ? v & 0xF : v >> 4];
    }
    if (t == DT_Q4_K || t == DT_Q5_K) {   // Q5_K: the fifth bits (512 bytes) before the scales
        const int so = t == DT_Q5_K ? 2560 : 2048;
        uint8_t sc12[12];
        uint16_t hm;
        for (int b = 0; b < 12; b++) sc12[b] = sb[so + 16 * b + l];
        memcpy(&hd, sb + so + 192 + 2 * l, 2);
        memcpy(&hm, sb + so + 224 + 2 * l, 2);
        int j = e / 32, k = e % 32, by = 32 * (j / 2) + k, sc, mn;   // qs byte of element e
        uint8_t v = sb[512 * (by / 32) + 64 * ((by % 32) / 4) + 4 * l + by % 4];
        int lv = (j & 1) ? v >> 4 : v & 0xF;
        if (t == DT_Q5_K) {   // group g's bits at {4, 5, 0, 1}[g] (low sub-block) and 2 above (high)
            static const int pos[4] = {4, 5, 0, 1};
            lv |= ((sb[2048 + 64 * (k / 4) + 4 * l + k % 4] >> (pos[j / 2] + 2 * (j & 1))) & 1) << 4;
        }
        q4k_scale_min(j, sc12, &sc, &mn);
        return (f16_to_f32(hd) * sc) * lv - f16_to_f32(hm) * mn;
    }
    // Q6_K: element 128h + 32c + 4j + i, registers v[h][j][0..2] (layout in matmul_kernels.h)
    int h = e / 128, c = (e % 128) / 32, j = (e % 32) / 4, i = e % 4;
    const uint8_t *v = sb + 1536 * h + 192 * j + 4 * l + i;
    int q = (c < 3 ? v[64 * c] & 63 : (v[0] >> 6) | (v[64] >> 6) << 2 | (v[128] >> 6) << 4) - 32;
    memcpy(&hd, sb + 3328 + 2 * l, 2);
    return f16_to_f32(hd) * (int8_t)sb[3072 + 16 * (e / 16) + l] * q;
}

// r16 K-quants (Q4_K, Q5_K, Q6_K): the packed bytes hold exactly the weights (every value rebuilt from the
// panel with the dequantizer's arithmetic equals the dequantized matrix); the tile (TT 1..8) equals its
// scalar twin within 1e-5 * sum|w*x|; the twin equals the unpacked product (the generic dot twin) within
// the same bound; decode over several panels has the bits of the one-row tile.
static void check_r16_kquant_kernels(dtype t, int64_t K) {
    isa_force(g_lvl);
    const mm_paths *kp = mm_paths_active();
    const char *tn = dtype_get(t)->name;
    if (!kp) { SKIP("no AVX2 on this CPU: r16 %s kernel twins not run", tn); return; }
    if (!mm_paths_r16(kp, t)) return;   // (not an r16 type at this level)
    const int64_t ns = K / 256, NP = 3, N = 16 * (NP - 1) + 7;   // the last panel has 7 rows
    wmat w = make_w(t, N, K);
    size_t psz = (size_t)(K / 32) * mm_r16_block_bytes(t), sbb = psz / (size_t)ns;
    CHECK(psz == (size_t)ns * 16 * dtype_get(t)->block_bytes, "r16 %s: a panel holds exactly its 16 rows' bytes", tn);
    uint8_t *p, *q;
    r16_pack_both(kp, t, &w, N, K, NP, psz, &p, &q);
    int ok = 1;
    for (int64_t i = 0; i < NP; i++)
        for (int l = 0; l < 16; l++)
            for (int64_t s = 0; s < ns; s++)
                for (int e = 0; e < 256; e++) {
                    int64_t row = 16 * i + l;
                    ok &= r16k_value(t, p + i * psz + s * sbb, l, e) == (row < N ? w.Wf[row * K + 256 * s + e] : 0.f);
                }
    CHECK(ok, "r16 pack %s: values rebuilt from the panel differ from the dequantized weights", tn);
    const int TT = 8;
    float *x = malloc(sizeof(float) * TT * K);
    for (int64_t i = 0; i < TT * K; i++) x[i] = rndn();
    size_t xs = sizeof(blk_q8_K) * ns;
    blk_q8_K *xk = malloc(xs * TT);
    for (int r = 0; r < TT; r++) quantize_row(DT_Q8_K, x + r * K, xk + r * ns, K);
    // the unpacked product over the same quantized activations (scalar twins: isa 0)
    float *yu = malloc(sizeof(float) * TT * N);
    isa_force(ISA_SCALAR);
    for (int r = 0; r < TT; r++) CHECK(mm_matmul(NULL, w.W, t, N, K, x + r * K, 1, NULL, yu + r * N) == 0);
    isa_force(g_lvl);
    int bad = 0, badu = 0, diff_above = 0;
    for (int64_t i = 0; i < NP; i++)
        for (int tt = 1; tt <= TT; tt++) {
            float os[8 * 16], ov[8 * 16], oa[8 * 16];
            mm_r16_tile_ref(t, p + i * psz, K, xk, xs, tt, os, 16, 16, NULL, 0);
            kp->r16_tile(t, q + i * psz, K, xk, xs, tt, ov, 16, 16, NULL, 0);
            other_r16_tile(t, q + i * psz, K, xk, xs, tt, oa, ov);
            diff_above += memcmp(oa, ov, sizeof(float) * 16 * (size_t)tt) != 0;
            for (int r = 0; r < tt; r++)
                for (int l = 0; l < 16; l++) {
                    int64_t row = 16 * i + l;
                    double sc = row < N ? abs_dot(w.Wf + row * K, x + r * K, K) : 0;
                    bad += !close_rel(ov[r * 16 + l], os[r * 16 + l], sc);
                    if (tt == TT) badu += row < N ? !close_rel(os[r * 16 + l], yu[r * N + row], sc) : os[r * 16 + l] != 0.f;
                }
        }
    CHECK(bad == 0, "r16 tile %s: %d outputs differ from the twin", tn, bad);
    CHECK(badu == 0, "r16 tile twin %s: %d outputs differ from the unpacked product", tn, badu);
    CHECK(diff_above == 0, "r16 tile %s: %d tiles of the AVX2 kernel differ from the AVX-512 bits", tn, diff_above);
    r16_check_dec_is_tile(kp, t, q, NP, psz, K, xk, xs);
    free(x); free(xk); free(yu); free(p); free(q);
    free_w(&w);
}

// mm_matmul_multi with packed copies (mm_out.Wp): prefill (T >= 2) bit-identical to the unpacked product,
// decode bit-identical to the same row inside a prefill (F16, a plain copy: to the unpacked decode), and
// close to the unpacked decode; threads, bias,
// partial panels, several tasks per thread (N = 300). Without AVX-512 the copy is ignored (mm_pack_bytes is 0 there, nothing to pack).
static void check_packed_products(tpool *pool2) {
    isa_force(g_lvl);
    const mm_paths *kp = mm_paths_active();
    if (!kp) { SKIP("no AVX2: packed products not run"); return; }
    static const dtype rt[] = {DT_Q4_0, DT_Q4_1, DT_Q8_0, DT_Q5_0, DT_Q5_1, DT_F16, DT_BF16, DT_Q4_K, DT_Q5_K, DT_Q6_K,
                               DT_IQ4_NL, DT_IQ4_XS, DT_Q3_K, DT_Q2_K};
    static const int64_t Ns[] = {37, 300};   // (F16 / BF16: same-layout copies)
    for (int d = 0; d < 14; d++)
        for (int ni = 0; ni < 2; ni++) {
            dtype t = rt[d];
            const char *tn = dtype_get(t)->name;
            const int64_t N = Ns[ni], K = 256, T = 9;
            if (!mm_pack_bytes(t, N, K)) continue;   // (no packed form at this level)
            wmat w = make_w(t, N, K);
            void *Wp = aligned_alloc(64, (mm_pack_bytes(t, N, K) + 63) / 64 * 64);
            CHECK(mm_pack(pool2, w.W, t, N, K, Wp) == 0);
            float *X = malloc(sizeof(float) * T * K), *bias = malloc(sizeof(float) * N);
            for (int64_t i = 0; i < T * K; i++) X[i] = rndn();
            for (int64_t i = 0; i < N; i++) bias[i] = rndn();
            float *Yu = malloc(sizeof(float) * T * N), *Yp = malloc(sizeof(float) * T * N), *Yd = malloc(sizeof(float) * N);
            mm_out ou = {.W = w.W, .wt = t, .N = N, .bias = bias, .Y = Yu};
            mm_out op = {.W = w.W, .wt = t, .N = N, .bias = bias, .Y = Yp, .Wp = Wp};
            CHECK(mm_matmul_multi(NULL, 1, &ou, K, X, T) == 0 && mm_matmul_multi(pool2, 1, &op, K, X, T) == 0);
            const bool widened = t == DT_IQ4_XS || t == DT_Q3_K || t == DT_Q2_K;
            if (widened) {
                // (its unpacked prefill widens the weights for the f32 tile with f32 activations: no twin of
                // the packed one, which the decode rows below pin down bit for bit)
            } else if (t == DT_F16 || t == DT_BF16 || (kp->tile_q32 && t != DT_Q4_K && t != DT_Q5_K && t != DT_Q6_K)) {
                CHECK(memcmp(Yu, Yp, sizeof(float) * T * N) == 0, "packed prefill %s N=%ld: not the unpacked bits", tn, (long)N);
            } else {   // K-quants (AVX2: all): the unpacked product sums in another order (per-row dot kernels)
                int cl = 1;
                for (int64_t r = 0; r < T; r++)
                    for (int64_t n = 0; n < N; n++) {
                        cl &= close_rel(Yp[r * N + n], Yu[r * N + n], abs_dot(w.Wf + n * K, X + r * K, K));
                    }
                CHECK(cl, "packed prefill %s N=%ld: outside 1e-5 of the unpacked product", tn, (long)N);
            }
            if (t == DT_F16 || t == DT_BF16) CHECK(memcmp(Wp, w.W, mm_pack_bytes(t, N, K)) == 0, "%s packed copy differs", tn);
            int same = 1, close = 1;
            float *Yd0 = malloc(sizeof(float) * N);
            for (int64_t r = 0; r < T; r++) {
                mm_out od = {.W = w.W, .wt = t, .N = N, .bias = bias, .Y = Yd, .Wp = Wp};
                CHECK(mm_matmul_multi(r % 2 ? pool2 : NULL, 1, &od, K, X + r * K, 1) == 0);
                // r16: the bits of the same row inside a prefill; F16 / BF16 (same layout, same decode kernel):
                // the bits of the unpacked decode
                // (IQ4_XS / Q2_K / Q3_K: close to the unpacked decode, whose activations are the same Q8_K rows)
                if (t == DT_F16 || t == DT_BF16 || widened) CHECK(mm_matmul(NULL, w.W, t, N, K, X + r * K, 1, bias, Yd0) == 0);
                for (int64_t n = 0; n < N; n++) {
                    same &= Yd[n] == (t == DT_F16 || t == DT_BF16 ? Yd0[n] : Yp[r * N + n]);
                    close &= close_rel(Yd[n], widened ? Yd0[n] : Yu[r * N + n], abs_dot(w.Wf + n * K, X + r * K, K));
                }
            }
            CHECK(same, "packed decode %s N=%ld: differs from the same row in a prefill (F16: from the unpacked decode)", tn, (long)N);
            free(Yd0);
            CHECK(close, "packed decode %s N=%ld: outside 1e-5 of the unpacked product", tn, (long)N);
            free(X); free(bias); free(Yu); free(Yp); free(Yd); free(Wp);
            free_w(&w);
        }
}

// Decode split (matmul.c dec_run): one range of rows per thread, the rest taken from the back of other
// ranges. Every output row is computed by one kernel call on its own, so any number of threads (more
// than the cores here: ranges get stolen) gives the bits of the one-thread product, and no row is missed
// (Y starts as NaN). Packed Q4_0 / Q8_0 / F16 and an unpacked xd type in one dispatch, N not a multiple
// of 16, sizes that give several claims per range.
static void check_decode_split(void) {
    isa_force(g_lvl);
    static const dtype dt[] = {DT_Q4_0, DT_Q8_0, DT_F16, DT_Q4_K};
    static const int64_t Ns[] = {4000, 33, 2100, 800};   // (several 128 KiB claims per range at 2 threads)
    const int64_t K = 512;
    wmat w[4];
    void *Wp[4] = {0};
    float *Y1[4], *Yt[4], *X = malloc(sizeof(float) * K);
    for (int64_t i = 0; i < K; i++) X[i] = rndn();
    mm_out o1[4], ot[4];
    for (int i = 0; i < 4; i++) {
        w[i] = make_w(dt[i], Ns[i], K);
        size_t pb = mm_pack_bytes(dt[i], Ns[i], K);
        if (pb) {
            Wp[i] = aligned_alloc(64, (pb + 63) / 64 * 64);
            CHECK(mm_pack(NULL, w[i].W, dt[i], Ns[i], K, Wp[i]) == 0);
        }
        Y1[i] = malloc(sizeof(float) * Ns[i]);
        Yt[i] = malloc(sizeof(float) * Ns[i]);
        o1[i] = (mm_out){.W = w[i].W, .wt = dt[i], .N = Ns[i], .Y = Y1[i], .Wp = Wp[i]};
        ot[i] = o1[i];
        ot[i].Y = Yt[i];
    }
    CHECK(mm_matmul_multi(NULL, 4, o1, K, X, 1) == 0);
    static const int nths[] = {2, 3, 5, 8};
    for (int a = 0; a < 4; a++) {
        tpool *p = tpool_new(nths[a]);
        for (int rep = 0; rep < 20; rep++) {
            for (int i = 0; i < 4; i++)
                for (int64_t r = 0; r < Ns[i]; r++) Yt[i][r] = NAN;
            int n = 1 + rep % 4;   // 1..4 products per dispatch
            CHECK(mm_matmul_multi(p, n, ot, K, X, 1) == 0);
            int same = 1;
            for (int i = 0; i < n; i++) same &= memcmp(Y1[i], Yt[i], sizeof(float) * Ns[i]) == 0;
            if (!same) { CHECK(same, "decode split, %d threads, %d products: not the one-thread bits", nths[a], n); break; }
            if (rep == 19) CHECK(same);
        }
        tpool_free(p);
    }
    for (int i = 0; i < 4; i++) { free_w(&w[i]); free(Wp[i]); free(Y1[i]); free(Yt[i]); }
    free(X);
}

// Gated feed-forward decode (mm_glu_decode): gate and up with the bits of the one-thread products, and
// H = glu(gate, up) with the bits of the activation over whole vectors, for any number of threads (more
// than the cores: ranges get stolen); H apart from and in place of up's output; a Q4_K gate with a Q6_K
// up (a Q4_K_M mix); and -1, nothing written, where a dtype has no decode path or the N differ.
static void check_glu_decode(void) {
    isa_force(g_lvl);
    static const dtype gt[] = {DT_Q4_0, DT_Q8_0, DT_F16, DT_Q4_K, DT_Q4_0}, ut[] = {DT_Q4_0, DT_Q8_0, DT_F16, DT_Q6_K, DT_Q4_0};
    static const int packed[] = {1, 1, 1, 1, 0};   // last: the unpacked (xd) decode
    const int64_t K = 512, N = 1000;
    float *X = malloc(sizeof(float) * K), *G1 = malloc(sizeof(float) * N), *U1 = malloc(sizeof(float) * N),
          *H1 = malloc(sizeof(float) * N), *G = malloc(sizeof(float) * N), *U = malloc(sizeof(float) * N),
          *H = malloc(sizeof(float) * N);
    for (int64_t i = 0; i < K; i++) X[i] = rndn();
    static const int nths[] = {1, 2, 3, 5};
    for (int c = 0; c < 5; c++) {
        // (cases without a decode path at this level: AVX2 has no unpacked xd decode, r16 for fewer types)
        if (packed[c] ? !mm_pack_bytes(gt[c], N, K) || !mm_pack_bytes(ut[c], N, K) : !mm_paths_active()->xd_quantize) continue;
        wmat wg = make_w(gt[c], N, K), wu = make_w(ut[c], N, K);
        void *Pg = NULL, *Pu = NULL;
        if (packed[c]) {
            Pg = aligned_alloc(64, (mm_pack_bytes(gt[c], N, K) + 63) / 64 * 64);
            Pu = aligned_alloc(64, (mm_pack_bytes(ut[c], N, K) + 63) / 64 * 64);
            CHECK(mm_pack(NULL, wg.W, gt[c], N, K, Pg) == 0 && mm_pack(NULL, wu.W, ut[c], N, K, Pu) == 0);
        }
        mm_out o1[2] = {{.W = wg.W, .wt = gt[c], .N = N, .Y = G1, .Wp = Pg}, {.W = wu.W, .wt = ut[c], .N = N, .Y = U1, .Wp = Pu}};
        CHECK(mm_matmul_multi(NULL, 2, o1, K, X, 1) == 0);
        mm_glu_fn fn = c % 2 ? geglu_fwd : swiglu_fwd;
        fn(H1, G1, U1, N);
        for (int a = 0; a < 4; a++) {
            tpool *p = tpool_new(nths[a]);
            int same = 1;
            for (int rep = 0; rep < 8 && same; rep++) {
                bool inplace = rep % 2;   // H in place of up's output, as forward.c runs it
                for (int64_t n = 0; n < N; n++) G[n] = U[n] = H[n] = NAN;
                mm_out og = {.W = wg.W, .wt = gt[c], .N = N, .Y = G, .Wp = Pg}, ou = {.W = wu.W, .wt = ut[c], .N = N, .Y = U, .Wp = Pu};
                CHECK(mm_glu_decode(p, &og, &ou, K, X, fn, inplace ? U : H, NULL) == 0);
                same = memcmp(G, G1, sizeof(float) * N) == 0 && memcmp(inplace ? U : H, H1, sizeof(float) * N) == 0 &&
                       (inplace || memcmp(U, U1, sizeof(float) * N) == 0);
            }
            CHECK(same, "glu decode %s/%s%s, %d threads: not the bits of the products and the activation apart",
                  dtype_get(gt[c])->name, dtype_get(ut[c])->name, packed[c] ? " packed" : "", nths[a]);
            tpool_free(p);
        }
        free_w(&wg); free_w(&wu); free(Pg); free(Pu);
    }
    // no decode path (F32 weights) / N differ: -1 and the outputs untouched
    wmat wf = make_w(DT_F32, 64, K), wq = make_w(DT_Q8_0, 48, K);
    for (int64_t n = 0; n < 64; n++) G[n] = U[n] = H[n] = NAN;
    mm_out of = {.W = wf.W, .wt = DT_F32, .N = 64, .Y = G}, of2 = {.W = wf.W, .wt = DT_F32, .N = 64, .Y = U};
    mm_out oq = {.W = wq.W, .wt = DT_Q8_0, .N = 48, .Y = U};
    CHECK(mm_glu_decode(NULL, &of, &of2, K, X, swiglu_fwd, H, NULL) == -1 && isnan(G[0]) && isnan(H[0]),
          "glu decode of F32 weights: -1, nothing computed");
    CHECK(mm_glu_decode(NULL, &of, &oq, K, X, swiglu_fwd, H, NULL) == -1, "glu decode, N 64 and 48: -1");
    free_w(&wf); free_w(&wq);
    free(X); free(G1); free(U1); free(H1); free(G); free(U); free(H);
}

// The first index of the largest value, NaN never chosen (the test's own loop, for argmax_f32 and
// mm_out.argmax).
static int64_t first_max(const float *y, int64_t n) {
    int64_t b = -1;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(y[i]) && (b < 0 || y[i] > y[b])) b = i;
    return b < 0 ? 0 : b;
}

static void check_argmax_f32(void) {
    float v[300];
    for (int i = 0; i < 300; i++) v[i] = rndn();
    CHECK(argmax_f32(v, 300) == first_max(v, 300), "argmax_f32 of 300 values");
    v[7] = v[250] = 50.0f;
    CHECK(argmax_f32(v, 300) == 7, "argmax_f32: equal maxima at 7 and 250: the lower");
    v[0] = NAN;
    v[3] = INFINITY;
    CHECK(argmax_f32(v, 300) == 3, "argmax_f32: NaN skipped, +inf wins");
    for (int i = 0; i < 300; i++) v[i] = NAN;
    CHECK(argmax_f32(v, 300) == 0 && argmax_f32(v, 0) == 0, "argmax_f32: all NaN / none: 0");
    v[40] = -INFINITY;
    CHECK(argmax_f32(v, 300) == 40, "argmax_f32: only -inf compares");
    // pieces merged in any order give the whole row's answer
    for (int i = 0; i < 300; i++) v[i] = (float)(i % 37);
    float bv = -INFINITY;
    int64_t bi = -1;
    argmax_f32_merge(&bv, &bi, v + 200, 200, 100);
    argmax_f32_merge(&bv, &bi, v, 0, 100);
    argmax_f32_merge(&bv, &bi, v + 100, 100, 100);
    CHECK(bi == 36 && bv == 36.0f, "argmax_f32_merge: pieces 2, 0, 1: index %lld", (long long)bi);
}

// mm_out.argmax: the decode split's per-thread pieces (and the other paths' pass) give first_max of Y,
// also with the maximum planted twice, far apart (so two threads each hold one at 2+ threads).
static void check_argmax_decode(void) {
    isa_force(g_lvl);
    static const dtype dt[] = {DT_Q4_0, DT_Q8_0, DT_F16, DT_Q4_K, DT_Q4_0, DT_F32};
    static const int packed[] = {1, 1, 1, 1, 0, 0};   // Q4_0 unpacked: xd decode (AVX-512) or rows; F32: rows
    const int64_t K = 512, N = 1000;
    float *X = malloc(sizeof(float) * K), *Y = malloc(sizeof(float) * N);
    for (int64_t i = 0; i < K; i++) X[i] = rndn();
    static const int nths[] = {1, 2, 3, 5};
    for (int c = 0; c < 6; c++) {
        if (packed[c] && !mm_pack_bytes(dt[c], N, K)) continue;
        wmat w = make_w(dt[c], N, K);
        size_t rb = dtype_row_bytes(dt[c], K);
        for (int plant = 0; plant < 2; plant++) {
            void *P = NULL;
            if (packed[c]) {
                P = aligned_alloc(64, (mm_pack_bytes(dt[c], N, K) + 63) / 64 * 64);
                CHECK(mm_pack(NULL, w.W, dt[c], N, K, P) == 0);
            }
            for (int a = 0; a < 4; a++) {
                tpool *p = tpool_new(nths[a]);
                int64_t am = -7;
                mm_out o = {.W = w.W, .wt = dt[c], .N = N, .Y = Y, .Wp = P, .argmax = &am};
                CHECK(mm_matmul_multi(p, 1, &o, K, X, 1) == 0);
                int64_t want = first_max(Y, N);
                CHECK(am == want, "argmax of a %s%s decode, %d threads%s: %lld, the outputs' %lld", dtype_get(dt[c])->name,
                      packed[c] ? " packed" : "", nths[a], plant ? ", maximum planted twice" : "", (long long)am,
                      (long long)want);
                tpool_free(p);
            }
            free(P);
            if (plant) break;
            // copy the best row far away: the same outputs, so two equal maxima; the lower index wins
            int64_t b = first_max(Y, N), far = b < N / 2 ? N - 3 : 2;
            memcpy(w.W + rb * (size_t)far, w.W + rb * (size_t)b, rb);
        }
        free_w(&w);
    }
    // with several rows (prefill) it is the last row's
    wmat w = make_w(DT_Q8_0, 200, K);
    float *X3 = malloc(sizeof(float) * K * 3), *Y3 = malloc(sizeof(float) * 200 * 3);
    for (int64_t i = 0; i < K * 3; i++) X3[i] = rndn();
    int64_t am = -7;
    mm_out o = {.W = w.W, .wt = DT_Q8_0, .N = 200, .Y = Y3, .argmax = &am};
    CHECK(mm_matmul_multi(NULL, 1, &o, K, X3, 3) == 0 && am == first_max(Y3 + 400, 200), "argmax of T = 3: the last row's");
    free_w(&w);
    free(X3); free(Y3); free(X); free(Y);
}

// ---------------------------------------------------------------- thread pool
typedef struct { atomic_int *hits; atomic_int bad_thread; int nth; atomic_long sum; } pool_ctx;
static void count_task(void *ctx, int64_t task, int thread) {
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->hits[task], 1);
    if (thread < 0 || thread >= c->nth) atomic_fetch_add(&c->bad_thread, 1);
}
static void sum_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->sum, (long)task);
}
static void nested_task(void *ctx, int64_t task, int thread) {
    (void)task; (void)thread;
    pool_ctx *c = ctx;
    extern tpool *g_pool_for_nested;
    tpool_run(g_pool_for_nested, 4, sum_task, c);   // must run serially, not deadlock
}
tpool *g_pool_for_nested;

static void test_pool(void) {
    CHECK(tpool_size(NULL) == 1);
    for (int nth = 1; nth <= 4; nth++) {
        tpool *p = tpool_new(nth);
        CHECK(p && tpool_size(p) == nth);
        pool_ctx c = {0};
        c.nth = nth;
        const int64_t n = 1000;
        c.hits = calloc(n, sizeof(atomic_int));
        for (int rep = 0; rep < 3; rep++) tpool_run(p, n, count_task, &c);
        int ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= atomic_load(&c.hits[i]) == 3;
        CHECK(ok, "every task ran exactly once per run (%d threads)", nth);
        CHECK(atomic_load(&c.bad_thread) == 0);
        // many tiny dispatches (decode pattern); also measures the dispatch latency
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        const int reps = 20000;
        for (int r = 0; r < reps; r++) tpool_run(p, nth, sum_task, &c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CHECK(atomic_load(&c.sum) == (long)reps * nth * (nth - 1) / 2);
        if (getenv("SLLM_VERBOSE"))
            printf("  pool %d threads: %.2f us per dispatch\n", nth,
                   ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / reps / 1e3);
        g_pool_for_nested = p;
        atomic_store(&c.sum, 0);
        tpool_run(p, 8, nested_task, &c);
        CHECK(atomic_load(&c.sum) == 8 * 6, "nested runs");
        free(c.hits);
        tpool_free(p);
    }
    tpool_run(NULL, 0, sum_task, NULL);   // no tasks: no call
    setenv("SLLM_THREADS", "3", 1);
    tpool *p = tpool_new(0);
    CHECK(tpool_size(p) == 3, "SLLM_THREADS honoured");
    tpool_free(p);
    unsetenv("SLLM_THREADS");
}

// mm_matmul_multi against one mm_matmul per weight: bit-identical outputs (same kernels, same split of
// each output's sum), threaded or not, with biases, for every ISA level.
static void check_multi(tpool *pool2) {
    static const struct { int n; dtype t[4]; int64_t N[4]; int64_t K; } SETS[] = {
        {3, {DT_Q8_0, DT_Q8_0, DT_Q8_0}, {64, 32, 32}, 320},            // q/k/v of one quantized layer
        {2, {DT_Q4_0, DT_Q4_0}, {70, 70}, 256},                         // gate/up
        {4, {DT_Q8_0, DT_Q4_0, DT_F16, DT_Q4_K}, {37, 17, 33, 21}, 512}, // mixed: one xd layout each
        {3, {DT_F32, DT_BF16, DT_Q5_1}, {19, 16, 40}, 96},
    };
    static const int64_t Ts[] = {1, 2, 9};
    for (size_t si = 0; si < sizeof SETS / sizeof SETS[0]; si++) {
        int n = SETS[si].n;
        int64_t K = SETS[si].K;
        wmat w[4];
        float *bias[4], *Y[4], *Yr[4];
        for (int i = 0; i < n; i++) {
            w[i] = make_w(SETS[si].t[i], SETS[si].N[i], K);
            bias[i] = NULL;
            if (i == 1) {
                bias[i] = malloc(sizeof(float) * SETS[si].N[i]);
                for (int64_t k = 0; k < SETS[si].N[i]; k++) bias[i][k] = rndn();
            }
        }
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
            int64_t T = Ts[ti];
            float *X = malloc(sizeof(float) * T * K);
            for (int64_t k = 0; k < T * K; k++) X[k] = rndn();
            for (int i = 0; i < n; i++) {
                Y[i] = malloc(sizeof(float) * T * SETS[si].N[i]);
                Yr[i] = malloc(sizeof(float) * T * SETS[si].N[i]);
            }
            for (int l = ISA_SCALAR; l <= (int)isa_detect(); l++) {
                isa_force((isa_level)l);
                for (int p = 0; p < 2; p++) {
                    tpool *pool = p ? pool2 : NULL;
                    mm_out o[4];
                    for (int i = 0; i < n; i++) {
                        CHECK(mm_matmul(pool, w[i].W, w[i].t, w[i].N, K, X, T, bias[i], Yr[i]) == 0);
                        for (int64_t k = 0; k < T * w[i].N; k++) Y[i][k] = NAN;
                        o[i] = (mm_out){.W = w[i].W, .wt = w[i].t, .N = w[i].N, .bias = bias[i], .Y = Y[i]};
                    }
                    CHECK(mm_matmul_multi(pool, n, o, K, X, T) == 0);
                    for (int i = 0; i < n; i++)
                        CHECK(memcmp(Y[i], Yr[i], sizeof(float) * T * w[i].N) == 0,
                              "multi set %zu output %d (%s) %s T=%ld threads=%d differs from mm_matmul", si, i,
                              dtype_get(w[i].t)->name, ISA_NAME[l], (long)T, p ? 3 : 1);
                }
            }
            free(X);
            for (int i = 0; i < n; i++) { free(Y[i]); free(Yr[i]); }
        }
        for (int i = 0; i < n; i++) { free_w(&w[i]); free(bias[i]); }
    }
    isa_force(isa_detect());
    // errors, not crashes (and nothing leaked under ASan)
    float x[256] = {0}, y0[8], y1[8];
    uint8_t wb[8 * 288] = {0};
    mm_out o[MM_MULTI_MAX + 1];
    for (int i = 0; i <= MM_MULTI_MAX; i++) o[i] = (mm_out){.W = wb, .wt = DT_Q8_0, .N = 8, .Y = y0};
    CHECK(mm_matmul_multi(NULL, 0, o, 256, x, 1) == -1, "no outputs");
    CHECK(mm_matmul_multi(NULL, MM_MULTI_MAX + 1, o, 256, x, 1) == -1, "too many outputs");
    o[1] = (mm_out){.W = wb, .wt = DT_Q8_1, .N = 8, .Y = y1};
    CHECK(mm_matmul_multi(NULL, 2, o, 256, x, 1) == -1, "unsupported dtype in the second output");
    o[1] = (mm_out){.W = wb, .wt = DT_Q4_0, .N = 8, .Y = y1};
    CHECK(mm_matmul_multi(NULL, 2, o, 48, x, 1) == -1, "K not a multiple of the block");
    o[1].N = 0;
    CHECK(mm_matmul_multi(NULL, 2, o, 256, x, 1) == 0, "an empty output is fine");
}

// base/membw.h: SIMD read loops vs the scalar twin (XOR of all words, exact), and a small measurement.
static void check_membw(tpool *pool2) {
    size_t cap = 1 << 16;
    uint64_t *buf = aligned_alloc(64, cap);
    for (size_t i = 0; i < cap / 8; i++) buf[i] = ((uint64_t)rnd32() << 32) | rnd32();
    static const size_t sizes[] = {256, 512, 768, 4096, 65536 - 256, 65536};
    int have2 = 0, have5 = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    have2 = __builtin_cpu_supports("avx2");
    have5 = __builtin_cpu_supports("avx512f");
#endif
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t ref = 0;
        for (size_t k = 0; k < sizes[i] / 8; k++) ref ^= buf[k];
        CHECK(membw_read_ref(buf, sizes[i]) == ref, "scalar read loop, %zu bytes", sizes[i]);
        if (have2) CHECK(membw_read_avx2(buf, sizes[i]) == ref, "avx2 read loop, %zu bytes", sizes[i]);
        if (have5) CHECK(membw_read_avx512(buf, sizes[i]) == ref, "avx512 read loop, %zu bytes", sizes[i]);
    }
    if (!have5) SKIP("no AVX-512: the 512-bit membw loop is not checked");
    free(buf);
    const char *isa = NULL;
    CHECK(membw_kernel(&isa) != NULL && isa != NULL);
    setenv("SLLM_ISA", "scalar", 1);
    CHECK(membw_kernel(&isa) == membw_read_ref && !strcmp(isa, "scalar"), "SLLM_ISA caps the read loop");
    unsetenv("SLLM_ISA");
    size_t def = membw_default_bytes();
    CHECK(def >= ((size_t)1 << 30) && def % 256 == 0, "default buffer %zu bytes", def);
    membw_result r;
    CHECK(membw_measure(pool2, (size_t)8 << 20, 3, &r) == SLLM_OK);
    CHECK(r.gb_s > 0 && r.median_gb_s > 0 && r.median_gb_s <= r.gb_s, "best %.2f median %.2f", r.gb_s, r.median_gb_s);
    CHECK(r.bytes == (size_t)8 << 20 && r.threads == 3 && r.passes == 3 && r.isa != NULL);
    // a reusable probe: one buffer, measured twice; sizes round up to 256 bytes
    membw_probe *p = NULL;
    CHECK(membw_probe_new(pool2, ((size_t)4 << 20) + 1, &p) == SLLM_OK && p);
    if (p) {
        for (int i = 0; i < 2; i++) {
            membw_probe_run(p, 2, &r);
            CHECK(r.gb_s > 0 && r.bytes == ((size_t)4 << 20) + 256 && r.passes == 2 && r.threads == 3,
                  "probe run %d: %.2f GB/s over %zu bytes", i, r.gb_s, r.bytes);
        }
        membw_probe_free(p);
    }
    membw_probe_free(NULL);
}

int main(void) {
    printf("isa_detect: %s\n", ISA_NAME[isa_detect()]);
    test_pool();
    tpool *pool2 = tpool_new(3);   // 3 > cores here: also exercises oversubscription
    for (int i = 0; i < NTYPES; i++) {
        dtype t = TYPES[i];
        int ab = block_of_act(t);
        int64_t K = ab == 256 ? 512 : ab == 32 ? 96 : 67;
        check_matmul_type(t, 37, K, pool2);
        if (ab == 32) check_matmul_type(t, 53, 320, pool2);
        check_matmul_t(t, 19, ab == 256 ? 768 : ab == 32 ? 576 : 531, pool2);
    }
    check_matmul_type(DT_Q4_0, 300, 256, pool2);   // several tasks per thread
    check_iq4_exact(DT_IQ4_NL, pool2);
    check_iq4_exact(DT_IQ4_XS, pool2);
    check_wgrad(pool2);
    check_multi(pool2);
    // the path tables, once per ISA level this CPU has
    for (int l = ISA_AVX2; l <= ISA_AVX512; l++) {
        if (isa_detect() < (isa_level)l) { if (l == ISA_AVX2) SKIP("no AVX2: path tables not run"); continue; }
        g_lvl = (isa_level)l;
        printf("path tables at %s\n", ISA_NAME[l]);
        check_paths();
        check_r16_kernels();
        check_r16_kquant_kernels(DT_Q4_K, 768);
        check_r16_kquant_kernels(DT_Q4_K, 256 * 130);   // rows longer than the decode kernel's stack of sums
        check_r16_kquant_kernels(DT_Q5_K, 768);
        check_r16_kquant_kernels(DT_Q6_K, 768);
        check_r16_kquant_kernels(DT_IQ4_XS, 768);
        check_r16_kquant_kernels(DT_Q3_K, 768);
        check_r16_kquant_kernels(DT_Q2_K, 768);
        check_packed_products(pool2);
        check_decode_split();
        check_glu_decode();
        check_argmax_decode();
    }
    check_argmax_f32();
    check_membw(pool2);
    // errors, not crashes
    float x[64] = {0}, y[64];
    uint8_t w[512] = {0};
    CHECK(mm_matmul(NULL, w, DT_Q8_1, 1, 256, x, 1, NULL, y) == -1, "unsupported dtype");
    CHECK(mm_matmul(NULL, w, DT_Q4_0, 1, 48, x, 1, NULL, y) == -1, "K not a multiple of the block");
    CHECK(mm_matmul_t(NULL, w, DT_I32, 1, 4, x, 1, y) == -1);
    isa_force(isa_detect());
    CHECK(isa_active() == isa_detect());
    tpool_free(pool2);
    return test_report();
}
