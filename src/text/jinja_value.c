// Jinja runtime values: printing, JSON, equality and ordering with @huggingface/jinja's (i.e.
// JavaScript's) rules, since chat templates must render byte-identically to it:
//   {{ x }}     true/false, 2.0 for whole floats, lists/dicts as JSON with ", " and ": ", none prints nothing
//   a + b, ~    JavaScript String(): 2.0 -> "2", lists join with ","
//   ==          JavaScript loose equality (1 == "1", lists/dicts by identity)
//   tojson      JSON.stringify-like with Python's separators; ensure_ascii escapes UTF-16 units >= 0x7f
#include "text/jinja_int.h"
#include "base/error.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *jv_typename(jv v) {
    static const char *n[] = { "UndefinedValue", "NullValue", "BooleanValue", "IntegerValue", "FloatValue", "StringValue",
                               "ArrayValue", "TupleValue", "ObjectValue", "KeywordArgumentsValue", "NamespaceValue", "FunctionValue" };
    return n[v.t];
}

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NULL: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0 && !isnan(v.f);
    case JV_STR: return v.s->len > 0;
    case JV_LIST: case JV_TUPLE: return v.l->n > 0;
    case JV_DICT: case JV_KWARGS: return v.d->n > 0;
    default: return true;  // namespace (a JS Map object), functions
    }
}

size_t js_utf16_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80) continue;
        k += c >= 0xF0 ? 2 : 1;
    }
    return k;
}

// Number#toString: shortest round-trip digits, fixed notation for 1e-7 < |d| < 1e21.
void js_number(double d, char *buf, size_t n) {
    if (isnan(d)) { snprintf(buf, n, "NaN"); return; }
    if (isinf(d)) { snprintf(buf, n, d < 0 ? "-Infinity" : "Infinity"); return; }
    if (d == 0) { snprintf(buf, n, "0"); return; }
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    char digits[24];
    int nd = 0, neg = tmp[0] == '-';
    const char *q = tmp + neg;
    for (; *q && *q != 'e'; q++) if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int e = atoi(q + 1), k = nd, ne = e + 1;
    char out[64];
    int o = 0;
    if (neg) out[o++] = '-';
    if (k <= ne && ne <= 21) {
        for (int i = 0; i < k; i++) out[o++] = digits[i];
        for (int i = 0; i < ne - k; i++) out[o++] = '0';
    } else if (0 < ne && ne <= 21) {
        for (int i = 0; i < ne; i++) out[o++] = digits[i];
        out[o++] = '.';
        for (int i = ne; i < k; i++) out[o++] = digits[i];
    } else if (-6 < ne && ne <= 0) {
        out[o++] = '0'; out[o++] = '.';
        for (int i = 0; i < -ne; i++) out[o++] = '0';
        for (int i = 0; i < k; i++) out[o++] = digits[i];
    } else {
        out[o++] = digits[0];
        if (k > 1) { out[o++] = '.'; for (int i = 1; i < k; i++) out[o++] = digits[i]; }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%d", ne - 1 >= 0 ? '+' : '-', abs(ne - 1));
    }
    out[o] = 0;
    snprintf(buf, n, "%s", out);
}

static void put_float(jctx *c, jbuf *b, double f) {
    char t[400];
    if (f == 0 && signbit(f)) snprintf(t, sizeof t, "-0.0");
    else if (isfinite(f) && f == floor(f) && fabs(f) < 1e21) snprintf(t, sizeof t, "%.1f", f);  // toFixed(1)
    else js_number(f, t, sizeof t);
    jb_puts(c, b, t);
}

void jv_print(jctx *c, const jnode *at, jbuf *b, jv v) {
    char t[64];
    switch (v.t) {
    case JV_UNDEF: jb_puts(c, b, "undefined"); return;
    case JV_NULL: jb_puts(c, b, "null"); return;
    case JV_BOOL: jb_puts(c, b, v.b ? "true" : "false"); return;
    case JV_INT: snprintf(t, sizeof t, "%" PRId64, v.i); jb_puts(c, b, t); return;
    case JV_FLOAT: put_float(c, b, v.f); return;
    case JV_STR: jb_put(c, b, v.s->s, v.s->len); return;
    case JV_FUNC: jb_puts(c, b, "[function]"); return;
    default: jv_tojson(c, at, b, v, 0, false, false, NULL, NULL, 0, false); return;
    }
}

void jv_rawstr(jctx *c, const jnode *at, jbuf *b, jv v) {
    char t[64];
    switch (v.t) {
    case JV_FLOAT: js_number(v.f, t, sizeof t); jb_puts(c, b, t); return;
    case JV_LIST: case JV_TUPLE:
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) jb_put(c, b, ",", 1);
            jv_print(c, at, b, v.l->v[i]);
        }
        return;
    case JV_DICT: case JV_KWARGS: case JV_NS: jb_puts(c, b, "[object Map]"); return;
    default: jv_print(c, at, b, v); return;
    }
}

