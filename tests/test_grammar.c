// grammar + json_schema: GBNF parsing (errors with line:col), the incremental matcher (accept/reject,
// can_end, UTF-8 split across pieces), token filtering checked against one-by-one checks, JSON Schema
// conversion checked by generating random strings from the grammar and validating them with an
// independent JSON Schema validator written here (jansson + PCRE2), negative instances, and fuzzing of
// grammars and schemas (truncation / mutation) for clean errors.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "test.h"
#include "schema_validate.h"
#include "text/grammar.h"
#include "text/json_schema.h"
#include "sllm.h"
#include <pcre2.h>
#include <time.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static grammar *load_gbnf(const char *file) {
    char path[512];
    snprintf(path, sizeof path, "tests/grammars/%s", file);
    size_t n;
    char *src = test_read_file(path, &n);
    if (!src) {
        CHECK(0, "cannot read %s", path);
        return NULL;
    }
    grammar *g = NULL;
    int rc = grammar_parse(src, n, path, NULL, &g);
    CHECK(rc == SLLM_OK, "%s: %s", path, sllm_last_error());
    free(src);
    return g;
}

// 1 = whole string accepted and complete; 0 = rejected somewhere or incomplete. Fed byte by byte.
static int matches(grammar *g, const char *s, size_t n, bool bytewise) {
    grammar_state *st = grammar_state_new(g);
    if (!st) return -1;
    int ok = 1;
    if (bytewise) {
        for (size_t i = 0; i < n && ok == 1; i++) ok = grammar_accept(st, s + i, 1);
    } else ok = grammar_accept(st, s, n);
    int r = ok == 1 && grammar_can_end(st);
    grammar_state_free(st);
    return r;
}

static void expect(grammar *g, const char *name, const char *s, int want) {
    int a = matches(g, s, strlen(s), false), b = matches(g, s, strlen(s), true);
    CHECK(a == want && b == want, "%s: \"%s\" matched %d/%d, expected %d", name, s, a, b, want);
}

