// Checkpoint container: bit-identical round trip, crash safety (abandoned writer, truncated files),
// corruption detected with clear errors; plus the atomic file helpers it is built on.
#include "test.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "train/checkpoint.h"
#include <jansson.h>
#include <sys/stat.h>

static char root[64];

static int save(int64_t step, const float *w, const float *m, int64_t n, json_t *state) {
    ckpt_writer *cw = ckpt_writer_begin(root, step);
    if (!cw) return -100;
    int rc = ckpt_add_tensor(cw, "model.w", w, n);
    if (!rc) rc = ckpt_add_tensor(cw, "adam.m.model.w", m, n);
    if (rc) { ckpt_abandon(cw); return rc; }
    ckpt_set_json(cw, state);
    return ckpt_commit(cw);
}

static int count_entries(const char *dir, const char *prefix) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c '^%s' > %s/.count 2>/dev/null", dir, prefix, dir);
    if (system(cmd) < 0) return -1;
    char p[128], *d;
    snprintf(p, sizeof p, "%s/.count", dir);
    size_t n;
    if (fileio_read_all(p, &d, &n)) return -1;
    int c = atoi(d);
    free(d);
    unlink(p);
    return c;
}

static void test_fileio(void) {
    char p[128], *d;
    size_t n;
    snprintf(p, sizeof p, "%s/sub/dir", root);
    CHECK(fileio_mkdirs(p) == 0);
    snprintf(p, sizeof p, "%s/sub/dir/f.bin", root);
    const char data[] = "abc\0def";
    CHECK(fileio_write_atomic(p, data, sizeof data) == 0);
    CHECK(fileio_read_all(p, &d, &n) == 0 && n == sizeof data && !memcmp(d, data, n) && d[n] == 0);
    free(d);
    CHECK(fileio_write_atomic(p, "x", 1) == 0 && fileio_read_all(p, &d, &n) == 0 && n == 1 && d[0] == 'x');
    free(d);
    snprintf(p, sizeof p, "%s/sub", root);
    CHECK(count_entries(p, "dir") == 1);
    snprintf(p, sizeof p, "%s/sub/dir", root);
    CHECK(count_entries(p, "f.bin.tmp") == 0);   // no temporary left behind
    snprintf(p, sizeof p, "%s/sub", root);
    CHECK(fileio_remove_tree(p) == 0 && access(p, F_OK) != 0);
    CHECK(fileio_read_all("/nonexistent/zz", &d, &n) == SLLM_ERR_IO && strstr(sllm_last_error(), "/nonexistent/zz"));
    CHECK(fileio_write_atomic("/nonexistent/dir/zz", "x", 1) == SLLM_ERR_IO);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/sllm_ckpt_XXXXXX");
    if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
    test_fileio();
    enum { N = 10007 };
    float *w = malloc(N * sizeof *w), *m = malloc(N * sizeof *m), *got = malloc(N * sizeof *got);
    rng_state r;
    rng_seed(&r, 5);
    for (int i = 0; i < N; i++) { w[i] = rng_normal(&r); m[i] = rng_float(&r) * 1e-30f; }
    w[0] = -0.0f;
    w[1] = 1e-45f;   // denormal: must survive bit for bit
    char ckroot[80];
    snprintf(ckroot, sizeof ckroot, "%s", root);
    CHECK(ckpt_open_latest(ckroot) == NULL && strstr(sllm_last_error(), "no checkpoint to resume from"),
          "%s", sllm_last_error());

    // step 10
    json_t *st = json_pack("{s:I, s:o, s:{s:I, s:I, s:I}, s:s}", "step", (json_int_t)10, "rng", ckpt_rng_to_json(&r),
                           "data", "epoch", (json_int_t)1, "index", (json_int_t)17, "offset", (json_int_t)3,
                           "config", "lr=1e-4");
    CHECK(save(10, w, m, N, st) == 0, "%s", sllm_last_error());
    ckpt_reader *rd = ckpt_open_latest(ckroot);
    CHECK(rd != NULL, "%s", sllm_last_error());
    if (rd) {
        CHECK(ckpt_step(rd) == 10);
        CHECK(ckpt_get_tensor(rd, "model.w", got, N) == 0 && !memcmp(got, w, N * sizeof *w));
        CHECK(ckpt_get_tensor(rd, "adam.m.model.w", got, N) == 0 && !memcmp(got, m, N * sizeof *m));
        CHECK(json_equal((json_t *)ckpt_json(rd), st));
        rng_state r2;
        CHECK(ckpt_rng_from_json(json_object_get(ckpt_json(rd), "rng"), &r2) == 0 && !memcmp(&r2, &r, sizeof r));
        CHECK(ckpt_get_tensor(rd, "model.w", got, N - 1) == SLLM_ERR_SHAPE && strstr(sllm_last_error(), "'model.w'"));
        CHECK(ckpt_get_tensor(rd, "nope", got, N) == SLLM_ERR_FORMAT && strstr(sllm_last_error(), "no tensor 'nope'"));
        CHECK(ckpt_has_tensor(rd, "model.w") && !ckpt_has_tensor(rd, "x"));
        ckpt_close(rd);
    }
    // the blobs are a plain safetensors file (inspectable by other tools)
    char p[160];
    snprintf(p, sizeof p, "%s/step-00000010/tensors.safetensors", ckroot);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && sb.st_size > 2 * N * 4);

    float *w10 = malloc(N * sizeof *w10);
    memcpy(w10, w, N * sizeof *w);
    // step 20 with other values
    for (int i = 0; i < N; i++) w[i] += 1;
    json_object_set_new(st, "step", json_integer(20));
    CHECK(save(20, w, m, N, st) == 0);
    rd = ckpt_open_latest(ckroot);
    CHECK(rd && ckpt_step(rd) == 20 && ckpt_get_tensor(rd, "model.w", got, N) == 0 && !memcmp(got, w, N * 4));
    ckpt_close(rd);

    // crash 1: a writer abandoned before commit -> latest still 20, temporary gone
    ckpt_writer *cw = ckpt_writer_begin(ckroot, 30);
    CHECK(cw != NULL);
    ckpt_add_tensor(cw, "model.w", w, N);
    ckpt_abandon(cw);
    CHECK(count_entries(ckroot, ".tmp-") == 0);
    // crash 2: the process died mid-write: a temporary directory with a truncated tensors file remains
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir %s/.tmp-step-00000030-abcdef && head -c 5000 %s/step-00000020/tensors.safetensors"
             " > %s/.tmp-step-00000030-abcdef/tensors.safetensors", ckroot, ckroot, ckroot);
    CHECK(system(cmd) == 0);
    rd = ckpt_open_latest(ckroot);
    CHECK(rd && ckpt_step(rd) == 20, "%s", sllm_last_error());
    ckpt_close(rd);
    snprintf(p, sizeof p, "%s/.tmp-step-00000030-abcdef", ckroot);
    rd = ckpt_open(p);
    CHECK(!rd && strstr(sllm_last_error(), "state.json: missing"), "%s", sllm_last_error());

    // a truncated file inside the latest checkpoint: clear error; the previous one still loads
    snprintf(p, sizeof p, "%s/step-00000020/tensors.safetensors", ckroot);
    CHECK(truncate(p, 20000) == 0);
    rd = ckpt_open_latest(ckroot);
    CHECK(!rd && strstr(sllm_last_error(), "step-00000020/tensors.safetensors") && strstr(sllm_last_error(), "truncated"),
          "%s", sllm_last_error());
    snprintf(p, sizeof p, "%s/step-00000010", ckroot);
    rd = ckpt_open(p);
    CHECK(rd && ckpt_step(rd) == 10 && ckpt_get_tensor(rd, "model.w", got, N) == 0 && !memcmp(got, w10, N * 4));
    ckpt_close(rd);

    // one flipped byte in the data: checksum error
    snprintf(p, sizeof p, "%s/step-00000010/tensors.safetensors", ckroot);
    FILE *f = fopen(p, "r+b");
    fseek(f, -100, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -100, SEEK_END);
    fputc(ch ^ 0x10, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/step-00000010", ckroot);
    rd = ckpt_open(p);
    CHECK(!rd && strstr(sllm_last_error(), "checksum") && strstr(sllm_last_error(), "corrupt"), "%s", sllm_last_error());
    // state.json garbage; latest naming something odd
    snprintf(p, sizeof p, "%s/step-00000010/state.json", ckroot);
    CHECK(fileio_write_atomic(p, "{\"format\": ", 11) == 0);
    snprintf(p, sizeof p, "%s/step-00000010", ckroot);
    rd = ckpt_open(p);
    CHECK(!rd && strstr(sllm_last_error(), "state.json:1: invalid JSON"), "%s", sllm_last_error());
    snprintf(p, sizeof p, "%s/latest", ckroot);
    CHECK(fileio_write_atomic(p, "../etc\n", 7) == 0);
    CHECK(!ckpt_open_latest(ckroot) && strstr(sllm_last_error(), "does not name a checkpoint"));

    // a fresh save repairs everything; re-saving the same step replaces it; prune keeps the newest
    for (int i = 0; i < N; i++) w[i] *= 2;
    CHECK(save(40, w, m, N, st) == 0);
    CHECK(save(40, m, w, N, st) == 0);
    rd = ckpt_open_latest(ckroot);
    CHECK(rd && ckpt_step(rd) == 40 && ckpt_get_tensor(rd, "model.w", got, N) == 0 && !memcmp(got, m, N * 4));
    ckpt_close(rd);
    CHECK(ckpt_prune(ckroot, 1) == 0);
    CHECK(count_entries(ckroot, "step-") == 1 && count_entries(ckroot, ".tmp-") == 0 && count_entries(ckroot, ".old-") == 0);
    // bad arguments
    cw = ckpt_writer_begin(ckroot, 50);
    CHECK(ckpt_add_tensor(cw, "a", w, 3) == 0 && ckpt_add_tensor(cw, "a", w, 3) == SLLM_ERR_ARG);
    CHECK(ckpt_commit(cw) == SLLM_ERR_ARG);   // a failed add fails the commit; nothing published
    rd = ckpt_open_latest(ckroot);
    CHECK(rd && ckpt_step(rd) == 40);
    ckpt_close(rd);
    json_t *bad = json_pack("[s, s]", "0", "1");
    CHECK(ckpt_rng_from_json(bad, &r) == SLLM_ERR_FORMAT);
    json_decref(bad);

    json_decref(st);
    free(w);
    free(m);
    free(got);
    free(w10);
    fileio_remove_tree(root);
    return test_report();
}
