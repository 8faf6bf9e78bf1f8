// JSON Schema -> GBNF; see json_schema.h for the keyword subset.
#include "text/json_schema.h"
#include "base/error.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *v; size_t n, cap; bool oom; } str;

static void s_addn(str *s, const char *t, size_t n) {
    if (s->oom) return;
    if (s->n + n + 1 > s->cap) {
        size_t c = s->cap ? s->cap : 128;
        while (c < s->n + n + 1) c *= 2;
        char *q = realloc(s->v, c);
        if (!q) { s->oom = true; return; }
        s->v = q, s->cap = c;
    }
    memcpy(s->v + s->n, t, n);
    s->n += n;
    s->v[s->n] = 0;
}
static void s_add(str *s, const char *t) { s_addn(s, t, strlen(t)); }
static void s_fmt(str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_fmt(str *s, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof buf) {
        char *big = malloc((size_t)n + 1);
        if (!big) { s->oom = true; return; }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        s_add(s, big);
        free(big);
    } else if (n > 0) s_add(s, buf);
}
static char *s_take(str *s) {
    char *v = s->v ? s->v : strdup("");
    s->v = NULL;
    s->n = s->cap = 0;
    return v;
}

typedef struct {
    char **names, **bodies;
    int n, cap;
    char **ref_ptrs, **ref_names;
    int n_refs, cap_refs;
    const json_t *root;
    int depth;
    bool oom;
} builder;

static int oom(builder *b) {
    b->oom = true;
    return err_set(SLLM_ERR_NOMEM, "json schema: out of memory");
}

// Appends the GBNF literal for raw UTF-8 text.
static void lit(str *s, const char *t, size_t n) {
    s_add(s, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"') s_add(s, "\\\"");
        else if (c == '\\') s_add(s, "\\\\");
        else if (c < 0x20 || c == 0x7F) s_fmt(s, "\\x%02X", c);
        else s_addn(s, (const char *)&c, 1);
    }
    s_add(s, "\"");
}

// Literal for a JSON value's compact serialization.
static int lit_json(builder *b, str *s, const json_t *v) {
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!t) return oom(b);
    lit(s, t, strlen(t));
    free(t);
    return 0;
}

static const char *find_rule(builder *b, const char *name) {
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->names[i], name) == 0) return b->names[i];
    return NULL;
}

static int push_rule(builder *b, char *name, char *body) {
    if (b->n == b->cap) {
        int c = b->cap ? b->cap * 2 : 32;
        char **nn = realloc(b->names, sizeof(char *) * (size_t)c);
        if (nn) b->names = nn;
        char **nb = realloc(b->bodies, sizeof(char *) * (size_t)c);
        if (nb) b->bodies = nb;
        if (!nn || !nb) return free(name), free(body), oom(b);
        b->cap = c;
    }
    b->names[b->n] = name;
    b->bodies[b->n] = body;
    b->n++;
    return 0;
}

static bool is_prim(const char *name);

// A fresh rule name from a hint (letters, digits, '-'); never a primitive's name.
static char *unique_name(builder *b, const char *hint) {
    char name[96];
    size_t k = 0;
    for (const char *h = hint; *h && k < 60; h++)
        name[k++] = ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9')) ? *h : '-';
    if (!k) name[k++] = 'r';
    name[k] = 0;
    char cand[112];
    snprintf(cand, sizeof cand, "%s", name);
    for (int i = 1; find_rule(b, cand) || is_prim(cand) || !strcmp(cand, "root"); i++)
        snprintf(cand, sizeof cand, "%s-%d", name, i);
    char *nm = strdup(cand);
    if (!nm) oom(b);
    return nm;
}

// Adds `name ::= body` (takes body); an identical body already present is reused. Returns the rule's name
// (owned by the builder) or NULL.
static const char *add_rule(builder *b, const char *hint, char *body) {
    if (!body) return oom(b), NULL;
    for (int i = 0; i < b->n; i++)
        if (b->bodies[i] && strcmp(b->bodies[i], body) == 0) return free(body), b->names[i];
    char *nm = unique_name(b, hint);
    if (!nm) return free(body), NULL;
    if (push_rule(b, nm, body)) return NULL;
    return b->names[b->n - 1];
}

static const char *PRIMS[][2] = {
    {"ws", "| \" \" | \"\\n\" [ \\t]{0,20}"},
    {"value", "object | array | string | number | boolean | null"},
    {"object", "\"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* )? \"}\""},
    {"array", "\"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\""},
    {"string", "\"\\\"\" char* \"\\\"\""},
    {"char", "[^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )"},
    {"number", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]{1,2} )?"},
    {"integer", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )"},
    {"boolean", "\"true\" | \"false\""},
    {"null", "\"null\""},
    {"date", "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )"},
    {"time", "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )"},
    {"date-time", "date \"T\" time"},
    {"uuid", "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}"},
    {"email", "[a-zA-Z0-9._%+-]+ \"@\" [a-zA-Z0-9-]+ ( \".\" [a-zA-Z0-9-]+ )+"},
};
static bool is_prim(const char *name) {
    for (size_t i = 0; i < sizeof PRIMS / sizeof *PRIMS; i++)
        if (!strcmp(PRIMS[i][0], name)) return true;
    return false;
}