static void test_gbnf_files(void) {
    grammar *g = load_gbnf("json.gbnf");
    if (g) {
        const char *good[] = {"{}", "[]", "0", "-12.5e+3", "\"a\\\"b\\u00e9\"", "{\"a\": [1, 2, {\"b\": null}], \"c\": true}",
                              "[ \"\xE4\xB8\x96\xE7\x95\x8C\" ,\n\t1 ]", "\"\xF0\x9F\x98\x80\""};
        const char *bad[] = {"{", "[1,]", "01", "{\"a\" 1}", "\"\x01\"", "tru", "[1 2]", "{\"a\":1,}", "\"\\x\"", ""};
        for (size_t i = 0; i < sizeof good / sizeof *good; i++) expect(g, "json", good[i], 1);
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect(g, "json", bad[i], 0);
        // prefix states: "{" is a valid prefix (accepted) but cannot end
        grammar_state *st = grammar_state_new(g);
        CHECK(grammar_accept(st, "{\"k\": ", 6) == 1 && !grammar_can_end(st) && grammar_can_continue(st));
        CHECK(grammar_accept(st, "}", 1) == 0, "'}' after a key must be rejected");
        CHECK(grammar_accept(st, "12", 2) == 1, "state must be unchanged after a rejection");
        CHECK(grammar_check(st, "}", 1) == 1 && grammar_check(st, "]", 1) == 0);
        CHECK(grammar_accept(st, "}", 1) == 1 && grammar_can_end(st) && !grammar_can_continue(st));
        // UTF-8 split across pieces: the first half of a character is a valid prefix, cannot end there
        grammar_state *s2 = grammar_state_new(g);
        CHECK(grammar_accept(s2, "\"\xE4", 2) == 1 && grammar_accept(s2, "\xB8", 1) == 1 && !grammar_can_end(s2));
        CHECK(grammar_check(s2, "\"", 1) == 0, "quote inside a partial character must be rejected");
        CHECK(grammar_accept(s2, "\x96\"", 2) == 1 && grammar_can_end(s2));
        grammar_state *c = grammar_state_clone(s2);
        CHECK(c && grammar_can_end(c) && grammar_accept(c, "x", 1) == 0);
        CHECK(grammar_check(s2, "\xFF", 1) == 0 && grammar_check(s2, "\xC0\x80", 2) == 0, "invalid UTF-8 rejected");
        grammar_state_free(c), grammar_state_free(s2), grammar_state_free(st);
        grammar_free(g);
    }
    {   // A lead byte only starts characters of its own length: E0 >= U+0800, F0 >= U+10000. In an
        // ASCII-only grammar, a lone E0/F0/C2 must be rejected, not kept as a "partial" U+0000.
        grammar *ga = NULL;
        CHECK(grammar_parse("root ::= [a-z]+", 15, "ascii", NULL, &ga) == 0);
        grammar_state *sa = ga ? grammar_state_new(ga) : NULL;
        if (sa) {
            CHECK(grammar_check(sa, "\xE0", 1) == 0 && grammar_check(sa, "\xF0", 1) == 0 && grammar_check(sa, "\xC2", 1) == 0,
                  "lead bytes of non-ASCII characters rejected by an ASCII grammar");
            CHECK(grammar_check(sa, "ab", 2) == 1);
            grammar_state_free(sa);
        }
        grammar_free(ga);
        grammar *gb = NULL;   // [\u0800-\uFFFF]: E0 A0 80 is U+0800 (valid), E0 80 80 is overlong
        CHECK(grammar_parse("root ::= [\\u0800-\\uFFFF]", strlen("root ::= [\\u0800-\\uFFFF]"), "bmp", NULL, &gb) == 0);
        grammar_state *sb = gb ? grammar_state_new(gb) : NULL;
        if (sb) {
            CHECK(grammar_check(sb, "\xE0", 1) == 1 && grammar_check(sb, "\xE0\xA0\x80", 3) == 1);
            CHECK(grammar_check(sb, "\xE0\x80\x80", 3) == 0 && grammar_check(sb, "\xC2\x80", 2) == 0);
            grammar_state_free(sb);
        }
        grammar_free(gb);
    }
    g = load_gbnf("arithmetic.gbnf");
    if (g) {
        expect(g, "arith", "1+2*(3-4.5)/-6", 1);
        expect(g, "arith", "((1))", 1);
        expect(g, "arith", "1 + 2", 1);
        expect(g, "arith", "1++2", 0);
        expect(g, "arith", "(1", 0);
        expect(g, "arith", "1.", 0);
        grammar_free(g);
    }
    g = load_gbnf("unicode.gbnf");
    if (g) {
        expect(g, "unicode", "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C!", 1);
        expect(g, "unicode", "\xD0\x9F\xD1\x80\xD0\xB8 \xF0\x9F\x98\x80\xC3\xA9", 1);
        expect(g, "unicode", "ab\xE2\x82\xAC", 1);         // word with a euro sign
        expect(g, "unicode", "a\xC3\xA9", 1);              // 'a' then punct é
        expect(g, "unicode", "\xD0\x9F", 0);               // one Cyrillic letter: needs 2..5
        expect(g, "unicode", "hello hello hello hello hello", 0);  // at most 4 greetings
        grammar_free(g);
    }
    g = load_gbnf("repeat.gbnf");
    if (g) {
        expect(g, "repeat", "aabbbccz", 1);
        expect(g, "repeat", "aaaabbbcccccdxyxyzz", 1);
        expect(g, "repeat", "abbbccz", 0);
        expect(g, "repeat", "aaaaabbbccz", 0);
        expect(g, "repeat", "aabbccz", 0);
        expect(g, "repeat", "aabbbcz", 0);
        expect(g, "repeat", "aabbbccx", 0);
        expect(g, "repeat", "aabbbcc", 0);
        grammar_free(g);
    }
}

static void expect_error(const char *src, const char *want) {
    grammar *g = NULL;
    int rc = grammar_parse(src, strlen(src), "g.gbnf", NULL, &g);
    CHECK(rc == SLLM_ERR_FORMAT && !g && strstr(sllm_last_error(), want), "grammar <<%s>>: rc %d, error '%s', wanted '%s'",
          src, rc, sllm_last_error(), want);
    grammar_free(g);
}

