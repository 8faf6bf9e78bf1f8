// Training throughput and memory of the sllm engine (src/train/train_model.h), the sllm side of
// bench/bench_train.sh (PyTorch side: bench/train_torch.py, same shape and batch).
//
//   bench_train speed --mode full|lora [--threads N] [--B 4] [--T 256] [--steps 3] [--warmup 1]
//       random llama (vocab 32000, d 512, 8 layers, 8 heads, ff 1376: ~58M parameters, untied head),
//       random token batches; times train_step_fwd_bwd + AdamW (lr 1e-4, wd 0.01) per step.
//   bench_train mem --model FILE.gguf [--T 512] [--B 1] [--r 16] [--threads N] [--steps 2]
//       LoRA r (alpha 2r, all targets) on an mmap'd base with gradient checkpointing; peak RSS.
// Prints one JSON object on stdout.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "base/error.h"
#include "base/threadpool.h"
#include "model/lora.h"
#include "model/model.h"
#include "tensor/gemm.h"
#include "train/optim.h"
#include "train/train_model.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double peak_rss_mib(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int die(const char *what) {
    fprintf(stderr, "bench_train: %s: %s\n", what, sllm_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "speed") && strcmp(argv[1], "mem"))) {
        fprintf(stderr, "usage: bench_train speed|mem [--mode full|lora] [--model F] [--threads N] [--B n] [--T n]"
                        " [--r n] [--steps n] [--warmup n]\n");
        return 2;
    }
    bool mem = !strcmp(argv[1], "mem");
    const char *mode = "full", *model_path = NULL;
    int threads = 2, B = mem ? 1 : 4, T = mem ? 512 : 256, r = 16, steps = mem ? 2 : 3, warmup = mem ? 0 : 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--mode")) mode = v;
        else if (!strcmp(k, "--model")) model_path = v;
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--B")) B = atoi(v);
        else if (!strcmp(k, "--T")) T = atoi(v);
        else if (!strcmp(k, "--r")) r = atoi(v);
        else if (!strcmp(k, "--steps")) steps = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else { fprintf(stderr, "bench_train: unknown option %s\n", k); return 2; }
    }
    bool lora = mem || !strcmp(mode, "lora");
    if ((!lora && strcmp(mode, "full")) || B < 1 || T < 1 || r < 1 || steps < 1 || threads < 1 || (mem && !model_path)) {
        fprintf(stderr, "bench_train: bad arguments (mode full|lora, positive sizes; mem needs --model)\n");
        return 2;
    }
    sllm_model *m = NULL;
    if (mem) {
        if (model_load(model_path, &m)) return die(model_path);
    } else {
        // Llama-shaped, ~58M parameters: 8 x (4 x 512^2 + 3 x 512 x 1376) + 2 x 32000 x 512 + norms
        static const model_preset p = {.name = "bench-60m", .arch = "llama", .n_vocab = 32000, .n_embd = 512,
                                       .n_layer = 8, .n_ff = 1376, .n_head = 8, .n_head_kv = 8, .head_dim = 64,
                                       .n_ctx = 2048, .eps = 1e-5f, .rope_base = 10000.0f};
        model_init_opts o = {.custom = &p, .type = DT_F32, .seed = 1};
        if (model_init(&o, &m)) return die("model_init");
    }
    tpool *pool = threads > 1 ? tpool_new(threads) : NULL;
    lora_adapter *ad = NULL;
    if (lora) {
        lora_config cfg = {.r = r, .alpha = 2.0f * (float)r, .targets = LORA_ALL};
        if (lora_new(m, &cfg, 7, &ad)) return die("lora_new");
    }
    train_opts to = {.checkpointing = mem, .pool = pool, .n_threads = threads};
    train_model *tm = NULL;
    if (train_model_new(m, lora ? TRAIN_LORA : TRAIN_FULL, ad, &to, &tm)) return die("train_model_new");
    const train_param *tp;
    int np = train_params(tm, &tp);
    int64_t n_train = 0;
    for (int i = 0; i < np; i++) n_train += tp[i].n;
    optim_group groups[2];
    if (train_optim_groups(tm, 0.01, groups)) return die("optimizer");
    adamw opt;
    adamw_init(&opt);

    int V = m->hp.n_vocab;
    int64_t N = (int64_t)B * T;
    int32_t *ids = malloc((size_t)N * sizeof(int32_t)), *tg = malloc((size_t)N * sizeof(int32_t));
    uint64_t s = 12345;
    double *dt = calloc((size_t)steps, sizeof(double)), *dc = calloc((size_t)steps, sizeof(double)), loss = 0;
    for (int st = 0; st < warmup + steps; st++) {
        for (int64_t i = 0; i < N; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            ids[i] = (int32_t)((s >> 33) % (uint64_t)V);
        }
        for (int64_t i = 0; i < N; i++) tg[i] = (i + 1) % T == 0 ? -1 : ids[i + 1];
        train_batch b = {.B = B, .T = T, .ids = ids, .targets = tg};
        double t0 = now_s(), c0 = cpu_s();
        int64_t ntok = 0;
        if (train_step_fwd_bwd(tm, &b, 1.0f, &loss, &ntok)) return die("train step");
        optim_scale_grads(groups, 2, 1.0 / (double)(ntok ? ntok : 1), pool);
        adamw_step(&opt, groups, 2, 1e-4, pool);
        train_zero_grad(tm);
        double el = now_s() - t0;
        loss /= (double)(ntok ? ntok : 1);
        fprintf(stderr, "step %d%s: %.3f s, loss %.4f\n", st, st < warmup ? " (warmup)" : "", el, loss);
        if (st >= warmup) { dt[st - warmup] = el; dc[st - warmup] = cpu_s() - c0; }
    }
    qsort(dt, (size_t)steps, sizeof(double), cmp_d);
    qsort(dc, (size_t)steps, sizeof(double), cmp_d);
    double med = dt[steps / 2];
    int64_t n_all = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int t = 0; t < TR_COUNT; t++) n_all += m->layers[l].w[t].data ? m->layers[l].w[t].rows * m->layers[l].w[t].cols : 0;
    for (int t = 0; t < TR_LAYER_FIRST; t++)
        if (m->g[t].data && !(t == TR_OUTPUT && m->hp.tied)) n_all += m->g[t].rows * m->g[t].cols;
    printf("{\"engine\":\"sllm\",\"mode\":\"%s\",\"B\":%d,\"T\":%d,\"threads\":%d,\"gemm\":\"%s\",\"params\":%lld,"
           "\"trainable\":%lld,\"step_s_median\":%.4f,\"step_s_best\":%.4f,\"cpu_s_median\":%.4f,\"tokens_per_s\":%.1f,\"loss\":%.4f,"
           "\"peak_rss_mib\":%.1f,\"checkpointing\":%s}\n",
           lora ? "lora" : "full", B, T, threads, gemm_backend_name(gemm_backend_active()), (long long)n_all,
           (long long)n_train, med, dt[0], dc[steps / 2], (double)N / med, loss, peak_rss_mib(), mem ? "true" : "false");
    free(ids); free(tg); free(dt); free(dc);
    train_model_free(tm);
    lora_free(ad);
    model_free(m);
    tpool_free(pool);
    return 0;
}
