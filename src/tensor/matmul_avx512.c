// AVX-512 kernels: the 256-bit kernels of matmul_avx2.c recompiled with VNNI (vpdpbusd / vpdpwssd
// replace the maddubs+madd pairs), so the twin code is not written twice.
#define MM_AVX512 1
#include "tensor/matmul_avx2.c"

void mm_kernels_avx512(mm_kernels *k) {
    mm_kernels_fill256_avx512(k);
}
