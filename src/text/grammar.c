// GBNF parser and pushdown matcher; see grammar.h for the format and how a sampler uses it.
// Hand-written: no library offers an incremental, prefix-checking CFG matcher over UTF-8.
#include "text/grammar.h"
#include "base/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SYM_END, SYM_CHARS, SYM_RULE };
typedef struct { uint32_t kind, arg; } gr_sym;  // arg: charset index (CHARS) or rule index (RULE)
typedef struct { uint32_t off, n; bool neg; } gr_cset;  // ranges at rng[2*off .. 2*(off+n))
typedef struct { uint32_t pos, parent; } gr_node;  // a stack: next position + the stack below (0 = empty)

#define MAX_SYMS (1u << 22)
#define MAX_NODES (1u << 24)
#define MAX_REPEAT 10000

struct grammar {
    int n_rules, root;
    char **names;
    int *rule_alt0, *rule_nalts;  // rule -> first alt index, count
    uint32_t *alt_pos;            // alt -> position of its first symbol in syms (ends at SYM_END)
    int n_alts;
    gr_sym *syms;
    uint32_t n_syms;
    gr_cset *csets;
    uint32_t n_csets;
    uint32_t *rng;
    // node pool (interned stacks), shared by every state of this grammar
    gr_node *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *mark, epoch;
    uint32_t *htab;  // open addressing, 0 = empty
    uint32_t hcap;
    uint32_t *work;
    uint32_t n_work, cap_work;
};

struct grammar_state {
    grammar *g;
    uint32_t *ids;
    int n, cap;
    bool can_end;
    uint32_t pcp;  // partial UTF-8 code point bits so far
    int pneed, plen;  // continuation bytes still needed, total length of the sequence
};

struct grammar_vocab {
    int n;
    int *order, *lcp;  // pieces sorted by bytes; lcp[k] = common prefix of order[k-1] and order[k]
    char *blob;
    size_t *off, *lens;
};

// ---------------------------------------------------------------------------------------------
// growable vectors

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return 0;
    uint32_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

typedef struct { gr_sym *v; uint32_t n, cap; } symvec;
typedef struct {
    char *name;
    bool defined;
    size_t ref_off;
    symvec *alts;
    uint32_t n_alts, cap_alts;
    int n_sub;  // generated sub-rules so far (naming)
} prule;

typedef struct {
    const char *s, *name;
    size_t n, i;
    prule *rules;
    uint32_t n_rules, cap_rules;
    gr_cset *csets;
    uint32_t n_csets, cap_csets;
    uint32_t *rng;
    uint32_t n_rng, cap_rng;  // in uint32 units
    uint32_t total_syms;
    int depth;
    bool failed;
} parser;

static int perr(parser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *p, size_t off, const char *fmt, ...) {
    if (p->failed) return -1;
    p->failed = true;
    int line = 1, col = 1;
    for (size_t k = 0; k < off && k < p->n; k++) {
        if (p->s[k] == '\n') line++, col = 1;
        else col++;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(SLLM_ERR_FORMAT, "%s:%d:%d: %s", p->name, line, col, msg);
    return -1;
}

static int nomem(parser *p) {
    if (!p->failed) err_set(SLLM_ERR_NOMEM, "%s: out of memory parsing grammar", p->name);
    p->failed = true;
    return -1;
}

static int symvec_push(parser *p, symvec *v, uint32_t kind, uint32_t arg) {
    if (++p->total_syms > MAX_SYMS) return perr(p, p->i, "grammar too large (over %u symbols)", MAX_SYMS);
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v)) return nomem(p);
    v->v[v->n++] = (gr_sym){kind, arg};
    return 0;
}

static int rule_find(parser *p, const char *name, size_t len) {
    for (uint32_t r = 0; r < p->n_rules; r++)
        if (strlen(p->rules[r].name) == len && memcmp(p->rules[r].name, name, len) == 0) return (int)r;
    return -1;
}

static int rule_add(parser *p, const char *name, size_t len, size_t off) {
    if (grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof *p->rules))
        return nomem(p);
    prule *r = &p->rules[p->n_rules];
    memset(r, 0, sizeof *r);
    r->name = malloc(len + 1);
    if (!r->name) return nomem(p);
    memcpy(r->name, name, len);
    r->name[len] = 0;
    r->ref_off = off;
    return (int)p->n_rules++;
}

static int rule_sub(parser *p, int parent) {  // a generated rule for a group or repetition
    char nm[300];
    int k = ++p->rules[parent].n_sub;
    snprintf(nm, sizeof nm, "%.250s_%d", p->rules[parent].name, k);
    int r = rule_add(p, nm, strlen(nm), p->i);
    if (r >= 0) p->rules[r].defined = true;
    return r;
}

static symvec *rule_new_alt(parser *p, int r) {
    prule *R = &p->rules[r];
    if (grow((void **)&R->alts, &R->cap_alts, R->n_alts + 1, sizeof *R->alts)) {
        nomem(p);
        return NULL;
    }
    memset(&R->alts[R->n_alts], 0, sizeof(symvec));
    return &R->alts[R->n_alts++];
}

// Charsets: ranges are sorted and merged so membership is a binary search and "complement" is easy.
static int cmp_range(const void *a, const void *b) {
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
}

static int cset_add(parser *p, uint32_t *pairs, uint32_t n, bool neg) {
    qsort(pairs, n, 2 * sizeof(uint32_t), cmp_range);
    uint32_t m = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (m && pairs[2 * k] <= pairs[2 * (m - 1) + 1] + 1) {
            if (pairs[2 * k + 1] > pairs[2 * (m - 1) + 1]) pairs[2 * (m - 1) + 1] = pairs[2 * k + 1];
        } else {
            pairs[2 * m] = pairs[2 * k];
            pairs[2 * m + 1] = pairs[2 * k + 1];
            m++;
        }
    }
    if (grow((void **)&p->rng, &p->cap_rng, p->n_rng + 2 * m, sizeof *p->rng) ||
        grow((void **)&p->csets, &p->cap_csets, p->n_csets + 1, sizeof *p->csets))
        return nomem(p);
    if (m) memcpy(p->rng + p->n_rng, pairs, 2 * m * sizeof(uint32_t));
    p->csets[p->n_csets] = (gr_cset){p->n_rng / 2, m, neg};
    p->n_rng += 2 * m;
    return (int)p->n_csets++;
}

