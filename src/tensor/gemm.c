// f32 GEMM dispatch (see gemm.h): own AVX-512 kernel, OpenBLAS, or the plain-C reference.
#include "tensor/gemm.h"
#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "base/scratch.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"

// ---------------------------------------------------------------- backend choice
static _Atomic int g_forced = GEMM_AUTO;
static _Atomic int g_auto = -1;

const char *gemm_backend_name(gemm_backend b) {
    switch (b) {
    case GEMM_OWN: return "own-avx512";
    case GEMM_BLAS: return "openblas";
    case GEMM_REF: return "reference";
    default: return "auto";
    }
}

void gemm_backend_force(gemm_backend b) { atomic_store(&g_forced, (int)b); }

gemm_backend gemm_backend_active(void) {
    int f = atomic_load(&g_forced);
    if (f == GEMM_OWN && isa_active() < ISA_AVX512) f = GEMM_BLAS;
    if (f != GEMM_AUTO) return (gemm_backend)f;
    int a = atomic_load(&g_auto);
    if (a < 0) {
        const char *e = getenv("SLLM_GEMM");
        if (e && !strcmp(e, "blas")) a = GEMM_BLAS;
        else if (e && !strcmp(e, "ref")) a = GEMM_REF;
        else a = isa_active() >= ISA_AVX512 ? GEMM_OWN : GEMM_BLAS;
        atomic_store(&g_auto, a);
    }
    return (gemm_backend)a;
}

// ---------------------------------------------------------------- packing buffers
// One pair of packing buffers per pool slot, and room for a whole packed op(B), in the calling thread's
// scratch (base/scratch.h: kept between calls, NULL when out of memory).
#define SLOT_FLOATS (GEMM_PACK_A + GEMM_PACK_B)
static float *pack_whole_b(size_t n) { return scratch_floats(SCRATCH_GEMM_PACKED_B, n); }
static float *pack_buffers(int n_slots) { return scratch_floats(SCRATCH_GEMM_PACK, (size_t)n_slots * SLOT_FLOATS); }

// ---------------------------------------------------------------- reference
static inline float op_at(const float *X, int64_t ld, bool t, int64_t r, int64_t c) {
    return t ? X[c * ld + r] : X[r * ld + c];
}
static void block_ref(bool ta, bool tb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
    for (int64_t i = m0; i < m1; i++)
        for (int64_t k = 0; k < K; k++) {
            float a = op_at(A, lda, ta, i, k);
            float *c = C + i * ldc;
            if (!tb)
                for (int64_t j = n0; j < n1; j++) c[j] += a * B[k * ldb + j];
            else
                for (int64_t j = n0; j < n1; j++) c[j] += a * B[j * ldb + k];
        }
}

// ---------------------------------------------------------------- threaded driver
typedef struct {
    const gemm_term *terms;
    int n_terms;
    bool split_m, ref;
    int64_t M, N, K, ldc, chunk;   // K: all terms' together
    float *C, *packs;
    float *pball[GEMM_MAX_TERMS];
    bool packed;
    int64_t npad;
    float beta;
} gemm_job;

// Packing tasks enumerate (term, KC block, group of PACK_GROUP strips).
typedef struct { const gemm_term *terms; int n_terms; int64_t N, n_groups; float *const *pball; } packb_job;
enum { PACK_GROUP = 8 };   // 32-column strips per packing task
static void packb_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    const packb_job *j = ctx;
    int64_t blk = t / j->n_groups, g = t % j->n_groups;
    for (int i = 0; i < j->n_terms; i++) {
        int64_t nb = (j->terms[i].K + GEMM_KC - 1) / GEMM_KC;
        if (blk < nb) {
            const gemm_term *tm = &j->terms[i];
            gemm_pack_b_avx512(tm->tb, tm->B, tm->ldb, tm->K, j->N, blk * GEMM_KC, g * PACK_GROUP, (g + 1) * PACK_GROUP,
                               j->pball[i]);
            return;
        }
        blk -= nb;
    }
}