static void json_str(jctx *c, jbuf *b, const char *s, size_t n, bool ascii) {
    jb_put(c, b, "\"", 1);
    char t[16];
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"') { jb_put(c, b, "\\\"", 2); i++; }
        else if (ch == '\\') { jb_put(c, b, "\\\\", 2); i++; }
        else if (ch == '\n') { jb_put(c, b, "\\n", 2); i++; }
        else if (ch == '\r') { jb_put(c, b, "\\r", 2); i++; }
        else if (ch == '\t') { jb_put(c, b, "\\t", 2); i++; }
        else if (ch == '\b') { jb_put(c, b, "\\b", 2); i++; }
        else if (ch == '\f') { jb_put(c, b, "\\f", 2); i++; }
        else if (ch < 0x20) { snprintf(t, sizeof t, "\\u%04x", ch); jb_puts(c, b, t); i++; }
        else if (ch < 0x7f || !ascii) { jb_put(c, b, s + i, 1); i++; }
        else {
            // decode one code point, emit \uXXXX per UTF-16 unit
            uint32_t cp = ch;
            size_t l = 1;
            if (ch >= 0xF0) { cp = ch & 7; l = 4; }
            else if (ch >= 0xE0) { cp = ch & 15; l = 3; }
            else if (ch >= 0xC0) { cp = ch & 31; l = 2; }
            if (i + l > n) l = n - i;
            for (size_t k = 1; k < l; k++) cp = (cp << 6) | ((unsigned char)s[i + k] & 63);
            if (cp >= 0x10000) {
                uint32_t u = cp - 0x10000;
                snprintf(t, sizeof t, "\\u%04x\\u%04x", 0xD800 + (u >> 10), 0xDC00 + (u & 0x3FF));
            } else snprintf(t, sizeof t, "\\u%04x", cp);
            jb_puts(c, b, t);
            i += l;
        }
    }
    jb_put(c, b, "\"", 1);
}

static int key_cmp(const jstr *a, const jstr *b) {  // approximates String#localeCompare for keys
    int r = strcasecmp(a->s, b->s);
    if (r) return r;
    return -strcmp(a->s, b->s);  // lowercase before uppercase
}

static void pad(jctx *c, jbuf *b, int indent, int depth) {
    jb_put(c, b, "\n", 1);
    for (int i = 0; i < indent * depth; i++) jb_put(c, b, " ", 1);
}

void jv_tojson(jctx *c, const jnode *at, jbuf *b, jv v, int indent, bool ascii, bool sort, const char *isep,
               const char *ksep, int depth, bool undef_null) {
    if (depth > 200) jerr_at(c->e, SLLM_ERR_FORMAT, at ? at->pos : 0, "tojson: nesting too deep");
    if (!isep) { isep = indent ? "," : ", "; ksep = ": "; }
    char t[64];
    switch (v.t) {
    case JV_NULL: jb_puts(c, b, "null"); return;
    case JV_UNDEF: jb_puts(c, b, undef_null ? "null" : "undefined"); return;
    case JV_BOOL: jb_puts(c, b, v.b ? "true" : "false"); return;
    case JV_INT: snprintf(t, sizeof t, "%" PRId64, v.i); jb_puts(c, b, t); return;
    case JV_FLOAT:
        if (!isfinite(v.f)) jb_puts(c, b, "null");
        else { js_number(v.f, t, sizeof t); jb_puts(c, b, t); }
        return;
    case JV_STR: json_str(c, b, v.s->s, v.s->len, ascii); return;
    case JV_LIST:
        jb_put(c, b, "[", 1);
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) jb_puts(c, b, isep);
            if (indent) pad(c, b, indent, depth + 1);
            jv_tojson(c, at, b, v.l->v[i], indent, ascii, sort, isep, ksep, depth + 1, undef_null);
        }
        if (indent && v.l->n) pad(c, b, indent, depth);
        jb_put(c, b, "]", 1);
        return;
    case JV_DICT: case JV_NS: {
        size_t n = v.d->n;
        size_t *ord = ja_alloc(c->a, (n + 1) * sizeof(size_t));
        if (!ord) jerr_at(c->e, SLLM_ERR_NOMEM, 0, "out of memory");
        for (size_t i = 0; i < n; i++) ord[i] = i;
        if (sort)  // insertion sort: stable, dicts are small
            for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && key_cmp(v.d->k[ord[j - 1]], v.d->k[ord[j]]) > 0; j--) {
                    size_t tmp = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = tmp;
                }
        jb_put(c, b, "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i) jb_puts(c, b, isep);
            if (indent) pad(c, b, indent, depth + 1);
            jstr *k = v.d->k[ord[i]];
            json_str(c, b, k->s, k->len, ascii);
            jb_puts(c, b, ksep);
            jv_tojson(c, at, b, v.d->v[ord[i]], indent, ascii, sort, isep, ksep, depth + 1, undef_null);
        }
        if (indent && n) pad(c, b, indent, depth);
        jb_put(c, b, "}", 1);
        return;
    }
    default:
        jerr_at(c->e, SLLM_ERR_FORMAT, at ? at->pos : 0, "Cannot convert to JSON: %s", jv_typename(v));
    }
}

