// Inverted dropout with a mask that is a pure function of (key, element index): element i is dropped
// when the top 32 bits of mix64(key + i) fall below p * 2^32, else scaled by 1 / (1 - p). The backward
// and a checkpoint recompute regenerate the mask instead of storing it, and any split of [i0, i1) over
// threads gives the same result. dst may equal src.
#ifndef SLLM_TRAIN_DROPOUT_H
#define SLLM_TRAIN_DROPOUT_H
#include <stdint.h>

// SplitMix64's finalizer (the mask's hash; also the dropout keys' mixer).
static inline uint64_t dropout_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
// The threshold on the hash's top 32 bits (drop below it) and the kept elements' scale.
static inline void dropout_consts(float p, uint32_t *thr, float *inv) {
    *inv = 1.0f / (1.0f - p);
    double t = (double)p * 4294967296.0;
    *thr = (uint32_t)(t < 4294967295.0 ? t : 4294967295.0);
}
// dst[i] for i in [i0, i1), with the fastest kernel this CPU has (the same bits as the reference).
void dropout_range(float *dst, const float *src, int64_t i0, int64_t i1, uint64_t key, float p);
// The plain-C reference, and the AVX-512 twin (8 hashes per vpmullq pair; AVX-512 CPUs only).
void dropout_range_ref(float *dst, const float *src, int64_t i0, int64_t i1, uint64_t key, float p);
void dropout_range_avx512(float *dst, const float *src, int64_t i0, int64_t i1, uint64_t key, float p);
#endif
