// AdamW element kernel: plain-C reference and its AVX2+FMA twin (bit-identical; see optim.c).
#ifndef SLLM_TRAIN_OPTIM_KERNELS_H
#define SLLM_TRAIN_OPTIM_KERNELS_H
#include <stdint.h>
void adamw_update_ref(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, int64_t n,
                      float decay, float neg_step, float b1, float omb1, float b2, float omb2, float bc2_sqrt,
                      float eps);
void adamw_update_avx2(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, int64_t n,
                       float decay, float neg_step, float b1, float omb1, float b2, float omb2, float bc2_sqrt,
                       float eps);
// Tests: on = 0 forces the reference kernel, on = 1 uses AVX2 when the CPU has it. Returns the previous setting.
int optim_use_simd(int on);
#endif
