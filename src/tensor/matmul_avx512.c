// AVX-512 kernels. First the 256-bit kernels of matmul_avx2.c recompiled with VNNI (vpdpbusd / vpdpwssd
// replace the maddubs+madd pairs), used for the dtypes and shapes the 512-bit kernels below do not take;
// then the 512-bit kernels of tensor/matmul_kernels.h (decode against the "xd" activation layout,
// packed-panel prefill tiles, f32 tiles, activation quantizers). Scalar twins live in matmul.c.
#define MM_AVX512 1
#include "tensor/matmul_avx2.c"
#include "tensor/matmul_kernels.h"

void mm_kernels_avx512(mm_kernels *k) {
    mm_kernels_fill256_avx512(k);
}

INLINE float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

// ---------------------------------------------------------------- activation quantizers
// Same arithmetic as the scalar twins (amax / 127, 1 / d, round-half-even of x * id), so the integers and
// scales are bit-identical to mm_xd_quantize_ref / quantize_row_q8a.
INLINE __m512i q8_block(const float *x, float *dout, int *sumout) {
    __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    __m512 m = _mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b));
    float amax = _mm512_reduce_max_ps(m);
    float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    __m512 vid = _mm512_set1_ps(id);
    __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, vid));
    *dout = d;
    *sumout = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    // 32 int32 -> 32 int8 (values within [-127, 127])
    __m128i pa = _mm512_cvtepi32_epi8(qa), pb = _mm512_cvtepi32_epi8(qb);
    return _mm512_castsi256_si512(_mm256_set_m128i(pb, pa));
}

static void q8a_quantize_avx512(const float *x, blk_q8a *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float d;
        int sum;
        __m512i q = q8_block(x, &d, &sum);
        _mm256_storeu_si256((__m256i *)y[i].qs, _mm512_castsi512_si256(q));
        y[i].d = d;
        y[i].s = d * (float)sum;
        y[i].sum = sum;
        y[i].seed = 0;
    }
}

// Q8_K rows (the K-quants' activations), bit-identical to quantize_row(DT_Q8_K): the value of largest
// magnitude (its first occurrence) sets iscale = -127 / max, levels are round-half-even of iscale * x
// capped at 127, and each 16-element group's sum goes to bsums.
static void q8k_quantize_avx512(const float *x, blk_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < 256; j += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        float amax = _mm512_reduce_max_ps(m);
        if (!(amax > 0)) {   // all zero (as the twin: d = 0, levels and sums 0)
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        for (int j = 0; j < 256; j += 16) {
            __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (k) { first = j + __builtin_ctz(k); break; }
        }
        float iscale = -127.f / x[first];
        __m512 vs = _mm512_set1_ps(iscale);
        const __m512i cap = _mm512_set1_epi32(127);
        for (int j = 0; j < 256; j += 16) {
            __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j))), cap);
            __m128i b = _mm512_cvtepi32_epi8(q);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), b);
            // summed from the stored int8 levels, as the twin does (a level out of range, from a scale
            // that overflowed to inf on denormal inputs, wraps the same way in both)
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(b));
        }
        y[i].d = 1 / iscale;
    }
}

static void xd_quantize_avx512(dtype t, const float *x, int64_t K, void *xd) {
    mm_xd_view v = mm_xd_map(t, K, xd);
    const int off = t == DT_Q4_0 ? 8 : 128, lanes = 16 / v.G;
    for (int64_t b = 0; b < v.nb; b++) {
        float d;
        int sum;
        __m512i q = q8_block(x + 32 * b, &d, &sum);
        __m128i lo = _mm512_castsi512_si128(q), hi = _mm512_extracti32x4_epi32(q, 1);
        v.d[b] = d;
        v.seed[b] = -off * sum;
        if (b < (int64_t)v.ng * v.G) {
            int64_t g = b / v.G, i = b % v.G;
            if (v.G == 4) {
                _mm_storeu_si128((__m128i *)(v.qs + g * 128 + i * 16), lo);
                _mm_storeu_si128((__m128i *)(v.qs + g * 128 + 64 + i * 16), hi);
            } else {
                _mm_storeu_si128((__m128i *)(v.qs + b * 32), lo);
                _mm_storeu_si128((__m128i *)(v.qs + b * 32 + 16), hi);
            }
            for (int l = 0; l < lanes; l++) {
                v.dl[g * 16 + i * lanes + l] = d;
                v.sl[g * 16 + i * lanes + l] = l == 0 ? -off * sum : 0;
            }
        } else {
            _mm_storeu_si128((__m128i *)(v.qs + b * 32), lo);
            _mm_storeu_si128((__m128i *)(v.qs + b * 32 + 16), hi);
        }
    }
}

// Tail blocks of a decode row (nb not a multiple of the group): integer product per block, as the twin.
INLINE float xd_tail(const mm_xd_view *v, const uint8_t *w, size_t bb, int add, int nib) {
    float s = 0;
    for (int64_t b = (int64_t)v->ng * v->G; b < v->nb; b++) {
        const uint8_t *p = w + b * bb;
        const int8_t *xq = v->qs + b * 32;
        int isum = v->seed[b];
        if (nib)
            for (int e = 0; e < 16; e++) isum += (p[2 + e] & 0xF) * xq[e] + (p[2 + e] >> 4) * xq[e + 16];
        else
            for (int e = 0; e < 32; e++) isum += ((int)(int8_t)p[2 + e] + add) * xq[e];
        uint16_t h;
        memcpy(&h, p, 2);
        s += h2f(h) * v->d[b] * (float)isum;
    }
    return s;
}

// ---------------------------------------------------------------- decode: Q4_0 x xd
// Per group of 4 blocks (72 bytes): the 4 x 16 nibble bytes go into the 4 128-bit lanes of one register;
// low nibbles (elements 0..15 of each block) and high nibbles (16..31) each meet one 64-byte activation
// load laid out to match. The int32 lanes 4i..4i+3 then hold block i's partial products, seeded with the
// -8 * sum(x) offset; the 4 f16 scales are spread to those lanes with one word permute from a load of the
// group's first 64 bytes, and one FMA per group accumulates. One horizontal sum per row.
INLINE __m512 q4_0_group(const uint8_t *p, __m512i xlo, __m512i xhi, __m512 dx, __m512i seed, __m512i pidx,
                         __m512 acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + 2)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 20)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 38)), 2);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 56)), 3);
    __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    __m512i s = _mm512_dpbusd_epi32(seed, lo, xlo);
    s = _mm512_dpbusd_epi32(s, hi, xhi);
    __m512i sw = _mm512_permutexvar_epi16(pidx, _mm512_loadu_si512((const void *)p));
    __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(sw));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dx), acc);
}

// Software prefetch for the decode kernels. The hardware streamer alone restarts at every 4 KiB page
// (the weights are page-cache mappings) and leaves a core computing, then waiting, so the kernels
// prefetch a fixed distance ahead, one prefetch per 64 bytes consumed. Q4_0 (2 rows per pass) walks one
// pointer linearly through the task's contiguous rows, DEC_PF_AHEAD + one row ahead. Q8_0 reads 4 rows
// per pass (4 load streams); there each row prefetches at the same offset in the row it will read some
// passes later (>= DEC_PF_AHEAD bytes ahead), so every line is fetched the same time before its use: a
// linear pointer would fetch a pass's first row 3 rows' worth earlier than its last, and those lines
// can leave L1 before use. Streaming 2 x 512 MiB of Q8_0 with 2 threads (bench_kernels, cold) this took
// 15-18 GB/s to 20-26 GB/s. The same 4-row scheme for Q4_0 (also with one word permute in place of the
// three lane inserts) measured no better end to end and slower on L3-resident weights, so Q4_0 keeps
// the 2-row kernel.
#ifndef DEC_PF_AHEAD   // -DDEC_PF_AHEAD=... to experiment (2-16 KiB measured alike on Zen 5, round 12)
#define DEC_PF_AHEAD 8192
#endif
// The hint is measured, not reasoned: on the Zen 4 VM an L2 prefetch (prefetcht2) streamed best (1 GiB,
// 2 threads: 24-26 GB/s against 21-24 with prefetcht0); on the Zen 5 VM (docs/performance.md, Machine)
// prefetchnta does, most where a thread has a whole memory channel's worth of bandwidth to fill (one
// thread, or two on two core complexes). bench_kernels, weights cold, one thread, share of the 1-thread
// read probe, t2 -> nta: F16 70-74% -> 80-84%, BF16 70-74 -> 77-83, Q4_K 80-83 -> 89-92, Q5_K 83-87 ->
// 87-91, Q6_K 85-89 -> 94-96, Q4_0 85-90 -> 85-93, Q8_0 87-89 -> 87-96; two threads on one complex F16
// 89-91 -> 94-97, Q4_K 90 -> 93-94. (prefetcht0 and t1 fell between; 4 or 12 KiB ahead no better.)
#define DEC_PF_HINT _MM_HINT_NTA
#define DEC_ROWS 4   // weight rows per pass of the Q8_0 decode kernel
INLINE void pf_line(const uint8_t *p) { _mm_prefetch((const char *)p, DEC_PF_HINT); }

// Two weight rows per pass share the activation loads (and halve the loop overhead per row).
static void xd_dot_q4_0_avx512(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xd, float *out) {
    mm_xd_view v = mm_xd_map(DT_Q4_0, K, (void *)xd);
    // word 9*i (the f16 scale of block i, blocks 18 bytes apart) into lanes 4i..4i+3 of the low 256 bits
    const __m512i pidx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          27, 27, 27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    const size_t ahead = DEC_PF_AHEAD + rb;   // past the second row of a pair
    int64_t r = 0;
    for (; r + 2 <= nrows; r += 2) {
        const uint8_t *w0 = (const uint8_t *)w + r * rb, *w1 = w0 + rb, *pf = w0 + ahead;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int64_t g = 0; g < v.ng; g++, pf += 144) {   // 2 x 72 bytes per group
            pf_line(pf);
            pf_line(pf + 64);
            pf_line(pf + 128);
            __m512i xlo = _mm512_load_si512((const void *)(v.qs + g * 128));
            __m512i xhi = _mm512_load_si512((const void *)(v.qs + g * 128 + 64));
            __m512 dx = _mm512_load_ps(v.dl + g * 16);
            __m512i seed = _mm512_load_si512((const void *)(v.sl + g * 16));
            a0 = q4_0_group(w0 + g * 72, xlo, xhi, dx, seed, pidx, a0);
            a1 = q4_0_group(w1 + g * 72, xlo, xhi, dx, seed, pidx, a1);
        }
        out[r] = hsum512(a0) + xd_tail(&v, w0, 18, 0, 1);
        out[r + 1] = hsum512(a1) + xd_tail(&v, w1, 18, 0, 1);
    }
    for (; r < nrows; r++) {
        const uint8_t *w0 = (const uint8_t *)w + r * rb, *pf = w0 + ahead;
        __m512 a0 = _mm512_setzero_ps();
        for (int64_t g = 0; g < v.ng; g++, pf += 72) {
            pf_line(pf);
            pf_line(pf + 64);
            a0 = q4_0_group(w0 + g * 72, _mm512_load_si512((const void *)(v.qs + g * 128)),
                            _mm512_load_si512((const void *)(v.qs + g * 128 + 64)), _mm512_load_ps(v.dl + g * 16),
                            _mm512_load_si512((const void *)(v.sl + g * 16)), pidx, a0);
        }
        out[r] = hsum512(a0) + xd_tail(&v, w0, 18, 0, 1);
    }
}

