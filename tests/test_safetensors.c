// Tests for the safetensors reader/writer. Oracle: tests/ref/st_check.py (json + struct + numpy), which
// writes files our reader must decode to known values, and reads files our writer makes.
#include "test.h"
#include "base/error.h"
#include "formats/safetensors.h"
#include "tensor/dtype.h"
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>

static char g_dir[64];

// CRC-32 (IEEE) written out here because zlib is not linked; matches Python's zlib.crc32.
static uint32_t crc32_buf(const void *p, size_t n) {
    static uint32_t tab[256];
    if (!tab[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            tab[i] = c;
        }
    const uint8_t *s = p;
    uint32_t crc = ~0u;
    while (n--) crc = tab[(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static double elem(const st_tensor *t, size_t i) {
    uint16_t h;
    float f;
    if (t->type == DT_F32) { memcpy(&f, (const uint8_t *)t->data + 4 * i, 4); return f; }
    memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
    return t->type == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

static const char *python(void) {
    const char *py = getenv("SLLM_PYTHON");
    py = py ? py : "/usr/bin/python3";
    if (access(py, X_OK) != 0) return NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import numpy' 2>/dev/null", py);
    return system(cmd) == 0 ? py : NULL;
}

static int run_py(const char *mode, const char *arg, char *out, size_t n) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s tests/ref/st_check.py %s '%s'", python(), mode, arg);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = out ? fread(out, 1, n - 1, p) : 0;
    if (out) out[k] = 0;
    return pclose(p);
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t k = n ? fwrite(p, 1, n, fp) : 0;
    fclose(fp);
    return k == n ? 0 : -1;
}

// ---- Python-written files read by us -------------------------------------------------------------

static void test_read_python(void) {
    if (!python()) { SKIP("/usr/bin/python3 with numpy not found: skipping the st_check.py cross-checks"); return; }
    CHECK(run_py("write", g_dir, NULL, 0) == 0, "st_check.py write failed");
    char path[256];
    snprintf(path, sizeof path, "%s/single.safetensors", g_dir);
    st_file *f = st_open(path);
    CHECK(f != NULL, "%s", sllm_last_error());
    if (f) {
        CHECK(st_count(f) == 5);
        CHECK(st_metadata(f, "format") && strcmp(st_metadata(f, "format"), "pt") == 0);
        CHECK(st_metadata(f, "note") && strcmp(st_metadata(f, "note"), "h\xc3\xa9llo") == 0);
        CHECK(st_metadata(f, "absent") == NULL);
        // data order in the file was c, z, a, s, b: st_get follows the file
        CHECK(strcmp(st_get(f, 0)->name, "c") == 0 && strcmp(st_get(f, 4)->name, "b") == 0 && st_get(f, 5) == NULL);
        const st_tensor *a = st_find(f, "a"), *b = st_find(f, "b"), *c = st_find(f, "c"), *s = st_find(f, "s"),
                        *z = st_find(f, "z");
        CHECK(a && a->type == DT_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->nbytes == 24);
        for (int i = 0; a && i < 6; i++) CHECK(elem(a, (size_t)i) == i * 0.5 - 1, "a[%d]", i);
        CHECK(b && b->type == DT_F16 && b->n_dims == 1 && b->shape[0] == 4);
        if (b) CHECK(elem(b, 0) == 1 && elem(b, 1) == -2 && elem(b, 2) == 0.5 && elem(b, 3) == 65504);
        CHECK(c && c->type == DT_BF16 && c->n_dims == 2 && c->shape[1] == 2);
        if (c) CHECK(elem(c, 0) == 1 && elem(c, 1) == 2 && elem(c, 2) == -3 && elem(c, 3) == 0.15625);
        CHECK(s && s->n_dims == 0 && s->nbytes == 4 && elem(s, 0) == 7);
        CHECK(z && z->n_dims == 2 && z->shape[0] == 0 && z->nbytes == 0);
        CHECK(st_find(f, "nope") == NULL && st_find(f, "__metadata__") == NULL);
        st_close(f);
    }
    // sharded directory, and the index file named directly
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, k ? "%s/sharded/model.safetensors.index.json" : "%s/sharded", g_dir);
        f = st_open(path);
        CHECK(f != NULL, "%s", sllm_last_error());
        if (!f) continue;
        CHECK(st_count(f) == 3);
        const st_tensor *x = st_find(f, "x"), *y = st_find(f, "y"), *w = st_find(f, "w");
        CHECK(x && x->shape[0] == 3 && x->shape[1] == 4 && elem(x, 11) == 11);
        CHECK(y && y->type == DT_F16 && elem(y, 1) == 4);
        CHECK(w && w->type == DT_BF16 && elem(w, 0) == -1 && elem(w, 1) == 0.5);
        CHECK(st_metadata(f, "format") != NULL);
        st_close(f);
    }
}

// ---- our files read by Python --------------------------------------------------------------------

static void test_write(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/ours.safetensors", g_dir);
    float a[6] = {1.5f, -2, 3.25f, 0, 1e-8f, 7};
    uint16_t h[5], bf[3];
    float hv[5] = {0.1f, -65504, 3, 6e-8f, 1}, bv[3] = {3.14159f, -0.001f, 1e30f};
    for (int i = 0; i < 5; i++) h[i] = f32_to_f16(hv[i]);
    for (int i = 0; i < 3; i++) bf[i] = f32_to_bf16(bv[i]);
    float sc = 42;
    st_writer *w = st_writer_new();
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "format", "sllm");   // replaces
    st_writer_meta(w, "other", "x y");
    st_writer_add(w, "model.layers.0.w", DT_F32, 2, (int64_t[]){3, 2}, a);
    st_writer_add(w, "h", DT_F16, 1, (int64_t[]){5}, h);
    st_writer_add(w, "bf", DT_BF16, 3, (int64_t[]){1, 3, 1}, bf);
    st_writer_add(w, "scalar", DT_F32, 0, NULL, &sc);
    st_writer_add(w, "empty", DT_F16, 2, (int64_t[]){0, 4}, NULL);
    st_writer_add(w, "zeros", DT_F32, 1, (int64_t[]){3}, NULL);
    CHECK(st_writer_write(w, path) == SLLM_OK, "%s", sllm_last_error());
    CHECK(st_writer_write(w, path) == SLLM_OK, "overwrite: %s", sllm_last_error());
    st_writer_free(w);

    st_file *f = st_open(path);
    CHECK(f != NULL, "%s", sllm_last_error());
    if (!f) return;
    char mine[4096] = "";
    size_t n = 0;
    // the same lines st_check.py prints, sorted by name (names here sort the same in C and Python)
    const char *order[] = {"bf", "empty", "h", "model.layers.0.w", "scalar", "zeros"};
    n += (size_t)snprintf(mine + n, sizeof mine - n, "meta format sllm\nmeta other x y\n");
    for (int i = 0; i < 6; i++) {
        const st_tensor *t = st_find(f, order[i]);
        CHECK(t != NULL, "%s", order[i]);
        if (!t) continue;
        char shape[64] = "";
        for (int d = 0, k = 0; d < t->n_dims; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
        double sum = 0;
        size_t ne = t->nbytes / (t->type == DT_F32 ? 4 : 2);
        for (size_t j = 0; j < ne; j++) sum += elem(t, j);
        n += (size_t)snprintf(mine + n, sizeof mine - n, "tensor %s %s %s %zu %08x %.6e\n", t->name,
                              t->type == DT_F32 ? "F32" : t->type == DT_F16 ? "F16" : "BF16", shape, t->nbytes,
                              crc32_buf(t->data, t->nbytes), sum);
    }
    CHECK(memcmp(st_find(f, "h")->data, h, sizeof h) == 0 && memcmp(st_find(f, "bf")->data, bf, sizeof bf) == 0);
    CHECK(((uintptr_t)st_find(f, "model.layers.0.w")->data) % 8 == 0, "data section 8-byte aligned");
    st_close(f);
    if (!python()) { SKIP("/usr/bin/python3 with numpy not found: our file not cross-checked"); return; }
    char ref[4096];
    CHECK(run_py("read", path, ref, sizeof ref) == 0, "st_check.py rejected our file");
    CHECK(strcmp(mine, ref) == 0, "ours:\n%s\npython:\n%s", mine, ref);

    w = st_writer_new();
    st_writer_add(w, "q", DT_Q4_0, 1, (int64_t[]){32}, a);
    CHECK(st_writer_write(w, path) == SLLM_ERR_UNSUPPORTED && strstr(sllm_last_error(), "'q'"), "%s", sllm_last_error());
    st_writer_free(w);
    w = st_writer_new();
    st_writer_add(w, "d", DT_F32, 1, (int64_t[]){1}, a);
    st_writer_add(w, "d", DT_F32, 1, (int64_t[]){1}, a);
    CHECK(st_writer_write(w, path) != SLLM_OK && strstr(sllm_last_error(), "twice"), "%s", sllm_last_error());
    st_writer_free(w);
    w = st_writer_new();
    CHECK(st_writer_write(w, "/nonexistent-dir/x.safetensors") == SLLM_ERR_IO);
    st_writer_free(w);
    DIR *d = opendir(g_dir);
    int tmp = 0;
    for (struct dirent *de; d && (de = readdir(d));) tmp += strstr(de->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    CHECK(tmp == 0, "%d temporary files left", tmp);

    // every truncation of our file must be refused cleanly
    FILE *fp = fopen(path, "rb");
    static uint8_t buf[8192];
    size_t len = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp) fclose(fp);
    char cut[256];
    snprintf(cut, sizeof cut, "%s/cut.safetensors", g_dir);
    int bad = 0;
    for (size_t c = 0; c < len; c++) {
        write_file(cut, buf, c);
        err_clear();
        st_file *g = st_open(cut);
        if (g || !strstr(sllm_last_error(), cut)) {
            if (bad++ < 3) fprintf(stderr, "cut at %zu: %s\n", c, g ? "opened" : sllm_last_error());
        }
        st_close(g);
    }
    CHECK(bad == 0 && len > 100, "%d of %zu truncations not refused", bad, len);

    // random byte corruptions of the header: open with in-bounds tensors, or refuse with a message
    uint64_t hl;
    memcpy(&hl, buf, 8);
    static uint8_t m[8192];
    uint32_t seed = 777;
    int opened = 0;
    bad = 0;
    static const char vals[] = "0123456789[]{},:\"-eE. \x80";
    for (int it = 0; it < 2000 && hl + 8 <= len; it++) {
        memcpy(m, buf, len);
        for (int k = 0; k < 1 + it % 2; k++) {
            seed = seed * 1664525u + 1013904223u;
            m[8 + (seed >> 8) % hl] = (uint8_t)vals[(seed >> 3) % (sizeof vals - 1)];
        }
        write_file(cut, m, len);
        err_clear();
        st_file *g = st_open(cut);
        if (!g) { bad += strstr(sllm_last_error(), cut) == NULL; continue; }
        opened++;
        for (int64_t i = 0; i < st_count(g); i++) {
            const st_tensor *t = st_get(g, i);
            bad += t->nbytes > len - 8 - hl;
            bad += crc32_buf(t->data, t->nbytes) == 0x12345678;   // touch every byte
        }
        st_close(g);
    }
    CHECK(bad == 0 && opened > 0, "fuzz: %d bad, %d opened", bad, opened);
}

// ---- corrupt files -------------------------------------------------------------------------------

// Writes u64 header length + header (+ `data_len` zero bytes); expects st_open to fail mentioning `want`.
static void expect_fail(const char *what, const char *header, size_t data_len, int64_t hlen_override,
                        const char *want1, const char *want2) {
    char path[256];
    snprintf(path, sizeof path, "%s/bad.safetensors", g_dir);
    size_t hl = strlen(header);
    uint8_t *b = calloc(1, 8 + hl + data_len);
    uint64_t h = hlen_override >= 0 ? (uint64_t)hlen_override : hl;
    memcpy(b, &h, 8);
    memcpy(b + 8, header, hl);
    write_file(path, b, 8 + hl + data_len);
    free(b);
    err_clear();
    st_file *f = st_open(path);
    const char *e = sllm_last_error();
    CHECK(f == NULL, "%s: opened", what);
    CHECK(strstr(e, path) && (!want1 || strstr(e, want1)) && (!want2 || strstr(e, want2)), "%s: message '%s'", what, e);
    st_close(f);
}

static void test_corrupt(void) {
    const char *ok = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_fail("hlen huge", ok, 8, 1LL << 60, "header length", "exceeds file size");
    expect_fail("hlen short", ok, 8, 10, "header JSON", NULL);
    expect_fail("bad json", "{\"t\": {\"dtype\": ", 8, -1, "header JSON", NULL);
    expect_fail("not object", "[1,2]", 0, -1, "not an object", NULL);
    expect_fail("not utf8", "{\"\xff\":1}", 0, -1, "header JSON", NULL);
    expect_fail("dup key", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "header JSON", "t");
    expect_fail("no dtype", "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, "'t'", "dtype");
    expect_fail("no shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, -1, "'t'", "shape");
    expect_fail("no offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, -1, "'t'", "data_offsets");
    expect_fail("offsets 3", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, -1, "'t'",
                "data_offsets");
    expect_fail("entry not object", "{\"t\":5}", 0, -1, "'t'", "not an object");
    expect_fail("unsupported dtype", "{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, -1,
                "tensor 'ids'", "dtype I64 is not supported");
    expect_fail("unknown dtype", "{\"t\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, -1, "'t'",
                "unknown dtype");
    expect_fail("shape/bytes", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, "'t'",
                "span 8 bytes");
    expect_fail("f16 shape/bytes", "{\"t\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 8, -1, "'t'",
                "4 F16 elements");
    expect_fail("neg shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, -1, "'t'",
                "shape[0]");
    expect_fail("float shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, -1, "'t'",
                "shape[0]");
    expect_fail("shape overflow", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
                8, -1, "'t'", "overflow");
    expect_fail("9 dims", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, -1,
                "'t'", "dimensions");
    expect_fail("oob", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1,
                "tensor 't'", "past end of file");
    expect_fail("begin>end", "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, -1, "'t'",
                "begin <= end");
    expect_fail("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, -1, "overlap", NULL);
    expect_fail("metadata type", "{\"__metadata__\":{\"k\":5}}", 0, -1, "__metadata__", "'k'");
    char path[256];
    snprintf(path, sizeof path, "%s/tiny.safetensors", g_dir);
    write_file(path, "\x08\0\0", 3);
    CHECK(st_open(path) == NULL && strstr(sllm_last_error(), "too small"), "%s", sllm_last_error());
    CHECK(st_open("/nonexistent/model.safetensors") == NULL && strstr(sllm_last_error(), "/nonexistent/model"));
}

static void write_index(const char *dir, const char *json) {
    char p[256];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_file(p, json, strlen(json));
}

static void expect_dir_fail(const char *what, const char *dir, const char *want1, const char *want2) {
    err_clear();
    st_file *f = st_open(dir);
    const char *e = sllm_last_error();
    CHECK(f == NULL, "%s: opened", what);
    CHECK((!want1 || strstr(e, want1)) && (!want2 || strstr(e, want2)), "%s: message '%s'", what, e);
    st_close(f);
}

static void test_dirs(void) {
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/d", g_dir);
    mkdir(dir, 0755);
    expect_dir_fail("empty dir", dir, dir, "neither model.safetensors");
    // a shard made by our writer
    float v[2] = {1, 2};
    st_writer *w = st_writer_new();
    st_writer_add(w, "a", DT_F32, 1, (int64_t[]){2}, v);
    snprintf(p, sizeof p, "%s/s1.safetensors", dir);
    CHECK(st_writer_write(w, p) == SLLM_OK);
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    CHECK(st_writer_write(w, p) == SLLM_OK);
    st_writer_free(w);
    write_index(dir, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"missing.safetensors\"}}");
    expect_dir_fail("missing shard", dir, "missing.safetensors", "cannot open");
    write_index(dir, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\"}}");
    expect_dir_fail("missing tensor", dir, "tensor 'b' not found in shard 's1.safetensors'", "index.json");
    write_index(dir, "{\"weight_map\":{\"a\":\"s2.safetensors\"}, \"x\": [}");
    expect_dir_fail("bad index json", dir, "index.json", "JSON");
    write_index(dir, "{\"metadata\":{}}");
    expect_dir_fail("no weight_map", dir, "weight_map", NULL);
    write_index(dir, "{\"weight_map\":{\"a\":\"../d/s1.safetensors\"}}");
    expect_dir_fail("path in shard", dir, "plain file name", NULL);
    write_index(dir, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"a2\":\"s2.safetensors\"}}");
    expect_dir_fail("dup across shards", dir, "tensor 'a' appears in both", NULL);
    write_index(dir, "{\"weight_map\":{\"a\":\"s2.safetensors\"}}");
    st_file *f = st_open(dir);   // s2 alone is consistent with this index
    CHECK(f && st_count(f) == 1 && st_find(f, "a"), "%s", sllm_last_error());
    st_close(f);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/s1.safetensors", dir);
    char q[300];
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    CHECK(rename(p, q) == 0);
    f = st_open(dir);
    CHECK(f && st_count(f) == 1 && st_find(f, "a") && ((const float *)st_find(f, "a")->data)[1] == 2, "%s",
          sllm_last_error());
    st_close(f);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/sllm_st_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_read_python();
    test_write();
    test_corrupt();
    test_dirs();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_report();
}
