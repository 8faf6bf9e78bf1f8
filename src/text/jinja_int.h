// Internals shared by jinja_lex.c, jinja_parse.c, jinja_eval.c and jinja_filters.c.
// Memory: every AST node and every runtime value lives in an arena freed at once (template arena
// for the AST, render arena for values), so evaluation can bail out with longjmp on any error
// without leaking. Strings are UTF-8 byte strings; where @huggingface/jinja works on UTF-16 units
// (length) we convert.
#ifndef SLLM_TEXT_JINJA_INT_H
#define SLLM_TEXT_JINJA_INT_H
#include "text/jinja.h"
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

// ---- arena ----
typedef struct jblk { struct jblk *next; size_t used, cap; } jblk;
typedef struct { jblk *head; size_t total; } jarena;
void *ja_alloc(jarena *a, size_t n);  // zeroed; NULL only when malloc fails
void ja_free(jarena *a);

// ---- values ----
typedef enum { JV_UNDEF, JV_NULL, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_TUPLE, JV_DICT,
               JV_KWARGS, JV_NS, JV_FUNC } jv_type;
typedef struct jstr { size_t len; char s[]; } jstr;  // s is NUL-terminated
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct {
    jv_type t;
    union { bool b; int64_t i; double f; jstr *s; jlist *l; jdict *d; jfunc *fn; };
} jv;
struct jlist { size_t n, cap; jv *v; };
struct jdict { size_t n, cap; jstr **k; jv *v; };  // insertion-ordered, linear lookup (dicts are small)

typedef struct jnode jnode;
typedef struct jenv { struct jenv *parent; jdict *vars; } jenv;
typedef struct jctx jctx;
typedef jv (*jbuiltin)(jctx *c, const jnode *at, jv self, jv *args, size_t n, jdict *kw);
enum { JF_BUILTIN, JF_MACRO, JF_CALLER };
struct jfunc { int kind; jbuiltin fn; jv self; const jnode *node; jenv *env; const char *name; };

// ---- tokens / AST ----
enum { T_TEXT, T_NUM, T_STR, T_IDENT, T_EQUALS, T_LPAREN, T_RPAREN, T_OSTMT, T_CSTMT, T_OEXPR, T_CEXPR,
       T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COMMA, T_DOT, T_COLON, T_PIPE, T_ADD, T_MUL, T_POW,
       T_CMP, T_UNARY, T_COMMENT };
typedef struct { int type; int pos; const char *v; size_t len; } jtok;

enum { N_PROGRAM, N_IF, N_FOR, N_SET, N_MACRO, N_CALLBLOCK, N_BREAK, N_CONTINUE, N_FILTERBLOCK,
       N_COMMENT, N_INT, N_FLOAT, N_STR, N_LIST, N_TUPLE, N_DICT, N_IDENT, N_MEMBER, N_SLICE, N_CALL,
       N_KWARG, N_SPREAD, N_KWSPREAD, N_BINARY, N_UNARY, N_FILTER, N_TEST, N_SELECT, N_TERNARY };
enum { OP_ADD, OP_SUB, OP_CONCAT, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_EQ, OP_NE, OP_LT,
       OP_GT, OP_LE, OP_GE, OP_AND, OP_OR, OP_IN, OP_NOTIN, OP_NOT, OP_NEG, OP_POS };
struct jnode {
    int kind, op, pos;   // pos: byte offset in the original template source
    bool flag;           // N_MEMBER: computed ([]); N_TEST: negated; N_CALLBLOCK: has caller args
    jnode *a, *b, *c;
    jnode **k1, **k2;    // bodies / argument lists (see jinja_parse.c for which node uses which)
    size_t n1, n2;
    int64_t i;
    double f;
    jstr *s;
};

struct jinja_template {
    jarena arena;
    char *src;           // original source (for line/column of errors)
    size_t src_len;
    jnode *root;
};

