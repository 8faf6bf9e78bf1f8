// safetensors reader/writer. A file is: u64 little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
// then the data section, offsets relative to its start. A model directory holds model.safetensors or
// shards listed by model.safetensors.index.json ({"weight_map": {"tensor": "shard file"}}).
// Every shard is mmapped; tensor data pointers point into the mappings.
#include "formats/safetensors.h"
#include "base/fileio.h"
#include "base/error.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (256u << 20)   // no real header comes near this; guards against absurd lengths

typedef struct { char *path; const uint8_t *map; size_t size; } st_shard;
typedef struct { char *key, *value; } st_meta;

struct st_file {
    char *path;
    st_shard *shards;
    int n_shards;
    st_tensor *t;
    int *shard_of;              // shard index of each tensor
    int64_t n, cap;
    const st_tensor **by_name;  // sorted, for st_find
    st_meta *meta;
    int n_meta, cap_meta;
};

static const struct { const char *name; dtype t; int bytes; } g_dtypes[] = {
    {"F32", DT_F32, 4}, {"F16", DT_F16, 2}, {"BF16", DT_BF16, 2},
};
// dtypes the format defines that sllm does not read: named so the error can say "unsupported" rather than "corrupt"
static const char *const g_other_dtypes[] = {"F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8",
                                             "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                             "F4", "C64"};

static int map_file(const char *path, st_shard *s) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(SLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(SLLM_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return err_set(SLLM_ERR_FORMAT, "%s: file is %lld bytes, too small for a safetensors header", path,
                       (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return err_set(SLLM_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    s->map = m;
    s->size = (size_t)st.st_size;
    return SLLM_OK;
}

static int add_meta(st_file *f, const char *k, const char *v) {
    if (f->n_meta == f->cap_meta) {
        int cap = f->cap_meta ? 2 * f->cap_meta : 8;
        st_meta *p = realloc(f->meta, (size_t)cap * sizeof *p);
        if (!p) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", f->path);
        f->meta = p;
        f->cap_meta = cap;
    }
    st_meta m = {strdup(k), strdup(v)};
    if (!m.key || !m.value) {
        free(m.key);
        free(m.value);
        return err_set(SLLM_ERR_NOMEM, "%s: out of memory", f->path);
    }
    f->meta[f->n_meta++] = m;
    return SLLM_OK;
}

static int get_uint(json_t *j, uint64_t *v) {
    if (!json_is_integer(j) || json_integer_value(j) < 0) return -1;
    *v = (uint64_t)json_integer_value(j);
    return 0;
}

// Validates one header entry and appends it as a tensor of shard `si`.
static int parse_entry(st_file *f, int si, const char *name, json_t *e, const uint8_t *data, size_t dsize) {
    const char *path = f->shards[si].path;
    if (!json_is_object(e)) return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"), *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd)) return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': missing or non-string 'dtype'", path, name);
    if (!json_is_array(js)) return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': missing or non-array 'shape'", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': missing 'data_offsets' or not [begin, end]", path, name);
    const char *ds = json_string_value(jd);
    int di = -1;
    for (size_t i = 0; i < sizeof g_dtypes / sizeof g_dtypes[0]; i++)
        if (strcmp(ds, g_dtypes[i].name) == 0) di = (int)i;
    if (di < 0) {
        for (size_t i = 0; i < sizeof g_other_dtypes / sizeof g_other_dtypes[0]; i++)
            if (strcmp(ds, g_other_dtypes[i]) == 0)
                return err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported (sllm reads F32, "
                               "F16, BF16)", path, name, ds);
        return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name, ds);
    }
    st_tensor t = {.type = g_dtypes[di].t};
    size_t nd = json_array_size(js);
    if (nd > 8) return err_set(SLLM_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most 8)", path, name, nd);
    t.n_dims = (int)nd;
    uint64_t nel = 1;
    for (size_t d = 0; d < nd; d++) {
        uint64_t v;
        if (get_uint(json_array_get(js, d), &v))
            return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, d);
        if (v && nel > (uint64_t)INT64_MAX / v)
            return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': shape element count overflows", path, name);
        t.shape[d] = (int64_t)v;
        nel *= v;
    }
    uint64_t b, end;
    if (get_uint(json_array_get(jo, 0), &b) || get_uint(json_array_get(jo, 1), &end) || b > end)
        return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': data_offsets must be integers 0 <= begin <= end", path, name);
    if (end > dsize)
        return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] extend past end of "
                       "file (%zu bytes of data)", path, name, b, end, dsize);
    if (nel > SIZE_MAX / (uint64_t)g_dtypes[di].bytes || nel * (uint64_t)g_dtypes[di].bytes != end - b)
        return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': shape holds %" PRIu64 " %s elements but data_offsets span %"
                       PRIu64 " bytes", path, name, nel, ds, end - b);
    t.nbytes = (size_t)(end - b);
    t.data = data + b;
    if (f->n == f->cap) {
        int64_t cap = f->cap ? 2 * f->cap : 64;
        st_tensor *p = realloc(f->t, (size_t)cap * sizeof *p);
        int *q = p ? realloc(f->shard_of, (size_t)cap * sizeof *q) : NULL;
        if (p) f->t = p;
        if (!q) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path);
        f->shard_of = q;
        f->cap = cap;
    }
    if (!(t.name = strdup(name))) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path);
    f->shard_of[f->n] = si;
    f->t[f->n++] = t;
    return SLLM_OK;
}

