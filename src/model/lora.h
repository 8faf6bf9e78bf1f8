// LoRA adapters: per adapted matrix W (N, K) a pair A (r, K), B (N, r) with
//   y = x · W^T + scaling · (x · A^T) · B^T,   scaling = alpha / r  (alpha / sqrt(r) with rslora).
// LoRA is a property of a matmul: attached adapters are applied inside the inference forward's one
// matmul helper (forward.c, via lora_apply), the training engine (train/train_model.c) runs the same
// product with gradients for A and B, and lora_merge folds B·A into the weight for export.
//
// Targets are the attention and MLP projections. GPT-2's fused c_attn is ONE adapted matrix
// (TR_ATTN_QKV, B rows = q|k|v) as in PEFT, selected by any of q/k/v; its c_proj's map to o / down.
// A and B hold rows in the model's own order: a llama loaded from GGUF has llama.cpp's permuted q/k
// rows, so B of q/k is permuted the same way (as llama.cpp's convert_lora_to_gguf does).
#ifndef SLLM_MODEL_LORA_H
#define SLLM_MODEL_LORA_H
#include <stdbool.h>
#include <stdint.h>
#include "model/model.h"

enum {
    LORA_Q = 1u << 0, LORA_K = 1u << 1, LORA_V = 1u << 2, LORA_O = 1u << 3,
    LORA_GATE = 1u << 4, LORA_UP = 1u << 5, LORA_DOWN = 1u << 6,
    LORA_ATTN = 0x0fu, LORA_MLP = 0x70u, LORA_ALL = 0x7fu
};

typedef struct {
    int r;              // rank (>= 1)
    float alpha;        // scaling numerator; <= 0 means alpha = r (scaling 1, as llama.cpp reads alpha 0)
    float dropout;      // probability of zeroing an adapter input element in training, [0, 1)
    bool rslora;        // scaling alpha / sqrt(r)
    unsigned targets;   // LORA_* mask (an adapter's copy holds the modules it actually adapts)
} lora_config;

typedef struct {
    tensor_role role;   // adapted (stored) weight: TR_ATTN_Q.. / TR_ATTN_QKV (GPT-2) / TR_FFN_DOWN ...
    int layer;
    int64_t N, K;       // the adapted weight's (rows, cols)
    float *A;           // (r, K)
    float *B;           // (N, r)
} lora_pair;

typedef struct lora_adapter {
    lora_config cfg;
    float scaling;
    const arch_desc *arch;
    int n_layer, n_embd;
    int64_t qd, kd;     // q rows and k (= v) rows of a fused qkv weight
    int n_pairs;
    lora_pair *pairs;
    int *index;         // (n_layer * TR_COUNT): pair of (layer, role) or -1
    char **names;       // 4 per pair: peft A, peft B, gguf A, gguf B
} lora_adapter;

// "q,k,v,o,gate,up,down" and/or HF module names (q_proj, ..., down_proj, c_attn, c_proj, c_fc),
// "attn", "mlp", "all" / "all-linear". Unknown names are an SLLM_ERR_ARG naming them.
int lora_parse_targets(const char *list, unsigned *mask);
float lora_scaling(const lora_config *cfg);

// New adapter for every target matrix of m: A ~ U(-1/sqrt(K), 1/sqrt(K)) (PEFT's kaiming_uniform
// with a = sqrt(5)), B = 0, from `seed`.
int lora_new(const sllm_model *m, const lora_config *cfg, uint64_t seed, lora_adapter **out);
void lora_free(lora_adapter *ad);
int64_t lora_n_params(const lora_adapter *ad);
// SLLM_OK when the adapter fits m (same architecture, layer count and matrix shapes).
int lora_check_model(const sllm_model *m, const lora_adapter *ad);
// The pair adapting (layer, role) and the first B row it contributes: a q/k/v view of GPT-2's fused
// c_attn finds the c_attn pair at row offset 0 / qd / qd+kd. NULL when not adapted.
const lora_pair *lora_find(const lora_adapter *ad, int layer, tensor_role role, int64_t *row_off);

// Attach for inference: every matmul of model_forward adds scale * scaling * (x A^T) B^T. Up to
// MODEL_MAX_LORA adapters at once; attaching an attached adapter updates its scale. The model does
// not own the adapter: detach (or free the model) before lora_free.
int lora_attach(sllm_model *m, lora_adapter *ad, float scale);
int lora_detach(sllm_model *m, const lora_adapter *ad);   // SLLM_ERR_ARG when not attached
// Y (T, w->rows) += the attached adapters' terms for weight w of m (found by address among
// m->layers[].w). Called by forward.c's matmul helper; a no-op for weights no adapter targets.
int lora_apply(const sllm_model *m, const mweight *w, const float *X, int64_t T, float *Y, tpool *pool);

// Folds scale * scaling * B·A into each adapted weight: the weight becomes a new f32 matrix owned by
// m (the original dtype is dequantized; export requantizes). The adapter is detached if attached.
int lora_merge(sllm_model *m, const lora_adapter *ad, float scale);

// ---- tensors, for adapter files (PEFT safetensors, llama.cpp GGUF LoRA) ----
// Tensor i in [0, 2 * n_pairs): pair i/2, A when i is even. Names (owned by the adapter):
//   peft "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
//        (GPT-2: "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight")
//   gguf "blk.0.attn_q.weight.lora_a"
// data is (rows, cols) row-major f32, writable (the optimizer trains it in place).
typedef struct {
    const char *peft_name, *gguf_name;
    tensor_role role;
    int layer;
    bool is_A;
    float *data;
    int64_t rows, cols;
} lora_tensor;
int lora_tensor_count(const lora_adapter *ad);
int lora_tensor_get(const lora_adapter *ad, int i, lora_tensor *out);

// Builds an adapter for m from named f32 tensors in either naming convention (data is copied).
// cfg: alpha, rslora, dropout used as given; r <= 0 means take it from the tensors; targets ignored
// (derived from the names). Every A needs its B; shapes must be A (r, K), B (N, r) of the weight.
typedef struct { const char *name; const float *data; int64_t rows, cols; } lora_named_tensor;
int lora_from_tensors(const sllm_model *m, const lora_config *cfg, const lora_named_tensor *t, int n,
                      lora_adapter **out);
#endif
