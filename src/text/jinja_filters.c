// Jinja builtins: attribute/method access, filters, tests and globals. Behaviour follows
// @huggingface/jinja where it defines one (e.g. str.strip() ignores its argument and trims all
// whitespace, title() only capitalizes ASCII word starts, `|length` counts UTF-16 units); filters,
// tests and methods it lacks but Python Jinja has are added with Python's meaning (marked "ext").
#include "text/jinja_int.h"
#include "base/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <utf8proc.h>

#define ERR(at, ...) jerr_at(c->e, SLLM_ERR_FORMAT, (at) ? (at)->pos : 0, __VA_ARGS__)
#define MAX_RANGE 10000000

static jv S(jctx *c, const char *s, size_t n) { return jv_strn(c, s, n); }

// ---- string helpers ----
static size_t trim_start(const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n && (l = js_space_len(s, n, i))) i += l;
    return i;
}
static size_t trim_end(const char *s, size_t n, size_t from) {
    while (n > from) {
        size_t k = n - 1;
        while (k > from && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        if (js_space_len(s, n, k) == n - k) n = k; else break;
    }
    return n;
}

// Unicode case mapping by code point (utf8proc), used for upper()/lower().
static jv map_case(jctx *c, jstr *s, bool upper) {
    jbuf b = {0};
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s->s;
    utf8proc_ssize_t n = (utf8proc_ssize_t)s->len, i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(p + i, n - i, &cp);
        if (l <= 0) { jb_put(c, &b, (const char *)p + i, 1); i++; continue; }
        if (upper && cp == 0xDF) { jb_put(c, &b, "SS", 2); i += l; continue; }  // full mapping, as JS does
        utf8proc_int32_t m = upper ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t el = utf8proc_encode_char(m, enc);
        jb_put(c, &b, (const char *)enc, (size_t)el);
        i += l;
    }
    return jb_done(c, &b);
}

static bool ascii_word(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'; }

static jv title_case(jctx *c, jstr *s) {  // /\b\w/g -> upper: ASCII word starts only
    jv r = S(c, s->s, s->len);
    for (size_t i = 0; i < r.s->len; i++) {
        unsigned char ch = (unsigned char)r.s->s[i];
        if (ascii_word(ch) && (i == 0 || !ascii_word((unsigned char)r.s->s[i - 1])) && ch >= 'a' && ch <= 'z') r.s->s[i] = (char)(ch - 32);
    }
    return r;
}

static size_t cp_len(const char *s, size_t n, size_t i) {
    size_t j = i + 1;
    while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80) j++;
    return j - i;
}

static jv capitalize(jctx *c, jstr *s) {
    if (!s->len) return S(c, "", 0);
    size_t l = cp_len(s->s, s->len, 0);
    jstr *f = js_new(c, s->s, l);
    jv up = map_case(c, f, true);
    jbuf b = {0};
    jb_put(c, &b, up.s->s, up.s->len);
    jb_put(c, &b, s->s + l, s->len - l);
    return jb_done(c, &b);
}

static jv str_replace(jctx *c, jstr *s, jstr *old, jstr *nw, int64_t count) {
    if (count == 0) return (jv){ .t = JV_STR, .s = s };
    int64_t left = count < 0 ? INT64_MAX : count;
    jbuf b = {0};
    if (old->len == 0) {  // matches before every code point and at the end
        size_t i = 0;
        while (i <= s->len) {
            if (left > 0) { jb_put(c, &b, nw->s, nw->len); left--; }
            if (i == s->len) break;
            size_t l = cp_len(s->s, s->len, i);
            jb_put(c, &b, s->s + i, l);
            i += l;
        }
        return jb_done(c, &b);
    }
    size_t i = 0;
    while (i < s->len) {
        const char *f = left > 0 ? memmem(s->s + i, s->len - i, old->s, old->len) : NULL;
        if (!f) break;
        size_t at = (size_t)(f - s->s);
        jb_put(c, &b, s->s + i, at - i);
        jb_put(c, &b, nw->s, nw->len);
        i = at + old->len;
        left--;
    }
    jb_put(c, &b, s->s + i, s->len - i);
    return jb_done(c, &b);
}

static jv split(jctx *c, const jnode *at, jstr *s, jv sep, int64_t maxsplit) {
    jv r = jv_list(c, 0);
    if (sep.t == JV_NULL || sep.t == JV_UNDEF) {
        size_t i = trim_start(s->s, s->len);
        const char *t = s->s + i;
        size_t n = s->len - i, k = 0;
        while (k < n) {
            size_t l;
            while (k < n && (l = js_space_len(t, n, k))) k += l;
            if (k >= n) break;
            size_t st = k;
            while (k < n && !js_space_len(t, n, k)) k += cp_len(t, n, k);
            if (maxsplit != -1 && (int64_t)r.l->n >= maxsplit) { jl_push(c, r.l, S(c, t + st, n - st)); break; }
            jl_push(c, r.l, S(c, t + st, k - st));
        }
        return r;
    }
    if (sep.t != JV_STR) ERR(at, "sep argument must be a string or null");
    if (sep.s->len == 0) ERR(at, "empty separator");
    size_t i = 0;
    for (;;) {
        const char *f = memmem(s->s + i, s->len - i, sep.s->s, sep.s->len);
        if (!f) { jl_push(c, r.l, S(c, s->s + i, s->len - i)); break; }
        jl_push(c, r.l, S(c, s->s + i, (size_t)(f - s->s) - i));
        i = (size_t)(f - s->s) + sep.s->len;
    }
    if (maxsplit != -1 && (int64_t)r.l->n > maxsplit) {
        size_t keep = maxsplit < 0 ? 0 : (size_t)maxsplit;
        jbuf b = {0};
        for (size_t k = keep; k < r.l->n; k++) {
            if (k > keep) jb_put(c, &b, sep.s->s, sep.s->len);
            jb_put(c, &b, r.l->v[k].s->s, r.l->v[k].s->len);
        }
        r.l->n = keep;
        jl_push(c, r.l, jb_done(c, &b));
    }
    return r;
}

static jv arg_or(jv *args, size_t n, size_t i, jdict *kw, const char *name, jv dflt) {
    if (i < n) return args[i];
    jv *k = kw ? jd_get(kw, name, strlen(name)) : NULL;
    return k ? *k : dflt;
}

