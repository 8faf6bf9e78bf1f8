// The training loop (see trainer.h).
//
// One optimizer step = grad_accum micro-batches of (batch, seq) tokens, each run forward+backward with
// the per-token loss summed; the summed gradient is then divided by the step's target count, clipped,
// and AdamW updates with the scheduled learning rate (optim.h's recipe).
//
// Checkpoints (train/checkpoint.h, atomic directories under DIR/checkpoints/): every trainable tensor
// ("param.<name>"), AdamW's m and v ("adam_m.<name>", "adam_v.<name>") and a state object (step,
// tokens, AdamW step, data position, dropout counter, schedule, run shape). Resuming restores all of
// it, so the continued run computes the same numbers as an uninterrupted one; the newest two are kept.
#include "train/trainer.h"
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/error.h"
#include "base/fileio.h"
#include "gen/generate.h"
#include "text/chat_template.h"
#include "train/adapter_io.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/optim.h"
#include "train/report.h"
#include "train/train_model.h"

void trainer_opts_default(trainer_opts *o) {
    memset(o, 0, sizeof *o);
    o->task = TRAINER_CPT;
    o->lora = (lora_config){.r = 16, .alpha = 32, .dropout = 0.05f, .rslora = false, .targets = LORA_ALL};
    o->epochs = 1;
    o->batch = 4;
    o->seq = 256;
    o->grad_accum = 1;
    o->lr = 2e-4;
    o->min_lr = 0;
    o->warmup = 0;
    o->schedule = SCHED_COSINE;
    o->weight_decay = 0.0;
    o->clip = 1.0;
    o->seed = 42;
    o->val_frac = 0.05;
    o->progress = true;
}

// ---------------------------------------------------------------- LoRA spec
int trainer_parse_lora(const char *spec, lora_config *cfg) {
    char *s = strdup(spec ? spec : "");
    char targets[512] = "";
    size_t tl = 0;
    bool in_targets = false, have_targets = false;
    int rc = SLLM_OK;
    if (!s) return err_set(SLLM_ERR_NOMEM, "out of memory");
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char *eq = strchr(tok, '=');
        if (!eq) {
            if (!strcmp(tok, "rslora")) { cfg->rslora = true; in_targets = false; continue; }
            if (in_targets) {
                tl += (size_t)snprintf(targets + tl, tl < sizeof targets ? sizeof targets - tl : 0, ",%s", tok);
                continue;
            }
            rc = err_set(SLLM_ERR_ARG, "--lora: '%s' is not KEY=VALUE (keys: r, alpha, dropout, targets, rslora)", tok);
            break;
        }
        *eq = 0;
        const char *k = tok, *v = eq + 1;
        char *end;
        in_targets = false;
        if (!strcmp(k, "r")) {
            long r = strtol(v, &end, 10);
            if (*end || end == v || r < 1 || r > 65536) rc = err_set(SLLM_ERR_ARG, "--lora: r='%s' must be an integer in [1, 65536]", v);
            else cfg->r = (int)r;
        } else if (!strcmp(k, "alpha")) {
            double a = strtod(v, &end);
            if (*end || end == v || !(a > 0) || !isfinite(a)) rc = err_set(SLLM_ERR_ARG, "--lora: alpha='%s' must be a number > 0", v);
            else cfg->alpha = (float)a;
        } else if (!strcmp(k, "dropout")) {
            double d = strtod(v, &end);
            if (*end || end == v || !(d >= 0 && d < 1)) rc = err_set(SLLM_ERR_ARG, "--lora: dropout='%s' must be in [0, 1)", v);
            else cfg->dropout = (float)d;
        } else if (!strcmp(k, "targets")) {
            tl = (size_t)snprintf(targets, sizeof targets, "%s", v);
            in_targets = have_targets = true;
        } else if (!strcmp(k, "rslora")) {
            cfg->rslora = !strcmp(v, "1") || !strcmp(v, "true");
        } else {
            rc = err_set(SLLM_ERR_ARG, "--lora: unknown key '%s' (keys: r, alpha, dropout, targets, rslora)", k);
        }
    }
    free(s);
    if (!rc && have_targets) {
        unsigned mask;
        if ((rc = lora_parse_targets(targets, &mask))) return err_wrap(rc, "--lora targets");
        cfg->targets = mask;
    }
    return rc;
}

