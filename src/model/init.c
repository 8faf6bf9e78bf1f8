// Random models of named shapes (`sllm init`, tests) and the two writers: GGUF with llama.cpp's
// names and keys, and a Hugging Face directory (config.json + model.safetensors).
// A model built here holds HF conventions (NEOX rope on unpermuted q/k rows, Gemma norms folded to
// 1+w); the writers convert to each format's conventions, so a model loaded from either file gives
// the same logits.
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/error.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "model/model.h"
#include "tensor/quant.h"

// ---------------------------------------------------------------- presets
// Real shapes from the models' published config.json files; tiny-* are for tests and smoke runs.
static const model_preset presets[] = {
    {.name = "llama-3.2-1b", .arch = "llama", .n_vocab = 128256, .n_embd = 2048, .n_layer = 16, .n_ff = 8192,
     .n_head = 32, .n_head_kv = 8, .head_dim = 64, .n_ctx = 131072, .eps = 1e-5f, .rope_base = 500000.0f,
     .l3_factor = 32.0f, .l3_low = 1.0f, .l3_high = 4.0f, .l3_orig_ctx = 8192, .tied = true},
    {.name = "qwen2.5-0.5b", .arch = "qwen2", .n_vocab = 151936, .n_embd = 896, .n_layer = 24, .n_ff = 4864,
     .n_head = 14, .n_head_kv = 2, .head_dim = 64, .n_ctx = 32768, .eps = 1e-6f, .rope_base = 1000000.0f,
     .tied = true},
    {.name = "qwen3-0.6b", .arch = "qwen3", .n_vocab = 151936, .n_embd = 1024, .n_layer = 28, .n_ff = 3072,
     .n_head = 16, .n_head_kv = 8, .head_dim = 128, .n_ctx = 40960, .eps = 1e-6f, .rope_base = 1000000.0f,
     .tied = true},
    {.name = "gemma-3-1b", .arch = "gemma3", .n_vocab = 262144, .n_embd = 1152, .n_layer = 26, .n_ff = 6912,
     .n_head = 4, .n_head_kv = 1, .head_dim = 256, .n_ctx = 32768, .eps = 1e-6f, .rope_base = 1000000.0f,
     .rope_base_local = 10000.0f, .swa_window = 512, .swa_pattern = 6, .query_pre_attn_scalar = 256, .tied = true},
    {.name = "llama-3.2-3b", .arch = "llama", .n_vocab = 128256, .n_embd = 3072, .n_layer = 28, .n_ff = 8192,
     .n_head = 24, .n_head_kv = 8, .head_dim = 128, .n_ctx = 131072, .eps = 1e-5f, .rope_base = 500000.0f,
     .l3_factor = 32.0f, .l3_low = 1.0f, .l3_high = 4.0f, .l3_orig_ctx = 8192, .tied = true},
    {.name = "qwen3-1.7b", .arch = "qwen3", .n_vocab = 151936, .n_embd = 2048, .n_layer = 28, .n_ff = 6144,
     .n_head = 16, .n_head_kv = 8, .head_dim = 128, .n_ctx = 40960, .eps = 1e-6f, .rope_base = 1000000.0f,
     .tied = true},
    {.name = "qwen3-4b", .arch = "qwen3", .n_vocab = 151936, .n_embd = 2560, .n_layer = 36, .n_ff = 9728,
     .n_head = 32, .n_head_kv = 8, .head_dim = 128, .n_ctx = 40960, .eps = 1e-6f, .rope_base = 1000000.0f,
     .tied = true},
    {.name = "gemma-3-4b", .arch = "gemma3", .n_vocab = 262208, .n_embd = 2560, .n_layer = 34, .n_ff = 10240,
     .n_head = 8, .n_head_kv = 4, .head_dim = 256, .n_ctx = 131072, .eps = 1e-6f, .rope_base = 1000000.0f,
     .rope_base_local = 10000.0f, .rope_linear_factor = 8.0f, .swa_window = 1024, .swa_pattern = 6,
     .query_pre_attn_scalar = 256, .tied = true},
    {.name = "gpt2-124m", .arch = "gpt2", .n_vocab = 50257, .n_embd = 768, .n_layer = 12, .n_ff = 3072,
     .n_head = 12, .n_head_kv = 12, .head_dim = 64, .n_ctx = 1024, .eps = 1e-5f, .tied = true},
    {.name = "tiny-llama", .arch = "llama", .n_vocab = 256, .n_embd = 64, .n_layer = 2, .n_ff = 128,
     .n_head = 4, .n_head_kv = 2, .head_dim = 16, .n_ctx = 256, .eps = 1e-5f, .rope_base = 500000.0f,
     .l3_factor = 8.0f, .l3_low = 1.0f, .l3_high = 4.0f, .l3_orig_ctx = 64, .tied = true},
    {.name = "tiny-qwen2", .arch = "qwen2", .n_vocab = 256, .n_embd = 64, .n_layer = 2, .n_ff = 160,
     .n_head = 4, .n_head_kv = 2, .head_dim = 16, .n_ctx = 256, .eps = 1e-6f, .rope_base = 1000000.0f,
     .tied = false},
    {.name = "tiny-qwen3", .arch = "qwen3", .n_vocab = 256, .n_embd = 64, .n_layer = 3, .n_ff = 128,
     .n_head = 4, .n_head_kv = 2, .head_dim = 32, .n_ctx = 256, .eps = 1e-6f, .rope_base = 1000000.0f,
     .tied = true},
    {.name = "tiny-gemma3", .arch = "gemma3", .n_vocab = 256, .n_embd = 64, .n_layer = 7, .n_ff = 128,
     .n_head = 4, .n_head_kv = 2, .head_dim = 32, .n_ctx = 256, .eps = 1e-6f, .rope_base = 1000000.0f,
     .rope_base_local = 10000.0f, .rope_linear_factor = 2.0f, .swa_window = 4, .swa_pattern = 6,
     .query_pre_attn_scalar = 32, .tied = true},
    // The training benchmark's shape (bench/bench_train.sh, ~58M parameters, untied head).
    {.name = "llama-60m", .arch = "llama", .n_vocab = 32000, .n_embd = 512, .n_layer = 8, .n_ff = 1376,
     .n_head = 8, .n_head_kv = 8, .head_dim = 64, .n_ctx = 2048, .eps = 1e-5f, .rope_base = 10000.0f,
     .tied = false},
    // Rows of 256 so every K-quant applies (tests of sllm quantize against llama.cpp).
    {.name = "small-llama", .arch = "llama", .n_vocab = 512, .n_embd = 256, .n_layer = 2, .n_ff = 768,
     .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_ctx = 512, .eps = 1e-5f, .rope_base = 10000.0f,
     .tied = true},
    {.name = "tiny-gpt2", .arch = "gpt2", .n_vocab = 256, .n_embd = 64, .n_layer = 2, .n_ff = 256,
     .n_head = 4, .n_head_kv = 4, .head_dim = 16, .n_ctx = 128, .eps = 1e-5f, .tied = true},
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

const model_preset *model_preset_get(const char *name) {
    for (int i = 0; name && i < N_PRESETS; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

const char *const *model_preset_names(void) {
    static const char *names[N_PRESETS + 1];
    for (int i = 0; i < N_PRESETS; i++) names[i] = presets[i].name;
    names[N_PRESETS] = NULL;
    return names;
}

static bool role_is_norm(tensor_role r) {
    return r == TR_OUTPUT_NORM || r == TR_ATTN_NORM || r == TR_ATTN_Q_NORM || r == TR_ATTN_K_NORM ||
           r == TR_POST_ATTN_NORM || r == TR_FFN_NORM || r == TR_POST_FFN_NORM;
}

// ---------------------------------------------------------------- random init

int model_init(const model_init_opts *o, sllm_model **out) {
    *out = NULL;
    const model_preset *p = o->custom ? o->custom : model_preset_get(o->preset);
    if (!p) {
        char list[512] = "";
        for (int i = 0; i < N_PRESETS; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", presets[i].name);
        return err_set(SLLM_ERR_ARG, "init: unknown preset '%s' (known: %s)", o->preset ? o->preset : "(null)", list);
    }
    const arch_desc *a = arch_by_name(p->arch);
    if (!a) return err_set(SLLM_ERR_ARG, "init: preset '%s': unknown architecture '%s'", p->name, p->arch);
    if (!dtype_can_quantize(o->type))
        return err_set(SLLM_ERR_ARG, "init: dtype %d cannot be written", (int)o->type);
    sllm_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(SLLM_ERR_NOMEM, "init: out of memory");
    m->path = strdup(p->name);
    m->name = strdup(p->name);
    m->source = MODEL_SRC_MEM;
    m->arch = a;
    m->rope_style = ROPE_NEOX;
    model_hparams *h = &m->hp;
    h->n_vocab = p->n_vocab; h->n_embd = p->n_embd; h->n_layer = p->n_layer; h->n_ff = p->n_ff;
    h->n_head = p->n_head; h->n_head_kv = p->n_head_kv; h->head_dim = p->head_dim; h->n_ctx_train = p->n_ctx;
    h->n_rot = p->head_dim; h->norm_eps = p->eps;
    h->rope.base = p->rope_base; h->rope_local.base = p->rope_base_local;
    h->rope.l3_factor = p->l3_factor; h->rope.l3_low_freq_factor = p->l3_low;
    h->rope.l3_high_freq_factor = p->l3_high; h->rope.l3_orig_ctx = p->l3_orig_ctx;
    h->rope_linear_factor = p->rope_linear_factor > 0 ? p->rope_linear_factor : 0;
    h->swa_window = p->swa_window; h->swa_pattern = p->swa_pattern;
    h->query_pre_attn_scalar = p->query_pre_attn_scalar; h->final_softcap = p->final_softcap;
    m->layers = calloc((size_t)h->n_layer, sizeof *m->layers);
    if (!m->path || !m->name || !m->layers) { model_free(m); return err_set(SLLM_ERR_NOMEM, "init: out of memory"); }
    model_finish_hparams(m);

    rng_state rng;
    rng_seed(&rng, o->seed);
    float std = o->std > 0 ? o->std : 0.02f;
    float *row = NULL;
    int rc = SLLM_OK;
    for (const arch_tensor *t = a->tensors; t->role != TR_COUNT && !rc; t++) {
        if (t->role == TR_ROPE_FREQS || (t->role == TR_OUTPUT && p->tied)) continue;
        int n = arch_role_is_layer(t->role) ? h->n_layer : 1;
        int64_t rows, cols;
        model_role_shape(m, t->role, &rows, &cols);
        for (int il = 0; il < n && !rc; il++) {
            mweight *w = arch_role_is_layer(t->role) ? &m->layers[il].w[t->role] : &m->g[t->role];
            if (arch_role_is_vector(t->role)) {
                float *v = model_own(m, malloc((size_t)cols * sizeof(float)));
                if (!v) { rc = err_set(SLLM_ERR_NOMEM, "init: out of memory"); break; }
                bool is_norm = role_is_norm(t->role);
                for (int64_t i = 0; i < cols; i++) {
                    float base = is_norm ? 1.0f : 0.0f;
                    v[i] = o->perturb ? base + rng_normal(&rng) * (is_norm ? 0.1f : std) : base;
                }
                *w = MWEIGHT(v, DT_F32, 1, cols);
                continue;
            }
            dtype ty = o->type;
            const dtype_info *di = dtype_get(ty);
            if (cols % di->block) ty = DT_F16;
            size_t rb = dtype_row_bytes(ty, cols);
            uint8_t *d = model_own(m, malloc(rb * (size_t)rows));
            free(row);
            row = malloc((size_t)cols * sizeof(float));
            if (!d || !row) { rc = err_set(SLLM_ERR_NOMEM, "init: out of memory for %s", p->name); break; }
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t i = 0; i < cols; i++) row[i] = rng_normal(&rng) * std;
                quantize_row(ty, row, d + rb * (size_t)r, cols);
            }
            *w = MWEIGHT(d, ty, rows, cols);
        }
    }
    free(row);
    if (rc) { model_free(m); return rc; }
    model_bind_views(m);
    *out = m;
    return SLLM_OK;
}

// ---------------------------------------------------------------- conversion helpers

typedef struct { void **p; int n, cap; } buflist;

static void *keep(buflist *b, void *p) {
    if (!p) return NULL;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        void **q = realloc(b->p, (size_t)cap * sizeof *q);
        if (!q) { free(p); return NULL; }
        b->p = q; b->cap = cap;
    }
    b->p[b->n++] = p;
    return p;
}

static void buflist_free(buflist *b) {
    for (int i = 0; i < b->n; i++) free(b->p[i]);
    free(b->p);
}

enum { PERM_NONE = 0, PERM_TO_NORM = 1, PERM_TO_NEOX = 2 };

// llama.cpp's q/k permutation, per head of D rows: NEOX row e*D/2 + i <-> NORM row 2i + e.
// Returns the source row for destination row r.
static int64_t perm_src_row(int64_t r, int D, int perm) {
    int64_t h = r / D, rr = r % D;
    if (perm == PERM_TO_NORM) return h * D + (rr % 2) * (D / 2) + rr / 2;
    if (perm == PERM_TO_NEOX) return h * D + 2 * (rr % (D / 2)) + rr / (D / 2);
    return r;
}

typedef struct {
    const mweight *w;
    dtype to;
    int perm, D;
    uint8_t *dst;
    size_t rb_in, rb;
    int64_t rows_per_task;
    atomic_int failed;
} convert_job;

// Rows [task * rows_per_task, ...) of a convert_matrix job (quantizing is the slow part of
// `sllm quantize`: the K-quants search their scales per sub-block, so the rows go to every core).
static void convert_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    convert_job *j = ctx;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task < j->w->rows ? r0 + j->rows_per_task : j->w->rows;
    float *tmp = j->to == j->w->type ? NULL : malloc((size_t)j->w->cols * sizeof(float));
    if (j->to != j->w->type && !tmp) { atomic_store(&j->failed, 1); return; }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *src = (const uint8_t *)j->w->data + j->rb_in * (size_t)perm_src_row(r, j->D, j->perm);
        if (j->to == j->w->type) memcpy(j->dst + j->rb * (size_t)r, src, j->rb);
        else if (dequantize_row(j->w->type, src, tmp, j->w->cols) || quantize_row(j->to, tmp, j->dst + j->rb * (size_t)r, j->w->cols)) {
            atomic_store(&j->failed, 1);
            break;
        }
    }
    free(tmp);
}

