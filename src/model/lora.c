// LoRA adapters (see lora.h): creation, names in both file conventions, inference application
// inside the forward's matmul helper, and merging into the weights.
#include "model/lora.h"
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "base/rng.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"

// Target bit -> adapted role, in PEFT's module order.
static const struct { unsigned bit; tensor_role role; const char *name; } k_targets[] = {
    {LORA_Q, TR_ATTN_Q, "q"}, {LORA_K, TR_ATTN_K, "k"}, {LORA_V, TR_ATTN_V, "v"}, {LORA_O, TR_ATTN_OUT, "o"},
    {LORA_GATE, TR_FFN_GATE, "gate"}, {LORA_UP, TR_FFN_UP, "up"}, {LORA_DOWN, TR_FFN_DOWN, "down"},
};
#define N_TARGETS (int)(sizeof k_targets / sizeof k_targets[0])

int lora_parse_targets(const char *list, unsigned *mask) {
    static const struct { const char *name; unsigned bits; } words[] = {
        {"q", LORA_Q}, {"k", LORA_K}, {"v", LORA_V}, {"o", LORA_O}, {"gate", LORA_GATE}, {"up", LORA_UP},
        {"down", LORA_DOWN}, {"q_proj", LORA_Q}, {"k_proj", LORA_K}, {"v_proj", LORA_V}, {"o_proj", LORA_O},
        {"gate_proj", LORA_GATE}, {"up_proj", LORA_UP}, {"down_proj", LORA_DOWN},
        {"c_attn", LORA_Q | LORA_K | LORA_V}, {"c_proj", LORA_O | LORA_DOWN}, {"c_fc", LORA_UP},
        {"attn", LORA_ATTN}, {"mlp", LORA_MLP}, {"all", LORA_ALL}, {"all-linear", LORA_ALL},
    };
    unsigned m = 0;
    if (!list) return err_set(SLLM_ERR_ARG, "lora: no target modules given");
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        size_t n = strcspn(p, ", ");
        if (!n) break;
        bool found = false;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            if (strlen(words[i].name) == n && strncmp(words[i].name, p, n) == 0) { m |= words[i].bits; found = true; }
        if (!found)
            return err_set(SLLM_ERR_ARG,
                           "lora: unknown target module '%.*s' (known: q,k,v,o,gate,up,down, *_proj, c_attn, "
                           "c_proj, c_fc, attn, mlp, all)", (int)n, p);
        p += n;
    }
    if (!m) return err_set(SLLM_ERR_ARG, "lora: empty target module list '%s'", list);
    *mask = m;
    return SLLM_OK;
}

float lora_scaling(const lora_config *cfg) {
    float alpha = cfg->alpha > 0 ? cfg->alpha : (float)cfg->r;
    return cfg->rslora ? alpha / sqrtf((float)cfg->r) : alpha / (float)cfg->r;
}

// The stored role a target bit adapts in this architecture (GPT-2's q/k/v -> fused c_attn), or TR_COUNT.
static tensor_role target_role(const arch_desc *a, int i) {
    tensor_role r = k_targets[i].role;
    if ((r == TR_ATTN_Q || r == TR_ATTN_K || r == TR_ATTN_V) && arch_tensor_get(a, TR_ATTN_QKV)) r = TR_ATTN_QKV;
    return arch_tensor_get(a, r) ? r : TR_COUNT;
}

// PEFT and llama.cpp names of one pair's A / B.
static void pair_names(const arch_desc *a, tensor_role role, int layer, bool is_A, char *peft, size_t np,
                       char *gg, size_t ng) {
    const arch_tensor *t = arch_tensor_get(a, role);
    char base[200];
    arch_tensor_name(base, sizeof base, t->hf ? t->hf : t->gguf, layer);
    size_t bl = strlen(base);
    if (bl > 7 && strcmp(base + bl - 7, ".weight") == 0) base[bl - 7] = 0;
    // The arch table holds GPT-2's HF names without their module root ("h.0.attn.c_attn"); PEFT's
    // GPT2LMHeadModel path puts "transformer." in front.
    const char *root = strncmp(base, "model.", 6) == 0 ? "" : "transformer.";
    snprintf(peft, np, "base_model.model.%s%s.lora_%s.weight", root, base, is_A ? "A" : "B");
    arch_tensor_name(base, sizeof base, t->gguf, layer);
    snprintf(gg, ng, "%s.lora_%s", base, is_A ? "a" : "b");
}

