#include "base/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];
static _Thread_local int g_code;

int err_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    g_code = code;
    return code;
}

int err_wrap(int code, const char *fmt, ...) {
    char prefix[512], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    // Precisions bound both parts so the result always fits (and gcc can prove it).
    snprintf(g_msg, sizeof g_msg, "%.500s: %.500s", prefix, old);
    return code;
}

void err_clear(void) { g_msg[0] = 0; g_code = SLLM_OK; }

int err_code(void) { return g_code; }

const char *sllm_last_error(void) { return g_msg[0] ? g_msg : "no error"; }
