// Quantization formats: dequantization against an independent numpy reference (tests/ref/quant_ref.py)
// on random block bytes, legacy quantizers byte-for-byte against the same reference, known answers,
// quantize->dequantize error bounds per type, and requantization stability. The grid types (IQ1 / IQ2 /
// IQ3) against llama.cpp's own GGML library (test_grid_types_vs_ggml).
#include "test.h"
#include "tensor/quant.h"
#include "tensor/matmul.h"
#include "base/threadpool.h"
#include "ggml_oracle.h"
#include <math.h>
#include <stdint.h>

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd32(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float rndu(void) { return (float)(rnd32() & 0xFFFFFF) / 16777216.0f; }   // [0, 1)
static float rndn(void) {                                                        // ~N(0,1)
    float s = 0;
    for (int i = 0; i < 12; i++) s += rndu();
    return s - 6;
}
static void put_f16(uint8_t *p, float v) { uint16_t h = f32_to_f16(v); memcpy(p, &h, 2); }

static const dtype ALL[] = {DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1,
                            DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_Q8_K, DT_IQ4_NL, DT_IQ4_XS};
#define NT (int)(sizeof ALL / sizeof ALL[0])

// Random block bytes with sane (finite, moderate) scale fields.
static void random_blocks(dtype t, uint8_t *buf, int64_t n) {
    size_t bytes = dtype_row_bytes(t, n);
    for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)rnd32();
    const dtype_info *di = dtype_get(t);
    int64_t nb = n / di->block;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = buf + i * di->block_bytes;
        switch (t) {
        case DT_F32: { float v = rndn() * 3; memcpy(b, &v, 4); break; }
        case DT_F16: put_f16(b, rndn() * 3); break;
        case DT_BF16: { uint16_t h = f32_to_bf16(rndn() * 3); memcpy(b, &h, 2); break; }
        case DT_Q4_0: case DT_Q5_0: case DT_Q8_0: case DT_IQ4_NL: put_f16(b, (rndu() - 0.5f) * 0.2f); break;
        case DT_IQ4_XS: put_f16(b, (rndu() - 0.5f) * 0.01f); break;   // scales_h / scales_l stay random
        case DT_Q4_1: case DT_Q5_1: put_f16(b, rndu() * 0.1f); put_f16(b + 2, (rndu() - 0.5f)); break;
        case DT_Q4_K: case DT_Q5_K: put_f16(b, rndu() * 0.01f); put_f16(b + 2, rndu() * 0.01f); break;
        case DT_Q6_K: put_f16(b + 208, (rndu() - 0.5f) * 0.01f); break;
        case DT_Q2_K: put_f16(b + 80, rndu() * 0.01f); put_f16(b + 82, rndu() * 0.01f); break;
        case DT_Q3_K: put_f16(b + 108, (rndu() - 0.5f) * 0.01f); break;
        case DT_Q8_K: { float v = (rndu() - 0.5f) * 0.1f; memcpy(b, &v, 4); break; }
        default: break;
        }
    }
}

static const char *py(void) {
    const char *p = getenv("SLLM_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static int have_numpy(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", py());
    return system(cmd) == 0;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}
static long read_file(const char *path, void *p, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t r = fread(p, 1, cap, f);
    fclose(f);
    return (long)r;
}

static int run_ref(const char *mode, dtype t, const char *in, const char *out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s tests/ref/quant_ref.py %s %s %s %s", py(), mode, dtype_get(t)->name, in, out);
    return system(cmd);
}

