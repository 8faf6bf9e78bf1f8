// Model loading: hyper-parameters from GGUF keys or config.json, weights bound by role through the
// architecture table's name map, every shape validated against the hyper-parameters with an error
// naming file, tensor and the numbers involved.
#include "model/model.h"
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/bigmem.h"
#include "base/error.h"
#include "tensor/quant.h"

void *model_own(sllm_model *m, void *p) {
    if (!p) return NULL;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) { free(p); return NULL; }
        m->owned = o; m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

void model_free(sllm_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    bigmem_free(m->packed_mem);
    free(m->owned);
    free(m->layers);
    free(m->path);
    free(m->name);
    if (m->gguf) gguf_close(m->gguf);
    if (m->st) st_close(m->st);
    free(m);
}

static sllm_model *model_alloc(const char *path) {
    sllm_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->path = strdup(path ? path : "(memory)");
    if (!m->path) { free(m); return NULL; }
    return m;
}

static bool role_is_norm(tensor_role r) {
    return r == TR_OUTPUT_NORM || r == TR_ATTN_NORM || r == TR_ATTN_Q_NORM || r == TR_ATTN_K_NORM ||
           r == TR_POST_ATTN_NORM || r == TR_FFN_NORM || r == TR_POST_FFN_NORM;
}

bool model_role_shape(const sllm_model *m, tensor_role r, int64_t *rows, int64_t *cols) {
    const model_hparams *h = &m->hp;
    int64_t C = h->n_embd, D = h->head_dim, qd = (int64_t)h->n_head * D, kd = (int64_t)h->n_head_kv * D;
    int64_t N = 1, K = 0;
    if (!arch_tensor_get(m->arch, r)) return false;
    switch (r) {
    case TR_TOKEN_EMBD: case TR_OUTPUT: N = h->n_vocab; K = C; break;
    case TR_POS_EMBD: N = h->n_ctx_train; K = C; break;
    case TR_ROPE_FREQS: K = h->n_rot / 2; break;
    case TR_ATTN_Q: N = qd; K = C; break;
    case TR_ATTN_K: case TR_ATTN_V: N = kd; K = C; break;
    case TR_ATTN_QKV: N = qd + 2 * kd; K = C; break;
    case TR_ATTN_Q_B: K = qd; break;
    case TR_ATTN_K_B: case TR_ATTN_V_B: K = kd; break;
    case TR_ATTN_QKV_B: K = qd + 2 * kd; break;
    case TR_ATTN_OUT: N = C; K = qd; break;
    case TR_ATTN_Q_NORM: case TR_ATTN_K_NORM: K = D; break;
    case TR_FFN_GATE: case TR_FFN_UP: N = h->n_ff; K = C; break;
    case TR_FFN_UP_B: K = h->n_ff; break;
    case TR_FFN_DOWN: N = C; K = h->n_ff; break;
    default: K = C; break;   // norms, norm biases, output / down biases
    }
    *rows = N; *cols = K;
    return true;
}

// "n_head_kv=4, head_dim=16": the hyper-parameters a role's shape comes from, for error messages.
static void role_hint(const sllm_model *m, tensor_role r, char *buf, size_t n) {
    const model_hparams *h = &m->hp;
    switch (r) {
    case TR_TOKEN_EMBD: case TR_OUTPUT:
        snprintf(buf, n, "n_vocab=%d, n_embd=%d", h->n_vocab, h->n_embd); break;
    case TR_POS_EMBD: snprintf(buf, n, "n_ctx_train=%d, n_embd=%d", h->n_ctx_train, h->n_embd); break;
    case TR_ROPE_FREQS: snprintf(buf, n, "n_rot=%d", h->n_rot); break;
    case TR_ATTN_Q: case TR_ATTN_Q_B: case TR_ATTN_OUT:
        snprintf(buf, n, "n_head=%d, head_dim=%d, n_embd=%d", h->n_head, h->head_dim, h->n_embd); break;
    case TR_ATTN_K: case TR_ATTN_V: case TR_ATTN_K_B: case TR_ATTN_V_B:
        snprintf(buf, n, "n_head_kv=%d, head_dim=%d", h->n_head_kv, h->head_dim); break;
    case TR_ATTN_QKV: case TR_ATTN_QKV_B:
        snprintf(buf, n, "n_head=%d, n_head_kv=%d, head_dim=%d", h->n_head, h->n_head_kv, h->head_dim); break;
    case TR_ATTN_Q_NORM: case TR_ATTN_K_NORM: snprintf(buf, n, "head_dim=%d", h->head_dim); break;
    case TR_FFN_GATE: case TR_FFN_UP: case TR_FFN_UP_B: case TR_FFN_DOWN:
        snprintf(buf, n, "n_ff=%d, n_embd=%d", h->n_ff, h->n_embd); break;
    default: snprintf(buf, n, "n_embd=%d", h->n_embd); break;
    }
}

