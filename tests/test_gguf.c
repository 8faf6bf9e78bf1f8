// Tests for the dtype table, f16/bf16 conversions and the GGUF reader/writer.
// Oracles: tests/ref/gguf_dump.py (an independent stdlib-only GGUF parser) for the fixtures and for
// files our writer makes; exact arithmetic (ldexp, midpoints) for the half conversions.
#include "test.h"
#include "base/error.h"
#include "formats/gguf.h"
#include "tensor/dtype.h"
#include <dirent.h>
#include <float.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>

static char g_dir[64];

// ---- small helpers -----------------------------------------------------------------------------

// CRC-32 (IEEE) written out here because zlib is not linked; matches Python's zlib.crc32.
static uint32_t crc32_buf(uint32_t crc, const void *p, size_t n) {
    static uint32_t tab[256];
    if (!tab[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            tab[i] = c;
        }
    const uint8_t *s = p;
    crc = ~crc;
    while (n--) crc = tab[(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

typedef struct { char *p; size_t n, cap; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
}

// The same canonical dump tests/ref/gguf_dump.py prints, from our reader.
static char *dump(const gguf_file *f) {
    sbuf b = {0};
    sb_printf(&b, "header %u %u %" PRId64 " %" PRId64 " %zu\n", f->version, f->alignment, f->n_kv, f->n_tensors,
              f->data_offset);
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (int64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        sb_printf(&b, "kv %.*s %d ", (int)kv->key.len, kv->key.ptr, (int)kv->type);
        if (kv->type == GGUF_STRING) {
            sb_printf(&b, "%08x\n", crc32_buf(0, kv->v.s.ptr, kv->v.s.len));
        } else if (kv->type != GGUF_ARRAY) {
            sb_printf(&b, "%08x\n", crc32_buf(0, kv->data, (size_t)sz[kv->type]));
        } else if (kv->arr_type == GGUF_ARRAY) {
            sb_printf(&b, "9 %" PRIu64 " -\n", kv->arr_n);
        } else if (kv->arr_type == GGUF_STRING) {
            uint32_t c = 0;
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                gguf_str s = gguf_arr_str(kv, j);
                c = crc32_buf(c, &s.len, 8);
                c = crc32_buf(c, s.ptr, s.len);
            }
            sb_printf(&b, "8 %" PRIu64 " %08x\n", kv->arr_n, c);
        } else {
            sb_printf(&b, "%d %" PRIu64 " %08x\n", (int)kv->arr_type, kv->arr_n,
                      crc32_buf(0, kv->data, kv->arr_n * (size_t)sz[kv->arr_type]));
        }
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        sb_printf(&b, "tensor %s %d %d", t->name, (int)t->type, t->n_dims);
        for (int d = 0; d < t->n_dims; d++) sb_printf(&b, " %" PRId64, t->ne[d]);
        sb_printf(&b, " %" PRIu64 " %zu %08x\n", t->offset, t->nbytes, crc32_buf(0, t->data, t->nbytes));
    }
    return b.p;
}

static const char *python(void) {
    const char *py = getenv("SLLM_PYTHON");
    py = py ? py : "/usr/bin/python3";
    return access(py, X_OK) == 0 ? py : NULL;
}

// Runs the independent Python parser on `path`; NULL (and a SKIP) when Python is unavailable.
static char *py_dump(const char *path) {
    const char *py = python();
    if (!py) { SKIP("%s not found: cannot cross-check %s with tests/ref/gguf_dump.py", "python3", path); return NULL; }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s tests/ref/gguf_dump.py '%s'", py, path);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    sbuf b = {0};
    char line[4096];
    while (fgets(line, sizeof line, p)) sb_printf(&b, "%s", line);
    int rc = pclose(p);
    if (rc != 0) { free(b.p); CHECK(rc == 0, "gguf_dump.py failed on %s", path); return NULL; }
    return b.p ? b.p : strdup("");
}

static void cross_check(const char *path) {
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s: %s", path, sllm_last_error());
    if (!f) return;
    char *mine = dump(f), *ref = py_dump(path);
    if (ref) {
        CHECK(strcmp(mine, ref) == 0, "dump of %s differs from gguf_dump.py", path);
        if (strcmp(mine, ref)) fprintf(stderr, "--- ours:\n%.2000s\n--- python:\n%.2000s\n", mine, ref);
    }
    free(mine);
    free(ref);
    gguf_close(f);
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t k = n ? fwrite(p, 1, n, fp) : 0;
    fclose(fp);
    return k == n ? 0 : -1;
}

// ---- dtype -------------------------------------------------------------------------------------

static void test_dtype_table(void) {
    struct { int t; const char *name; int block, bytes; bool q; } want[] = {
        {DT_F32, "f32", 1, 4, false}, {DT_F16, "f16", 1, 2, false}, {DT_Q4_0, "q4_0", 32, 18, true},
        {DT_Q4_1, "q4_1", 32, 20, true}, {DT_Q5_0, "q5_0", 32, 22, true}, {DT_Q5_1, "q5_1", 32, 24, true},
        {DT_Q8_0, "q8_0", 32, 34, true}, {DT_Q8_1, "q8_1", 32, 36, true}, {DT_Q2_K, "q2_K", 256, 84, true},
        {DT_Q3_K, "q3_K", 256, 110, true}, {DT_Q4_K, "q4_K", 256, 144, true}, {DT_Q5_K, "q5_K", 256, 176, true},
        {DT_Q6_K, "q6_K", 256, 210, true}, {DT_Q8_K, "q8_K", 256, 292, true}, {DT_I8, "i8", 1, 1, false},
        {DT_I16, "i16", 1, 2, false}, {DT_I32, "i32", 1, 4, false}, {DT_I64, "i64", 1, 8, false},
        {DT_F64, "f64", 1, 8, false}, {DT_BF16, "bf16", 1, 2, false}, {DT_IQ4_NL, "iq4_nl", 32, 18, true},
        {DT_IQ4_XS, "iq4_xs", 256, 136, true},
        {DT_IQ2_XXS, "iq2_xxs", 256, 66, true}, {DT_IQ2_XS, "iq2_xs", 256, 74, true}, {DT_IQ2_S, "iq2_s", 256, 82, true},
        {DT_IQ3_XXS, "iq3_xxs", 256, 98, true}, {DT_IQ3_S, "iq3_s", 256, 110, true}, {DT_IQ1_S, "iq1_s", 256, 50, true},
        {DT_IQ1_M, "iq1_m", 256, 56, true},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const dtype_info *d = dtype_get(want[i].t);
        CHECK(d && strcmp(d->name, want[i].name) == 0 && d->block == want[i].block &&
              d->block_bytes == want[i].bytes && d->quantized == want[i].q, "dtype %s", want[i].name);
        CHECK(dtype_from_name(want[i].name) == want[i].t, "from_name %s", want[i].name);
    }
    CHECK(dtype_from_name("Q4_K") == DT_Q4_K && dtype_from_name("BF16") == DT_BF16 && dtype_from_name("F32") == DT_F32);
    CHECK(dtype_from_name("q4_2") == -1 && dtype_from_name("") == -1 && dtype_from_name(NULL) == -1);
    CHECK(dtype_get(31) == NULL && dtype_get(39) == NULL, "types past BF16 stay unknown");
    CHECK(dtype_get(4) == NULL && dtype_get(5) == NULL && dtype_get(-1) == NULL && dtype_get(DT_COUNT) == NULL &&
          dtype_get(1000) == NULL);
    CHECK(dtype_row_bytes(DT_Q4_0, 64) == 36 && dtype_row_bytes(DT_Q4_0, 33) == 0);
    CHECK(dtype_row_bytes(DT_Q4_K, 512) == 288 && dtype_row_bytes(DT_Q6_K, 256) == 210);
    CHECK(dtype_row_bytes(DT_F16, 10) == 20 && dtype_row_bytes(DT_F32, -4) == 0 && dtype_row_bytes(DT_F32, 0) == 0);
    CHECK(dtype_row_bytes((dtype)4, 32) == 0);
    CHECK(dtype_row_bytes(DT_F64, INT64_MAX) == 0, "overflow must give 0");
}

// Exact value of a half, computed independently of the code under test.
static double half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_half(void) {
    int bad_decode = 0, bad_round = 0, bad_mid = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) {
            if (m == 0) bad_decode += !(isinf(f) && (signbit(f) != 0) == (h >> 15));
            else bad_decode += !isnan(f), bad_round += ((f32_to_f16(f) & 0x7c00) != 0x7c00 || !(f32_to_f16(f) & 0x3ff));
            continue;
        }
        bad_decode += (double)f != half_value((uint16_t)h) || (signbit(f) != 0) != (h >> 15);
        bad_round += f32_to_f16(f) != h;
    }
    CHECK(bad_decode == 0 && bad_round == 0, "%d decode / %d round-trip mismatches", bad_decode, bad_round);
    // ties between neighbours go to the even one; a hair off the tie goes to the nearer one
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float mid = (float)((half_value((uint16_t)h) + half_value((uint16_t)(h + 1))) / 2);   // exact in f32
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        bad_mid += f32_to_f16(mid) != even;
        bad_mid += f32_to_f16(nextafterf(mid, INFINITY)) != h + 1;
        bad_mid += f32_to_f16(nextafterf(mid, 0)) != h;
        bad_mid += f32_to_f16(-mid) != (even | 0x8000);
    }
    CHECK(bad_mid == 0, "%d midpoint rounding mismatches", bad_mid);
    CHECK(f32_to_f16(65520.0f) == 0x7c00 && f32_to_f16(nextafterf(65520.0f, 0)) == 0x7bff);
    CHECK(f32_to_f16(1e10f) == 0x7c00 && f32_to_f16(-INFINITY) == 0xfc00 && f32_to_f16(-0.0f) == 0x8000);
    CHECK(f32_to_f16(ldexpf(1, -25)) == 0 && f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 1);
    CHECK(f32_to_f16(FLT_MIN) == 0 && f32_to_f16(1e-45f) == 0);
    uint16_t hn = f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "NaN -> %04x", hn);

    int bad_bf = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf16_to_f32((uint16_t)h);
        uint32_t u = h << 16;
        float g;
        memcpy(&g, &u, 4);
        if (isnan(g)) { bad_bf += !isnan(f) || !isnan(bf16_to_f32(f32_to_bf16(f))); continue; }
        bad_bf += memcmp(&f, &g, 4) != 0 || f32_to_bf16(f) != h;
    }
    CHECK(bad_bf == 0, "%d bf16 mismatches", bad_bf);
    CHECK(f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80, "tie to even (down)");
    CHECK(f32_to_bf16(1.0f + ldexpf(1, -7) + ldexpf(1, -8)) == 0x3f82, "tie to even (up)");
    CHECK(f32_to_bf16(nextafterf(1.0f + ldexpf(1, -8), 2)) == 0x3f81);
    CHECK(f32_to_bf16(FLT_MAX) == 0x7f80 && f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(isnan(bf16_to_f32(f32_to_bf16(NAN))) && isnan(bf16_to_f32(f32_to_bf16(-NAN))));
}