static void test_against_python(void) {
    if (access("tests/ref/quant_ref.py", R_OK) != 0 || !have_numpy()) {
        SKIP("python3 + numpy or tests/ref/quant_ref.py not available: numpy reference checks skipped");
        return;
    }
    char in[64], out[64];
    snprintf(in, sizeof in, "/tmp/sllm_tq_in_%d.bin", (int)getpid());
    snprintf(out, sizeof out, "/tmp/sllm_tq_out_%d.bin", (int)getpid());
    const int64_t n = 256 * 12;
    uint8_t *blk = malloc(dtype_row_bytes(DT_F32, n) + 64);
    float *ours = malloc(n * sizeof(float)), *theirs = malloc((n + 16) * sizeof(float));
    for (int ti = 0; ti < NT; ti++) {
        dtype t = ALL[ti];
        random_blocks(t, blk, n);
        size_t bytes = dtype_row_bytes(t, n);
        CHECK(dequantize_row(t, blk, ours, n) == 0);
        CHECK(write_file(in, blk, bytes) == 0);
        int rc = run_ref("deq", t, in, out);
        CHECK(rc == 0, "quant_ref.py deq %s failed", dtype_get(t)->name);
        long got = read_file(out, theirs, (n + 16) * sizeof(float));
        CHECK(got == (long)(n * sizeof(float)), "%s: python returned %ld bytes", dtype_get(t)->name, got);
        if (rc != 0 || got != (long)(n * sizeof(float))) continue;
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float a = ours[i], b = theirs[i];
            if (!(fabsf(a - b) <= 1e-6f * fmaxf(1.f, fabsf(b)))) {
                if (bad++ < 3) fprintf(stderr, "  %s[%ld]: ours %.9g numpy %.9g\n", dtype_get(t)->name, (long)i, a, b);
            }
        }
        CHECK(bad == 0, "%s: %d of %ld dequantized values differ from numpy", dtype_get(t)->name, bad, (long)n);
    }
    // Legacy quantizers byte-for-byte (GGML's scale choice and rounding rules, reimplemented in numpy).
    const dtype legacy[] = {DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0};
    float *x = malloc(n * sizeof(float));
    uint8_t *q1 = malloc(dtype_row_bytes(DT_Q8_0, n)), *q2 = malloc(dtype_row_bytes(DT_Q8_0, n) + 64);
    for (int64_t i = 0; i < n; i++) x[i] = rndn() * (i % 97 == 0 ? 8.f : 1.f);
    for (int i = 0; i < 32; i++) x[64 + i] = 0;   // an all-zero block
    for (size_t li = 0; li < sizeof legacy / sizeof legacy[0]; li++) {
        dtype t = legacy[li];
        size_t bytes = dtype_row_bytes(t, n);
        CHECK(quantize_row(t, x, q1, n) == 0);
        CHECK(write_file(in, x, n * sizeof(float)) == 0);
        CHECK(run_ref("q", t, in, out) == 0);
        long got = read_file(out, q2, bytes + 64);
        CHECK(got == (long)bytes && memcmp(q1, q2, bytes) == 0, "%s: quantized bytes differ from numpy reference",
              dtype_get(t)->name);
    }
    free(x); free(q1); free(q2);
    remove(in); remove(out);
    free(blk); free(ours); free(theirs);
}

