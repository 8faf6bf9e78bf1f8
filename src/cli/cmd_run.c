// sllm run: stream a continuation of a prompt; --probs K --json prints each step's top-K.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "gen/generate.h"
#include "train/adapter_io.h"

static const char RUN_HELP[] =
    "usage: sllm run -m MODEL (-p PROMPT | -f FILE) [options]\n"
    "\n"
    "Generates a continuation of PROMPT and streams it to stdout. MODEL is a .gguf file or a\n"
    "Hugging Face directory. The prompt is tokenized with the model's tokenizer (BOS added when the\n"
    "model asks for it; special tokens such as <|im_start|> written in the prompt are recognized).\n"
    "\n"
    "  -m, --model MODEL         model file or directory (required)\n"
    "  -p, --prompt TEXT         prompt text\n"
    "  -f, --file FILE           read the prompt from FILE\n"
    "  -n, --n-predict N         tokens to generate (default 128; -1 = until end of text)\n"
    "  -c, --ctx N               context size in tokens (default: prompt + n, at most the model's)\n"
    "  -t, --threads N           threads (default: all cores)\n"
    "      --temp T              temperature (default 0.8, or the model's generation_config.json; 0 = greedy)\n"
    "      --top-k K             (default 40; 0 = off)    --top-p P  (default 0.95)   --min-p P (default 0.05)\n"
    "      --repeat-penalty R    (default 1 = off)  --repeat-last-n N (default 64)\n"
    "      --frequency-penalty F --presence-penalty P   (OpenAI semantics, default 0)\n"
    "      --seed S              RNG seed (default 0): same seed, same output\n"
    "      --ignore-eos          keep generating past end-of-text tokens\n"
    "      --stop TEXT           stop when the output contains TEXT (not printed); repeatable\n"
    "      --no-special          do not parse special tokens written in the prompt\n"
    "      --no-echo             do not print the prompt before the continuation\n"
    "      --probs K             report the top-K tokens and probabilities of each step\n"
    "      --json                one JSON object per generated token on stdout instead of text\n"
    "      --verbose             print timings to stderr\n"
    "      --lora A[:SCALE]      apply a LoRA adapter (PEFT directory or GGUF LoRA); repeatable\n";

#define MAX_STOP 8
typedef struct {
    const tok *t;
    int probs_k;
    bool json, verbose;
    int step;
    sample_cand *top;
    const char *stop[MAX_STOP]; int n_stop;
    char *hold; size_t n_hold, cap_hold;   // text held back: it may be the start of a stop string
    bool stopped;
} run_ctx;

// Appends text to the held-back buffer; returns the offset of the first stop string in it, or -1.
static long hold_add(run_ctx *c, const char *text, size_t len) {
    if (c->n_hold + len + 1 > c->cap_hold) {
        size_t cap = (c->n_hold + len + 1) * 2;
        char *h = realloc(c->hold, cap);
        if (!h) return -1;
        c->hold = h; c->cap_hold = cap;
    }
    memcpy(c->hold + c->n_hold, text, len);
    c->n_hold += len;
    c->hold[c->n_hold] = 0;
    long first = -1;
    for (int i = 0; i < c->n_stop; i++) {
        const char *f = memmem(c->hold, c->n_hold, c->stop[i], strlen(c->stop[i]));
        if (f && (first < 0 || f - c->hold < first)) first = f - c->hold;
    }
    return first;
}

// Bytes at the front of the held text that can no longer start a stop string (safe to print).
static size_t hold_safe(const run_ctx *c) {
    for (size_t i = 0; i < c->n_hold; i++) {
        size_t rest = c->n_hold - i;
        for (int k = 0; k < c->n_stop; k++) {
            size_t sl = strlen(c->stop[k]);
            if (memcmp(c->hold + i, c->stop[k], rest < sl ? rest : sl) == 0) return i;
        }
    }
    return c->n_hold;
}

static void hold_emit(run_ctx *c, size_t n) {
    if (!c->hold) return;   // nothing was ever held
    fwrite(c->hold, 1, n, stdout);
    fflush(stdout);
    memmove(c->hold, c->hold + n, c->n_hold - n);
    c->n_hold -= n;
}

