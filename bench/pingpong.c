// Core-to-core latency: two threads pinned to CPUs 0 and 1 pass a flag back and forth through one cache
// line; prints the mean round trip in ns. On the 2-vCPU VM of docs/performance.md it tells the VM's two
// states apart (~85 ns: both vCPUs on one core complex; ~415 ns: on two, with twice the bandwidth).
// Build: cc -std=c11 -O2 -D_GNU_SOURCE -pthread bench/pingpong.c -o build/pingpong
// Usage: build/pingpong [round trips (default 200000)] [cpu a (0)] [cpu b (1)]
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) _Atomic long flag;
static long n_trips = 200000;
static int cpu_a, cpu_b = 1;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *answer(void *arg) {
    (void)arg;
    if (pin(cpu_b)) fprintf(stderr, "pingpong: cannot pin to CPU %d (measuring unpinned)\n", cpu_b);
    for (long i = 0; i < n_trips; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) {}
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) n_trips = atol(argv[1]);
    if (argc > 2) cpu_a = atoi(argv[2]);
    if (argc > 3) cpu_b = atoi(argv[3]);
    if (n_trips <= 0) {
        fprintf(stderr, "pingpong: round trips must be > 0 (got '%s')\n", argv[1]);
        return 2;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, answer, NULL)) {
        fprintf(stderr, "pingpong: cannot start a thread\n");
        return 1;
    }
    if (pin(cpu_a)) fprintf(stderr, "pingpong: cannot pin to CPU %d (measuring unpinned)\n", cpu_a);
    double t0 = now();
    for (long i = 0; i < n_trips; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) {}
    }
    double el = now() - t0;
    pthread_join(t, NULL);
    printf("CPU %d <-> CPU %d: %.0f ns a round trip (%ld trips)\n", cpu_a, cpu_b, el / (double)n_trips * 1e9, n_trips);
    return 0;
}