// Matrix w in dtype `to`, rows permuted (on the threads of `pool`, NULL: this one); returns w->data
// itself when nothing changes.
static const void *convert_matrix(buflist *b, tpool *pool, const mweight *w, dtype to, int perm, int D) {
    if (to == w->type && perm == PERM_NONE) return w->data;
    convert_job j = {.w = w, .to = to, .perm = perm, .D = D, .rb_in = dtype_row_bytes(w->type, w->cols),
                     .rb = dtype_row_bytes(to, w->cols), .rows_per_task = 64};
    j.dst = keep(b, malloc(j.rb * (size_t)w->rows));
    if (!j.dst) return NULL;
    atomic_init(&j.failed, 0);
    tpool_run(pool, (w->rows + j.rows_per_task - 1) / j.rows_per_task, convert_task, &j);
    return atomic_load(&j.failed) ? NULL : j.dst;
}

// (rows, cols) -> (cols, rows) in dtype `to` (HF Conv1D layout).
static const void *transpose_matrix(buflist *b, const mweight *w, dtype to) {
    size_t rb_in = dtype_row_bytes(w->type, w->cols);
    float *full = malloc((size_t)(w->rows * w->cols) * sizeof(float));
    float *col = malloc((size_t)w->rows * sizeof(float));
    size_t rb = dtype_row_bytes(to, w->rows);
    uint8_t *d = keep(b, malloc(rb * (size_t)w->cols));
    const void *res = d;
    if (!full || !col || !d) { res = NULL; goto done; }
    for (int64_t r = 0; r < w->rows; r++)
        if (dequantize_row(w->type, (const uint8_t *)w->data + rb_in * (size_t)r, full + r * w->cols, w->cols)) {
            res = NULL; goto done;
        }
    for (int64_t k = 0; k < w->cols; k++) {
        for (int64_t r = 0; r < w->rows; r++) col[r] = full[r * w->cols + k];
        if (quantize_row(to, col, d + rb * (size_t)k, w->rows)) { res = NULL; goto done; }
    }
done:
    free(full);
    free(col);
    return res;
}

