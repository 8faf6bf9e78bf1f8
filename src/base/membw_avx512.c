// AVX-512 read loop of base/membw.h: 256-byte steps (4 cache lines), one 64-byte load per line, 4
// independent accumulators, the way the decode kernels stream weight rows.
#include "base/membw.h"
#include <immintrin.h>

uint64_t membw_read_avx512(const void *p, size_t bytes) {
    const char *c = p;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= bytes; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(c + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(c + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(c + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(c + i + 192)));
    }
    __m512i a = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    uint64_t w[8];
    _mm512_storeu_si512((void *)w, a);
    return w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4] ^ w[5] ^ w[6] ^ w[7];
}
