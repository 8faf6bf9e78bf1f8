// Byte-pair encoding of one pre-tokenized piece: repeatedly merge the adjacent pair with the
// lowest merge rank (ties: leftmost), using a binary heap of candidate pairs over a linked list of
// symbols, so a piece of n characters costs O(n log n) instead of O(n^2) rescans.
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "text/tokenizer_impl.h"

typedef struct { int32_t id; int prev, next; } bpe_sym;
typedef struct { int32_t rank; int pos; int32_t lid, rid; } bpe_cand;

static bool cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

typedef struct { bpe_cand *v; size_t n, cap; } bpe_heap;

static int heap_push(bpe_heap *h, bpe_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        bpe_cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return SLLM_ERR_NOMEM;
        h->v = v; h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return SLLM_OK;
}

static bpe_cand heap_pop(bpe_heap *h) {
    bpe_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bpe_cand *best = &last;
        if (l < h->n && cand_less(&h->v[l], best)) { m = l; best = &h->v[l]; }
        if (r < h->n && cand_less(&h->v[r], best)) { m = r; }
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static int try_pair(const tok *t, bpe_heap *h, const bpe_sym *s, int left) {
    if (left < 0 || s[left].next < 0) return SLLM_OK;
    const tok_pmap_ent *e = tok_pmap_get(&t->merges, s[left].id, s[s[left].next].id);
    if (!e) return SLLM_OK;
    bpe_cand c = { e->rank, left, s[left].id, s[s[left].next].id };
    return heap_push(h, c);
}

int tok_bpe_piece(const tok *t, const char *s, size_t n, tok_ids *out) {
    if (!n) return SLLM_OK;
    if (t->ignore_merges) {
        int32_t id = tok_smap_get(&t->vocab, s, n);
        if (id >= 0) return tok_ids_push(out, id) ? err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory") : SLLM_OK;
    }
    bpe_sym *sym = malloc((n + 1) * sizeof *sym);
    if (!sym) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    int ns = 0;
    for (size_t i = 0; i < n;) {
        size_t bad;
        int l = tok_utf8_next((const uint8_t *)s + i, n - i, &bad);
        if (l <= 0) l = 1;   // pieces come from validated text; be safe anyway
        int32_t id = tok_smap_get(&t->vocab, s + i, (size_t)l);
        if (id >= 0) {
            sym[ns++].id = id;
        } else {
            bool all = t->byte_fallback;
            for (int k = 0; k < l && all; k++) all = t->byte_tok[(uint8_t)s[i + k]] >= 0;
            if (all) {
                // Each byte gets its own <0xNN> symbol (at most n symbols in all).
                for (int k = 0; k < l; k++) sym[ns++].id = t->byte_tok[(uint8_t)s[i + k]];
            } else if (t->unk >= 0) {
                sym[ns++].id = t->unk;
            }   // else: no way to represent this character; it is dropped
        }
        i += (size_t)l;
    }
    int rc = SLLM_OK;
    if (ns == 1) {
        rc = tok_ids_push(out, sym[0].id);
        free(sym);
        return rc ? err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory") : SLLM_OK;
    }
    for (int i = 0; i < ns; i++) { sym[i].prev = i - 1; sym[i].next = i + 1 < ns ? i + 1 : -1; }
    bpe_heap h = {0};
    for (int i = 0; i + 1 < ns && !rc; i++) rc = try_pair(t, &h, sym, i);
    while (h.n && !rc) {
        bpe_cand c = heap_pop(&h);
        bpe_sym *L = &sym[c.pos];
        // Stale candidate: the left symbol was absorbed (id -1) or either side changed.
        if (L->id != c.lid || L->next < 0 || sym[L->next].id != c.rid) continue;
        const tok_pmap_ent *e = tok_pmap_get(&t->merges, c.lid, c.rid);
        int r = L->next;
        L->id = e->result;
        L->next = sym[r].next;
        if (L->next >= 0) sym[L->next].prev = c.pos;
        sym[r].id = -1;
        rc = try_pair(t, &h, sym, L->prev);
        if (!rc) rc = try_pair(t, &h, sym, c.pos);
    }
    for (int i = 0; i >= 0 && !rc; i = sym[i].next)
        if (tok_ids_push(out, sym[i].id)) rc = SLLM_ERR_NOMEM;
    free(h.v);
    free(sym);
    return rc ? err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory") : SLLM_OK;
}
