// sllm bench: prefill and decode tokens/s measured the way llama-bench does (and the way the
// llama.cpp harness in make bench does): prefill = one batch of P tokens into an empty cache;
// decode = T single-token steps, each reading the logits and taking the argmax. Median of reps.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "gen/generate.h"

static const char BENCH_HELP[] =
    "usage: sllm bench -m MODEL [-p 128] [-n 32] [-t THREADS] [-r 3] [--json]\n"
    "       sllm bench --membw [-t THREADS] [--json]\n"
    "\n"
    "Prefill (pp) and decode (tg) tokens/s, median of -r repetitions, plus the bytes a decode step\n"
    "reads (weights + KV cache) so decode can be compared with the memory-bandwidth roofline.\n"
    "--membw measures this machine's memory read bandwidth (GB/s) with the same threads.\n";

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { const uint64_t *buf; size_t n_words; int n_threads; uint64_t sums[64]; } membw_ctx;

static void membw_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    membw_ctx *c = vctx;
    size_t per = c->n_words / (size_t)c->n_threads, b = (size_t)task * per, e = b + per;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = b; i + 4 <= e; i += 4) { s0 ^= c->buf[i]; s1 ^= c->buf[i + 1]; s2 ^= c->buf[i + 2]; s3 ^= c->buf[i + 3]; }
    c->sums[task] = s0 ^ s1 ^ s2 ^ s3;
}

// Streams a 1 GiB buffer (far larger than any cache) with every thread; best of 5 passes.
static double measure_membw(tpool *pool) {
    size_t bytes = (size_t)1 << 30;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
    membw_ctx c = {.buf = buf, .n_words = bytes / 8, .n_threads = tpool_size(pool)};
    if (c.n_threads > 64) c.n_threads = 64;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = gen_now_ms();
        tpool_run(pool, c.n_threads, membw_task, &c);
        double gbs = (double)bytes / ((gen_now_ms() - t0) * 1e6);
        if (gbs > best) best = gbs;
    }
    volatile uint64_t sink = 0;
    for (int i = 0; i < c.n_threads; i++) sink ^= c.sums[i];
    (void)sink;
    free(buf);
    return best;
}

// Bytes one decode step at KV length `pos` reads: every matrix once (the token embedding only as
// the output head when tied, else one row, ignored), plus K and V of every layer up to pos.
static double decode_bytes(const sllm_model *m, int pos) {
    model_info_t mi;
    model_info(m, &mi);
    double w = (double)mi.weight_bytes;
    const mweight *e = &m->g[TR_TOKEN_EMBD];
    if (!m->hp.tied && e->data) w -= (double)dtype_row_bytes(e->type, e->cols) * (double)e->rows;
    return w + (double)model_kv_bytes(m, pos);
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    int64_t P = 128, T = 32, threads = 0, reps = 3;
    bool json = false, membw = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { fputs(BENCH_HELP, stdout); return 0; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model = arg_value("bench", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-p")) { if (!(v = arg_value("bench", argc, argv, &i)) || !arg_int("bench", a, v, 1, 1 << 20, &P)) return 2; }
        else if (!strcmp(a, "-n")) { if (!(v = arg_value("bench", argc, argv, &i)) || !arg_int("bench", a, v, 0, 1 << 20, &T)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (!(v = arg_value("bench", argc, argv, &i)) || !arg_int("bench", a, v, 0, 1024, &threads)) return 2; }
        else if (!strcmp(a, "-r")) { if (!(v = arg_value("bench", argc, argv, &i)) || !arg_int("bench", a, v, 1, 100, &reps)) return 2; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--membw")) membw = true;
        else return arg_unknown("bench", a);
    }
    if (membw) {
        tpool *pool = tpool_new((int)threads);
        double bw = measure_membw(pool);
        if (json) printf("{\"threads\":%d,\"read_gb_s\":%.2f}\n", tpool_size(pool), bw);
        else printf("memory read bandwidth: %.2f GB/s (%d threads)\n", bw, tpool_size(pool));
        tpool_free(pool);
        return bw > 0 ? 0 : 1;
    }
    if (!model) { fprintf(stderr, "sllm bench: -m MODEL is required (see sllm bench --help)\n"); return 2; }
    cli_model cm;
    if (!cli_model_open("bench", model, false, (int)threads, &cm)) return 1;
    const int V = cm.m->hp.n_vocab;
    int32_t *prompt = malloc((size_t)P * sizeof *prompt);
    float *logits = malloc((size_t)V * sizeof *logits);
    double pp[100], tg[100];
    int rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        model_session *s = NULL;
        if (model_session_new(cm.m, (int)(P + T + 16), (int)P, cm.pool, &s) != SLLM_OK) { rc = 1; break; }
        for (int i = 0; i < P; i++) prompt[i] = (int32_t)((i * 7919 + 100) % V);
        double t0 = gen_now_ms();
        if (model_forward(s, prompt, (int)P, logits, false) != SLLM_OK) rc = 1;
        pp[r] = (double)P * 1e3 / (gen_now_ms() - t0);
        t0 = gen_now_ms();
        for (int i = 0; i < T && rc == 0; i++) {
            int32_t best = 0;
            for (int k = 1; k < V; k++) if (logits[k] > logits[best]) best = k;
            if (model_forward(s, &best, 1, logits, false) != SLLM_OK) rc = 1;
        }
        tg[r] = T ? (double)T * 1e3 / (gen_now_ms() - t0) : 0;
        model_session_free(s);
    }
    if (rc) fprintf(stderr, "sllm bench: %s\n", sllm_last_error());
    else {
        qsort(pp, (size_t)reps, sizeof *pp, cmp_d);
        qsort(tg, (size_t)reps, sizeof *tg, cmp_d);
        double ppm = pp[reps / 2], tgm = tg[reps / 2], bpt = decode_bytes(cm.m, (int)(P + T / 2));
        if (json)
            printf("{\"engine\":\"sllm\",\"model\":\"%s\",\"threads\":%d,\"pp%lld_tok_s\":%.2f,\"tg%lld_tok_s\":%.2f,"
                   "\"decode_bytes_per_token\":%.0f}\n", model, tpool_size(cm.pool), (long long)P, ppm, (long long)T, tgm, bpt);
        else
            printf("%s: %d threads  pp%lld %.2f tok/s  tg%lld %.2f tok/s  (decode reads %.1f MB/token = %.2f GB/s)\n",
                   model, tpool_size(cm.pool), (long long)P, ppm, (long long)T, tgm, bpt / 1e6, tgm * bpt / 1e9);
    }
    free(prompt);
    free(logits);
    cli_model_close(&cm);
    return rc;
}
