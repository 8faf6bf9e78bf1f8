// See bigmem.h. Each buffer is its own anonymous mapping; a 64-byte header before the returned
// pointer keeps the mapping's length for bigmem_free.
#include "base/bigmem.h"
#include <stdint.h>
#include <sys/mman.h>

enum { HEADER = 64 };

void *bigmem_calloc(size_t bytes) {
    if (bytes == 0 || bytes > SIZE_MAX - HEADER) return NULL;
    size_t len = bytes + HEADER;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (len >= ((size_t)2 << 20)) (void)madvise(base, len, MADV_HUGEPAGE);   // advice only: fine if refused
#endif
    *(size_t *)base = len;
    return (char *)base + HEADER;
}

void bigmem_free(void *p) {
    if (!p) return;
    char *base = (char *)p - HEADER;
    munmap(base, *(size_t *)base);
}