static void fmt_shape(char *buf, size_t n, const int64_t *d, int nd) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && o < n; i++) o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static int shape_error(const sllm_model *m, const char *file, const char *tname, tensor_role r,
                       const int64_t *got, int got_nd, const int64_t *want, int want_nd) {
    char g[96], w[96], hint[128];
    fmt_shape(g, sizeof g, got, got_nd);
    fmt_shape(w, sizeof w, want, want_nd);
    role_hint(m, r, hint, sizeof hint);
    return err_set(SLLM_ERR_SHAPE, "%s: tensor '%s': shape %s but %s with %s needs %s", file, tname, g, m->arch->name,
                   hint, w);
}

void model_finish_hparams(sllm_model *m) {
    model_hparams *h = &m->hp;
    if (h->n_rot <= 0 || h->n_rot > h->head_dim) h->n_rot = h->head_dim;
    if (h->attn_scale <= 0)
        h->attn_scale = 1.0f / sqrtf(h->query_pre_attn_scalar > 0 ? h->query_pre_attn_scalar : (float)h->head_dim);
    h->embed_scale = m->arch->embed_scale_sqrt ? sqrtf((float)h->n_embd) : 1.0f;
    h->rope.style = m->rope_style;
    h->rope.n_rot = h->n_rot;
    if (h->rope.base <= 0) h->rope.base = m->arch->default_rope_base > 0 ? m->arch->default_rope_base : 10000.0f;
    h->rope.freq_scale = h->rope_linear_factor > 0 ? 1.0f / h->rope_linear_factor : 1.0f;
    h->rope_local.style = m->rope_style;
    h->rope_local.n_rot = h->n_rot;
    if (h->rope_local.base <= 0) h->rope_local.base = 10000.0f;
    h->rope_local.freq_scale = 1.0f;
    h->rope_local.l3_factor = 0;
    if (m->arch->swa && h->swa_pattern <= 0) h->swa_pattern = 6;
    for (int il = 0; il < h->n_layer && m->layers; il++)
        m->layers[il].swa = m->arch->swa && h->swa_window > 0 && h->swa_pattern > 0 && (il + 1) % h->swa_pattern != 0;
}

void model_bind_views(sllm_model *m) {
    const model_hparams *h = &m->hp;
    m->hp.tied = m->g[TR_OUTPUT].data == NULL || m->g[TR_OUTPUT].data == m->g[TR_TOKEN_EMBD].data;
    if (m->hp.tied) m->g[TR_OUTPUT] = m->g[TR_TOKEN_EMBD];
    int64_t qd = (int64_t)h->n_head * h->head_dim, kd = (int64_t)h->n_head_kv * h->head_dim;
    for (int il = 0; il < h->n_layer; il++) {
        mweight *w = m->layers[il].w;
        if (w[TR_ATTN_QKV].data) {
            const mweight *f = &w[TR_ATTN_QKV];
            size_t rb = dtype_row_bytes(f->type, f->cols);
            const char *base = f->data;
            w[TR_ATTN_Q] = MWEIGHT(base, f->type, qd, f->cols);
            w[TR_ATTN_K] = MWEIGHT(base + rb * (size_t)qd, f->type, kd, f->cols);
            w[TR_ATTN_V] = MWEIGHT(base + rb * (size_t)(qd + kd), f->type, kd, f->cols);
        }
        if (w[TR_ATTN_QKV_B].data) {
            const float *b = w[TR_ATTN_QKV_B].data;
            w[TR_ATTN_Q_B] = MWEIGHT(b, DT_F32, 1, qd);
            w[TR_ATTN_K_B] = MWEIGHT(b + qd, DT_F32, 1, kd);
            w[TR_ATTN_V_B] = MWEIGHT(b + qd + kd, DT_F32, 1, kd);
        }
    }
}

