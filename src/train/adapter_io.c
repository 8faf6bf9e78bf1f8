// LoRA adapter files: PEFT directories and llama.cpp GGUF LoRA (see adapter_io.h).
#include "train/adapter_io.h"
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/error.h"
#include "base/fileio.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

// ---- q/k row order ----
// A llama loaded from GGUF holds llama.cpp's permuted q/k rows (NORM rope); PEFT files hold the
// Hugging Face order (NEOX rope). Only B carries output rows, so only B of q/k is reordered.
// Per head of D rows: NEOX row e*D/2 + i <-> NORM row 2i + e.
typedef enum { ORDER_KEEP, ORDER_TO_NORM, ORDER_TO_NEOX } row_order;

static bool model_rows_permuted(const sllm_model *m) {
    return m->arch->gguf_permutes_qk && m->rope_style == ROPE_NORM;
}

static int64_t src_row(int64_t r, int D, row_order o) {
    int64_t h = r / D, rr = r % D;
    if (o == ORDER_TO_NORM) return h * D + (rr % 2) * (D / 2) + rr / 2;
    if (o == ORDER_TO_NEOX) return h * D + 2 * (rr % (D / 2)) + rr / (D / 2);
    return r;
}

// dst (rows, cols) = src with rows reordered.
static void reorder_rows(float *dst, const float *src, int64_t rows, int64_t cols, int D, row_order o) {
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + r * cols, src + src_row(r, D, o) * cols, (size_t)cols * sizeof(float));
}

static row_order order_for(const sllm_model *m, tensor_role role, bool is_A, bool file_is_gguf, bool writing) {
    if (is_A || !m->arch->gguf_permutes_qk || (role != TR_ATTN_Q && role != TR_ATTN_K)) return ORDER_KEEP;
    bool model_norm = model_rows_permuted(m), file_norm = file_is_gguf;
    if (model_norm == file_norm) return ORDER_KEEP;
    bool dst_norm = writing ? file_norm : model_norm;
    return dst_norm ? ORDER_TO_NORM : ORDER_TO_NEOX;
}

// ---- writing ----

// Tensor i of the adapter in the file's row order; *owned is set when a copy was made.
static const float *tensor_for_file(const sllm_model *m, const lora_tensor *t, bool gguf, float **owned) {
    *owned = NULL;
    row_order o = order_for(m, t->role, t->is_A, gguf, true);
    if (o == ORDER_KEEP) return t->data;
    float *c = malloc((size_t)(t->rows * t->cols) * sizeof(float));
    if (!c) return NULL;
    reorder_rows(c, t->data, t->rows, t->cols, m->hp.head_dim, o);
    *owned = c;
    return c;
}

// The module name PEFT lists in target_modules: "...self_attn.q_proj.lora_A.weight" -> "q_proj".
static void module_of(const char *peft_name, char *buf, size_t n) {
    const char *end = strstr(peft_name, ".lora_");
    if (!end) { snprintf(buf, n, "%s", peft_name); return; }
    const char *start = end;
    while (start > peft_name && start[-1] != '.') start--;
    snprintf(buf, n, "%.*s", (int)(end - start), start);
}