// ---- reading the fixtures ------------------------------------------------------------------------

static void test_stories(void) {
    char buf[512];
    const char *path = test_fixture("models/stories260K.gguf", buf, sizeof buf);
    if (!path) { SKIP("fixture models/stories260K.gguf absent"); return; }
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s", sllm_last_error());
    if (!f) return;
    int err = 0;
    CHECK(f->version == 3 && f->alignment == 32 && f->n_tensors == 48 && f->n_kv == 19);
    char *arch = gguf_get_str(f, "general.architecture");
    CHECK(arch && strcmp(arch, "llama") == 0, "arch %s", arch ? arch : "(null)");
    free(arch);
    CHECK(gguf_get_int(f, "llama.block_count", -1, &err) == 5);
    CHECK(gguf_get_int(f, "llama.embedding_length", -1, &err) == 64);
    CHECK(gguf_get_int(f, "llama.attention.head_count", -1, &err) == 8);
    CHECK(gguf_get_int(f, "llama.attention.head_count_kv", -1, &err) == 4);
    CHECK(gguf_get_int(f, "llama.feed_forward_length", -1, &err) == 172);
    CHECK_CLOSE(gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", 0, &err), 1e-5, 1e-6);
    CHECK(gguf_get_float(f, "llama.rope.freq_base", 10000.0, &err) == 10000.0 && !gguf_find(f, "llama.rope.freq_base"));
    CHECK(err == 0);
    CHECK(gguf_get_int(f, "llama.nonexistent", 42, &err) == 42 && err == 0);
    gguf_get_int(f, "general.architecture", 0, &err);
    CHECK(err != 0 && strstr(sllm_last_error(), "general.architecture"), "%s", sllm_last_error());
    err = 0;
    gguf_get_bool(f, "llama.block_count", false, &err);
    CHECK(err != 0);
    const gguf_kv *tok = gguf_find(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == GGUF_ARRAY && tok->arr_type == GGUF_STRING && tok->arr_n == 512);
    if (tok) {
        gguf_str s0 = gguf_arr_str(tok, 0), s1 = gguf_arr_str(tok, 1), bad = gguf_arr_str(tok, 512);
        CHECK(s0.len == 5 && memcmp(s0.ptr, "<unk>", 5) == 0, "token 0 '%.*s'", (int)s0.len, s0.ptr);
        CHECK(s1.len == 3 && memcmp(s1.ptr, "<s>", 3) == 0);
        CHECK(bad.ptr == NULL && bad.len == 0);
    }
    const gguf_kv *sc = gguf_find(f, "tokenizer.ggml.scores");
    const gguf_kv *tt = gguf_find(f, "tokenizer.ggml.token_type");
    CHECK(sc && sc->arr_type == GGUF_F32 && sc->arr_n == 512 && tt && tt->arr_type == GGUF_I32);
    if (tt) CHECK(gguf_arr_num(tt, 0) == 2 && gguf_arr_num(tt, 1) == 3, "token types of <unk>, <s>");
    int64_t params = 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        CHECK(t->type == DT_F32 && t->data && ((const uint8_t *)t->data - f->map) % 32 == 0);
    }
    CHECK(params == 292800, "params %" PRId64, params);
    const gguf_tensor *e = gguf_find_tensor(f, "token_embd.weight");
    CHECK(e && e->n_dims == 2 && e->ne[0] == 64 && e->ne[1] == 512 && e->nbytes == 64 * 512 * 4);
    const gguf_tensor *dn = gguf_find_tensor(f, "blk.4.ffn_down.weight");
    CHECK(dn && dn->ne[0] == 172 && dn->ne[1] == 64);
    const gguf_tensor *k = gguf_find_tensor(f, "blk.0.attn_k.weight");
    CHECK(k && k->ne[0] == 64 && k->ne[1] == 32, "kv heads 4 x head_dim 8");
    CHECK(gguf_find_tensor(f, "output.weight") != NULL && gguf_find_tensor(f, "blk.5.attn_q.weight") == NULL);
    gguf_close(f);
    cross_check(path);
}

