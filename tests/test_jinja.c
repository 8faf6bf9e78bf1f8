// Jinja engine + chat formatting tests.
//  1. Reference renders: every tests/templates/*.jinja x tests/chat_cases/*.json must equal what
//     @huggingface/jinja produced (tests/ref/jinja_ref.json, made by tests/ref/jinja_ref.mjs) byte for
//     byte, and where it raised, ours must return an error too.
//  2. Snippets from the same reference file: small templates exercising expressions, filters, tests,
//     loops, macros and whitespace control, also rendered by @huggingface/jinja.
//  3. Hand-checked behaviour: error positions, raise_exception, extensions, ChatML fallback, bad input.
//  4. Fuzz: hundreds of mutated/truncated real templates must render or fail cleanly, never crash.
#include "test.h"
#include "text/chat_template.h"
#include "text/jinja.h"
#include "sllm.h"
#include <jansson.h>
#include <stdint.h>

static void show_diff(const char *what, const char *want, const char *got) {
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  %s: first difference at byte %zu\n  want: %.80s\n  got:  %.80s\n", what, i, want + from, got + from);
}

static void test_reference(json_t *ref) {
    json_t *tokens = json_load_file("tests/templates/tokens.json", 0, NULL);
    CHECK(tokens != NULL, "tests/templates/tokens.json");
    json_t *results = json_object_get(ref, "results");
    size_t i, matched = 0, errors = 0;
    json_t *r;
    json_array_foreach(results, i, r) {
        if (json_object_get(r, "skipped")) continue;
        const char *tn = json_string_value(json_object_get(r, "template"));
        const char *cn = json_string_value(json_object_get(r, "case"));
        char path[512];
        snprintf(path, sizeof path, "tests/templates/%s.jinja", tn);
        char *src = test_read_file(path, NULL);
        snprintf(path, sizeof path, "tests/chat_cases/%s.json", cn);
        json_t *cs = json_load_file(path, 0, NULL);
        CHECK(src && cs, "%s x %s: missing input files", tn, cn);
        if (!src || !cs) { free(src); json_decref(cs); continue; }
        json_t *tok = json_object_get(tokens, tn);
        const char *bos = json_string_value(json_object_get(tok, "bos"));
        const char *eos = json_string_value(json_object_get(tok, "eos"));
        char *out = NULL;
        int rc = chat_render(src, json_object_get(cs, "messages"), json_object_get(cs, "tools"),
                             json_is_true(json_object_get(cs, "add_generation_prompt")), json_object_get(cs, "kwargs"),
                             bos, eos, &out);
        json_t *want = json_object_get(r, "output");
        if (want) {
            bool ok = rc == SLLM_OK && out && !strcmp(out, json_string_value(want));
            CHECK(ok, "%s x %s: rc=%d %s", tn, cn, rc, rc ? sllm_last_error() : "");
            if (!ok && rc == SLLM_OK && out) show_diff(tn, json_string_value(want), out);
            matched += ok;
        } else {
            CHECK(rc != SLLM_OK, "%s x %s: @huggingface/jinja raised '%s' but we rendered", tn, cn,
                  json_string_value(json_object_get(r, "error")));
            if (rc != SLLM_OK) {
                // raise_exception messages must come through verbatim
                const char *em = json_string_value(json_object_get(r, "error"));
                if (strstr(em, "must alternate") || strstr(em, "not supported") || strstr(em, "only supports"))
                    CHECK(strstr(sllm_last_error(), em) != NULL, "%s x %s: want '%s' in '%s'", tn, cn, em, sllm_last_error());
                errors++;
            }
        }
        free(out);
        free(src);
        json_decref(cs);
    }
    fprintf(stderr, "reference renders: %zu byte-identical, %zu expected errors\n", matched, errors);
    CHECK(matched >= 100, "only %zu reference renders matched", matched);
    json_decref(tokens);
}

static void test_snippets(json_t *ref) {
    json_t *sn = json_object_get(ref, "snippets");
    size_t i, ok_n = 0;
    json_t *s;
    json_array_foreach(sn, i, s) {
        const char *src = json_string_value(json_object_get(s, "src"));
        char *out = NULL;
        int rc = jinja_render_string(src, json_object_get(s, "ctx"), &out);
        json_t *want = json_object_get(s, "output");
        if (want) {
            bool ok = rc == SLLM_OK && !strcmp(out, json_string_value(want));
            CHECK(ok, "snippet %s\n  want: [%s]\n  got:  [%s] %s", src, json_string_value(want), out ? out : "",
                  rc ? sllm_last_error() : "");
            ok_n += ok;
        } else {
            CHECK(rc != SLLM_OK, "snippet %s: @huggingface/jinja raised '%s' but we rendered [%s]", src,
                  json_string_value(json_object_get(s, "error")), out ? out : "");
        }
        free(out);
    }
    fprintf(stderr, "snippets: %zu of %zu rendered identically\n", ok_n, json_array_size(sn));
}

