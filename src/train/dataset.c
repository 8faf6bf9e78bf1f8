// Tokenizing records into samples with loss masks, and the batch stream (see dataset.h).
#include "train/dataset.h"
#include "train/dataset_int.h"
#include "base/error.h"
#include "base/rng.h"
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- assistant spans
static json_t *prefix(const json_t *msgs, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append(a, json_array_get(msgs, i));
    return a;
}

static int render_prefix(ds_render_fn render, void *ctx, const json_t *msgs, size_t n, int gen, char **t, size_t *l) {
    json_t *p = prefix(msgs, n);
    if (!p) return err_set(SLLM_ERR_NOMEM, "out of memory");
    *t = NULL;
    int rc = render(ctx, p, gen, t, l);
    json_decref(p);
    return rc;
}

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int ds_chat_spans(ds_render_fn render, void *ctx, const json_t *messages, char **text, size_t *len, size_t **spans,
                  int *n_spans, int *n_unstable) {
    *text = NULL;
    *spans = NULL;
    *n_spans = *n_unstable = 0;
    size_t n = json_array_size(messages), full_len = 0;
    char *full = NULL;
    int rc = render_prefix(render, ctx, messages, n, 0, &full, &full_len);
    if (rc) return rc;
    size_t *sp = malloc((n * 2 + 1) * sizeof *sp);
    if (!sp) { free(full); return err_set(SLLM_ERR_NOMEM, "out of memory"); }
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *role = json_string_value(json_object_get(json_array_get(messages, i), "role"));
        if (!role || strcmp(role, "assistant")) continue;
        char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if ((rc = render_prefix(render, ctx, messages, i, 1, &a, &al)) ||
            (rc = render_prefix(render, ctx, messages, i + 1, 0, &b, &bl))) {
            free(a);
            free(b);
            free(full);
            free(sp);
            return rc;
        }
        int stable = al <= bl && bl <= full_len && !memcmp(a, full, al) && !memcmp(b, full, bl);
        free(a);
        free(b);
        if (!stable) { (*n_unstable)++; continue; }
        size_t end = bl;
        while (end > al && is_ws(full[end - 1])) end--;   // the separator after the end-of-turn text
        if (end == al) continue;
        if (k && al < sp[k - 1]) { (*n_unstable)++; continue; }   // overlapping: template is not turn-ordered
        sp[k++] = al;
        sp[k++] = end;
    }
    *text = full;
    *len = full_len;
    *spans = sp;
    *n_spans = k / 2;
    return SLLM_OK;
}

// ---------------------------------------------------------------- tokenized corpus
struct ds_corpus {
    int32_t *ids;
    uint8_t *loss;
    int64_t n_tok, cap_tok;
    int64_t *off;   // n + 1
    int64_t n, cap;
    int split_docs; // CPT: a document may continue into the next row
    ds_tok_stats st;
};

static int corpus_add(ds_corpus *c, const int32_t *ids, const uint8_t *loss, int64_t n) {
    if (c->n_tok + n > c->cap_tok) {
        int64_t cap = c->cap_tok ? c->cap_tok : 4096;
        while (cap < c->n_tok + n) cap *= 2;
        int32_t *i2 = realloc(c->ids, (size_t)cap * sizeof *i2);
        if (!i2) return err_set(SLLM_ERR_NOMEM, "out of memory (tokenized corpus)");
        c->ids = i2;
        uint8_t *l2 = realloc(c->loss, (size_t)cap);
        if (!l2) return err_set(SLLM_ERR_NOMEM, "out of memory (tokenized corpus)");
        c->loss = l2;
        c->cap_tok = cap;
    }
    if (c->n + 2 > c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 256;
        int64_t *o2 = realloc(c->off, (size_t)cap * sizeof *o2);
        if (!o2) return err_set(SLLM_ERR_NOMEM, "out of memory (tokenized corpus)");
        c->off = o2;
        c->cap = cap;
        if (c->n == 0) c->off[0] = 0;
    }
    memcpy(c->ids + c->n_tok, ids, (size_t)n * sizeof *ids);
    memcpy(c->loss + c->n_tok, loss, (size_t)n);
    c->n_tok += n;
    c->off[++c->n] = c->n_tok;
    c->st.n_samples++;
    c->st.n_tokens += n;
    for (int64_t i = 0; i < n; i++) c->st.n_loss_tokens += loss[i];
    return 0;
}