static void gemm_task(void *ctx, int64_t t, int thread) {
    const gemm_job *j = ctx;
    int64_t m0 = 0, m1 = j->M, n0 = 0, n1 = j->N;
    if (j->split_m) { m0 = t * j->chunk; m1 = m0 + j->chunk < j->M ? m0 + j->chunk : j->M; }
    else { n0 = t * j->chunk; n1 = n0 + j->chunk < j->N ? n0 + j->chunk : j->N; }
    if (m0 >= m1 || n0 >= n1) return;
    // beta 0 with the AVX-512 kernel: its first k-block stores instead of accumulating, no clearing pass
    bool overwrite = j->beta == 0.0f && j->n_terms > 0 && j->terms[0].K > 0 && !j->ref;
    if (j->beta != 1.0f && !overwrite)
        for (int64_t i = m0; i < m1; i++) {
            float *c = j->C + i * j->ldc;
            if (j->beta == 0.0f) memset(c + n0, 0, (size_t)(n1 - n0) * sizeof(float));
            else for (int64_t x = n0; x < n1; x++) c[x] *= j->beta;
        }
    if (j->K <= 0) return;
    if (j->ref) {
        for (int i = 0; i < j->n_terms; i++) {
            const gemm_term *tm = &j->terms[i];
            block_ref(tm->ta, tm->tb, m0, m1, n0, n1, tm->K, tm->A, tm->lda, tm->B, tm->ldb, j->C, j->ldc);
        }
        return;
    }
    float *pa = j->packs + (size_t)thread * SLOT_FLOATS, *pb = pa + GEMM_PACK_A;
    gemm_block_avx512(j->terms, j->n_terms, m0, m1, n0, n1, j->C, j->ldc, pa, pb, j->packed ? j->pball : NULL, j->npad,
                      overwrite);
}

static void gemm_blas(tpool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    // OpenBLAS runs its own threads; it is called from this thread only (never from a pool task) and
    // given as many threads as the pool so the two never oversubscribe the cores.
    static _Atomic int set_threads = 0;
    int nt = pool ? tpool_size(pool) : 1;
    if (atomic_exchange(&set_threads, nt) != nt) openblas_set_num_threads(nt);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                (blasint)K, 1.0f, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

void gemm_f32_sum(tpool *pool, int64_t M, int64_t N, int n_terms, const gemm_term *terms, float beta, float *C,
                  int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    int64_t K = 0;
    for (int i = 0; i < n_terms; i++) K += terms[i].K > 0 ? terms[i].K : 0;
    gemm_backend be = gemm_backend_active();
    if (be == GEMM_BLAS && K > 0) {
        float b = beta;
        for (int i = 0; i < n_terms; i++) {
            if (terms[i].K <= 0) continue;
            const gemm_term *tm = &terms[i];
            gemm_blas(pool, tm->ta, tm->tb, M, N, tm->K, tm->A, tm->lda, tm->B, tm->ldb, b, C, ldc);
            b = 1.0f;
        }
        return;
    }
    int nth = pool ? tpool_size(pool) : 1;
    // small products are not worth waking the pool
    if ((double)M * (double)N * (double)K < 2e5) nth = 1;
    gemm_job j = {.terms = terms, .n_terms = n_terms, .M = M, .N = N, .K = K, .ldc = ldc, .C = C, .beta = beta,
                  .ref = be == GEMM_REF || be == GEMM_BLAS};
    // Split the larger side into a few chunks per thread (tasks are claimed dynamically, which evens
    // out a core shared with other work); each task re-packs the other operand, so not too many.
    j.split_m = M >= N;
    int64_t dim = j.split_m ? M : N, align = j.split_m ? 8 : 32;
    int64_t n_chunks = nth == 1 ? 1 : 2 * (int64_t)nth;
    if (n_chunks > dim / 64) n_chunks = dim / 64 > 0 ? dim / 64 : 1;
    j.chunk = (dim + n_chunks - 1) / n_chunks;
    j.chunk = (j.chunk + align - 1) / align * align;
    n_chunks = (dim + j.chunk - 1) / j.chunk;
    if (!j.ref && K > 0) {
        j.packs = pack_buffers(nth);
        if (!j.packs) j.ref = true;   // out of memory for 1 MiB: still correct, just slow
    }
    // Tasks splitting M would each pack all of op(B) (a transposing copy for X·W^T): pack it once,
    // over the pool, when it is small enough to keep (<= 16 MiB).
    if (!j.ref && K > 0 && n_chunks > 1 && nth > 1 && j.split_m && n_terms <= GEMM_MAX_TERMS) {
        int64_t npad = (N + 31) / 32 * 32;
        float *all;
        if (npad * K <= ((int64_t)1 << 22) && (all = pack_whole_b((size_t)(npad * K)))) {
            j.npad = npad;
            j.packed = true;
            int64_t blocks = 0;
            for (int i = 0; i < n_terms; i++) {
                j.pball[i] = all;
                all += npad * (terms[i].K > 0 ? terms[i].K : 0);
                blocks += (terms[i].K + GEMM_KC - 1) / GEMM_KC;
            }
            packb_job pj = {.terms = terms, .n_terms = n_terms, .N = N, .pball = j.pball,
                            .n_groups = (npad / 32 + PACK_GROUP - 1) / PACK_GROUP};
            tpool_run(pool, blocks * pj.n_groups, packb_task, &pj);
        }
    }
    if (n_chunks == 1 || nth == 1) {
        for (int64_t t = 0; t < n_chunks; t++) gemm_task(&j, t, 0);
    } else {
        tpool_run(pool, n_chunks, gemm_task, &j);
    }
}

void gemm_f32(tpool *pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    gemm_term t = {.ta = ta, .tb = tb, .K = K, .A = A, .lda = lda, .B = B, .ldb = ldb};
    gemm_f32_sum(pool, M, N, 1, &t, beta, C, ldc);
}

// ---------------------------------------------------------------- linear-layer products
void gemm_xwt(tpool *pool, const float *X, int64_t T, const float *W, int64_t N, int64_t K, const float *bias,
              bool acc, float *Y) {
    gemm_f32(pool, false, true, T, N, K, X, K, W, K, acc ? 1.0f : 0.0f, Y, N);
    if (bias)
        for (int64_t t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) Y[t * N + n] += bias[n];
}

void gemm_dx(tpool *pool, const float *dY, int64_t T, const float *W, int64_t N, int64_t K, float *dX) {
    gemm_f32(pool, false, false, T, K, N, dY, N, W, K, 1.0f, dX, K);
}

void gemm_dw(tpool *pool, const float *dY, const float *X, int64_t T, int64_t N, int64_t K, float *dW) {
    gemm_f32(pool, true, false, N, K, T, dY, N, X, K, 1.0f, dW, K);
}

// ---------------------------------------------------------------- any-dtype weights, by tiles
int64_t gemm_tile_rows(int64_t K) {
    // 16 MiB: big enough that the GEMM of each tile runs near full speed (a small tile means many
    // small products, each re-packing the activations), small next to a model.
    int64_t r = K > 0 ? ((int64_t)1 << 22) / K : 16;
    return r < 16 ? 16 : r;
}

typedef struct { const char *W; dtype wt; size_t rb; int64_t K, n0; float *dst; int bad; } deq_job;
static void deq_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    deq_job *j = ctx;
    if (dequantize_row_fast(j->wt, j->W + j->rb * (size_t)(j->n0 + t), j->dst + t * j->K, j->K)) j->bad = 1;
}