// Hand-computed answers that do not depend on any other implementation.
static void test_known_answers(void) {
    // Q4_0 of x = j - 16: max |x| is x[0] = -16 so d = 2; levels floor(j/2 + 0.5), capped at 15.
    float x[32], y[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    blk_q4_0 b;
    CHECK(quantize_row(DT_Q4_0, x, &b, 32) == 0);
    CHECK(f16_to_f32(b.d) == 2.0f);
    int ok = 1;
    for (int j = 0; j < 32; j++) {
        int want = (int)floorf(j / 2.0f + 0.5f);
        if (want > 15) want = 15;
        int got = j < 16 ? (b.qs[j] & 0xF) : (b.qs[j - 16] >> 4);
        ok &= got == want;
    }
    CHECK(ok, "q4_0 levels");
    dequantize_row(DT_Q4_0, &b, y, 32);
    CHECK(y[0] == -16.f && y[31] == 14.f, "y0=%g y31=%g", y[0], y[31]);
    // Q8_0 of 0..31 scaled: amax 31 -> d = 31/127, levels round(j*127/31).
    for (int j = 0; j < 32; j++) x[j] = (float)j;
    blk_q8_0 q8;
    quantize_row(DT_Q8_0, x, &q8, 32);
    CHECK(q8.qs[31] == 127 && q8.qs[0] == 0 && q8.qs[16] == 66, "q8_0 %d %d %d", q8.qs[31], q8.qs[0], q8.qs[16]);
    // Q6_K: a block with scale d=1, all scales 1, all levels 33 dequantizes to 1.0 everywhere.
    blk_q6_K b6;
    memset(&b6, 0, sizeof b6);
    memset(b6.ql, 0x11, sizeof b6.ql);                 // low nibbles 1
    memset(b6.qh, 0xAA, sizeof b6.qh);                 // high bits 2 -> level 32 + 1
    memset(b6.scales, 1, sizeof b6.scales);
    b6.d = f32_to_f16(1.0f);
    float y6[256];
    dequantize_row(DT_Q6_K, &b6, y6, 256);
    int all1 = 1;
    for (int j = 0; j < 256; j++) all1 &= y6[j] == 1.0f;
    CHECK(all1, "q6_K known block");
    // Q4_K: scales packed for sub-block 5 (j >= 4 path): sc = 0x2A, m = 0x15.
    blk_q4_K b4;
    memset(&b4, 0, sizeof b4);
    b4.d = f32_to_f16(1.0f); b4.dmin = f32_to_f16(1.0f);
    b4.scales[9] = (0x2A & 0xF) | ((0x15 & 0xF) << 4);
    b4.scales[1] |= (0x2A >> 4) << 6;
    b4.scales[5] |= (0x15 >> 4) << 6;
    memset(b4.qs, 0x30, sizeof b4.qs);                 // level 0 (lo) / 3 (hi)
    float y4[256];
    dequantize_row(DT_Q4_K, &b4, y4, 256);
    CHECK(y4[5 * 32] == 3.f * 0x2A - 0x15, "q4_K sub-block 5: %g", y4[5 * 32]);
    CHECK(y4[4 * 32] == 0.f, "q4_K sub-block 4: %g", y4[4 * 32]);
    // Q2_K: sub-block 9 (half 0, field j = 0... 9 = 8n + 2j + l/16 with n = 1, j = 0, l >= 16) with scale 5,
    // min 3, d 0.5, dmin 0.25; its elements 128 + 16..31 take bits 0-1 of qs[32 + 16..31]
    blk_q2_K b2;
    memset(&b2, 0, sizeof b2);
    b2.d = f32_to_f16(0.5f); b2.dmin = f32_to_f16(0.25f);
    b2.scales[9] = 5 | (3 << 4);
    b2.qs[32 + 20] = 0x02 | (0x3 << 2);          // element 148: level 2; element 180 (field 1): level 3
    float y2[256];
    dequantize_row(DT_Q2_K, &b2, y2, 256);
    CHECK(y2[148] == 0.5f * 5 * 2 - 0.25f * 3, "q2_K element 148: %g", y2[148]);
    CHECK(y2[149] == -0.25f * 3 && y2[180] == 0.f, "q2_K elements 149 / 180: %g %g", y2[149], y2[180]);
    // Q3_K: scale of sub-block 13 (j >= 12: high nibble of byte 5, top bits at bit 6 of byte 9) = 45,
    // i.e. factor 13; element 13 * 16 + 2 = 210 = 128 * 1 + 32 * 2 + 18: bits 4-5 of qs[32 + 18], hmask bit 6
    blk_q3_K b3;
    memset(&b3, 0, sizeof b3);
    b3.d = f32_to_f16(2.0f);
    b3.scales[5] = (45 & 0xF) << 4;
    b3.scales[9] = (uint8_t)((45 >> 4) << 6);
    CHECK(q3k_scale(13, b3.scales) == 45 && q3k_scale(5, b3.scales) == 0, "q3k_scale");
    b3.qs[32 + 18] = 1 << 4;                      // low bits 1
    b3.hmask[18] = 1 << 6;                        // high bit set: level 1 (else 1 - 4)
    float y3[256];
    dequantize_row(DT_Q3_K, &b3, y3, 256);
    CHECK(y3[210] == 2.0f * 13 * 1, "q3_K element 210: %g", y3[210]);
    CHECK(y3[211] == 2.0f * 13 * -4, "q3_K element 211 (no high bit, level 0): %g", y3[211]);
    // IQ4_NL: d 0.5; element 3 low nibble 0 (level -127), element 19 high nibble 15 (113), element 4 nibble 8 (1)
    blk_iq4_nl bn;
    memset(&bn, 0x88, sizeof bn);
    bn.d = f32_to_f16(0.5f);
    bn.qs[3] = 0xF0;
    float yn[32];
    dequantize_row(DT_IQ4_NL, &bn, yn, 32);
    CHECK(yn[3] == -63.5f && yn[19] == 56.5f && yn[4] == 0.5f && yn[20] == 0.5f, "iq4_nl: %g %g %g %g", yn[3], yn[19],
          yn[4], yn[20]);
    // IQ4_XS: sub-block 5's scale 45 (low nibble 0xD in the high half of scales_l[2], top bits 2 at bits
    // 10-11 of scales_h): factor 13 with d 0.25; its element 7 (byte 16 * 5 + 7, low nibble 10: level 25)
    blk_iq4_xs bx;
    memset(&bx, 0, sizeof bx);
    bx.d = f32_to_f16(0.25f);
    bx.scales_l[2] = 0xD0;
    bx.scales_h = 2 << 10;
    bx.qs[16 * 5 + 7] = 0x0A;
    CHECK(iq4xs_scale(&bx, 5) == 45 && iq4xs_scale(&bx, 4) == 0, "iq4xs_scale %d", iq4xs_scale(&bx, 5));
    float yx[256];
    dequantize_row(DT_IQ4_XS, &bx, yx, 256);
    CHECK(yx[5 * 32 + 7] == 0.25f * 13 * 25, "iq4_xs element 167: %g", yx[5 * 32 + 7]);
    CHECK(yx[5 * 32 + 23] == 0.25f * 13 * -127 && yx[4 * 32] == 0.25f * -32 * -127, "iq4_xs elements 183 / 128: %g %g",
          yx[5 * 32 + 23], yx[4 * 32]);
    // an IQ4_NL block whose values are levels times a power of two quantizes back exactly
    for (int j = 0; j < 32; j++) x[j] = 0.125f * iq4_levels[(j * 7) % 16];
    CHECK(quantize_row(DT_IQ4_NL, x, &bn, 32) == 0 && dequantize_row(DT_IQ4_NL, &bn, yn, 32) == 0);
    ok = 1;
    for (int j = 0; j < 32; j++) ok &= yn[j] == x[j];
    CHECK(ok && f16_to_f32(bn.d) == 0.125f, "iq4_nl exact levels: d %g", f16_to_f32(bn.d));
    // unsupported types and bad lengths are errors, not crashes
    CHECK(dequantize_row(DT_I32, &b4, y4, 256) == -1);
    CHECK(quantize_row(DT_I32, x, y, 32) == -1);
    CHECK(quantize_row(DT_Q4_0, x, &b, 31) == -1);
    CHECK(dequantize_row(DT_Q3_K, &b3, y3, 255) == -1);
    CHECK(dequantize_row(DT_IQ4_XS, &bx, yx, 224) == -1 && quantize_row(DT_IQ4_NL, x, &bn, 31) == -1);
    CHECK(!dtype_can_quantize(DT_I32) && dtype_can_quantize(DT_Q3_K) && dtype_can_quantize(DT_Q5_K));
}

// Quantize random gaussian rows, dequantize, and bound the relative RMS error per type.
static void test_error_bounds(void) {
    const int64_t n = 256 * 32;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    uint8_t *q = malloc(dtype_row_bytes(DT_F32, n));
    for (int64_t i = 0; i < n; i++) x[i] = rndn() * (i % 64 == 0 ? 4.f : 1.f);   // some outliers
    double ex2 = 0;
    for (int64_t i = 0; i < n; i++) ex2 += (double)x[i] * x[i];
    struct { dtype t; double bound; } cases[] = {
        {DT_F32, 0}, {DT_F16, 1e-3}, {DT_BF16, 5e-3}, {DT_Q8_0, 0.01}, {DT_Q8_K, 0.02}, {DT_Q6_K, 0.03},
        {DT_Q5_K, 0.06}, {DT_Q5_1, 0.06}, {DT_Q5_0, 0.07}, {DT_Q4_K, 0.11}, {DT_Q4_1, 0.12}, {DT_Q4_0, 0.14},
        {DT_Q3_K, 0.25}, {DT_Q2_K, 0.45}, {DT_IQ4_NL, 0.11}, {DT_IQ4_XS, 0.11},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dtype t = cases[c].t;
        CHECK(quantize_row(t, x, q, n) == 0);
        CHECK(dequantize_row(t, q, y, n) == 0);
        double e2 = 0;
        for (int64_t i = 0; i < n; i++) e2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        double rel = sqrt(e2 / ex2);
        CHECK(rel <= cases[c].bound, "%s: relative rmse %.5f > %.5f", dtype_get(t)->name, rel, cases[c].bound);
        if (getenv("SLLM_VERBOSE")) printf("  %-5s relative rmse %.5f\n", dtype_get(t)->name, rel);
    }
    // Q8_K block sums match its levels
    blk_q8_K *k8 = (blk_q8_K *)q;
    quantize_row(DT_Q8_K, x, q, 256);
    int ok = 1;
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += k8->qs[16 * j + l];
        ok &= s == k8->bsums[j];
    }
    CHECK(ok, "q8_K bsums");
    free(x); free(y); free(q);
}

