// Reasoning / tool-call parser for model replies; see chat_parse.h for the forms and guarantees.
// Hand-written state machine: the tags are fixed strings, and holding back a possible tag prefix across
// deltas is simpler with plain byte scans than with a regex engine (PCRE2 partial matching).
#include "text/chat_parse.h"
#include "base/error.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG_THINK "<think>"
#define TAG_THINK_END "</think>"
#define TAG_TOOL "<tool_call>"
#define TAG_TOOL_END "</tool_call>"
#define TAG_PYTHON "<|python_tag|>"

enum { M_START, M_REASON, M_CONTENT, M_TOOL, M_JSON };

typedef struct { char *v; size_t n, cap; } sbuf;

typedef struct {  // one output stream (content or reasoning) with whitespace trimming
    sbuf text, pend_ws;
    bool started;
} stream;

struct cp_parser {
    cp_config cfg;
    int mode;
    bool think_done, finished, oom;
    sbuf buf;  // input not yet consumed
    stream content, reasoning;
    json_t *calls;
    uint64_t id_state;
    bool error;
    char errmsg[320];
    // JSON mode: a brace scanner over buf
    size_t js_pos, js_obj_start;
    int js_depth;
    bool js_instr, js_esc, js_tag_pending, js_any_call;
    cp_delta_cb cb;
    void *user;
};

static int sb_add(cp_parser *p, sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->v, c);
        if (!q) {
            p->oom = true;
            return -1;
        }
        b->v = q;
        b->cap = c;
    }
    if (n) memcpy(b->v + b->n, s, n);
    b->n += n;
    b->v[b->n] = 0;
    return 0;
}

static void consume(cp_parser *p, size_t k) {
    memmove(p->buf.v, p->buf.v + k, p->buf.n - k);
    p->buf.n -= k;
    if (p->buf.v) p->buf.v[p->buf.n] = 0;
}

static void set_error(cp_parser *p, const char *msg) {
    if (!p->error) snprintf(p->errmsg, sizeof p->errmsg, "%s", msg);
    p->error = true;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Bytes at the end of s[0..n) that start a UTF-8 character not yet complete.
static size_t utf8_incomplete_tail(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80) continue;
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        return (size_t)len > back ? back : 0;
    }
    return 0;
}

// Copies s to out replacing invalid UTF-8 by U+FFFD, so the message is always valid JSON text.
static int sanitize(cp_parser *p, const char *s, size_t n, sbuf *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + (size_t)len <= n;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
        for (int k = 1; ok && k < len; k++) {
            if ((u[i + k] & 0xC0) != 0x80) ok = false;
            else cp = (cp << 6) | (u[i + k] & 0x3Fu);
        }
        if (ok && len > 1) {
            uint32_t minv = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
            if (cp < minv || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) ok = false;
        }
        if (ok) {
            if (sb_add(p, out, s + i, (size_t)len)) return -1;
            i += (size_t)len;
        } else {
            if (sb_add(p, out, "\xEF\xBF\xBD", 3)) return -1;
            i++;
        }
    }
    return 0;
}

static void deliver(cp_parser *p, cp_delta_kind kind, const char *s, size_t n) {
    if (!n || !p->cb) return;
    cp_delta d = {.kind = kind, .text = s, .len = n};
    p->cb(&d, p->user);
}