// ---------------------------------------------------------------- template / tokenizer glue
char *trainer_chat_template(const sllm_model *m) {
    if (m->gguf) return gguf_get_str(m->gguf, "tokenizer.chat_template");
    if (m->source != MODEL_SRC_HF || !m->path) return NULL;
    size_t n = strlen(m->path) + 32;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/tokenizer_config.json", m->path);
    json_t *j = json_load_file(p, 0, NULL);
    free(p);
    char *out = NULL;
    json_t *ct = json_object_get(j, "chat_template");
    if (json_is_string(ct)) out = strdup(json_string_value(ct));
    else if (json_is_array(ct)) {   // [{"name": "default", "template": ...}, ...]
        size_t i; json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *t = json_string_value(json_object_get(e, "template"));
            if (t && (!out || (name && !strcmp(name, "default")))) { free(out); out = strdup(t); }
        }
    }
    json_decref(j);
    return out;
}

char *trainer_read_template(const char *path) {
    char *d = NULL; size_t n;
    if (fileio_read_all(path, &d, &n)) { err_wrap(SLLM_ERR_IO, "--chat-template"); return NULL; }
    return d;
}

char *trainer_token_text(const tok *t, int32_t id) {
    if (id < 0) return NULL;
    // the stored text ("</s>", "<|endoftext|>"): templates write it, and the tokenizer maps it back to the
    // special id (the decoded piece of a control token is empty)
    const char *s = tok_text(t, id);
    return s ? strdup(s) : NULL;
}

typedef struct {
    const tok *t;
    const char *tmpl;      // NULL: ChatML
    char *bos, *eos;
} glue;

static int cb_tokenize(void *ctx, const char *text, size_t n, int32_t **ids, int *n_ids) {
    const glue *g = ctx;
    return tok_encode(g->t, text, n, false, true, ids, n_ids);
}

static int cb_render(void *ctx, const json_t *messages, int add_gen, char **text, size_t *len) {
    const glue *g = ctx;
    int rc = chat_render(g->tmpl, messages, NULL, add_gen != 0, NULL, g->bos, g->eos, text);
    if (rc == SLLM_OK) *len = strlen(*text);
    return rc;
}

// ---------------------------------------------------------------- checkpoints
typedef struct {
    int64_t step, tokens, adam_step;
    uint64_t fwd_count;
    ds_pos pos;
    double val_loss_initial;
} ckpt_state;

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int64_t params_total(const train_param *ps, int n) {
    int64_t t = 0;
    for (int i = 0; i < n; i++) t += ps[i].n;
    return t;
}

// The run's shape, stored in the checkpoint and compared on resume (resuming with another model,
// mode or batch shape would not continue the same run).
static json_t *run_shape(const trainer_opts *o, const sllm_model *m, int64_t n_params, int64_t total_steps) {
    json_t *j = json_object();
    json_object_set_new(j, "task", json_string(o->task == TRAINER_SFT ? "sft" : "cpt"));
    json_object_set_new(j, "arch", json_string(m->arch->name));
    json_object_set_new(j, "mode", json_string(o->full ? "full" : "lora"));
    json_object_set_new(j, "lora_r", json_integer(o->full ? 0 : o->lora.r));
    json_object_set_new(j, "n_params", json_integer(n_params));
    json_object_set_new(j, "batch", json_integer(o->batch));
    json_object_set_new(j, "seq", json_integer(o->seq));
    json_object_set_new(j, "grad_accum", json_integer(o->grad_accum));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "total_steps", json_integer(total_steps));
    return j;
}

// The trainable tensor that owns optimizer param `p` (for naming Adam moments in checkpoints).
static const train_param *owner_of(const train_param *ps, int np, const float *p) {
    for (int i = 0; i < np; i++) if (ps[i].p == p) return &ps[i];
    return NULL;
}

// Every tensor a checkpoint holds, with one naming for saving and loading: "param.<name>" for each
// trainable tensor, then "adam_m.<name>" and "adam_v.<name>" for its AdamW moments.
typedef int (*ckpt_tensor_fn)(void *io, const char *name, float *data, int64_t n);
static int ckpt_each_tensor(const train_param *ps, int np, optim_group *groups, ckpt_tensor_fn fn, void *io) {
    char name[400];
    int rc = SLLM_OK;
    for (int i = 0; i < np && !rc; i++) {
        snprintf(name, sizeof name, "param.%s", ps[i].name);
        rc = fn(io, name, ps[i].p, ps[i].n);
    }
    for (int gi = 0; gi < 2 && !rc; gi++)
        for (int i = 0; i < groups[gi].n_params && !rc; i++) {
            const optim_param *op = &groups[gi].params[i];
            const train_param *tp = owner_of(ps, np, op->p);
            if (!tp) return err_set(SLLM_ERR_ARG, "checkpoint: optimizer tensor without a parameter");
            snprintf(name, sizeof name, "adam_m.%s", tp->name);
            if (!(rc = fn(io, name, op->m, op->n))) {
                snprintf(name, sizeof name, "adam_v.%s", tp->name);
                rc = fn(io, name, op->v, op->n);
            }
        }
    return rc;
}
static int save_tensor(void *w, const char *name, float *data, int64_t n) { return ckpt_add_tensor(w, name, data, n); }
static int load_tensor(void *r, const char *name, float *data, int64_t n) { return ckpt_get_tensor(r, name, data, n); }

