// The model object: hyper-parameters plus every weight bound by role, loaded from a GGUF file or a
// Hugging Face directory (config.json + safetensors) into the same struct, or built in memory by
// init.c. Matrices stay in their stored dtype (mmap'd, used in place by mm_matmul); norm weights,
// biases and rope factors are small f32 copies.
//
// Conventions of the loaded object (whatever the source):
//   - a matrix is (rows N, cols K) row-major: y = x · W^T (HF Conv1D weights are transposed on load);
//   - norm weights are the plain multiplier (Gemma's HF (1+w) is folded in as w+1, like GGUF);
//   - q/k rows are in the order of the source, and `rope_style` says which rope matches them
//     (GGUF llama: NORM on permuted rows; HF llama: NEOX on original rows — the same math).
#ifndef SLLM_MODEL_MODEL_H
#define SLLM_MODEL_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sllm.h"
#include "base/threadpool.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/arch.h"
#include "tensor/dtype.h"
#include "tensor/ops.h"

// A weight as stored. Vectors (norms, biases) are rows == 1, type DT_F32, always an f32 copy/view.
typedef struct {
    const void *data;       // NULL: absent
    dtype type;
    int64_t rows, cols;     // (N, K)
    const void *packed;     // NULL, or a copy of data in this CPU's packed layout (model_pack)
} mweight;
#define MWEIGHT(d, t, r, c) ((mweight){.data = (d), .type = (t), .rows = (r), .cols = (c), .packed = NULL})

typedef struct {
    int n_vocab, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, n_ctx_train;
    int n_rot;                   // rotary dims per head (== head_dim unless partial)
    float norm_eps;
    rope_params rope;            // global layers (all layers when there is no sliding window)
    rope_params rope_local;      // sliding-window layers (Gemma 3: base 10000, no scaling)
    float rope_linear_factor;    // linear rope scaling factor of global layers (1 = none)
    int swa_window;              // 0: no sliding window
    int swa_pattern;             // layer il is global when (il + 1) % swa_pattern == 0 (Gemma 3: 6)
    float attn_scale;            // multiplies q·k (1/sqrt(head_dim), or query_pre_attn_scalar^-0.5)
    float query_pre_attn_scalar; // Gemma 3 (0 = head_dim)
    float final_softcap;         // 0: none
    float embed_scale;           // 1, or sqrt(n_embd) for Gemma
    bool tied;                   // output head is the token embedding
} model_hparams;

typedef enum { MODEL_SRC_GGUF = 0, MODEL_SRC_HF = 1, MODEL_SRC_MEM = 2 } model_source;

typedef struct {
    mweight w[TR_COUNT];         // indexed by per-layer tensor_role (globals unused)
    bool swa;                    // sliding-window (local) layer
} model_layer;

#define MODEL_MAX_LORA 8
struct lora_adapter;

struct sllm_model {
    char *path;
    char *name;                  // general.name / preset name (may be NULL)
    model_source source;
    const arch_desc *arch;
    model_hparams hp;
    rope_style rope_style;       // rope that matches the q/k row order held
    const float *rope_factors;   // (n_rot/2) llama.cpp rope_freqs divisors, or NULL
    mweight g[TR_LAYER_FIRST];   // global tensors by role
    model_layer *layers;         // n_layer
    gguf_file *gguf;             // GGUF source (mapping stays open)
    st_file *st;                 // HF source
    void **owned; int n_owned, cap_owned;   // buffers freed with the model
    void *packed_mem;            // model_pack's buffer (bigmem)
    // LoRA adapters attached for inference (model/lora.h), applied inside forward.c's matmul helper.
    // Not owned by the model.
    struct lora_adapter *lora[MODEL_MAX_LORA];
    float lora_scale[MODEL_MAX_LORA];        // per-adapter multiplier on top of its alpha/r
    int n_lora;
    // KV cache dtype of the sessions made from now on: DT_F32 (model_load's default: exact, what the
    // reference tests compare) or DT_F16 (llama.cpp's default; half the memory and half the bytes a
    // decode step's attention reads; the inference entry points, `sllm` commands and sllm_model_load,
    // choose it) or DT_Q8_0 (half of f16 again, as llama.cpp's -ctk / -ctv q8_0). A session keeps the
    // type it was made with.
    dtype kv_type;
};