int adapter_save_peft(const sllm_model *m, const lora_adapter *ad, const char *dir, const char *base_name) {
    int rc = fileio_mkdirs(dir);
    if (rc) return rc;
    int nt = lora_tensor_count(ad);
    float **owned = calloc((size_t)(nt ? nt : 1), sizeof *owned);
    json_t *mods = json_array();
    st_writer *w = st_writer_new();
    if (!owned || !mods || !w) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); goto done; }
    for (int i = 0; i < nt; i++) {
        lora_tensor t;
        if ((rc = lora_tensor_get(ad, i, &t))) goto done;
        const float *d = tensor_for_file(m, &t, false, &owned[i]);
        if (!d) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); goto done; }
        int64_t shape[2] = {t.rows, t.cols};
        st_writer_add(w, t.peft_name, DT_F32, 2, shape, d);
        char mod[128];
        module_of(t.peft_name, mod, sizeof mod);
        bool seen = false;
        for (size_t k = 0; k < json_array_size(mods); k++)
            if (!strcmp(json_string_value(json_array_get(mods, k)), mod)) seen = true;
        if (!seen) json_array_append_new(mods, json_string(mod));
    }
    st_writer_meta(w, "format", "pt");
    size_t n = strlen(dir) + 40;
    char *path = malloc(n);
    if (!path) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); goto done; }
    snprintf(path, n, "%s/adapter_model.safetensors", dir);
    rc = st_writer_write(w, path);
    if (!rc) {
        json_t *cfg = json_object();
        json_object_set_new(cfg, "alpha_pattern", json_object());
        json_object_set_new(cfg, "base_model_name_or_path", json_string(base_name ? base_name : m->path ? m->path : ""));
        json_object_set_new(cfg, "bias", json_string("none"));
        json_object_set_new(cfg, "fan_in_fan_out", json_boolean(arch_tensor_get(m->arch, TR_ATTN_QKV) != NULL));
        json_object_set_new(cfg, "inference_mode", json_true());
        json_object_set_new(cfg, "init_lora_weights", json_true());
        json_object_set_new(cfg, "layers_to_transform", json_null());
        json_object_set_new(cfg, "lora_alpha", json_real(ad->cfg.alpha));
        json_object_set_new(cfg, "lora_dropout", json_real(ad->cfg.dropout));
        json_object_set_new(cfg, "modules_to_save", json_null());
        json_object_set_new(cfg, "peft_type", json_string("LORA"));
        json_object_set_new(cfg, "r", json_integer(ad->cfg.r));
        json_object_set_new(cfg, "rank_pattern", json_object());
        json_object_set_new(cfg, "revision", json_null());
        json_object_set_new(cfg, "target_modules", json_incref(mods));
        json_object_set_new(cfg, "task_type", json_string("CAUSAL_LM"));
        json_object_set_new(cfg, "use_dora", json_false());
        json_object_set_new(cfg, "use_rslora", json_boolean(ad->cfg.rslora));
        char *js = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(cfg);
        snprintf(path, n, "%s/adapter_config.json", dir);
        if (!js) rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory");
        else {
            size_t jl = strlen(js);
            char *withnl = realloc(js, jl + 2);
            if (withnl) { js = withnl; js[jl] = '\n'; js[jl + 1] = 0; jl++; }
            rc = fileio_write_atomic(path, js, jl);
            free(js);
        }
    }
    free(path);
done:
    st_writer_free(w);
    json_decref(mods);
    if (owned) for (int i = 0; i < nt; i++) free(owned[i]);
    free(owned);
    return rc;
}

int adapter_save_gguf(const sllm_model *m, const lora_adapter *ad, const char *path) {
    int nt = lora_tensor_count(ad), rc = SLLM_OK;
    float **owned = calloc((size_t)(nt ? nt : 1), sizeof *owned);
    gguf_writer *w = gguf_writer_new();
    if (!owned || !w) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); goto done; }
    gguf_set_str(w, "general.architecture", m->arch->name);
    gguf_set_str(w, "general.type", "adapter");
    if (m->name) gguf_set_str(w, "general.name", m->name);
    gguf_set_str(w, "adapter.type", "lora");
    // llama.cpp multiplies by alpha / r: store the alpha that gives our scaling (rsLoRA included).
    gguf_set_f32(w, "adapter.lora.alpha", ad->scaling * (float)ad->cfg.r);
    for (int i = 0; i < nt; i++) {
        lora_tensor t;
        if ((rc = lora_tensor_get(ad, i, &t))) goto done;
        const float *d = tensor_for_file(m, &t, true, &owned[i]);
        if (!d) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); goto done; }
        int64_t ne[2] = {t.cols, t.rows};   // A (r, K) -> ne [K, r]; B (N, r) -> ne [r, N]
        gguf_add_tensor(w, t.gguf_name, DT_F32, 2, ne, d);
    }
    rc = gguf_writer_write(w, path);
done:
    gguf_writer_free(w);
    if (owned) for (int i = 0; i < nt; i++) free(owned[i]);
    free(owned);
    return rc;
}

// ---- loading ----

// f32 copy of n elements stored as f32 / f16 / bf16.
static float *to_f32(const void *data, dtype t, int64_t n) {
    float *o = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!o) return NULL;
    const uint16_t *h = data;
    for (int64_t i = 0; i < n; i++) {
        if (t == DT_F32) memcpy(&o[i], (const char *)data + 4 * i, 4);
        else if (t == DT_F16) o[i] = f16_to_f32(h[i]);
        else o[i] = bf16_to_f32(h[i]);
    }
    return o;
}