void lora_free(lora_adapter *ad) {
    if (!ad) return;
    for (int i = 0; i < ad->n_pairs; i++) { free(ad->pairs[i].A); free(ad->pairs[i].B); }
    if (ad->names)
        for (int i = 0; i < 4 * ad->n_pairs; i++) free(ad->names[i]);
    free(ad->names);
    free(ad->pairs);
    free(ad->index);
    free(ad);
}

// An empty adapter with a pair (A, B zeroed) for each (layer, role) with want[layer*TR_COUNT+role].
static int adapter_alloc(const sllm_model *m, const lora_config *cfg, const bool *want, lora_adapter **out) {
    const model_hparams *h = &m->hp;
    lora_adapter *ad = calloc(1, sizeof *ad);
    if (!ad) return err_set(SLLM_ERR_NOMEM, "lora: out of memory");
    ad->cfg = *cfg;
    if (ad->cfg.alpha <= 0) ad->cfg.alpha = (float)cfg->r;
    ad->scaling = lora_scaling(&ad->cfg);
    ad->arch = m->arch;
    ad->n_layer = h->n_layer;
    ad->n_embd = h->n_embd;
    ad->qd = (int64_t)h->n_head * h->head_dim;
    ad->kd = (int64_t)h->n_head_kv * h->head_dim;
    size_t nidx = (size_t)h->n_layer * TR_COUNT;
    int n = 0;
    for (size_t i = 0; i < nidx; i++) n += want[i];
    ad->index = malloc(nidx * sizeof *ad->index);
    ad->pairs = calloc((size_t)(n ? n : 1), sizeof *ad->pairs);
    ad->names = calloc((size_t)(n ? 4 * n : 1), sizeof *ad->names);
    if (!ad->index || !ad->pairs || !ad->names) { lora_free(ad); return err_set(SLLM_ERR_NOMEM, "lora: out of memory"); }
    int r = cfg->r;
    for (int il = 0; il < h->n_layer; il++)
        for (int role = 0; role < TR_COUNT; role++) {
            size_t ix = (size_t)il * TR_COUNT + (size_t)role;
            ad->index[ix] = -1;
            if (!want[ix]) continue;
            const mweight *w = &m->layers[il].w[role];
            lora_pair *p = &ad->pairs[ad->n_pairs];
            p->role = (tensor_role)role;
            p->layer = il;
            p->N = w->rows;
            p->K = w->cols;
            p->A = calloc((size_t)(r * p->K), sizeof(float));
            p->B = calloc((size_t)(p->N * r), sizeof(float));
            char pa[300], ga[300];
            char **nm = &ad->names[4 * ad->n_pairs];
            ad->index[ix] = ad->n_pairs++;
            if (!p->A || !p->B) { lora_free(ad); return err_set(SLLM_ERR_NOMEM, "lora: out of memory"); }
            for (int isA = 1; isA >= 0; isA--) {
                pair_names(m->arch, p->role, il, isA, pa, sizeof pa, ga, sizeof ga);
                nm[isA ? 0 : 1] = strdup(pa);
                nm[isA ? 2 : 3] = strdup(ga);
            }
            if (!nm[0] || !nm[1] || !nm[2] || !nm[3]) { lora_free(ad); return err_set(SLLM_ERR_NOMEM, "lora: out of memory"); }
        }
    // the effective target mask: the bits whose module this adapter actually holds
    ad->cfg.targets = 0;
    for (int i = 0; i < ad->n_pairs; i++)
        for (int b = 0; b < N_TARGETS; b++)
            if (target_role(m->arch, b) == ad->pairs[i].role) ad->cfg.targets |= k_targets[b].bit;
    *out = ad;
    return SLLM_OK;
}