// ---------------------------------------------------------------------------------------------
// lexing

static void skip_ws(parser *p, bool newlines) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) p->i++;
        else if (c == '#') {
            if (!newlines) return;  // a comment runs to the newline, which ends a postfix check anyway
            while (p->i < p->n && p->s[p->i] != '\n') p->i++;
        } else return;
    }
}

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static size_t name_len(parser *p, size_t at) {
    size_t k = at;
    while (k < p->n && is_name_char(p->s[k])) k++;
    return k - at;
}

static bool at_rule_start(parser *p) {  // `name ::=` ahead
    size_t l = name_len(p, p->i);
    if (!l) return false;
    size_t k = p->i + l;
    while (k < p->n && (p->s[k] == ' ' || p->s[k] == '\t')) k++;
    return k + 3 <= p->n && memcmp(p->s + k, "::=", 3) == 0;
}

// Decodes one UTF-8 character of the source; -1 on invalid input.
static int64_t decode_utf8(parser *p) {
    const unsigned char *s = (const unsigned char *)p->s;
    unsigned char c = s[p->i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || p->i + len > p->n) return -1;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; k++) {
        if ((s[p->i + k] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[p->i + k] & 0x3F);
    }
    p->i += len;
    return cp;
}

static int64_t parse_hex(parser *p, int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; k++) {
        if (p->i >= p->n) return -1;
        char c = p->s[p->i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + (uint32_t)d;
        p->i++;
    }
    return v;
}

// One character inside a literal or class, escapes decoded.
static int64_t parse_char(parser *p) {
    size_t at = p->i;
    if (p->i >= p->n) return perr(p, at, "unexpected end of input");
    if (p->s[p->i] != '\\') {
        int64_t cp = decode_utf8(p);
        if (cp < 0) return perr(p, at, "invalid UTF-8");
        return cp;
    }
    p->i++;
    if (p->i >= p->n) return perr(p, at, "unexpected end of input after '\\'");
    char c = p->s[p->i++];
    int64_t v;
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '0': return 0;
    case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': case '.': return c;
    case 'x': v = parse_hex(p, 2); break;
    case 'u': v = parse_hex(p, 4); break;
    case 'U': v = parse_hex(p, 8); break;
    default: return perr(p, at, "unknown escape '\\%c'", c);
    }
    if (v < 0) return perr(p, at, "bad hex digits in escape '\\%c'", c);
    if (v > 0x10FFFF) return perr(p, at, "code point U+%llX out of range", (unsigned long long)v);
    return v;
}

// ---------------------------------------------------------------------------------------------
// parsing

static int parse_alternates(parser *p, int r);

static int parse_literal(parser *p, symvec *out) {
    size_t at = p->i++;  // opening quote
    uint32_t pair[2];
    while (true) {
        if (p->i >= p->n || p->s[p->i] == '\n') return perr(p, at, "unterminated string literal");
        if (p->s[p->i] == '"') {
            p->i++;
            return 0;
        }
        int64_t c = parse_char(p);
        if (c < 0) return -1;
        pair[0] = pair[1] = (uint32_t)c;
        int cs = cset_add(p, pair, 1, false);
        if (cs < 0 || symvec_push(p, out, SYM_CHARS, (uint32_t)cs)) return -1;
    }
}

static int parse_class(parser *p, symvec *out) {
    size_t at = p->i++;  // '['
    bool neg = false;
    if (p->i < p->n && p->s[p->i] == '^') neg = true, p->i++;
    uint32_t *pairs = NULL, n = 0, cap = 0;
    int rc = -1;
    while (true) {
        if (p->i >= p->n) {
            perr(p, at, "unterminated character class");
            goto done;
        }
        if (p->s[p->i] == ']') {
            p->i++;
            break;
        }
        int64_t lo = parse_char(p), hi = lo;
        if (lo < 0) goto done;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            size_t at2 = p->i;
            hi = parse_char(p);
            if (hi < 0) goto done;
            if (hi < lo) {
                perr(p, at2, "character range end U+%04llX before start U+%04llX", (unsigned long long)hi,
                     (unsigned long long)lo);
                goto done;
            }
        }
        if (grow((void **)&pairs, &cap, 2 * (n + 1), sizeof *pairs)) {
            nomem(p);
            goto done;
        }
        pairs[2 * n] = (uint32_t)lo;
        pairs[2 * n + 1] = (uint32_t)hi;
        n++;
    }
    if (n == 0 && !neg) {
        perr(p, at, "empty character class");
        goto done;
    }
    int cs = cset_add(p, pairs, n, neg);
    if (cs >= 0) rc = symvec_push(p, out, SYM_CHARS, (uint32_t)cs);
done:
    free(pairs);
    return rc;
}

static int parse_uint(parser *p, uint32_t *v) {
    size_t at = p->i;
    uint64_t x = 0;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return perr(p, at, "expected a number");
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        x = x * 10 + (uint64_t)(p->s[p->i++] - '0');
        if (x > MAX_REPEAT) return perr(p, at, "repetition count over %d", MAX_REPEAT);
    }
    *v = (uint32_t)x;
    return 0;
}