static void test_gbnf_errors(void) {
    expect_error("root ::= \"abc\n", "g.gbnf:1:10: unterminated string");
    expect_error("root ::= a\n\na ::= [b-a]\n", "g.gbnf:3:10: character range end");
    expect_error("root ::= x\n  | foo\n", "g.gbnf:1:10: undefined rule 'x'");
    expect_error("root ::= (\"a\" | \"b\"\n", "g.gbnf:1:10: unclosed '('");
    expect_error("x ::= \"a\"\n", "no 'root' rule");
    expect_error("root ::= \"a\"{3,1}\n", "g.gbnf:1:13: repetition {3,1}");
    expect_error("root ::= \"a\"\nroot ::= \"b\"\n", "g.gbnf:2:1: rule 'root' defined twice");
    expect_error("root ::= \"\\q\"\n", "g.gbnf:1:11: unknown escape");
    expect_error("root ::= [\\x4G]\n", "g.gbnf:1:11: bad hex digits");
    expect_error("root ::= \"a\" )\n", "g.gbnf:1:14: unmatched ')'");
    expect_error("root = \"a\"\n", "g.gbnf:1:6: expected '::='");
    expect_error("root ::= \"a\"**\n", "g.gbnf:1:14: repetition operator follows");
    expect_error("root ::= [abc\n", "g.gbnf:1:10: unterminated character class");
    expect_error("root ::= @\n", "g.gbnf:1:10: unexpected character '@'");
    expect_error("root ::= \"a\"{99999}\n", "repetition count over");
    // left recursion, direct, indirect and through a nullable prefix
    expect_error("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"\n", "left recursion through rule 'expr'");
    expect_error("root ::= a\na ::= b \"x\"\nb ::= a \"y\" | \"z\"\n", "left recursion");
    expect_error("root ::= a\na ::= \"q\"? a \"x\" | \"y\"\n", "left recursion");
    // not left recursion: a star over a nullable item, right recursion, tail self-reference
    const char *ok[] = {"root ::= ( \"a\"? )* \"b\"\n", "root ::= \"a\" root | \"\"\n", "root ::= x\nx ::= \"\" | \"a\" x\n"};
    for (int i = 0; i < 3; i++) {
        grammar *g = NULL;
        CHECK(grammar_parse(ok[i], strlen(ok[i]), "ok", NULL, &g) == SLLM_OK, "%s: %s", ok[i], sllm_last_error());
        if (g) expect(g, ok[i], i == 0 ? "aab" : "aaa", 1);
        grammar_free(g);
    }
    // comments, odd spacing, a custom root, multi-line alternatives
    const char *src = "# c\nstart::=item+   # trailing\n\nitem ::=\n  \"x\"\n  | [0-9]{2}\n";
    grammar *g = NULL;
    CHECK(grammar_parse(src, strlen(src), "c", "start", &g) == SLLM_OK, "%s", sllm_last_error());
    if (g) {
        expect(g, "custom root", "x12x", 1);
        expect(g, "custom root", "x1", 0);
    }
    grammar_free(g);
}

// ---- token filtering: agreement with one-by-one checks

static void test_filter(void) {
    grammar *g = load_gbnf("json.gbnf");
    if (!g) return;
    // a synthetic vocabulary: all substrings (up to 6 bytes) of sample JSON, single bytes, split UTF-8
    const char *sample = "{\"name\": \"caf\xC3\xA9 \xE4\xB8\x96\", \"n\": [1, -2.5e3, true, null], \"o\": {}}";
    char **pieces = NULL;
    size_t *lens = NULL;
    int n = 0, cap = 0;
    size_t sl = strlen(sample);
    for (size_t i = 0; i < sl; i++)
        for (size_t l = 1; l <= 6 && i + l <= sl; l++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                pieces = realloc(pieces, sizeof *pieces * (size_t)cap);
                lens = realloc(lens, sizeof *lens * (size_t)cap);
            }
            pieces[n] = malloc(l);
            memcpy(pieces[n], sample + i, l);
            lens[n++] = l;
        }
    for (int b = 0; b < 256; b++) {
        if (n == cap) {
            cap *= 2;
            pieces = realloc(pieces, sizeof *pieces * (size_t)cap);
            lens = realloc(lens, sizeof *lens * (size_t)cap);
        }
        pieces[n] = malloc(1);
        pieces[n][0] = (char)b;
        lens[n++] = 1;
    }
    pieces = realloc(pieces, sizeof *pieces * (size_t)(n + 1));
    lens = realloc(lens, sizeof *lens * (size_t)(n + 1));
    pieces[n] = malloc(1);
    lens[n++] = 0;  // empty piece
    grammar_vocab *v = grammar_vocab_new((const char *const *)pieces, lens, n);
    CHECK(v != NULL);
    uint8_t *a1 = malloc((size_t)n), *a2 = malloc((size_t)n);
    // states: every prefix of the sample
    int mismatches = 0, states = 0;
    grammar_state *st = grammar_state_new(g);
    for (size_t i = 0; i <= sl; i++) {
        int c1 = grammar_filter_tokens(st, (const char *const *)pieces, lens, n, a1);
        int c2 = grammar_filter_vocab(st, v, a2);
        int cnt = 0;
        for (int k = 0; k < n; k++) {
            int want = grammar_check(st, pieces[k], lens[k]) == 1;
            cnt += want;
            if (a1[k] != want || a2[k] != want) mismatches++;
        }
        if (c1 != cnt || c2 != cnt) mismatches++;
        states++;
        if (i < sl && grammar_accept(st, sample + i, 1) != 1) {
            CHECK(0, "sample rejected at %zu", i);
            break;
        }
    }
    CHECK(mismatches == 0, "%d filter mismatches over %d states", mismatches, states);
    CHECK(grammar_can_end(st));
    // a subset (candidate list) also agrees
    int sub = 50;
    int c3 = grammar_filter_tokens(st, (const char *const *)pieces + 100, lens + 100, sub, a1);
    int cnt = 0;
    for (int k = 0; k < sub; k++) cnt += a1[k] == (grammar_check(st, pieces[100 + k], lens[100 + k]) == 1);
    CHECK(cnt == sub && c3 >= 0);
    grammar_state_free(st);
    // speed: a 60k-piece vocabulary masked in a string position and in a structural position
    int big = 60000;
    char **bp = malloc(sizeof *bp * (size_t)big);
    size_t *bl = malloc(sizeof *bl * (size_t)big);
    for (int k = 0; k < big; k++) {
        size_t l = 1 + rnd() % 8;
        bp[k] = malloc(l);
        for (size_t j = 0; j < l; j++) bp[k][j] = "abcdefghij \"{}[],:0123456789e.-"[rnd() % 31];
        bl[k] = l;
    }
    grammar_vocab *bv = grammar_vocab_new((const char *const *)bp, bl, big);
    uint8_t *ba = malloc((size_t)big);
    grammar_state *s1 = grammar_state_new(g);
    grammar_accept(s1, "{\"key\": \"va", 11);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int na = grammar_filter_vocab(s1, bv, ba);
    grammar_state *s3 = grammar_state_new(g);
    grammar_accept(s3, "[1, ", 4);
    int nb = grammar_filter_vocab(s3, bv, ba);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "filter: 2 masks over %d pieces in %.1f ms (%d and %d allowed)\n", big, ms, na, nb);
    CHECK(na > 0 && nb > 0 && ms < 5000);
    grammar_state_free(s1), grammar_state_free(s3);
    for (int k = 0; k < big; k++) free(bp[k]);
    free(bp), free(bl), free(ba);
    grammar_vocab_free(bv);
    for (int k = 0; k < n; k++) free(pieces[k]);
    free(pieces), free(lens), free(a1), free(a2);
    grammar_vocab_free(v);
    grammar_free(g);
}