// ---------------------------------------------------------------- decode: Q8_0 x xd
// Per group of 2 blocks (68 bytes): 2 x 32 signed levels flipped to u8 (w + 128, the offset comes back
// through the seeds), one vpdpbusd against 64 activation bytes, scales spread to 8 lanes each. The
// levels come in with one load from byte 2 and one masked load of the upper half from byte 4.
INLINE __m512 q8_0_group(const uint8_t *p, __m512i xq, __m512 dx, __m512i seed, __m512i pidx, __m512 acc) {
    __m512i a = _mm512_loadu_si512((const void *)p);
    __m512i v = _mm512_mask_loadu_epi64(_mm512_loadu_si512((const void *)(p + 2)), 0xF0, p + 4);
    v = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    __m512i s = _mm512_dpbusd_epi32(seed, v, xq);
    __m512i sw = _mm512_permutexvar_epi16(pidx, a);
    __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(sw));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dx), acc);
}

INLINE void q8_0_rows(const mm_xd_view *v, const uint8_t *w0, size_t rb, const int R, float *out) {
    const __m512i pidx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[4];
    for (int i = 0; i < R; i++) acc[i] = _mm512_setzero_ps();
    // Each row prefetches its own stream: the same offset in the row it will read `ahead` passes later
    // (>= DEC_PF_AHEAD bytes of this task's stream ahead), one line per 64 bytes a row consumes.
    const size_t ahead = (size_t)R * rb * (size_t)((DEC_PF_AHEAD + R * rb - 1) / (R * rb));
    const uint8_t *pf = w0 + ahead;
    int debt = 0;
    for (int64_t g = 0; g < v->ng; g++) {
        for (debt += 68; debt >= 64; debt -= 64, pf += 64)
            for (int i = 0; i < R; i++) pf_line(pf + i * rb);
        __m512i xq = _mm512_load_si512((const void *)(v->qs + g * 64));
        __m512 dx = _mm512_load_ps(v->dl + g * 16);
        __m512i seed = _mm512_load_si512((const void *)(v->sl + g * 16));
        for (int i = 0; i < R; i++) acc[i] = q8_0_group(w0 + i * rb + g * 68, xq, dx, seed, pidx, acc[i]);
    }
    for (int i = 0; i < R; i++) out[i] = hsum512(acc[i]) + xd_tail(v, w0 + i * rb, 34, 128, 0);
}

static void xd_dot_q8_0_avx512(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xd, float *out) {
    mm_xd_view v = mm_xd_map(DT_Q8_0, K, (void *)xd);
    int64_t r = 0;
    for (; r + DEC_ROWS <= nrows; r += DEC_ROWS) q8_0_rows(&v, (const uint8_t *)w + r * rb, rb, DEC_ROWS, out + r);
    for (; r < nrows; r++) q8_0_rows(&v, (const uint8_t *)w + r * rb, rb, 1, out + r);
}

// ---------------------------------------------------------------- decode: F16 x f32
// 16 F16 (bf = 0) or BF16 (bf = 1) weights as f32.
INLINE __m512 half16(const uint16_t *p, const int bf) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return bf ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)) : _mm512_cvtph_ps(v);
}
INLINE float half1(uint16_t h, const int bf) {
    if (!bf) return h2f(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
INLINE void dec_half(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out, const int bf) {
    const float *x = xv;
    for (int64_t r = 0; r < nrows; r++) {
        const uint16_t *wr = (const uint16_t *)((const char *)w + r * rb);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 64 <= K; k += 64) {
            pf_line((const uint8_t *)(wr + k) + DEC_PF_AHEAD);
            pf_line((const uint8_t *)(wr + k) + DEC_PF_AHEAD + 64);
            a0 = _mm512_fmadd_ps(half16(wr + k, bf), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(half16(wr + k + 16, bf), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(half16(wr + k + 32, bf), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(half16(wr + k + 48, bf), _mm512_loadu_ps(x + k + 48), a3);
        }
        for (; k + 16 <= K; k += 16) a0 = _mm512_fmadd_ps(half16(wr + k, bf), _mm512_loadu_ps(x + k), a0);
        float s = hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; k < K; k++) s += half1(wr[k], bf) * x[k];
        out[r] = s;
    }
}
static void dec_f16_avx512(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out) {
    dec_half(K, w, rb, nrows, xv, out, 0);
}
static void dec_bf16_avx512(int64_t K, const void *w, size_t rb, int64_t nrows, const void *xv, float *out) {
    dec_half(K, w, rb, nrows, xv, out, 1);
}

// ---------------------------------------------------------------- prefill: packing a panel
// out[j] lane l = bytes 4j..4j+3 of the 16 bytes at rows[l]: 4 rows per register (one per 128-bit lane), a
// dword 4x4 transpose inside each register, then a 4x4 transpose of 128-bit lanes across the registers.
INLINE void transpose16x4(const uint8_t *const rows[16], size_t off, __m512i out[4]) {
    const __m512i P = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    __m512i T[4];
    for (int a = 0; a < 4; a++) {
        __m512i r = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[4 * a] + off)));
        r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(rows[4 * a + 1] + off)), 1);
        r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(rows[4 * a + 2] + off)), 2);
        r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(rows[4 * a + 3] + off)), 3);
        T[a] = _mm512_permutexvar_epi32(P, r);
    }
    __m512i A = _mm512_shuffle_i32x4(T[0], T[1], _MM_SHUFFLE(1, 0, 1, 0));
    __m512i B = _mm512_shuffle_i32x4(T[2], T[3], _MM_SHUFFLE(1, 0, 1, 0));
    __m512i C = _mm512_shuffle_i32x4(T[0], T[1], _MM_SHUFFLE(3, 2, 3, 2));
    __m512i D = _mm512_shuffle_i32x4(T[2], T[3], _MM_SHUFFLE(3, 2, 3, 2));
    out[0] = _mm512_shuffle_i32x4(A, B, _MM_SHUFFLE(2, 0, 2, 0));
    out[1] = _mm512_shuffle_i32x4(A, B, _MM_SHUFFLE(3, 1, 3, 1));
    out[2] = _mm512_shuffle_i32x4(C, D, _MM_SHUFFLE(2, 0, 2, 0));
    out[3] = _mm512_shuffle_i32x4(C, D, _MM_SHUFFLE(3, 1, 3, 1));
}

// Q4_0 / Q4_1 / Q8_0 vectorized (the scalar mm_pack_panel is the twin, and packs the Q5 types).
// Missing rows of the last panel read a zero block.
static void pack_panel_avx512(dtype t, const void *W, size_t rb, int nrows, int64_t K, void *panel) {
    if (t != DT_Q4_0 && t != DT_Q4_1 && t != DT_Q8_0) { mm_pack_panel(t, W, rb, nrows, K, panel); return; }
    static const uint8_t zero[64];
    const size_t bb = (size_t)dtype_get(t)->block_bytes, pb = mm_panel_block_bytes(t);
    const size_t qoff = t == DT_Q4_1 ? 4 : 2;
    const uint8_t *rows[16];
    for (int l = 0; l < 16; l++) rows[l] = l < nrows ? (const uint8_t *)W + l * rb : zero;
    const __m512i m4 = _mm512_set1_epi8(0x0F), x80 = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b < K / 32; b++) {
        uint8_t *dst = (uint8_t *)panel + b * pb;
        const uint8_t *br[16];
        for (int l = 0; l < 16; l++) br[l] = rows[l] == zero ? zero : rows[l] + b * bb;
        __m512i z[4];
        transpose16x4(br, qoff, z);
        if (t == DT_Q8_0) {
            for (int j = 0; j < 4; j++) _mm512_store_si512((void *)(dst + 64 * j), _mm512_xor_si512(z[j], x80));
            transpose16x4(br, qoff + 16, z);
            for (int j = 0; j < 4; j++) _mm512_store_si512((void *)(dst + 256 + 64 * j), _mm512_xor_si512(z[j], x80));
        } else {
            for (int j = 0; j < 4; j++) {
                _mm512_store_si512((void *)(dst + 64 * j), _mm512_and_si512(z[j], m4));
                _mm512_store_si512((void *)(dst + 256 + 64 * j), _mm512_and_si512(_mm512_srli_epi16(z[j], 4), m4));
            }
        }
        uint16_t d[16], m[16];
        for (int l = 0; l < 16; l++) {
            memcpy(&d[l], br[l], 2);
            memcpy(&m[l], br[l] + 2, 2);
        }
        _mm512_store_ps((float *)(dst + 512), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d)));
        if (t == DT_Q4_1) _mm512_store_ps((float *)(dst + 576), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)m)));
    }
}

// ---------------------------------------------------------------- prefill: packed panel x TT activation rows
// A tile's results straight into Y: 16 consecutive outputs (nvalid of them kept) of one activation row
// per register, plus bias, or added to what Y holds.
INLINE void tile_store(const __m512 *acc, const int TT, float *y, size_t ldy, int nvalid, const float *bias, int accum) {
    const __mmask16 m = (__mmask16)((1u << nvalid) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
    for (int r = 0; r < TT; r++) {
        float *o = y + r * ldy;
        __m512 v = accum ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), acc[r]) : _mm512_add_ps(acc[r], bv);
        _mm512_mask_storeu_ps(o, m, v);
    }
}

// Block layouts a tile reads: the packed panel (levels as bytes, f32 scales, and f32 minimums for
// Q4_1 / Q5_1) and the r16 weights packed at load (tensor/matmul_kernels.h).
enum { FMT_PANEL, FMT_PANEL_MIN, FMT_R16_Q8, FMT_R16_Q4, FMT_R16_Q4_1, FMT_R16_Q5, FMT_R16_Q5_1, FMT_R16_IQ4 };
INLINE size_t fmt_block_bytes(const int fmt) {
    return fmt == FMT_PANEL ? 576 : fmt == FMT_PANEL_MIN ? 640 : fmt == FMT_R16_Q8 ? 544 : fmt == FMT_R16_Q5 ? 352
         : fmt == FMT_R16_Q5_1 ? 384 : fmt == FMT_R16_Q4_1 ? 320 : 288;
}
// Formats with a per-block minimum (value = d * level + m): its f32 row vector.
INLINE bool fmt_has_min(const int fmt) { return fmt == FMT_PANEL_MIN || fmt == FMT_R16_Q4_1 || fmt == FMT_R16_Q5_1; }
INLINE __m512 fmt_min(const uint8_t *p, const int fmt) {
    if (fmt == FMT_PANEL_MIN) return _mm512_loadu_ps((const float *)(p + 576));
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + (fmt == FMT_R16_Q5_1 ? 352 : 288))));
}

