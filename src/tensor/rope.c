// Rotary position embedding: NORM (adjacent pairs, GGUF llama) and NEOX (halves, HF) styles, partial
// rotary, llama3 frequency scaling and linear position scaling.
// Angles pos * freq_scale * inv_freq are formed and fed to cos/sin in double: in float the angle of a
// position in the thousands already carries an absolute error near 1e-4 rad, so long contexts would
// drift from a float64 reference. The cost (n_rot/2 sincos per token) is small next to the matmuls.
#include "tensor/ops.h"
#include <math.h>
#include <stddef.h>

// Frequencies are handled in chunks so the cos/sin scratch lives on the stack for any n_rot.
#define ROPE_CHUNK 128

// Rotary dims actually used: n_rot <= 0 or > D means the whole head; an odd count drops its last dim.
static int rope_dims(const rope_params *p, int D) {
    int n = p->n_rot;
    if (n <= 0 || n > D) n = D;
    return n & ~1;
}

// inv_freq[i] = base^(-2i/n_rot), then HF's `_compute_llama3_parameters` when l3_factor > 0:
// long wavelengths (> orig_ctx / low_freq_factor) are divided by factor, short ones
// (< orig_ctx / high_freq_factor) kept, and the band between blends the two linearly in orig_ctx / wavelen.
static double inv_freq_f64(const rope_params *p, int n_rot, int i) {
    double base = p->base > 0 ? p->base : 10000.0;
    double f = 1.0 / pow(base, (double)(2 * i) / (double)n_rot);
    if (p->l3_factor > 0) {
        double factor = p->l3_factor, lo = p->l3_low_freq_factor, hi = p->l3_high_freq_factor;
        double orig = p->l3_orig_ctx;
        double wavelen = 2.0 * M_PI / f;
        if (wavelen > orig / lo) {
            f = f / factor;
        } else if (wavelen >= orig / hi) {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            f = (1.0 - smooth) * f / factor + smooth * f;
        }
    }
    return f;
}

void rope_inv_freq(const rope_params *p, float *inv_freq) {
    int n_rot = p->n_rot & ~1;
    for (int i = 0; i < n_rot / 2; i++) inv_freq[i] = (float)inv_freq_f64(p, n_rot, i);
}

// Rotates heads [0, H) of one position's x (H, D) by the angles of frequencies [i0, i0 + n) (cos cs,
// sin sn).
// The NEOX pairs go in blocks of ROT_LANES so that gcc -O2 vectorizes them (same operations per
// element, same bits).
#define ROT_LANES 8
static void rotate_halves(float *restrict x0, float *restrict x1, int n, const float *cs, const float *sn) {
    int i = 0;
    for (; i + ROT_LANES <= n; i += ROT_LANES)
        for (int u = 0; u < ROT_LANES; u++) {
            float a = x0[i + u], b = x1[i + u];
            x0[i + u] = a * cs[i + u] - b * sn[i + u];
            x1[i + u] = a * sn[i + u] + b * cs[i + u];
        }
    for (; i < n; i++) {
        float a = x0[i], b = x1[i];
        x0[i] = a * cs[i] - b * sn[i];
        x1[i] = a * sn[i] + b * cs[i];
    }
}

static void rotate_heads(float *x, int H, int D, rope_style style, int half, int i0, int n, const float *cs,
                         const float *sn) {
    for (int h = 0; h < H; h++) {
        float *xh = x + h * (int64_t)D;
        if (style == ROPE_NEOX) {
            rotate_halves(xh + i0, xh + half + i0, n, cs, sn);
        } else {
            float *xp = xh + 2 * i0;
            for (int i = 0; i < n; i++) {
                float a = xp[2 * i], b = xp[2 * i + 1];
                xp[2 * i] = a * cs[i] - b * sn[i];
                xp[2 * i + 1] = a * sn[i] + b * cs[i];
            }
        }
    }
}

// Frequencies [i0, i0 + n) with linear scaling and the divisors ff (may be NULL).
static void freqs(const rope_params *p, int n_rot, const float *ff, int i0, int n, double *freq) {
    double fscale = p->freq_scale > 0 ? p->freq_scale : 1.0;
    for (int i = 0; i < n; i++) freq[i] = inv_freq_f64(p, n_rot, i0 + i) * fscale / (ff ? (double)ff[i0 + i] : 1.0);
}

// cos / sign * sin of pos * freq[i] for i < n (angles in double, see the top of the file).
static void angles(int32_t pos, const double *freq, int n, double sign, float *cs, float *sn) {
    for (int i = 0; i < n; i++) {
        double a = (double)pos * freq[i];
        cs[i] = (float)cos(a);
        sn[i] = (float)(sign * sin(a));
    }
}

// Rotates every head of x (T, H, D) by angle sign * pos * freq; sign -1 is the inverse (backward).
// ff (n_rot/2, may be NULL) divides each frequency, as GGUF's rope_freqs.weight does in llama.cpp.
static void rope_apply(float *x, const int32_t *pos, int64_t T, int H, int D, const rope_params *p,
                       const float *ff, double sign) {
    int n_rot = rope_dims(p, D), half = n_rot / 2;
    double freq[ROPE_CHUNK];
    float cs[ROPE_CHUNK], sn[ROPE_CHUNK];
    for (int i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
        int n = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
        freqs(p, n_rot, ff, i0, n, freq);
        for (int64_t t = 0; t < T; t++) {
            angles(pos[t], freq, n, sign, cs, sn);
            rotate_heads(x + t * H * (int64_t)D, H, D, p->style, half, i0, n, cs, sn);
        }
    }
}

void rope_table(const int32_t *pos, int64_t T, int D, const rope_params *p, const float *ff, float *cs, float *sn) {
    int n_rot = rope_dims(p, D), half = n_rot / 2;
    double freq[ROPE_CHUNK];
    for (int i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
        int n = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
        freqs(p, n_rot, ff, i0, n, freq);
        for (int64_t t = 0; t < T; t++) angles(pos[t], freq, n, 1.0, cs + t * half + i0, sn + t * half + i0);
    }
}

void rope_fwd_table(float *x, int64_t T, int H, int D, const rope_params *p, const float *cs, const float *sn) {
    int half = rope_dims(p, D) / 2;
    for (int64_t t = 0; t < T; t++)
        rotate_heads(x + t * H * (int64_t)D, H, D, p->style, half, 0, half, cs + t * half, sn + t * half);
}

void rope_fwd(float *x, const int32_t *pos, int64_t T, int H, int D, const rope_params *p) {
    rope_apply(x, pos, T, H, D, p, NULL, 1.0);
}

// The rotation is orthogonal, so its gradient is the transpose: the same rotation by -angle.
void rope_bwd(float *dx, const int32_t *pos, int64_t T, int H, int D, const rope_params *p) {
    rope_apply(dx, pos, T, H, D, p, NULL, -1.0);
}

void rope_fwd_factors(float *x, const int32_t *pos, int64_t T, int H, int D, const rope_params *p,
                      const float *freq_factors) {
    rope_apply(x, pos, T, H, D, p, freq_factors, 1.0);
}

void rope_bwd_factors(float *dx, const int32_t *pos, int64_t T, int H, int D, const rope_params *p,
                      const float *freq_factors) {
    rope_apply(dx, pos, T, H, D, p, freq_factors, -1.0);
}