static const mweight *role_weight(const sllm_model *m, tensor_role r, int il) {
    return arch_role_is_layer(r) ? &m->layers[il].w[r] : &m->g[r];
}

// ---------------------------------------------------------------- GGUF writer

// The per-token arrays of a tokenizer, padded to the model's n_vocab rows when the source is shorter
// (a 32000-token vocabulary in a 262144-row model): llama.cpp refuses a file whose token list is
// shorter than its embedding. Padding: "[PAD<id>]" tokens of type UNUSED (5) and score 0, as
// conversions of padded vocabularies write them.
static bool is_token_array(const char *key) {
    return !strcmp(key, "tokenizer.ggml.tokens") || !strcmp(key, "tokenizer.ggml.scores") ||
           !strcmp(key, "tokenizer.ggml.token_type");
}

static void copy_string_array(gguf_writer *w, const char *key, const gguf_kv *kv, uint64_t n) {
    char **strs = calloc(n ? n : 1, sizeof *strs);
    bool ok = strs != NULL;
    for (uint64_t j = 0; ok && j < n; j++) {
        if (j < kv->arr_n) {
            gguf_str s = gguf_arr_str(kv, j);
            ok = (strs[j] = strndup(s.ptr, (size_t)s.len)) != NULL;
        } else {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)j);
            ok = (strs[j] = strdup(pad)) != NULL;
        }
    }
    if (ok) gguf_set_array(w, key, GGUF_STRING, (const char *const *)strs, n);
    for (uint64_t j = 0; strs && j < n; j++) free(strs[j]);
    free(strs);
}

