// chat_parse: recorded-style replies (Qwen3 thinking on/off with tool calls, Hermes parallel calls,
// Llama 3.x JSON calls, generic JSON) and malformed ones, each fed whole, split in two at every byte,
// one byte at a time and in random pieces: the final message must be identical every time, the
// streamed content/reasoning deltas must concatenate to the final fields, and tool-call events must
// match the final tool_calls.
#include "test.h"
#include "text/chat_parse.h"
#include "sllm.h"

typedef struct {
    const char *name;
    cp_format fmt;
    bool reasoning, starts_in_reasoning;
    const char *input;
    const char *content;    // NULL: content must be null
    const char *reasoning_text;  // NULL: no reasoning_content
    int n_calls;
    const char *call_names[3];
    const char *call_args[3];  // JSON text compared structurally
    bool error;
} tcase;

static const tcase cases[] = {
    {"qwen3 think + tool call", CP_FORMAT_AUTO, true, false,
     "<think>\nThe user wants the weather in Paris. I should call get_weather.\n</think>\n\n<tool_call>\n"
     "{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>",
     NULL, "The user wants the weather in Paris. I should call get_weather.", 1, {"get_weather"},
     {"{\"location\": \"Paris\", \"unit\": \"celsius\"}"}, false},
    {"qwen3 think, answer", CP_FORMAT_HERMES, true, false,
     "<think>\nLet me think: 2 + 2 = 4.\nSo the answer is 4.\n</think>\n\nThe answer is **4**. \xF0\x9F\x98\x80",
     "The answer is **4**. \xF0\x9F\x98\x80", "Let me think: 2 + 2 = 4.\nSo the answer is 4.", 0, {0}, {0}, false},
    {"qwen3 thinking off", CP_FORMAT_AUTO, true, false, "Hello! How can I help you today?",
     "Hello! How can I help you today?", NULL, 0, {0}, {0}, false},
    {"qwen3 empty think", CP_FORMAT_AUTO, true, false, "<think>\n\n</think>\n\nHi there.", "Hi there.", NULL, 0,
     {0}, {0}, false},
    {"hermes parallel calls", CP_FORMAT_HERMES, false, false,
     "I'll check both cities.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n"
     "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"London\"}}\n</tool_call>",
     "I'll check both cities.", NULL, 2, {"get_weather", "get_weather"},
     {"{\"location\":\"Paris\"}", "{\"location\":\"London\"}"}, false},
    {"qwen3 think + 3 calls", CP_FORMAT_AUTO, true, false,
     "<think>\nNeed time, weather and a search.\n</think>\n\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n"
     "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"S\xC3\xA3o Paulo\", \"days\": [1, 2]}}\n"
     "</tool_call>\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"a \\\"quoted\\\" } brace\"}}\n</tool_call>",
     NULL, "Need time, weather and a search.", 3, {"get_time", "get_weather", "search"},
     {"{}", "{\"city\": \"S\xC3\xA3o Paulo\", \"days\": [1, 2]}", "{\"q\": \"a \\\"quoted\\\" } brace\"}"}, false},
    {"prompt opened think", CP_FORMAT_AUTO, true, true, "Okay, 17 * 3 = 51.\n</think>\n\n51", "51",
     "Okay, 17 * 3 = 51.", 0, {0}, {0}, false},
    {"text, call, text", CP_FORMAT_AUTO, false, false,
     "Let me look.\n<tool_call>\n{\"name\": \"ls\", \"arguments\": {\"path\": \"/\"}}\n</tool_call>\nDone.",
     "Let me look.\n\nDone.", NULL, 1, {"ls"}, {"{\"path\": \"/\"}"}, false},
    {"arguments as string", CP_FORMAT_HERMES, false, false,
     "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"a\\\":1}\"}\n</tool_call>", NULL, NULL, 1, {"f"},
     {"{\"a\":1}"}, false},
    {"llama3.2 parameters", CP_FORMAT_LLAMA3, false, false,
     "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}", NULL, NULL, 1, {"get_weather"},
     {"{\"location\": \"Paris\"}"}, false},
    {"llama3.2 auto", CP_FORMAT_AUTO, false, false,
     "{\"type\": \"function\", \"name\": \"get_weather\", \"parameters\": {\"location\": \"Tokyo\", \"n\": 3}}", NULL,
     NULL, 1, {"get_weather"}, {"{\"location\": \"Tokyo\", \"n\": 3}"}, false},
    {"llama3.1 python tag", CP_FORMAT_LLAMA3, false, false,
     "<|python_tag|>{\"name\": \"search\", \"arguments\": {\"query\": \"sllm\"}}", NULL, NULL, 1, {"search"},
     {"{\"query\": \"sllm\"}"}, false},
    {"llama3 several ;", CP_FORMAT_LLAMA3, false, false,
     "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": [1, {\"y\": 2}]}}", NULL, NULL, 2,
     {"a", "b"}, {"{}", "{\"x\": [1, {\"y\": 2}]}"}, false},
    {"llama3 several newline", CP_FORMAT_AUTO, false, false,
     "{\"name\": \"a\", \"parameters\": {\"k\": 1}}\n{\"name\": \"b\", \"parameters\": {\"k\": 2}}\n", NULL, NULL, 2,
     {"a", "b"}, {"{\"k\": 1}", "{\"k\": 2}"}, false},
    {"generic tool_call", CP_FORMAT_GENERIC, false, false,
     "{\"tool_call\": {\"name\": \"f\", \"arguments\": {\"k\": \"v\"}}}", NULL, NULL, 1, {"f"}, {"{\"k\": \"v\"}"}, false},
    {"generic tool_calls", CP_FORMAT_GENERIC, false, false,
     "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"z\": null}}]}", NULL,
     NULL, 2, {"f", "g"}, {"{}", "{\"z\": null}"}, false},
    {"generic response", CP_FORMAT_GENERIC, false, false, "{\"response\": \"Just text.\"}", "Just text.", NULL, 0, {0},
     {0}, false},
    {"generic name+arguments", CP_FORMAT_GENERIC, false, false, "{\"name\": \"f\", \"arguments\": {\"a\": true}}", NULL,
     NULL, 1, {"f"}, {"{\"a\": true}"}, false},
    {"json content, not a call", CP_FORMAT_AUTO, false, false, "{\"name\": \"Bob\", \"age\": 3}",
     "{\"name\": \"Bob\", \"age\": 3}", NULL, 0, {0}, {0}, false},
    {"braces then text", CP_FORMAT_AUTO, false, false, "{curly} is not JSON", "{curly} is not JSON", NULL, 0, {0}, {0},
     false},
    {"call then trailing text", CP_FORMAT_LLAMA3, false, false, "{\"name\": \"f\", \"parameters\": {}} then more",
     "then more", NULL, 1, {"f"}, {"{}"}, false},
    {"lookalike tags", CP_FORMAT_AUTO, true, false, "Use <tool and < think > and </think> or <|python a<b<",
     "Use <tool and < think > and </think> or <|python a<b<", NULL, 0, {0}, {0}, false},
    {"unicode", CP_FORMAT_AUTO, true, false, "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xF0\x9F\x91\x8B \xE4\xB8\x96\xE7\x95\x8C",
     "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xF0\x9F\x91\x8B \xE4\xB8\x96\xE7\x95\x8C", NULL, 0, {0}, {0}, false},
    {"format none", CP_FORMAT_NONE, false, false, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
     "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", NULL, 0, {0}, {0}, false},
    {"think not parsed when off", CP_FORMAT_HERMES, false, false, "<think>x</think>y", "<think>x</think>y", NULL, 0,
     {0}, {0}, false},
    // malformed
    {"unclosed tool_call", CP_FORMAT_AUTO, false, false, "Sure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {",
     "Sure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {", NULL, 0, {0}, {0}, true},
    {"broken json in tool_call", CP_FORMAT_HERMES, false, false,
     "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>",
     "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>", NULL, 0, {0}, {0}, true},
    {"missing name", CP_FORMAT_HERMES, false, false, "<tool_call>\n{\"arguments\": {}}\n</tool_call>",
     "<tool_call>\n{\"arguments\": {}}\n</tool_call>", NULL, 0, {0}, {0}, true},
    {"good call then bad call", CP_FORMAT_HERMES, false, false,
     "<tool_call>\n{\"name\": \"ok\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": 5}\n</tool_call>",
     "<tool_call>\n{\"name\": 5}\n</tool_call>", NULL, 1, {"ok"}, {"{}"}, true},
    {"unclosed think", CP_FORMAT_AUTO, true, false, "<think>\nI am thinking and the output was cut",
     "", "I am thinking and the output was cut", 0, {0}, {0}, true},
    {"llama3 unterminated", CP_FORMAT_LLAMA3, false, false, "{\"name\": \"f\", \"parameters\": {\"a\": 1}",
     "{\"name\": \"f\", \"parameters\": {\"a\": 1}", NULL, 0, {0}, {0}, true},
    {"llama3 bad json", CP_FORMAT_AUTO, false, false, "{\"name\": \"f\", \"parameters\": {\"a\": 1,}}",
     "{\"name\": \"f\", \"parameters\": {\"a\": 1,}}", NULL, 0, {0}, {0}, true},
    {"python tag garbage", CP_FORMAT_LLAMA3, false, false, "<|python_tag|>brave_search.call(query=\"x\")",
     "<|python_tag|>brave_search.call(query=\"x\")", NULL, 0, {0}, {0}, true},
    {"invalid utf8", CP_FORMAT_AUTO, false, false, "ab\xC3(\xFF" "cd\xE4\xB8", "ab\xEF\xBF\xBD(\xEF\xBF\xBD" "cd\xEF\xBF\xBD\xEF\xBF\xBD",
     NULL, 0, {0}, {0}, false},
    {"empty", CP_FORMAT_AUTO, true, false, "", "", NULL, 0, {0}, {0}, false},
};

typedef struct {
    char content[4096], reasoning[4096];
    size_t nc, nr;
    json_t *events;  // [[id, name, args], ...]
    bool bad_order;
} collected;

static void on_delta(const cp_delta *d, void *user) {
    collected *c = user;
    if (d->kind == CP_DELTA_CONTENT || d->kind == CP_DELTA_REASONING) {
        char *dst = d->kind == CP_DELTA_CONTENT ? c->content : c->reasoning;
        size_t *n = d->kind == CP_DELTA_CONTENT ? &c->nc : &c->nr;
        if (*n + d->len < 4096) memcpy(dst + *n, d->text, d->len), *n += d->len;
        dst[*n] = 0;
    } else if (d->kind == CP_DELTA_TOOL_START) {
        if ((size_t)d->tool_index != json_array_size(c->events)) c->bad_order = true;
        json_array_append_new(c->events, json_pack("[s,s,s]", d->tool_id, d->tool_name, ""));
    } else {
        json_t *e = json_array_get(c->events, (size_t)d->tool_index);
        if (!e) { c->bad_order = true; return; }
        char buf[4096];
        snprintf(buf, sizeof buf, "%s%.*s", json_string_value(json_array_get(e, 2)), (int)d->len, d->text);
        json_array_set_new(e, 2, json_string(buf));
    }
}

static uint64_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

// Feeds the input cut at the given offsets; checks streaming invariants; returns the final message.
static json_t *run(const tcase *t, const size_t *cuts, int ncuts, const char *how) {
    cp_config cfg = {t->fmt, t->reasoning, t->starts_in_reasoning, 42};
    cp_parser *p = cp_new(&cfg);
    collected c = {.events = json_array()};
    size_t len = strlen(t->input), prev = 0;
    for (int k = 0; k <= ncuts; k++) {
        size_t at = k < ncuts ? cuts[k] : len;
        CHECK(cp_feed(p, t->input + prev, at - prev, on_delta, &c) == SLLM_OK);
        prev = at;
    }
    json_t *m = cp_finish(p, on_delta, &c);
    cp_free(p);
    if (!m) {
        CHECK(0, "%s (%s): cp_finish returned NULL", t->name, how);
        json_decref(c.events);
        return NULL;
    }
    json_t *jc = json_object_get(m, "content"), *jr = json_object_get(m, "reasoning_content");
    const char *content = json_is_string(jc) ? json_string_value(jc) : "";
    const char *reasoning = json_is_string(jr) ? json_string_value(jr) : "";
    bool ok_c = strcmp(c.content, content) == 0, ok_r = strcmp(c.reasoning, reasoning) == 0;
    CHECK(ok_c, "%s (%s): streamed content '%s' != final '%s'", t->name, how, c.content, content);
    CHECK(ok_r, "%s (%s): streamed reasoning '%s' != final '%s'", t->name, how, c.reasoning, reasoning);
    json_t *calls = json_object_get(m, "tool_calls");
    bool ev_ok = !c.bad_order && json_array_size(c.events) == json_array_size(calls);
    for (size_t i = 0; ev_ok && i < json_array_size(calls); i++) {
        json_t *call = json_array_get(calls, i), *e = json_array_get(c.events, i);
        json_t *fn = json_object_get(call, "function");
        ev_ok = strcmp(json_string_value(json_array_get(e, 0)), json_string_value(json_object_get(call, "id"))) == 0 &&
                strcmp(json_string_value(json_array_get(e, 1)), json_string_value(json_object_get(fn, "name"))) == 0 &&
                strcmp(json_string_value(json_array_get(e, 2)), json_string_value(json_object_get(fn, "arguments"))) == 0;
    }
    CHECK(ev_ok, "%s (%s): tool-call events do not match tool_calls", t->name, how);
    json_decref(c.events);
    return m;
}

static void check_expected(const tcase *t, json_t *m) {
    json_t *jc = json_object_get(m, "content");
    if (t->content) CHECK(json_is_string(jc) && strcmp(json_string_value(jc), t->content) == 0,
                          "%s: content '%s' expected '%s'", t->name, json_string_value(jc), t->content);
    else CHECK(json_is_null(jc), "%s: content should be null", t->name);
    json_t *jr = json_object_get(m, "reasoning_content");
    if (t->reasoning_text) CHECK(json_is_string(jr) && strcmp(json_string_value(jr), t->reasoning_text) == 0,
                                 "%s: reasoning '%s' expected '%s'", t->name, json_string_value(jr), t->reasoning_text);
    else CHECK(jr == NULL, "%s: unexpected reasoning_content", t->name);
    json_t *calls = json_object_get(m, "tool_calls");
    CHECK((int)json_array_size(calls) == t->n_calls, "%s: %zu calls, expected %d", t->name, json_array_size(calls), t->n_calls);
    for (int i = 0; i < t->n_calls && i < (int)json_array_size(calls); i++) {
        json_t *call = json_array_get(calls, (size_t)i), *fn = json_object_get(call, "function");
        const char *id = json_string_value(json_object_get(call, "id"));
        CHECK(id && strncmp(id, "call_", 5) == 0 && strlen(id) == 21, "%s: id '%s'", t->name, id);
        CHECK(strcmp(json_string_value(json_object_get(call, "type")), "function") == 0);
        CHECK(strcmp(json_string_value(json_object_get(fn, "name")), t->call_names[i]) == 0, "%s: call %d name", t->name, i);
        json_t *args = json_object_get(fn, "arguments");
        CHECK(json_is_string(args), "%s: arguments must be a JSON string", t->name);
        json_t *got = json_loads(json_string_value(args), 0, NULL), *want = json_loads(t->call_args[i], 0, NULL);
        CHECK(got && want && json_equal(got, want), "%s: call %d arguments %s, expected %s", t->name, i,
              json_string_value(args), t->call_args[i]);
        json_decref(got), json_decref(want);
    }
    bool err = json_is_true(json_object_get(m, "parse_error"));
    CHECK(err == t->error, "%s: parse_error=%d expected %d (%s)", t->name, err, t->error,
          json_string_value(json_object_get(m, "parse_error_message")));
    if (err) CHECK(json_is_string(json_object_get(m, "parse_error_message")));
}

static void test_cases(void) {
    int n = (int)(sizeof cases / sizeof *cases);
    size_t cuts[4096];
    for (int ci = 0; ci < n; ci++) {
        const tcase *t = &cases[ci];
        size_t len = strlen(t->input);
        json_t *ref = run(t, NULL, 0, "whole");
        if (!ref) continue;
        check_expected(t, ref);
        int mism = 0;
        for (size_t at = 0; at <= len; at++) {  // (b) two deltas, every split point
            cuts[0] = at;
            json_t *m = run(t, cuts, 1, "split2");
            if (!m || !json_equal(m, ref)) {
                if (mism++ == 0) {
                    char *a = m ? json_dumps(m, 0) : NULL, *b = json_dumps(ref, 0);
                    fprintf(stderr, "  %s: split at %zu: %s\n  vs whole: %s\n", t->name, at, a ? a : "(null)", b ? b : "(null)");
                    free(a), free(b);
                }
            }
            json_decref(m);
        }
        CHECK(mism == 0, "%s: %d two-piece splits differ from the whole feed", t->name, mism);
        for (size_t k = 0; k + 1 < len && k < 4096; k++) cuts[k] = k + 1;  // (c) byte by byte
        json_t *m = run(t, cuts, len > 1 ? (int)len - 1 : 0, "bytewise");
        CHECK(m && json_equal(m, ref), "%s: byte-at-a-time differs", t->name);
        json_decref(m);
        for (int trial = 0; trial < 20; trial++) {  // (d) random pieces
            int nc = 0;
            size_t at = 0;
            while (len && nc < 4096) {
                at += 1 + rnd() % 9;
                if (at >= len) break;
                cuts[nc++] = at;
            }
            m = run(t, cuts, nc, "random");
            CHECK(m && json_equal(m, ref), "%s: random split %d differs", t->name, trial);
            json_decref(m);
        }
        json_decref(ref);
    }
}

// Content is released as soon as it cannot start a tag.
static void test_eager_streaming(void) {
    cp_config cfg = {CP_FORMAT_AUTO, true, false, 1};
    cp_parser *p = cp_new(&cfg);
    collected c = {.events = json_array()};
    cp_feed(p, "The answer is 4", 15, on_delta, &c);
    CHECK(strcmp(c.content, "The answer is 4") == 0, "got '%s'", c.content);
    cp_feed(p, " and <tool_", 11, on_delta, &c);
    CHECK(strcmp(c.content, "The answer is 4 and") == 0, "held tag prefix: got '%s'", c.content);
    cp_feed(p, "x", 1, on_delta, &c);
    CHECK(strcmp(c.content, "The answer is 4 and <tool_x") == 0, "got '%s'", c.content);
    cp_feed(p, " \xE4\xB8", 3, on_delta, &c);  // half a character is held
    CHECK(strcmp(c.content, "The answer is 4 and <tool_x") == 0, "got '%s'", c.content);
    cp_feed(p, "\x96!", 2, on_delta, &c);
    CHECK(strcmp(c.content, "The answer is 4 and <tool_x \xE4\xB8\x96!") == 0, "got '%s'", c.content);
    json_t *m = cp_finish(p, on_delta, &c);
    CHECK(cp_feed(p, "x", 1, NULL, NULL) != SLLM_OK, "feed after finish must fail");
    CHECK(cp_finish(p, NULL, NULL) == NULL, "second finish must fail");
    json_decref(m);
    cp_free(p);
    json_decref(c.events);

    // reasoning streams before </think> arrives
    cp_config rc = {CP_FORMAT_AUTO, true, false, 1};
    p = cp_new(&rc);
    c = (collected){.events = json_array()};
    const char *s = "<think>\nstep one, step two</thi";
    cp_feed(p, s, strlen(s), on_delta, &c);
    CHECK(strcmp(c.reasoning, "step one, step two") == 0, "got '%s'", c.reasoning);
    CHECK(c.nc == 0);
    cp_free(p);
    json_decref(c.events);

    // ids differ between calls and follow the seed
    cp_config a = {CP_FORMAT_HERMES, false, false, 7}, b = a;
    b.id_seed = 8;
    const char *two = "<tool_call>{\"name\":\"x\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"y\",\"arguments\":{}}</tool_call>";
    cp_parser *pa = cp_new(&a), *pb = cp_new(&b);
    cp_feed(pa, two, strlen(two), NULL, NULL);
    cp_feed(pb, two, strlen(two), NULL, NULL);
    json_t *ma = cp_finish(pa, NULL, NULL), *mb = cp_finish(pb, NULL, NULL);
    const char *id0 = json_string_value(json_object_get(json_array_get(json_object_get(ma, "tool_calls"), 0), "id"));
    const char *id1 = json_string_value(json_object_get(json_array_get(json_object_get(ma, "tool_calls"), 1), "id"));
    const char *idb = json_string_value(json_object_get(json_array_get(json_object_get(mb, "tool_calls"), 0), "id"));
    CHECK(id0 && id1 && idb && strcmp(id0, id1) != 0 && strcmp(id0, idb) != 0);
    json_decref(ma), json_decref(mb);
    cp_free(pa), cp_free(pb);
    cp_config bad = {(cp_format)99, false, false, 0};
    CHECK(cp_new(&bad) == NULL && strstr(sllm_last_error(), "format"));
}

// Random byte soup containing tag fragments never crashes and never loses non-whitespace text.
static void test_fuzz(void) {
    static const char *frags[] = {"<think>", "</think>", "<tool_call>", "</tool_call>", "<|python_tag|>", "{", "}",
                                  "\"name\"", ":", "\"f\"", ",", "\"arguments\"", "{}", "[", "]", "\\", "\"", " ",
                                  "\n", "abc", "\xC3\xA9", "\xE4", ";", "<", "</"};
    int nf = (int)(sizeof frags / sizeof *frags), lost = 0;
    for (int trial = 0; trial < 400; trial++) {
        char in[512] = {0};
        size_t n = 0;
        int parts = 1 + (int)(rnd() % 20);
        for (int k = 0; k < parts; k++) {
            const char *f = frags[rnd() % (uint32_t)nf];
            if (n + strlen(f) < sizeof in) memcpy(in + n, f, strlen(f)), n += strlen(f);
        }
        cp_config cfg = {(cp_format)(rnd() % 5), rnd() % 2 == 0, rnd() % 4 == 0, 3};
        cp_parser *p = cp_new(&cfg);
        size_t at = 0;
        while (at < n) {
            size_t k = 1 + rnd() % 7;
            if (at + k > n) k = n - at;
            cp_feed(p, in + at, k, NULL, NULL);
            at += k;
        }
        json_t *m = cp_finish(p, NULL, NULL);
        cp_free(p);
        if (!m) { lost++; continue; }
        // count letters 'a','b','c' in input vs output (content + reasoning + names + args)
        int want = 0, got = 0;
        for (size_t i = 0; i < n; i++) want += in[i] == 'a' || in[i] == 'b' || in[i] == 'c';
        char *dump = json_dumps(m, 0);
        for (const char *q = json_string_value(json_object_get(m, "content")); q && *q; q++) got += *q == 'a' || *q == 'b' || *q == 'c';
        for (const char *q = json_string_value(json_object_get(m, "reasoning_content")); q && *q; q++) got += *q == 'a' || *q == 'b' || *q == 'c';
        json_t *calls = json_object_get(m, "tool_calls");
        for (size_t i = 0; i < json_array_size(calls); i++) {
            json_t *fn = json_object_get(json_array_get(calls, i), "function");
            for (const char *q = json_string_value(json_object_get(fn, "arguments")); q && *q; q++) got += *q == 'a' || *q == 'b' || *q == 'c';
        }
        // "arguments" keys and "python_tag"/"tool_call" tag text contain a/b/c, so compare only when the input
        // has no key/tag fragments that a parse may drop
        if (!strstr(in, "arguments") && !strstr(in, "python_tag") && !strstr(in, "tool_call") && got != want) lost++;
        free(dump);
        json_decref(m);
    }
    CHECK(lost == 0, "%d fuzz inputs lost text", lost);
}

int main(void) {
    test_cases();
    test_eager_streaming();
    test_fuzz();
    return test_report();
}
