// Jinja parser: tokens -> AST, with @huggingface/jinja's grammar and precedence (lowest first):
// ternary / select-if, or, and, not, comparisons + in/not in, + - ~, * / // %, **, is-tests,
// filters, unary sign, call/member, primary. Node field use:
//   N_PROGRAM k1=body | N_IF a=test k1=body k2=else | N_FOR a=target b=iterable k1=body k2=else
//   N_SET a=target b=value(NULL: block set) k1=body | N_MACRO s=name k1=params k2=body
//   N_CALLBLOCK a=call k1=body k2=caller params (flag: had them) | N_FILTERBLOCK a=filter k1=body
//   N_LIST/N_TUPLE k1=items | N_DICT k1=keys k2=values | N_MEMBER a=obj b=prop flag=computed
//   N_SLICE a,b,c (may be NULL) | N_CALL a=callee k1=args | N_KWARG s=name a=value
//   N_SPREAD/N_KWSPREAD a | N_BINARY/N_UNARY op a b | N_FILTER a=operand b=IDENT or CALL
//   N_TEST a=operand s=name b=argument (extension) flag=negated | N_SELECT a=lhs b=test
//   N_TERNARY a=cond b=true c=false | N_STR/N_IDENT s | N_INT i | N_FLOAT f
#include "text/jinja_int.h"
#include "base/error.h"
#include <stdlib.h>

typedef struct {
    jarena *a; jerrbuf *e;
    jtok *t; size_t n, i;
    int depth;
} parser;

typedef struct { jnode **v; size_t n, cap; } nvec;

static _Noreturn void perr(parser *P, const char *fmt, const char *arg) {
    int pos = P->i < P->n ? P->t[P->i].pos : (P->n ? P->t[P->n - 1].pos : 0);
    jerr_at(P->e, SLLM_ERR_FORMAT, pos, fmt, arg ? arg : "");
}

static void *palloc(parser *P, size_t n) {
    void *p = ja_alloc(P->a, n);
    if (!p) jerr_at(P->e, SLLM_ERR_NOMEM, 0, "out of memory");
    return p;
}

