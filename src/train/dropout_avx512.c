// AVX-512 twin of dropout_range_ref (train/dropout.h): the same 64-bit hash per element, 8 lanes at a
// time with vpmullq (AVX512DQ), the same compare and the same single multiply per kept element, so the
// same bits. The scalar hash was ~5% of a LoRA step (one per activation element of every adapted input).
#include <immintrin.h>
#include "train/dropout.h"

static inline __m512i mix64x8(__m512i x) {
    x = _mm512_add_epi64(x, _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ull));
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull));
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)), _mm512_set1_epi64((long long)0x94D049BB133111EBull));
    return _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
}

void dropout_range_avx512(float *dst, const float *src, int64_t i0, int64_t i1, uint64_t key, float p) {
    uint32_t thr;
    float inv;
    dropout_consts(p, &thr, &inv);
    const __m512i vthr = _mm512_set1_epi64((long long)thr), step = _mm512_set1_epi64(8);
    const __m256 vinv = _mm256_set1_ps(inv);
    __m512i idx = _mm512_add_epi64(_mm512_set1_epi64((long long)(key + (uint64_t)i0)),
                                   _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8, idx = _mm512_add_epi64(idx, step)) {
        __mmask8 keep = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(mix64x8(idx), 32), vthr);
        _mm256_storeu_ps(dst + i, _mm256_maskz_mul_ps(keep, _mm256_loadu_ps(src + i), vinv));
    }
    dropout_range_ref(dst, src, i, i1, key, p);   // the tail
}