// ---- random generation by walking the grammar

typedef struct { int *minlen; grammar *g; char *out; size_t n, cap; int steps; } walker;

static void w_put(walker *w, uint32_t cp) {
    char b[4];
    size_t l = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (l == 1) b[0] = (char)cp;
    else if (l == 2) b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F));
    else if (l == 3) b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[2] = (char)(0x80 | (cp & 0x3F));
    else b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)), b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F));
    if (w->n + l + 1 > w->cap) w->out = realloc(w->out, w->cap = (w->cap + l + 1) * 2);
    memcpy(w->out + w->n, b, l);
    w->n += l;
    w->out[w->n] = 0;
}

static bool in_set(const grammar_sym *s, uint32_t cp) {
    bool in = false;
    for (int i = 0; i < s->n_ranges; i++) in |= cp >= s->ranges[2 * i] && cp <= s->ranges[2 * i + 1];
    return in != s->negated;
}

static bool w_char(walker *w, const grammar_sym *s) {
    static const uint32_t pool[] = {'a', 'Z', '0', '9', ' ', '"', '\\', '/', '{', '-', 0xE9, 0x4E16, 0x1F600, 0x416, '\t', '_', '.', '@', 'x'};
    for (int tries = 0; tries < 200; tries++) {
        uint32_t cp;
        if (!s->negated && s->n_ranges && tries < 100) {
            int r = (int)(rnd() % (uint32_t)s->n_ranges);
            uint32_t lo = s->ranges[2 * r], hi = s->ranges[2 * r + 1];
            cp = lo + rnd() % (hi - lo + 1);
        } else if (rnd() % 3 == 0) cp = pool[rnd() % (sizeof pool / sizeof *pool)];
        else cp = 0x20 + rnd() % 0x5F;
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        if (in_set(s, cp)) {
            w_put(w, cp);
            return true;
        }
    }
    return false;
}

static bool w_rule(walker *w, int r, int depth) {
    int na = grammar_rule_n_alts(w->g, r), pick = 0;
    bool tight = depth > 12 || w->n > 300 || ++w->steps > 20000;
    if (tight) {  // shortest alternative, so generation ends
        int best = INT32_MAX;
        for (int a = 0; a < na; a++) {
            long sum = 0;
            for (int i = 0; i < grammar_alt_len(w->g, r, a); i++) {
                grammar_sym s = grammar_alt_sym(w->g, r, a, i);
                sum += s.is_rule ? w->minlen[s.rule] : 1;
            }
            if (sum < best) best = (int)sum, pick = a;
        }
    } else pick = (int)(rnd() % (uint32_t)na);
    for (int i = 0; i < grammar_alt_len(w->g, r, pick); i++) {
        grammar_sym s = grammar_alt_sym(w->g, r, pick, i);
        if (s.is_rule ? !w_rule(w, s.rule, depth + 1) : !w_char(w, &s)) return false;
    }
    return true;
}

