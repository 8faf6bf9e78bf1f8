// Tokenizer core: building from a tok_desc, encoding (added-token split -> normalize ->
// pre-tokenize -> BPE/SPM -> BOS/EOS), decoding, streaming decode, and the GGUF loader.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "text/tokenizer_impl.h"

#define NOMEM() err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory")

// ---- small containers ----
int tok_buf_put(tok_buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return SLLM_ERR_NOMEM;
        b->p = p; b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return SLLM_OK;
}
void tok_buf_free(tok_buf *b) { free(b->p); memset(b, 0, sizeof *b); }

int tok_pieces_add(tok_pieces *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        size_t *o = realloc(l->off, cap * sizeof *o);
        if (!o) return SLLM_ERR_NOMEM;
        l->off = o;
        size_t *q = realloc(l->len, cap * sizeof *q);
        if (!q) return SLLM_ERR_NOMEM;
        l->len = q; l->cap = cap;
    }
    l->off[l->n] = l->buf.n;
    l->len[l->n] = n;
    if (tok_buf_put(&l->buf, s, n)) return SLLM_ERR_NOMEM;
    l->n++;
    return SLLM_OK;
}
void tok_pieces_clear(tok_pieces *l) { l->n = 0; l->buf.n = 0; }
void tok_pieces_free(tok_pieces *l) { tok_buf_free(&l->buf); free(l->off); free(l->len); memset(l, 0, sizeof *l); }

int tok_ids_push(tok_ids *a, int32_t id) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return SLLM_ERR_NOMEM;
        a->v = v; a->cap = cap;
    }
    a->v[a->n++] = id;
    return SLLM_OK;
}

static uint64_t hash_bytes(const char *s, size_t n) {   // FNV-1a
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 1099511628211ull; }
    return h;
}

int tok_smap_put(tok_smap *m, const char *key, uint32_t len, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        tok_smap_ent *e = calloc(cap, sizeof *e);
        if (!e) return SLLM_ERR_NOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].key) continue;
            size_t j = hash_bytes(m->e[i].key, m->e[i].len) & (cap - 1);
            while (e[j].key) j = (j + 1) & (cap - 1);
            e[j] = m->e[i];
        }
        free(m->e);
        m->e = e; m->cap = cap;
    }
    size_t j = hash_bytes(key, len) & (m->cap - 1);
    while (m->e[j].key) {
        if (m->e[j].len == len && !memcmp(m->e[j].key, key, len)) return SLLM_OK;
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = key; m->e[j].len = len; m->e[j].val = val;
    m->n++;
    return SLLM_OK;
}

int32_t tok_smap_get(const tok_smap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    size_t j = hash_bytes(key, len) & (m->cap - 1);
    while (m->e[j].key) {
        if (m->e[j].len == len && !memcmp(m->e[j].key, key, len)) return m->e[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}
void tok_smap_free(tok_smap *m) { free(m->e); memset(m, 0, sizeof *m); }

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

// A later duplicate of the same pair overrides the earlier rank, as in HF tokenizers.
int tok_pmap_put(tok_pmap *m, int32_t a, int32_t b, int32_t rank, int32_t result) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        tok_pmap_ent *e = malloc(cap * sizeof *e);
        if (!e) return SLLM_ERR_NOMEM;
        for (size_t i = 0; i < cap; i++) e[i].rank = -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->e[i].rank < 0) continue;
            size_t j = hash_u64(m->e[i].key) & (cap - 1);
            while (e[j].rank >= 0) j = (j + 1) & (cap - 1);
            e[j] = m->e[i];
        }
        free(m->e);
        m->e = e; m->cap = cap;
    }
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t j = hash_u64(key) & (m->cap - 1);
    while (m->e[j].rank >= 0) {
        if (m->e[j].key == key) { m->e[j].rank = rank; m->e[j].result = result; return SLLM_OK; }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = key; m->e[j].rank = rank; m->e[j].result = result;
    m->n++;
    return SLLM_OK;
}

const tok_pmap_ent *tok_pmap_get(const tok_pmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t j = hash_u64(key) & (m->cap - 1);
    while (m->e[j].rank >= 0) {
        if (m->e[j].key == key) return &m->e[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}
void tok_pmap_free(tok_pmap *m) { free(m->e); memset(m, 0, sizeof *m); }

// Hand-written rather than utf8proc_iterate: we need the WHATWG "maximal subpart" length of an
// invalid sequence (so streaming and full decoding replace it identically) and the difference
// between "invalid" and "incomplete so far".
int tok_utf8_next(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else { *bad = 1; return 0; }
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) return -1;
        uint8_t d = s[k];
        if (d < lo || d > hi) { *bad = (size_t)k; return 0; }
        lo = 0x80; hi = 0xBF;
    }
    return need + 1;
}

// Appends `s` to `o`, replacing invalid sequences by U+FFFD; returns the count of trailing bytes
// left unconsumed because they are an incomplete (but so far valid) sequence, unless `final`.
static size_t utf8_sanitize(const char *s, size_t n, bool final, tok_buf *o, int *rc) {
    size_t i = 0, run = 0;
    while (i < n) {
        size_t bad = 0;
        int l = tok_utf8_next((const uint8_t *)s + i, n - i, &bad);
        if (l > 0) { i += (size_t)l; run += (size_t)l; continue; }
        if (tok_buf_put(o, s + i - run, run)) { *rc = SLLM_ERR_NOMEM; return 0; }
        run = 0;
        if (l < 0 && !final) return n - i;
        if (tok_buf_put(o, "\xEF\xBF\xBD", 3)) { *rc = SLLM_ERR_NOMEM; return 0; }
        i += l < 0 ? n - i : bad;
    }
    if (tok_buf_put(o, s + i - run, run)) *rc = SLLM_ERR_NOMEM;
    return 0;
}