static void copy_value_array(gguf_writer *w, const char *key, const gguf_kv *kv, uint64_t n) {
    size_t es = gguf_type_size(kv->arr_type);
    if (n == kv->arr_n || es == 0) { gguf_set_array(w, key, kv->arr_type, kv->data, kv->arr_n); return; }
    char *v = calloc(n, es);   // scores 0.0f (all-zero bits)
    if (!v) return;
    memcpy(v, kv->data, kv->arr_n * es);
    if (!strcmp(key, "tokenizer.ggml.token_type") && kv->arr_type == GGUF_I32)
        for (uint64_t j = kv->arr_n; j < n; j++) ((int32_t *)v)[j] = 5;   // UNUSED
    gguf_set_array(w, key, kv->arr_type, v, n);
    free(v);
}

static void copy_tokenizer_keys(gguf_writer *w, const gguf_file *src, int64_t n_vocab) {
    for (int64_t i = 0; i < src->n_kv; i++) {
        const gguf_kv *kv = &src->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        char *key = strndup(kv->key.ptr, (size_t)kv->key.len);
        if (!key) continue;
        uint64_t n = kv->type == GGUF_ARRAY ? kv->arr_n : 0;
        if (kv->type == GGUF_ARRAY && is_token_array(key) && (int64_t)n < n_vocab) n = (uint64_t)n_vocab;
        if (kv->type == GGUF_STRING) {
            char *s = strndup(kv->v.s.ptr, (size_t)kv->v.s.len);
            if (s) gguf_set_str(w, key, s);
            free(s);
        } else if (kv->type != GGUF_ARRAY) {
            gguf_set_scalar(w, key, kv->type, kv->data);
        } else if (kv->arr_type == GGUF_STRING) {
            copy_string_array(w, key, kv, n);
        } else if (kv->arr_type != GGUF_ARRAY) {
            copy_value_array(w, key, kv, n);
        }
        free(key);
    }
}

