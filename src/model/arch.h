// The architecture table: one row of data per supported transformer family. The loader, the
// forward pass and the writers read the row; adding an architecture adds a row (and, only if it
// needs one, a new op), never a branch on the architecture's name.
#ifndef SLLM_MODEL_ARCH_H
#define SLLM_MODEL_ARCH_H
#include <stdbool.h>
#include <stddef.h>
#include "tensor/ops.h"

typedef enum { NORM_RMS = 0, NORM_LAYER = 1 } norm_kind;
typedef enum { ACT_SWIGLU = 0, ACT_GEGLU = 1, ACT_GELU = 2 } act_kind;

// Every tensor a model may hold. Global ones first, then the per-layer ones (TR_LAYER_FIRST..).
typedef enum {
    TR_TOKEN_EMBD, TR_POS_EMBD, TR_OUTPUT_NORM, TR_OUTPUT_NORM_B, TR_OUTPUT, TR_ROPE_FREQS,
    TR_LAYER_FIRST,
    TR_ATTN_NORM = TR_LAYER_FIRST, TR_ATTN_NORM_B,
    TR_ATTN_Q, TR_ATTN_Q_B, TR_ATTN_K, TR_ATTN_K_B, TR_ATTN_V, TR_ATTN_V_B,
    TR_ATTN_QKV, TR_ATTN_QKV_B,                       // fused q|k|v rows (GPT-2)
    TR_ATTN_OUT, TR_ATTN_OUT_B, TR_ATTN_Q_NORM, TR_ATTN_K_NORM, TR_POST_ATTN_NORM,
    TR_FFN_NORM, TR_FFN_NORM_B, TR_FFN_GATE, TR_FFN_UP, TR_FFN_UP_B, TR_FFN_DOWN, TR_FFN_DOWN_B,
    TR_POST_FFN_NORM,
    TR_COUNT
} tensor_role;

typedef struct {
    tensor_role role;
    const char *gguf;       // printf pattern with %d for the layer ("blk.%d.attn_q.weight")
    const char *hf;         // printf pattern of the Hugging Face name; NULL: not stored in HF files
    bool optional;          // may be absent (tied output head, llama3 rope_freqs)
    bool hf_transposed;     // HF stores it as Conv1D (in, out): transposed against (out, in)
} arch_tensor;

typedef struct {
    const char *name;             // general.architecture in GGUF
    const char *hf_model_types;   // config.json model_type values, space separated
    const char *hf_class;         // "architectures" entry written to config.json
    norm_kind norm;
    act_kind act;
    bool rope;                    // false: learned absolute positions (GPT-2)
    rope_style gguf_rope;         // rope style for weights as GGUF stores them
    bool gguf_permutes_qk;        // llama.cpp's converter permuted q/k rows (NORM rope in GGUF)
    bool qk_norm;                 // per-head RMSNorm of q and k before rope
    bool post_norms;              // Gemma: norms after attention and after the FFN
    bool hf_norm_plus_one;        // HF stores w of a (1+w) RMSNorm; GGUF stores w+1
    bool embed_scale_sqrt;        // embeddings multiplied by sqrt(n_embd)
    bool swa;                     // interleaved sliding-window layers
    bool default_tied;            // tie_word_embeddings written to config.json when tied
    float default_eps;
    float default_rope_base;
    const arch_tensor *tensors;   // terminated by role TR_COUNT
} arch_desc;

// NULL when unknown. arch_by_hf_type takes a config.json model_type.
const arch_desc *arch_by_name(const char *name);
const arch_desc *arch_by_hf_type(const char *model_type);
// "llama, qwen2, qwen3, gemma3, gpt2", for error messages.
const char *arch_supported_list(void);
// The row describing `role` for this architecture, or NULL when the architecture has no such tensor.
const arch_tensor *arch_tensor_get(const arch_desc *a, tensor_role role);
// Formats a tensor name from the pattern (layer ignored for global tensors).
void arch_tensor_name(char *buf, size_t n, const char *pattern, int layer);
bool arch_role_is_layer(tensor_role r);
// Norm weights and biases are 1-D; everything else is a matrix.
bool arch_role_is_vector(tensor_role r);
#endif
