// Thread pool under stress: many back-to-back jobs of varying size, each task must run exactly once
// and every tpool_run must return (a stale worker of the previous job once claimed a task of the next
// job and left the caller asleep), both for small jobs (tasks claimed from a mask, each thread's own index
// first) and large ones (claimed from a counter). Also nested runs execute serially and a NULL pool runs
// inline.
#include "test.h"
#include <stdatomic.h>
#include <time.h>
#include "base/threadpool.h"

static int hits[64];
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

// Early completion (tpool_task_done): the task is counted done, then goes on with work that must not
// touch the job (here: a tail counter). Called twice on purpose: the second call must change nothing.
static atomic_long tail;
static void early_task(void *ctx, int64_t t, int th) {
    (void)ctx; (void)th;
    __atomic_fetch_add(&hits[t], 1, __ATOMIC_RELAXED);
    atomic_fetch_add(&total, 1);
    tpool_task_done();
    tpool_task_done();
    for (volatile int i = 0; i < (int)(t % 3) * 200; i++) {}
    atomic_fetch_add(&tail, 1);
}

// A nested (serial) run's early completions must not count the enclosing task done: the enclosing
// task's own result, written after the nested run, has to be there when tpool_run returns.
static int outer_after[8];
static void outer_task(void *ctx, int64_t t, int th) {
    (void)ctx; (void)th;
    tpool_run(g_pool, 3, early_task, NULL);
    for (volatile int i = 0; i < 20000; i++) {}
    outer_after[t] = 1;
}

// A worker that counted its task done holds on until the caller is out of tpool_run: proves the
// caller does not wait for the rest of an early-completed task.
static atomic_int job_no, released_no, released_seen, worker_in, not_own;
static long elapsed_ns(const struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000000000L + (b.tv_nsec - a->tv_nsec);
}
// Two tasks, one per thread: the caller's task waits (at most 2 s) until the worker holds the other, so
// a worker that wakes late (a loaded machine, ASan) still gets one; the worker counts its task done and
// then waits for the caller to leave tpool_run.
static void hold_task(void *ctx, int64_t t, int th) {
    (void)ctx; (void)t;
    int mine = atomic_load(&job_no);
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (t != th) atomic_fetch_add(&not_own, 1);   // whoever claims first, each takes its own index
    if (th == 0) {
        while (atomic_load(&worker_in) != mine && elapsed_ns(&a) < 2000000000L) {}
        return;
    }
    atomic_store(&worker_in, mine);
    tpool_task_done();
    do {
        if (atomic_load(&released_no) >= mine) { atomic_fetch_add(&released_seen, 1); return; }
    } while (elapsed_ns(&a) < 2000000000L);
}