// The first and last eighth of the layers and every third one between (llama.cpp's use_more_bits).
bool model_mix_more_bits(int il, int n_layer) {
    return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

static bool is_mix(int out_type) { return out_type == MODEL_MIX_Q4_K_M || out_type == MODEL_MIX_Q5_K_M; }

// Output dtype of one matrix under a mix (MODEL_MIX_*), else out_type itself (-1: keep src_type).
static dtype mix_type(int out_type, dtype src_type, tensor_role role, int il, const model_hparams *h) {
    if (out_type < 0) return src_type;
    if (!is_mix(out_type)) return (dtype)out_type;
    if (role == TR_OUTPUT || (role == TR_TOKEN_EMBD && h->tied)) return DT_Q6_K;
    if ((role == TR_ATTN_V || role == TR_FFN_DOWN) && model_mix_more_bits(il, h->n_layer)) return DT_Q6_K;
    return out_type == MODEL_MIX_Q5_K_M ? DT_Q5_K : DT_Q4_K;
}

// A dtype whose block divides a row of `cols`: llama.cpp's fallbacks for 256-blocks on rows that are not a
// multiple of 256 (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; Q2_K / Q3_K / IQ4_XS -> IQ4_NL), else F16.
static dtype fit_type(dtype to, int64_t cols) {
    if (cols % dtype_get(to)->block == 0) return to;
    dtype alt = to == DT_Q4_K ? DT_Q5_0 : to == DT_Q5_K ? DT_Q5_1 : to == DT_Q6_K ? DT_Q8_0
              : to == DT_Q2_K || to == DT_Q3_K || to == DT_IQ4_XS ? DT_IQ4_NL : DT_F16;
    return cols % dtype_get(alt)->block == 0 ? alt : DT_F16;
}

int model_save_gguf(const sllm_model *m, const char *path, int out_type, const gguf_file *tokenizer_src) {
    const arch_desc *a = m->arch;
    const model_hparams *h = &m->hp;
    if (out_type >= 0 && !is_mix(out_type) && !dtype_can_quantize((dtype)out_type))
        return err_set(SLLM_ERR_ARG, "%s: cannot write weights as dtype %d", path, out_type);
    gguf_writer *w = gguf_writer_new();
    if (!w) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path);
    tpool *pool = tpool_new(0);   // all cores for the conversions (NULL: this thread alone)
    buflist bl = {0};
    int rc = SLLM_OK;
    char key[160];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", a->name, suffix), key)
    gguf_set_str(w, "general.architecture", a->name);
    if (m->name) gguf_set_str(w, "general.name", m->name);
    gguf_set_u32(w, K("vocab_size"), (uint32_t)h->n_vocab);
    gguf_set_u32(w, K("context_length"), (uint32_t)h->n_ctx_train);
    gguf_set_u32(w, K("embedding_length"), (uint32_t)h->n_embd);
    gguf_set_u32(w, K("block_count"), (uint32_t)h->n_layer);
    gguf_set_u32(w, K("feed_forward_length"), (uint32_t)h->n_ff);
    gguf_set_u32(w, K("attention.head_count"), (uint32_t)h->n_head);
    gguf_set_u32(w, K("attention.head_count_kv"), (uint32_t)h->n_head_kv);
    gguf_set_u32(w, K("attention.key_length"), (uint32_t)h->head_dim);
    gguf_set_u32(w, K("attention.value_length"), (uint32_t)h->head_dim);
    if (a->norm == NORM_RMS) gguf_set_f32(w, K("attention.layer_norm_rms_epsilon"), h->norm_eps);
    else gguf_set_f32(w, K("attention.layer_norm_epsilon"), h->norm_eps);
    if (a->rope) {
        gguf_set_f32(w, K("rope.freq_base"), h->rope.base);
        gguf_set_u32(w, K("rope.dimension_count"), (uint32_t)h->n_rot);
        if (h->rope_linear_factor > 0 && h->rope_linear_factor != 1.0f) {
            gguf_set_str(w, K("rope.scaling.type"), "linear");
            gguf_set_f32(w, K("rope.scaling.factor"), h->rope_linear_factor);
        }
    }
    if (a->swa && h->swa_window > 0) {
        gguf_set_u32(w, K("attention.sliding_window"), (uint32_t)h->swa_window);
        if (h->swa_pattern != 6) gguf_set_u32(w, K("attention.sliding_window_pattern"), (uint32_t)h->swa_pattern);
        if (h->rope_local.base != 10000.0f) gguf_set_f32(w, K("rope.freq_base_swa"), h->rope_local.base);
    }
    if (h->final_softcap > 0) gguf_set_f32(w, K("final_logit_softcapping"), h->final_softcap);
    // llama.cpp derives the attention scale from head_dim; write it only when it differs
    if (fabsf(h->attn_scale * sqrtf((float)h->head_dim) - 1.0f) > 1e-6f) gguf_set_f32(w, K("attention.scale"), h->attn_scale);
#undef K
    if (tokenizer_src) copy_tokenizer_keys(w, tokenizer_src, h->n_vocab);

    char name[160];
    for (const arch_tensor *t = a->tensors; t->role != TR_COUNT && !rc; t++) {
        if (t->role == TR_OUTPUT && h->tied) continue;
        int n = arch_role_is_layer(t->role) ? h->n_layer : 1;
        for (int il = 0; il < n; il++) {
            const mweight *src = role_weight(m, t->role, il);
            arch_tensor_name(name, sizeof name, t->gguf, il);
            if (t->role == TR_ROPE_FREQS) {
                // llama3 scaling as llama.cpp's divisors: base inv_freq / scaled inv_freq
                const float *fac = m->rope_factors;
                if (!fac && h->rope.l3_factor > 0) {
                    int half = h->n_rot / 2;
                    float *f = keep(&bl, malloc((size_t)half * sizeof(float) * 2));
                    if (!f) { rc = err_set(SLLM_ERR_NOMEM, "%s: out of memory", path); break; }
                    rope_params base = h->rope;
                    base.l3_factor = 0;
                    rope_inv_freq(&base, f + half);
                    rope_inv_freq(&h->rope, f);
                    for (int i = 0; i < half; i++) f[i] = f[half + i] / f[i];
                    fac = f;
                }
                if (fac) {
                    int64_t ne = h->n_rot / 2;
                    gguf_add_tensor(w, name, DT_F32, 1, &ne, fac);
                }
                continue;
            }
            if (!src->data) continue;
            if (arch_role_is_vector(t->role)) {
                gguf_add_tensor(w, name, DT_F32, 1, &src->cols, src->data);
                continue;
            }
            dtype to = fit_type(mix_type(out_type, src->type, t->role, il, h), src->cols);
            const dtype_info *di = dtype_get(to);
            int perm = PERM_NONE;
            if (a->gguf_permutes_qk && m->rope_style != a->gguf_rope && (t->role == TR_ATTN_Q || t->role == TR_ATTN_K))
                perm = PERM_TO_NORM;
            const void *d = convert_matrix(&bl, pool, src, to, perm, h->head_dim);
            if (!d) { rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': cannot convert to %s", path, name, di->name); break; }
            int64_t ne[2] = {src->cols, src->rows};
            gguf_add_tensor(w, name, to, 2, ne, d);
        }
    }
    if (!rc) rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    buflist_free(&bl);
    tpool_free(pool);
    return rc;
}

// ---------------------------------------------------------------- HF writer

static json_t *hf_config(const sllm_model *m, dtype to) {
    const arch_desc *a = m->arch;
    const model_hparams *h = &m->hp;
    json_t *c = json_object();
    json_object_set_new(c, "architectures", json_pack("[s]", a->hf_class));
    json_object_set_new(c, "torch_dtype", json_string(to == DT_F32 ? "float32" : to == DT_F16 ? "float16" : "bfloat16"));
    json_object_set_new(c, "vocab_size", json_integer(h->n_vocab));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(h->tied));
    if (strcmp(a->name, "gpt2") == 0) {
        json_object_set_new(c, "model_type", json_string("gpt2"));
        json_object_set_new(c, "n_embd", json_integer(h->n_embd));
        json_object_set_new(c, "n_layer", json_integer(h->n_layer));
        json_object_set_new(c, "n_head", json_integer(h->n_head));
        json_object_set_new(c, "n_positions", json_integer(h->n_ctx_train));
        json_object_set_new(c, "n_ctx", json_integer(h->n_ctx_train));
        json_object_set_new(c, "n_inner", json_integer(h->n_ff));
        json_object_set_new(c, "layer_norm_epsilon", json_real(h->norm_eps));
        json_object_set_new(c, "activation_function", json_string("gelu_new"));
        return c;
    }
    const char *mt = a->hf_model_types;
    char first[32];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(mt, " "), mt);
    json_object_set_new(c, "model_type", json_string(first));
    json_object_set_new(c, "hidden_size", json_integer(h->n_embd));
    json_object_set_new(c, "intermediate_size", json_integer(h->n_ff));
    json_object_set_new(c, "num_hidden_layers", json_integer(h->n_layer));
    json_object_set_new(c, "num_attention_heads", json_integer(h->n_head));
    json_object_set_new(c, "num_key_value_heads", json_integer(h->n_head_kv));
    json_object_set_new(c, "head_dim", json_integer(h->head_dim));
    json_object_set_new(c, "max_position_embeddings", json_integer(h->n_ctx_train));
    json_object_set_new(c, "rms_norm_eps", json_real(h->norm_eps));
    json_object_set_new(c, "rope_theta", json_real(h->rope.base));
    if (h->rope.l3_factor > 0)
        json_object_set_new(c, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor", (double)h->rope.l3_factor,
                                      "low_freq_factor", (double)h->rope.l3_low_freq_factor, "high_freq_factor",
                                      (double)h->rope.l3_high_freq_factor, "original_max_position_embeddings",
                                      h->rope.l3_orig_ctx));
    else if (h->rope_linear_factor > 0 && h->rope_linear_factor != 1.0f)
        json_object_set_new(c, "rope_scaling",
                            json_pack("{s:s, s:f}", "rope_type", "linear", "factor", (double)h->rope_linear_factor));
    else
        json_object_set_new(c, "rope_scaling", json_null());
    if (a->act == ACT_GEGLU) {
        json_object_set_new(c, "hidden_activation", json_string("gelu_pytorch_tanh"));
    } else {
        json_object_set_new(c, "hidden_act", json_string("silu"));
    }
    json_object_set_new(c, "attention_bias", json_boolean(arch_tensor_get(a, TR_ATTN_Q_B) != NULL));
    if (a->swa) {
        json_object_set_new(c, "query_pre_attn_scalar",
                            json_real(h->query_pre_attn_scalar > 0 ? h->query_pre_attn_scalar : (float)h->head_dim));
        json_object_set_new(c, "sliding_window", json_integer(h->swa_window));
        json_object_set_new(c, "sliding_window_pattern", json_integer(h->swa_pattern));
        json_object_set_new(c, "rope_local_base_freq", json_real(h->rope_local.base));
        json_object_set_new(c, "final_logit_softcapping", h->final_softcap > 0 ? json_real(h->final_softcap) : json_null());
        json_object_set_new(c, "attn_logit_softcapping", json_null());
        json_t *lt = json_array();
        for (int il = 0; il < h->n_layer; il++)
            json_array_append_new(lt, json_string(m->layers[il].swa ? "sliding_attention" : "full_attention"));
        json_object_set_new(c, "layer_types", lt);
    }
    return c;
}

