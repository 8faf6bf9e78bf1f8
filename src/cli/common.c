#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli/args.h"
#include "cli/common.h"
#include "gen/generate.h"

dtype cli_kv_type = DT_F16;

int cli_global_flags(int *argc, char **argv) {
    int n = 0;
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--kv-type")) {
            const char *v = i + 1 < *argc ? argv[++i] : NULL;
            if (!v || (strcasecmp(v, "f16") && strcasecmp(v, "f32") && strcasecmp(v, "q8_0"))) {
                fprintf(stderr, "sllm: --kv-type takes f16, f32 or q8_0%s%s%s\n", v ? " (got '" : "", v ? v : "", v ? "')" : "");
                return 2;
            }
            cli_kv_type = !strcasecmp(v, "f16") ? DT_F16 : !strcasecmp(v, "f32") ? DT_F32 : DT_Q8_0;
            continue;
        }
        argv[n++] = argv[i];
    }
    *argc = n;
    argv[n] = NULL;
    return 0;
}

bool cli_model_kv_type(const char *cmd, const char *path, cli_model *cm) {
    if (model_set_kv_type(cm->m, cli_kv_type) == SLLM_OK) return true;
    fprintf(stderr, "sllm %s: %s: %s\n", cmd, path, sllm_last_error());
    return false;
}

bool cli_model_open(const char *cmd, const char *path, bool want_tok, bool infer, int threads, cli_model *out) {
    memset(out, 0, sizeof *out);
    if (model_load(path, &out->m) != SLLM_OK) {
        fprintf(stderr, "sllm %s: %s\n", cmd, sllm_last_error());
        return false;
    }
    if (want_tok && gen_load_tokenizer(out->m, &out->t) != SLLM_OK) {
        fprintf(stderr, "sllm %s: %s\n", cmd, sllm_last_error());
        cli_model_close(out);
        return false;
    }
    // (tokenize / template make no cache: a type the model cannot take is not their error)
    if (infer && !cli_model_kv_type(cmd, path, out)) {
        cli_model_close(out);
        return false;
    }
    out->pool = tpool_new(threads);
    if (infer && model_pack(out->m, out->pool) != SLLM_OK)   // not fatal: the model runs unpacked
        fprintf(stderr, "sllm %s: warning: %s\n", cmd, sllm_last_error());
    return true;
}

void cli_model_close(cli_model *cm) {
    tok_free(cm->t);
    model_free(cm->m);
    tpool_free(cm->pool);
    memset(cm, 0, sizeof *cm);
}

char *cli_read_file(const char *cmd, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "sllm %s: %s: cannot open file\n", cmd, path); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) { cap *= 2; char *nb = realloc(buf, cap + 1); if (!nb) { free(buf); buf = NULL; } else buf = nb; }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) { free(buf); fprintf(stderr, "sllm %s: %s: read error\n", cmd, path); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

// Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid.
static int utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!k || (size_t)k > n) return 0;
    for (int i = 1; i < k; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

void cli_json_str(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        int k = utf8_seq_len(p + i, len - i);
        if (k == 0) { fputs("\\ufffd", f); i++; continue; }
        if (k > 1) { fwrite(p + i, 1, (size_t)k, f); i += (size_t)k; continue; }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c); else fputc((int)c, f);
        }
        i++;
    }
    fputc('"', f);
}

int cli_sample_flag(const char *cmd, int argc, char **argv, int *i, sample_params *sp) {
    const char *a = argv[*i], *v;
    double d; int64_t n;
    static const char *const flags[] = {"--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--repeat-last-n",
                                        "--frequency-penalty", "--presence-penalty", "--seed"};
    int k = -1;
    for (int j = 0; j < (int)(sizeof flags / sizeof flags[0]); j++) if (!strcmp(a, flags[j])) k = j;
    if (k < 0) return 0;
    if (!(v = arg_value(cmd, argc, argv, i))) return -1;
    switch (k) {
    case 0: if (!arg_float(cmd, a, v, 0, 100, &d)) return -1; sp->temp = (float)d; break;
    case 1: if (!arg_int(cmd, a, v, 0, 1 << 30, &n)) return -1; sp->top_k = (int)n; break;
    case 2: if (!arg_float(cmd, a, v, 0, 1, &d)) return -1; sp->top_p = (float)d; break;
    case 3: if (!arg_float(cmd, a, v, 0, 1, &d)) return -1; sp->min_p = (float)d; break;
    case 4: if (!arg_float(cmd, a, v, 0.01, 100, &d)) return -1; sp->repeat_penalty = (float)d; break;
    case 5: if (!arg_int(cmd, a, v, -1, 1 << 24, &n)) return -1; sp->repeat_last_n = (int)n; break;
    case 6: if (!arg_float(cmd, a, v, -2, 2, &d)) return -1; sp->freq_penalty = (float)d; break;
    case 7: if (!arg_float(cmd, a, v, -2, 2, &d)) return -1; sp->presence_penalty = (float)d; break;
    default: if (!arg_int(cmd, a, v, 0, INT64_MAX, &n)) return -1; sp->seed = (uint64_t)n; break;
    }
    return 1;
}

bool cli_sample_params(const char *cmd, const sllm_model *m, int argc, char **argv, sample_params *sp) {
    sample_params_default(sp);
    if (m && gen_model_sample_defaults(m, sp) != SLLM_OK) {
        fprintf(stderr, "sllm %s: %s\n", cmd, sllm_last_error());
        return false;
    }
    for (int i = 1; i < argc; i++)
        if (cli_sample_flag(cmd, argc, argv, &i, sp) < 0) return false;
    return true;
}
