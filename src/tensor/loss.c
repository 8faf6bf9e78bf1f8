// Softmax and the cross-entropy loss with its gradient, both shifted by the row max for stability.
// Sums of exponentials run in double: a vocabulary row has up to ~260k terms.
#include "tensor/ops.h"
#include <math.h>
#include <stddef.h>

static float row_max(const float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void softmax_inplace(float *x, int64_t n) {
    if (n <= 0) return;
    float m = row_max(x, n);
    if (m == -INFINITY) {   // every entry masked: no distribution exists; return all zeros rather than NaN
        for (int64_t i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

// Per counted row: loss = logsumexp(z) - z[target]; dz = (softmax(z) - onehot(target)) * grad_scale.
// Rows with target < 0 (or >= V, which no valid batch holds) are skipped and their dlogits zeroed.
// dlogits is written (=), not accumulated: it is the start of the backward pass.
double cross_entropy_fwd_bwd(float *dlogits, const float *logits, const int32_t *targets,
                             int64_t T, int64_t V, float grad_scale, int64_t *n_counted) {
    double total = 0.0;
    int64_t counted = 0;
    for (int64_t t = 0; t < T; t++) {
        const float *z = logits + t * V;
        float *dz = dlogits ? dlogits + t * V : NULL;
        int32_t y = targets[t];
        if (y < 0 || y >= V) {
            if (dz)
                for (int64_t i = 0; i < V; i++) dz[i] = 0.0f;
            continue;
        }
        float m = row_max(z, V);
        double sum = 0.0;
        if (dz) {
            for (int64_t i = 0; i < V; i++) { dz[i] = expf(z[i] - m); sum += dz[i]; }
            float inv = (float)(1.0 / sum) * grad_scale;
            for (int64_t i = 0; i < V; i++) dz[i] *= inv;
            dz[y] -= grad_scale;
        } else {
            for (int64_t i = 0; i < V; i++) sum += expf(z[i] - m);
        }
        total += (double)m + log(sum) - (double)z[y];
        counted++;
    }
    if (n_counted) *n_counted = counted;
    return total;
}