// ---- description ----
void tok_desc_free(tok_desc *d) {
    if (!d) return;
    if (d->tokens) for (int32_t i = 0; i < d->n_vocab; i++) free(d->tokens[i]);
    free(d->tokens); free(d->scores); free(d->types);
    if (d->merges_l) for (int64_t i = 0; i < d->n_merges; i++) { free(d->merges_l[i]); free(d->merges_r[i]); }
    free(d->merges_l); free(d->merges_r);
    for (int32_t i = 0; i < d->n_pre; i++) { free(d->pre[i].pattern); free(d->pre[i].replacement); }
    free(d->pre);
    for (int32_t i = 0; i < d->n_norm; i++) { free(d->norm[i].a); free(d->norm[i].b); }
    free(d->norm);
    for (int32_t i = 0; i < d->n_added; i++) free(d->added[i].content);
    free(d->added);
    free(d->source);
    memset(d, 0, sizeof *d);
}

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static int cmp_added(const void *a, const void *b) {
    const tok_added_c *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static bool parse_byte_token(const char *s, int *v) {
    // "<0xNN>" with two hex digits
    if (strlen(s) != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return false;
    unsigned x;
    char hex[3] = { s[3], s[4], 0 };
    char *end;
    x = (unsigned)strtoul(hex, &end, 16);
    if (*end) return false;
    *v = (int)x;
    return true;
}

void tok_free(tok *t) {
    if (!t) return;
    if (t->text) for (int32_t i = 0; i < t->n_vocab; i++) { free(t->text[i]); free(t->piece[i]); }
    free(t->text); free(t->text_len); free(t->piece); free(t->piece_len);
    free(t->scores); free(t->types); free(t->is_special);
    tok_smap_free(&t->vocab); tok_pmap_free(&t->merges); tok_smap_free(&t->added_map);
    for (int32_t i = 0; i < t->n_pre; i++) {
        free(t->pre[i].s.pattern); free(t->pre[i].s.replacement);
        if (t->pre[i].re) pcre2_code_free(t->pre[i].re);
    }
    free(t->pre);
    for (int32_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].s.a); free(t->norm[i].s.b);
        if (t->norm[i].re) pcre2_code_free(t->norm[i].re);
    }
    free(t->norm);
    for (int32_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->eog);
    free(t->source);
    free(t);
}

static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|eom_id|>", "<EOT>", "<|endoftext|>",
    ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"),
};

static int build_pieces(tok *t) {
    int16_t rev[324];
    tok_bytelevel_reverse(rev);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text[id];
        size_t n = t->text_len[id];
        uint8_t ty = t->types[id];
        tok_buf o = {0};
        int rc = SLLM_OK, bv;
        if ((ty == TOK_T_CONTROL || ty == TOK_T_USER_DEFINED || ty == TOK_T_UNKNOWN) && t->decoder == TOK_DEC_BYTELEVEL) {
            rc = tok_buf_put(&o, s, n);   // added tokens skip the byte-level decoder (verbatim)
        } else if (t->decoder == TOK_DEC_BYTELEVEL) {
            bool ok = true;
            for (size_t i = 0; i < n && ok && !rc;) {
                size_t bad;
                int l = tok_utf8_next((const uint8_t *)s + i, n - i, &bad);
                if (l <= 0) { ok = false; break; }
                uint32_t cp = (uint8_t)s[i];
                if (l == 2) cp = ((cp & 0x1F) << 6) | ((uint8_t)s[i + 1] & 0x3F);
                else if (l > 2) cp = 0x7FFFFFFF;
                int b = cp < 324 ? rev[cp] : -1;
                if (b < 0) { ok = false; break; }
                uint8_t byte = (uint8_t)b;
                rc = tok_buf_put(&o, &byte, 1);
                i += (size_t)l;
            }
            if (!ok) { o.n = 0; rc = tok_buf_put(&o, s, n); }
        } else if (ty == TOK_T_BYTE && parse_byte_token(s, &bv)) {
            uint8_t byte = (uint8_t)bv;
            rc = tok_buf_put(&o, &byte, 1);
        } else {
            for (size_t i = 0; i < n && !rc;) {
                if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) { rc = tok_buf_put(&o, " ", 1); i += 3; }
                else { rc = tok_buf_put(&o, s + i, 1); i++; }
            }
        }
        if (!rc && !o.p) rc = tok_buf_put(&o, "", 0);
        if (rc) { tok_buf_free(&o); return NOMEM(); }
        t->piece[id] = o.p;
        t->piece_len[id] = (uint32_t)o.n;
    }
    return SLLM_OK;
}