// Text mode with stop strings: print what cannot be part of a stop string; stop at the first one.
static bool stream_text(run_ctx *c, const char *text, size_t len) {
    if (!c->n_stop) { if (len) { fwrite(text, 1, len, stdout); fflush(stdout); } return true; }
    long at = hold_add(c, text, len);
    if (at >= 0) { hold_emit(c, (size_t)at); c->n_hold = 0; c->stopped = true; return false; }
    hold_emit(c, hold_safe(c));
    return true;
}

static bool on_token(void *vctx, int32_t id, const char *text, size_t len, const sampler *smp) {
    run_ctx *c = vctx;
    if (!c->json) {
        bool go_on = stream_text(c, text, len);
        if (c->probs_k > 0 && id >= 0) {
            int n = sampler_top_probs(smp, c->top, c->probs_k);
            fprintf(stderr, "\n[step %d] id %d:", c->step, id);
            for (int i = 0; i < n; i++) fprintf(stderr, " %d(%.4f)", c->top[i].id, c->top[i].p);
            fputc('\n', stderr);
        }
        if (id >= 0) c->step++;
        return go_on;
    }
    if (id < 0) return true;       // trailing flush: the pieces already carried the bytes
    bool go_on = !c->n_stop || hold_add(c, text, len) < 0;
    size_t plen = 0;
    const char *piece = tok_piece(c->t, id, &plen);
    printf("{\"step\":%d,\"id\":%d,\"piece\":", c->step++, id);
    cli_json_str(stdout, piece ? piece : "", piece ? plen : 0);
    printf(",\"text\":");
    cli_json_str(stdout, text, len);
    if (c->probs_k > 0) {
        int n = sampler_top_probs(smp, c->top, c->probs_k);
        printf(",\"top\":[");
        for (int i = 0; i < n; i++) {
            size_t pl = 0;
            const char *pp = tok_piece(c->t, c->top[i].id, &pl);
            printf("%s{\"id\":%d,\"piece\":", i ? "," : "", c->top[i].id);
            cli_json_str(stdout, pp ? pp : "", pp ? pl : 0);
            printf(",\"p\":%.6g}", c->top[i].p);
        }
        printf("]");
    }
    printf("}\n");
    fflush(stdout);
    return go_on;
}

