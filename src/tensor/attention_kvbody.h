// Body of the attention score and value kernels of attention_avx2.c (and its AVX-512 recompile),
// included once per element type of the K / V rows: f32, and f16 (an f16 KV cache, converted to f32 on
// load), and q8_0 (blocks of 32: a q8_0 KV cache, d x q widened on load). Before including, define
// KV_SCORES / KV_ACCUM (the functions' names), KV_T (the storage unit: float, uint16_t, or uint8_t for
// q8_0 blocks), KV_ADV(p, e) (where element e starts: e a multiple of 32, as a row's or a head's first
// element is for q8_0), KV_VLD(p, e) (W elements from element e as f32, e a multiple of W), KV_SLD(p, e)
// (one element as f32) and KV_BYTES(n) (bytes of n elements, n a multiple of 32).
static void KV_SCORES(float *sc, const float *q, const KV_T *k, int64_t ks, int n, int D) {
    int Dv = D - D % W, i = 0;
#ifdef ATT_AVX512
    // the AVX-512 build: 16 keys at a time while they last
    if (D % 16 == 0)
        for (; i + 16 <= n; i += 16) {
            __m512 a[16];
            for (int r = 0; r < 16; r++) a[r] = _mm512_setzero_ps();
            const KV_T *k0 = KV_ADV(k, (int64_t)i * ks);
            for (int d = 0; d < D; d += 16) {
                __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
                for (int r = 0; r < 16; r++) a[r] = _mm512_fmadd_ps(qv, KV_VLD(KV_ADV(k0, (int64_t)r * ks), d), a[r]);
            }
            _mm512_storeu_ps(sc + i, hsum16x16(a));
        }
#endif
    // four keys at a time: four independent FMA chains share each load of q
    for (; i + 4 <= n; i += 4) {
        const KV_T *k0 = KV_ADV(k, (int64_t)i * ks), *k1 = KV_ADV(k0, ks), *k2 = KV_ADV(k1, ks), *k3 = KV_ADV(k2, ks);
        vf a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
        for (int d = 0; d < Dv; d += W) {
            vf qv = VLOAD(q + d);
            a0 = VFMA(qv, KV_VLD(k0, d), a0);
            a1 = VFMA(qv, KV_VLD(k1, d), a1);
            a2 = VFMA(qv, KV_VLD(k2, d), a2);
            a3 = VFMA(qv, KV_VLD(k3, d), a3);
        }
        float s0 = VSUM(a0), s1 = VSUM(a1), s2 = VSUM(a2), s3 = VSUM(a3);
        for (int d = Dv; d < D; d++) {
            s0 += q[d] * KV_SLD(k0, d); s1 += q[d] * KV_SLD(k1, d); s2 += q[d] * KV_SLD(k2, d); s3 += q[d] * KV_SLD(k3, d);
        }
        sc[i] = s0; sc[i + 1] = s1; sc[i + 2] = s2; sc[i + 3] = s3;
    }
    for (; i < n; i++) {
        const KV_T *k0 = KV_ADV(k, (int64_t)i * ks);
        vf a0 = VZERO();
        for (int d = 0; d < Dv; d += W) a0 = VFMA(VLOAD(q + d), KV_VLD(k0, d), a0);
        float s0 = VSUM(a0);
        for (int d = Dv; d < D; d++) s0 += q[d] * KV_SLD(k0, d);
        sc[i] = s0;
    }
}