static int check_hparams(const sllm_model *m, const char *file) {
    const model_hparams *h = &m->hp;
    const char *bad = NULL;
    if (h->n_embd <= 0) bad = "n_embd";
    else if (h->n_layer <= 0 || h->n_layer > 4096) bad = "n_layer";
    else if (h->n_ff <= 0) bad = "n_ff";
    else if (h->n_head <= 0) bad = "n_head";
    else if (h->n_head_kv <= 0 || h->n_head % h->n_head_kv) bad = "n_head_kv";
    else if (h->head_dim <= 0 || (m->arch->rope && h->head_dim % 2)) bad = "head_dim";
    else if (h->n_vocab <= 0) bad = "n_vocab";
    else if (h->n_ctx_train <= 0) bad = "n_ctx_train";
    else if (!(h->norm_eps > 0) || h->norm_eps > 1) bad = "norm_eps";
    else if (m->arch->rope && h->n_rot % 2) bad = "n_rot";
    if (bad)
        return err_set(SLLM_ERR_FORMAT,
                       "%s: invalid %s hyper-parameters: %s (n_embd=%d n_layer=%d n_ff=%d n_head=%d n_head_kv=%d "
                       "head_dim=%d n_vocab=%d n_ctx_train=%d)",
                       file, m->arch->name, bad, h->n_embd, h->n_layer, h->n_ff, h->n_head, h->n_head_kv,
                       h->head_dim, h->n_vocab, h->n_ctx_train);
    return SLLM_OK;
}

// f32 copy of a 1-D tensor of any dtype, with `add` added (Gemma HF norms).
static float *vec_f32(sllm_model *m, const void *data, dtype t, int64_t n, float add) {
    float *v = model_own(m, malloc((size_t)n * sizeof(float)));
    if (!v) return NULL;
    if (dequantize_row(t, data, v, n) != 0) return NULL;
    if (add != 0)
        for (int64_t i = 0; i < n; i++) v[i] += add;
    return v;
}

// ======================================== GGUF ========================================

static int gguf_need_int(const gguf_file *f, const char *arch, const char *suffix, int64_t def, bool required,
                         int *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (required && !gguf_find(f, key)) return err_set(SLLM_ERR_FORMAT, "%s: key '%s' is missing", f->path, key);
    int err = 0;
    int64_t v = gguf_get_int(f, key, def, &err);
    if (err) return err_set(SLLM_ERR_FORMAT, "%s: key '%s' must be an integer (per-layer arrays are not supported)",
                            f->path, key);
    if (v < 0 || v > INT32_MAX) return err_set(SLLM_ERR_FORMAT, "%s: key '%s' = %lld is out of range", f->path, key,
                                               (long long)v);
    *out = (int)v;
    return SLLM_OK;
}

static int gguf_opt_float(const gguf_file *f, const char *arch, const char *suffix, float def, float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int err = 0;
    double v = gguf_get_float(f, key, def, &err);
    if (err) return err_set(SLLM_ERR_FORMAT, "%s: key '%s' must be a number", f->path, key);
    *out = (float)v;
    return SLLM_OK;
}

