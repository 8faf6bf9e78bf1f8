// gen/constrain: grammar-constrained decoding with random-weight models (tiny-qwen3 with the Qwen2
// tokenizer, tiny-llama with the Llama 3 tokenizer, vocabularies of 152k / 128k real pieces).
//  - every schema in tests/schemas and grammar in tests/grammars, many seeds at temperature 1: 100% of
//    outputs finish, parse with jansson and validate with an independent validator (schema_validate.h),
//    or are accepted by the grammar;
//  - the top-k shortcut is exact: the same seeds give byte-identical outputs with and without it;
//  - forced tool calls (Hermes, Llama 3, generic) parse with chat_parse into calls whose arguments
//    validate against the tool's parameters;
//  - constrain_generate without a constraint equals gen_generate; clean errors for bad input.
// A random model's logits are nearly flat, so its output would wander (strings and arrays that never
// close). Like any other logits, the test's are the model's plus a fixed bias toward closing characters
// and end-of-generation tokens (and against whitespace-only pieces), so outputs end within the token
// budget; the constraint still has to reject every misplaced closer, which is most of them.
#include "test.h"
#include "schema_validate.h"
#include "gen/constrain.h"
#include "gen/generate.h"
#include "model/model.h"
#include "text/chat_parse.h"
#include "text/json_schema.h"
#include "text/tokenizer.h"
#include "sllm.h"
#include <dirent.h>

typedef struct {
    const char *name;
    tok *t;
    gguf_file *gf;
    sllm_model *m;
    model_session *s;
    constrain_vocab *cv;
    float *bias;             // (n_vocab)
    float *logits;           // (n_vocab)
    int32_t *prompt; int n_prompt;
    double fwd_ms; int64_t n_fwd;
} tmodel;

static bool tmodel_open(tmodel *tm, const char *name, const char *vocab_file, const char *preset) {
    char buf[512];
    memset(tm, 0, sizeof *tm);
    tm->name = name;
    const char *path = test_fixture(vocab_file, buf, sizeof buf);
    if (!path) { SKIP("%s: fixture %s absent", name, vocab_file); return false; }
    tm->gf = gguf_open(path);
    CHECK(tm->gf != NULL, "%s", sllm_last_error());
    if (!tm->gf || tok_load_gguf(tm->gf, &tm->t) != SLLM_OK) { CHECK(0, "%s: %s", path, sllm_last_error()); return false; }
    model_preset p = *model_preset_get(preset);
    p.n_vocab = tok_n_vocab(tm->t);
    p.n_ctx = 1024;
    model_init_opts o = {.custom = &p, .type = DT_Q4_0, .seed = 7};
    CHECK(model_init(&o, &tm->m) == SLLM_OK, "%s", sllm_last_error());
    if (!tm->m) return false;
    CHECK(model_session_new(tm->m, 512, 0, NULL, &tm->s) == SLLM_OK, "%s", sllm_last_error());
    int V = tm->m->hp.n_vocab;
    double t0 = gen_now_ms();
    tm->cv = constrain_vocab_new(tm->t, V);
    fprintf(stderr, "%s: vocab %d, constrain_vocab_new %.1f ms\n", name, V, gen_now_ms() - t0);
    CHECK(tm->cv != NULL);
    tm->bias = calloc((size_t)V, sizeof *tm->bias);
    tm->logits = malloc((size_t)V * sizeof *tm->logits);
    for (int32_t id = 0; id < tok_n_vocab(tm->t); id++) {
        size_t len;
        const char *pc = tok_piece(tm->t, id, &len);
        if (tok_is_eog(tm->t, id)) { tm->bias[id] = 6; continue; }
        if (!pc || tok_is_special(tm->t, id)) continue;
        size_t nws = 0;
        while (nws < len && strchr(" \t\n\r", pc[nws])) nws++;
        if (len && nws == len) tm->bias[id] = -3.0f;   // whitespace-only pieces: no rambling between tokens
        else if (len && pc[0] == '"') tm->bias[id] = 6.0f;
        else if (len && strchr("}])", pc[0])) tm->bias[id] = 4.0f;
        else if (len && (pc[0] == '@' || pc[0] == '.')) tm->bias[id] = 3.0f;   // emails finish
        else if (len && pc[0] >= '0' && pc[0] <= '9') tm->bias[id] = 1.0f;
    }
    const char *pr = "Answer in JSON:\n";
    CHECK(tok_encode(tm->t, pr, strlen(pr), true, false, &tm->prompt, &tm->n_prompt) == SLLM_OK);
    return tm->cv && tm->s;
}

