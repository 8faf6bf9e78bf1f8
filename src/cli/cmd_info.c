// sllm info: what a model is and what it costs to run.
#include <stdio.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"

static const char INFO_HELP[] =
    "usage: sllm info MODEL [--ctx N] [--json]\n"
    "\n"
    "Prints the architecture, shape, parameter count, dtype mix and the memory needed for the\n"
    "weights plus a KV cache of N tokens (default: 4096 and the model's training context) in the\n"
    "dtype inference uses (f16, or the global option --kv-type f32 / q8_0).\n";

static void human_bytes(char *buf, size_t n, double b) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) { b /= 1024; i++; }
    snprintf(buf, n, "%.2f %s", b, u[i]);
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int64_t ctx = 4096;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { fputs(INFO_HELP, stdout); return 0; }
        if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            if (!(v = arg_value("info", argc, argv, &i)) || !arg_int("info", a, v, 1, 1 << 24, &ctx)) return 2;
        } else if (!strcmp(a, "--json")) json = true;
        else if (a[0] == '-' && a[1]) return arg_unknown("info", a);
        else if (!path) path = a;
        else { fprintf(stderr, "sllm info: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path) { fprintf(stderr, "sllm info: MODEL is required (see sllm info --help)\n"); return 2; }
    cli_model cm;
    if (!cli_model_open("info", path, false, false, 1, &cm)) return 1;
    if (!cli_model_kv_type("info", path, &cm)) { cli_model_close(&cm); return 1; }
    const sllm_model *m = cm.m;
    const model_hparams *hp = &m->hp;
    model_info_t mi;
    model_info(m, &mi);
    size_t kv = model_kv_bytes(m, (int)ctx);
    int train_ctx = hp->n_ctx_train > 0 ? hp->n_ctx_train : (int)ctx;
    size_t kv_train = model_kv_bytes(m, train_ctx);
    if (json) {
        printf("{\"path\":"); cli_json_str(stdout, path, strlen(path));
        printf(",\"arch\":\"%s\",\"source\":\"%s\",\"n_params\":%lld,\"weight_bytes\":%zu,\"n_vocab\":%d,"
               "\"n_embd\":%d,\"n_layer\":%d,\"n_head\":%d,\"n_head_kv\":%d,\"head_dim\":%d,\"n_ff\":%d,"
               "\"n_ctx_train\":%d,\"tied\":%s,\"ctx\":%lld,\"kv_type\":\"%s\",\"kv_bytes\":%zu,\"total_bytes\":%zu,\"dtypes\":{",
               m->arch->name, m->source == MODEL_SRC_GGUF ? "gguf" : "hf", (long long)mi.n_params, mi.weight_bytes,
               hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff,
               hp->n_ctx_train, hp->tied ? "true" : "false", (long long)ctx, dtype_get(m->kv_type)->name, kv, mi.weight_bytes + kv);
        bool first = true;
        for (int t = 0; t < DT_COUNT; t++)
            if (mi.params_by_dtype[t]) {
                printf("%s\"%s\":%lld", first ? "" : ",", dtype_get(t)->name, (long long)mi.params_by_dtype[t]);
                first = false;
            }
        printf("}}\n");
        cli_model_close(&cm);
        return 0;
    }
    char b1[32], b2[32], b3[32], b4[32];
    printf("model        %s (%s)\n", path, m->source == MODEL_SRC_GGUF ? "GGUF" : "Hugging Face directory");
    if (m->name) printf("name         %s\n", m->name);
    printf("architecture %s\n", m->arch->name);
    printf("shape        vocab %d, embd %d, layers %d, heads %d (kv %d, dim %d), ffn %d, train ctx %d%s\n",
           hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff,
           hp->n_ctx_train, hp->tied ? ", tied head" : "");
    if (hp->swa_window) printf("attention    sliding window %d, every %d-th layer global\n", hp->swa_window, hp->swa_pattern);
    double np = (double)mi.n_params;
    printf("parameters   %lld (%.3g %s)\n", (long long)mi.n_params, np >= 1e9 ? np / 1e9 : np >= 1e6 ? np / 1e6 : np / 1e3,
           np >= 1e9 ? "B" : np >= 1e6 ? "M" : "K");
    printf("dtype mix   ");
    for (int t = 0; t < DT_COUNT; t++)
        if (mi.params_by_dtype[t])
            printf(" %s %.1f%%", dtype_get(t)->name, 100.0 * (double)mi.params_by_dtype[t] / (double)mi.n_params);
    putchar('\n');
    human_bytes(b1, sizeof b1, (double)mi.weight_bytes);
    human_bytes(b2, sizeof b2, (double)kv);
    human_bytes(b3, sizeof b3, (double)(mi.weight_bytes + kv));
    human_bytes(b4, sizeof b4, (double)kv_train);
    const dtype_info *kvt = dtype_get(m->kv_type);
    printf("memory       weights %s + KV cache (%s, %lld tokens) %s = %s\n", b1, kvt->name, (long long)ctx, b2, b3);
    char per[32] = "";   // a block type's bytes per value: "34 bytes / 32"
    if (kvt->block > 1) snprintf(per, sizeof per, " / %d", kvt->block);
    printf("             KV cache per token %zu bytes = 2 (K,V) x %d layers x %d kv heads x %d dims x %d bytes%s\n",
           kv / (size_t)ctx, hp->n_layer, hp->n_head_kv, hp->head_dim, kvt->block_bytes, per);
    if (train_ctx != ctx) printf("             KV cache at the full training context (%d): %s\n", train_ctx, b4);
    cli_model_close(&cm);
    return 0;
}