static int ckpt_save(const char *out_dir, const trainer_opts *o, const sllm_model *m, const train_param *ps, int np,
                     optim_group *groups, const lr_schedule *sched, const ckpt_state *st, int64_t total_steps) {
    char *root = path_join(out_dir, "checkpoints");
    if (!root) return err_set(SLLM_ERR_NOMEM, "checkpoint: out of memory");
    ckpt_writer *w = ckpt_writer_begin(root, st->step);
    int rc = w ? SLLM_OK : SLLM_ERR_IO;
    if (!rc) rc = ckpt_each_tensor(ps, np, groups, save_tensor, w);
    if (!rc) {
        json_t *j = json_object();
        json_object_set_new(j, "step", json_integer(st->step));
        json_object_set_new(j, "tokens", json_integer(st->tokens));
        json_object_set_new(j, "adam_step", json_integer(st->adam_step));
        json_object_set_new(j, "fwd_count", json_integer((json_int_t)st->fwd_count));
        json_object_set_new(j, "data_pos", ds_pos_to_json(st->pos));
        json_object_set_new(j, "schedule", sched_to_json(sched));
        json_object_set_new(j, "val_loss_initial", isfinite(st->val_loss_initial) ? json_real(st->val_loss_initial) : json_null());
        // RNG: data order is a function of (seed, epoch) and LoRA dropout of (seed, fwd_count), both saved.
        json_object_set_new(j, "rng", json_pack("{s:I, s:I}", "seed", (json_int_t)o->seed, "dropout_counter",
                                                (json_int_t)st->fwd_count));
        json_object_set_new(j, "run", run_shape(o, m, params_total(ps, np), total_steps));
        if (!o->full)
            json_object_set_new(j, "lora", json_pack("{s:i, s:f, s:f, s:b, s:i}", "r", o->lora.r, "alpha", (double)o->lora.alpha,
                                                     "dropout", (double)o->lora.dropout, "rslora", o->lora.rslora,
                                                     "targets", (int)o->lora.targets));
        rc = ckpt_set_json(w, j);
        json_decref(j);
    }
    if (w && rc) ckpt_abandon(w);
    else if (w) {
        rc = ckpt_commit(w);
        if (!rc) ckpt_prune(root, 2);
    }
    free(root);
    if (rc) err_wrap(rc, "saving checkpoint");
    return rc;
}

