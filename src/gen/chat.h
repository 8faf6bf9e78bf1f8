// Library-level chat: a model's own chat template (GGUF tokenizer.chat_template, or chat_template.jinja /
// tokenizer_config.json in a Hugging Face directory; ChatML when it has none), rendered over OpenAI-style
// messages + tools + template kwargs, generated with streaming through the reply parser (reasoning,
// tool calls), optionally constrained (JSON Schema, GBNF, forced tool call), returned as an OpenAI-shaped
// assistant message. Used by `sllm chat` and meant for the server.
//
// Thinking: opts.think = 0 / 1 passes enable_thinking=false / true to the template (Qwen3 and others read
// it); -1 leaves the template's default. A prompt that ends inside <think> (DeepSeek-R1, QwQ) makes the
// parser start in reasoning. Constrained replies (schema, grammar, forced tool call) turn thinking off
// unless think == 1, because the grammar applies from the first generated token.
//
// Multi-turn: a chat_session keeps the tokens its KV cache holds; the next request's prompt is compared
// with them and only the part after the common prefix is run (the history is re-rendered every turn, as
// templates may rewrite earlier turns, e.g. drop past reasoning).
#ifndef SLLM_GEN_CHAT_H
#define SLLM_GEN_CHAT_H
#include <jansson.h>
#include <stdbool.h>
#include "base/threadpool.h"
#include "gen/constrain.h"
#include "gen/generate.h"
#include "gen/sample.h"
#include "model/model.h"
#include "text/chat_parse.h"
#include "text/tokenizer.h"

typedef struct {
    sllm_model *m;
    const tok *t;
    char *template_src;        // the model's template, or NULL (ChatML)
    char *template_tools;      // a separate tool-use template (GGUF tokenizer.chat_template.tool_use, HF
                               // "tool_use" entry), or NULL
    char *bos, *eos;           // special token text for the template, or NULL
    cp_format tool_format;     // from the template: HERMES (<tool_call>), LLAMA3 (ipython), else AUTO
    bool thinks;               // the template knows <think> / enable_thinking
    constrain_vocab *cv;       // built on first constrained request
} chat_model;

// The model's template source (malloc'd) into *out, or *out = NULL when it has none. tools: prefer a
// tool-use variant. Errors: unreadable/invalid tokenizer_config.json (named with line:col).
int chat_template_load(const sllm_model *m, bool tools, char **out);
// template_override (may be NULL): template source to use instead of the model's.
int chat_model_init(chat_model *cm, sllm_model *m, const tok *t, const char *template_override);
void chat_model_free(chat_model *cm);

typedef enum { CHAT_TOOLS_AUTO = 0, CHAT_TOOLS_NONE, CHAT_TOOLS_REQUIRED } chat_tool_choice;

typedef struct {
    const json_t *tools;           // OpenAI tools array, or NULL
    chat_tool_choice tool_choice;  // NONE: tools are not shown; REQUIRED: a call is forced by a grammar
    const char *tool_name;         // with REQUIRED: force this function
    bool parallel_tool_calls;      // with REQUIRED: allow several calls
    int think;                     // -1 template default, 0 off, 1 on
    const json_t *kwargs;          // more template variables (object), or NULL
    const json_t *schema;          // constrain the reply to this JSON Schema, or NULL
    const char *grammar;           // or to this GBNF text (root rule "root"), or NULL
    const char *grammar_name;      // for grammar error messages
    int n_predict;                 // max new tokens (< 0: until the end or the context is full)
    sample_params sp;
    uint64_t id_seed;              // tool-call ids (0: random)
} chat_opts;
void chat_opts_default(chat_opts *o);   // n_predict 512, sampler defaults, think -1, AUTO

// Renders the prompt the request would use (with the generation prompt when add_generation_prompt).
int chat_render_prompt(const chat_model *cm, const json_t *messages, const chat_opts *o, bool add_generation_prompt,
                       char **out);

typedef struct {
    model_session *s;
    int32_t *ids; int n_ids, cap;   // tokens in the KV cache
} chat_session;
// n_ctx <= 0: the model's training context capped at 4096. pool may be NULL.
int chat_session_new(const chat_model *cm, int n_ctx, tpool *pool, chat_session **out);
void chat_session_free(chat_session *cs);

typedef struct {
    gen_stats gen;
    int n_reused;                  // prompt tokens served from the KV cache
    double render_us, parse_us;    // template rendering; reply parsing (cp_feed + cp_finish) in total
    constrain_stats cons;          // when constrained
} chat_stats;

// One assistant turn: render, generate (streaming deltas to cb, may be NULL), parse. *message gets the
// OpenAI-shaped assistant message (new reference), with "finish_reason"-like information left to callers
// (st->gen.stopped_eog). st may be NULL.
int chat_complete(chat_model *cm, chat_session *cs, const json_t *messages, const chat_opts *o, cp_delta_cb cb,
                  void *user, json_t **message, chat_stats *st);

// A request file: a JSON array of messages, or an object {"messages": [...], "tools"?: [...],
// "kwargs"?: {...}, "add_generation_prompt"?: bool} (the layout of tests/chat_cases). Fields absent from
// the file stay NULL / -1. JSON syntax errors name path:line:column.
typedef struct {
    json_t *messages, *tools, *kwargs;
    int add_generation_prompt;     // -1 absent
} chat_request;
int chat_request_load(const char *path, chat_request *r);
void chat_request_free(chat_request *r);
// A JSON file (or, with from_text, a JSON string) with errors that name it and line:column.
int chat_json_load(const char *path_or_text, bool from_text, const char *what, json_t **out);
#endif