// quantize(dequantize(q)) == q where the format makes it a fixed point (symmetric types whose extreme
// level is present in every block); for the others, requantizing must not move values much.
static void test_requantize(void) {
    const int64_t n = 256 * 8;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *z = malloc(n * sizeof(float));
    uint8_t *q1 = malloc(dtype_row_bytes(DT_F32, n)), *q2 = malloc(dtype_row_bytes(DT_F32, n));
    for (int64_t i = 0; i < n; i++) x[i] = rndn();
    const dtype exact[] = {DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q5_0};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        dtype t = exact[i];
        quantize_row(t, x, q1, n);
        dequantize_row(t, q1, y, n);
        quantize_row(t, y, q2, n);
        CHECK(memcmp(q1, q2, dtype_row_bytes(t, n)) == 0, "%s: requantization changed bytes", dtype_get(t)->name);
    }
    const dtype approx[] = {DT_Q4_1, DT_Q5_1, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_Q3_K, DT_Q2_K, DT_IQ4_NL, DT_IQ4_XS};
    for (size_t i = 0; i < sizeof approx / sizeof approx[0]; i++) {
        dtype t = approx[i];
        quantize_row(t, x, q1, n);
        dequantize_row(t, q1, y, n);
        quantize_row(t, y, q2, n);
        dequantize_row(t, q2, z, n);
        double e2 = 0, y2 = 0;
        for (int64_t k = 0; k < n; k++) { e2 += ((double)y[k] - z[k]) * ((double)y[k] - z[k]); y2 += (double)y[k] * y[k]; }
        CHECK(sqrt(e2 / y2) < 0.05, "%s: requantization drift %.4f", dtype_get(t)->name, sqrt(e2 / y2));
    }
    free(x); free(y); free(z); free(q1); free(q2);
}