// ---- string methods ----
#define SELF_S (self.s)
static jv m_upper(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)at; (void)a; (void)n; (void)kw; return map_case(c, SELF_S, true); }
static jv m_lower(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)at; (void)a; (void)n; (void)kw; return map_case(c, SELF_S, false); }
static jv m_title(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)at; (void)a; (void)n; (void)kw; return title_case(c, SELF_S); }
static jv m_capitalize(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)at; (void)a; (void)n; (void)kw; return capitalize(c, SELF_S); }
// strip/lstrip/rstrip ignore a `chars` argument, exactly like @huggingface/jinja (Qwen3's
// .lstrip('\n') therefore trims all leading whitespace there too).
static jv m_strip(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)at; (void)a; (void)n; (void)kw;
    size_t st = trim_start(SELF_S->s, SELF_S->len);
    return S(c, SELF_S->s + st, trim_end(SELF_S->s, SELF_S->len, st) - st);
}
static jv m_lstrip(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)at; (void)a; (void)n; (void)kw;
    size_t st = trim_start(SELF_S->s, SELF_S->len);
    return S(c, SELF_S->s + st, SELF_S->len - st);
}
static jv m_rstrip(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)at; (void)a; (void)n; (void)kw;
    return S(c, SELF_S->s, trim_end(SELF_S->s, SELF_S->len, 0));
}
static jv starts_ends(jctx *c, const jnode *at, jv self, jv *a, size_t n, bool ends) {
    const char *nm = ends ? "endswith" : "startswith";
    if (n == 0) ERR(at, "%s() requires at least one argument", nm);
    jstr *s = SELF_S;
    jv p = a[0];
    jv *items = &p;
    size_t ni = 1;
    if (p.t == JV_LIST || p.t == JV_TUPLE) { items = p.l->v; ni = p.l->n; }
    else if (p.t != JV_STR) ERR(at, "%s() argument must be a string or tuple of strings", nm);
    for (size_t i = 0; i < ni; i++) {
        if (items[i].t != JV_STR) ERR(at, "%s() tuple elements must be strings", nm);
        jstr *x = items[i].s;
        if (x->len <= s->len && !memcmp(ends ? s->s + s->len - x->len : s->s, x->s, x->len)) return jv_bool(true);
    }
    return jv_bool(false);
}
static jv m_startswith(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)kw; return starts_ends(c, at, self, a, n, false); }
static jv m_endswith(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)kw; return starts_ends(c, at, self, a, n, true); }
static jv m_split(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    jv sep = arg_or(a, n, 0, kw, "sep", JV_MK(JV_NULL));
    jv ms = arg_or(a, n, 1, kw, "maxsplit", jv_int(-1));
    if (ms.t != JV_INT) ERR(at, "maxsplit argument must be a number");
    return split(c, at, SELF_S, sep, ms.i);
}
static jv m_replace(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    if (n < 2) ERR(at, "replace() requires at least two arguments");
    if (a[0].t != JV_STR || a[1].t != JV_STR) ERR(at, "replace() arguments must be strings");
    jv cnt = arg_or(a, n, 2, kw, "count", JV_MK(JV_NULL));
    if (cnt.t != JV_INT && cnt.t != JV_NULL) ERR(at, "replace() count argument must be a number or null");
    return str_replace(c, SELF_S, a[0].s, a[1].s, cnt.t == JV_INT ? cnt.i : -1);
}
// ext: find, count, splitlines, join, isdigit/isalpha/isspace, format is not supported.
static jv m_find(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)c; (void)kw;
    if (n < 1 || a[0].t != JV_STR) ERR(at, "find() argument must be a string");
    const char *f = memmem(SELF_S->s, SELF_S->len, a[0].s->s, a[0].s->len);
    if (!f) return jv_int(-1);
    size_t off = (size_t)(f - SELF_S->s), cps = 0;
    for (size_t i = 0; i < off; i++) if (((unsigned char)SELF_S->s[i] & 0xC0) != 0x80) cps++;
    return jv_int((int64_t)cps);
}
static jv m_count(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)c; (void)kw;
    if (n < 1 || a[0].t != JV_STR) ERR(at, "count() argument must be a string");
    if (a[0].s->len == 0) return jv_int((int64_t)js_utf16_len(SELF_S->s, SELF_S->len) + 1);
    int64_t k = 0;
    for (const char *p = SELF_S->s, *e = p + SELF_S->len; (p = memmem(p, (size_t)(e - p), a[0].s->s, a[0].s->len)); p += a[0].s->len) k++;
    return jv_int(k);
}
static jv m_splitlines(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)at; (void)a; (void)n; (void)kw;
    jv r = jv_list(c, 0);
    jstr *s = SELF_S;
    size_t st = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->s[i] == '\n' || s->s[i] == '\r') {
            jl_push(c, r.l, S(c, s->s + st, i - st));
            if (s->s[i] == '\r' && i + 1 < s->len && s->s[i + 1] == '\n') i++;
            st = i + 1;
        }
    }
    if (st < s->len) jl_push(c, r.l, S(c, s->s + st, s->len - st));
    return r;
}
static jv m_join(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)kw;
    if (n < 1 || (a[0].t != JV_LIST && a[0].t != JV_TUPLE)) ERR(at, "join() argument must be a list");
    jbuf b = {0};
    for (size_t i = 0; i < a[0].l->n; i++) {
        if (i) jb_put(c, &b, SELF_S->s, SELF_S->len);
        jv_rawstr(c, at, &b, a[0].l->v[i]);
    }
    return jb_done(c, &b);
}

// ---- list methods (ext: @huggingface/jinja lists only have .length) ----
static jv m_append(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)kw;
    if (n != 1) ERR(at, "append() takes exactly one argument");
    jl_push(c, self.l, a[0]);
    return JV_MK(JV_NULL);
}
static jv m_pop(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)c; (void)kw;
    if (!self.l->n) ERR(at, "pop from empty list");
    int64_t i = n ? (a[0].t == JV_INT ? a[0].i : 0) : (int64_t)self.l->n - 1;
    if (i < 0) i += (int64_t)self.l->n;
    if (i < 0 || i >= (int64_t)self.l->n) ERR(at, "pop index out of range");
    jv r = self.l->v[i];
    memmove(self.l->v + i, self.l->v + i + 1, (self.l->n - (size_t)i - 1) * sizeof(jv));
    self.l->n--;
    return r;
}

