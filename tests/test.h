// Minimal test harness: every test binary ends by printing "N passed, N failed, N skipped".
// scripts/run-tests.sh sums those lines over all binaries into the suite's final line.
#ifndef SLLM_TEST_H
#define SLLM_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"

static int t_passed, t_failed, t_skipped;

#define CHECK(cond, ...) do { \
    if (cond) { t_passed++; } else { t_failed++; \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, " " __VA_ARGS__); fputc('\n', stderr); } } while (0)

// Relative-or-absolute closeness: |a-b| <= tol * max(1, |a|, |b|).
#define CHECK_CLOSE(a, b, tol, ...) do { double _a = (a), _b = (b); \
    double _m = fmax(1.0, fmax(fabs(_a), fabs(_b))); \
    CHECK(fabs(_a - _b) <= (tol) * _m, "%s=%.9g %s=%.9g ", #a, _a, #b, _b); } while (0)

#define SKIP(...) do { t_skipped++; fprintf(stderr, "SKIP: "); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } while (0)

// Where shared fixtures live (../shared/fixtures beside the checkout); NULL when absent.
static inline const char *test_fixture(const char *rel, char *buf, size_t n) {
    const char *root = getenv("SLLM_FIXTURES");
    snprintf(buf, n, "%s/%s", root ? root : "../shared/fixtures", rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

// A whole file, NUL-terminated, its length in *len (len may be NULL); NULL when it cannot be read.
static inline char *test_read_file(const char *path, size_t *len) {
    char *d = NULL;
    size_t n = 0;
    if (fileio_read_all(path, &d, &n) != 0) return NULL;
    if (len) *len = n;
    return d;
}

static inline int test_report(void) {
    printf("%d passed, %d failed, %d skipped\n", t_passed, t_failed, t_skipped);
    return t_failed ? 1 : 0;
}
#endif