// Holds until both threads are in a task (at most 100 ms: a worker asleep or preempted may not come),
// and notes a task run by a thread other than its index's.
static atomic_int pair_in;
static atomic_long own_miss;
static void pair_task(void *ctx, int64_t t, int th) {
    (void)ctx;
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    __atomic_fetch_add(&hits[t], 1, __ATOMIC_RELAXED);
    atomic_fetch_add(&pair_in, 1);
    while (atomic_load(&pair_in) < 2 && elapsed_ns(&a) < 100000000L) {}
    if (atomic_load(&pair_in) >= 2 && t != th) atomic_fetch_add(&own_miss, 1);
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
    // the claim policy itself: own index first, then the lowest free; above 32 tasks a counter
    CHECK(tpool_next_task(0, 2, 0) == 0 && tpool_next_task(0, 2, 1) == 1);
    CHECK(tpool_next_task(0x2, 2, 1) == 0 && tpool_next_task(0x1, 2, 0) == 1 && tpool_next_task(0x3, 2, 0) == -1);
    CHECK(tpool_next_task(0, 3, 5) == 0 && tpool_next_task(0x5, 8, 2) == 1 && tpool_next_task(0xffffffffu, 32, 3) == -1);
    CHECK(tpool_next_task(0, 32, 31) == 31 && tpool_next_task(7, 33, 1) == 7 && tpool_next_task(33, 33, 0) == -1);
    // two tasks, two threads, each task holding until both threads are in one: whichever thread claims
    // first, each runs the task of its own index
    for (long i = 0; i < 2000; i++) {
        hits[0] = hits[1] = 0;
        atomic_store(&pair_in, 0);
        struct timespec a;   // the caller busy a while, the worker spinning for the next job (as in decode)
        clock_gettime(CLOCK_MONOTONIC, &a);
        while (elapsed_ns(&a) < (i % 2 ? 20000 : 0)) {}
        tpool_run(p, 2, pair_task, NULL);
        bad += hits[0] != 1 || hits[1] != 1;
    }
    CHECK(bad == 0, "two-task jobs: a task ran a number of times other than once");
    CHECK(atomic_load(&own_miss) == 0, "two-task jobs: %ld tasks ran on a thread other than their index",
          (long)atomic_load(&own_miss));
    atomic_store(&total, expect);
    CHECK(atomic_load(&total) == expect, "%ld tasks run, %ld expected", (long)atomic_load(&total), expect);
    fprintf(stderr, "%ld jobs in %.2f s\n", iters, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    // jobs above the mask's 32 tasks: claimed from a counter
    bad = 0;
    long expect_big = 0;
    atomic_store(&total, 0);
    for (long i = 0; i < iters / 8; i++) {
        int n = 30 + (int)(i % 11);   // 30..40: both sides of the switch
        for (int k = 0; k < n; k++) hits[k] = 0;
        tpool_run(p, n, count_task, NULL);
        expect_big += n;
        for (int k = 0; k < n; k++) bad += hits[k] != 1;
    }
    CHECK(bad == 0, "30-40 tasks a job: %ld tasks ran a number of times other than once", bad);
    CHECK(atomic_load(&total) == expect_big, "30-40 tasks a job: %ld tasks run, %ld expected",
          (long)atomic_load(&total), expect_big);
    int sum = 0;
    tpool_run(p, 8, nested_task, &sum);
    CHECK(sum == 8);
    atomic_store(&total, 0);
    tpool_run(NULL, 5, count_task, NULL);
    CHECK(atomic_load(&total) == 5);

    // early completion: back-to-back jobs, each task exactly once, every tail runs
    atomic_store(&total, 0);
    bad = expect = 0;
    for (long i = 0; i < iters / 4; i++) {
        int n = 2 + (int)(i % 7);
        for (int k = 0; k < n; k++) hits[k] = 0;
        tpool_run(p, n, early_task, NULL);
        expect += n;
        for (int k = 0; k < n; k++) bad += hits[k] != 1;
    }
    CHECK(bad == 0, "early completion: %ld tasks ran a number of times other than once", bad);
    CHECK(atomic_load(&total) == expect, "early completion: %ld tasks run, %ld expected", (long)atomic_load(&total),
          expect);
    long nested_bad = 0;
    for (int i = 0; i < 2000; i++) {
        for (int k = 0; k < 8; k++) outer_after[k] = 0;
        tpool_run(p, 8, outer_task, NULL);
        for (int k = 0; k < 8; k++) nested_bad += outer_after[k] != 1;
    }
    CHECK(nested_bad == 0, "%ld enclosing tasks were counted done by a nested run's tpool_task_done", nested_bad);
    tpool_task_done();   // outside any task: no effect
    for (int i = 1; i <= 50; i++) {
        atomic_store(&job_no, i);
        tpool_run(p, 2, hold_task, NULL);   // returns while a worker still holds its task
        atomic_store(&released_no, i);
    }
    tpool_free(p);   // joins the workers: every tail has run
    CHECK(atomic_load(&tail) == expect + 2000L * 8 * 3, "%ld tails ran, %ld expected", (long)atomic_load(&tail),
          expect + 2000L * 8 * 3);
    CHECK(atomic_load(&not_own) == 0, "a thread ran a task other than its own index %d times in 50 two-task jobs",
          atomic_load(&not_own));
    CHECK(atomic_load(&released_seen) == 50, "a worker saw the caller leave tpool_run while it held its task in %d of 50 jobs",
          atomic_load(&released_seen));
    return test_report();
}