typedef struct { int32_t *ids; uint8_t *loss; int64_t n, cap; } tokbuf;

static int tb_push(tokbuf *t, const int32_t *ids, int64_t n, uint8_t loss) {
    if (t->n + n + 2 > t->cap) {
        int64_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + n + 2) cap *= 2;
        int32_t *i2 = realloc(t->ids, (size_t)cap * sizeof *i2);
        if (!i2) return err_set(SLLM_ERR_NOMEM, "out of memory");
        t->ids = i2;
        uint8_t *l2 = realloc(t->loss, (size_t)cap);
        if (!l2) return err_set(SLLM_ERR_NOMEM, "out of memory");
        t->loss = l2;
        t->cap = cap;
    }
    memcpy(t->ids + t->n, ids, (size_t)n * sizeof *ids);
    memset(t->loss + t->n, loss, (size_t)n);
    t->n += n;
    return 0;
}

static int tok_segment(const ds_tok_opts *o, tokbuf *t, const char *s, size_t n, uint8_t loss) {
    if (n == 0) return 0;
    int32_t *ids = NULL;
    int k = 0;
    int rc = o->tokenize(o->tok_ctx, s, n, &ids, &k);
    if (!rc) rc = tb_push(t, ids, k, loss);
    free(ids);
    return rc;
}

// One record -> tokens + loss flags in t (BOS/EOS applied).
static int tokenize_record(const ds_tok_opts *o, const ds_record *r, tokbuf *t, ds_warner *w, const char *path,
                           ds_tok_stats *st) {
    t->n = 0;
    int rc = 0;
    if (r->kind == DS_REC_TEXT) {
        if ((rc = tok_segment(o, t, r->text, r->len, 1))) return rc;
        if (o->eos_id >= 0 && (t->n == 0 || t->ids[t->n - 1] != o->eos_id))
            if ((rc = tb_push(t, &o->eos_id, 1, 1))) return rc;
    } else {
        if (!o->render) return err_set(SLLM_ERR_ARG, "%s:%lld: chat record but no chat template (render callback)",
                                       path, (long long)r->line);
        char *text;
        size_t len, *sp;
        int ns, nu;
        if ((rc = ds_chat_spans(o->render, o->render_ctx, r->messages, &text, &len, &sp, &ns, &nu)))
            return err_wrap(rc, "%s:%lld", path, (long long)r->line);
        int all = o->mode == DS_CPT || o->loss_on_prompt;
        if (nu && !all) {
            st->n_unstable_turns += nu;
            ds_warn(w, "%s:%lld: %d assistant turn(s) render differently inside the whole conversation; "
                       "they get no loss", path, (long long)r->line, nu);
        }
        size_t at = 0;
        for (int k = 0; k < ns && !rc && !all; k++) {
            rc = tok_segment(o, t, text + at, sp[2 * k] - at, 0);
            if (!rc) rc = tok_segment(o, t, text + sp[2 * k], sp[2 * k + 1] - sp[2 * k], 1);
            at = sp[2 * k + 1];
        }
        if (!rc) rc = tok_segment(o, t, text + at, len - at, (uint8_t)all);
        free(text);
        free(sp);
        if (rc) return err_wrap(rc, "%s:%lld", path, (long long)r->line);
    }
    if (o->bos_id >= 0 && (t->n == 0 || t->ids[0] != o->bos_id)) {
        if ((rc = tb_push(t, &o->bos_id, 1, 0))) return rc;   // grow, then shift right by one
        memmove(t->ids + 1, t->ids, (size_t)(t->n - 1) * sizeof *t->ids);
        memmove(t->loss + 1, t->loss, (size_t)(t->n - 1));
        t->ids[0] = o->bos_id;
    }
    if (t->n) t->loss[0] = 0;   // a document's first token is never a target
    return 0;
}