static void test_vocab(void) {
    static const char *names[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3", "deepseek-llm", "falcon",
                                  "starcoder"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char rel[128], buf[512];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", names[i]);
        const char *path = test_fixture(rel, buf, sizeof buf);
        if (!path) { SKIP("fixture %s absent", rel); continue; }
        gguf_file *f = gguf_open(path);
        CHECK(f != NULL, "%s", sllm_last_error());
        if (!f) continue;
        const gguf_kv *tok = gguf_find(f, "tokenizer.ggml.tokens");
        CHECK(tok && tok->arr_type == GGUF_STRING && tok->arr_n >= 32000, "%s tokens", names[i]);
        char *model = gguf_get_str(f, "tokenizer.ggml.model");
        CHECK(model && (strcmp(model, "llama") == 0 || strcmp(model, "gpt2") == 0), "%s model %s", names[i], model);
        free(model);
        CHECK(f->n_tensors == 0);
        gguf_close(f);
        cross_check(path);
    }
}

// ---- writer ------------------------------------------------------------------------------------

static void fill_random(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; p[i] = (uint8_t)(seed >> 24); }
}

static void test_writer_roundtrip(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/rt.gguf", g_dir);
    gguf_writer *w = gguf_writer_new();
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000; int64_t i64 = -(1LL << 60);
    double f64 = 3.141592653589793; uint8_t bt = 1; const char *str = "h\xc3\xa9llo";
    gguf_set_scalar(w, "t.u8", GGUF_U8, &u8);
    gguf_set_scalar(w, "t.i8", GGUF_I8, &i8);
    gguf_set_scalar(w, "t.u16", GGUF_U16, &u16);
    gguf_set_scalar(w, "t.i16", GGUF_I16, &i16);
    gguf_set_u32(w, "t.u32", 4000000000u);
    gguf_set_i32(w, "t.i32", -2000000000);
    gguf_set_f32(w, "t.f32", 0.25f);
    gguf_set_bool(w, "t.bool", true);
    gguf_set_str(w, "t.str", "replaced below");
    gguf_set_scalar(w, "t.str", GGUF_STRING, &str);
    gguf_set_u64(w, "t.u64", UINT64_MAX);
    gguf_set_scalar(w, "t.i64", GGUF_I64, &i64);
    gguf_set_scalar(w, "t.f64", GGUF_F64, &f64);
    gguf_set_scalar(w, "t.bool2", GGUF_BOOL, &bt);
    uint8_t au8[3] = {1, 2, 255}; int8_t ai8[2] = {-1, 1}; uint16_t au16[2] = {7, 65535}; int16_t ai16[1] = {-7};
    uint32_t au32[4] = {1, 2, 3, 4000000000u}; int32_t ai32[3] = {-1, 0, 1}; float af32[2] = {1.5f, -2.5f};
    uint8_t abool[3] = {1, 0, 1}; uint64_t au64[2] = {0, UINT64_MAX}; int64_t ai64[2] = {INT64_MIN, 5};
    double af64[2] = {1e300, -1e-300};
    const char *astr[4] = {"a", "", "\xe4\xb8\xad\xe6\x96\x87", "tokens with spaces"};
    gguf_set_array(w, "a.u8", GGUF_U8, au8, 3);
    gguf_set_array(w, "a.i8", GGUF_I8, ai8, 2);
    gguf_set_array(w, "a.u16", GGUF_U16, au16, 2);
    gguf_set_array(w, "a.i16", GGUF_I16, ai16, 1);
    gguf_set_array(w, "a.u32", GGUF_U32, au32, 4);
    gguf_set_array(w, "a.i32", GGUF_I32, ai32, 3);
    gguf_set_array(w, "a.f32", GGUF_F32, af32, 2);
    gguf_set_array(w, "a.bool", GGUF_BOOL, abool, 3);
    gguf_set_array(w, "a.u64", GGUF_U64, au64, 2);
    gguf_set_array(w, "a.i64", GGUF_I64, ai64, 2);
    gguf_set_array(w, "a.f64", GGUF_F64, af64, 2);
    gguf_set_array(w, "a.str", GGUF_STRING, astr, 4);
    gguf_set_array(w, "a.empty", GGUF_F32, NULL, 0);
    struct { const char *name; dtype t; int nd; int64_t ne[4]; } ts[] = {
        {"w.f32", DT_F32, 3, {5, 3, 2, 1}}, {"w.f16", DT_F16, 2, {7, 3, 1, 1}}, {"w.bf16", DT_BF16, 1, {9, 1, 1, 1}},
        {"w.q4_0", DT_Q4_0, 2, {64, 3, 1, 1}}, {"w.q8_0", DT_Q8_0, 2, {32, 5, 1, 1}},
        {"w.q4_K", DT_Q4_K, 2, {512, 2, 1, 1}}, {"w.q6_K", DT_Q6_K, 1, {256, 1, 1, 1}},
        {"w.i32", DT_I32, 1, {3, 1, 1, 1}}, {"w.4d", DT_F32, 4, {2, 3, 4, 5}}, {"w.zero", DT_F16, 1, {4, 1, 1, 1}},
    };
    enum { NT = sizeof ts / sizeof ts[0] };
    uint8_t *data[NT];
    size_t nbytes[NT];
    for (int i = 0; i < NT; i++) {
        int64_t rows = ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3];
        nbytes[i] = dtype_row_bytes(ts[i].t, ts[i].ne[0]) * (size_t)rows;
        data[i] = malloc(nbytes[i]);
        fill_random(data[i], nbytes[i], (uint32_t)i + 1);
        if (i == NT - 1) memset(data[i], 0, nbytes[i]);
        gguf_add_tensor(w, ts[i].name, ts[i].t, ts[i].nd, ts[i].ne, i == NT - 1 ? NULL : data[i]);
    }
    CHECK(gguf_writer_write(w, path) == SLLM_OK, "%s", sllm_last_error());
    CHECK(gguf_writer_write(w, path) == SLLM_OK, "overwrite: %s", sllm_last_error());
    gguf_writer_free(w);

    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s", sllm_last_error());
    if (f) {
        int err = 0;
        CHECK(f->version == 3 && f->n_kv == 26 && f->n_tensors == NT, "n_kv %" PRId64, f->n_kv);
        CHECK(gguf_get_int(f, "t.u8", 0, &err) == 200 && gguf_get_int(f, "t.i8", 0, &err) == -100);
        CHECK(gguf_get_int(f, "t.u16", 0, &err) == 60000 && gguf_get_int(f, "t.i16", 0, &err) == -30000);
        CHECK(gguf_get_int(f, "t.u32", 0, &err) == 4000000000LL && gguf_get_int(f, "t.i32", 0, &err) == -2000000000);
        CHECK(gguf_get_float(f, "t.f32", 0, &err) == 0.25 && gguf_get_float(f, "t.f64", 0, &err) == f64);
        CHECK(gguf_get_bool(f, "t.bool", false, &err) && gguf_get_bool(f, "t.bool2", false, &err));
        CHECK(gguf_get_int(f, "t.i64", 0, &err) == i64);
        CHECK(err == 0);
        CHECK(gguf_find(f, "t.u64")->v.u == UINT64_MAX);
        gguf_get_int(f, "t.u64", 0, &err);
        CHECK(err != 0, "u64 beyond i64 must be refused by gguf_get_int");
        char *s = gguf_get_str(f, "t.str");
        CHECK(s && strcmp(s, str) == 0);
        free(s);
        const gguf_kv *a;
        CHECK((a = gguf_find(f, "a.u8")) && a->arr_n == 3 && gguf_arr_num(a, 2) == 255);
        CHECK((a = gguf_find(f, "a.i8")) && gguf_arr_num(a, 0) == -1);
        CHECK((a = gguf_find(f, "a.u16")) && gguf_arr_num(a, 1) == 65535);
        CHECK((a = gguf_find(f, "a.i16")) && gguf_arr_num(a, 0) == -7);
        CHECK((a = gguf_find(f, "a.u32")) && gguf_arr_num(a, 3) == 4000000000.0);
        CHECK((a = gguf_find(f, "a.i32")) && gguf_arr_num(a, 0) == -1 && gguf_arr_num(a, 3) == 0);
        CHECK((a = gguf_find(f, "a.f32")) && gguf_arr_num(a, 1) == -2.5);
        CHECK((a = gguf_find(f, "a.bool")) && gguf_arr_num(a, 0) == 1 && gguf_arr_num(a, 1) == 0);
        CHECK((a = gguf_find(f, "a.u64")) && gguf_arr_num(a, 1) == (double)UINT64_MAX);
        CHECK((a = gguf_find(f, "a.i64")) && gguf_arr_num(a, 0) == (double)INT64_MIN);
        CHECK((a = gguf_find(f, "a.f64")) && gguf_arr_num(a, 0) == 1e300 && gguf_arr_num(a, 1) == -1e-300);
        CHECK((a = gguf_find(f, "a.empty")) && a->arr_n == 0 && a->arr_type == GGUF_F32);
        CHECK((a = gguf_find(f, "a.str")) && a->arr_n == 4);
        for (int i = 0; a && i < 4; i++) {
            gguf_str e = gguf_arr_str(a, (uint64_t)i);
            CHECK(e.len == strlen(astr[i]) && memcmp(e.ptr, astr[i], e.len) == 0, "a.str[%d]", i);
        }
        for (int i = 0; i < NT; i++) {
            const gguf_tensor *t = gguf_find_tensor(f, ts[i].name);
            CHECK(t && t->type == ts[i].t && t->n_dims == ts[i].nd && t->nbytes == nbytes[i], "%s", ts[i].name);
            if (!t) continue;
            CHECK(memcmp(t->ne, ts[i].ne, sizeof t->ne) == 0 && memcmp(t->data, data[i], nbytes[i]) == 0,
                  "%s data", ts[i].name);
            CHECK(((const uint8_t *)t->data - f->map) % 32 == 0, "%s aligned", ts[i].name);
        }
        gguf_close(f);
    }
    cross_check(path);

    // alignment from general.alignment; the same tensors land at multiples of 64
    snprintf(path, sizeof path, "%s/rt64.gguf", g_dir);
    w = gguf_writer_new();
    gguf_set_u32(w, "general.alignment", 64);
    for (int i = 0; i < NT; i++) gguf_add_tensor(w, ts[i].name, ts[i].t, ts[i].nd, ts[i].ne, data[i]);
    CHECK(gguf_writer_write(w, path) == SLLM_OK, "%s", sllm_last_error());
    gguf_writer_free(w);
    f = gguf_open(path);
    CHECK(f && f->alignment == 64 && f->data_offset % 64 == 0);
    for (int64_t i = 0; f && i < f->n_tensors; i++)
        CHECK(f->tensors[i].offset % 64 == 0 && memcmp(f->tensors[i].data, data[i], nbytes[i]) == 0);
    gguf_close(f);
    cross_check(path);
    for (int i = 0; i < NT; i++) free(data[i]);

    // no temporary files are left behind
    DIR *d = opendir(g_dir);
    int tmp = 0;
    for (struct dirent *de; d && (de = readdir(d));) tmp += strstr(de->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    CHECK(tmp == 0, "%d temporary files left", tmp);
}