static int ckpt_load(const char *out_dir, const trainer_opts *o, const sllm_model *m, const train_param *ps, int np,
                     optim_group *groups, int64_t total_steps, ckpt_state *st, char **dir_out) {
    char *root = path_join(out_dir, "checkpoints");
    if (!root) return err_set(SLLM_ERR_NOMEM, "checkpoint: out of memory");
    ckpt_reader *r = ckpt_open_latest(root);
    int rc = SLLM_OK;
    json_t *shape = NULL;
    if (!r) {
        rc = err_wrap(SLLM_ERR_IO, "no checkpoint to resume from in %s (run with --save-every N first)", root);
        goto done;
    }
    const char *f_state = ckpt_dir(r);
    const json_t *j = ckpt_json(r);
    shape = run_shape(o, m, params_total(ps, np), total_steps);
    json_t *saved = json_object_get(j, "run");
    const char *key; json_t *v;
    json_object_foreach(shape, key, v) {
        json_t *sv = json_object_get(saved, key);
        if (!sv || !json_equal(sv, v)) {
            char *a = json_dumps(v, JSON_ENCODE_ANY), *b = sv ? json_dumps(sv, JSON_ENCODE_ANY) : NULL;
            rc = err_set(SLLM_ERR_ARG, "%s: field 'run.%s': the checkpoint has %s but this run has %s (resume with the same "
                         "model, mode, --batch/--seq/--grad-accum, --seed and --steps/--epochs)", f_state, key, b ? b : "nothing",
                         a ? a : "?");
            free(a); free(b);
            goto done;
        }
    }
    json_t *jst = json_object_get(j, "step"), *jtok = json_object_get(j, "tokens"), *jad = json_object_get(j, "adam_step");
    json_t *jfc = json_object_get(j, "fwd_count");
    if (!json_is_integer(jst) || !json_is_integer(jtok) || !json_is_integer(jad) || !json_is_integer(jfc)) {
        rc = err_set(SLLM_ERR_FORMAT, "%s: state lacks step/tokens/adam_step/fwd_count", f_state);
        goto done;
    }
    st->step = json_integer_value(jst);
    st->tokens = json_integer_value(jtok);
    st->adam_step = json_integer_value(jad);
    st->fwd_count = (uint64_t)json_integer_value(jfc);
    json_t *vl = json_object_get(j, "val_loss_initial");
    st->val_loss_initial = json_is_number(vl) ? json_number_value(vl) : NAN;
    if ((rc = ds_pos_from_json(json_object_get(j, "data_pos"), &st->pos))) { err_wrap(rc, "%s: field 'data_pos'", f_state); goto done; }
    if (!rc) rc = ckpt_each_tensor(ps, np, groups, load_tensor, (void *)r);
    if (!rc && dir_out) *dir_out = strdup(ckpt_dir(r));
done:
    json_decref(shape);
    ckpt_close(r);
    free(root);
    return rc;
}

