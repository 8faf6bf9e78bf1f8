// Jinja lexer: preprocessing (trailing newline, lstrip_blocks, trim_blocks, {% generation %} tags)
// then tokens. Mirrors how @huggingface/jinja tokenizes so whitespace comes out byte-identical:
// lstrip_blocks removes [ \t]* before "{%", "{#" (and "{-") at a line start, trim_blocks removes the
// newline after "%}", "#}" (and "-}"), and "{%-"/"-%}" trim all JS whitespace around a tag.
// Every preprocessed byte keeps the offset of its source byte so errors point into the original.
#include "text/jinja_int.h"
#include "base/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define JBLK_HDR ((sizeof(jblk) + 15) & ~(size_t)15)
void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total > ((size_t)1 << 31)) return NULL;  // 2 GiB per template/render is plenty
        jblk *b = malloc(JBLK_HDR + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        a->total += cap;
    }
    char *p = (char *)a->head + JBLK_HDR + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

void ja_free(jarena *a) {
    for (jblk *b = a->head, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}

_Noreturn void jerr_at(jerrbuf *e, int code, int pos, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = 1, col = 1;
    if (pos < 0) pos = 0;
    for (size_t i = 0; i < (size_t)pos && i < e->src_len; i++) {
        if (e->src[i] == '\n') { line++; col = 1; }
        else if (((unsigned char)e->src[i] & 0xC0) != 0x80) col++;
    }
    err_set(code, "template:%d:%d: %s", line, col, msg);
    e->code = code;
    longjmp(e->jb, 1);
}

static void *xalloc(jarena *a, jerrbuf *e, size_t n) {
    void *p = ja_alloc(a, n);
    if (!p) jerr_at(e, SLLM_ERR_NOMEM, 0, "out of memory");
    return p;
}

// JS /\s/: ASCII whitespace plus the Unicode space separators, NBSP, LS/PS and BOM.
size_t js_space_len(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
    if (c < 0xC2) return 0;
    if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0) return 2;
    if (c == 0xE1 && i + 2 < n && (unsigned char)s[i + 1] == 0x9A && (unsigned char)s[i + 2] == 0x80) return 3;
    if (c == 0xE2 && i + 2 < n) {
        unsigned char c1 = (unsigned char)s[i + 1], c2 = (unsigned char)s[i + 2];
        if (c1 == 0x80 && (c2 <= 0x8A || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF)) return 3;
        if (c1 == 0x81 && c2 == 0x9F) return 3;
    }
    if (c == 0xE3 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 && (unsigned char)s[i + 2] == 0x80) return 3;
    if (c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBB && (unsigned char)s[i + 2] == 0xBF) return 3;
    return 0;
}

typedef struct { char *p; int *m; size_t n; } pbuf;  // preprocessed text + source offsets