static const char *DEPS[][8] = {  // primitives each primitive uses
    {"ws"}, {"value", "object", "array", "string", "number", "boolean", "null"}, {"object", "ws", "string", "value"}, {"array", "ws", "value"},
    {"string", "char"}, {"char"}, {"number"}, {"integer"}, {"boolean"}, {"null"}, {"date"}, {"time"},
    {"date-time", "date", "time"}, {"uuid"}, {"email"},
};

// Makes sure primitive rule `name` (and what it uses) exists; returns its name.
static const char *prim(builder *b, const char *name) {
    const char *have = find_rule(b, name);
    if (have) return have;
    size_t np = sizeof PRIMS / sizeof *PRIMS;
    for (size_t i = 0; i < np; i++) {
        if (strcmp(PRIMS[i][0], name) != 0) continue;
        char *nm = strdup(name), *body = strdup(PRIMS[i][1]);
        if (!nm || !body) return free(nm), free(body), oom(b), NULL;
        if (push_rule(b, nm, body)) return NULL;
        const char *ret = b->names[b->n - 1];
        for (int d = 0; d < 8 && DEPS[i][d]; d++)
            if (!prim(b, DEPS[i][d])) return NULL;
        return ret;
    }
    return NULL;
}

static int unsupported(const char *path, const char *kw, const char *why) {
    return err_set(SLLM_ERR_UNSUPPORTED, "json schema: %s/%s: %s", path, kw, why);
}

static int gen(builder *b, const json_t *s, const char *path, const char **out);

static void path_join(char *dst, size_t n, const char *path, const char *a, const char *c) {
    // JSON pointer segment escaping: ~ -> ~0, / -> ~1
    size_t k = (size_t)snprintf(dst, n, "%s/%s", path, a);
    if (c && k < n) {
        if (k + 1 < n) dst[k++] = '/';
        for (; *c && k + 3 < n; c++) {
            if (*c == '~') dst[k++] = '~', dst[k++] = '0';
            else if (*c == '/') dst[k++] = '~', dst[k++] = '1';
            else dst[k++] = *c;
        }
        dst[k < n ? k : n - 1] = 0;
    }
}

static const json_t *resolve_ref(builder *b, const char *ref) {
    if (ref[0] != '#') return NULL;
    const json_t *cur = b->root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char seg[256];
        size_t k = 0;
        for (; *p && *p != '/' && k + 1 < sizeof seg; p++) {
            if (p[0] == '~' && p[1] == '0') seg[k++] = '~', p++;
            else if (p[0] == '~' && p[1] == '1') seg[k++] = '/', p++;
            else seg[k++] = *p;
        }
        seg[k] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, seg);
        else if (json_is_array(cur)) cur = json_array_get(cur, (size_t)strtoul(seg, NULL, 10));
        else return NULL;
        if (!cur) return NULL;
    }
    return *p ? NULL : cur;
}

static int gen_ref(builder *b, const char *ref, const char *path, const char **out) {
    for (int i = 0; i < b->n_refs; i++)
        if (strcmp(b->ref_ptrs[i], ref) == 0) return *out = b->ref_names[i], 0;
    const json_t *t = resolve_ref(b, ref);
    if (!t) return err_set(SLLM_ERR_FORMAT, "json schema: %s/$ref: cannot resolve \"%s\" (only local \"#/...\" pointers)", path, ref);
    // reserve the rule name first so recursive references find it
    const char *last = strrchr(ref, '/');
    char hint[80];
    snprintf(hint, sizeof hint, "ref-%s", last && last[1] ? last + 1 : "root");
    char *name = unique_name(b, hint);
    if (!name || push_rule(b, name, NULL)) return -1;  // NULL body: filled in below, never deduplicated
    int idx = b->n - 1;
    if (b->n_refs == b->cap_refs) {
        int c = b->cap_refs ? b->cap_refs * 2 : 8;
        char **a = realloc(b->ref_ptrs, sizeof(char *) * (size_t)c);
        if (a) b->ref_ptrs = a;
        char **nn = realloc(b->ref_names, sizeof(char *) * (size_t)c);
        if (nn) b->ref_names = nn;
        if (!a || !nn) return oom(b);
        b->cap_refs = c;
    }
    b->ref_ptrs[b->n_refs] = strdup(ref);
    if (!b->ref_ptrs[b->n_refs]) return oom(b);
    b->ref_names[b->n_refs++] = (char *)name;
    const char *inner;
    if (gen(b, t, ref, &inner)) return -1;
    str body = {0};
    s_add(&body, inner);
    if (body.oom) return oom(b);
    b->bodies[idx] = s_take(&body);
    *out = name;
    return 0;
}

// ---- integers in a range: digit-by-digit alternatives (16 digits at most, like `integer`)

