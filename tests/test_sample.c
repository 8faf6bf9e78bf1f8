// Sampler tests: greedy = argmax, penalties follow llama.cpp/OpenAI formulas, top-k/top-p/min-p
// restrict the support exactly, the empirical distribution matches softmax(logits/T), same seed
// gives the same sequence, and a filter is honoured.
#include "test.h"
#include "gen/sample.h"
#include "base/rng.h"

static bool only_even(void *ctx, int32_t id) { (void)ctx; return id % 2 == 0; }
static bool none(void *ctx, int32_t id) { (void)ctx; (void)id; return false; }
static bool all(void *ctx, int32_t id) { (void)ctx; (void)id; return true; }

// A vocabulary-sized row: without a filter the sampler picks its top candidates straight from the
// logits (a heap over one pass); an allow-all filter takes the path that fills and selects all of
// them. Both must give the same candidates in the same order (ties included: many equal logits,
// lower id first), the same picks for the same seed, and probabilities against a double-precision
// softmax within 1e-5.
static void check_large_vocab(void) {
    enum { V = 151936 };
    float *base = malloc(sizeof(float) * V), *l = malloc(sizeof(float) * V);
    uint64_t st = 7;
    for (int i = 0; i < V; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        base[i] = (float)((st >> 40) % 2000) * 0.01f - 10.0f;   // 2000 levels: many exact ties
    }
    double mx = -1e30, z = 0;
    for (int i = 0; i < V; i++) mx = base[i] > mx ? base[i] : mx;
    for (int i = 0; i < V; i++) z += exp((double)base[i] - mx);
    static const struct { float temp; int top_k; } C[] = {{0, 0}, {0.8f, 40}, {1.0f, 200}};
    for (int c = 0; c < 3; c++) {
        sample_params p; sample_params_default(&p);
        p.temp = C[c].temp; p.top_k = C[c].top_k; p.top_p = 1.0f; p.min_p = 0; p.seed = 11;
        sampler *a = sampler_new(&p, V), *b = sampler_new(&p, V);
        int same = 1, order = 1, close = 1;
        for (int step = 0; step < 20; step++) {
            memcpy(l, base, sizeof(float) * V);
            int32_t ia = sampler_sample(a, l, NULL, NULL);
            memcpy(l, base, sizeof(float) * V);
            int32_t ib = sampler_sample(b, l, all, NULL);
            same &= ia == ib;
            sample_cand ta[40], tb[40];
            int na = sampler_top_probs(a, ta, 40), nb = sampler_top_probs(b, tb, 40);
            order &= na == nb && na == 40;
            for (int i = 0; i < na && i < nb; i++) {
                order &= ta[i].id == tb[i].id && ta[i].logit == tb[i].logit;
                if (i) order &= ta[i - 1].logit > ta[i].logit || (ta[i - 1].logit == ta[i].logit && ta[i - 1].id < ta[i].id);
                double want = exp((double)base[ta[i].id] - mx) / z;
                close &= fabs(ta[i].p - want) <= 1e-5 * want;
            }
        }
        CHECK(same, "large vocab, temp %.1f top_k %d: picks differ between the direct and the full path", C[c].temp, C[c].top_k);
        CHECK(order, "large vocab, temp %.1f top_k %d: candidates differ or are out of order", C[c].temp, C[c].top_k);
        CHECK(close, "large vocab, temp %.1f top_k %d: probabilities off the double softmax", C[c].temp, C[c].top_k);
        sampler_free(a); sampler_free(b);
    }
    free(base); free(l);
}