// The output slice stays in registers (8 vectors at a time) while every value row streams past.
static void KV_ACCUM(float *o, const float *p, const KV_T *v, int64_t ks, int n, int D) {
    int Dv = D - D % W, d0 = 0;
    for (; d0 + 8 * W <= Dv; d0 += 8 * W) {
        vf o0 = VLOAD(o + d0), o1 = VLOAD(o + d0 + W), o2 = VLOAD(o + d0 + 2 * W), o3 = VLOAD(o + d0 + 3 * W);
        vf o4 = VLOAD(o + d0 + 4 * W), o5 = VLOAD(o + d0 + 5 * W), o6 = VLOAD(o + d0 + 6 * W), o7 = VLOAD(o + d0 + 7 * W);
        for (int i = 0; i < n; i++) {
            const KV_T *vi = KV_ADV(v, (int64_t)i * ks);
            vf pb = VSET1(p[i]);
            o0 = VFMA(pb, KV_VLD(vi, d0), o0); o1 = VFMA(pb, KV_VLD(vi, d0 + W), o1);
            o2 = VFMA(pb, KV_VLD(vi, d0 + 2 * W), o2); o3 = VFMA(pb, KV_VLD(vi, d0 + 3 * W), o3);
            o4 = VFMA(pb, KV_VLD(vi, d0 + 4 * W), o4); o5 = VFMA(pb, KV_VLD(vi, d0 + 5 * W), o5);
            o6 = VFMA(pb, KV_VLD(vi, d0 + 6 * W), o6); o7 = VFMA(pb, KV_VLD(vi, d0 + 7 * W), o7);
        }
        VSTORE(o + d0, o0); VSTORE(o + d0 + W, o1); VSTORE(o + d0 + 2 * W, o2); VSTORE(o + d0 + 3 * W, o3);
        VSTORE(o + d0 + 4 * W, o4); VSTORE(o + d0 + 5 * W, o5); VSTORE(o + d0 + 6 * W, o6); VSTORE(o + d0 + 7 * W, o7);
    }
    for (; d0 + 2 * W <= Dv; d0 += 2 * W) {
        vf o0 = VLOAD(o + d0), o1 = VLOAD(o + d0 + W);
        for (int i = 0; i < n; i++) {
            const KV_T *vi = KV_ADV(v, (int64_t)i * ks);
            vf pb = VSET1(p[i]);
            o0 = VFMA(pb, KV_VLD(vi, d0), o0);
            o1 = VFMA(pb, KV_VLD(vi, d0 + W), o1);
        }
        VSTORE(o + d0, o0); VSTORE(o + d0 + W, o1);
    }
    for (; d0 < Dv; d0 += W) {
        vf o0 = VLOAD(o + d0);
        for (int i = 0; i < n; i++) o0 = VFMA(VSET1(p[i]), KV_VLD(v, (int64_t)i * ks + d0), o0);
        VSTORE(o + d0, o0);
    }
    for (int d = Dv; d < D; d++) {
        float s = o[d];
        for (int i = 0; i < n; i++) s += p[i] * KV_SLD(v, (int64_t)i * ks + d);
        o[d] = s;
    }
}

// G query heads that read the same kv head, at once: sc[j*n + i] = q_j . k_i and o_j += sum_i
// p[j*n + i] v_i (q_j, o_j at j*D). Each K / V vector is loaded (and, for f16, widened) once for the G
// heads instead of once per head. The AVX-512 build has G = 2, 4, 8 with D a multiple of 16; other
// cases, and the keys / columns left over, go head by head through the kernels above.
#ifdef ATT_AVX512
// Passes of 16/G keys: accumulator j*KP + r holds head j, key r; one transposing reduction sums all 16.
static inline __attribute__((always_inline)) int KV_SCORES_GC(float *sc, const float *q, const KV_T *k, int64_t ks,
                                                              int n, int D, const int G) {
    const int KP = 16 / G;
    int i = 0;
    for (; i + KP <= n; i += KP) {
        __m512 a[16], qv[8];
        #pragma GCC unroll 16
        for (int s = 0; s < 16; s++) a[s] = _mm512_setzero_ps();
        const KV_T *k0 = KV_ADV(k, (int64_t)i * ks);
        for (int d = 0; d < D; d += 16) {
            #pragma GCC unroll 16
            for (int j = 0; j < G; j++) qv[j] = _mm512_loadu_ps(q + (int64_t)j * D + d);
            #pragma GCC unroll 16
            for (int r = 0; r < KP; r++) {
                __m512 kv = KV_VLD(KV_ADV(k0, (int64_t)r * ks), d);
                #pragma GCC unroll 16
                for (int j = 0; j < G; j++) a[j * KP + r] = _mm512_fmadd_ps(qv[j], kv, a[j * KP + r]);
            }
        }
        float t[16];
        _mm512_storeu_ps(t, hsum16x16(a));
        #pragma GCC unroll 16
        for (int j = 0; j < G; j++)
            #pragma GCC unroll 16
            for (int r = 0; r < KP; r++) sc[(int64_t)j * n + i + r] = t[j * KP + r];
    }
    return i;
}