static int *min_lengths(grammar *g) {
    int R = grammar_n_rules(g);
    int *m = malloc(sizeof(int) * (size_t)R);
    for (int r = 0; r < R; r++) m[r] = 1 << 28;
    for (bool ch = true; ch;) {
        ch = false;
        for (int r = 0; r < R; r++)
            for (int a = 0; a < grammar_rule_n_alts(g, r); a++) {
                long sum = 0;
                for (int i = 0; i < grammar_alt_len(g, r, a); i++) {
                    grammar_sym s = grammar_alt_sym(g, r, a, i);
                    sum += s.is_rule ? m[s.rule] : 1;
                }
                if (sum < m[r]) m[r] = (int)sum, ch = true;
            }
    }
    return m;
}

// ---- an independent JSON Schema validator for the keyword subset: tests/schema_validate.h

static json_t *load_schema(const char *file) {
    char path[512];
    snprintf(path, sizeof path, "tests/schemas/%s", file);
    json_error_t e;
    json_t *s = json_load_file(path, JSON_DECODE_ANY, &e);
    CHECK(s != NULL, "%s: %s", path, e.text);
    return s;
}

static const char *schema_files[] = {"person.json", "enum_const.json", "nested_ref.json", "tree.json", "anyof.json",
                                     "allof.json", "additional.json", "open_object.json", "tuple.json", "formats.json",
                                     "ranges.json", "all_optional.json", "optional_extra.json", "array_bounds.json",
                                     "any.json", "strings.json"};