// f32_to_f16_row (F16C where the CPU has it) against the scalar twin, bit for bit: random values over
// the whole f32 range, every rounding boundary near half-way, subnormals, overflow to Inf, Inf, NaNs.
static void test_f16_row(void) {
    enum { N = 1 << 16 };
    float *x = malloc(sizeof(float) * N);
    uint16_t *a = malloc(2 * N), *b = malloc(2 * N);
    uint32_t st = 12345;
    for (int i = 0; i < N; i++) {
        st = st * 1664525u + 1013904223u;
        uint32_t bits = st;
        if (i % 4 == 1) bits = (st & 0x80000000u) | (0x33000000u + (st % 0x14800000u));   // half's range and just beyond
        if (i % 4 == 2) bits = ((st >> 8) << 13) | 0x1000;                                   // exactly half-way cases
        memcpy(&x[i], &bits, 4);
    }
    static const uint32_t special[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffffffffu, 0x477ff000u,
                                       0x477fefffu, 0x33000000u, 0x33000001u, 0x38800000u, 0x387fffffu, 0, 0x80000000u};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) memcpy(&x[i], &special[i], 4);
    f32_to_f16_row_ref(x, a, N);
    if (isa_detect() >= ISA_AVX2) {   // that level includes F16C (isa_detect checks it)
        f32_to_f16_row_f16c(x, b, N - 3);   // a length that leaves a scalar tail
        b[N - 3] = a[N - 3]; b[N - 2] = a[N - 2]; b[N - 1] = a[N - 1];
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++) if (a[i] != b[i]) bad = i;
        CHECK(bad < 0, "f16c row conversion differs at %d: 0x%04x vs 0x%04x", bad, bad < 0 ? 0 : b[bad], bad < 0 ? 0 : a[bad]);
    } else SKIP("no F16C: the SIMD f32 -> f16 row conversion is not checked");
    f32_to_f16_row(x, b, N);
    CHECK(!memcmp(a, b, 2 * N), "f32_to_f16_row (dispatched) differs from its twin");
    for (int i = 0; i < 200; i++) CHECK(a[i] == f32_to_f16(x[i]));
    free(x); free(a); free(b);
}

