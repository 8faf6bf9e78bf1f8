// Chat formatting over the Jinja engine: builds the render context Hugging Face's
// apply_chat_template builds (messages, tools, add_generation_prompt, special tokens, extra kwargs).
#include "text/chat_template.h"
#include "text/jinja.h"
#include "base/error.h"
#include <stdlib.h>
#include <string.h>

static const char CHATML[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char *chat_template_chatml(void) { return CHATML; }

// Copy of `messages` where string tool-call arguments holding a JSON object become that object.
static json_t *normalize_messages(const json_t *messages) {
    json_t *m = json_deep_copy(messages);
    if (!m) return NULL;
    size_t i;
    json_t *msg;
    json_array_foreach(m, i, msg) {
        json_t *calls = json_object_get(msg, "tool_calls");
        if (!json_is_array(calls)) continue;
        size_t k;
        json_t *call;
        json_array_foreach(calls, k, call) {
            json_t *fn = json_object_get(call, "function");
            json_t *args = json_object_get(fn, "arguments");
            if (!json_is_string(args)) continue;
            json_t *parsed = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
            if (json_is_object(parsed)) json_object_set_new(fn, "arguments", parsed);
            else json_decref(parsed);
        }
    }
    return m;
}

int chat_render(const char *template_src, const json_t *messages, const json_t *tools, bool add_generation_prompt,
                const json_t *extra, const char *bos_token, const char *eos_token, char **out) {
    if (!out) return err_set(SLLM_ERR_ARG, "chat_render: NULL output");
    *out = NULL;
    if (!json_is_array(messages)) return err_set(SLLM_ERR_ARG, "chat_render: messages must be a JSON array");
    if (tools && !json_is_array(tools) && !json_is_null(tools)) return err_set(SLLM_ERR_ARG, "chat_render: tools must be a JSON array");
    if (extra && !json_is_object(extra)) return err_set(SLLM_ERR_ARG, "chat_render: extra kwargs must be a JSON object");
    size_t i;
    json_t *msg;
    json_array_foreach(messages, i, msg)
        if (!json_is_object(msg)) return err_set(SLLM_ERR_ARG, "chat_render: messages[%zu] is not an object", i);
    json_t *ctx = json_object();
    json_t *norm = normalize_messages(messages);
    if (!ctx || !norm) { json_decref(ctx); json_decref(norm); return err_set(SLLM_ERR_NOMEM, "chat_render: out of memory"); }
    json_object_set_new(ctx, "messages", norm);
    if (tools && json_is_array(tools)) json_object_set(ctx, "tools", (json_t *)tools);
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    if (bos_token) json_object_set_new(ctx, "bos_token", json_string(bos_token));
    if (eos_token) json_object_set_new(ctx, "eos_token", json_string(eos_token));
    if (extra) json_object_update(ctx, (json_t *)extra);
    const char *src = template_src && *template_src ? template_src : CHATML;
    int rc = jinja_render_string(src, ctx, out);
    json_decref(ctx);
    if (rc) return err_wrap(rc, "chat template");
    return SLLM_OK;
}

int chat_render_json(const char *template_src, const char *messages_json, const char *tools_json,
                     bool add_generation_prompt, const char *extra_json, const char *bos_token,
                     const char *eos_token, char **out) {
    if (!out) return err_set(SLLM_ERR_ARG, "chat_render_json: NULL output");
    *out = NULL;
    json_error_t je;
    json_t *m = messages_json ? json_loads(messages_json, 0, &je) : NULL;
    if (!m) return err_set(SLLM_ERR_ARG, "chat_render_json: messages: %s", messages_json ? je.text : "NULL");
    json_t *t = NULL, *x = NULL;
    if (tools_json && !(t = json_loads(tools_json, 0, &je))) {
        json_decref(m);
        return err_set(SLLM_ERR_ARG, "chat_render_json: tools: %s", je.text);
    }
    if (extra_json && !(x = json_loads(extra_json, 0, &je))) {
        json_decref(m); json_decref(t);
        return err_set(SLLM_ERR_ARG, "chat_render_json: extra kwargs: %s", je.text);
    }
    int rc = chat_render(template_src, m, t, add_generation_prompt, x, bos_token, eos_token, out);
    json_decref(m); json_decref(t); json_decref(x);
    return rc;
}