typedef struct {
    lora_named_tensor *t;
    float **bufs;
    int n;
} named_set;

static void named_free(named_set *s) {
    for (int i = 0; i < s->n; i++) free(s->bufs[i]);
    free(s->bufs);
    free(s->t);
}

// The (layer, role) a tensor name refers to, to reorder B rows. Matches the names lora.h produces by
// trying them (the adapter's name table is the single source of truth for names).
static bool name_role(const sllm_model *m, const char *name, tensor_role *role, bool *is_A) {
    static const tensor_role qk[2] = {TR_ATTN_Q, TR_ATTN_K};
    char buf[256];
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int k = 0; k < 2; k++) {
            const arch_tensor *at = arch_tensor_get(m->arch, qk[k]);
            if (!at) continue;
            for (int isA = 0; isA < 2; isA++) {
                arch_tensor_name(buf, sizeof buf, at->gguf, il);
                size_t bl = strlen(buf);
                snprintf(buf + bl, sizeof buf - bl, ".lora_%s", isA ? "a" : "b");
                bool hit = !strcmp(name, buf);
                if (!hit && at->hf) {
                    char hf[200];
                    arch_tensor_name(hf, sizeof hf, at->hf, il);
                    size_t hl = strlen(hf);
                    if (hl > 7 && !strcmp(hf + hl - 7, ".weight")) hf[hl - 7] = 0;
                    const char *p = name;
                    if (!strncmp(p, "base_model.model.", 17)) p += 17;
                    snprintf(buf, sizeof buf, "%s.lora_%s.weight", hf, isA ? "A" : "B");
                    hit = !strcmp(p, buf);
                }
                if (hit) { *role = qk[k]; *is_A = isA; return true; }
            }
        }
    return false;
}

// Takes ownership of buf; reorders q/k B rows from the file's order to the model's.
static int named_add(named_set *s, const sllm_model *m, const char *name, float *buf, int64_t rows, int64_t cols,
                     bool file_is_gguf) {
    lora_named_tensor *nt = realloc(s->t, (size_t)(s->n + 1) * sizeof *nt);
    if (nt) s->t = nt;
    float **nb = realloc(s->bufs, (size_t)(s->n + 1) * sizeof *nb);
    if (nb) s->bufs = nb;
    if (!nt || !nb) { free(buf); return err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); }
    tensor_role role;
    bool is_A;
    if (name_role(m, name, &role, &is_A)) {
        row_order o = order_for(m, role, is_A, file_is_gguf, false);
        if (o != ORDER_KEEP && rows % m->hp.head_dim == 0) {
            float *c = malloc((size_t)(rows * cols) * sizeof(float));
            if (!c) { free(buf); return err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); }
            reorder_rows(c, buf, rows, cols, m->hp.head_dim, o);
            free(buf);
            buf = c;
        }
    }
    s->bufs[s->n] = buf;
    s->t[s->n] = (lora_named_tensor){.name = name, .data = buf, .rows = rows, .cols = cols};
    s->n++;
    return SLLM_OK;
}

static int finish(const sllm_model *m, const char *path, const lora_config *cfg, named_set *s, lora_adapter **out) {
    int rc = lora_from_tensors(m, cfg, s->t, s->n, out);
    if (rc) err_wrap(rc, "%s", path);
    return rc;
}