// ---- dict methods ----
static jv d_items(jctx *c, jdict *d) {
    jv r = jv_list(c, d->n);
    for (size_t i = 0; i < d->n; i++) {
        jv p = jv_list(c, 2);
        jv k = { .t = JV_STR };
        k.s = d->k[i];
        jl_push(c, p.l, k);
        jl_push(c, p.l, d->v[i]);
        jl_push(c, r.l, p);
    }
    return r;
}
static jv m_get(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)c; (void)kw;
    if (n < 1 || a[0].t != JV_STR) ERR(at, "Object key must be a string: got %s", n ? jv_typename(a[0]) : "nothing");
    jv *v = jd_get(self.d, a[0].s->s, a[0].s->len);
    return v ? *v : n > 1 ? a[1] : JV_MK(JV_NULL);
}
static jv m_items(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) { (void)at; (void)a; (void)n; (void)kw; return d_items(c, self.d); }
static jv m_keys(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)at; (void)a; (void)n; (void)kw;
    jv r = jv_list(c, self.d->n);
    for (size_t i = 0; i < self.d->n; i++) { jv k = { .t = JV_STR }; k.s = self.d->k[i]; jl_push(c, r.l, k); }
    return r;
}
static jv m_values(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)at; (void)a; (void)n; (void)kw;
    jv r = jv_list(c, self.d->n);
    for (size_t i = 0; i < self.d->n; i++) jl_push(c, r.l, self.d->v[i]);
    return r;
}

// Stable merge sort whose comparator may raise (longjmp); scratch lives in the arena.
typedef struct { jctx *c; const jnode *at; bool cs, rev; int key; jstr *attr; } sortspec;
static jv attr_path(jv item, const char *path);
static jv sort_key(const sortspec *s, jv v) {
    if (s->key >= 0) return v.l->v[s->key];
    if (s->attr) return attr_path(v, s->attr->s);
    return v;
}
static int sort_cmp(const sortspec *s, jv a, jv b) {
    int r = jv_compare(s->c, s->at, sort_key(s, a), sort_key(s, b), s->cs);
    return s->rev ? -r : r;
}
static void msort(const sortspec *s, jv *v, jv *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    msort(s, v, tmp, h);
    msort(s, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = sort_cmp(s, v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(jv));
}
static jv sorted(jctx *c, sortspec *s, jv *items, size_t n) {
    jv r = jv_list(c, n);
    memcpy(r.l->v, items, n * sizeof(jv));
    r.l->n = n;
    jv *tmp = ja_alloc(c->a, (n + 1) * sizeof(jv));
    if (!tmp) jerr_at(c->e, SLLM_ERR_NOMEM, 0, "out of memory");
    msort(s, r.l->v, tmp, n);
    return r;
}

static jv m_dictsort(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    jv cs = arg_or(a, n, 0, kw, "case_sensitive", jv_bool(false));
    if (cs.t != JV_BOOL) ERR(at, "case_sensitive must be a boolean");
    jv by = arg_or(a, n, 1, kw, "by", JV_MK(JV_UNDEF));
    if (by.t == JV_UNDEF) by = S(c, "key", 3);
    if (by.t != JV_STR) ERR(at, "by must be a string");
    if (strcmp(by.s->s, "key") && strcmp(by.s->s, "value")) ERR(at, "by must be either 'key' or 'value'");
    jv rev = arg_or(a, n, 2, kw, "reverse", jv_bool(false));
    if (rev.t != JV_BOOL) ERR(at, "reverse must be a boolean");
    jv items = d_items(c, self.d);
    sortspec s = { c, at, cs.b, rev.b, by.s->s[0] == 'k' ? 0 : 1, NULL };
    return sorted(c, &s, items.l->v, items.l->n);
}

static bool is_container(jv v) { return v.t == JV_DICT || v.t == JV_KWARGS || v.t == JV_NS; }

static jv attr_path(jv item, const char *path) {
    jv v = item;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (is_container(v)) {
            jv *x = jd_get(v.d, p, l);
            v = x ? *x : JV_MK(JV_UNDEF);
        } else if (v.t == JV_LIST || v.t == JV_TUPLE) {
            char buf[24];
            if (l == 0 || l >= sizeof buf) return JV_MK(JV_UNDEF);
            memcpy(buf, p, l);
            buf[l] = 0;
            char *end;
            long idx = strtol(buf, &end, 10);
            if (end == buf || idx < 0 || (size_t)idx >= v.l->n) return JV_MK(JV_UNDEF);
            v = v.l->v[idx];
        } else return JV_MK(JV_UNDEF);
        if (!dot) return v;
        p = dot + 1;
    }
}

jv jinja_member(jctx *c, const jnode *at, jv obj, jv prop) {
    if (is_container(obj)) {
        if (prop.t != JV_STR) ERR(at, "Cannot access property with non-string: got %s", jv_typename(prop));
        jv *v = jd_get(obj.d, prop.s->s, prop.s->len);
        if (v) return *v;
        if (obj.t == JV_NS) return JV_MK(JV_UNDEF);
        static const struct { const char *n; jbuiltin f; } dm[] = {
            {"get", m_get}, {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"dictsort", m_dictsort} };
        for (size_t i = 0; i < sizeof dm / sizeof *dm; i++)
            if (!strcmp(prop.s->s, dm[i].n)) return jv_builtin(c, dm[i].f, obj, dm[i].n);
        return JV_MK(JV_UNDEF);
    }
    if (obj.t == JV_LIST || obj.t == JV_TUPLE || obj.t == JV_STR) {
        if (prop.t == JV_INT) {
            if (obj.t == JV_STR) {
                // index by code point (JavaScript indexes UTF-16 units; identical for BMP text)
                size_t ncp = 0;
                for (size_t i = 0; i < obj.s->len; i++) if (((unsigned char)obj.s->s[i] & 0xC0) != 0x80) ncp++;
                int64_t i = prop.i < 0 ? prop.i + (int64_t)ncp : prop.i;
                if (i < 0 || i >= (int64_t)ncp) return JV_MK(JV_UNDEF);
                size_t k = 0, off = 0;
                for (off = 0; off < obj.s->len; off++)
                    if (((unsigned char)obj.s->s[off] & 0xC0) != 0x80 && (int64_t)k++ == i) break;
                return S(c, obj.s->s + off, cp_len(obj.s->s, obj.s->len, off));
            }
            int64_t i = prop.i < 0 ? prop.i + (int64_t)obj.l->n : prop.i;
            if (i < 0 || i >= (int64_t)obj.l->n) return JV_MK(JV_UNDEF);
            return obj.l->v[i];
        }
        if (prop.t != JV_STR) ERR(at, "Cannot access property with non-string/non-number: got %s", jv_typename(prop));
        const char *p = prop.s->s;
        if (!strcmp(p, "length"))
            return jv_int((int64_t)(obj.t == JV_STR ? js_utf16_len(obj.s->s, obj.s->len) : obj.l->n));
        if (obj.t == JV_STR) {
            static const struct { const char *n; jbuiltin f; } sm[] = {
                {"upper", m_upper}, {"lower", m_lower}, {"strip", m_strip}, {"title", m_title}, {"capitalize", m_capitalize},
                {"rstrip", m_rstrip}, {"lstrip", m_lstrip}, {"startswith", m_startswith}, {"endswith", m_endswith},
                {"split", m_split}, {"replace", m_replace}, {"find", m_find}, {"count", m_count},
                {"splitlines", m_splitlines}, {"join", m_join} };
            for (size_t i = 0; i < sizeof sm / sizeof *sm; i++)
                if (!strcmp(p, sm[i].n)) return jv_builtin(c, sm[i].f, obj, sm[i].n);
        } else {
            if (!strcmp(p, "append")) return jv_builtin(c, m_append, obj, "append");
            if (!strcmp(p, "pop")) return jv_builtin(c, m_pop, obj, "pop");
        }
        return JV_MK(JV_UNDEF);
    }
    if (prop.t != JV_STR) ERR(at, "Cannot access property with non-string: got %s", jv_typename(prop));
    return JV_MK(JV_UNDEF);
}

