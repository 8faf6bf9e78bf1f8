// Grammar-constrained sampling (see constrain.h for the per-step algorithm).
#include "gen/constrain.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "text/json_schema.h"

enum { K_NEVER = 0, K_PIECE = 1, K_EOG = 2 };

// The vocabulary's pieces in byte order, grouped by first byte and, in big groups, by second byte, so a
// mask first asks the grammar about each first byte (and two-byte prefix) and skips whole groups it
// rejects; grammar_filter_vocab then runs only over the groups that may hold allowed pieces. At a JSON
// structural position only a handful of first bytes survive, which makes the mask several times cheaper
// than one pass over the whole vocabulary.
#define BUCKET_SPLIT 1024
typedef struct { int b2; int start, n; grammar_vocab *gv; } vgroup;   // b2 -1: the one-byte pieces
typedef struct { int start, n; grammar_vocab *gv; vgroup *sub; int n_sub; } vbucket;
typedef struct { const char *p; size_t len; int32_t id; } vpiece;

static int cmp_vpiece(const void *a, const void *b) {
    const vpiece *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = m ? memcmp(x->p, y->p, m) : 0;
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static grammar_vocab *vocab_range(const vpiece *vp, int start, int n) {
    const char **p = malloc((size_t)n * sizeof *p);
    size_t *l = malloc((size_t)n * sizeof *l);
    grammar_vocab *gv = NULL;
    if (p && l) {
        for (int i = 0; i < n; i++) p[i] = vp[start + i].p, l[i] = vp[start + i].len;
        gv = grammar_vocab_new(p, l, n);
    }
    free(p); free(l);
    return gv;
}

static bool build_buckets(vbucket *b1, const vpiece *vp, int n) {
    for (int i = 0; i < n;) {
        uint8_t c = (uint8_t)vp[i].p[0];
        int j = i;
        while (j < n && (uint8_t)vp[j].p[0] == c) j++;
        vbucket *b = &b1[c];
        b->start = i; b->n = j - i;
        if (b->n <= BUCKET_SPLIT) {
            if (!(b->gv = vocab_range(vp, i, b->n))) return false;
        } else {
            if (!(b->sub = calloc(257, sizeof *b->sub))) return false;
            for (int k = i; k < j;) {
                int c2 = vp[k].len > 1 ? (uint8_t)vp[k].p[1] : -1, e = k;
                while (e < j && (vp[e].len > 1 ? (uint8_t)vp[e].p[1] : -1) == c2) e++;
                vgroup *g = &b->sub[b->n_sub++];
                g->b2 = c2; g->start = k; g->n = e - k;
                if (c2 >= 0 && !(g->gv = vocab_range(vp, k, e - k))) return false;
                k = e;
            }
        }
        i = j;
    }
    return true;
}

struct constrain_vocab {
    const tok *t;
    int n_vocab;             // model's
    int n_tok;               // tokenizer's
    uint8_t *kind;           // (n_vocab) K_*
    const char **piece;      // (n_tok) decoded bytes of each token (points into the tokenizer)
    size_t *plen;            // (n_tok)
    int n_elig;              // tokens with K_PIECE, sorted by piece bytes
    int32_t *elig;           // (n_elig) position -> token id
    vbucket b1[256];         // by first byte (contiguous ranges of elig)
    grammar_vocab *all;      // all of elig, for masks where most first bytes pass (inside strings)
    int32_t *eog; int n_eog;
    int32_t *split; int n_split;   // K_PIECE tokens that are not whole, well-formed UTF-8 (byte pieces)
};

// Whether bytes a[0..na) + b[0..nb) are well-formed UTF-8 except for an incomplete (so far valid) last
// character, whose length goes to *tail. tok_utf8_next is strict (no overlongs, surrogates, > U+10FFFF).
static bool utf8_prefix_ok(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, size_t *tail) {
    uint8_t small[512];
    size_t n = na + nb;
    uint8_t *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) return false;
    if (na) memcpy(buf, a, na);
    memcpy(buf + na, b, nb);
    bool ok = true;
    size_t i = 0;
    *tail = 0;
    while (i < n) {
        size_t bad = 0;
        int l = tok_utf8_next(buf + i, n - i, &bad);
        if (l > 0) { i += (size_t)l; continue; }
        if (l < 0) *tail = n - i; else ok = false;
        break;
    }
    if (buf != small) free(buf);
    return ok;
}

