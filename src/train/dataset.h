// Training data: loading files into records, tokenizing them into samples with loss masks, and
// streaming batches (packing, padding, mixing, validation split, seeded shuffling, resumable position).
//
// 1. ds_load reads one file into records. Formats (by extension, or opts.format):
//    .txt    raw text for continued pretraining: documents separated by blank lines (default), one per
//            line (DS_TXT_LINES), or by a separator string such as "<|endoftext|>" (opts.txt_separator)
//    .jsonl  one JSON object per line; .json: a JSON array of the same objects. An object is
//              {"text": ...}                                   -> text record (CPT)
//              {"messages": [{"role","content"}, ...]}         -> chat record (kept as given)
//              {"conversations": [{"from","value"}, ...]}      -> chat (ShareGPT: human/gpt/system)
//              {"prompt": ..., "completion": ...}              -> chat: user, assistant
//              {"instruction", "input"?, "output"}             -> chat: user = instruction [+ "\n\n" + input]
//    .csv    RFC 4180 with a header row: question/answer columns found by name (Q/question/prompt/
//            instruction, A/answer/response/output/completion) or the first two columns -> chat
//    Malformed records are reported as "FILE:LINE: reason": DS_ON_ERROR_SKIP warns and counts them,
//    DS_ON_ERROR_FAIL returns SLLM_ERR_FORMAT with that message. Empty samples are skipped with a warning.
//
// 2. ds_tokenize turns records into token samples through two callbacks, so this layer does not depend
//    on a particular tokenizer or template engine:
//    - tokenize(text) -> ids. It must NOT add BOS/EOS itself (ds_tok_opts.bos_id/eos_id do that) and it
//      must map special-token text in `text` ("<|im_end|>") to the special ids.
//    - render(messages prefix, add_generation_prompt) -> text: the chat template applied to a prefix of
//      the conversation. Assistant spans are found prefix by prefix, which works with any template:
//        start of assistant turn i = len(render(messages[:i], add_generation_prompt=1))
//        end   of assistant turn i = len(render(messages[:i+1], add_generation_prompt=0))
//      each checked to be a prefix of render(messages, 0), the text that is trained on. The span covers
//      the assistant content AND the template's end-of-turn text ("<|im_end|>"); whitespace after it
//      (the template's separator "\n") is left out. A turn whose prefix renders are not a prefix of the
//      whole (e.g. Qwen3 drops earlier turns' <think> blocks) gets no loss, with a warning; a sample
//      with no trainable turn is dropped.
//    The text is tokenized segment by segment (each non-assistant stretch and each assistant span
//    separately, then concatenated), so token boundaries coincide with span boundaries and the mask is
//    exact. A token "has loss" when it is a prediction target: in a row, target[t] = token[t+1] when
//    token t+1 has loss and belongs to the same document, else -1.
//
// 3. ds_loader streams batches from one or several tokenized corpora mixed by weight. CPT corpora are
//    packed: documents are concatenated and cut into rows of T+1 tokens (a document may continue into
//    the next row, restarting at position 0). SFT corpora give one sample per row padded to T+1, or
//    (opts.pack) several whole samples per row. Every row position carries pos (position inside its
//    document) and doc_start (row index where its document began) for attention_fwd's doc_start, and
//    no target crosses a document boundary. The draw order of an epoch is a pure function of (seed,
//    epoch), so a position (epoch, index, offset) saved at a batch boundary resumes the same batches.
#ifndef SLLM_TRAIN_DATASET_H
#define SLLM_TRAIN_DATASET_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- records
typedef enum { DS_REC_TEXT, DS_REC_CHAT } ds_rec_kind;

typedef struct {
    ds_rec_kind kind;
    char *text;          // DS_REC_TEXT: NUL-terminated
    size_t len;
    json_t *messages;    // DS_REC_CHAT: array of {"role": .., "content": ..} (owned reference)
    int64_t line;        // 1-based line in the file where the record starts
} ds_record;

typedef enum { DS_FMT_AUTO, DS_FMT_TXT, DS_FMT_JSONL, DS_FMT_JSON, DS_FMT_CSV } ds_format;
typedef enum { DS_ON_ERROR_SKIP, DS_ON_ERROR_FAIL } ds_error_policy;
typedef enum { DS_TXT_PARAGRAPHS, DS_TXT_LINES } ds_txt_split;

typedef struct {
    ds_format format;
    ds_error_policy on_error;     // default SKIP
    ds_txt_split txt_split;       // default: blank-line separated documents
    const char *txt_separator;    // if set, .txt documents are split on this string instead
    const char *status_keep;      // if set, records whose "status" string differs are filtered out (e.g. "ok")
    const char *system_prompt;    // if set, prepended as a system message to chat records without one
    const char *csv_prompt_col, *csv_response_col;   // override CSV column names
    int max_warnings;             // warnings printed (default 10 when 0; -1 none); all are counted
    void (*warn)(void *ctx, const char *msg);        // replaces printing to stderr
    void *warn_ctx;
} ds_load_opts;

typedef struct {
    int64_t n_records;      // records kept
    int64_t n_malformed;    // malformed records skipped
    int64_t n_empty;        // empty samples skipped
    int64_t n_filtered;     // records removed by status_keep
} ds_load_stats;

