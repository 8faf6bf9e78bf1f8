// Dropout masks (train/dropout.h): the reference kernel and the dispatch.
#include "train/dropout.h"
#include "tensor/matmul.h"   // isa_active

void dropout_range_ref(float *dst, const float *src, int64_t i0, int64_t i1, uint64_t key, float p) {
    uint32_t thr;
    float inv;
    dropout_consts(p, &thr, &inv);
    for (int64_t i = i0; i < i1; i++) {
        uint32_t u = (uint32_t)(dropout_mix64(key + (uint64_t)i) >> 32);
        dst[i] = u < thr ? 0.0f : src[i] * inv;
    }
}

void dropout_range(float *dst, const float *src, int64_t i0, int64_t i1, uint64_t key, float p) {
    if (isa_active() >= ISA_AVX512) dropout_range_avx512(dst, src, i0, i1, key, p);
    else dropout_range_ref(dst, src, i0, i1, key, p);
}