int model_save_hf(const sllm_model *m, const char *dir, int out_type) {
    const arch_desc *a = m->arch;
    const model_hparams *h = &m->hp;
    if (out_type >= 0 && out_type != DT_F32 && out_type != DT_F16 && out_type != DT_BF16)
        return err_set(SLLM_ERR_ARG, "%s: safetensors weights must be f32, f16 or bf16", dir);
    if (m->rope_factors && h->rope.l3_factor <= 0)
        return err_set(SLLM_ERR_UNSUPPORTED, "%s: rope_freqs.weight (llama.cpp rope factors) has no config.json form",
                       dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return err_set(SLLM_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    st_writer *w = st_writer_new();
    if (!w) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", dir);
    st_writer_meta(w, "format", "pt");
    buflist bl = {0};
    int rc = SLLM_OK;
    dtype cfg_type = out_type >= 0 ? (dtype)out_type : DT_F32;
    char name[160];
    for (const arch_tensor *t = a->tensors; t->role != TR_COUNT && !rc; t++) {
        if (!t->hf || (t->role == TR_OUTPUT && h->tied)) continue;
        int n = arch_role_is_layer(t->role) ? h->n_layer : 1;
        for (int il = 0; il < n; il++) {
            const mweight *src = role_weight(m, t->role, il);
            if (!src->data) continue;
            arch_tensor_name(name, sizeof name, t->hf, il);
            dtype to = out_type >= 0 ? (dtype)out_type
                       : (src->type == DT_F32 || src->type == DT_F16 || src->type == DT_BF16) ? src->type : DT_F32;
            if (out_type < 0 && t->role == TR_TOKEN_EMBD) cfg_type = to;
            const void *d;
            int64_t shape[2];
            int nd = 2;
            if (arch_role_is_vector(t->role)) {
                nd = 1;
                shape[0] = src->cols;
                float *v = keep(&bl, malloc((size_t)src->cols * sizeof(float)));
                uint8_t *o = keep(&bl, malloc((size_t)src->cols * 4));
                if (!v || !o) { rc = err_set(SLLM_ERR_NOMEM, "%s: out of memory", dir); break; }
                float sub = a->hf_norm_plus_one && role_is_norm(t->role) ? 1.0f : 0.0f;
                for (int64_t i = 0; i < src->cols; i++) v[i] = ((const float *)src->data)[i] - sub;
                quantize_row(to, v, o, src->cols);
                d = o;
            } else if (t->hf_transposed) {
                shape[0] = src->cols; shape[1] = src->rows;
                d = transpose_matrix(&bl, src, to);
            } else {
                shape[0] = src->rows; shape[1] = src->cols;
                int perm = a->gguf_permutes_qk && m->rope_style == ROPE_NORM &&
                           (t->role == TR_ATTN_Q || t->role == TR_ATTN_K) ? PERM_TO_NEOX : PERM_NONE;
                d = convert_matrix(&bl, NULL, src, to, perm, h->head_dim);
            }
            if (!d) { rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': conversion failed", dir, name); break; }
            st_writer_add(w, name, to, nd, shape, d);
        }
    }
    char path[4096];
    if (!rc) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = st_writer_write(w, path);
    }
    if (!rc) {
        json_t *cfg = hf_config(m, cfg_type);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (!cfg || json_dump_file(cfg, path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
            rc = err_set(SLLM_ERR_IO, "%s: cannot write", path);
        json_decref(cfg);
    }
    st_writer_free(w);
    buflist_free(&bl);
    return rc;
}

// ---------------------------------------------------------------- one-call helpers

int model_init_write_gguf(const char *preset, dtype type, uint64_t seed, const gguf_file *tokenizer_src,
                          const char *path) {
    model_init_opts o = {.preset = preset, .type = type, .seed = seed};
    sllm_model *m;
    int rc = model_init(&o, &m);
    if (rc) return rc;
    rc = model_save_gguf(m, path, -1, tokenizer_src);
    model_free(m);
    return rc;
}

int model_init_write_hf(const char *preset, dtype type, uint64_t seed, const char *dir) {
    if (type != DT_F32 && type != DT_F16 && type != DT_BF16)
        return err_set(SLLM_ERR_ARG, "%s: safetensors weights must be f32, f16 or bf16", dir);
    model_init_opts o = {.preset = preset, .type = type, .seed = seed};
    sllm_model *m;
    int rc = model_init(&o, &m);
    if (rc) return rc;
    rc = model_save_hf(m, dir, -1);
    model_free(m);
    return rc;
}