// JavaScript ToNumber(string)
static double js_tonumber(const char *s, size_t n) {
    size_t i = 0, sl;
    while (i < n && (sl = js_space_len(s, n, i))) i += sl;
    while (n > i) {
        size_t k = n - 1;
        while (k > i && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        if ((sl = js_space_len(s, n, k)) == n - k) n = k; else break;
    }
    if (i == n) return 0;
    char buf[128];
    size_t l = n - i;
    if (l >= sizeof buf) return NAN;
    memcpy(buf, s + i, l);
    buf[l] = 0;
    const char *p = buf;
    if (!strcmp(p, "Infinity") || !strcmp(p, "+Infinity")) return INFINITY;
    if (!strcmp(p, "-Infinity")) return -INFINITY;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'o' || p[1] == 'O' || p[1] == 'b' || p[1] == 'B')) {
        int base = (p[1] | 32) == 'x' ? 16 : (p[1] | 32) == 'o' ? 8 : 2;
        char *end;
        if (!p[2]) return NAN;
        double r = (double)strtoull(p + 2, &end, base);
        return *end ? NAN : r;
    }
    // decimal literal only (no "inf", "nan" or hex floats that strtod would take)
    const char *q = p;
    if (*q == '+' || *q == '-') q++;
    bool digits = false;
    while (*q >= '0' && *q <= '9') { q++; digits = true; }
    if (*q == '.') { q++; while (*q >= '0' && *q <= '9') { q++; digits = true; } }
    if (!digits) return NAN;
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!(*q >= '0' && *q <= '9')) return NAN;
        while (*q >= '0' && *q <= '9') q++;
    }
    return *q ? NAN : strtod(p, NULL);
}

static bool is_obj(jv v) { return v.t >= JV_LIST; }

bool jv_strict_eq(jv a, jv b) {
    bool an = a.t == JV_INT || a.t == JV_FLOAT, bn = b.t == JV_INT || b.t == JV_FLOAT;
    if (an && bn) {
        if (a.t == JV_INT && b.t == JV_INT) return a.i == b.i;
        return (a.t == JV_INT ? (double)a.i : a.f) == (b.t == JV_INT ? (double)b.i : b.f);
    }
    if (a.t != b.t) {
        bool al = a.t == JV_LIST || a.t == JV_TUPLE, bl = b.t == JV_LIST || b.t == JV_TUPLE;
        bool ad = a.t == JV_DICT || a.t == JV_KWARGS, bd = b.t == JV_DICT || b.t == JV_KWARGS;
        if (al && bl) return a.l == b.l;
        if (ad && bd) return a.d == b.d;
        return false;
    }
    switch (a.t) {
    case JV_UNDEF: case JV_NULL: return true;
    case JV_BOOL: return a.b == b.b;
    case JV_STR: return a.s->len == b.s->len && !memcmp(a.s->s, b.s->s, a.s->len);
    case JV_LIST: case JV_TUPLE: return a.l == b.l;
    case JV_FUNC: return a.fn == b.fn;
    default: return a.d == b.d;
    }
}

bool jv_loose_eq(jctx *c, jv a, jv b) {
    bool anil = a.t == JV_UNDEF || a.t == JV_NULL, bnil = b.t == JV_UNDEF || b.t == JV_NULL;
    if (anil || bnil) return anil && bnil;
    if (is_obj(a) && is_obj(b)) return jv_strict_eq(a, b);
    if (is_obj(a) || is_obj(b)) {  // ToPrimitive(object) is its string form
        jbuf s = {0};
        jv_rawstr(c, NULL, &s, is_obj(a) ? a : b);
        jv sv = jb_done(c, &s);
        return is_obj(a) ? jv_loose_eq(c, sv, b) : jv_loose_eq(c, a, sv);
    }
    if (a.t == JV_STR && b.t == JV_STR) return jv_strict_eq(a, b);
    double x = a.t == JV_STR ? js_tonumber(a.s->s, a.s->len) : a.t == JV_BOOL ? a.b : a.t == JV_INT ? (double)a.i : a.f;
    double y = b.t == JV_STR ? js_tonumber(b.s->s, b.s->len) : b.t == JV_BOOL ? b.b : b.t == JV_INT ? (double)b.i : b.f;
    if (a.t == JV_INT && b.t == JV_INT) return a.i == b.i;
    return x == y;
}