// Emits text into a stream: leading whitespace of the stream is dropped and trailing whitespace held
// until more text follows, so the stream equals its trimmed final value at every point.
static void emit(cp_parser *p, cp_delta_kind kind, const char *s, size_t n) {
    stream *st = kind == CP_DELTA_CONTENT ? &p->content : &p->reasoning;
    sbuf clean = {0};
    if (sanitize(p, s, n, &clean)) return free(clean.v);
    const char *c = clean.v;
    size_t m = clean.n, i = 0;
    if (!st->started) {
        while (i < m && is_ws(c[i])) i++;
        if (i == m) return free(clean.v);
        st->started = true;
    }
    size_t j = m;
    while (j > i && is_ws(c[j - 1])) j--;
    if (j == i) {
        sb_add(p, &st->pend_ws, c + i, m - i);
        return free(clean.v);
    }
    size_t t0 = st->text.n;
    sb_add(p, &st->text, st->pend_ws.v ? st->pend_ws.v : "", st->pend_ws.n);
    sb_add(p, &st->text, c + i, j - i);
    st->pend_ws.n = 0;
    sb_add(p, &st->pend_ws, c + j, m - j);
    if (!p->oom) deliver(p, kind, st->text.v + t0, st->text.n - t0);
    free(clean.v);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

cp_parser *cp_new(const cp_config *cfg) {
    cp_parser *p = calloc(1, sizeof *p);
    if (!p) return err_set(SLLM_ERR_NOMEM, "chat_parse: out of memory"), NULL;
    if (cfg) p->cfg = *cfg;
    if (p->cfg.format < CP_FORMAT_AUTO || p->cfg.format > CP_FORMAT_NONE) {
        err_set(SLLM_ERR_ARG, "chat_parse: unknown format %d", (int)p->cfg.format);
        free(p);
        return NULL;
    }
    if (p->cfg.starts_in_reasoning) p->cfg.reasoning = true;
    p->calls = json_array();
    if (!p->calls) return free(p), err_set(SLLM_ERR_NOMEM, "chat_parse: out of memory"), NULL;
    p->id_state = p->cfg.id_seed;
    if (!p->id_state) {
        static _Atomic uint64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)p ^ (++counter << 40);
        p->id_state = splitmix64(&s);
    }
    p->mode = p->cfg.starts_in_reasoning ? M_REASON : M_START;
    return p;
}

void cp_free(cp_parser *p) {
    if (!p) return;
    free(p->buf.v), free(p->content.text.v), free(p->content.pend_ws.v);
    free(p->reasoning.text.v), free(p->reasoning.pend_ws.v);
    json_decref(p->calls);
    free(p);
}

static bool hermes_on(const cp_parser *p) { return p->cfg.format == CP_FORMAT_AUTO || p->cfg.format == CP_FORMAT_HERMES; }
static bool python_on(const cp_parser *p) { return p->cfg.format == CP_FORMAT_AUTO || p->cfg.format == CP_FORMAT_LLAMA3; }
static bool json_on(const cp_parser *p) {
    return p->cfg.format == CP_FORMAT_AUTO || p->cfg.format == CP_FORMAT_LLAMA3 || p->cfg.format == CP_FORMAT_GENERIC;
}

static bool starts_with(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    return n >= t && memcmp(s, tag, t) == 0;
}
static bool is_proper_prefix(const char *s, size_t n, const char *tag) {  // s is a prefix of tag
    size_t t = strlen(tag);
    return n < t && memcmp(s, tag, n) == 0;
}

// Longest suffix of s[0..n) that is a proper prefix of tag.
static size_t hold_for(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    for (size_t k = (n < t - 1 ? n : t - 1); k > 0; k--)
        if (memcmp(s + n - k, tag, k) == 0) return k;
    return 0;
}

static ptrdiff_t find(const char *s, size_t n, const char *tag) {
    const char *q = memmem(s, n, tag, strlen(tag));
    return q ? q - s : -1;
}

// Adds one call from a parsed object; 1 = added, 0 = not call-shaped, -1 = call-shaped but invalid
// (message in *why).
static int add_call(cp_parser *p, json_t *o, const char **why) {
    if (!json_is_object(o)) return *why = "tool call is not a JSON object", 0;
    json_t *fn = json_object_get(o, "function");
    if (json_is_object(fn)) o = fn;  // {"type": "function", "function": {...}}
    json_t *name = json_object_get(o, "name");
    json_t *args = json_object_get(o, "arguments");
    if (!args) args = json_object_get(o, "parameters");
    if (!name && !args) return *why = "tool call without \"name\"", 0;
    if (!json_is_string(name) || json_string_length(name) == 0) return *why = "tool call without a \"name\" string", -1;
    char *astr;
    if (!args) astr = strdup("{}");
    else if (json_is_string(args)) astr = strdup(json_string_value(args));
    else if (json_is_object(args)) astr = json_dumps(args, JSON_COMPACT);
    else return *why = "tool call \"arguments\" is not an object", -1;
    if (!astr) return p->oom = true, *why = "out of memory", -1;
    char id[32];
    snprintf(id, sizeof id, "call_%016llx", (unsigned long long)splitmix64(&p->id_state));
    json_t *call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name",
                             json_string_value(name), "arguments", astr);
    int idx = (int)json_array_size(p->calls);
    if (!call || json_array_append_new(p->calls, call)) {
        free(astr);
        p->oom = true;
        return *why = "out of memory", -1;
    }
    if (p->cb) {
        cp_delta d = {.kind = CP_DELTA_TOOL_START, .tool_index = idx, .tool_id = id, .tool_name = json_string_value(name)};
        p->cb(&d, p->user);
        cp_delta a = {.kind = CP_DELTA_TOOL_ARGS, .text = astr, .len = strlen(astr), .tool_index = idx};
        p->cb(&a, p->user);
    }
    free(astr);
    return 1;
}

