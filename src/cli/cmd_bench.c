// sllm bench: prefill and decode tokens/s measured the way llama-bench does (and the way the
// llama.cpp harness in make bench does): prefill = one batch of P tokens into an empty cache;
// decode = T single-token steps, each taking the argmax of the logits (sllm inside the output head's
// product, model_forward_argmax; the harness with a pass over the logits). Median of reps.
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
    "reads (weights + KV cache) and the bandwidth decode achieves (tok/s x bytes per token). Decode\n"
    "steps are greedy: each computes the logits and takes their argmax.\n"
    "--membw      measure this machine's memory read bandwidth (GB/s) with the same threads: wide\n"
    "             vector loads (AVX-512 / AVX2) over a buffer of 4x the last-level cache (>= 1 GiB),\n"
    "             best of 5 passes\n"
    "--roofline   with -m: measure the bandwidth in the same run, before the first repetition and\n"
    "             after each one (best of 5 passes each), and report decode as a share of it: each\n"
    "             repetition against the better of the two probes around it (the median over the\n"
    "             repetitions is the roofline share), and the median decode against the run's best probe\n";

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

// One repetition: a P-token prefill into an empty cache, then T greedy single-token steps.
static int bench_rep(cli_model *cm, int32_t *prompt, float *logits, int64_t P, int64_t T, double *pp, double *tg) {
    const int V = cm->m->hp.n_vocab;
    model_session *s = NULL;
    int rc = model_session_new(cm->m, (int)(P + T + 16), (int)P, cm->pool, &s);
    if (rc != SLLM_OK) return rc;
    for (int i = 0; i < P; i++) prompt[i] = (int32_t)((i * 7919 + 100) % V);
    double t0 = gen_now_ms();
    int32_t best = 0;
    rc = model_forward_argmax(s, prompt, (int)P, logits, &best);
    *pp = (double)P * 1e3 / (gen_now_ms() - t0);
    t0 = gen_now_ms();
    for (int i = 0; i < T && rc == SLLM_OK; i++) rc = model_forward_argmax(s, &best, 1, logits, &best);
    *tg = T ? (double)T * 1e3 / (gen_now_ms() - t0) : 0;
    model_session_free(s);
    return rc;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

// bw: NULL, or the reps + 1 probes (bw[r] before repetition r, bw[r + 1] after it).
static void report(const char *model, cli_model *cm, int64_t P, int64_t T, int reps, double *pp, double *tg,
                   const membw_result *bw, bool json) {
    double bpt = decode_bytes(cm->m, (int)(P + T / 2));
    double share[100] = {0}, best = 0;
    for (int r = 0; bw && r < reps; r++) {
        double b = bw[r].gb_s > bw[r + 1].gb_s ? bw[r].gb_s : bw[r + 1].gb_s;
        share[r] = b > 0 ? tg[r] * bpt / 1e9 / b : 0;
        if (bw[r].gb_s > best) best = bw[r].gb_s;
    }
    if (bw && bw[reps].gb_s > best) best = bw[reps].gb_s;
    double tg_run[100], share_run[100];   // in repetition order, for the JSON
    memcpy(tg_run, tg, sizeof(double) * (size_t)reps);
    memcpy(share_run, share, sizeof(double) * (size_t)reps);
    double ppm = median(pp, reps), tgm = median(tg, reps);
    double dgb = tgm * bpt / 1e9;   // the bandwidth decode achieves
    double sh = bw ? median(share, reps) : 0, sh_best = best > 0 ? dgb / best : 0;
    if (json) {
        printf("{\"engine\":\"sllm\",\"model\":\"%s\",\"threads\":%d,\"kv_type\":\"%s\",\"pp%lld_tok_s\":%.2f,"
               "\"tg%lld_tok_s\":%.2f,\"decode_bytes_per_token\":%.0f,\"decode_gb_s\":%.2f,\"tg_reps\":[", model,
               tpool_size(cm->pool), dtype_get(cm->m->kv_type)->name, (long long)P, ppm, (long long)T, tgm, bpt, dgb);
        for (int r = 0; r < reps; r++) printf("%s%.2f", r ? "," : "", tg_run[r]);
        printf("]");
        if (bw) {
            printf(",\"membw_gb_s\":%.2f,\"membw_probes_gb_s\":[", best);
            for (int r = 0; r <= reps; r++) printf("%s%.2f", r ? "," : "", bw[r].gb_s);
            printf("],\"roofline_share_reps\":[");
            for (int r = 0; r < reps; r++) printf("%s%.3f", r ? "," : "", share_run[r]);
            printf("],\"roofline_share\":%.3f,\"roofline_share_best_probe\":%.3f", sh, sh_best);
        }
        printf("}\n");
        return;
    }
    printf("%s: %d threads  pp%lld %.2f tok/s  tg%lld %.2f tok/s  (decode reads %.1f MB/token = %.2f GB/s)\n",
           model, tpool_size(cm->pool), (long long)P, ppm, (long long)T, tgm, bpt / 1e6, dgb);
    if (!bw) return;
    printf("roofline: memory read");
    for (int r = 0; r <= reps; r++) printf(" %.2f", bw[r].gb_s);
    printf(" GB/s (probes around the %d repetitions): decode at %.0f%% of the probes next to each repetition "
           "(median), %.0f%% of the best probe\n", reps, 100 * sh, 100 * sh_best);
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
    int32_t *prompt = malloc((size_t)P * sizeof *prompt);
    float *logits = malloc((size_t)cm.m->hp.n_vocab * sizeof *logits);
    double pp[100], tg[100];
    int rc = 0;
    if (!prompt || !logits) { fprintf(stderr, "sllm bench: out of memory\n"); rc = 1; }
    // --roofline: a bandwidth probe before the first repetition and after each one (reps + 1), on one
    // buffer allocated once; each repetition's decode is compared with the better of the two probes
    // around it, so a neighbour's burst of memory traffic shows in the probes next to the repetitions
    // it slowed rather than only in the run's best figure.
    membw_probe *probe = NULL;
    membw_result bw[101];
    if (roofline && !rc) {
        if (membw_probe_new(cm.pool, 0, &probe) != SLLM_OK) rc = 1;
        else membw_probe_run(probe, 5, &bw[0]);
    }
    for (int r = 0; r < reps && rc == 0; r++) {
        if (bench_rep(&cm, prompt, logits, P, T, &pp[r], &tg[r]) != SLLM_OK) rc = 1;
        else if (probe) membw_probe_run(probe, 5, &bw[r + 1]);
    }
    membw_probe_free(probe);
    if (rc) { if (prompt && logits) fprintf(stderr, "sllm bench: %s\n", sllm_last_error()); }
    else report(model, &cm, P, T, reps, pp, tg, roofline ? bw : NULL, json);
    free(prompt);
    free(logits);
    cli_model_close(&cm);
    return rc;
}
