// The generation loop shared by `sllm run`, chat and the server: prefill the prompt in one batch,
// then decode token by token, sampling, streaming UTF-8-safe text to a callback, stopping at an
// end-of-generation token or after n_predict tokens.
#ifndef SLLM_GEN_GENERATE_H
#define SLLM_GEN_GENERATE_H
#include <stdbool.h>
#include <stdint.h>
#include "model/model.h"
#include "text/tokenizer.h"
#include "gen/sample.h"

// The tokenizer that belongs to a model (GGUF metadata, or tokenizer.json in its HF directory; the
// eos_token_id list of an HF generation_config.json is added to the end-of-generation set).
int gen_load_tokenizer(const sllm_model *m, tok **out);
// Sampling defaults the model ships (HF generation_config.json: temperature, top_p, top_k, min_p,
// repetition_penalty, do_sample=false -> greedy) applied over *p; a no-op for GGUF files.
int gen_model_sample_defaults(const sllm_model *m, sample_params *p);

// A sampling step that replaces sampler_sample (e.g. grammar-constrained sampling): returns the token
// id, or -1 with the error set. accept records the chosen token (may be NULL); done says that nothing
// but an end token could follow (may be NULL).
typedef struct {
    int32_t (*sample)(void *ctx, sampler *smp, float *logits);
    int (*accept)(void *ctx, int32_t id);
    bool (*done)(void *ctx);
    void *ctx;
} gen_step_hook;

typedef struct {
    int n_predict;          // max new tokens (< 0: until end of generation or context full)
    bool ignore_eog;        // keep going past end-of-generation tokens (benchmarks)
    sample_filter_fn filter; void *filter_ctx;   // optional per-token filter
    const gen_step_hook *hook;                   // optional replacement of the sampling step
} gen_opts;

typedef struct {
    int n_prompt, n_gen;
    double prefill_ms, decode_ms;
    bool stopped_eog;       // ended on an end-of-generation token
} gen_stats;

// Called once per generated token. text/len: the newly completed UTF-8 text (may be empty while a
// multi-byte character is pending). smp: for sampler_top_probs. Return false to stop.
// A last call with id -1 flushes text still held by the UTF-8 decoder at the end.
typedef bool (*gen_token_fn)(void *ctx, int32_t id, const char *text, size_t len, const sampler *smp);

// Runs the prompt through the session (appending to what it already holds) and generates.
int gen_generate(model_session *s, const tok *t, sampler *smp, const int32_t *prompt, int n_prompt,
                 const gen_opts *o, gen_token_fn fn, void *ctx, gen_stats *st);
double gen_now_ms(void);
#endif