// Applies a postfix operator to the item that starts at index `from` of `alt` (rule r owns alt).
static int apply_repeat(parser *p, int r, int alt_idx, uint32_t from, uint32_t min, uint32_t max, bool unbounded) {
    symvec *alt = &p->rules[r].alts[alt_idx];
    gr_sym item;
    if (alt->n - from == 1) {
        item = alt->v[from];
    } else {  // wrap a multi-symbol literal into its own rule
        int w = rule_sub(p, r);
        if (w < 0) return -1;
        symvec *wa = rule_new_alt(p, w);
        if (!wa) return -1;
        alt = &p->rules[r].alts[alt_idx];
        for (uint32_t k = from; k < alt->n; k++)
            if (symvec_push(p, wa, alt->v[k].kind, alt->v[k].arg)) return -1;
        item = (gr_sym){SYM_RULE, (uint32_t)w};
    }
    alt->n = from;
    for (uint32_t k = 0; k < min; k++)
        if (symvec_push(p, alt, item.kind, item.arg)) return -1;
    if (unbounded) {  // S ::= item S |
        int s = rule_sub(p, r);
        if (s < 0) return -1;
        symvec *a = rule_new_alt(p, s);
        if (!a || symvec_push(p, a, item.kind, item.arg) || symvec_push(p, a, SYM_RULE, (uint32_t)s)) return -1;
        if (!rule_new_alt(p, s)) return -1;
        alt = &p->rules[r].alts[alt_idx];
        return symvec_push(p, alt, SYM_RULE, (uint32_t)s);
    }
    if (max > min) {  // O_1 ::= item | ;  O_k ::= item O_{k-1} |
        int prev = -1;
        for (uint32_t k = 0; k < max - min; k++) {
            int o = rule_sub(p, r);
            if (o < 0) return -1;
            symvec *a = rule_new_alt(p, o);
            if (!a || symvec_push(p, a, item.kind, item.arg)) return -1;
            if (prev >= 0 && symvec_push(p, a, SYM_RULE, (uint32_t)prev)) return -1;
            if (!rule_new_alt(p, o)) return -1;
            prev = o;
        }
        alt = &p->rules[r].alts[alt_idx];
        return symvec_push(p, alt, SYM_RULE, (uint32_t)prev);
    }
    return 0;
}

static int parse_sequence(parser *p, int r) {
    symvec *alt = rule_new_alt(p, r);
    if (!alt) return -1;
    int alt_idx = (int)p->rules[r].n_alts - 1;
    while (true) {
        skip_ws(p, true);
        if (p->i >= p->n) return 0;
        char c = p->s[p->i];
        if (c == '|' || c == ')') return 0;
        if (at_rule_start(p)) return 0;
        uint32_t from = p->rules[r].alts[alt_idx].n;
        size_t at = p->i;
        if (c == '"') {
            if (parse_literal(p, &p->rules[r].alts[alt_idx])) return -1;
        } else if (c == '[') {
            if (parse_class(p, &p->rules[r].alts[alt_idx])) return -1;
        } else if (c == '.') {
            p->i++;
            uint32_t none[2] = {0, 0};
            int cs = cset_add(p, none, 0, true);
            if (cs < 0 || symvec_push(p, &p->rules[r].alts[alt_idx], SYM_CHARS, (uint32_t)cs)) return -1;
        } else if (c == '(') {
            p->i++;
            if (++p->depth > 200) return perr(p, at, "groups nested too deeply");
            int g = rule_sub(p, r);
            if (g < 0 || parse_alternates(p, g)) return -1;
            p->depth--;
            skip_ws(p, true);
            if (p->i >= p->n || p->s[p->i] != ')') return perr(p, at, "unclosed '('");
            p->i++;
            if (symvec_push(p, &p->rules[r].alts[alt_idx], SYM_RULE, (uint32_t)g)) return -1;
        } else if (is_name_char(c)) {
            size_t l = name_len(p, p->i);
            int ref = rule_find(p, p->s + p->i, l);
            if (ref < 0) ref = rule_add(p, p->s + p->i, l, p->i);
            if (ref < 0) return -1;
            p->i += l;
            if (symvec_push(p, &p->rules[r].alts[alt_idx], SYM_RULE, (uint32_t)ref)) return -1;
        } else {
            return perr(p, at, "unexpected character '%c'", c);
        }
        // postfix operators
        skip_ws(p, false);
        if (p->i >= p->n) return 0;
        c = p->s[p->i];
        size_t op_at = p->i;
        int rc = 0;
        if (c == '*') p->i++, rc = apply_repeat(p, r, alt_idx, from, 0, 0, true);
        else if (c == '+') p->i++, rc = apply_repeat(p, r, alt_idx, from, 1, 0, true);
        else if (c == '?') p->i++, rc = apply_repeat(p, r, alt_idx, from, 0, 1, false);
        else if (c == '{') {
            p->i++;
            uint32_t mn, mx = 0;
            bool unb = false;
            skip_ws(p, false);
            if (parse_uint(p, &mn)) return -1;
            skip_ws(p, false);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                skip_ws(p, false);
                if (p->i < p->n && p->s[p->i] == '}') unb = true;
                else if (parse_uint(p, &mx)) return -1;
            } else mx = mn;
            skip_ws(p, false);
            if (p->i >= p->n || p->s[p->i] != '}') return perr(p, op_at, "expected '}' to close repetition");
            p->i++;
            if (!unb && mx < mn) return perr(p, op_at, "repetition {%u,%u}: max below min", mn, mx);
            rc = apply_repeat(p, r, alt_idx, from, mn, mx, unb);
        }
        if (rc) return -1;
        if (p->i < p->n && (p->s[p->i] == '*' || p->s[p->i] == '+' || p->s[p->i] == '?'))
            return perr(p, p->i, "repetition operator follows another; use parentheses");
    }
}

