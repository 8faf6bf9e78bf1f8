// Memory read bandwidth (base/membw.h): buffer setup, threading, timing, and the scalar read loop.
#include "base/membw.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "base/error.h"
#include "sllm.h"

#define MEMBW_CHUNK ((size_t)8 << 20)   // bytes per task: many tasks, so a preempted thread is covered

uint64_t membw_read_ref(const void *p, size_t bytes) {
    const uint64_t *w = p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) { s0 ^= w[i]; s1 ^= w[i + 1]; s2 ^= w[i + 2]; s3 ^= w[i + 3]; }
    return s0 ^ s1 ^ s2 ^ s3;
}

membw_read_fn membw_kernel(const char **isa) {
    int cap = 2;
    const char *e = getenv("SLLM_ISA");
    if (e && *e) cap = !strcasecmp(e, "scalar") ? 0 : !strcasecmp(e, "avx2") ? 1 : 2;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (cap >= 2 && __builtin_cpu_supports("avx512f")) { if (isa) *isa = "avx512"; return membw_read_avx512; }
    if (cap >= 1 && __builtin_cpu_supports("avx2")) { if (isa) *isa = "avx2"; return membw_read_avx2; }
#else
    (void)cap;
#endif
    if (isa) *isa = "scalar";
    return membw_read_ref;
}

// Largest cache in sysfs (cpu0's highest index; "266240K" style sizes), 0 when unknown.
static size_t llc_bytes(void) {
    size_t best = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) {
            char *end;
            unsigned long long v = strtoull(buf, &end, 10);
            if (*end == 'K') v <<= 10;
            else if (*end == 'M') v <<= 20;
            else if (*end == 'G') v <<= 30;
            if (v > best) best = (size_t)v;
        }
        fclose(f);
    }
    return best;
}

size_t membw_default_bytes(void) {
    size_t b = 4 * llc_bytes(), min = (size_t)1 << 30;
    if (b < min) b = min;
    return (b + MEMBW_CHUNK - 1) / MEMBW_CHUNK * MEMBW_CHUNK;
}

typedef struct {
    char *buf;
    size_t bytes;
    membw_read_fn read;
    uint64_t *sums;   // one per task
    int fill;         // first pass: write the pattern (first touch by the threads that read it)
} membw_job;

static void membw_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    membw_job *j = ctx;
    size_t b = (size_t)task * MEMBW_CHUNK, n = j->bytes - b < MEMBW_CHUNK ? j->bytes - b : MEMBW_CHUNK;
    if (j->fill) {
        uint64_t *w = (uint64_t *)(j->buf + b);
        for (size_t i = 0; i < n / 8; i++) w[i] = (b / 8 + i) * 0x9e3779b97f4a7c15ull;
        return;
    }
    j->sums[task] = j->read(j->buf + b, n);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct membw_probe {
    tpool *pool;
    membw_job j;
    int64_t n_tasks;
    const char *isa;   // the read loop's name
};

int membw_probe_new(tpool *pool, size_t bytes, membw_probe **out) {
    *out = NULL;
    if (!bytes) bytes = membw_default_bytes();
    bytes = (bytes + 255) / 256 * 256;
    // Plain pages, no MADV_HUGEPAGE: asking for huge pages can make the kernel compact memory (and
    // disturb the model's page-cache pages) just before the timings this figure is compared with;
    // with 4 KiB pages the stream measured within 3% of huge pages here.
    size_t align = 4096, alloc = (bytes + align - 1) / align * align;
    membw_probe *p = calloc(1, sizeof *p);
    if (!p) return err_set(SLLM_ERR_NOMEM, "membw: out of memory");
    p->pool = pool;
    p->j.bytes = bytes;
    p->j.buf = aligned_alloc(align, alloc);
    p->n_tasks = (int64_t)((bytes + MEMBW_CHUNK - 1) / MEMBW_CHUNK);
    p->j.sums = calloc((size_t)p->n_tasks, sizeof *p->j.sums);
    if (!p->j.buf || !p->j.sums) {
        membw_probe_free(p);
        return err_set(SLLM_ERR_NOMEM, "membw: cannot allocate a %zu-byte buffer", bytes);
    }
    p->j.read = membw_kernel(&p->isa);
    p->j.fill = 1;
    tpool_run(pool, p->n_tasks, membw_task, &p->j);
    p->j.fill = 0;
    *out = p;
    return SLLM_OK;
}

void membw_probe_run(membw_probe *p, int passes, membw_result *out) {
    memset(out, 0, sizeof *out);
    if (passes <= 0) passes = 5;
    if (passes > 64) passes = 64;
    out->isa = p->isa;
    double gbs[64];
    for (int r = 0; r < passes; r++) {
        double t0 = now_s();
        tpool_run(p->pool, p->n_tasks, membw_task, &p->j);
        double dt = now_s() - t0;
        gbs[r] = dt > 0 ? (double)p->j.bytes / dt / 1e9 : 0;
    }
    volatile uint64_t sink = 0;   // the sums are used, so no read loop is dead code
    for (int64_t i = 0; i < p->n_tasks; i++) sink ^= p->j.sums[i];
    (void)sink;
    qsort(gbs, (size_t)passes, sizeof *gbs, cmp_d);
    out->gb_s = gbs[passes - 1];
    out->median_gb_s = gbs[passes / 2];
    out->bytes = p->j.bytes;
    out->threads = tpool_size(p->pool);
    out->passes = passes;
}

void membw_probe_free(membw_probe *p) {
    if (!p) return;
    free(p->j.buf);
    free(p->j.sums);
    free(p);
}

int membw_measure(tpool *pool, size_t bytes, int passes, membw_result *out) {
    memset(out, 0, sizeof *out);
    membw_probe *p;
    int rc = membw_probe_new(pool, bytes, &p);
    if (rc != SLLM_OK) return rc;
    membw_probe_run(p, passes, out);
    membw_probe_free(p);
    return SLLM_OK;
}
