// sllm template: print the prompt a chat template renders for a conversation, byte for byte.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "gen/chat.h"
#include "text/chat_template.h"

static const char TEMPLATE_HELP[] =
    "usage: sllm template (-m MODEL | --chat-template FILE.jinja) --messages M.json [options]\n"
    "\n"
    "Renders a chat template over a conversation and prints the prompt exactly (no newline added).\n"
    "The template is the model's own (GGUF tokenizer.chat_template, or chat_template.jinja /\n"
    "tokenizer_config.json in a Hugging Face directory; ChatML when it has none) or FILE.jinja.\n"
    "M.json is a JSON array of OpenAI-style messages, or an object {\"messages\": [...], \"tools\": [...],\n"
    "\"kwargs\": {...}, \"add_generation_prompt\": bool}; options override what the file says.\n"
    "\n"
    "  -m, --model MODEL          take the template and bos/eos tokens from MODEL\n"
    "      --chat-template FILE   template file (Jinja) instead\n"
    "      --messages FILE        the conversation (required)\n"
    "      --tools FILE           tool definitions (JSON array of {\"type\": \"function\", \"function\": ...})\n"
    "      --kwargs JSON          more template variables, e.g. '{\"enable_thinking\": false}'\n"
    "      --no-think             same as --kwargs '{\"enable_thinking\": false}'\n"
    "      --no-generation-prompt do not end with the assistant header (default: add it)\n"
    "      --generation-prompt    add it even when the file says otherwise\n"
    "      --bos TEXT, --eos TEXT bos_token / eos_token (default: the model's; none with --chat-template)\n";

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *tfile = NULL, *mfile = NULL, *tools_file = NULL, *kwargs = NULL, *bos = NULL, *eos = NULL;
    int gen_prompt = -1;
    bool no_think = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { fputs(TEMPLATE_HELP, stdout); return 0; }
#define VAL() do { if (!(v = arg_value("template", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model = v; }
        else if (!strcmp(a, "--chat-template")) { VAL(); tfile = v; }
        else if (!strcmp(a, "--messages")) { VAL(); mfile = v; }
        else if (!strcmp(a, "--tools")) { VAL(); tools_file = v; }
        else if (!strcmp(a, "--kwargs")) { VAL(); kwargs = v; }
        else if (!strcmp(a, "--bos")) { VAL(); bos = v; }
        else if (!strcmp(a, "--eos")) { VAL(); eos = v; }
        else if (!strcmp(a, "--no-generation-prompt")) gen_prompt = 0;
        else if (!strcmp(a, "--generation-prompt")) gen_prompt = 1;
        else if (!strcmp(a, "--no-think")) no_think = true;
        else return arg_unknown("template", a);
#undef VAL
    }
    if (!model == !tfile) { fprintf(stderr, "sllm template: give -m MODEL or --chat-template FILE (see sllm template --help)\n"); return 2; }
    if (!mfile) { fprintf(stderr, "sllm template: --messages FILE is required\n"); return 2; }

    int rc = 1;
    chat_request req = {0};
    json_t *tools = NULL, *kw = NULL;
    char *src = NULL, *out = NULL;
    cli_model cm = {0};
    chat_model chm = {0};
    bool have_chm = false;
    if (chat_request_load(mfile, &req) != SLLM_OK) goto err;
    if (tools_file && chat_json_load(tools_file, false, tools_file, &tools) != SLLM_OK) goto err;
    if (tools && json_is_object(tools) && json_object_get(tools, "tools")) {
        json_t *t = json_incref(json_object_get(tools, "tools"));
        json_decref(tools);
        tools = t;
    }
    if (tools && !json_is_array(tools)) { fprintf(stderr, "sllm template: %s: expected a JSON array of tools\n", tools_file); goto done; }
    if (kwargs && chat_json_load(kwargs, true, "--kwargs", &kw) != SLLM_OK) goto err;
    if (kw && !json_is_object(kw)) { fprintf(stderr, "sllm template: --kwargs: expected a JSON object\n"); goto done; }
    json_t *extra = req.kwargs ? json_deep_copy(req.kwargs) : json_object();
    if (kw) json_object_update(extra, kw);
    if (no_think) json_object_set_new(extra, "enable_thinking", json_false());
    bool add_gen = gen_prompt >= 0 ? gen_prompt : req.add_generation_prompt >= 0 ? req.add_generation_prompt : true;
    const json_t *use_tools = tools ? tools : req.tools;
    if (tfile) {
        size_t n;
        if (!(src = cli_read_file("template", tfile, &n))) { json_decref(extra); goto done; }
    } else {
        if (!cli_model_open("template", model, true, false, 1, &cm)) { json_decref(extra); goto done; }
        if (chat_model_init(&chm, cm.m, cm.t, NULL) != SLLM_OK) { json_decref(extra); goto err; }
        have_chm = true;
        const char *s = use_tools && json_array_size(use_tools) && chm.template_tools ? chm.template_tools : chm.template_src;
        if (s && !(src = strdup(s))) { json_decref(extra); goto done; }
        if (!bos) bos = chm.bos;
        if (!eos) eos = chm.eos;
    }
    int r = chat_render(src, req.messages, use_tools, add_gen, extra, bos, eos, &out);
    json_decref(extra);
    if (r != SLLM_OK) goto err;
    fwrite(out, 1, strlen(out), stdout);
    fflush(stdout);
    rc = 0;
    goto done;
err:
    fprintf(stderr, "sllm template: %s\n", sllm_last_error());
done:
    free(out);
    free(src);
    if (have_chm) chat_model_free(&chm);
    cli_model_close(&cm);
    json_decref(tools);
    json_decref(kw);
    chat_request_free(&req);
    return rc;
}
