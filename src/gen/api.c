// The public C API (include/sllm.h): thin wrappers that give the internal objects opaque handles.
#include <stdlib.h>
#include <string.h>
#include "sllm.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "gen/generate.h"

struct sllm_tokenizer { tok *t; };
struct sllm_session { model_session *s; tpool *pool; };

int sllm_model_load(const char *path, sllm_model **out) {
    int rc = model_load(path, out);
    if (rc == SLLM_OK && model_pack(*out, NULL) != SLLM_OK) err_clear();   // runs unpacked then
    if (rc == SLLM_OK) model_set_kv_type(*out, DT_F16);                      // as the sllm commands
    return rc;
}
void sllm_model_free(sllm_model *m) { model_free(m); }
int sllm_model_n_vocab(const sllm_model *m) { return m->hp.n_vocab; }
int sllm_model_n_ctx_train(const sllm_model *m) { return m->hp.n_ctx_train; }
const char *sllm_model_arch(const sllm_model *m) { return m->arch->name; }
int sllm_model_set_kv_f16(sllm_model *m, int f16) { return model_set_kv_type(m, f16 ? DT_F16 : DT_F32); }
int sllm_model_set_kv_type(sllm_model *m, const char *type) {
    int t = type ? dtype_from_name(type) : -1;
    if (t < 0) return err_set(SLLM_ERR_ARG, "KV cache type '%s' is unknown (f16, f32 or q8_0)", type ? type : "(null)");
    return model_set_kv_type(m, (dtype)t);
}

int sllm_tokenizer_load(const sllm_model *m, sllm_tokenizer **out) {
    *out = NULL;
    sllm_tokenizer *h = calloc(1, sizeof *h);
    if (!h) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    int rc = gen_load_tokenizer(m, &h->t);
    if (rc != SLLM_OK) { free(h); return rc; }
    *out = h;
    return SLLM_OK;
}

void sllm_tokenizer_free(sllm_tokenizer *t) {
    if (!t) return;
    tok_free(t->t);
    free(t);
}

int sllm_tokenizer_encode(const sllm_tokenizer *t, const char *text, size_t len, int add_special,
                          int parse_special, int32_t **ids, int *n_ids) {
    return tok_encode(t->t, text, len, add_special != 0, parse_special != 0, ids, n_ids);
}

int sllm_tokenizer_decode(const sllm_tokenizer *t, const int32_t *ids, int n_ids, char **text, size_t *len) {
    return tok_decode(t->t, ids, n_ids, false, text, len);
}

int sllm_tokenizer_is_eog(const sllm_tokenizer *t, int32_t id) { return tok_is_eog(t->t, id); }

int sllm_session_new(const sllm_model *m, int n_ctx, int n_threads, sllm_session **out) {
    *out = NULL;
    sllm_session *h = calloc(1, sizeof *h);
    if (!h || !(h->pool = tpool_new(n_threads))) { free(h); return err_set(SLLM_ERR_NOMEM, "session: out of memory"); }
    int rc = model_session_new(m, n_ctx, 0, h->pool, &h->s);
    if (rc != SLLM_OK) { tpool_free(h->pool); free(h); return rc; }
    *out = h;
    return SLLM_OK;
}

void sllm_session_free(sllm_session *s) {
    if (!s) return;
    model_session_free(s->s);
    tpool_free(s->pool);
    free(s);
}

void sllm_session_reset(sllm_session *s) { model_session_reset(s->s); }
int sllm_session_n_past(const sllm_session *s) { return s->s->n_past; }

int sllm_session_eval(sllm_session *s, const int32_t *ids, int n, float *logits) {
    return model_forward(s->s, ids, n, logits, false);
}

void sllm_sample_params_default(sllm_sample_params *p) {
    sample_params sp;
    sample_params_default(&sp);
    *p = (sllm_sample_params){.temp = sp.temp, .top_p = sp.top_p, .min_p = sp.min_p,
                              .repeat_penalty = sp.repeat_penalty, .frequency_penalty = sp.freq_penalty,
                              .presence_penalty = sp.presence_penalty, .top_k = sp.top_k,
                              .repeat_last_n = sp.repeat_last_n, .seed = sp.seed};
}

typedef struct { sllm_text_fn fn; void *user; } api_gen_ctx;

static bool api_on_token(void *vctx, int32_t id, const char *text, size_t len, const sampler *smp) {
    (void)id; (void)smp;
    api_gen_ctx *c = vctx;
    return len == 0 || c->fn(c->user, text, len) == 0;
}

int sllm_generate(sllm_session *s, const sllm_tokenizer *t, const char *prompt, const sllm_sample_params *p,
                  int n_predict, sllm_text_fn on_text, void *user, int *n_generated) {
    sample_params sp = {.temp = p->temp, .top_k = p->top_k, .top_p = p->top_p, .min_p = p->min_p,
                        .repeat_penalty = p->repeat_penalty, .repeat_last_n = p->repeat_last_n,
                        .freq_penalty = p->frequency_penalty, .presence_penalty = p->presence_penalty,
                        .seed = p->seed};
    int32_t *ids = NULL; int n = 0;
    int rc = tok_encode(t->t, prompt, strlen(prompt), s->s->n_past == 0, true, &ids, &n);
    if (rc != SLLM_OK) return rc;
    sampler *smp = sampler_new(&sp, s->s->m->hp.n_vocab);
    if (!smp) { free(ids); return err_set(SLLM_ERR_NOMEM, "generate: out of memory"); }
    gen_opts o = {.n_predict = n_predict};
    gen_stats st;
    api_gen_ctx c = {on_text, user};
    rc = gen_generate(s->s, t->t, smp, ids, n, &o, api_on_token, &c, &st);
    if (n_generated) *n_generated = st.n_gen;
    sampler_free(smp);
    free(ids);
    return rc;
}
