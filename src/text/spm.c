// SentencePiece-style merging for GGUF "llama" vocabularies: start from UTF-8 characters and
// repeatedly merge the adjacent pair whose concatenation is the vocabulary token with the highest
// score (ties: leftmost); characters that never form a token fall back to <0xNN> byte tokens.
// Control, unknown, unused and byte tokens never take part in merges (as in sentencepiece).
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "text/tokenizer_impl.h"

typedef struct { size_t off, n; int prev, next; } spm_sym;
typedef struct { float score; int left, right; size_t size; } spm_cand;

static bool cand_before(const spm_cand *a, const spm_cand *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct { spm_cand *v; size_t n, cap; } spm_heap;

static int heap_push(spm_heap *h, spm_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        spm_cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return SLLM_ERR_NOMEM;
        h->v = v; h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return SLLM_OK;
}

static spm_cand heap_pop(spm_heap *h) {
    spm_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const spm_cand *best = &last;
        if (l < h->n && cand_before(&h->v[l], best)) { m = l; best = &h->v[l]; }
        if (r < h->n && cand_before(&h->v[r], best)) { m = r; }
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static int32_t lookup(const tok *t, const char *s, size_t n) {
    int32_t id = tok_smap_get(&t->vocab, s, n);
    if (id < 0) return -1;
    uint8_t ty = t->types[id];
    if (ty == TOK_T_CONTROL || ty == TOK_T_UNKNOWN || ty == TOK_T_UNUSED || ty == TOK_T_BYTE) return -1;
    return id;
}

static int try_pair(const tok *t, spm_heap *h, const char *s, const spm_sym *sym, int left, int right) {
    if (left < 0 || right < 0) return SLLM_OK;
    size_t size = sym[left].n + sym[right].n;
    int32_t id = lookup(t, s + sym[left].off, size);
    if (id < 0) return SLLM_OK;
    spm_cand c = { t->scores ? t->scores[id] : 0.0f, left, right, size };
    return heap_push(h, c);
}

int tok_spm_piece(const tok *t, const char *s, size_t n, tok_ids *out) {
    if (!n) return SLLM_OK;
    spm_sym *sym = malloc(n * sizeof *sym);
    if (!sym) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    int ns = 0;
    for (size_t i = 0; i < n;) {
        size_t bad;
        int l = tok_utf8_next((const uint8_t *)s + i, n - i, &bad);
        if (l <= 0) l = 1;
        sym[ns].off = i; sym[ns].n = (size_t)l; sym[ns].prev = ns - 1; sym[ns].next = -1;
        if (ns) sym[ns - 1].next = ns;
        ns++;
        i += (size_t)l;
    }
    spm_heap h = {0};
    int rc = SLLM_OK;
    for (int i = 1; i < ns && !rc; i++) rc = try_pair(t, &h, s, sym, i - 1, i);
    while (h.n && !rc) {
        spm_cand c = heap_pop(&h);
        spm_sym *L = &sym[c.left], *R = &sym[c.right];
        if (L->n == 0 || R->n == 0 || L->next != c.right || L->n + R->n != c.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = c.left;
        rc = try_pair(t, &h, s, sym, L->prev, c.left);
        if (!rc) rc = try_pair(t, &h, s, sym, c.left, L->next);
    }
    for (int i = 0; i >= 0 && !rc; i = sym[i].next) {
        int32_t id = lookup(t, s + sym[i].off, sym[i].n);
        if (id >= 0) { if (tok_ids_push(out, id)) rc = SLLM_ERR_NOMEM; continue; }
        for (size_t k = 0; k < sym[i].n && !rc; k++) {
            int32_t b = t->byte_tok[(uint8_t)s[sym[i].off + k]];
            if (b < 0) b = t->unk;
            if (b >= 0 && tok_ids_push(out, b)) rc = SLLM_ERR_NOMEM;
            if (b == t->unk) break;   // one <unk> for the whole character
        }
    }
    free(h.v);
    free(sym);
    return rc ? err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory") : SLLM_OK;
}