static int check_cfg(const lora_config *cfg, bool need_r) {
    if (need_r && (cfg->r < 1 || cfg->r > 65536)) return err_set(SLLM_ERR_ARG, "lora: rank r=%d must be in [1, 65536]", cfg->r);
    if (!(cfg->dropout >= 0 && cfg->dropout < 1))
        return err_set(SLLM_ERR_ARG, "lora: dropout %g must be in [0, 1)", (double)cfg->dropout);
    if (!isfinite(cfg->alpha)) return err_set(SLLM_ERR_ARG, "lora: alpha is not finite");
    return SLLM_OK;
}

int lora_new(const sllm_model *m, const lora_config *cfg, uint64_t seed, lora_adapter **out) {
    *out = NULL;
    int rc = check_cfg(cfg, true);
    if (rc) return rc;
    if (!(cfg->targets & LORA_ALL)) return err_set(SLLM_ERR_ARG, "lora: no target modules selected");
    size_t nidx = (size_t)m->hp.n_layer * TR_COUNT;
    bool *want = calloc(nidx, sizeof *want);
    if (!want) return err_set(SLLM_ERR_NOMEM, "lora: out of memory");
    int n = 0;
    for (int i = 0; i < N_TARGETS; i++) {
        if (!(cfg->targets & k_targets[i].bit)) continue;
        tensor_role r = target_role(m->arch, i);
        if (r == TR_COUNT) continue;
        for (int il = 0; il < m->hp.n_layer; il++)
            if (m->layers[il].w[r].data && !want[(size_t)il * TR_COUNT + r]) { want[(size_t)il * TR_COUNT + r] = true; n++; }
    }
    if (!n) {
        free(want);
        return err_set(SLLM_ERR_ARG, "lora: none of the selected target modules exists in a %s model", m->arch->name);
    }
    lora_adapter *ad;
    rc = adapter_alloc(m, cfg, want, &ad);
    free(want);
    if (rc) return rc;
    rng_state rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < ad->n_pairs; i++) {
        lora_pair *p = &ad->pairs[i];
        float bound = 1.0f / sqrtf((float)p->K);
        for (int64_t j = 0; j < (int64_t)cfg->r * p->K; j++) p->A[j] = (2.0f * rng_float(&rng) - 1.0f) * bound;
    }
    *out = ad;
    return SLLM_OK;
}

int64_t lora_n_params(const lora_adapter *ad) {
    int64_t n = 0;
    for (int i = 0; i < ad->n_pairs; i++) n += (int64_t)ad->cfg.r * (ad->pairs[i].K + ad->pairs[i].N);
    return n;
}

int lora_check_model(const sllm_model *m, const lora_adapter *ad) {
    if (ad->arch != m->arch || ad->n_layer != m->hp.n_layer || ad->n_embd != m->hp.n_embd ||
        ad->qd != (int64_t)m->hp.n_head * m->hp.head_dim || ad->kd != (int64_t)m->hp.n_head_kv * m->hp.head_dim)
        return err_set(SLLM_ERR_SHAPE, "lora: adapter for %s (%d layers, n_embd %d) does not fit %s model '%s' (%d layers, n_embd %d)",
                       ad->arch->name, ad->n_layer, ad->n_embd, m->arch->name, m->path ? m->path : "?",
                       m->hp.n_layer, m->hp.n_embd);
    for (int i = 0; i < ad->n_pairs; i++) {
        const lora_pair *p = &ad->pairs[i];
        const mweight *w = &m->layers[p->layer].w[p->role];
        if (!w->data || w->rows != p->N || w->cols != p->K)
            return err_set(SLLM_ERR_SHAPE, "lora: %s is (%lld, %lld) but the model's weight is (%lld, %lld)",
                           ad->names[4 * i + 2], (long long)p->N, (long long)p->K, (long long)w->rows, (long long)w->cols);
    }
    return SLLM_OK;
}

