// Tokenizers: byte-level BPE (GPT-2 / Llama 3 / Qwen2 style), BPE with byte fallback as used by
// SentencePiece-converted tokenizer.json files (Gemma 3, Llama 2), and the SentencePiece score-based
// merge algorithm used by GGUF "llama" vocabularies (Llama 2, Phi-3, Gemma).
//
// A tokenizer is built from a neutral description (tok_desc) that the two loaders fill: one from
// GGUF metadata (tokenizer.ggml.*), one from a Hugging Face tokenizer.json (+ tokenizer_config.json).
// Encoding = split out added/special tokens -> normalize each remaining section -> pre-tokenize
// (regex splits, byte-level mapping, metaspace) -> model (BPE or SPM) -> add BOS/EOS.
#ifndef SLLM_TEXT_TOKENIZER_H
#define SLLM_TEXT_TOKENIZER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "formats/gguf.h"

typedef enum { TOK_MODEL_BPE = 1, TOK_MODEL_SPM = 2 } tok_model_kind;

// Token types, numbered as GGUF's tokenizer.ggml.token_type.
typedef enum {
    TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3,
    TOK_T_USER_DEFINED = 4, TOK_T_UNUSED = 5, TOK_T_BYTE = 6
} tok_type;

// Named pre-tokenizer presets (GGUF tokenizer.ggml.pre); TOK_PRE_CUSTOM = steps given explicitly.
typedef enum {
    TOK_PRE_DEFAULT = 0,  // SPM: none; BPE: GPT-2 regex
    TOK_PRE_GPT2, TOK_PRE_LLAMA3, TOK_PRE_QWEN2, TOK_PRE_DEEPSEEK_LLM, TOK_PRE_FALCON,
    TOK_PRE_STARCODER, TOK_PRE_CUSTOM
} tok_pre_kind;

// One pre-tokenizer step (applied to every piece produced by the previous step).
typedef enum { TOK_STEP_SPLIT = 1, TOK_STEP_BYTELEVEL, TOK_STEP_METASPACE } tok_step_kind;
typedef enum {
    TOK_SPLIT_ISOLATED = 0, TOK_SPLIT_REMOVED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS
} tok_split_behavior;
typedef enum { TOK_PREPEND_ALWAYS = 0, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER } tok_prepend_scheme;
typedef struct {
    tok_step_kind kind;
    char *pattern;             // SPLIT: PCRE2 pattern (UTF + UCP); literal strings are escaped
    tok_split_behavior behavior;
    bool invert;               // SPLIT: keep only the matches
    bool add_prefix_space;     // BYTELEVEL / METASPACE
    bool use_regex;            // BYTELEVEL: split with the GPT-2 regex first
    char *replacement;         // METASPACE (default "▁")
    tok_prepend_scheme prepend;
    bool split;                // METASPACE: split before each replacement char
} tok_pre_step;

// Normalizer steps (applied in order to each section of text between added tokens).
typedef enum {
    TOK_NORM_NFC = 1, TOK_NORM_NFKC, TOK_NORM_NFD, TOK_NORM_NFKD, TOK_NORM_REPLACE,
    TOK_NORM_REPLACE_REGEX, TOK_NORM_PREPEND, TOK_NORM_LOWERCASE, TOK_NORM_STRIP
} tok_norm_kind;
typedef struct {
    tok_norm_kind kind;
    char *a, *b;               // REPLACE: a -> b; PREPEND: a
    bool left, right;          // STRIP
} tok_norm_step;

// Decoder: how token text maps back to bytes.
typedef enum {
    TOK_DEC_BYTELEVEL = 1,     // GPT-2 byte<->unicode table
    TOK_DEC_SPM,               // "▁" -> " ", <0xNN> -> byte (Replace + ByteFallback + Fuse)
} tok_dec_kind;

typedef struct {
    int32_t id;
    char *content;
    bool special;              // recognized only when parse_special is true
    bool lstrip, rstrip;       // swallow whitespace on that side
    bool normalized;
} tok_added;