// IQ4_NL r16 blocks hold Q4_0's bytes: each nibble indexes the 16 levels, looked up as level + 128 (so
// unsigned for vpdpbusd; the activations are seeded with -128 * sum) by one vpshufb per 64 bytes, the
// table in every 128-bit lane.
INLINE __m512i iq4_table512(void) {
    return _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)iq4_levels), _mm_set1_epi8((char)0x80)));
}

// The 8 level registers of one block (register j: 4 elements 4j..4j+3 of each of 16 rows, paired with
// activation word j) and its 16 row scales.
INLINE void tile_block(const uint8_t *p, const int fmt, __m512i w[8], __m512 *dw) {
    if (fmt == FMT_R16_Q5 || fmt == FMT_R16_Q5_1) {   // Q4_0's nibbles plus 16 where the fifth-bit mask says so
        const __m512i m4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(16);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_loadu_si512((const void *)(p + 64 * j));
            w[j] = _mm512_and_si512(v, m4);
            w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            w[j] = _mm512_mask_add_epi8(w[j], _load_mask64((__mmask64 *)(p + 256 + 8 * j)), w[j], b16);
            w[j + 4] = _mm512_mask_add_epi8(w[j + 4], _load_mask64((__mmask64 *)(p + 288 + 8 * j)), w[j + 4], b16);
        }
        *dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 320)));
        return;
    }
    if (fmt == FMT_R16_Q4 || fmt == FMT_R16_Q4_1 || fmt == FMT_R16_IQ4) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_loadu_si512((const void *)(p + 64 * j));
            w[j] = _mm512_and_si512(v, m4);
            w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        if (fmt == FMT_R16_IQ4) {
            const __m512i tab = iq4_table512();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) w[j] = _mm512_shuffle_epi8(tab, w[j]);
        }
        *dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 256)));
        return;
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512((const void *)(p + 64 * j));
    *dw = fmt == FMT_R16_Q8 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 512)))
                            : _mm512_loadu_ps((const float *)(p + 512));
}

// One activation row against one block's registers: two chains of 4 vpdpbusd seeded with the row's
// -off * sum (the latency would otherwise serialise the row's 8 products), then one multiply (row
// scales x the row's x scale) and one FMA.
// (the integer part: the 8 activation words q, the chain seeded with `seed`)
INLINE __m512i tile_row_i32(const __m512i w[8], const int32_t *q, int32_t seed) {
    __m512i s = _mm512_set1_epi32(seed), u = _mm512_setzero_si512();
    s = _mm512_dpbusd_epi32(s, w[0], _mm512_set1_epi32(q[0]));
    u = _mm512_dpbusd_epi32(u, w[1], _mm512_set1_epi32(q[1]));
    s = _mm512_dpbusd_epi32(s, w[2], _mm512_set1_epi32(q[2]));
    u = _mm512_dpbusd_epi32(u, w[3], _mm512_set1_epi32(q[3]));
    s = _mm512_dpbusd_epi32(s, w[4], _mm512_set1_epi32(q[4]));
    u = _mm512_dpbusd_epi32(u, w[5], _mm512_set1_epi32(q[5]));
    s = _mm512_dpbusd_epi32(s, w[6], _mm512_set1_epi32(q[6]));
    u = _mm512_dpbusd_epi32(u, w[7], _mm512_set1_epi32(q[7]));
    return _mm512_add_epi32(s, u);
}
INLINE __m512 tile_row(const __m512i w[8], __m512 dw, const blk_q8a *xb, __m512 acc) {
    __m512i s = tile_row_i32(w, (const int32_t *)xb->qs, xb->seed);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc);
}

// Per block the 8 level registers stay live while each of the TT activation rows adds its products;
// the minimum term of Q4_1 / Q5_1 panels is one more FMA per (block, row).
INLINE void tile(const void *panel, int64_t K, const blk_q8a *x, size_t xs, const int TT, float *y, size_t ldy,
                 int nvalid, const float *bias, int accum, const int fmt) {
    const size_t pb = fmt_block_bytes(fmt);
    const blk_q8a *xr[MM_TILE_T];
    __m512 acc[MM_TILE_T];
    for (int r = 0; r < TT; r++) { xr[r] = XROW(x, xs, r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *p = (const uint8_t *)panel + b * pb;
        __m512i w[8];
        __m512 dw;
        tile_block(p, fmt, w, &dw);
#pragma GCC unroll 8
        for (int r = 0; r < TT; r++) {
            acc[r] = tile_row(w, dw, xr[r] + b, acc[r]);
            if (fmt_has_min(fmt)) acc[r] = _mm512_fmadd_ps(fmt_min(p, fmt), _mm512_set1_ps(xr[r][b].s), acc[r]);
        }
    }
    tile_store(acc, TT, y, ldy, nvalid, bias, accum);
}

static void tile_q32_avx512(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                            size_t ldy, int nvalid, const float *bias, int acc) {
    if (t == DT_Q4_1 || t == DT_Q5_1) { TT_CASES(tile, FMT_PANEL_MIN) }
    else { TT_CASES(tile, FMT_PANEL) }
}

// ---------------------------------------------------------------- r16: weights repacked at load
// (layout in tensor/matmul_kernels.h.) Packing: the same 16x4 dword transpose as the panels, Q4_0 keeps
// the nibble bytes as they are, Q8_0 flips the sign bit (level + 128).
static void r16_pack_avx512(dtype t, const void *W, size_t rb, int nrows, int64_t K, void *panel) {
    if (t == DT_Q4_K || t == DT_Q5_K || t == DT_Q6_K || t == DT_Q5_0 || t == DT_Q5_1 || t == DT_Q4_1 ||
        t == DT_IQ4_XS || t == DT_Q3_K || t == DT_Q2_K) {   // byte moves
        mm_r16_pack_ref(t, W, rb, nrows, K, panel);
        return;
    }
    static const uint8_t zero[64];
    const int q4 = t == DT_Q4_0 || t == DT_IQ4_NL;   // (IQ4_NL: Q4_0's bytes)
    const size_t bb = (size_t)dtype_get(t)->block_bytes, pb = mm_r16_block_bytes(t);
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b < K / 32; b++) {
        uint8_t *dst = (uint8_t *)panel + b * pb;
        const uint8_t *br[16];
        uint16_t d[16];
        for (int l = 0; l < 16; l++) {
            br[l] = l < nrows ? (const uint8_t *)W + l * rb + b * bb : zero;
            memcpy(&d[l], br[l], 2);
        }
        __m512i z[4];
        transpose16x4(br, 2, z);
        if (q4) {
            for (int j = 0; j < 4; j++) _mm512_storeu_si512((void *)(dst + 64 * j), z[j]);
        } else {
            for (int j = 0; j < 4; j++) _mm512_storeu_si512((void *)(dst + 64 * j), _mm512_xor_si512(z[j], x80));
            transpose16x4(br, 18, z);
            for (int j = 0; j < 4; j++) _mm512_storeu_si512((void *)(dst + 256 + 64 * j), _mm512_xor_si512(z[j], x80));
        }
        memcpy(dst + (q4 ? 256 : 512), d, 32);
    }
}

// Decode, one Q4_0 block against one activation row: the high nibbles are masked in place (16x their
// value; the sum is shifted back once) and the 8 products run as 4 chains of 2, so a block is 13 ALU
// ops and a dependency chain of 2 `vpdpbusd`: ~1.7x the rate of tile_block + tile_row with the weights in
// L2, the same integer sum and the same float steps (so the bits of the tile).
INLINE __m512 r16_q4_row1(const uint8_t *p, const blk_q8a *xb, __m512 acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), mF0 = _mm512_set1_epi8((char)0xF0);
    const int32_t *q = (const int32_t *)xb->qs;
    __m512i v0 = _mm512_loadu_si512((const void *)p), v1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i v2 = _mm512_loadu_si512((const void *)(p + 128)), v3 = _mm512_loadu_si512((const void *)(p + 192));
    __m512i s0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(xb->seed), _mm512_and_si512(v0, m4), _mm512_set1_epi32(q[0]));
    __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v1, m4), _mm512_set1_epi32(q[1]));
    __m512i h0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v0, mF0), _mm512_set1_epi32(q[4]));
    __m512i h1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v1, mF0), _mm512_set1_epi32(q[5]));
    s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v2, m4), _mm512_set1_epi32(q[2]));
    s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(v3, m4), _mm512_set1_epi32(q[3]));
    h0 = _mm512_dpbusd_epi32(h0, _mm512_and_si512(v2, mF0), _mm512_set1_epi32(q[6]));
    h1 = _mm512_dpbusd_epi32(h1, _mm512_and_si512(v3, mF0), _mm512_set1_epi32(q[7]));
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_srai_epi32(_mm512_add_epi32(h0, h1), 4));
    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 256)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc);
}

// Decode, one IQ4_NL block: r16_q4_row1 with the nibbles looked up (iq4_table512) instead of masked in
// place: the same integer sum and float steps as the tile.
INLINE __m512 r16_iq4_row1(const uint8_t *p, const blk_q8a *xb, __m512 acc, __m512i tab) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const int32_t *q = (const int32_t *)xb->qs;
    __m512i v0 = _mm512_loadu_si512((const void *)p), v1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i v2 = _mm512_loadu_si512((const void *)(p + 128)), v3 = _mm512_loadu_si512((const void *)(p + 192));
#define IQ4_LO(v) _mm512_shuffle_epi8(tab, _mm512_and_si512(v, m4))
#define IQ4_HI(v) _mm512_shuffle_epi8(tab, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4))
    __m512i s0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(xb->seed), IQ4_LO(v0), _mm512_set1_epi32(q[0]));
    __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), IQ4_LO(v1), _mm512_set1_epi32(q[1]));
    __m512i h0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), IQ4_HI(v0), _mm512_set1_epi32(q[4]));
    __m512i h1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), IQ4_HI(v1), _mm512_set1_epi32(q[5]));
    s0 = _mm512_dpbusd_epi32(s0, IQ4_LO(v2), _mm512_set1_epi32(q[2]));
    s1 = _mm512_dpbusd_epi32(s1, IQ4_LO(v3), _mm512_set1_epi32(q[3]));
    h0 = _mm512_dpbusd_epi32(h0, IQ4_HI(v2), _mm512_set1_epi32(q[6]));
    h1 = _mm512_dpbusd_epi32(h1, IQ4_HI(v3), _mm512_set1_epi32(q[7]));
#undef IQ4_LO
#undef IQ4_HI
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(h0, h1));
    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 256)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc);
}

// Decode, one Q8_0 block: the same 8 products as 4 chains of 2 (a shorter dependency chain per block;
// ~5% faster in L2, same bits).
INLINE __m512 r16_q8_row1(const uint8_t *p, const blk_q8a *xb, __m512 acc) {
    const int32_t *q = (const int32_t *)xb->qs;
    __m512i s[4];
    s[0] = _mm512_set1_epi32(xb->seed);
    s[1] = s[2] = s[3] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        s[j & 3] = _mm512_dpbusd_epi32(s[j & 3], _mm512_loadu_si512((const void *)(p + 64 * j)), _mm512_set1_epi32(q[j]));
    __m512i t = _mm512_add_epi32(_mm512_add_epi32(s[0], s[1]), _mm512_add_epi32(s[2], s[3]));
    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 512)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc);
}

