// The public API alone (include/sllm.h) is enough to load a model, tokenize, evaluate and generate;
// on stories260K it reproduces the reference greedy text, and errors come back as values.
#include "test.h"
#include "sllm.h"

typedef struct { char buf[8192]; size_t n; } sink;
static int collect(void *user, const char *text, size_t len) {
    sink *s = user;
    if (s->n + len < sizeof s->buf) { memcpy(s->buf + s->n, text, len); s->n += len; }
    return 0;
}

int main(void) {
    sllm_model *m = NULL;
    CHECK(sllm_model_load("/nonexistent/model.gguf", &m) != SLLM_OK && m == NULL);
    CHECK(strstr(sllm_last_error(), "/nonexistent/model.gguf") != NULL, "error names the file: %s", sllm_last_error());
    char path[512], ref[512];
    if (!test_fixture("models/stories260K.gguf", path, sizeof path) ||
        !test_fixture("models/stories260K.greedy200.txt", ref, sizeof ref)) {
        SKIP("../shared/fixtures/models/stories260K.gguf absent: public API generation test");
        return test_report();
    }
    CHECK(sllm_model_load(path, &m) == SLLM_OK);
    CHECK(strcmp(sllm_model_arch(m), "llama") == 0);
    CHECK(sllm_model_n_vocab(m) == 512);
    sllm_tokenizer *t = NULL;
    CHECK(sllm_tokenizer_load(m, &t) == SLLM_OK);
    int32_t *ids = NULL; int n = 0;
    CHECK(sllm_tokenizer_encode(t, "Once upon a time", 16, 1, 1, &ids, &n) == SLLM_OK && n == 5 && ids[0] == 1);
    char *text = NULL; size_t len = 0;
    CHECK(sllm_tokenizer_decode(t, ids + 1, n - 1, &text, &len) == SLLM_OK && strcmp(text, "Once upon a time") == 0,
          "decode: '%s'", text ? text : "");
    free(text);
    sllm_session *s = NULL;
    CHECK(sllm_session_new(m, 256, 2, &s) == SLLM_OK);
    float logits[512];
    CHECK(sllm_session_eval(s, ids, n, logits) == SLLM_OK && sllm_session_n_past(s) == 5);
    int best = 0;
    for (int i = 1; i < 512; i++) if (logits[i] > logits[best]) best = i;
    CHECK(best == 432, "argmax after 'Once upon a time' is ',' (432), got %d", best);
    free(ids);
    // Greedy from BOS reproduces the fixture's text.
    sllm_session_reset(s);
    sllm_sample_params p;
    sllm_sample_params_default(&p);
    p.temp = 0;
    sink out = {{0}, 0};
    int n_gen = 0;
    CHECK(sllm_generate(s, t, "", &p, 200, collect, &out, &n_gen) == SLLM_OK && n_gen == 200);
    FILE *f = fopen(ref, "rb");
    static char want[16384];
    size_t wn = f ? fread(want, 1, sizeof want - 1, f) : 0;
    if (f) fclose(f);
    want[wn] = 0;
    if (wn && want[wn - 1] == '\n') want[--wn] = 0;   // the file ends its text with one newline
    const char *body = strchr(want, '\n');
    CHECK(body && strlen(body + 1) == out.n && memcmp(body + 1, out.buf, out.n) == 0, "greedy text differs");
    sllm_session_free(s);
    // the same with an f32 KV cache (the default is f16)
    CHECK(sllm_model_set_kv_f16(m, 0) == SLLM_OK);
    s = NULL;
    CHECK(sllm_session_new(m, 256, 2, &s) == SLLM_OK);
    out.n = 0;
    CHECK(s && sllm_generate(s, t, "", &p, 200, collect, &out, &n_gen) == SLLM_OK && n_gen == 200);
    CHECK(body && strlen(body + 1) == out.n && memcmp(body + 1, out.buf, out.n) == 0, "greedy text differs (f32 KV)");
    sllm_session_free(s);
    // KV types by name: stories260K's head dimension (8) cannot take q8_0 blocks (refused, the type kept);
    // an unknown name is refused
    CHECK(sllm_model_set_kv_type(m, "q8_0") == SLLM_ERR_ARG && strstr(sllm_last_error(), "multiple of 32"),
          "q8_0 KV with head_dim 8: %s", sllm_last_error());
    CHECK(sllm_model_set_kv_type(m, "q9") == SLLM_ERR_ARG && strstr(sllm_last_error(), "'q9'"), "%s", sllm_last_error());
    CHECK(sllm_model_set_kv_type(m, "F16") == SLLM_OK && sllm_model_set_kv_type(m, "f32") == SLLM_OK);
    sllm_tokenizer_free(t);
    sllm_model_free(m);
    return test_report();
}
