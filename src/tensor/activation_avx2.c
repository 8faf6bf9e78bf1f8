// AVX2 (and, recompiled by activation_avx512.c, AVX-512) SwiGLU, GELU and GeGLU; twins of the scalar loops in
// activation.c.
#include "tensor/activation_kernels.h"
#include <immintrin.h>
#include <math.h>

#ifdef ACT_AVX512
#define W 16
typedef __m512 vf;
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define KNAME(x) x##_avx512
#else
#define W 8
typedef __m256 vf;
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define KNAME(x) x##_avx2
#endif
#include "tensor/simd_exp.h"

static inline vf vsigmoid(vf g) {
    vf one = VSET1(1.0f);
    return VDIV(one, VADD(one, vexp(VSUB(VSET1(0.0f), g))));
}

void KNAME(swiglu_fwd)(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf g = VLOAD(gate + i);
        VSTORE(out + i, VMUL(VMUL(g, vsigmoid(g)), VLOAD(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// silu'(g) = s (1 + g (1 - s)), s = sigmoid(g).
void KNAME(swiglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    vf one = VSET1(1.0f);
    for (; i + W <= n; i += W) {
        vf g = VLOAD(gate + i), s = vsigmoid(g), d = VLOAD(dout + i);
        vf ds = VMUL(s, VFMA(g, VSUB(one, s), one));
        VSTORE(dgate + i, VFMA(VMUL(d, VLOAD(up + i)), ds, VLOAD(dgate + i)));
        VSTORE(dup + i, VFMA(VMUL(d, g), s, VLOAD(dup + i)));
    }
    for (; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] += dout[i] * g * s;
    }
}

// GELU (tanh approximation) as x sigmoid(2u), u = k x (1 + c x^2); the tails are activation.c's
// (activation_kernels.h's gelu1 / gelu_grad_s1).
// sigmoid(2u) of x
static inline vf vgelu_s(vf x) {
    vf x2 = VMUL(x, x);
    vf u2 = VMUL(VMUL(x, VSET1(-2.0f * GELU_K)), VFMA(x2, VSET1(GELU_C), VSET1(1.0f)));   // -2u
    return VDIV(VSET1(1.0f), VADD(VSET1(1.0f), vexp(u2)));
}

// d/dx of x s(2u): s + 2 x s (1 - s) k (1 + 3c x^2)
static inline vf vgelu_grad(vf x, vf s) {
    vf du = VMUL(VSET1(2.0f * GELU_K), VFMA(VMUL(x, x), VSET1(3.0f * GELU_C), VSET1(1.0f)));
    return VFMA(VMUL(VMUL(x, s), VSUB(VSET1(1.0f), s)), du, s);
}

void KNAME(gelu_fwd)(float *out, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf v = VLOAD(x + i);
        VSTORE(out + i, VMUL(v, vgelu_s(v)));
    }
    for (; i < n; i++) out[i] = gelu1(x[i]);
}

void KNAME(gelu_bwd)(float *dx, const float *dout, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf v = VLOAD(x + i);
        VSTORE(dx + i, VFMA(VLOAD(dout + i), vgelu_grad(v, vgelu_s(v)), VLOAD(dx + i)));
    }
    for (; i < n; i++) dx[i] += dout[i] * gelu_grad_s1(x[i], 1.0f / gelu_den1(x[i]));
}

void KNAME(geglu_fwd)(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf g = VLOAD(gate + i);
        VSTORE(out + i, VMUL(VMUL(g, vgelu_s(g)), VLOAD(up + i)));
    }
    for (; i < n; i++) out[i] = gelu1(gate[i]) * up[i];
}

void KNAME(geglu_bwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf g = VLOAD(gate + i), s = vgelu_s(g), d = VLOAD(dout + i);
        VSTORE(dgate + i, VFMA(VMUL(d, VLOAD(up + i)), vgelu_grad(g, s), VLOAD(dgate + i)));
        VSTORE(dup + i, VFMA(VMUL(d, g), s, VLOAD(dup + i)));
    }
    for (; i < n; i++) {
        float g = gate[i];
        dgate[i] += dout[i] * up[i] * gelu_grad_s1(g, 1.0f / gelu_den1(g));
        dup[i] += dout[i] * gelu1(g);
    }
}