constrain_vocab *constrain_vocab_new(const tok *t, int n_vocab) {
    int n_tok = tok_n_vocab(t);
    if (n_vocab < n_tok) n_vocab = n_tok;
    constrain_vocab *v = calloc(1, sizeof *v);
    if (!v) goto oom;
    v->t = t; v->n_vocab = n_vocab; v->n_tok = n_tok;
    v->kind = calloc((size_t)n_vocab, 1);
    v->piece = calloc((size_t)n_tok, sizeof *v->piece);
    v->plen = calloc((size_t)n_tok, sizeof *v->plen);
    v->elig = malloc((size_t)n_tok * sizeof *v->elig);
    v->eog = malloc((size_t)n_tok * sizeof *v->eog);
    v->split = malloc((size_t)n_tok * sizeof *v->split);
    vpiece *vp = malloc((size_t)n_tok * sizeof *vp);
    if (!v->kind || !v->piece || !v->plen || !v->elig || !v->eog || !v->split || !vp) { free(vp); goto oom; }
    int n_elig = 0;
    for (int32_t id = 0; id < n_tok; id++) {
        size_t len = 0;
        const char *p = tok_piece(t, id, &len);
        v->piece[id] = p ? p : "";
        v->plen[id] = p ? len : 0;
        if (tok_is_eog(t, id)) { v->kind[id] = K_EOG; v->eog[v->n_eog++] = id; continue; }
        // Control tokens would put markup the grammar cannot see into the text; an empty piece would be
        // allowed everywhere and could repeat forever without advancing the grammar.
        if (!p || len == 0 || tok_is_special(t, id)) continue;
        v->kind[id] = K_PIECE;
        size_t tail;
        if (!utf8_prefix_ok(NULL, 0, (const uint8_t *)p, len, &tail) || tail) v->split[v->n_split++] = id;
        else if ((uint8_t)p[0] >= 0x80 && (uint8_t)p[0] < 0xC0) v->split[v->n_split++] = id;
        vp[n_elig++] = (vpiece){p, len, id};
    }
    qsort(vp, (size_t)n_elig, sizeof *vp, cmp_vpiece);
    for (int i = 0; i < n_elig; i++) v->elig[i] = vp[i].id;
    v->n_elig = n_elig;
    bool ok = build_buckets(v->b1, vp, n_elig) && (v->all = vocab_range(vp, 0, n_elig));
    free(vp);
    if (!ok) goto oom;
    return v;
oom:
    constrain_vocab_free(v);
    err_set(SLLM_ERR_NOMEM, "constrain: out of memory preparing the vocabulary");
    return NULL;
}

void constrain_vocab_free(constrain_vocab *v) {
    if (!v) return;
    grammar_vocab_free(v->all);
    for (int b = 0; b < 256; b++) {
        grammar_vocab_free(v->b1[b].gv);
        for (int k = 0; k < v->b1[b].n_sub; k++) grammar_vocab_free(v->b1[b].sub[k].gv);
        free(v->b1[b].sub);
    }
    free(v->kind); free(v->piece); free(v->plen); free(v->elig); free(v->eog); free(v->split); free(v);
}

typedef struct { float l; int32_t id; } wcand;

struct constrain {
    const constrain_vocab *v;
    grammar *g;
    grammar_state *st;
    constrain_mode mode;
    constrain_stats stats;
    bool have_sp; sample_params sp;
    float *work;             // (n_vocab) logits handed to the sampler
    uint8_t *allowed;        // (n_elig)
    wcand *heap;             // (CONSTRAIN_WALK) top candidates for the walk
    uint8_t *is_split;       // (n_vocab) 1 for the vocabulary's split tokens
    uint8_t pend[4];         // bytes of an incomplete UTF-8 character at the end of the output
    size_t n_pend;
};

