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
#include "base/membw.h"
#include "gen/generate.h"

static const char BENCH_HELP[] =
    "usage: sllm bench -m MODEL [-p 128] [-n 32] [-t THREADS] [-r 3] [--roofline] [--json]\n"
    "       sllm bench --membw [-t THREADS] [--json]\n"
    "\n"
    "Prefill (pp) and decode (tg) tokens/s, median of -r repetitions, plus the bytes a decode step\n"
    "reads (weights + KV cache) and the bandwidth decode achieves (tok/s x bytes per token).\n"
    "--membw      measure this machine's memory read bandwidth (GB/s) with the same threads: wide\n"
    "             vector loads (AVX-512 / AVX2) over a buffer of 4x the last-level cache (>= 1 GiB),\n"
    "             best of 5 passes\n"
    "--roofline   with -m: measure the bandwidth in the same run (before and after the model's\n"
    "             timings, the higher figure counts) and report decode as a share of it\n";

// First index of the largest logit. Two passes so the first (16 running maxima) vectorizes: a
// compare-and-branch loop over a 150K vocabulary was ~1% of a small model's decode step.
static int32_t argmax_f32(const float *x, int n) {
    float m[16];
    for (int i = 0; i < 16; i++) m[i] = x[0];
    int k = 0;
    for (; k + 16 <= n; k += 16)
        for (int i = 0; i < 16; i++) m[i] = x[k + i] > m[i] ? x[k + i] : m[i];
    float best = m[0];
    for (int i = 1; i < 16; i++) best = m[i] > best ? m[i] : best;
    for (; k < n; k++) best = x[k] > best ? x[k] : best;
    for (k = 0; k < n; k++)
        if (x[k] == best) return k;
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    bool json = false, membw = false, roofline = false;
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
        else if (!strcmp(a, "--roofline")) roofline = true;
        else return arg_unknown("bench", a);
    }
    if (membw) {
        tpool *pool = tpool_new((int)threads);
        if (!pool) { fprintf(stderr, "sllm bench: cannot start %lld threads\n", (long long)threads); return 1; }
        membw_result r;
        int rc = membw_measure(pool, 0, 5, &r);
        if (rc) fprintf(stderr, "sllm bench: %s\n", sllm_last_error());
        else if (json)
            printf("{\"threads\":%d,\"read_gb_s\":%.2f,\"median_gb_s\":%.2f,\"bytes\":%zu,\"passes\":%d,"
                   "\"isa\":\"%s\"}\n", r.threads, r.gb_s, r.median_gb_s, r.bytes, r.passes, r.isa);
        else
            printf("memory read bandwidth: %.2f GB/s best, %.2f median (%d threads, %s loads, %zu MiB, %d passes)\n",
                   r.gb_s, r.median_gb_s, r.threads, r.isa, r.bytes >> 20, r.passes);
        tpool_free(pool);
        return rc ? 1 : 0;
    }
    if (!model) { fprintf(stderr, "sllm bench: -m MODEL is required (see sllm bench --help)\n"); return 2; }
    cli_model cm;
    if (!cli_model_open("bench", model, false, true, (int)threads, &cm)) return 1;
    const int V = cm.m->hp.n_vocab;
    int32_t *prompt = malloc((size_t)P * sizeof *prompt);
    float *logits = malloc((size_t)V * sizeof *logits);
    double pp[100], tg[100];
    int rc = 0;
    membw_result bw0 = {0}, bw1 = {0};
    if (roofline && membw_measure(cm.pool, 0, 5, &bw0)) rc = 1;
    for (int r = 0; r < reps && rc == 0; r++) {
        model_session *s = NULL;
        if (model_session_new(cm.m, (int)(P + T + 16), (int)P, cm.pool, &s) != SLLM_OK) { rc = 1; break; }
        for (int i = 0; i < P; i++) prompt[i] = (int32_t)((i * 7919 + 100) % V);
        double t0 = gen_now_ms();
        if (model_forward(s, prompt, (int)P, logits, false) != SLLM_OK) rc = 1;
        pp[r] = (double)P * 1e3 / (gen_now_ms() - t0);
        t0 = gen_now_ms();
        for (int i = 0; i < T && rc == 0; i++) {
            int32_t best = argmax_f32(logits, V);
            if (model_forward(s, &best, 1, logits, false) != SLLM_OK) rc = 1;
        }
        tg[r] = T ? (double)T * 1e3 / (gen_now_ms() - t0) : 0;
        model_session_free(s);
    }
    if (!rc && roofline && membw_measure(cm.pool, 0, 5, &bw1)) rc = 1;
    if (rc) fprintf(stderr, "sllm bench: %s\n", sllm_last_error());
    else {
        qsort(pp, (size_t)reps, sizeof *pp, cmp_d);
        qsort(tg, (size_t)reps, sizeof *tg, cmp_d);
        double ppm = pp[reps / 2], tgm = tg[reps / 2], bpt = decode_bytes(cm.m, (int)(P + T / 2));
        double dgb = tgm * bpt / 1e9;   // the bandwidth decode achieves
        // the roofline: the better of the two measurements around the timings (a conservative share)
        double bw = bw0.gb_s > bw1.gb_s ? bw0.gb_s : bw1.gb_s;
        if (json) {
            printf("{\"engine\":\"sllm\",\"model\":\"%s\",\"threads\":%d,\"pp%lld_tok_s\":%.2f,\"tg%lld_tok_s\":%.2f,"
                   "\"decode_bytes_per_token\":%.0f,\"decode_gb_s\":%.2f", model, tpool_size(cm.pool), (long long)P, ppm,
                   (long long)T, tgm, bpt, dgb);
            if (roofline)
                printf(",\"membw_gb_s\":%.2f,\"membw_before_gb_s\":%.2f,\"membw_after_gb_s\":%.2f,\"roofline_share\":%.3f",
                       bw, bw0.gb_s, bw1.gb_s, bw > 0 ? dgb / bw : 0);
            printf("}\n");
        } else {
            printf("%s: %d threads  pp%lld %.2f tok/s  tg%lld %.2f tok/s  (decode reads %.1f MB/token = %.2f GB/s)\n",
                   model, tpool_size(cm.pool), (long long)P, ppm, (long long)T, tgm, bpt / 1e6, dgb);
            if (roofline)
                printf("roofline: memory read %.2f GB/s (%.2f before, %.2f after the timings): decode at %.0f%%\n", bw,
                       bw0.gb_s, bw1.gb_s, bw > 0 ? 100 * dgb / bw : 0);
        }
    }
    free(prompt);
    free(logits);
    cli_model_close(&cm);
    return rc;
}