static void nv_push(parser *P, nvec *v, jnode *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        jnode **nv = palloc(P, cap * sizeof *nv);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static jnode *mk(parser *P, int kind, int pos) {
    jnode *x = palloc(P, sizeof *x);
    x->kind = kind;
    x->pos = pos;
    return x;
}

static jstr *mkstr(parser *P, const char *s, size_t n) {
    jstr *x = palloc(P, sizeof(jstr) + n + 1);
    x->len = n;
    memcpy(x->s, s, n);
    x->s[n] = 0;
    return x;
}

static int cur_pos(parser *P) { return P->i < P->n ? P->t[P->i].pos : (P->n ? P->t[P->n - 1].pos : 0); }
static bool is(parser *P, int type) { return P->i < P->n && P->t[P->i].type == type; }
static bool is_ident_at(parser *P, size_t at, const char *name) {
    return at < P->n && P->t[at].type == T_IDENT && P->t[at].len == strlen(name) && !memcmp(P->t[at].v, name, P->t[at].len);
}
static bool is_ident(parser *P, const char *name) { return is_ident_at(P, P->i, name); }
static bool is_stmt(parser *P, const char *a, const char *b, const char *c) {
    if (!is(P, T_OSTMT)) return false;
    return is_ident_at(P, P->i + 1, a) || (b && is_ident_at(P, P->i + 1, b)) || (c && is_ident_at(P, P->i + 1, c));
}
static const char *tokname(int t) {
    static const char *names[] = { "text", "number", "string", "identifier", "'='", "'('", "')'", "'{%'", "'%}'",
        "'{{'", "'}}'", "'['", "']'", "'{'", "'}'", "','", "'.'", "':'", "'|'", "operator", "operator", "'**'",
        "comparison", "unary operator", "comment" };
    return t >= 0 && t <= T_COMMENT ? names[t] : "?";
}
static jtok *expect(parser *P, int type, const char *what) {
    if (P->i >= P->n) perr(P, "Parser Error: %s, got end of template", what);
    if (P->t[P->i].type != type) {
        char msg[160];
        snprintf(msg, sizeof msg, "Parser Error: %s, got %s", what, tokname(P->t[P->i].type));
        perr(P, "%s", msg);
    }
    return &P->t[P->i++];
}
static void expect_ident(parser *P, const char *name) {
    if (!is_ident(P, name)) perr(P, "Expected '%s'", name);
    P->i++;
}
static void need(parser *P) { if (P->i >= P->n) perr(P, "Unexpected end of template%s", NULL); }

static jnode *parse_any(parser *P);
static jnode *parse_expr(parser *P);
static jnode *parse_primary(parser *P);
static jnode *parse_or(parser *P);

static void fin(parser *P, nvec *v, jnode ***out, size_t *n) { (void)P; *out = v->v; *n = v->n; }

// Caps the AST depth (and so every recursion over it: parsing, evaluation, macro analysis) at 256;
// left-associative chains (a + b + c ..., x|f|g, a.b.c) count one level per link.
static void enter(parser *P) { if (++P->depth > 256) perr(P, "template nesting too deep%s", NULL); }

static jnode *parse_seq(parser *P, bool primary) {
    int pos = cur_pos(P);
    jnode *first = primary ? parse_primary(P) : parse_expr(P);
    if (!is(P, T_COMMA)) return first;
    nvec v = {0};
    nv_push(P, &v, first);
    while (is(P, T_COMMA)) {
        P->i++;
        nv_push(P, &v, primary ? parse_primary(P) : parse_expr(P));
        if (!is(P, T_COMMA)) break;
    }
    jnode *t = mk(P, N_TUPLE, pos);
    fin(P, &v, &t->k1, &t->n1);
    return t;
}

static void parse_body(parser *P, nvec *v, const char *a, const char *b, const char *c) {
    while (!is_stmt(P, a, b, c)) {
        need(P);
        nv_push(P, v, parse_any(P));
    }
}

// mode 0 = call arguments, 1 = parameter declarations
static void parse_args(parser *P, int mode, jnode ***out, size_t *nout) {
    expect(P, T_LPAREN, "Expected opening parenthesis for arguments list");
    nvec v = {0};
    bool saw_kw = false, saw_spread = false;
    while (!is(P, T_RPAREN)) {
        need(P);
        int pos = cur_pos(P);
        bool kwspread = is(P, T_POW);
        bool spread = is(P, T_MUL) && P->t[P->i].len == 1 && P->t[P->i].v[0] == '*';
        if (mode == 1 && (kwspread || spread)) perr(P, "Argument unpacking is not allowed in parameter declarations%s", NULL);
        if (kwspread) {
            P->i++;
            jnode *x = mk(P, N_KWSPREAD, pos);
            x->a = parse_expr(P);
            nv_push(P, &v, x);
            if (is(P, T_COMMA)) P->i++;
            if (!is(P, T_RPAREN)) perr(P, "Expected closing parenthesis: `**` must be applied to the final argument%s", NULL);
            break;
        }
        jnode *arg;
        if (spread) {
            if (saw_spread) perr(P, "Only one `*` argument unpacking is allowed%s", NULL);
            saw_spread = true;
            P->i++;
            arg = mk(P, N_SPREAD, pos);
            arg->a = parse_expr(P);
        } else {
            arg = parse_expr(P);
            if (is(P, T_EQUALS)) {
                P->i++;
                if (arg->kind != N_IDENT) perr(P, "Expected identifier for keyword argument%s", NULL);
                jnode *kw = mk(P, N_KWARG, pos);
                kw->s = arg->s;
                kw->a = parse_expr(P);
                arg = kw;
            }
            if (mode == 1) {
                if (arg->kind != N_IDENT && arg->kind != N_KWARG) perr(P, "Expected identifier for parameter declaration%s", NULL);
                for (size_t k = 0; k < v.n; k++)
                    if (!strcmp(v.v[k]->s->s, arg->s->s)) perr(P, "Duplicate parameter name: %s", arg->s->s);
            }
            if (arg->kind == N_KWARG) saw_kw = true;
            else if (saw_kw) perr(P, mode == 0 ? "Positional arguments must come before keyword arguments%s" : "Non-default argument follows default argument%s", NULL);
            else if (saw_spread) perr(P, "Positional arguments must not follow `*` argument unpacking%s", NULL);
        }
        nv_push(P, &v, arg);
        if (is(P, T_COMMA)) P->i++;
    }
    P->i++;  // ')'
    fin(P, &v, out, nout);
}

static jnode *parse_call(parser *P, jnode *callee);

static jnode *parse_member(parser *P, jnode *obj) {
    int d0 = P->depth;
    while (is(P, T_DOT) || is(P, T_LBRACK)) {
        enter(P);
        int pos = cur_pos(P);
        bool computed = is(P, T_LBRACK);
        P->i++;
        jnode *m = mk(P, N_MEMBER, pos);
        m->a = obj;
        m->flag = computed;
        if (computed) {
            jnode *sl[3] = {0};
            size_t ns = 0;
            bool is_slice = false;
            while (!is(P, T_RBRACK)) {
                need(P);
                if (ns >= 3) perr(P, "Expected 0-3 arguments for slice expression%s", NULL);
                if (is(P, T_COLON)) { sl[ns++] = NULL; P->i++; is_slice = true; }
                else {
                    sl[ns++] = parse_expr(P);
                    if (is(P, T_COLON)) { P->i++; is_slice = true; }
                }
            }
            if (ns == 0) perr(P, "Expected at least one argument for member/slice expression%s", NULL);
            if (is_slice) {
                jnode *s = mk(P, N_SLICE, pos);
                s->a = sl[0]; s->b = sl[1]; s->c = sl[2];
                m->b = s;
            } else m->b = sl[0];
            expect(P, T_RBRACK, "Expected closing square bracket");
        } else {
            jnode *prop = parse_primary(P);
            if (prop->kind != N_IDENT && prop->kind != N_INT) perr(P, "Expected identifier or integer following dot operator%s", NULL);
            m->b = prop;
        }
        obj = m;
    }
    P->depth = d0;
    return obj;
}

static jnode *parse_call(parser *P, jnode *callee) {
    enter(P);
    jnode *c = mk(P, N_CALL, callee->pos);
    c->a = callee;
    parse_args(P, 0, &c->k1, &c->n1);
    jnode *x = parse_member(P, c);
    if (is(P, T_LPAREN)) x = parse_call(P, x);
    P->depth--;
    return x;
}

static jnode *parse_call_member(parser *P) {
    jnode *m = parse_member(P, parse_primary(P));
    if (is(P, T_LPAREN)) return parse_call(P, m);
    return m;
}

static jnode *parse_unary_sign(parser *P) {
    if (P->i < P->n && (P->t[P->i].type == T_UNARY || P->t[P->i].type == T_ADD) &&
        P->t[P->i].len == 1 && (P->t[P->i].v[0] == '-' || P->t[P->i].v[0] == '+')) {
        int pos = cur_pos(P);
        char ch = P->t[P->i++].v[0];
        enter(P);
        jnode *u = mk(P, N_UNARY, pos);
        u->op = ch == '-' ? OP_NEG : OP_POS;
        u->a = parse_unary_sign(P);
        P->depth--;
        return u;
    }
    return parse_call_member(P);
}

static jnode *parse_filter(parser *P) {
    jnode *operand = parse_unary_sign(P);
    int d0 = P->depth;
    while (is(P, T_PIPE)) {
        enter(P);
        int pos = cur_pos(P);
        P->i++;
        jnode *f = parse_primary(P);
        if (f->kind != N_IDENT) perr(P, "Expected identifier for the filter%s", NULL);
        if (is(P, T_LPAREN)) f = parse_call(P, f);
        jnode *x = mk(P, N_FILTER, pos);
        x->a = operand;
        x->b = f;
        operand = x;
    }
    P->depth = d0;
    return operand;
}

static jnode *parse_test(parser *P) {
    jnode *operand = parse_filter(P);
    int d0 = P->depth;
    while (is_ident(P, "is")) {
        enter(P);
        int pos = cur_pos(P);
        P->i++;
        bool neg = is_ident(P, "not");
        if (neg) P->i++;
        jnode *name = parse_primary(P);
        if (name->kind != N_IDENT) perr(P, "Expected identifier for the test%s", NULL);
        jnode *x = mk(P, N_TEST, pos);
        x->a = operand;
        x->s = name->s;
        x->flag = neg;
        // Extension over @huggingface/jinja: tests with an argument (`is divisibleby 3`, `is equalto(x)`).
        if (jinja_test_takes_arg(name->s->s) && P->i < P->n) {
            if (is(P, T_LPAREN)) {
                P->i++;
                x->b = parse_expr(P);
                expect(P, T_RPAREN, "Expected ')' after test argument");
            } else if (is(P, T_NUM) || is(P, T_STR) || is(P, T_LBRACK) || is(P, T_LBRACE) ||
                       (is(P, T_IDENT) && !is_ident(P, "and") && !is_ident(P, "or") && !is_ident(P, "if") &&
                        !is_ident(P, "else") && !is_ident(P, "is") && !is_ident(P, "in") && !is_ident(P, "not"))) {
                x->b = parse_member(P, parse_primary(P));
            }
        }
        operand = x;
    }
    P->depth = d0;
    return operand;
}

static int binop(jtok *t) {
    static const struct { const char *s; int op; } ops[] = {
        {"+", OP_ADD}, {"-", OP_SUB}, {"~", OP_CONCAT}, {"*", OP_MUL}, {"/", OP_DIV}, {"//", OP_FLOORDIV},
        {"%", OP_MOD}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {"<", OP_LT}, {">", OP_GT}, {"<=", OP_LE},
        {">=", OP_GE} };
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
        if (strlen(ops[k].s) == t->len && !memcmp(ops[k].s, t->v, t->len)) return ops[k].op;
    return OP_ADD;
}

static jnode *mkbin(parser *P, int op, int pos, jnode *l, jnode *r) {
    jnode *x = mk(P, N_BINARY, pos);
    x->op = op; x->a = l; x->b = r;
    return x;
}

static jnode *parse_pow(parser *P) {
    jnode *l = parse_test(P);
    int d0 = P->depth;
    while (is(P, T_POW)) { enter(P); int pos = cur_pos(P); P->i++; l = mkbin(P, OP_POW, pos, l, parse_test(P)); }
    P->depth = d0;
    return l;
}
static jnode *parse_mul(parser *P) {
    jnode *l = parse_pow(P);
    int d0 = P->depth;
    while (is(P, T_MUL)) { enter(P); int pos = cur_pos(P); int op = binop(&P->t[P->i++]); l = mkbin(P, op, pos, l, parse_pow(P)); }
    P->depth = d0;
    return l;
}
static jnode *parse_add(parser *P) {
    jnode *l = parse_mul(P);
    int d0 = P->depth;
    while (is(P, T_ADD)) { enter(P); int pos = cur_pos(P); int op = binop(&P->t[P->i++]); l = mkbin(P, op, pos, l, parse_mul(P)); }
    P->depth = d0;
    return l;
}
static jnode *parse_cmp(parser *P) {
    jnode *l = parse_add(P);
    int d0 = P->depth;
    for (;;) {
        int pos = cur_pos(P), op;
        if (is_ident(P, "not") && is_ident_at(P, P->i + 1, "in")) { op = OP_NOTIN; P->i += 2; }
        else if (is_ident(P, "in")) { op = OP_IN; P->i++; }
        else if (is(P, T_CMP)) op = binop(&P->t[P->i++]);
        else break;
        enter(P);
        l = mkbin(P, op, pos, l, parse_add(P));
    }
    P->depth = d0;
    return l;
}
static jnode *parse_not(parser *P) {
    jnode *r = NULL;
    while (is_ident(P, "not")) {
        int pos = cur_pos(P);
        P->i++;
        enter(P);
        jnode *u = mk(P, N_UNARY, pos);
        u->op = OP_NOT;
        u->a = parse_not(P);
        P->depth--;
        r = u;
    }
    return r ? r : parse_cmp(P);
}
static jnode *parse_and(parser *P) {
    jnode *l = parse_not(P);
    int d0 = P->depth;
    while (is_ident(P, "and")) { enter(P); int pos = cur_pos(P); P->i++; l = mkbin(P, OP_AND, pos, l, parse_not(P)); }
    P->depth = d0;
    return l;
}
static jnode *parse_or(parser *P) {
    jnode *l = parse_and(P);
    int d0 = P->depth;
    while (is_ident(P, "or")) { enter(P); int pos = cur_pos(P); P->i++; l = mkbin(P, OP_OR, pos, l, parse_and(P)); }
    P->depth = d0;
    return l;
}
static jnode *parse_ifexpr(parser *P) {
    jnode *a = parse_or(P);
    if (is_ident(P, "if")) {
        int pos = cur_pos(P);
        P->i++;
        jnode *test = parse_or(P);
        if (is_ident(P, "else")) {
            P->i++;
            enter(P);
            jnode *t = mk(P, N_TERNARY, pos);
            t->a = test; t->b = a; t->c = parse_ifexpr(P);
            P->depth--;
            return t;
        }
        jnode *s = mk(P, N_SELECT, pos);
        s->a = a; s->b = test;
        return s;
    }
    return a;
}
static jnode *parse_expr(parser *P) {
    enter(P);
    jnode *x = parse_ifexpr(P);
    P->depth--;
    return x;
}

static jnode *parse_primary(parser *P) {
    need(P);
    jtok *t = &P->t[P->i++];
    switch (t->type) {
    case T_NUM: {
        char buf[64];
        size_t l = t->len < 63 ? t->len : 63;
        memcpy(buf, t->v, l);
        buf[l] = 0;
        if (memchr(buf, '.', l)) { jnode *x = mk(P, N_FLOAT, t->pos); x->f = strtod(buf, NULL); return x; }
        jnode *x = mk(P, N_INT, t->pos);
        double d = strtod(buf, NULL);
        if (d > 9.2e18 || d < -9.2e18) { x->kind = N_FLOAT; x->f = d; } else x->i = strtoll(buf, NULL, 10);
        return x;
    }
    case T_STR: {
        size_t total = t->len;
        size_t j = P->i;
        while (j < P->n && P->t[j].type == T_STR) total += P->t[j++].len;
        jnode *x = mk(P, N_STR, t->pos);
        x->s = palloc(P, sizeof(jstr) + total + 1);
        memcpy(x->s->s, t->v, t->len);
        size_t k = t->len;
        while (is(P, T_STR)) { memcpy(x->s->s + k, P->t[P->i].v, P->t[P->i].len); k += P->t[P->i].len; P->i++; }
        x->s->len = k;
        x->s->s[k] = 0;
        return x;
    }
    case T_IDENT: {
        jnode *x = mk(P, N_IDENT, t->pos);
        x->s = mkstr(P, t->v, t->len);
        return x;
    }
    case T_LPAREN: {
        enter(P);
        jnode *x = parse_seq(P, false);
        expect(P, T_RPAREN, "Expected closing parenthesis");
        P->depth--;
        return x;
    }
    case T_LBRACK: {
        enter(P);
        jnode *x = mk(P, N_LIST, t->pos);
        nvec v = {0};
        while (!is(P, T_RBRACK)) {
            need(P);
            nv_push(P, &v, parse_expr(P));
            if (is(P, T_COMMA)) P->i++;
        }
        P->i++;
        fin(P, &v, &x->k1, &x->n1);
        P->depth--;
        return x;
    }
    case T_LBRACE: {
        enter(P);
        jnode *x = mk(P, N_DICT, t->pos);
        nvec k = {0}, v = {0};
        while (!is(P, T_RBRACE)) {
            need(P);
            nv_push(P, &k, parse_expr(P));
            expect(P, T_COLON, "Expected colon between key and value in object literal");
            nv_push(P, &v, parse_expr(P));
            if (is(P, T_COMMA)) P->i++;
        }
        P->i++;
        fin(P, &k, &x->k1, &x->n1);
        fin(P, &v, &x->k2, &x->n2);
        P->depth--;
        return x;
    }
    default:
        P->i--;
        perr(P, "Unexpected token: %s", tokname(t->type));
    }
}

static jnode *parse_if(parser *P, int pos) {
    jnode *x = mk(P, N_IF, pos);
    x->a = parse_expr(P);
    expect(P, T_CSTMT, "Expected closing statement token");
    nvec body = {0}, alt = {0};
    parse_body(P, &body, "elif", "else", "endif");
    if (is_stmt(P, "elif", NULL, NULL)) {
        int p2 = P->t[P->i + 1].pos;
        P->i += 2;
        enter(P);
        nv_push(P, &alt, parse_if(P, p2));
        P->depth--;
    } else if (is_stmt(P, "else", NULL, NULL)) {
        P->i += 2;
        expect(P, T_CSTMT, "Expected closing statement token");
        parse_body(P, &alt, "endif", NULL, NULL);
    }
    fin(P, &body, &x->k1, &x->n1);
    fin(P, &alt, &x->k2, &x->n2);
    return x;
}

static void end_tag(parser *P, const char *name) {
    expect(P, T_OSTMT, "Expected '{%'");
    expect_ident(P, name);
    expect(P, T_CSTMT, "Expected closing statement token");
}

static jnode *parse_stmt(parser *P) {
    int pos = cur_pos(P);
    expect(P, T_OSTMT, "Expected opening statement token");
    need(P);
    if (P->t[P->i].type != T_IDENT) perr(P, "Unknown statement, got %s", tokname(P->t[P->i].type));
    jtok *nt = &P->t[P->i];
    char name[32];
    size_t l = nt->len < 31 ? nt->len : 31;
    memcpy(name, nt->v, l);
    name[l] = 0;
    P->i++;
    jnode *x;
    enter(P);
    if (!strcmp(name, "set")) {
        x = mk(P, N_SET, pos);
        x->a = parse_seq(P, false);
        nvec body = {0};
        if (is(P, T_EQUALS)) {
            P->i++;
            x->b = parse_seq(P, false);
        } else {
            expect(P, T_CSTMT, "Expected %} token");
            parse_body(P, &body, "endset", NULL, NULL);
            expect(P, T_OSTMT, "Expected {% token");
            expect_ident(P, "endset");
        }
        expect(P, T_CSTMT, "Expected closing statement token");
        fin(P, &body, &x->k1, &x->n1);
    } else if (!strcmp(name, "if")) {
        x = parse_if(P, pos);
        end_tag(P, "endif");
    } else if (!strcmp(name, "macro")) {
        x = mk(P, N_MACRO, pos);
        jnode *nm = parse_primary(P);
        if (nm->kind != N_IDENT) perr(P, "Expected identifier following macro statement%s", NULL);
        x->s = nm->s;
        parse_args(P, 1, &x->k1, &x->n1);
        expect(P, T_CSTMT, "Expected closing statement token");
        nvec body = {0};
        parse_body(P, &body, "endmacro", NULL, NULL);
        fin(P, &body, &x->k2, &x->n2);
        end_tag(P, "endmacro");
    } else if (!strcmp(name, "for")) {
        x = mk(P, N_FOR, pos);
        x->a = parse_seq(P, true);
        if (x->a->kind != N_IDENT && x->a->kind != N_TUPLE) perr(P, "Expected identifier/tuple for the loop variable%s", NULL);
        if (!is_ident(P, "in")) perr(P, "Expected `in` keyword following loop variable%s", NULL);
        P->i++;
        x->b = parse_expr(P);
        expect(P, T_CSTMT, "Expected closing statement token");
        nvec body = {0}, alt = {0};
        parse_body(P, &body, "endfor", "else", NULL);
        if (is_stmt(P, "else", NULL, NULL)) {
            P->i += 2;
            expect(P, T_CSTMT, "Expected closing statement token");
            parse_body(P, &alt, "endfor", NULL, NULL);
        }
        fin(P, &body, &x->k1, &x->n1);
        fin(P, &alt, &x->k2, &x->n2);
        end_tag(P, "endfor");
    } else if (!strcmp(name, "call")) {
        x = mk(P, N_CALLBLOCK, pos);
        if (is(P, T_LPAREN)) { parse_args(P, 1, &x->k2, &x->n2); x->flag = true; }
        jnode *callee = parse_primary(P);
        if (callee->kind != N_IDENT) perr(P, "Expected identifier following call statement%s", NULL);
        jnode *call = mk(P, N_CALL, callee->pos);
        call->a = callee;
        parse_args(P, 0, &call->k1, &call->n1);
        x->a = call;
        expect(P, T_CSTMT, "Expected closing statement token");
        nvec body = {0};
        parse_body(P, &body, "endcall", NULL, NULL);
        fin(P, &body, &x->k1, &x->n1);
        end_tag(P, "endcall");
    } else if (!strcmp(name, "break") || !strcmp(name, "continue")) {
        x = mk(P, name[0] == 'b' ? N_BREAK : N_CONTINUE, pos);
        expect(P, T_CSTMT, "Expected closing statement token");
    } else if (!strcmp(name, "filter")) {
        x = mk(P, N_FILTERBLOCK, pos);
        jnode *f = parse_primary(P);
        if (f->kind == N_IDENT && is(P, T_LPAREN)) f = parse_call(P, f);
        x->a = f;
        expect(P, T_CSTMT, "Expected closing statement token");
        nvec body = {0};
        parse_body(P, &body, "endfilter", NULL, NULL);
        fin(P, &body, &x->k1, &x->n1);
        end_tag(P, "endfilter");
    } else {
        P->i--;
        perr(P, "Unknown statement type: %s", name);
    }
    P->depth--;
    return x;
}

static jnode *parse_any(parser *P) {
    need(P);
    jtok *t = &P->t[P->i];
    switch (t->type) {
    case T_COMMENT: P->i++; return mk(P, N_COMMENT, t->pos);
    case T_TEXT: {
        P->i++;
        jnode *x = mk(P, N_STR, t->pos);
        x->s = mkstr(P, t->v, t->len);
        return x;
    }
    case T_OSTMT: return parse_stmt(P);
    case T_OEXPR: {
        P->i++;
        jnode *x = parse_expr(P);
        expect(P, T_CEXPR, "Expected closing expression token");
        return x;
    }
    default: perr(P, "Unexpected token type: %s", tokname(t->type));
    }
}

jnode *jinja_parse_tokens(jarena *a, jerrbuf *e, jtok *toks, size_t n) {
    parser P = { .a = a, .e = e, .t = toks, .n = n };
    jnode *root = mk(&P, N_PROGRAM, 0);
    nvec body = {0};
    while (P.i < P.n) nv_push(&P, &body, parse_any(&P));
    fin(&P, &body, &root->k1, &root->n1);
    return root;
}

int jinja_parse(const char *src, size_t len, jinja_template **out) {
    *out = NULL;
    if (!src) return err_set(SLLM_ERR_ARG, "jinja_parse: NULL template");
    if (len > (size_t)1 << 30) return err_set(SLLM_ERR_ARG, "jinja_parse: template too large (%zu bytes)", len);
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) return err_set(SLLM_ERR_NOMEM, "jinja_parse: out of memory");
    t->src = malloc(len + 1);
    if (!t->src) { free(t); return err_set(SLLM_ERR_NOMEM, "jinja_parse: out of memory"); }
    memcpy(t->src, src, len);
    t->src[len] = 0;
    t->src_len = len;
    jerrbuf e = { .src = t->src, .src_len = len };
    if (setjmp(e.jb)) {
        jinja_free(t);
        return e.code;
    }
    size_t nt;
    jtok *toks = jinja_lex(&t->arena, &e, t->src, len, &nt);
    t->root = jinja_parse_tokens(&t->arena, &e, toks, nt);
    *out = t;
    return SLLM_OK;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    ja_free(&t->arena);
    free(t->src);
    free(t);
}