// Neutral description of a tokenizer; the loaders fill it, tok_build consumes it.
typedef struct {
    tok_model_kind model;
    int32_t n_vocab;
    char **tokens;             // n_vocab strings (NUL-terminated; NULL = hole, filled as unused)
    float *scores;             // SPM scores, or NULL
    uint8_t *types;            // tok_type per token, or NULL (all normal)
    int64_t n_merges;
    char **merges_l, **merges_r;   // BPE merge pairs, rank = index
    bool byte_fallback;        // BPE: unknown chars -> <0xNN> tokens
    bool ignore_merges;        // BPE: a piece that is a whole vocab token is emitted as is
    int32_t n_pre;
    tok_pre_step *pre;
    int32_t n_norm;
    tok_norm_step *norm;
    tok_dec_kind decoder;
    bool add_space_prefix;     // SPM (GGUF): prepend " " to each raw section at start/after special
    bool strip_leading_space;  // decode: drop one leading space of the output
    int32_t n_added;
    tok_added *added;          // tokens split out of raw text before normalization
    int32_t bos, eos, eot, eom, pad, unk;   // -1 when absent
    bool add_bos, add_eos;
    int32_t n_prefix, n_suffix;             // post-processor ids around the sequence
    int32_t prefix[4], suffix[4];
    char *source;              // file the description came from (for messages)
} tok_desc;

void tok_desc_free(tok_desc *d);   // frees the contents, not d itself

typedef struct tok tok;

// Builds a tokenizer from a description (the description may be freed afterwards).
int tok_build(const tok_desc *d, tok **out);
// Fills a description from GGUF metadata / a tokenizer.json (file, or directory holding it).
int tok_desc_from_gguf(const gguf_file *f, tok_desc *d);
int tok_desc_from_hf(const char *path, tok_desc *d);

int tok_load_gguf(const gguf_file *f, tok **out);
int tok_load_hf(const char *dir_or_tokenizer_json, tok **out);
void tok_free(tok *t);
// Writes a vocabulary-only GGUF holding a byte-level BPE tokenizer with no merges (256 byte tokens +
// <|endoftext|> (BOS), <|im_start|>, <|im_end|> (EOS)) and a ChatML template: what a model trained
// from scratch needs when no real tokenizer is at hand (`sllm init --vocab bytes`).
int tok_write_byte_vocab(const char *path);

// Encodes `len` bytes of UTF-8 text. add_special: add BOS/EOS as the tokenizer is configured.
// parse_special: recognize special (control) tokens written in the text; non-special added
// (user-defined) tokens are always recognized, as in HF tokenizers and llama.cpp.
// *ids is malloc'd (free it); invalid UTF-8 -> SLLM_ERR_TEXT naming the byte offset.
int tok_encode(const tok *t, const char *text, size_t len, bool add_special, bool parse_special,
               int32_t **ids, int *n);

int32_t tok_n_vocab(const tok *t);
int32_t tok_bos(const tok *t);
int32_t tok_eos(const tok *t);
int32_t tok_eot(const tok *t);         // end of turn (e.g. <|eot_id|>, <|im_end|>, <end_of_turn>), -1 if none
int32_t tok_pad(const tok *t);
bool tok_is_eog(const tok *t, int32_t id);      // ends generation: eos, eot, eom and known end markers
// Adds an end-of-generation id (e.g. from generation_config.json's eos_token_id list).
int tok_add_eog(tok *t, int32_t id);
bool tok_is_special(const tok *t, int32_t id);  // control / special added token
int32_t tok_find(const tok *t, const char *text);  // exact token text -> id, -1 if none
bool tok_add_bos(const tok *t);
// The token's stored text (vocab form: "Ġhello", "▁hello", "<0x0A>"), NUL-terminated.
const char *tok_text(const tok *t, int32_t id);
// The bytes this token decodes to (may be a partial UTF-8 sequence). NULL for a bad id.
const char *tok_piece(const tok *t, int32_t id, size_t *len);

// Decodes ids to text. Invalid UTF-8 (partial byte tokens) becomes U+FFFD, as HF decoders do.
// skip_special: drop control/special tokens. *out is malloc'd and NUL-terminated.
int tok_decode(const tok *t, const int32_t *ids, int n, bool skip_special, char **out, size_t *len);

// Incremental decoder for streaming: feed one id at a time, get back only complete UTF-8
// characters (pending bytes of a partial character are held until they complete). The
// concatenated output of feed()s + finish() equals tok_decode of the same ids.
typedef struct tok_stream tok_stream;
tok_stream *tok_stream_new(const tok *t, bool skip_special);
// *text points into the stream's buffer, valid until the next call.
int tok_stream_feed(tok_stream *s, int32_t id, const char **text, size_t *len);
int tok_stream_finish(tok_stream *s, const char **text, size_t *len);
void tok_stream_free(tok_stream *s);

// UTF-8 helpers shared by the tokenizer files.
// Returns the length of the valid character at s (1..4), 0 if invalid (then *bad = length of the
// maximal invalid subpart, >= 1), or -1 if s[0..n) is a valid but incomplete prefix.
int tok_utf8_next(const uint8_t *s, size_t n, size_t *bad);
#endif