// Loads a GGUF file or a Hugging Face model directory (auto-detected). On error returns a negative
// SLLM_ERR_* and sllm_last_error() names the file and field.
int model_load(const char *path, sllm_model **out);
int model_load_gguf(const char *path, sllm_model **out);
int model_load_hf(const char *dir, sllm_model **out);
void model_free(sllm_model *m);
// Repacks the matrices that have a packed form on this CPU (mm_pack: Q4_0 / Q8_0 with AVX-512) into
// one huge-page buffer owned by the model, for inference: decode streams them ~15-20% faster and prefill
// skips its per-call packing. The source bytes stay where they were (token embedding rows, training,
// writers and adapters use them); where they are a file mapping, its pages are released from this
// process (the page cache keeps them). SLLM_PACK=0 turns it off. Returns SLLM_OK (also when nothing
// was packed) or SLLM_ERR_NOMEM, in which case the model is left unpacked and usable.
int model_pack(sllm_model *m, tpool *pool);

typedef struct {
    int64_t n_params;                  // each tensor once (a tied head is not counted twice)
    size_t weight_bytes;
    int64_t params_by_dtype[DT_COUNT]; // the dtype mix
} model_info_t;
void model_info(const sllm_model *m, model_info_t *out);
// KV cache bytes for a context of n_ctx tokens (in m->kv_type).
size_t model_kv_bytes(const sllm_model *m, int n_ctx);
// Sets m->kv_type: DT_F32, DT_F16 or DT_Q8_0 (head_dim a multiple of 32); SLLM_ERR_ARG otherwise.
int model_set_kv_type(sllm_model *m, dtype t);
// "f32", "q4_0", or "mixed" (dtype of the largest share of parameters in matrices).
const char *model_main_dtype(const sllm_model *m);

// Writers. out_type: -1 keeps each weight's dtype where the format can store it; otherwise matrices
// are converted (GGUF: any quantizable dtype; a matrix whose row length is not a multiple of the block
// takes llama.cpp's fallback (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), else f16; HF: f32/f16/bf16). Norms and biases are written f32 in GGUF.
// llama q/k rows are permuted to match the target's rope convention; Gemma norms get their HF -1.
// tokenizer_src (may be NULL): its tokenizer.* keys are copied into the GGUF.
// out_type MODEL_MIX_Q4_K_M / MODEL_MIX_Q5_K_M: llama.cpp's Q4_K_M / Q5_K_M recipes (Q6_K for the output
// head, or the token embedding when the head is tied, and for attn_v / ffn_down of the layers
// model_mix_more_bits picks; Q4_K / Q5_K for every other matrix).
#define MODEL_MIX_Q4_K_M 1001
#define MODEL_MIX_Q5_K_M 1002
bool model_mix_more_bits(int il, int n_layer);
int model_save_gguf(const sllm_model *m, const char *path, int out_type, const gguf_file *tokenizer_src);
// Writes config.json + model.safetensors into dir (created if missing).
int model_save_hf(const sllm_model *m, const char *dir, int out_type);