// The r16 decode kernels read their panels as one linear stream, prefetched R16_PF_AHEAD bytes ahead
// with the hint of the other decode kernels, DEC_PF_HINT.
#ifndef R16_PF_AHEAD   // (as DEC_PF_AHEAD)
#define R16_PF_AHEAD 8192
#endif
// Both overridable at build time to experiment. Alternated shuffled rounds of `bench -p 16 -n 64` (Qwen3
// Q4_0, round 17, ~23 per build on two core complexes / ~58 on one): share of the roofline with
// prefetchnta every line 0.804 / 0.978; prefetcht0 0.780 / 0.945; prefetcht1 0.758 / 0.954; prefetchnta
// every other line (R16_PF_STEP 128, the adjacent line left to the hardware) 0.712 / 0.941.
#ifndef R16_PF_HINT
#define R16_PF_HINT DEC_PF_HINT
#endif
#ifndef R16_PF_STEP   // bytes between two prefetches
#define R16_PF_STEP 64
#endif

// ---------------------------------------------------------------- r16 Q4_K (layout in matmul_kernels.h)
// A 16-row super-block: 4 groups of 8 nibble registers (low nibbles: sub-block 2g, high: 2g + 1, masked
// in place as 16x their value and shifted back once), the 6-bit scales and mins unpacked from the
// transposed scale bytes for all 16 rows at once (byte lanes, then widened to 32 bits).

// The 6-bit scales and mins of a super-block's 16 rows, unpacked from the 12 transposed scale bytes with
// 512-bit byte operations: v[0] holds scales 0..3 (16 bytes each, one per row), v[1] scales 4..7, v[2] /
// v[3] the mins alike (the format's bit layout: j < 4 in the low 6 bits of bytes j / j + 4, j >= 4 split
// over the nibbles of bytes j + 4 and the top bits of bytes j - 4 / j).
INLINE void q4k_scale_regs(const uint8_t *sc, __m512i v[4]) {
    const __m512i m63 = _mm512_set1_epi8(63), m0F = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512i z0 = _mm512_loadu_si512((const void *)sc), z1 = _mm512_loadu_si512((const void *)(sc + 64));
    __m512i z2 = _mm512_loadu_si512((const void *)(sc + 128));
    v[0] = _mm512_and_si512(z0, m63);
    v[2] = _mm512_and_si512(z1, m63);
    // (a & 0x0F) | (b & 0x30), b pre-masked: ternary logic (A & C) | B
    v[1] = _mm512_ternarylogic_epi32(z2, _mm512_and_si512(_mm512_srli_epi16(z0, 2), m30), m0F, 0xEC);
    v[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(z2, 4), _mm512_and_si512(_mm512_srli_epi16(z1, 2), m30), m0F, 0xEC);
}
// Scale (k = j) or min (k = 8 + j) of sub-block j of the 16 rows as 32-bit lanes; k must be a constant
// (the lane extract takes an immediate).
INLINE __m512i q4k_pick(const __m512i v[4], const int k) {
    const __m512i z = v[k / 4];
    switch (k & 3) {
    case 0: return _mm512_cvtepu8_epi32(_mm512_castsi512_si128(z));
    case 1: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(z, 1));
    case 2: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(z, 2));
    default: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(z, 3));
    }
}
// The same values through memory, for loops whose index is not a constant: u[16k + l] as q4k_pick(k).
INLINE void q4k_scales(const uint8_t *sc, uint8_t *u) {
    __m512i v[4];
    q4k_scale_regs(sc, v);
    for (int i = 0; i < 4; i++) _mm512_store_si512((void *)(u + 64 * i), v[i]);
}
INLINE __m512i q4k_load(const uint8_t *u, int k) { return _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(u + 16 * k))); }

// f32 sums of the activation quants per 32-element sub-block (the mins' partners), 8 per super-block.
INLINE void q8k_bsums32(const blk_q8_K *x, int64_t ns, float *bs) {
    for (int64_t s = 0; s < ns; s++) {
        __m256i v = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x[s].bsums), _mm256_set1_epi16(1));
        _mm256_storeu_ps(bs + 8 * s, _mm256_cvtepi32_ps(v));
    }
}

// sum_j m_j * bsum_j of the 16 rows in f32: every product and partial sum is an integer below 2^24, so
// this is exact (the same value as the integer sum).
INLINE __m512 q4k_summ(const __m512i v[4], const float *bs) {
    __m512 s = _mm512_setzero_ps();
#define Q4K_MIN(j) s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4k_pick(v, 8 + (j))), _mm512_set1_ps(bs[j]), s)
    Q4K_MIN(0); Q4K_MIN(1); Q4K_MIN(2); Q4K_MIN(3); Q4K_MIN(4); Q4K_MIN(5); Q4K_MIN(6); Q4K_MIN(7);
#undef Q4K_MIN
    return s;
}

// The two float steps that end a super-block (the twin's order); dp: the 16 rows' f16 d, then dmin.
INLINE __m512 q4k_finish(const uint8_t *dp, __m512i sumi, __m512 summ, float dx, __m512 acc) {
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dp));
    __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dp + 32)));
    __m512 vx = _mm512_set1_ps(dx);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, vx), acc);
    return _mm512_fnmadd_ps(summ, _mm512_mul_ps(dm, vx), acc);
}

// Q5_K: the levels of group g from its nibble register w and fifth-bit register hb (layout in
// matmul.c): low set (sub-block 2g) as 0..31, high set (2g + 1) as 4x its level. The group's two bits
// sit at q5k_pos(g) and + 2: one shift brings them to 4 and 6.
INLINE void q5k_levels(__m512i w, __m512i hb, const int g, __m512i *lo, __m512i *hi4) {
    __m512i b = g == 0 ? hb : g == 1 ? _mm512_srli_epi16(hb, 1) : g == 2 ? _mm512_slli_epi16(hb, 4) : _mm512_slli_epi16(hb, 3);
    *lo = _mm512_ternarylogic_epi32(w, _mm512_and_si512(b, _mm512_set1_epi8(0x10)), _mm512_set1_epi8(0x0F), 0xEC);
    *hi4 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(w, 2), _mm512_and_si512(b, _mm512_set1_epi8(0x40)),
                                     _mm512_set1_epi8(0x3C), 0xEC);
}
// One word j of group g as the two level registers the products take (Q4_K: low nibbles, high masked in
// place as 16x; Q5_K: q5k_levels, high as 4x).
INLINE void q45k_word(const uint8_t *p, const int g, int j, const int q5, __m512i *lo, __m512i *hi) {
    __m512i w = _mm512_loadu_si512((const void *)(p + 512 * g + 64 * j));
    if (q5) q5k_levels(w, _mm512_loadu_si512((const void *)(p + R16_Q5K_HB + 64 * j)), g, lo, hi);
    else { *lo = _mm512_and_si512(w, _mm512_set1_epi8(0x0F)); *hi = _mm512_and_si512(w, _mm512_set1_epi8((char)0xF0)); }
}

// Decode, group g (sub-blocks 2g, 2g + 1) of a super-block against one activation row: low and high sets
// in 4 chains of 4 products, the high sums shifted back once (by 4 for Q4_K's 16x, 2 for Q5_K's 4x).
INLINE __m512i r16_q45k_group1(const uint8_t *p, const int g, const int32_t *q, __m512i sclo, __m512i schi, const int q5) {
    __m512i l0 = _mm512_setzero_si512(), l1 = l0, h0 = l0, h1 = l0;
#pragma GCC unroll 4
    for (int j = 0; j < 8; j += 2) {
        __m512i la, ha, lb, hb;
        q45k_word(p, g, j, q5, &la, &ha);
        q45k_word(p, g, j + 1, q5, &lb, &hb);
        l0 = _mm512_dpbusd_epi32(l0, la, _mm512_set1_epi32(q[j]));
        l1 = _mm512_dpbusd_epi32(l1, lb, _mm512_set1_epi32(q[j + 1]));
        h0 = _mm512_dpbusd_epi32(h0, ha, _mm512_set1_epi32(q[8 + j]));
        h1 = _mm512_dpbusd_epi32(h1, hb, _mm512_set1_epi32(q[8 + j + 1]));
    }
    __m512i lo = _mm512_add_epi32(l0, l1), hi = _mm512_srai_epi32(_mm512_add_epi32(h0, h1), q5 ? 2 : 4);
    return _mm512_add_epi32(_mm512_mullo_epi32(lo, sclo), _mm512_mullo_epi32(hi, schi));
}
INLINE void r16_prefetch_to(uintptr_t *pf, uintptr_t to, uintptr_t end) {
    for (to = to < end ? to : end; *pf < to; *pf += R16_PF_STEP) _mm_prefetch((const char *)*pf, R16_PF_HINT);
}

// Decode, one super-block against one activation row (bs: its 8 sub-block sums); the prefetch runs
// ahead group by group. (Groups written out: the scale picks need constant lane indices.)
INLINE __m512 r16_q45k_sb1(const uint8_t *p, const blk_q8_K *xb, const float *bs, __m512 acc, uintptr_t *pf,
                           uintptr_t end, const int q5) {
    const int32_t *q = (const int32_t *)xb->qs;
    const uint8_t *sc = p + (q5 ? R16_Q5K_SC : R16_Q4K_SC);
    const size_t gb = (q5 ? R16_Q5K_SB : R16_Q4K_SB) / 4;   // prefetch step per group
    __m512i v[4];
    q4k_scale_regs(sc, v);
#define Q45K_GROUP(g) \
    (r16_prefetch_to(pf, (uintptr_t)p + gb * ((g) + 1) + R16_PF_AHEAD, end), \
     r16_q45k_group1(p, g, q + 16 * (g), q4k_pick(v, 2 * (g)), q4k_pick(v, 2 * (g) + 1), q5))
    __m512i sumi = Q45K_GROUP(0);
    sumi = _mm512_add_epi32(sumi, Q45K_GROUP(1));
    sumi = _mm512_add_epi32(sumi, Q45K_GROUP(2));
    sumi = _mm512_add_epi32(sumi, Q45K_GROUP(3));
#undef Q45K_GROUP
    return q4k_finish(sc + 192, sumi, q4k_summ(v, bs), xb->d, acc);
}

#define Q8K_BS_STACK 128   // super-blocks whose sub-block sums live on the stack (K <= 32768)