static int cmp_data(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->data != y->data) return (const uint8_t *)x->data < (const uint8_t *)y->data ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

// Maps shard `si` and adds its tensors (kept in data order, which is file order).
static int parse_shard(st_file *f, int si) {
    st_shard *s = &f->shards[si];
    int rc = map_file(s->path, s);
    if (rc) return rc;
    uint64_t hlen;
    memcpy(&hlen, s->map, 8);
    if (hlen > s->size - 8)
        return err_set(SLLM_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds file size (%zu bytes)", s->path, hlen,
                       s->size);
    if (hlen > ST_MAX_HEADER) return err_set(SLLM_ERR_FORMAT, "%s: header length %" PRIu64 " is implausibly large", s->path, hlen);
    json_error_t je;
    json_t *root = json_loadb((const char *)s->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set(SLLM_ERR_FORMAT, "%s: header JSON: %s (line %d, column %d)", s->path, je.text, je.line, je.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(SLLM_ERR_FORMAT, "%s: header JSON is not an object", s->path);
    }
    const uint8_t *data = s->map + 8 + hlen;
    size_t dsize = s->size - 8 - (size_t)hlen;
    int64_t first = f->n;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) { rc = err_set(SLLM_ERR_FORMAT, "%s: __metadata__ is not an object", s->path); break; }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = err_set(SLLM_ERR_FORMAT, "%s: __metadata__ '%s': value is not a string", s->path, mk);
                    break;
                }
                if ((rc = add_meta(f, mk, json_string_value(mv)))) break;
            }
            if (rc) break;
            continue;
        }
        if ((rc = parse_entry(f, si, key, val, data, dsize))) break;
    }
    json_decref(root);
    if (rc) return rc;
    // jansson iterates in insertion order; sort by offset anyway so overlaps are adjacent
    qsort(f->t + first, (size_t)(f->n - first), sizeof *f->t, cmp_data);
    for (int64_t i = first + 1; i < f->n; i++) {
        const st_tensor *a = &f->t[i - 1], *b = &f->t[i];
        if (a->nbytes && b->nbytes && (const uint8_t *)a->data + a->nbytes > (const uint8_t *)b->data)
            return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': data_offsets overlap tensor '%s'", s->path, b->name, a->name);
    }
    return SLLM_OK;
}

static int add_shard(st_file *f, const char *path) {
    st_shard *p = realloc(f->shards, (size_t)(f->n_shards + 1) * sizeof *p);
    if (!p) return err_set(SLLM_ERR_NOMEM, "out of memory");
    f->shards = p;
    p[f->n_shards] = (st_shard){strdup(path), NULL, 0};
    if (!p[f->n_shards].path) return err_set(SLLM_ERR_NOMEM, "out of memory");
    f->n_shards++;
    return SLLM_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

static int build_index(st_file *f) {
    f->by_name = malloc((size_t)(f->n ? f->n : 1) * sizeof *f->by_name);
    if (!f->by_name) return err_set(SLLM_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < f->n; i++) f->by_name[i] = &f->t[i];
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    for (int64_t i = 1; i < f->n; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
            int a = f->shard_of[f->by_name[i - 1] - f->t], b = f->shard_of[f->by_name[i] - f->t];
            return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s' appears in both %s and %s", f->path, f->by_name[i]->name,
                           f->shards[a].path, f->shards[b].path);
        }
    return SLLM_OK;
}

