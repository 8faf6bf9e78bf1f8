// sllm tokenize: ids and pieces of a text with a model's tokenizer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"

static const char TOKENIZE_HELP[] =
    "usage: sllm tokenize -m MODEL [--no-bos] [--no-special] [--ids] [--json] (TEXT | -f FILE)\n"
    "\n"
    "Prints one line per token: id and the piece as the vocabulary stores it. --ids prints only the\n"
    "ids on one line; --json prints [{\"id\":..,\"piece\":..}, ...]. BOS is added when the model asks\n"
    "for it unless --no-bos; special tokens written in TEXT are recognized unless --no-special.\n";

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL;
    bool bos = true, special = true, ids_only = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (arg_is_help(a)) { fputs(TOKENIZE_HELP, stdout); return 0; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model = arg_value("tokenize", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (!(file = arg_value("tokenize", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--no-bos")) bos = false;
        else if (!strcmp(a, "--no-special")) special = false;
        else if (!strcmp(a, "--ids")) ids_only = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (a[0] == '-' && a[1]) return arg_unknown("tokenize", a);
        else if (!text) text = a;
        else { fprintf(stderr, "sllm tokenize: unexpected argument '%s' (quote the text)\n", a); return 2; }
    }
    if (!model || (!text && !file)) { fprintf(stderr, "sllm tokenize: need -m MODEL and TEXT or -f FILE\n"); return 2; }
    char *buf = NULL; size_t len;
    if (file) { if (!(buf = cli_read_file("tokenize", file, &len))) return 1; text = buf; }
    else len = strlen(text);
    cli_model cm;
    if (!cli_model_open("tokenize", model, true, false, 1, &cm)) { free(buf); return 1; }
    int32_t *ids = NULL; int n = 0, rc = 0;
    if (tok_encode(cm.t, text, len, bos, special, &ids, &n) != SLLM_OK) {
        fprintf(stderr, "sllm tokenize: %s\n", sllm_last_error());
        rc = 1;
    } else if (ids_only) {
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
    } else {
        if (json) putchar('[');
        for (int i = 0; i < n; i++) {
            const char *tt = tok_text(cm.t, ids[i]);
            if (json) {
                printf("%s{\"id\":%d,\"piece\":", i ? "," : "", ids[i]);
                cli_json_str(stdout, tt, strlen(tt));
                putchar('}');
            } else {
                printf("%6d  ", ids[i]);
                cli_json_str(stdout, tt, strlen(tt));
                putchar('\n');
            }
        }
        if (json) puts("]");
    }
    free(ids);
    cli_model_close(&cm);
    free(buf);
    return rc;
}