int cmd_run(int argc, char **argv) {
    run_ctx rctx = {0};
    const char *model = NULL, *prompt = NULL, *file = NULL;
    int64_t n_predict = 128, ctx = 0, threads = 0, probs_k = 0;
    bool json = false, verbose = false, ignore_eos = false, parse_special = true, echo = true;
    sample_params sp; sample_params_default(&sp);
    const char *lora_specs[MODEL_MAX_LORA]; int n_lora = 0;
    lora_adapter *loras[MODEL_MAX_LORA] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int k;
        if (arg_is_help(a)) { fputs(RUN_HELP, stdout); return 0; }
#define VAL() do { if (!(v = arg_value("run", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { VAL(); prompt = v; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { VAL(); file = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { VAL(); if (!arg_int("run", a, v, -1, 1 << 24, &n_predict)) return 2; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) { VAL(); if (!arg_int("run", a, v, 0, 1 << 24, &ctx)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!arg_int("run", a, v, 0, 1024, &threads)) return 2; }
        else if ((k = cli_sample_flag("run", argc, argv, &i, &sp)) != 0) { if (k < 0) return 2; }
        else if (!strcmp(a, "--probs")) { VAL(); if (!arg_int("run", a, v, 1, 1000, &probs_k)) return 2; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--lora")) {
            VAL();
            if (n_lora == MODEL_MAX_LORA) { fprintf(stderr, "sllm run: at most %d --lora adapters\n", MODEL_MAX_LORA); return 2; }
            lora_specs[n_lora++] = v;
        }
        else if (!strcmp(a, "--verbose")) verbose = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--no-special")) parse_special = false;
        else if (!strcmp(a, "--no-echo")) echo = false;
        else if (!strcmp(a, "--stop")) {
            VAL();
            if (!*v) { fprintf(stderr, "sllm run: --stop: empty text\n"); return 2; }
            if (rctx.n_stop == MAX_STOP) { fprintf(stderr, "sllm run: at most %d --stop strings\n", MAX_STOP); return 2; }
            rctx.stop[rctx.n_stop++] = v;
        }
        else return arg_unknown("run", a);
#undef VAL
    }
    if (!model) { fprintf(stderr, "sllm run: -m MODEL is required (see sllm run --help)\n"); return 2; }
    if (!prompt && !file) { fprintf(stderr, "sllm run: give a prompt with -p TEXT or -f FILE\n"); return 2; }
    char *fbuf = NULL; size_t plen;
    if (file) { if (!(fbuf = cli_read_file("run", file, &plen))) return 1; prompt = fbuf; }
    else plen = strlen(prompt);

    cli_model cm;
    if (!cli_model_open("run", model, true, true, (int)threads, &cm)) { free(fbuf); return 1; }
    int rc = 1;
    int32_t *ids = NULL; int n_ids = 0;
    model_session *s = NULL;
    sampler *smp = NULL;
    rctx.t = cm.t; rctx.probs_k = (int)probs_k; rctx.json = json; rctx.verbose = verbose;
    for (int k = 0; k < n_lora; k++) {
        char *lpath = NULL; float lscale = 1;
        if (adapter_parse_spec(lora_specs[k], &lpath, &lscale) != SLLM_OK || adapter_load(cm.m, lpath, &loras[k]) != SLLM_OK ||
            lora_attach(cm.m, loras[k], lscale) != SLLM_OK) {
            fprintf(stderr, "sllm run: --lora %s: %s\n", lora_specs[k], sllm_last_error());
            free(lpath);
            goto done;
        }
        free(lpath);
    }
    if (tok_encode(cm.t, prompt, plen, true, parse_special, &ids, &n_ids) != SLLM_OK) {
        fprintf(stderr, "sllm run: prompt: %s\n", sllm_last_error());
        goto done;
    }
    if (n_ids == 0) { fprintf(stderr, "sllm run: the prompt encodes to no tokens\n"); goto done; }
    int want_ctx = ctx > 0 ? (int)ctx : n_ids + (n_predict < 0 ? 4096 : (int)n_predict) + 1;
    if (ctx <= 0 && cm.m->hp.n_ctx_train > 0 && want_ctx > cm.m->hp.n_ctx_train) want_ctx = cm.m->hp.n_ctx_train;
    if (n_ids >= want_ctx) {
        fprintf(stderr, "sllm run: the prompt has %d tokens but the context holds %d (use -c)\n", n_ids, want_ctx);
        goto done;
    }
    if (!cli_sample_params("run", cm.m, argc, argv, &sp)) goto done;   // model defaults, then the flags
    if (model_session_new(cm.m, want_ctx, 0, cm.pool, &s) != SLLM_OK ||
        !(smp = sampler_new(&sp, cm.m->hp.n_vocab))) {
        fprintf(stderr, "sllm run: %s\n", sllm_last_error());
        goto done;
    }
    rctx.top = calloc(probs_k > 0 ? (size_t)probs_k : 1, sizeof *rctx.top);
    gen_opts go = {.n_predict = (int)n_predict, .ignore_eog = ignore_eos};
    if (echo && !json) { fwrite(prompt, 1, plen, stdout); fflush(stdout); }
    gen_stats st;
    if (gen_generate(s, cm.t, smp, ids, n_ids, &go, on_token, &rctx, &st) != SLLM_OK) {
        fprintf(stderr, "\nsllm run: %s\n", sllm_last_error());
        goto done;
    }
    if (!json) {
        if (!rctx.stopped) hold_emit(&rctx, rctx.n_hold);   // generation ended with text still held back
        putchar('\n');
        fflush(stdout);
    }
    if (verbose)
        fprintf(stderr, "prompt: %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.1f tok/s)\n",
                st.n_prompt, st.prefill_ms, st.n_prompt * 1e3 / (st.prefill_ms + 1e-9), st.n_gen, st.decode_ms,
                st.n_gen > 1 ? (st.n_gen - 1) * 1e3 / (st.decode_ms + 1e-9) : 0.0);
    rc = 0;
done:
    free(rctx.top);
    free(rctx.hold);
    sampler_free(smp);
    model_session_free(s);
    free(ids);
    for (int k = 0; k < n_lora; k++) if (loras[k]) { lora_detach(cm.m, loras[k]); lora_free(loras[k]); }
    cli_model_close(&cm);
    free(fbuf);
    return rc;
}