INLINE void r16_dec_q45k(const uint8_t *p, int64_t np, int64_t K, const blk_q8_K *x, float *out, size_t pf_bytes,
                         const int q5) {
    const int64_t ns = K / 256;
    const size_t sbb = q5 ? R16_Q5K_SB : R16_Q4K_SB;
    float bs[8 * Q8K_BS_STACK];
    if (ns <= Q8K_BS_STACK) q8k_bsums32(x, ns, bs);
    uintptr_t pf = (uintptr_t)p + R16_PF_AHEAD, end = (uintptr_t)p + pf_bytes;
    for (int64_t i = 0; i < np; i++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t s0 = 0; s0 < ns; s0 += Q8K_BS_STACK) {
            int64_t s1 = ns - s0 < Q8K_BS_STACK ? ns : s0 + Q8K_BS_STACK;
            if (ns > Q8K_BS_STACK) q8k_bsums32(x + s0, s1 - s0, bs);   // longer rows: the sums chunk by chunk
            for (int64_t s = s0; s < s1; s++, p += sbb) acc = r16_q45k_sb1(p, x + s, bs + 8 * (s - s0), acc, &pf, end, q5);
        }
        _mm512_storeu_ps(out + 16 * i, acc);
    }
}

// Prefill: per super-block and nibble half, 8 weight registers stay live while each of the TT activation
// rows adds its 8 products (two chains of 4) and scales the sub-block's integer sum; the mins' term and
// the float steps once per (super-block, row).
INLINE void r16_q45k_tile(const void *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                          int nvalid, const float *bias, int accum, const int q5) {
    const blk_q8_K *xr[MM_TILE_T];
    __m512 acc[MM_TILE_T];
    for (int r = 0; r < TT; r++) { xr[r] = XROW(x, xs, r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = (const uint8_t *)panel + sb * (q5 ? R16_Q5K_SB : R16_Q4K_SB), *scp = p + (q5 ? R16_Q5K_SC : R16_Q4K_SC);
        __m512i sumi[MM_TILE_T];
        _Alignas(64) uint8_t u[256];
        q4k_scales(scp, u);
        for (int r = 0; r < TT; r++) sumi[r] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512i w[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    __m512i lo, hi;
                    q45k_word(p, g, j, q5, &lo, &hi);   // (the unused half is dead code)
                    w[j] = h ? hi : lo;
                }
                __m512i sc = q4k_load(u, 2 * g + h);
#pragma GCC unroll 8
                for (int r = 0; r < TT; r++) {
                    const int32_t *q = (const int32_t *)xr[r][sb].qs + 16 * g + 8 * h;
                    __m512i a = _mm512_setzero_si512(), b = a;
                    a = _mm512_dpbusd_epi32(a, w[0], _mm512_set1_epi32(q[0]));
                    b = _mm512_dpbusd_epi32(b, w[1], _mm512_set1_epi32(q[1]));
                    a = _mm512_dpbusd_epi32(a, w[2], _mm512_set1_epi32(q[2]));
                    b = _mm512_dpbusd_epi32(b, w[3], _mm512_set1_epi32(q[3]));
                    a = _mm512_dpbusd_epi32(a, w[4], _mm512_set1_epi32(q[4]));
                    b = _mm512_dpbusd_epi32(b, w[5], _mm512_set1_epi32(q[5]));
                    a = _mm512_dpbusd_epi32(a, w[6], _mm512_set1_epi32(q[6]));
                    b = _mm512_dpbusd_epi32(b, w[7], _mm512_set1_epi32(q[7]));
                    __m512i t = _mm512_add_epi32(a, b);
                    if (h) t = _mm512_srai_epi32(t, q5 ? 2 : 4);
                    sumi[r] = _mm512_add_epi32(sumi[r], _mm512_mullo_epi32(t, sc));
                }
            }
        __m512 mf[8];
        for (int j = 0; j < 8; j++) mf[j] = _mm512_cvtepi32_ps(q4k_load(u, 8 + j));
        for (int r = 0; r < TT; r++) {
            float bs[8];
            q8k_bsums32(&xr[r][sb], 1, bs);
            __m512 summ = _mm512_setzero_ps();
            for (int j = 0; j < 8; j++) summ = _mm512_fmadd_ps(mf[j], _mm512_set1_ps(bs[j]), summ);
            acc[r] = q4k_finish(scp + 192, sumi[r], summ, xr[r][sb].d, acc[r]);
        }
    }
    tile_store(acc, TT, y, ldy, nvalid, bias, accum);
}
#define r16_q45k_tile_case(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, q5) \
    r16_q45k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, q5)

// ---------------------------------------------------------------- r16 Q6_K (layout in matmul_kernels.h)
// Per half h and word j three registers give the levels of the four element sets c (128h + 32c + 4j + i):
// sets 0..2 are one AND each, set 3 comes out 4x its value (its bits assembled at positions 2-7 with two
// shifts and two logic ops) and its sums are shifted back once. A sub-block of 16 elements is 4 words;
// its products start from -32 * bsum (the level offset; x4 for set 3) and are scaled by the row's int8
// scale in 32-bit integers, so each row's super-block sum is exact.

INLINE void q6k_levels(const uint8_t *v, __m512i L[4]) {
    const __m512i m3F = _mm512_set1_epi8(0x3F), m3C = _mm512_set1_epi8(0x3C), mC0 = _mm512_set1_epi8((char)0xC0);
    __m512i x = _mm512_loadu_si512((const void *)v), y = _mm512_loadu_si512((const void *)(v + 64));
    __m512i z = _mm512_loadu_si512((const void *)(v + 128));
    L[0] = _mm512_and_si512(x, m3F);
    L[1] = _mm512_and_si512(y, m3F);
    L[2] = _mm512_and_si512(z, m3F);
    // 4 * level 3: x bits 6-7 -> 2-3, y bits 6-7 -> 4-5, z bits 6-7 stay
    __m512i t = _mm512_ternarylogic_epi32(_mm512_srli_epi16(x, 4), _mm512_srli_epi16(y, 2), _mm512_set1_epi8(0x0C), 0xE4);
    L[3] = _mm512_ternarylogic_epi32(_mm512_and_si512(t, m3C), z, mC0, 0xF8);
}
// The chains' seeds of one activation super-block: out[k] = -32 * bsum_k, out[16 + k] = -128 * bsum_k
// (set 3, whose levels enter 4x), broadcast from memory by the kernels.
INLINE void q6k_seeds(const blk_q8_K *xb, int32_t *out) {
    __m512i b = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)xb->bsums));
    __m512i s32 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(b, 5));
    _mm512_storeu_si512((void *)out, s32);
    _mm512_storeu_si512((void *)(out + 16), _mm512_slli_epi32(s32, 2));
}
INLINE __m512i q6k_scale32(const uint8_t *p, int j) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + R16_Q6K_SC + 16 * j)));
}
INLINE __m512 q6k_finish(const uint8_t *p, __m512i sumi, float dx, __m512 acc) {
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + R16_Q6K_D)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(dx)), acc);
}

// Decode, one super-block against one activation row.
INLINE __m512 r16_q6k_sb1(const uint8_t *p, const blk_q8_K *xb, __m512 acc, uintptr_t *pf, uintptr_t end) {
    const int32_t *q = (const int32_t *)xb->qs;
    int32_t seed[32];
    q6k_seeds(xb, seed);
    __m512i sumi = _mm512_setzero_si512();
    // (fully unrolled: with runtime loops gcc keeps s[] and L[] on the stack, and every `vpdpbusd` then
    // waits for its accumulator's store and reload: 2x slower)
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        r16_prefetch_to(pf, (uintptr_t)p + 1536 * (h + 1) + R16_PF_AHEAD, end);
        __m512i s[8];   // sub-block 8h + 2c + j / 4 in s[2c + j / 4]
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) s[k] = _mm512_set1_epi32(seed[(k >= 6 ? 16 : 0) + 8 * h + k]);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m512i L[4];
            q6k_levels(p + 1536 * h + 192 * j, L);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                s[2 * c + j / 4] = _mm512_dpbusd_epi32(s[2 * c + j / 4], L[c], _mm512_set1_epi32(q[32 * h + 8 * c + j]));
        }
        s[6] = _mm512_srai_epi32(s[6], 2);
        s[7] = _mm512_srai_epi32(s[7], 2);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(s[k], q6k_scale32(p, 8 * h + k)));
    }
    r16_prefetch_to(pf, (uintptr_t)p + R16_Q6K_SB + R16_PF_AHEAD, end);
    return q6k_finish(p, sumi, xb->d, acc);
}

// Decode over consecutive panels of 256-column super-blocks of SB bytes: one linear stream, `sb1` one
// super-block of 16 rows against one activation row (prefetching ahead up to `end`).
#define R16_DEC_SB(name, SB, sb1) \
    static void name(const uint8_t *p, int64_t np, int64_t K, const blk_q8_K *x, float *out, size_t pf_bytes) { \
        uintptr_t pf = (uintptr_t)p + R16_PF_AHEAD, end = (uintptr_t)p + pf_bytes; \
        for (int64_t i = 0; i < np; i++) { \
            __m512 acc = _mm512_setzero_ps(); \
            for (int64_t s = 0; s < K / 256; s++, p += (SB)) acc = sb1(p, x + s, acc, &pf, end); \
            _mm512_storeu_ps(out + 16 * i, acc); \
        } \
    }
R16_DEC_SB(r16_dec_q6k, R16_Q6K_SB, r16_q6k_sb1)

// Prefill: per (half, element set) the 8 level registers (two sub-blocks) stay live while each activation
// row adds its products, one seeded chain per sub-block.
INLINE void r16_q6k_tile(const void *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                         int nvalid, const float *bias, int accum) {
    const blk_q8_K *xr[MM_TILE_T];
    __m512 acc[MM_TILE_T];
    for (int r = 0; r < TT; r++) { xr[r] = XROW(x, xs, r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = (const uint8_t *)panel + sb * R16_Q6K_SB;
        __m512i sumi[MM_TILE_T];
        int32_t seed[MM_TILE_T][32];
        for (int r = 0; r < TT; r++) { sumi[r] = _mm512_setzero_si512(); q6k_seeds(&xr[r][sb], seed[r]); }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i w[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    __m512i L[4];
                    q6k_levels(p + 1536 * h + 192 * j, L);   // (the unused sets are dead code)
                    w[j] = L[c];
                }
                const int k0 = 8 * h + 2 * c, so = c == 3 ? 16 : 0;   // the two sub-blocks, the seeds' scale
                __m512i sc0 = q6k_scale32(p, k0), sc1 = q6k_scale32(p, k0 + 1);
#pragma GCC unroll 8
                for (int r = 0; r < TT; r++) {
                    const int32_t *q = (const int32_t *)xr[r][sb].qs + 32 * h + 8 * c;
                    __m512i a = _mm512_set1_epi32(seed[r][so + k0]), b = _mm512_set1_epi32(seed[r][so + k0 + 1]);
                    a = _mm512_dpbusd_epi32(a, w[0], _mm512_set1_epi32(q[0]));
                    b = _mm512_dpbusd_epi32(b, w[4], _mm512_set1_epi32(q[4]));
                    a = _mm512_dpbusd_epi32(a, w[1], _mm512_set1_epi32(q[1]));
                    b = _mm512_dpbusd_epi32(b, w[5], _mm512_set1_epi32(q[5]));
                    a = _mm512_dpbusd_epi32(a, w[2], _mm512_set1_epi32(q[2]));
                    b = _mm512_dpbusd_epi32(b, w[6], _mm512_set1_epi32(q[6]));
                    a = _mm512_dpbusd_epi32(a, w[3], _mm512_set1_epi32(q[3]));
                    b = _mm512_dpbusd_epi32(b, w[7], _mm512_set1_epi32(q[7]));
                    if (c == 3) { a = _mm512_srai_epi32(a, 2); b = _mm512_srai_epi32(b, 2); }
                    sumi[r] = _mm512_add_epi32(sumi[r], _mm512_add_epi32(_mm512_mullo_epi32(a, sc0), _mm512_mullo_epi32(b, sc1)));
                }
            }
        for (int r = 0; r < TT; r++) acc[r] = q6k_finish(p, sumi[r], xr[r][sb].d, acc[r]);
    }
    tile_store(acc, TT, y, ldy, nvalid, bias, accum);
}
#define r16_q6k_tile_case(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, unused) \
    r16_q6k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc)

