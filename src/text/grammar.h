// GBNF grammars (llama.cpp's grammar format) and an incremental matcher for constrained decoding.
//
// Format: rules `name ::= alternatives`, alternation `|`, grouping `( )`, repetition `* + ?` and `{m}`,
// `{m,}`, `{m,n}`, string literals "..." and character classes [a-z] [^...] with escapes \n \r \t \\ \"
// \xHH \uHHHH \UHHHHHHHH, `.` (any character), rule references, `#` comments; the start rule is `root`.
// A rule ends where the next `name ::=` begins. Errors name line:col of the source.
//
// Matching: a pushdown matcher over Unicode code points fed UTF-8 bytes (a token may end inside a
// multi-byte character). The state is a set of stacks; each stack is an interned linked list of grammar
// positions (node ids), so cloning a state copies a few integers and duplicate stacks collapse.
// Left recursion is rejected at parse time; the number of live stacks is capped (GRAMMAR_MAX_STACKS).
//
// Use from a sampler, per decoding step:
//   1. check the sampled token: grammar_check(st, piece, len) == 1 (cheap, one token);
//   2. if rejected, mask the vocabulary: grammar_filter_vocab(st, vocab, allowed) (pieces sorted once,
//      shared prefixes matched once) or grammar_filter_tokens(st, pieces, lens, n, allowed) for a candidate
//      list; EOS is allowed only when grammar_can_end(st); special/control tokens are the caller's business;
//   3. grammar_accept(st, piece, len) for the chosen token.
// Threading: a grammar and all states made from it share a node pool; use them from one thread at a time
// (one grammar per request/sequence).
#ifndef SLLM_TEXT_GRAMMAR_H
#define SLLM_TEXT_GRAMMAR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAMMAR_MAX_STACKS 4096

typedef struct grammar grammar;
typedef struct grammar_state grammar_state;
typedef struct grammar_vocab grammar_vocab;

// Parses GBNF text; `name` (file name or "<schema>") prefixes error messages. root_rule NULL means
// "root". Returns SLLM_OK and *out, or SLLM_ERR_FORMAT with "name:line:col: message".
int grammar_parse(const char *src, size_t len, const char *name, const char *root_rule, grammar **out);
void grammar_free(grammar *g);

// Matcher state at the start of the root rule; NULL with the error set on failure.
grammar_state *grammar_state_new(grammar *g);
grammar_state *grammar_state_clone(const grammar_state *s);
void grammar_state_free(grammar_state *s);
// Appends text: 1 = accepted (state advanced), 0 = not a valid continuation (state unchanged),
// negative = error (too many stacks / out of memory; state unchanged, message set).
int grammar_accept(grammar_state *s, const char *text, size_t n);
// Like grammar_accept but never changes the state.
int grammar_check(const grammar_state *s, const char *text, size_t n);
// True when the input so far is a complete parse of root (EOS may be sampled).
bool grammar_can_end(const grammar_state *s);
// True when some non-empty continuation exists (false: only EOS is possible, or nothing).
bool grammar_can_continue(const grammar_state *s);

// allowed[i] = 1 when appending pieces[i] (lens[i] bytes) keeps the input a valid prefix, else 0.
// Empty pieces are allowed. Pieces are sorted internally so common prefixes are matched once.
// Returns the number allowed, or negative on error.
int grammar_filter_tokens(const grammar_state *s, const char *const *pieces, const size_t *lens, int n,
                          uint8_t *allowed);
// A vocabulary prepared once (pieces copied and sorted) for repeated whole-vocabulary masks.
grammar_vocab *grammar_vocab_new(const char *const *pieces, const size_t *lens, int n);
void grammar_vocab_free(grammar_vocab *v);
int grammar_filter_vocab(const grammar_state *s, const grammar_vocab *v, uint8_t *allowed);

// Read-only view of the parsed rules (generators, debugging). Rules made for groups and repetitions
// are named "<parent>_<n>". ranges holds n_ranges (lo, hi) pairs of code points, sorted and merged.
typedef struct {
    bool is_rule;
    int rule;
    bool negated;
    int n_ranges;
    const uint32_t *ranges;
} grammar_sym;
int grammar_n_rules(const grammar *g);
int grammar_root(const grammar *g);
const char *grammar_rule_name(const grammar *g, int rule);
int grammar_rule_n_alts(const grammar *g, int rule);
int grammar_alt_len(const grammar *g, int rule, int alt);
grammar_sym grammar_alt_sym(const grammar *g, int rule, int alt, int i);
#endif