static void fixed_width(str *s, const char *lo, const char *hi, int L) {
    if (L == 0) return;
    if (memcmp(lo, hi, (size_t)L) == 0) {
        lit(s, lo, (size_t)L);
        return;
    }
    bool lo_zero = true, hi_nine = true;
    for (int i = 1; i < L; i++) lo_zero &= lo[i] == '0', hi_nine &= hi[i] == '9';
    if (lo_zero && hi_nine) {
        if (lo[0] == hi[0]) s_fmt(s, "\"%c\"", lo[0]);
        else s_fmt(s, "[%c-%c]", lo[0], hi[0]);
        if (L > 1) s_fmt(s, " [0-9]{%d}", L - 1);
        return;
    }
    if (lo[0] == hi[0]) {
        s_fmt(s, "\"%c\" ", lo[0]);
        fixed_width(s, lo + 1, hi + 1, L - 1);
        return;
    }
    char nines[20], zeros[20];
    memset(nines, '9', sizeof nines), memset(zeros, '0', sizeof zeros);
    s_fmt(s, "( \"%c\" ", lo[0]);
    fixed_width(s, lo + 1, nines, L - 1);
    if (hi[0] - lo[0] > 1) {
        s_add(s, " | ");
        if (hi[0] - lo[0] == 2) s_fmt(s, "\"%c\"", lo[0] + 1);
        else s_fmt(s, "[%c-%c]", lo[0] + 1, hi[0] - 1);
        if (L > 1) s_fmt(s, " [0-9]{%d}", L - 1);
    }
    s_fmt(s, " | \"%c\" ", hi[0]);
    fixed_width(s, zeros, hi + 1, L - 1);
    s_add(s, " )");
}

#define INT_CAP 9999999999999999LL  // 16 digits

static void uint_range(str *s, long long lo, long long hi) {
    s_add(s, "( ");
    bool first = true;
    long long p10 = 1;
    for (int d = 1; d <= 16; d++, p10 *= 10) {
        long long a = d == 1 ? 0 : p10, z = p10 * 10 - 1;
        if (lo > a) a = lo;
        if (hi < z) z = hi;
        if (a > z) continue;
        char la[24], lz[24];
        snprintf(la, sizeof la, "%0*lld", d, a);
        snprintf(lz, sizeof lz, "%0*lld", d, z);
        if (!first) s_add(s, " | ");
        first = false;
        fixed_width(s, la, lz, d);
    }
    s_add(s, " )");
}

static int int_bound(const json_t *v, const char *path, const char *kw, bool is_min, bool exclusive, long long *out) {
    if (!json_is_number(v)) return unsupported(path, kw, "must be a number");
    double x = json_number_value(v);
    if (fabs(x) > (double)INT_CAP) return unsupported(path, kw, "bound beyond 16 digits is not supported");
    double r = is_min ? ceil(x) : floor(x);
    if (exclusive && r == x) r += is_min ? 1 : -1;
    *out = (long long)r;
    return 0;
}

static int gen_integer(builder *b, const json_t *s, const char *path, const char **out) {
    const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
    const json_t *emn = json_object_get(s, "exclusiveMinimum"), *emx = json_object_get(s, "exclusiveMaximum");
    if (!mn && !mx && !emn && !emx) return (*out = prim(b, "integer")) ? 0 : -1;
    long long lo = -INT_CAP, hi = INT_CAP, t;
    if (mn) { if (int_bound(mn, path, "minimum", true, false, &t)) return -1; if (t > lo) lo = t; }
    if (emn) { if (int_bound(emn, path, "exclusiveMinimum", true, true, &t)) return -1; if (t > lo) lo = t; }
    if (mx) { if (int_bound(mx, path, "maximum", false, false, &t)) return -1; if (t < hi) hi = t; }
    if (emx) { if (int_bound(emx, path, "exclusiveMaximum", false, true, &t)) return -1; if (t < hi) hi = t; }
    if (lo > hi) return err_set(SLLM_ERR_FORMAT, "json schema: %s: integer range [%lld, %lld] is empty", path, lo, hi);
    str body = {0};
    bool neg = lo < 0, pos = hi >= 0;
    if (neg) {
        s_add(&body, "\"-\" ");
        uint_range(&body, hi < 0 ? -hi : 1, -lo);
    }
    if (neg && pos) s_add(&body, " | ");
    if (pos) uint_range(&body, lo > 0 ? lo : 0, hi);
    if (body.oom) return oom(b);
    return (*out = add_rule(b, "int-range", s_take(&body))) ? 0 : -1;
}