// ---------------------------------------------------------------- r16 Q3_K (layout in matmul_kernels.h)
// Per (half h, shift s) the 8 level registers of 4 elements x 16 rows: (qs >> 2s) & 3, plus 4 where the
// high bit 4h + s of the hmask byte is set (levels 0..7 = q + 4, unsigned for vpdpbusd; each sub-block's
// chain starts from -4 times its activation sum); the two sub-blocks' sums are scaled by the rows'
// sc - 32 in 32-bit integers, so each row's super-block sum is exact; one FMA per super-block.
// Q2_K / Q3_K: the 2-bit levels of register j of half h, shift s (from the qs registers).
INLINE __m512i q2k_level_reg(const uint8_t *p, int h, int s, int j) {
    return _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512((const void *)(p + 512 * h + 64 * j)), 2 * s),
                            _mm512_set1_epi8(3));
}
INLINE void q3k_levels(const uint8_t *p, int h, int s, __m512i w[8]) {
    const __m512i four = _mm512_set1_epi8(4), hb = _mm512_set1_epi8((char)(1 << (4 * h + s)));
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m512i lv = q2k_level_reg(p, h, s, j);
        __mmask64 hi = _mm512_test_epi8_mask(_mm512_loadu_si512((const void *)(p + R16_Q3K_HM + 64 * j)), hb);
        w[j] = _mm512_mask_add_epi8(lv, hi, lv, four);
    }
}
// Q2_K / Q3_K: the two sub-blocks of the 8 level registers against activation words q: registers 0..3 into
// a, 4..7 into b (chains the caller seeds), interleaved.
INLINE void q23k_dots(const __m512i w[8], const int32_t *q, __m512i *pa, __m512i *pb) {
    __m512i a = *pa, b = *pb;
    a = _mm512_dpbusd_epi32(a, w[0], _mm512_set1_epi32(q[0]));
    b = _mm512_dpbusd_epi32(b, w[4], _mm512_set1_epi32(q[4]));
    a = _mm512_dpbusd_epi32(a, w[1], _mm512_set1_epi32(q[1]));
    b = _mm512_dpbusd_epi32(b, w[5], _mm512_set1_epi32(q[5]));
    a = _mm512_dpbusd_epi32(a, w[2], _mm512_set1_epi32(q[2]));
    b = _mm512_dpbusd_epi32(b, w[6], _mm512_set1_epi32(q[6]));
    a = _mm512_dpbusd_epi32(a, w[3], _mm512_set1_epi32(q[3]));
    b = _mm512_dpbusd_epi32(b, w[7], _mm512_set1_epi32(q[7]));
    *pa = a;
    *pb = b;
}
// The 6-bit scales minus 32 of a super-block's 16 sub-blocks x 16 rows, as int8 with byte operations on the
// three 64-byte registers of scale bytes: v[g] lane (128-bit) i holds sub-block 4g + i of the 16 rows
// (the format: low nibbles of bytes 0..7 for sub-blocks 0..7, high nibbles for 8..15, the top two bits at
// bit 2 (k / 4) of byte 8 + k % 4).
INLINE void q3k_scale_regs(const uint8_t *p, __m512i v[4]) {
    const __m512i m0F = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), b32 = _mm512_set1_epi8(32);
    __m512i z0 = _mm512_loadu_si512((const void *)(p + R16_Q3K_SC)), z1 = _mm512_loadu_si512((const void *)(p + R16_Q3K_SC + 64));
    __m512i z2 = _mm512_loadu_si512((const void *)(p + R16_Q3K_SC + 128));
    __m512i lo[4] = {_mm512_and_si512(z0, m0F), _mm512_and_si512(z1, m0F), _mm512_and_si512(_mm512_srli_epi16(z0, 4), m0F),
                     _mm512_and_si512(_mm512_srli_epi16(z1, 4), m0F)};
    __m512i hi[4] = {_mm512_slli_epi16(z2, 4), _mm512_slli_epi16(z2, 2), z2, _mm512_srli_epi16(z2, 2)};   // bits 2g.. -> 4..5
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) v[g] = _mm512_sub_epi8(_mm512_ternarylogic_epi32(lo[g], hi[g], m30, 0xF8), b32);
}
// Sub-block k's 16 scales (k = 4g + i) widened to 32 bits.
INLINE __m512i q3k_scale32(const __m512i v[4], int k) {
    __m128i x;
    switch (k % 4) {
    case 0: x = _mm512_extracti32x4_epi32(v[k / 4], 0); break;
    case 1: x = _mm512_extracti32x4_epi32(v[k / 4], 1); break;
    case 2: x = _mm512_extracti32x4_epi32(v[k / 4], 2); break;
    default: x = _mm512_extracti32x4_epi32(v[k / 4], 3); break;
    }
    return _mm512_cvtepi8_epi32(x);
}
// Sub-blocks 8h + 2s and 8h + 2s + 1 of one activation row against the 8 level registers.
INLINE __m512i q3k_pair(const __m512i w[8], const blk_q8_K *xb, int h, int s, __m512i sc0, __m512i sc1) {
    const int k = 8 * h + 2 * s;
    const int32_t *q = (const int32_t *)xb->qs + 32 * h + 8 * s;
    __m512i a = _mm512_set1_epi32(-4 * xb->bsums[k]), b = _mm512_set1_epi32(-4 * xb->bsums[k + 1]);
    q23k_dots(w, q, &a, &b);
    return _mm512_add_epi32(_mm512_mullo_epi32(a, sc0), _mm512_mullo_epi32(b, sc1));
}
INLINE __m512 q3k_finish(const uint8_t *p, __m512i sumi, float dx, __m512 acc) {
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + R16_Q3K_D)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(dx)), acc);
}

INLINE __m512 r16_q3k_sb1(const uint8_t *p, const blk_q8_K *xb, __m512 acc, uintptr_t *pf, uintptr_t end) {
    __m512i sumi = _mm512_setzero_si512(), sc[4];
    q3k_scale_regs(p, sc);
    // (the loops fully unrolled, as in every decode kernel here: as runtime loops gcc keeps the level
    // registers on the stack)
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        r16_prefetch_to(pf, (uintptr_t)p + 880 * (h + 1) + R16_PF_AHEAD, end);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            __m512i w[8];
            q3k_levels(p, h, s, w);
            sumi = _mm512_add_epi32(sumi, q3k_pair(w, xb, h, s, q3k_scale32(sc, 8 * h + 2 * s),
                                                   q3k_scale32(sc, 8 * h + 2 * s + 1)));
        }
    }
    return q3k_finish(p, sumi, xb->d, acc);
}
R16_DEC_SB(r16_dec_q3k, R16_Q3K_SB, r16_q3k_sb1)

// Prefill: per (half, shift) the 8 level registers stay live while each activation row adds its products.
INLINE void r16_q3k_tile(const void *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                         int nvalid, const float *bias, int accum) {
    const blk_q8_K *xr[MM_TILE_T];
    __m512 acc[MM_TILE_T];
    for (int r = 0; r < TT; r++) { xr[r] = XROW(x, xs, r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = (const uint8_t *)panel + sb * R16_Q3K_SB;
        __m512i sumi[MM_TILE_T], sc[4];
        for (int r = 0; r < TT; r++) sumi[r] = _mm512_setzero_si512();
        q3k_scale_regs(p, sc);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m512i w[8];
                q3k_levels(p, h, s, w);
                __m512i sc0 = q3k_scale32(sc, 8 * h + 2 * s), sc1 = q3k_scale32(sc, 8 * h + 2 * s + 1);
#pragma GCC unroll 8
                for (int r = 0; r < TT; r++) sumi[r] = _mm512_add_epi32(sumi[r], q3k_pair(w, &xr[r][sb], h, s, sc0, sc1));
            }
        for (int r = 0; r < TT; r++) acc[r] = q3k_finish(p, sumi[r], xr[r][sb].d, acc[r]);
    }
    tile_store(acc, TT, y, ldy, nvalid, bias, accum);
}
#define r16_q3k_tile_case(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, unused) \
    r16_q3k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc)

// ---------------------------------------------------------------- r16 Q2_K (layout in matmul_kernels.h)
// Q3_K's qs registers without the high bit (levels 0..3, no offset); per sub-block the sum is
// scaled by the rows' 4-bit scale and the minimum term m * bsum summed apart, both in 32-bit integers; two
// FMAs per super-block.
INLINE void q2k_levels(const uint8_t *p, int h, int s, __m512i w[8]) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) w[j] = q2k_level_reg(p, h, s, j);
}
// Sub-blocks k = 8h + 2s and k + 1 of one activation row: adds sc * dot to *sumi and m * bsum to *summ.
INLINE void q2k_pair(const uint8_t *p, const __m512i w[8], const blk_q8_K *xb, int h, int s, __m512i *sumi,
                     __m512i *summ) {
    const int k = 8 * h + 2 * s;
    const int32_t *q = (const int32_t *)xb->qs + 32 * h + 8 * s;
    const __m512i m4 = _mm512_set1_epi32(0xF);
    __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
    q23k_dots(w, q, &a, &b);
    __m512i s0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + R16_Q2K_SC + 16 * k)));
    __m512i s1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + R16_Q2K_SC + 16 * (k + 1))));
    *sumi = _mm512_add_epi32(*sumi, _mm512_add_epi32(_mm512_mullo_epi32(a, _mm512_and_si512(s0, m4)),
                                                     _mm512_mullo_epi32(b, _mm512_and_si512(s1, m4))));
    *summ = _mm512_add_epi32(*summ, _mm512_add_epi32(_mm512_mullo_epi32(_mm512_srli_epi32(s0, 4), _mm512_set1_epi32(xb->bsums[k])),
                                                     _mm512_mullo_epi32(_mm512_srli_epi32(s1, 4), _mm512_set1_epi32(xb->bsums[k + 1]))));
}
INLINE __m512 q2k_finish(const uint8_t *p, __m512i sumi, __m512i summ, float dx, __m512 acc) {
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + R16_Q2K_D)));
    __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + R16_Q2K_DMIN)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(dx)), acc);
    return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dm, _mm512_set1_ps(dx)), acc);
}

