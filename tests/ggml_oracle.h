// llama.cpp's own GGML library as an oracle for the quantized block formats, opened at run time
// (dlopen) from $SLLM_LLAMACPP_ORACLE/lib (scripts/llamacpp-oracle.sh), so the tests build without it
// and skip with a message where it is absent. The struct and prototypes are GGML's public ABI (ggml.h).
#ifndef SLLM_TESTS_GGML_ORACLE_H
#define SLLM_TESTS_GGML_ORACLE_H
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct ggml_traits_abi {
    const char *type_name;
    int64_t blck_size, blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    void (*to_float)(const void *x, float *y, int64_t k);
    void (*from_float_ref)(const float *x, void *y, int64_t k);
};

typedef struct {
    void *lib;
    void (*quantize_init)(int type);
    // rows [start / n_per_row, + nrows) of src into dst; imatrix (n_per_row) may be NULL for some types
    size_t (*quantize_chunk)(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row,
                             const float *imatrix);
    const struct ggml_traits_abi *(*traits)(int type);
} ggml_oracle;

// Opens the library; false (with why in `why`) when SLLM_LLAMACPP_ORACLE is unset or it cannot be used.
static inline bool ggml_oracle_open(ggml_oracle *g, char *why, size_t why_len) {
    const char *dir = getenv("SLLM_LLAMACPP_ORACLE");
    if (!dir) { snprintf(why, why_len, "SLLM_LLAMACPP_ORACLE not set"); return false; }
    char path[4096];
    snprintf(path, sizeof path, "%s/lib/libggml-base.so", dir);
    g->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!g->lib) { snprintf(why, why_len, "%s: cannot open (%s)", path, dlerror()); return false; }
    *(void **)&g->quantize_init = dlsym(g->lib, "ggml_quantize_init");
    *(void **)&g->quantize_chunk = dlsym(g->lib, "ggml_quantize_chunk");
    *(void **)&g->traits = dlsym(g->lib, "ggml_get_type_traits");
    if (!g->quantize_init || !g->quantize_chunk || !g->traits) {
        snprintf(why, why_len, "%s: GGML symbols missing", path);
        dlclose(g->lib);
        return false;
    }
    return true;
}
static inline void ggml_oracle_close(ggml_oracle *g) { dlclose(g->lib); }
#endif