static int gguf_hparams(sllm_model *m, const gguf_file *f) {
    const char *a = m->arch->name;
    model_hparams *h = &m->hp;
    int rc;
    if ((rc = gguf_need_int(f, a, "embedding_length", 0, true, &h->n_embd)) ||
        (rc = gguf_need_int(f, a, "block_count", 0, true, &h->n_layer)) ||
        (rc = gguf_need_int(f, a, "feed_forward_length", 0, true, &h->n_ff)) ||
        (rc = gguf_need_int(f, a, "attention.head_count", 0, true, &h->n_head)) ||
        (rc = gguf_need_int(f, a, "attention.head_count_kv", h->n_head, false, &h->n_head_kv)) ||
        (rc = gguf_need_int(f, a, "context_length", 2048, false, &h->n_ctx_train)))
        return rc;
    if (h->n_head <= 0) return err_set(SLLM_ERR_FORMAT, "%s: key '%s.attention.head_count' must be > 0", f->path, a);
    int vlen = 0;
    if ((rc = gguf_need_int(f, a, "attention.key_length", h->n_embd / h->n_head, false, &h->head_dim)) ||
        (rc = gguf_need_int(f, a, "attention.value_length", h->head_dim, false, &vlen)) ||
        (rc = gguf_need_int(f, a, "rope.dimension_count", h->head_dim, false, &h->n_rot)) ||
        (rc = gguf_need_int(f, a, "attention.sliding_window", 0, false, &h->swa_window)) ||
        (rc = gguf_need_int(f, a, "attention.sliding_window_pattern", m->arch->swa ? 6 : 0, false, &h->swa_pattern)))
        return rc;
    if (vlen != h->head_dim)
        return err_set(SLLM_ERR_UNSUPPORTED, "%s: key '%s.attention.value_length' = %d differs from key_length %d",
                       f->path, a, vlen, h->head_dim);
    if ((rc = gguf_opt_float(f, a, m->arch->norm == NORM_RMS ? "attention.layer_norm_rms_epsilon"
                                                              : "attention.layer_norm_epsilon",
                             m->arch->default_eps, &h->norm_eps)) ||
        (rc = gguf_opt_float(f, a, "rope.freq_base", m->arch->default_rope_base, &h->rope.base)) ||
        (rc = gguf_opt_float(f, a, "rope.freq_base_swa", 10000.0f, &h->rope_local.base)) ||
        (rc = gguf_opt_float(f, a, "final_logit_softcapping", 0, &h->final_softcap)) ||
        (rc = gguf_opt_float(f, a, "attention.scale", 0, &h->attn_scale)))
        return rc;
    // rope scaling: "linear" (or the older rope.scale_linear key); other kinds are refused.
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    char *stype = gguf_get_str(f, key);
    float factor = 0;
    if ((rc = gguf_opt_float(f, a, "rope.scaling.factor", 0, &factor))) { free(stype); return rc; }
    if (stype && strcmp(stype, "none") != 0 && strcmp(stype, "linear") != 0) {
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: key '%s' = '%s' is not supported (supported: none, linear)", f->path,
                     key, stype);
        free(stype);
        return rc;
    }
    if (stype && strcmp(stype, "linear") == 0 && factor > 0) h->rope_linear_factor = factor;
    free(stype);
    float scale_linear = 0;
    if ((rc = gguf_opt_float(f, a, "rope.scale_linear", 0, &scale_linear))) return rc;
    if (scale_linear > 0 && h->rope_linear_factor <= 0) h->rope_linear_factor = scale_linear;
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) return err_set(SLLM_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing (needed by %s)", f->path, a);
    if (te->n_dims != 2)
        return err_set(SLLM_ERR_SHAPE, "%s: tensor 'token_embd.weight': %d dims but a (n_embd, n_vocab) matrix is needed",
                       f->path, te->n_dims);
    h->n_vocab = (int)te->ne[1];
    return SLLM_OK;
}

static int gguf_bind(sllm_model *m, const gguf_file *f) {
    char name[160];
    for (const arch_tensor *t = m->arch->tensors; t->role != TR_COUNT; t++) {
        int n = arch_role_is_layer(t->role) ? m->hp.n_layer : 1;
        for (int il = 0; il < n; il++) {
            arch_tensor_name(name, sizeof name, t->gguf, il);
            const gguf_tensor *gt = gguf_find_tensor(f, name);
            if (!gt) {
                if (t->optional) continue;
                return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s' is missing (needed by %s)", f->path, name,
                               m->arch->name);
            }
            int64_t rows, cols;
            model_role_shape(m, t->role, &rows, &cols);
            bool vec = arch_role_is_vector(t->role);
            bool ok = vec ? (gt->n_dims == 1 && gt->ne[0] == cols) || (gt->n_dims == 2 && gt->ne[0] == cols && gt->ne[1] == 1)
                          : gt->n_dims == 2 && gt->ne[0] == cols && gt->ne[1] == rows;
            if (!ok) {
                int64_t want[2] = {cols, rows};
                return shape_error(m, f->path, name, t->role, gt->ne, gt->n_dims, want, vec ? 1 : 2);
            }
            const dtype_info *di = dtype_get(gt->type);
            if (!di || (di->block > 1 && cols % di->block))
                return err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s (id %d) is not usable here", f->path,
                               name, di ? di->name : "unknown", (int)gt->type);
            mweight *w = arch_role_is_layer(t->role) ? &m->layers[il].w[t->role] : &m->g[t->role];
            if (vec) {
                const void *d = gt->type == DT_F32 ? gt->data : vec_f32(m, gt->data, gt->type, cols, 0);
                if (!d) return err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': cannot convert %s to f32", f->path, name,
                                       di->name);
                *w = MWEIGHT(d, DT_F32, 1, cols);
            } else {
                *w = MWEIGHT(gt->data, gt->type, rows, cols);
            }
        }
    }
    if (m->g[TR_ROPE_FREQS].data) m->rope_factors = m->g[TR_ROPE_FREQS].data;
    return SLLM_OK;
}