int constrain_new(const constrain_vocab *v, grammar *g, constrain **out) {
    *out = NULL;
    if (!v || !g) { grammar_free(g); return err_set(SLLM_ERR_ARG, "constrain: NULL vocabulary or grammar"); }
    constrain *c = calloc(1, sizeof *c);
    if (!c) { grammar_free(g); return err_set(SLLM_ERR_NOMEM, "constrain: out of memory"); }
    c->v = v; c->g = g;
    c->st = grammar_state_new(g);
    c->work = malloc((size_t)v->n_vocab * sizeof *c->work);
    c->allowed = malloc((size_t)(v->n_elig ? v->n_elig : 1));
    c->heap = malloc(CONSTRAIN_WALK * sizeof *c->heap);
    c->is_split = calloc((size_t)v->n_vocab, 1);
    if (!c->st || !c->work || !c->allowed || !c->heap || !c->is_split) {
        constrain_free(c);
        return err_set(SLLM_ERR_NOMEM, "constrain: out of memory");
    }
    for (int i = 0; i < v->n_split; i++) c->is_split[v->split[i]] = 1;
    *out = c;
    return SLLM_OK;
}

int constrain_new_gbnf(const constrain_vocab *v, const char *src, size_t len, const char *name, const char *root_rule,
                       constrain **out) {
    *out = NULL;
    grammar *g = NULL;
    int rc = grammar_parse(src, len, name ? name : "<grammar>", root_rule, &g);
    if (rc != SLLM_OK) return rc;
    return constrain_new(v, g, out);
}

int constrain_new_schema(const constrain_vocab *v, const json_t *schema, constrain **out) {
    *out = NULL;
    grammar *g = NULL;
    int rc = json_schema_to_grammar(schema, &g);
    if (rc != SLLM_OK) return rc;
    return constrain_new(v, g, out);
}

void constrain_free(constrain *c) {
    if (!c) return;
    grammar_state_free(c->st);
    grammar_free(c->g);
    free(c->work); free(c->allowed); free(c->heap); free(c->is_split); free(c);
}

void constrain_set_mode(constrain *c, constrain_mode m) { c->mode = m; }
void constrain_set_sampling(constrain *c, const sample_params *sp) {
    c->have_sp = sp != NULL;
    if (sp) c->sp = *sp;
}
const constrain_stats *constrain_get_stats(const constrain *c) { return &c->stats; }
const grammar_state *constrain_state(const constrain *c) { return c->st; }

bool constrain_done(const constrain *c) { return grammar_can_end(c->st) && !grammar_can_continue(c->st); }

// Extra checks for a piece that splits a UTF-8 character (the grammar has accepted it). The matcher
// checks a partial character by the range of code points its bytes allow, but that range ignores the
// rules of UTF-8 (a lone E0 or F0 lead byte counts as "0x0000.."), so it can accept bytes that no
// well-formed continuation completes. Here: the output must stay well-formed UTF-8, and a piece ending
// in a lone E0/F0 must have some valid second byte the grammar accepts.
static bool split_ok(const constrain *c, const char *piece, size_t len) {
    size_t tail;
    if (!utf8_prefix_ok(c->pend, c->n_pend, (const uint8_t *)piece, len, &tail)) return false;
    uint8_t last = len ? (uint8_t)piece[len - 1] : 0;
    if (tail != 1 || (last != 0xE0 && last != 0xF0)) return true;
    char small[520];
    char *buf = len + 1 <= sizeof small ? small : malloc(len + 1);
    if (!buf) return false;
    memcpy(buf, piece, len);
    bool ok = false;
    for (int b = last == 0xE0 ? 0xA0 : 0x90; b <= 0xBF && !ok; b++) {
        buf[len] = (char)b;
        ok = grammar_check(c->st, buf, len + 1) == 1;
    }
    if (buf != small) free(buf);
    return ok;
}

// Whether token id may come next (one grammar check).
static bool token_ok(const constrain *c, int32_t id) {
    const constrain_vocab *v = c->v;
    if (id < 0 || id >= v->n_vocab) return false;
    if (v->kind[id] == K_EOG) return grammar_can_end(c->st);
    if (v->kind[id] != K_PIECE) return false;
    if (grammar_check(c->st, v->piece[id], v->plen[id]) != 1) return false;
    return !(c->is_split[id] || c->n_pend) || split_ok(c, v->piece[id], v->plen[id]);
}