static bool is_word(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

// Multiline '^' in JS matches after \n, \r, U+2028 and U+2029.
static bool line_start(const char *s, size_t i) {
    if (i == 0) return true;
    if (s[i - 1] == '\n' || s[i - 1] == '\r') return true;
    return i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x80 &&
           ((unsigned char)s[i - 1] == 0xA8 || (unsigned char)s[i - 1] == 0xA9);
}

static void preprocess(jarena *a, jerrbuf *e, const char *src, size_t len, pbuf *out) {
    if (len > 0 && src[len - 1] == '\n') len--;
    pbuf x = { xalloc(a, e, len + 1), xalloc(a, e, (len + 1) * sizeof(int)), 0 };
    // lstrip_blocks
    for (size_t i = 0; i < len;) {
        if (line_start(src, i) && (src[i] == ' ' || src[i] == '\t' || src[i] == '{')) {
            size_t j = i;
            while (j < len && (src[j] == ' ' || src[j] == '\t')) j++;
            if (j + 1 < len && src[j] == '{' && (src[j + 1] == '#' || src[j + 1] == '%' || src[j + 1] == '-')) i = j;
        }
        x.p[x.n] = src[i];
        x.m[x.n++] = (int)i;
        i++;
    }
    // trim_blocks: the "\n" after "%}", "#}" or "-}" (matches are found in the input string)
    pbuf y = { xalloc(a, e, x.n + 1), xalloc(a, e, (x.n + 1) * sizeof(int)), 0 };
    for (size_t i = 0; i < x.n; i++) {
        if (x.p[i] == '\n' && i >= 2 && x.p[i - 1] == '}' && (x.p[i - 2] == '#' || x.p[i - 2] == '%' || x.p[i - 2] == '-'))
            continue;
        y.p[y.n] = x.p[i];
        y.m[y.n++] = x.m[i];
    }
    // {% generation %} / {% endgeneration %} markers are dropped (assistant-mask markers).
    pbuf z = { xalloc(a, e, y.n + 1), xalloc(a, e, (y.n + 1) * sizeof(int)), 0 };
    size_t last_end = 0;  // whitespace before a tag only counts back to the previous match
    for (size_t i = 0; i < y.n;) {
        if (y.p[i] == '{' && i + 1 < y.n && y.p[i + 1] == '%') {
            size_t j = i + 2, sl;
            bool lstrip = false, rstrip = false;
            if (j < y.n && y.p[j] == '-') { lstrip = true; j++; }
            while (j < y.n && (sl = js_space_len(y.p, y.n, j))) j += sl;
            if (j + 3 <= y.n && !memcmp(y.p + j, "end", 3) && j + 13 <= y.n && !memcmp(y.p + j + 3, "generation", 10)) j += 3;
            if (j + 10 <= y.n && !memcmp(y.p + j, "generation", 10)) {
                j += 10;
                while (j < y.n && (sl = js_space_len(y.p, y.n, j))) j += sl;
                if (j < y.n && y.p[j] == '-') { rstrip = true; j++; }
                if (j + 1 < y.n && y.p[j] == '%' && y.p[j + 1] == '}') {
                    j += 2;
                    if (lstrip) {
                        while (z.n > last_end) {
                            size_t k = z.n - 1;
                            while (k > last_end && ((unsigned char)z.p[k] & 0xC0) == 0x80) k--;
                            if (js_space_len(z.p, z.n, k) == z.n - k) z.n = k; else break;
                        }
                    }
                    if (rstrip) while (j < y.n && (sl = js_space_len(y.p, y.n, j))) j += sl;
                    i = j;
                    last_end = z.n;
                    continue;
                }
            }
        }
        z.p[z.n] = y.p[i];
        z.m[z.n++] = y.m[i];
        i++;
    }
    z.p[z.n] = 0;
    z.m[z.n] = (int)len;
    *out = z;
}

typedef struct {
    jarena *a; jerrbuf *e;
    pbuf s; size_t i;
    jtok *t; size_t n, cap;
} lexer;

static void push(lexer *L, int type, size_t at, const char *v, size_t len) {
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *t = xalloc(L->a, L->e, cap * sizeof(jtok));
        if (L->n) memcpy(t, L->t, L->n * sizeof(jtok));
        L->t = t;
        L->cap = cap;
    }
    L->t[L->n++] = (jtok){ type, L->s.m[at], v, len };
}

static _Noreturn void lerr(lexer *L, const char *msg) { jerr_at(L->e, SLLM_ERR_FORMAT, L->s.m[L->i], "%s", msg); }