static int parse_alternates(parser *p, int r) {
    if (parse_sequence(p, r)) return -1;
    while (true) {
        skip_ws(p, true);
        if (p->i < p->n && p->s[p->i] == '|') {
            p->i++;
            if (parse_sequence(p, r)) return -1;
        } else return 0;
    }
}

// ---------------------------------------------------------------------------------------------
// checks after parsing: nullable rules and left recursion

// Left recursion makes the matcher push stacks forever. A cycle of "rule B can start rule A" edges
// only grows the stack if some edge is not in tail position (a reference that is the last symbol of
// its alternative is replaced, not pushed), so those cycles are the ones rejected.
static int check_left_recursion(parser *p, grammar *g) {
    int R = g->n_rules;
    bool *nullable = calloc((size_t)R, 1);
    if (!nullable) return nomem(p);
    for (bool changed = true; changed;) {
        changed = false;
        for (int r = 0; r < R; r++) {
            if (nullable[r]) continue;
            for (int a = 0; a < g->rule_nalts[r] && !nullable[r]; a++) {
                uint32_t pos = g->alt_pos[g->rule_alt0[r] + a];
                bool all = true;
                for (; g->syms[pos].kind != SYM_END; pos++)
                    if (g->syms[pos].kind == SYM_CHARS || !nullable[g->syms[pos].arg]) { all = false; break; }
                if (all) nullable[r] = changed = true;
            }
        }
    }
    // edges r -> s (s can start r without consuming); `grows` marks non-tail edges
    int *adj = NULL, *from = NULL;
    bool *grows = NULL;
    uint32_t ne = 0, ce = 0, cf = 0, cg = 0;
    int rc = 0;
    for (int r = 0; r < R && !rc; r++)
        for (int a = 0; a < g->rule_nalts[r] && !rc; a++)
            for (uint32_t pos = g->alt_pos[g->rule_alt0[r] + a]; g->syms[pos].kind == SYM_RULE; pos++) {
                if (grow((void **)&adj, &ce, ne + 1, sizeof *adj) || grow((void **)&from, &cf, ne + 1, sizeof *from) ||
                    grow((void **)&grows, &cg, ne + 1, sizeof *grows)) { rc = nomem(p); break; }
                adj[ne] = (int)g->syms[pos].arg;
                from[ne] = r;
                grows[ne] = g->syms[pos + 1].kind != SYM_END;
                ne++;
                if (!nullable[g->syms[pos].arg]) break;
            }
    int *queue = rc ? NULL : malloc(sizeof(int) * (size_t)(R ? R : 1));
    bool *seen = rc ? NULL : malloc((size_t)(R ? R : 1));
    if (!rc && (!queue || !seen)) rc = nomem(p);
    for (uint32_t e = 0; e < ne && !rc; e++) {
        if (!grows[e]) continue;
        // is from[e] reachable from adj[e]?
        memset(seen, 0, (size_t)R);
        int qh = 0, qt = 0;
        queue[qt++] = adj[e];
        seen[adj[e]] = true;
        while (qh < qt) {
            int x = queue[qh++];
            if (x == from[e]) {
                // report at the user-visible rule (generated names carry the parent's name)
                err_set(SLLM_ERR_FORMAT, "%s: left recursion through rule '%s' (a rule reaches itself without "
                        "consuming input)", p->name, g->names[from[e]]);
                p->failed = true;
                rc = -1;
                break;
            }
            for (uint32_t f = 0; f < ne; f++)
                if (from[f] == x && !seen[adj[f]]) seen[adj[f]] = true, queue[qt++] = adj[f];
        }
    }
    free(queue), free(seen), free(adj), free(from), free(grows), free(nullable);
    return rc;
}

// A rule that cannot derive any finite string (e.g. `a ::= "x" a`) would leave the matcher with no way
// to finish; reject it by name.
static int check_productive(parser *p, grammar *g) {
    int R = g->n_rules;
    bool *prod = calloc((size_t)(R ? R : 1), 1);
    if (!prod) return nomem(p);
    for (bool changed = true; changed;) {
        changed = false;
        for (int r = 0; r < R; r++) {
            if (prod[r]) continue;
            for (int a = 0; a < g->rule_nalts[r] && !prod[r]; a++) {
                uint32_t pos = g->alt_pos[g->rule_alt0[r] + a];
                bool all = true;
                for (; g->syms[pos].kind != SYM_END; pos++)
                    if (g->syms[pos].kind == SYM_RULE && !prod[g->syms[pos].arg]) { all = false; break; }
                if (all) prod[r] = changed = true;
            }
        }
    }
    int rc = 0;
    for (int r = 0; r < R; r++)
        if (!prod[r]) {
            err_set(SLLM_ERR_FORMAT, "%s: rule '%s' can never match (every alternative recurses forever)", p->name, g->names[r]);
            p->failed = true;
            rc = -1;
            break;
        }
    free(prod);
    return rc;
}

void grammar_free(grammar *g) {
    if (!g) return;
    if (g->names)
        for (int r = 0; r < g->n_rules; r++) free(g->names[r]);
    free(g->names), free(g->rule_alt0), free(g->rule_nalts), free(g->alt_pos), free(g->syms), free(g->csets);
    free(g->rng), free(g->nodes), free(g->mark), free(g->htab), free(g->work);
    free(g);
}

