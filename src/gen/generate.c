#include "gen/generate.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/error.h"

double gen_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

int gen_load_tokenizer(const sllm_model *m, tok **out) {
    if (m->gguf) return tok_load_gguf(m->gguf, out);
    if (m->source == MODEL_SRC_HF && m->path) return tok_load_hf(m->path, out);
    return err_set(SLLM_ERR_ARG, "%s: model has no tokenizer", m->path ? m->path : "(memory)");
}

int gen_generate(model_session *s, const tok *t, sampler *smp, const int32_t *prompt, int n_prompt,
                 const gen_opts *o, gen_token_fn fn, void *ctx, gen_stats *st) {
    memset(st, 0, sizeof *st);
    const int V = s->m->hp.n_vocab;
    if (n_prompt <= 0) return err_set(SLLM_ERR_ARG, "generate: empty prompt (no tokens)");
    if (s->n_past + n_prompt > s->n_ctx)
        return err_set(SLLM_ERR_ARG, "generate: prompt of %d tokens does not fit the context of %d (%d already used)",
                       n_prompt, s->n_ctx, s->n_past);
    float *logits = malloc((size_t)V * sizeof *logits);
    tok_stream *ts = tok_stream_new(t, false);
    if (!logits || !ts) { free(logits); tok_stream_free(ts); return err_set(SLLM_ERR_NOMEM, "generate: out of memory"); }
    for (int i = 0; i < n_prompt; i++) sampler_accept(smp, prompt[i]);
    st->n_prompt = n_prompt;
    double t0 = gen_now_ms();
    int rc = model_forward(s, prompt, n_prompt, logits, false);
    st->prefill_ms = gen_now_ms() - t0;
    t0 = gen_now_ms();
    for (int i = 0; rc == SLLM_OK && (o->n_predict < 0 || i < o->n_predict); i++) {
        int32_t id = sampler_sample(smp, logits, o->filter, o->filter_ctx);
        if (id < 0) { rc = err_set(SLLM_ERR_ARG, "generate: the constraint allows no token at step %d", i); break; }
        sampler_accept(smp, id);
        st->n_gen++;
        bool eog = tok_is_eog(t, id) && !o->ignore_eog;
        const char *text = ""; size_t len = 0;
        if (!eog && (rc = tok_stream_feed(ts, id, &text, &len)) != SLLM_OK) break;
        if (!fn(ctx, id, text, len, smp)) break;
        if (eog) { st->stopped_eog = true; break; }
        if (o->n_predict >= 0 && i + 1 >= o->n_predict) break;   // no forward for a token nobody reads
        if (s->n_past >= s->n_ctx) break;                          // context full
        rc = model_forward(s, &id, 1, logits, false);
    }
    if (rc == SLLM_OK) {
        const char *text; size_t len;
        if (tok_stream_finish(ts, &text, &len) == SLLM_OK && len) fn(ctx, -1, text, len, smp);
    }
    st->decode_ms = gen_now_ms() - t0;
    tok_stream_free(ts);
    free(logits);
    return rc;
}