int tok_build(const tok_desc *d, tok **out) {
    *out = NULL;
    const char *src = d->source ? d->source : "tokenizer";
    if (d->n_vocab <= 0 || !d->tokens) return err_set(SLLM_ERR_FORMAT, "%s: empty vocabulary", src);
    if (d->model != TOK_MODEL_BPE && d->model != TOK_MODEL_SPM)
        return err_set(SLLM_ERR_UNSUPPORTED, "%s: unknown tokenizer model kind %d", src, (int)d->model);
    tok *t = calloc(1, sizeof *t);
    if (!t) return NOMEM();
    int rc = SLLM_OK;
    int32_t n = d->n_vocab;
    t->model = d->model;
    t->n_vocab = n;
    t->source = xstrdup(src);
    t->text = calloc((size_t)n, sizeof *t->text);
    t->text_len = calloc((size_t)n, sizeof *t->text_len);
    t->piece = calloc((size_t)n, sizeof *t->piece);
    t->piece_len = calloc((size_t)n, sizeof *t->piece_len);
    t->types = malloc((size_t)n);
    t->is_special = calloc((size_t)n, 1);
    if (d->scores) t->scores = malloc((size_t)n * sizeof *t->scores);
    if (!t->text || !t->text_len || !t->piece || !t->piece_len || !t->types || !t->is_special ||
        (d->scores && !t->scores)) { rc = NOMEM(); goto fail; }
    if (d->scores) memcpy(t->scores, d->scores, (size_t)n * sizeof *t->scores);
    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    tok_bytelevel_table(t->bl_enc);
    t->byte_fallback = d->byte_fallback;
    t->ignore_merges = d->ignore_merges;
    t->add_space_prefix = d->add_space_prefix;
    t->strip_leading_space = d->strip_leading_space;
    t->decoder = d->decoder ? d->decoder : (d->model == TOK_MODEL_SPM ? TOK_DEC_SPM : TOK_DEC_BYTELEVEL);
    for (int32_t i = 0; i < n; i++) {
        const char *s = d->tokens[i] ? d->tokens[i] : "";
        t->types[i] = d->types ? d->types[i] : TOK_T_NORMAL;
        if (!d->tokens[i]) t->types[i] = TOK_T_UNUSED;
        if (t->types[i] < TOK_T_NORMAL || t->types[i] > TOK_T_BYTE) t->types[i] = TOK_T_NORMAL;
        if (!(t->text[i] = strdup(s))) { rc = NOMEM(); goto fail; }
        t->text_len[i] = (uint32_t)strlen(s);
    }
    for (int32_t i = 0; i < d->n_added; i++) {
        int32_t id = d->added[i].id;
        if (id < 0 || id >= n) { rc = err_set(SLLM_ERR_FORMAT, "%s: added token %d out of range", src, id); goto fail; }
        t->types[id] = d->added[i].special ? TOK_T_CONTROL : TOK_T_USER_DEFINED;
    }
    for (int32_t i = 0; i < n; i++) {
        int bv;
        if (t->types[i] == TOK_T_UNUSED && !d->tokens[i]) continue;
        if (t->text_len[i] && tok_smap_put(&t->vocab, t->text[i], t->text_len[i], i)) { rc = NOMEM(); goto fail; }
        if ((t->types[i] == TOK_T_BYTE || (d->byte_fallback && t->types[i] == TOK_T_NORMAL)) &&
            parse_byte_token(t->text[i], &bv) && t->byte_tok[bv] < 0) {
            t->byte_tok[bv] = i;
            if (d->byte_fallback) t->types[i] = TOK_T_BYTE;
        }
        t->is_special[i] = t->types[i] == TOK_T_CONTROL || t->types[i] == TOK_T_UNKNOWN;
    }
    // BPE merges: (left id, right id) -> (rank, merged id); pairs whose parts or result are not
    // tokens can never apply and are skipped.
    if (d->model == TOK_MODEL_BPE) {
        tok_buf cat = {0};
        for (int64_t r = 0; r < d->n_merges; r++) {
            const char *a = d->merges_l[r], *b = d->merges_r[r];
            int32_t ia = tok_smap_get(&t->vocab, a, strlen(a)), ib = tok_smap_get(&t->vocab, b, strlen(b));
            if (ia < 0 || ib < 0) continue;
            cat.n = 0;
            if (tok_buf_put(&cat, a, strlen(a)) || tok_buf_put(&cat, b, strlen(b))) { tok_buf_free(&cat); rc = NOMEM(); goto fail; }
            int32_t ir = tok_smap_get(&t->vocab, cat.p, cat.n);
            if (ir < 0) continue;
            if (tok_pmap_put(&t->merges, ia, ib, (int32_t)r, ir)) { tok_buf_free(&cat); rc = NOMEM(); goto fail; }
        }
        tok_buf_free(&cat);
    }
    // Pre-tokenizer and normalizer steps.
    if (d->n_pre) {
        if (!(t->pre = calloc((size_t)d->n_pre, sizeof *t->pre))) { rc = NOMEM(); goto fail; }
        t->n_pre = d->n_pre;
        for (int32_t i = 0; i < d->n_pre; i++) {
            t->pre[i].s = d->pre[i];
            t->pre[i].s.pattern = xstrdup(d->pre[i].pattern);
            t->pre[i].s.replacement = xstrdup(d->pre[i].replacement);
            const char *pat = NULL;
            if (d->pre[i].kind == TOK_STEP_SPLIT) {
                if (!d->pre[i].pattern) { rc = err_set(SLLM_ERR_FORMAT, "%s: pre_tokenizer split without pattern", src); goto fail; }
                pat = d->pre[i].pattern;
            } else if (d->pre[i].kind == TOK_STEP_BYTELEVEL && d->pre[i].use_regex) pat = tok_gpt2_pattern();
            if (pat) {
                char what[512];
                snprintf(what, sizeof what, "%s: pre_tokenizer pattern", src);
                if ((rc = tok_regex_compile(pat, what, &t->pre[i].re))) goto fail;
            }
        }
    }
    if (d->n_norm) {
        if (!(t->norm = calloc((size_t)d->n_norm, sizeof *t->norm))) { rc = NOMEM(); goto fail; }
        t->n_norm = d->n_norm;
        for (int32_t i = 0; i < d->n_norm; i++) {
            t->norm[i].s = d->norm[i];
            t->norm[i].s.a = xstrdup(d->norm[i].a ? d->norm[i].a : "");
            t->norm[i].s.b = xstrdup(d->norm[i].b ? d->norm[i].b : "");
            if (d->norm[i].kind == TOK_NORM_REPLACE_REGEX) {
                char what[512];
                snprintf(what, sizeof what, "%s: normalizer pattern", src);
                if ((rc = tok_regex_compile(t->norm[i].s.a, what, &t->norm[i].re))) goto fail;
            }
        }
    }
    // Added tokens: matched leftmost-longest in raw text.
    if (d->n_added) {
        if (!(t->added = calloc((size_t)d->n_added, sizeof *t->added))) { rc = NOMEM(); goto fail; }
        for (int32_t i = 0; i < d->n_added; i++) {
            tok_added_c *a = &t->added[t->n_added];
            if (!d->added[i].content || !d->added[i].content[0]) continue;
            a->id = d->added[i].id;
            if (!(a->content = strdup(d->added[i].content))) { rc = NOMEM(); goto fail; }
            a->len = strlen(a->content);
            a->special = d->added[i].special;
            a->lstrip = d->added[i].lstrip;
            a->rstrip = d->added[i].rstrip;
            t->n_added++;
        }
        qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
        for (int32_t i = 0; i < t->n_added; i++) {
            tok_added_c *a = &t->added[i];
            if (tok_smap_put(&t->added_map, a->content, (uint32_t)a->len, i)) { rc = NOMEM(); goto fail; }
            t->added_first[(uint8_t)a->content[0]] = 1;
            if (a->len > t->added_max_len) t->added_max_len = (uint32_t)a->len;
        }
    }
    t->bos = d->bos; t->eos = d->eos; t->eot = d->eot; t->eom = d->eom; t->pad = d->pad; t->unk = d->unk;
    int32_t *ids[] = { &t->bos, &t->eos, &t->eot, &t->eom, &t->pad, &t->unk };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (*ids[i] >= n || *ids[i] < -1) *ids[i] = -1;
    if (t->eot < 0)
        for (size_t k = 0; k < 6 && t->eot < 0; k++) {   // well-known end-of-turn markers
            int32_t id = tok_smap_get(&t->vocab, EOG_TEXTS[k], strlen(EOG_TEXTS[k]));
            if (id >= 0 && t->types[id] != TOK_T_NORMAL) t->eot = id;
        }
    t->add_bos = d->add_bos; t->add_eos = d->add_eos;
    t->n_prefix = d->n_prefix; t->n_suffix = d->n_suffix;
    memcpy(t->prefix, d->prefix, sizeof t->prefix);
    memcpy(t->suffix, d->suffix, sizeof t->suffix);
    if (t->n_prefix == 0 && t->add_bos && t->bos >= 0) t->prefix[t->n_prefix++] = t->bos;
    if (t->n_suffix == 0 && t->add_eos && t->eos >= 0) t->suffix[t->n_suffix++] = t->eos;
    for (int32_t i = 0; i < t->n_prefix; i++)
        if (t->prefix[i] < 0 || t->prefix[i] >= n) { rc = err_set(SLLM_ERR_FORMAT, "%s: BOS/prefix token id %d out of range", src, t->prefix[i]); goto fail; }
    for (int32_t i = 0; i < t->n_suffix; i++)
        if (t->suffix[i] < 0 || t->suffix[i] >= n) { rc = err_set(SLLM_ERR_FORMAT, "%s: EOS/suffix token id %d out of range", src, t->suffix[i]); goto fail; }
    t->add_bos = t->n_prefix > 0;
    // End-of-generation set: eos, eot, eom and any non-normal token with a known end text.
    if (!(t->eog = malloc((3 + sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]) * sizeof *t->eog))) { rc = NOMEM(); goto fail; }
    int32_t cand[3] = { t->eos, t->eot, t->eom };
    for (int k = 0; k < 3; k++) if (cand[k] >= 0) t->eog[t->n_eog++] = cand[k];
    for (size_t k = 0; k < sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]; k++) {
        int32_t id = tok_smap_get(&t->vocab, EOG_TEXTS[k], strlen(EOG_TEXTS[k]));
        if (id >= 0 && t->types[id] != TOK_T_NORMAL) t->eog[t->n_eog++] = id;
    }
    if ((rc = build_pieces(t))) goto fail;
    *out = t;
    return SLLM_OK;
