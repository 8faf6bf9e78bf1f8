// AVX-512 SwiGLU / GELU / GeGLU: activation_avx2.c recompiled with 512-bit vectors.
#define ACT_AVX512 1
#include "tensor/activation_avx2.c"