int main(void) {
    enum { V = 8 };
    const float base[V] = {1.0f, 3.0f, 2.0f, -1.0f, 0.5f, 2.9f, -2.0f, 0.0f};
    float l[V];
    sample_params p; sample_params_default(&p);

    p.temp = 0; sampler *s = sampler_new(&p, V);
    memcpy(l, base, sizeof l);
    CHECK(sampler_sample(s, l, NULL, NULL) == 1, "greedy picks argmax");
    sample_cand top[3]; int nt = sampler_top_probs(s, top, 3);
    double z = 0; for (int i = 0; i < V; i++) z += exp(base[i]);
    CHECK(nt == 3 && top[0].id == 1 && top[1].id == 5 && top[2].id == 2);
    CHECK_CLOSE(top[0].p, exp(3.0) / z, 1e-6);
    memcpy(l, base, sizeof l);
    CHECK(sampler_sample(s, l, only_even, NULL) == 2, "filtered greedy");
    sampler_free(s);

    // repetition penalty 2: positive logit halves, negative doubles; frequency/presence subtract.
    p.repeat_penalty = 2.0f; p.freq_penalty = 0.5f; p.presence_penalty = 0.25f; p.repeat_last_n = 64;
    s = sampler_new(&p, V);
    sampler_accept(s, 1); sampler_accept(s, 1); sampler_accept(s, 3);
    memcpy(l, base, sizeof l);
    int32_t id = sampler_sample(s, l, NULL, NULL);
    CHECK_CLOSE(l[1], 3.0 / 2 - 2 * 0.5 - 0.25, 1e-6);
    CHECK_CLOSE(l[3], -1.0 * 2 - 0.5 - 0.25, 1e-6);
    CHECK(id == 5, "after penalties the argmax moves to id 5 (got %d)", id);
    sampler_free(s);

    // Distribution at temperature T with no truncation matches softmax(l/T) (chi-square-ish bound).
    sample_params_default(&p); p.temp = 0.7f; p.top_k = 0; p.top_p = 1; p.min_p = 0; p.seed = 42;
    s = sampler_new(&p, V);
    int cnt[V] = {0}; const int N = 200000;
    for (int i = 0; i < N; i++) { memcpy(l, base, sizeof l); cnt[sampler_sample(s, l, NULL, NULL)]++; }
    double zt = 0; for (int i = 0; i < V; i++) zt += exp(base[i] / 0.7);
    for (int i = 0; i < V; i++) {
        double e = exp(base[i] / 0.7) / zt, f = (double)cnt[i] / N;
        CHECK(fabs(f - e) < 4 * sqrt(e * (1 - e) / N) + 1e-4, "id %d freq %.4f expected %.4f", i, f, e);
    }
    sampler_free(s);

    // top-k = 2: only ids 1 and 5 ever appear. top-p: 0.5 keeps {1,5}. min-p 0.5 keeps p >= 0.5 p_max.
    sample_params_default(&p); p.temp = 1.0f; p.top_k = 2; p.top_p = 1; p.min_p = 0; p.seed = 1;
    s = sampler_new(&p, V);
    bool ok = true;
    for (int i = 0; i < 2000; i++) { memcpy(l, base, sizeof l); id = sampler_sample(s, l, NULL, NULL); ok &= id == 1 || id == 5; }
    CHECK(ok, "top-k support"); sampler_free(s);
    p.top_k = 0; p.top_p = 0.5f; s = sampler_new(&p, V); ok = true;
    for (int i = 0; i < 2000; i++) { memcpy(l, base, sizeof l); id = sampler_sample(s, l, NULL, NULL); ok &= id == 1 || id == 5; }
    CHECK(ok, "top-p support"); sampler_free(s);
    p.top_p = 1; p.min_p = 0.5f; s = sampler_new(&p, V); ok = true;
    int seen2 = 0;   // p(2)/p(1) = e^-1 < 0.5 -> excluded; p(5)/p(1) = e^-0.1 -> kept
    for (int i = 0; i < 2000; i++) { memcpy(l, base, sizeof l); id = sampler_sample(s, l, NULL, NULL); ok &= id == 1 || id == 5; seen2 += id == 2; }
    CHECK(ok && seen2 == 0, "min-p support"); sampler_free(s);

    // A large vocabulary without top-k (the path that avoids sorting everything): the support is
    // exactly what a full sort gives — the top-p prefix, cut by min-p — and every member appears.
    {
        enum { BV = 5000 };
        static float big[BV], work[BV];
        static int order[BV], allowed[BV], seen[BV];
        rng_state r; rng_seed(&r, 11);
        for (int i = 0; i < BV; i++) big[i] = 3.0f * rng_normal(&r);
        for (int i = 0; i < BV; i++) order[i] = i;
        for (int i = 1; i < BV; i++)   // insertion sort by logit, descending (reference)
            for (int j = i; j > 0 && big[order[j]] > big[order[j - 1]]; j--) { int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t; }
        double z = 0, mxl = big[order[0]];
        for (int i = 0; i < BV; i++) z += exp(big[i] - mxl);
        const double top_p = 0.9, min_p = 0.02;
        double cum = 0;
        int n_allowed = 0;
        for (int i = 0; i < BV; i++) {
            double pi = exp(big[order[i]] - mxl) / z;
            if (exp(big[order[i]] - mxl) < min_p) break;
            allowed[order[i]] = 1; n_allowed++;
            cum += pi;
            if (cum >= top_p) break;
        }
        sample_params_default(&p); p.temp = 1.5f; p.top_k = 0; p.top_p = (float)top_p; p.min_p = (float)min_p; p.seed = 3;
        s = sampler_new(&p, BV);
        bool in_support = true;
        for (int i = 0; i < 20000; i++) {
            memcpy(work, big, sizeof big);
            int32_t t = sampler_sample(s, work, NULL, NULL);
            in_support &= t >= 0 && allowed[t];
            if (t >= 0) seen[t] = 1;
        }
        int n_seen = 0;
        for (int i = 0; i < BV; i++) n_seen += seen[i];
        CHECK(in_support, "a token outside the top-p/min-p support was drawn");
        CHECK(n_seen == n_allowed, "drew %d distinct tokens, support has %d", n_seen, n_allowed);
        sampler_free(s);
    }

    // Same seed, same sequence; different seed, different sequence.
    sample_params_default(&p); p.seed = 7;
    int32_t a[64], b[64], c[64];
    for (int run = 0; run < 3; run++) {
        if (run == 2) p.seed = 8;
        s = sampler_new(&p, V);
        for (int i = 0; i < 64; i++) { memcpy(l, base, sizeof l); (run == 0 ? a : run == 1 ? b : c)[i] = sampler_sample(s, l, NULL, NULL); }
        sampler_free(s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed same output");
    CHECK(memcmp(a, c, sizeof a) != 0, "different seed differs");

    // A filter that forbids everything returns -1.
    s = sampler_new(&p, V);
    memcpy(l, base, sizeof l);
    CHECK(sampler_sample(s, l, none, NULL) == -1);
    sampler_free(s);
    check_large_vocab();
    return test_report();
}