int model_load_gguf(const char *path, sllm_model **out) {
    *out = NULL;
    gguf_file *f = gguf_open(path);
    if (!f) return err_wrap(SLLM_ERR_FORMAT, "loading model");
    sllm_model *m = model_alloc(path);
    if (!m) { gguf_close(f); return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path); }
    m->gguf = f;
    m->source = MODEL_SRC_GGUF;
    int rc;
    char *an = gguf_get_str(f, "general.architecture");
    if (!an) { rc = err_set(SLLM_ERR_FORMAT, "%s: key 'general.architecture' is missing", path); goto fail; }
    m->arch = arch_by_name(an);
    if (!m->arch) {
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: general.architecture '%s' is not supported (supported: %s)", path, an,
                     arch_supported_list());
        free(an);
        goto fail;
    }
    free(an);
    m->name = gguf_get_str(f, "general.name");
    m->rope_style = m->arch->gguf_rope;
    if ((rc = gguf_hparams(m, f))) goto fail;
    if ((rc = check_hparams(m, path))) goto fail;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) { rc = err_set(SLLM_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    model_finish_hparams(m);
    if ((rc = gguf_bind(m, f))) goto fail;
    model_bind_views(m);
    *out = m;
    return SLLM_OK;
fail:
    model_free(m);
    return rc;
}

// ================================= Hugging Face directory =================================

typedef struct { const char *file; json_t *cfg; } hfcfg;

static int cfg_int(const hfcfg *c, const char *key, int64_t def, bool required, int *out) {
    json_t *v = json_object_get(c->cfg, key);
    if (!v || json_is_null(v)) {
        if (required) return err_set(SLLM_ERR_FORMAT, "%s: field '%s' is missing", c->file, key);
        *out = (int)def;
        return SLLM_OK;
    }
    if (!json_is_integer(v)) return err_set(SLLM_ERR_FORMAT, "%s: field '%s' must be an integer", c->file, key);
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT32_MAX)
        return err_set(SLLM_ERR_FORMAT, "%s: field '%s' = %lld is out of range", c->file, key, (long long)x);
    *out = (int)x;
    return SLLM_OK;
}

static int obj_num(const char *file, const char *ctx, json_t *o, const char *key, double def, double *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return SLLM_OK; }
    if (!json_is_number(v)) return err_set(SLLM_ERR_FORMAT, "%s: field '%s%s' must be a number", file, ctx, key);
    *out = json_number_value(v);
    return SLLM_OK;
}

static int cfg_float(const hfcfg *c, const char *key, double def, float *out) {
    double d = def;
    int rc = obj_num(c->file, "", c->cfg, key, def, &d);
    if (!rc) *out = (float)d;
    return rc;
}

static int hf_rope_scaling(sllm_model *m, const hfcfg *c) {
    json_t *rs = json_object_get(c->cfg, "rope_scaling");
    if (!rs || json_is_null(rs)) return SLLM_OK;
    if (!json_is_object(rs)) return err_set(SLLM_ERR_FORMAT, "%s: field 'rope_scaling' must be an object", c->file);
    json_t *ty = json_object_get(rs, "rope_type");
    if (!ty) ty = json_object_get(rs, "type");
    const char *type = json_is_string(ty) ? json_string_value(ty) : NULL;
    if (!type) return err_set(SLLM_ERR_FORMAT, "%s: field 'rope_scaling.rope_type' is missing", c->file);
    double factor, lo, hi, orig;
    int rc;
    if ((rc = obj_num(c->file, "rope_scaling.", rs, "factor", 1.0, &factor)) ||
        (rc = obj_num(c->file, "rope_scaling.", rs, "low_freq_factor", 1.0, &lo)) ||
        (rc = obj_num(c->file, "rope_scaling.", rs, "high_freq_factor", 4.0, &hi)) ||
        (rc = obj_num(c->file, "rope_scaling.", rs, "original_max_position_embeddings", 8192, &orig)))
        return rc;
    if (strcmp(type, "default") == 0) return SLLM_OK;
    if (!(factor > 0)) return err_set(SLLM_ERR_FORMAT, "%s: field 'rope_scaling.factor' must be > 0", c->file);
    if (strcmp(type, "linear") == 0) {
        m->hp.rope_linear_factor = (float)factor;
    } else if (strcmp(type, "llama3") == 0) {
        if (!(hi > lo) || !(orig > 0))
            return err_set(SLLM_ERR_FORMAT, "%s: field 'rope_scaling': llama3 needs high_freq_factor > low_freq_factor",
                           c->file);
        m->hp.rope.l3_factor = (float)factor;
        m->hp.rope.l3_low_freq_factor = (float)lo;
        m->hp.rope.l3_high_freq_factor = (float)hi;
        m->hp.rope.l3_orig_ctx = (int)orig;
    } else {
        return err_set(SLLM_ERR_UNSUPPORTED,
                       "%s: field 'rope_scaling.rope_type' = '%s' is not supported (supported: default, linear, llama3)",
                       c->file, type);
    }
    return SLLM_OK;
}