static void test_schemas_generate(void) {
    for (size_t f = 0; f < sizeof schema_files / sizeof *schema_files; f++) {
        json_t *s = load_schema(schema_files[f]);
        if (!s) continue;
        grammar *g = NULL;
        int rc = json_schema_to_grammar(s, &g);
        CHECK(rc == SLLM_OK, "%s: %s", schema_files[f], sllm_last_error());
        if (rc) { json_decref(s); continue; }
        walker w = {.minlen = min_lengths(g), .g = g};
        int bad_gen = 0, bad_match = 0, bad_json = 0, bad_valid = 0, N = 300, dups = 0;
        for (int k = 0; k < N; k++) {
            w.n = 0, w.steps = 0;
            if (w.out) w.out[0] = 0;
            if (!w_rule(&w, grammar_root(g), 0)) { bad_gen++; continue; }
            if (matches(g, w.out, w.n, (k & 1) != 0) != 1) {
                if (!bad_match++) fprintf(stderr, "  %s: matcher rejects generated %s\n", schema_files[f], w.out);
            }
            json_error_t e;
            json_t *v = json_loadb(w.out, w.n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &e);
            if (!v && strstr(e.text, "duplicate object key")) {
                // a context-free grammar cannot keep free-form keys distinct (generic objects, extra keys);
                // declared keys are kept distinct and tested with negative instances
                dups++;
                v = json_loadb(w.out, w.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
            }
            if (!v) {
                if (!bad_json++) fprintf(stderr, "  %s: invalid JSON %s: %s\n", schema_files[f], w.out, e.text);
                continue;
            }
            char why[256] = "";
            if (!schema_validate(s, s, v, why, sizeof why)) {
                if (!bad_valid++) fprintf(stderr, "  %s: instance %s fails: %s\n", schema_files[f], w.out, why);
            }
            json_decref(v);
        }
        CHECK(bad_gen == 0 && bad_match == 0 && bad_json == 0 && bad_valid == 0,
              "%s: %d/%d generation failures, %d matcher, %d JSON, %d schema", schema_files[f], bad_gen, N, bad_match, bad_json, bad_valid);
        if (dups) fprintf(stderr, "  %s: %d/%d generated objects repeat a free-form key\n", schema_files[f], dups, N);
        free(w.minlen), free(w.out);
        grammar_free(g);
        json_decref(s);
    }
}

typedef struct { const char *file, *text; int want; } inst;

static void test_schema_instances(void) {
    static const inst cases[] = {
        {"person.json", "{\"name\": \"Ann\", \"age\": 31}", 1},
        {"person.json", "{\"name\":\"Ann\",\"age\":31,\"email\":\"a@b.co\",\"tags\":[\"x\",\"yz\"]}", 1},
        {"person.json", "{\n  \"name\": \"Ann\",\n  \"age\": 0\n}", 1},
        {"person.json", "{\"age\": 31, \"name\": \"Ann\"}", 0},       // order: required in properties order
        {"person.json", "{\"name\": \"Ann\"}", 0},                    // missing age
        {"person.json", "{\"name\": \"\", \"age\": 3}", 0},           // minLength 1
        {"person.json", "{\"name\": \"Ann\", \"age\": 151}", 0},      // maximum
        {"person.json", "{\"name\": \"Ann\", \"age\": -1}", 0},       // minimum
        {"person.json", "{\"name\": \"Ann\", \"age\": 3, \"x\": 1}", 0},  // additionalProperties false
        {"person.json", "{\"name\": \"Ann\", \"age\": 3, \"tags\": [\"a\",\"b\",\"c\",\"d\"]}", 0},
        {"person.json", "{\"name\": \"Ann\", \"age\": 3, \"email\": \"nope\"}", 0},
        {"person.json", "{\"name\": \"Ann\", \"age\": 3}  ", 0},
        {"person.json", "{\"name\": \"Ann\",             \"age\": 3}", 0},  // unbounded whitespace
        {"enum_const.json", "{\"color\": null, \"version\": \"v1\"}", 1},
        {"enum_const.json", "{\"color\":\"caf\xC3\xA9 \\\"q\\\"\",\"version\":\"v1\",\"point\":{\"x\":1,\"y\":[true,null]}}", 1},
        {"enum_const.json", "{\"color\": \"blue\", \"version\": \"v1\"}", 0},
        {"enum_const.json", "{\"color\": 1, \"version\": \"v2\"}", 0},
        {"tree.json", "{\"value\": 1, \"children\": [{\"value\": 2}, {\"value\": 3, \"children\": []}]}", 1},
        {"tree.json", "{\"value\": 1, \"children\": [{\"value\": 2}, {\"value\": 3}, {\"value\": 4}]}", 0},
        {"tree.json", "{\"children\": []}", 0},
        {"anyof.json", "{\"a\": \"s\", \"b\": null, \"c\": [1, 2]}", 1},
        {"anyof.json", "{\"a\": 12345, \"b\": 1.5e3, \"c\": false, \"d\": {\"any\": [1]}}", 1},
        {"anyof.json", "{\"a\": 12346, \"b\": null, \"c\": true}", 0},
        {"anyof.json", "{\"a\": -6, \"b\": null, \"c\": true}", 0},
        {"allof.json", "{\"id\": 5, \"label\": \"x\", \"score\": -0.5}", 1},
        {"allof.json", "{\"id\": 0, \"label\": \"x\"}", 0},
        {"allof.json", "{\"id\": 5}", 0},
        {"additional.json", "{\"id\": 1, \"idle\": true, \"zz\": \"abcd\", \"idl\": \"\"}", 1},
        {"additional.json", "{\"id\": 1, \"zz\": \"abcde\"}", 0},
        {"additional.json", "{\"id\": 1, \"zz\": \"a\", \"id\": \"b\"}", 0},  // extra key repeating a declared one
        {"additional.json", "{\"id\": 1, \"idle\": \"x\"}", 0},
        {"optional_extra.json", "{}", 1},
        {"optional_extra.json", "{\"ab\": 1, \"abc\": 2, \"b\": 3}", 1},
        {"optional_extra.json", "{\"q\": 1, \"a\": 2}", 0},  // declared after extras: order
        {"tuple.json", "[\"123e4567-e89b-12d3-a456-426614174000\", 5, true, null]", 1},
        {"tuple.json", "[\"123e4567-e89b-12d3-a456-426614174000\", 5]", 0},
        {"tuple.json", "[\"123e4567-e89b-12d3-a456-426614174000\", 5, true, null, null, null]", 0},
        {"formats.json", "{\"d\":\"2024-02-29\",\"t\":\"23:59:60Z\",\"dt\":\"2024-01-01T00:00:00Z\",\"u\":\"123e4567-e89b-12d3-a456-426614174000\"}", 0},
        {"formats.json", "{\"d\":\"2024-02-29\",\"t\":\"23:59:59+05:30\",\"dt\":\"2024-01-01T00:00:00.123Z\",\"u\":\"123e4567-e89b-12d3-a456-426614174000\",\"other\":\"x\"}", 1},
        {"ranges.json", "[-100, 1, 1000000, -3, 37, -9]", 1},
        {"ranges.json", "[-7, 99999, 99999999, -99, 4321, 9]", 1},
        {"ranges.json", "[-6, 1, 1000000, -3, 37, -9]", 0},
        {"ranges.json", "[-100, 0, 1000000, -3, 37, -9]", 0},
        {"ranges.json", "[-100, 1, 999999, -3, 37, -9]", 0},
        {"ranges.json", "[-100, 1, 1000000, -2, 37, -9]", 0},
        {"ranges.json", "[-100, 1, 1000000, -3, 4322, -9]", 0},
        {"ranges.json", "[-100, 1, 1000000, -3, 36, 10]", 0},
        {"all_optional.json", "{}", 1},
        {"all_optional.json", "{\"y\": \"abc\", \"z\": null}", 1},
        {"all_optional.json", "{\"z\": null, \"y\": \"abc\"}", 0},
        {"all_optional.json", "{,\"z\": null}", 0},
        {"array_bounds.json", "[1, 2]", 1},
        {"array_bounds.json", "[1]", 0},
        {"array_bounds.json", "[1,2,3,4,5]", 0},
        {"array_bounds.json", "[1, 10]", 0},
        {"any.json", "{\"a\": [1, \"x\", {\"b\": null}]}", 1},
        {"any.json", "[1, 2", 0},
        {"strings.json", "[\"\\ud800\"]", 0},  // lone surrogate escapes are not JSON text jansson accepts
        {"strings.json", "[\"\\u00e9\\n\"]", 1},
    };
    const char *cur = NULL;
    grammar *g = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!cur || strcmp(cur, cases[i].file)) {
            grammar_free(g);
            g = NULL;
            json_t *s = load_schema(cases[i].file);
            if (s && json_schema_to_grammar(s, &g) != SLLM_OK) CHECK(0, "%s: %s", cases[i].file, sllm_last_error());
            json_decref(s);
            cur = cases[i].file;
        }
        if (g) {
            int got = matches(g, cases[i].text, strlen(cases[i].text), false);
            CHECK(got == cases[i].want, "%s: %s matched %d, expected %d", cases[i].file, cases[i].text, got, cases[i].want);
        }
    }
    grammar_free(g);
}