// ---- tests ----
static const char *const test_names[] = { "boolean", "callable", "odd", "even", "false", "true", "none", "string", "number",
    "integer", "iterable", "mapping", "sequence", "lower", "upper", "defined", "undefined", "equalto", "eq",
    /* ext */ "float", "divisibleby", "in", "sameas", "ne", "lt", "gt", "le", "ge", "greaterthan", "lessthan", "==", NULL };

bool jinja_test_exists(const char *name) {
    for (int i = 0; test_names[i]; i++) if (!strcmp(name, test_names[i])) return true;
    return false;
}
bool jinja_test_takes_arg(const char *name) {
    static const char *const with_arg[] = { "equalto", "eq", "divisibleby", "in", "sameas", "ne", "lt", "gt", "le", "ge",
                                            "greaterthan", "lessthan", NULL };
    for (int i = 0; with_arg[i]; i++) if (!strcmp(name, with_arg[i])) return true;
    return false;
}

bool jinja_test(jctx *c, const jnode *at, jv v, const char *name, jv *arg) {
    jv undef = JV_MK(JV_UNDEF);
    jv b = arg ? *arg : undef;
    if (!strcmp(name, "boolean")) return v.t == JV_BOOL;
    if (!strcmp(name, "callable")) return v.t == JV_FUNC;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (v.t != JV_INT) ERR(at, "cannot %s on %s", name, jv_typename(v));
        return name[0] == 'o' ? v.i % 2 != 0 : v.i % 2 == 0;
    }
    if (!strcmp(name, "false")) return v.t == JV_BOOL && !v.b;
    if (!strcmp(name, "true")) return v.t == JV_BOOL && v.b;
    if (!strcmp(name, "none")) return v.t == JV_NULL;
    if (!strcmp(name, "string")) return v.t == JV_STR;
    if (!strcmp(name, "number")) return v.t == JV_INT || v.t == JV_FLOAT;
    if (!strcmp(name, "integer")) return v.t == JV_INT;
    if (!strcmp(name, "float")) return v.t == JV_FLOAT;
    if (!strcmp(name, "iterable")) return v.t == JV_LIST || v.t == JV_STR;
    if (!strcmp(name, "mapping")) return v.t == JV_DICT || v.t == JV_KWARGS;
    if (!strcmp(name, "sequence")) return v.t == JV_LIST || v.t == JV_TUPLE || v.t == JV_DICT || v.t == JV_KWARGS || v.t == JV_STR;
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v.t != JV_STR) return false;
        jv m = map_case(c, v.s, name[0] == 'u');
        return m.s->len == v.s->len && !memcmp(m.s->s, v.s->s, v.s->len);
    }
    if (!strcmp(name, "defined")) return v.t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v.t == JV_UNDEF;
    if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "==") || !strcmp(name, "sameas")) return jv_strict_eq(v, b);
    if (!strcmp(name, "ne")) return !jv_strict_eq(v, b);
    if (!strcmp(name, "divisibleby")) {
        if (v.t != JV_INT || b.t != JV_INT || b.i == 0) ERR(at, "divisibleby needs integers");
        return v.i % b.i == 0;
    }
    if (!strcmp(name, "in")) {
        if (b.t == JV_LIST || b.t == JV_TUPLE) { for (size_t i = 0; i < b.l->n; i++) if (jv_strict_eq(b.l->v[i], v)) return true; return false; }
        if (b.t == JV_STR && v.t == JV_STR) return memmem(b.s->s, b.s->len, v.s->s, v.s->len) != NULL || v.s->len == 0;
        if ((b.t == JV_DICT || b.t == JV_KWARGS) && v.t == JV_STR) return jd_get(b.d, v.s->s, v.s->len) != NULL;
        ERR(at, "test 'in' needs a sequence");
    }
    if (!strcmp(name, "lt") || !strcmp(name, "lessthan")) return jv_compare(c, at, v, b, true) < 0;
    if (!strcmp(name, "gt") || !strcmp(name, "greaterthan")) return jv_compare(c, at, v, b, true) > 0;
    if (!strcmp(name, "le")) return jv_compare(c, at, v, b, true) <= 0;
    if (!strcmp(name, "ge")) return jv_compare(c, at, v, b, true) >= 0;
    ERR(at, "Unknown test: %s", name);
}

// ---- filters ----
static jv to_json_filter(jctx *c, const jnode *at, jv v, jdict *kw) {
    jv ind = arg_or(NULL, 0, 0, kw, "indent", JV_MK(JV_NULL));
    if (ind.t != JV_INT && ind.t != JV_NULL) ERR(at, "If set, indent must be a number");
    if (ind.t == JV_INT && (ind.i < 0 || ind.i > 64)) ERR(at, "indent out of range");
    jv asc = arg_or(NULL, 0, 0, kw, "ensure_ascii", jv_bool(false));
    if (asc.t != JV_BOOL) ERR(at, "If set, ensure_ascii must be a boolean");
    jv sk = arg_or(NULL, 0, 0, kw, "sort_keys", jv_bool(false));
    if (sk.t != JV_BOOL) ERR(at, "If set, sort_keys must be a boolean");
    jv sep = arg_or(NULL, 0, 0, kw, "separators", JV_MK(JV_NULL));
    const char *isep = NULL, *ksep = NULL;
    if (sep.t == JV_LIST || sep.t == JV_TUPLE) {
        if (sep.l->n != 2 || sep.l->v[0].t != JV_STR || sep.l->v[1].t != JV_STR) ERR(at, "separators must be a tuple of two strings");
        isep = sep.l->v[0].s->s;
        ksep = sep.l->v[1].s->s;
    } else if (sep.t != JV_NULL) ERR(at, "If set, separators must be a tuple of two strings");
    jbuf b = {0};
    jv_tojson(c, at, &b, v, ind.t == JV_INT ? (int)ind.i : 0, asc.b, sk.b, isep, ksep, 0, true);
    return jb_done(c, &b);
}