static void expect_render(const char *src, const char *ctx_json, const char *want) {
    json_t *ctx = ctx_json ? json_loads(ctx_json, 0, NULL) : NULL;
    char *out = NULL;
    int rc = jinja_render_string(src, ctx, &out);
    CHECK(rc == SLLM_OK && !strcmp(out, want), "%s\n  want: [%s]\n  got:  [%s] %s", src, want, out ? out : "",
          rc ? sllm_last_error() : "");
    free(out);
    json_decref(ctx);
}

static void expect_error(const char *src, const char *ctx_json, const char *msg_part) {
    json_t *ctx = ctx_json ? json_loads(ctx_json, 0, NULL) : NULL;
    char *out = NULL;
    int rc = jinja_render_string(src, ctx, &out);
    CHECK(rc != SLLM_OK && out == NULL && strstr(sllm_last_error(), msg_part), "%s: rc=%d want error with '%s', got '%s'",
          src, rc, msg_part, rc ? sllm_last_error() : out);
    free(out);
    json_decref(ctx);
}

static void test_behaviour(void) {
    // error positions are template:LINE:COL
    expect_error("line one\n{{ x + }}", NULL, "template:2:");
    expect_error("{% for x in y %}no end", NULL, "template:1:");
    expect_error("a\nb\n  {{ raise_exception('boom ' ~ 42) }}", NULL, "template:3:6: boom 42");
    expect_error("{{ 'unterminated }}", NULL, "Unexpected end of input");
    expect_error("{% frobnicate %}", NULL, "Unknown statement type: frobnicate");
    expect_error("{{ x | nosuchfilter }}", "{\"x\": \"s\"}", "Unknown StringValue filter: nosuchfilter");
    expect_error("{{ 1 + none }}", NULL, "null values");
    expect_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", NULL, "depth");
    expect_error("{{ range(100000000) | length }}", NULL, "range()");
    // pathological nesting is an error, not a stack overflow
    static const char *unit[] = { "(", "[", "not ", "-", "1 + ", "x|trim|", "a.b", "1 if x else " };
    for (size_t u = 0; u < sizeof unit / sizeof *unit; u++) {
        size_t ul = strlen(unit[u]), reps = 100000;
        char *src = malloc(ul * reps + 16);
        memcpy(src, "{{ ", 3);
        for (size_t k = 0; k < reps; k++) memcpy(src + 3 + k * ul, unit[u], ul);
        strcpy(src + 3 + reps * ul, "1 }}");
        char *out = NULL;
        int rc = jinja_render_string(src, NULL, &out);
        CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "template:"), "deep '%s': rc=%d", unit[u], rc);
        free(out);
        free(src);
    }
    {
        char src[8192] = "{{ 0";
        for (int k = 0; k < 200; k++) strcat(src, " + 1");  // long but reasonable chains still work
        strcat(src, " }}");
        expect_render(src, NULL, "200");
    }
    // extensions beyond @huggingface/jinja (Python Jinja meanings)
    expect_render("{% set l = [1] %}{% set _ = l.append(2) %}{{ l }}", NULL, "[1, 2]");
    expect_render("{{ 'ab' * 3 }}|{{ 10 is divisibleby 5 }}|{{ 3 is in [1, 3] }}|{{ [1, 2, 3] | sum }}", NULL, "ababab|true|true|6");
    expect_render("{{ 'a,b' .find(',') }}{{ 'hello world' | wordcount }}{{ [3, 1, 2] | max }}", NULL, "123");
    expect_render("{% for c in 'héllo' %}{{ c }}.{% endfor %}", NULL, "h.é.l.l.o.");
    expect_render("{% raw %}{{ x }}{% endraw %}", NULL, "{{ x }}");
    // whitespace control and trim_blocks / lstrip_blocks
    expect_render("  {% if true %}\nyes\n  {% endif %}\nend", NULL, "yes\nend");
    expect_render("a  {{- 'b' -}}  c", NULL, "abc");
    expect_render("{# comment #}\nx{#- c -#}  y", NULL, "xy");
    // JSON context: whole reals become integers (as JSON.parse), key order kept
    expect_render("{{ a }} {{ b }} {{ d | tojson }}", "{\"a\": 2.0, \"b\": 2.5, \"d\": {\"z\": 1, \"a\": [true, null]}}",
                  "2 2.5 {\"z\": 1, \"a\": [true, null]}");
    // ChatML fallback when the model has no template
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);
    char *out = NULL;
    CHECK(chat_render(NULL, msgs, NULL, true, NULL, NULL, NULL, &out) == SLLM_OK &&
          !strcmp(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"), "chatml fallback: %s", out ? out : sllm_last_error());
    free(out);
    // bad arguments give errors, not crashes
    CHECK(chat_render(NULL, NULL, NULL, true, NULL, NULL, NULL, &out) == SLLM_ERR_ARG);
    json_t *bad = json_loads("[1]", 0, NULL);
    CHECK(chat_render(NULL, bad, NULL, true, NULL, NULL, NULL, &out) == SLLM_ERR_ARG && strstr(sllm_last_error(), "messages[0]"));
    CHECK(chat_render_json(NULL, "[{\"role\":", NULL, true, NULL, NULL, NULL, &out) == SLLM_ERR_ARG);
    CHECK(chat_render_json("{{ messages[0].content }}", "[{\"role\":\"user\",\"content\":\"x\"}]", NULL, false,
                           "{\"enable_thinking\": false}", NULL, NULL, &out) == SLLM_OK && !strcmp(out, "x"));
    free(out);
    // tool-call arguments given as a JSON string are parsed into an object
    json_t *tc = json_loads("[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}]", 0, NULL);
    CHECK(chat_render("{{ messages[0].tool_calls[0].function.arguments.a }}", tc, NULL, false, NULL, NULL, NULL, &out) == SLLM_OK &&
          !strcmp(out, "1"), "arguments string: %s", out ? out : sllm_last_error());
    free(out);
    json_decref(tc);
    json_decref(bad);
    json_decref(msgs);
}

// xorshift64*: deterministic fuzz inputs
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void test_fuzz(void) {
    static const char *names[] = { "qwen3", "llama3", "gemma3", "mistral-nemo", "hermes3-tool-use", "llama3.2", "qwq-32b",
                                   "deepseek-r1-distill-qwen", "granite3.3", "zephyr" };
    static const char *frags[] = { "{%", "%}", "{{", "}}", "{#", "#}", "-", "'", "\"", "(", ")", "[", "]", "|", "\\",
                                   "{% endfor %}", "{% if x %}", "{% for a in b %}", "**", "//", ".", ",", "=", "not ",
                                   " is ", "~", "\xff", "\xe2\x80", "{{-", "-}}", "loop.", "ns.", "[::-1]", "|tojson(indent=2)" };
    json_t *ctx = json_load_file("tests/chat_cases/parallel_tools.json", 0, NULL);
    json_t *vars = json_object();
    json_object_set(vars, "messages", json_object_get(ctx, "messages"));
    json_object_set(vars, "tools", json_object_get(ctx, "tools"));
    json_object_set_new(vars, "add_generation_prompt", json_true());
    int ok = 0, err = 0, bad = 0, iters = getenv("SLLM_FULL") ? 5000 : 600;
    for (int it = 0; it < iters; it++) {
        char path[256];
        snprintf(path, sizeof path, "tests/templates/%s.jinja", names[rnd() % (sizeof names / sizeof *names)]);
        size_t len;
        char *src = test_read_file(path, &len);
        if (!src) { bad++; continue; }
        size_t cap = len + 512;
        char *m = malloc(cap + 1);
        memcpy(m, src, len);
        int nmut = 1 + (int)(rnd() % 3);
        for (int k = 0; k < nmut; k++) {
            size_t pos = len ? rnd() % len : 0;
            switch (rnd() % 4) {
            case 0: if (len) m[pos] = (char)(rnd() & 0xff); break;                  // flip a byte
            case 1: if (rnd() % 4 == 0) len = pos; break;                              // truncate (sometimes)
            case 2: if (len > pos + 1) { size_t d = 1 + rnd() % 16; if (d > len - pos) d = len - pos; memmove(m + pos, m + pos + d, len - pos - d); len -= d; } break;
            default: {                                                               // insert a fragment
                const char *f = frags[rnd() % (sizeof frags / sizeof *frags)];
                size_t fl = strlen(f);
                if (len + fl <= cap) { memmove(m + pos + fl, m + pos, len - pos); memcpy(m + pos, f, fl); len += fl; }
            }
            }
        }
        m[len] = 0;
        jinja_template *t = NULL;
        int rc = jinja_parse(m, len, &t);
        if (rc == SLLM_OK) {
            char *out = NULL;
            rc = jinja_render(t, vars, &out, NULL);
            if (rc == SLLM_OK && !out) bad++;
            free(out);
            jinja_free(t);
        }
        if (rc == SLLM_OK) ok++;
        else if (!strncmp(sllm_last_error(), "template:", 9)) err++;
        else { bad++; fprintf(stderr, "fuzz: error without position: %s\n", sllm_last_error()); }
        free(m);
        free(src);
    }
    fprintf(stderr, "fuzz: %d mutated templates: %d rendered, %d clean errors\n", iters, ok, err);
    CHECK(bad == 0 && ok + err == iters, "fuzz: %d bad results", bad);
    CHECK(ok > 0 && err > 0, "fuzz should produce both outcomes (ok=%d err=%d)", ok, err);
    json_decref(vars);
    json_decref(ctx);
}

int main(void) {
    json_error_t je;
    json_t *ref = json_load_file("tests/ref/jinja_ref.json", 0, &je);
    CHECK(ref != NULL, "tests/ref/jinja_ref.json: %s (run node tests/ref/jinja_ref.mjs)", je.text);
    if (ref) {
        test_reference(ref);
        test_snippets(ref);
    }
    test_behaviour();
    test_fuzz();
    json_decref(ref);
    return test_report();
}