// ---------------------------------------------------------------- the run
static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long peak_rss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static void info(const trainer_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(const trainer_opts *o, const char *fmt, ...) {
    if (o->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

// Bytes of activations one micro-batch keeps for the backward (an estimate from train_model.c's
// buffers: per layer the norms, q/k/v, attention probabilities, FFN and residuals).
static size_t activation_bytes(const sllm_model *m, int B, int T, bool checkpointing, int r) {
    const model_hparams *h = &m->hp;
    double N = (double)B * T, qd = (double)h->n_head * h->head_dim, kd = (double)h->n_head_kv * h->head_dim;
    double per_layer = N * (6.0 * h->n_embd + 3.0 * qd + 2.0 * kd + 3.0 * h->n_ff + 7.0 * r) +
                       (double)B * h->n_head * (double)T * T;
    double layers = checkpointing ? N * h->n_embd * h->n_layer + per_layer : per_layer * h->n_layer;
    double head = 2.0 * (N < 256 ? N : 256) * h->n_vocab + 8.0 * N * h->n_embd;   // loss chunk + work buffers
    return (size_t)((layers + head) * sizeof(float));
}

static void fmt_bytes(size_t b, char *buf, size_t n) {
    if (b >= (1u << 30)) snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
    else if (b >= (1u << 20)) snprintf(buf, n, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, n, "%.1f KiB", b / 1024.0);
}

static int validate(const trainer_opts *o) {
    if (!o->model_path) return err_set(SLLM_ERR_ARG, "--model is required");
    if (!o->out_dir) return err_set(SLLM_ERR_ARG, "--out DIR is required");
    if (o->n_data < 1 && !o->dry_run) return err_set(SLLM_ERR_ARG, "--data FILE is required");
    for (int i = 0; i < o->n_data; i++)
        if (!(o->data[i].ratio > 0)) return err_set(SLLM_ERR_ARG, "--data %s: ratio must be > 0", o->data[i].path);
    if (o->batch < 1 || o->seq < 2 || o->grad_accum < 1) return err_set(SLLM_ERR_ARG, "--batch, --grad-accum must be >= 1 and --seq >= 2");
    if (o->steps < 0 || (o->steps == 0 && !(o->epochs > 0))) return err_set(SLLM_ERR_ARG, "give --steps N > 0 or --epochs E > 0");
    if (!(o->val_frac >= 0 && o->val_frac < 1)) return err_set(SLLM_ERR_ARG, "--val-frac must be in [0, 1)");
    if (!(o->clip >= 0) || !(o->weight_decay >= 0)) return err_set(SLLM_ERR_ARG, "--clip and --weight-decay must be >= 0");
    return SLLM_OK;
}

int trainer_run(const trainer_opts *o, trainer_result *res) {
    memset(res, 0, sizeof *res);
    res->val_loss = res->val_loss_initial = res->train_loss = NAN;
    int rc = validate(o);
    if (rc) return rc;
    double t_start = now_s();
    sllm_model *m = NULL;
    tok *t = NULL;
    tpool *pool = NULL;
    lora_adapter *ad = NULL;
    train_model *tm = NULL;
    ds_source **srcs = NULL;
    ds_corpus **corp = NULL;
    double *weights = NULL;
    ds_loader *ld = NULL;
    ds_batch batch = {0};
    train_report *rep = NULL;
    char *ckdir = NULL, *out_path = NULL;
    glue g = {0};
    struct sigaction old_int, old_term;
    bool handlers = false;

    if ((rc = model_load(o->model_path, &m))) goto done;
    pool = tpool_new(o->threads);
    if (!o->full) {
        lora_config lc = o->lora;
        if ((rc = lora_new(m, &lc, o->seed, &ad))) goto done;
        if (ad->n_pairs == 0) {
            rc = err_set(SLLM_ERR_ARG, "--lora targets: none of the selected modules exist in this %s model", m->arch->name);
            goto done;
        }
    }
    // ---- memory plan
    model_info_t mi;
    model_info(m, &mi);
    int64_t n_train = o->full ? mi.n_params : lora_n_params(ad);
    res->n_params_trainable = n_train;
    res->mem_weights = o->full ? (size_t)mi.n_params * 4 : mi.weight_bytes + (size_t)n_train * 4;
    res->mem_grads = (size_t)n_train * 4;
    res->mem_optim = (size_t)n_train * 8;
    res->mem_activations = activation_bytes(m, o->batch, o->seq, o->checkpointing, o->full ? 0 : o->lora.r);
    if (o->dry_run) {
        char a[32], b[32], c[32], d[32], e[32];
        fmt_bytes(res->mem_weights, a, sizeof a); fmt_bytes(res->mem_grads, b, sizeof b);
        fmt_bytes(res->mem_optim, c, sizeof c); fmt_bytes(res->mem_activations, d, sizeof d);
        fmt_bytes(res->mem_weights + res->mem_grads + res->mem_optim + res->mem_activations, e, sizeof e);
        if (!o->quiet)
            printf("memory plan for %s training of %s (%s, %lld parameters, %lld trainable)\n"
                   "  weights      %12s  (%s%s)\n  gradients    %12s  (f32, trainable only)\n"
                   "  optimizer    %12s  (AdamW m + v, f32)\n  activations  %12s  (batch %d x seq %d%s)\n"
                   "  total        %12s\n",
                   o->full ? "full" : "LoRA", o->model_path, m->arch->name, (long long)mi.n_params, (long long)n_train,
                   a, o->full ? "f32 master copy of every weight" : "base as stored", o->full ? "" : " + f32 adapters", b, c, d,
                   o->batch, o->seq, o->checkpointing ? ", gradient checkpointing" : "", e);
        goto done;
    }

    // ---- data
    if ((rc = gen_load_tokenizer(m, &t))) goto done;
    g.t = t;
    g.tmpl = NULL;
    char *tmpl = o->chat_template_file ? trainer_read_template(o->chat_template_file) : trainer_chat_template(m);
    g.tmpl = tmpl;
    if (o->chat_template_file && !tmpl) { rc = SLLM_ERR_IO; goto done; }
    g.bos = trainer_token_text(t, tok_bos(t));
    g.eos = trainer_token_text(t, tok_eos(t));
    if (o->task == TRAINER_SFT && !tmpl) info(o, "sllm train: the model has no chat template; using ChatML\n");
    srcs = calloc((size_t)o->n_data, sizeof *srcs);
    corp = calloc((size_t)o->n_data, sizeof *corp);
    weights = calloc((size_t)o->n_data, sizeof *weights);
    if (!srcs || !corp || !weights) { rc = err_set(SLLM_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < o->n_data; i++) {
        ds_load_opts lo = {.on_error = o->fail_on_bad_line ? DS_ON_ERROR_FAIL : DS_ON_ERROR_SKIP,
                           .system_prompt = o->system_prompt, .max_warnings = o->quiet ? -1 : 0};
        if ((rc = ds_load(o->data[i].path, &lo, &srcs[i]))) goto done;
        ds_tok_opts to = {.mode = o->task == TRAINER_SFT ? DS_SFT : DS_CPT, .tokenize = cb_tokenize, .tok_ctx = &g,
                          .render = cb_render, .render_ctx = &g, .bos_id = tok_add_bos(t) ? tok_bos(t) : -1,
                          .eos_id = tok_eos(t), .max_tokens = o->task == TRAINER_SFT ? o->seq + 1 : 0,
                          .long_policy = DS_LONG_TRUNCATE, .max_warnings = o->quiet ? -1 : 0};
        if ((rc = ds_tokenize(srcs[i], &to, &corp[i]))) goto done;
        if (ds_corpus_count(corp[i]) == 0) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: no usable %s samples", o->data[i].path, o->task == TRAINER_SFT ? "SFT" : "text");
            goto done;
        }
        weights[i] = o->data[i].ratio;
        const ds_load_stats *ls = ds_source_stats(srcs[i]);
        const ds_tok_stats *ts = ds_corpus_stats(corp[i]);
        info(o, "data %s: %lld records (%lld malformed skipped), %lld samples, %lld tokens (%lld with loss)\n",
             o->data[i].path, (long long)ls->n_records, (long long)ls->n_malformed, (long long)ts->n_samples,
             (long long)ts->n_tokens, (long long)ts->n_loss_tokens);
    }
    int32_t pad = tok_pad(t) >= 0 ? tok_pad(t) : (tok_eos(t) >= 0 ? tok_eos(t) : 0);
    ds_loader_opts lopt = {.B = o->batch, .T = o->seq, .pack = o->pack_sft, .pad_id = pad, .seed = o->seed,
                           .val_fraction = o->val_frac};
    if ((rc = ds_loader_new(corp, weights, o->n_data, &lopt, &ld))) goto done;
    if ((rc = ds_batch_alloc(&batch, o->batch, o->seq))) goto done;
    bool have_val = false;
    for (int i = 0; i < o->n_data; i++) have_val |= ds_loader_n_val(ld, i) > 0;

    // ---- steps
    int64_t total = o->steps;
    if (total == 0) {
        double per_epoch;
        const ds_tok_stats *ts = ds_corpus_stats(corp[0]);
        double wsum = 0;
        for (int i = 0; i < o->n_data; i++) wsum += weights[i];
        double share0 = weights[0] / wsum;
        double frac_train = (double)ds_loader_n_train(ld, 0) / (double)ds_corpus_count(corp[0]);
        if (o->task == TRAINER_CPT || o->pack_sft)
            per_epoch = (double)ts->n_tokens * frac_train / share0 / ((double)o->batch * o->seq * o->grad_accum);
        else
            per_epoch = (double)ds_loader_epoch_len(ld) / ((double)o->batch * o->grad_accum);
        total = (int64_t)ceil(o->epochs * per_epoch);
        if (total < 1) total = 1;
    }
    lr_schedule sched = {.kind = o->schedule, .lr = o->lr, .min_lr = o->min_lr, .warmup_steps = o->warmup, .total_steps = total};
    if (sched.warmup_steps > total) sched.warmup_steps = total;
    if ((rc = sched_validate(&sched))) goto done;

    // ---- model + optimizer
    train_opts topt = {.checkpointing = o->checkpointing, .pool = pool, .dropout_seed = o->seed};
    if ((rc = train_model_new(m, o->full ? TRAIN_FULL : TRAIN_LORA, ad, &topt, &tm))) goto done;
    const train_param *ps;
    int np = train_params(tm, &ps);
    optim_group groups[2];
    if ((rc = train_optim_groups(tm, o->weight_decay, groups))) goto done;
    adamw opt;
    adamw_init(&opt);

    ckpt_state st = {.val_loss_initial = NAN};
    if (o->resume) {
        if ((rc = ckpt_load(o->out_dir, o, m, ps, np, groups, total, &st, &ckdir))) goto done;
        opt.step = st.adam_step;
        train_set_step_count(tm, st.fwd_count);
        if ((rc = ds_loader_seek(ld, st.pos))) goto done;
        train_sync_to_model(tm);
        info(o, "resuming from %s (step %lld of %lld)\n", ckdir, (long long)st.step, (long long)total);
    }
    res->start_step = st.step;
    res->val_loss_initial = st.val_loss_initial;
    if ((rc = report_open(o->out_dir, o->resume ? st.step : -1, total, o->progress && !o->quiet, &rep))) goto done;
    info(o, "training %s (%s): %lld trainable parameters, %lld steps of %d x %d tokens x %d micro-batches\n",
         o->model_path, o->full ? "full" : "LoRA", (long long)n_train, (long long)total, o->batch, o->seq, o->grad_accum);

    // validation loss over the whole held-out split
    double val_loss = NAN;
#define EVAL_VAL() do { \
        double vs = 0; int64_t vn = 0; int vr; \
        while ((vr = ds_loader_val_next(ld, &batch)) == 1) { \
            train_batch tb = {.B = batch.B, .T = batch.T, .ids = batch.tokens, .targets = batch.targets, \
                              .pos = batch.pos, .doc_start = batch.doc_start}; \
            double ls = 0; int64_t nt = 0; \
            if ((rc = train_eval_loss(tm, &tb, &ls, &nt))) goto done; \
            vs += ls; vn += nt; \
        } \
        if (vr < 0) { rc = vr; goto done; } \
        val_loss = vn ? vs / (double)vn : NAN; \
    } while (0)

    if (have_val && !o->resume) {
        EVAL_VAL();
        st.val_loss_initial = res->val_loss_initial = val_loss;
        report_row row = {.step = 0, .tokens = 0, .loss = NAN, .val_loss = val_loss, .lr = NAN, .grad_norm = NAN};
        if ((rc = report_add(rep, &row))) goto done;
    }

    g_stop = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    handlers = true;

    double t_loop = now_s();
    int64_t tokens_run = 0, steps_run = 0;
    double last_loss = NAN;
    bool stopped = false;
    while (st.step < total) {
        train_zero_grad(tm);
        double loss_sum = 0;
        int64_t n_tok = 0;
        for (int k = 0; k < o->grad_accum; k++) {
            if ((rc = ds_loader_next(ld, &batch))) goto done;
            train_batch tb = {.B = batch.B, .T = batch.T, .ids = batch.tokens, .targets = batch.targets,
                              .pos = batch.pos, .doc_start = batch.doc_start};
            double ls = 0; int64_t nt = 0;
            if ((rc = train_step_fwd_bwd(tm, &tb, 1.0f, &ls, &nt))) goto done;
            loss_sum += ls; n_tok += nt;
        }
        double lr = sched_lr(&sched, opt.step), gnorm = NAN, loss = NAN;
        if (n_tok > 0) {
            optim_scale_grads(groups, 2, 1.0 / (double)n_tok, pool);
            gnorm = optim_clip_grad_norm(groups, 2, o->clip, pool);
            if (!isfinite(gnorm)) {
                rc = err_set(SLLM_ERR_ARG, "step %lld: the gradient is not finite (loss %g); lower --lr", (long long)st.step + 1,
                             loss_sum / (double)n_tok);
                goto done;
            }
            adamw_step(&opt, groups, 2, lr, pool);
            train_sync_to_model(tm);
            loss = loss_sum / (double)n_tok;
        }
        st.step++;
        st.tokens += n_tok;
        tokens_run += n_tok;
        steps_run++;
        last_loss = loss;
        st.adam_step = opt.step;
        st.fwd_count = train_step_count(tm);
        st.pos = ds_loader_pos(ld);
        bool last = st.step == total;
        bool stop_now = g_stop || (o->stop_after > 0 && steps_run >= o->stop_after);
        double vl = NAN;
        if (have_val && (last || (o->eval_every > 0 && st.step % o->eval_every == 0))) { EVAL_VAL(); vl = val_loss; }
        double el = now_s() - t_loop;
        report_row row = {.step = st.step, .tokens = st.tokens, .loss = loss, .val_loss = vl, .lr = lr,
                          .grad_norm = gnorm, .tokens_per_s = el > 0 ? tokens_run / el : 0, .elapsed_s = el};
        if ((rc = report_add(rep, &row))) goto done;
        if (!isnan(vl)) res->val_loss = vl;
        if ((o->save_every > 0 && st.step % o->save_every == 0) || (stop_now && !last)) {
            if ((rc = ckpt_save(o->out_dir, o, m, ps, np, groups, &sched, &st, total))) goto done;
        }
        if (stop_now && !last) { stopped = true; break; }
    }
    double el = now_s() - t_loop;
    res->steps = st.step;
    res->tokens = st.tokens;
    res->train_loss = last_loss;
    res->elapsed_s = now_s() - t_start;
    res->tokens_per_s = el > 0 ? tokens_run / el : 0;
    if ((rc = report_close(rep))) goto done;
    if (stopped) {
        info(o, "stopped at step %lld of %lld; checkpoint saved (continue with --resume)\n", (long long)st.step, (long long)total);
        if (g_stop) rc = err_set(SLLM_ERR_ARG, "interrupted at step %lld (checkpoint saved; continue with --resume)",
                                 (long long)st.step);
        goto done;
    }
    // ---- outputs
    if (!o->full) {
        out_path = path_join(o->out_dir, "adapter");
        if (!out_path || (rc = adapter_save_peft(m, ad, out_path, o->model_path))) goto done;
        free(out_path);
        out_path = path_join(o->out_dir, "adapter.gguf");
        if (!out_path || (rc = adapter_save_gguf(m, ad, out_path))) goto done;
        info(o, "wrote %s/adapter (PEFT) and %s/adapter.gguf (llama.cpp LoRA)\n", o->out_dir, o->out_dir);
    } else {
        out_path = path_join(o->out_dir, "model.gguf");
        if (!out_path || (rc = model_save_gguf(m, out_path, -1, m->gguf))) goto done;
        free(out_path);
        out_path = path_join(o->out_dir, "hf");
        if (!out_path) { rc = err_set(SLLM_ERR_NOMEM, "out of memory"); goto done; }
        // the GGUF is the primary output; a model with no config.json form (llama.cpp rope factors)
        // still finishes, with a warning
        if (model_save_hf(m, out_path, -1) != SLLM_OK) {
            fprintf(stderr, "sllm train: warning: %s/hf not written: %s\n", o->out_dir, sllm_last_error());
            err_clear();
        } else if (m->source == MODEL_SRC_HF) {   // the tokenizer files travel with the weights
            static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                                "special_tokens_map.json"};
            for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char *src = path_join(m->path, files[i]), *dst = path_join(out_path, files[i]);
                char *data = NULL; size_t len;
                if (src && dst && fileio_read_all(src, &data, &len) == SLLM_OK) rc = fileio_write_atomic(dst, data, len);
                free(data); free(src); free(dst);
                if (rc) goto done;
            }
            err_clear();
        }
        info(o, "wrote %s/model.gguf and %s/hf/\n", o->out_dir, o->out_dir);
    }
    info(o, "wrote %s/metrics.csv and %s/loss.svg\n", o->out_dir, o->out_dir);
#undef EVAL_VAL
done:
    if (handlers) { sigaction(SIGINT, &old_int, NULL); sigaction(SIGTERM, &old_term, NULL); }
    res->peak_rss_kb = peak_rss_kb();
    if (res->elapsed_s == 0) res->elapsed_s = now_s() - t_start;
    report_free(rep);
    ds_batch_free(&batch);
    ds_loader_free(ld);
    for (int i = 0; corp && i < o->n_data; i++) ds_corpus_free(corp[i]);
    for (int i = 0; srcs && i < o->n_data; i++) ds_source_free(srcs[i]);
    free(corp); free(srcs); free(weights);
    train_model_free(tm);
    lora_free(ad);
    free((char *)g.tmpl); free(g.bos); free(g.eos);
    tok_free(t);
    model_free(m);
    tpool_free(pool);
    free(ckdir); free(out_path);
    return rc;
}