// Candidate order of the sampler: logit descending, ties by lower id.
static bool wc_before(wcand a, wcand b) { return a.l != b.l ? a.l > b.l : a.id < b.id; }

static void heap_down(wcand *h, int n, int i) {   // min-heap by wc_before (root = the last in order)
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && wc_before(h[m], h[l])) m = l;
        if (r < n && wc_before(h[m], h[r])) m = r;
        if (m == i) return;
        wcand t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static int cmp_wc(const void *a, const void *b) {
    wcand x = *(const wcand *)a, y = *(const wcand *)b;
    return wc_before(x, y) ? -1 : wc_before(y, x) ? 1 : 0;
}

// The top-k shortcut: fills c->work with -inf except the first `need` allowed candidates in sampler
// order. Returns false (work untouched) when the first W candidates hold fewer.
static bool walk_mask(constrain *c, const float *logits, int need, int W) {
    const int V = c->v->n_vocab;
    if (need <= 0 || need > W || V <= 0) return false;
    wcand *h = c->heap;
    int n = 0;
    for (int32_t id = 0; id < V; id++) {
        wcand x = {logits[id], id};
        if (isnan(x.l)) continue;
        if (n < W) {
            h[n++] = x;
            if (n == W) for (int i = W / 2 - 1; i >= 0; i--) heap_down(h, W, i);
        } else if (wc_before(x, h[0])) { h[0] = x; heap_down(h, W, 0); }
    }
    qsort(h, (size_t)n, sizeof *h, cmp_wc);
    int found = 0, k;
    for (k = 0; k < n && found < need; k++)
        if (h[k].l > -INFINITY && token_ok(c, h[k].id)) h[found++] = h[k];   // compacts in place (found <= k)
    if (found < need) return false;
    for (int i = 0; i < V; i++) c->work[i] = -INFINITY;
    for (int i = 0; i < found; i++) c->work[h[i].id] = h[i].l;
    return true;
}

// Which first bytes the grammar accepts here; returns how many pieces start with one of them.
static int first_byte_pass(const constrain *c, bool pass[256]) {
    const constrain_vocab *v = c->v;
    int n_pass = 0;
    for (int b = 0; b < 256; b++) {
        char ch = (char)b;
        pass[b] = v->b1[b].n && grammar_check(c->st, &ch, 1) == 1;
        if (pass[b]) n_pass += v->b1[b].n;
    }
    return n_pass;
}

// The whole-vocabulary mask (pass/n_pass from first_byte_pass). Returns the number allowed, or negative.
static int full_mask(constrain *c, const float *logits, const bool pass[256], int n_pass) {
    const constrain_vocab *v = c->v;
    memset(c->allowed, 0, (size_t)v->n_elig);
    if (n_pass > v->n_elig / 4) {   // most groups would be filtered anyway: one pass shares more prefixes
        int rc = grammar_filter_vocab(c->st, v->all, c->allowed);
        if (rc < 0) return rc;
    } else for (int b = 0; b < 256; b++) {
        const vbucket *bk = &v->b1[b];
        char pre[2] = {(char)b, 0};
        if (!pass[b]) continue;
        int rc = 0;
        if (bk->gv) rc = grammar_filter_vocab(c->st, bk->gv, c->allowed + bk->start);
        for (int k = 0; k < bk->n_sub && rc >= 0; k++) {
            const vgroup *g = &bk->sub[k];
            if (g->b2 < 0) { memset(c->allowed + g->start, 1, (size_t)g->n); continue; }   // the byte itself
            pre[1] = (char)g->b2;
            if (grammar_check(c->st, pre, 2) == 1) rc = grammar_filter_vocab(c->st, g->gv, c->allowed + g->start);
        }
        if (rc < 0) return rc;
    }
    for (int i = 0; i < v->n_vocab; i++) c->work[i] = -INFINITY;
    int n = 0;
    for (int i = 0; i < v->n_elig; i++)
        if (c->allowed[i]) { int32_t id = v->elig[i]; c->work[id] = logits[id]; n++; }
    // Inside a character only split pieces can continue it, so re-checking those is enough.
    for (int i = 0; i < v->n_split; i++) {
        int32_t id = v->split[i];
        if (c->work[id] > -INFINITY && !split_ok(c, v->piece[id], v->plen[id])) { c->work[id] = -INFINITY; n--; }
    }
    if (grammar_can_end(c->st))
        for (int i = 0; i < v->n_eog; i++) { c->work[v->eog[i]] = logits[v->eog[i]]; n++; }
    return n;
}

