#include "train/checkpoint.h"
#include "base/error.h"
#include "base/fileio.h"
#include "formats/safetensors.h"
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TENSORS "tensors.safetensors"
#define STATE "state.json"

struct ckpt_writer {
    char *root, *tmp;
    int64_t step;
    st_writer *st;
    json_t *state;
    char **names;
    int n_names;
    int err;
};

// FNV-1a 64 over the file: a checksum with no new library dependency (zlib's crc32 would be one);
// 4 interleaved lanes keep it fast enough for multi-GB checkpoints.
static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h[4] = {0xcbf29ce484222325ull, 0xcbf29ce484222325ull ^ 1, 0xcbf29ce484222325ull ^ 2,
                     0xcbf29ce484222325ull ^ 3};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) h[l] = (h[l] ^ p[i + l]) * 0x100000001b3ull;
    for (; i < n; i++) h[0] = (h[0] ^ p[i]) * 0x100000001b3ull;
    uint64_t r = h[0];
    for (int l = 1; l < 4; l++) r = (r ^ h[l]) * 0x100000001b3ull;
    return r;
}

static int hash_file(const char *path, uint64_t *h, size_t *bytes) {
    char *d;
    size_t n;
    int rc = fileio_read_all(path, &d, &n);
    if (rc) return rc;
    *h = fnv1a((const uint8_t *)d, n);
    *bytes = n;
    free(d);
    return 0;
}

static char *path2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

ckpt_writer *ckpt_writer_begin(const char *root, int64_t step) {
    if (step < 0) { err_set(SLLM_ERR_ARG, "checkpoint: step %lld < 0", (long long)step); return NULL; }
    if (fileio_mkdirs(root)) return NULL;
    ckpt_writer *w = calloc(1, sizeof *w);
    char name[64];
    snprintf(name, sizeof name, ".tmp-step-%08lld-XXXXXX", (long long)step);
    if (!w || !(w->root = strdup(root)) || !(w->tmp = path2(root, name)) || !(w->st = st_writer_new())) {
        err_set(SLLM_ERR_NOMEM, "%s: out of memory", root);
        if (w) { free(w->root); free(w->tmp); free(w); }
        return NULL;
    }
    if (!mkdtemp(w->tmp)) {
        err_set(SLLM_ERR_IO, "%s: cannot create a temporary checkpoint directory: %s", root, strerror(errno));
        st_writer_free(w->st);
        free(w->root);
        free(w->tmp);
        free(w);
        return NULL;
    }
    w->step = step;
    return w;
}

int ckpt_add_tensor(ckpt_writer *w, const char *name, const float *data, int64_t n) {
    if (!name || !*name || n < 0 || (!data && n))
        return w->err = err_set(SLLM_ERR_ARG, "checkpoint: bad tensor '%s'", name ? name : "(null)");
    for (int i = 0; i < w->n_names; i++)
        if (!strcmp(w->names[i], name)) return w->err = err_set(SLLM_ERR_ARG, "checkpoint: tensor '%s' added twice", name);
    char **nn = realloc(w->names, (size_t)(w->n_names + 1) * sizeof *nn);
    if (!nn || !(nn[w->n_names] = strdup(name))) {
        if (nn) w->names = nn;
        return w->err = err_set(SLLM_ERR_NOMEM, "checkpoint: out of memory");
    }
    w->names = nn;
    w->n_names++;
    int64_t shape[1] = {n};
    st_writer_add(w->st, name, DT_F32, 1, shape, data);
    return 0;
}

int ckpt_set_json(ckpt_writer *w, json_t *state) {
    json_decref(w->state);
    w->state = json_incref(state);
    return 0;
}

static void writer_free(ckpt_writer *w) {
    st_writer_free(w->st);
    json_decref(w->state);
    for (int i = 0; i < w->n_names; i++) free(w->names[i]);
    free(w->names);
    free(w->root);
    free(w->tmp);
    free(w);
}

void ckpt_abandon(ckpt_writer *w) {
    if (!w) return;
    fileio_remove_tree(w->tmp);
    writer_free(w);
}

