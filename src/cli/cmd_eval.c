// sllm eval: compare a base model and the same model with LoRA adapters on question/answer data:
// the answer loss (mean cross-entropy over assistant tokens, as SFT trains it) and the exact match of
// greedy answers (generated after the chat-template prompt, cut at the template's end-of-turn text,
// surrounding whitespace ignored).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "gen/generate.h"
#include "text/chat_template.h"
#include "train/adapter_io.h"
#include "train/dataset.h"
#include "train/trainer.h"

static const char EVAL_HELP[] =
    "usage: sllm eval --model BASE [--lora A[:SCALE] ...] --data QA.jsonl|QA.csv [options]\n"
    "\n"
    "Scores BASE and, with --lora, BASE + adapters on question/answer pairs (any format `sllm train sft`\n"
    "reads; the last assistant message is the reference answer): mean answer loss and exact match of the\n"
    "greedy answer. Prompts use the model's chat template (ChatML when it has none).\n"
    "\n"
    "  --model BASE        .gguf file or Hugging Face directory\n"
    "  --lora A[:SCALE]    adapter (PEFT directory or GGUF LoRA); repeatable\n"
    "  --data FILE         question/answer data\n"
    "  --limit N           only the first N pairs\n"
    "  -n, --n-predict N   longest generated answer in tokens (default 64)\n"
    "  --show N            print the first N questions with both answers (default 0)\n"
    "  --system TEXT       system message for conversations without one\n"
    "  --chat-template F   Jinja chat template file to use instead of the model's own\n"
    "  -t, --threads N     threads\n"
    "  --json              one JSON line with the results on stdout\n";

typedef struct {
    const tok *t;
    const char *tmpl;
    char *bos, *eos;
} eval_glue;

static int cb_tokenize(void *ctx, const char *text, size_t n, int32_t **ids, int *n_ids) {
    return tok_encode(((const eval_glue *)ctx)->t, text, n, false, true, ids, n_ids);
}

static int cb_render(void *ctx, const json_t *messages, int add_gen, char **text, size_t *len) {
    const eval_glue *g = ctx;
    int rc = chat_render(g->tmpl, messages, NULL, add_gen != 0, NULL, g->bos, g->eos, text);
    if (rc == SLLM_OK) *len = strlen(*text);
    return rc;
}

typedef struct {
    double loss;        // mean answer loss
    int64_t loss_tokens;
    int n, exact;
    char **answers;     // per record (slots)
    int64_t slots;
} eval_score;

// Mean cross-entropy over the corpus' loss tokens, one forward per sample.
static int corpus_loss(sllm_model *m, tpool *pool, const ds_corpus *c, int limit, double *mean, int64_t *count) {
    double sum = 0;
    int64_t cnt = 0;
    int rc = SLLM_OK;
    int V = m->hp.n_vocab;
    int64_t ns = ds_corpus_count(c);
    if (limit > 0 && ns > limit) ns = limit;
    for (int64_t i = 0; i < ns && !rc; i++) {
        const int32_t *ids; const uint8_t *loss; int64_t n;
        ds_corpus_sample(c, i, &ids, &loss, &n);
        if (n < 2) continue;
        model_session *s = NULL;
        float *logits = malloc((size_t)n * (size_t)V * sizeof(float));
        if (!logits) return err_set(SLLM_ERR_NOMEM, "eval: out of memory");
        if (!(rc = model_session_new(m, (int)n, 0, pool, &s)) && !(rc = model_forward(s, ids, (int)n, logits, true))) {
            for (int64_t t = 0; t + 1 < n; t++) {
                if (!loss[t + 1]) continue;
                const float *l = logits + t * V;
                float mx = l[0];
                for (int v = 1; v < V; v++) if (l[v] > mx) mx = l[v];
                double z = 0;
                for (int v = 0; v < V; v++) z += exp((double)l[v] - mx);
                sum += log(z) + mx - l[ids[t + 1]];
                cnt++;
            }
        }
        model_session_free(s);
        free(logits);
    }
    *mean = cnt ? sum / (double)cnt : NAN;
    *count = cnt;
    return rc;
}

typedef struct {
    char *buf; size_t len, cap;
    const char *stop;
} gen_acc;

static bool on_tok(void *ctx, int32_t id, const char *text, size_t len, const sampler *smp) {
    (void)id; (void)smp;
    gen_acc *a = ctx;
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *nb = realloc(a->buf, cap);
        if (!nb) return false;
        a->buf = nb; a->cap = cap;
    }
    memcpy(a->buf + a->len, text, len);
    a->len += len;
    a->buf[a->len] = 0;
    return !(a->stop && *a->stop && strstr(a->buf, a->stop));
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