// ---- session: KV cache + scratch, see kvcache.c / forward.c ----
#define MAX_RUNS 64              // decode attention: most key runs (threads) per step
typedef struct model_session {
    const sllm_model *m;
    tpool *pool;                 // not owned; NULL = single thread
    int n_ctx, n_batch, n_past;
    void *kv;                    // per layer: K (n_ctx, Hkv, D) then V (n_ctx, Hkv, D), rows of kv_type
    dtype kv_type;               // the cache rows' dtype: f32, f16 or q8_0 (the model's kv_type when the session was made)
    // scratch for n_batch rows, allocated once
    float *x, *xn, *q, *k, *v, *att, *o, *ff_a, *ff_b, *logits_tmp;
    int32_t *pos;
    float *rope_cs[2], *rope_sn[2];   // (n_batch, n_rot/2) rope tables of the step: global, local layers
    // decode attention, per key run (at most dec_runs = the pool's threads): rotated q (Hq, D), output
    // (Hq, D), max (Hq) in dec_f; sums (Hq) in dec_l
    float *dec_f;
    double *dec_l;
    int dec_runs;
} model_session;

// n_ctx: KV capacity in tokens (<= 0: the model's training context, capped at 4096);
// n_batch: rows per internal forward step (<= 0: 64). pool may be NULL.
int model_session_new(const sllm_model *m, int n_ctx, int n_batch, tpool *pool, model_session **out);
void model_session_free(model_session *s);
void model_session_reset(model_session *s);
// Forgets positions >= n (keeps a shared prompt prefix). Returns SLLM_ERR_ARG if n > n_past.
int model_session_truncate(model_session *s, int n);
// This layer's K / V rows (s->kv_type: float, uint16_t f16, or blk_q8_0 blocks).
void *model_session_k(model_session *s, int layer);
void *model_session_v(model_session *s, int layer);

// Runs T tokens at positions n_past.. (batched prefill when T > 1, decode when T == 1), appending
// to the KV cache. logits: (T, n_vocab) when all_logits, else (n_vocab) for the last token only;
// may be NULL to only fill the cache.
int model_forward(model_session *s, const int32_t *ids, int T, float *logits, bool all_logits);
// model_forward with the last token's logits, and *next = their argmax (argmax_f32: the greedy pick),
// which a decode step takes inside the output head's product (mm_out.argmax) instead of a second pass.
int model_forward_argmax(model_session *s, const int32_t *ids, int T, float *logits, int32_t *next);

// ---- init.c: random models of named shapes ----
typedef struct {
    const char *name, *arch;
    int n_vocab, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, n_ctx;
    float eps, rope_base, rope_base_local;
    float l3_factor, l3_low, l3_high; int l3_orig_ctx;   // llama3 rope scaling (factor 0: none)
    float rope_linear_factor;                             // 0/1: none
    int swa_window, swa_pattern;
    float query_pre_attn_scalar;
    float final_softcap;
    bool tied;
} model_preset;
const model_preset *model_preset_get(const char *name);   // NULL when unknown
// Names of all presets, NULL-terminated.
const char *const *model_preset_names(void);

typedef struct {
    const char *preset;
    const model_preset *custom;   // used instead of preset when non-NULL
    dtype type;                   // matrices' dtype: f32 / f16 / bf16 (or a quantized type)
    uint64_t seed;
    float std;                    // N(0, std) for matrices; 0 means 0.02
    bool perturb;                 // tests: norms 1 + N(0, 0.1), biases N(0, std) instead of 1 / 0
} model_init_opts;
int model_init(const model_init_opts *o, sllm_model **out);
int model_init_write_gguf(const char *preset, dtype type, uint64_t seed, const gguf_file *tokenizer_src,
                          const char *path);
int model_init_write_hf(const char *preset, dtype type, uint64_t seed, const char *dir);

// ---- internal helpers shared by model.c / init.c ----
void *model_own(sllm_model *m, void *p);   // registers a buffer freed with the model (NULL stays NULL)
// Expected (rows, cols) of a role; returns false when the architecture has no such tensor.
bool model_role_shape(const sllm_model *m, tensor_role r, int64_t *rows, int64_t *cols);
// Derives attention scale, rope params etc. from the other hparams (called after they are set).
void model_finish_hparams(sllm_model *m);
// Points the q/k/v views of fused qkv weights (GPT-2) and the tied output head.
void model_bind_views(sllm_model *m);
#endif