static jv parse_int_js(jctx *c, jstr *s, jv dflt) {  // parseInt(s, 10)
    (void)c;
    size_t i = trim_start(s->s, s->len);
    const char *p = s->s + i;
    int sign = 1;
    if (*p == '+' || *p == '-') { if (*p == '-') sign = -1; p++; }
    if (!(*p >= '0' && *p <= '9')) return dflt;
    double v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    v *= sign;
    if (fabs(v) < 9.2e18) return jv_int((int64_t)v);
    return jv_float(v);
}
static jv parse_float_js(jctx *c, jstr *s, jv dflt) {  // parseFloat(s)
    (void)c;
    size_t i = trim_start(s->s, s->len);
    const char *p = s->s + i;
    if (!strncmp(p, "Infinity", 8) || !strncmp(p, "+Infinity", 9)) return jv_float(INFINITY);
    if (!strncmp(p, "-Infinity", 9)) return jv_float(-INFINITY);
    const char *q = p;
    if (*q == '+' || *q == '-') q++;
    bool dig = false;
    while (*q >= '0' && *q <= '9') { q++; dig = true; }
    if (*q == '.') { q++; while (*q >= '0' && *q <= '9') { q++; dig = true; } }
    if (!dig) return dflt;
    if (*q == 'e' || *q == 'E') {
        const char *r = q + 1;
        if (*r == '+' || *r == '-') r++;
        if (*r >= '0' && *r <= '9') { while (*r >= '0' && *r <= '9') r++; q = r; }
    }
    char buf[128];
    size_t l = (size_t)(q - p) < sizeof buf - 1 ? (size_t)(q - p) : sizeof buf - 1;
    memcpy(buf, p, l);
    buf[l] = 0;
    return jv_float(strtod(buf, NULL));
}

static jv indent_str(jctx *c, jstr *s, int64_t width, bool first, bool blank) {
    jbuf b = {0};
    size_t st = 0;
    int line = 0;
    for (size_t i = 0; i <= s->len; i++) {
        if (i == s->len || s->s[i] == '\n') {
            size_t l = i - st;
            if (line) jb_put(c, &b, "\n", 1);
            if (!((!first && line == 0) || (!blank && l == 0)))
                for (int64_t k = 0; k < width; k++) jb_put(c, &b, " ", 1);
            jb_put(c, &b, s->s + st, l);
            st = i + 1;
            line++;
        }
    }
    return jb_done(c, &b);
}

static jv list_join(jctx *c, const jnode *at, jlist *l, jstr *sep) {
    jbuf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i && sep) jb_put(c, &b, sep->s, sep->len);
        if (l->v[i].t != JV_NULL && l->v[i].t != JV_UNDEF) jv_rawstr(c, at, &b, l->v[i]);  // Array#join skips null
    }
    return jb_done(c, &b);
}

static jv str_chars(jctx *c, jstr *s) {
    jv r = jv_list(c, 0);
    for (size_t i = 0; i < s->len;) { size_t l = cp_len(s->s, s->len, i); jl_push(c, r.l, S(c, s->s + i, l)); i += l; }
    return r;
}

static jv escape_html(jctx *c, jstr *s) {
    jbuf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        switch (s->s[i]) {
        case '&': jb_puts(c, &b, "&amp;"); break;
        case '<': jb_puts(c, &b, "&lt;"); break;
        case '>': jb_puts(c, &b, "&gt;"); break;
        case '"': jb_puts(c, &b, "&#34;"); break;
        case '\'': jb_puts(c, &b, "&#39;"); break;
        default: jb_put(c, &b, s->s + i, 1);
        }
    }
    return jb_done(c, &b);
}

static jv num_sum(jctx *c, const jnode *at, jlist *l, jstr *attr) {
    int64_t si = 0;
    double sf = 0;
    bool fl = false;
    for (size_t i = 0; i < l->n; i++) {
        jv v = attr ? attr_path(l->v[i], attr->s) : l->v[i];
        if (v.t == JV_INT) { si += v.i; sf += (double)v.i; }
        else if (v.t == JV_FLOAT) { sf += v.f; fl = true; }
        else if (v.t == JV_BOOL) { si += v.b; sf += v.b; }
        else ERR(at, "sum: cannot add %s", jv_typename(v));
    }
    (void)c;
    return fl ? jv_float(sf) : jv_int(si);
}

