// Dataset loaders, tokenization with assistant-only loss masks, packing, mixing, splits and resume.
// Stand-ins: a byte tokenizer (bytes -> ids 0..255, special tokens 256+) and a ChatML renderer.
#include "test.h"
#include "base/error.h"
#include "train/dataset.h"
#include <jansson.h>

enum { IM_START = 256, IM_END = 257, EOT = 258, BOS = 259 };
static const char *const specials[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>"};

static int n_tok_calls;
static int tok_bytes(void *ctx, const char *s, size_t n, int32_t **ids, int *n_ids) {
    (void)ctx;
    n_tok_calls++;
    int32_t *o = malloc((n + 1) * sizeof *o);
    int k = 0;
    for (size_t i = 0; i < n;) {
        int sp = -1;
        for (int j = 0; j < 4 && sp < 0; j++)
            if (!strncmp(s + i, specials[j], strlen(specials[j])) && i + strlen(specials[j]) <= n) sp = j;
        if (sp >= 0) { o[k++] = 256 + sp; i += strlen(specials[sp]); }
        else o[k++] = (uint8_t)s[i++];
    }
    *ids = o;
    *n_ids = k;
    return 0;
}

typedef struct { char *p; size_t n, cap; } sbuf;
static void sb_add(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) { b->cap = (b->n + l + 1) * 2; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

// ChatML; ctx != NULL: "unstable" variant that renders the LAST assistant turn with a "<think></think>"
// prefix, as Qwen3's template does, so earlier turns are not prefix-stable once followed by more turns.
static int render_chatml(void *ctx, const json_t *msgs, int gen, char **text, size_t *len) {
    sbuf b = {0};
    sb_add(&b, "");
    size_t i, n = json_array_size(msgs);
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        sb_add(&b, "<|im_start|>");
        sb_add(&b, role);
        sb_add(&b, "\n");
        if (ctx && !strcmp(role, "assistant") && i == n - 1) sb_add(&b, "<think></think>");
        sb_add(&b, json_string_value(json_object_get(m, "content")));
        sb_add(&b, "<|im_end|>\n");
    }
    if (gen) sb_add(&b, "<|im_start|>assistant\n");
    *text = b.p;
    *len = b.n;
    return 0;
}

static char g_dir[64];
static char *wfile(const char *name, const char *content) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    fputs(content, f);
    fclose(f);
    return path;
}

typedef struct { char msgs[16][256]; int n; } warnings;
static void collect(void *ctx, const char *msg) {
    warnings *w = ctx;
    if (w->n < 16) snprintf(w->msgs[w->n], 256, "%s", msg);
    w->n++;
}
static int has_warning(const warnings *w, const char *needle) {
    for (int i = 0; i < w->n && i < 16; i++)
        if (strstr(w->msgs[i], needle)) return 1;
    return 0;
}

static const char *rec_text(const ds_source *s, int64_t i) { return ds_source_get(s, i)->text; }
static const char *msg_content(const ds_source *s, int64_t i, int k) {
    return json_string_value(json_object_get(json_array_get(ds_source_get(s, i)->messages, k), "content"));
}

static void test_txt(void) {
    const char *txt = "first doc\nline two\n\n\n  \nsecond doc\n\nthird\r\n\r\nfourth<|endoftext|>x\n";
    char *p = wfile("a.txt", txt);
    ds_source *s;
    CHECK(ds_load(p, NULL, &s) == 0);
    CHECK(ds_source_count(s) == 4, "%lld", (long long)ds_source_count(s));
    CHECK(!strcmp(rec_text(s, 0), "first doc\nline two"));
    CHECK(ds_source_get(s, 1)->line == 6 && !strcmp(rec_text(s, 1), "second doc"));
    CHECK(!strcmp(rec_text(s, 2), "third") && ds_source_get(s, 2)->line == 8);
    CHECK(!strcmp(rec_text(s, 3), "fourth<|endoftext|>x") && ds_source_get(s, 3)->line == 10);
    ds_source_free(s);
    ds_load_opts o = {.txt_split = DS_TXT_LINES};
    CHECK(ds_load(p, &o, &s) == 0 && ds_source_count(s) == 5 && ds_source_get(s, 1)->line == 2 && ds_source_get(s, 2)->line == 6);
    ds_source_free(s);
    ds_load_opts o2 = {.txt_separator = "<|endoftext|>"};
    CHECK(ds_load(p, &o2, &s) == 0 && ds_source_count(s) == 2);
    CHECK(!strcmp(rec_text(s, 1), "x") && ds_source_get(s, 1)->line == 10);
    ds_source_free(s);
    CHECK(ds_load("/nonexistent/x.txt", NULL, &s) == SLLM_ERR_IO && strstr(sllm_last_error(), "/nonexistent/x.txt"));
}

