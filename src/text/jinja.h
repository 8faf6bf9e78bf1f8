// Jinja template engine for Hugging Face chat templates.
// Semantics follow @huggingface/jinja (the engine transformers.js uses, our oracle): the same
// whitespace handling (trim_blocks + lstrip_blocks always on), the same value printing (true/false,
// 2.0, lists as JSON) and the same tojson output, plus a few extra filters/methods Python Jinja has
// where @huggingface/jinja would raise. Errors never abort: every call returns SLLM_OK or an
// SLLM_ERR_* with sllm_last_error() = "template:LINE:COL: message".
#ifndef SLLM_TEXT_JINJA_H
#define SLLM_TEXT_JINJA_H
#include <jansson.h>
#include <stddef.h>

typedef struct jinja_template jinja_template;

// Parses `src` (len bytes, need not be NUL-terminated). On success *out is a template to render and
// free; on a syntax error returns SLLM_ERR_FORMAT.
int jinja_parse(const char *src, size_t len, jinja_template **out);
void jinja_free(jinja_template *t);

// Renders with the variables of the JSON object `context` (may be NULL). JSON reals that are whole
// numbers become integers, as JSON.parse does in JavaScript. *out is malloc'd, NUL-terminated;
// *out_len (may be NULL) gets its length. Runtime errors (raise_exception, bad operands, unknown
// filters) return SLLM_ERR_FORMAT; resource limits (recursion, output size) SLLM_ERR_ARG.
int jinja_render(const jinja_template *t, const json_t *context, char **out, size_t *out_len);

// Parse + render in one call.
int jinja_render_string(const char *src, const json_t *context, char **out);
#endif
