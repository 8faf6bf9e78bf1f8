// Learning-rate schedules with the semantics of transformers' get_{constant,linear,cosine}_schedule_with_warmup
// (and get_cosine_with_min_lr_schedule_with_warmup): step k (0-based, the k-th optimizer step) uses
//   warmup (k < W):  lr * k / max(1, W)            (so step 0 has lr 0 when W > 0, as in transformers)
//   after, with progress p = (k - W) / max(1, N - W):
//     constant: lr
//     linear:   min_lr + (lr - min_lr) * max(0, 1 - p)
//     cosine:   min_lr + (lr - min_lr) * max(0, 0.5 * (1 + cos(pi * p)))
// With min_lr = 0 these are exactly transformers' lambdas times lr. N = total_steps; p is clamped to 1
// so steps past N stay at min_lr.
#ifndef SLLM_TRAIN_SCHEDULE_H
#define SLLM_TRAIN_SCHEDULE_H
#include <jansson.h>
#include <stdint.h>

typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE } sched_kind;

typedef struct {
    sched_kind kind;
    double lr, min_lr;
    int64_t warmup_steps, total_steps;
} lr_schedule;

double sched_lr(const lr_schedule *s, int64_t step);
// "constant" | "linear" | "cosine"; SLLM_ERR_ARG naming the value otherwise.
int sched_parse_kind(const char *name, sched_kind *out);
const char *sched_kind_name(sched_kind k);
// Checks lr >= 0, 0 <= min_lr <= lr, warmup >= 0, total >= warmup (SLLM_ERR_ARG).
int sched_validate(const lr_schedule *s);
// {"kind","lr","min_lr","warmup_steps","total_steps"} for checkpoints; from_json validates.
json_t *sched_to_json(const lr_schedule *s);
int sched_from_json(const json_t *j, lr_schedule *s);
#endif