static void put_utf8(char *o, size_t *k, unsigned cp) {
    if (cp < 0x80) o[(*k)++] = (char)cp;
    else if (cp < 0x800) { o[(*k)++] = (char)(0xC0 | cp >> 6); o[(*k)++] = (char)(0x80 | (cp & 63)); }
    else if (cp < 0x10000) { o[(*k)++] = (char)(0xE0 | cp >> 12); o[(*k)++] = (char)(0x80 | ((cp >> 6) & 63)); o[(*k)++] = (char)(0x80 | (cp & 63)); }
    else { o[(*k)++] = (char)(0xF0 | cp >> 18); o[(*k)++] = (char)(0x80 | ((cp >> 12) & 63)); o[(*k)++] = (char)(0x80 | ((cp >> 6) & 63)); o[(*k)++] = (char)(0x80 | (cp & 63)); }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A quoted string with JS-style escapes (\n \t \r \b \f \v \' \" \\ \xHH \uHHHH).
static void lex_string(lexer *L, size_t start) {
    char q = L->s.p[L->i++];
    char *o = xalloc(L->a, L->e, (L->s.n - L->i) * 2 + 8);  // \x escapes may expand to 2 bytes
    size_t k = 0;
    unsigned pending_hi = 0;
    for (;;) {
        if (L->i >= L->s.n) lerr(L, "Unexpected end of input");
        char ch = L->s.p[L->i];
        if (ch == q) break;
        if (ch == '\\') {
            if (++L->i >= L->s.n) lerr(L, "Unexpected end of input");
            char esc = L->s.p[L->i++];
            if (esc == 'x' || esc == 'u') {
                size_t hl = esc == 'x' ? 2 : 4;
                unsigned cp = 0;
                for (size_t h = 0; h < hl; h++) {
                    int hv = L->i + h < L->s.n ? hexval((unsigned char)L->s.p[L->i + h]) : -1;
                    if (hv < 0) lerr(L, "Invalid hexadecimal escape sequence");
                    cp = cp * 16 + (unsigned)hv;
                }
                L->i += hl;
                if (cp >= 0xD800 && cp < 0xDC00) { pending_hi = cp; continue; }
                if (cp >= 0xDC00 && cp < 0xE000) {
                    cp = pending_hi ? 0x10000 + ((pending_hi - 0xD800) << 10) + (cp - 0xDC00) : 0xFFFD;
                    pending_hi = 0;
                } else if (pending_hi) { put_utf8(o, &k, 0xFFFD); pending_hi = 0; }
                put_utf8(o, &k, cp);
                continue;
            }
            const char *from = "ntrbfv'\"\\", *to = "\n\t\r\b\f\v'\"\\";
            const char *f = esc ? strchr(from, esc) : NULL;
            if (!f) lerr(L, "Unexpected escaped character");
            if (pending_hi) { put_utf8(o, &k, 0xFFFD); pending_hi = 0; }
            o[k++] = to[f - from];
            continue;
        }
        if (pending_hi) { put_utf8(o, &k, 0xFFFD); pending_hi = 0; }
        o[k++] = ch;
        L->i++;
        if (L->i >= L->s.n) lerr(L, "Unexpected end of input");
    }
    if (pending_hi) put_utf8(o, &k, 0xFFFD);
    o[k] = 0;
    L->i++;  // closing quote
    push(L, T_STR, start, o, k);
}

static void strip_trailing(lexer *L) {
    if (!L->n || L->t[L->n - 1].type != T_TEXT) return;
    jtok *t = &L->t[L->n - 1];
    while (t->len > 0) {
        size_t k = t->len - 1;
        while (k > 0 && ((unsigned char)t->v[k] & 0xC0) == 0x80) k--;
        if (js_space_len(t->v, t->len, k) == t->len - k) t->len = k; else break;
    }
    if (t->len == 0) L->n--;
}

static size_t trim_ws_end(const char *p, size_t from, size_t to) {
    while (to > from) {
        size_t k = to - 1;
        while (k > from && ((unsigned char)p[k] & 0xC0) == 0x80) k--;
        if (js_space_len(p, to, k) == to - k) to = k; else break;
    }
    return to;
}

static void skip_ws(lexer *L) {
    size_t sl;
    while (L->i < L->s.n && (sl = js_space_len(L->s.p, L->s.n, L->i))) L->i += sl;
}

// Matches "{%[-] <word> [-]%}" at i; returns the index after it (0 if no match) and the strip flags.
static size_t match_tag(const char *p, size_t n, size_t i, const char *word, bool *lstrip, bool *rstrip) {
    if (i + 1 >= n || p[i] != '{' || p[i + 1] != '%') return 0;
    size_t j = i + 2, sl, wl = strlen(word);
    *lstrip = j < n && p[j] == '-';
    if (*lstrip) j++;
    while (j < n && (sl = js_space_len(p, n, j))) j += sl;
    if (j + wl > n || memcmp(p + j, word, wl)) return 0;
    j += wl;
    while (j < n && (sl = js_space_len(p, n, j))) j += sl;
    *rstrip = j < n && p[j] == '-';
    if (*rstrip) j++;
    if (j + 1 >= n || p[j] != '%' || p[j + 1] != '}') return 0;
    return j + 2;
}

// Extension over @huggingface/jinja (which rejects it): {% raw %}...{% endraw %} emits its body verbatim.
static bool lex_raw(lexer *L) {
    const char *p = L->s.p;
    size_t n = L->s.n;
    bool ls, rs, els, ers;
    size_t body = match_tag(p, n, L->i, "raw", &ls, &rs);
    if (!body) return false;
    size_t k = body, end = 0;
    while (k < n && !(end = match_tag(p, n, k, "endraw", &els, &ers))) k++;
    if (!end) lerr(L, "Missing {% endraw %}");
    if (ls) strip_trailing(L);
    size_t bs = body, be = k, sl;
    if (rs) while (bs < be && (sl = js_space_len(p, n, bs))) bs += sl;
    if (els) be = trim_ws_end(p, bs, be);
    if (be > bs) push(L, T_TEXT, bs, p + bs, be - bs);
    push(L, T_COMMENT, k, "", 0);  // so that text lexing resumes after the raw block
    L->i = end;
    if (ers) skip_ws(L);
    return true;
}

jtok *jinja_lex(jarena *a, jerrbuf *e, const char *src, size_t len, size_t *ntok) {
    lexer L = { .a = a, .e = e };
    preprocess(a, e, src, len, &L.s);
    const char *p = L.s.p;
    size_t n = L.s.n;
    int curly = 0;
    static const struct { const char *seq; int type; } table[] = {
        {"{%", T_OSTMT}, {"%}", T_CSTMT}, {"{{", T_OEXPR}, {"}}", T_CEXPR}, {"(", T_LPAREN}, {")", T_RPAREN},
        {"{", T_LBRACE}, {"}", T_RBRACE}, {"[", T_LBRACK}, {"]", T_RBRACK}, {",", T_COMMA}, {".", T_DOT},
        {":", T_COLON}, {"|", T_PIPE}, {"<=", T_CMP}, {">=", T_CMP}, {"==", T_CMP}, {"!=", T_CMP},
        {"<", T_CMP}, {">", T_CMP}, {"+", T_ADD}, {"-", T_ADD}, {"~", T_ADD}, {"**", T_POW}, {"*", T_MUL},
        {"//", T_MUL}, {"/", T_MUL}, {"%", T_MUL}, {"=", T_EQUALS},
    };
    while (L.i < n) {
        int last = L.n ? L.t[L.n - 1].type : -1;
        if (last == -1 || last == T_CSTMT || last == T_CEXPR || last == T_COMMENT) {
            size_t st = L.i;
            while (L.i < n && !(p[L.i] == '{' && L.i + 1 < n && (p[L.i + 1] == '%' || p[L.i + 1] == '{' || p[L.i + 1] == '#'))) L.i++;
            if (L.i > st) { push(&L, T_TEXT, st, p + st, L.i - st); continue; }
        }
        if (p[L.i] == '{' && L.i + 1 < n && p[L.i + 1] == '#') {
            size_t st = L.i;
            L.i += 2;
            bool strip_before = L.i < n && p[L.i] == '-';
            if (strip_before) L.i++;
            size_t cs = L.i;
            while (!(L.i + 1 < n && p[L.i] == '#' && p[L.i + 1] == '}')) {
                if (L.i + 2 >= n) lerr(&L, "Missing end of comment tag");
                L.i++;
            }
            size_t ce = L.i;
            bool strip_after = ce > cs && p[ce - 1] == '-';
            if (strip_after) ce--;
            if (strip_before) strip_trailing(&L);
            push(&L, T_COMMENT, st, p + cs, ce - cs);
            L.i += 2;
            if (strip_after) skip_ws(&L);
            continue;
        }
        if (lex_raw(&L)) continue;
        if (L.i + 2 < n + 0 && p[L.i] == '{' && p[L.i + 1] == '%' && p[L.i + 2] == '-') {
            strip_trailing(&L);
            push(&L, T_OSTMT, L.i, "{%", 2);
            L.i += 3;
            continue;
        }
        if (L.i + 2 < n && p[L.i] == '{' && p[L.i + 1] == '{' && p[L.i + 2] == '-') {
            strip_trailing(&L);
            push(&L, T_OEXPR, L.i, "{{", 2);
            curly = 0;
            L.i += 3;
            continue;
        }
        skip_ws(&L);
        if (L.i >= n) lerr(&L, "Unexpected end of input");
        if (L.i + 2 < n + 0 && p[L.i] == '-' && p[L.i + 1] == '%' && p[L.i + 2] == '}') {
            push(&L, T_CSTMT, L.i, "%}", 2);
            L.i += 3;
            skip_ws(&L);
            continue;
        }
        if (L.i + 2 < n + 0 && p[L.i] == '-' && p[L.i + 1] == '}' && p[L.i + 2] == '}') {
            push(&L, T_CEXPR, L.i, "}}", 2);
            L.i += 3;
            skip_ws(&L);
            continue;
        }
        char ch = p[L.i];
        if (ch == '-' || ch == '+') {
            int lt = L.n ? L.t[L.n - 1].type : -1;
            if (lt == T_TEXT || lt == -1) lerr(&L, "Unexpected character");
            if (!(lt == T_IDENT || lt == T_NUM || lt == T_STR || lt == T_RPAREN || lt == T_RBRACK)) {
                size_t st = L.i++;
                while (L.i < n && is_digit(p[L.i])) L.i++;
                if (L.i >= n) lerr(&L, "Unexpected end of input");
                if (L.i > st + 1 && p[L.i] == '.' && L.i + 1 < n && is_digit(p[L.i + 1])) {
                    L.i++;
                    while (L.i < n && is_digit(p[L.i])) L.i++;
                    if (L.i >= n) lerr(&L, "Unexpected end of input");
                }
                push(&L, L.i > st + 1 ? T_NUM : T_UNARY, st, p + st, L.i - st);
                continue;
            }
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof table / sizeof *table; k++) {
            size_t sl = strlen(table[k].seq);
            if (table[k].type == T_CEXPR && curly > 0) continue;
            if (L.i + sl <= n && !memcmp(p + L.i, table[k].seq, sl)) {
                push(&L, table[k].type, L.i, p + L.i, sl);
                if (table[k].type == T_OEXPR) curly = 0;
                else if (table[k].type == T_LBRACE) curly++;
                else if (table[k].type == T_RBRACE) curly--;
                L.i += sl;
                matched = true;
                break;
            }
        }
        if (matched) continue;
        if (ch == '\'' || ch == '"') { lex_string(&L, L.i); continue; }
        if (is_digit(ch)) {
            size_t st = L.i;
            while (L.i < n && is_digit(p[L.i])) L.i++;
            if (L.i >= n) lerr(&L, "Unexpected end of input");
            int lt = L.n ? L.t[L.n - 1].type : -1;
            if (lt != T_DOT && p[L.i] == '.' && L.i + 1 < n && is_digit(p[L.i + 1])) {
                L.i++;
                while (L.i < n && is_digit(p[L.i])) L.i++;
                if (L.i >= n) lerr(&L, "Unexpected end of input");
            }
            push(&L, T_NUM, st, p + st, L.i - st);
            continue;
        }
        if (is_word((unsigned char)ch)) {
            size_t st = L.i;
            while (L.i < n && is_word((unsigned char)p[L.i])) L.i++;
            if (L.i >= n) lerr(&L, "Unexpected end of input");
            push(&L, T_IDENT, st, p + st, L.i - st);
            continue;
        }
        lerr(&L, "Unexpected character");
    }
    *ntok = L.n;
    return L.t;
}