const lora_pair *lora_find(const lora_adapter *ad, int layer, tensor_role role, int64_t *row_off) {
    if (layer < 0 || layer >= ad->n_layer || role < TR_LAYER_FIRST || role >= TR_COUNT) return NULL;
    int ix = ad->index[(size_t)layer * TR_COUNT + role];
    *row_off = 0;
    if (ix >= 0) return &ad->pairs[ix];
    if (role != TR_ATTN_Q && role != TR_ATTN_K && role != TR_ATTN_V) return NULL;
    ix = ad->index[(size_t)layer * TR_COUNT + TR_ATTN_QKV];
    if (ix < 0) return NULL;
    // fused rows q | k | v
    *row_off = role == TR_ATTN_Q ? 0 : role == TR_ATTN_K ? ad->qd : ad->qd + ad->kd;
    return &ad->pairs[ix];
}

int lora_attach(sllm_model *m, lora_adapter *ad, float scale) {
    int rc = lora_check_model(m, ad);
    if (rc) return rc;
    for (int i = 0; i < m->n_lora; i++)
        if (m->lora[i] == ad) { m->lora_scale[i] = scale; return SLLM_OK; }
    if (m->n_lora >= MODEL_MAX_LORA)
        return err_set(SLLM_ERR_ARG, "lora: at most %d adapters can be attached at once", MODEL_MAX_LORA);
    m->lora[m->n_lora] = ad;
    m->lora_scale[m->n_lora] = scale;
    m->n_lora++;
    return SLLM_OK;
}

int lora_detach(sllm_model *m, const lora_adapter *ad) {
    for (int i = 0; i < m->n_lora; i++)
        if (m->lora[i] == ad) {
            for (int j = i + 1; j < m->n_lora; j++) { m->lora[j - 1] = m->lora[j]; m->lora_scale[j - 1] = m->lora_scale[j]; }
            m->n_lora--;
            m->lora[m->n_lora] = NULL;
            return SLLM_OK;
        }
    return err_set(SLLM_ERR_ARG, "lora: adapter is not attached to this model");
}

// The (layer, role) of weight w when it is one of m->layers[].w, found by address: forward.c's
// matmul helper passes only the weight.
static bool weight_slot(const sllm_model *m, const mweight *w, int *layer, tensor_role *role) {
    uintptr_t p = (uintptr_t)w, b = (uintptr_t)m->layers;
    uintptr_t e = b + (uintptr_t)m->hp.n_layer * sizeof(model_layer);
    if (!m->layers || p < b || p >= e) return false;
    uintptr_t off = p - b;
    uintptr_t in = off % sizeof(model_layer) - offsetof(model_layer, w);   // wraps when before w[]
    if (in >= sizeof(mweight) * TR_COUNT) return false;
    *layer = (int)(off / sizeof(model_layer));
    *role = (tensor_role)(in / sizeof(mweight));
    return true;
}