// Greedy answers for every pair; exact match against the reference.
static int answers(sllm_model *m, const tok *t, tpool *pool, eval_glue *g, const ds_source *src, int limit, int n_predict,
                   eval_score *sc) {
    int64_t nr = ds_source_count(src);
    if (limit > 0 && nr > limit) nr = limit;
    sc->answers = calloc((size_t)(nr ? nr : 1), sizeof *sc->answers);
    if (!sc->answers) return err_set(SLLM_ERR_NOMEM, "eval: out of memory");
    sc->slots = nr;
    sample_params sp;
    sample_params_default(&sp);
    sp.temp = 0;
    int rc = SLLM_OK;
    for (int64_t i = 0; i < nr && !rc; i++) {
        const ds_record *r = ds_source_get(src, i);
        if (r->kind != DS_REC_CHAT) continue;
        size_t nm = json_array_size(r->messages);
        json_t *last = json_array_get(r->messages, nm - 1);
        const char *role = json_string_value(json_object_get(last, "role"));
        const char *ref = json_string_value(json_object_get(last, "content"));
        if (nm < 2 || !role || strcmp(role, "assistant") || !ref) continue;
        json_t *prefix = json_array();
        for (size_t k = 0; k + 1 < nm; k++) json_array_append(prefix, json_array_get(r->messages, k));
        char *prompt = NULL, *full = NULL;
        size_t plen = 0, flen = 0;
        rc = cb_render(g, prefix, 1, &prompt, &plen);
        if (!rc) rc = cb_render(g, r->messages, 0, &full, &flen);
        json_decref(prefix);
        // the end-of-turn text is what the template puts after the answer
        char stop[64] = "";
        if (!rc && flen >= plen && !strncmp(full, prompt, plen)) {
            const char *at = strstr(full + plen, ref);
            if (at) {
                snprintf(stop, sizeof stop, "%s", at + strlen(ref));
                char *ts = trim(stop);
                memmove(stop, ts, strlen(ts) + 1);
            }
        }
        int32_t *ids = NULL; int n_ids = 0;
        model_session *s = NULL;
        sampler *smp = NULL;
        gen_acc acc = {.stop = stop};
        if (!rc) rc = tok_encode(t, prompt, plen, true, true, &ids, &n_ids);
        if (!rc) rc = model_session_new(m, n_ids + n_predict + 1, 0, pool, &s);
        if (!rc && !(smp = sampler_new(&sp, m->hp.n_vocab))) rc = err_set(SLLM_ERR_NOMEM, "eval: out of memory");
        gen_opts go = {.n_predict = n_predict};
        gen_stats gs;
        if (!rc) rc = gen_generate(s, t, smp, ids, n_ids, &go, on_tok, &acc, &gs);
        if (!rc) {
            char *out = acc.buf ? acc.buf : strdup("");
            if (stop[0] && out) { char *cut = strstr(out, stop); if (cut) *cut = 0; }
            char *refc = strdup(ref);
            if (out && refc) {
                sc->exact += !strcmp(trim(out), trim(refc));
                sc->answers[i] = strdup(trim(out));
            }
            free(refc);
            if (out != acc.buf) free(out);
            sc->n++;
        }
        if (acc.buf) free(acc.buf);
        sampler_free(smp);
        model_session_free(s);
        free(ids); free(prompt); free(full);
    }
    return rc;
}

static int score(sllm_model *m, const tok *t, tpool *pool, eval_glue *g, const ds_source *src, const ds_corpus *c,
                 int limit, int n_predict, eval_score *sc) {
    int rc = corpus_loss(m, pool, c, limit, &sc->loss, &sc->loss_tokens);
    if (!rc) rc = answers(m, t, pool, g, src, limit, n_predict, sc);
    return rc;
}