int adapter_load_gguf(const sllm_model *m, const char *path, lora_adapter **out) {
    *out = NULL;
    gguf_file *f = gguf_open(path);
    if (!f) return SLLM_ERR_FORMAT;
    int rc = SLLM_OK;
    named_set s = {0};
    char *type = gguf_get_str(f, "general.type"), *atype = gguf_get_str(f, "adapter.type");
    char *arch = gguf_get_str(f, "general.architecture");
    if (!type || strcmp(type, "adapter")) {
        rc = err_set(SLLM_ERR_FORMAT, "%s: not a LoRA adapter (general.type is '%s', expected 'adapter')", path,
                     type ? type : "(absent)");
        goto done;
    }
    if (!atype || strcmp(atype, "lora")) {
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: adapter.type is '%s', only 'lora' is supported", path,
                     atype ? atype : "(absent)");
        goto done;
    }
    if (!arch || strcmp(arch, m->arch->name)) {
        rc = err_set(SLLM_ERR_ARG, "%s: the adapter is for a '%s' model but the model %s is '%s'", path,
                     arch ? arch : "(absent)", m->path ? m->path : "", m->arch->name);
        goto done;
    }
    int err = 0;
    double alpha = gguf_get_float(f, "adapter.lora.alpha", 0, &err);
    if (err || !(alpha >= 0) || !isfinite(alpha)) {
        rc = err_set(SLLM_ERR_FORMAT, "%s: field 'adapter.lora.alpha': not a non-negative number", path);
        goto done;
    }
    for (int64_t i = 0; i < f->n_tensors && !rc; i++) {
        const gguf_tensor *t = &f->tensors[i];
        size_t nl = strlen(t->name);
        bool ab = nl > 7 && (!strcmp(t->name + nl - 7, ".lora_a") || !strcmp(t->name + nl - 7, ".lora_b"));
        if (!ab) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: tensor '%s' is not a .lora_a / .lora_b tensor", path, t->name);
            break;
        }
        if (t->n_dims != 2 || (t->type != DT_F32 && t->type != DT_F16 && t->type != DT_BF16)) {
            const dtype_info *di = dtype_get(t->type);
            rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': need a 2-D f32/f16/bf16 tensor, got %d-D %s", path,
                         t->name, t->n_dims, di ? di->name : "?");
            break;
        }
        float *buf = to_f32(t->data, t->type, t->ne[0] * t->ne[1]);
        if (!buf) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); break; }
        rc = named_add(&s, m, t->name, buf, t->ne[1], t->ne[0], true);   // ne [cols, rows]
    }
    if (!rc) {
        // alpha 0 means "scaling 1" to llama.cpp, which lora_config expresses as alpha <= 0.
        lora_config cfg = {.r = 0, .alpha = (float)alpha, .dropout = 0, .rslora = false};
        rc = finish(m, path, &cfg, &s, out);
    }
done:
    named_free(&s);
    free(type); free(atype); free(arch);
    gguf_close(f);
    return rc;
}

static int peft_config(const char *cfg_path, lora_config *cfg, unsigned *targets) {
    json_error_t je;
    json_t *j = json_load_file(cfg_path, 0, &je);
    if (!j) {
        if (access(cfg_path, R_OK) != 0) return err_set(SLLM_ERR_IO, "%s: cannot open file", cfg_path);
        return err_set(SLLM_ERR_FORMAT, "%s:%d: %s", cfg_path, je.line, je.text);
    }
    int rc = SLLM_OK;
    const char *pt = json_string_value(json_object_get(j, "peft_type"));
    json_t *r = json_object_get(j, "r"), *alpha = json_object_get(j, "lora_alpha");
    json_t *drop = json_object_get(j, "lora_dropout"), *rs = json_object_get(j, "use_rslora");
    json_t *tm = json_object_get(j, "target_modules");
    if (!json_is_object(j)) rc = err_set(SLLM_ERR_FORMAT, "%s: not a JSON object", cfg_path);
    else if (!pt || strcmp(pt, "LORA"))
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: field 'peft_type' is '%s', only LORA is supported", cfg_path,
                     pt ? pt : "(absent)");
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536)
        rc = err_set(SLLM_ERR_FORMAT, "%s: field 'r': need an integer rank in [1, 65536]", cfg_path);
    else if (alpha && !json_is_number(alpha))
        rc = err_set(SLLM_ERR_FORMAT, "%s: field 'lora_alpha': not a number", cfg_path);
    else if (drop && !json_is_null(drop) && !json_is_number(drop))
        rc = err_set(SLLM_ERR_FORMAT, "%s: field 'lora_dropout': not a number", cfg_path);
    if (!rc) {
        cfg->r = (int)json_integer_value(r);
        cfg->alpha = alpha ? (float)json_number_value(alpha) : 8.0f;   // PEFT's default lora_alpha
        double d = drop && json_is_number(drop) ? json_number_value(drop) : 0;
        cfg->dropout = d >= 0 && d < 1 ? (float)d : 0;
        cfg->rslora = json_is_true(rs);
        // target_modules: names known to lora_parse_targets (a list, or one name)
        char list[1024] = "";
        size_t used = 0;
        if (json_is_array(tm)) {
            for (size_t i = 0; i < json_array_size(tm); i++) {
                const char *s = json_string_value(json_array_get(tm, i));
                if (!s) { rc = err_set(SLLM_ERR_FORMAT, "%s: field 'target_modules'[%zu]: not a string", cfg_path, i); break; }
                used += (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used : 0, "%s%s", i ? "," : "", s);
            }
        } else if (json_is_string(tm)) {
            snprintf(list, sizeof list, "%s", json_string_value(tm));
        }
        *targets = 0;
        if (!rc && list[0] && (rc = lora_parse_targets(list, targets)))
            err_wrap(rc, "%s: field 'target_modules'", cfg_path);
    }
    json_decref(j);
    return rc;
}

