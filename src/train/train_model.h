// The training engine: a forward over a batch that keeps what the backward needs, and the backward
// through the whole model (llama, qwen2, qwen3, gemma3, gpt2) producing gradients for every trainable
// parameter. Two modes:
//   TRAIN_FULL  every weight becomes an f32 master copy owned by the model (dequantized if stored
//               quantized) and the model's mweights point at it, so model_forward sees each update
//               at once; gradients for embeddings, norms, biases, matrices (a tied head adds into
//               the token embedding's gradient).
//   TRAIN_LORA  only the adapter's A and B train; the base stays frozen in its stored dtype. Quantized
//               weights are dequantized a tile of rows at a time (never the whole matrix set) so the
//               product is exact against the dequantized weights, with f32 activations like QLoRA.
// Optional gradient checkpointing keeps only each layer's input and recomputes the layer in the
// backward (same arithmetic: gradients are bit-identical to running without it).
//
// Loss and gradient convention: the loss of a batch is the SUM of per-token cross-entropies over
// counted targets; the gradient is that sum's times grad_scale (pass 1/total_target_tokens of the
// optimizer step for the mean over micro-batches). Gradients accumulate (+=) until train_zero_grad.
#ifndef SLLM_TRAIN_TRAIN_MODEL_H
#define SLLM_TRAIN_TRAIN_MODEL_H
#include <stdbool.h>
#include <stdint.h>
#include "base/threadpool.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"

typedef enum { TRAIN_FULL = 0, TRAIN_LORA = 1 } train_mode;

typedef struct {
    bool checkpointing;       // recompute each layer in the backward instead of keeping its activations
    tpool *pool;              // not owned; NULL: a pool of n_threads is made (n_threads 1: none)
    int n_threads;            // <= 0: all cores
    uint64_t dropout_seed;    // LoRA dropout masks derive from it, the step counter, layer and matrix
} train_opts;

// One micro-batch of B rows of T tokens, all (B, T) row-major.
typedef struct {
    int B, T;
    const int32_t *ids;
    const int32_t *targets;    // label of the logits at (b, t) (already shifted); < 0: not counted
    const int32_t *pos;        // positions (packed rows restart them per document); NULL: 0..T-1
    const int32_t *doc_start;  // row index of the first token of t's document (0 <= ds <= t); NULL: 0
} train_batch;

// A trainable tensor. name: GGUF name in full mode ("blk.0.attn_q.weight"), PEFT name for LoRA.
typedef struct {
    const char *name;
    float *p, *g;             // (rows, cols) row-major; rows 1 for vectors
    int64_t n, rows, cols;
    bool decay;               // false for norms and biases (transformers' Trainer convention)
    tensor_role role;         // full: the tensor's role; LoRA: the adapted weight's role
    int layer;                // -1 for global tensors
    int lora;                 // 0 full-mode tensor, 1 LoRA A, 2 LoRA B
} train_param;

typedef struct train_model train_model;

// mode TRAIN_LORA needs `ad` (it is attached to m with scale 1 for the model's lifetime of training
// and detached by train_model_free if this call attached it); TRAIN_FULL needs ad == NULL.
// opts may be NULL (defaults: no checkpointing, own pool of all cores).
int train_model_new(sllm_model *m, train_mode mode, lora_adapter *ad, const train_opts *opts, train_model **out);
void train_model_free(train_model *tm);

// The trainable tensors (owned by tm/the model/the adapter); returns the count.
int train_params(const train_model *tm, const train_param **out);
// Parameter groups for train/optim.h: groups[0] decayed with weight_decay (matrices, embeddings,
// LoRA A/B), groups[1] not decayed (norms, biases). Adam moments are allocated zeroed, owned by tm;
// optim_param j of group g is train_params()[k] for the k-th param with that decay flag.
int train_optim_groups(train_model *tm, double weight_decay, optim_group groups[2]);

// Forward + backward of one micro-batch: gradients += d(sum of token losses)/dθ * grad_scale.
// loss_sum (sum over counted tokens) and n_tokens may be NULL. Applies LoRA dropout.
int train_step_fwd_bwd(train_model *tm, const train_batch *b, float grad_scale, double *loss_sum, int64_t *n_tokens);
// Forward only (no dropout): the summed loss and the count of counted targets.
int train_eval_loss(train_model *tm, const train_batch *b, double *loss_sum, int64_t *n_tokens);
void train_zero_grad(train_model *tm);
// After optimizer steps: makes model_forward see the trained weights (full mode: re-binds views of
// fused/tied weights to the masters; LoRA: the attached adapter is trained in place).
void train_sync_to_model(train_model *tm);
// Number of train_step_fwd_bwd calls so far (keys dropout masks; checkpoints may save/restore it).
uint64_t train_step_count(const train_model *tm);
void train_set_step_count(train_model *tm, uint64_t n);
#endif
