// Internals shared by tokenizer.c, tokenizer_json.c, pretokenize.c, bpe.c and spm.c.
#ifndef SLLM_TEXT_TOKENIZER_IMPL_H
#define SLLM_TEXT_TOKENIZER_IMPL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "text/tokenizer.h"

// ---- growable byte string and list of pieces ----
typedef struct { char *p; size_t n, cap; } tok_buf;
int tok_buf_put(tok_buf *b, const void *s, size_t n);
void tok_buf_free(tok_buf *b);

// A list of pieces stored back to back in one buffer: piece i is buf.p[off[i] .. off[i]+len[i]).
typedef struct { tok_buf buf; size_t *off, *len; size_t n, cap; } tok_pieces;
int tok_pieces_add(tok_pieces *l, const char *s, size_t n);
void tok_pieces_clear(tok_pieces *l);
void tok_pieces_free(tok_pieces *l);

// ---- hash maps (hand-written: C has none, and we need a tight string->id map over up to
//      ~262k tokens plus a pair->rank map over ~500k merges) ----
typedef struct { const char *key; uint32_t len; int32_t val; } tok_smap_ent;
typedef struct { tok_smap_ent *e; size_t cap, n; } tok_smap;
int tok_smap_put(tok_smap *m, const char *key, uint32_t len, int32_t val);   // keeps first value
int32_t tok_smap_get(const tok_smap *m, const char *key, size_t len);          // -1 if absent
void tok_smap_free(tok_smap *m);

typedef struct { uint64_t key; int32_t rank, result; } tok_pmap_ent;
typedef struct { tok_pmap_ent *e; size_t cap, n; } tok_pmap;
int tok_pmap_put(tok_pmap *m, int32_t a, int32_t b, int32_t rank, int32_t result);  // keeps lowest rank
const tok_pmap_ent *tok_pmap_get(const tok_pmap *m, int32_t a, int32_t b);
void tok_pmap_free(tok_pmap *m);

// ---- compiled pre-tokenizer / normalizer steps ----
typedef struct {
    tok_pre_step s;
    pcre2_code *re;
} tok_pre_c;
typedef struct {
    tok_norm_step s;
    pcre2_code *re;
} tok_norm_c;

typedef struct {
    int32_t id;
    char *content; size_t len;
    bool special, lstrip, rstrip;
} tok_added_c;

struct tok {
    tok_model_kind model;
    int32_t n_vocab;
    char **text; uint32_t *text_len;      // token strings as stored in the vocab
    char **piece; uint32_t *piece_len;    // decoded bytes per token
    float *scores;
    uint8_t *types;
    tok_smap vocab;                       // all tokens
    tok_pmap merges;                      // BPE: (left id, right id) -> rank, merged id
    int32_t byte_tok[256];                // <0xNN> token per byte, -1 if absent
    char bl_enc[256][3];                  // byte-level: byte -> UTF-8 of its stand-in char
    bool byte_fallback, ignore_merges, add_space_prefix, strip_leading_space;
    tok_dec_kind decoder;
    int32_t n_pre; tok_pre_c *pre;
    int32_t n_norm; tok_norm_c *norm;
    int32_t n_added; tok_added_c *added;  // sorted by id
    tok_smap added_map;                   // content -> index into added
    uint8_t added_first[256];             // first bytes of added tokens
    uint32_t added_max_len;
    int32_t bos, eos, eot, eom, pad, unk;
    bool add_bos, add_eos;
    int32_t n_prefix, n_suffix, prefix[4], suffix[4];
    int32_t n_eog; int32_t *eog;
    uint8_t *is_special;                  // per token
    char *source;
};

// Compiles a PCRE2 pattern in UTF + UCP mode (JIT when available); errors name `what`.
int tok_regex_compile(const char *pattern, const char *what, pcre2_code **out);
// Pre-tokenizes one normalized section into pieces (appended to *out).
int tok_pretokenize(const tok *t, const char *s, size_t n, int section_index, tok_pieces *out);
// Normalizes one section; *out receives malloc'd bytes.
int tok_normalize(const tok *t, const char *s, size_t n, char **out, size_t *out_len);
// GPT-2 byte -> unicode mapping, as UTF-8 (up to 2 bytes each); and the reverse for decoding.
void tok_bytelevel_table(char enc[256][3]);
// Reverse table: rev[cp] = byte for code points < 324, -1 where cp stands for no byte.
void tok_bytelevel_reverse(int16_t rev[324]);

// Models: append ids for one pre-tokenized piece.
typedef struct { int32_t *v; int n, cap; } tok_ids;
int tok_ids_push(tok_ids *a, int32_t id);
int tok_bpe_piece(const tok *t, const char *s, size_t n, tok_ids *out);
int tok_spm_piece(const tok *t, const char *s, size_t n, tok_ids *out);

// Pre-tokenizer presets for GGUF tokenizer.ggml.pre.
tok_pre_kind tok_pre_from_name(const char *name);
int tok_pre_preset(tok_pre_kind k, tok_desc *d);
const char *tok_gpt2_pattern(void);   // the GPT-2 split pattern (ByteLevel use_regex)
#endif