static int hf_hparams(sllm_model *m, const hfcfg *c) {
    model_hparams *h = &m->hp;
    int rc;
    if (strcmp(m->arch->name, "gpt2") == 0) {
        if ((rc = cfg_int(c, "n_embd", 768, false, &h->n_embd)) || (rc = cfg_int(c, "n_layer", 12, false, &h->n_layer)) ||
            (rc = cfg_int(c, "n_head", 12, false, &h->n_head)) ||
            (rc = cfg_int(c, "n_positions", 1024, false, &h->n_ctx_train)) ||
            (rc = cfg_int(c, "n_inner", 4 * (int64_t)h->n_embd, false, &h->n_ff)) ||
            (rc = cfg_int(c, "vocab_size", 50257, false, &h->n_vocab)) ||
            (rc = cfg_float(c, "layer_norm_epsilon", 1e-5, &h->norm_eps)))
            return rc;
        h->n_head_kv = h->n_head;
        if (h->n_head <= 0) return err_set(SLLM_ERR_FORMAT, "%s: field 'n_head' must be > 0", c->file);
        h->head_dim = h->n_embd / h->n_head;
        json_t *act = json_object_get(c->cfg, "activation_function");
        if (json_is_string(act) && strcmp(json_string_value(act), "gelu_new") != 0 &&
            strcmp(json_string_value(act), "gelu_pytorch_tanh") != 0)
            return err_set(SLLM_ERR_UNSUPPORTED, "%s: field 'activation_function' = '%s' is not supported (gelu_new)",
                           c->file, json_string_value(act));
        return SLLM_OK;
    }
    if ((rc = cfg_int(c, "hidden_size", 0, true, &h->n_embd)) ||
        (rc = cfg_int(c, "num_hidden_layers", 0, true, &h->n_layer)) ||
        (rc = cfg_int(c, "intermediate_size", 0, true, &h->n_ff)) ||
        (rc = cfg_int(c, "num_attention_heads", 0, true, &h->n_head)) ||
        (rc = cfg_int(c, "vocab_size", 0, true, &h->n_vocab)) ||
        (rc = cfg_int(c, "max_position_embeddings", 2048, false, &h->n_ctx_train)))
        return rc;
    if (h->n_head <= 0) return err_set(SLLM_ERR_FORMAT, "%s: field 'num_attention_heads' must be > 0", c->file);
    if ((rc = cfg_int(c, "num_key_value_heads", h->n_head, false, &h->n_head_kv)) ||
        (rc = cfg_int(c, "head_dim", h->n_embd / h->n_head, false, &h->head_dim)) ||
        (rc = cfg_float(c, "rms_norm_eps", m->arch->default_eps, &h->norm_eps)) ||
        (rc = cfg_float(c, "rope_theta", m->arch->default_rope_base, &h->rope.base)) ||
        (rc = hf_rope_scaling(m, c)))
        return rc;
    h->n_rot = h->head_dim;
    if (m->arch->swa) {
        if ((rc = cfg_int(c, "sliding_window", 0, false, &h->swa_window)) ||
            (rc = cfg_int(c, "sliding_window_pattern", 6, false, &h->swa_pattern)) ||
            (rc = cfg_float(c, "rope_local_base_freq", 10000.0, &h->rope_local.base)) ||
            (rc = cfg_float(c, "query_pre_attn_scalar", 0, &h->query_pre_attn_scalar)) ||
            (rc = cfg_float(c, "final_logit_softcapping", 0, &h->final_softcap)))
            return rc;
        json_t *als = json_object_get(c->cfg, "attn_logit_softcapping");
        if (als && !json_is_null(als))
            return err_set(SLLM_ERR_UNSUPPORTED, "%s: field 'attn_logit_softcapping' is not supported", c->file);
    }
    return SLLM_OK;
}

// layer_types (newer transformers) overrides the sliding-window pattern.
static int hf_layer_types(sllm_model *m, const hfcfg *c) {
    json_t *lt = json_object_get(c->cfg, "layer_types");
    if (!lt || json_is_null(lt) || !m->arch->swa) return SLLM_OK;
    if (!json_is_array(lt) || (int)json_array_size(lt) != m->hp.n_layer)
        return err_set(SLLM_ERR_FORMAT, "%s: field 'layer_types' must be an array of num_hidden_layers strings", c->file);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const char *s = json_string_value(json_array_get(lt, (size_t)il));
        if (!s) return err_set(SLLM_ERR_FORMAT, "%s: field 'layer_types[%d]' must be a string", c->file, il);
        if (strcmp(s, "sliding_attention") == 0) m->layers[il].swa = m->hp.swa_window > 0;
        else if (strcmp(s, "full_attention") == 0) m->layers[il].swa = false;
        else return err_set(SLLM_ERR_UNSUPPORTED, "%s: field 'layer_types[%d]' = '%s' is not supported", c->file, il, s);
    }
    return SLLM_OK;
}