// Equal bits, or both NaN (NaN scales: the sign of a NaN from x - dmin * m depends on how the compiler
// forms it — clang computes x + (-dmin) * m — so only NaN-ness is compared there).
static int same_bits_or_nan(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

// The AVX2 dequantizers (dequant_avx2.c) against the scalar ones, bit for bit: random block bytes with
// sane scales, raw random bytes (any scale: NaN / Inf / denormal included; NaNs compared as NaNs), quantized
// rows, odd block counts; F16 / BF16 over all 65536 values; bad lengths and other dtypes refused (-1).
static void test_dequant_avx2(void) {
    if (isa_detect() < ISA_AVX2) { SKIP("no AVX2: the AVX2 dequantizers are not checked"); return; }
    const int64_t nmax = 256 * 7;
    uint8_t *blk = malloc(dtype_row_bytes(DT_F32, nmax) + 64);
    float *a = malloc(sizeof(float) * (nmax + 8)), *b = malloc(sizeof(float) * (nmax + 8)), *x = malloc(sizeof(float) * nmax);
    for (int ti = 0; ti < NT; ti++) {
        dtype t = ALL[ti];
        if (t == DT_F32 || t == DT_Q8_K) {   // not among its types
            CHECK(dequantize_row_avx2(t, blk, b, 256) == -1, "dequantize_row_avx2 %s: -1", dtype_get(t)->name);
            continue;
        }
        const char *tn = dtype_get(t)->name;
        int blkn = dtype_get(t)->block, bad = 0;
        for (int rep = 0; rep < 60; rep++) {
            int64_t n = (int64_t)blkn * (1 + rep % 7) * (blkn == 256 ? 1 : 8);
            if (rep % 3 == 0) random_blocks(t, blk, n);
            else if (rep % 3 == 1) for (size_t i = 0; i < dtype_row_bytes(t, n); i++) blk[i] = (uint8_t)rnd32();
            else {
                if (!dtype_can_quantize(t)) continue;
                for (int64_t i = 0; i < n; i++) x[i] = rndn() * (rep % 5 + 1) * 0.1f;
                quantize_row(t, x, blk, n);
            }
            a[n] = b[n] = 12345.f;   // nothing past the row
            CHECK(dequantize_row(t, blk, a, n) == 0 && dequantize_row_avx2(t, blk, b, n) == 0);
            bad += !same_bits_or_nan(a, b, n + 1);
        }
        CHECK(bad == 0, "dequantize_row_avx2 %s: %d rows differ from dequantize_row", tn, bad);
        if (blkn > 1) CHECK(dequantize_row_avx2(t, blk, b, blkn + 1) == -1, "%s: a partial block is refused", tn);
        CHECK(dequantize_row_fast(t, blk, b, blkn) == 0);
    }
    // the grid types (IQ2_XXS ... IQ1_M): random block bytes, scale fields included (NaN / inf scales:
    // the same bits or both NaN)
    static const dtype GRID[] = {DT_IQ2_XXS, DT_IQ2_XS, DT_IQ2_S, DT_IQ3_XXS, DT_IQ3_S, DT_IQ1_S, DT_IQ1_M};
    for (size_t g = 0; g < sizeof GRID / sizeof *GRID; g++) {
        dtype t = GRID[g];
        int bad = 0;
        for (int rep = 0; rep < 40; rep++) {
            int64_t n = 256 * (1 + rep % 7);
            for (size_t i = 0; i < dtype_row_bytes(t, n); i++) blk[i] = (uint8_t)rnd32();
            if (rep % 2 && t != DT_IQ1_M)   // a sane scale in every other row (IQ1_M keeps it in scattered nibbles)
                for (int64_t i = 0; i < n / 256; i++) put_f16(blk + i * dtype_get(t)->block_bytes, (rndu() - 0.5f) * 0.1f);
            a[n] = b[n] = 12345.f;
            CHECK(dequantize_row(t, blk, a, n) == 0 && dequantize_row_avx2(t, blk, b, n) == 0);
            bad += !same_bits_or_nan(a, b, n + 1);
        }
        CHECK(bad == 0, "dequantize_row_avx2 %s: %d rows differ from dequantize_row", dtype_get(t)->name, bad);
        CHECK(dequantize_row_avx2(t, blk, b, 255) == -1, "%s: a partial block is refused", dtype_get(t)->name);
    }
    for (int bf = 0; bf < 2; bf++) {   // every 16-bit pattern
        uint16_t *h = malloc(sizeof(uint16_t) * 65536);
        float *ya = malloc(sizeof(float) * 65536), *yb = malloc(sizeof(float) * 65536);
        for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
        dtype t = bf ? DT_BF16 : DT_F16;
        CHECK(dequantize_row(t, h, ya, 65536) == 0 && dequantize_row_avx2(t, h, yb, 65536) == 0);
        CHECK(memcmp(ya, yb, sizeof(float) * 65536) == 0, "%s: all 65536 values, the bits of the scalar widening",
              dtype_get(t)->name);
        free(h); free(ya); free(yb);
    }
    free(blk); free(a); free(b); free(x);
}

// A random super-block of grid type t with a sane f16 scale (IQ1_M keeps it in the top nibbles of its
// four scale words).
static void grid_block(dtype t, uint8_t *b) {
    for (int i = 0; i < dtype_get(t)->block_bytes; i++) b[i] = (uint8_t)rnd32();
    float d = (rndu() + 0.1f) * (rnd32() & 1 ? 0.01f : -0.01f);
    if (t != DT_IQ1_M) { put_f16(b, d); return; }
    uint16_t h = f32_to_f16(d);
    for (int i = 0; i < 4; i++) {
        uint16_t w;
        memcpy(&w, b + 48 + 2 * i, 2);
        w = (uint16_t)((w & 0x0FFF) | ((h >> (4 * i)) & 0xF) << 12);
        memcpy(b + 48 + 2 * i, &w, 2);
    }
}

// For a product of weight row w with activation row x (K values), the bound of the Q8_K activations'
// 8-bit rounding, sum_k |w_k| amax(x block of k) / 254 (x1.001), into *qb, and sum_k |w_k x_k| into *sc.
static void q8k_bound(const float *w, const float *x, int K, double *qb, double *sc) {
    *qb = *sc = 0;
    for (int k0 = 0; k0 < K; k0 += 256) {
        float amax = 0;
        for (int k = k0; k < k0 + 256; k++) amax = fmaxf(amax, fabsf(x[k]));
        for (int k = k0; k < k0 + 256; k++) {
            *qb += fabs(w[k]) * amax / 254.0;
            *sc += fabs((double)w[k] * x[k]);
        }
    }
    *qb *= 1.001;
}

// The grid types' integer form (iq_grid_levels: value = D x ls x level), which the products against
// Q8_K activations use: equal to the decoders' values up to float rounding (4 ulp), for every type, on
// random blocks; then products over random rows at every ISA level: the AVX2 / AVX-512 dot equal to
// the scalar twin bit for bit (integer sums, one float step per super-block in the same order), and
// every level within the activations' 8-bit rounding of the f32 product over the decoded rows (bound:
// sum_k |w_k| amax(x block of k) / 254, + 1e-5 sum |w x|). Needs no oracle (the GGML comparison below
// checks the decoders themselves).
static void test_grid_integer_levels(void) {
    static const dtype G[] = {DT_IQ2_XXS, DT_IQ2_XS, DT_IQ2_S, DT_IQ3_XXS, DT_IQ3_S, DT_IQ1_S, DT_IQ1_M};
    enum { N = 5, K = 768 };
    tpool *pool = tpool_new(2);
    for (size_t g = 0; g < sizeof G / sizeof *G; g++) {
        dtype t = G[g];
        const char *tn = dtype_get(t)->name;
        size_t bb = (size_t)dtype_get(t)->block_bytes, rb = dtype_row_bytes(t, K);
        uint8_t *W = malloc(rb * N);
        for (int i = 0; i < N * K / 256; i++) grid_block(t, W + (size_t)i * bb);
        float *Wf = malloc(sizeof(float) * N * K);
        CHECK(dequantize_row(t, W, Wf, (int64_t)N * K) == 0);
        int bad = 0, nz = 0;
        for (int i = 0; i < N * K / 256; i++) {
            int8_t lv[256];
            int16_t ls[16];
            float D = iq_grid_levels(t, W + (size_t)i * bb, lv, ls);
            for (int j = 0; j < 256; j++) {
                float v = D * (float)ls[j / 16] * (float)lv[j], ref = Wf[i * 256 + j];
                bad += !(fabsf(v - ref) <= 4.8e-7f * fabsf(ref));
                nz += ref != 0;
            }
        }
        CHECK(bad == 0 && nz > N * K / 2, "%s: %d integer levels differ from the decoded values (%d nonzero)", tn, bad, nz);
        int8_t lv[256];
        int16_t ls[16];
        CHECK(iq_grid_levels(DT_Q4_K, W, lv, ls) == 0.0f, "iq_grid_levels: another dtype gives 0");
        for (int T = 1; T <= 3; T += 2) {
            float *X = malloc(sizeof(float) * T * K), *Yf = malloc(sizeof(float) * T * N);
            float *Ys = malloc(sizeof(float) * T * N), *Y = malloc(sizeof(float) * T * N);
            double *bound = malloc(sizeof(double) * T * N);
            for (int i = 0; i < T * K; i++) X[i] = rndn() * (i % 53 == 0 ? 4.0f : 1.0f);
            CHECK(mm_matmul(NULL, Wf, DT_F32, N, K, X, T, NULL, Yf) == 0);
            for (int tt = 0; tt < T; tt++)
                for (int n = 0; n < N; n++) {
                    double qb, sc;
                    q8k_bound(Wf + n * K, X + tt * K, K, &qb, &sc);
                    bound[tt * N + n] = qb + 1e-5 * sc;
                }
            isa_level keep = isa_active();
            isa_force(ISA_SCALAR);
            CHECK(mm_matmul(pool, W, t, N, K, X, T, NULL, Ys) == 0);
            for (int l = ISA_SCALAR; l <= (int)isa_detect(); l++) {
                isa_force((isa_level)l);
                CHECK(mm_matmul(pool, W, t, N, K, X, T, NULL, Y) == 0);
                int out = 0;
                for (int i = 0; i < T * N; i++) out += !(fabs((double)Y[i] - Yf[i]) <= bound[i]);
                CHECK(out == 0, "%s T %d isa %d: %d products outside the activation rounding bound of the f32 product", tn, T, l, out);
                if (T == 1)
                    CHECK(memcmp(Y, Ys, sizeof(float) * N) == 0, "%s isa %d: decode product differs from the scalar twin", tn, l);
            }
            isa_force(keep);
            free(X); free(Yf); free(Ys); free(Y); free(bound);
        }
        free(W); free(Wf);
    }
    tpool_free(pool);
}

// The grid types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) against llama.cpp's own library:
// rows quantized by GGML (ggml_quantize_chunk with a uniform importance matrix, as llama-quantize
// writes these files), then decoded by GGML (its type traits' to_float) and by sllm: bit for bit. Then
// a product over those rows (decode, and a prefill through the f32 tiles) against the same product over
// GGML's decoded rows in f32 (within the Q8_K activations' rounding where they are quantized, else
// 1e-5). GGML is opened at run time (tests/ggml_oracle.h); skipped without it.
static void test_grid_types_vs_ggml(void) {
    ggml_oracle gg;
    char why[4200];
    if (!ggml_oracle_open(&gg, why, sizeof why)) { SKIP("%s: grid types (IQ1/IQ2/IQ3) against GGML skipped", why); return; }
    static const dtype G[] = {DT_IQ2_XXS, DT_IQ2_XS, DT_IQ2_S, DT_IQ3_XXS, DT_IQ3_S, DT_IQ1_S, DT_IQ1_M};
    enum { ROWS = 6, K = 768 };
    float *x = malloc(sizeof(float) * ROWS * K), *imat = malloc(sizeof(float) * K);
    float *ref = malloc(sizeof(float) * ROWS * K), *got = malloc(sizeof(float) * ROWS * K);
    for (int i = 0; i < ROWS * K; i++) x[i] = rndn() * 0.02f + (i % 97 == 0 ? 0.1f : 0.0f);   // a few outliers
    for (int i = 0; i < K; i++) imat[i] = 1.0f;
    tpool *pool = tpool_new(2);
    for (size_t g = 0; g < sizeof G / sizeof *G; g++) {
        dtype t = G[g];
        const struct ggml_traits_abi *tr = gg.traits((int)t);
        const dtype_info *di = dtype_get(t);
        CHECK(di && tr && tr->to_float && tr->type_size == (size_t)di->block_bytes && tr->blck_size == di->block,
              "%s: block geometry differs from GGML's", di ? di->name : "?");
        if (!di || !tr || !tr->to_float) continue;
        size_t bytes = dtype_row_bytes(t, K) * ROWS;
        uint8_t *q = malloc(bytes);
        gg.quantize_init((int)t);
        size_t wrote = gg.quantize_chunk((int)t, x, q, 0, ROWS, K, imat);
        CHECK(wrote == bytes, "%s: GGML wrote %zu bytes, expected %zu", di->name, wrote, bytes);
        tr->to_float(q, ref, (int64_t)ROWS * K);
        CHECK(dequantize_row(t, q, got, (int64_t)ROWS * K) == 0, "%s: dequantize_row refused", di->name);
        int same = !memcmp(ref, got, sizeof(float) * ROWS * K), nz = 0;
        CHECK(dequantize_row_fast(t, q, got, (int64_t)ROWS * K) == 0, "%s: dequantize_row_fast refused", di->name);
        same &= !memcmp(ref, got, sizeof(float) * ROWS * K);   // the AVX2 decoders too, where the CPU has them
        for (int i = 0; i < ROWS * K; i++) nz += ref[i] != 0.0f;
        CHECK(same && nz > ROWS * K / 4, "%s: decoded values differ from GGML's (or are mostly zero: %d nonzero)", di->name, nz);
        // products: decode (T = 1) and a prefill (T = 9) over the grid rows against f32 rows of GGML's values,
        // at every ISA level (the scalar dot_grid twin and the AVX2 / AVX-512 ones)
        isa_level keep = isa_active();
        for (int lvl = ISA_SCALAR; lvl <= (int)isa_detect(); lvl++)
        for (int T = 1; T <= 9; T += 8) {
            isa_force((isa_level)lvl);
            float *X = malloc(sizeof(float) * T * K), *Y1 = malloc(sizeof(float) * T * ROWS), *Y2 = malloc(sizeof(float) * T * ROWS);
            for (int i = 0; i < T * K; i++) X[i] = rndn();
            CHECK(mm_matmul(pool, q, t, ROWS, K, X, T, NULL, Y1) == 0 && mm_matmul(pool, ref, DT_F32, ROWS, K, X, T, NULL, Y2) == 0,
                  "%s: matmul failed", di->name);
            // decode and the scalar level's prefill take Q8_K activations (bound: their 8-bit rounding,
            // sum_k |w_k| amax(x block of k) / 254); the AVX2 / AVX-512 prefill widens the rows (1e-5)
            int out = 0;
            for (int tt = 0; tt < T; tt++)
                for (int n = 0; n < ROWS; n++) {
                    double qb, sc;
                    q8k_bound(ref + n * K, X + tt * K, K, &qb, &sc);
                    double bound = (T == 1 || lvl == ISA_SCALAR ? qb : 0) + 1e-5 * sc;
                    out += !(fabs((double)Y1[tt * ROWS + n] - Y2[tt * ROWS + n]) <= bound);
                }
            CHECK(out == 0, "%s: %d products over grid rows (T %d, isa %d) outside the bound of the f32 rows'", di->name, out,
                  T, lvl);
            free(X); free(Y1); free(Y2);
        }
        isa_force(keep);
        free(q);
    }
    tpool_free(pool);
    free(x); free(imat); free(ref); free(got);
    ggml_oracle_close(&gg);
}

int main(void) {
    test_grid_integer_levels();
    test_grid_types_vs_ggml();
    test_f16_row();
    test_dequant_avx2();
    test_known_answers();
    test_error_bounds();
    test_requantize();
    test_against_python();
    return test_report();
}
