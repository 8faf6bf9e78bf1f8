// sllm perplexity: llama.cpp-compatible perplexity over a text file. The text is split into
// chunks of N tokens evaluated independently (first token of each chunk set to BOS when the model
// uses one); each chunk scores only its second half, so every scored token has at least N/2 tokens
// of context — the same protocol as llama.cpp's perplexity tool, so the numbers are comparable.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "gen/generate.h"

static const char PPL_HELP[] =
    "usage: sllm perplexity -m MODEL -f TEXT [-c 512] [--chunks N] [-t THREADS] [--json]\n"
    "\n"
    "Perplexity of MODEL on TEXT (llama.cpp protocol: chunks of -c tokens, second half of each scored).\n";

static double log_softmax_at(const float *l, int V, int target) {
    float mx = l[0];
    for (int i = 1; i < V; i++) if (l[i] > mx) mx = l[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)l[i] - mx);
    return (double)l[target] - mx - log(s);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    int64_t n_ctx = 512, max_chunks = -1, threads = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { fputs(PPL_HELP, stdout); return 0; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model = arg_value("perplexity", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (!(file = arg_value("perplexity", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) { if (!(v = arg_value("perplexity", argc, argv, &i)) || !arg_int("perplexity", a, v, 8, 1 << 20, &n_ctx)) return 2; }
        else if (!strcmp(a, "--chunks")) { if (!(v = arg_value("perplexity", argc, argv, &i)) || !arg_int("perplexity", a, v, 1, 1 << 30, &max_chunks)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (!(v = arg_value("perplexity", argc, argv, &i)) || !arg_int("perplexity", a, v, 0, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--json")) json = true;
        else return arg_unknown("perplexity", a);
    }
    if (!model || !file) { fprintf(stderr, "sllm perplexity: need -m MODEL and -f TEXT (see --help)\n"); return 2; }
    size_t len;
    char *text = cli_read_file("perplexity", file, &len);
    if (!text) return 1;
    cli_model cm;
    if (!cli_model_open("perplexity", model, true, true, (int)threads, &cm)) { free(text); return 1; }
    int rc = 1, n = 0;
    int32_t *ids = NULL;
    float *logits = NULL;
    model_session *s = NULL;
    if (tok_encode(cm.t, text, len, true, false, &ids, &n) != SLLM_OK) {
        fprintf(stderr, "sllm perplexity: %s: %s\n", file, sllm_last_error());
        goto done;
    }
    if (cm.m->hp.n_ctx_train > 0 && n_ctx > cm.m->hp.n_ctx_train) n_ctx = cm.m->hp.n_ctx_train;
    int n_chunks = n / (int)n_ctx;
    if (max_chunks > 0 && n_chunks > max_chunks) n_chunks = (int)max_chunks;
    if (n_chunks < 1) {
        fprintf(stderr, "sllm perplexity: %s: %d tokens is less than one chunk of %lld (use a smaller -c)\n",
                file, n, (long long)n_ctx);
        goto done;
    }
    const int V = cm.m->hp.n_vocab;
    logits = malloc((size_t)n_ctx * (size_t)V * sizeof *logits);
    if (!logits || model_session_new(cm.m, (int)n_ctx, 0, cm.pool, &s) != SLLM_OK) {
        fprintf(stderr, "sllm perplexity: %s\n", logits ? sllm_last_error() : "out of memory");
        goto done;
    }
    double nll = 0, nll2 = 0; int64_t count = 0;
    int first = (int)n_ctx / 2;
    double t0 = gen_now_ms();
    for (int c = 0; c < n_chunks; c++) {
        int32_t *chunk = ids + (size_t)c * (size_t)n_ctx;
        int32_t saved = chunk[0];
        if (tok_add_bos(cm.t) && tok_bos(cm.t) >= 0) chunk[0] = tok_bos(cm.t);
        model_session_reset(s);
        int frc = model_forward(s, chunk, (int)n_ctx, logits, true);
        chunk[0] = saved;
        if (frc != SLLM_OK) { fprintf(stderr, "sllm perplexity: %s\n", sllm_last_error()); goto done; }
        for (int j = first; j < n_ctx - 1; j++) {
            double l = -log_softmax_at(logits + (size_t)j * V, V, chunk[j + 1]);
            nll += l; nll2 += l * l; count++;
        }
        if (!json) { fprintf(stderr, "[%d]%.4f%s", c + 1, exp(nll / (double)count), c + 1 < n_chunks ? "," : "\n"); }
    }
    double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
    double err = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0;
    double ppl = exp(mean);
    if (json)
        printf("{\"ppl\":%.6f,\"ppl_err\":%.6f,\"nll\":%.6f,\"tokens_scored\":%lld,\"chunks\":%d,\"ctx\":%lld,\"seconds\":%.2f}\n",
               ppl, ppl * err, mean, (long long)count, n_chunks, (long long)n_ctx, (gen_now_ms() - t0) / 1e3);
    else
        printf("Final estimate: PPL = %.4f +/- %.4f  (%d chunks of %lld tokens, %lld scored)\n", ppl, ppl * err,
               n_chunks, (long long)n_ctx, (long long)count);
    rc = 0;
done:
    model_session_free(s);
    free(logits);
    free(ids);
    cli_model_close(&cm);
    free(text);
    return rc;
}
