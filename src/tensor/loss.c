// Softmax and the cross-entropy loss with its gradient, both shifted by the row max for stability.
// Sums of exponentials run in double: a vocabulary row has up to ~260k terms.
#include "tensor/ops.h"
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include "tensor/loss_kernels.h"
#include "tensor/matmul.h"

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

// One row (see loss_kernels.h): the plain-C reference of the SIMD twins in loss_avx2.c.
double ce_row_ref(float *dz, const float *z, int64_t V, int32_t y, float gs) {
    float m = row_max(z, V), zy = z[y];   // zy first: dz may be z itself
    double sum = 0.0;
    if (dz) {
        for (int64_t i = 0; i < V; i++) { dz[i] = expf(z[i] - m); sum += dz[i]; }
        float inv = (float)(1.0 / sum) * gs;
        for (int64_t i = 0; i < V; i++) dz[i] *= inv;
        dz[y] -= gs;
    } else {
        for (int64_t i = 0; i < V; i++) sum += expf(z[i] - m);
    }
    return (double)m + log(sum) - (double)zy;
}

static _Atomic int g_simd = 1;
int loss_use_simd(int on) { return atomic_exchange(&g_simd, on ? 1 : 0); }

typedef double (*ce_row_fn)(float *, const float *, int64_t, int32_t, float);
static ce_row_fn ce_row_kernel(void) {
    if (!atomic_load(&g_simd)) return ce_row_ref;
    isa_level isa = isa_active();
    return isa >= ISA_AVX512 ? ce_row_avx512 : isa >= ISA_AVX2 ? ce_row_avx2 : ce_row_ref;
}

double logsumexp_f32(const float *x, int64_t n) {
    if (n <= 0) return -INFINITY;
    return ce_row_kernel()(NULL, x, n, 0, 1.0f) + (double)x[0];   // (lse - x[0]) + x[0]
}

// Two passes: the maximum (a max reduction the compiler vectorizes; a compare-and-branch loop over a
// 150K vocabulary was ~1% of a small model's decode step), then its first index.
void argmax_f32_merge(float *bv, int64_t *bi, const float *x, int64_t off, int64_t n) {
    float m[16];
    for (int i = 0; i < 16; i++) m[i] = -INFINITY;
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int i = 0; i < 16; i++) m[i] = x[k + i] > m[i] ? x[k + i] : m[i];
    float best = m[0];
    for (int i = 1; i < 16; i++) best = m[i] > best ? m[i] : best;
    for (; k < n; k++) best = x[k] > best ? x[k] : best;
    if (best < *bv) return;
    for (k = 0; k < n; k++)
        if (x[k] == best) break;
    if (k == n) return;   // every value NaN
    if (best > *bv || *bi < 0 || off + k < *bi) { *bv = best; *bi = off + k; }
}

int64_t argmax_f32(const float *x, int64_t n) {
    float bv = -INFINITY;
    int64_t bi = -1;
    if (n > 0) argmax_f32_merge(&bv, &bi, x, 0, n);
    return bi < 0 ? 0 : bi;
}

// Per counted row: loss = logsumexp(z) - z[target]; dz = (softmax(z) - onehot(target)) * grad_scale.
// Rows with target < 0 (or >= V, which no valid batch holds) are skipped and their dlogits zeroed.
// dlogits is written (=), not accumulated: it is the start of the backward pass.
double cross_entropy_fwd_bwd(float *dlogits, const float *logits, const int32_t *targets,
                             int64_t T, int64_t V, float grad_scale, int64_t *n_counted) {
    ce_row_fn row = ce_row_kernel();
    double total = 0.0;
    int64_t counted = 0;
    for (int64_t t = 0; t < T; t++) {
        float *dz = dlogits ? dlogits + t * V : NULL;
        int32_t y = targets[t];
        if (y < 0 || y >= V) {
            if (dz)
                for (int64_t i = 0; i < V; i++) dz[i] = 0.0f;
            continue;
        }
        total += row(dz, logits + t * V, V, y, grad_scale);
        counted++;
    }
    if (n_counted) *n_counted = counted;
    return total;
}
