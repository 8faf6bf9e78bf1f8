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
    "      --no-special          do not parse special tokens written in the prompt\n"
    "      --no-echo             do not print the prompt before the continuation\n"
    "      --probs K             report the top-K tokens and probabilities of each step\n"
    "      --json                one JSON object per generated token on stdout instead of text\n"
    "      --verbose             print timings to stderr\n"
    "      --lora A[:SCALE]      apply a LoRA adapter (PEFT directory or GGUF LoRA); repeatable\n";

typedef struct {
    const tok *t;
    int probs_k;
    bool json, verbose;
    int step;
    sample_cand *top;
} run_ctx;

static bool on_token(void *vctx, int32_t id, const char *text, size_t len, const sampler *smp) {
    run_ctx *c = vctx;
    if (!c->json) {
        if (len) { fwrite(text, 1, len, stdout); fflush(stdout); }
        if (c->probs_k > 0 && id >= 0) {
            int n = sampler_top_probs(smp, c->top, c->probs_k);
            fprintf(stderr, "\n[step %d] id %d:", c->step, id);
            for (int i = 0; i < n; i++) fprintf(stderr, " %d(%.4f)", c->top[i].id, c->top[i].p);
            fputc('\n', stderr);
        }
        if (id >= 0) c->step++;
        return true;
    }
    if (id < 0) return true;       // trailing flush: the pieces already carried the bytes
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
    return true;
}

int cmd_run(int argc, char **argv) {
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
        else return arg_unknown("run", a);
#undef VAL
    }
    if (!model) { fprintf(stderr, "sllm run: -m MODEL is required (see sllm run --help)\n"); return 2; }
    if (!prompt && !file) { fprintf(stderr, "sllm run: give a prompt with -p TEXT or -f FILE\n"); return 2; }
    char *fbuf = NULL; size_t plen;
    if (file) { if (!(fbuf = cli_read_file("run", file, &plen))) return 1; prompt = fbuf; }
    else plen = strlen(prompt);

    cli_model cm;
    if (!cli_model_open("run", model, true, (int)threads, &cm)) { free(fbuf); return 1; }
    int rc = 1;
    int32_t *ids = NULL; int n_ids = 0;
    model_session *s = NULL;
    sampler *smp = NULL;
    run_ctx rctx = {.t = cm.t, .probs_k = (int)probs_k, .json = json, .verbose = verbose};
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
    if (!json) { putchar('\n'); fflush(stdout); }
    if (verbose)
        fprintf(stderr, "prompt: %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.1f tok/s)\n",
                st.n_prompt, st.prefill_ms, st.n_prompt * 1e3 / (st.prefill_ms + 1e-9), st.n_gen, st.decode_ms,
                st.n_gen > 1 ? (st.n_gen - 1) * 1e3 / (st.decode_ms + 1e-9) : 0.0);
    rc = 0;
done:
    free(rctx.top);
    sampler_free(smp);
    model_session_free(s);
    free(ids);
    for (int k = 0; k < n_lora; k++) if (loras[k]) { lora_detach(cm.m, loras[k]); lora_free(loras[k]); }
    cli_model_close(&cm);
    free(fbuf);
    return rc;
}