// Unsupported keywords (anywhere in the schema) are SLLM_ERR_UNSUPPORTED; malformed schemas SLLM_ERR_FORMAT.
static void schema_error_code(const char *text, int code) {
    json_error_t e;
    json_t *s = json_loads(text, JSON_DECODE_ANY, &e);
    char *gb = NULL;
    int rc = s ? json_schema_to_gbnf(s, &gb) : 0;
    CHECK(rc == code, "schema %s: rc %d, wanted %d (%s)", text, rc, code, sllm_last_error());
    free(gb);
    json_decref(s);
}

static void schema_error(const char *text, const char *want) {
    json_error_t e;
    json_t *s = json_loads(text, JSON_DECODE_ANY, &e);
    CHECK(s != NULL, "%s", e.text);
    char *gb = NULL;
    int rc = json_schema_to_gbnf(s, &gb);
    CHECK(rc < 0 && !gb && strstr(sllm_last_error(), want), "schema %s: rc %d, error '%s', wanted '%s'", text, rc,
          sllm_last_error(), want);
    free(gb);
    json_decref(s);
}

static void test_schema_errors(void) {
    schema_error_code("{\"type\": \"object\", \"properties\": {\"a\": {\"not\": {}}}}", SLLM_ERR_UNSUPPORTED);
    schema_error_code("{\"type\": \"array\", \"items\": {\"type\": \"string\", \"pattern\": \"x\"}}", SLLM_ERR_UNSUPPORTED);
    schema_error_code("{\"type\": \"strin\"}", SLLM_ERR_FORMAT);
    schema_error("{\"type\": \"object\", \"properties\": {\"zip\": {\"type\": \"string\", \"pattern\": \"^[0-9]{5}$\"}}}",
                 "#/properties/zip/pattern: regular expressions are not supported");
    schema_error("{\"type\": \"number\", \"minimum\": 0.5}", "#/minimum: bounds are supported for integers only");
    schema_error("{\"type\": \"array\", \"items\": {\"not\": {}}}", "#/items/not: unsupported keyword");
    schema_error("{\"$defs\": {\"a/b\": {\"multipleOf\": 3}}, \"$ref\": \"#/$defs/a~1b\"}", "#/$defs/a~1b/multipleOf: unsupported keyword");
    schema_error("{\"$ref\": \"#/$defs/missing\"}", "#/$ref: cannot resolve");
    schema_error("{\"$ref\": \"http://example.com/s.json\"}", "cannot resolve");
    schema_error("{\"type\": \"strin\"}", "#/type: unknown type \"strin\"");
    schema_error("{\"anyOf\": [{\"type\": \"string\"}, {\"patternProperties\": {}}]}", "#/anyOf/1/patternProperties");
    schema_error("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 2}", "maxLength below minLength");
    schema_error("{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 2}", "is empty");
    schema_error("{\"type\": \"integer\", \"maximum\": 1e20}", "#/maximum: bound beyond 16 digits");
    schema_error("false", "matches nothing");
    schema_error("[1]", "must be an object or a boolean");
    schema_error("{\"enum\": []}", "#/enum: must be a non-empty array");
    schema_error("{\"allOf\": [{\"type\": \"string\"}]}", "#/allOf: only object schemas");
    schema_error("{\"type\": \"array\", \"items\": [{}]}", "#/items: an array of schemas");
    schema_error("{\"type\": \"object\", \"properties\": {\"a\": {}}, \"required\": [\"b\"]}", "\"b\" is required but not allowed");
    schema_error("{\"type\": \"array\", \"prefixItems\": [{}, {}], \"minItems\": 3}", "cannot meet minItems");
    // recursion without any consumed input is left recursion in the grammar
    json_t *s = json_loads("{\"$ref\": \"#\"}", 0, NULL);
    grammar *g = NULL;
    CHECK(json_schema_to_grammar(s, &g) < 0 && !g && strstr(sllm_last_error(), "can never match"), "%s", sllm_last_error());
    json_decref(s);
    s = json_loads("{\"$defs\": {\"l\": {\"anyOf\": [{\"$ref\": \"#/$defs/l\"}, {\"type\": \"null\"}]}}, \"$ref\": \"#/$defs/l\"}", 0, NULL);
    g = NULL;
    int rc2 = json_schema_to_grammar(s, &g);
    CHECK(rc2 == SLLM_OK && g, "%s", sllm_last_error());  // a tail self-reference is harmless
    if (g) expect(g, "self-ref", "null", 1);
    grammar_free(g);
    json_decref(s);
}