INLINE __m512 r16_q2k_sb1(const uint8_t *p, const blk_q8_K *xb, __m512 acc, uintptr_t *pf, uintptr_t end) {
    __m512i sumi = _mm512_setzero_si512(), summ = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        r16_prefetch_to(pf, (uintptr_t)p + 672 * (h + 1) + R16_PF_AHEAD, end);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            __m512i w[8];
            q2k_levels(p, h, s, w);
            q2k_pair(p, w, xb, h, s, &sumi, &summ);
        }
    }
    return q2k_finish(p, sumi, summ, xb->d, acc);
}
R16_DEC_SB(r16_dec_q2k, R16_Q2K_SB, r16_q2k_sb1)

INLINE void r16_q2k_tile(const void *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                         int nvalid, const float *bias, int accum) {
    const blk_q8_K *xr[MM_TILE_T];
    __m512 acc[MM_TILE_T];
    for (int r = 0; r < TT; r++) { xr[r] = XROW(x, xs, r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = (const uint8_t *)panel + sb * R16_Q2K_SB;
        __m512i sumi[MM_TILE_T], summ[MM_TILE_T];
        for (int r = 0; r < TT; r++) { sumi[r] = _mm512_setzero_si512(); summ[r] = _mm512_setzero_si512(); }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m512i w[8];
                q2k_levels(p, h, s, w);
#pragma GCC unroll 8
                for (int r = 0; r < TT; r++) q2k_pair(p, w, &xr[r][sb], h, s, &sumi[r], &summ[r]);
            }
        for (int r = 0; r < TT; r++) acc[r] = q2k_finish(p, sumi[r], summ[r], xr[r][sb].d, acc[r]);
    }
    tile_store(acc, TT, y, ldy, nvalid, bias, accum);
}
#define r16_q2k_tile_case(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, unused) \
    r16_q2k_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc)

// ---------------------------------------------------------------- r16 IQ4_XS (layout in matmul_kernels.h)
// Per sub-block the IQ4_NL block's products (levels looked up as level + 128, seeded with -128 times the
// sub-block's activation sum), scaled by the 16 rows' ls - 32 in 32-bit integers, so each row's
// super-block sum is exact; one FMA per super-block.

// The 16 rows' 6-bit scales of sub-block ib, minus 32 (sh: the rows' scales_h widened to 32 bits).
INLINE __m512i iq4xs_scales(const uint8_t *p, __m512i sh, int ib) {
    __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + R16_IQ4XS_SL + 16 * (ib / 2))));
    lo = _mm512_and_si512(_mm512_srli_epi32(lo, 4 * (ib % 2)), _mm512_set1_epi32(0xF));
    __m512i hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sh, 2 * ib), _mm512_set1_epi32(3)), 4);
    return _mm512_sub_epi32(_mm512_or_si512(lo, hi), _mm512_set1_epi32(32));
}
INLINE __m512i iq4xs_sh(const uint8_t *p) {
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + R16_IQ4XS_SH)));
}
INLINE int32_t iq4xs_seed(const blk_q8_K *xb, int ib) { return -128 * (xb->bsums[2 * ib] + xb->bsums[2 * ib + 1]); }
INLINE __m512 iq4xs_finish(const uint8_t *p, __m512i sumi, float dx, __m512 acc) {
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + R16_IQ4XS_D)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(dx)), acc);
}

INLINE __m512 r16_iq4xs_sb1(const uint8_t *p, const blk_q8_K *xb, __m512 acc, uintptr_t *pf, uintptr_t end) {
    __m512i sh = iq4xs_sh(p), sumi = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int ib = 0; ib < 8; ib++) {
        r16_prefetch_to(pf, (uintptr_t)p + 256 * (ib + 1) + R16_PF_AHEAD, end);
        __m512i w[8];
        __m512 unused;
        tile_block(p + 256 * ib, FMT_R16_IQ4, w, &unused);
        __m512i si = tile_row_i32(w, (const int32_t *)(xb->qs + 32 * ib), iq4xs_seed(xb, ib));
        sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(si, iq4xs_scales(p, sh, ib)));
    }
    r16_prefetch_to(pf, (uintptr_t)p + R16_IQ4XS_SB + R16_PF_AHEAD, end);
    return iq4xs_finish(p, sumi, xb->d, acc);
}
R16_DEC_SB(r16_dec_iq4xs, R16_IQ4XS_SB, r16_iq4xs_sb1)

// Prefill: per sub-block the 8 level registers stay live while each activation row adds its products.
INLINE void r16_iq4xs_tile(const void *panel, int64_t K, const void *x, size_t xs, const int TT, float *y, size_t ldy,
                           int nvalid, const float *bias, int accum) {
    const blk_q8_K *xr[MM_TILE_T];
    __m512 acc[MM_TILE_T];
    for (int r = 0; r < TT; r++) { xr[r] = XROW(x, xs, r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = (const uint8_t *)panel + sb * R16_IQ4XS_SB;
        __m512i sh = iq4xs_sh(p), sumi[MM_TILE_T];
        for (int r = 0; r < TT; r++) sumi[r] = _mm512_setzero_si512();
        for (int ib = 0; ib < 8; ib++) {
            __m512i w[8];
            __m512 unused;
            tile_block(p + 256 * ib, FMT_R16_IQ4, w, &unused);
            __m512i sc = iq4xs_scales(p, sh, ib);
#pragma GCC unroll 8
            for (int r = 0; r < TT; r++) {
                __m512i si = tile_row_i32(w, (const int32_t *)(xr[r][sb].qs + 32 * ib), iq4xs_seed(&xr[r][sb], ib));
                sumi[r] = _mm512_add_epi32(sumi[r], _mm512_mullo_epi32(si, sc));
            }
        }
        for (int r = 0; r < TT; r++) acc[r] = iq4xs_finish(p, sumi[r], xr[r][sb].d, acc[r]);
    }
    tile_store(acc, TT, y, ldy, nvalid, bias, accum);
}
#define r16_iq4xs_tile_case(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc, unused) \
    r16_iq4xs_tile(panel, K, x, xs, TT, y, ldy, nvalid, bias, acc)

// The super-block tiles (K-quants, IQ4_XS) keep per activation row both an integer and a float
// accumulator, and the level registers besides: at 8 rows they spill, so they take the rows 4 at a time
// (prefill, one thread, 2048 x 2048 weight, T = 128: Q4_K 252-291 -> 445-460 GFLOP/s, Q5_K 238-285 ->
// 391-398, Q6_K 241-286 -> 368-391, Q3_K 225-250 -> 319-430, Q2_K 220-222 -> 377-457, IQ4_XS 524-544
// -> 578-606; the 32-element tiles are faster at 8: Q4_0 653 vs 584, Q8_0 632 vs 567). Each row's
// arithmetic is the same either way, so are its bits.
#define K_TILE_ROWS 4
#define TT_CASES_ROWS4(fn, ...)                                                                   \
    for (int t0 = 0; t0 < TT; t0 += K_TILE_ROWS) {                                                \
        const int n4 = TT - t0 < K_TILE_ROWS ? TT - t0 : K_TILE_ROWS;                             \
        const void *x4 = (const char *)x + (size_t)t0 * xs;                                       \
        float *y4 = y + (size_t)t0 * ldy;                                                          \
        switch (n4) {                                                                             \
        case 1: fn(panel, K, x4, xs, 1, y4, ldy, nvalid, bias, acc, __VA_ARGS__); break;          \
        case 2: fn(panel, K, x4, xs, 2, y4, ldy, nvalid, bias, acc, __VA_ARGS__); break;          \
        case 3: fn(panel, K, x4, xs, 3, y4, ldy, nvalid, bias, acc, __VA_ARGS__); break;          \
        default: fn(panel, K, x4, xs, 4, y4, ldy, nvalid, bias, acc, __VA_ARGS__); break;         \
        }                                                                                         \
    }
static void r16_tile_avx512(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                            size_t ldy, int nvalid, const float *bias, int acc) {
    if (t == DT_Q4_K) { TT_CASES_ROWS4(r16_q45k_tile_case, 0) }
    else if (t == DT_Q5_K) { TT_CASES_ROWS4(r16_q45k_tile_case, 1) }
    else if (t == DT_Q6_K) { TT_CASES_ROWS4(r16_q6k_tile_case, 0) }
    else if (t == DT_Q4_0) { TT_CASES(tile, FMT_R16_Q4) }
    else if (t == DT_IQ4_NL) { TT_CASES(tile, FMT_R16_IQ4) }
    else if (t == DT_IQ4_XS) { TT_CASES_ROWS4(r16_iq4xs_tile_case, 0) }
    else if (t == DT_Q3_K) { TT_CASES_ROWS4(r16_q3k_tile_case, 0) }
    else if (t == DT_Q2_K) { TT_CASES_ROWS4(r16_q2k_tile_case, 0) }
    else if (t == DT_Q5_0) { TT_CASES(tile, FMT_R16_Q5) }
    else if (t == DT_Q5_1) { TT_CASES(tile, FMT_R16_Q5_1) }
    else if (t == DT_Q4_1) { TT_CASES(tile, FMT_R16_Q4_1) }
    else { TT_CASES(tile, FMT_R16_Q8) }
}

// Decode over consecutive panels: one linear stream (see R16_PF_AHEAD).
// (Q5_0: the tile's block and row steps with one activation row, which are its bits by construction.)
INLINE void r16_dec(const uint8_t *p, int64_t np, int64_t K, const blk_q8a *x, float *out, size_t pf_bytes,
                    const int fmt) {
    const size_t pb = fmt_block_bytes(fmt);
    const int64_t nb = K / 32;
    // (integers: the prefetch stops at pf_bytes, not in rows another thread may be reading)
    uintptr_t pf = (uintptr_t)p + R16_PF_AHEAD, end = (uintptr_t)p + pf_bytes;
    for (int64_t i = 0; i < np; i++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++, p += pb) {
            r16_prefetch_to(&pf, (uintptr_t)p + pb + R16_PF_AHEAD, end);
            if (fmt == FMT_R16_Q5 || fmt == FMT_R16_Q5_1 || fmt == FMT_R16_Q4_1) {
                __m512i w[8];
                __m512 dw;
                tile_block(p, fmt, w, &dw);
                acc = tile_row(w, dw, x + b, acc);
                if (fmt_has_min(fmt)) acc = _mm512_fmadd_ps(fmt_min(p, fmt), _mm512_set1_ps(x[b].s), acc);
            } else if (fmt == FMT_R16_IQ4) acc = r16_iq4_row1(p, x + b, acc, iq4_table512());
            else acc = fmt == FMT_R16_Q4 ? r16_q4_row1(p, x + b, acc) : r16_q8_row1(p, x + b, acc);
        }
        _mm512_storeu_ps(out + 16 * i, acc);
    }
}
static void r16_dec_avx512(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out,
                           size_t pf_bytes) {
    if (t == DT_Q4_K) r16_dec_q45k(panels, np, K, x, out, pf_bytes, 0);
    else if (t == DT_Q5_K) r16_dec_q45k(panels, np, K, x, out, pf_bytes, 1);
    else if (t == DT_Q6_K) r16_dec_q6k(panels, np, K, x, out, pf_bytes);
    else if (t == DT_Q4_0) r16_dec(panels, np, K, x, out, pf_bytes, FMT_R16_Q4);
    else if (t == DT_IQ4_NL) r16_dec(panels, np, K, x, out, pf_bytes, FMT_R16_IQ4);
    else if (t == DT_IQ4_XS) r16_dec_iq4xs(panels, np, K, x, out, pf_bytes);
    else if (t == DT_Q3_K) r16_dec_q3k(panels, np, K, x, out, pf_bytes);
    else if (t == DT_Q2_K) r16_dec_q2k(panels, np, K, x, out, pf_bytes);
    else if (t == DT_Q5_0) r16_dec(panels, np, K, x, out, pf_bytes, FMT_R16_Q5);
    else if (t == DT_Q5_1) r16_dec(panels, np, K, x, out, pf_bytes, FMT_R16_Q5_1);
    else if (t == DT_Q4_1) r16_dec(panels, np, K, x, out, pf_bytes, FMT_R16_Q4_1);
    else r16_dec(panels, np, K, x, out, pf_bytes, FMT_R16_Q8);
}

