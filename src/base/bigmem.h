// Large zeroed buffers (training activations, gradients, optimizer state) mapped with transparent huge
// pages where the kernel offers them (THP "madvise" mode, the Debian default): a 2 MiB page is one
// fault instead of 512, which matters on a VM where each fault costs microseconds (the first training
// step of a 58M model touched ~1.5 GB), and the GEMMs' strided row reads miss the TLB far less.
// Written here because malloc/calloc give no way to ask for huge pages.
#ifndef SLLM_BASE_BIGMEM_H
#define SLLM_BASE_BIGMEM_H
#include <stddef.h>
void *bigmem_calloc(size_t bytes);   // zeroed, 64-byte aligned; NULL when out of memory (bytes 0: NULL)
void bigmem_free(void *p);           // p from bigmem_calloc, or NULL
#endif