fail:
    tok_free(t);
    return rc;
}

// ---- queries ----
int32_t tok_n_vocab(const tok *t) { return t->n_vocab; }
int32_t tok_bos(const tok *t) { return t->bos; }
int32_t tok_eos(const tok *t) { return t->eos; }
int32_t tok_eot(const tok *t) { return t->eot; }
int32_t tok_pad(const tok *t) { return t->pad; }
bool tok_add_bos(const tok *t) { return t->add_bos; }
int tok_add_eog(tok *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return err_set(SLLM_ERR_ARG, "tokenizer: end-of-generation id %d outside the vocabulary (%d)", id, t->n_vocab);
    if (tok_is_eog(t, id)) return SLLM_OK;
    int32_t *e = realloc(t->eog, (size_t)(t->n_eog + 1) * sizeof *e);
    if (!e) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    e[t->n_eog++] = id;
    t->eog = e;
    return SLLM_OK;
}

bool tok_is_eog(const tok *t, int32_t id) {
    for (int32_t i = 0; i < t->n_eog; i++) if (t->eog[i] == id) return true;
    return false;
}
bool tok_is_special(const tok *t, int32_t id) { return id >= 0 && id < t->n_vocab && t->is_special[id]; }
int32_t tok_find(const tok *t, const char *text) { return tok_smap_get(&t->vocab, text, strlen(text)); }
const char *tok_text(const tok *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->text[id] : NULL; }
const char *tok_piece(const tok *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) { if (len) *len = 0; return NULL; }
    if (len) *len = t->piece_len[id];
    return t->piece[id];
}