int grammar_parse(const char *src, size_t len, const char *name, const char *root_rule, grammar **out) {
    *out = NULL;
    parser P = {.s = src, .n = len, .name = name ? name : "<grammar>"};
    parser *p = &P;
    grammar *g = NULL;
    int rc = SLLM_ERR_FORMAT;
    while (true) {
        skip_ws(p, true);
        if (p->i >= p->n) break;
        size_t at = p->i, l = name_len(p, p->i);
        if (!l) {
            perr(p, at, "expected a rule name");
            goto fail;
        }
        int r = rule_find(p, p->s + at, l);
        if (r >= 0 && p->rules[r].defined) {
            perr(p, at, "rule '%.*s' defined twice", (int)l, p->s + at);
            goto fail;
        }
        if (r < 0 && (r = rule_add(p, p->s + at, l, at)) < 0) goto fail;
        p->rules[r].defined = true;
        p->i += l;
        skip_ws(p, false);
        if (p->i + 3 > p->n || memcmp(p->s + p->i, "::=", 3) != 0) {
            perr(p, p->i, "expected '::=' after rule name '%.*s'", (int)l, p->s + at);
            goto fail;
        }
        p->i += 3;
        if (parse_alternates(p, r)) goto fail;
        skip_ws(p, true);
        if (p->i < p->n && p->s[p->i] == ')') {
            perr(p, p->i, "unmatched ')'");
            goto fail;
        }
    }
    for (uint32_t r = 0; r < p->n_rules; r++)
        if (!p->rules[r].defined) {
            perr(p, p->rules[r].ref_off, "undefined rule '%s'", p->rules[r].name);
            goto fail;
        }
    const char *root = root_rule ? root_rule : "root";
    int root_id = rule_find(p, root, strlen(root));
    if (root_id < 0) {
        err_set(SLLM_ERR_FORMAT, "%s: no '%s' rule", p->name, root);
        goto fail;
    }
    // flatten
    g = calloc(1, sizeof *g);
    if (!g) goto oom;
    g->n_rules = (int)p->n_rules;
    g->root = root_id;
    g->names = calloc(p->n_rules, sizeof *g->names);
    g->rule_alt0 = calloc(p->n_rules, sizeof(int));
    g->rule_nalts = calloc(p->n_rules, sizeof(int));
    uint32_t nalts = 0, nsyms = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        nalts += p->rules[r].n_alts;
        for (uint32_t a = 0; a < p->rules[r].n_alts; a++) nsyms += p->rules[r].alts[a].n + 1;
    }
    g->alt_pos = malloc(sizeof(uint32_t) * (nalts + 1));
    g->syms = malloc(sizeof(gr_sym) * (nsyms + 1));
    if (!g->names || !g->rule_alt0 || !g->rule_nalts || !g->alt_pos || !g->syms) goto oom;
    uint32_t ai = 0, si = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        g->names[r] = p->rules[r].name;
        p->rules[r].name = NULL;
        g->rule_alt0[r] = (int)ai;
        g->rule_nalts[r] = (int)p->rules[r].n_alts;
        for (uint32_t a = 0; a < p->rules[r].n_alts; a++) {
            g->alt_pos[ai++] = si;
            if (p->rules[r].alts[a].n)
                memcpy(g->syms + si, p->rules[r].alts[a].v, p->rules[r].alts[a].n * sizeof(gr_sym));
            si += p->rules[r].alts[a].n;
            g->syms[si++] = (gr_sym){SYM_END, 0};
        }
    }
    g->n_alts = (int)ai;
    g->n_syms = si;
    g->csets = p->csets, p->csets = NULL;
    g->n_csets = p->n_csets;
    g->rng = p->rng, p->rng = NULL;
    if (check_left_recursion(p, g) || check_productive(p, g)) goto fail;
    rc = SLLM_OK;
    goto done;
oom:
    rc = nomem(p), rc = SLLM_ERR_NOMEM;
fail:
    grammar_free(g);
    g = NULL;
    if (rc == SLLM_OK) rc = SLLM_ERR_FORMAT;
done:
    for (uint32_t r = 0; r < p->n_rules; r++) {
        free(p->rules[r].name);
        for (uint32_t a = 0; a < p->rules[r].n_alts; a++) free(p->rules[r].alts[a].v);
        free(p->rules[r].alts);
    }
    free(p->rules), free(p->csets), free(p->rng);
    *out = g;
    return rc;
}

// ---------------------------------------------------------------------------------------------
// matcher

static bool cset_match(const grammar *g, uint32_t cs, uint32_t cp) {
    const gr_cset *c = &g->csets[cs];
    const uint32_t *r = g->rng + 2 * c->off;
    uint32_t lo = 0, hi = c->n;  // binary search for the last range with start <= cp
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (r[2 * mid] <= cp) lo = mid + 1;
        else hi = mid;
    }
    bool in = lo > 0 && cp <= r[2 * (lo - 1) + 1];
    return in != c->neg;
}

// Whether the charset holds some code point in [a, b] (used for a partial UTF-8 character).
static bool cset_intersects(const grammar *g, uint32_t cs, uint32_t a, uint32_t b) {
    const gr_cset *c = &g->csets[cs];
    const uint32_t *r = g->rng + 2 * c->off;
    if (!c->neg) {
        for (uint32_t k = 0; k < c->n; k++)
            if (r[2 * k] <= b && r[2 * k + 1] >= a) return true;
        return false;
    }
    uint32_t cur = a;  // find a gap in [a, b] not covered by the (sorted, merged) ranges
    for (uint32_t k = 0; k < c->n; k++) {
        if (r[2 * k + 1] < cur) continue;
        if (r[2 * k] > cur) return true;
        if (r[2 * k + 1] >= b) return false;
        cur = r[2 * k + 1] + 1;
    }
    return cur <= b;
}