jv jinja_filter(jctx *c, const jnode *at, jv v, const char *name, bool called, jv *args, size_t n, jdict *kw, jenv *env) {
    (void)env;
    if (!kw) kw = jv_dict(c, JV_KWARGS).d;
    if (!strcmp(name, "safe")) return v;
    if (!strcmp(name, "tojson")) return to_json_filter(c, at, v, called ? kw : NULL);
    bool is_list = v.t == JV_LIST || v.t == JV_TUPLE;
    if (called) {
        if (!strcmp(name, "join")) {
            jv sep = arg_or(args, n, 0, kw, "separator", JV_MK(JV_UNDEF));
            if (sep.t == JV_UNDEF) sep = arg_or(args, n, 0, kw, "d", S(c, "", 0));
            if (sep.t != JV_STR) ERR(at, "separator must be a string");
            if (v.t == JV_STR) return list_join(c, at, str_chars(c, v.s).l, sep.s);
            if (is_list) return list_join(c, at, v.l, sep.s);
            ERR(at, "Cannot apply filter \"%s\" to type: %s", name, jv_typename(v));
        }
        if (!strcmp(name, "int") || !strcmp(name, "float")) {
            bool isint = name[0] == 'i';
            jv d = arg_or(args, n, 0, kw, "default", isint ? jv_int(0) : jv_float(0));
            if (v.t == JV_STR) return isint ? parse_int_js(c, v.s, d) : parse_float_js(c, v.s, d);
            if (v.t == JV_INT || v.t == JV_FLOAT) return v;
            if (v.t == JV_BOOL) return isint ? jv_int(v.b) : jv_float(v.b);
            ERR(at, "Cannot apply filter \"%s\" to type: %s", name, jv_typename(v));
        }
        if (!strcmp(name, "default") || !strcmp(name, "d")) {
            jv d = n > 0 ? args[0] : S(c, "", 0);
            jv bo = arg_or(args, n, 1, kw, "boolean", jv_bool(false));
            if (bo.t != JV_BOOL) ERR(at, "`default` filter flag must be a boolean");
            if (v.t == JV_UNDEF || (bo.b && !jv_truthy(v))) return d;
            return v;
        }
        if (is_list) {
            if (!strcmp(name, "sort")) {
                jv rev = arg_or(args, n, 0, kw, "reverse", jv_bool(false));
                if (rev.t != JV_BOOL) ERR(at, "reverse must be a boolean");
                jv cs = arg_or(args, n, 1, kw, "case_sensitive", jv_bool(false));
                if (cs.t != JV_BOOL) ERR(at, "case_sensitive must be a boolean");
                jv attr = arg_or(args, n, 2, kw, "attribute", JV_MK(JV_NULL));
                if (attr.t == JV_INT) { char t[32]; snprintf(t, sizeof t, "%lld", (long long)attr.i); attr = jv_str(c, t); }
                else if (attr.t != JV_STR && attr.t != JV_NULL) ERR(at, "attribute must be a string, integer, or null");
                sortspec s = { c, at, cs.b, rev.b, -1, attr.t == JV_STR ? attr.s : NULL };
                return sorted(c, &s, v.l->v, v.l->n);
            }
            if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
                bool sel = name[0] == 's';
                for (size_t i = 0; i < v.l->n; i++)
                    if (!is_container(v.l->v[i])) ERR(at, "`%s` can only be applied to array of objects", name);
                for (size_t i = 0; i < n; i++) if (args[i].t != JV_STR && i < 2) ERR(at, "arguments of `%s` must be strings", name);
                if (n < 1) ERR(at, "`%s` needs an attribute name", name);
                jv r = jv_list(c, 0);
                for (size_t i = 0; i < v.l->n; i++) {
                    jv *a = jd_get(v.l->v[i].d, args[0].s->s, args[0].s->len);
                    bool res = false;
                    if (a) res = n > 1 ? jinja_test(c, at, *a, args[1].s->s, n > 2 ? &args[2] : NULL) : jv_truthy(*a);
                    if (res == sel) jl_push(c, r.l, v.l->v[i]);
                }
                return r;
            }
            if (!strcmp(name, "map")) {
                jv *attr = jd_get(kw, "attribute", 9);
                jv r = jv_list(c, v.l->n);
                if (attr) {
                    if (attr->t != JV_STR) ERR(at, "attribute must be a string");
                    jv *d = jd_get(kw, "default", 7);
                    for (size_t i = 0; i < v.l->n; i++) {
                        if (!is_container(v.l->v[i])) ERR(at, "items in map must be an object");
                        jv x = attr_path(v.l->v[i], attr->s->s);
                        jl_push(c, r.l, x.t == JV_UNDEF && d ? *d : x);
                    }
                    return r;
                }
                // ext: map('filter', args...)
                if (n >= 1 && args[0].t == JV_STR) {
                    for (size_t i = 0; i < v.l->n; i++)
                        jl_push(c, r.l, jinja_filter(c, at, v.l->v[i], args[0].s->s, n > 1, args + 1, n - 1, kw, env));
                    return r;
                }
                ERR(at, "`map` expressions without `attribute` set are not currently supported.");
            }
            if (!strcmp(name, "sum")) {  // ext
                jv attr = arg_or(args, n, 0, kw, "attribute", JV_MK(JV_NULL));
                jv start = arg_or(args, n, 1, kw, "start", jv_int(0));
                jv s = num_sum(c, at, v.l, attr.t == JV_STR ? attr.s : NULL);
                if (start.t == JV_INT && s.t == JV_INT) return jv_int(s.i + start.i);
                return jv_float((s.t == JV_INT ? (double)s.i : s.f) + (start.t == JV_INT ? (double)start.i : start.t == JV_FLOAT ? start.f : 0));
            }
            if (!strcmp(name, "batch")) {  // ext
                jv sz = arg_or(args, n, 0, kw, "linecount", JV_MK(JV_UNDEF));
                if (sz.t != JV_INT || sz.i <= 0) ERR(at, "batch size must be a positive integer");
                jv fill = arg_or(args, n, 1, kw, "fill_with", JV_MK(JV_UNDEF));
                jv r = jv_list(c, 0), cur = jv_list(c, 0);
                for (size_t i = 0; i < v.l->n; i++) {
                    jl_push(c, cur.l, v.l->v[i]);
                    if ((int64_t)cur.l->n == sz.i) { jl_push(c, r.l, cur); cur = jv_list(c, 0); }
                }
                if (cur.l->n) {
                    if (fill.t != JV_UNDEF) while ((int64_t)cur.l->n < sz.i) jl_push(c, cur.l, fill);
                    jl_push(c, r.l, cur);
                }
                return r;
            }
            ERR(at, "Unknown ArrayValue filter: %s", name);
        }
        if (v.t == JV_STR) {
            if (!strcmp(name, "indent")) {
                jv w = arg_or(args, n, 0, kw, "width", jv_int(4));
                if (w.t != JV_INT) ERR(at, "width must be a number");
                if (w.i < 0 || w.i > 1000) ERR(at, "indent width out of range");
                jv first = arg_or(args, n, 1, kw, "first", jv_bool(false));
                jv blank = arg_or(args, n, 2, kw, "blank", jv_bool(false));
                return indent_str(c, v.s, w.i, jv_truthy(first), jv_truthy(blank));
            }
            if (!strcmp(name, "replace")) {
                if (n < 2) ERR(at, "replace() requires at least two arguments");
                if (args[0].t != JV_STR || args[1].t != JV_STR) ERR(at, "replace() arguments must be strings");
                jv cnt = arg_or(args, n, 2, kw, "count", JV_MK(JV_NULL));
                if (cnt.t != JV_INT && cnt.t != JV_NULL) ERR(at, "replace() count argument must be a number or null");
                return str_replace(c, v.s, args[0].s, args[1].s, cnt.t == JV_INT ? cnt.i : -1);
            }
            if (!strcmp(name, "truncate")) {  // ext (Jinja: length=255, killwords=False, end='...')
                jv len = arg_or(args, n, 0, kw, "length", jv_int(255));
                jv end = arg_or(args, n, 2, kw, "end", S(c, "...", 3));
                if (len.t != JV_INT || end.t != JV_STR) ERR(at, "truncate(length, killwords, end)");
                size_t ncp = 0;
                for (size_t i = 0; i < v.s->len; i++) if (((unsigned char)v.s->s[i] & 0xC0) != 0x80) ncp++;
                if ((int64_t)ncp <= len.i) return v;
                int64_t keep = len.i - (int64_t)end.s->len;
                if (keep < 0) keep = 0;
                size_t off = 0, k = 0;
                while (off < v.s->len && (int64_t)k < keep) { off += cp_len(v.s->s, v.s->len, off); k++; }
                jbuf b = {0};
                jb_put(c, &b, v.s->s, off);
                jb_put(c, &b, end.s->s, end.s->len);
                return jb_done(c, &b);
            }
            if (!strcmp(name, "center")) {  // ext
                jv w = arg_or(args, n, 0, kw, "width", jv_int(80));
                if (w.t != JV_INT || w.i > 100000) ERR(at, "center width must be a number");
                int64_t len = (int64_t)js_utf16_len(v.s->s, v.s->len), padl = w.i > len ? (w.i - len) / 2 : 0;
                int64_t padr = w.i > len ? w.i - len - padl : 0;
                jbuf b = {0};
                for (int64_t i = 0; i < padl; i++) jb_put(c, &b, " ", 1);
                jb_put(c, &b, v.s->s, v.s->len);
                for (int64_t i = 0; i < padr; i++) jb_put(c, &b, " ", 1);
                return jb_done(c, &b);
            }
            ERR(at, "Unknown StringValue filter: %s", name);
        }
        if (v.t == JV_DICT || v.t == JV_KWARGS) {
            jv m = jinja_member(c, at, (jv){ .t = JV_DICT, .d = jv_dict(c, JV_DICT).d }, jv_str(c, name));
            if (m.t == JV_FUNC) return m.fn->fn(c, at, v, args, n, kw);
            ERR(at, "Unknown ObjectValue filter: %s", name);
        }
        ERR(at, "Cannot apply filter \"%s\" to type: %s", name, jv_typename(v));
    }
    // ---- filters used without parentheses ----
    if (is_list) {
        jlist *l = v.l;
        if (!strcmp(name, "list")) return v;
        if (!strcmp(name, "first")) return l->n ? l->v[0] : JV_MK(JV_UNDEF);
        if (!strcmp(name, "last")) return l->n ? l->v[l->n - 1] : JV_MK(JV_UNDEF);
        if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int((int64_t)l->n);
        if (!strcmp(name, "reverse")) {
            jv r = jv_list(c, l->n);
            for (size_t i = l->n; i-- > 0;) jl_push(c, r.l, l->v[i]);
            return r;
        }
        if (!strcmp(name, "sort")) { sortspec s = { c, at, false, false, -1, NULL }; return sorted(c, &s, l->v, l->n); }
        if (!strcmp(name, "join")) return list_join(c, at, l, NULL);
        if (!strcmp(name, "string")) { jbuf b = {0}; jv_tojson(c, at, &b, v, 0, false, false, NULL, NULL, 0, false); return jb_done(c, &b); }
        if (!strcmp(name, "unique")) {
            jv r = jv_list(c, 0);
            for (size_t i = 0; i < l->n; i++) {
                bool seen = false;
                for (size_t k = 0; k < r.l->n && !seen; k++) seen = jv_strict_eq(r.l->v[k], l->v[i]);
                if (!seen) jl_push(c, r.l, l->v[i]);
            }
            return r;
        }
        if (!strcmp(name, "sum")) return num_sum(c, at, l, NULL);  // ext
        if (!strcmp(name, "min") || !strcmp(name, "max")) {      // ext
            if (!l->n) return JV_MK(JV_UNDEF);
            jv best = l->v[0];
            for (size_t i = 1; i < l->n; i++) {
                int r = jv_compare(c, at, l->v[i], best, false);
                if (name[1] == 'i' ? r < 0 : r > 0) best = l->v[i];
            }
            return best;
        }
        if (!strcmp(name, "tojson")) return to_json_filter(c, at, v, NULL);
        ERR(at, "Unknown ArrayValue filter: %s", name);
    }
    if (v.t == JV_STR) {
        jstr *s = v.s;
        if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int((int64_t)js_utf16_len(s->s, s->len));
        if (!strcmp(name, "upper")) return map_case(c, s, true);
        if (!strcmp(name, "lower")) return map_case(c, s, false);
        if (!strcmp(name, "title")) return title_case(c, s);
        if (!strcmp(name, "capitalize")) return capitalize(c, s);
        if (!strcmp(name, "trim")) return m_strip(c, at, v, NULL, 0, NULL);
        if (!strcmp(name, "indent")) return indent_str(c, s, 4, false, false);
        if (!strcmp(name, "join") || !strcmp(name, "string")) return v;
        if (!strcmp(name, "int")) return parse_int_js(c, s, jv_int(0));
        if (!strcmp(name, "float")) return parse_float_js(c, s, jv_float(0));
        if (!strcmp(name, "list")) return str_chars(c, s);                                   // ext
        if (!strcmp(name, "first")) return s->len ? S(c, s->s, cp_len(s->s, s->len, 0)) : JV_MK(JV_UNDEF);  // ext
        if (!strcmp(name, "last")) {                                                          // ext
            if (!s->len) return JV_MK(JV_UNDEF);
            size_t k = s->len - 1;
            while (k > 0 && ((unsigned char)s->s[k] & 0xC0) == 0x80) k--;
            return S(c, s->s + k, s->len - k);
        }
        if (!strcmp(name, "reverse")) {                                                       // ext
            jv ch = str_chars(c, s);
            jbuf b = {0};
            for (size_t i = ch.l->n; i-- > 0;) jb_put(c, &b, ch.l->v[i].s->s, ch.l->v[i].s->len);
            return jb_done(c, &b);
        }
        if (!strcmp(name, "wordcount")) return jv_int((int64_t)split(c, at, s, JV_MK(JV_NULL), -1).l->n);  // ext
        if (!strcmp(name, "escape") || !strcmp(name, "e")) return escape_html(c, s);         // ext
        ERR(at, "Unknown StringValue filter: %s", name);
    }
    if (v.t == JV_INT || v.t == JV_FLOAT) {
        if (!strcmp(name, "abs")) return v.t == JV_INT ? jv_int(v.i < 0 ? -v.i : v.i) : jv_float(fabs(v.f));
        if (!strcmp(name, "int")) return v.t == JV_INT ? v : (fabs(v.f) < 9.2e18 ? jv_int((int64_t)floor(v.f)) : jv_float(floor(v.f)));
        if (!strcmp(name, "float")) return v.t == JV_INT ? jv_float((double)v.i) : v;
        if (!strcmp(name, "string")) { jbuf b = {0}; jv_print(c, at, &b, v); return jb_done(c, &b); }
        if (!strcmp(name, "round")) return v.t == JV_INT ? jv_float((double)v.i) : jv_float(round(v.f));  // ext
        ERR(at, "Unknown NumericValue filter: %s", name);
    }
    if (v.t == JV_DICT || v.t == JV_KWARGS) {
        if (!strcmp(name, "items")) return d_items(c, v.d);
        if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int((int64_t)v.d->n);
        if (!strcmp(name, "list")) return m_keys(c, at, v, NULL, 0, NULL);  // ext
        jv m = jinja_member(c, at, (jv){ .t = JV_DICT, .d = jv_dict(c, JV_DICT).d }, jv_str(c, name));
        if (m.t == JV_FUNC) return m.fn->fn(c, at, v, NULL, 0, kw);
        ERR(at, "Unknown ObjectValue filter: %s", name);
    }
    if (v.t == JV_BOOL) {
        if (!strcmp(name, "bool")) return v;
        if (!strcmp(name, "int")) return jv_int(v.b);
        if (!strcmp(name, "float")) return jv_float(v.b);
        if (!strcmp(name, "string")) return jv_str(c, v.b ? "true" : "false");
        ERR(at, "Unknown BooleanValue filter: %s", name);
    }
    ERR(at, "Cannot apply filter \"%s\" to type: %s", name, jv_typename(v));
}