// ---------------------------------------------------------------- prefill: f32 GEMM
// 16 x 16 transpose of f32: unpack pairs of rows, shuffle to 4-row columns inside 128-bit lanes, then two
// rounds of 128-bit lane shuffles. r[i] row i in, c[j] column j out.
INLINE void transpose16x16(__m512 r[16], __m512 c[16]) {
    __m512 U[4][4];
    for (int g = 0; g < 4; g++) {
        __m512 lo01 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]), hi01 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
        __m512 lo23 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]), hi23 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
        U[g][0] = _mm512_shuffle_ps(lo01, lo23, 0x44);
        U[g][1] = _mm512_shuffle_ps(lo01, lo23, 0xEE);
        U[g][2] = _mm512_shuffle_ps(hi01, hi23, 0x44);
        U[g][3] = _mm512_shuffle_ps(hi01, hi23, 0xEE);
    }
    for (int q = 0; q < 4; q++) {   // U[g][q] lane L = rows 4g..4g+3 of column 4L + q
        __m512 V = _mm512_shuffle_f32x4(U[0][q], U[1][q], 0x88), Wv = _mm512_shuffle_f32x4(U[2][q], U[3][q], 0x88);
        __m512 V2 = _mm512_shuffle_f32x4(U[0][q], U[1][q], 0xDD), W2 = _mm512_shuffle_f32x4(U[2][q], U[3][q], 0xDD);
        c[q] = _mm512_shuffle_f32x4(V, Wv, 0x88);
        c[8 + q] = _mm512_shuffle_f32x4(V, Wv, 0xDD);
        c[4 + q] = _mm512_shuffle_f32x4(V2, W2, 0x88);
        c[12 + q] = _mm512_shuffle_f32x4(V2, W2, 0xDD);
    }
}

static void packx_avx512(const float *X, int64_t T, int64_t K, float *Xp) {
    int64_t nblk = (T + MM_GEMM_TB - 1) / MM_GEMM_TB;
    for (int64_t tb = 0; tb < nblk; tb++)
        for (int h = 0; h < MM_GEMM_TB / 16; h++) {
            int64_t t0 = tb * MM_GEMM_TB + h * 16;
            float *dst = Xp + tb * K * MM_GEMM_TB + h * 16;
            int64_t k = 0;
            for (; k + 16 <= K; k += 16) {
                __m512 r[16], c[16];
                for (int i = 0; i < 16; i++)
                    r[i] = t0 + i < T ? _mm512_loadu_ps(X + (t0 + i) * K + k) : _mm512_setzero_ps();
                transpose16x16(r, c);
                for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + (k + j) * MM_GEMM_TB, c[j]);
            }
            for (; k < K; k++)
                for (int i = 0; i < 16; i++) dst[k * MM_GEMM_TB + i] = t0 + i < T ? X[(t0 + i) * K + k] : 0.f;
        }
}

// MM_GEMM_NR weight rows x 32 activation rows: 24 accumulators; per k two loads of packed activations and
// MM_GEMM_NR broadcast weights feed 24 FMAs.
static void f32gemm_avx512(int64_t K, const float *w, size_t ldw, const float *xp, float *out) {
    __m512 a0[MM_GEMM_NR], a1[MM_GEMM_NR];
    for (int i = 0; i < MM_GEMM_NR; i++) { a0[i] = _mm512_setzero_ps(); a1[i] = _mm512_setzero_ps(); }
    for (int64_t k = 0; k < K; k++) {
        __m512 x0 = _mm512_load_ps(xp + k * MM_GEMM_TB), x1 = _mm512_load_ps(xp + k * MM_GEMM_TB + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MM_GEMM_NR; i++) {
            __m512 wi = _mm512_set1_ps(w[i * ldw + k]);
            a0[i] = _mm512_fmadd_ps(wi, x0, a0[i]);
            a1[i] = _mm512_fmadd_ps(wi, x1, a1[i]);
        }
    }
    for (int i = 0; i < MM_GEMM_NR; i++) {
        _mm512_storeu_ps(out + i * MM_GEMM_TB, a0[i]);
        _mm512_storeu_ps(out + i * MM_GEMM_TB + 16, a1[i]);
    }
}

// Q2_K / Q3_K rows to f32 for the prefill tile, the bits of dequantize_row (the same two roundings per
// element: the sub-block's float scale, then one multiply, and for Q2_K one subtract): per 32-element
// chunk the levels are a shift and mask of a 32-byte load (Q3_K: plus 4x the hmask bit, then - 4).
static void tof32_q23k(dtype t, const void *src, float *dst, int64_t n) {
    const int q3 = t == DT_Q3_K;
    const size_t bb = q3 ? sizeof(blk_q3_K) : sizeof(blk_q2_K);
    for (int64_t i = 0; i < n / 256; i++, dst += 256) {
        const uint8_t *blk = (const uint8_t *)src + (size_t)i * bb, *qs;
        float dl[16], ml[16];
        __m256i H = _mm256_setzero_si256();
        if (q3) {
            const blk_q3_K *b = (const blk_q3_K *)blk;
            float d = h2f(b->d);
            for (int j = 0; j < 16; j++) { dl[j] = d * (float)(q3k_scale(j, b->scales) - 32); ml[j] = 0; }
            qs = b->qs;
            H = _mm256_loadu_si256((const __m256i *)b->hmask);
        } else {
            const blk_q2_K *b = (const blk_q2_K *)blk;
            float d = h2f(b->d), dmin = h2f(b->dmin);
            for (int j = 0; j < 16; j++) { dl[j] = d * (float)(b->scales[j] & 0xF); ml[j] = dmin * (float)(b->scales[j] >> 4); }
            qs = b->qs;
        }
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            __m256i lv = q23k_chunk(qs, H, c, q3);
            for (int hf = 0; hf < 2; hf++) {   // sub-block 2c + hf: 16 elements
                __m512i w = _mm512_cvtepu8_epi32(hf ? _mm256_extracti128_si256(lv, 1) : _mm256_castsi256_si128(lv));
                if (q3) w = _mm512_sub_epi32(w, _mm512_set1_epi32(4));
                __m512 y = _mm512_mul_ps(_mm512_set1_ps(dl[2 * c + hf]), _mm512_cvtepi32_ps(w));
                if (!q3) y = _mm512_sub_ps(y, _mm512_set1_ps(ml[2 * c + hf]));
                _mm512_storeu_ps(dst + 32 * c + 16 * hf, y);
            }
        }
    }
}

// IQ4_NL / IQ4_XS rows to f32 for the prefill tile, the bits of dequantize_row (one multiply of the
// block's or sub-block's float scale by the level): per 32-element block / sub-block a table lookup.
static void tof32_iq4(dtype t, const void *src, float *dst, int64_t n) {
    const __m256i tab = iq4_table();
    for (int64_t c = 0; c < n / 32; c++, dst += 32) {
        const uint8_t *qs;
        float dl;
        if (t == DT_IQ4_XS) {
            const blk_iq4_xs *b = (const blk_iq4_xs *)src + c / 8;
            dl = h2f(b->d) * (float)(iq4xs_scale(b, (int)(c % 8)) - 32);
            qs = b->qs + 16 * (c % 8);
        } else {
            const blk_iq4_nl *b = (const blk_iq4_nl *)src + c;
            dl = h2f(b->d);
            qs = b->qs;
        }
        __m256i lv = iq4_levels32(qs, tab);
        __m512 vd = _mm512_set1_ps(dl);
        __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(lv)));
        __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(lv, 1)));
        _mm512_storeu_ps(dst, _mm512_mul_ps(vd, lo));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(vd, hi));
    }
}

static void tof32_avx512(dtype t, const void *src, float *dst, int64_t n) {
    int64_t k = 0;
    if (t == DT_F32) { memcpy(dst, src, (size_t)n * sizeof(float)); return; }
    if (t == DT_Q2_K || t == DT_Q3_K) { tof32_q23k(t, src, dst, n); return; }
    if (t == DT_IQ4_NL || t == DT_IQ4_XS) { tof32_iq4(t, src, dst, n); return; }
    if (t != DT_F16 && t != DT_BF16) { dequantize_row_fast(t, src, dst, n); return; }   // (the grid types)
    const uint16_t *h = src;
    if (t == DT_F16) {
        for (; k + 16 <= n; k += 16) _mm512_storeu_ps(dst + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + k))));
        for (; k < n; k++) dst[k] = h2f(h[k]);
    } else {
        for (; k + 16 <= n; k += 16)
            _mm512_storeu_ps(dst + k, _mm512_castsi512_ps(_mm512_slli_epi32(
                                          _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + k))), 16)));
        for (; k < n; k++) { uint32_t u = (uint32_t)h[k] << 16; memcpy(dst + k, &u, 4); }
    }
}

void mm_paths_avx512(mm_paths *k) {
    k->xd_quantize = xd_quantize_avx512;
    k->xd_dot[DT_Q4_0] = xd_dot_q4_0_avx512;
    k->xd_dot[DT_Q8_0] = xd_dot_q8_0_avx512;
    k->dec_f16 = dec_f16_avx512;
    k->dec_bf16 = dec_bf16_avx512;
    k->q8a_quantize = q8a_quantize_avx512;
    k->q8k_quantize = q8k_quantize_avx512;
    k->tile_q32 = tile_q32_avx512;
    k->pack = pack_panel_avx512;
    k->packx = packx_avx512;
    k->f32gemm = f32gemm_avx512;
    k->tof32 = tof32_avx512;
    k->r16_pack = r16_pack_avx512;
    k->r16_tile = r16_tile_avx512;
    k->r16_dec = r16_dec_avx512;
    static const dtype r16[] = {DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K,
                                DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS};
    for (size_t i = 0; i < sizeof r16 / sizeof *r16; i++) k->r16_types |= (uint64_t)1 << r16[i];
}
