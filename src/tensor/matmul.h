// Matrix products against weights of any dtype, the hot path of inference and training.
// Weights W are (N, K) row-major in their stored dtype (a GGUF tensor with ne[0]=K, ne[1]=N).
// Each kernel has a scalar reference; AVX2 / AVX-512 (VNNI, BF16) versions are chosen at run time.
#ifndef SLLM_TENSOR_MATMUL_H
#define SLLM_TENSOR_MATMUL_H
#include "tensor/dtype.h"
#include "base/threadpool.h"

typedef enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 } isa_level;
isa_level isa_detect(void);          // what this CPU supports
isa_level isa_active(void);          // what the kernels use (SLLM_ISA=scalar|avx2|avx512 caps it)
void isa_force(isa_level l);         // tests: force a level (capped by isa_detect)

// Y (T, N) = X (T, K) · W (N, K)^T (+ bias (N) when non-NULL). Y is overwritten.
// T == 1 is the decode matvec; T > 1 is batched prefill. Threads over `pool` (NULL = single thread).
int mm_matmul(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K,
              const float *X, int64_t T, const float *bias, float *Y);
// Several products that share the input X (T, K), e.g. the q/k/v or gate/up projections of a layer:
// Y_i (T, N_i) = X · W_i^T (+ bias_i), for i < n <= MM_MULTI_MAX. The activations are quantized once per
// distinct need and all products run in one thread-pool dispatch; each Y_i gets exactly the bits
// mm_matmul would give it. Returns 0, or -1 on a bad argument / unsupported dtype / no memory (nothing
// is then guaranteed about the Y_i).
#define MM_MULTI_MAX 4
// Wp: optional copy of W in this CPU's packed layout (mm_pack); used where given and NULL otherwise.
// argmax (optional): also *argmax = argmax_f32 of Y's last row (greedy decoding's next token). A decode
// product takes it from its outputs while they are in L1, each thread over the rows it computed: no
// second pass over a vocabulary of logits, half of which another core wrote.
typedef struct {
    const void *W; dtype wt; int64_t N; const float *bias; float *Y; const void *Wp;
    int64_t *argmax;
} mm_out;
int mm_matmul_multi(tpool *pool, int n, const mm_out *outs, int64_t K, const float *X, int64_t T);
// Decode (T == 1): the products the caller runs next (W, wt, N, Wp of each; after this dispatch and
// some single-threaded work). Each thread, done with its part of this dispatch, requests the first
// bytes of the part of `next` it will most likely stream, so that dispatch does not start cold while
// the caller does the work between the two. A hint only: results do not depend on it.
// glu: the two products are a gated feed-forward's gate and up, run by mm_glu_decode. pre / pre_bytes
// (optional): memory the caller reads right after this dispatch (a norm's weights), which the calling
// thread requests once done with its own part, instead of taking the misses afterwards.
typedef struct { int n; const mm_out *outs; int64_t K; int glu; const void *pre; size_t pre_bytes; } mm_next;
int mm_matmul_multi_next(tpool *pool, int n, const mm_out *outs, int64_t K, const float *X, int64_t T,
                         const mm_next *next);
// From inside pool task `task` of another dispatch (e.g. decode attention): requests into L2 the
// first bytes that task `task` of a dispatch of `next` on nthreads threads will stream. done_first:
// count the task done first (tpool_task_done), so the caller need not wait for the requests.
void mm_next_warm(const mm_next *next, int64_t task, int nthreads, bool done_first);
// Decode (one activation row) of a gated feed-forward: gate->Y = X W_g^T, up->Y = X W_u^T (+ biases), each
// with mm_matmul's bits, and H = glu(gate->Y, up->Y) (e.g. swiglu_fwd; H may be up->Y). The decode split
// takes rows of both products together, and the thread that computed a piece of rows applies glu to
// them: no single-threaded pass over the products' outputs, and no thread reads the other's (a
// cache-line transfer each, ~415 ns a round trip between this VM's core complexes). Returns -1, having
// computed nothing, when the dtypes have no decode path (then run mm_matmul_multi and glu), the N differ
// or an argument is bad.
typedef void (*mm_glu_fn)(float *H, const float *gate, const float *up, int64_t n);
int mm_glu_decode(tpool *pool, const mm_out *gate, const mm_out *up, int64_t K, const float *X, mm_glu_fn glu,
                  float *H, const mm_next *next);
// Weights repacked once for this CPU's kernels (Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / Q4_K / Q5_K / Q6_K
// with AVX-512: 16 rows interleaved per panel, the bytes of the source rows reordered so a task's rows
// are one linear stream; see tensor/matmul_kernels.h; F16 / BF16: the same rows copied, so that they
// sit on the caller's huge pages rather than in a 4 KiB page-cache mapping: decode ~4% faster). mm_pack_bytes: the size of the packed copy of an (N, K) weight, 0 when this
// CPU has no packed form for wt. mm_pack writes it (dst 64-byte aligned), split over the pool; 0 or -1.
// Products given the copy (mm_out.Wp) have the bits of the unpacked packed-panel prefill for every T
// (decode included), so a prompt gives the same logits one token at a time or in one batch.
size_t mm_pack_bytes(dtype wt, int64_t N, int64_t K);
int mm_pack(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, void *dst);
// Same but accumulates: Y += X · W^T (used by LoRA and backward passes).
int mm_matmul_acc(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K,
                  const float *X, int64_t T, float *Y);
// dX (T, K) += dY (T, N) · W (N, K)  — the input gradient through a frozen or trained weight of any dtype.
int mm_matmul_t(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K,
                const float *dY, int64_t T, float *dX);
// dW (N, K) += dY (T, N)^T · X (T, K), f32 only (weight gradients).
void mm_matmul_wgrad(tpool *pool, const float *dY, const float *X, int64_t T, int64_t N, int64_t K, float *dW);

// Row dot product of one weight row (dtype wt, K elements) with an f32 vector; scalar reference of
// the fused kernels above, exposed for tests.
float mm_dot_ref(dtype wt, const void *wrow, const float *x, int64_t K);

// ---- internal: per-ISA kernel tables (matmul.c dispatches; *_avx2.c / *_avx512.c fill them) ----
// out[r] = dot(weight row w (K elements of its dtype), activation row r) for r < R (R = 1..4).
// Activations: f32 rows for F32/F16/BF16 weights, blk_q8a rows for the 32-block quants, blk_q8_K rows
// for the K-quants (tensor/quant.h); row r starts at (const char *)x + r * xstride bytes.
typedef void (*mm_dot_fn)(int64_t K, const void *w, const void *x, size_t xstride, int R, float *out);
// y (n) += a[0]*x0 + a[1]*x1 + a[2]*x2 + a[3]*x3 (the update of the backward products).
typedef void (*mm_axpy4_fn)(int64_t n, const float a[4], const float *x0, const float *x1, const float *x2,
                            const float *x3, float *y);
typedef struct { mm_dot_fn dot[DT_COUNT]; mm_axpy4_fn axpy4; } mm_kernels;
void mm_kernels_avx2(mm_kernels *k);     // fills the entries it implements, leaves the rest
void mm_kernels_avx512(mm_kernels *k);
#endif