static jstr *lower_ascii_copy(jctx *c, jstr *s);

int jv_compare(jctx *c, const jnode *at, jv a, jv b, bool case_sensitive) {
    int pos = at ? at->pos : 0;
    if (a.t == JV_NULL && b.t == JV_NULL) return 0;
    if (a.t == JV_NULL || b.t == JV_NULL) jerr_at(c->e, SLLM_ERR_FORMAT, pos, "Cannot compare %s with %s", jv_typename(a), jv_typename(b));
    if (a.t == JV_UNDEF && b.t == JV_UNDEF) return 0;
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) jerr_at(c->e, SLLM_ERR_FORMAT, pos, "Cannot compare %s with %s", jv_typename(a), jv_typename(b));
    bool an = a.t == JV_INT || a.t == JV_FLOAT || a.t == JV_BOOL, bn = b.t == JV_INT || b.t == JV_FLOAT || b.t == JV_BOOL;
    if (an && bn) {
        double x = a.t == JV_INT ? (double)a.i : a.t == JV_FLOAT ? a.f : a.b;
        double y = b.t == JV_INT ? (double)b.i : b.t == JV_FLOAT ? b.f : b.b;
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.t != b.t) jerr_at(c->e, SLLM_ERR_FORMAT, pos, "Cannot compare different types: %s and %s", jv_typename(a), jv_typename(b));
    if (a.t != JV_STR) jerr_at(c->e, SLLM_ERR_FORMAT, pos, "Cannot compare type: %s", jv_typename(a));
    jstr *x = a.s, *y = b.s;
    if (!case_sensitive) { x = lower_ascii_copy(c, x); y = lower_ascii_copy(c, y); }
    int r = strcmp(x->s, y->s);
    return r < 0 ? -1 : r > 0 ? 1 : 0;
}

// Lowercasing for case-insensitive comparison (full Unicode lowering lives in jinja_filters.c).
static jstr *lower_ascii_copy(jctx *c, jstr *s) {
    jstr *r = js_new(c, s->s, s->len);
    for (size_t i = 0; i < r->len; i++) if (r->s[i] >= 'A' && r->s[i] <= 'Z') r->s[i] += 32;
    return r;
}

// JSON -> value. Key order follows JavaScript objects (as JSON.parse builds them): integer-like
// keys first in ascending order, then the rest in insertion order.
static bool index_key(const char *k, uint64_t *out) {
    if (!*k || (k[0] == '0' && k[1]) || strlen(k) > 10) return false;
    uint64_t v = 0;
    for (const char *p = k; *p; p++) { if (*p < '0' || *p > '9') return false; v = v * 10 + (uint64_t)(*p - '0'); }
    if (v >= 4294967295u) return false;
    *out = v;
    return true;
}

jv jv_from_json(jctx *c, const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_NULL: return JV_MK(JV_NULL);
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: {
        double d = json_real_value(j);
        if (isfinite(d) && d == floor(d) && fabs(d) < 9.2e18) return jv_int((int64_t)d);
        return jv_float(d);
    }
    case JSON_STRING: return jv_strn(c, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        jv l = jv_list(c, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++) jl_push(c, l.l, jv_from_json(c, json_array_get(j, i)));
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict(c, JV_DICT);
        const char *k;
        json_t *v;
        size_t nidx = 0;
        json_object_foreach((json_t *)j, k, v) { uint64_t ix; if (index_key(k, &ix)) nidx++; }
        if (nidx) {
            const char **ks = ja_alloc(c->a, nidx * sizeof(char *));
            uint64_t *ids = ja_alloc(c->a, nidx * sizeof(uint64_t));
            if (!ks || !ids) jerr_at(c->e, SLLM_ERR_NOMEM, 0, "out of memory");
            size_t m = 0;
            json_object_foreach((json_t *)j, k, v) {
                uint64_t ix;
                if (!index_key(k, &ix)) continue;
                size_t p = m++;
                while (p > 0 && ids[p - 1] > ix) { ids[p] = ids[p - 1]; ks[p] = ks[p - 1]; p--; }
                ids[p] = ix; ks[p] = k;
            }
            for (size_t i = 0; i < m; i++) jd_set(c, d.d, js_new(c, ks[i], strlen(ks[i])), jv_from_json(c, json_object_get(j, ks[i])));
        }
        json_object_foreach((json_t *)j, k, v) {
            uint64_t ix;
            if (nidx && index_key(k, &ix)) continue;
            jd_set(c, d.d, js_new(c, k, strlen(k)), jv_from_json(c, v));
        }
        return d;
    }
    }
    return JV_MK(JV_UNDEF);
}
