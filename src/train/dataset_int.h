// Internal to src/train/dataset*.c: warning sink shared by loading and tokenizing.
#ifndef SLLM_TRAIN_DATASET_INT_H
#define SLLM_TRAIN_DATASET_INT_H
typedef struct {
    void (*fn)(void *ctx, const char *msg);
    void *ctx;
    int max;     // printed to stderr at most (0: 10, -1: none)
    int count;
} ds_warner;
void ds_warn(ds_warner *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