// Looks a tensor up under the prefixes transformers uses for the same module in different classes
// (GPT2LMHeadModel adds "transformer.", Gemma3ForConditionalGeneration nests the text model).
static const st_tensor *hf_find(const st_file *st, const char *name, char *found, size_t n) {
    char buf[256];
    const st_tensor *t = st_find(st, name);
    if (t) { snprintf(found, n, "%s", name); return t; }
    static const char *const pre[] = {"transformer.", "language_model.", "model.language_model."};
    for (int i = 0; i < 3; i++) {
        const char *rest = name;
        if (i == 2) {
            if (strncmp(name, "model.", 6) != 0) continue;
            rest = name + 6;
        }
        snprintf(buf, sizeof buf, "%s%s", pre[i], rest);
        if ((t = st_find(st, buf))) { snprintf(found, n, "%s", buf); return t; }
    }
    snprintf(found, n, "%s", name);
    return NULL;
}

static int hf_bind(sllm_model *m, const st_file *st, const char *dir) {
    char pat[160], name[256];
    for (const arch_tensor *t = m->arch->tensors; t->role != TR_COUNT; t++) {
        if (!t->hf) continue;
        int n = arch_role_is_layer(t->role) ? m->hp.n_layer : 1;
        for (int il = 0; il < n; il++) {
            arch_tensor_name(pat, sizeof pat, t->hf, il);
            const st_tensor *s = hf_find(st, pat, name, sizeof name);
            if (!s) {
                if (t->optional) continue;
                return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s' is missing (needed by %s)", dir, pat, m->arch->name);
            }
            int64_t rows, cols;
            model_role_shape(m, t->role, &rows, &cols);
            bool vec = arch_role_is_vector(t->role);
            int64_t want[2] = {rows, cols};
            if (t->hf_transposed) { want[0] = cols; want[1] = rows; }
            bool ok = vec ? s->n_dims == 1 && s->shape[0] == cols
                          : s->n_dims == 2 && s->shape[0] == want[0] && s->shape[1] == want[1];
            if (!ok) return shape_error(m, dir, name, t->role, s->shape, s->n_dims, vec ? &cols : want, vec ? 1 : 2);
            mweight *w = arch_role_is_layer(t->role) ? &m->layers[il].w[t->role] : &m->g[t->role];
            if (vec) {
                float add = m->arch->hf_norm_plus_one && role_is_norm(t->role) ? 1.0f : 0.0f;
                const void *d = s->type == DT_F32 && add == 0 ? s->data : vec_f32(m, s->data, s->type, cols, add);
                if (!d) return err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': cannot convert to f32", dir, name);
                *w = MWEIGHT(d, DT_F32, 1, cols);
            } else if (t->hf_transposed) {
                // Conv1D (in, out) -> (out, in): the one place loading copies a matrix.
                size_t es = dtype_row_bytes(s->type, 1);
                if (es != 2 && es != 4) return err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': dtype", dir, name);
                uint8_t *d = model_own(m, malloc((size_t)(rows * cols) * es));
                if (!d) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", dir);
                const uint8_t *src = s->data;
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t k = 0; k < cols; k++) memcpy(d + (size_t)(r * cols + k) * es, src + (size_t)(k * rows + r) * es, es);
                *w = MWEIGHT(d, s->type, rows, cols);
            } else {
                *w = MWEIGHT(s->data, s->type, rows, cols);
            }
        }
    }
    return SLLM_OK;
}

