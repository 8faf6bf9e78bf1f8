// Jinja evaluator: walks the AST producing output, with @huggingface/jinja's runtime semantics
// (scoping: `for` bodies and macros get a child scope, `if` does not; macros see the caller's scope;
// loop.* variables; select-if in for; break/continue; namespace attribute assignment).
#include "text/jinja_int.h"
#include "base/error.h"
#include <math.h>
#include <stdlib.h>

#define MAX_DEPTH 400
#define MAX_OUTPUT ((size_t)256 << 20)

static void *calloc_r(jctx *c, size_t n) {
    void *p = ja_alloc(c->a, n);
    if (!p) jerr_at(c->e, SLLM_ERR_NOMEM, 0, "out of memory");
    return p;
}

jstr *js_new(jctx *c, const char *s, size_t n) {
    jstr *x = calloc_r(c, sizeof(jstr) + n + 1);
    x->len = n;
    if (n) memcpy(x->s, s, n);
    x->s[n] = 0;
    return x;
}

jv jv_list(jctx *c, size_t cap) {
    jv v = { .t = JV_LIST };
    v.l = calloc_r(c, sizeof(jlist));
    if (cap) { v.l->v = calloc_r(c, cap * sizeof(jv)); v.l->cap = cap; }
    return v;
}

void jl_push(jctx *c, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jv *nv = calloc_r(c, cap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

jv jv_dict(jctx *c, jv_type t) {
    jv v = { .t = t };
    v.d = calloc_r(c, sizeof(jdict));
    return v;
}

jv *jd_get(const jdict *d, const char *k, size_t klen) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->len == klen && !memcmp(d->k[i]->s, k, klen)) return &d->v[i];
    return NULL;
}