static void tmodel_close(tmodel *tm) {
    if (tm->n_fwd) fprintf(stderr, "%s: %lld forwards, %.2f ms each\n", tm->name, (long long)tm->n_fwd, tm->fwd_ms / (double)tm->n_fwd);
    constrain_vocab_free(tm->cv);
    model_session_free(tm->s);
    model_free(tm->m);
    tok_free(tm->t);
    gguf_close(tm->gf);
    free(tm->bias); free(tm->logits); free(tm->prompt);
}

static void fwd(tmodel *tm, const int32_t *ids, int n) {
    double t0 = gen_now_ms();
    int rc = model_forward(tm->s, ids, n, tm->logits, false);
    tm->fwd_ms += gen_now_ms() - t0;
    tm->n_fwd++;
    if (rc != SLLM_OK) fprintf(stderr, "forward: %s\n", sllm_last_error());
    for (int i = 0; i < tm->m->hp.n_vocab; i++) tm->logits[i] += tm->bias[i];
}

// Generates under c; returns the text (malloc'd), *finished = ended on EOG / grammar done.
static char *generate(tmodel *tm, constrain *c, const sample_params *sp, int max_tokens, bool *finished, int *err) {
    sampler *smp = sampler_new(sp, tm->m->hp.n_vocab);
    constrain_set_sampling(c, sp);
    model_session_reset(tm->s);
    fwd(tm, tm->prompt, tm->n_prompt);
    size_t cap = 256, n = 0;
    char *out = malloc(cap);
    *finished = false; *err = 0;
    for (int i = 0; i < max_tokens; i++) {
        int32_t id = constrain_sample(c, smp, tm->logits);
        if (id < 0) { *err = 1; fprintf(stderr, "  sample: %s\n", sllm_last_error()); break; }
        if (constrain_accept(c, id) != SLLM_OK) { *err = 2; fprintf(stderr, "  accept: %s\n", sllm_last_error()); break; }
        sampler_accept(smp, id);
        if (tok_is_eog(tm->t, id)) { *finished = true; break; }
        size_t len;
        const char *pc = tok_piece(tm->t, id, &len);
        if (n + len + 1 > cap) out = realloc(out, cap = (n + len + 1) * 2);
        memcpy(out + n, pc, len);
        n += len;
        if (constrain_done(c)) { *finished = true; break; }
        fwd(tm, &id, 1);
    }
    out[n] = 0;
    sampler_free(smp);
    return out;
}

