// The training loop behind `sllm train cpt|sft`: load a model and data, build LoRA adapters or f32
// masters, run AdamW steps with gradient accumulation, clipping and an LR schedule, evaluate on a
// held-out split, save atomic checkpoints, resume bit-identically, and write the outputs:
//   LoRA  DIR/adapter/ (PEFT) + DIR/adapter.gguf (llama.cpp LoRA)
//   full  DIR/model.gguf + DIR/hf/ (config.json + model.safetensors)
//   both  DIR/metrics.csv, DIR/loss.svg, DIR/checkpoints/step-N/ (when saving)
// CPT packs raw text into rows; SFT renders conversations with the model's own chat template
// (ChatML when it has none) with loss only on assistant turns (their end-of-turn marker included).
#ifndef SLLM_TRAIN_TRAINER_H
#define SLLM_TRAIN_TRAINER_H
#include <stdbool.h>
#include <stdint.h>
#include "model/lora.h"
#include "model/model.h"
#include "text/tokenizer.h"
#include "train/schedule.h"

typedef enum { TRAINER_CPT = 0, TRAINER_SFT = 1 } trainer_task;

typedef struct {
    const char *path;
    double ratio;           // mixing weight (> 0; default 1)
} trainer_data;

typedef struct {
    trainer_task task;
    const char *model_path;
    const trainer_data *data; int n_data;
    const char *out_dir;
    bool full;              // full fine-tuning; otherwise LoRA with `lora`
    lora_config lora;
    int64_t steps;          // optimizer steps (0: from epochs)
    double epochs;          // used when steps == 0 (default 1)
    int batch, seq, grad_accum;
    double lr, min_lr;
    int64_t warmup;
    sched_kind schedule;
    double weight_decay, clip;
    uint64_t seed;
    double val_frac;
    int64_t eval_every;     // 0: only at the start and the end
    int64_t save_every;     // 0: only at the end (when stopping early: at the stop)
    bool resume;            // continue from the newest checkpoint in out_dir
    bool checkpointing;     // gradient checkpointing (recompute layers in the backward)
    bool fail_on_bad_line;  // malformed data lines: fail (default: skip with a warning)
    bool dry_run;           // print the memory plan and stop
    bool progress;          // progress line on stderr
    bool quiet;             // no informational lines on stderr
    int threads;            // <= 0: all cores
    int64_t stop_after;     // tests/interrupts: stop (with a checkpoint) after this many steps of this run; 0: off
    bool pack_sft;          // SFT: pack several samples per row
    const char *system_prompt;  // SFT: system message added to conversations without one
    const char *chat_template_file;  // SFT: Jinja chat template to use instead of the model's
} trainer_opts;

typedef struct {
    int64_t steps, tokens;          // optimizer steps done in total, target tokens trained on
    int64_t start_step;             // where this run began (> 0 after --resume)
    double tokens_per_s, elapsed_s;
    double train_loss;              // loss of the last step
    double val_loss_initial, val_loss;   // NAN without a validation split
    long peak_rss_kb;
    int64_t n_params_trainable;
    size_t mem_weights, mem_grads, mem_optim, mem_activations;   // the memory plan (bytes)
} trainer_result;

void trainer_opts_default(trainer_opts *o);
// Parses "r=16,alpha=32,dropout=0.05,targets=q,k,v,o,gate,up,down,rslora" into cfg (keys optional;
// names after targets= up to the next key are target modules). Errors name the bad part.
int trainer_parse_lora(const char *spec, lora_config *cfg);
int trainer_run(const trainer_opts *o, trainer_result *res);
// One-line JSON summary (no newline) of a result, malloc'd.
char *trainer_result_json(const trainer_opts *o, const trainer_result *r);

// ---- pieces shared with `sllm eval` ----
// The model's chat template: GGUF tokenizer.chat_template, or tokenizer_config.json "chat_template"
// next to an HF model. NULL when it has none (callers then use ChatML). malloc'd.
char *trainer_chat_template(const sllm_model *m);
// The template text of a file given with --chat-template (malloc'd), or NULL with an error set.
char *trainer_read_template(const char *path);
// The model's BOS / EOS token texts (for templates), malloc'd or NULL.
char *trainer_token_text(const tok *t, int32_t id);
#endif
