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
// Called from inside a task: counts it as done now, so tpool_run may return while the rest of the
// task still runs on this thread as its own business. That rest must not touch the job's context
// (the caller may have moved on): e.g. a prefetch of memory that outlives the job. No effect outside
// a pool task (serial runs included) or when called twice.
void tpool_task_done(void);
// The claim policy (exposed for its test): the task thread `thread` claims next in a job of n tasks, given
// `low`, the low half of the claim word: for n <= 32 the mask of tasks taken (the thread's own index
// first, then the lowest free one), else the next index of a counter; -1 when none is left.
int64_t tpool_next_task(uint32_t low, int64_t n, int thread);
#endif