static int list_dir(const char *dir, const char *ext, char names[][128], int max) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name), el = strlen(ext);
        if (l > el && !strcmp(e->d_name + l - el, ext)) snprintf(names[n++], 128, "%.127s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

static void sp_test(sample_params *sp, uint64_t seed) {
    sample_params_default(sp);
    sp->temp = 1.0f; sp->top_k = 40; sp->top_p = 1.0f; sp->min_p = 0.0f; sp->seed = seed;
}

static int N_SEEDS = 4;    // 30 with SLLM_FULL=1 (make check-full); SLLM_CONSTRAIN_SEEDS overrides
#define MAX_TOKENS 300

static void test_schemas(tmodel *models[2]) {
    char names[64][128];
    int n = list_dir("tests/schemas", ".json", names, 64);
    CHECK(n >= 10, "tests/schemas: %d files", n);
    int64_t steps = 0, fast = 0, walks = 0, masks = 0; double mask_ms = 0;
    for (int f = 0; f < n; f++) {
        char path[300];
        snprintf(path, sizeof path, "tests/schemas/%.127s", names[f]);
        json_error_t je;
        json_t *schema = json_load_file(path, 0, &je);
        CHECK(schema != NULL, "%s: %s", path, je.text);
        if (!schema) continue;
        tmodel *tm = models[f % 2] ? models[f % 2] : models[(f + 1) % 2];   // alternate tokenizers
        int bad = 0, unfinished = 0, ntok = 0;
        for (int seed = 1; seed <= N_SEEDS; seed++) {
            constrain *c = NULL;
            if (constrain_new_schema(tm->cv, schema, &c) != SLLM_OK) { CHECK(0, "%s: %s", path, sllm_last_error()); break; }
            sample_params sp;
            sp_test(&sp, (uint64_t)seed);
            if (seed % 10 == 5) sp.top_k = 0;             // no top-k: whole-vocabulary masks
            if (seed % 10 == 7) sp.top_k = 5;
            bool fin; int err;
            char *out = generate(tm, c, &sp, MAX_TOKENS, &fin, &err);
            const constrain_stats *cs = constrain_get_stats(c);
            steps += cs->steps, fast += cs->fast_ok, walks += cs->walks, masks += cs->masks, mask_ms += cs->mask_ms;
            ntok += (int)cs->steps;
            if (!fin || err) {
                if (!unfinished++) fprintf(stderr, "  %s seed %d: unfinished (err %d) after %lld tokens: %.200s\n", names[f], seed, err, (long long)cs->steps, out);
            } else {
                json_error_t e;
                json_t *v = json_loads(out, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
                char why[256] = "";
                if (!v || !schema_validate(schema, schema, v, why, sizeof why)) {
                    if (!bad++) fprintf(stderr, "  %s seed %d: %s: %s\n", names[f], seed, v ? why : e.text, out);
                }
                json_decref(v);
            }
            free(out);
            constrain_free(c);
        }
        CHECK(bad == 0 && unfinished == 0, "%s (%s): %d invalid, %d unfinished of %d", names[f], tm->name, bad, unfinished, N_SEEDS);
        fprintf(stderr, "schema %-18s %-6s %d outputs valid, %.1f tokens avg\n", names[f], tm->name, N_SEEDS - bad - unfinished, ntok / (double)N_SEEDS);
        json_decref(schema);
    }
    fprintf(stderr, "schemas: %lld steps: %lld sampled token accepted, %lld top-k walks, %lld whole masks, %.1f ms masking\n",
            (long long)steps, (long long)fast, (long long)walks, (long long)masks, mask_ms);
    CHECK(walks > 0 && masks > 0 && fast > 0, "every path of constrain_sample was exercised");
}

static void test_grammars(tmodel *models[2]) {
    char names[32][128];
    int n = list_dir("tests/grammars", ".gbnf", names, 32);
    CHECK(n >= 4, "tests/grammars: %d files", n);
    for (int f = 0; f < n; f++) {
        char path[300];
        snprintf(path, sizeof path, "tests/grammars/%.127s", names[f]);
        char *src = test_read_file(path, NULL);
        CHECK(src != NULL, "%s", path);
        if (!src) continue;
        grammar *ref = NULL;
        CHECK(grammar_parse(src, strlen(src), path, NULL, &ref) == SLLM_OK, "%s", sllm_last_error());
        tmodel *tm = models[f % 2] ? models[f % 2] : models[(f + 1) % 2];
        int bad = 0, unfinished = 0;
        for (int seed = 1; seed <= N_SEEDS && ref; seed++) {
            constrain *c = NULL;
            if (constrain_new_gbnf(tm->cv, src, strlen(src), path, NULL, &c) != SLLM_OK) { CHECK(0, "%s", sllm_last_error()); break; }
            sample_params sp;
            sp_test(&sp, (uint64_t)seed + 100);
            bool fin; int err;
            char *out = generate(tm, c, &sp, MAX_TOKENS, &fin, &err);
            if (!fin || err) {
                if (!unfinished++) fprintf(stderr, "  %s seed %d: unfinished: %.200s\n", names[f], seed, out);
            } else {
                // re-check with a fresh matcher, fed byte by byte (the constraint fed whole tokens)
                grammar_state *st = grammar_state_new(ref);
                int ok = 1;
                for (size_t i = 0; out[i] && ok == 1; i++) ok = grammar_accept(st, out + i, 1);
                bool good = ok == 1 && grammar_can_end(st);
                if (good && !strcmp(names[f], "json.gbnf")) {
                    json_error_t e;
                    json_t *v = json_loads(out, JSON_DECODE_ANY, &e);
                    good = v != NULL;
                    json_decref(v);
                }
                if (!good && !bad++) fprintf(stderr, "  %s seed %d: rejected: %s\n", names[f], seed, out);
                grammar_state_free(st);
            }
            free(out);
            constrain_free(c);
        }
        CHECK(bad == 0 && unfinished == 0, "%s: %d invalid, %d unfinished", names[f], bad, unfinished);
        fprintf(stderr, "grammar %-16s %-6s %d outputs accepted\n", names[f], tm->name, N_SEEDS - bad - unfinished);
        grammar_free(ref);
        free(src);
    }
}

// The top-k shortcut must not change what is sampled: same seed, same output as whole-vocabulary masks.
static void test_exact(tmodel *tm) {
    json_error_t je;
    json_t *schema = json_load_file("tests/schemas/person.json", 0, &je);
    CHECK(schema != NULL);
    if (!schema) return;
    int same = 0, total = 0;
    int64_t walks = 0;
    for (int seed = 1; seed <= 4; seed++) {
        char *outs[2];
        for (int mode = 0; mode < 2; mode++) {
            constrain *c = NULL;
            CHECK(constrain_new_schema(tm->cv, schema, &c) == SLLM_OK);
            constrain_set_mode(c, mode ? CONSTRAIN_NO_WALK : CONSTRAIN_FAST);
            sample_params sp;
            sp_test(&sp, (uint64_t)seed * 7);
            if (seed > 3) sp.temp = 0;
            bool fin; int err;
            outs[mode] = generate(tm, c, &sp, MAX_TOKENS, &fin, &err);
            if (mode == 0) walks += constrain_get_stats(c)->walks;
            else CHECK(constrain_get_stats(c)->walks == 0);
            constrain_free(c);
        }
        same += !strcmp(outs[0], outs[1]);
        if (strcmp(outs[0], outs[1])) fprintf(stderr, "  seed %d differs:\n    %s\n    %s\n", seed, outs[0], outs[1]);
        total++;
        free(outs[0]); free(outs[1]);
    }
    CHECK(same == total && walks > 0, "%d of %d outputs identical with and without the top-k walk (%lld walks)", same, total, (long long)walks);
    // masking every step (a filter over all candidates) also gives valid output
    constrain *c = NULL;
    CHECK(constrain_new_schema(tm->cv, schema, &c) == SLLM_OK);
    constrain_set_mode(c, CONSTRAIN_ALWAYS_MASK);
    sample_params sp;
    sp_test(&sp, 3);
    bool fin; int err;
    char *out = generate(tm, c, &sp, MAX_TOKENS, &fin, &err);
    json_t *v = json_loads(out, 0, NULL);
    char why[256] = "";
    CHECK(fin && v && schema_validate(schema, schema, v, why, sizeof why), "always-mask output %s: %s", out, why);
    CHECK(constrain_get_stats(c)->masks == constrain_get_stats(c)->steps);
    json_decref(v);
    free(out);
    constrain_free(c);
    json_decref(schema);
}

static void test_tools(tmodel *tm) {
    json_error_t je;
    json_t *cas = json_load_file("tests/chat_cases/tools_call.json", 0, &je);
    CHECK(cas != NULL, "%s", je.text);
    if (!cas) return;
    json_t *tools = json_object_get(cas, "tools");
    const struct { cp_format f; bool parallel; const char *only; } forms[] = {
        {CP_FORMAT_HERMES, true, NULL}, {CP_FORMAT_HERMES, false, "get_time"}, {CP_FORMAT_LLAMA3, false, NULL},
        {CP_FORMAT_GENERIC, true, NULL}, {CP_FORMAT_GENERIC, false, NULL}};
    for (size_t k = 0; k < sizeof forms / sizeof *forms; k++) {
        int good = 0, n = 4;
        for (int seed = 1; seed <= n; seed++) {
            constrain *c = NULL;
            if (constrain_new_tools(tm->cv, tools, forms[k].f, forms[k].only, forms[k].parallel, &c) != SLLM_OK) {
                CHECK(0, "tools form %zu: %s", k, sllm_last_error());
                break;
            }
            sample_params sp;
            sp_test(&sp, (uint64_t)seed);
            bool fin; int err;
            char *out = generate(tm, c, &sp, MAX_TOKENS, &fin, &err);
            cp_config cfg = {.format = forms[k].f, .id_seed = 42};
            cp_parser *p = cp_new(&cfg);
            cp_feed(p, out, strlen(out), NULL, NULL);
            json_t *msg = cp_finish(p, NULL, NULL);
            cp_free(p);
            json_t *calls = json_object_get(msg, "tool_calls");
            bool ok = fin && !err && json_array_size(calls) >= 1 && !json_object_get(msg, "parse_error");
            size_t i; json_t *call;
            json_array_foreach(calls, i, call) {
                const char *name = json_string_value(json_object_get(json_object_get(call, "function"), "name"));
                const char *args = json_string_value(json_object_get(json_object_get(call, "function"), "arguments"));
                const json_t *params = NULL;
                size_t j; json_t *tl;
                json_array_foreach(tools, j, tl)
                    if (name && !strcmp(name, json_string_value(json_object_get(json_object_get(tl, "function"), "name"))))
                        params = json_object_get(json_object_get(tl, "function"), "parameters");
                json_t *a = args ? json_loads(args, 0, NULL) : NULL;
                char why[256] = "";
                if (!params || !a || !schema_validate(params, params, a, why, sizeof why)) ok = false;
                if (forms[k].only && (!name || strcmp(name, forms[k].only))) ok = false;
                const char *cid = json_string_value(json_object_get(call, "id"));
                if (!cid || strncmp(cid, "call_", 5)) ok = false;
                json_decref(a);
            }
            if (!forms[k].parallel && json_array_size(calls) != 1) ok = false;
            if (!ok) {
                char *ms = json_dumps(msg, JSON_COMPACT);
                fprintf(stderr, "  tools form %zu seed %d: %s -> %s\n", k, seed, out, ms);
                free(ms);
            }
            good += ok;
            json_decref(msg);
            free(out);
            constrain_free(c);
        }
        CHECK(good == n, "tool form %zu: %d of %d calls valid", k, good, n);
    }
    // grammar text shapes
    char *g = NULL;
    CHECK(constrain_tools_gbnf(tools, CP_FORMAT_HERMES, NULL, false, &g) == SLLM_OK && strstr(g, "\"<tool_call>\\n\" root"));
    free(g);
    // errors
    CHECK(constrain_tools_gbnf(tools, CP_FORMAT_HERMES, "nope", false, &g) == SLLM_ERR_ARG && strstr(sllm_last_error(), "nope"));
    CHECK(constrain_tools_gbnf(tools, CP_FORMAT_NONE, NULL, false, &g) == SLLM_ERR_ARG);
    json_t *bad = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                             "\"properties\":{\"a\":{\"$ref\":\"#/properties/b\"},\"b\":{\"type\":\"integer\"}}}}}]", 0, NULL);
    CHECK(constrain_tools_gbnf(bad, CP_FORMAT_HERMES, NULL, false, &g) == SLLM_ERR_UNSUPPORTED && strstr(sllm_last_error(), "#/properties/b"),
          "%s", sllm_last_error());
    json_decref(bad);
    bad = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                     "\"properties\":{\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]+$\"}}}}}]", 0, NULL);
    int rc = constrain_tools_gbnf(bad, CP_FORMAT_HERMES, NULL, false, &g);
    // (json_schema.c returns -1 rather than SLLM_ERR_UNSUPPORTED for a nested keyword: reported)
    CHECK(rc < 0 && strstr(sllm_last_error(), "tools[0] 'f': parameters: json schema: #/properties/zip/pattern"),
          "%d %s", rc, sllm_last_error());
    json_decref(bad);
    bad = json_loads("[{\"type\":\"function\",\"function\":{\"description\":\"no name\"}}]", 0, NULL);
    CHECK(constrain_tools_gbnf(bad, CP_FORMAT_GENERIC, NULL, false, &g) == SLLM_ERR_ARG && strstr(sllm_last_error(), "tools[0]"));
    json_decref(bad);
    json_decref(cas);
}

