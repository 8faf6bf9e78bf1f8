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

// ---- models ----
// Loads a .gguf file or a Hugging Face directory (config.json + *.safetensors). Weights are mmap'd
// and used as stored (quantized weights stay quantized). Sessions keep an f16 KV cache (as llama.cpp).
int sllm_model_load(const char *path, sllm_model **out);
void sllm_model_free(sllm_model *m);
int sllm_model_n_vocab(const sllm_model *m);
int sllm_model_n_ctx_train(const sllm_model *m);
const char *sllm_model_arch(const sllm_model *m);
// KV cache element type of the sessions made from now on: f16 != 0 (the default after sllm_model_load)
// or 0 for f32 (exact to the f32 arithmetic, twice the memory). Returns SLLM_OK.
int sllm_model_set_kv_f16(sllm_model *m, int f16);
// The same by name: "f16", "f32" or "q8_0" (half of f16's memory, as llama.cpp's -ctk / -ctv q8_0; the
// model's head dimension a multiple of 32). SLLM_ERR_ARG (sllm_last_error says why) for any other.
int sllm_model_set_kv_type(sllm_model *m, const char *type);

// ---- tokenizer (the model's own: GGUF metadata or tokenizer.json) ----
int sllm_tokenizer_load(const sllm_model *m, sllm_tokenizer **out);
void sllm_tokenizer_free(sllm_tokenizer *t);
// *ids is malloc'd (free()). add_special: BOS/EOS as the model is configured; parse_special:
// recognize special tokens such as <|im_start|> written in the text.
int sllm_tokenizer_encode(const sllm_tokenizer *t, const char *text, size_t len, int add_special,
                          int parse_special, int32_t **ids, int *n_ids);
// *text is malloc'd and NUL-terminated.
int sllm_tokenizer_decode(const sllm_tokenizer *t, const int32_t *ids, int n_ids, char **text, size_t *len);
int sllm_tokenizer_is_eog(const sllm_tokenizer *t, int32_t id);

// ---- sessions: KV cache + threads ----
// n_ctx <= 0: the model's training context capped at 4096; n_threads <= 0: all cores.
int sllm_session_new(const sllm_model *m, int n_ctx, int n_threads, sllm_session **out);
void sllm_session_free(sllm_session *s);
void sllm_session_reset(sllm_session *s);
int sllm_session_n_past(const sllm_session *s);
// Appends n tokens (batched prefill when n > 1) and writes the last token's logits (n_vocab floats)
// when logits is non-NULL.
int sllm_session_eval(sllm_session *s, const int32_t *ids, int n, float *logits);

// ---- generation ----
typedef struct {
    float temp, top_p, min_p, repeat_penalty, frequency_penalty, presence_penalty;
    int top_k, repeat_last_n;
    uint64_t seed;
} sllm_sample_params;
void sllm_sample_params_default(sllm_sample_params *p);   // llama.cpp's defaults (temp 0.8, top-k 40, ...)
// Streams text pieces (complete UTF-8) to on_text; return non-zero from it to stop.
typedef int (*sllm_text_fn)(void *user, const char *text, size_t len);
// Tokenizes prompt (BOS per the model, special tokens parsed), appends it to the session and generates
// up to n_predict tokens or until an end-of-generation token. *n_generated may be NULL.
int sllm_generate(sllm_session *s, const sllm_tokenizer *t, const char *prompt, const sllm_sample_params *p,
                  int n_predict, sllm_text_fn on_text, void *user, int *n_generated);

#ifdef __cplusplus
}
#endif
#endif
