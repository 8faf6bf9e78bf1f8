// tensor/gemm.h against naive double-accumulated loops: every backend (own AVX-512 kernel, OpenBLAS,
// reference), both transposes, beta 0/1/other, strided C, odd shapes that hit every tail of the
// blocking, pools of 1 and 2 threads, and the tiled any-dtype products against a dequantized copy.
#include <stdint.h>
#include <stdlib.h>
#include "tensor/gemm.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *rnd(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

// max |got - want| / (1 + |want|) over C (M, N) with stride ldc
static double max_err(const float *got, const double *want, int64_t M, int64_t N, int64_t ldc) {
    double e = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double d = fabs(got[i * ldc + j] - want[i * N + j]) / (1.0 + fabs(want[i * N + j]));
            if (d > e || d != d) e = d != d ? INFINITY : d;
        }
    return e;
}

static void naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, const float *C0, int64_t ldc, double *out) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = beta == 0.0f ? 0.0 : (double)beta * C0[i * ldc + j];
            for (int64_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
            out[i * N + j] = s;
        }
}

static void check_shape(tpool *pool, int64_t M, int64_t N, int64_t K, bool ta, bool tb, float beta, const char *be) {
    int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
    float *A = rnd((ta ? K : M) * lda), *B = rnd((tb ? N : K) * ldb), *C = rnd(M * ldc);
    if (beta == 0.0f)   // beta 0 must ignore NaNs in C, as BLAS does
        for (int64_t i = 0; i < M * ldc; i += 7) C[i] = NAN;
    double *want = malloc((size_t)(M * N > 0 ? M * N : 1) * sizeof(double));
    naive(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, want);
    float *pad = C + (M - 1) * ldc + N;   // the ldc padding of the last row must stay untouched
    float keep = M > 0 && ldc > N ? pad[0] : 0;
    gemm_f32(pool, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    double e = max_err(C, want, M, N, ldc);
    CHECK(e < 2e-5, "%s M=%lld N=%lld K=%lld ta=%d tb=%d beta=%g pool=%d: err %.3g", be, (long long)M, (long long)N,
          (long long)K, ta, tb, beta, pool ? tpool_size(pool) : 1, e);
    if (M > 0 && ldc > N && beta != 0.0f) CHECK(pad[0] == keep, "%s wrote past N", be);
    free(A); free(B); free(C); free(want);
}

static void check_sum(tpool *pool, const char *be);
static void check_backend(gemm_backend b, tpool *pool2) {
    gemm_backend_force(b);
    const char *name = gemm_backend_name(gemm_backend_active());
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 33, 5}, {8, 32, 256}, {9, 31, 257}, {130, 70, 300},
                                        {64, 1030, 40}, {300, 17, 513}, {16, 200, 1000}, {3, 5, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            float beta = (t == 0) ? 0.0f : (t == 1 ? 1.0f : 0.5f);
            check_shape(NULL, shapes[s][0], shapes[s][1], shapes[s][2], t & 1, (t >> 1) & 1, beta, name);
            check_shape(pool2, shapes[s][0], shapes[s][1], shapes[s][2], (t >> 1) & 1, t & 1, beta, name);
        }
    check_sum(NULL, name);
    check_sum(pool2, name);
}

// gemm_f32_sum: 1-3 terms with their own K (0, tails, more than one KC block), transposes and strides,
// summed into one C; against the naive sum of the terms.
static void check_sum(tpool *pool, const char *be) {
    static const int64_t MN[][2] = {{1, 1}, {37, 300}, {300, 37}, {1024, 16}, {64, 530}};
    static const int64_t Ks[][3] = {{512, 16, 0}, {16, 0, 0}, {0, 16, 33}, {700, 5, 9}, {1, 1, 1}};
    for (size_t s = 0; s < sizeof MN / sizeof MN[0]; s++)
        for (size_t kk = 0; kk < sizeof Ks / sizeof Ks[0]; kk++)
            for (int v = 0; v < 3; v++) {
                int64_t M = MN[s][0], N = MN[s][1], ldc = N + 2;
                int n = Ks[kk][2] ? 3 : 2;
                float beta = v == 0 ? 0.0f : v == 1 ? 1.0f : 0.5f;
                gemm_term t[3];
                float *own[6];
                for (int i = 0; i < n; i++) {
                    bool ta = (v + i) & 1, tb = ((v + i) >> 1 & 1) ^ (i == 1);
                    int64_t K = Ks[kk][i], lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 3;
                    own[2 * i] = rnd((ta ? K : M) * lda);
                    own[2 * i + 1] = rnd((tb ? N : K) * ldb);
                    t[i] = (gemm_term){.ta = ta, .tb = tb, .K = K, .A = own[2 * i], .lda = lda, .B = own[2 * i + 1], .ldb = ldb};
                }
                float *C = rnd(M * ldc);
                if (beta == 0.0f)
                    for (int64_t i = 0; i < M * ldc; i += 5) C[i] = NAN;
                double *want = malloc((size_t)(M * N) * sizeof(double)), *part = malloc((size_t)(M * N) * sizeof(double));
                naive(t[0].ta, t[0].tb, M, N, t[0].K, t[0].A, t[0].lda, t[0].B, t[0].ldb, beta, C, ldc, want);
                for (int i = 1; i < n; i++) {
                    naive(t[i].ta, t[i].tb, M, N, t[i].K, t[i].A, t[i].lda, t[i].B, t[i].ldb, 0.0f, C, ldc, part);
                    for (int64_t x = 0; x < M * N; x++) want[x] += part[x];
                }
                gemm_f32_sum(pool, M, N, n, t, beta, C, ldc);
                double e = max_err(C, want, M, N, ldc);
                CHECK(e < 2e-5, "%s sum of %d terms M=%lld N=%lld K=%lld,%lld,%lld beta=%g pool=%d: err %.3g", be, n,
                      (long long)M, (long long)N, (long long)Ks[kk][0], (long long)Ks[kk][1], (long long)Ks[kk][2], beta,
                      pool ? tpool_size(pool) : 1, e);
                for (int i = 0; i < 2 * n; i++) free(own[i]);
                free(C); free(want); free(part);
            }
}