static int tiled(tpool *pool, bool fwd, const void *W, dtype wt, int64_t N, int64_t K, const float *In, int64_t T,
                 const float *bias, bool acc, float *Out, float *tile, int64_t tile_rows) {
    const dtype_info *di = dtype_get(wt);
    if (!di) return err_set(SLLM_ERR_UNSUPPORTED, "gemm: weight dtype %d unsupported", (int)wt);
    if (K % di->block)
        return err_set(SLLM_ERR_UNSUPPORTED, "gemm: %s row of %lld values is not whole blocks", di->name, (long long)K);
    if (tile_rows <= 0) tile_rows = gemm_tile_rows(K);
    if (tile_rows > N) tile_rows = N;
    float *own = NULL;
    if (!tile) {
        tile = own = malloc((size_t)(tile_rows * K) * sizeof(float));
        if (!own) return err_set(SLLM_ERR_NOMEM, "gemm: out of memory for a %lld x %lld tile", (long long)tile_rows, (long long)K);
    }
    deq_job dj = {.W = W, .wt = wt, .rb = dtype_row_bytes(wt, K), .K = K, .dst = tile};
    for (int64_t n0 = 0; n0 < N; n0 += tile_rows) {
        int64_t nc = N - n0 < tile_rows ? N - n0 : tile_rows;
        dj.n0 = n0;
        tpool_run(pool, nc, deq_task, &dj);
        if (dj.bad) {
            free(own);
            return err_set(SLLM_ERR_UNSUPPORTED, "gemm: %s weights cannot be dequantized", di->name);
        }
        if (fwd) {
            // Y[:, n0:n0+nc] (=/+=) X · tile^T
            gemm_f32(pool, false, true, T, nc, K, In, K, tile, K, acc ? 1.0f : 0.0f, Out + n0, N);
        } else {
            // dX += dY[:, n0:n0+nc] · tile
            gemm_f32(pool, false, false, T, K, nc, In + n0, N, tile, K, 1.0f, Out, K);
        }
    }
    free(own);
    if (fwd && bias)
        for (int64_t t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) Out[t * N + n] += bias[n];
    return SLLM_OK;
}

int gemm_xwt_any(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *X, int64_t T,
                 const float *bias, bool acc, float *Y, float *tile, int64_t tile_rows) {
    if (wt == DT_F32) {
        gemm_xwt(pool, X, T, W, N, K, bias, acc, Y);
        return SLLM_OK;
    }
    return tiled(pool, true, W, wt, N, K, X, T, bias, acc, Y, tile, tile_rows);
}

int gemm_dx_any(tpool *pool, const void *W, dtype wt, int64_t N, int64_t K, const float *dY, int64_t T, float *dX,
                float *tile, int64_t tile_rows) {
    if (wt == DT_F32) {
        gemm_dx(pool, dY, T, W, N, K, dX);
        return SLLM_OK;
    }
    return tiled(pool, false, W, wt, N, K, dY, T, NULL, false, dX, tile, tile_rows);
}
