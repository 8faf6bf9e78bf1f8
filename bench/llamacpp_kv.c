// llama.cpp's prefill and decode tokens/s with a chosen KV cache type (its -ctk / -ctv), through its
// public C API, measured as the shared harness (../shared/oracles/llamacpp_bench.c) measures f16: one
// batch of P tokens, then T greedy single-token decodes; the median of R repetitions. Quantized V needs
// flash attention in llama.cpp, so flash attention is on for every type here.
// Build: bench/run-kv.sh (against the prebuilt llama.cpp that scripts/llamacpp-oracle.sh sets up).
// Run:   llamacpp_kv MODEL.gguf P T THREADS REPS f16|q8_0
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "llama.h"
#include "ggml-backend.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static void quiet(enum ggml_log_level l, const char *t, void *u) { (void)l; (void)t; (void)u; }

// One repetition: a fresh context, the prompt, then the decodes; tok/s of each into pp / tg.
static int run_once(struct llama_model *m, int P, int T, int th, enum ggml_type kv, double *pp, double *tg) {
    int nv = llama_vocab_n_tokens(llama_model_get_vocab(m));
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(P + T + 16); cp.n_batch = (uint32_t)P; cp.n_ubatch = (uint32_t)P;
    cp.n_threads = th; cp.n_threads_batch = th;
    cp.type_k = kv; cp.type_v = kv;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    struct llama_context *c = llama_init_from_model(m, cp);
    if (!c) { fprintf(stderr, "llamacpp_kv: context with this KV type refused\n"); return 1; }
    llama_token *toks = malloc(sizeof(llama_token) * (size_t)P);
    for (int i = 0; i < P; i++) toks[i] = (llama_token)((i * 7919 + 100) % nv);
    double t0 = now_s();
    int rc = llama_decode(c, llama_batch_get_one(toks, P));
    *pp = P / (now_s() - t0);
    llama_token tok = 0;
    t0 = now_s();
    for (int i = 0; i < T && !rc; i++) {
        const float *lg = llama_get_logits_ith(c, -1);
        int best = 0;
        for (int k = 1; k < nv; k++) if (lg[k] > lg[best]) best = k;
        tok = best;
        rc = llama_decode(c, llama_batch_get_one(&tok, 1));
    }
    *tg = T / (now_s() - t0);
    if (rc) fprintf(stderr, "llamacpp_kv: decode failed\n");
    free(toks);
    llama_free(c);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s MODEL.gguf P T THREADS REPS f16|q8_0\n", argv[0]); return 2; }
    int P = atoi(argv[2]), T = atoi(argv[3]), th = atoi(argv[4]), reps = atoi(argv[5]);
    enum ggml_type kv = !strcmp(argv[6], "q8_0") ? GGML_TYPE_Q8_0 : !strcmp(argv[6], "f16") ? GGML_TYPE_F16 : GGML_TYPE_COUNT;
    if (P < 1 || T < 1 || th < 1 || reps < 1 || reps > 16 || kv == GGML_TYPE_COUNT) {
        fprintf(stderr, "llamacpp_kv: bad arguments (P, T, THREADS >= 1, REPS 1-16, f16 or q8_0)\n");
        return 2;
    }
    llama_log_set(quiet, NULL);
    const char *dir = getenv("LLAMA_BACKEND_DIR");
    if (dir) ggml_backend_load_all_from_path(dir); else ggml_backend_load_all();
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    if (!m) { fprintf(stderr, "llamacpp_kv: cannot load %s\n", argv[1]); return 1; }
    double pp[16], tg[16];
    for (int r = 0; r < reps; r++)
        if (run_once(m, P, T, th, kv, &pp[r], &tg[r])) return 1;
    qsort(pp, (size_t)reps, sizeof(double), cmp_d);
    qsort(tg, (size_t)reps, sizeof(double), cmp_d);
    printf("{\"engine\":\"llama.cpp\",\"kv\":\"%s\",\"model\":\"%s\",\"threads\":%d,\"pp%d_tok_s\":%.2f,\"tg%d_tok_s\":%.2f}\n",
           argv[6], argv[1], th, P, pp[reps / 2], T, tg[reps / 2]);
    llama_model_free(m);
    return 0;
}
