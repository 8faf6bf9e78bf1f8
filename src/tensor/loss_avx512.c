// AVX-512 cross-entropy row kernel: loss_avx2.c recompiled with 512-bit vectors.
#define LOSS_AVX512 1
#include "tensor/loss_avx2.c"
