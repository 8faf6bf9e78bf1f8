// sllm — the public C API. Opaque handles, sllm_<noun>_<verb> functions, status codes.
// Every function that can fail returns SLLM_OK (0) or a negative SLLM_ERR_*; the message naming
// the file/field/line at fault is in sllm_last_error() (thread-local).
#ifndef SLLM_H
#define SLLM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

enum {
    SLLM_OK = 0,
    SLLM_ERR_IO = -1,          // file missing, unreadable, short read, cannot write
    SLLM_ERR_FORMAT = -2,      // corrupt or malformed file contents
    SLLM_ERR_UNSUPPORTED = -3, // valid but not supported (dtype, architecture, version)
    SLLM_ERR_ARG = -4,         // bad argument from the caller / command line
    SLLM_ERR_NOMEM = -5,
    SLLM_ERR_SHAPE = -6,       // tensor shape does not match what the architecture needs
    SLLM_ERR_TEXT = -7,        // invalid UTF-8 or untokenizable text
};

const char *sllm_last_error(void);
const char *sllm_version(void);

typedef struct sllm_model sllm_model;
typedef struct sllm_tokenizer sllm_tokenizer;
typedef struct sllm_session sllm_session;

#ifdef __cplusplus
}
#endif
#endif
