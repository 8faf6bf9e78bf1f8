// Thread pool under stress: many back-to-back jobs of varying size, each task must run exactly once
// and every tpool_run must return (a stale worker of the previous job once claimed a task of the next
// job and left the caller asleep). Also nested runs execute serially and a NULL pool runs inline.
#include "test.h"
#include <stdatomic.h>
#include <time.h>
#include "base/threadpool.h"

static int hits[16];
static atomic_long total;
static void count_task(void *ctx, int64_t t, int th) {
    (void)ctx; (void)th;
    __atomic_fetch_add(&hits[t], 1, __ATOMIC_RELAXED);
    atomic_fetch_add(&total, 1);
}

static tpool *g_pool;
static void nested_task(void *ctx, int64_t t, int th) {
    (void)th;
    int *sum = ctx;
    (void)t;
    tpool_run(g_pool, 4, count_task, NULL);   // from inside a task: runs serially, must not deadlock
    __atomic_fetch_add(sum, 1, __ATOMIC_RELAXED);
}

int main(void) {
    alarm(120);   // a lost wake-up hangs tpool_run: die without a summary line (counted as a failure)
    tpool *p = tpool_new(2);
    g_pool = p;
    CHECK(tpool_size(p) == 2);
    long bad = 0, expect = 0;
    const long iters = getenv("SLLM_FULL") ? 5000000 : 400000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iters; i++) {
        int n = 2 + (int)(i % 7);
        for (int k = 0; k < n; k++) hits[k] = 0;
        tpool_run(p, n, count_task, NULL);
        expect += n;
        for (int k = 0; k < n; k++) bad += hits[k] != 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(bad == 0, "%ld tasks ran a number of times other than once", bad);
    CHECK(atomic_load(&total) == expect, "%ld tasks run, %ld expected", (long)atomic_load(&total), expect);
    fprintf(stderr, "%ld jobs in %.2f s\n", iters, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    int sum = 0;
    tpool_run(p, 8, nested_task, &sum);
    CHECK(sum == 8);
    atomic_store(&total, 0);
    tpool_run(NULL, 5, count_task, NULL);
    CHECK(atomic_load(&total) == 5);
    tpool_free(p);
    return test_report();
}
