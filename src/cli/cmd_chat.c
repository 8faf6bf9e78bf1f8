// sllm chat: interactive multi-turn chat with the model's own template, or a one-shot request that prints
// one OpenAI-shaped assistant message (content, reasoning_content, tool_calls).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "gen/chat.h"

static const char CHAT_HELP[] =
    "usage: sllm chat -m MODEL [options]                      interactive (lines from stdin)\n"
    "       sllm chat -m MODEL --messages M.json [options]    one reply, printed as a JSON message\n"
    "\n"
    "Chats with MODEL using its own chat template (GGUF tokenizer.chat_template, or the Hugging Face\n"
    "directory's chat_template.jinja / tokenizer_config.json; ChatML when it has none). Reasoning\n"
    "(<think>...</think>) is split out of the reply; tool calls are parsed into OpenAI tool_calls.\n"
    "Interactive commands: /think on|off, /reset (forget the conversation), /exit.\n"
    "\n"
    "  -m, --model MODEL          model file or directory (required)\n"
    "      --chat-template FILE   use this Jinja template instead of the model's\n"
    "      --system TEXT          system message (interactive)\n"
    "      --messages FILE        one-shot: the conversation (JSON array, or {\"messages\", \"tools\", \"kwargs\"})\n"
    "      --tools FILE           tool definitions (JSON array)\n"
    "      --tool-choice C        auto (default), none, required, or a function name (forces that call)\n"
    "      --parallel-tool-calls  with a forced call: allow several\n"
    "      --schema FILE          constrain the reply to instances of this JSON Schema\n"
    "      --grammar FILE         constrain the reply to this GBNF grammar\n"
    "      --think / --no-think   enable_thinking for the template (default: the template's own;\n"
    "                             constrained replies default to --no-think)\n"
    "      --kwargs JSON          more template variables\n"
    "  -n, --n-predict N          max tokens per reply (default 512; -1 = until the end)\n"
    "  -c, --ctx N                context size (default: the model's, at most 4096)\n"
    "  -t, --threads N            threads (default: all cores)\n"
    "      --temp T --top-k K --top-p P --min-p P --repeat-penalty R --seed S   sampling (as sllm run)\n"
    "      --verbose              timings to stderr\n";

typedef struct {
    bool tty;
    bool in_reasoning, any_reasoning;
} stream_ctx;

static void on_delta(const cp_delta *d, void *user) {
    stream_ctx *c = user;
    if (d->kind == CP_DELTA_REASONING) {
        if (!c->in_reasoning) { fputs(c->tty ? "\x1b[2m" : "<think>\n", stdout); c->in_reasoning = true; c->any_reasoning = true; }
        fwrite(d->text, 1, d->len, stdout);
    } else {
        if (c->in_reasoning) { fputs(c->tty ? "\x1b[0m\n" : "\n</think>\n", stdout); c->in_reasoning = false; }
        if (d->kind == CP_DELTA_CONTENT) fwrite(d->text, 1, d->len, stdout);
        else if (d->kind == CP_DELTA_TOOL_START) printf("%s[tool call %s] %s(", c->tty ? "\x1b[1m" : "", d->tool_id, d->tool_name);
        else if (d->kind == CP_DELTA_TOOL_ARGS) printf("%.*s)%s\n", (int)d->len, d->text, c->tty ? "\x1b[0m" : "");
    }
    fflush(stdout);
}