typedef struct ds_source ds_source;
int ds_load(const char *path, const ds_load_opts *opts, ds_source **out);
void ds_source_free(ds_source *s);
int64_t ds_source_count(const ds_source *s);
const ds_record *ds_source_get(const ds_source *s, int64_t i);
const ds_load_stats *ds_source_stats(const ds_source *s);
const char *ds_source_path(const ds_source *s);

// ---------------------------------------------------------------- tokenizing
// ids: malloc'd by the callee, freed by the caller. Return SLLM_OK or an error (message set).
typedef int (*ds_tokenize_fn)(void *ctx, const char *text, size_t n, int32_t **ids, int *n_ids);
// Renders the conversation `messages` (a JSON array, a prefix of the sample's messages). *text is
// malloc'd by the callee. Return SLLM_OK or an error.
typedef int (*ds_render_fn)(void *ctx, const json_t *messages, int add_generation_prompt, char **text, size_t *len);

typedef enum { DS_CPT, DS_SFT } ds_mode;
typedef enum { DS_LONG_TRUNCATE, DS_LONG_DROP } ds_long_policy;

typedef struct {
    ds_mode mode;
    ds_tokenize_fn tokenize;
    void *tok_ctx;
    ds_render_fn render;          // needed for chat records
    void *render_ctx;
    int32_t bos_id, eos_id;       // -1: none. BOS is prepended unless the text already starts with it;
                                  // EOS is appended to text records (the template ends chat turns itself)
    int loss_on_prompt;           // SFT chat: 1 = every token has loss (default 0: assistant turns only)
    int64_t max_tokens;           // 0: no limit. Longer samples are truncated or dropped (long_policy)
    ds_long_policy long_policy;   // SFT; CPT always truncates (packing already splits long documents)
    int max_warnings;             // as in ds_load_opts
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
} ds_tok_opts;

typedef struct {
    int64_t n_samples, n_tokens, n_loss_tokens;
    int64_t n_truncated, n_dropped_long, n_dropped_no_loss, n_empty, n_unstable_turns;
} ds_tok_stats;

typedef struct ds_corpus ds_corpus;
int ds_tokenize(const ds_source *src, const ds_tok_opts *opts, ds_corpus **out);
void ds_corpus_free(ds_corpus *c);
int64_t ds_corpus_count(const ds_corpus *c);
// Sample i: n tokens and their loss flags (1 = the token is a training target).
void ds_corpus_sample(const ds_corpus *c, int64_t i, const int32_t **ids, const uint8_t **loss, int64_t *n);
const ds_tok_stats *ds_corpus_stats(const ds_corpus *c);

// Assistant spans of one conversation (see above): *text = render(messages, 0); spans[2k], spans[2k+1]
// = [start, end) byte offsets of the k-th trainable assistant turn; *n_unstable = turns left out.
int ds_chat_spans(ds_render_fn render, void *ctx, const json_t *messages, char **text, size_t *len,
                  size_t **spans, int *n_spans, int *n_unstable);

// ---------------------------------------------------------------- batches
typedef struct {
    int B, T;
    int32_t *tokens;      // (B, T) inputs
    int32_t *targets;     // (B, T) next token, or -1 (no loss: prompt, padding, document boundary)
    int32_t *pos;         // (B, T) position within the document
    int32_t *doc_start;   // (B, T) index in the row where the document of this position begins
    int64_t n_targets;    // targets != -1: sum over micro-batches to normalise the loss (optim.h)
    int n_rows;           // rows holding data (< B only for the last validation batch)
} ds_batch;
int ds_batch_alloc(ds_batch *b, int B, int T);
void ds_batch_free(ds_batch *b);

typedef struct {
    int B, T;
    int pack;               // SFT corpora: pack several whole samples per row (default: one per row, padded)
    int32_t pad_id;
    uint64_t seed;
    int no_shuffle;         // keep file order (default: reshuffle every epoch)
    double val_fraction;    // per corpus: fraction held out for validation
    int64_t val_count;      // per corpus: count held out (overrides val_fraction when > 0)
    int64_t epoch_len;      // draws per epoch; 0: one pass over corpus 0 (ceil(n_train0 / weight0))
} ds_loader_opts;

typedef struct { int64_t epoch, index, offset; } ds_pos;   // offset: tokens of draw `index` already used

typedef struct ds_loader ds_loader;
// weights: NULL or n values > 0 (normalised). The corpora must outlive the loader.
int ds_loader_new(ds_corpus *const *corpora, const double *weights, int n, const ds_loader_opts *opts,
                  ds_loader **out);
void ds_loader_free(ds_loader *l);
int ds_loader_next(ds_loader *l, ds_batch *b);           // next training batch (endless; epochs roll over)
ds_pos ds_loader_pos(const ds_loader *l);
int ds_loader_seek(ds_loader *l, ds_pos pos);
int64_t ds_loader_epoch_len(const ds_loader *l);
int64_t ds_loader_n_train(const ds_loader *l, int corpus);
int64_t ds_loader_n_val(const ds_loader *l, int corpus);
// The draw at (epoch, index): corpus and sample index. For tests and logging.
int ds_loader_draw(ds_loader *l, int64_t epoch, int64_t index, int *corpus, int64_t *sample);
// Validation: fixed order over every corpus' held-out samples. Returns 1 with a batch, 0 when done
// (then restarts from the beginning on the next call), <0 on error.
int ds_loader_val_next(ds_loader *l, ds_batch *b);
json_t *ds_pos_to_json(ds_pos p);
int ds_pos_from_json(const json_t *j, ds_pos *p);
#endif
