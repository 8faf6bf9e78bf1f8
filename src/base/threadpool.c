// Persistent worker pool. Decode calls tpool_run ~10 times per layer per token, so dispatch must
// cost microseconds: workers spin on a generation counter for a short while after each job and only
// then sleep on a futex (Linux) so an idle process does not burn the cores.
#include "base/threadpool.h"
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// How long a waiting thread spins before it sleeps on the futex: long enough to bridge the small
// single-threaded ops between two matmuls of one decode step (a few to tens of us) and the gap between
// two decode steps (the head's argmax over a 150K vocabulary, the next embedding: 40-60 us, after which a
// worker woken from the futex started its first task 40-70 us late; 150 us against 40: +1.0% decode
// tok/s on one core complex, docs/performance.md round 12), short enough that on a machine shared with
// other processes a waiting thread soon gives its core away (an idle core also pulls a preempted worker
// of ours over, where a spinning one would not). Timed with the clock rather than counted in pause
// instructions, whose latency varies ~10x between CPU generations. -DSPIN_NS=... to experiment.
#ifndef SPIN_NS
#define SPIN_NS 150000
#endif
#define SPIN_CHECK 32   // pauses between clock reads

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// Completion is counted in tasks, not in workers: a worker that wakes late (asleep, or preempted by
// another process on a shared machine) finds every task claimed and is not waited for, so the caller,
// which claims tasks too, never idles on a thread that has nothing to do.
typedef struct {
    _Alignas(64) _Atomic uint64_t claim; // (job generation << 32) | next task index, or tasks taken (tpool_next_task)
    _Alignas(64) atomic_uint gen;       // bumped by the caller to publish a job (what workers wait on)
    _Alignas(64) atomic_uint done;      // tasks of the current job completed
    atomic_int sleeping_caller;         // caller is asleep on `done`
    _Alignas(64) atomic_int n_sleeping; // workers asleep on `gen` (skip the wake syscall when 0)
} tp_sync;

struct tpool {
    int n;                              // threads including the caller
    pthread_t *th;
    pthread_mutex_t run_lock;           // serialises concurrent callers
    tp_sync s;
    void (*fn)(void *, int64_t, int);
    void *ctx;
    // Task count per job, in a slot of its own for even and odd generations: a worker still finishing
    // job g-1 reads g-1's count, never the next job's (which the caller stores before opening the new
    // claims). Reading the new count there let a stale claim of job g-1 pass the bound and run a task
    // of job g twice, leaving `done` off by one and the caller asleep forever.
    _Atomic int64_t n_tasks[2];
    atomic_int quit;
};

typedef struct { tpool *p; int idx; } worker_arg;

static _Thread_local int tl_in_pool;    // set inside pool workers and the caller during a run
// The task this thread runs for a pool (tpool_task_done): its pool, its job's task count, and whether
// it was already counted done. NULL outside pool tasks and inside nested (serial) runs.
static _Thread_local tpool *tl_task_pool;
static _Thread_local int64_t tl_task_n;
static _Thread_local int tl_task_counted;

static void futex_wait(atomic_uint *addr, unsigned val) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake_all(atomic_uint *addr) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void count_done(tpool *p, int64_t n) {
    unsigned d = atomic_fetch_add_explicit(&p->s.done, 1, memory_order_seq_cst) + 1;
    if ((int64_t)d == n && atomic_load_explicit(&p->s.sleeping_caller, memory_order_seq_cst))
        futex_wake_all(&p->s.done);
}

void tpool_task_done(void) {
    if (!tl_task_pool || tl_task_counted) return;
    tl_task_counted = 1;
    count_done(tl_task_pool, tl_task_n);
}

// The task thread `thread` claims next, given the claim word's low half `low` (a counter, or for a job
// of at most AFFINE_MAX tasks a mask of the tasks taken); -1 when none is left.
// Small jobs are the decode step's (one task per thread: a product's ranges, attention's runs), and there
// each thread takes the task of its own index first, so a range or run's data stays in one core's cache
// from one token to the next and the products' outputs land where the next step reads them. Claimed in
// counter order, which thread got which task was a race; with the two vCPUs on different core complexes
// (~415 ns a cache line round trip, docs/performance.md) every such line then crossed over.
#define AFFINE_MAX 32
int64_t tpool_next_task(uint32_t low, int64_t n, int thread) {
    if (n > AFFINE_MAX) return (int64_t)low < n ? (int64_t)low : -1;
    uint32_t free = ~low & (uint32_t)((1ull << n) - 1);
    if (!free) return -1;
    if (thread < n && (free >> thread & 1u)) return thread;
    return __builtin_ctz(free);
}

