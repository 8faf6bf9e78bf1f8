// Memory read bandwidth as the decode kernels see it: every thread streams its share of a buffer far
// larger than the last-level cache with the widest vector loads the CPU has (AVX-512, else AVX2, else
// 64-bit words), best of several passes. This is the roofline decode is compared with: a decode step
// reads every weight once, so tok/s x bytes per token cannot exceed it.
#ifndef SLLM_BASE_MEMBW_H
#define SLLM_BASE_MEMBW_H
#include <stddef.h>
#include <stdint.h>
#include "base/threadpool.h"

typedef struct {
    double gb_s;          // best pass: bytes / seconds / 1e9
    double median_gb_s;   // median pass
    size_t bytes;         // buffer size streamed per pass
    int threads, passes;
    const char *isa;      // "avx512", "avx2" or "scalar": the read loop that ran
} membw_result;

// Buffer size membw_measure uses by default: 4x the last-level cache (sysfs), at least 1 GiB.
size_t membw_default_bytes(void);
// Measures with every thread of `pool` (NULL: one thread). bytes 0 = membw_default_bytes(); passes
// <= 0 = 5. Returns SLLM_OK, or SLLM_ERR_NOMEM (err_set) when the buffer cannot be allocated.
int membw_measure(tpool *pool, size_t bytes, int passes, membw_result *out);
// The same as a reusable probe: the buffer allocated and first-touched once, then measured as often
// as wanted (sllm bench --roofline interleaves probes with its timed repetitions). new: SLLM_OK or
// SLLM_ERR_NOMEM; run: `passes` timed passes (<= 0: 5) into out.
typedef struct membw_probe membw_probe;
int membw_probe_new(tpool *pool, size_t bytes, membw_probe **out);
void membw_probe_run(membw_probe *p, int passes, membw_result *out);
void membw_probe_free(membw_probe *p);

// The read loops: XOR of all 64-bit words of p[0, bytes) (p 64-byte aligned, bytes a multiple of 256),
// returned so the loads cannot be optimized away. The SIMD versions equal the scalar twin exactly.
typedef uint64_t (*membw_read_fn)(const void *p, size_t bytes);
uint64_t membw_read_ref(const void *p, size_t bytes);
uint64_t membw_read_avx2(const void *p, size_t bytes);
uint64_t membw_read_avx512(const void *p, size_t bytes);
// The loop for this CPU (capped by SLLM_ISA=scalar|avx2|avx512 like the matmul kernels) and its name.
membw_read_fn membw_kernel(const char **isa);
#endif