static int gen_string(builder *b, const json_t *s, const char *path, const char **out) {
    const json_t *fmt = json_object_get(s, "format");
    const json_t *mnl = json_object_get(s, "minLength"), *mxl = json_object_get(s, "maxLength");
    if (fmt && !json_is_string(fmt)) return unsupported(path, "format", "must be a string");
    const char *f = fmt ? json_string_value(fmt) : NULL;
    if (f && (!strcmp(f, "date") || !strcmp(f, "time") || !strcmp(f, "date-time") || !strcmp(f, "uuid") || !strcmp(f, "email"))) {
        if (mnl || mxl) return unsupported(path, mnl ? "minLength" : "maxLength", "not supported together with format");
        const char *r = prim(b, f);
        if (!r) return -1;
        str body = {0};
        s_fmt(&body, "\"\\\"\" %s \"\\\"\"", r);
        if (body.oom) return oom(b);
        char hint[40];
        snprintf(hint, sizeof hint, "%s-string", f);
        return (*out = add_rule(b, hint, s_take(&body))) ? 0 : -1;
    }
    if (!mnl && !mxl) return (*out = prim(b, "string")) ? 0 : -1;
    json_int_t lo = 0, hi = -1;
    if (mnl) { if (!json_is_integer(mnl) || json_integer_value(mnl) < 0) return unsupported(path, "minLength", "must be a non-negative integer"); lo = json_integer_value(mnl); }
    if (mxl) { if (!json_is_integer(mxl) || json_integer_value(mxl) < 0) return unsupported(path, "maxLength", "must be a non-negative integer"); hi = json_integer_value(mxl); }
    if (lo > 10000 || hi > 10000) return unsupported(path, lo > 10000 ? "minLength" : "maxLength", "over 10000 is not supported");
    if (hi >= 0 && hi < lo) return err_set(SLLM_ERR_FORMAT, "json schema: %s: maxLength below minLength", path);
    if (!prim(b, "char")) return -1;
    str body = {0};
    if (hi >= 0) s_fmt(&body, "\"\\\"\" char{%lld,%lld} \"\\\"\"", (long long)lo, (long long)hi);
    else s_fmt(&body, "\"\\\"\" char{%lld,} \"\\\"\"", (long long)lo);
    if (body.oom) return oom(b);
    return (*out = add_rule(b, "string-len", s_take(&body))) ? 0 : -1;
}

// ---- objects

// A JSON string whose content is none of the declared keys: a trie over their code points.
typedef struct { int parent; uint32_t cp; bool terminal; } tnode;

static int utf8_next(const char *s, size_t *i, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k < len; k++) {
        if (!u[*i + k]) return -1;
        v = (v << 6) | (u[*i + k] & 0x3Fu);
    }
    *i += (size_t)len;
    *cp = v;
    return 0;
}

static void class_cp(str *s, uint32_t cp) {
    if (cp < 0x20 || cp == '"' || cp == '\\' || cp == ']' || cp == '[' || cp == '-' || cp == '^' || cp >= 0x7F)
        s_fmt(s, cp <= 0xFF ? "\\x%02X" : cp <= 0xFFFF ? "\\u%04X" : "\\U%08X", cp);
    else {
        char c = (char)cp;
        s_addn(s, &c, 1);
    }
}

static const char *gen_key_not_in(builder *b, const json_t *props) {
    int n = 1, cap = 64;
    tnode *t = malloc(sizeof *t * (size_t)cap);
    if (!t) return oom(b), NULL;
    t[0] = (tnode){-1, 0, false};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)props, key, v) {
        int cur = 0;
        size_t i = 0;
        uint32_t cp;
        while (key[i]) {
            if (utf8_next(key, &i, &cp)) break;
            int nx = -1;
            for (int k = 1; k < n; k++)
                if (t[k].parent == cur && t[k].cp == cp) { nx = k; break; }
            if (nx < 0) {
                if (n == cap) {
                    tnode *q = realloc(t, sizeof *t * (size_t)(cap *= 2));
                    if (!q) return free(t), oom(b), NULL;
                    t = q;
                }
                t[n] = (tnode){cur, cp, false};
                nx = n++;
            }
            cur = nx;
        }
        t[cur].terminal = true;
    }
    if (!prim(b, "char")) return free(t), NULL;
    // rules are named key-<node>; bodies reference children by name, so create names first
    char **names = calloc((size_t)n, sizeof *names);
    if (!names) return free(t), oom(b), NULL;
    const char *result = NULL;
    for (int k = n - 1; k >= 0; k--) {
        str body = {0};
        bool any = false;
        if (!t[k].terminal) s_add(&body, "\"\\\"\""), any = true;
        str cls = {0};
        s_add(&cls, "[^\"\\\\\\x7F\\x00-\\x1F");
        for (int c = 1; c < n; c++) {
            if (t[c].parent != k) continue;
            if (any) s_add(&body, " | ");
            any = true;
            char buf[8];
            size_t bl = 0;
            uint32_t cp = t[c].cp;  // literal of the code point as UTF-8
            if (cp < 0x80) buf[bl++] = (char)cp;
            else if (cp < 0x800) buf[bl++] = (char)(0xC0 | cp >> 6), buf[bl++] = (char)(0x80 | (cp & 0x3F));
            else if (cp < 0x10000) buf[bl++] = (char)(0xE0 | cp >> 12), buf[bl++] = (char)(0x80 | ((cp >> 6) & 0x3F)), buf[bl++] = (char)(0x80 | (cp & 0x3F));
            else buf[bl++] = (char)(0xF0 | cp >> 18), buf[bl++] = (char)(0x80 | ((cp >> 12) & 0x3F)), buf[bl++] = (char)(0x80 | ((cp >> 6) & 0x3F)), buf[bl++] = (char)(0x80 | (cp & 0x3F));
            lit(&body, buf, bl);
            s_fmt(&body, " %s", names[c]);
            class_cp(&cls, cp);
        }
        s_add(&cls, "]");
        if (any) s_add(&body, " | ");
        // leaving the trie: any other character (or an escape) and then any string tail
        s_fmt(&body, "%s char* \"\\\"\" | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) ) char* \"\\\"\"", cls.v);
        free(cls.v);
        if (body.oom) { free(body.v); break; }
        const char *nm = add_rule(b, k == 0 ? "key-other" : "key-other-n", s_take(&body));
        if (!nm) break;
        names[k] = (char *)nm;
        if (k == 0) result = nm;
    }
    free(names);
    free(t);
    if (!result) return NULL;
    str full = {0};
    s_fmt(&full, "\"\\\"\" %s", result);
    if (full.oom) return oom(b), NULL;
    return add_rule(b, "extra-key", s_take(&full));
}