static void test_writer_errors(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/bad.gguf", g_dir);
    int64_t ne[2] = {33, 2};
    gguf_writer *w = gguf_writer_new();
    gguf_add_tensor(w, "x", DT_Q4_0, 2, ne, NULL);
    CHECK(gguf_writer_write(w, path) != SLLM_OK && strstr(sllm_last_error(), "'x'") &&
          strstr(sllm_last_error(), "block size"), "%s", sllm_last_error());
    CHECK(access(path, F_OK) != 0, "nothing written on error");
    gguf_writer_free(w);
    w = gguf_writer_new();
    ne[0] = 4;
    gguf_add_tensor(w, "x", DT_F32, 2, ne, NULL);
    gguf_add_tensor(w, "x", DT_F32, 2, ne, NULL);
    CHECK(gguf_writer_write(w, path) != SLLM_OK && strstr(sllm_last_error(), "twice"), "%s", sllm_last_error());
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_set_u32(w, "general.alignment", 48);
    CHECK(gguf_writer_write(w, path) != SLLM_OK && strstr(sllm_last_error(), "alignment"), "%s", sllm_last_error());
    gguf_writer_free(w);
    w = gguf_writer_new();
    CHECK(gguf_writer_write(w, "/nonexistent-dir/x.gguf") == SLLM_ERR_IO &&
          strstr(sllm_last_error(), "/nonexistent-dir/x.gguf"), "%s", sllm_last_error());
    gguf_writer_free(w);
}

