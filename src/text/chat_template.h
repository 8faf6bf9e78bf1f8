// Chat formatting: renders a Hugging Face chat template (tokenizer_config.json "chat_template") over
// OpenAI-style messages with the Jinja engine in jinja.h.
#ifndef SLLM_TEXT_CHAT_TEMPLATE_H
#define SLLM_TEXT_CHAT_TEMPLATE_H
#include <jansson.h>
#include <stdbool.h>

// The ChatML template used when a model ships none:
//   <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
const char *chat_template_chatml(void);

// Renders `template_src` (NULL or "" -> ChatML) with the variables Hugging Face passes:
//   messages               JSON array of {role: system|developer|user|assistant|tool, content, tool_calls,
//                          tool_call_id, reasoning_content, ...}; a tool call's function.arguments given as
//                          a JSON string that holds an object is parsed into that object first, since
//                          templates index it or apply tojson to it (as llama.cpp does)
//   tools                  JSON array of tool definitions, or NULL (then `tools` is undefined)
//   add_generation_prompt  bool
//   bos_token, eos_token   strings, or NULL (undefined)
//   extra                  JSON object of more variables (e.g. {"enable_thinking": false}), or NULL;
//                          its keys override the ones above
// *out is malloc'd, NUL-terminated. Errors: SLLM_ERR_ARG (bad arguments), SLLM_ERR_FORMAT (template
// syntax/runtime error, including raise_exception) with sllm_last_error() = "chat template: template:L:C: msg".
int chat_render(const char *template_src, const json_t *messages, const json_t *tools, bool add_generation_prompt,
                const json_t *extra, const char *bos_token, const char *eos_token, char **out);

// Same as chat_render but the JSON inputs are strings (messages required; tools/extra may be NULL).
int chat_render_json(const char *template_src, const char *messages_json, const char *tools_json,
                     bool add_generation_prompt, const char *extra_json, const char *bos_token,
                     const char *eos_token, char **out);
#endif
