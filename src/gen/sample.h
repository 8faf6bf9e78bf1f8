// Token sampling: repetition / frequency / presence penalties, then top-k, top-p, min-p on the
// temperature-1 distribution, then temperature, then a seeded draw (the order llama.cpp's default
// chain uses, so the same settings mean the same thing). temp <= 0 is greedy (argmax).
#ifndef SLLM_GEN_SAMPLE_H
#define SLLM_GEN_SAMPLE_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    float temp;              // 0 = greedy
    int top_k;               // 0 = off
    float top_p;             // 1 = off
    float min_p;             // 0 = off
    float repeat_penalty;    // 1 = off (llama.cpp semantics: divide positive logits, multiply negative)
    int repeat_last_n;       // window of recent tokens the penalties look at (-1 = all)
    float freq_penalty, presence_penalty;   // OpenAI semantics, 0 = off
    uint64_t seed;
} sample_params;

void sample_params_default(sample_params *p);   // temp 0.8, top_k 40, top_p 0.95, min_p 0.05, seed 0

typedef struct { int32_t id; float logit; float p; } sample_cand;

typedef struct sampler sampler;
sampler *sampler_new(const sample_params *p, int n_vocab);
void sampler_free(sampler *s);
void sampler_reset(sampler *s);                 // forget history (penalties), keep the RNG
// Records a token (prompt or generated) in the penalty history.
void sampler_accept(sampler *s, int32_t id);
// Optional filter (e.g. a grammar): return false to forbid a token. Called on candidates in
// descending probability order; may be NULL.
typedef bool (*sample_filter_fn)(void *ctx, int32_t id);
// Picks the next token from logits (n_vocab, modified in place by penalties).
// Returns the id, or -1 when the filter forbids every token.
int32_t sampler_sample(sampler *s, float *logits, sample_filter_fn filter, void *filter_ctx);
// Top-k probabilities of the temperature-1 distribution after penalties, sorted descending;
// call after sampler_sample on the same step. Returns how many were written (<= k).
int sampler_top_probs(const sampler *s, sample_cand *out, int k);
#endif