// All the calls a parsed JSON value holds (generic wrappers included); 1 = calls added, 0 = not
// tool-call shaped, -1 = malformed call. Nothing is added unless every call is valid. `strict` (a bare
// JSON reply) needs "arguments"/"parameters" too, so {"name": "Bob", "age": 3} stays content.
static int add_calls(cp_parser *p, json_t *v, bool strict, const char **why) {
    json_t *list = NULL;
    bool wrapped = json_is_object(v) && (json_object_get(v, "tool_calls") || json_is_object(json_object_get(v, "tool_call")));
    if (json_is_object(v) && json_object_get(v, "tool_calls")) list = json_incref(json_object_get(v, "tool_calls"));
    else if (wrapped) list = json_pack("[O]", json_object_get(v, "tool_call"));
    else list = json_pack("[O]", v);
    if (!list) return p->oom = true, *why = "out of memory", -1;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        json_decref(list);
        return *why = "\"tool_calls\" is not a non-empty array", -1;
    }
    size_t i;
    json_t *c;
    int shape = 1;
    json_array_foreach(list, i, c) {  // validate first so a bad call leaves no partial output
        json_t *o = json_is_object(json_object_get(c, "function")) ? json_object_get(c, "function") : c;
        json_t *nm = json_is_object(o) ? json_object_get(o, "name") : NULL;
        json_t *ar = json_is_object(o) ? json_object_get(o, "arguments") : NULL;
        if (!ar && json_is_object(o)) ar = json_object_get(o, "parameters");
        if (!wrapped && (!json_is_object(o) || (!nm && !ar) || (strict && !ar))) {
            shape = 0;
            *why = !json_is_object(o) ? "tool call is not a JSON object" : !nm ? "tool call without \"name\"" : "not a tool call";
            break;
        }
        if (!json_is_string(nm) || json_string_length(nm) == 0) { shape = -1; *why = "tool call without a \"name\" string"; break; }
        if (ar && !json_is_object(ar) && !json_is_string(ar)) { shape = -1; *why = "tool call \"arguments\" is not an object"; break; }
    }
    if (shape == 1)
        json_array_foreach(list, i, c) if (add_call(p, c, why) < 0) { shape = -1; break; }
    json_decref(list);
    return shape;
}

static bool looks_like_call(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && is_ws(s[i])) i++;
    if (i >= n || s[i] != '{') return false;
    i++;
    while (i < n && is_ws(s[i])) i++;
    static const char *keys[] = {"\"name\"", "\"function\"", "\"tool_call\"", "\"tool_calls\"", "\"type\""};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (starts_with(s + i, n - i, keys[k])) return true;
    return false;
}

// JSON mode could not be a tool call: what was held becomes content.
static void json_fallback(cp_parser *p, const char *err) {
    if (err) set_error(p, err);
    if (p->js_tag_pending) emit(p, CP_DELTA_CONTENT, TAG_PYTHON, strlen(TAG_PYTHON));
    emit(p, CP_DELTA_CONTENT, p->buf.v, p->buf.n);
    consume(p, p->buf.n);
    p->js_tag_pending = false;
    p->mode = M_CONTENT;
}

static void enter_json(cp_parser *p, bool tag) {
    p->mode = M_JSON;
    p->js_pos = 0;
    p->js_depth = 0;
    p->js_instr = p->js_esc = false;
    p->js_tag_pending = tag;
    p->js_any_call = false;
}