static bool in_array(const json_t *arr, const char *key) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), key) == 0) return true;
    return false;
}

static int gen_object(builder *b, const json_t *s, const char *path, const char **out) {
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return unsupported(path, "properties", "must be an object");
    if (req && !json_is_array(req)) return unsupported(path, "required", "must be an array of strings");
    if (!props && !addl) return (*out = prim(b, "object")) ? 0 : -1;
    if (!prim(b, "ws")) return -1;
    // key-value rules for declared properties; required ones in properties order, then unknown required
    int np = props ? (int)json_object_size(props) : 0, nreq = req ? (int)json_array_size(req) : 0;
    const char **kv = calloc((size_t)(np + nreq + 1), sizeof *kv);
    bool *isreq = calloc((size_t)(np + nreq + 1), 1);
    if (!kv || !isreq) return free(kv), free(isreq), oom(b);
    int nk = 0, rc = -1;
    const char *key;
    json_t *sub;
    if (props) json_object_foreach((json_t *)props, key, sub) {
        char p2[1024];
        path_join(p2, sizeof p2, path, "properties", key);
        const char *vr;
        if (gen(b, sub, p2, &vr)) goto done;
        str body = {0};
        json_t *k = json_string(key);
        if (!k || lit_json(b, &body, k)) { json_decref(k); free(body.v); goto done; }
        json_decref(k);
        s_fmt(&body, " ws \":\" ws %s ws", vr);
        if (body.oom) { free(body.v); oom(b); goto done; }
        char hint[80];
        snprintf(hint, sizeof hint, "%s-kv", key);
        if (!(kv[nk] = add_rule(b, hint, s_take(&body)))) goto done;
        isreq[nk++] = req && in_array(req, key);
    }
    for (int i = 0; i < nreq; i++) {  // required but not in properties: any value
        json_t *r = json_array_get(req, (size_t)i);
        if (!json_is_string(r)) { unsupported(path, "required", "must be an array of strings"); goto done; }
        if (props && json_object_get(props, json_string_value(r))) continue;
        if (json_is_false(addl) || (props && !addl)) {
            err_set(SLLM_ERR_FORMAT, "json schema: %s/required: \"%s\" is required but not allowed (no such property)", path, json_string_value(r));
            goto done;
        }
        str body = {0};
        if (lit_json(b, &body, r)) { free(body.v); goto done; }
        if (!prim(b, "value")) { free(body.v); goto done; }
        s_add(&body, " ws \":\" ws value ws");
        if (!(kv[nk] = add_rule(b, "req-kv", s_take(&body)))) goto done;
        isreq[nk++] = true;
    }
    // additional properties
    const char *extra = NULL;
    if (addl && !json_is_false(addl)) {
        const char *vr, *kr;
        char p2[1024];
        path_join(p2, sizeof p2, path, "additionalProperties", NULL);
        if (json_is_true(addl)) vr = prim(b, "value");
        else if (gen(b, addl, p2, &vr)) goto done;
        if (!vr) goto done;
        kr = np ? gen_key_not_in(b, props) : prim(b, "string");
        if (!kr) goto done;
        str body = {0};
        s_fmt(&body, "%s ws \":\" ws %s ws", kr, vr);
        if (body.oom) { free(body.v); oom(b); goto done; }
        if (!(extra = add_rule(b, "additional-kv", s_take(&body)))) goto done;
    }
    str body = {0};
    s_add(&body, "\"{\" ws");
    int first_req = -1;
    for (int i = 0; i < nk; i++) if (isreq[i]) { first_req = i; break; }
    if (first_req >= 0) {
        // required in order; optional ones interleave at their place in properties order
        bool started = false;
        for (int i = 0; i < nk; i++) {
            if (isreq[i]) s_fmt(&body, started ? " \",\" ws %s" : " %s", kv[i]), started = true;
            else if (started) s_fmt(&body, " ( \",\" ws %s )?", kv[i]);
            else s_fmt(&body, " ( %s \",\" ws )?", kv[i]);
        }
        if (extra) s_fmt(&body, " ( \",\" ws %s )*", extra);
    } else if (nk || extra) {
        // all optional: start_i ::= kv_i tail_(i+1) | start_(i+1); the last start is the extras
        const char *next = NULL;
        if (extra) {
            str e = {0};
            s_fmt(&e, "%s ( \",\" ws %s )*", extra, extra);
            if (!(next = add_rule(b, "additional-list", s_take(&e)))) { free(body.v); goto done; }
        }
        for (int i = nk - 1; i >= 0; i--) {
            str st = {0};
            s_add(&st, kv[i]);
            for (int j = i + 1; j < nk; j++) s_fmt(&st, " ( \",\" ws %s )?", kv[j]);
            if (extra) s_fmt(&st, " ( \",\" ws %s )*", extra);
            if (next) s_fmt(&st, " | %s", next);
            if (!(next = add_rule(b, "opt-props", s_take(&st)))) { free(body.v); goto done; }
        }
        s_fmt(&body, " %s?", next);
    }
    s_add(&body, " \"}\"");
    if (body.oom) { free(body.v); oom(b); goto done; }
    rc = (*out = add_rule(b, "object", s_take(&body))) ? 0 : -1;
done:
    free(kv);
    free(isreq);
    return rc;
}