int32_t constrain_sample(constrain *c, sampler *smp, const float *logits) {
    const int V = c->v->n_vocab;
    c->stats.steps++;
    if (c->mode != CONSTRAIN_ALWAYS_MASK) {
        memcpy(c->work, logits, (size_t)V * sizeof *c->work);   // the sampler applies penalties in place
        int32_t id = sampler_sample(smp, c->work, NULL, NULL);
        if (id >= 0 && token_ok(c, id)) { c->stats.fast_ok++; return id; }
    }
    double t0 = gen_now_ms();
    bool walked = false;
    const sample_params *sp = &c->sp;
    bool no_pen = sp->repeat_penalty == 1.0f && sp->freq_penalty == 0.0f && sp->presence_penalty == 0.0f;
    bool can_walk = c->mode == CONSTRAIN_FAST && c->have_sp && no_pen && (sp->temp <= 0.0f || sp->top_k > 0);
    int need = sp->temp <= 0.0f ? 1 : sp->top_k;
    if (can_walk) walked = walk_mask(c, logits, need, CONSTRAIN_WALK);
    bool pass[256];
    int n_pass = walked ? 0 : first_byte_pass(c, pass);
    if (walked) c->stats.walks++;
    else {
        c->stats.masks++;
        int n = full_mask(c, logits, pass, n_pass);
        if (n < 0) return n;
        if (n == 0) {
            c->stats.mask_ms += gen_now_ms() - t0;
            err_set(SLLM_ERR_ARG, "constrain: the grammar allows no token of this vocabulary here");
            return -1;
        }
    }
    c->stats.mask_ms += gen_now_ms() - t0;
    int32_t id = sampler_sample(smp, c->work, NULL, NULL);
    if (id >= 0 && id < V && c->work[id] > -INFINITY) return id;
    // The sampler's last-resort pick (rounding at the end of its cumulative sum) can land on a masked
    // token; take the best allowed one instead.
    int32_t best = -1;
    for (int i = 0; i < V; i++)
        if (c->work[i] > -INFINITY && (best < 0 || c->work[i] > c->work[best])) best = i;
    if (best < 0) err_set(SLLM_ERR_ARG, "constrain: the grammar allows no token here");
    return best;
}

int constrain_accept(constrain *c, int32_t id) {
    const constrain_vocab *v = c->v;
    if (id < 0 || id >= v->n_vocab) return err_set(SLLM_ERR_ARG, "constrain: token id %d out of range", (int)id);
    if (v->kind[id] == K_EOG) return SLLM_OK;
    if (v->kind[id] != K_PIECE) return err_set(SLLM_ERR_ARG, "constrain: token %d cannot appear in constrained output", (int)id);
    size_t tail = 0;
    const uint8_t *pc = (const uint8_t *)v->piece[id];
    size_t len = v->plen[id];
    if ((c->is_split[id] || c->n_pend) && !utf8_prefix_ok(c->pend, c->n_pend, pc, len, &tail))
        return err_set(SLLM_ERR_ARG, "constrain: token %d would make the output invalid UTF-8", (int)id);
    int r = grammar_accept(c->st, v->piece[id], len);
    if (r < 0) return r;
    if (r == 0) return err_set(SLLM_ERR_ARG, "constrain: token %d ('%s') does not follow the grammar", (int)id, tok_text(v->t, id));
    // the incomplete character now at the end: the last `tail` bytes of pend + piece
    uint8_t all[8];
    size_t na = 0;
    if (tail) {
        size_t from_pend = tail > len ? tail - len : 0;
        memcpy(all, c->pend + c->n_pend - from_pend, from_pend);
        na = from_pend;
        memcpy(all + na, pc + len - (tail - from_pend), tail - from_pend);
        na = tail;
    }
    memcpy(c->pend, all, na);
    c->n_pend = na;
    return SLLM_OK;
}

// ---- forced tool calls

