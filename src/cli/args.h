// Small helpers shared by the subcommands: option value parsing with clear errors.
#ifndef SLLM_CLI_ARGS_H
#define SLLM_CLI_ARGS_H
#include <stdbool.h>
#include <stdint.h>

// Returns argv[*i + 1] and advances *i, or prints "sllm CMD: option OPT needs a value" and returns NULL.
const char *arg_value(const char *cmd, int argc, char **argv, int *i);
// Parse numbers; on failure print "sllm CMD: OPT: 'x' is not a valid ..." and return false.
bool arg_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
bool arg_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
// Prints "sllm CMD: unknown option 'x' (see sllm CMD --help)" and returns 2.
int arg_unknown(const char *cmd, const char *opt);
bool arg_is_help(const char *a);
#endif
