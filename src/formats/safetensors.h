// safetensors reader/writer, and sharded model.safetensors.index.json. The reader mmaps each file
// and validates header JSON, dtypes, shapes and data_offsets against the file size.
#ifndef SLLM_FORMATS_SAFETENSORS_H
#define SLLM_FORMATS_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "tensor/dtype.h"

typedef struct {
    char *name;
    dtype type;             // DT_F32 / DT_F16 / DT_BF16 (others refused with a clear error)
    int n_dims;
    int64_t shape[8];       // safetensors order: shape[0] slowest (PyTorch order)
    size_t nbytes;
    const void *data;       // inside the mapping
} st_tensor;

typedef struct st_file st_file;   // one or several mapped shards behind one name table
// Opens a single .safetensors file, or a model directory (model.safetensors or the shards named by
// model.safetensors.index.json). NULL on error with sllm_last_error() naming file and field.
st_file *st_open(const char *path_or_dir);
void st_close(st_file *f);
int64_t st_count(const st_file *f);
const st_tensor *st_get(const st_file *f, int64_t i);
const st_tensor *st_find(const st_file *f, const char *name);
// Optional "__metadata__" string values; NULL when absent.
const char *st_metadata(const st_file *f, const char *key);

typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
void st_writer_meta(st_writer *w, const char *key, const char *value);
// `data` must stay valid until st_writer_write returns. shape in PyTorch order.
void st_writer_add(st_writer *w, const char *name, dtype t, int n_dims, const int64_t *shape, const void *data);
int st_writer_write(st_writer *w, const char *path);   // atomic (temp + rename)
#endif