// Checks every $ref under s points at "#/$defs/..." or "#/definitions/..." (the only places that stay
// valid once the parameters schema is nested inside the call schema).
static int check_refs(const json_t *s, const char *tool) {
    if (json_is_object(s)) {
        const char *k; json_t *x;
        json_object_foreach((json_t *)s, k, x) {
            if (!strcmp(k, "$ref")) {
                const char *r = json_string_value(x);
                if (!r || (strncmp(r, "#/$defs/", 8) && strncmp(r, "#/definitions/", 14)))
                    return err_set(SLLM_ERR_UNSUPPORTED, "tools: function '%s': $ref '%s': only #/$defs/... and #/definitions/... are supported in tool parameters",
                                   tool, r ? r : "(not a string)");
            } else if (check_refs(x, tool) != SLLM_OK) return SLLM_ERR_UNSUPPORTED;
        }
    } else if (json_is_array(s)) {
        size_t i; json_t *x;
        json_array_foreach((json_t *)s, i, x) if (check_refs(x, tool) != SLLM_OK) return SLLM_ERR_UNSUPPORTED;
    }
    return SLLM_OK;
}

// Moves params[key] (an object of definitions) into root[key]; a name defined twice differently fails.
static int merge_defs(json_t *root, json_t *params, const char *key, const char *tool) {
    json_t *d = json_object_get(params, key);
    if (!d) return SLLM_OK;
    if (!json_is_object(d)) return err_set(SLLM_ERR_ARG, "tools: function '%s': parameters.%s must be an object", tool, key);
    json_t *into = json_object_get(root, key);
    if (!into) { json_object_set_new(root, key, json_object()); into = json_object_get(root, key); }
    const char *k; json_t *x;
    json_object_foreach(d, k, x) {
        json_t *have = json_object_get(into, k);
        if (have && !json_equal(have, x))
            return err_set(SLLM_ERR_UNSUPPORTED, "tools: function '%s': parameters.%s.%s is defined differently by another tool", tool, key, k);
        json_object_set(into, k, x);
    }
    json_object_del(params, key);
    return SLLM_OK;
}