// ---- globals ----
static jv g_raise(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)self; (void)kw;
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {  // String(args): elements joined with ","
        if (i) jb_put(c, &b, ",", 1);
        jv_print(c, at, &b, a[i]);
    }
    jerr_at(c->e, SLLM_ERR_FORMAT, at ? at->pos : 0, "%s", b.p ? b.p : "");
}

static jv g_range(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)self; (void)kw;
    double v[3] = { 0, 0, 1 };
    if (n < 1 || n > 3) ERR(at, "range expected 1 to 3 arguments, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        if (a[i].t != JV_INT && a[i].t != JV_FLOAT) ERR(at, "range() arguments must be numbers");
        v[i] = a[i].t == JV_INT ? (double)a[i].i : a[i].f;
    }
    double start = n == 1 ? 0 : v[0], stop = n == 1 ? v[0] : v[1], step = n == 3 ? v[2] : 1;
    if (step == 0) ERR(at, "range() step must not be zero");
    jv r = jv_list(c, 0);
    for (double x = start; step > 0 ? x < stop : x > stop; x += step) {
        if (r.l->n >= MAX_RANGE) jerr_at(c->e, SLLM_ERR_ARG, at ? at->pos : 0, "range() longer than %d items", MAX_RANGE);
        jl_push(c, r.l, x == floor(x) && fabs(x) < 9.2e18 ? jv_int((int64_t)x) : jv_float(x));
    }
    return r;
}

