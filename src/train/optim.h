// AdamW (exactly torch.optim.AdamW), global-norm gradient clipping (torch.nn.utils.clip_grad_norm_)
// and gradient-accumulation helpers, over parameter groups of f32 tensors.
//
// Gradient accumulation: the loss of a step is the mean over ALL target tokens of the step, across
// every micro-batch. So the caller runs each micro-batch's backward with the per-token loss SUMMED
// (or, equivalently, with d(loss)/d(logit) not divided by the micro-batch's own count), accumulates
// grads into optim_param.g, adds up the micro-batches' target counts (ds_batch.n_targets), and then
// calls optim_scale_grads(groups, n, 1.0 / total_targets) before clipping and adamw_step. Dividing
// each micro-batch by its own count instead would weight tokens of short micro-batches more.
//
// A step is then:  optim_scale_grads(.., 1/total) ; norm = optim_clip_grad_norm(.., max_norm) ;
//                  adamw_step(&opt, .., sched_lr(&sched, opt.step)) ; optim_zero_grads(..)
#ifndef SLLM_TRAIN_OPTIM_H
#define SLLM_TRAIN_OPTIM_H
#include <stdint.h>
#include "base/threadpool.h"

typedef struct {
    float *p, *g;    // parameter and its gradient (n)
    float *m, *v;    // Adam first / second moments (n), zero-initialised by the caller
    int64_t n;
} optim_param;

typedef struct {
    optim_param *params;
    int n_params;
    double weight_decay;  // per group: 0 for norms and biases, as transformers' Trainer does
    double lr_scale;      // multiplies the scheduled lr for this group (1 normally; 0 is treated as 1)
} optim_group;

typedef struct {
    double beta1, beta2, eps;   // torch defaults 0.9, 0.999, 1e-8
    int64_t step;               // optimizer steps taken so far (torch's state['step']); saved in checkpoints
} adamw;

void adamw_init(adamw *opt);   // torch defaults, step 0

// Sum over every parameter of g^2, then sqrt (accumulated in double).
double optim_grad_norm(const optim_group *groups, int n_groups, tpool *pool);
// clip_grad_norm_: total 2-norm over all grads; when max_norm > 0 and norm > max_norm the grads are
// multiplied by max_norm / (norm + 1e-6). Returns the pre-clip norm (non-finite when grads are).
double optim_clip_grad_norm(optim_group *groups, int n_groups, double max_norm, tpool *pool);
void optim_scale_grads(optim_group *groups, int n_groups, double scale, tpool *pool);
void optim_zero_grads(optim_group *groups, int n_groups, tpool *pool);
// One AdamW update with learning rate lr (increments opt->step first, as torch does):
//   p *= 1 - lr*wd ; m = b1*m + (1-b1)*g ; v = b2*v + (1-b2)*g*g ;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
void adamw_step(adamw *opt, optim_group *groups, int n_groups, double lr, tpool *pool);
#endif