static void print_json_score(const char *name, const eval_score *s, bool comma) {
    printf("%s\"%s\":{\"pairs\":%d,\"exact_match\":%d,\"accuracy\":%.6g,\"loss\":", comma ? "," : "", name, s->n,
           s->exact, s->n ? (double)s->exact / s->n : 0.0);
    if (isfinite(s->loss)) printf("%.6g", s->loss); else printf("null");
    printf(",\"loss_tokens\":%lld}", (long long)s->loss_tokens);
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *system = NULL, *tmpl_file = NULL;
    const char *lora_specs[MODEL_MAX_LORA];
    int n_lora = 0;
    int64_t limit = 0, n_predict = 64, show = 0, threads = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { fputs(EVAL_HELP, stdout); return 0; }
#define VAL() do { if (!(v = arg_value("eval", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model = v; }
        else if (!strcmp(a, "--data")) { VAL(); data = v; }
        else if (!strcmp(a, "--lora")) {
            VAL();
            if (n_lora == MODEL_MAX_LORA) { fprintf(stderr, "sllm eval: at most %d --lora adapters\n", MODEL_MAX_LORA); return 2; }
            lora_specs[n_lora++] = v;
        }
        else if (!strcmp(a, "--limit")) { VAL(); if (!arg_int("eval", a, v, 1, 1 << 30, &limit)) return 2; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { VAL(); if (!arg_int("eval", a, v, 1, 1 << 16, &n_predict)) return 2; }
        else if (!strcmp(a, "--show")) { VAL(); if (!arg_int("eval", a, v, 0, 1 << 30, &show)) return 2; }
        else if (!strcmp(a, "--system")) { VAL(); system = v; }
        else if (!strcmp(a, "--chat-template")) { VAL(); tmpl_file = v; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!arg_int("eval", a, v, 0, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--json")) json = true;
        else return arg_unknown("eval", a);
#undef VAL
    }
    if (!model || !data) { fprintf(stderr, "sllm eval: need --model BASE and --data FILE (see sllm eval --help)\n"); return 2; }
    cli_model cm;
    if (!cli_model_open("eval", model, true, true, (int)threads, &cm)) return 1;
    int rc = 1;
    ds_source *src = NULL;
    ds_corpus *corp = NULL;
    lora_adapter *ads[MODEL_MAX_LORA] = {0};
    eval_score base = {0}, tuned = {0};
    eval_glue g = {.t = cm.t};
    char *tmpl = tmpl_file ? trainer_read_template(tmpl_file) : trainer_chat_template(cm.m);
    g.tmpl = tmpl;
    if (tmpl_file && !tmpl) { fprintf(stderr, "sllm eval: %s\n", sllm_last_error()); goto done; }
    g.bos = trainer_token_text(cm.t, tok_bos(cm.t));
    g.eos = trainer_token_text(cm.t, tok_eos(cm.t));
    for (int k = 0; k < n_lora; k++) {
        char *p = NULL; float sc = 1;
        if (adapter_parse_spec(lora_specs[k], &p, &sc) || adapter_load(cm.m, p, &ads[k])) {
            fprintf(stderr, "sllm eval: --lora %s: %s\n", lora_specs[k], sllm_last_error());
            free(p);
            goto done;
        }
        free(p);
    }
    ds_load_opts lo = {.on_error = DS_ON_ERROR_SKIP, .system_prompt = system};
    if (ds_load(data, &lo, &src)) { fprintf(stderr, "sllm eval: %s\n", sllm_last_error()); goto done; }
    ds_tok_opts to = {.mode = DS_SFT, .tokenize = cb_tokenize, .tok_ctx = &g, .render = cb_render, .render_ctx = &g,
                      .bos_id = tok_add_bos(cm.t) ? tok_bos(cm.t) : -1, .eos_id = tok_eos(cm.t)};
    if (ds_tokenize(src, &to, &corp)) { fprintf(stderr, "sllm eval: %s: %s\n", data, sllm_last_error()); goto done; }
    if (score(cm.m, cm.t, cm.pool, &g, src, corp, (int)limit, (int)n_predict, &base)) {
        fprintf(stderr, "sllm eval: %s\n", sllm_last_error());
        goto done;
    }
    if (n_lora) {
        for (int k = 0; k < n_lora; k++) {
            char *p = NULL; float sc = 1;
            adapter_parse_spec(lora_specs[k], &p, &sc);
            free(p);
            if (lora_attach(cm.m, ads[k], sc)) { fprintf(stderr, "sllm eval: %s\n", sllm_last_error()); goto done; }
        }
        if (score(cm.m, cm.t, cm.pool, &g, src, corp, (int)limit, (int)n_predict, &tuned)) {
            fprintf(stderr, "sllm eval: %s\n", sllm_last_error());
            goto done;
        }
    }
    for (int64_t i = 0; i < show && i < base.slots; i++) {
        if (!base.answers[i]) continue;
        const ds_record *r = ds_source_get(src, i);
        size_t nm = json_array_size(r->messages);
        const char *q = nm >= 2 ? json_string_value(json_object_get(json_array_get(r->messages, nm - 2), "content")) : "";
        const char *ref = json_string_value(json_object_get(json_array_get(r->messages, nm - 1), "content"));
        fprintf(stderr, "Q: %s\n  reference: %s\n  base:      %s\n", q ? q : "", ref ? ref : "",
                base.answers[i] ? base.answers[i] : "");
        if (n_lora) fprintf(stderr, "  tuned:     %s\n", tuned.answers[i] ? tuned.answers[i] : "");
    }
    if (json) {
        printf("{\"data\":");
        cli_json_str(stdout, data, strlen(data));
        print_json_score("base", &base, true);
        if (n_lora) print_json_score("tuned", &tuned, true);
        printf("}\n");
    } else {
        printf("%-8s %8s %14s %10s\n", "", "pairs", "exact match", "loss");
        printf("%-8s %8d %7d (%3.0f%%) %10.4f\n", "base", base.n, base.exact, base.n ? 100.0 * base.exact / base.n : 0, base.loss);
        if (n_lora)
            printf("%-8s %8d %7d (%3.0f%%) %10.4f\n", "tuned", tuned.n, tuned.exact, tuned.n ? 100.0 * tuned.exact / tuned.n : 0,
                   tuned.loss);
    }
    rc = 0;
done:
    for (int k = 0; k < n_lora; k++) if (ads[k]) { lora_detach(cm.m, ads[k]); lora_free(ads[k]); }
    err_clear();
    for (int64_t i = 0; base.answers && i < base.slots; i++) free(base.answers[i]);
    for (int64_t i = 0; tuned.answers && i < tuned.slots; i++) free(tuned.answers[i]);
    free(base.answers); free(tuned.answers);
    ds_corpus_free(corp);
    ds_source_free(src);
    free(tmpl); free(g.bos); free(g.eos);
    cli_model_close(&cm);
    return rc;
}