static jv g_strftime_now(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)self; (void)kw;
    if (n < 1 || a[0].t != JV_STR) ERR(at, "strftime_now() needs a format string");
    static const char *mon_s[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    static const char *mon_l[] = { "January", "February", "March", "April", "May", "June", "July", "August", "September",
                                   "October", "November", "December" };
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    jbuf b = {0};
    jstr *f = a[0].s;
    char t[32];
    for (size_t i = 0; i < f->len; i++) {
        if (f->s[i] == '%' && i + 1 < f->len && strchr("YmdbBHM%", f->s[i + 1])) {
            char k = f->s[++i];
            switch (k) {
            case 'Y': snprintf(t, sizeof t, "%d", tm.tm_year + 1900); break;
            case 'm': snprintf(t, sizeof t, "%02d", tm.tm_mon + 1); break;
            case 'd': snprintf(t, sizeof t, "%02d", tm.tm_mday); break;
            case 'b': snprintf(t, sizeof t, "%s", mon_s[tm.tm_mon]); break;
            case 'B': snprintf(t, sizeof t, "%s", mon_l[tm.tm_mon]); break;
            case 'H': snprintf(t, sizeof t, "%02d", tm.tm_hour); break;
            case 'M': snprintf(t, sizeof t, "%02d", tm.tm_min); break;
            default: snprintf(t, sizeof t, "%%"); break;
            }
            jb_puts(c, &b, t);
        } else jb_put(c, &b, f->s + i, 1);
    }
    return jb_done(c, &b);
}

static jv g_namespace(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {
    (void)self;
    if (n > 1) ERR(at, "namespace expected at most 1 argument, got %zu", n);
    jv ns = jv_dict(c, JV_NS);
    if (n == 1) {
        jv src = a[0];
        if (src.t == JV_DICT || src.t == JV_KWARGS) for (size_t i = 0; i < src.d->n; i++) jd_set(c, ns.d, src.d->k[i], src.d->v[i]);
        else if (src.t == JV_LIST || src.t == JV_TUPLE) {
            for (size_t i = 0; i < src.l->n; i++) {
                jv p = src.l->v[i];
                if ((p.t != JV_LIST && p.t != JV_TUPLE) || p.l->n != 2) ERR(at, "namespace expected an object or an iterable of [key, value] pairs");
                if (p.l->v[0].t != JV_STR) ERR(at, "namespace keys must be strings");
                jd_set(c, ns.d, p.l->v[0].s, p.l->v[1]);
            }
        } else ERR(at, "'%s' object is not iterable", jv_typename(src));
    }
    for (size_t i = 0; i < kw->n; i++) jd_set(c, ns.d, kw->k[i], kw->v[i]);
    return ns;
}

static jv g_dict(jctx *c, const jnode *at, jv self, jv *a, size_t n, jdict *kw) {  // ext
    (void)self;
    if (n > 0 && (a[0].t != JV_DICT && a[0].t != JV_KWARGS)) ERR(at, "dict() positional argument must be a mapping");
    jv d = jv_dict(c, JV_DICT);
    if (n > 0) for (size_t i = 0; i < a[0].d->n; i++) jd_set(c, d.d, a[0].d->k[i], a[0].d->v[i]);
    for (size_t i = 0; i < kw->n; i++) jd_set(c, d.d, kw->k[i], kw->v[i]);
    return d;
}

void jinja_globals(jctx *c, jdict *vars) {
    jv none = JV_MK(JV_NULL), t = jv_bool(true), f = jv_bool(false), nothing = JV_MK(JV_NULL);
    jd_set(c, vars, js_new(c, "false", 5), f);
    jd_set(c, vars, js_new(c, "true", 4), t);
    jd_set(c, vars, js_new(c, "none", 4), none);
    jd_set(c, vars, js_new(c, "False", 5), f);
    jd_set(c, vars, js_new(c, "True", 4), t);
    jd_set(c, vars, js_new(c, "None", 4), none);
    jd_set(c, vars, js_new(c, "raise_exception", 15), jv_builtin(c, g_raise, nothing, "raise_exception"));
    jd_set(c, vars, js_new(c, "range", 5), jv_builtin(c, g_range, nothing, "range"));
    jd_set(c, vars, js_new(c, "strftime_now", 12), jv_builtin(c, g_strftime_now, nothing, "strftime_now"));
    jd_set(c, vars, js_new(c, "namespace", 9), jv_builtin(c, g_namespace, nothing, "namespace"));
    jd_set(c, vars, js_new(c, "dict", 4), jv_builtin(c, g_dict, nothing, "dict"));
}
