#include "gen/sample.h"
#include "base/rng.h"
#include "tensor/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sampler {
    sample_params p;
    int n_vocab;
    rng_state rng;
    int32_t *hist; int n_hist, cap_hist;     // accepted tokens, for penalties
    int32_t *counts;                         // per-id counts inside the penalty window
    sample_cand *cand;                       // scratch (n_vocab)
    float *keep_p;                           // scratch (n_vocab): temperature-1 probabilities
    int n_cand;                              // candidates after the last sample (sorted)
    double lse;                              // log-sum-exp of all logits after penalties (for --probs)
};

void sample_params_default(sample_params *p) {
    memset(p, 0, sizeof *p);
    p->temp = 0.8f; p->top_k = 40; p->top_p = 0.95f; p->min_p = 0.05f;
    p->repeat_penalty = 1.0f; p->repeat_last_n = 64;
}

sampler *sampler_new(const sample_params *p, int n_vocab) {
    sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p; s->n_vocab = n_vocab;
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->keep_p = malloc((size_t)n_vocab * sizeof *s->keep_p);
    if (!s->counts || !s->cand || !s->keep_p) { sampler_free(s); return NULL; }
    rng_seed(&s->rng, p->seed);
    return s;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->hist); free(s->counts); free(s->cand); free(s->keep_p); free(s);
}

void sampler_reset(sampler *s) { s->n_hist = 0; }

void sampler_accept(sampler *s, int32_t id) {
    if (id < 0 || id >= s->n_vocab) return;
    if (s->n_hist == s->cap_hist) {
        int cap = s->cap_hist ? 2 * s->cap_hist : 256;
        int32_t *h = realloc(s->hist, (size_t)cap * sizeof *h);
        if (!h) return;
        s->hist = h; s->cap_hist = cap;
    }
    s->hist[s->n_hist++] = id;
}

static bool penalties_active(const sample_params *p) {
    return p->repeat_penalty != 1.0f || p->freq_penalty != 0.0f || p->presence_penalty != 0.0f;
}

static void apply_penalties(sampler *s, float *logits) {
    const sample_params *p = &s->p;
    if (!penalties_active(p) || s->n_hist == 0) return;
    int n = p->repeat_last_n < 0 ? s->n_hist : (p->repeat_last_n < s->n_hist ? p->repeat_last_n : s->n_hist);
    const int32_t *w = s->hist + s->n_hist - n;
    for (int i = 0; i < n; i++) s->counts[w[i]]++;
    for (int i = 0; i < n; i++) {
        int32_t id = w[i];
        int c = s->counts[id];
        if (c == 0) continue;                 // already handled (duplicate in the window)
        float l = logits[id];
        if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)c * p->freq_penalty + p->presence_penalty;
        logits[id] = l;
        s->counts[id] = 0;
    }
}

static int cmp_cand_desc(const void *a, const void *b) {
    float x = ((const sample_cand *)a)->logit, y = ((const sample_cand *)b)->logit;
    if (x != y) return x < y ? 1 : -1;
    int32_t i = ((const sample_cand *)a)->id, j = ((const sample_cand *)b)->id;
    return (i > j) - (i < j);                 // ties: lower id first, like argmax
}

// Keeps the k largest logits at the front of cand[0..n), sorted descending. Partial selection
// keeps this O(V) for the common small k instead of sorting the whole vocabulary.
static int keep_top(sample_cand *c, int n, int k) {
    if (k <= 0 || k >= n) { qsort(c, (size_t)n, sizeof *c, cmp_cand_desc); return n; }
    int lo = 0, hi = n - 1;
    while (lo < hi) {                         // quickselect so c[0..k) holds the top k
        sample_cand piv = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cmp_cand_desc(&c[i], &piv) < 0) i++;
            while (cmp_cand_desc(&c[j], &piv) > 0) j--;
            if (i <= j) { sample_cand t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j; else if (k - 1 >= i) lo = i; else break;
    }
    qsort(c, (size_t)k, sizeof *c, cmp_cand_desc);
    return k;
}

// worse(a, b): a ranks after b in cmp_cand_desc's order.
static inline bool cand_worse(const sample_cand *a, const sample_cand *b) { return cmp_cand_desc(a, b) > 0; }

static void heap_down(sample_cand *h, int k, int i) {   // min-heap on the rank: the worst at the root
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && cand_worse(&h[l], &h[w])) w = l;
        if (r < k && cand_worse(&h[r], &h[w])) w = r;
        if (w == i) return;
        sample_cand t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

// The k best logits (0 < k < n) straight from the row into c[0..k), sorted like keep_top: one pass with
// a heap of the k best so far, every other logit rejected by one compare with the heap's worst. Same
// result as filling all n candidates and keep_top, without writing n candidates (~1 ms a token for a
// 150k vocabulary).
static int top_from_logits(sample_cand *c, const float *logits, int n, int k) {
    for (int i = 0; i < k; i++) c[i] = (sample_cand){.id = i, .logit = logits[i], .p = 0};
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(c, k, i);
    for (int i = k; i < n; i++)
        if (logits[i] > c[0].logit) {   // equal logit: the later id ranks after the root anyway
            c[0] = (sample_cand){.id = i, .logit = logits[i], .p = 0};
            heap_down(c, k, 0);
        }
    qsort(c, (size_t)k, sizeof *c, cmp_cand_desc);
    return k;
}

