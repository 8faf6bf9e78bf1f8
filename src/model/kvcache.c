// A session: the per-layer KV cache (f32, f16 or q8_0 rows) of one sequence plus every scratch buffer the forward pass
// needs for n_batch rows, allocated once so decoding a token allocates nothing.
// Cache layout per layer: K (n_ctx, Hkv, D) then V (n_ctx, Hkv, D) — position-major, so a prefill
// appends one block and a decode step's run of positions (every head) is one contiguous stream per
// K and V: the threads split the keys, not the heads (see forward.c attention_decode).
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "base/bigmem.h"
#include "model/model.h"

static size_t layer_kv_bytes(const model_session *s) {
    return dtype_row_bytes(s->kv_type, (int64_t)s->m->hp.n_head_kv * s->n_ctx * s->m->hp.head_dim);
}

void *model_session_k(model_session *s, int layer) { return (char *)s->kv + 2 * (size_t)layer * layer_kv_bytes(s); }
void *model_session_v(model_session *s, int layer) { return (char *)model_session_k(s, layer) + layer_kv_bytes(s); }

void model_session_free(model_session *s) {
    if (!s) return;
    bigmem_free(s->kv);
    free(s->x); free(s->xn); free(s->q); free(s->k); free(s->v); free(s->att); free(s->o);
    free(s->ff_a); free(s->ff_b); free(s->logits_tmp);
    free(s->pos); free(s->dec_f); free(s->dec_l);
    for (int i = 0; i < 2; i++) { free(s->rope_cs[i]); free(s->rope_sn[i]); }
    free(s);
}

int model_session_new(const sllm_model *m, int n_ctx, int n_batch, tpool *pool, model_session **out) {
    *out = NULL;
    const model_hparams *h = &m->hp;
    if (n_ctx <= 0) n_ctx = h->n_ctx_train < 4096 ? h->n_ctx_train : 4096;
    if (n_batch <= 0) n_batch = 64;
    if (n_batch > n_ctx) n_batch = n_ctx;
    model_session *s = calloc(1, sizeof *s);
    if (!s) return err_set(SLLM_ERR_NOMEM, "session: out of memory");
    s->m = m; s->pool = pool; s->n_ctx = n_ctx; s->n_batch = n_batch;
    s->kv_type = m->kv_type;
    size_t B = (size_t)n_batch, C = (size_t)h->n_embd, D = (size_t)h->head_dim;
    size_t qd = (size_t)h->n_head * D, kd = (size_t)h->n_head_kv * D;
    size_t ff = (size_t)h->n_ff;
    // huge pages: decode streams the whole cache every step (4 KiB pages cost a TLB miss per 8 rows)
    s->kv = bigmem_calloc(2 * (size_t)h->n_layer * layer_kv_bytes(s));
    s->x = malloc(B * C * sizeof(float));
    s->xn = malloc(B * C * sizeof(float));
    s->o = malloc(B * C * sizeof(float));
    s->q = malloc(B * qd * sizeof(float));
    s->att = malloc(B * qd * sizeof(float));
    s->k = malloc(B * kd * sizeof(float));
    s->v = malloc(B * kd * sizeof(float));
    s->ff_a = malloc(B * ff * sizeof(float));
    s->ff_b = malloc(B * ff * sizeof(float));
    s->logits_tmp = malloc((size_t)h->n_vocab * sizeof(float));
    s->pos = malloc(B * sizeof(int32_t));
    s->dec_runs = tpool_size(pool) < MAX_RUNS ? tpool_size(pool) : MAX_RUNS;
    s->dec_f = malloc((size_t)s->dec_runs * (2 * (size_t)h->n_head * D + (size_t)h->n_head) * sizeof(float));
    s->dec_l = malloc((size_t)s->dec_runs * (size_t)h->n_head * sizeof(double));
    for (int i = 0; i < 2; i++) {
        s->rope_cs[i] = malloc(B * (D / 2 + 1) * sizeof(float));
        s->rope_sn[i] = malloc(B * (D / 2 + 1) * sizeof(float));
    }
    if (!s->kv || !s->x || !s->xn || !s->o || !s->q || !s->att || !s->k || !s->v || !s->ff_a ||
        !s->ff_b || !s->logits_tmp || !s->pos || !s->dec_f || !s->dec_l || !s->rope_cs[0] || !s->rope_sn[0] || !s->rope_cs[1] ||
        !s->rope_sn[1]) {
        model_session_free(s);
        return err_set(SLLM_ERR_NOMEM, "session: out of memory for a %d-token KV cache (%zu bytes)", n_ctx,
                       model_kv_bytes(m, n_ctx));
    }
    *out = s;
    return SLLM_OK;
}

void model_session_reset(model_session *s) { s->n_past = 0; }

int model_session_truncate(model_session *s, int n) {
    if (n < 0 || n > s->n_past)
        return err_set(SLLM_ERR_ARG, "session: cannot truncate to %d tokens (holds %d)", n, s->n_past);
    s->n_past = n;
    return SLLM_OK;
}