int ckpt_commit(ckpt_writer *w) {
    int rc = w->err;
    char *tp = path2(w->tmp, TENSORS), *sp = path2(w->tmp, STATE), *js = NULL, *final = NULL, *trash = NULL;
    char name[64];
    snprintf(name, sizeof name, "step-%08lld", (long long)w->step);
    final = path2(w->root, name);
    if (!rc && (!tp || !sp || !final)) rc = err_set(SLLM_ERR_NOMEM, "checkpoint: out of memory");
    if (!rc) rc = st_writer_write(w->st, tp);
    if (!rc) rc = fileio_fsync_path(tp);
    uint64_t h = 0;
    size_t bytes = 0;
    if (!rc) rc = hash_file(tp, &h, &bytes);
    if (!rc) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, h);
        json_t *doc = json_pack("{s:s, s:i, s:I, s:{s:s, s:I, s:s}, s:O}", "format", "sllm-checkpoint", "version", 1,
                                "step", (json_int_t)w->step, "tensors", "file", TENSORS, "bytes", (json_int_t)bytes,
                                "fnv1a64", hex, "state", w->state ? w->state : json_null());
        js = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
        if (!js) rc = err_set(SLLM_ERR_NOMEM, "checkpoint: cannot serialise the state");
    }
    if (!rc) rc = fileio_write_atomic(sp, js, strlen(js));
    if (!rc) rc = fileio_fsync_path(w->tmp);
    // a checkpoint of the same step already published (re-saving after a resume): move it aside first
    struct stat st;
    if (!rc && stat(final, &st) == 0) {
        trash = path2(w->root, ".old-XXXXXX");
        if (!trash || !mkdtemp(trash) || rmdir(trash) != 0 || rename(final, trash) != 0)
            rc = err_set(SLLM_ERR_IO, "%s: cannot move the existing checkpoint aside: %s", final, strerror(errno));
    }
    if (!rc && rename(w->tmp, final) != 0)
        rc = err_set(SLLM_ERR_IO, "%s: cannot publish checkpoint: %s", final, strerror(errno));
    if (!rc) rc = fileio_fsync_path(w->root);
    if (!rc) {
        char *lp = path2(w->root, "latest");
        char line[80];
        int n = snprintf(line, sizeof line, "%s\n", name);
        rc = lp ? fileio_write_atomic(lp, line, (size_t)n) : err_set(SLLM_ERR_NOMEM, "out of memory");
        free(lp);
    }
    if (rc) fileio_remove_tree(w->tmp);
    if (trash) fileio_remove_tree(trash);
    free(tp);
    free(sp);
    free(js);
    free(final);
    free(trash);
    writer_free(w);
    return rc;
}

struct ckpt_reader {
    char *dir;
    st_file *st;
    json_t *doc;
    int64_t step;
};

void ckpt_close(ckpt_reader *r) {
    if (!r) return;
    st_close(r->st);
    json_decref(r->doc);
    free(r->dir);
    free(r);
}