void jd_set(jctx *c, jdict *d, jstr *k, jv v) {
    jv *slot = jd_get(d, k->s, k->len);
    if (slot) { *slot = v; return; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jstr **nk = calloc_r(c, cap * sizeof(jstr *));
        jv *nv = calloc_r(c, cap * sizeof(jv));
        if (d->n) { memcpy(nk, d->k, d->n * sizeof(jstr *)); memcpy(nv, d->v, d->n * sizeof(jv)); }
        d->k = nk; d->v = nv; d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

jv jv_builtin(jctx *c, jbuiltin fn, jv self, const char *name) {
    jv v = { .t = JV_FUNC };
    v.fn = calloc_r(c, sizeof(jfunc));
    v.fn->kind = JF_BUILTIN;
    v.fn->fn = fn;
    v.fn->self = self;
    v.fn->name = name;
    return v;
}

void jb_put(jctx *c, jbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        if (cap > MAX_OUTPUT) jerr_at(c->e, SLLM_ERR_ARG, 0, "rendered text exceeds %zu bytes", MAX_OUTPUT);
        char *p = calloc_r(c, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

jv jb_done(jctx *c, jbuf *b) {
    jv v = { .t = JV_STR };
    v.s = js_new(c, b->p ? b->p : "", b->n);
    return v;
}

// ---- environments ----
static jenv *env_new(jctx *c, jenv *parent) {
    jenv *e = calloc_r(c, sizeof *e);
    e->parent = parent;
    e->vars = jv_dict(c, JV_DICT).d;
    return e;
}
static jv env_lookup(jenv *e, const char *name, size_t len) {
    for (; e; e = e->parent) {
        jv *v = jd_get(e->vars, name, len);
        if (v) return *v;
    }
    return JV_MK(JV_UNDEF);
}
static void env_set(jctx *c, jenv *e, jstr *name, jv v) { jd_set(c, e->vars, name, v); }

static jv eval(jctx *c, const jnode *x, jenv *env);
static void exec_block(jctx *c, jnode **body, size_t n, jenv *env, jbuf *out);

static jv block_str(jctx *c, jnode **body, size_t n, jenv *env) {
    jbuf b = {0};
    exec_block(c, body, n, env, &b);
    return jb_done(c, &b);
}

// ---- arguments ----
typedef struct { jv *pos; size_t n; jdict *kw; } jargs;

static jargs eval_args(jctx *c, jnode **args, size_t n, jenv *env) {
    jargs r = { .kw = jv_dict(c, JV_KWARGS).d };
    jv lst = jv_list(c, n);
    for (size_t i = 0; i < n; i++) {
        const jnode *a = args[i];
        if (a->kind == N_SPREAD) {
            jv v = eval(c, a->a, env);
            if (v.t != JV_LIST && v.t != JV_TUPLE) jerr_at(c->e, SLLM_ERR_FORMAT, a->pos, "Cannot unpack non-iterable type: %s", jv_typename(v));
            for (size_t k = 0; k < v.l->n; k++) jl_push(c, lst.l, v.l->v[k]);
        } else if (a->kind != N_KWARG && a->kind != N_KWSPREAD) jl_push(c, lst.l, eval(c, a, env));
    }
    for (size_t i = 0; i < n; i++) {
        const jnode *a = args[i];
        if (a->kind == N_KWARG) {
            if (jd_get(r.kw, a->s->s, a->s->len)) jerr_at(c->e, SLLM_ERR_FORMAT, a->pos, "Got multiple values for keyword argument '%s'", a->s->s);
            jd_set(c, r.kw, a->s, eval(c, a->a, env));
        } else if (a->kind == N_KWSPREAD) {
            jv v = eval(c, a->a, env);
            if (v.t != JV_DICT && v.t != JV_KWARGS) jerr_at(c->e, SLLM_ERR_FORMAT, a->pos, "Argument after ** must be a mapping, not %s", jv_typename(v));
            for (size_t k = 0; k < v.d->n; k++) {
                if (jd_get(r.kw, v.d->k[k]->s, v.d->k[k]->len)) jerr_at(c->e, SLLM_ERR_FORMAT, a->pos, "Got multiple values for keyword argument '%s'", v.d->k[k]->s);
                jd_set(c, r.kw, v.d->k[k], v.d->v[k]);
            }
        }
    }
    r.pos = lst.l->v;
    r.n = lst.l->n;
    return r;
}

// Whether a macro body reads `kwargs` / `varargs` (then extra arguments are collected, not errors).
static bool uses_name(const jnode *x, const char *name) {
    if (!x) return false;
    if (x->kind == N_IDENT && !strcmp(x->s->s, name)) return true;
    if (x->kind == N_MEMBER && !x->flag) return uses_name(x->a, name);
    if (uses_name(x->a, name) || uses_name(x->b, name) || uses_name(x->c, name)) return true;
    for (size_t i = 0; i < x->n1; i++) if (uses_name(x->k1[i], name)) return true;
    for (size_t i = 0; i < x->n2; i++) if (uses_name(x->k2[i], name)) return true;
    return false;
}

static void bind_params(jctx *c, const jnode *at, const char *fname, jnode **params, size_t np, jnode **body, size_t nb,
                        jv *args, size_t n, jdict *kw, jenv *scope) {
    jdict *kwleft = jv_dict(c, JV_DICT).d;
    if (kw) for (size_t i = 0; i < kw->n; i++) jd_set(c, kwleft, kw->k[i], kw->v[i]);
    const jnode *pending[64];
    size_t npend = 0;
    for (size_t i = 0; i < np; i++) {
        const jnode *p = params[i];
        jstr *name = p->s;
        jv v = JV_MK(JV_UNDEF);
        bool have = false;
        if (i < n) { v = args[i]; have = true; }
        else {
            jv *kv = jd_get(kwleft, name->s, name->len);
            if (kv) {
                v = *kv;
                have = true;
                // remove from kwleft
                size_t idx = (size_t)(kv - kwleft->v);
                memmove(kwleft->k + idx, kwleft->k + idx + 1, (kwleft->n - idx - 1) * sizeof(jstr *));
                memmove(kwleft->v + idx, kwleft->v + idx + 1, (kwleft->n - idx - 1) * sizeof(jv));
                kwleft->n--;
            }
        }
        if (!have && p->kind == N_KWARG && npend < 64) pending[npend++] = p;
        env_set(c, scope, name, v);
    }
    jnode fake = { .kind = N_PROGRAM, .k1 = body, .n1 = nb };
    if (uses_name(&fake, "kwargs")) { jv d = { .t = JV_DICT }; d.d = kwleft; env_set(c, scope, js_new(c, "kwargs", 6), d); }
    else if (kwleft->n) jerr_at(c->e, SLLM_ERR_FORMAT, at->pos, "macro %s takes no keyword argument '%s'", fname, kwleft->k[0]->s);
    if (uses_name(&fake, "varargs")) {
        jv l = jv_list(c, 0);
        for (size_t i = np; i < n; i++) jl_push(c, l.l, args[i]);
        env_set(c, scope, js_new(c, "varargs", 7), l);
    } else if (n > np) jerr_at(c->e, SLLM_ERR_FORMAT, at->pos, "macro %s takes not more than %zu argument(s)", fname, np);
    for (size_t i = 0; i < npend; i++) env_set(c, scope, pending[i]->s, eval(c, pending[i]->a, scope));
}

jv jinja_call(jctx *c, const jnode *at, jv fn, jv *args, size_t n, jdict *kw, jenv *env) {
    if (fn.t != JV_FUNC) jerr_at(c->e, SLLM_ERR_FORMAT, at->pos, "Cannot call something that is not a function: got %s", jv_typename(fn));
    if (++c->depth > MAX_DEPTH) jerr_at(c->e, SLLM_ERR_ARG, at->pos, "maximum recursion depth (%d) exceeded", MAX_DEPTH);
    jv r;
    jfunc *f = fn.fn;
    if (f->kind == JF_BUILTIN) {
        if (!kw) kw = jv_dict(c, JV_KWARGS).d;
        r = f->fn(c, at, f->self, args, n, kw);
    } else if (f->kind == JF_MACRO) {
        // Macros run in a child of the *calling* scope, as in @huggingface/jinja.
        jenv *scope = env_new(c, env);
        char fname[80];
        snprintf(fname, sizeof fname, "'%s'", f->node->s->s);
        bind_params(c, at, fname, f->node->k1, f->node->n1, f->node->k2, f->node->n2, args, n, kw, scope);
        r = block_str(c, f->node->k2, f->node->n2, scope);
    } else {  // caller() of a {% call %} block
        jenv *scope = env_new(c, f->env);
        bind_params(c, at, "None", f->node->k2, f->node->n2, f->node->k1, f->node->n1, args, n, kw, scope);
        r = block_str(c, f->node->k1, f->node->n1, scope);
    }
    c->depth--;
    return r;
}

// ---- binary operators ----
static bool numeric(jv v) { return v.t == JV_INT || v.t == JV_FLOAT; }
static double num(jv v) { return v.t == JV_INT ? (double)v.i : v.t == JV_FLOAT ? v.f : v.t == JV_BOOL ? (double)v.b : 0; }

static jv mknum(double r, bool is_float) {
    if (!is_float && r >= -9.2e18 && r <= 9.2e18 && r == floor(r)) return jv_int((int64_t)r);
    return jv_float(r);
}

static jv eval_binary(jctx *c, const jnode *x, jenv *env) {
    jv l = eval(c, x->a, env);
    if (x->op == OP_AND) return jv_truthy(l) ? eval(c, x->b, env) : l;
    if (x->op == OP_OR) return jv_truthy(l) ? l : eval(c, x->b, env);
    jv r = eval(c, x->b, env);
    if (x->op == OP_EQ) return jv_bool(jv_loose_eq(c, l, r));
    if (x->op == OP_NE) return jv_bool(!jv_loose_eq(c, l, r));
    static const char *opn[] = { "+", "-", "~", "*", "/", "//", "%", "**", "==", "!=", "<", ">", "<=", ">=", "and", "or", "in", "not in" };
    const char *on = opn[x->op];
    if (l.t == JV_UNDEF || r.t == JV_UNDEF) {
        if (r.t == JV_UNDEF && (x->op == OP_IN || x->op == OP_NOTIN)) return jv_bool(x->op == OP_NOTIN);
        jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Cannot perform operation %s on undefined values", on);
    }
    if (l.t == JV_NULL || r.t == JV_NULL) jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Cannot perform operation on null values");
    if (x->op == OP_CONCAT) {
        jbuf b = {0};
        jv_rawstr(c, x, &b, l);
        jv_rawstr(c, x, &b, r);
        return jb_done(c, &b);
    }
    bool lnum = numeric(l) || l.t == JV_BOOL, rnum = numeric(r) || r.t == JV_BOOL;
    if (x->op == OP_POW && lnum && rnum) {
        double a = num(l), b = num(r);
        if (a == 0 && b < 0) jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "0.0 cannot be raised to a negative power");
        double res = pow(a, b);
        if (!isfinite(res)) jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Exponentiation result is not a finite real number");
        return mknum(res, l.t == JV_FLOAT || r.t == JV_FLOAT || b < 0);
    }
    if (numeric(l) && numeric(r)) {
        bool fl = l.t == JV_FLOAT || r.t == JV_FLOAT;
        if (!fl && (x->op == OP_ADD || x->op == OP_SUB || x->op == OP_MUL)) {
            int64_t res;
            bool ovf = x->op == OP_ADD ? __builtin_add_overflow(l.i, r.i, &res)
                     : x->op == OP_SUB ? __builtin_sub_overflow(l.i, r.i, &res) : __builtin_mul_overflow(l.i, r.i, &res);
            if (!ovf) return jv_int(res);
        }
        double a = num(l), b = num(r);
        switch (x->op) {
        case OP_ADD: return mknum(a + b, fl);
        case OP_SUB: return mknum(a - b, fl);
        case OP_MUL: return mknum(a * b, fl);
        case OP_DIV: return jv_float(a / b);
        case OP_FLOORDIV: {
            if (!fl && r.i != 0 && !(l.i == INT64_MIN && r.i == -1)) {
                int64_t q = l.i / r.i;
                if ((l.i % r.i != 0) && ((l.i < 0) != (r.i < 0))) q--;
                return jv_int(q);
            }
            double q = floor(a / b);
            return fl || !isfinite(q) ? jv_float(q) : mknum(q, false);
        }
        case OP_MOD:
            if (!fl && r.i != 0 && r.i != -1) return jv_int(l.i % r.i);  // JS %: sign of the dividend
            if (!fl && r.i == -1) return jv_int(0);
            return fl ? jv_float(fmod(a, b)) : jv_float(NAN);
        case OP_LT: return jv_bool(a < b);
        case OP_GT: return jv_bool(a > b);
        case OP_GE: return jv_bool(a >= b);
        case OP_LE: return jv_bool(a <= b);
        default: break;
        }
    } else if ((l.t == JV_LIST || l.t == JV_TUPLE) && (r.t == JV_LIST || r.t == JV_TUPLE)) {
        if (x->op == OP_ADD) {
            jv res = jv_list(c, l.l->n + r.l->n);
            for (size_t i = 0; i < l.l->n; i++) jl_push(c, res.l, l.l->v[i]);
            for (size_t i = 0; i < r.l->n; i++) jl_push(c, res.l, r.l->v[i]);
            return res;
        }
    } else if (r.t == JV_LIST || r.t == JV_TUPLE) {
        if (x->op == OP_IN || x->op == OP_NOTIN) {
            bool found = false;
            for (size_t i = 0; i < r.l->n && !found; i++) found = jv_strict_eq(r.l->v[i], l);
            return jv_bool(x->op == OP_IN ? found : !found);
        }
    }
    if ((l.t == JV_STR || r.t == JV_STR) && x->op == OP_ADD) {
        jbuf b = {0};
        jv_rawstr(c, x, &b, l);
        jv_rawstr(c, x, &b, r);
        return jb_done(c, &b);
    }
    if (l.t == JV_STR && r.t == JV_STR && (x->op == OP_IN || x->op == OP_NOTIN)) {
        bool found = l.s->len == 0 || memmem(r.s->s, r.s->len, l.s->s, l.s->len) != NULL;
        return jv_bool(x->op == OP_IN ? found : !found);
    }
    if (l.t == JV_STR && (r.t == JV_DICT || r.t == JV_KWARGS) && (x->op == OP_IN || x->op == OP_NOTIN)) {
        bool found = jd_get(r.d, l.s->s, l.s->len) != NULL;
        return jv_bool(x->op == OP_IN ? found : !found);
    }
    // Extension over @huggingface/jinja (which raises here): Python's "ab" * 3 and string comparison.
    if (x->op == OP_MUL && ((l.t == JV_STR && r.t == JV_INT) || (l.t == JV_INT && r.t == JV_STR))) {
        jstr *s = l.t == JV_STR ? l.s : r.s;
        int64_t k = l.t == JV_INT ? l.i : r.i;
        jbuf b = {0};
        for (int64_t i = 0; i < k; i++) jb_put(c, &b, s->s, s->len);
        return jb_done(c, &b);
    }
    if (l.t == JV_STR && r.t == JV_STR && x->op >= OP_LT && x->op <= OP_GE) {
        int cmp = strcmp(l.s->s, r.s->s);
        return jv_bool(x->op == OP_LT ? cmp < 0 : x->op == OP_GT ? cmp > 0 : x->op == OP_LE ? cmp <= 0 : cmp >= 0);
    }
    jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Unknown operator \"%s\" between %s and %s", on, jv_typename(l), jv_typename(r));
}

static jv eval_slice(jctx *c, const jnode *x, jv obj, jenv *env) {
    if (obj.t != JV_LIST && obj.t != JV_TUPLE && obj.t != JV_STR) jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Slice object must be an array or string");
    jv sv[3];
    const jnode *sn[3] = { x->a, x->b, x->c };
    for (int i = 0; i < 3; i++) {
        sv[i] = sn[i] ? eval(c, sn[i], env) : JV_MK(JV_UNDEF);
        if (sv[i].t != JV_INT && sv[i].t != JV_UNDEF) jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Slice %s must be numeric or undefined", i == 0 ? "start" : i == 1 ? "stop" : "step");
    }
    // strings slice by code point (Array.from)
    size_t *cps = NULL, len;
    if (obj.t == JV_STR) {
        cps = calloc_r(c, (obj.s->len + 1) * sizeof(size_t));
        len = 0;
        for (size_t i = 0; i < obj.s->len; i++) if (((unsigned char)obj.s->s[i] & 0xC0) != 0x80) cps[len++] = i;
        cps[len] = obj.s->len;
    } else len = obj.l->n;
    int64_t L = (int64_t)len, step = sv[2].t == JV_INT ? sv[2].i : 1, start, stop;
    if (step == 0) jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "slice step cannot be zero");
    if (step > 0) {
        start = sv[0].t == JV_INT ? sv[0].i : 0;
        stop = sv[1].t == JV_INT ? sv[1].i : L;
        start = start < 0 ? (L + start > 0 ? L + start : 0) : (start < L ? start : L);
        stop = stop < 0 ? (L + stop > 0 ? L + stop : 0) : (stop < L ? stop : L);
    } else {
        start = sv[0].t == JV_INT ? sv[0].i : L - 1;
        stop = sv[1].t == JV_INT ? sv[1].i : -1;
        start = start < 0 ? (L + start > -1 ? L + start : -1) : (start < L - 1 ? start : L - 1);
        stop = stop < -1 ? (L + stop > -1 ? L + stop : -1) : (stop < L - 1 ? stop : L - 1);
    }
    if (obj.t == JV_STR) {
        jbuf b = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jb_put(c, &b, obj.s->s + cps[i], cps[i + 1] - cps[i]);
        return jb_done(c, &b);
    }
    jv res = jv_list(c, 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) jl_push(c, res.l, obj.l->v[i]);
    return res;
}

static jv eval_filter_node(jctx *c, const jnode *at, jv operand, const jnode *f, jenv *env) {
    if (f->kind == N_IDENT) return jinja_filter(c, at, operand, f->s->s, false, NULL, 0, NULL, env);
    if (f->kind != N_CALL || f->a->kind != N_IDENT) jerr_at(c->e, SLLM_ERR_FORMAT, at->pos, "Unknown filter");
    const char *name = f->a->s->s;
    // selectattr/rejectattr take string literals only in @huggingface/jinja; we evaluate any expression.
    jargs a = eval_args(c, f->k1, f->n1, env);
    return jinja_filter(c, at, operand, name, true, a.pos, a.n, a.kw, env);
}

static void assign_tuple(jctx *c, const jnode *target, jv v, jenv *env, const char *what) {
    if (v.t != JV_LIST && !(v.t == JV_TUPLE && what[0]))  // set accepts tuples, for does not
        jerr_at(c->e, SLLM_ERR_FORMAT, target->pos, "Cannot unpack non-iterable type%s: %s", what, jv_typename(v));
    if (v.l->n != target->n1)
        jerr_at(c->e, SLLM_ERR_FORMAT, target->pos, "Too %s items to unpack%s", target->n1 > v.l->n ? "few" : "many", what);
    for (size_t j = 0; j < target->n1; j++) {
        if (target->k1[j]->kind != N_IDENT) jerr_at(c->e, SLLM_ERR_FORMAT, target->pos, "Cannot unpack to non-identifier");
        env_set(c, env, target->k1[j]->s, v.l->v[j]);
    }
}

static jv eval(jctx *c, const jnode *x, jenv *env) {
    if (!x) return JV_MK(JV_UNDEF);
    switch (x->kind) {
    case N_INT: return jv_int(x->i);
    case N_FLOAT: return jv_float(x->f);
    case N_STR: { jv v = { .t = JV_STR }; v.s = x->s; return v; }
    case N_LIST: case N_TUPLE: {
        jv v = jv_list(c, x->n1);
        v.t = x->kind == N_LIST ? JV_LIST : JV_TUPLE;
        for (size_t i = 0; i < x->n1; i++) jl_push(c, v.l, eval(c, x->k1[i], env));
        return v;
    }
    case N_DICT: {
        jv d = jv_dict(c, JV_DICT);
        for (size_t i = 0; i < x->n1; i++) {
            jv k = eval(c, x->k1[i], env);
            if (k.t != JV_STR) jerr_at(c->e, SLLM_ERR_FORMAT, x->k1[i]->pos, "Object keys must be strings: got %s", jv_typename(k));
            jd_set(c, d.d, k.s, eval(c, x->k2[i], env));
        }
        return d;
    }
    case N_IDENT: return env_lookup(env, x->s->s, x->s->len);
    case N_CALL: {
        jargs a = eval_args(c, x->k1, x->n1, env);
        jv fn = eval(c, x->a, env);
        return jinja_call(c, x, fn, a.pos, a.n, a.kw, env);
    }
    case N_MEMBER: {
        jv obj = eval(c, x->a, env);
        jv prop;
        if (x->flag) {
            if (x->b->kind == N_SLICE) return eval_slice(c, x->b, obj, env);
            prop = eval(c, x->b, env);
        } else if (x->b->kind == N_INT) prop = jv_int(x->b->i);
        else { prop.t = JV_STR; prop.s = x->b->s; }
        return jinja_member(c, x, obj, prop);
    }
    case N_UNARY: {
        jv v = eval(c, x->a, env);
        if (x->op == OP_NOT) return jv_bool(!jv_truthy(v));
        if (v.t == JV_INT || v.t == JV_BOOL) {
            int64_t i = v.t == JV_BOOL ? v.b : v.i;
            return jv_int(x->op == OP_NEG ? (i == INT64_MIN ? i : -i) : i);
        }
        if (v.t == JV_FLOAT) return jv_float(x->op == OP_NEG ? -v.f : v.f);
        jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "Unknown operator \"%s\" for %s", x->op == OP_NEG ? "-" : "+", jv_typename(v));
    }
    case N_BINARY: return eval_binary(c, x, env);
    case N_FILTER: return eval_filter_node(c, x, eval(c, x->a, env), x->b, env);
    case N_TEST: {
        jv v = eval(c, x->a, env);
        jv arg, *ap = NULL;
        if (x->b) { arg = eval(c, x->b, env); ap = &arg; }
        bool r = jinja_test(c, x, v, x->s->s, ap);
        return jv_bool(x->flag ? !r : r);
    }
    case N_SELECT: return jv_truthy(eval(c, x->b, env)) ? eval(c, x->a, env) : JV_MK(JV_UNDEF);
    case N_TERNARY: return jv_truthy(eval(c, x->a, env)) ? eval(c, x->b, env) : eval(c, x->c, env);
    default:
        jerr_at(c->e, SLLM_ERR_FORMAT, x->pos, "unexpected statement inside an expression");
    }
}

