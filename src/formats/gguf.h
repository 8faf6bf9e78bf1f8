// GGUF v2/v3 reader and writer. The reader mmaps the file and validates every offset, length,
// type and alignment before use; tensor data pointers point into the mapping (weights stay as stored).
#ifndef SLLM_FORMATS_GGUF_H
#define SLLM_FORMATS_GGUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tensor/dtype.h"

typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12
} gguf_type;

typedef struct { uint64_t len; const char *ptr; } gguf_str;   // not NUL-terminated

typedef struct {
    gguf_str key;
    gguf_type type;
    gguf_type arr_type;     // element type when type == GGUF_ARRAY
    uint64_t arr_n;         // element count when type == GGUF_ARRAY
    const void *data;       // scalar value / first array element, inside the mapping; for arrays of
                            // strings: a gguf_str[arr_n] index built by the reader (use gguf_arr_str)
    // scalar value widened for convenience (valid for numeric/bool scalars)
    union { uint64_t u; int64_t i; double f; bool b; gguf_str s; } v;
} gguf_kv;

typedef struct {
    char *name;             // NUL-terminated copy
    dtype type;
    int n_dims;
    int64_t ne[4];          // ne[0] is the fastest-varying (row length), as in GGML
    uint64_t offset;        // relative to the data section
    size_t nbytes;
    const void *data;       // inside the mapping
} gguf_tensor;

typedef struct gguf_file {
    char *path;
    uint32_t version;
    uint32_t alignment;
    int64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    const uint8_t *map; size_t map_size;
    size_t data_offset;
    bool file_mapped;       // map is a mapping of the file (not the SLLM_HUGEPAGES private copy)
} gguf_file;

// Opens and validates `path`. On error returns NULL and sllm_last_error() names file and field.
gguf_file *gguf_open(const char *path);
void gguf_close(gguf_file *f);
// Drops the whole pages of [p, p + n) (inside the mapping) from this process when the mapping is the
// file's: they stay in the page cache and come back on the next read. No-op otherwise.
void gguf_release(const gguf_file *f, const void *p, size_t n);

const gguf_kv *gguf_find(const gguf_file *f, const char *key);          // NULL if absent
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
// Typed getters: return `def` when the key is absent; set *err (if non-NULL) to a non-zero
// status when the key exists with an incompatible type.
int64_t gguf_get_int(const gguf_file *f, const char *key, int64_t def, int *err);
double gguf_get_float(const gguf_file *f, const char *key, double def, int *err);
bool gguf_get_bool(const gguf_file *f, const char *key, bool def, int *err);
// Returns a malloc'd NUL-terminated copy, or NULL when absent.
char *gguf_get_str(const gguf_file *f, const char *key);
// Array element accessors (bounds-checked by the caller against kv->arr_n).
gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i);
double gguf_arr_num(const gguf_kv *kv, uint64_t i);

// ---- writer ----
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_set_f32(gguf_writer *w, const char *key, float v);
void gguf_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_set_str(gguf_writer *w, const char *key, const char *v);
// Generic: any scalar type (value points at one element; for GGUF_STRING a `const char *const *`)
// or array (n elements of elem_type; for GGUF_STRING arrays `values` is `const char *const *`).
// Setting a key again replaces its value. Setter/add errors are reported by gguf_writer_write.
void gguf_set_scalar(gguf_writer *w, const char *key, gguf_type t, const void *value);
void gguf_set_array(gguf_writer *w, const char *key, gguf_type elem_type, const void *values, uint64_t n);
// Bytes of one value of a scalar type (0 for STRING / ARRAY / unknown types).
size_t gguf_type_size(gguf_type t);
// Copies every key/value of `src` except those whose key starts with `skip_prefix` (may be NULL).
void gguf_copy_kv(gguf_writer *w, const gguf_file *src, const char *skip_prefix);
// Adds a tensor; `data` must stay valid until gguf_writer_write returns (not copied).
void gguf_add_tensor(gguf_writer *w, const char *name, dtype t, int n_dims, const int64_t *ne,
                     const void *data);
// Writes atomically (temp file + rename). Version 3, alignment from "general.alignment" or 32.
int gguf_writer_write(gguf_writer *w, const char *path);
#endif