static void test_copy_kv(void) {
    char buf[512], path[128];
    const char *src = test_fixture("models/stories260K.gguf", buf, sizeof buf);
    if (!src) { SKIP("fixture models/stories260K.gguf absent"); return; }
    gguf_file *f = gguf_open(src);
    if (!f) { CHECK(f != NULL); return; }
    snprintf(path, sizeof path, "%s/copy.gguf", g_dir);
    gguf_writer *w = gguf_writer_new();
    gguf_copy_kv(w, f, NULL);
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
    }
    CHECK(gguf_writer_write(w, path) == SLLM_OK, "%s", sllm_last_error());
    gguf_writer_free(w);
    // a full copy is byte-identical to the original (same layout rules as llama.cpp's writer)
    size_t n1 = 0, n2 = 0;
    uint8_t *a = (uint8_t *)test_read_file(src, &n1), *b = (uint8_t *)test_read_file(path, &n2);
    CHECK(a && b && n1 == n2 && memcmp(a, b, n1) == 0, "copy differs: %zu vs %zu bytes", n1, n2);
    free(a);
    free(b);
    w = gguf_writer_new();
    gguf_copy_kv(w, f, "tokenizer.");
    CHECK(gguf_writer_write(w, path) == SLLM_OK, "%s", sllm_last_error());
    gguf_writer_free(w);
    gguf_file *g = gguf_open(path);
    CHECK(g && g->n_kv == 10 && g->n_tensors == 0 && !gguf_find(g, "tokenizer.ggml.tokens") &&
          gguf_find(g, "llama.block_count"));
    gguf_close(g);
    gguf_close(f);
}