// ---- encoding ----
typedef struct { size_t b, e; int32_t added; } section;

// JavaScript's/Rust's whitespace for lstrip/rstrip of added tokens (ASCII + common Unicode spaces).
static size_t ws_len_at(const char *s, size_t n) {
    uint8_t c = (uint8_t)s[0];
    if (c == ' ' || (c >= 9 && c <= 13)) return 1;
    if (n >= 2 && c == 0xC2 && ((uint8_t)s[1] == 0xA0 || (uint8_t)s[1] == 0x85)) return 2;
    if (n >= 3 && c == 0xE3 && (uint8_t)s[1] == 0x80 && (uint8_t)s[2] == 0x80) return 3;
    if (n >= 3 && c == 0xE2 && (uint8_t)s[1] == 0x80 && (((uint8_t)s[2] >= 0x80 && (uint8_t)s[2] <= 0x8A) ||
        (uint8_t)s[2] == 0xA8 || (uint8_t)s[2] == 0xA9 || (uint8_t)s[2] == 0xAF)) return 3;
    return 0;
}

static size_t ws_len_before(const char *s, size_t b, size_t e) {
    if (e <= b) return 0;
    size_t q = e - 1;
    while (q > b && ((uint8_t)s[q] & 0xC0) == 0x80) q--;
    size_t l = ws_len_at(s + q, e - q);
    return l == e - q ? l : 0;
}

static int split_added(const tok *t, const char *s, size_t n, bool parse_special, section **out, size_t *nout) {
    section *v = NULL;
    size_t ns = 0, cap = 0, start = 0, i = 0;
#define PUSH(B, E, A) do { if (ns == cap) { cap = cap ? cap * 2 : 16; section *q_ = realloc(v, cap * sizeof *v); \
        if (!q_) { free(v); return NOMEM(); } v = q_; } v[ns].b = (B); v[ns].e = (E); v[ns].added = (A); ns++; } while (0)
    while (i < n) {
        int32_t hit = -1;
        size_t hl = 0;
        if (t->n_added && t->added_first[(uint8_t)s[i]]) {
            size_t maxl = t->added_max_len < n - i ? t->added_max_len : n - i;
            for (size_t l = maxl; l >= 1 && hit < 0; l--) {
                int32_t k = tok_smap_get(&t->added_map, s + i, l);
                if (k >= 0 && (parse_special || !t->added[k].special)) { hit = k; hl = l; }
            }
        }
        if (hit < 0) { i++; continue; }
        if (i > start) PUSH(start, i, -1);
        PUSH(i, i + hl, hit);
        i += hl;
        start = i;
    }
    if (start < n) PUSH(start, n, -1);
#undef PUSH
    // lstrip / rstrip: added tokens swallow the whitespace next to them.
    for (size_t k = 0; k < ns; k++) {
        if (v[k].added < 0) continue;
        const tok_added_c *a = &t->added[v[k].added];
        if (a->lstrip && k > 0 && v[k - 1].added < 0) {
            size_t l;
            while ((l = ws_len_before(s, v[k - 1].b, v[k - 1].e))) v[k - 1].e -= l;
        }
        if (a->rstrip && k + 1 < ns && v[k + 1].added < 0) {
            size_t l;
            while (v[k + 1].b < v[k + 1].e && (l = ws_len_at(s + v[k + 1].b, v[k + 1].e - v[k + 1].b))) v[k + 1].b += l;
        }
    }
    *out = v;
    *nout = ns;
    return SLLM_OK;
}

static int encode_section(const tok *t, const char *s, size_t n, int section_index, bool prev_special, tok_ids *ids) {
    int rc;
    if (t->model == TOK_MODEL_SPM) {
        // SentencePiece (GGUF): optional space prefix at the start / after a special token, then
        // spaces become U+2581 and the whole section is merged at once.
        tok_buf b = {0};
        rc = SLLM_OK;
        if (t->add_space_prefix && prev_special) rc = tok_buf_put(&b, "\xe2\x96\x81", 3);
        for (size_t i = 0; i < n && !rc; i++)
            rc = s[i] == ' ' ? tok_buf_put(&b, "\xe2\x96\x81", 3) : tok_buf_put(&b, s + i, 1);
        char *norm = NULL;
        size_t nl = 0;
        if (rc) rc = NOMEM();
        else if (!(rc = tok_normalize(t, b.p ? b.p : "", b.n, &norm, &nl))) rc = tok_spm_piece(t, norm, nl, ids);
        free(norm);
        tok_buf_free(&b);
        return rc;
    }
    char *norm = NULL;
    size_t nl = 0;
    if ((rc = tok_normalize(t, s, n, &norm, &nl))) return rc;
    tok_pieces pieces = {0};
    if (nl) rc = tok_pretokenize(t, norm, nl, section_index, &pieces);
    for (size_t i = 0; i < pieces.n && !rc; i++)
        rc = tok_bpe_piece(t, pieces.buf.p + pieces.off[i], pieces.len[i], ids);
    tok_pieces_free(&pieces);
    free(norm);
    return rc;
}