// The linear-layer helpers and the tiled path against a dequantized copy of the weight.
static void check_linear(tpool *pool, dtype wt) {
    int64_t T = 37, N = 300, K = 256;   // K: whole blocks of every dtype
    float *Wf = rnd(N * K), *X = rnd(T * K), *dY = rnd(T * N), *bias = rnd(N);
    size_t rb = dtype_row_bytes(wt, K);
    char *Wq = malloc(rb * (size_t)N);
    float *Wd = malloc((size_t)(N * K) * sizeof(float));
    for (int64_t n = 0; n < N; n++) {
        if (wt == DT_F32) memcpy(Wq + rb * (size_t)n, Wf + n * K, rb);
        else CHECK(quantize_row(wt, Wf + n * K, Wq + rb * (size_t)n, K) == 0, "quantize %d", (int)wt);
        dequantize_row(wt, Wq + rb * (size_t)n, Wd + n * K, K);
    }
    double *want = malloc((size_t)(N * K + T * (N > K ? N : K)) * sizeof(double));
    float *Y = rnd(T * N), *Y0 = malloc((size_t)(T * N) * sizeof(float));
    memcpy(Y0, Y, (size_t)(T * N) * sizeof(float));
    // Y += X·Wd^T + bias, with a small tile so several tiles run
    naive(false, true, T, N, K, X, K, Wd, K, 1.0f, Y0, N, want);
    for (int64_t i = 0; i < T * N; i++) want[i] += bias[i % N];
    CHECK(gemm_xwt_any(pool, Wq, wt, N, K, X, T, bias, true, Y, NULL, 64) == 0, "xwt_any");
    CHECK(max_err(Y, want, T, N, N) < 2e-5, "xwt_any dtype %d err %.3g", (int)wt, max_err(Y, want, T, N, N));
    // Y = X·Wd^T (default tile)
    naive(false, true, T, N, K, X, K, Wd, K, 0.0f, Y0, N, want);
    CHECK(gemm_xwt_any(pool, Wq, wt, N, K, X, T, NULL, false, Y, NULL, 0) == 0, "xwt_any");
    CHECK(max_err(Y, want, T, N, N) < 2e-5, "xwt_any(=) dtype %d", (int)wt);
    // dX += dY·Wd
    float *dX = rnd(T * K);
    naive(false, false, T, K, N, dY, N, Wd, K, 1.0f, dX, K, want);
    float *tile = malloc((size_t)(50 * K) * sizeof(float));
    CHECK(gemm_dx_any(pool, Wq, wt, N, K, dY, T, dX, tile, 50) == 0, "dx_any");
    CHECK(max_err(dX, want, T, K, K) < 2e-5, "dx_any dtype %d err %.3g", (int)wt, max_err(dX, want, T, K, K));
    if (wt == DT_F32) {
        // dW += dY^T·X
        float *dW = rnd(N * K);
        naive(true, false, N, K, T, dY, N, X, K, 1.0f, dW, K, want);
        gemm_dw(pool, dY, X, T, N, K, dW);
        CHECK(max_err(dW, want, N, K, K) < 2e-5, "dw err %.3g", max_err(dW, want, N, K, K));
        free(dW);
    }
    free(Wf); free(X); free(dY); free(bias); free(Wq); free(Wd); free(want); free(Y); free(Y0); free(dX); free(tile);
}

int main(void) {
    tpool *pool2 = tpool_new(2);
    check_backend(GEMM_REF, pool2);
    check_backend(GEMM_BLAS, pool2);
    if (isa_active() >= ISA_AVX512) check_backend(GEMM_OWN, pool2);
    else SKIP("no AVX-512 on this CPU: own GEMM kernel not tested");
    gemm_backend_force(GEMM_AUTO);
    printf("gemm backend in use: %s\n", gemm_backend_name(gemm_backend_active()));
    static const dtype dts[] = {DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_K, DT_Q6_K};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) check_linear(pool2, dts[i]);
    // a dtype without a dequantizer is an error, not a crash
    float x[32] = {0}, y[4] = {0};
    char w[256] = {0};
    CHECK(gemm_xwt_any(NULL, w, DT_I32, 1, 32, x, 1, NULL, false, y, NULL, 0) != 0, "i32 weights rejected");
    CHECK(gemm_xwt_any(NULL, w, DT_Q4_0, 1, 33, x, 1, NULL, false, y, NULL, 0) != 0, "partial block rejected");
    tpool_free(pool2);
    return test_report();
}
