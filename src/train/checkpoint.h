// Training checkpoints. A checkpoint root directory holds one directory per saved step plus a pointer:
//   ROOT/step-00000100/tensors.safetensors   named f32 blobs (weights, Adam m and v, ...) — inspectable
//   ROOT/step-00000100/state.json            {"format": "sllm-checkpoint", "version": 1, "step": 100,
//                                             "tensors": {"file", "bytes", "fnv1a64"}, "state": <caller JSON>}
//   ROOT/latest                              "step-00000100\n"
// A checkpoint is written into ROOT/.tmp-step-00000100-XXXXXX, every file fsync'd, the directory
// renamed to its final name and ROOT fsync'd; only then is `latest` replaced (atomically). A crash at
// any point leaves `latest` naming the previous complete checkpoint. The tensors file's size and
// FNV-1a hash are checked on open, so truncation or corruption is reported, not loaded.
#ifndef SLLM_TRAIN_CHECKPOINT_H
#define SLLM_TRAIN_CHECKPOINT_H
#include <jansson.h>
#include <stdint.h>
#include "base/rng.h"

typedef struct ckpt_writer ckpt_writer;
// Creates ROOT if needed and the temporary directory. NULL on error (sllm_last_error()).
ckpt_writer *ckpt_writer_begin(const char *root, int64_t step);
// `data` must stay valid until ckpt_commit returns. Names must be unique.
int ckpt_add_tensor(ckpt_writer *w, const char *name, const float *data, int64_t n);
// The caller's state (step counters, data position, RNG, schedule, config); a reference is taken.
int ckpt_set_json(ckpt_writer *w, json_t *state);
// Writes, syncs, publishes and updates `latest`; frees w in every case. On error the temporary
// directory is removed and the previous checkpoint stays current.
int ckpt_commit(ckpt_writer *w);
// Gives up without publishing (removes the temporary directory) and frees w.
void ckpt_abandon(ckpt_writer *w);

typedef struct ckpt_reader ckpt_reader;
ckpt_reader *ckpt_open_latest(const char *root);   // NULL with a message naming what is missing or bad
ckpt_reader *ckpt_open(const char *ckpt_dir);      // one checkpoint directory
void ckpt_close(ckpt_reader *r);
int64_t ckpt_step(const ckpt_reader *r);
const char *ckpt_dir(const ckpt_reader *r);
const json_t *ckpt_json(const ckpt_reader *r);     // the caller's state (borrowed)
int ckpt_has_tensor(const ckpt_reader *r, const char *name);
// Copies tensor `name` into out; its element count must be n (SLLM_ERR_SHAPE otherwise).
int ckpt_get_tensor(const ckpt_reader *r, const char *name, float *out, int64_t n);
// Removes all but the newest `keep` step directories (never the one `latest` names) and stale
// temporary directories.
int ckpt_prune(const char *root, int keep);

// RNG state as JSON (four hex strings: u64 does not fit a JSON integer).
json_t *ckpt_rng_to_json(const rng_state *r);
int ckpt_rng_from_json(const json_t *j, rng_state *r);
#endif