typedef struct { int32_t ids[64]; int n; } collect;
static bool on_tok(void *ctx, int32_t id, const char *text, size_t len, const sampler *smp) {
    (void)text, (void)len, (void)smp;
    collect *c = ctx;
    if (id >= 0 && c->n < 64) c->ids[c->n++] = id;
    return true;
}

static void test_loop_and_errors(tmodel *tm) {
    // constrain_generate without a constraint is gen_generate
    collect a = {0}, b = {0};
    gen_opts go = {.n_predict = 20, .ignore_eog = true};
    gen_stats st;
    sample_params sp;
    sp_test(&sp, 5);
    sampler *s1 = sampler_new(&sp, tm->m->hp.n_vocab), *s2 = sampler_new(&sp, tm->m->hp.n_vocab);
    model_session_reset(tm->s);
    CHECK(gen_generate(tm->s, tm->t, s1, tm->prompt, tm->n_prompt, &go, on_tok, &a, &st) == SLLM_OK);
    model_session_reset(tm->s);
    CHECK(constrain_generate(tm->s, tm->t, s2, NULL, tm->prompt, tm->n_prompt, &go, on_tok, &b, &st) == SLLM_OK);
    CHECK(a.n == 20 && b.n == 20 && !memcmp(a.ids, b.ids, sizeof a.ids), "unconstrained loops agree");
    // constrain_generate with a constraint: the output follows it and stops when the grammar is done
    const char *g = "root ::= \"yes\" | \"no\"\n";
    constrain *c = NULL;
    CHECK(constrain_new_gbnf(tm->cv, g, strlen(g), "yn", NULL, &c) == SLLM_OK);
    constrain_set_sampling(c, &sp);
    collect d = {0};
    go.ignore_eog = false; go.n_predict = 50;
    model_session_reset(tm->s);
    CHECK(constrain_generate(tm->s, tm->t, s1, c, tm->prompt, tm->n_prompt, &go, on_tok, &d, &st) == SLLM_OK, "%s", sllm_last_error());
    char *txt = NULL;
    tok_decode(tm->t, d.ids, d.n, true, &txt, NULL);
    CHECK(txt && (!strcmp(txt, "yes") || !strcmp(txt, "no")) && st.stopped_eog, "yes/no grammar gave '%s'", txt ? txt : "");
    free(txt);
    // accepting a token the grammar forbids is an error, the state is unchanged
    int32_t x = tok_find(tm->t, "x");
    CHECK(x >= 0 && constrain_accept(c, x) == SLLM_ERR_ARG);
    constrain_free(c);
    // a filter is refused; bad grammar / schema errors come back with their location
    go.filter = (sample_filter_fn)1;
    CHECK(constrain_generate(tm->s, tm->t, s1, NULL, tm->prompt, tm->n_prompt, &go, on_tok, &d, &st) == SLLM_ERR_ARG);
    CHECK(constrain_new_gbnf(tm->cv, "root ::= \"a", 11, "g.gbnf", NULL, &c) == SLLM_ERR_FORMAT && !c && strstr(sllm_last_error(), "g.gbnf:1:"));
    json_t *sch = json_loads("{\"type\":\"string\",\"pattern\":\"a+\"}", 0, NULL);
    CHECK(constrain_new_schema(tm->cv, sch, &c) == SLLM_ERR_UNSUPPORTED && !c && strstr(sllm_last_error(), "#/pattern"), "%s", sllm_last_error());
    json_decref(sch);
    sampler_free(s1); sampler_free(s2);
}