int lora_apply(const sllm_model *m, const mweight *w, const float *X, int64_t T, float *Y, tpool *pool) {
    int il;
    tensor_role role;
    if (!m->n_lora || T <= 0 || !weight_slot(m, w, &il, &role)) return SLLM_OK;
    float *h = NULL;
    size_t cap = 0;
    int rc = SLLM_OK;
    for (int a = 0; a < m->n_lora && !rc; a++) {
        const lora_adapter *ad = m->lora[a];
        int64_t off;
        const lora_pair *p = lora_find(ad, il, role, &off);
        if (!p) continue;
        int r = ad->cfg.r;
        size_t need = (size_t)T * (size_t)r;
        if (need > cap) {
            free(h);
            h = malloc(need * sizeof(float));
            cap = need;
            if (!h) return err_set(SLLM_ERR_NOMEM, "lora: out of memory");
        }
        // h (T, r) = X · A^T * scale ; Y += h · B[off : off + rows]^T
        if (mm_matmul(pool, p->A, DT_F32, r, p->K, X, T, NULL, h)) { rc = err_set(SLLM_ERR_UNSUPPORTED, "lora: matmul failed"); break; }
        float s = m->lora_scale[a] * ad->scaling;
        for (size_t i = 0; i < need; i++) h[i] *= s;
        if (mm_matmul_acc(pool, p->B + off * r, DT_F32, w->rows, r, h, T, Y)) {
            rc = err_set(SLLM_ERR_UNSUPPORTED, "lora: matmul failed");
            break;
        }
    }
    free(h);
    return rc;
}

int lora_merge(sllm_model *m, const lora_adapter *ad, float scale) {
    int rc = lora_check_model(m, ad);
    if (rc) return rc;
    int r = ad->cfg.r;
    float s = scale * ad->scaling;
    for (int i = 0; i < ad->n_pairs; i++) {
        const lora_pair *p = &ad->pairs[i];
        mweight *w = &m->layers[p->layer].w[p->role];
        size_t rb = dtype_row_bytes(w->type, w->cols);
        float *d = model_own(m, malloc((size_t)(p->N * p->K) * sizeof(float)));
        if (!d) return err_set(SLLM_ERR_NOMEM, "lora: merge: out of memory");
        for (int64_t n = 0; n < p->N; n++) {
            float *row = d + n * p->K;
            if (dequantize_row_fast(w->type, (const char *)w->data + rb * (size_t)n, row, p->K))
                return err_set(SLLM_ERR_UNSUPPORTED, "lora: merge: %s: weight dtype %d cannot be dequantized",
                               ad->names[4 * i + 2], (int)w->type);
            for (int j = 0; j < r; j++) {
                float b = p->B[n * r + j] * s;
                if (b == 0) continue;
                const float *a = p->A + (int64_t)j * p->K;
                for (int64_t k = 0; k < p->K; k++) row[k] += b * a[k];
            }
        }
        *w = MWEIGHT(d, DT_F32, p->N, p->K);
    }
    model_bind_views(m);   // GPT-2's q/k/v views of the (new) fused weight
    for (int i = 0; i < m->n_lora; i++)
        if (m->lora[i] == ad) { lora_detach(m, ad); break; }
    return SLLM_OK;
}

int lora_tensor_count(const lora_adapter *ad) { return 2 * ad->n_pairs; }

int lora_tensor_get(const lora_adapter *ad, int i, lora_tensor *out) {
    if (i < 0 || i >= 2 * ad->n_pairs)
        return err_set(SLLM_ERR_ARG, "lora: tensor index %d outside [0, %d)", i, 2 * ad->n_pairs);
    const lora_pair *p = &ad->pairs[i / 2];
    bool isA = i % 2 == 0;
    *out = (lora_tensor){.peft_name = ad->names[4 * (i / 2) + (isA ? 0 : 1)],
                         .gguf_name = ad->names[4 * (i / 2) + (isA ? 2 : 3)], .role = p->role, .layer = p->layer,
                         .is_A = isA, .data = isA ? p->A : p->B, .rows = isA ? ad->cfg.r : p->N,
                         .cols = isA ? p->K : ad->cfg.r};
    return SLLM_OK;
}

// Which (layer, role, A/B) a tensor name denotes in either convention; false when none.
static bool parse_name(const sllm_model *m, const char *name, int *layer, tensor_role *role, bool *isA) {
    char peft[300], gg[300];
    for (int i = 0; i < N_TARGETS; i++) {
        tensor_role r = target_role(m->arch, i);
        if (r == TR_COUNT) continue;
        for (int il = 0; il < m->hp.n_layer; il++)
            for (int a = 0; a < 2; a++) {
                pair_names(m->arch, r, il, a, peft, sizeof peft, gg, sizeof gg);
                // PEFT files may also omit "base_model.model."
                const char *short_peft = peft + strlen("base_model.model.");
                if (!strcmp(name, peft) || !strcmp(name, gg) || !strcmp(name, short_peft)) {
                    *layer = il; *role = r; *isA = a;
                    return true;
                }
            }
    }
    return false;
}

