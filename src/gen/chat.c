// Chat turns over the model's own template (see chat.h).
#include "gen/chat.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/error.h"
#include "base/fileio.h"
#include "text/chat_template.h"

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// tokenizer_config.json "chat_template": a string, or a list of {"name", "template"}.
static int hf_config_template(const char *dir, bool tools, char **out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (!is_file(path)) return SLLM_OK;
    json_error_t e;
    json_t *cfg = json_load_file(path, 0, &e);
    if (!cfg) return err_set(SLLM_ERR_FORMAT, "%s:%d:%d: %s", path, e.line, e.column, e.text);
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *src = NULL;
    if (json_is_string(ct)) src = json_string_value(ct);
    else if (json_is_array(ct)) {
        size_t i; json_t *x;
        const char *def = NULL, *tu = NULL, *first = NULL;
        json_array_foreach(ct, i, x) {
            const char *n = json_string_value(json_object_get(x, "name"));
            const char *t = json_string_value(json_object_get(x, "template"));
            if (!t) continue;
            if (!first) first = t;
            if (n && !strcmp(n, "default")) def = t;
            if (n && !strcmp(n, "tool_use")) tu = t;
        }
        src = tools && tu ? tu : def ? def : first;
    } else if (ct && !json_is_null(ct)) {
        json_decref(cfg);
        return err_set(SLLM_ERR_FORMAT, "%s: field 'chat_template': expected a string or a list", path);
    }
    if (src && !(*out = strdup(src))) { json_decref(cfg); return err_set(SLLM_ERR_NOMEM, "out of memory"); }
    json_decref(cfg);
    return SLLM_OK;
}

int chat_template_load(const sllm_model *m, bool tools, char **out) {
    *out = NULL;
    if (m->gguf) {
        if (tools) *out = gguf_get_str(m->gguf, "tokenizer.chat_template.tool_use");
        if (!*out) *out = gguf_get_str(m->gguf, "tokenizer.chat_template");
        return SLLM_OK;
    }
    if (m->source == MODEL_SRC_HF && m->path) {
        char path[4096];
        snprintf(path, sizeof path, "%s/chat_template.jinja", m->path);
        if (!tools && is_file(path)) {
            size_t n;
            return fileio_read_all(path, out, &n);
        }
        int rc = hf_config_template(m->path, tools, out);
        if (rc == SLLM_OK && !*out && is_file(path)) {
            size_t n;
            return fileio_read_all(path, out, &n);
        }
        return rc;
    }
    return SLLM_OK;
}

// HF tokenizer_config.json "bos_token"/"eos_token" (string or {"content"}), which may differ from the
// tokenizer's own ids (instruct models end turns with <|im_end|>); NULL when absent.
static char *hf_special(const char *dir, const char *key) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    if (!cfg) return NULL;
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    char *r = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    json_decref(cfg);
    return r;
}

int chat_model_init(chat_model *cm, sllm_model *m, const tok *t, const char *template_override) {
    memset(cm, 0, sizeof *cm);
    cm->m = m; cm->t = t;
    int rc;
    if (template_override) {
        if (!(cm->template_src = strdup(template_override))) return err_set(SLLM_ERR_NOMEM, "out of memory");
    } else {
        if ((rc = chat_template_load(m, false, &cm->template_src)) != SLLM_OK) goto fail;
        char *tt = NULL;
        if ((rc = chat_template_load(m, true, &tt)) != SLLM_OK) goto fail;
        if (tt && cm->template_src && strcmp(tt, cm->template_src)) cm->template_tools = tt;
        else free(tt);
    }
    if (m->source == MODEL_SRC_HF && m->path) {
        cm->bos = hf_special(m->path, "bos_token");
        cm->eos = hf_special(m->path, "eos_token");
    }
    if (!cm->bos && tok_bos(t) >= 0) cm->bos = strdup(tok_text(t, tok_bos(t)));
    if (!cm->eos && tok_eos(t) >= 0) cm->eos = strdup(tok_text(t, tok_eos(t)));
    const char *src = cm->template_tools ? cm->template_tools : cm->template_src ? cm->template_src : "";
    cm->tool_format = strstr(src, "<tool_call>") ? CP_FORMAT_HERMES
                    : (strstr(src, "<|python_tag|>") || strstr(src, "ipython")) ? CP_FORMAT_LLAMA3 : CP_FORMAT_AUTO;
    const char *s0 = cm->template_src ? cm->template_src : "";
    cm->thinks = strstr(s0, "<think>") || strstr(s0, "enable_thinking");
    return SLLM_OK;
fail:
    chat_model_free(cm);
    return rc;
}