int main(void) {
    tmodel q, l;
    tmodel *models[2] = {NULL, NULL};
    double t0 = gen_now_ms();
    if (getenv("SLLM_ASAN")) N_SEEDS = 2;     // make asan: same paths, fewer repetitions
    if (getenv("SLLM_FULL")) N_SEEDS = 30;
    if (getenv("SLLM_CONSTRAIN_SEEDS")) N_SEEDS = atoi(getenv("SLLM_CONSTRAIN_SEEDS"));
    if (tmodel_open(&q, "qwen2", "vocab/ggml-vocab-qwen2.gguf", "tiny-qwen3")) models[0] = &q;
    if (tmodel_open(&l, "llama3", "vocab/ggml-vocab-llama-bpe.gguf", "tiny-llama")) models[1] = &l;
    if (models[0] || models[1]) {
        test_schemas(models);
        test_grammars(models);
        test_exact(models[0] ? models[0] : models[1]);
        test_tools(models[1] ? models[1] : models[0]);
        test_loop_and_errors(models[0] ? models[0] : models[1]);
    }
    if (models[0]) tmodel_close(&q);
    if (models[1]) tmodel_close(&l);
    fprintf(stderr, "total %.1f s\n", (gen_now_ms() - t0) / 1e3);
    return test_report();
}