// Scans buf for complete top-level objects; returns false when the mode changed (caller loops again).
static bool process_json(cp_parser *p, bool final) {
    size_t i = p->js_pos;
    while (i < p->buf.n) {
        char c = p->buf.v[i];
        if (p->js_depth == 0) {
            if (is_ws(c) || c == ';') { i++; continue; }
            if (c != '{') {
                // text after the calls, or a python tag not followed by JSON
                bool bad = p->js_tag_pending;
                consume(p, 0);
                json_fallback(p, bad ? "<|python_tag|> not followed by a JSON tool call" : NULL);
                return false;
            }
            p->js_depth = 1;
            p->js_obj_start = i++;
            p->js_instr = p->js_esc = false;
            continue;
        }
        if (p->js_instr) {
            if (p->js_esc) p->js_esc = false;
            else if (c == '\\') p->js_esc = true;
            else if (c == '"') p->js_instr = false;
        } else if (c == '"') p->js_instr = true;
        else if (c == '{' || c == '[') p->js_depth++;
        else if (c == '}' || c == ']') {
            if (--p->js_depth == 0) {
                const char *obj = p->buf.v + p->js_obj_start;
                size_t olen = i + 1 - p->js_obj_start;
                json_error_t jerr;
                json_t *v = json_loadb(obj, olen, 0, &jerr);
                const char *why = NULL;
                int r = 0;
                if (v && p->cfg.format == CP_FORMAT_GENERIC && json_is_object(v) && json_object_size(v) == 1 &&
                    json_is_string(json_object_get(v, "response")) && !p->js_any_call) {
                    // generic form's plain answer
                    json_t *resp = json_object_get(v, "response");
                    emit(p, CP_DELTA_CONTENT, json_string_value(resp), json_string_length(resp));
                    json_decref(v);
                    consume(p, i + 1);
                    p->js_tag_pending = false;
                    p->mode = M_CONTENT;
                    return false;
                }
                if (v) r = add_calls(p, v, true, &why);
                json_decref(v);
                if (r == 1) {
                    p->js_any_call = true;
                    p->js_tag_pending = false;
                    consume(p, i + 1);
                    i = 0;
                    continue;
                }
                // not a call: with a call shape or after a python tag it is an error, else plain JSON text
                bool err = r < 0 || p->js_tag_pending || (!v && looks_like_call(obj, olen));
                char msg[320];
                if (!v) snprintf(msg, sizeof msg, "invalid JSON in tool call: %s", jerr.text);
                else snprintf(msg, sizeof msg, "%s", why ? why : "not a tool call");
                json_fallback(p, err ? msg : NULL);
                return false;
            }
        }
        i++;
    }
    p->js_pos = i;
    if (final) {
        bool only_sep = p->js_depth == 0;
        if (only_sep) {
            consume(p, p->buf.n);
            if (p->js_tag_pending) json_fallback(p, "<|python_tag|> without a tool call");
            return true;
        }
        bool err = p->js_tag_pending || looks_like_call(p->buf.v + p->js_obj_start, p->buf.n - p->js_obj_start);
        json_fallback(p, err ? "unterminated JSON tool call" : NULL);
        return false;
    }
    return true;
}

// Hermes: inner text of one <tool_call> block.
static void hermes_call(cp_parser *p, const char *s, size_t n) {
    json_error_t jerr;
    json_t *v = json_loadb(s, n, 0, &jerr);
    const char *why = "tool call is not a JSON object";
    char msg[320];
    int r = v ? add_calls(p, v, false, &why) : -1;
    if (!v) snprintf(msg, sizeof msg, "invalid JSON in <tool_call>: %s (line %d col %d)", jerr.text, jerr.line, jerr.column);
    else snprintf(msg, sizeof msg, "<tool_call>: %s", why);
    json_decref(v);
    if (r == 1) return;
    set_error(p, msg);
    emit(p, CP_DELTA_CONTENT, TAG_TOOL, strlen(TAG_TOOL));
    emit(p, CP_DELTA_CONTENT, s, n);
    emit(p, CP_DELTA_CONTENT, TAG_TOOL_END, strlen(TAG_TOOL_END));
}

// Emits s[0..n) minus a held suffix (possible tag prefix or incomplete UTF-8), consumes what it emitted.
static void emit_safe(cp_parser *p, cp_delta_kind kind, size_t hold, bool final) {
    size_t e = p->buf.n;
    if (!final) {
        e -= hold;
        if (!hold) e -= utf8_incomplete_tail(p->buf.v, e);
    }
    emit(p, kind, p->buf.v, e);
    consume(p, e);
}