int adapter_load_peft(const sllm_model *m, const char *dir, lora_adapter **out) {
    *out = NULL;
    size_t n = strlen(dir) + 40;
    char *cfg_path = malloc(n), *st_path = malloc(n);
    int rc = SLLM_OK;
    named_set s = {0};
    st_file *sf = NULL;
    if (!cfg_path || !st_path) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); goto done; }
    snprintf(cfg_path, n, "%s/adapter_config.json", dir);
    snprintf(st_path, n, "%s/adapter_model.safetensors", dir);
    lora_config cfg = {0};
    unsigned targets = 0;
    if ((rc = peft_config(cfg_path, &cfg, &targets))) goto done;
    if (!(sf = st_open(st_path))) { rc = SLLM_ERR_FORMAT; goto done; }
    for (int64_t i = 0; i < st_count(sf) && !rc; i++) {
        const st_tensor *t = st_get(sf, i);
        if (t->n_dims != 2) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: tensor '%s' is %d-D, a LoRA A/B is 2-D", st_path, t->name, t->n_dims);
            break;
        }
        float *buf = to_f32(t->data, t->type, t->shape[0] * t->shape[1]);
        if (!buf) { rc = err_set(SLLM_ERR_NOMEM, "adapter: out of memory"); break; }
        rc = named_add(&s, m, t->name, buf, t->shape[0], t->shape[1], false);
    }
    if (!rc) rc = finish(m, st_path, &cfg, &s, out);
    // Every module the tensors adapt must be listed in target_modules (PEFT would not create it).
    if (!rc && targets && ((*out)->cfg.targets & ~targets)) {
        rc = err_set(SLLM_ERR_FORMAT, "%s: the tensors adapt modules missing from 'target_modules'", cfg_path);
        lora_free(*out);
        *out = NULL;
    }
done:
    named_free(&s);
    st_close(sf);
    free(cfg_path); free(st_path);
    return rc;
}

int adapter_load(const sllm_model *m, const char *path, lora_adapter **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return err_set(SLLM_ERR_IO, "%s: no such adapter file or directory", path);
    if (S_ISDIR(st.st_mode)) return adapter_load_peft(m, path, out);
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    if (!f) return err_set(SLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) return adapter_load_gguf(m, path, out);
    // a file inside a PEFT directory: load the directory
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!strcmp(base, "adapter_config.json") || !strcmp(base, "adapter_model.safetensors")) {
        char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
        if (!dir) return err_set(SLLM_ERR_NOMEM, "adapter: out of memory");
        int rc = adapter_load_peft(m, dir, out);
        free(dir);
        return rc;
    }
    return err_set(SLLM_ERR_FORMAT, "%s: not a LoRA adapter (need a GGUF LoRA file or a PEFT directory with "
                   "adapter_config.json + adapter_model.safetensors)", path);
}

int adapter_parse_spec(const char *spec, char **path, float *scale) {
    *path = NULL;
    *scale = 1.0f;
    if (!spec || !*spec) return err_set(SLLM_ERR_ARG, "--lora: empty adapter path");
    const char *colon = strrchr(spec, ':');
    size_t n = strlen(spec);
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (!*end && !errno && isfinite(v)) { *scale = (float)v; n = (size_t)(colon - spec); }
    }
    if (!n) return err_set(SLLM_ERR_ARG, "--lora '%s': empty adapter path", spec);
    *path = strndup(spec, n);
    return *path ? SLLM_OK : err_set(SLLM_ERR_NOMEM, "out of memory");
}
