// F16C row conversion (twin: f32_to_f16_row_ref in dtype.c). vcvtps2ph with round-to-nearest-even gives
// f32_to_f16's bits for every input, NaNs included (both keep the sign and the top payload bits, quiet).
#include "tensor/dtype.h"
#include <immintrin.h>

void f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = f32_to_f16(x[i]);
}