int constrain_tools_gbnf(const json_t *tools, cp_format fmt, const char *only_name, bool parallel, char **out) {
    *out = NULL;
    if (fmt == CP_FORMAT_NONE) return err_set(SLLM_ERR_ARG, "tools: cannot force a tool call with tool-call format NONE");
    if (!json_is_array(tools) || json_array_size(tools) == 0) return err_set(SLLM_ERR_ARG, "tools: need a non-empty array of tools to force a call");
    if (fmt == CP_FORMAT_AUTO) fmt = CP_FORMAT_GENERIC;
    if (fmt == CP_FORMAT_LLAMA3) parallel = false;
    json_t *root = json_object(), *any = json_array();
    int rc = SLLM_OK;
    size_t i; json_t *tl;
    json_array_foreach((json_t *)tools, i, tl) {
        const json_t *fn = json_object_get(tl, "function");
        if (!fn) fn = tl;   // accept a bare {"name", "parameters"} too
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!json_is_object(fn) || !name) { rc = err_set(SLLM_ERR_ARG, "tools[%zu]: missing function.name", i); goto done; }
        if (only_name && strcmp(only_name, name)) continue;
        const json_t *p = json_object_get(fn, "parameters");
        if (p && !json_is_object(p) && !json_is_boolean(p)) { rc = err_set(SLLM_ERR_ARG, "tools[%zu] '%s': parameters must be an object", i, name); goto done; }
        json_t *params = p && json_is_object(p) ? json_deep_copy(p) : json_pack("{s:s, s:{}}", "type", "object", "properties");
        char *probe = NULL;   // converted alone first so an error names the tool and its own JSON pointer
        if ((rc = json_schema_to_gbnf(params, &probe)) != SLLM_OK) {
            err_wrap(rc, "tools[%zu] '%s': parameters", i, name);
            json_decref(params);
            goto done;
        }
        free(probe);
        if ((rc = check_refs(params, name)) || (rc = merge_defs(root, params, "$defs", name)) ||
            (rc = merge_defs(root, params, "definitions", name))) { json_decref(params); goto done; }
        json_t *call = json_pack("{s:s, s:{s:{s:s}, s:o}, s:[s, s], s:b}", "type", "object", "properties", "name", "const", name,
                                 fmt == CP_FORMAT_LLAMA3 ? "parameters" : "arguments", params, "required", "name",
                                 fmt == CP_FORMAT_LLAMA3 ? "parameters" : "arguments", "additionalProperties", 0);
        json_array_append_new(any, call);
    }
    if (json_array_size(any) == 0) {
        rc = err_set(SLLM_ERR_ARG, "tools: no tool named '%s'", only_name ? only_name : "");
        goto done;
    }
    json_t *one = json_array_size(any) == 1 ? json_incref(json_array_get(any, 0)) : json_pack("{s:O}", "anyOf", any);
    if (fmt == CP_FORMAT_GENERIC && parallel) {
        json_object_set_new(root, "type", json_string("object"));
        json_object_set_new(root, "properties", json_pack("{s:{s:s, s:o, s:i}}", "tool_calls", "type", "array", "items", one, "minItems", 1));
        json_object_set_new(root, "required", json_pack("[s]", "tool_calls"));
        json_object_set_new(root, "additionalProperties", json_false());
    } else {
        json_object_update(root, one);
        json_decref(one);
    }
    char *g = NULL;
    if ((rc = json_schema_to_gbnf(root, &g)) != SLLM_OK) { err_wrap(rc, "tools"); goto done; }
    const char *tail;
    if (fmt == CP_FORMAT_HERMES)
        tail = parallel ? "\nsllm_tool_call ::= \"<tool_call>\\n\" root \"\\n</tool_call>\"\n"
                          CONSTRAIN_TOOLS_ROOT " ::= sllm_tool_call ( \"\\n\" sllm_tool_call )*\n"
                        : "\nsllm_tool_call ::= \"<tool_call>\\n\" root \"\\n</tool_call>\"\n"
                          CONSTRAIN_TOOLS_ROOT " ::= sllm_tool_call\n";
    else tail = "\n" CONSTRAIN_TOOLS_ROOT " ::= root\n";
    size_t a = strlen(g), b = strlen(tail);
    char *s = malloc(a + b + 1);
    if (!s) { free(g); rc = err_set(SLLM_ERR_NOMEM, "tools: out of memory"); goto done; }
    memcpy(s, g, a); memcpy(s + a, tail, b + 1);
    free(g);
    *out = s;
done:
    json_decref(any);
    json_decref(root);
    return rc;
}

int constrain_new_tools(const constrain_vocab *v, const json_t *tools, cp_format fmt, const char *only_name,
                        bool parallel, constrain **out) {
    *out = NULL;
    char *src = NULL;
    int rc = constrain_tools_gbnf(tools, fmt, only_name, parallel, &src);
    if (rc != SLLM_OK) return rc;
    rc = constrain_new_gbnf(v, src, strlen(src), "<tools>", CONSTRAIN_TOOLS_ROOT, out);
    free(src);
    return rc;
}

// ---- generation: gen_generate's loop with the constraint as its sampling step

static int32_t hook_sample(void *c, sampler *smp, float *logits) { return constrain_sample(c, smp, logits); }
static int hook_accept(void *c, int32_t id) { return constrain_accept(c, id); }
static bool hook_done(void *c) { return constrain_done(c); }

int constrain_generate(model_session *s, const tok *t, sampler *smp, constrain *c, const int32_t *prompt,
                       int n_prompt, const gen_opts *o, gen_token_fn fn, void *ctx, gen_stats *st) {
    memset(st, 0, sizeof *st);
    if (o->filter || o->hook) return err_set(SLLM_ERR_ARG, "generate: use the constraint, not a filter, with constrain_generate");
    if (c && c->v->n_vocab != s->m->hp.n_vocab)
        return err_set(SLLM_ERR_ARG, "generate: constraint vocabulary has %d tokens, the model %d", c->v->n_vocab,
                       s->m->hp.n_vocab);
    gen_step_hook h = {hook_sample, hook_accept, hook_done, c};
    gen_opts oc = *o;
    if (c) oc.hook = &h;
    return gen_generate(s, t, smp, prompt, n_prompt, &oc, fn, ctx, st);
}
