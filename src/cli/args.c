#include "cli/args.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *arg_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "sllm %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool arg_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end; errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "sllm %s: %s: '%s' is not an integer in [%lld, %lld]\n", cmd, opt, s, (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

bool arg_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end; errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "sllm %s: %s: '%s' is not a number in [%g, %g]\n", cmd, opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

int arg_unknown(const char *cmd, const char *opt) {
    fprintf(stderr, "sllm %s: unknown option '%s' (see sllm %s --help)\n", cmd, opt, cmd);
    return 2;
}

bool arg_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }
