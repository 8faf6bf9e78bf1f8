// Errors are values: functions return SLLM_OK or an error code and record a message, naming the
// file/field/line at fault, that callers read with sllm_last_error(). The message is thread-local.
#ifndef SLLM_BASE_ERROR_H
#define SLLM_BASE_ERROR_H
#include "sllm.h"

// Sets the thread's last error message (printf-style) and returns `code` so callers can write
//   return err_set(SLLM_ERR_FORMAT, "%s: tensor '%s': bad shape", path, name);
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prepends context to the current message: "ctx: <old message>". Returns `code`.
int err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(void);
// The code of the last err_set on this thread (for internal helpers that return a bare -1 after
// setting a message, so the public entry point can return the precise code).
int err_code(void);
#endif