int tok_encode(const tok *t, const char *text, size_t len, bool add_special, bool parse_special,
               int32_t **ids_out, int *n_out) {
    *ids_out = NULL;
    *n_out = 0;
    if (!text && len) return err_set(SLLM_ERR_ARG, "tok_encode: NULL text");
    for (size_t i = 0; i < len;) {
        size_t bad;
        int l = tok_utf8_next((const uint8_t *)text + i, len - i, &bad);
        if (l <= 0)
            return err_set(SLLM_ERR_TEXT, "tokenizer: invalid UTF-8 at byte offset %zu (byte 0x%02X%s)", i,
                           (uint8_t)text[i], l < 0 ? ", truncated sequence" : "");
        i += (size_t)l;
    }
    section *secs = NULL;
    size_t ns = 0;
    int rc = len ? split_added(t, text, len, parse_special, &secs, &ns) : SLLM_OK;
    if (rc) return rc;
    tok_ids ids = {0};
    if (add_special)
        for (int32_t i = 0; i < t->n_prefix && !rc; i++) if (tok_ids_push(&ids, t->prefix[i])) rc = NOMEM();
    bool prev_special = true;
    for (size_t k = 0; k < ns && !rc; k++) {
        if (secs[k].added >= 0) {
            if (tok_ids_push(&ids, t->added[secs[k].added].id)) rc = NOMEM();
            prev_special = true;
            continue;
        }
        if (secs[k].e > secs[k].b)
            rc = encode_section(t, text + secs[k].b, secs[k].e - secs[k].b, (int)k, prev_special, &ids);
        prev_special = false;
    }
    if (add_special)
        for (int32_t i = 0; i < t->n_suffix && !rc; i++) if (tok_ids_push(&ids, t->suffix[i])) rc = NOMEM();
    free(secs);
    if (rc) { free(ids.v); return rc; }
    if (!ids.v && !(ids.v = malloc(sizeof *ids.v))) return NOMEM();
    *ids_out = ids.v;
    *n_out = ids.n;
    return SLLM_OK;
}

// ---- decoding ----
static int raw_bytes(const tok *t, const int32_t *ids, int n, bool skip_special, bool *at_start, tok_buf *o) {
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) return err_set(SLLM_ERR_ARG, "tokenizer: token id %d out of range [0, %d)", id, t->n_vocab);
        if (skip_special && t->is_special[id]) continue;
        const char *p = t->piece[id];
        size_t l = t->piece_len[id];
        if (*at_start && l) {
            if (t->strip_leading_space && p[0] == ' ') { p++; l--; }
            *at_start = false;
        }
        if (tok_buf_put(o, p, l)) return NOMEM();
    }
    return SLLM_OK;
}

int tok_decode(const tok *t, const int32_t *ids, int n, bool skip_special, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    tok_buf raw = {0}, o = {0};
    bool at_start = true;
    int rc = raw_bytes(t, ids, n, skip_special, &at_start, &raw);
    if (!rc) utf8_sanitize(raw.p ? raw.p : "", raw.n, true, &o, &rc);
    if (!rc && tok_buf_put(&o, "", 0)) rc = SLLM_ERR_NOMEM;
    tok_buf_free(&raw);
    if (rc) { tok_buf_free(&o); return rc == SLLM_ERR_NOMEM ? NOMEM() : rc; }
    *out = o.p;
    if (len) *len = o.n;
    return SLLM_OK;
}

struct tok_stream {
    const tok *t;
    bool skip_special, at_start;
    tok_buf pending, out;
};

tok_stream *tok_stream_new(const tok *t, bool skip_special) {
    tok_stream *s = calloc(1, sizeof *s);
    if (!s) { NOMEM(); return NULL; }
    s->t = t;
    s->skip_special = skip_special;
    s->at_start = true;
    return s;
}

static int stream_emit(tok_stream *s, bool final, const char **text, size_t *len) {
    int rc = SLLM_OK;
    s->out.n = 0;
    size_t keep = utf8_sanitize(s->pending.p ? s->pending.p : "", s->pending.n, final, &s->out, &rc);
    if (rc) return NOMEM();
    memmove(s->pending.p, s->pending.p + s->pending.n - keep, keep);
    s->pending.n = keep;
    if (tok_buf_put(&s->out, "", 0)) return NOMEM();
    *text = s->out.p;
    *len = s->out.n;
    return SLLM_OK;
}

int tok_stream_feed(tok_stream *s, int32_t id, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    int rc = raw_bytes(s->t, &id, 1, s->skip_special, &s->at_start, &s->pending);
    if (rc) return rc;
    if (!s->pending.n) return SLLM_OK;
    return stream_emit(s, false, text, len);
}

int tok_stream_finish(tok_stream *s, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    if (!s->pending.n) return SLLM_OK;
    return stream_emit(s, true, text, len);
}

void tok_stream_free(tok_stream *s) {
    if (!s) return;
    tok_buf_free(&s->pending);
    tok_buf_free(&s->out);
    free(s);
}

// ---- GGUF loader ----
static int gguf_id(const gguf_file *f, const char *key, int32_t def, int32_t *out) {
    int err = 0;
    int64_t v = gguf_get_int(f, key, def, &err);
    if (err) return err_set(SLLM_ERR_FORMAT, "%s: key '%s': not an integer", f->path, key);
    *out = (int32_t)v;
    return SLLM_OK;
}

