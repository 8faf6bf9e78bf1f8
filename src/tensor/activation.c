// Elementwise activations: GELU (tanh approximation, GPT-2 / Gemma's gelu_pytorch_tanh), SiLU-gated
// SwiGLU and GELU-gated GeGLU. Backward functions accumulate (+=) into their outputs.
#include "tensor/ops.h"
#include <math.h>
#include "tensor/activation_kernels.h"
#include "tensor/matmul.h"

// GELU: gelu1 / gelu_grad_s1 of activation_kernels.h.
static inline float gelu_grad1(float x) { return gelu_grad_s1(x, 1.0f / gelu_den1(x)); }

static inline float sigmoid1(float x) { return 1.0f / (1.0f + expf(-x)); }

// Blocks of 8 so that gcc -O2 vectorizes it (y and x may not be known apart: read before written).
void add_f32(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float t[8];
        for (int u = 0; u < 8; u++) t[u] = y[i + u] + x[i + u];
        for (int u = 0; u < 8; u++) y[i + u] = t[u];
    }
    for (; i < n; i++) y[i] += x[i];
}

static void gelu_fwd_ref(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = gelu1(x[i]);
}

static void gelu_bwd_ref(float *dx, const float *dout, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] += dout[i] * gelu_grad1(x[i]);
}

static void geglu_fwd_ref(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = gelu1(gate[i]) * up[i];
}

static void geglu_bwd_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (dgate) dgate[i] += dout[i] * up[i] * gelu_grad1(gate[i]);
        if (dup) dup[i] += dout[i] * gelu1(gate[i]);
    }
}

static void swiglu_fwd_ref(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = gate[i] * sigmoid1(gate[i]) * up[i];
}

// silu'(g) = s (1 + g (1 - s)), s = sigmoid(g).
static void swiglu_bwd_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], s = sigmoid1(g);
        if (dgate) dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

const act_kernels *act_kernels_for(int isa) {
    static const act_kernels ref = {swiglu_fwd_ref, swiglu_bwd_ref, gelu_fwd_ref, gelu_bwd_ref, geglu_fwd_ref,
                                    geglu_bwd_ref};
    static const act_kernels k2 = {swiglu_fwd_avx2, swiglu_bwd_avx2, gelu_fwd_avx2, gelu_bwd_avx2, geglu_fwd_avx2,
                                   geglu_bwd_avx2};
    static const act_kernels k512 = {swiglu_fwd_avx512, swiglu_bwd_avx512, gelu_fwd_avx512, gelu_bwd_avx512,
                                     geglu_fwd_avx512, geglu_bwd_avx512};
    return isa >= ISA_AVX512 ? &k512 : isa >= ISA_AVX2 ? &k2 : &ref;
}

static const act_kernels *act_active(void) { return act_kernels_for((int)isa_active()); }

void swiglu_fwd(float *out, const float *gate, const float *up, int64_t n) { act_active()->swiglu_fwd(out, gate, up, n); }

void swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    if (!dgate || !dup) swiglu_bwd_ref(dgate, dup, dout, gate, up, n);
    else act_active()->swiglu_bwd(dgate, dup, dout, gate, up, n);
}

void gelu_fwd(float *out, const float *x, int64_t n) { act_active()->gelu_fwd(out, x, n); }

void gelu_bwd(float *dx, const float *dout, const float *x, int64_t n) { act_active()->gelu_bwd(dx, dout, x, n); }

void geglu_fwd(float *out, const float *gate, const float *up, int64_t n) { act_active()->geglu_fwd(out, gate, up, n); }

void geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    if (!dgate || !dup) geglu_bwd_ref(dgate, dup, dout, gate, up, n);
    else act_active()->geglu_bwd(dgate, dup, dout, gate, up, n);
}