static void exec_for(jctx *c, const jnode *x, jenv *env, jbuf *out) {
    jenv *scope = env_new(c, env);
    const jnode *it = x->b, *test = NULL;
    if (it->kind == N_SELECT) { test = it->b; it = it->a; }
    jv iter = eval(c, it, scope);
    if (iter.t == JV_DICT || iter.t == JV_KWARGS) {
        jv keys = jv_list(c, iter.d->n);
        for (size_t i = 0; i < iter.d->n; i++) { jv k = { .t = JV_STR }; k.s = iter.d->k[i]; jl_push(c, keys.l, k); }
        iter = keys;
    } else if (iter.t == JV_STR) {
        // Extension: iterate a string by code point (@huggingface/jinja raises).
        jv chars = jv_list(c, 0);
        for (size_t i = 0; i < iter.s->len;) {
            size_t j = i + 1;
            while (j < iter.s->len && ((unsigned char)iter.s->s[j] & 0xC0) == 0x80) j++;
            jl_push(c, chars.l, jv_strn(c, iter.s->s + i, j - i));
            i = j;
        }
        iter = chars;
    } else if (iter.t != JV_LIST && iter.t != JV_TUPLE)
        jerr_at(c->e, SLLM_ERR_FORMAT, x->b->pos, "Expected iterable or object type in for loop: got %s", jv_typename(iter));
    size_t n = iter.l->n;
    jv *items = calloc_r(c, (n + 1) * sizeof(jv));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        jv cur = iter.l->v[i];
        if (test) {
            jenv *ls = env_new(c, scope);
            if (x->a->kind == N_IDENT) env_set(c, ls, x->a->s, cur);
            else assign_tuple(c, x->a, cur, ls, "");
            if (!jv_truthy(eval(c, test, ls))) continue;
        } else if (x->a->kind == N_TUPLE && cur.t != JV_LIST)
            jerr_at(c->e, SLLM_ERR_FORMAT, x->a->pos, "Cannot unpack non-iterable type: %s", jv_typename(cur));
        items[m++] = cur;
    }
    bool none = true;
    static const char *names[9] = { "index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem" };
    jstr *loopname = js_new(c, "loop", 4);
    for (size_t i = 0; i < m; i++) {
        jv loop = jv_dict(c, JV_DICT);
        jv vals[9] = { jv_int((int64_t)i + 1), jv_int((int64_t)i), jv_int((int64_t)(m - i)), jv_int((int64_t)(m - i - 1)),
                       jv_bool(i == 0), jv_bool(i == m - 1), jv_int((int64_t)m),
                       i > 0 ? items[i - 1] : JV_MK(JV_UNDEF), i + 1 < m ? items[i + 1] : JV_MK(JV_UNDEF) };
        for (int k = 0; k < 9; k++) jd_set(c, loop.d, js_new(c, names[k], strlen(names[k])), vals[k]);
        env_set(c, scope, loopname, loop);
        if (x->a->kind == N_IDENT) env_set(c, scope, x->a->s, items[i]);
        else assign_tuple(c, x->a, items[i], scope, "");
        // An iteration cut short by break/continue contributes nothing, as in @huggingface/jinja.
        jbuf ib = {0};
        exec_block(c, x->k1, x->n1, scope, &ib);
        if (c->ctl == 2) { c->ctl = 0; continue; }
        if (c->ctl == 1) { c->ctl = 0; break; }
        jb_put(c, out, ib.p ? ib.p : "", ib.n);
        none = false;
    }
    if (none) exec_block(c, x->k2, x->n2, scope, out);
}

