// Per-thread scratch buffers kept between calls: kernels that run thousands of times per training step
// (GEMM packing, training attention) would page-fault on a fresh multi-MiB buffer every call. Each
// thread has one buffer per slot; it grows on demand and is freed when the thread exits.
#ifndef SLLM_BASE_SCRATCH_H
#define SLLM_BASE_SCRATCH_H
#include <stddef.h>
typedef enum { SCRATCH_GEMM_PACK, SCRATCH_GEMM_PACKED_B, SCRATCH_ATTN_TRAIN, SCRATCH_SLOTS } scratch_slot;
// At least n floats, 64-byte aligned, contents undefined (kept from the last use of this slot on this
// thread); NULL when out of memory. Valid until the next call for the same slot on the same thread.
float *scratch_floats(scratch_slot slot, size_t n);
#endif