char *trainer_result_json(const trainer_opts *o, const trainer_result *r) {
    json_t *j = json_object();
    json_object_set_new(j, "task", json_string(o->task == TRAINER_SFT ? "sft" : "cpt"));
    json_object_set_new(j, "mode", json_string(o->full ? "full" : "lora"));
    json_object_set_new(j, "steps", json_integer(r->steps));
    json_object_set_new(j, "start_step", json_integer(r->start_step));
    json_object_set_new(j, "tokens", json_integer(r->tokens));
    json_object_set_new(j, "tokens_per_s", json_real(r->tokens_per_s));
    json_object_set_new(j, "train_loss", isfinite(r->train_loss) ? json_real(r->train_loss) : json_null());
    json_object_set_new(j, "val_loss", isfinite(r->val_loss) ? json_real(r->val_loss) : json_null());
    json_object_set_new(j, "val_loss_initial", isfinite(r->val_loss_initial) ? json_real(r->val_loss_initial) : json_null());
    json_object_set_new(j, "trainable_params", json_integer(r->n_params_trainable));
    json_object_set_new(j, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(j, "peak_rss_mb", json_real(r->peak_rss_kb / 1024.0));
    json_object_set_new(j, "memory_plan", json_pack("{s:I, s:I, s:I, s:I}", "weights", (json_int_t)r->mem_weights,
                                                    "gradients", (json_int_t)r->mem_grads, "optimizer", (json_int_t)r->mem_optim,
                                                    "activations", (json_int_t)r->mem_activations));
    json_object_set_new(j, "out", json_string(o->out_dir ? o->out_dir : ""));
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    return s;
}