static uint32_t hash_node(uint32_t pos, uint32_t parent) {
    uint64_t h = ((uint64_t)pos << 32 | parent) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

// Interns stack (pos, parent); 0 on failure (pool full or out of memory, message set).
static uint32_t node_get(grammar *g, uint32_t pos, uint32_t parent) {
    if (2 * (g->n_nodes + 1) >= g->hcap) {
        uint32_t nc = g->hcap ? g->hcap * 2 : 1024;
        uint32_t *nt = calloc(nc, sizeof *nt);
        if (!nt) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory"), 0;
        for (uint32_t id = 1; id < g->n_nodes; id++) {
            uint32_t h = hash_node(g->nodes[id].pos, g->nodes[id].parent) & (nc - 1);
            while (nt[h]) h = (h + 1) & (nc - 1);
            nt[h] = id;
        }
        free(g->htab);
        g->htab = nt;
        g->hcap = nc;
    }
    uint32_t h = hash_node(pos, parent) & (g->hcap - 1);
    while (g->htab[h]) {
        gr_node *n = &g->nodes[g->htab[h]];
        if (n->pos == pos && n->parent == parent) return g->htab[h];
        h = (h + 1) & (g->hcap - 1);
    }
    if (g->n_nodes == 0) g->n_nodes = 1;  // id 0 is the empty stack
    if (g->n_nodes >= MAX_NODES) return err_set(SLLM_ERR_NOMEM, "grammar: stack pool over %u nodes", MAX_NODES), 0;
    uint32_t oldcap = g->cap_nodes;
    if (grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return err_set(SLLM_ERR_NOMEM, "grammar: out of memory"), 0;
    if (g->cap_nodes != oldcap) {
        uint32_t *m = realloc(g->mark, sizeof *m * g->cap_nodes);
        if (!m) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory"), 0;
        memset(m + oldcap, 0, sizeof *m * (g->cap_nodes - oldcap));
        g->mark = m;
    }
    uint32_t id = g->n_nodes++;
    g->nodes[id] = (gr_node){pos, parent};
    g->mark[id] = 0;
    g->htab[h] = id;
    return id;
}

typedef struct { uint32_t *v; uint32_t n, cap; } u32vec;

static int u32_push(u32vec *v, uint32_t x) {
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v)) return -1;
    v->v[v->n++] = x;
    return 0;
}

static void new_epoch(grammar *g) {
    if (++g->epoch == 0) {
        if (g->mark) memset(g->mark, 0, sizeof *g->mark * g->cap_nodes);
        g->epoch = 1;
    }
}

static int work_push(grammar *g, uint32_t id) {
    if (grow((void **)&g->work, &g->cap_work, g->n_work + 1, sizeof *g->work))
        return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
    g->work[g->n_work++] = id;
    return 0;
}

// Expands the stacks queued in g->work until each top is a character set; appends those stacks to out
// (deduplicated within the current epoch). Sets *can_end when an empty stack is reached.
static int expand(grammar *g, u32vec *out, uint32_t out0, bool *can_end) {
    while (g->n_work) {
        uint32_t id = g->work[--g->n_work];
        if (id == 0) {
            *can_end = true;
            continue;
        }
        if (g->mark[id] == g->epoch) continue;
        g->mark[id] = g->epoch;
        gr_node n = g->nodes[id];
        gr_sym s = g->syms[n.pos];
        if (s.kind == SYM_END) {
            if (work_push(g, n.parent)) return -1;
        } else if (s.kind == SYM_CHARS) {
            if (out->n - out0 >= GRAMMAR_MAX_STACKS)
                return err_set(SLLM_ERR_UNSUPPORTED, "grammar: more than %d parse stacks (ambiguous grammar)",
                               GRAMMAR_MAX_STACKS);
            if (u32_push(out, id)) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
        } else {
            uint32_t ret = g->syms[n.pos + 1].kind == SYM_END ? n.parent : node_get(g, n.pos + 1, n.parent);
            if (g->syms[n.pos + 1].kind != SYM_END && !ret) return -1;
            int a0 = g->rule_alt0[s.arg];
            for (int a = g->rule_nalts[s.arg] - 1; a >= 0; a--) {
                uint32_t c = node_get(g, g->alt_pos[a0 + a], ret);
                if (!c || work_push(g, c)) return -1;
            }
        }
    }
    return 0;
}

// One frame of the matcher: stacks ids[0..n) plus end/partial-character info.
typedef struct {
    uint32_t off, n;  // into a u32vec
    bool can_end;
    uint32_t pcp;
    int pneed, plen;
} frame;

// Advances frame `in` (stacks in buf) by one byte; the result's stacks are appended to buf.
// Returns 1 alive, 0 dead, negative on error.
static int step_byte(grammar *g, u32vec *buf, const frame *in, uint8_t b, frame *out) {
    out->off = buf->n;
    out->n = 0;
    out->can_end = false;
    out->pcp = 0;
    out->pneed = 0;
    out->plen = 0;
    uint32_t cp;
    if (in->pneed == 0) {
        if (b < 0x80) cp = b;
        else {
            int len = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
            if (!len || b == 0xC0 || b == 0xC1 || b > 0xF4) return 0;
            out->pcp = len == 2 ? (b & 0x1Fu) : len == 3 ? (b & 0x0Fu) : (b & 0x07u);
            out->pneed = len - 1;
            out->plen = len;
            goto partial;
        }
    } else {
        if ((b & 0xC0) != 0x80) return 0;
        out->pcp = (in->pcp << 6) | (b & 0x3Fu);
        out->pneed = in->pneed - 1;
        out->plen = in->plen;
        if (out->pneed > 0) goto partial;
        cp = out->pcp;
        uint32_t minv = out->plen == 2 ? 0x80 : out->plen == 3 ? 0x800 : 0x10000;
        if (cp < minv || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        out->pcp = 0, out->plen = 0;
    }
    // a whole code point: advance every stack whose top set holds it
    new_epoch(g);
    g->n_work = 0;
    for (uint32_t k = 0; k < in->n; k++) {
        uint32_t id = buf->v[in->off + k];
        gr_node n = g->nodes[id];
        if (!cset_match(g, g->syms[n.pos].arg, cp)) continue;
        uint32_t nx = g->syms[n.pos + 1].kind == SYM_END ? n.parent : node_get(g, n.pos + 1, n.parent);
        if (g->syms[n.pos + 1].kind != SYM_END && !nx) return -1;
        if (work_push(g, nx)) return -1;
        if (expand(g, buf, out->off, &out->can_end)) {
            g->n_work = 0;
            return -1;
        }
    }
    out->n = buf->n - out->off;
    return out->n > 0 || out->can_end;
partial: {
    // keep the stacks that could take some character starting with these bytes
    uint32_t lo = out->pcp << (6 * out->pneed), hi = lo | ((1u << (6 * out->pneed)) - 1);
    // The shortest encoding rule bounds what a lead byte can start: E0 only code points >= U+0800,
    // F0 only >= U+10000 (not U+0000, which only ASCII can hold); F4 no more than U+10FFFF.
    uint32_t minv = out->plen == 2 ? 0x80 : out->plen == 3 ? 0x800 : 0x10000;
    if (lo < minv) lo = minv;
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi) return 0;
    for (uint32_t k = 0; k < in->n; k++) {
        uint32_t id = buf->v[in->off + k];
        if (cset_intersects(g, g->syms[g->nodes[id].pos].arg, lo, hi))
            if (u32_push(buf, id)) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
    }
    out->n = buf->n - out->off;
    return out->n > 0;
}
}