static int open_index(st_file *f, const char *index, const char *dir) {
    json_error_t je;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (access(index, R_OK) != 0) return err_set(SLLM_ERR_IO, "%s: cannot open: %s", index, strerror(errno));
        return err_set(SLLM_ERR_FORMAT, "%s: JSON: %s (line %d, column %d)", index, je.text, je.line, je.column);
    }
    json_t *wm = json_object_get(root, "weight_map");
    int rc = SLLM_OK;
    if (!json_is_object(wm)) rc = err_set(SLLM_ERR_FORMAT, "%s: missing 'weight_map' object", index);
    const char *name;
    json_t *v;
    char path[4096];
    // open each distinct shard once, in order of first mention
    if (!rc) json_object_foreach(wm, name, v) {
        const char *shard = json_string_value(v);
        if (!shard || !shard[0] || strchr(shard, '/') || strcmp(shard, "..") == 0) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: weight_map '%s': shard must be a plain file name", index, name);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        bool seen = false;
        for (int i = 0; i < f->n_shards && !seen; i++) seen = strcmp(f->shards[i].path, path) == 0;
        if (seen) continue;
        if ((rc = add_shard(f, path))) break;
        if ((rc = parse_shard(f, f->n_shards - 1))) {
            err_wrap(rc, "%s: weight_map '%s'", index, name);
            break;
        }
    }
    if (!rc) rc = build_index(f);
    // every name the index promises must be in the shard it names
    if (!rc) json_object_foreach(wm, name, v) {
        const st_tensor *t = st_find(f, name);
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(v));
        if (!t || strcmp(f->shards[f->shard_of[t - f->t]].path, path) != 0) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: weight_map: tensor '%s' not found in shard '%s'", index, name,
                         json_string_value(v));
            break;
        }
    }
    json_decref(root);
    return rc;
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

st_file *st_open(const char *path) {
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        err_set(SLLM_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    struct stat st;
    char buf[4096];
    int rc;
    if (stat(path, &st) != 0) {
        rc = err_set(SLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        snprintf(buf, sizeof buf, "%s/model.safetensors.index.json", path);
        if (access(buf, F_OK) == 0) {
            rc = open_index(f, buf, path);
        } else {
            snprintf(buf, sizeof buf, "%s/model.safetensors", path);
            if (access(buf, F_OK) != 0)
                rc = err_set(SLLM_ERR_IO, "%s: directory holds neither model.safetensors nor "
                             "model.safetensors.index.json", path);
            else if (!(rc = add_shard(f, buf)) && !(rc = parse_shard(f, 0)))
                rc = build_index(f);
        }
    } else if (ends_with(path, ".index.json")) {
        snprintf(buf, sizeof buf, "%s", path);
        char *slash = strrchr(buf, '/');
        if (slash) *slash = 0;
        else snprintf(buf, sizeof buf, ".");
        rc = open_index(f, path, buf);
    } else if (!(rc = add_shard(f, path)) && !(rc = parse_shard(f, 0))) {
        rc = build_index(f);
    }
    if (rc) {
        st_close(f);
        return NULL;
    }
    return f;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_shards; i++) {
        if (f->shards[i].map) munmap((void *)f->shards[i].map, f->shards[i].size);
        free(f->shards[i].path);
    }
    for (int64_t i = 0; i < f->n; i++) free(f->t[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta[i].key); free(f->meta[i].value); }
    free(f->shards);
    free(f->t);
    free(f->shard_of);
    free(f->by_name);
    free(f->meta);
    free(f->path);
    free(f);
}

int64_t st_count(const st_file *f) { return f->n; }
const st_tensor *st_get(const st_file *f, int64_t i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name) {
    st_tensor key = {.name = (char *)name};
    const st_tensor *kp = &key;
    const st_tensor **hit = bsearch(&kp, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    return hit ? *hit : NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// writer

typedef struct {
    char *name;
    dtype t;
    int n_dims;
    int64_t shape[8];
    size_t nbytes;
    const void *data;
} st_wt;

struct st_writer {
    st_wt *t;
    size_t n, cap;
    st_meta *meta;
    size_t n_meta, cap_meta;
    int err;
    char msg[300];
};

static void w_fail(st_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void w_fail(st_writer *w, int code, const char *fmt, ...) {
    if (w->err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    w->err = code;
}

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    for (size_t i = 0; i < w->n_meta; i++) { free(w->meta[i].key); free(w->meta[i].value); }
    free(w->t);
    free(w->meta);
    free(w);
}

void st_writer_meta(st_writer *w, const char *key, const char *value) {
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v) { w_fail(w, SLLM_ERR_NOMEM, "out of memory"); return; }
            free(w->meta[i].value);
            w->meta[i].value = v;
            return;
        }
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 8;
        st_meta *p = realloc(w->meta, cap * sizeof *p);
        if (!p) { w_fail(w, SLLM_ERR_NOMEM, "out of memory"); return; }
        w->meta = p;
        w->cap_meta = cap;
    }
    st_meta m = {strdup(key), strdup(value)};
    if (!m.key || !m.value) {
        free(m.key);
        free(m.value);
        w_fail(w, SLLM_ERR_NOMEM, "out of memory");
        return;
    }
    w->meta[w->n_meta++] = m;
}

static const char *st_dtype_name(dtype t) {
    for (size_t i = 0; i < sizeof g_dtypes / sizeof g_dtypes[0]; i++)
        if (g_dtypes[i].t == t) return g_dtypes[i].name;
    return NULL;
}

void st_writer_add(st_writer *w, const char *name, dtype t, int n_dims, const int64_t *shape, const void *data) {
    if (!st_dtype_name(t)) {
        const dtype_info *di = dtype_get((int)t);
        w_fail(w, SLLM_ERR_UNSUPPORTED, "tensor '%s': dtype %s cannot be written to safetensors (F32, F16, BF16 only)",
               name, di ? di->name : "?");
        return;
    }
    if (!name[0] || strcmp(name, "__metadata__") == 0) { w_fail(w, SLLM_ERR_ARG, "bad tensor name '%s'", name); return; }
    if (n_dims < 0 || n_dims > 8) { w_fail(w, SLLM_ERR_ARG, "tensor '%s': %d dimensions", name, n_dims); return; }
    st_wt x = {.t = t, .n_dims = n_dims, .data = data};
    uint64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] < 0 || (shape[d] && nel > (uint64_t)(INT64_MAX / 8) / (uint64_t)shape[d])) {
            w_fail(w, SLLM_ERR_ARG, "tensor '%s': bad shape[%d] = %" PRId64, name, d, shape[d]);
            return;
        }
        x.shape[d] = shape[d];
        nel *= (uint64_t)shape[d];
    }
    x.nbytes = (size_t)nel * (t == DT_F32 ? 4 : 2);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) { w_fail(w, SLLM_ERR_ARG, "tensor '%s': added twice", name); return; }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        st_wt *p = realloc(w->t, cap * sizeof *p);
        if (!p) { w_fail(w, SLLM_ERR_NOMEM, "out of memory"); return; }
        w->t = p;
        w->cap = cap;
    }
    if (!(x.name = strdup(name))) { w_fail(w, SLLM_ERR_NOMEM, "out of memory"); return; }
    w->t[w->n++] = x;
}