static void softmax_cands(sample_cand *c, int n, float temp) {
    double sum = 0;
    float mx = c[0].logit;
    for (int i = 0; i < n; i++) { c[i].p = expf((c[i].logit - mx) / temp); sum += c[i].p; }
    for (int i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

// Drops candidates the filter forbids, preserving order. Returns the new count.
static int filter_cands(sample_cand *c, int n, sample_filter_fn f, void *ctx) {
    if (!f) return n;
    int m = 0;
    for (int i = 0; i < n; i++) if (f(ctx, c[i].id)) c[m++] = c[i];
    return m;
}

// top-p (smallest prefix with mass >= top_p) then min-p (drop p < min_p * p(max)) over candidates
// sorted by probability, p renormalized over them. Returns how many survive.
static int truncate_top_p_min_p(const sample_params *p, const sample_cand *c, int n) {
    if (p->top_p < 1.0f) {
        double cum = 0; int m = n;
        for (int i = 0; i < n; i++) { cum += c[i].p; if (cum >= p->top_p) { m = i + 1; break; } }
        n = m;
    }
    if (p->min_p > 0.0f) {
        float th = p->min_p * c[0].p; int m = 1;
        while (m < n && c[m].p >= th) m++;
        n = m;
    }
    return n;
}

// The same truncation without top-k, without sorting the whole vocabulary (a 150k-entry sort costs
// ~20 ms a token): min-p is a fixed logit cut (p_i / p_max < min_p <=> l_i < l_max + log(min_p)),
// and the top-p prefix is found by selecting the top 256, 1024, ... until their mass (over the whole
// distribution, via lse) reaches top_p. Same result as sorting everything.
static int truncate_untopk(sampler *s, sample_cand *c, int n, float mx) {
    const sample_params *p = &s->p;
    if (p->min_p > 0.0f) {
        float cut = mx + logf(p->min_p);
        int m = 0;
        for (int i = 0; i < n; i++) if (c[i].logit >= cut) c[m++] = c[i];
        n = m;
    }
    int k = n;
    if (p->top_p < 1.0f) {
        for (int want = 256;; want *= 4) {
            k = keep_top(c, n, want < n ? want : 0);
            double cum = 0; int m = k;
            for (int i = 0; i < k; i++) {
                cum += exp((double)c[i].logit - s->lse);
                if (cum >= p->top_p) { m = i + 1; break; }
            }
            if (m < k || k == n) { k = m; break; }
        }
    } else {
        k = keep_top(c, n, 0);
    }
    softmax_cands(c, k, 1.0f);
    s->n_cand = k;
    return k;
}

int32_t sampler_sample(sampler *s, float *logits, sample_filter_fn filter, void *fctx) {
    const sample_params *p = &s->p;
    apply_penalties(s, logits);
    sample_cand *c = s->cand;
    int n = s->n_vocab;
    s->lse = logsumexp_f32(logits, n);
    // Greedy keeps the best 64 (the order for --probs), top-k its k: without a filter, only those
    int want = p->temp <= 0.0f ? 64 : p->top_k;
    bool direct = !filter && want > 0 && want < n;
    float mx = -INFINITY;
    if (direct) {
        n = top_from_logits(c, logits, n, want);
        mx = c[0].logit;
    } else {
        for (int i = 0; i < n; i++) { c[i].id = i; c[i].logit = logits[i]; c[i].p = 0; if (logits[i] > mx) mx = logits[i]; }
    }
    if (p->temp <= 0.0f) {
        // Greedy: a full sort is not needed, only the order for the filter and for --probs.
        if (!direct) n = keep_top(c, n, filter ? 0 : 64);
        n = filter_cands(c, n, filter, fctx);
        if (n == 0) { s->n_cand = 0; return -1; }
        softmax_cands(c, n, 1.0f);
        s->n_cand = n;
        return c[0].id;
    }
    if (!filter && p->top_k <= 0) {
        n = truncate_untopk(s, c, n, mx);
    } else {
        if (!direct) n = keep_top(c, n, filter ? 0 : p->top_k);
        n = filter_cands(c, n, filter, fctx);
        if (n == 0) { s->n_cand = 0; return -1; }
        if (filter && p->top_k > 0 && p->top_k < n) n = p->top_k;
        softmax_cands(c, n, 1.0f);
        s->n_cand = n;
        n = truncate_top_p_min_p(p, c, n);
    }
    // Temperature applies to the surviving candidates; sample_cand.p of the kept prefix is
    // rewritten, but sampler_top_probs reports the temperature-1 values saved below.
    float *keep_p = s->keep_p;
    for (int i = 0; i < n; i++) keep_p[i] = c[i].p;
    softmax_cands(c, n, p->temp);
    double r = rng_double(&s->rng), cum = 0;
    int32_t pick = c[n - 1].id;
    for (int i = 0; i < n; i++) { cum += c[i].p; if (r < cum) { pick = c[i].id; break; } }
    for (int i = 0; i < n; i++) c[i].p = keep_p[i];
    return pick;
}

int sampler_top_probs(const sampler *s, sample_cand *out, int k) {
    // Probabilities over the whole vocabulary (after penalties, temperature 1), not renormalized
    // over the candidates that survived top-k/top-p.
    int n = k < s->n_cand ? k : s->n_cand;
    for (int i = 0; i < n; i++) {
        out[i] = s->cand[i];
        out[i].p = (float)exp((double)out[i].logit - s->lse);
    }
    return n;
}