// ---- corrupt files -----------------------------------------------------------------------------

typedef struct { uint8_t *p; size_t n, cap; } bb;
static void bb_put(bb *b, const void *s, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bb *b, const char *s) { bb_u64(b, strlen(s)); bb_put(b, s, strlen(s)); }
static void bb_head(bb *b, uint32_t ver, uint64_t nt, uint64_t nkv) {
    bb_put(b, "GGUF", 4); bb_u32(b, ver); bb_u64(b, nt); bb_u64(b, nkv);
}
static void bb_kv_u32(bb *b, const char *k, uint32_t v) { bb_str(b, k); bb_u32(b, GGUF_U32); bb_u32(b, v); }
static void bb_tensor(bb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(b, name); bb_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) bb_u64(b, ne[i]);
    bb_u32(b, type); bb_u64(b, off);
}
static void bb_data(bb *b, size_t n) {   // pad to 32 and append n bytes
    static const uint8_t z[4096];
    bb_put(b, z, (32 - b->n % 32) % 32);
    while (n) { size_t k = n < sizeof z ? n : sizeof z; bb_put(b, z, k); n -= k; }
}

// Writes b, expects gguf_open to fail with a message holding the path and every `want` substring.
static void expect_fail(bb *b, const char *what, const char *want1, const char *want2) {
    char path[128];
    snprintf(path, sizeof path, "%s/corrupt.gguf", g_dir);
    write_file(path, b->p, b->n);
    err_clear();
    gguf_file *f = gguf_open(path);
    const char *e = sllm_last_error();
    CHECK(f == NULL, "%s: opened a corrupt file", what);
    CHECK(strstr(e, path) && (!want1 || strstr(e, want1)) && (!want2 || strstr(e, want2)), "%s: message '%s'", what, e);
    gguf_close(f);
    free(b->p);
    *b = (bb){0};
}

