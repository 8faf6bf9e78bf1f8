// RMSNorm and LayerNorm, forward and backward. eps sits inside the square root, as in PyTorch / HF.
// Row sums use 8 independent float lanes: the fixed-width inner loop lets gcc -O2 vectorize a float
// reduction without -ffast-math, and the pairwise lanes are more accurate than one serial sum.
#include "tensor/ops.h"
#include <math.h>
#include <stddef.h>

#define LANES 8

static float lanes_total(const float *acc) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float row_sum(const float *x, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) acc[u] += x[i + u];
    float s = lanes_total(acc);
    for (; i < n; i++) s += x[i];
    return s;
}

static float row_dot(const float *a, const float *b, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) acc[u] += a[i + u] * b[i + u];
    float s = lanes_total(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// Sum of (x - c)^2, for the variance around the mean.
static float row_sq_dev(const float *x, float c, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int u = 0; u < LANES; u++) { float d = x[i + u] - c; acc[u] += d * d; }
    float s = lanes_total(acc);
    for (; i < n; i++) { float d = x[i] - c; s += d * d; }
    return s;
}

// y = x * r * (w + w_offset), or x * r without w (y may be x). Blocks of LANES read whole before they
// are written, so gcc -O2 vectorizes them without an overlap check; one rounding per operation either
// way: the same bits as the plain loop.
static void scale_row(float *y, const float *x, float r, const float *w, float w_offset, int64_t n) {
    int64_t i = 0;
    float t[LANES];
    if (w) {
        for (; i + LANES <= n; i += LANES) {
            for (int u = 0; u < LANES; u++) t[u] = x[i + u] * r * (w[i + u] + w_offset);
            for (int u = 0; u < LANES; u++) y[i + u] = t[u];
        }
    } else {
        for (; i + LANES <= n; i += LANES) {
            for (int u = 0; u < LANES; u++) t[u] = x[i + u] * r;
            for (int u = 0; u < LANES; u++) y[i + u] = t[u];
        }
    }
    for (; i < n; i++) y[i] = w ? x[i] * r * (w[i] + w_offset) : x[i] * r;
}

// y (T, C) = x * rstd * (w + w_offset); w == NULL means a unit weight (w_offset then unused).
void rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, float w_offset, int64_t T, int64_t C, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * C;
        float *yt = y + t * C;
        float r = 1.0f / sqrtf(row_dot(xt, xt, C) / (float)C + eps);
        if (rstd) rstd[t] = r;
        scale_row(yt, xt, r, w, w_offset, C);
    }
}

// With g = w + w_offset and y = x r g, r = (mean(x^2) + eps)^-1/2:
//   dx = r (dy g) - x r^3 / C * sum(dy g x),   dw = sum_t dy x r.
// dx / dw may be NULL when that gradient is not wanted.
void rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, float w_offset,
                 const float *rstd, int64_t T, int64_t C) {
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * C, *dyt = dy + t * C;
        float r = rstd[t];
        if (dw)
            for (int64_t i = 0; i < C; i++) dw[i] += dyt[i] * xt[i] * r;
        if (!dx) continue;
        float *dxt = dx + t * C;
        float dot;
        if (w) {
            float acc[LANES] = {0};
            int64_t i = 0;
            for (; i + LANES <= C; i += LANES)
                for (int u = 0; u < LANES; u++) acc[u] += dyt[i + u] * (w[i + u] + w_offset) * xt[i + u];
            dot = lanes_total(acc);
            for (; i < C; i++) dot += dyt[i] * (w[i] + w_offset) * xt[i];
        } else {
            dot = row_dot(dyt, xt, C);
        }
        float c = dot * r * r * r / (float)C;
        if (w) {
            for (int64_t i = 0; i < C; i++) dxt[i] += r * dyt[i] * (w[i] + w_offset) - c * xt[i];
        } else {
            for (int64_t i = 0; i < C; i++) dxt[i] += r * dyt[i] - c * xt[i];
        }
    }
}

// y = (x - mean) * rstd * w + b; w == NULL means unit weight, b == NULL no bias.
void layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                   int64_t T, int64_t C, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * C;
        float *yt = y + t * C;
        float m = row_sum(xt, C) / (float)C;
        // Two passes (mean, then squared deviations) rather than E[x^2] - m^2, which cancels badly
        // for rows with a large common offset.
        float r = 1.0f / sqrtf(row_sq_dev(xt, m, C) / (float)C + eps);
        if (mean) mean[t] = m;
        if (rstd) rstd[t] = r;
        for (int64_t i = 0; i < C; i++) {
            float v = (xt[i] - m) * r;
            if (w) v *= w[i];
            if (b) v += b[i];
            yt[i] = v;
        }
    }
}

// xhat = (x - mean) r, g = dy w:  dx = r (g - mean(g) - xhat mean(g xhat)),  dw = sum dy xhat, db = sum dy.
void layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                   const float *mean, const float *rstd, int64_t T, int64_t C) {
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * C, *dyt = dy + t * C;
        float m = mean[t], r = rstd[t];
        if (dw)
            for (int64_t i = 0; i < C; i++) dw[i] += dyt[i] * (xt[i] - m) * r;
        if (db)
            for (int64_t i = 0; i < C; i++) db[i] += dyt[i];
        if (!dx) continue;
        float *dxt = dx + t * C;
        float sg[LANES] = {0}, sgx[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= C; i += LANES)
            for (int u = 0; u < LANES; u++) {
                float g = dyt[i + u] * (w ? w[i + u] : 1.0f);
                sg[u] += g;
                sgx[u] += g * (xt[i + u] - m) * r;
            }
        float mg = lanes_total(sg), mgx = lanes_total(sgx);
        for (; i < C; i++) {
            float g = dyt[i] * (w ? w[i] : 1.0f);
            mg += g;
            mgx += g * (xt[i] - m) * r;
        }
        mg /= (float)C;
        mgx /= (float)C;
        for (int64_t j = 0; j < C; j++) {
            float g = dyt[j] * (w ? w[j] : 1.0f);
            dxt[j] += r * (g - mg - (xt[j] - m) * r * mgx);
        }
    }
}