void chat_model_free(chat_model *cm) {
    free(cm->template_src); free(cm->template_tools); free(cm->bos); free(cm->eos);
    constrain_vocab_free(cm->cv);
    memset(cm, 0, sizeof *cm);
}

void chat_opts_default(chat_opts *o) {
    memset(o, 0, sizeof *o);
    o->think = -1;
    o->n_predict = 512;
    sample_params_default(&o->sp);
}

static bool constrained(const chat_opts *o) {
    return o->schema || o->grammar || (o->tool_choice == CHAT_TOOLS_REQUIRED && o->tools);
}

int chat_render_prompt(const chat_model *cm, const json_t *messages, const chat_opts *o, bool add_generation_prompt,
                       char **out) {
    *out = NULL;
    const json_t *tools = o->tool_choice == CHAT_TOOLS_NONE ? NULL : o->tools;
    if (tools && !json_is_array(tools)) return err_set(SLLM_ERR_ARG, "chat: tools must be a JSON array");
    if (o->kwargs && !json_is_object(o->kwargs)) return err_set(SLLM_ERR_ARG, "chat: template kwargs must be a JSON object");
    json_t *kw = o->kwargs ? json_deep_copy(o->kwargs) : json_object();
    if (!kw) return err_set(SLLM_ERR_NOMEM, "out of memory");
    int think = o->think;
    if (think < 0 && constrained(o) && !json_object_get(kw, "enable_thinking")) think = 0;
    if (think >= 0) json_object_set_new(kw, "enable_thinking", json_boolean(think));
    const char *src = tools && json_array_size(tools) && cm->template_tools ? cm->template_tools : cm->template_src;
    int rc = chat_render(src, messages, tools, add_generation_prompt, kw, cm->bos, cm->eos, out);
    json_decref(kw);
    return rc;
}

int chat_session_new(const chat_model *cm, int n_ctx, tpool *pool, chat_session **out) {
    *out = NULL;
    chat_session *cs = calloc(1, sizeof *cs);
    if (!cs) return err_set(SLLM_ERR_NOMEM, "out of memory");
    int rc = model_session_new(cm->m, n_ctx, 0, pool, &cs->s);
    if (rc != SLLM_OK) { free(cs); return rc; }
    *out = cs;
    return SLLM_OK;
}

void chat_session_free(chat_session *cs) {
    if (!cs) return;
    model_session_free(cs->s);
    free(cs->ids);
    free(cs);
}

typedef struct {
    cp_parser *p;
    cp_delta_cb cb; void *user;
    int32_t *gen; int n_gen, cap;
    double parse_us;
    int rc;
} turn_ctx;

static bool on_token(void *vctx, int32_t id, const char *text, size_t len, const sampler *smp) {
    (void)smp;
    turn_ctx *c = vctx;
    if (id >= 0) {
        if (c->n_gen == c->cap) {
            int cap = c->cap ? 2 * c->cap : 256;
            int32_t *g = realloc(c->gen, (size_t)cap * sizeof *g);
            if (!g) { c->rc = err_set(SLLM_ERR_NOMEM, "out of memory"); return false; }
            c->gen = g; c->cap = cap;
        }
        c->gen[c->n_gen++] = id;
    }
    if (len) {
        double t0 = gen_now_ms();
        int rc = cp_feed(c->p, text, len, c->cb, c->user);
        c->parse_us += (gen_now_ms() - t0) * 1e3;
        if (rc != SLLM_OK) { c->rc = rc; return false; }
    }
    return true;
}