// Column slices of 16/G vectors per head: 16 accumulators, each value vector loaded once for G heads.
static inline __attribute__((always_inline)) int KV_ACCUM_GC(float *o, const float *p, const KV_T *v, int64_t ks,
                                                             int n, int D, const int G) {
    const int SW = 16 / G;
    int d0 = 0;
    for (; d0 + 16 * SW <= D; d0 += 16 * SW) {
        __m512 acc[16], vv[8];
        #pragma GCC unroll 16
        for (int j = 0; j < G; j++)
            #pragma GCC unroll 16
            for (int s = 0; s < SW; s++) acc[j * SW + s] = _mm512_loadu_ps(o + (int64_t)j * D + d0 + 16 * s);
        for (int i = 0; i < n; i++) {
            const KV_T *vi = KV_ADV(v, (int64_t)i * ks);
            #pragma GCC unroll 16
            for (int s = 0; s < SW; s++) vv[s] = KV_VLD(vi, d0 + 16 * s);
            #pragma GCC unroll 16
            for (int j = 0; j < G; j++) {
                __m512 pb = _mm512_set1_ps(p[(int64_t)j * n + i]);
                #pragma GCC unroll 16
                for (int s = 0; s < SW; s++) acc[j * SW + s] = _mm512_fmadd_ps(pb, vv[s], acc[j * SW + s]);
            }
        }
        #pragma GCC unroll 16
        for (int j = 0; j < G; j++)
            #pragma GCC unroll 16
            for (int s = 0; s < SW; s++) _mm512_storeu_ps(o + (int64_t)j * D + d0 + 16 * s, acc[j * SW + s]);
    }
    return d0;
}
#endif

// r = fn(args..., G) for the G that have a constant-G path (2, 4, 8; D a multiple of 16); r unchanged else.
#ifndef KV_G_CASES
#ifdef ATT_AVX512
#define KV_G_CASES(r, fn, ...)                                                   \
    do {                                                                          \
        if (D % 16 == 0 && G == 2) r = fn(__VA_ARGS__, 2);                        \
        else if (D % 16 == 0 && G == 4) r = fn(__VA_ARGS__, 4);                   \
        else if (D % 16 == 0 && G == 8) r = fn(__VA_ARGS__, 8);                   \
    } while (0)
#else
#define KV_G_CASES(r, fn, ...) do { } while (0)
#endif
#endif

static void KV_SCORES_G(float *sc, const float *q, int G, const KV_T *k, int64_t ks, int n, int D) {
    int i = 0;
    KV_G_CASES(i, KV_SCORES_GC, sc, q, k, ks, n, D);
    if (i < n)
        for (int j = 0; j < G; j++) KV_SCORES(sc + (int64_t)j * n + i, q + (int64_t)j * D, KV_ADV(k, (int64_t)i * ks), ks, n - i, D);
}

static void KV_ACCUM_G(float *o, const float *p, int G, const KV_T *v, int64_t ks, int n, int D) {
    int d0 = 0;
    KV_G_CASES(d0, KV_ACCUM_GC, o, p, v, ks, n, D);
    if (d0 < D)
        for (int j = 0; j < G; j++) KV_ACCUM(o + (int64_t)j * D + d0, p + (int64_t)j * n, KV_ADV(v, d0), ks, n, D - d0);
}

// Every query head at once over n whole cache rows (row i at i*ks: Hkv heads of D; q head h reads kv head
// h / G): sc[h*n + i] = q_h . k_i and o_h += sum_i p[h*n + i] v_i. The rows are read in address order, one
// after the other, so the hardware stream prefetcher runs ahead of the arithmetic (a decode step's run
// of the cache streams at the core's linear-read rate with the dot products hidden under it), where
// going kv head by kv head over a block jumps Hkv*D elements between pieces of D.
#ifndef KV_R_MAXH
#define KV_R_MAXH 256   // most heads of the AVX-512 row path
#endif
#ifdef ATT_AVX512
// HG heads x KP = 16 / HG rows per pass in 16 accumulators, one transposing reduction. SG heads share
// each K load (SG = G when G divides HG, HG when HG divides G, or 1: every head loads its own).
static inline __attribute__((always_inline)) int KV_SCORES_RC(float *sc, const float *q, int Hq, int G, const KV_T *k,
                                                              int64_t ks, int n, int D, const int HG, const int SG) {
    const int KP = 16 / HG;
    int32_t kvo[KV_R_MAXH];   // head h's offset in a row (no division in the loops)
    for (int h = 0; h < Hq; h++) kvo[h] = (h / G) * D;
    const int64_t gb = (int64_t)KV_BYTES((int64_t)KP * ks), step = gb * HG / Hq / (D / 16);
    uintptr_t pf = (uintptr_t)k + ATT_PF_AHEAD;   // addresses as integers: they run past the rows
    int i = 0;
    for (; i + KP <= n; i += KP) {
        uintptr_t pto = (uintptr_t)KV_ADV(k, (int64_t)i * ks) + ATT_PF_AHEAD;
        for (int h0 = 0; h0 < Hq; h0 += HG) {
            __m512 a[16];
            #pragma GCC unroll 16
            for (int s = 0; s < 16; s++) a[s] = _mm512_setzero_ps();
            const KV_T *row = KV_ADV(k, (int64_t)i * ks);
            const float *qh = q + (int64_t)h0 * D;
            for (int d = 0; d < D; d += 16) {
                attn_pf_to(&pf, pto += step);
                #pragma GCC unroll 16
                for (int r = 0; r < KP; r++)
                    #pragma GCC unroll 16
                    for (int j = 0; j < HG; j += SG) {
                        __m512 kv = KV_VLD(KV_ADV(row, (int64_t)r * ks + kvo[h0 + j]), d);
                        #pragma GCC unroll 16
                        for (int u = 0; u < SG; u++)
                            a[(j + u) * KP + r] =
                                _mm512_fmadd_ps(_mm512_loadu_ps(qh + (int64_t)(j + u) * D + d), kv, a[(j + u) * KP + r]);
                    }
            }
            float t[16];
            _mm512_storeu_ps(t, hsum16x16(a));
            #pragma GCC unroll 16
            for (int j = 0; j < HG; j++)
                #pragma GCC unroll 16
                for (int r = 0; r < KP; r++) sc[(int64_t)(h0 + j) * n + i + r] = t[j * KP + r];
        }
        attn_pf_to(&pf, (uintptr_t)KV_ADV(k, (int64_t)(i + KP) * ks) + ATT_PF_AHEAD);
    }
    return i;
}