static void test_corrupt_handmade(void) {
    bb b = {0};
    uint64_t ne2[2] = {32, 2}, ne1[1] = {32};
    bb_head(&b, 3, 0, 0); b.p[0] = 'X'; expect_fail(&b, "magic", "magic", NULL);
    bb_head(&b, 1, 0, 0); expect_fail(&b, "v1", "unsupported GGUF version 1", NULL);
    bb_head(&b, 4, 0, 0); expect_fail(&b, "v4", "unsupported GGUF version 4", NULL);
    bb_head(&b, 0x03000000, 0, 0); expect_fail(&b, "big-endian", "unsupported GGUF version", "big-endian");
    bb_head(&b, 3, 0, 1ull << 60); expect_fail(&b, "huge n_kv", "metadata count", "exceeds file size");
    bb_head(&b, 3, 1ull << 60, 0); expect_fail(&b, "huge n_tensors", "tensor count", "exceeds file size");
    bb_head(&b, 3, 0, 1); bb_u64(&b, 9000000000000000000ull); bb_data(&b, 64);
    expect_fail(&b, "key length", "metadata key #0", "string length 9000000000000000000 exceeds file size");
    bb_head(&b, 3, 0, 2); bb_kv_u32(&b, "a", 1); bb_str(&b, "b"); bb_u32(&b, GGUF_STRING); bb_u64(&b, 1ull << 62);
    bb_data(&b, 64); expect_fail(&b, "value length", "metadata key #1 ('b')", "string length");
    bb_head(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, 13); bb_data(&b, 64);
    expect_fail(&b, "value type", "'k'", "unknown value type 13");
    bb_head(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, GGUF_ARRAY); bb_u32(&b, 77); bb_u64(&b, 1); bb_data(&b, 64);
    expect_fail(&b, "array type", "'k'", "element type 77");
    bb_head(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, GGUF_ARRAY); bb_u32(&b, GGUF_U32); bb_u64(&b, 1ull << 61);
    bb_data(&b, 64); expect_fail(&b, "array count", "'k'", "exceeds file size");
    bb_head(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, GGUF_ARRAY); bb_u32(&b, GGUF_STRING); bb_u64(&b, 3);
    bb_str(&b, "x"); bb_u64(&b, 1ull << 40); bb_data(&b, 64); expect_fail(&b, "array string", "'k'", "string #1");
    bb_head(&b, 3, 0, 1); bb_str(&b, "k");
    bb_u32(&b, GGUF_ARRAY);
    for (int i = 0; i < 12; i++) { bb_u32(&b, GGUF_ARRAY); bb_u64(&b, 1); }
    bb_data(&b, 64); expect_fail(&b, "deep nesting", "'k'", "nested deeper");
    bb_head(&b, 3, 0, 2); bb_kv_u32(&b, "a", 1); bb_kv_u32(&b, "a", 2); expect_fail(&b, "dup key", "duplicate", "'a'");
    bb_head(&b, 3, 0, 1); bb_kv_u32(&b, "general.alignment", 48); expect_fail(&b, "alignment", "general.alignment", NULL);
    bb_head(&b, 3, 0, 1); bb_str(&b, "general.alignment"); bb_u32(&b, GGUF_STRING); bb_str(&b, "32");
    expect_fail(&b, "alignment type", "general.alignment", "string");

    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0); bb_data(&b, 64);
    expect_fail(&b, "n_dims 5", "tensor #0 't'", "n_dims 5");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 0, NULL, 0, 0); bb_data(&b, 64); expect_fail(&b, "n_dims 0", "n_dims 0", NULL);
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, (uint64_t[]){4, 0}, 0, 0); bb_data(&b, 64);
    expect_fail(&b, "ne 0", "'t'", "ne[1] = 0");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 3, (uint64_t[]){1ull << 40, 1ull << 20, 1ull << 10}, 0, 0); bb_data(&b, 64);
    expect_fail(&b, "ne overflow", "'t'", "overflow");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 1, (uint64_t[]){1ull << 62}, DT_F64, 0); bb_data(&b, 64);
    expect_fail(&b, "bytes overflow", "'t'", "overflow");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, ne2, 99, 0); bb_data(&b, 512);
    expect_fail(&b, "dtype 99", "'t'", "unknown dtype id 99");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, ne2, 4, 0); bb_data(&b, 512);
    expect_fail(&b, "dtype 4", "'t'", "unknown dtype id 4");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, (uint64_t[]){33, 1}, DT_Q4_0, 0); bb_data(&b, 512);
    expect_fail(&b, "block multiple", "'t'", "block size 32");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, (uint64_t[]){128, 2}, DT_IQ4_XS, 0); bb_data(&b, 512);
    expect_fail(&b, "iq4_xs block multiple", "'t'", "not a multiple of the iq4_xs block size 256");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "blk.0.ffn_up.weight", 2, (uint64_t[]){256, 4}, DT_IQ4_XS, 0);
    bb_data(&b, 4 * 136 - 1);
    expect_fail(&b, "iq4_xs truncated", "tensor 'blk.0.ffn_up.weight': data extends past end of file", NULL);
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, (uint64_t[]){64, 9}, DT_IQ4_NL, 0); bb_data(&b, 9 * 36 - 4);
    expect_fail(&b, "iq4_nl truncated", "'t'", "past end of file");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, ne2, DT_F32, 16); bb_data(&b, 512);
    expect_fail(&b, "misaligned", "'t'", "not a multiple of the alignment 32");
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "blk.0.attn_q.weight", 2, ne2, DT_F32, 0); bb_data(&b, 255);
    expect_fail(&b, "oob", "tensor 'blk.0.attn_q.weight': data extends past end of file", NULL);
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "t", 2, ne2, DT_F32, 1ull << 63); bb_data(&b, 512);
    expect_fail(&b, "oob offset", "'t'", "past end of file");
    bb_head(&b, 3, 2, 0); bb_tensor(&b, "t", 2, ne2, DT_F32, 0); bb_tensor(&b, "u", 1, ne1, DT_F32, 128);
    bb_data(&b, 512); expect_fail(&b, "overlap", "overlaps", NULL);
    bb_head(&b, 3, 2, 0); bb_tensor(&b, "t", 1, ne1, DT_F32, 0); bb_tensor(&b, "t", 1, ne1, DT_F32, 128);
    bb_data(&b, 512); expect_fail(&b, "dup tensor", "duplicate tensor name 't'", NULL);
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = 0;
    bb_head(&b, 3, 1, 0); bb_tensor(&b, longname, 1, ne1, DT_F32, 0); bb_data(&b, 512);
    expect_fail(&b, "long name", "tensor #0", "name of length 64");
    bb_head(&b, 3, 0, 0); b.n = 20; expect_fail(&b, "tiny", "too small", NULL);

    // valid handmade edge cases: v2, arrays of arrays (skipped, readable around), empty arrays
    bb_head(&b, 2, 1, 3);
    bb_str(&b, "nested"); bb_u32(&b, GGUF_ARRAY); bb_u32(&b, GGUF_ARRAY); bb_u64(&b, 2);
    bb_u32(&b, GGUF_STRING); bb_u64(&b, 2); bb_str(&b, "ab"); bb_str(&b, "c");
    bb_u32(&b, GGUF_U16); bb_u64(&b, 3);
    uint16_t three[3] = {1, 2, 3};
    bb_put(&b, three, 6);
    bb_str(&b, "empty"); bb_u32(&b, GGUF_ARRAY); bb_u32(&b, GGUF_STRING); bb_u64(&b, 0);
    bb_kv_u32(&b, "after", 77);
    bb_tensor(&b, "t", 1, ne1, DT_F32, 0); bb_data(&b, 128);
    char path[128];
    snprintf(path, sizeof path, "%s/v2.gguf", g_dir);
    write_file(path, b.p, b.n);
    free(b.p);
    b = (bb){0};
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s", sllm_last_error());
    if (f) {
        const gguf_kv *n = gguf_find(f, "nested"), *e = gguf_find(f, "empty");
        CHECK(f->version == 2 && n && n->arr_type == GGUF_ARRAY && n->arr_n == 2 && gguf_arr_str(n, 0).ptr == NULL);
        CHECK(e && e->arr_n == 0 && gguf_get_int(f, "after", 0, NULL) == 77 && gguf_find_tensor(f, "t"));
        // nested arrays survive gguf_copy_kv byte for byte
        gguf_writer *w = gguf_writer_new();
        gguf_copy_kv(w, f, NULL);
        char p2[160];
        snprintf(p2, sizeof p2, "%s/v2copy.gguf", g_dir);
        CHECK(gguf_writer_write(w, p2) == SLLM_OK);
        gguf_writer_free(w);
        cross_check(p2);
        gguf_file *g = gguf_open(p2);
        const gguf_kv *n2 = g ? gguf_find(g, "nested") : NULL;
        CHECK(n2 && n2->arr_n == 2 && memcmp(n2->data, n->data, 12 + 10 + 9 + 12 + 6) == 0);
        gguf_close(g);
        gguf_close(f);
    }
    cross_check(path);

    // missing file, directory
    CHECK(gguf_open("/nonexistent/model.gguf") == NULL && strstr(sllm_last_error(), "/nonexistent/model.gguf"));
    CHECK(gguf_open(g_dir) == NULL && strstr(sllm_last_error(), g_dir));
}