ckpt_reader *ckpt_open(const char *dir) {
    ckpt_reader *r = calloc(1, sizeof *r);
    char *sp = path2(dir, STATE), *tp = path2(dir, TENSORS);
    if (!r || !sp || !tp || !(r->dir = strdup(dir))) {
        err_set(SLLM_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    json_error_t e;
    r->doc = json_load_file(sp, JSON_REJECT_DUPLICATES, &e);
    if (!r->doc) {
        if (access(sp, F_OK) != 0) err_set(SLLM_ERR_IO, "%s: missing (not a complete checkpoint)", sp);
        else err_set(SLLM_ERR_FORMAT, "%s:%d: invalid JSON: %s", sp, e.line, e.text);
        goto fail;
    }
    const char *fmt = NULL, *hex = NULL, *file = NULL;
    json_int_t ver = 0, step = 0, bytes = 0;
    json_t *state = NULL;
    if (json_unpack_ex(r->doc, &e, 0, "{s:s, s:I, s:I, s:{s:s, s:I, s:s}, s:o}", "format", &fmt, "version", &ver, "step",
                       &step, "tensors", "file", &file, "bytes", &bytes, "fnv1a64", &hex, "state", &state) != 0) {
        err_set(SLLM_ERR_FORMAT, "%s: %s", sp, e.text);
        goto fail;
    }
    if (strcmp(fmt, "sllm-checkpoint") || ver != 1) {
        err_set(SLLM_ERR_UNSUPPORTED, "%s: format '%s' version %lld (expected sllm-checkpoint 1)", sp, fmt, (long long)ver);
        goto fail;
    }
    if (strcmp(file, TENSORS)) {
        err_set(SLLM_ERR_FORMAT, "%s: field 'tensors.file': '%s' (expected %s)", sp, file, TENSORS);
        goto fail;
    }
    uint64_t h;
    size_t n;
    if (hash_file(tp, &h, &n)) goto fail;
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, h);
    if ((json_int_t)n != bytes) {
        err_set(SLLM_ERR_FORMAT, "%s: %zu bytes, state.json records %lld (truncated or incomplete checkpoint)", tp, n,
                (long long)bytes);
        goto fail;
    }
    if (strcmp(want, hex)) {
        err_set(SLLM_ERR_FORMAT, "%s: checksum %s does not match state.json's %s (corrupt checkpoint)", tp, want, hex);
        goto fail;
    }
    if (!(r->st = st_open(tp))) goto fail;
    r->step = step;
    free(sp);
    free(tp);
    return r;
fail:
    free(sp);
    free(tp);
    ckpt_close(r);
    return NULL;
}

ckpt_reader *ckpt_open_latest(const char *root) {
    char *lp = path2(root, "latest"), *name = NULL;
    size_t n = 0;
    if (!lp) { err_set(SLLM_ERR_NOMEM, "out of memory"); return NULL; }
    int rc = fileio_read_all(lp, &name, &n);
    if (rc) {
        err_wrap(rc, "%s: no checkpoint to resume from", root);
        free(lp);
        return NULL;
    }
    while (n && (name[n - 1] == '\n' || name[n - 1] == '\r' || name[n - 1] == ' ')) name[--n] = 0;
    if (n == 0 || strchr(name, '/') || name[0] == '.') {
        err_set(SLLM_ERR_FORMAT, "%s: does not name a checkpoint directory", lp);
        free(lp);
        free(name);
        return NULL;
    }
    char *dir = path2(root, name);
    ckpt_reader *r = dir ? ckpt_open(dir) : NULL;
    if (!dir) err_set(SLLM_ERR_NOMEM, "out of memory");
    free(dir);
    free(lp);
    free(name);
    return r;
}

int64_t ckpt_step(const ckpt_reader *r) { return r->step; }
const char *ckpt_dir(const ckpt_reader *r) { return r->dir; }
const json_t *ckpt_json(const ckpt_reader *r) { return json_object_get(r->doc, "state"); }
int ckpt_has_tensor(const ckpt_reader *r, const char *name) { return st_find(r->st, name) != NULL; }

int ckpt_get_tensor(const ckpt_reader *r, const char *name, float *out, int64_t n) {
    const st_tensor *t = st_find(r->st, name);
    if (!t) return err_set(SLLM_ERR_FORMAT, "%s/" TENSORS ": no tensor '%s'", r->dir, name);
    if (t->type != DT_F32) return err_set(SLLM_ERR_FORMAT, "%s/" TENSORS ": tensor '%s' is not F32", r->dir, name);
    if ((int64_t)(t->nbytes / sizeof(float)) != n)
        return err_set(SLLM_ERR_SHAPE, "%s/" TENSORS ": tensor '%s' has %zu elements, expected %lld", r->dir, name,
                       t->nbytes / sizeof(float), (long long)n);
    memcpy(out, t->data, t->nbytes);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int ckpt_prune(const char *root, int keep) {
    DIR *d = opendir(root);
    if (!d) return err_set(SLLM_ERR_IO, "%s: cannot open: %s", root, strerror(errno));
    char *latest = NULL, *lp = path2(root, "latest");
    size_t ln = 0;
    if (lp && fileio_read_all(lp, &latest, &ln) == 0)
        while (ln && (latest[ln - 1] == '\n' || latest[ln - 1] == '\r')) latest[--ln] = 0;
    err_clear();
    free(lp);
    char **steps = NULL;
    int n = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strncmp(de->d_name, ".tmp-step-", 10) || !strncmp(de->d_name, ".old-", 5)) {
            char *p = path2(root, de->d_name);
            if (p) fileio_remove_tree(p);
            free(p);
        } else if (!strncmp(de->d_name, "step-", 5)) {
            char **s2 = realloc(steps, (size_t)(n + 1) * sizeof *s2);
            if (!s2) { rc = err_set(SLLM_ERR_NOMEM, "out of memory"); break; }
            steps = s2;
            steps[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    if (!rc) qsort(steps, (size_t)n, sizeof *steps, cmp_str);   // zero-padded: name order is step order
    for (int i = 0; !rc && i < n - (keep > 0 ? keep : 1); i++) {
        if (!steps[i] || (latest && !strcmp(steps[i], latest))) continue;
        char *p = path2(root, steps[i]);
        rc = p ? fileio_remove_tree(p) : err_set(SLLM_ERR_NOMEM, "out of memory");
        free(p);
    }
    for (int i = 0; i < n; i++) free(steps[i]);
    free(steps);
    free(latest);
    return rc;
}

json_t *ckpt_rng_to_json(const rng_state *r) {
    json_t *a = json_array();
    for (int i = 0; i < 4; i++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, r->s[i]);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

int ckpt_rng_from_json(const json_t *j, rng_state *r) {
    if (!json_is_array(j) || json_array_size(j) != 4) return err_set(SLLM_ERR_FORMAT, "rng state: expected 4 hex strings");
    rng_state t;
    for (int i = 0; i < 4; i++) {
        const char *s = json_string_value(json_array_get(j, i));
        char *end;
        if (!s || strlen(s) != 16) return err_set(SLLM_ERR_FORMAT, "rng state[%d]: expected 16 hex digits", i);
        errno = 0;
        t.s[i] = strtoull(s, &end, 16);
        if (*end || errno) return err_set(SLLM_ERR_FORMAT, "rng state[%d]: '%s' is not hex", i, s);
    }
    *r = t;
    return 0;
}