int ds_tokenize(const ds_source *src, const ds_tok_opts *o, ds_corpus **out) {
    *out = NULL;
    if (!o || !o->tokenize) return err_set(SLLM_ERR_ARG, "ds_tokenize: no tokenize callback");
    ds_corpus *c = calloc(1, sizeof *c);
    if (!c) return err_set(SLLM_ERR_NOMEM, "out of memory");
    c->split_docs = o->mode == DS_CPT;
    ds_warner w = {o->warn, o->warn_ctx, o->max_warnings, 0};
    const char *path = ds_source_path(src);
    tokbuf t = {0};
    int rc = 0;
    for (int64_t i = 0; i < ds_source_count(src) && !rc; i++) {
        const ds_record *r = ds_source_get(src, i);
        if ((rc = tokenize_record(o, r, &t, &w, path, &c->st))) break;
        if (t.n == 0 || (t.n == 1 && o->bos_id >= 0)) {
            c->st.n_empty++;
            ds_warn(&w, "%s:%lld: no tokens (sample skipped)", path, (long long)r->line);
            continue;
        }
        if (o->max_tokens > 0 && t.n > o->max_tokens) {
            if (o->mode == DS_SFT && o->long_policy == DS_LONG_DROP) {
                c->st.n_dropped_long++;
                continue;
            }
            c->st.n_truncated++;
            t.n = o->max_tokens;
        }
        int64_t nl = 0;
        for (int64_t k = 0; k < t.n; k++) nl += t.loss[k];
        if (nl == 0) {
            c->st.n_dropped_no_loss++;
            ds_warn(&w, "%s:%lld: no token has loss (prompt longer than max_tokens?); sample skipped", path,
                    (long long)r->line);
            continue;
        }
        rc = corpus_add(c, t.ids, t.loss, t.n);
    }
    free(t.ids);
    free(t.loss);
    if (rc) { ds_corpus_free(c); return rc; }
    if (c->n == 0) {
        ds_corpus_free(c);
        return err_set(SLLM_ERR_FORMAT, "%s: no usable samples", path);
    }
    *out = c;
    return SLLM_OK;
}

void ds_corpus_free(ds_corpus *c) {
    if (!c) return;
    free(c->ids);
    free(c->loss);
    free(c->off);
    free(c);
}
int64_t ds_corpus_count(const ds_corpus *c) { return c->n; }
const ds_tok_stats *ds_corpus_stats(const ds_corpus *c) { return &c->st; }
void ds_corpus_sample(const ds_corpus *c, int64_t i, const int32_t **ids, const uint8_t **loss, int64_t *n) {
    *ids = c->ids + c->off[i];
    *loss = c->loss + c->off[i];
    *n = c->off[i + 1] - c->off[i];
}

// ---------------------------------------------------------------- batches
int ds_batch_alloc(ds_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    if (B <= 0 || T <= 0) return err_set(SLLM_ERR_ARG, "batch: B=%d T=%d must be > 0", B, T);
    size_t n = (size_t)B * (size_t)T;
    b->tokens = malloc(n * sizeof(int32_t));
    b->targets = malloc(n * sizeof(int32_t));
    b->pos = malloc(n * sizeof(int32_t));
    b->doc_start = malloc(n * sizeof(int32_t));
    if (!b->tokens || !b->targets || !b->pos || !b->doc_start) {
        ds_batch_free(b);
        return err_set(SLLM_ERR_NOMEM, "batch: out of memory (B=%d T=%d)", B, T);
    }
    b->B = B;
    b->T = T;
    return SLLM_OK;
}

void ds_batch_free(ds_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->pos);
    free(b->doc_start);
    memset(b, 0, sizeof *b);
}

