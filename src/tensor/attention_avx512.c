// AVX-512 attention kernels: attention_avx2.c recompiled with 512-bit vectors.
#define ATT_AVX512 1
#include "tensor/attention_avx2.c"