static int count_kw(const json_t *s, const char *kw, json_int_t *v, const char *path) {
    const json_t *x = json_object_get(s, kw);
    if (!x) return 0;
    if (!json_is_integer(x) || json_integer_value(x) < 0) return unsupported(path, kw, "must be a non-negative integer");
    if (json_integer_value(x) > 10000) return unsupported(path, kw, "over 10000 is not supported");
    *v = json_integer_value(x);
    return 0;
}

static int gen_array(builder *b, const json_t *s, const char *path, const char **out) {
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    json_int_t mn = 0, mx = -1;
    if (count_kw(s, "minItems", &mn, path) || count_kw(s, "maxItems", &mx, path)) return -1;
    if (json_is_array(items)) return unsupported(path, "items", "an array of schemas (old tuple form) is not supported; use prefixItems");
    if (prefix && !json_is_array(prefix)) return unsupported(path, "prefixItems", "must be an array");
    if (mx >= 0 && mx < mn) return err_set(SLLM_ERR_FORMAT, "json schema: %s: maxItems below minItems", path);
    if (!prim(b, "ws")) return -1;
    str body = {0};
    s_add(&body, "\"[\" ws");
    json_int_t np = prefix ? (json_int_t)json_array_size(prefix) : 0;
    const char *ir = NULL;
    char p2[1024];
    if (items && !json_is_false(items)) {
        path_join(p2, sizeof p2, path, "items", NULL);
        if (gen(b, items, p2, &ir)) return free(body.v), -1;
    } else if (!items && !prefix) {
        if (!(ir = prim(b, "value"))) return free(body.v), -1;
    }
    if (np) {
        for (json_int_t i = 0; i < np; i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%lld", (long long)i);
            path_join(p2, sizeof p2, path, "prefixItems", idx);
            const char *pr;
            if (gen(b, json_array_get(prefix, (size_t)i), p2, &pr)) return free(body.v), -1;
            s_fmt(&body, i ? " \",\" ws %s ws" : " %s ws", pr);
        }
        json_int_t lo = mn > np ? mn - np : 0, hi = mx < 0 ? -1 : mx - np;
        if (!ir) {
            if (np < mn || (mx >= 0 && np > mx))
                return free(body.v), err_set(SLLM_ERR_FORMAT, "json schema: %s: %lld prefixItems and no items cannot meet minItems/maxItems", path, (long long)np);
        } else if (hi < 0 && mx >= 0) {
            return free(body.v), err_set(SLLM_ERR_FORMAT, "json schema: %s: more prefixItems than maxItems", path);
        } else if (hi < 0) s_fmt(&body, " ( \",\" ws %s ws ){%lld,}", ir, (long long)lo);
        else if (hi > 0) s_fmt(&body, " ( \",\" ws %s ws ){%lld,%lld}", ir, (long long)lo, (long long)hi);
    } else if (!ir) {
        if (mn > 0) return free(body.v), err_set(SLLM_ERR_FORMAT, "json schema: %s: items is false but minItems > 0", path);
    } else if (mx != 0) {
        bool opt = mn == 0;
        json_int_t lo = mn ? mn - 1 : 0;
        if (opt) s_add(&body, " (");
        s_fmt(&body, " %s ws", ir);
        if (mx < 0) s_fmt(&body, " ( \",\" ws %s ws ){%lld,}", ir, (long long)lo);
        else if (mx > 1) s_fmt(&body, " ( \",\" ws %s ws ){%lld,%lld}", ir, (long long)lo, (long long)(mx - 1));
        if (opt) s_add(&body, " )?");
    }
    s_add(&body, " \"]\"");
    if (body.oom) return free(body.v), oom(b);
    return (*out = add_rule(b, "array", s_take(&body))) ? 0 : -1;
}

static int gen_type(builder *b, const json_t *s, const char *t, const char *path, const char **out) {
    if (!strcmp(t, "string")) return gen_string(b, s, path, out);
    if (!strcmp(t, "integer")) return gen_integer(b, s, path, out);
    if (!strcmp(t, "number")) {
        static const char *bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
        for (int i = 0; i < 4; i++)
            if (json_object_get(s, bounds[i])) return unsupported(path, bounds[i], "bounds are supported for integers only");
        return (*out = prim(b, "number")) ? 0 : -1;
    }
    if (!strcmp(t, "boolean") || !strcmp(t, "null")) return (*out = prim(b, t)) ? 0 : -1;
    if (!strcmp(t, "object")) return gen_object(b, s, path, out);
    if (!strcmp(t, "array")) return gen_array(b, s, path, out);
    return err_set(SLLM_ERR_FORMAT, "json schema: %s/type: unknown type \"%s\"", path, t);
}

static const char *KNOWN[] = {"type", "properties", "required", "additionalProperties", "enum", "const", "items",
                              "prefixItems", "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref", "$defs",
                              "definitions", "minLength", "maxLength", "format", "minimum", "maximum",
                              "exclusiveMinimum", "exclusiveMaximum", NULL};