static json_t *load_json_opt(const char *path, const char *what) {
    json_t *j = NULL;
    if (chat_json_load(path, false, what, &j) != SLLM_OK) fprintf(stderr, "sllm chat: %s\n", sllm_last_error());
    return j;
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *tfile = NULL, *system = NULL, *mfile = NULL, *tools_file = NULL, *schema_file = NULL,
               *grammar_file = NULL, *choice = "auto", *kwargs = NULL;
    int64_t n_predict = 512, ctx = 0, threads = 0;
    int think = -1;
    bool verbose = false, parallel = false;
    chat_opts o;
    chat_opts_default(&o);
    sample_params *sp = &o.sp;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double d; int64_t n;
        if (arg_is_help(a)) { fputs(CHAT_HELP, stdout); return 0; }
#define VAL() do { if (!(v = arg_value("chat", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model = v; }
        else if (!strcmp(a, "--chat-template")) { VAL(); tfile = v; }
        else if (!strcmp(a, "--system")) { VAL(); system = v; }
        else if (!strcmp(a, "--messages")) { VAL(); mfile = v; }
        else if (!strcmp(a, "--tools")) { VAL(); tools_file = v; }
        else if (!strcmp(a, "--tool-choice")) { VAL(); choice = v; }
        else if (!strcmp(a, "--parallel-tool-calls")) parallel = true;
        else if (!strcmp(a, "--schema")) { VAL(); schema_file = v; }
        else if (!strcmp(a, "--grammar")) { VAL(); grammar_file = v; }
        else if (!strcmp(a, "--think")) think = 1;
        else if (!strcmp(a, "--no-think")) think = 0;
        else if (!strcmp(a, "--kwargs")) { VAL(); kwargs = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { VAL(); if (!arg_int("chat", a, v, -1, 1 << 24, &n_predict)) return 2; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) { VAL(); if (!arg_int("chat", a, v, 0, 1 << 24, &ctx)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!arg_int("chat", a, v, 0, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--temp")) { VAL(); if (!arg_float("chat", a, v, 0, 100, &d)) return 2; sp->temp = (float)d; }
        else if (!strcmp(a, "--top-k")) { VAL(); if (!arg_int("chat", a, v, 0, 1 << 30, &n)) return 2; sp->top_k = (int)n; }
        else if (!strcmp(a, "--top-p")) { VAL(); if (!arg_float("chat", a, v, 0, 1, &d)) return 2; sp->top_p = (float)d; }
        else if (!strcmp(a, "--min-p")) { VAL(); if (!arg_float("chat", a, v, 0, 1, &d)) return 2; sp->min_p = (float)d; }
        else if (!strcmp(a, "--repeat-penalty")) { VAL(); if (!arg_float("chat", a, v, 0.01, 100, &d)) return 2; sp->repeat_penalty = (float)d; }
        else if (!strcmp(a, "--seed")) { VAL(); if (!arg_int("chat", a, v, 0, INT64_MAX, &n)) return 2; sp->seed = (uint64_t)n; o.id_seed = (uint64_t)n + 1; }
        else if (!strcmp(a, "--verbose")) verbose = true;
        else return arg_unknown("chat", a);
#undef VAL
    }
    if (!model) { fprintf(stderr, "sllm chat: -m MODEL is required (see sllm chat --help)\n"); return 2; }
    if (schema_file && grammar_file) { fprintf(stderr, "sllm chat: give --schema or --grammar, not both\n"); return 2; }
    if (!strcmp(choice, "auto")) o.tool_choice = CHAT_TOOLS_AUTO;
    else if (!strcmp(choice, "none")) o.tool_choice = CHAT_TOOLS_NONE;
    else if (!strcmp(choice, "required")) o.tool_choice = CHAT_TOOLS_REQUIRED;
    else { o.tool_choice = CHAT_TOOLS_REQUIRED; o.tool_name = choice; }
    o.parallel_tool_calls = parallel;
    o.think = think;
    o.n_predict = (int)n_predict;

    int rc = 1;
    chat_request req = {0};
    req.add_generation_prompt = -1;
    json_t *tools = NULL, *schema = NULL, *kw = NULL, *history = NULL, *msg = NULL;
    char *tsrc = NULL, *gsrc = NULL, *line = NULL;
    cli_model cm = {0};
    chat_model chm = {0};
    bool have_chm = false;
    chat_session *cs = NULL;
    // inputs first, so bad files fail before the model loads
    if (mfile && chat_request_load(mfile, &req) != SLLM_OK) { fprintf(stderr, "sllm chat: %s\n", sllm_last_error()); goto done; }
    if (tools_file) {
        if (!(tools = load_json_opt(tools_file, tools_file))) goto done;
        if (json_is_object(tools) && json_object_get(tools, "tools")) { json_t *t = json_incref(json_object_get(tools, "tools")); json_decref(tools); tools = t; }
        if (!json_is_array(tools)) { fprintf(stderr, "sllm chat: %s: expected a JSON array of tools\n", tools_file); goto done; }
    }
    if (schema_file && !(schema = load_json_opt(schema_file, schema_file))) goto done;
    if (schema && !json_is_object(schema) && !json_is_boolean(schema)) { fprintf(stderr, "sllm chat: %s: a JSON Schema must be an object\n", schema_file); goto done; }
    size_t len;
    if (grammar_file && !(gsrc = cli_read_file("chat", grammar_file, &len))) goto done;
    if (tfile && !(tsrc = cli_read_file("chat", tfile, &len))) goto done;
    if (kwargs && chat_json_load(kwargs, true, "--kwargs", &kw) != SLLM_OK) { fprintf(stderr, "sllm chat: %s\n", sllm_last_error()); goto done; }
    if (kw && !json_is_object(kw)) { fprintf(stderr, "sllm chat: --kwargs: expected a JSON object\n"); goto done; }
    if (!kw && req.kwargs) kw = json_incref(req.kwargs);
    else if (kw && req.kwargs) { json_t *m = json_deep_copy(req.kwargs); json_object_update(m, kw); json_decref(kw); kw = m; }
    o.tools = tools ? tools : req.tools;
    o.kwargs = kw;
    o.schema = schema;
    o.grammar = gsrc;
    o.grammar_name = grammar_file;
    if (o.tool_choice == CHAT_TOOLS_REQUIRED && !(o.tools && json_array_size(o.tools))) {
        fprintf(stderr, "sllm chat: --tool-choice %s needs tools (--tools FILE)\n", choice);
        rc = 2;
        goto done;
    }

    if (!cli_model_open("chat", model, true, true, (int)threads, &cm)) goto done;
    if (chat_model_init(&chm, cm.m, cm.t, tsrc) != SLLM_OK) { fprintf(stderr, "sllm chat: %s\n", sllm_last_error()); goto done; }
    have_chm = true;
    if (chat_session_new(&chm, (int)ctx, cm.pool, &cs) != SLLM_OK) { fprintf(stderr, "sllm chat: %s\n", sllm_last_error()); goto done; }
    chat_stats st;

    if (mfile) {   // one-shot
        if (chat_complete(&chm, cs, req.messages, &o, NULL, NULL, &msg, &st) != SLLM_OK) {
            fprintf(stderr, "sllm chat: %s\n", sllm_last_error());
            goto done;
        }
        char *s = json_dumps(msg, JSON_COMPACT);
        if (!s) goto done;
        printf("%s\n", s);
        free(s);
        fflush(stdout);
        if (verbose)
            fprintf(stderr, "prompt %d tokens (%d cached), %d generated in %.1f ms (%.1f tok/s), render %.0f us, parse %.0f us\n",
                    st.gen.n_prompt + st.n_reused, st.n_reused, st.gen.n_gen, st.gen.decode_ms,
                    st.gen.n_gen > 1 ? (st.gen.n_gen - 1) * 1e3 / (st.gen.decode_ms + 1e-9) : 0.0, st.render_us, st.parse_us);
        rc = 0;
        goto done;
    }

    // interactive
    bool in_tty = isatty(0);
    stream_ctx sc = {.tty = isatty(1) != 0};
    history = json_array();
    if (system) json_array_append_new(history, json_pack("{s:s, s:s}", "role", "system", "content", system));
    size_t cap = 0;
    for (;;) {
        if (in_tty) { fputs("> ", stderr); fflush(stderr); }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            json_array_clear(history);
            if (system) json_array_append_new(history, json_pack("{s:s, s:s}", "role", "system", "content", system));
            fprintf(stderr, "(conversation reset)\n");
            continue;
        }
        if (!strncmp(line, "/think", 6)) {
            const char *arg = line + 6;
            while (*arg == ' ') arg++;
            if (!strcmp(arg, "on")) o.think = 1;
            else if (!strcmp(arg, "off")) o.think = 0;
            else { fprintf(stderr, "usage: /think on|off\n"); continue; }
            fprintf(stderr, "(thinking %s)\n", o.think ? "on" : "off");
            continue;
        }
        if (line[0] == '/') { fprintf(stderr, "unknown command '%s' (/think on|off, /reset, /exit)\n", line); continue; }
        json_array_append_new(history, json_pack("{s:s, s:s}", "role", "user", "content", line));
        sc.in_reasoning = false;
        if (chat_complete(&chm, cs, history, &o, on_delta, &sc, &msg, &st) != SLLM_OK) {
            fprintf(stderr, "\nsllm chat: %s\n", sllm_last_error());
            json_array_remove(history, json_array_size(history) - 1);
            continue;
        }
        if (sc.in_reasoning) { fputs(sc.tty ? "\x1b[0m\n" : "\n</think>\n", stdout); sc.in_reasoning = false; }
        putchar('\n');
        fflush(stdout);
        if (verbose)
            fprintf(stderr, "[%d prompt tokens, %d cached; %d generated, %.1f tok/s]\n", st.gen.n_prompt + st.n_reused,
                    st.n_reused, st.gen.n_gen, st.gen.n_gen > 1 ? (st.gen.n_gen - 1) * 1e3 / (st.gen.decode_ms + 1e-9) : 0.0);
        // the history keeps what the model said, in the shape templates expect
        json_object_del(msg, "parse_error");
        json_object_del(msg, "parse_error_message");
        if (json_is_null(json_object_get(msg, "content"))) json_object_set_new(msg, "content", json_string(""));
        json_array_append(history, msg);
        json_decref(msg);
        msg = NULL;
    }
    rc = 0;
done:
    free(line);
    json_decref(msg);
    json_decref(history);
    chat_session_free(cs);
    if (have_chm) chat_model_free(&chm);
    cli_model_close(&cm);
    json_decref(tools); json_decref(schema); json_decref(kw);
    free(tsrc); free(gsrc);
    chat_request_free(&req);
    return rc;
}