int model_load_hf(const char *dir, sllm_model **out) {
    *out = NULL;
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    struct stat sb;
    if (stat(cfg_path, &sb) != 0)
        return err_set(SLLM_ERR_IO, "%s: config.json is missing (a Hugging Face model directory needs config.json)", dir);
    json_error_t je;
    json_t *root = json_load_file(cfg_path, 0, &je);
    if (!root) return err_set(SLLM_ERR_FORMAT, "%s: line %d: %s", cfg_path, je.line, je.text);
    int rc;
    sllm_model *m = model_alloc(dir);
    if (!m) { json_decref(root); return err_set(SLLM_ERR_NOMEM, "%s: out of memory", dir); }
    m->source = MODEL_SRC_HF;
    hfcfg c = {cfg_path, root};
    if (!json_is_object(root)) { rc = err_set(SLLM_ERR_FORMAT, "%s: top level must be an object", cfg_path); goto fail; }
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt)) { rc = err_set(SLLM_ERR_FORMAT, "%s: field 'model_type' is missing", cfg_path); goto fail; }
    m->arch = arch_by_hf_type(json_string_value(mt));
    if (!m->arch) {
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (supported: %s)", cfg_path,
                     json_string_value(mt), arch_supported_list());
        goto fail;
    }
    json_t *tc = json_object_get(root, "text_config");   // Gemma3ForConditionalGeneration nests the LM config
    if (json_is_object(tc)) c.cfg = tc;
    m->rope_style = ROPE_NEOX;
    if ((rc = hf_hparams(m, &c))) goto fail;
    if ((rc = check_hparams(m, cfg_path))) goto fail;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) { rc = err_set(SLLM_ERR_NOMEM, "%s: out of memory", dir); goto fail; }
    model_finish_hparams(m);
    if ((rc = hf_layer_types(m, &c))) goto fail;
    m->st = st_open(dir);
    if (!m->st) { rc = err_wrap(SLLM_ERR_FORMAT, "loading model"); goto fail; }
    if ((rc = hf_bind(m, m->st, dir))) goto fail;
    model_bind_views(m);
    json_decref(root);
    *out = m;
    return SLLM_OK;
fail:
    json_decref(root);
    model_free(m);
    return rc;
}

int model_load(const char *path, sllm_model **out) {
    *out = NULL;
    if (!path) return err_set(SLLM_ERR_ARG, "model path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0) return err_set(SLLM_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return model_load_hf(path, out);
    // A single .safetensors file: use the directory that holds it (config.json lives there).
    size_t n = strlen(path);
    if (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        return model_load_hf(dir, out);
    }
    return model_load_gguf(path, out);
}

// ======================================== info ========================================

void model_info(const sllm_model *m, model_info_t *out) {
    memset(out, 0, sizeof *out);
    for (const arch_tensor *t = m->arch->tensors; t->role != TR_COUNT; t++) {
        if (t->role == TR_OUTPUT && m->hp.tied) continue;
        int n = arch_role_is_layer(t->role) ? m->hp.n_layer : 1;
        for (int il = 0; il < n; il++) {
            const mweight *w = arch_role_is_layer(t->role) ? &m->layers[il].w[t->role] : &m->g[t->role];
            if (!w->data) continue;
            int64_t np = w->rows * w->cols;
            out->n_params += np;
            out->weight_bytes += dtype_row_bytes(w->type, w->cols) * (size_t)w->rows;
            if ((int)w->type < DT_COUNT) out->params_by_dtype[w->type] += np;
        }
    }
}

size_t model_kv_bytes(const sllm_model *m, int n_ctx) {
    return 2 * (size_t)m->hp.n_layer * dtype_row_bytes(m->kv_type, (int64_t)n_ctx * m->hp.n_head_kv * m->hp.head_dim);
}

int model_set_kv_type(sllm_model *m, dtype t) {
    if (t != DT_F32 && t != DT_F16 && t != DT_Q8_0) {
        const dtype_info *di = dtype_get(t);
        return err_set(SLLM_ERR_ARG, "KV cache type %s is not supported (f16, f32 or q8_0)", di ? di->name : "?");
    }
    if (t == DT_Q8_0 && m->hp.head_dim % 32)   // a q8_0 block must not straddle two heads
        return err_set(SLLM_ERR_ARG, "KV cache type q8_0 needs a head dimension that is a multiple of 32 (this model's: %d)",
                       m->hp.head_dim);
    m->kv_type = t;
    return SLLM_OK;
}

const char *model_main_dtype(const sllm_model *m) {
    int64_t by[DT_COUNT] = {0}, tot = 0;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int r = TR_LAYER_FIRST; r < TR_COUNT; r++) {
            const mweight *w = &m->layers[il].w[r];
            bool view = m->layers[il].w[TR_ATTN_QKV].data && (r == TR_ATTN_Q || r == TR_ATTN_K || r == TR_ATTN_V);
            if (!w->data || w->rows == 1 || view) continue;
            by[w->type] += w->rows * w->cols;
            tot += w->rows * w->cols;
        }
    for (int i = 0; i < DT_COUNT; i++)
        if (tot && by[i] * 2 > tot) {
            const dtype_info *di = dtype_get(i);
            return di ? di->name : "mixed";
        }
    return "mixed";
}