// Runs one statement, appending its output. Break/continue set c->ctl and unwind to the loop.
static void exec(jctx *c, const jnode *x, jenv *env, jbuf *out) {
    switch (x->kind) {
    case N_COMMENT: return;
    case N_IF:
        if (jv_truthy(eval(c, x->a, env))) exec_block(c, x->k1, x->n1, env, out);
        else exec_block(c, x->k2, x->n2, env, out);
        return;
    case N_FOR: exec_for(c, x, env, out); return;
    case N_SET: {
        jv rhs = x->b ? eval(c, x->b, env) : block_str(c, x->k1, x->n1, env);
        const jnode *t = x->a;
        if (t->kind == N_IDENT) env_set(c, env, t->s, rhs);
        else if (t->kind == N_TUPLE) assign_tuple(c, t, rhs, env, " in set");
        else if (t->kind == N_MEMBER) {
            jv obj = eval(c, t->a, env);
            if (obj.t != JV_NS) jerr_at(c->e, SLLM_ERR_FORMAT, t->pos, "cannot assign attribute on non-namespace object");
            if (t->flag || t->b->kind != N_IDENT) jerr_at(c->e, SLLM_ERR_FORMAT, t->pos, "Cannot assign to member with non-identifier property");
            jd_set(c, obj.d, t->b->s, rhs);
        } else jerr_at(c->e, SLLM_ERR_FORMAT, t->pos, "Invalid LHS inside assignment expression");
        return;
    }
    case N_MACRO: {
        jv f = { .t = JV_FUNC };
        f.fn = calloc_r(c, sizeof(jfunc));
        f.fn->kind = JF_MACRO;
        f.fn->node = x;
        f.fn->name = x->s->s;
        env_set(c, env, x->s, f);
        return;
    }
    case N_CALLBLOCK: {
        jv caller = { .t = JV_FUNC };
        caller.fn = calloc_r(c, sizeof(jfunc));
        caller.fn->kind = JF_CALLER;
        caller.fn->node = x;
        caller.fn->env = env;
        jargs a = eval_args(c, x->a->k1, x->a->n1, env);
        jv fn = eval(c, x->a->a, env);
        jenv *ne = env_new(c, env);
        env_set(c, ne, js_new(c, "caller", 6), caller);
        jv r = jinja_call(c, x, fn, a.pos, a.n, a.kw, ne);
        if (r.t != JV_NULL && r.t != JV_UNDEF) jv_print(c, x, out, r);
        return;
    }
    case N_BREAK: c->ctl = 1; return;
    case N_CONTINUE: c->ctl = 2; return;
    case N_FILTERBLOCK: {
        jv body = block_str(c, x->k1, x->n1, env);
        jv r = eval_filter_node(c, x, body, x->a, env);
        if (r.t != JV_NULL && r.t != JV_UNDEF) jv_print(c, x, out, r);
        return;
    }
    default: {
        jv v = eval(c, x, env);
        if (v.t != JV_NULL && v.t != JV_UNDEF) jv_print(c, x, out, v);
    }
    }
}

