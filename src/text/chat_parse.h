// Incremental parser for model replies: splits decoded text into reasoning (<think>...</think>), content
// and tool calls, as deltas arrive from the decoder. Tags may be split across deltas anywhere.
//
// Tool-call forms:
//   HERMES  (Qwen2.5/Qwen3, Hermes): <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, repeated.
//   LLAMA3  (Llama 3.x): a reply that is JSON: {"name": ..., "parameters"|"arguments": {...}}, optionally
//           after <|python_tag|>, several separated by ';' or newlines.
//   GENERIC a reply that is one JSON object: {"name","arguments"}, {"tool_call": {...}},
//           {"tool_calls": [...]} or {"response": "text"} (content).
//   AUTO    all of the above; NONE: no tool calls (reasoning is still split when enabled).
// A JSON reply that is not tool-call shaped (no "name" + "arguments"/"parameters") is plain content.
//
// Streaming: content and reasoning deltas are emitted as soon as they cannot be part of a tag (only a
// possible tag prefix, an incomplete UTF-8 character and trailing whitespace are held back; leading and
// trailing whitespace of content and reasoning is trimmed). A tool call is emitted when it is complete:
// CP_DELTA_TOOL_START (index, id, name) then one CP_DELTA_TOOL_ARGS with the whole arguments string.
// The concatenated content deltas always equal the final "content", the same for reasoning.
//
// Malformed output never loses text: an unclosed or unparsable <tool_call> block, a broken JSON call, a
// call without "name" come back verbatim in content with "parse_error": true and "parse_error_message".
// An unclosed <think> (output ended while reasoning) stays reasoning_content (it was already streamed as
// such) and is flagged the same way.
#ifndef SLLM_TEXT_CHAT_PARSE_H
#define SLLM_TEXT_CHAT_PARSE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CP_FORMAT_AUTO, CP_FORMAT_HERMES, CP_FORMAT_LLAMA3, CP_FORMAT_GENERIC, CP_FORMAT_NONE } cp_format;

typedef struct {
    cp_format format;
    bool reasoning;            // split <think>...</think> at the start of the reply into reasoning_content
    bool starts_in_reasoning;  // the prompt already opened <think> (implies reasoning)
    uint64_t id_seed;          // tool-call ids "call_<16 hex>" derive from this; 0 = pick one at random
} cp_config;

typedef enum { CP_DELTA_REASONING, CP_DELTA_CONTENT, CP_DELTA_TOOL_START, CP_DELTA_TOOL_ARGS } cp_delta_kind;

typedef struct {
    cp_delta_kind kind;
    const char *text;  // REASONING / CONTENT / TOOL_ARGS: the piece (not NUL-terminated), len bytes
    size_t len;
    int tool_index;         // TOOL_START / TOOL_ARGS: 0-based index of the call in this reply
    const char *tool_id;    // TOOL_START
    const char *tool_name;  // TOOL_START
} cp_delta;

typedef void (*cp_delta_cb)(const cp_delta *d, void *user);
typedef struct cp_parser cp_parser;

cp_parser *cp_new(const cp_config *cfg);  // cfg NULL = AUTO without reasoning
// Feeds decoded text; cb (may be NULL) receives the deltas that became certain. SLLM_OK or error.
int cp_feed(cp_parser *p, const char *delta, size_t n, cp_delta_cb cb, void *user);
// Flushes held text (deltas through cb) and returns the OpenAI-shaped message (new reference):
//   {"role": "assistant", "content": string|null, "reasoning_content"?: string,
//    "tool_calls"?: [{"id", "type": "function", "function": {"name", "arguments": JSON string}}],
//    "parse_error"?: true, "parse_error_message"?: string}
// content is null only when there are tool calls and no text. NULL on out-of-memory or a second call.
json_t *cp_finish(cp_parser *p, cp_delta_cb cb, void *user);
void cp_free(cp_parser *p);
#endif
