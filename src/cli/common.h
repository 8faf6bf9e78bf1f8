// What several subcommands share: loading a model with its tokenizer and a thread pool.
#ifndef SLLM_CLI_COMMON_H
#define SLLM_CLI_COMMON_H
#include "model/model.h"
#include "text/tokenizer.h"
#include "base/threadpool.h"
#include "gen/sample.h"

typedef struct {
    sllm_model *m;
    tok *t;           // NULL when not requested
    tpool *pool;
} cli_model;

// KV cache dtype of the models cli_model_open loads for inference (cli_model_kv_type; info calls that
// too, to report the cache's memory): DT_F16 (the default, as llama.cpp's), DT_F32 or DT_Q8_0, from the
// global option --kv-type (cli_global_flags).
extern dtype cli_kv_type;
// Takes the global options (--kv-type f16|f32|q8_0, anywhere after the command) out of argv, shifting the
// rest down. Returns 0, or prints an error and returns 2 on a bad value.
int cli_global_flags(int *argc, char **argv);
// Loads MODEL (and its tokenizer when want_tok). Prints "sllm CMD: <error>" and returns false on error.
// infer: the model will run forward passes (its KV cache type set from --kv-type, weights packed for this
// CPU's kernels, model_pack).
bool cli_model_open(const char *cmd, const char *path, bool want_tok, bool infer, int threads, cli_model *out);
void cli_model_close(cli_model *cm);
// Sets the model's KV cache type from --kv-type; prints "sllm CMD: PATH: <why>" and returns false when
// the model cannot take it (the caller closes the model).
bool cli_model_kv_type(const char *cmd, const char *path, cli_model *cm);
// Reads a whole file into a NUL-terminated buffer; prints an error naming the file on failure.
char *cli_read_file(const char *cmd, const char *path, size_t *len);
// Parses one sampling option at argv[*i] (--temp --top-k --top-p --min-p --repeat-penalty
// --repeat-last-n --frequency-penalty --presence-penalty --seed) into *sp, advancing *i past its value.
// Returns 1 when consumed, 0 when argv[*i] is not a sampling option, -1 on a bad value (message printed).
int cli_sample_flag(const char *cmd, int argc, char **argv, int *i, sample_params *sp);
// Sampling parameters for a model: llama.cpp's defaults, then the model's own generation_config.json,
// then every sampling option on the command line. Returns false (message printed) on error.
bool cli_sample_params(const char *cmd, const sllm_model *m, int argc, char **argv, sample_params *sp);
// Writes s as a JSON string literal (quotes, escapes, UTF-8 kept; invalid bytes as \ufffd).
void cli_json_str(FILE *f, const char *s, size_t len);
#endif
