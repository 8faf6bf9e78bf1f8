// The grid types' decode product (IQ1 / IQ2 / IQ3 against 8-bit activations), one thread, weights in
// L2: sllm's mm_matmul against llama.cpp's own CPU kernel (GGML's vec_dot from the CPU backend
// llama.cpp loads on this machine, opened at run time), on the same rows, quantized by GGML.
// Build: make build/bench_iq (make bench runs it through bench/run-iq.sh)
// Usage: LD_LIBRARY_PATH=DIR build/bench_iq DIR/libggml-cpu-VARIANT.so   (DIR: llama.cpp's backend
//        directory, LLAMA_BACKEND_DIR in build/llamacpp-oracle/run-bench.sh; the variant it loads here)
#include "ggml_oracle.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct ggml_type_traits_cpu_abi {   // ggml-cpu.h
    void (*from_float)(const float *x, void *y, int64_t k);
    void (*vec_dot)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
    int vec_dot_type;
    int64_t nrows;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);   // the thread's CPU time (a shared machine)
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s libggml-cpu-VARIANT.so\n", argv[0]); return 2; }
    char why[4200];
    ggml_oracle gg;
    if (setenv("SLLM_LLAMACPP_ORACLE", "build/llamacpp-oracle", 0) || !ggml_oracle_open(&gg, why, sizeof why)) {
        fprintf(stderr, "bench_iq: %s\n", why);
        return 1;
    }
    void *cpu = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const struct ggml_type_traits_cpu_abi *(*traits_cpu)(int) = NULL;
    void (*cpu_init)(void) = NULL;
    if (cpu) {
        *(void **)&traits_cpu = dlsym(cpu, "ggml_get_type_traits_cpu");
        *(void **)&cpu_init = dlsym(cpu, "ggml_cpu_init");
    }
    if (!traits_cpu || !cpu_init) { fprintf(stderr, "bench_iq: %s: %s\n", argv[1], cpu ? "symbols missing" : dlerror()); return 1; }
    cpu_init();
    static const dtype G[] = {DT_IQ2_XXS, DT_IQ2_XS, DT_IQ2_S, DT_IQ3_XXS, DT_IQ3_S, DT_IQ1_S, DT_IQ1_M};
    enum { N = 512, K = 2048 };
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * K), *imat = malloc(sizeof(float) * K);
    float *ys = malloc(sizeof(float) * N), *yg = malloc(sizeof(float) * N);
    for (int i = 0; i < N * K; i++) w[i] = (float)((rand() % 2001) - 1000) * 2e-5f;
    for (int i = 0; i < K; i++) { x[i] = (float)((rand() % 2001) - 1000) * 1e-3f; imat[i] = 1.0f; }
    printf("| type | sllm GMAC/s | llama.cpp GMAC/s | ratio | max rel diff |\n|---|---:|---:|---:|---:|\n");
    for (size_t g = 0; g < sizeof G / sizeof *G; g++) {
        dtype t = G[g];
        size_t rb = dtype_row_bytes(t, K);
        uint8_t *q = malloc(rb * N);
        gg.quantize_init((int)t);
        gg.quantize_chunk((int)t, w, q, 0, N, K, imat);
        const struct ggml_type_traits_cpu_abi *tc = traits_cpu((int)t);
        void *xq = malloc(sizeof(blk_q8_K) * (K / 256) * 2);
        double best_s = 1e9, best_g = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            double t0 = now();
            for (int it = 0; it < 20; it++) mm_matmul(NULL, q, t, N, K, x, 1, NULL, ys);
            double t1 = now();
            for (int it = 0; it < 20; it++) {
                traits_cpu(tc->vec_dot_type)->from_float(x, xq, K);
                for (int n = 0; n < N; n++) tc->vec_dot(K, yg + n, 0, q + (size_t)n * rb, 0, xq, 0, 1);
            }
            double t2 = now();
            best_s = fmin(best_s, (t1 - t0) / 20);
            best_g = fmin(best_g, (t2 - t1) / 20);
        }
        double md = 0;
        for (int n = 0; n < N; n++) md = fmax(md, fabs(ys[n] - yg[n]) / (fabs(yg[n]) + 1e-6));
        double macs = (double)N * K;
        printf("| %s | %.1f | %.1f | %.2fx | %.1e |\n", dtype_get(t)->name, macs / best_s / 1e9, macs / best_g / 1e9,
               best_g / best_s, md);
        free(q); free(xq);
    }
    return 0;
}