// Claims and runs tasks of job `g` until none is left. A claim succeeds only while the job is current,
// and the job cannot finish (nor fn / ctx change) before a claimed task completes, so reading them after
// the claim is safe.
static void run_tasks(tpool *p, unsigned g, int thread) {
    for (;;) {
        uint64_t c = atomic_load_explicit(&p->s.claim, memory_order_acquire);
        if ((unsigned)(c >> 32) != g) return;
        int64_t n = atomic_load_explicit(&p->n_tasks[g & 1], memory_order_relaxed);
        int64_t i = tpool_next_task((uint32_t)c, n, thread);
        if (i < 0) return;
        uint64_t taken = n > AFFINE_MAX ? c + 1 : c | 1ull << i;
        if (!atomic_compare_exchange_weak_explicit(&p->s.claim, &c, taken, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        tl_task_pool = p;
        tl_task_n = n;
        tl_task_counted = 0;
        p->fn(p->ctx, i, thread);
        tl_task_pool = NULL;
        if (!tl_task_counted) count_done(p, n);
    }
}

static void *worker_main(void *argp) {
    worker_arg a = *(worker_arg *)argp;
    free(argp);
    tpool *p = a.p;
    tl_in_pool = 1;
    unsigned seen = 0;   // gen's value at creation: a job published before this thread ran is still seen
    for (;;) {
        unsigned g;
        int spins = 0;
        int64_t t0 = 0;
        while ((g = atomic_load_explicit(&p->s.gen, memory_order_acquire)) == seen) {
            if (++spins % SPIN_CHECK) { CPU_RELAX(); continue; }
            if (!t0) t0 = now_ns();
            if (now_ns() - t0 < SPIN_NS) continue;
            spins = 0;
            t0 = 0;
            atomic_fetch_add_explicit(&p->s.n_sleeping, 1, memory_order_seq_cst);
            futex_wait(&p->s.gen, seen);   // returns at once if gen already moved on
            atomic_fetch_sub_explicit(&p->s.n_sleeping, 1, memory_order_seq_cst);
        }
        seen = g;
        if (atomic_load_explicit(&p->quit, memory_order_acquire)) break;
        run_tasks(p, g, a.idx);
    }
    return NULL;
}

static int default_threads(void) {
    const char *e = getenv("SLLM_THREADS");
    if (e && *e) {
        int v = atoi(e);
        if (v > 0) return v > 1024 ? 1024 : v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
}

tpool *tpool_new(int n_threads) {
    if (n_threads <= 0) n_threads = default_threads();
    tpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->run_lock, NULL);
    atomic_init(&p->s.claim, 0);
    atomic_init(&p->s.gen, 0);
    atomic_init(&p->s.done, 0);
    atomic_init(&p->n_tasks[0], 0);
    atomic_init(&p->n_tasks[1], 0);
    atomic_init(&p->s.sleeping_caller, 0);
    atomic_init(&p->s.n_sleeping, 0);
    atomic_init(&p->quit, 0);
    if (n_threads > 1) {
        p->th = calloc((size_t)n_threads, sizeof *p->th);
        if (!p->th) { free(p); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *a = malloc(sizeof *a);
            if (!a || pthread_create(&p->th[i], NULL, worker_main, (a->p = p, a->idx = i, a)) != 0) {
                free(a);
                p->n = i;               // keep the workers that did start
                break;
            }
        }
    }
    return p;
}

void tpool_free(tpool *p) {
    if (!p) return;
    if (p->n > 1) {
        atomic_store_explicit(&p->quit, 1, memory_order_release);
        atomic_fetch_add_explicit(&p->s.gen, 1, memory_order_acq_rel);
        futex_wake_all(&p->s.gen);
        for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    }
    pthread_mutex_destroy(&p->run_lock);
    free(p->th);
    free(p);
}

int tpool_size(const tpool *p) { return p ? p->n : 1; }

void tpool_run(tpool *p, int64_t n_tasks, void (*fn)(void *ctx, int64_t task, int thread), void *ctx) {
    if (n_tasks <= 0) return;
    // Serial when there is no pool, one task, or when called from inside a running task (nesting would
    // deadlock on the run lock).
    if (!p || p->n <= 1 || n_tasks == 1 || tl_in_pool || n_tasks > 0x7fffffff) {
        tpool *outer = tl_task_pool;   // a nested run's tasks must not count the enclosing task done
        tl_task_pool = NULL;
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        tl_task_pool = outer;
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    tl_in_pool = 1;
    p->fn = fn;
    p->ctx = ctx;
    unsigned g = atomic_load_explicit(&p->s.gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->n_tasks[g & 1], n_tasks, memory_order_relaxed);
    atomic_store_explicit(&p->s.done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->s.claim, (uint64_t)g << 32, memory_order_release);   // opens the claims
    atomic_store_explicit(&p->s.gen, g, memory_order_seq_cst);                     // wakes the spinners
    if (atomic_load_explicit(&p->s.n_sleeping, memory_order_seq_cst) > 0) futex_wake_all(&p->s.gen);
    run_tasks(p, g, 0);
    int spins = 0;
    int64_t t0 = 0;
    for (;;) {
        unsigned d = atomic_load_explicit(&p->s.done, memory_order_acquire);
        if ((int64_t)d == n_tasks) break;
        if (++spins % SPIN_CHECK) { CPU_RELAX(); continue; }
        if (!t0) t0 = now_ns();
        if (now_ns() - t0 < SPIN_NS) continue;
        atomic_store_explicit(&p->s.sleeping_caller, 1, memory_order_seq_cst);
        d = atomic_load_explicit(&p->s.done, memory_order_seq_cst);
        if ((int64_t)d != n_tasks) futex_wait(&p->s.done, d);
        atomic_store_explicit(&p->s.sleeping_caller, 0, memory_order_relaxed);
    }
    tl_in_pool = 0;
    pthread_mutex_unlock(&p->run_lock);
}