static void process(cp_parser *p, bool final) {
    while (!p->oom) {
        char *s = p->buf.v;
        size_t n = p->buf.n;
        if (p->mode == M_START) {
            size_t i = 0;
            while (i < n && is_ws(s[i])) i++;
            if (i == n) {
                if (final) consume(p, n);
                return;
            }
            const char *r = s + i;
            size_t rn = n - i;
            if (p->cfg.reasoning && !p->think_done) {
                if (starts_with(r, rn, TAG_THINK)) {
                    consume(p, i + strlen(TAG_THINK));
                    p->mode = M_REASON;
                    continue;
                }
                if (!final && is_proper_prefix(r, rn, TAG_THINK)) return;
            }
            if (json_on(p) && r[0] == '{') {
                consume(p, i);
                enter_json(p, false);
                continue;
            }
            if (python_on(p)) {
                if (starts_with(r, rn, TAG_PYTHON)) {
                    consume(p, i + strlen(TAG_PYTHON));
                    enter_json(p, true);
                    continue;
                }
                if (!final && is_proper_prefix(r, rn, TAG_PYTHON)) return;
            }
            p->mode = M_CONTENT;
        } else if (p->mode == M_REASON) {
            ptrdiff_t k = find(s, n, TAG_THINK_END);
            if (k >= 0) {
                emit(p, CP_DELTA_REASONING, s, (size_t)k);
                consume(p, (size_t)k + strlen(TAG_THINK_END));
                p->think_done = true;
                p->mode = M_START;
                continue;
            }
            if (final) set_error(p, "unclosed <think>: the reply ended inside reasoning");
            emit_safe(p, CP_DELTA_REASONING, hold_for(s, n, TAG_THINK_END), final);
            return;
        } else if (p->mode == M_CONTENT) {
            ptrdiff_t kt = hermes_on(p) ? find(s, n, TAG_TOOL) : -1;
            ptrdiff_t kp = python_on(p) ? find(s, n, TAG_PYTHON) : -1;
            if (kt >= 0 || kp >= 0) {
                bool tool = kt >= 0 && (kp < 0 || kt < kp);
                size_t k = (size_t)(tool ? kt : kp);
                emit(p, CP_DELTA_CONTENT, s, k);
                consume(p, k + strlen(tool ? TAG_TOOL : TAG_PYTHON));
                if (tool) p->mode = M_TOOL;
                else enter_json(p, true);
                continue;
            }
            size_t h = 0, h2;
            if (hermes_on(p)) h = hold_for(s, n, TAG_TOOL);
            if (python_on(p) && (h2 = hold_for(s, n, TAG_PYTHON)) > h) h = h2;
            emit_safe(p, CP_DELTA_CONTENT, h, final);
            return;
        } else if (p->mode == M_TOOL) {
            ptrdiff_t k = find(s, n, TAG_TOOL_END);
            if (k >= 0) {
                hermes_call(p, s, (size_t)k);
                consume(p, (size_t)k + strlen(TAG_TOOL_END));
                p->mode = M_CONTENT;
                continue;
            }
            if (final) {
                set_error(p, "unclosed <tool_call>");
                emit(p, CP_DELTA_CONTENT, TAG_TOOL, strlen(TAG_TOOL));
                emit(p, CP_DELTA_CONTENT, s, n);
                consume(p, n);
            }
            return;
        } else {
            if (process_json(p, final)) return;
        }
    }
}

int cp_feed(cp_parser *p, const char *delta, size_t n, cp_delta_cb cb, void *user) {
    if (p->finished) return err_set(SLLM_ERR_ARG, "chat_parse: feed after finish");
    if (sb_add(p, &p->buf, delta, n)) return err_set(SLLM_ERR_NOMEM, "chat_parse: out of memory");
    p->cb = cb, p->user = user;
    process(p, false);
    p->cb = NULL;
    return p->oom ? err_set(SLLM_ERR_NOMEM, "chat_parse: out of memory") : SLLM_OK;
}

json_t *cp_finish(cp_parser *p, cp_delta_cb cb, void *user) {
    if (p->finished) return err_set(SLLM_ERR_ARG, "chat_parse: finish called twice"), NULL;
    p->finished = true;
    p->cb = cb, p->user = user;
    process(p, true);
    p->cb = NULL;
    if (p->oom) return err_set(SLLM_ERR_NOMEM, "chat_parse: out of memory"), NULL;
    json_t *m = json_object();
    size_t nc = json_array_size(p->calls);
    json_object_set_new(m, "role", json_string("assistant"));
    if (p->content.text.n || !nc) json_object_set_new(m, "content", json_stringn(p->content.text.v ? p->content.text.v : "", p->content.text.n));
    else json_object_set_new(m, "content", json_null());
    if (p->reasoning.text.n)
        json_object_set_new(m, "reasoning_content", json_stringn(p->reasoning.text.v, p->reasoning.text.n));
    if (nc) json_object_set(m, "tool_calls", p->calls);
    if (p->error) {
        json_object_set_new(m, "parse_error", json_true());
        json_object_set_new(m, "parse_error_message", json_string(p->errmsg));
    }
    return m;
}