static int gguf_flag(const gguf_file *f, const char *key, bool def, bool *out) {
    int err = 0;
    bool v = gguf_get_bool(f, key, def, &err);
    if (err) return err_set(SLLM_ERR_FORMAT, "%s: key '%s': not a bool", f->path, key);
    *out = v;
    return SLLM_OK;
}

static char *gstr_dup(gguf_str s) {
    char *p = malloc(s.len + 1);
    if (!p) return NULL;
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

int tok_desc_from_gguf(const gguf_file *f, tok_desc *d) {
    memset(d, 0, sizeof *d);
    const char *path = f->path ? f->path : "gguf";
    int rc = SLLM_OK;
    char *model = NULL, *pre = NULL;
    if (!(d->source = strdup(path))) return NOMEM();
    model = gguf_get_str(f, "tokenizer.ggml.model");
    if (!model) { rc = err_set(SLLM_ERR_FORMAT, "%s: missing key 'tokenizer.ggml.model'", path); goto fail; }
    if (!strcmp(model, "llama")) d->model = TOK_MODEL_SPM;
    else if (!strcmp(model, "gpt2")) d->model = TOK_MODEL_BPE;
    else { rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: key 'tokenizer.ggml.model': unknown model type '%s'", path, model); goto fail; }
    const gguf_kv *kt = gguf_find(f, "tokenizer.ggml.tokens");
    if (!kt) { rc = err_set(SLLM_ERR_FORMAT, "%s: missing key 'tokenizer.ggml.tokens'", path); goto fail; }
    if (kt->type != GGUF_ARRAY || kt->arr_type != GGUF_STRING || kt->arr_n == 0 || kt->arr_n > INT32_MAX) {
        rc = err_set(SLLM_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens': expected a non-empty string array", path); goto fail;
    }
    int32_t n = (int32_t)kt->arr_n;
    d->n_vocab = n;
    if (!(d->tokens = calloc((size_t)n, sizeof *d->tokens))) { rc = NOMEM(); goto fail; }
    for (int32_t i = 0; i < n; i++)
        if (!(d->tokens[i] = gstr_dup(gguf_arr_str(kt, (uint64_t)i)))) { rc = NOMEM(); goto fail; }
    const gguf_kv *ks = gguf_find(f, "tokenizer.ggml.scores");
    if (ks) {
        if (ks->type != GGUF_ARRAY || ks->arr_n != (uint64_t)n) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: key 'tokenizer.ggml.scores': expected %d numbers", path, n); goto fail;
        }
        if (!(d->scores = malloc((size_t)n * sizeof *d->scores))) { rc = NOMEM(); goto fail; }
        for (int32_t i = 0; i < n; i++) d->scores[i] = (float)gguf_arr_num(ks, (uint64_t)i);
    }
    const gguf_kv *ky = gguf_find(f, "tokenizer.ggml.token_type");
    if (ky) {
        if (ky->type != GGUF_ARRAY || ky->arr_n != (uint64_t)n || ky->arr_type == GGUF_STRING) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: key 'tokenizer.ggml.token_type': expected %d integers", path, n); goto fail;
        }
        if (!(d->types = malloc((size_t)n))) { rc = NOMEM(); goto fail; }
        for (int32_t i = 0; i < n; i++) d->types[i] = (uint8_t)gguf_arr_num(ky, (uint64_t)i);
    }
    if (d->model == TOK_MODEL_BPE) {
        const gguf_kv *km = gguf_find(f, "tokenizer.ggml.merges");
        if (!km) { rc = err_set(SLLM_ERR_FORMAT, "%s: missing key 'tokenizer.ggml.merges' (needed by BPE)", path); goto fail; }
        if (km->type != GGUF_ARRAY || km->arr_type != GGUF_STRING) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: key 'tokenizer.ggml.merges': expected a string array", path); goto fail;
        }
        d->n_merges = (int64_t)km->arr_n;
        d->merges_l = calloc((size_t)d->n_merges + 1, sizeof *d->merges_l);
        d->merges_r = calloc((size_t)d->n_merges + 1, sizeof *d->merges_r);
        if (!d->merges_l || !d->merges_r) { rc = NOMEM(); goto fail; }
        for (int64_t i = 0; i < d->n_merges; i++) {
            gguf_str s = gguf_arr_str(km, (uint64_t)i);
            size_t sp = 0;
            while (sp < s.len && s.ptr[sp] != ' ') sp++;
            if (sp == s.len || sp == 0) {
                rc = err_set(SLLM_ERR_FORMAT, "%s: key 'tokenizer.ggml.merges': entry %lld has no 'a b' form", path, (long long)i);
                goto fail;
            }
            gguf_str l = { sp, s.ptr }, r = { s.len - sp - 1, s.ptr + sp + 1 };
            if (!(d->merges_l[i] = gstr_dup(l)) || !(d->merges_r[i] = gstr_dup(r))) { rc = NOMEM(); goto fail; }
        }
        pre = gguf_get_str(f, "tokenizer.ggml.pre");
        tok_pre_kind pk = tok_pre_from_name(pre);
        if (pk == TOK_PRE_CUSTOM) {
            rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: key 'tokenizer.ggml.pre': pre-tokenizer '%s' is not supported", path, pre);
            goto fail;
        }
        if ((rc = tok_pre_preset(pk, d))) goto fail;
        // Llama 3's tokenizer.json sets ignore_merges; Qwen2's normalizes to NFC.
        d->ignore_merges = pk == TOK_PRE_LLAMA3;
        if (pk == TOK_PRE_QWEN2) {
            if (!(d->norm = calloc(1, sizeof *d->norm))) { rc = NOMEM(); goto fail; }
            d->norm[0].kind = TOK_NORM_NFC;
            d->n_norm = 1;
        }
        d->decoder = TOK_DEC_BYTELEVEL;
    } else {
        d->decoder = TOK_DEC_SPM;
    }
    bool spm = d->model == TOK_MODEL_SPM;
    if ((rc = gguf_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, &d->bos)) ||
        (rc = gguf_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, &d->eos)) ||
        (rc = gguf_id(f, "tokenizer.ggml.eot_token_id", -1, &d->eot)) ||
        (rc = gguf_id(f, "tokenizer.ggml.eom_token_id", -1, &d->eom)) ||
        (rc = gguf_id(f, "tokenizer.ggml.padding_token_id", -1, &d->pad)) ||
        (rc = gguf_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, &d->unk))) goto fail;
    bool bos_default = spm || (pre && tok_pre_from_name(pre) == TOK_PRE_LLAMA3);
    if ((rc = gguf_flag(f, "tokenizer.ggml.add_bos_token", bos_default, &d->add_bos)) ||
        (rc = gguf_flag(f, "tokenizer.ggml.add_eos_token", false, &d->add_eos)) ||
        (rc = gguf_flag(f, "tokenizer.ggml.add_space_prefix", spm, &d->add_space_prefix))) goto fail;
    d->strip_leading_space = spm && d->add_space_prefix;
    // Control, user-defined and unknown-typed tokens are split out of raw text before the model
    // (user-defined ones even when special tokens are not parsed), as llama.cpp does.
    if (d->types) {
        int32_t na = 0;
        for (int32_t i = 0; i < n; i++)
            if (d->types[i] == TOK_T_CONTROL || d->types[i] == TOK_T_USER_DEFINED || d->types[i] == TOK_T_UNKNOWN) na++;
        if (na && !(d->added = calloc((size_t)na, sizeof *d->added))) { rc = NOMEM(); goto fail; }
        for (int32_t i = 0; i < n; i++) {
            uint8_t ty = d->types[i];
            if (ty != TOK_T_CONTROL && ty != TOK_T_USER_DEFINED && ty != TOK_T_UNKNOWN) continue;
            tok_added *a = &d->added[d->n_added++];
            a->id = i;
            if (!(a->content = strdup(d->tokens[i]))) { rc = NOMEM(); goto fail; }
            a->special = ty != TOK_T_USER_DEFINED;
        }
    }
    free(model);
    free(pre);
    return SLLM_OK;
