// Grammar-constrained sampling: the sampler may only pick tokens whose text keeps the output a valid
// prefix of a GBNF grammar (text/grammar.h), a JSON Schema (text/json_schema.h) or a forced tool call.
//
// Per step (constrain_sample):
//   1. sample as usual on a copy of the logits and check only that token (grammar_check): when the model
//      already follows the grammar this is the whole cost;
//   2. when it is rejected, mask: logits of disallowed tokens become -INFINITY and the sampler runs again.
//      Two ways to build the mask, with the same result:
//      - top-k shortcut (top_k > 0 or greedy, no penalties): the sampler's distribution depends only on the
//        k highest logits, so walking the candidates in descending logit order and checking them one by
//        one until k allowed ones are found gives exactly the full mask's top k — a few hundred checks
//        instead of a whole-vocabulary pass (kept to the first CONSTRAIN_WALK candidates);
//      - otherwise the whole vocabulary: grammar_filter_vocab over the tokenizer's pieces (sorted once,
//        shared prefixes matched once), skipping every group of pieces whose first byte (or first two
//        bytes) the grammar rejects — at a JSON structural position that leaves a few hundred pieces.
//      The sampled token is checked first, as llama.cpp's common sampler does (it samples, checks the
//      token against the grammar, and only when rejected applies the grammar to all candidates and
//      samples again); the shortcuts after it are ours.
//   End-of-generation tokens are allowed only when grammar_can_end; other special/control tokens, empty
//   pieces and ids beyond the tokenizer (a model vocabulary padded past it) are never allowed.
//   3. constrain_accept appends the chosen token's text to the grammar state.
// A constrain object belongs to one sequence and one thread (grammar.h's rule).
#ifndef SLLM_GEN_CONSTRAIN_H
#define SLLM_GEN_CONSTRAIN_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "gen/generate.h"
#include "gen/sample.h"
#include "text/chat_parse.h"
#include "text/grammar.h"
#include "text/tokenizer.h"

#define CONSTRAIN_WALK 512   // candidates checked one by one before falling back to a whole mask

// The tokenizer's pieces prepared once for masks (~50 ms for 150k tokens); shared, read-only, by any number
// of constrain objects. n_vocab: the model's vocabulary size (>= the tokenizer's). The tokenizer must
// outlive it.
typedef struct constrain_vocab constrain_vocab;
constrain_vocab *constrain_vocab_new(const tok *t, int n_vocab);
void constrain_vocab_free(constrain_vocab *v);

typedef enum {
    CONSTRAIN_FAST = 0,        // check the sample, then top-k walk or whole mask (the default)
    CONSTRAIN_NO_WALK,         // check the sample, then always the whole mask (tests: same output as FAST)
    CONSTRAIN_ALWAYS_MASK,     // mask every step (what a filter over all candidates costs)
} constrain_mode;

typedef struct {
    int64_t steps, fast_ok, walks, masks;   // masks: whole-vocabulary passes
    double mask_ms;                          // time in walks + masks
} constrain_stats;

typedef struct constrain constrain;
// Takes ownership of g (freed with the constrain object, also on error).
int constrain_new(const constrain_vocab *v, grammar *g, constrain **out);
// GBNF text (name prefixes error messages, root_rule NULL = "root").
int constrain_new_gbnf(const constrain_vocab *v, const char *src, size_t len, const char *name, const char *root_rule,
                       constrain **out);
// Any JSON instance of the schema.
int constrain_new_schema(const constrain_vocab *v, const json_t *schema, constrain **out);
void constrain_free(constrain *c);
void constrain_set_mode(constrain *c, constrain_mode m);
// The sampler's settings (sampler.h keeps them private): needed for the top-k shortcut, which is exact
// only with top_k > 0 or greedy and no penalties. Without this call every rejection masks the whole
// vocabulary.
void constrain_set_sampling(constrain *c, const sample_params *sp);
const constrain_stats *constrain_get_stats(const constrain *c);
const grammar_state *constrain_state(const constrain *c);

// Picks the next token from logits (n_vocab; left unchanged). Returns the id, or -1 with the error set
// when the grammar allows no token (cannot happen for a grammar that can always finish, unless the
// vocabulary cannot spell the next character and no end-of-generation token exists).
int32_t constrain_sample(constrain *c, sampler *smp, const float *logits);
// Appends the token's text to the grammar state (end-of-generation tokens change nothing).
int constrain_accept(constrain *c, int32_t id);
// True when the output is a complete parse that cannot continue: generation should stop.
bool constrain_done(const constrain *c);

// GBNF for a forced tool call: one call to one of `tools` (OpenAI tool definitions, {"type": "function",
// "function": {"name", "parameters"}}), with arguments an instance of that tool's parameters schema, in
// the model's tool-call format:
//   HERMES         <tool_call>\n{"name": "NAME", "arguments": {...}}\n</tool_call>  (parallel: several, "\n" between)
//   LLAMA3         {"name": "NAME", "parameters": {...}}                              (never parallel)
//   GENERIC/AUTO   {"name": "NAME", "arguments": {...}}    (parallel: {"tool_calls": [{...}, ...]})
// only_name (may be NULL) restricts the call to that function. The start rule is CONSTRAIN_TOOLS_ROOT.
// Each tool's $defs / definitions are merged (a name defined differently by two tools is an error).
#define CONSTRAIN_TOOLS_ROOT "sllm_tool_calls"
int constrain_tools_gbnf(const json_t *tools, cp_format fmt, const char *only_name, bool parallel, char **out);
int constrain_new_tools(const constrain_vocab *v, const json_t *tools, cp_format fmt, const char *only_name,
                        bool parallel, constrain **out);

// gen_generate with a constraint (c may be NULL: unconstrained, the same loop). Tokens go through
// constrain_sample / constrain_accept; generation also stops (stopped_eog) when constrain_done.
// o->filter must be NULL (use c instead).
int constrain_generate(model_session *s, const tok *t, sampler *smp, constrain *c, const int32_t *prompt,
                       int n_prompt, const gen_opts *o, gen_token_fn fn, void *ctx, gen_stats *st);
#endif