// Truncated / mutated grammars and schemas: errors or grammars, never crashes (run under ASan).
static void test_fuzz(void) {
    const char *files[] = {"json.gbnf", "arithmetic.gbnf", "unicode.gbnf", "repeat.gbnf"};
    int parsed = 0, errors = 0, bad_msgs = 0;
    for (int f = 0; f < 4; f++) {
        char path[256];
        snprintf(path, sizeof path, "tests/grammars/%s", files[f]);
        size_t n;
        char *src = test_read_file(path, &n);
        if (!src) continue;
        char *buf = malloc(n + 1);
        for (int trial = 0; trial < 300; trial++) {
            memcpy(buf, src, n);
            size_t len = n;
            if (trial < 100) len = rnd() % (n + 1);
            else {
                int muts = 1 + (int)(rnd() % 3);
                for (int m = 0; m < muts; m++) buf[rnd() % n] = "()[]\"\\|*+?{}-^:= \n#ax0\xC3\xE9\xFF"[rnd() % 25];
            }
            grammar *g = NULL;
            int rc = grammar_parse(buf, len, "fuzz", NULL, &g);
            if (rc == SLLM_OK) {
                parsed++;
                grammar_state *st = grammar_state_new(g);
                if (st) {
                    for (int k = 0; k < 30; k++) {
                        char c = "{}[]\"a1 ,:-+()\xC3\xA9xyz"[rnd() % 19];
                        grammar_accept(st, &c, 1);
                    }
                    grammar_can_end(st);
                    grammar_state_free(st);
                }
                grammar_free(g);
            } else {
                errors++;
                if (!strstr(sllm_last_error(), "fuzz")) bad_msgs++;
            }
        }
        free(buf);
        free(src);
    }
    CHECK(bad_msgs == 0 && parsed > 0 && errors > 0, "grammar fuzz: %d parsed, %d errors, %d without a location", parsed, errors, bad_msgs);
    // schemas: drop or mutate keys/values
    int sok = 0, serr = 0, crashes = 0;
    for (size_t f = 0; f < sizeof schema_files / sizeof *schema_files; f++) {
        char path[256];
        snprintf(path, sizeof path, "tests/schemas/%s", schema_files[f]);
        size_t n;
        char *txt = test_read_file(path, &n);
        if (!txt) continue;
        for (int trial = 0; trial < 40; trial++) {
            char *b = strdup(txt);
            for (int m = 0; m < 2; m++) {
                size_t at = rnd() % n;
                b[at] = "0-9ax\"{}[]:,"[rnd() % 12];
            }
            json_t *s = json_loads(b, JSON_DECODE_ANY, NULL);
            if (s) {
                grammar *g = NULL;
                int rc = json_schema_to_grammar(s, &g);
                if (rc == SLLM_OK) sok++;
                else if (rc < 0 && sllm_last_error()[0]) serr++;
                else crashes++;
                grammar_free(g);
                json_decref(s);
            }
            free(b);
        }
        free(txt);
    }
    CHECK(crashes == 0 && sok > 0, "schema fuzz: %d ok, %d errors, %d odd", sok, serr, crashes);
}

int main(void) {
    if (access("tests/grammars/json.gbnf", R_OK) != 0 && chdir("..") != 0) {}
    test_gbnf_files();
    test_gbnf_errors();
    test_filter();
    test_schemas_generate();
    test_schema_instances();
    test_schema_errors();
    test_fuzz();
    return test_report();
}
