// AVX2 read loop of base/membw.h: 256-byte steps, 8 independent 32-byte loads folded into 4 registers.
#include "base/membw.h"
#include <immintrin.h>

uint64_t membw_read_avx2(const void *p, size_t bytes) {
    const __m256i *v = p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 8 <= bytes / 32; i += 8) {
        a0 = _mm256_xor_si256(a0, _mm256_xor_si256(_mm256_load_si256(v + i), _mm256_load_si256(v + i + 4)));
        a1 = _mm256_xor_si256(a1, _mm256_xor_si256(_mm256_load_si256(v + i + 1), _mm256_load_si256(v + i + 5)));
        a2 = _mm256_xor_si256(a2, _mm256_xor_si256(_mm256_load_si256(v + i + 2), _mm256_load_si256(v + i + 6)));
        a3 = _mm256_xor_si256(a3, _mm256_xor_si256(_mm256_load_si256(v + i + 3), _mm256_load_si256(v + i + 7)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t w[4];
    _mm256_storeu_si256((__m256i *)w, a);
    return w[0] ^ w[1] ^ w[2] ^ w[3];
}