static json_t *build_header(const st_writer *w) {
    json_t *root = json_object();
    bool ok = root != NULL;
    if (ok && w->n_meta) {
        json_t *m = json_object();
        for (size_t i = 0; m && i < w->n_meta; i++) json_object_set_new(m, w->meta[i].key, json_string(w->meta[i].value));
        ok = m && json_object_set_new(root, "__metadata__", m) == 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; ok && i < w->n; i++) {
        const st_wt *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; shape && d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtype_name(t->t), "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + t->nbytes));
        ok = e && json_object_set_new(root, t->name, e) == 0;
        off += t->nbytes;
    }
    if (!ok) { json_decref(root); return NULL; }
    return root;
}

int st_writer_write(st_writer *w, const char *path) {
    if (w->err) return err_set(w->err, "%s: %s", path, w->msg);
    json_t *root = build_header(w);
    char *js = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!js) return err_set(SLLM_ERR_NOMEM, "%s: out of memory building the header", path);
    // header padded with spaces so the data section starts 8-byte aligned (as the reference writer does)
    size_t jl = strlen(js), hlen = (jl + 7) / 8 * 8;
    char *hdr = malloc(8 + hlen);
    if (!hdr) { free(js); return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path); }
    uint64_t h64 = hlen;
    memcpy(hdr, &h64, 8);
    memcpy(hdr + 8, js, jl);
    memset(hdr + 8 + jl, ' ', hlen - jl);
    free(js);

    fileio_atomic out;
    int rc = fileio_atomic_open(&out, path);
    if (rc != SLLM_OK) { free(hdr); return rc; }
    fileio_atomic_write(&out, hdr, 8 + hlen);
    free(hdr);
    for (size_t i = 0; i < w->n; i++) fileio_atomic_write(&out, w->t[i].data, w->t[i].nbytes);   // NULL: zeros
    return fileio_atomic_commit(&out);
}