static frame state_frame(const grammar_state *s, u32vec *buf) {
    frame f = {buf->n, (uint32_t)s->n, s->can_end, s->pcp, s->pneed, s->plen};
    for (int k = 0; k < s->n; k++) u32_push(buf, s->ids[k]);
    return f;
}

grammar_state *grammar_state_new(grammar *g) {
    grammar_state *s = calloc(1, sizeof *s);
    if (!s) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory"), NULL;
    s->g = g;
    u32vec buf = {0};
    new_epoch(g);
    int a0 = g->rule_alt0[g->root];
    for (int a = g->rule_nalts[g->root] - 1; a >= 0; a--) {
        uint32_t c = node_get(g, g->alt_pos[a0 + a], 0);
        if (!c || work_push(g, c)) goto fail;
    }
    if (expand(g, &buf, 0, &s->can_end)) goto fail;
    s->ids = buf.v;
    s->n = s->cap = (int)buf.n;
    return s;
fail:
    g->n_work = 0;
    free(buf.v);
    free(s);
    return NULL;
}

grammar_state *grammar_state_clone(const grammar_state *s) {
    grammar_state *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *s;
    c->ids = malloc(sizeof(uint32_t) * (size_t)(s->n ? s->n : 1));
    if (!c->ids) return free(c), NULL;
    if (s->n) memcpy(c->ids, s->ids, sizeof(uint32_t) * (size_t)s->n);
    c->cap = s->n;
    return c;
}

void grammar_state_free(grammar_state *s) {
    if (!s) return;
    free(s->ids);
    free(s);
}

// Runs text through the state; on success *res holds the final frame inside *buf.
static int run_text(const grammar_state *s, const char *text, size_t n, u32vec *buf, frame *res) {
    frame cur = state_frame(s, buf);
    if (buf->n < cur.off + cur.n) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
    for (size_t i = 0; i < n; i++) {
        frame nx;
        int rc = step_byte(s->g, buf, &cur, (uint8_t)text[i], &nx);
        if (rc <= 0) return rc;
        // compact: move the new frame to the front so buf stays small
        memmove(buf->v, buf->v + nx.off, nx.n * sizeof(uint32_t));
        buf->n = nx.n;
        nx.off = 0;
        cur = nx;
    }
    *res = cur;
    return 1;
}

int grammar_accept(grammar_state *s, const char *text, size_t n) {
    u32vec buf = {0};
    frame f;
    int rc = run_text(s, text, n, &buf, &f);
    if (rc == 1) {
        free(s->ids);
        s->ids = buf.v;
        s->n = (int)f.n;
        s->cap = (int)buf.cap;
        s->can_end = f.can_end;
        s->pcp = f.pcp, s->pneed = f.pneed, s->plen = f.plen;
        return 1;
    }
    free(buf.v);
    return rc;
}

int grammar_check(const grammar_state *s, const char *text, size_t n) {
    u32vec buf = {0};
    frame f;
    int rc = run_text(s, text, n, &buf, &f);
    free(buf.v);
    return rc;
}

bool grammar_can_end(const grammar_state *s) { return s->can_end && s->pneed == 0; }
bool grammar_can_continue(const grammar_state *s) { return s->n > 0; }

// Walks pieces in byte order keeping one frame per depth of the current piece, so a prefix shared with
// the previous piece is not matched again, and a prefix that died rejects every piece that shares it.
static int filter_sorted(const grammar_state *s, int n, const int *order, const int *lcp,
                         const char *const *pieces, const size_t *lens, uint8_t *allowed) {
    u32vec buf = {0};
    frame *fr = NULL;
    uint32_t cap_fr = 0;
    int n_ok = 0, rc = 0;
    if (grow((void **)&fr, &cap_fr, 1, sizeof *fr)) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
    fr[0] = state_frame(s, &buf);
    size_t valid = 0;  // frames fr[0..valid] hold states for the current piece's prefix
    bool dead_tail = false;  // piece ended by dying at byte `valid` (fr[valid] is the last good frame)
    for (int k = 0; k < n; k++) {
        int t = order[k];
        const unsigned char *pc = (const unsigned char *)pieces[t];
        size_t L = k ? (size_t)lcp[k] : 0, len = lens[t];
        if (dead_tail && L > valid) {  // shares the byte that killed the previous prefix
            allowed[t] = 0;
            continue;
        }
        size_t d = L < valid ? L : valid;
        buf.n = fr[d].off + fr[d].n;
        dead_tail = false;
        bool ok = true;
        for (; d < len; d++) {
            if (grow((void **)&fr, &cap_fr, (uint32_t)d + 2, sizeof *fr)) { rc = err_set(SLLM_ERR_NOMEM, "grammar: out of memory"); goto done; }
            int r = step_byte(s->g, &buf, &fr[d], pc[d], &fr[d + 1]);
            if (r < 0) { rc = r; goto done; }
            if (r == 0) {
                ok = false;
                dead_tail = true;
                buf.n = fr[d].off + fr[d].n;
                break;
            }
        }
        valid = d;
        allowed[t] = ok;
        n_ok += ok;
    }
done:
    free(buf.v);
    free(fr);
    return rc < 0 ? rc : n_ok;
}

