// A fixed pool of worker threads (default: all cores). tpool_run splits [0, n) into tasks and
// blocks until every task is done; the calling thread works too.
#ifndef SLLM_BASE_THREADPOOL_H
#define SLLM_BASE_THREADPOOL_H
#include <stdint.h>

typedef struct tpool tpool;
// n_threads <= 0: number of online CPUs (or SLLM_THREADS from the environment).
tpool *tpool_new(int n_threads);
void tpool_free(tpool *p);
int tpool_size(const tpool *p);
// Calls fn(ctx, task_index, thread_index) for task_index in [0, n_tasks). pool may be NULL (serial).
void tpool_run(tpool *p, int64_t n_tasks, void (*fn)(void *ctx, int64_t task, int thread), void *ctx);
#endif