fail:
    free(model);
    free(pre);
    tok_desc_free(d);
    return rc;
}

// tok_build marks added tokens as control/user-defined; for GGUF keep the file's own types.
int tok_load_gguf(const gguf_file *f, tok **out) {
    tok_desc d;
    *out = NULL;
    int rc = tok_desc_from_gguf(f, &d);
    if (rc) return rc;
    uint8_t *types = d.types ? malloc((size_t)d.n_vocab) : NULL;
    if (d.types && types) memcpy(types, d.types, (size_t)d.n_vocab);
    rc = tok_build(&d, out);
    if (!rc && types) {
        tok *t = *out;
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (types[i] >= TOK_T_NORMAL && types[i] <= TOK_T_BYTE) t->types[i] = types[i];
            t->is_special[i] = t->types[i] == TOK_T_CONTROL || t->types[i] == TOK_T_UNKNOWN;
        }
    }
    free(types);
    tok_desc_free(&d);
    return rc;
}

// ---- a minimal byte-level vocabulary ----
// GPT-2's printable stand-in for each byte (bytes_to_unicode): printable Latin-1 bytes stand for
// themselves, the others map to U+0100.. in byte order.
static void byte_standin(int b, char out[3]) {
    static int map[256];
    static int ready;
    if (!ready) {
        int n = 0;
        for (int i = 0; i < 256; i++)
            map[i] = ((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255)) ? i : 256 + n++;
        ready = 1;
    }
    int cp = map[b];
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

int tok_write_byte_vocab(const char *path) {
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    enum { N = 256 + 3 };
    char bytes[256][3];
    const char *tokens[N];
    int32_t types[N];
    for (int b = 0; b < 256; b++) { byte_standin(b, bytes[b]); tokens[b] = bytes[b]; types[b] = TOK_T_NORMAL; }
    for (int i = 0; i < 3; i++) { tokens[256 + i] = specials[i]; types[256 + i] = TOK_T_CONTROL; }
    gguf_writer *w = gguf_writer_new();
    if (!w) return err_set(SLLM_ERR_NOMEM, "byte vocabulary: out of memory");
    gguf_set_str(w, "general.name", "sllm byte-level vocabulary");
    gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_set_str(w, "tokenizer.ggml.pre", "gpt2");
    gguf_set_array(w, "tokenizer.ggml.tokens", GGUF_STRING, tokens, N);
    gguf_set_array(w, "tokenizer.ggml.token_type", GGUF_I32, types, N);
    gguf_set_array(w, "tokenizer.ggml.merges", GGUF_STRING, NULL, 0);
    gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 256);
    gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 258);
    gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 256);
    gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_set_str(w, "tokenizer.chat_template",
                 "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
    int rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return rc;
}