static void exec_block(jctx *c, jnode **body, size_t n, jenv *env, jbuf *out) {
    if (++c->depth > MAX_DEPTH) jerr_at(c->e, SLLM_ERR_ARG, n ? body[0]->pos : 0, "maximum nesting depth (%d) exceeded", MAX_DEPTH);
    for (size_t i = 0; i < n && !c->ctl; i++) exec(c, body[i], env, out);
    c->depth--;
}

int jinja_render(const jinja_template *t, const json_t *context, char **out, size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!t) return err_set(SLLM_ERR_ARG, "jinja_render: NULL template");
    if (context && !json_is_object(context)) return err_set(SLLM_ERR_ARG, "jinja_render: context must be a JSON object");
    jarena arena = {0};
    jerrbuf e = { .src = t->src, .src_len = t->src_len };
    jctx c = { .a = &arena, .e = &e };
    if (setjmp(e.jb)) {
        ja_free(&arena);
        return e.code;
    }
    jenv *root = env_new(&c, NULL);
    jinja_globals(&c, root->vars);
    if (context) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)context, k, v) env_set(&c, root, js_new(&c, k, strlen(k)), jv_from_json(&c, v));
    }
    jbuf b = {0};
    exec_block(&c, t->root->k1, t->root->n1, root, &b);
    if (c.ctl) jerr_at(&e, SLLM_ERR_FORMAT, 0, "break/continue outside of a loop");
    char *res = malloc(b.n + 1);
    if (!res) { ja_free(&arena); return err_set(SLLM_ERR_NOMEM, "jinja_render: out of memory"); }
    if (b.n) memcpy(res, b.p, b.n);
    res[b.n] = 0;
    if (out_len) *out_len = b.n;
    *out = res;
    ja_free(&arena);
    return SLLM_OK;
}

int jinja_render_string(const char *src, const json_t *context, char **out) {
    *out = NULL;
    if (!src) return err_set(SLLM_ERR_ARG, "jinja_render_string: NULL template");
    jinja_template *t;
    int rc = jinja_parse(src, strlen(src), &t);
    if (rc) return rc;
    rc = jinja_render(t, context, out, NULL);
    jinja_free(t);
    return rc;
}