static int cmp_piece(const char *const *pieces, const size_t *lens, int x, int y) {
    size_t lx = lens[x], ly = lens[y], m = lx < ly ? lx : ly;
    int c = m ? memcmp(pieces[x], pieces[y], m) : 0;
    if (c) return c;
    return lx < ly ? -1 : lx > ly ? 1 : (x > y) - (x < y);
}

// qsort has no context argument in C11 (a file-scope pointer would not be thread-safe), so a merge sort.
static void sort_pieces(int *idx, int *tmp, int n, const char *const *pieces, const size_t *lens) {
    if (n < 2) return;
    if (n <= 16) {
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && cmp_piece(pieces, lens, idx[j - 1], idx[j]) > 0; j--) {
                int t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t;
            }
        return;
    }
    int h = n / 2;
    sort_pieces(idx, tmp, h, pieces, lens);
    sort_pieces(idx + h, tmp, n - h, pieces, lens);
    int i = 0, j = h, o = 0;
    while (i < h && j < n) tmp[o++] = cmp_piece(pieces, lens, idx[i], idx[j]) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[o++] = idx[i++];
    while (j < n) tmp[o++] = idx[j++];
    memcpy(idx, tmp, sizeof(int) * (size_t)n);
}

static int sort_with_lcp(int n, const char *const *pieces, const size_t *lens, int **order_out, int **lcp_out) {
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1)), *lcp = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *tmp = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!order || !lcp || !tmp) {
        free(order), free(lcp), free(tmp);
        return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
    }
    for (int i = 0; i < n; i++) order[i] = i;
    sort_pieces(order, tmp, n, pieces, lens);
    free(tmp);
    for (int k = 0; k < n; k++) {
        if (!k) { lcp[k] = 0; continue; }
        const char *a = pieces[order[k - 1]], *b = pieces[order[k]];
        size_t m = lens[order[k - 1]] < lens[order[k]] ? lens[order[k - 1]] : lens[order[k]], l = 0;
        while (l < m && a[l] == b[l]) l++;
        lcp[k] = (int)l;
    }
    *order_out = order, *lcp_out = lcp;
    return 0;
}

int grammar_filter_tokens(const grammar_state *s, const char *const *pieces, const size_t *lens, int n,
                          uint8_t *allowed) {
    if (n <= 0) return 0;
    int *order, *lcp;
    if (sort_with_lcp(n, pieces, lens, &order, &lcp)) return SLLM_ERR_NOMEM;
    int rc = filter_sorted(s, n, order, lcp, pieces, lens, allowed);
    free(order), free(lcp);
    return rc;
}

grammar_vocab *grammar_vocab_new(const char *const *pieces, const size_t *lens, int n) {
    grammar_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    v->n = n;
    v->blob = malloc(total ? total : 1);
    v->off = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
    v->lens = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
    const char **ptrs = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    if (!v->blob || !v->off || !v->lens || !ptrs) goto fail;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i]) memcpy(v->blob + o, pieces[i], lens[i]);
        v->off[i] = o, v->lens[i] = lens[i], ptrs[i] = v->blob + o;
        o += lens[i];
    }
    if (sort_with_lcp(n, ptrs, v->lens, &v->order, &v->lcp)) goto fail;
    free(ptrs);
    return v;
fail:
    free(ptrs);
    grammar_vocab_free(v);
    err_set(SLLM_ERR_NOMEM, "grammar: out of memory building vocabulary");
    return NULL;
}

void grammar_vocab_free(grammar_vocab *v) {
    if (!v) return;
    free(v->order), free(v->lcp), free(v->blob), free(v->off), free(v->lens);
    free(v);
}

int grammar_filter_vocab(const grammar_state *s, const grammar_vocab *v, uint8_t *allowed) {
    if (v->n <= 0) return 0;
    const char **ptrs = malloc(sizeof(char *) * (size_t)v->n);
    if (!ptrs) return err_set(SLLM_ERR_NOMEM, "grammar: out of memory");
    for (int i = 0; i < v->n; i++) ptrs[i] = v->blob + v->off[i];
    int rc = filter_sorted(s, v->n, v->order, v->lcp, ptrs, v->lens, allowed);
    free(ptrs);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// introspection

int grammar_n_rules(const grammar *g) { return g->n_rules; }
int grammar_root(const grammar *g) { return g->root; }
const char *grammar_rule_name(const grammar *g, int rule) { return g->names[rule]; }
int grammar_rule_n_alts(const grammar *g, int rule) { return g->rule_nalts[rule]; }
int grammar_alt_len(const grammar *g, int rule, int alt) {
    uint32_t p = g->alt_pos[g->rule_alt0[rule] + alt], q = p;
    while (g->syms[q].kind != SYM_END) q++;
    return (int)(q - p);
}
grammar_sym grammar_alt_sym(const grammar *g, int rule, int alt, int i) {
    gr_sym s = g->syms[g->alt_pos[g->rule_alt0[rule] + alt] + (uint32_t)i];
    grammar_sym o = {0};
    if (s.kind == SYM_RULE) {
        o.is_rule = true;
        o.rule = (int)s.arg;
    } else {
        const gr_cset *c = &g->csets[s.arg];
        o.negated = c->neg;
        o.n_ranges = (int)c->n;
        o.ranges = g->rng + 2 * c->off;
    }
    return o;
}