// Value rows four at a time: each vector of a row loaded (and widened) once for the GC <= 4 heads of a
// kv head that a pass serves, each head's output slice loaded and stored once per four rows (added in row
// order, as the twin does), the pass's 4 x GC probabilities broadcast once for all of D (broadcasting them
// per 16-element step was half the kernel's loads: Qwen3's shape 168-185 -> 134-145 cycles a row from L1/L2).
static inline __attribute__((always_inline)) int KV_ACCUM_RVC(float *o, const float *p, int Hq, int Hkv, const KV_T *v,
                                                              int64_t ks, int n, int D, const int GC) {
    const int G = Hq / Hkv;
    uintptr_t pf = (uintptr_t)v + ATT_PF_AHEAD;
    int i = 0;
    for (; i < n; i += 4) {
        const int nr = n - i < 4 ? n - i : 4;
        const KV_T *v0 = KV_ADV(v, (int64_t)i * ks);
        const int64_t step = (int64_t)KV_BYTES((int64_t)nr * ks) / Hkv / (D / 16);
        uintptr_t pto = (uintptr_t)v0 + ATT_PF_AHEAD;
        for (int kvh = 0; kvh < Hkv; kvh++)
            for (int j0 = 0; j0 < G; j0 += GC) {
                __m512 pb[GC][4];
                #pragma GCC unroll 4
                for (int j = 0; j < GC; j++)
                    #pragma GCC unroll 4
                    for (int r = 0; r < 4; r++)
                        pb[j][r] = r < nr ? _mm512_set1_ps(p[(int64_t)(kvh * G + j0 + j) * n + i + r]) : _mm512_setzero_ps();
                for (int d = 0; d < D; d += 16) {
                    if (j0 == 0) attn_pf_to(&pf, pto += step);
                    __m512 x[4];
                    #pragma GCC unroll 4
                    for (int r = 0; r < 4; r++)
                        x[r] = r < nr ? KV_VLD(KV_ADV(v0, (int64_t)r * ks + (int64_t)kvh * D), d) : _mm512_setzero_ps();
                    #pragma GCC unroll 4
                    for (int j = 0; j < GC; j++) {
                        float *oh = o + (int64_t)(kvh * G + j0 + j) * D + d;
                        __m512 acc = _mm512_loadu_ps(oh);
                        #pragma GCC unroll 4
                        for (int r = 0; r < 4; r++)
                            if (r < nr) acc = _mm512_fmadd_ps(pb[j][r], x[r], acc);
                        _mm512_storeu_ps(oh, acc);
                    }
                }
            }
        attn_pf_to(&pf, (uintptr_t)KV_ADV(v0, (int64_t)nr * ks) + ATT_PF_AHEAD);
    }
    return n;
}
static int KV_ACCUM_RV(float *o, const float *p, int Hq, int Hkv, const KV_T *v, int64_t ks, int n, int D) {
    const int G = Hq / Hkv;
    if (G % 4 == 0) return KV_ACCUM_RVC(o, p, Hq, Hkv, v, ks, n, D, 4);
    if (G == 3) return KV_ACCUM_RVC(o, p, Hq, Hkv, v, ks, n, D, 3);
    if (G % 2 == 0) return KV_ACCUM_RVC(o, p, Hq, Hkv, v, ks, n, D, 2);
    return KV_ACCUM_RVC(o, p, Hq, Hkv, v, ks, n, D, 1);
}
#endif