// ---- errors: "template:L:C: msg", then longjmp to the entry point ----
typedef struct { jmp_buf jb; const char *src; size_t src_len; int code; } jerrbuf;
_Noreturn void jerr_at(jerrbuf *e, int code, int pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Lexer: tokens (arena) over the preprocessed source; pos fields map back to the original.
jtok *jinja_lex(jarena *a, jerrbuf *e, const char *src, size_t len, size_t *ntok);
jnode *jinja_parse_tokens(jarena *a, jerrbuf *e, jtok *toks, size_t n);

// ---- render context ----
struct jctx {
    jarena *a;
    jerrbuf *e;
    int depth;
    size_t out_bytes;
    int ctl;             // 1 = break, 2 = continue pending
};
#define JV_MK(T) ((jv){ .t = (T) })
static inline jv jv_int(int64_t i) { jv v = { .t = JV_INT }; v.i = i; return v; }
static inline jv jv_float(double f) { jv v = { .t = JV_FLOAT }; v.f = f; return v; }
static inline jv jv_bool(bool b) { jv v = { .t = JV_BOOL }; v.b = b; return v; }

jstr *js_new(jctx *c, const char *s, size_t n);
static inline jv jv_strn(jctx *c, const char *s, size_t n) { jv v = { .t = JV_STR }; v.s = js_new(c, s, n); return v; }
static inline jv jv_str(jctx *c, const char *s) { return jv_strn(c, s, strlen(s)); }
jv jv_list(jctx *c, size_t cap);
void jl_push(jctx *c, jlist *l, jv v);
jv jv_dict(jctx *c, jv_type t);
jv *jd_get(const jdict *d, const char *k, size_t klen);
void jd_set(jctx *c, jdict *d, jstr *k, jv v);
jv jv_builtin(jctx *c, jbuiltin fn, jv self, const char *name);

// growable byte buffer in the render arena
typedef struct { char *p; size_t n, cap; } jbuf;
void jb_put(jctx *c, jbuf *b, const char *s, size_t n);
static inline void jb_puts(jctx *c, jbuf *b, const char *s) { jb_put(c, b, s, strlen(s)); }
jv jb_done(jctx *c, jbuf *b);

// value helpers (jinja_filters.c)
const char *jv_typename(jv v);
bool jv_truthy(jv v);
void jv_print(jctx *c, const jnode *at, jbuf *b, jv v);        // RuntimeValue.toString()
void jv_rawstr(jctx *c, const jnode *at, jbuf *b, jv v);       // JS String(value) (for +, ~, join)
void jv_tojson(jctx *c, const jnode *at, jbuf *b, jv v, int indent, bool ascii, bool sort,
               const char *isep, const char *ksep, int depth, bool undef_null);
void js_number(double d, char *buf, size_t n);                  // JS Number#toString
bool jv_loose_eq(jctx *c, jv a, jv b);                          // JS ==
bool jv_strict_eq(jv a, jv b);                                  // JS ===
int jv_compare(jctx *c, const jnode *at, jv a, jv b, bool case_sensitive);
size_t js_utf16_len(const char *s, size_t n);
size_t js_space_len(const char *s, size_t n, size_t i);         // JS \s char at s[i]: its byte length or 0
jv jv_from_json(jctx *c, const json_t *j);

// member access, filters, tests, globals (jinja_filters.c)
jv jinja_member(jctx *c, const jnode *at, jv obj, jv prop);
jv jinja_filter(jctx *c, const jnode *at, jv operand, const char *name, bool called, jv *args, size_t n,
                jdict *kw, jenv *env);
bool jinja_test(jctx *c, const jnode *at, jv operand, const char *name, jv *arg);
bool jinja_test_exists(const char *name);
bool jinja_test_takes_arg(const char *name);
void jinja_globals(jctx *c, jdict *vars);
jv jinja_call(jctx *c, const jnode *at, jv fn, jv *args, size_t n, jdict *kw, jenv *env);  // jinja_eval.c
#endif
