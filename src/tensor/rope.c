// Rotary position embedding: NORM (adjacent pairs, GGUF llama) and NEOX (halves, HF) styles, partial
// rotary, llama3 frequency scaling and linear position scaling.
// Angles pos * freq_scale * inv_freq are formed and fed to cos/sin in double: in float the angle of a
// position in the thousands already carries an absolute error near 1e-4 rad, so long contexts would
// drift from a float64 reference. The cost (n_rot/2 sincos per token) is small next to the matmuls.
#include "tensor/ops.h"
#include <math.h>

// Rotary dims actually used: n_rot <= 0 or > D means the whole head; an odd count drops its last dim.
static int rope_dims(const rope_params *p, int D) {
    int n = p->n_rot;
    if (n <= 0 || n > D) n = D;
    return n & ~1;
}

// inv_freq[i] = base^(-2i/n_rot), then HF's `_compute_llama3_parameters` when l3_factor > 0:
// long wavelengths (> orig_ctx / low_freq_factor) are divided by factor, short ones
// (< orig_ctx / high_freq_factor) kept, and the band between blends the two linearly in orig_ctx / wavelen.
static void inv_freq_f64(const rope_params *p, int n_rot, double *out) {
    int half = n_rot / 2;
    double base = p->base > 0 ? p->base : 10000.0;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(base, (double)(2 * i) / (double)n_rot);
        if (p->l3_factor > 0) {
            double factor = p->l3_factor, lo = p->l3_low_freq_factor, hi = p->l3_high_freq_factor;
            double orig = p->l3_orig_ctx;
            double low_wavelen = orig / lo, high_wavelen = orig / hi;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (orig / wavelen - lo) / (hi - lo);
                f = (1.0 - smooth) * f / factor + smooth * f;
            }
        }
        out[i] = f;
    }
}

void rope_inv_freq(const rope_params *p, float *inv_freq) {
    int n_rot = p->n_rot & ~1;
    double f[CHUNK_FREQS_MAX_DUMMY_UNUSED_GUARD > 0 ? 1 : 1];
    (void)f;
    for (int c = 0; c < n_rot / 2; c += 128) {
        double buf[128];
        rope_params q = *p;
        (void)q;
        inv_freq_f64(p, n_rot, buf);
        (void)c;
    }
}