// Cases with a constant-shape AVX-512 path: Hq a multiple of 4, D of 16; r = rows done.
#ifndef KV_R_CASES
#ifdef ATT_AVX512
// Four heads x four rows a pass (HG = 4): measured on Zen 5 (one thread, f16 rows from L1/L2, 32-row
// blocks) against 8 and 16 heads a pass: Qwen3-0.6B's shape 185 / 375 / 350 cycles a row, Llama 3.2 1B's
// 270 / 398 / 491, Llama 3.2 3B's 340 / 469 (24 heads: no 16-head pass): every head of a pass reloads its
// slice of q per 16-element step, so fewer heads (and more rows) a pass load q less often for the same
// FMAs and one reduction per 16 scores either way.
#define KV_R_SG(r, fn, HG, ...)                                                                       \
    do {                                                                                              \
        if (G % HG == 0) r = fn(__VA_ARGS__, HG, HG);                                                 \
        else if (G == 2) r = fn(__VA_ARGS__, HG, 2);                                                  \
        else r = fn(__VA_ARGS__, HG, 1);                                                              \
    } while (0)
#define KV_R_CASES(r, fn, ...)                                                                        \
    do {                                                                                              \
        if (Hq > KV_R_MAXH) break;                                                                    \
        if (D % 16 == 0 && Hq % 4 == 0) KV_R_SG(r, fn, 4, __VA_ARGS__);                               \
    } while (0)
#else
#define KV_R_CASES(r, fn, ...) do { } while (0)
#endif
#endif

// The shapes (and ISAs) without a row-order path go kv head by kv head (KV_SCORES_G / KV_ACCUM_G: each
// K / V vector loaded once for the G heads), after one linear pass over the rows (attn_touch_rows) has
// brought them in at stream speed. The rows a row-order pass leaves over (fewer than its 16 / HG) go head
// by head.
static void KV_SCORES_R(float *sc, const float *q, int Hq, int Hkv, const KV_T *k, int64_t ks, int n, int D) {
    const int G = Hq / Hkv;
    int i = 0;
    KV_R_CASES(i, KV_SCORES_RC, sc, q, Hq, G, k, ks, n, D);
    if (i == 0) {
        attn_touch_rows(k, KV_BYTES((int64_t)n * ks));
        for (int kvh = 0; kvh < Hkv; kvh++)
            KV_SCORES_G(sc + (int64_t)kvh * G * n, q + (int64_t)kvh * G * D, G, KV_ADV(k, (int64_t)kvh * D), ks, n, D);
        return;
    }
    for (int h = 0; h < Hq && i < n; h++)
        KV_SCORES(sc + (int64_t)h * n + i, q + (int64_t)h * D, KV_ADV(k, (int64_t)i * ks + (int64_t)(h / G) * D), ks, n - i, D);
}

static void KV_ACCUM_R(float *o, const float *p, int Hq, int Hkv, const KV_T *v, int64_t ks, int n, int D) {
    const int G = Hq / Hkv;
#ifdef ATT_AVX512
    if (D % 16 == 0) { KV_ACCUM_RV(o, p, Hq, Hkv, v, ks, n, D); return; }
#endif
    attn_touch_rows(v, KV_BYTES((int64_t)n * ks));
    for (int kvh = 0; kvh < Hkv; kvh++)
        KV_ACCUM_G(o + (int64_t)kvh * G * D, p + (int64_t)kvh * G * n, G, KV_ADV(v, (int64_t)kvh * D), ks, n, D);
}

// The parameters of this inclusion, so the next one defines its own.
#undef KV_SCORES
#undef KV_ACCUM
#undef KV_SCORES_G
#undef KV_ACCUM_G
#undef KV_SCORES_GC
#undef KV_ACCUM_GC
#undef KV_SCORES_R
#undef KV_ACCUM_R
#undef KV_SCORES_RC
#undef KV_ACCUM_RV
#undef KV_ACCUM_RVC
#undef KV_T
#undef KV_ADV
#undef KV_VLD
#undef KV_SLD
#undef KV_BYTES