static void test_jsonl(void) {
    const char *j =
        "{\"text\": \"plain doc\"}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n"
        "\n"
        "{\"prompt\": \"p\", \"completion\": \"c\"}\n"
        "{\"instruction\": \"do\", \"input\": \"this\", \"output\": \"done\", \"status\": \"ok\"}\n"
        "{\"instruction\": \"do\", \"input\": \"\", \"output\": \"x\", \"status\": \"blacklist\"}\n"
        "{not json\n"                                             // line 7
        "[1, 2]\n"                                                // line 8
        "{\"foo\": 1}\n"                                          // line 9
        "{\"text\": \"   \"}\n"                                   // line 10: empty
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n"
        "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n";   // line 12
    char *p = wfile("b.jsonl", j);
    char path[256];
    snprintf(path, sizeof path, "%s", p);
    warnings w = {0};
    ds_load_opts o = {.warn = collect, .warn_ctx = &w};
    ds_source *s;
    CHECK(ds_load(path, &o, &s) == 0);
    CHECK(ds_source_count(s) == 6, "%lld", (long long)ds_source_count(s));
    const ds_load_stats *st = ds_source_stats(s);
    CHECK(st->n_malformed == 4 && st->n_empty == 1, "%lld %lld", (long long)st->n_malformed, (long long)st->n_empty);
    char want[400];
    snprintf(want, sizeof want, "%s:7: invalid JSON", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:8: expected a JSON object", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:9: no known fields", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:10: empty text", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:12: field 'messages'[0]: unknown role 'robot'", path);
    CHECK(has_warning(&w, want), "%s", want);
    CHECK(ds_source_get(s, 0)->kind == DS_REC_TEXT && ds_source_get(s, 1)->kind == DS_REC_CHAT);
    CHECK(!strcmp(msg_content(s, 3, 0), "do\n\nthis") && !strcmp(msg_content(s, 3, 1), "done"));
    CHECK(!strcmp(msg_content(s, 4, 0), "do"));   // empty input: instruction alone
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(ds_source_get(s, 5)->messages, 1), "role")),
                  "assistant"));
    CHECK(ds_source_get(s, 5)->line == 11);
    ds_source_free(s);
    // status filter + system prompt
    ds_load_opts o2 = {.status_keep = "ok", .system_prompt = "SYS", .max_warnings = -1};
    CHECK(ds_load(path, &o2, &s) == 0 && ds_source_count(s) == 5 && ds_source_stats(s)->n_filtered == 1);
    CHECK(!strcmp(msg_content(s, 1, 0), "SYS") && !strcmp(msg_content(s, 1, 1), "hi"));
    ds_source_free(s);
    // fail policy: the first malformed line is the error
    ds_load_opts o3 = {.on_error = DS_ON_ERROR_FAIL, .max_warnings = -1};
    CHECK(ds_load(path, &o3, &s) == SLLM_ERR_FORMAT && s == NULL);
    snprintf(want, sizeof want, "%s:7: invalid JSON", path);
    CHECK(strstr(sllm_last_error(), want), "%s", sllm_last_error());
}