static const char *ANNOTATIONS[] = {"title", "description", "$schema", "$id", "default", "examples", "$comment",
                                    "deprecated", "readOnly", "writeOnly", "$anchor", NULL};

static bool in_list(const char **l, const char *k) {
    for (; *l; l++) if (!strcmp(*l, k)) return true;
    return false;
}

// allOf: merge object schemas (after following $ref) into one object schema.
static int merge_all_of(builder *b, const json_t *s, const char *path, json_t **merged) {
    const json_t *all = json_object_get(s, "allOf");
    if (!json_is_array(all) || !json_array_size(all)) return unsupported(path, "allOf", "must be a non-empty array");
    json_t *m = json_object(), *props = json_object(), *req = json_array();
    json_object_set_new(m, "type", json_string("object"));
    const json_t *addl = NULL;
    size_t i, nall = json_array_size(all);
    json_t *sub, *self = json_object();
    // the schema's own properties/required/additionalProperties combine with the branches
    static const char *own[] = {"properties", "required", "additionalProperties", "type"};
    for (int k = 0; k < 4; k++)
        if (json_object_get(s, own[k])) json_object_set(self, own[k], json_object_get(s, own[k]));
    if (!json_object_get(self, "type")) json_object_set_new(self, "type", json_string("object"));
    for (i = 0; i <= nall; i++) {
        sub = i < nall ? json_array_get(all, i) : self;
        char p2[1024], idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        if (i < nall) path_join(p2, sizeof p2, path, "allOf", idx);
        else snprintf(p2, sizeof p2, "%s", path);
        for (int hops = 0; json_is_object(sub) && json_object_get(sub, "$ref") && hops < 32; hops++) {
            const char *ref = json_string_value(json_object_get(sub, "$ref"));
            const json_t *t = ref ? resolve_ref(b, ref) : NULL;
            if (!t) { json_decref(m), json_decref(props), json_decref(req), json_decref(self); return err_set(SLLM_ERR_FORMAT, "json schema: %s/$ref: cannot resolve", p2); }
            sub = (json_t *)t;
        }
        const json_t *ty = json_object_get(sub, "type");
        if (!json_is_object(sub) || (ty && !(json_is_string(ty) && !strcmp(json_string_value(ty), "object"))) ||
            (!ty && !json_object_get(sub, "properties"))) {
            json_decref(m), json_decref(props), json_decref(req), json_decref(self);
            return unsupported(path, "allOf", "only object schemas (with properties) can be combined");
        }
        const char *key;
        json_t *v;
        json_object_foreach(sub, key, v) {
            if (in_list(ANNOTATIONS, key) || !strcmp(key, "type") || !strcmp(key, "properties") || !strcmp(key, "required") ||
                !strcmp(key, "additionalProperties") || !strcmp(key, "$defs") || !strcmp(key, "definitions"))
                continue;
            json_decref(m), json_decref(props), json_decref(req), json_decref(self);
            return unsupported(p2, key, "not supported inside allOf");
        }
        json_object_foreach(json_object_get(sub, "properties"), key, v) {
            if (json_object_get(props, key)) {
                json_decref(m), json_decref(props), json_decref(req), json_decref(self);
                return err_set(SLLM_ERR_UNSUPPORTED, "json schema: %s/properties/%s: property defined in two allOf branches", p2, key);
            }
            json_object_set(props, key, v);
        }
        size_t j;
        json_t *r;
        json_array_foreach(json_object_get(sub, "required"), j, r) if (json_is_string(r) && !in_array(req, json_string_value(r))) json_array_append(req, r);
        const json_t *a = json_object_get(sub, "additionalProperties");
        if (a && (!addl || json_is_false(a))) addl = a;
    }
    json_decref(self);
    json_object_set_new(m, "properties", props);
    json_object_set_new(m, "required", req);
    if (addl) json_object_set(m, "additionalProperties", (json_t *)addl);
    *merged = m;
    return 0;
}