static bool ends_with_think(const char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) n--;
    return n >= 7 && !memcmp(s + n - 7, "<think>", 7);
}

static int session_record(chat_session *cs, const int32_t *a, int na, const int32_t *b, int nb) {
    int n = na + nb;
    if (n > cs->cap) {
        int32_t *v = realloc(cs->ids, (size_t)n * sizeof *v);
        if (!v) return err_set(SLLM_ERR_NOMEM, "out of memory");
        cs->ids = v; cs->cap = n;
    }
    if (na && a != cs->ids) memmove(cs->ids, a, (size_t)na * sizeof *a);
    if (nb) memcpy(cs->ids + na, b, (size_t)nb * sizeof *b);
    cs->n_ids = n;
    return SLLM_OK;
}

int chat_complete(chat_model *cm, chat_session *cs, const json_t *messages, const chat_opts *o, cp_delta_cb cb,
                  void *user, json_t **message, chat_stats *st) {
    chat_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    *message = NULL;
    char *prompt = NULL;
    int32_t *ids = NULL; int n_ids = 0;
    constrain *con = NULL;
    sampler *smp = NULL;
    turn_ctx tc = {0};
    int rc;
    double t0 = gen_now_ms();
    if ((rc = chat_render_prompt(cm, messages, o, true, &prompt)) != SLLM_OK) goto done;
    st->render_us = (gen_now_ms() - t0) * 1e3;
    bool add_bos = !(cm->bos && *cm->bos && !strncmp(prompt, cm->bos, strlen(cm->bos)));
    if ((rc = tok_encode(cm->t, prompt, strlen(prompt), add_bos, true, &ids, &n_ids)) != SLLM_OK) goto done;
    if (n_ids == 0) { rc = err_set(SLLM_ERR_ARG, "chat: the prompt encodes to no tokens"); goto done; }
    if (n_ids >= cs->s->n_ctx) {
        rc = err_set(SLLM_ERR_ARG, "chat: the prompt has %d tokens but the context holds %d", n_ids, cs->s->n_ctx);
        goto done;
    }
    // constraint
    const json_t *tools = o->tool_choice == CHAT_TOOLS_NONE ? NULL : o->tools;
    bool tools_on = tools && json_array_size(tools) > 0;
    if (constrained(o)) {
        if (!cm->cv && !(cm->cv = constrain_vocab_new(cm->t, cm->m->hp.n_vocab))) { rc = SLLM_ERR_NOMEM; goto done; }
        if (o->schema) rc = constrain_new_schema(cm->cv, o->schema, &con);
        else if (o->grammar) rc = constrain_new_gbnf(cm->cv, o->grammar, strlen(o->grammar), o->grammar_name, NULL, &con);
        else rc = constrain_new_tools(cm->cv, tools, cm->tool_format, o->tool_name, o->parallel_tool_calls, &con);
        if (rc != SLLM_OK) goto done;
        constrain_set_sampling(con, &o->sp);
    }
    // parser
    cp_config cfg = {.format = tools_on && !o->schema && !o->grammar ? cm->tool_format : CP_FORMAT_NONE,
                     .reasoning = cm->thinks, .starts_in_reasoning = ends_with_think(prompt), .id_seed = o->id_seed};
    if (cfg.starts_in_reasoning) cfg.reasoning = true;
    if (!(tc.p = cp_new(&cfg)) || !(smp = sampler_new(&o->sp, cm->m->hp.n_vocab))) {
        rc = err_set(SLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    tc.cb = cb; tc.user = user;
    // reuse the KV cache for the common prefix (at least one token is run to get logits)
    int common = 0;
    while (common < cs->n_ids && common < n_ids && cs->ids[common] == ids[common]) common++;
    if (common > cs->s->n_past) common = cs->s->n_past;
    if (common == n_ids) common--;
    if ((rc = model_session_truncate(cs->s, common)) != SLLM_OK) goto done;
    st->n_reused = common;
    gen_opts go = {.n_predict = o->n_predict};
    int room = cs->s->n_ctx - n_ids;
    if (go.n_predict < 0 || go.n_predict > room) go.n_predict = room;
    rc = constrain_generate(cs->s, cm->t, smp, con, ids + common, n_ids - common, &go, on_token, &tc, &st->gen);
    if (rc == SLLM_OK && tc.rc) rc = tc.rc;
    // the KV cache now holds the prompt and every generated token but the last
    int kept = cs->s->n_past - n_ids;
    if (kept < 0) kept = 0;
    if (kept > tc.n_gen) kept = tc.n_gen;
    int rrc = session_record(cs, ids, n_ids, tc.gen, kept);
    if (rc == SLLM_OK) rc = rrc;
    if (rc != SLLM_OK) { cs->n_ids = 0; model_session_reset(cs->s); goto done; }
    t0 = gen_now_ms();
    *message = cp_finish(tc.p, cb, user);
    tc.parse_us += (gen_now_ms() - t0) * 1e3;
    st->parse_us = tc.parse_us;
    if (!*message) rc = err_set(SLLM_ERR_NOMEM, "chat: out of memory parsing the reply");
    if (con) st->cons = *constrain_get_stats(con);
done:
    cp_free(tc.p);
    free(tc.gen);
    sampler_free(smp);
    constrain_free(con);
    free(ids);
    free(prompt);
    return rc;
}

int chat_json_load(const char *src, bool from_text, const char *what, json_t **out) {
    json_error_t e;
    *out = from_text ? json_loads(src, JSON_DECODE_ANY, &e) : json_load_file(src, JSON_DECODE_ANY, &e);
    if (*out) return SLLM_OK;
    if (!from_text && e.line < 1 && e.position == 0)   // jansson reports a missing file at line -1
        return err_set(SLLM_ERR_IO, "%s: %s", src, e.text);
    return err_set(SLLM_ERR_FORMAT, "%s:%d:%d: %s", from_text ? what : src, e.line, e.column, e.text);
}

void chat_request_free(chat_request *r) {
    json_decref(r->messages); json_decref(r->tools); json_decref(r->kwargs);
    memset(r, 0, sizeof *r);
    r->add_generation_prompt = -1;
}

int chat_request_load(const char *path, chat_request *r) {
    memset(r, 0, sizeof *r);
    r->add_generation_prompt = -1;
    json_t *j;
    int rc = chat_json_load(path, false, path, &j);
    if (rc != SLLM_OK) return rc;
    if (json_is_array(j)) { r->messages = j; goto check; }
    if (!json_is_object(j)) { json_decref(j); return err_set(SLLM_ERR_FORMAT, "%s: expected a JSON array of messages or an object with \"messages\"", path); }
    r->messages = json_incref(json_object_get(j, "messages"));
    r->tools = json_incref(json_object_get(j, "tools"));
    r->kwargs = json_incref(json_object_get(j, "kwargs"));
    json_t *g = json_object_get(j, "add_generation_prompt");
    if (json_is_boolean(g)) r->add_generation_prompt = json_is_true(g);
    json_decref(j);
    if (!json_is_array(r->messages)) { chat_request_free(r); return err_set(SLLM_ERR_FORMAT, "%s: field 'messages': expected an array", path); }
    if (r->tools && !json_is_array(r->tools) && !json_is_null(r->tools)) { chat_request_free(r); return err_set(SLLM_ERR_FORMAT, "%s: field 'tools': expected an array", path); }
    if (r->kwargs && !json_is_object(r->kwargs)) { chat_request_free(r); return err_set(SLLM_ERR_FORMAT, "%s: field 'kwargs': expected an object", path); }
check:;
    size_t i; json_t *m;
    json_array_foreach(r->messages, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
            chat_request_free(r);
            return err_set(SLLM_ERR_FORMAT, "%s: messages[%zu]: expected an object with a string \"role\"", path, i);
        }
    }
    return SLLM_OK;
}