static void test_json_array(void) {
    const char *j = "[\n  {\"instruction\": \"a\", \"input\": \"\", \"output\": \"b\"},\n  42,\n"
                    "  {\"instruction\": \"c\",\n   \"output\": 7},\n  {\"text\": \"t\"}\n]\n";
    char path[256];
    snprintf(path, sizeof path, "%s", wfile("c.json", j));
    warnings w = {0};
    ds_load_opts o = {.warn = collect, .warn_ctx = &w};
    ds_source *s;
    CHECK(ds_load(path, &o, &s) == 0 && ds_source_count(s) == 2, "%s", sllm_last_error());
    char want[400];
    snprintf(want, sizeof want, "%s:3: expected a JSON object", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:4: fields 'instruction', 'output'", path);
    CHECK(has_warning(&w, want), "%s", want);
    CHECK(ds_source_get(s, 1)->line == 6);
    ds_source_free(s);
    snprintf(path, sizeof path, "%s", wfile("d.json", "[\n{\"text\": \"a\"},\n{\"text\": \"b\" \"c\"}\n]"));
    CHECK(ds_load(path, NULL, &s) == SLLM_ERR_FORMAT);
    snprintf(want, sizeof want, "%s:3: invalid JSON", path);
    CHECK(strstr(sllm_last_error(), want), "%s", sllm_last_error());
}

static void test_csv(void) {
    const char *c = "Q,A,label\n"
                    "hello,world,0\n"
                    "\"multi\nline, with comma\",\"say \"\"hi\"\"\",1\r\n"   // lines 3-4
                    "too,few\n"                                               // line 5
                    "\"bad\"x,y,0\n"                                          // line 6
                    "q2,,0\n"                                                 // line 7: empty answer
                    "last,one,2";                                             // line 8, no final newline
    char path[256];
    snprintf(path, sizeof path, "%s", wfile("e.csv", c));
    warnings w = {0};
    ds_load_opts o = {.warn = collect, .warn_ctx = &w};
    ds_source *s;
    CHECK(ds_load(path, &o, &s) == 0);
    CHECK(ds_source_count(s) == 3, "%lld", (long long)ds_source_count(s));
    CHECK(!strcmp(msg_content(s, 1, 0), "multi\nline, with comma") && !strcmp(msg_content(s, 1, 1), "say \"hi\""));
    CHECK(ds_source_get(s, 1)->line == 3 && ds_source_get(s, 2)->line == 8);
    char want[400];
    snprintf(want, sizeof want, "%s:5: expected 3 fields as in the header, got 2", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:6: unexpected character after a closing quote", path);
    CHECK(has_warning(&w, want), "%s", want);
    snprintf(want, sizeof want, "%s:7: empty question or answer", path);
    CHECK(has_warning(&w, want), "%s", want);
    ds_source_free(s);
    ds_load_opts f = {.on_error = DS_ON_ERROR_FAIL};
    CHECK(ds_load(path, &f, &s) == SLLM_ERR_FORMAT);
    snprintf(want, sizeof want, "%s:5: expected 3 fields", path);
    CHECK(strstr(sllm_last_error(), want), "%s", sllm_last_error());
    snprintf(path, sizeof path, "%s", wfile("f.csv", "q,a\nx,\"never closed\ny,z\n"));
    CHECK(ds_load(path, &f, &s) == SLLM_ERR_FORMAT);
    snprintf(want, sizeof want, "%s:2: unterminated quoted field", path);
    CHECK(strstr(sllm_last_error(), want), "%s", sllm_last_error());
}

// Expected loss mask computed from the token sequence alone: inside "<|im_start|>assistant\n" ... <|im_end|>.
static void check_chatml_mask(const int32_t *ids, const uint8_t *loss, int64_t n, int *ok) {
    static const char hdr[] = "assistant\n";
    int in = 0;
    for (int64_t i = 0; i < n; i++) {
        int expect = in;
        if (in && ids[i] == IM_END) in = 0;
        if (ids[i] == IM_START && i + 10 < n) {
            int m = 1;
            for (int k = 0; k < 10; k++) m &= ids[i + 1 + k] == (uint8_t)hdr[k];
            if (m) {   // the header itself has no loss; what follows it does
                for (int k = 0; k <= 10; k++) *ok &= loss[i + k] == 0;
                i += 10;
                in = 1;
                continue;
            }
        }
        if (loss[i] != expect) *ok = 0;
    }
}

static void test_mask(void) {
    const char *j = "{\"messages\": [{\"role\": \"system\", \"content\": \"be nice\"}, {\"role\": \"user\", \"content\": \"2+2?\"},"
                    " {\"role\": \"assistant\", \"content\": \"4\"}, {\"role\": \"user\", \"content\": \"and 3+3?\"},"
                    " {\"role\": \"assistant\", \"content\": \"six\\nor 6\"}]}\n"
                    "{\"prompt\": \"<|im_end|>tricky\", \"completion\": \"assistant\\nok\"}\n";
    char path[256];
    snprintf(path, sizeof path, "%s", wfile("m.jsonl", j));
    ds_source *s;
    CHECK(ds_load(path, NULL, &s) == 0 && ds_source_count(s) == 2);
    ds_tok_opts to = {.mode = DS_SFT, .tokenize = tok_bytes, .render = render_chatml, .bos_id = -1, .eos_id = -1};
    ds_corpus *c;
    CHECK(ds_tokenize(s, &to, &c) == 0);
    const int32_t *ids;
    const uint8_t *loss;
    int64_t n;
    ds_corpus_sample(c, 0, &ids, &loss, &n);
    int ok = 1;
    check_chatml_mask(ids, loss, n, &ok);
    CHECK(ok, "assistant-only mask differs from the assistant tokens + <|im_end|>");
    int64_t nl = 0;
    for (int64_t i = 0; i < n; i++) nl += loss[i];
    CHECK(nl == 1 + 1 + 8 + 1, "loss tokens %lld", (long long)nl);   // "4" <|im_end|> "six\nor 6" <|im_end|>
    ds_corpus_sample(c, 1, &ids, &loss, &n);
    nl = 0;
    for (int64_t i = 0; i < n; i++) nl += loss[i];
    CHECK(nl == 12 + 1, "%lld", (long long)nl);   // "assistant\nok" + <|im_end|>
    CHECK(ds_corpus_stats(c)->n_samples == 2);
    ds_corpus_free(c);
    // the rendered text tokenized in one piece gives the same ids (segmenting changes nothing here)
    char *text;
    size_t len, *sp;
    int ns, nu;
    CHECK(ds_chat_spans(render_chatml, NULL, ds_source_get(s, 0)->messages, &text, &len, &sp, &ns, &nu) == 0);
    CHECK(ns == 2 && nu == 0);
    CHECK(ns == 2 && !strncmp(text + sp[0], "4<|im_end|>", sp[1] - sp[0]) && sp[1] - sp[0] == 11);
    free(text);
    free(sp);
    // Qwen3-like template: the first assistant turn renders differently when it is not last -> no loss
    warnings w = {0};
    to.render_ctx = (void *)1;
    to.warn = collect;
    to.warn_ctx = &w;
    CHECK(ds_tokenize(s, &to, &c) == 0);
    CHECK(ds_corpus_stats(c)->n_unstable_turns == 1 && w.n == 1 && strstr(w.msgs[0], ":1: 1 assistant turn"));
    ds_corpus_sample(c, 0, &ids, &loss, &n);
    nl = 0;
    for (int64_t i = 0; i < n; i++) nl += loss[i];
    CHECK(nl == 15 + 8 + 1, "%lld", (long long)nl);   // "<think></think>six\nor 6<|im_end|>"
    ds_corpus_free(c);
    // loss on prompt: every token but the first
    to.render_ctx = NULL;
    to.loss_on_prompt = 1;
    CHECK(ds_tokenize(s, &to, &c) == 0);
    ds_corpus_sample(c, 0, &ids, &loss, &n);
    nl = 0;
    for (int64_t i = 0; i < n; i++) nl += loss[i];
    CHECK(nl == n - 1);
    ds_corpus_free(c);
    // over-long SFT: drop or truncate; a prompt longer than the limit leaves nothing to learn: dropped
    to.loss_on_prompt = 0;
    to.max_tokens = 40;
    to.long_policy = DS_LONG_DROP;
    CHECK(ds_tokenize(s, &to, &c) == 0 && ds_corpus_count(c) == 1 && ds_corpus_stats(c)->n_dropped_long == 1);
    ds_corpus_free(c);
    to.long_policy = DS_LONG_TRUNCATE;
    to.max_tokens = 20;
    CHECK(ds_tokenize(s, &to, &c) == SLLM_ERR_FORMAT && strstr(sllm_last_error(), "no usable samples"));
    ds_source_free(s);
}

// Independent model of CPT packing: concatenate the drawn documents, cut into rows of T+1.
static void test_packing(void) {
    sbuf b = {0};
    sb_add(&b, "");
    char line[512];
    uint64_t x = 12345;
    for (int d = 0; d < 60; d++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int len = 1 + (int)((x >> 33) % 90);
        for (int i = 0; i < len; i++) line[i] = (char)('a' + (i + d) % 26);
        line[len] = 0;
        sb_add(&b, line);
        sb_add(&b, "\n");
    }
    char path[256];
    snprintf(path, sizeof path, "%s", wfile("p.txt", b.p));
    free(b.p);
    ds_source *s;
    ds_load_opts lo = {.txt_split = DS_TXT_LINES};
    CHECK(ds_load(path, &lo, &s) == 0 && ds_source_count(s) == 60);
    ds_tok_opts to = {.mode = DS_CPT, .tokenize = tok_bytes, .bos_id = BOS, .eos_id = EOT};
    ds_corpus *c;
    CHECK(ds_tokenize(s, &to, &c) == 0 && ds_corpus_count(c) == 60);
    const int B = 3, T = 32;
    ds_loader_opts lopt = {.B = B, .T = T, .seed = 7};
    ds_loader *l;
    CHECK(ds_loader_new(&c, NULL, 1, &lopt, &l) == 0);
    CHECK(ds_loader_epoch_len(l) == 60);
    // expected stream: docs in draw order, with a doc id per token
    int64_t cap = ds_corpus_stats(c)->n_tokens * 3, n_st = 0;
    int32_t *st = malloc(cap * sizeof *st), *sd = malloc(cap * sizeof *sd);
    for (int64_t e = 0; e < 2; e++)
        for (int64_t k = 0; k < 60; k++) {
            int ci;
            int64_t si, n;
            const int32_t *ids;
            const uint8_t *loss;
            ds_loader_draw(l, e, k, &ci, &si);
            ds_corpus_sample(c, si, &ids, &loss, &n);
            for (int64_t i = 0; i < n; i++) { st[n_st] = ids[i]; sd[n_st++] = (int32_t)(e * 60 + k); }
        }
    ds_batch bt;
    ds_batch_alloc(&bt, B, T);
    int ok = 1, rows = 0;
    int64_t at = 0, targets = 0, reported = 0;
    while (at + (T + 1) <= n_st - 200) {
        CHECK(ds_loader_next(l, &bt) == 0);
        reported += bt.n_targets;
        for (int r = 0; r < B; r++, rows++, at += T + 1) {
            const int32_t *tk = bt.tokens + r * T, *tg = bt.targets + r * T, *ps = bt.pos + r * T,
                          *ds = bt.doc_start + r * T;
            for (int t = 0; t < T; t++) {
                ok &= tk[t] == st[at + t];
                int same = sd[at + t + 1] == sd[at + t];
                ok &= tg[t] == (same ? st[at + t + 1] : -1);
                // doc_start: first index in the row with the same document
                int d0 = t;
                while (d0 > 0 && sd[at + d0 - 1] == sd[at + t]) d0--;
                ok &= ds[t] == d0 && ps[t] == t - d0;
                targets += tg[t] >= 0;
            }
        }
        if (!ok) break;
    }
    CHECK(ok, "packed rows differ from the independent model at row %d", rows);
    CHECK(rows > 20);
    CHECK(targets == reported && targets > rows * (T - 4), "n_targets %lld vs %lld", (long long)reported, (long long)targets);
    // the boundary rule: no target is a BOS (BOS starts a document), EOS is a target
    int bos_target = 0, eos_target = 0;
    for (int i = 0; i < B * T; i++) { bos_target += bt.targets[i] == BOS; eos_target += bt.targets[i] == EOT; }
    CHECK(bos_target == 0);
    (void)eos_target;
    ds_batch_free(&bt);
    free(st);
    free(sd);
    ds_loader_free(l);

    // SFT: one sample per row, padded; pack mode: whole samples only
    ds_tok_opts so = {.mode = DS_SFT, .tokenize = tok_bytes, .bos_id = -1, .eos_id = EOT};
    ds_corpus *sc;
    CHECK(ds_tokenize(s, &so, &sc) == 0);
    ds_loader_opts po = {.B = 4, .T = 64, .seed = 1, .pad_id = 0};
    CHECK(ds_loader_new(&sc, NULL, 1, &po, &l) == 0);
    ds_batch_alloc(&bt, 4, 64);
    ok = 1;
    for (int it = 0; it < 10; it++) {
        ds_pos p0 = ds_loader_pos(l);
        CHECK(ds_loader_next(l, &bt) == 0);
        for (int r = 0; r < 4; r++) {
            int ci;
            int64_t si, n;
            const int32_t *ids;
            const uint8_t *loss;
            ds_loader_draw(l, p0.epoch + (p0.index + r) / 60, (p0.index + r) % 60, &ci, &si);
            ds_corpus_sample(sc, si, &ids, &loss, &n);
            int64_t m = n < 65 ? n : 65;
            for (int t = 0; t < 64; t++) {
                int32_t want_tok = t < m ? ids[t] : 0, want_tg = t + 1 < m ? ids[t + 1] : -1;
                ok &= bt.tokens[r * 64 + t] == want_tok && bt.targets[r * 64 + t] == want_tg;
                ok &= bt.doc_start[r * 64 + t] == (t < m ? 0 : (int)m);
            }
        }
    }
    CHECK(ok, "padded SFT rows");
    ds_loader_free(l);
    po.pack = 1;
    CHECK(ds_loader_new(&sc, NULL, 1, &po, &l) == 0);
    ok = 1;
    int multi = 0;
    for (int it = 0; it < 10; it++) {
        CHECK(ds_loader_next(l, &bt) == 0);
        for (int r = 0; r < 4; r++) {
            int docs = 0;
            for (int t = 0; t < 64; t++) {
                const int32_t *ds = bt.doc_start + r * 64, *tg = bt.targets + r * 64, *tk = bt.tokens + r * 64;
                if (ds[t] == t) docs++;
                ok &= bt.pos[r * 64 + t] == t - ds[t];
                // a target never crosses into another document
                if (tg[t] >= 0 && t + 1 < 64) ok &= ds[t + 1] == ds[t] && tg[t] == tk[t + 1];
                if (t + 1 < 64 && ds[t + 1] != ds[t]) ok &= tg[t] == -1;
            }
            multi += docs > 2;
        }
    }
    CHECK(ok && multi > 0, "packed SFT rows (rows with >1 sample: %d)", multi);
    ds_batch_free(&bt);
    ds_loader_free(l);
    ds_corpus_free(sc);
    ds_corpus_free(c);
    ds_source_free(s);
}

static ds_corpus *synthetic(int n_docs, int len) {
    sbuf b = {0};
    sb_add(&b, "");
    char line[256];
    for (int d = 0; d < n_docs; d++) {
        snprintf(line, sizeof line, "doc %d %.*s\n", d, len, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        sb_add(&b, line);
    }
    char path[256];
    static int k;
    char name[32];
    snprintf(name, sizeof name, "syn%d.txt", k++);
    snprintf(path, sizeof path, "%s", wfile(name, b.p));
    free(b.p);
    ds_source *s;
    ds_load_opts lo = {.txt_split = DS_TXT_LINES};
    ds_load(path, &lo, &s);
    ds_tok_opts to = {.mode = DS_CPT, .tokenize = tok_bytes, .bos_id = -1, .eos_id = EOT};
    ds_corpus *c = NULL;
    ds_tokenize(s, &to, &c);
    ds_source_free(s);
    return c;
}

static void test_mixing_and_resume(void) {
    ds_corpus *cs[2] = {synthetic(400, 20), synthetic(3000, 7)};
    CHECK(cs[0] && cs[1]);
    if (!cs[0] || !cs[1]) return;
    double w[2] = {0.8, 0.2};
    ds_loader_opts o = {.B = 2, .T = 24, .seed = 99, .val_fraction = 0.05};
    ds_loader *l, *l2;
    CHECK(ds_loader_new(cs, w, 2, &o, &l) == 0);
    CHECK(ds_loader_n_val(l, 0) == 20 && ds_loader_n_train(l, 0) == 380 && ds_loader_n_val(l, 1) == 150);
    CHECK(ds_loader_epoch_len(l) == 475, "%lld", (long long)ds_loader_epoch_len(l));   // 380 / 0.8
    // ratio over 8 epochs (3800 draws): 0.2 +- 4 sigma; train and val never overlap
    int64_t n1 = 0, draws = 0;
    uint8_t *isval0 = calloc(400, 1), *isval1 = calloc(3000, 1);
    for (int64_t e = 0; e < 8; e++)
        for (int64_t k = 0; k < ds_loader_epoch_len(l); k++) {
            int ci;
            int64_t si;
            ds_loader_draw(l, e, k, &ci, &si);
            n1 += ci == 1;
            draws++;
            (ci ? isval1 : isval0)[si] = 1;
        }
    double f = (double)n1 / draws, sigma = sqrt(0.16 / draws);
    CHECK(fabs(f - 0.2) < 4 * sigma, "mix fraction %.4f", f);
    // validation: every held-out sample once, in a fixed order, then 0
    ds_batch b, b2;
    ds_batch_alloc(&b, 2, 24);
    ds_batch_alloc(&b2, 2, 24);
    int nb = 0, rc;
    while ((rc = ds_loader_val_next(l, &b)) == 1) nb++;
    CHECK(rc == 0 && nb > 0);
    // the held-out samples are never drawn for training: exactly n_train distinct samples are drawn
    int64_t seen0 = 0, seen1 = 0;
    for (int i = 0; i < 400; i++) seen0 += isval0[i];
    for (int i = 0; i < 3000; i++) seen1 += isval1[i];
    CHECK(seen0 == 380 && seen1 <= 2850, "%lld %lld", (long long)seen0, (long long)seen1);
    ds_loader_opts ov = o;
    ov.epoch_len = 1;
    CHECK(ds_loader_new(cs, w, 2, &ov, &l2) == 0);   // same seed: same split regardless of epoch length
    CHECK(ds_loader_n_val(l2, 0) == 20);
    ds_loader_free(l2);
    free(isval0);
    free(isval1);
    // same seed, same batches; resume from a saved position gives the same continuation
    CHECK(ds_loader_new(cs, w, 2, &o, &l2) == 0);
    int same = 1;
    for (int i = 0; i < 300; i++) {   // crosses epoch boundaries (epoch = 475 draws)
        ds_loader_next(l, &b);
        ds_loader_next(l2, &b2);
        same &= !memcmp(b.tokens, b2.tokens, 2 * 24 * 4) && !memcmp(b.targets, b2.targets, 2 * 24 * 4);
    }
    CHECK(same);
    ds_pos p = ds_loader_pos(l);
    CHECK(p.epoch >= 1, "epoch %lld", (long long)p.epoch);
    json_t *j = ds_pos_to_json(p);
    char *js = json_dumps(j, 0);
    json_decref(j);
    int32_t *want = malloc(50 * 2 * 24 * 4 * 4);
    for (int i = 0; i < 50; i++) {
        ds_loader_next(l, &b);
        memcpy(want + i * 4 * 48, b.tokens, 48 * 4);
        memcpy(want + i * 4 * 48 + 48, b.targets, 48 * 4);
        memcpy(want + i * 4 * 48 + 96, b.pos, 48 * 4);
        memcpy(want + i * 4 * 48 + 144, b.doc_start, 48 * 4);
    }
    ds_loader_free(l2);
    CHECK(ds_loader_new(cs, w, 2, &o, &l2) == 0);   // a fresh process: new loader, seek to the saved position
    ds_pos q;
    json_t *jq = json_loads(js, 0, NULL);
    CHECK(ds_pos_from_json(jq, &q) == 0 && ds_loader_seek(l2, q) == 0);
    json_decref(jq);
    free(js);
    same = 1;
    for (int i = 0; i < 50; i++) {
        ds_loader_next(l2, &b2);
        same &= !memcmp(want + i * 4 * 48, b2.tokens, 48 * 4) && !memcmp(want + i * 4 * 48 + 48, b2.targets, 48 * 4) &&
                !memcmp(want + i * 4 * 48 + 96, b2.pos, 48 * 4) && !memcmp(want + i * 4 * 48 + 144, b2.doc_start, 48 * 4);
    }
    CHECK(same, "resumed loader differs");
    free(want);
    // a different seed gives a different order; a bad position is refused with a message
    ds_loader_free(l2);
    ds_loader_opts o3 = o;
    o3.seed = 100;
    CHECK(ds_loader_new(cs, w, 2, &o3, &l2) == 0);
    int diff = 0;
    for (int k = 0; k < 50; k++) {
        int c1, c2;
        int64_t s1, s2;
        ds_loader_draw(l, 0, k, &c1, &s1);
        ds_loader_draw(l2, 0, k, &c2, &s2);
        diff += c1 != c2 || s1 != s2;
    }
    CHECK(diff > 25);
    CHECK(ds_loader_seek(l2, (ds_pos){0, 100000, 0}) == SLLM_ERR_ARG && strstr(sllm_last_error(), "epoch length"));
    ds_loader_free(l2);
    ds_batch_free(&b);
    ds_batch_free(&b2);
    ds_loader_free(l);
    ds_corpus_free(cs[0]);
    ds_corpus_free(cs[1]);
}

static void test_fixtures(void) {
    char buf[512];
    ds_source *s;
    ds_load_opts quiet = {.max_warnings = -1};
    const char *p = test_fixture("data/ko-ChatbotData.csv", buf, sizeof buf);
    if (!p) SKIP("fixture data/ko-ChatbotData.csv absent");
    else {
        CHECK(ds_load(p, &quiet, &s) == 0);
        CHECK(ds_source_count(s) == 11823, "%lld", (long long)ds_source_count(s));
        CHECK(ds_source_stats(s)->n_malformed == 0);
        CHECK(!strcmp(msg_content(s, 0, 0), "12시 땡!") && !strcmp(msg_content(s, 0, 1), "하루가 또 가네요."));
        ds_source_free(s);
    }
    p = test_fixture("data/alpaca-libre-alpaca_libre_tasks_v1.jsonl", buf, sizeof buf);
    if (!p) SKIP("fixture data/alpaca-libre-alpaca_libre_tasks_v1.jsonl absent");
    else {
        CHECK(ds_load(p, &quiet, &s) == 0);
        int64_t all = ds_source_count(s) + ds_source_stats(s)->n_empty;
        CHECK(all == 2375, "%lld", (long long)all);
        ds_source_free(s);
        ds_load_opts ok = {.max_warnings = -1, .status_keep = "ok"};
        CHECK(ds_load(p, &ok, &s) == 0);
        CHECK(ds_source_count(s) + ds_source_stats(s)->n_empty == 1202 && ds_source_stats(s)->n_filtered == 1173);
        ds_source_free(s);
    }
    p = test_fixture("data/chatdoctor5k.json", buf, sizeof buf);
    if (!p) SKIP("fixture data/chatdoctor5k.json absent");
    else {
        CHECK(ds_load(p, &quiet, &s) == 0);
        CHECK(ds_source_count(s) + ds_source_stats(s)->n_empty == 5452, "%lld", (long long)ds_source_count(s));
        CHECK(ds_source_stats(s)->n_malformed == 0);
        // tokenize the first 200 with the stand-ins: every mask exact
        ds_tok_opts to = {.mode = DS_SFT, .tokenize = tok_bytes, .render = render_chatml, .bos_id = -1, .eos_id = -1};
        ds_corpus *c;
        CHECK(ds_tokenize(s, &to, &c) == 0);
        int ok = 1;
        for (int64_t i = 0; i < ds_corpus_count(c); i += 25) {
            const int32_t *ids;
            const uint8_t *loss;
            int64_t n;
            ds_corpus_sample(c, i, &ids, &loss, &n);
            check_chatml_mask(ids, loss, n, &ok);
        }
        CHECK(ok);
        ds_corpus_free(c);
        ds_source_free(s);
    }
    p = test_fixture("data/tinystories_val_sample.txt", buf, sizeof buf);
    if (!p) SKIP("fixture data/tinystories_val_sample.txt absent");
    else {
        CHECK(ds_load(p, &quiet, &s) == 0);
        CHECK(ds_source_count(s) > 1000 && ds_source_stats(s)->n_malformed == 0, "%lld", (long long)ds_source_count(s));
        ds_source_free(s);
    }
}

// Held-out documents longer than a whole validation batch: every validation token is visited exactly
// once, in order, and the pass ends (a cursor that lost its offset restarted the document forever).
static void test_long_validation_docs(void) {
    sbuf b = {0};
    sb_add(&b, "");
    char doc[700];
    for (int d = 0; d < 8; d++) {
        for (int i = 0; i < 600; i++) doc[i] = (char)('a' + (i * 7 + d) % 26);
        doc[600] = 0;
        sb_add(&b, doc);
        sb_add(&b, "\n\n");
    }
    char path[256];
    snprintf(path, sizeof path, "%s", wfile("long.txt", b.p));
    free(b.p);
    ds_source *s;
    CHECK(ds_load(path, NULL, &s) == 0 && ds_source_count(s) == 8);
    ds_tok_opts to = {.mode = DS_CPT, .tokenize = tok_bytes, .bos_id = BOS, .eos_id = EOT};
    ds_corpus *c;
    CHECK(ds_tokenize(s, &to, &c) == 0);
    double w = 1;
    ds_loader_opts o = {.B = 2, .T = 48, .seed = 3, .val_fraction = 0.25};
    ds_loader *l;
    CHECK(ds_loader_new(&c, &w, 1, &o, &l) == 0 && ds_loader_n_val(l, 0) == 2);
    ds_batch bt;
    ds_batch_alloc(&bt, 2, 48);
    int64_t targets = 0, batches = 0;
    int rc;
    while ((rc = ds_loader_val_next(l, &bt)) == 1 && batches < 1000) { batches++; targets += bt.n_targets; }
    // 2 held-out documents of BOS + 600 bytes + EOS: 601 predicted tokens each, less at most one per
    // row (rows are cut T+1 tokens apart, so the first token of a continuation row is not a target).
    CHECK(rc == 0 && batches < 1000, "validation pass did not end (%lld batches)", (long long)batches);
    CHECK(targets <= 2 * 601 && targets >= 2 * 601 - 2 * batches, "validation targets %lld of %d in %lld batches",
          (long long)targets, 2 * 601, (long long)batches);
    // A second pass gives the same count (the cursor resets at the end).
    int64_t t2 = 0;
    while (ds_loader_val_next(l, &bt) == 1) t2 += bt.n_targets;
    CHECK(t2 == targets);
    ds_batch_free(&bt);
    ds_loader_free(l);
    ds_corpus_free(c);
    ds_source_free(s);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/sllm_ds_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_txt();
    test_jsonl();
    test_json_array();
    test_csv();
    test_mask();
    test_packing();
    test_mixing_and_resume();
    test_long_validation_docs();
    test_fixtures();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
    return test_report();
}
