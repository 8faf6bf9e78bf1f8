// Inner kernels of attention, per ISA: scores of one query against a run of keys, and the
// probability-weighted sum of a run of value rows. attention.c picks the table for isa_active();
// the plain-C twins in attention.c are the reference the SIMD versions are tested against.
#ifndef SLLM_TENSOR_ATTENTION_KERNELS_H
#define SLLM_TENSOR_ATTENTION_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "tensor/dtype.h"

// Bytes the AVX-512 row-order kernels prefetch ahead of the cache rows they read (and the run's first
// bytes attention_decode_prefetch requests at once). 16 KiB: with the faster score kernel (see
// attn_pf_to) 8 KiB left the arithmetic waiting (Zen 5, one thread, a 72-key run from memory: 10.5-11.1
// us at 8 KiB, 9.2-9.4 at 16 KiB, 9.9-10.1 at 24 KiB).
#ifndef ATT_PF_AHEAD
#define ATT_PF_AHEAD 16384
#endif

typedef struct {
    // sc[i] = q . k[i*ks .. i*ks + D) for i < n
    void (*scores)(float *sc, const float *q, const float *k, int64_t ks, int n, int D);
    // o[0..D) += sum_{i<n} p[i] * v[i*ks .. i*ks + D)
    void (*accum)(float *o, const float *p, const float *v, int64_t ks, int n, int D);
    // the same two over f16 rows (an f16 KV cache), converted to f32 on load
    void (*scores_h)(float *sc, const float *q, const uint16_t *k, int64_t ks, int n, int D);
    void (*accum_h)(float *o, const float *p, const uint16_t *v, int64_t ks, int n, int D);
    // G query heads of one kv head at once (q_j, o_j at j*D; scores / probabilities of head j at j*n):
    // sc[j*n + i] = q_j . k_i and o_j += sum_i p[j*n + i] * v_i; f32 and f16 rows
    void (*scores_g)(float *sc, const float *q, int G, const float *k, int64_t ks, int n, int D);
    void (*accum_g)(float *o, const float *p, int G, const float *v, int64_t ks, int n, int D);
    void (*scores_gh)(float *sc, const float *q, int G, const uint16_t *k, int64_t ks, int n, int D);
    void (*accum_gh)(float *o, const float *p, int G, const uint16_t *v, int64_t ks, int n, int D);
    // the same six over q8_0 rows (a q8_0 KV cache: blocks of 32, an f16 scale then 32 int8; ks and the
    // head offsets multiples of 32 elements), each element d x q widened to f32 on load
    void (*scores_q8)(float *sc, const float *q, const uint8_t *k, int64_t ks, int n, int D);
    void (*accum_q8)(float *o, const float *p, const uint8_t *v, int64_t ks, int n, int D);
    void (*scores_gq8)(float *sc, const float *q, int G, const uint8_t *k, int64_t ks, int n, int D);
    void (*accum_gq8)(float *o, const float *p, int G, const uint8_t *v, int64_t ks, int n, int D);
    void (*scores_rowsq8)(float *sc, const float *q, int Hq, int Hkv, const uint8_t *k, int64_t ks, int n, int D);
    void (*accum_rowsq8)(float *o, const float *p, int Hq, int Hkv, const uint8_t *v, int64_t ks, int n, int D);
    // sc[i] *= scale for i < n; returns their max
    float (*scale_max)(float *sc, int n, float scale);
    // sc[i] = exp(sc[i] - m) for i < n (the SIMD versions: a degree-7 polynomial, tensor/simd_exp.h);
    // returns the sum
    double (*expsum)(float *sc, int n, float m);
    // every query head over n whole cache rows (row i at i*ks: Hkv heads of D; q head h, at h*D, reads kv
    // head h / (Hq / Hkv)), the rows read in address order: sc[h*n + i] = q_h . k_i and
    // o_h += sum_i p[h*n + i] v_i; f32 and f16 rows
    void (*scores_rows)(float *sc, const float *q, int Hq, int Hkv, const float *k, int64_t ks, int n, int D);
    void (*accum_rows)(float *o, const float *p, int Hq, int Hkv, const float *v, int64_t ks, int n, int D);
    void (*scores_rowsh)(float *sc, const float *q, int Hq, int Hkv, const uint16_t *k, int64_t ks, int n, int D);
    void (*accum_rowsh)(float *o, const float *p, int Hq, int Hkv, const uint16_t *v, int64_t ks, int n, int D);
    // Prefill tiles (attention.c, attend_tiles): ATT_TILE_ROWS query rows q_m (rows of D, contiguous)
    // against a block of n <= ATT_TILE_KEYS keys / values widened to f32: keys transposed, kt[d *
    // ATT_TILE_KEYS + i] = k_i[d] (keys_t makes kt from n contiguous rows kb of D, n a multiple of 16;
    // the caller pads the block to 32 keys with zero rows), values as contiguous rows vb of D.
    // sc[m * ATT_TILE_KEYS + i] = q_m . k_i for i < n (up to n rounded up to 32), o_m += sum_{i<n} p[m *
    // ATT_TILE_KEYS + i] v_i. The scores are an outer-product update (a broadcast q_m[d] times 32 keys at
    // a time: no reduction across lanes); each K / V vector loaded feeds the 8 rows. D a multiple of 16.
    // rows_h widens n f16 rows (ks apart) into contiguous f32 rows of D.
    void (*tile_scores)(float *sc, const float *q, const float *kt, int n, int D);
    void (*tile_accum)(float *o, const float *p, const float *vb, int n, int D);
    void (*rows_h)(float *dst, const uint16_t *src, int64_t ks, int n, int D);
    // rows_q8 the same from q8_0 rows (ks and D multiples of 32): d x q, exact
    void (*rows_q8)(float *dst, const uint8_t *src, int64_t ks, int n, int D);
    void (*keys_t)(float *kt, const float *kb, int n, int D);
    int tiles;   // 1: prefill takes the tiled path at this level (its tile kernels are SIMD)
} attn_kernels;