int lora_from_tensors(const sllm_model *m, const lora_config *cfg, const lora_named_tensor *t, int n,
                      lora_adapter **out) {
    *out = NULL;
    int rc = check_cfg(cfg, false);
    if (rc) return rc;
    if (n <= 0) return err_set(SLLM_ERR_FORMAT, "lora: the adapter holds no tensors");
    size_t nidx = (size_t)m->hp.n_layer * TR_COUNT;
    int *ia = malloc(nidx * sizeof *ia), *ib = malloc(nidx * sizeof *ib);
    bool *want = calloc(nidx, sizeof *want);
    if (!ia || !ib || !want) { free(ia); free(ib); free(want); return err_set(SLLM_ERR_NOMEM, "lora: out of memory"); }
    for (size_t i = 0; i < nidx; i++) ia[i] = ib[i] = -1;
    lora_config c = *cfg;
    c.targets = 0;
    for (int i = 0; i < n && !rc; i++) {
        int il;
        tensor_role role;
        bool isA;
        if (!t[i].name || !parse_name(m, t[i].name, &il, &role, &isA)) {
            rc = err_set(SLLM_ERR_FORMAT, "lora: tensor '%s' is not a LoRA A/B of a %s projection",
                         t[i].name ? t[i].name : "(null)", m->arch->name);
            break;
        }
        size_t ix = (size_t)il * TR_COUNT + role;
        int *slot = isA ? &ia[ix] : &ib[ix];
        if (*slot >= 0) { rc = err_set(SLLM_ERR_FORMAT, "lora: tensor '%s' appears twice", t[i].name); break; }
        *slot = i;
        want[ix] = true;
        const mweight *w = &m->layers[il].w[role];
        int64_t rr = isA ? t[i].rows : t[i].cols;
        if (c.r <= 0) c.r = (int)rr;
        if (!t[i].data || rr != c.r || (isA ? t[i].cols != w->cols : t[i].rows != w->rows))
            rc = err_set(SLLM_ERR_SHAPE, "lora: tensor '%s' is (%lld, %lld), expected (%lld, %lld) for rank %d", t[i].name,
                         (long long)t[i].rows, (long long)t[i].cols, (long long)(isA ? c.r : w->rows),
                         (long long)(isA ? w->cols : c.r), c.r);
    }
    for (size_t i = 0; i < nidx && !rc; i++)
        if (want[i] && (ia[i] < 0 || ib[i] < 0))
            rc = err_set(SLLM_ERR_FORMAT, "lora: tensor '%s' has no matching lora_%s", t[ia[i] >= 0 ? ia[i] : ib[i]].name,
                         ia[i] >= 0 ? "B" : "A");
    if (!rc && (c.r < 1 || c.r > 65536)) rc = err_set(SLLM_ERR_FORMAT, "lora: rank %d out of range", c.r);
    lora_adapter *ad = NULL;
    if (!rc) rc = adapter_alloc(m, &c, want, &ad);
    for (int i = 0; !rc && i < ad->n_pairs; i++) {
        lora_pair *p = &ad->pairs[i];
        size_t ix = (size_t)p->layer * TR_COUNT + p->role;
        memcpy(p->A, t[ia[ix]].data, (size_t)(c.r * p->K) * sizeof(float));
        memcpy(p->B, t[ib[ix]].data, (size_t)(p->N * c.r) * sizeof(float));
    }
    free(ia); free(ib); free(want);
    if (rc) { lora_free(ad); return rc; }
    *out = ad;
    return SLLM_OK;
}
