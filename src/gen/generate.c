#include "gen/generate.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <stdio.h>
#include "base/error.h"

double gen_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// generation_config.json of an HF directory, or NULL (absent, or not an HF model). A malformed file
// is an error naming it: silently ignoring it would change how generation stops.
static int load_generation_config(const sllm_model *m, json_t **out) {
    *out = NULL;
    if (m->source != MODEL_SRC_HF || !m->path) return SLLM_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", m->path);
    FILE *f = fopen(path, "rb");
    if (!f) return SLLM_OK;
    json_error_t je;
    json_t *j = json_loadf(f, 0, &je);
    fclose(f);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return err_set(SLLM_ERR_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, j ? "not a JSON object" : je.text);
    }
    *out = j;
    return SLLM_OK;
}

int gen_load_tokenizer(const sllm_model *m, tok **out) {
    if (m->gguf) return tok_load_gguf(m->gguf, out);
    if (!(m->source == MODEL_SRC_HF && m->path))
        return err_set(SLLM_ERR_ARG, "%s: model has no tokenizer", m->path ? m->path : "(memory)");
    int rc = tok_load_hf(m->path, out);
    json_t *gc = NULL;
    if (rc == SLLM_OK) rc = load_generation_config(m, &gc);
    // eos_token_id may be one id or a list (Llama 3 instruct: <|end_of_text|>, <|eom_id|>, <|eot_id|>).
    json_t *eos = gc ? json_object_get(gc, "eos_token_id") : NULL;
    if (json_is_integer(eos)) rc = tok_add_eog(*out, (int32_t)json_integer_value(eos));
    size_t i; json_t *v;
    if (json_is_array(eos)) json_array_foreach(eos, i, v) if (rc == SLLM_OK && json_is_integer(v)) rc = tok_add_eog(*out, (int32_t)json_integer_value(v));
    json_decref(gc);
    if (rc != SLLM_OK) { tok_free(*out); *out = NULL; }
    return rc;
}

int gen_model_sample_defaults(const sllm_model *m, sample_params *p) {
    json_t *gc = NULL;
    int rc = load_generation_config(m, &gc);
    if (rc != SLLM_OK || !gc) return rc;
    json_t *v;
    if (json_is_number(v = json_object_get(gc, "temperature"))) p->temp = (float)json_number_value(v);
    if (json_is_number(v = json_object_get(gc, "top_p"))) p->top_p = (float)json_number_value(v);
    if (json_is_integer(v = json_object_get(gc, "top_k"))) p->top_k = (int)json_integer_value(v);
    if (json_is_number(v = json_object_get(gc, "min_p"))) p->min_p = (float)json_number_value(v);
    if (json_is_number(v = json_object_get(gc, "repetition_penalty"))) p->repeat_penalty = (float)json_number_value(v);
    if (json_is_false(json_object_get(gc, "do_sample"))) p->temp = 0;   // transformers: greedy
    json_decref(gc);
    return SLLM_OK;
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
    // Prime the streaming decoder with the prompt's last few ordinary tokens and drop their text:
    // decoders strip the leading space of a text's first token (SentencePiece "▁upon" -> "upon"), which is
    // right only when the generated text starts the output, not when it continues a prompt. Several
    // tokens, so a character the prompt spelled in byte tokens is complete before generation starts.
    int p0 = n_prompt;
    while (p0 > 0 && n_prompt - p0 < 4 && !tok_is_special(t, prompt[p0 - 1])) p0--;
    for (int i = p0; i < n_prompt; i++) {
        const char *skip; size_t skip_len;
        if (tok_stream_feed(ts, prompt[i], &skip, &skip_len) != SLLM_OK) {
            tok_stream_free(ts); free(logits);
            return err_set(SLLM_ERR_ARG, "generate: prompt token %d is not in the vocabulary", prompt[i]);
        }
    }
    st->n_prompt = n_prompt;
    double t0 = gen_now_ms();
    int rc = model_forward(s, prompt, n_prompt, logits, false);
    st->prefill_ms = gen_now_ms() - t0;
    t0 = gen_now_ms();
    for (int i = 0; rc == SLLM_OK && (o->n_predict < 0 || i < o->n_predict); i++) {
        const gen_step_hook *h = o->hook;
        int32_t id = h ? h->sample(h->ctx, smp, logits) : sampler_sample(smp, logits, o->filter, o->filter_ctx);
        if (id < 0) {
            rc = h ? err_wrap(SLLM_ERR_ARG, "generate: step %d", i)
                   : err_set(SLLM_ERR_ARG, "generate: the constraint allows no token at step %d", i);
            break;
        }
        if (h && h->accept && (rc = h->accept(h->ctx, id)) != SLLM_OK) break;
        sampler_accept(smp, id);
        st->n_gen++;
        bool eog = tok_is_eog(t, id) && !o->ignore_eog;
        const char *text = ""; size_t len = 0;
        if (!eog && (rc = tok_stream_feed(ts, id, &text, &len)) != SLLM_OK) break;
        if (!fn(ctx, id, text, len, smp)) break;
        if (eog) { st->stopped_eog = true; break; }
        if (h && h->done && h->done(h->ctx)) { st->stopped_eog = true; break; }   // only an end token could follow
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