#define ATT_TILE_ROWS 8
#define ATT_TILE_KEYS 64

// q8_0 rows (a q8_0 KV cache): blocks of 32 elements, an f16 scale d then 32 int8 levels q; element e
// is d x q of block e / 32. Where block e / 32 starts (e a multiple of 32: a row's or a head's first
// element), and element e as f32 (the scalar twins and the SIMD kernels' scalar tails).
#define Q8_BLOCK_BYTES 34
static inline const uint8_t *attn_q8_at(const uint8_t *p, int64_t e) { return p + (e >> 5) * Q8_BLOCK_BYTES; }
static inline float attn_q8_elem(const uint8_t *p, int64_t e) {
    const uint8_t *b = attn_q8_at(p, e);
    uint16_t d;
    __builtin_memcpy(&d, b, 2);
    return f16_to_f32(d) * (float)(int8_t)b[2 + (e & 31)];
}

// Reads one byte of every 64-byte line of [p, p + bytes) in address order, values unused. Kernels that
// must walk a block of cache rows head by head (pieces of D elements, Hkv * D apart: a pattern the
// hardware stream prefetcher does not follow, so the rows arrive at the core's own miss rate, ~7.5 GB/s
// here) first bring the block in with it at stream speed (~14 GB/s), then read it from L2.
static inline void attn_touch_rows(const void *p, size_t bytes) {
    const unsigned char *a = p;
    unsigned x = 0;
    for (size_t o = 0; o < bytes; o += 64) x ^= a[o];   // a byte: q8_0 rows end at any byte
    __asm__ volatile("" : : "r"(x));   // keeps the loads
}

// Table for a level of isa_level (tensor/matmul.h): 0 scalar, 1 AVX2, 2 AVX-512; levels this CPU
// lacks fall back to the best one below. attn_kernels_active() follows isa_active() (SLLM_ISA).
const attn_kernels *attn_kernels_for(int isa);
const attn_kernels *attn_kernels_active(void);
void attn_kernels_avx2(attn_kernels *k);
void attn_kernels_avx512(attn_kernels *k);
#endif