// Truncates real files at many points: every one must fail cleanly with a message.
static void truncate_sweep(const char *src, size_t step, size_t upto, int *bad) {
    size_t n = 0;
    uint8_t *p = (uint8_t *)test_read_file(src, &n);
    if (!p) return;
    gguf_file *full = gguf_open(src);
    size_t data_off = full ? full->data_offset : n, need = data_off;   // bytes a valid file must hold
    bool has_tensors = full && full->n_tensors > 0;
    for (int64_t i = 0; full && i < full->n_tensors; i++)
        if (data_off + full->tensors[i].offset + full->tensors[i].nbytes > need)
            need = data_off + full->tensors[i].offset + full->tensors[i].nbytes;
    gguf_close(full);
    char path[128];
    snprintf(path, sizeof path, "%s/trunc.gguf", g_dir);
    size_t cuts[4096];
    int nc = 0;
    for (size_t c = 0; c < upto && c < n && nc < 4000; c += step) cuts[nc++] = c;
    if (has_tensors && data_off < n) {    // a few cuts inside the data section
        cuts[nc++] = data_off; cuts[nc++] = data_off + 1; cuts[nc++] = (data_off + n) / 2; cuts[nc++] = need - 1;
    }
    for (int i = 0; i < nc; i++) {
        // a tensorless file may end right after its header; the padding after the last tensor is optional
        if (cuts[i] >= (has_tensors ? need : data_off)) continue;
        write_file(path, p, cuts[i]);
        err_clear();
        gguf_file *f = gguf_open(path);
        if (f || !strstr(sllm_last_error(), path)) {
            if (*bad < 5) fprintf(stderr, "cut at %zu of %s: %s\n", cuts[i], src, f ? "opened" : sllm_last_error());
            (*bad)++;
        }
        gguf_close(f);
    }
    free(p);
}

static void test_truncation(void) {
    char buf[512], rt[128];
    int bad = 0;
    const char *src = test_fixture("models/stories260K.gguf", buf, sizeof buf);
    if (src) truncate_sweep(src, 7, 16384, &bad);
    else SKIP("fixture models/stories260K.gguf absent");
    snprintf(rt, sizeof rt, "%s/rt.gguf", g_dir);   // the writer round-trip file: every type, cut at every byte
    truncate_sweep(rt, 1, 1 << 20, &bad);
    src = test_fixture("vocab/ggml-vocab-gpt-2.gguf", buf, sizeof buf);
    if (src) truncate_sweep(src, 9973, 1 << 21, &bad);
    CHECK(bad == 0, "%d truncated files were not refused cleanly", bad);
}

// Every pointer an opened file hands out must lie inside its mapping.
static bool in_map(const gguf_file *f, const void *p, uint64_t n) {
    const uint8_t *q = p;
    return q >= f->map && q <= f->map + f->map_size && n <= (uint64_t)(f->map + f->map_size - q);
}

// Random byte corruptions of the header region: each file either opens with every pointer in bounds
// or is refused with a message; never a crash (run this binary under ASan/UBSan).
static void test_fuzz(void) {
    char rt[128], path[128];
    snprintf(rt, sizeof rt, "%s/rt.gguf", g_dir);
    snprintf(path, sizeof path, "%s/fuzz.gguf", g_dir);
    size_t n = 0;
    uint8_t *orig = (uint8_t *)test_read_file(rt, &n), *p = malloc(n ? n : 1);
    gguf_file *g = gguf_open(rt);
    size_t hdr = g ? g->data_offset : 0;
    gguf_close(g);
    if (!orig || !hdr || hdr > n) { CHECK(0, "no round-trip file to fuzz"); free(orig); free(p); return; }
    uint32_t seed = 12345;
    int opened = 0, bad = 0;
    static const uint8_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 9, 13, 64};
    for (int it = 0; it < 3000; it++) {
        memcpy(p, orig, n);
        int flips = 1 + it % 3;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t at = (seed >> 8) % hdr;
            p[at] = (seed & 1) ? vals[(seed >> 1) % 8] : (uint8_t)(p[at] ^ (1u << ((seed >> 4) % 8)));
        }
        write_file(path, p, n);
        err_clear();
        gguf_file *f = gguf_open(path);
        if (!f) { bad += strstr(sllm_last_error(), path) == NULL; continue; }
        opened++;
        for (int64_t i = 0; i < f->n_kv; i++) {
            const gguf_kv *kv = &f->kv[i];
            bad += !in_map(f, kv->key.ptr, kv->key.len);
            if (kv->type == GGUF_STRING) bad += !in_map(f, kv->v.s.ptr, kv->v.s.len);
            for (uint64_t j = 0; kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && j < kv->arr_n; j++)
                bad += !in_map(f, gguf_arr_str(kv, j).ptr, gguf_arr_str(kv, j).len);
            if (kv->type == GGUF_ARRAY && kv->arr_type != GGUF_STRING && kv->arr_type != GGUF_ARRAY && kv->arr_n)
                bad += !in_map(f, kv->data, 1) || (gguf_arr_num(kv, kv->arr_n - 1), 0);
        }
        for (int64_t i = 0; i < f->n_tensors; i++) bad += !in_map(f, f->tensors[i].data, f->tensors[i].nbytes);
        free(dump(f));      // reads every byte it points at
        gguf_close(f);
    }
    CHECK(bad == 0, "%d fuzzed files gave out-of-bounds pointers or messages without the path", bad);
    CHECK(opened > 0 && opened < 3000, "%d of 3000 fuzzed files opened", opened);
    free(orig);
    free(p);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/sllm_gguf_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_dtype_table();
    test_half();
    test_stories();
    test_vocab();
    test_writer_roundtrip();
    test_writer_errors();
    test_copy_kv();
    test_corrupt_handmade();
    test_truncation();
    test_fuzz();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_report();
}