static int gen(builder *b, const json_t *s, const char *path, const char **out) {
    if (b->oom) return SLLM_ERR_NOMEM;
    if (++b->depth > 64) return err_set(SLLM_ERR_UNSUPPORTED, "json schema: %s: nested too deeply", path);
    int rc = -1;
    if (json_is_true(s) || (json_is_object(s) && json_object_size(s) == 0)) {
        rc = (*out = prim(b, "value")) ? 0 : -1;
        goto done;
    }
    if (json_is_false(s)) { rc = err_set(SLLM_ERR_FORMAT, "json schema: %s: schema 'false' matches nothing", path); goto done; }
    if (!json_is_object(s)) { rc = err_set(SLLM_ERR_FORMAT, "json schema: %s: a schema must be an object or a boolean", path); goto done; }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        if (!strcmp(key, "pattern")) { rc = unsupported(path, key, "regular expressions are not supported"); goto done; }
        if (!in_list(KNOWN, key) && !in_list(ANNOTATIONS, key)) { rc = unsupported(path, key, "unsupported keyword"); goto done; }
    }
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        if (!json_is_string(ref)) { rc = unsupported(path, "$ref", "must be a string"); goto done; }
        json_object_foreach((json_t *)s, key, v)
            if (strcmp(key, "$ref") && strcmp(key, "$defs") && strcmp(key, "definitions") && !in_list(ANNOTATIONS, key)) {
                rc = unsupported(path, key, "keywords beside $ref are not supported");
                goto done;
            }
        rc = gen_ref(b, json_string_value(ref), path, out);
        goto done;
    }
    const json_t *cst = json_object_get(s, "const"), *en = json_object_get(s, "enum");
    if (cst || en) {
        str body = {0};
        if (cst) rc = lit_json(b, &body, cst);
        else if (!json_is_array(en) || !json_array_size(en)) rc = unsupported(path, "enum", "must be a non-empty array");
        else {
            size_t i;
            json_t *e;
            rc = 0;
            json_array_foreach(en, i, e) {
                if (i) s_add(&body, " | ");
                if ((rc = lit_json(b, &body, e))) break;
            }
        }
        if (rc) { free(body.v); goto done; }
        rc = (*out = add_rule(b, cst ? "const" : "enum", s_take(&body))) ? 0 : -1;
        goto done;
    }
    const char *alt_kw = json_object_get(s, "anyOf") ? "anyOf" : json_object_get(s, "oneOf") ? "oneOf" : NULL;
    if (alt_kw) {
        const json_t *alts = json_object_get(s, alt_kw);
        if (!json_is_array(alts) || !json_array_size(alts)) { rc = unsupported(path, alt_kw, "must be a non-empty array"); goto done; }
        str body = {0};
        size_t i;
        json_t *e;
        rc = 0;
        json_array_foreach(alts, i, e) {
            char p2[1024], idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            path_join(p2, sizeof p2, path, alt_kw, idx);
            const char *r;
            if ((rc = gen(b, e, p2, &r))) break;
            s_fmt(&body, i ? " | %s" : "%s", r);
        }
        if (rc) { free(body.v); goto done; }
        rc = (*out = add_rule(b, alt_kw, s_take(&body))) ? 0 : -1;
        goto done;
    }
    if (json_object_get(s, "allOf")) {
        json_t *m = NULL;
        if ((rc = merge_all_of(b, s, path, &m))) goto done;
        rc = gen_object(b, m, path, out);
        json_decref(m);
        goto done;
    }
    const json_t *type = json_object_get(s, "type");
    if (json_is_string(type)) {
        rc = gen_type(b, s, json_string_value(type), path, out);
    } else if (json_is_array(type)) {
        if (!json_array_size(type)) { rc = unsupported(path, "type", "empty type array"); goto done; }
        str body = {0};
        size_t i;
        json_t *e;
        rc = 0;
        json_array_foreach(type, i, e) {
            const char *r;
            if (!json_is_string(e)) { rc = unsupported(path, "type", "type array entries must be strings"); break; }
            if ((rc = gen_type(b, s, json_string_value(e), path, &r))) break;
            s_fmt(&body, i ? " | %s" : "%s", r);
        }
        if (rc) { free(body.v); goto done; }
        rc = (*out = add_rule(b, "types", s_take(&body))) ? 0 : -1;
    } else if (type) {
        rc = unsupported(path, "type", "must be a string or an array of strings");
    } else if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties") || json_object_get(s, "required")) {
        rc = gen_object(b, s, path, out);
    } else if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems") || json_object_get(s, "maxItems")) {
        rc = gen_array(b, s, path, out);
    } else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength") || json_object_get(s, "format")) {
        rc = gen_string(b, s, path, out);
    } else if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum")) {
        rc = gen_type(b, s, "number", path, out);
    } else {
        rc = (*out = prim(b, "value")) ? 0 : -1;  // only annotations / $defs
    }
done:
    b->depth--;
    if (b->oom) rc = SLLM_ERR_NOMEM;
    return rc;
}

int json_schema_to_gbnf(const json_t *schema, char **out) {
    *out = NULL;
    err_clear();
    builder b = {.root = schema};
    const char *r;
    int rc = gen(&b, schema, "#", &r);
    if (rc == 0) {
        str g = {0};
        s_fmt(&g, "root ::= %s\n", r);
        for (int i = 0; i < b.n; i++) s_fmt(&g, "%s ::= %s\n", b.names[i], b.bodies[i] ? b.bodies[i] : "\"\"");
        if (g.oom) rc = err_set(SLLM_ERR_NOMEM, "json schema: out of memory");
        else *out = s_take(&g);
        if (rc) free(g.v);
    } else rc = err_code() != SLLM_OK ? err_code() : SLLM_ERR_FORMAT;   // inner helpers return a bare -1
    for (int i = 0; i < b.n; i++) free(b.names[i]), free(b.bodies[i]);
    for (int i = 0; i < b.n_refs; i++) free(b.ref_ptrs[i]);
    free(b.names), free(b.bodies), free(b.ref_ptrs), free(b.ref_names);
    return rc;
}

int json_schema_to_grammar(const json_t *schema, grammar **out) {
    *out = NULL;
    char *g;
    int rc = json_schema_to_gbnf(schema, &g);
    if (rc) return rc;
    rc = grammar_parse(g, strlen(g), "<json schema>", NULL, out);
    free(g);
    return rc;
}
