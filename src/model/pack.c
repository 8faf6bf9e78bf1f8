// model_pack: the matrices an inference session multiplies, repacked once into the layout this CPU's
// kernels stream fastest (tensor/matmul.h mm_pack), in one huge-page buffer owned by the model.
//
// Why at load and not per call: decode reads every weight once per token, so the cost of a layout that
// is awkward for the kernels (Q4_0 / Q8_0 blocks of 18 / 34 bytes, a scale in front of each) is paid on
// every byte of every token. Reordered once, a task's rows are one linear stream with 32-byte-aligned
// quants and the scales of 16 rows in one load, and prefill no longer unpacks panels per call.
#include <stdlib.h>
#include <string.h>
#include "base/bigmem.h"
#include "base/error.h"
#include "model/model.h"
#include "tensor/matmul.h"

// The weights forward.c multiplies: the output head and every per-layer matrix (not the token or
// position embeddings, which are read by row).
static int for_each_matrix(sllm_model *m, int (*fn)(mweight *w, void *ctx), void *ctx) {
    int rc = fn(&m->g[TR_OUTPUT], ctx);
    for (int il = 0; il < m->hp.n_layer && !rc; il++)
        for (int r = TR_LAYER_FIRST; r < TR_COUNT && !rc; r++)
            if (r != TR_ATTN_QKV) rc = fn(&m->layers[il].w[r], ctx);   // GPT-2: forward uses its q/k/v views
    return rc;
}

static size_t pack_size(const mweight *w) {
    if (!w->data || w->packed || w->rows <= 1) return 0;
    return (mm_pack_bytes(w->type, w->rows, w->cols) + 63) & ~(size_t)63;
}

static int add_size(mweight *w, void *ctx) {
    *(size_t *)ctx += pack_size(w);
    return 0;
}

typedef struct { sllm_model *m; tpool *pool; char *next; } pack_ctx;

static int pack_one(mweight *w, void *ctx) {
    pack_ctx *c = ctx;
    size_t n = pack_size(w);
    if (!n) return 0;
    if (mm_pack(c->pool, w->data, w->type, w->rows, w->cols, c->next)) return -1;
    w->packed = c->next;
    c->next += n;
    // the mapped source pages are not read again by inference: let them go from this process
    if (c->m->gguf) gguf_release(c->m->gguf, w->data, dtype_row_bytes(w->type, w->cols) * (size_t)w->rows);
    return 0;
}

int model_pack(sllm_model *m, tpool *pool) {
    const char *e = getenv("SLLM_PACK");
    if (!m || m->packed_mem || (e && !strcmp(e, "0"))) return SLLM_OK;
    size_t total = 0;
    for_each_matrix(m, add_size, &total);
    if (!total) return SLLM_OK;
    char *buf = bigmem_calloc(total);
    if (!buf) return err_set(SLLM_ERR_NOMEM, "%s: no memory for the packed weights (%zu MiB)", m->path, total >> 20);
    pack_ctx c = {.m = m, .pool = pool, .next = buf};
    m->packed_mem = buf;
    if (for_each_matrix(m, pack_one, &c)) return err_set(SLLM_ERR_NOMEM, "%s: packing the weights failed", m->path);
    return SLLM_OK;
}
