// What several subcommands share: loading a model with its tokenizer and a thread pool.
#ifndef SLLM_CLI_COMMON_H
#define SLLM_CLI_COMMON_H
#include "model/model.h"
#include "text/tokenizer.h"
#include "base/threadpool.h"

typedef struct {
    sllm_model *m;
    tok *t;           // NULL when not requested
    tpool *pool;
} cli_model;

// Loads MODEL (and its tokenizer when want_tok). Prints "sllm CMD: <error>" and returns false on error.
bool cli_model_open(const char *cmd, const char *path, bool want_tok, int threads, cli_model *out);
void cli_model_close(cli_model *cm);
// Reads a whole file into a NUL-terminated buffer; prints an error naming the file on failure.
char *cli_read_file(const char *cmd, const char *path, size_t *len);
// Writes s as a JSON string literal (quotes, escapes, UTF-8 kept; invalid bytes as \ufffd).
void cli_json_str(FILE *f, const char *s, size_t len);
#endif