typedef struct { uint32_t corpus, idx; } draw;

struct ds_loader {
    ds_corpus **c;
    int n;
    double *cum;          // cumulative normalised weights
    ds_loader_opts o;
    uint32_t **train, **val;   // per corpus: sample indices
    int64_t *n_train, *n_val;
    int64_t epoch_len;
    draw *order;          // draws of epoch `order_epoch`
    int64_t order_epoch;
    ds_pos pos;
    int64_t val_index, val_offset, val_total;   // validation cursor: sample and token offset in it
    // row scratch (T+1)
    int32_t *rt;
    uint8_t *rl;
    int32_t *rd;
};

static uint64_t mix64(uint64_t a, uint64_t b) {
    uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void shuffle(uint32_t *a, int64_t n, rng_state *r) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        uint32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

// The draws of one epoch: a pure function of (seed, epoch).
static int build_order(ds_loader *l, int64_t epoch) {
    if (l->order && l->order_epoch == epoch) return 0;
    if (!l->order && !(l->order = malloc((size_t)l->epoch_len * sizeof *l->order)))
        return err_set(SLLM_ERR_NOMEM, "data loader: out of memory (%lld draws)", (long long)l->epoch_len);
    rng_state r;
    rng_seed(&r, mix64(l->o.seed, 0x45504F4348ull + (uint64_t)epoch));
    int64_t *cur = calloc((size_t)l->n, sizeof *cur);
    uint32_t **perm = calloc((size_t)l->n, sizeof *perm);
    int rc = 0;
    if (!cur || !perm) rc = err_set(SLLM_ERR_NOMEM, "data loader: out of memory");
    for (int s = 0; s < l->n && !rc; s++) {
        perm[s] = malloc((size_t)l->n_train[s] * sizeof **perm);
        if (!perm[s]) { rc = err_set(SLLM_ERR_NOMEM, "data loader: out of memory"); break; }
        memcpy(perm[s], l->train[s], (size_t)l->n_train[s] * sizeof **perm);
        if (!l->o.no_shuffle) shuffle(perm[s], l->n_train[s], &r);
    }
    for (int64_t k = 0; k < l->epoch_len && !rc; k++) {
        int s = 0;
        if (l->n > 1) {
            double u = rng_double(&r);
            while (s < l->n - 1 && u >= l->cum[s]) s++;
        }
        if (cur[s] == l->n_train[s]) {   // corpus used up within the epoch: start another pass over it
            cur[s] = 0;
            if (!l->o.no_shuffle) shuffle(perm[s], l->n_train[s], &r);
        }
        l->order[k] = (draw){(uint32_t)s, perm[s][cur[s]++]};
    }
    for (int s = 0; perm && s < l->n; s++) free(perm[s]);
    free(perm);
    free(cur);
    if (!rc) l->order_epoch = epoch;
    else l->order_epoch = -1;
    return rc;
}

int ds_loader_new(ds_corpus *const *corpora, const double *weights, int n, const ds_loader_opts *o,
                  ds_loader **out) {
    *out = NULL;
    if (n <= 0 || !o || o->B <= 0 || o->T <= 0)
        return err_set(SLLM_ERR_ARG, "data loader: need at least one corpus and B, T > 0");
    if (o->val_fraction < 0 || o->val_fraction >= 1 || o->val_count < 0)
        return err_set(SLLM_ERR_ARG, "data loader: val_fraction %g must be in [0, 1), val_count >= 0", o->val_fraction);
    double wsum = 0;
    for (int s = 0; s < n; s++) {
        double w = weights ? weights[s] : 1.0;
        if (!(w > 0)) return err_set(SLLM_ERR_ARG, "data loader: weight of dataset %d is %g, must be > 0", s, w);
        wsum += w;
    }
    ds_loader *l = calloc(1, sizeof *l);
    if (!l) return err_set(SLLM_ERR_NOMEM, "out of memory");
    l->n = n;
    l->o = *o;
    l->order_epoch = -1;
    l->c = calloc((size_t)n, sizeof *l->c);
    l->cum = calloc((size_t)n, sizeof *l->cum);
    l->train = calloc((size_t)n, sizeof *l->train);
    l->val = calloc((size_t)n, sizeof *l->val);
    l->n_train = calloc((size_t)n, sizeof *l->n_train);
    l->n_val = calloc((size_t)n, sizeof *l->n_val);
    l->rt = malloc(((size_t)o->T + 1) * sizeof *l->rt);
    l->rl = malloc((size_t)o->T + 1);
    l->rd = malloc(((size_t)o->T + 1) * sizeof *l->rd);
    int rc = 0;
    if (!l->c || !l->cum || !l->train || !l->val || !l->n_train || !l->n_val || !l->rt || !l->rl || !l->rd)
        rc = err_set(SLLM_ERR_NOMEM, "out of memory");
    double acc = 0;
    for (int s = 0; s < n && !rc; s++) {
        l->c[s] = corpora[s];
        acc += (weights ? weights[s] : 1.0) / wsum;
        l->cum[s] = s == n - 1 ? 1.0 : acc;
        int64_t cnt = ds_corpus_count(corpora[s]);
        if (cnt > UINT32_MAX) { rc = err_set(SLLM_ERR_ARG, "data loader: dataset %d has too many samples", s); break; }
        int64_t nv = o->val_count > 0 ? o->val_count : (int64_t)(o->val_fraction * (double)cnt + 0.5);
        if (nv > cnt - 1) nv = cnt - 1;   // keep at least one training sample
        uint32_t *perm = malloc((size_t)cnt * sizeof *perm);
        l->val[s] = malloc((size_t)(nv ? nv : 1) * sizeof *perm);
        l->train[s] = malloc((size_t)(cnt - nv) * sizeof *perm);
        if (!perm || !l->val[s] || !l->train[s]) { free(perm); rc = err_set(SLLM_ERR_NOMEM, "out of memory"); break; }
        for (int64_t i = 0; i < cnt; i++) perm[i] = (uint32_t)i;
        // held-out samples: a seeded choice that depends only on (seed, dataset index), kept in file order
        rng_state r;
        rng_seed(&r, mix64(o->seed, 0x56414Cull + (uint64_t)s));
        shuffle(perm, cnt, &r);
        uint8_t *is_val = calloc((size_t)cnt, 1);
        if (!is_val) { free(perm); rc = err_set(SLLM_ERR_NOMEM, "out of memory"); break; }
        for (int64_t i = 0; i < nv; i++) is_val[perm[i]] = 1;
        for (int64_t i = 0; i < cnt; i++) {
            if (is_val[i]) l->val[s][l->n_val[s]++] = (uint32_t)i;
            else l->train[s][l->n_train[s]++] = (uint32_t)i;
        }
        l->val_total += nv;
        free(is_val);
        free(perm);
    }
    if (!rc) {
        double w0 = l->cum[0];
        l->epoch_len = o->epoch_len > 0 ? o->epoch_len : (int64_t)((double)l->n_train[0] / w0 + 0.999999);
        if (l->epoch_len < 1) l->epoch_len = 1;
        rc = build_order(l, 0);
    }
    if (rc) { ds_loader_free(l); return rc; }
    *out = l;
    return SLLM_OK;
}

void ds_loader_free(ds_loader *l) {
    if (!l) return;
    for (int s = 0; s < l->n; s++) {
        if (l->train) free(l->train[s]);
        if (l->val) free(l->val[s]);
    }
    free(l->train); free(l->val); free(l->n_train); free(l->n_val);
    free(l->c); free(l->cum); free(l->order);
    free(l->rt); free(l->rl); free(l->rd);
    free(l);
}

// Sample source for filling rows: the training order, or the validation list.
typedef struct {
    ds_loader *l;
    int val;
    ds_pos p;
} cursor;

static int cursor_get(cursor *cu, const ds_corpus **c, int64_t *idx) {
    ds_loader *l = cu->l;
    if (cu->val) {
        if (cu->p.index >= l->val_total) return 0;
        int64_t k = cu->p.index;
        int s = 0;
        while (k >= l->n_val[s]) k -= l->n_val[s++];
        *c = l->c[s];
        *idx = l->val[s][k];
        return 1;
    }
    if (cu->p.index >= l->epoch_len) { cu->p.epoch++; cu->p.index = 0; cu->p.offset = 0; }
    int rc = build_order(l, cu->p.epoch);
    if (rc) return rc;
    draw d = l->order[cu->p.index];
    *c = l->c[d.corpus];
    *idx = d.idx;
    return 1;
}

// Fills row r of the batch from the cursor. Returns 1 if it holds data, 0 if the source is exhausted.
static int fill_row(ds_loader *l, cursor *cu, ds_batch *b, int row) {
    const int T = l->o.T, R = T + 1;
    int fill = 0, doc = 0, rc;
    while (fill < R) {
        const ds_corpus *c = NULL;
        int64_t idx = 0;
        if ((rc = cursor_get(cu, &c, &idx)) <= 0) { if (rc < 0) return rc; break; }
        const int32_t *ids;
        const uint8_t *loss;
        int64_t n;
        ds_corpus_sample(c, idx, &ids, &loss, &n);
        int64_t take;
        if (c->split_docs) {
            take = n - cu->p.offset;
            if (take > R - fill) take = R - fill;
            ids += cu->p.offset;
            loss += cu->p.offset;
        } else {
            if (fill > 0 && (!l->o.pack || n > R - fill)) break;   // whole samples only: next row
            take = n < R ? n : R;                                   // longer than a row: truncated
        }
        for (int64_t k = 0; k < take; k++) {
            l->rt[fill + k] = ids[k];
            l->rl[fill + k] = k == 0 ? 0 : loss[k];   // the first token of a piece is never a target
            l->rd[fill + k] = fill;
        }
        fill += (int)take;
        doc++;
        if (c->split_docs && cu->p.offset + take < n) cu->p.offset += take;
        else { cu->p.index++; cu->p.offset = 0; }
        if (!c->split_docs && !l->o.pack) break;
    }
    if (fill == 0) return 0;
    for (int k = fill; k < R; k++) {   // padding is its own document
        l->rt[k] = l->o.pad_id;
        l->rl[k] = 0;
        l->rd[k] = fill;
    }
    int32_t *tok = b->tokens + (size_t)row * T, *tg = b->targets + (size_t)row * T, *ps = b->pos + (size_t)row * T,
            *dst = b->doc_start + (size_t)row * T;
    for (int t = 0; t < T; t++) {
        tok[t] = l->rt[t];
        int ok = l->rl[t + 1] && l->rd[t + 1] == l->rd[t] && t + 1 < fill;
        tg[t] = ok ? l->rt[t + 1] : -1;
        b->n_targets += ok;
        ps[t] = t - l->rd[t];
        dst[t] = l->rd[t];
    }
    (void)doc;
    return 1;
}

static void pad_row(ds_loader *l, ds_batch *b, int row) {
    const int T = l->o.T;
    for (int t = 0; t < T; t++) {
        b->tokens[(size_t)row * T + t] = l->o.pad_id;
        b->targets[(size_t)row * T + t] = -1;
        b->pos[(size_t)row * T + t] = t;
        b->doc_start[(size_t)row * T + t] = 0;
    }
}

int ds_loader_next(ds_loader *l, ds_batch *b) {
    if (b->B != l->o.B || b->T != l->o.T)
        return err_set(SLLM_ERR_ARG, "data loader: batch is %dx%d, loader makes %dx%d", b->B, b->T, l->o.B, l->o.T);
    cursor cu = {l, 0, l->pos};
    b->n_targets = 0;
    b->n_rows = 0;
    for (int r = 0; r < l->o.B; r++) {
        int rc = fill_row(l, &cu, b, r);
        if (rc < 0) return rc;
        b->n_rows++;
    }
    if (cu.p.index >= l->epoch_len) { cu.p.epoch++; cu.p.index = 0; cu.p.offset = 0; }
    l->pos = cu.p;
    return SLLM_OK;
}

int ds_loader_val_next(ds_loader *l, ds_batch *b) {
    if (b->B != l->o.B || b->T != l->o.T)
        return err_set(SLLM_ERR_ARG, "data loader: batch is %dx%d, loader makes %dx%d", b->B, b->T, l->o.B, l->o.T);
    // The offset is kept with the index: a held-out document longer than one batch continues where the
    // previous batch stopped instead of restarting (which would never finish).
    cursor cu = {l, 1, {0, l->val_index, l->val_offset}};
    b->n_targets = 0;
    b->n_rows = 0;
    for (int r = 0; r < l->o.B; r++) {
        int rc = fill_row(l, &cu, b, r);
        if (rc < 0) return rc;
        if (rc == 0) pad_row(l, b, r);
        else b->n_rows++;
    }
    l->val_index = cu.p.index;
    l->val_offset = cu.p.offset;
    if (b->n_rows == 0) { l->val_index = 0; l->val_offset = 0; return 0; }
    return 1;
}

ds_pos ds_loader_pos(const ds_loader *l) { return l->pos; }

int ds_loader_seek(ds_loader *l, ds_pos p) {
    if (p.epoch < 0 || p.index < 0 || p.index >= l->epoch_len || p.offset < 0)
        return err_set(SLLM_ERR_ARG, "data position (epoch %lld, index %lld, offset %lld) is outside the data "
                       "(epoch length %lld): was the checkpoint made with other data or options?",
                       (long long)p.epoch, (long long)p.index, (long long)p.offset, (long long)l->epoch_len);
    int rc = build_order(l, p.epoch);
    if (rc) return rc;
    draw d = l->order[p.index];
    const int32_t *ids;
    const uint8_t *loss;
    int64_t n;
    ds_corpus_sample(l->c[d.corpus], d.idx, &ids, &loss, &n);
    if (p.offset >= n && p.offset > 0)
        return err_set(SLLM_ERR_ARG, "data position: offset %lld beyond sample of %lld tokens", (long long)p.offset,
                       (long long)n);
    l->pos = p;
    return SLLM_OK;
}

int64_t ds_loader_epoch_len(const ds_loader *l) { return l->epoch_len; }
int64_t ds_loader_n_train(const ds_loader *l, int s) { return s >= 0 && s < l->n ? l->n_train[s] : 0; }
int64_t ds_loader_n_val(const ds_loader *l, int s) { return s >= 0 && s < l->n ? l->n_val[s] : 0; }

int ds_loader_draw(ds_loader *l, int64_t epoch, int64_t index, int *corpus, int64_t *sample) {
    if (epoch < 0 || index < 0 || index >= l->epoch_len) return err_set(SLLM_ERR_ARG, "draw index out of range");
    int rc = build_order(l, epoch);
    if (rc) return rc;
    *corpus = (int)l->order[index].corpus;
    *sample = l->order[index].idx;
    return SLLM_OK;
}

json_t *ds_pos_to_json(ds_pos p) {
    return json_pack("{s:I, s:I, s:I}", "epoch", (json_int_t)p.epoch, "index", (json_int_t)p.index, "offset",
                     (json_int_t)p.offset);
}

int ds_pos_from_json(const json_t *j, ds_pos *p) {
    json_int_t e, i, o;
    json_error_t err;
    if (!j || json_unpack_ex((json_t *)j, &err, JSON_STRICT, "{s:I, s:I, s:I}", "epoch", &e, "index", &i, "offset",
                             &o) != 0)
        return err_set(SLLM_ERR_FORMAT, "data position: %s", j ? err.text : "missing");
    *p = (ds_pos){e, i, o};
    return SLLM_OK;
}
