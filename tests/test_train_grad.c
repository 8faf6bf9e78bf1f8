// Training engine: loss and EVERY parameter's gradient against PyTorch autograd (tests/ref/train_ref.py,
// an independent float64 forward with HF semantics), for a tiny model of each architecture, in full
// fine-tuning and in LoRA mode (f32 base, and Q8_0 / Q4_0 bases where the reference gets the
// dequantized weights), with ignored targets and packed documents. Also: checkpointing gives the
// same gradients, a few SGD steps match torch's loss sequence, LoRA inference / merge / tensors /
// dropout, and bad input errors.
// Error measure per tensor: max |ours - ref| / max |ref| (must be <= 1e-4).
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include "test.h"
#include "base/error.h"
#include "base/rng.h"
#include "formats/safetensors.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/train_model.h"

#define BATCH 2
#define SEQ 12
#define TOL 1e-4

typedef struct {
    const char *label, *preset;
    train_mode mode;
    dtype base;          // matrices' dtype of the model
    bool docs;           // row 1 packs two documents
    int sgd_steps;       // > 0: also compare an SGD loss sequence
    float sgd_lr;
    // filled in
    model_preset p;
    char dir[300], lora[300], out[300];
    int32_t ids[BATCH * SEQ], tg[BATCH * SEQ], pos[BATCH * SEQ], ds[BATCH * SEQ];
    int64_t n_tok;
    uint64_t seed;
} gcase;

#define GC(l, p, m, t, d, n, lr) {.label = l, .preset = p, .mode = m, .base = t, .docs = d, .sgd_steps = n, .sgd_lr = lr}
static gcase g_cases[] = {
    GC("llama full", "tiny-llama", TRAIN_FULL, DT_F32, false, 0, 0),
    GC("qwen2 full", "tiny-qwen2", TRAIN_FULL, DT_F32, true, 3, 0.5f),
    GC("qwen3 full", "tiny-qwen3", TRAIN_FULL, DT_F32, false, 0, 0),
    GC("gemma3 full", "tiny-gemma3", TRAIN_FULL, DT_F32, true, 0, 0),
    GC("gpt2 full", "tiny-gpt2", TRAIN_FULL, DT_F32, true, 0, 0),
    GC("llama lora", "tiny-llama", TRAIN_LORA, DT_F32, true, 3, 0.5f),
    GC("qwen2 lora", "tiny-qwen2", TRAIN_LORA, DT_F32, false, 0, 0),
    GC("qwen3 lora", "tiny-qwen3", TRAIN_LORA, DT_F32, true, 0, 0),
    GC("gemma3 lora", "tiny-gemma3", TRAIN_LORA, DT_F32, false, 0, 0),
    GC("gpt2 lora", "tiny-gpt2", TRAIN_LORA, DT_F32, false, 3, 0.5f),
    GC("qwen3 lora q8_0", "tiny-qwen3", TRAIN_LORA, DT_Q8_0, false, 0, 0),
    GC("llama lora q4_0", "tiny-llama", TRAIN_LORA, DT_Q4_0, true, 0, 0),
};
#define N_CASES (int)(sizeof g_cases / sizeof g_cases[0])

static char g_tmp[256];
static tpool *g_pool;

static sllm_model *make_model(gcase *c) {
    model_init_opts o = {.custom = &c->p, .type = c->base, .seed = c->seed, .std = 0.15f, .perturb = true};
    sllm_model *m = NULL;
    CHECK(model_init(&o, &m) == SLLM_OK, "%s: %s", c->label, sllm_last_error());
    return m;
}

// rank 4 adapter on every target with non-zero B so gradients reach A.
static lora_adapter *make_adapter(const sllm_model *m, uint64_t seed, float dropout) {
    lora_config cfg = {.r = 4, .alpha = 8, .dropout = dropout, .targets = LORA_ALL};
    lora_adapter *ad = NULL;
    CHECK(lora_new(m, &cfg, seed, &ad) == SLLM_OK, "%s", sllm_last_error());
    if (!ad) return NULL;
    rng_state r;
    rng_seed(&r, seed + 99);
    for (int i = 0; i < ad->n_pairs; i++)
        for (int64_t j = 0; j < ad->pairs[i].N * ad->cfg.r; j++) ad->pairs[i].B[j] = 0.2f * rng_normal(&r);
    return ad;
}

static void make_batch(gcase *c) {
    rng_state r;
    rng_seed(&r, c->seed * 7 + 1);
    int V = c->p.n_vocab;
    c->n_tok = 0;
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < SEQ; t++) {
            int i = b * SEQ + t;
            c->ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
            c->tg[i] = (t < 2 || t % 5 == 3) ? -1 : (int32_t)rng_below(&r, (uint64_t)V);
            bool second = c->docs && b == 1 && t >= 5;
            c->ds[i] = second ? 5 : 0;
            c->pos[i] = second ? t - 5 : t;
            c->n_tok += c->tg[i] >= 0;
        }
}

static train_batch batch_of(const gcase *c) {
    return (train_batch){.B = BATCH, .T = SEQ, .ids = c->ids, .targets = c->tg, .pos = c->pos,
                         .doc_start = c->docs ? c->ds : NULL};
}

static int write_lora(const lora_adapter *ad, const char *path) {
    st_writer *w = st_writer_new();
    for (int i = 0; i < lora_tensor_count(ad); i++) {
        lora_tensor t;
        lora_tensor_get(ad, i, &t);
        int64_t shape[2] = {t.rows, t.cols};
        st_writer_add(w, t.peft_name, DT_F32, 2, shape, t.data);
    }
    int rc = st_writer_write(w, path);
    st_writer_free(w);
    return rc;
}

static json_t *ints(const int32_t *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

// max |a - b| / max |b| over n, b possibly transposed (rows x cols of a = cols x rows of b)
static double tensor_err(const float *a, const float *b, int64_t rows, int64_t cols, bool transposed, double *ref_max) {
    double md = 0, mb = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++) {
            double x = a[r * cols + k], y = transposed ? b[k * rows + r] : b[r * cols + k];
            double d = fabs(x - y);
            if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
            if (fabs(y) > mb) mb = fabs(y);
        }
    *ref_max = mb;
    return mb > 0 ? md / mb : md;
}

// HF name of a full-mode parameter (tests map our tensors onto the reference's).
static bool hf_name(const sllm_model *m, const train_param *p, char *buf, size_t n, bool *transposed) {
    const arch_tensor *t = arch_tensor_get(m->arch, p->role);
    if (!t || !t->hf) return false;
    arch_tensor_name(buf, n, t->hf, p->layer);
    *transposed = t->hf_transposed;
    return true;
}

static void compare_grads(gcase *c, const sllm_model *m, train_model *tm, st_file *ref, double loss, int64_t nt) {
    CHECK(nt == c->n_tok, "%s: counted %lld targets, want %lld", c->label, (long long)nt, (long long)c->n_tok);
    const st_tensor *rl = st_find(ref, "loss");
    CHECK(rl != NULL, "%s: reference loss missing", c->label);
    if (rl) CHECK_CLOSE(loss / (double)nt, ((const float *)rl->data)[0], 1e-5, "%s loss", c->label);
    const train_param *ps;
    int np = train_params(tm, &ps);
    CHECK(np > 0);
    double worst = 0;
    const char *worst_name = "";
    int compared = 0;
    for (int i = 0; i < np; i++) {
        char nm[300], key[320];
        bool tr = false;
        if (c->mode == TRAIN_FULL) {
            if (!hf_name(m, &ps[i], nm, sizeof nm, &tr)) continue;
        } else {
            snprintf(nm, sizeof nm, "%s", ps[i].name);
        }
        snprintf(key, sizeof key, "grad.%s", nm);
        const st_tensor *g = st_find(ref, key);
        CHECK(g != NULL, "%s: reference gradient %s missing", c->label, key);
        if (!g) continue;
        CHECK(g->nbytes == (size_t)ps[i].n * 4, "%s: %s size", c->label, key);
        if (g->nbytes != (size_t)ps[i].n * 4) continue;
        double mb;
        double e = tensor_err(ps[i].g, g->data, ps[i].rows, ps[i].cols, tr, &mb);
        CHECK(e <= TOL, "%s: grad %s rel err %.3g (ref max %.3g)", c->label, nm, e, mb);
        CHECK(mb > 1e-7, "%s: grad %s is all zero in the reference", c->label, nm);
        if (e > worst) { worst = e; worst_name = ps[i].name; }
        compared++;
    }
    // every reference gradient was matched to one of ours
    int n_ref = 0;
    for (int64_t i = 0; i < st_count(ref); i++) n_ref += strncmp(st_get(ref, i)->name, "grad.", 5) == 0;
    CHECK(compared == n_ref, "%s: compared %d gradients, reference has %d", c->label, compared, n_ref);
    fprintf(stderr, "%-16s loss %.6f  %3d grads, worst rel err %.2g (%s)\n", c->label, loss / (double)nt, compared,
            worst, worst_name);
}

static void run_case(gcase *c, st_file *ref) {
    sllm_model *m = make_model(c);
    if (!m) return;
    lora_adapter *ad = NULL;
    if (c->mode == TRAIN_LORA) {
        ad = make_adapter(m, c->seed, 0.0f);
        if (!ad) { model_free(m); return; }
    }
    train_batch bt = batch_of(c);
    float gs = 1.0f / (float)c->n_tok;
    train_opts o = {.pool = g_pool};
    train_model *tm = NULL, *tk = NULL;
    CHECK(train_model_new(m, c->mode, ad, &o, &tm) == SLLM_OK, "%s: %s", c->label, sllm_last_error());
    if (!tm) { lora_free(ad); model_free(m); return; }
    double loss = 0;
    int64_t nt = 0;
    int rc = train_step_fwd_bwd(tm, &bt, gs, &loss, &nt);
    CHECK(rc == SLLM_OK, "%s: %s", c->label, sllm_last_error());
    if (!rc && ref) compare_grads(c, m, tm, ref, loss, nt);

    // eval loss equals the training forward's loss
    double le = 0;
    int64_t ne = 0;
    CHECK(train_eval_loss(tm, &bt, &le, &ne) == SLLM_OK && ne == nt && fabs(le - loss) <= 1e-9 * fabs(loss),
          "%s: eval loss %.9g vs %.9g", c->label, le, loss);

    // gradient checkpointing: same gradients
    o.checkpointing = true;
    CHECK(train_model_new(m, c->mode, ad, &o, &tk) == SLLM_OK, "%s: %s", c->label, sllm_last_error());
    if (tk) {
        double lk = 0;
        CHECK(train_step_fwd_bwd(tk, &bt, gs, &lk, NULL) == SLLM_OK, "%s", sllm_last_error());
        const train_param *pa, *pb;
        int na = train_params(tm, &pa), nb = train_params(tk, &pb);
        CHECK(na == nb);
        double md = 0;
        for (int i = 0; i < na && i < nb; i++)
            for (int64_t j = 0; j < pa[i].n; j++) md = fmax(md, fabs((double)pa[i].g[j] - pb[i].g[j]));
        CHECK(md <= 1e-6 && lk == loss, "%s: checkpointing changes gradients by %.3g (loss %.9g vs %.9g)", c->label,
              md, lk, loss);
        train_model_free(tk);
    }
    train_model_free(tm);
    lora_free(ad);
    model_free(m);
}

// A few plain SGD steps (p -= lr g) must follow torch's loss sequence; afterwards the inference
// forward (model_forward, adapters applied inside its matmuls) agrees with the training forward.
static void run_sgd(gcase *c, st_file *ref) {
    const st_tensor *rs = ref ? st_find(ref, "sgd_loss") : NULL;
    CHECK(rs != NULL, "%s: reference SGD losses missing", c->label);
    if (!rs) return;
    sllm_model *m = make_model(c);
    if (!m) return;
    lora_adapter *ad = NULL;
    if (c->mode == TRAIN_LORA) {
        // rebuilt from the tensors of the reference's adapter (exercises lora_from_tensors)
        lora_adapter *src = make_adapter(m, c->seed, 0.0f);
        int n = src ? lora_tensor_count(src) : 0;
        lora_named_tensor *nt = calloc((size_t)(n ? n : 1), sizeof *nt);
        for (int i = 0; i < n; i++) {
            lora_tensor t;
            lora_tensor_get(src, i, &t);
            nt[i] = (lora_named_tensor){i % 2 ? t.gguf_name : t.peft_name, t.data, t.rows, t.cols};
        }
        lora_config cfg = {.r = 0, .alpha = 8};
        CHECK(src && lora_from_tensors(m, &cfg, nt, n, &ad) == SLLM_OK, "%s: %s", c->label, sllm_last_error());
        CHECK(ad && src && ad->n_pairs == src->n_pairs && ad->cfg.r == 4 && ad->cfg.targets == src->cfg.targets);
        free(nt);
        lora_free(src);
        if (!ad) { model_free(m); return; }
    }
    train_opts o = {.pool = g_pool};
    train_model *tm = NULL;
    CHECK(train_model_new(m, c->mode, ad, &o, &tm) == SLLM_OK, "%s", sllm_last_error());
    if (!tm) { lora_free(ad); model_free(m); return; }
    train_batch bt = batch_of(c);
    const train_param *ps;
    int np = train_params(tm, &ps);
    // optimizer groups: decayed matrices first, then norms/biases, same tensors as train_params
    optim_group gr[2];
    CHECK(train_optim_groups(tm, 0.1, gr) == SLLM_OK && gr[0].n_params + gr[1].n_params == np);
    CHECK(gr[0].weight_decay == 0.1 && gr[1].weight_decay == 0.0);
    int nd = 0, gi[2] = {0, 0};
    for (int i = 0; i < np; i++) {
        nd += ps[i].decay;
        CHECK(ps[i].decay == (ps[i].rows > 1) || c->mode == TRAIN_LORA, "%s: %s decay", c->label, ps[i].name);
        int g = ps[i].decay ? 0 : 1;
        if (gi[g] < gr[g].n_params) {
            const optim_param *op = &gr[g].params[gi[g]++];
            CHECK(op->p == ps[i].p && op->g == ps[i].g && op->n == ps[i].n && op->m && op->v && op->m[0] == 0);
        }
    }
    CHECK(nd == gr[0].n_params && (c->mode == TRAIN_FULL ? gr[1].n_params > 0 : gr[1].n_params == 0));
    double first = 0, last = 0;
    for (int s = 0; s < c->sgd_steps; s++) {
        double l = 0;
        int64_t nt = 0;
        train_zero_grad(tm);
        CHECK(train_step_fwd_bwd(tm, &bt, 1.0f / (float)c->n_tok, &l, &nt) == SLLM_OK, "%s", sllm_last_error());
        for (int i = 0; i < np; i++)
            for (int64_t j = 0; j < ps[i].n; j++) ps[i].p[j] -= c->sgd_lr * ps[i].g[j];
        double want = ((const float *)rs->data)[s];
        CHECK_CLOSE(l / (double)nt, want, 1e-5, "%s SGD step %d", c->label, s);
        if (s == 0) first = l / (double)nt;
        last = l / (double)nt;
    }
    CHECK(last < first, "%s: SGD did not reduce the loss (%.5f -> %.5f)", c->label, first, last);
    train_sync_to_model(tm);
    // inference forward of row 0 (one document, positions 0..T-1) vs the training forward
    train_batch b0 = {.B = 1, .T = SEQ, .ids = c->ids, .targets = c->tg};
    double le = 0;
    int64_t ne = 0;
    CHECK(train_eval_loss(tm, &b0, &le, &ne) == SLLM_OK);
    model_session *s = NULL;
    float *lg = malloc((size_t)SEQ * c->p.n_vocab * sizeof(float));
    CHECK(model_session_new(m, SEQ, SEQ, g_pool, &s) == SLLM_OK && model_forward(s, c->ids, SEQ, lg, true) == SLLM_OK,
          "%s", sllm_last_error());
    double li = 0;
    for (int t = 0; t < SEQ; t++)
        if (c->tg[t] >= 0) {
            const float *z = lg + (size_t)t * c->p.n_vocab;
            double mx = z[0], sum = 0;
            for (int v = 0; v < c->p.n_vocab; v++) mx = fmax(mx, z[v]);
            for (int v = 0; v < c->p.n_vocab; v++) sum += exp(z[v] - mx);
            li += mx + log(sum) - z[c->tg[t]];
        }
    CHECK(fabs(li - le) <= 1e-4 * fabs(le), "%s: inference loss %.7g vs training forward %.7g", c->label, li, le);
    model_session_free(s);
    free(lg);
    train_model_free(tm);
    lora_free(ad);
    model_free(m);
}

static float *logits_of(const sllm_model *m, const int32_t *ids, int T) {
    model_session *s = NULL;
    float *lg = malloc((size_t)T * m->hp.n_vocab * sizeof(float));
    if (model_session_new(m, T, T, g_pool, &s) || model_forward(s, ids, T, lg, true)) {
        fprintf(stderr, "forward: %s\n", sllm_last_error());
        free(lg);
        lg = NULL;
    }
    model_session_free(s);
    return lg;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

// Attach / detach / merge, multiple adapters, names; GPT-2's fused c_attn.
static void test_lora_inference(const char *preset) {
    model_preset p = *model_preset_get(preset);
    model_init_opts o = {.custom = &p, .type = DT_F32, .seed = 5, .std = 0.15f, .perturb = true};
    sllm_model *m = NULL;
    CHECK(model_init(&o, &m) == SLLM_OK);
    if (!m) return;
    lora_adapter *a1 = make_adapter(m, 11, 0), *a2 = make_adapter(m, 12, 0);
    int32_t ids[10] = {1, 5, 9, 200, 3, 17, 45, 99, 7, 150};
    size_t n = (size_t)10 * p.n_vocab;
    float *base = logits_of(m, ids, 10);
    CHECK(lora_attach(m, a1, 1.0f) == SLLM_OK && lora_attach(m, a2, 0.5f) == SLLM_OK && m->n_lora == 2);
    float *both = logits_of(m, ids, 10);
    CHECK(lora_detach(m, a2) == SLLM_OK && m->n_lora == 1);
    CHECK(lora_detach(m, a2) == SLLM_ERR_ARG);
    float *one = logits_of(m, ids, 10);
    CHECK(base && both && one && max_diff(base, one, n) > 1e-2 && max_diff(one, both, n) > 1e-2,
          "%s: adapters do not change the logits", preset);
    // merge a1 (detaches it) and a2 at 0.5: the merged model's plain forward equals the attached one
    CHECK(lora_merge(m, a1, 1.0f) == SLLM_OK && m->n_lora == 0, "%s", sllm_last_error());
    float *merged1 = logits_of(m, ids, 10);
    CHECK(merged1 && one && max_diff(merged1, one, n) <= 1e-4, "%s: merged vs attached differ by %.3g", preset,
          merged1 && one ? max_diff(merged1, one, n) : -1);
    CHECK(lora_merge(m, a2, 0.5f) == SLLM_OK);
    float *merged2 = logits_of(m, ids, 10);
    CHECK(merged2 && both && max_diff(merged2, both, n) <= 1e-4, "%s: merged two adapters differ", preset);
    // names and shapes
    lora_tensor t;
    CHECK(lora_tensor_get(a1, 0, &t) == SLLM_OK && t.is_A && t.rows == 4);
    if (!strcmp(p.arch, "gpt2")) {
        CHECK(!strcmp(t.peft_name, "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"), "%s", t.peft_name);
        CHECK(!strcmp(t.gguf_name, "blk.0.attn_qkv.weight.lora_a"), "%s", t.gguf_name);
        CHECK(t.cols == p.n_embd && a1->pairs[0].N == 3 * p.n_embd);
        CHECK(lora_n_params(a1) == (int64_t)p.n_layer * 4 * (p.n_embd + 3 * p.n_embd + p.n_embd + p.n_embd +
                                                            p.n_embd + p.n_ff + p.n_ff + p.n_embd));
    } else {
        CHECK(!strcmp(t.peft_name, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), "%s", t.peft_name);
        CHECK(!strcmp(t.gguf_name, "blk.0.attn_q.weight.lora_a"), "%s", t.gguf_name);
        CHECK(lora_tensor_get(a1, 1, &t) == SLLM_OK && !t.is_A && t.cols == 4 && t.rows == p.n_head * p.head_dim);
        CHECK(!strcmp(t.gguf_name, "blk.0.attn_q.weight.lora_b"), "%s", t.gguf_name);
    }
    CHECK(lora_tensor_get(a1, lora_tensor_count(a1), &t) == SLLM_ERR_ARG);
    free(base); free(both); free(one); free(merged1); free(merged2);
    lora_free(a1); lora_free(a2);
    model_free(m);
}

// Dropout: eval has none; training masks are a function of the step counter, and the gradient is
// the derivative of the masked loss (central differences along the gradient).
static void test_dropout(void) {
    gcase c = {.label = "dropout", .preset = "tiny-qwen3", .seed = 77};
    c.p = *model_preset_get(c.preset);
    make_batch(&c);
    sllm_model *m = make_model(&c);
    if (!m) return;
    lora_adapter *ad = make_adapter(m, 3, 0.3f);
    train_model *tm = NULL;
    train_opts o = {.pool = g_pool, .dropout_seed = 42};
    CHECK(ad && train_model_new(m, TRAIN_LORA, ad, &o, &tm) == SLLM_OK, "%s", sllm_last_error());
    if (!tm) { lora_free(ad); model_free(m); return; }
    train_batch bt = batch_of(&c);
    float gs = 1.0f / (float)c.n_tok;
    double le, l1, l2, lp, lm;
    CHECK(train_eval_loss(tm, &bt, &le, NULL) == SLLM_OK);
    train_set_step_count(tm, 10);
    CHECK(train_step_fwd_bwd(tm, &bt, gs, &l1, NULL) == SLLM_OK && train_step_count(tm) == 11);
    CHECK(fabs(l1 - le) > 1e-4 * fabs(le), "dropout does not change the training loss");
    const train_param *ps;
    int np = train_params(tm, &ps);
    int64_t tot = 0;
    for (int i = 0; i < np; i++) tot += ps[i].n;
    float *g = malloc((size_t)tot * sizeof(float));
    double g2 = 0;
    int64_t k = 0;
    for (int i = 0; i < np; i++)
        for (int64_t j = 0; j < ps[i].n; j++) { g[k++] = ps[i].g[j]; g2 += (double)ps[i].g[j] * ps[i].g[j]; }
    train_set_step_count(tm, 10);
    train_zero_grad(tm);
    CHECK(train_step_fwd_bwd(tm, &bt, gs, &l2, NULL) == SLLM_OK);
    CHECK(l1 == l2, "same step count, different masks (%.9g vs %.9g)", l1, l2);
    double eps = 1e-2 / g2;
    for (int sgn = 1; sgn >= -1; sgn -= 2) {
        k = 0;
        for (int i = 0; i < np; i++)
            for (int64_t j = 0; j < ps[i].n; j++) ps[i].p[j] += (float)(sgn * eps) * g[k++];
        train_set_step_count(tm, 10);
        CHECK(train_step_fwd_bwd(tm, &bt, gs, sgn > 0 ? &lp : &lm, NULL) == SLLM_OK);
        k = 0;
        for (int i = 0; i < np; i++)
            for (int64_t j = 0; j < ps[i].n; j++) ps[i].p[j] -= (float)(sgn * eps) * g[k++];
    }
    double fd = (lp - lm) * gs / (2 * eps);
    CHECK(fabs(fd - g2) <= 2e-2 * g2, "dropout gradient: finite difference %.6g vs |g|^2 %.6g", fd, g2);
    free(g);
    train_model_free(tm);
    lora_free(ad);
    model_free(m);
}

static void test_errors(void) {
    model_preset p = *model_preset_get("tiny-gpt2");
    model_init_opts o = {.custom = &p, .type = DT_F32, .seed = 1};
    sllm_model *m = NULL;
    CHECK(model_init(&o, &m) == SLLM_OK);
    if (!m) return;
    lora_adapter *ad = NULL;
    lora_config bad_r = {.r = 0, .alpha = 8, .targets = LORA_ALL};
    CHECK(lora_new(m, &bad_r, 1, &ad) == SLLM_ERR_ARG && ad == NULL);
    lora_config gate = {.r = 4, .alpha = 8, .targets = LORA_GATE};
    CHECK(lora_new(m, &gate, 1, &ad) == SLLM_ERR_ARG && strstr(sllm_last_error(), "gpt2"), "%s", sllm_last_error());
    lora_config drop = {.r = 4, .alpha = 8, .dropout = 1.0f, .targets = LORA_ALL};
    CHECK(lora_new(m, &drop, 1, &ad) == SLLM_ERR_ARG && strstr(sllm_last_error(), "dropout"));
    unsigned mask = 0;
    CHECK(lora_parse_targets("q_proj,v_proj", &mask) == SLLM_OK && mask == (LORA_Q | LORA_V));
    CHECK(lora_parse_targets("c_attn, c_fc", &mask) == SLLM_OK && mask == (LORA_Q | LORA_K | LORA_V | LORA_UP));
    CHECK(lora_parse_targets("q,bogus", &mask) == SLLM_ERR_ARG && strstr(sllm_last_error(), "bogus"));
    // adapter tensors of the wrong shape / unknown names
    float A[4 * 64] = {0};
    lora_named_tensor t1[2] = {{"blk.0.attn_qkv.weight.lora_a", A, 4, 64}, {"blk.0.attn_qkv.weight.lora_b", A, 64, 4}};
    lora_config cfg = {.alpha = 8};
    CHECK(lora_from_tensors(m, &cfg, t1, 2, &ad) == SLLM_ERR_SHAPE && strstr(sllm_last_error(), "lora_b"),
          "%s", sllm_last_error());
    lora_named_tensor t2[1] = {{"blk.0.attn_nope.weight.lora_a", A, 4, 64}};
    CHECK(lora_from_tensors(m, &cfg, t2, 1, &ad) == SLLM_ERR_FORMAT && strstr(sllm_last_error(), "attn_nope"));
    CHECK(lora_from_tensors(m, &cfg, t1, 1, &ad) == SLLM_ERR_FORMAT && strstr(sllm_last_error(), "lora_B"),
          "%s", sllm_last_error());
    // bad batches
    train_model *tm = NULL;
    train_opts to = {.n_threads = 1};
    CHECK(train_model_new(m, TRAIN_LORA, NULL, &to, &tm) == SLLM_ERR_ARG && !tm);
    CHECK(train_model_new(m, TRAIN_FULL, NULL, &to, &tm) == SLLM_OK);
    if (tm) {
        int32_t ids[4] = {1, 2, 3, 999}, tg[4] = {2, 3, -1, 1}, ds[4] = {0, 0, 3, 0};
        train_batch b = {.B = 1, .T = 4, .ids = ids, .targets = tg};
        CHECK(train_step_fwd_bwd(tm, &b, 1, NULL, NULL) == SLLM_ERR_ARG && strstr(sllm_last_error(), "999"));
        ids[3] = 4;
        b.doc_start = ds;
        CHECK(train_step_fwd_bwd(tm, &b, 1, NULL, NULL) == SLLM_ERR_ARG && strstr(sllm_last_error(), "doc_start"));
        b.doc_start = NULL;
        int32_t pos[4] = {0, 1, 2, 5000};
        b.pos = pos;
        CHECK(train_step_fwd_bwd(tm, &b, 1, NULL, NULL) == SLLM_ERR_ARG && strstr(sllm_last_error(), "position"));
        b.pos = NULL;
        b.B = 0;
        CHECK(train_step_fwd_bwd(tm, &b, 1, NULL, NULL) == SLLM_ERR_ARG);
        // a larger batch after a smaller one regrows the buffers
        b.B = 1;
        double l1, l2;
        int64_t n1, n2;
        CHECK(train_eval_loss(tm, &b, &l1, &n1) == SLLM_OK && n1 == 3);
        int32_t ids2[16], tg2[16];
        for (int i = 0; i < 16; i++) { ids2[i] = ids[i % 4]; tg2[i] = i < 4 ? tg[i] : -1; }
        train_batch b2 = {.B = 2, .T = 8, .ids = ids2, .targets = tg2};
        CHECK(train_eval_loss(tm, &b2, &l2, &n2) == SLLM_OK && n2 == 3 && fabs(l1 - l2) < 1e-5, "%g vs %g", l1, l2);
        train_model_free(tm);
    }
    model_free(m);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sllm_train_grad_%d", (int)getpid());
    mkdir(g_tmp, 0700);
    g_pool = tpool_new(2);
    // build every case's model + adapter + batch and one spec for a single torch run
    json_t *spec = json_object(), *cases = json_array();
    for (int i = 0; i < N_CASES; i++) {
        gcase *c = &g_cases[i];
        c->p = *model_preset_get(c->preset);
        if (!strcmp(c->preset, "tiny-gemma3")) c->p.final_softcap = 3.0f;
        c->seed = 1000 + (uint64_t)i;
        make_batch(c);
        sllm_model *m = make_model(c);
        if (!m) continue;
        snprintf(c->dir, sizeof c->dir, "%s/case%d", g_tmp, i);
        snprintf(c->out, sizeof c->out, "%s/case%d.ref.safetensors", g_tmp, i);
        CHECK(model_save_hf(m, c->dir, DT_F32) == SLLM_OK, "%s", sllm_last_error());
        json_t *jc = json_object(), *jb = json_object();
        json_object_set_new(jc, "dir", json_string(c->dir));
        json_object_set_new(jc, "out", json_string(c->out));
        json_object_set_new(jc, "mode", json_string(c->mode == TRAIN_FULL ? "full" : "lora"));
        json_object_set_new(jb, "B", json_integer(BATCH));
        json_object_set_new(jb, "T", json_integer(SEQ));
        json_object_set_new(jb, "ids", ints(c->ids, BATCH * SEQ));
        json_object_set_new(jb, "targets", ints(c->tg, BATCH * SEQ));
        json_object_set_new(jb, "pos", ints(c->pos, BATCH * SEQ));
        json_object_set_new(jb, "doc_start", c->docs ? ints(c->ds, BATCH * SEQ) : json_null());
        json_object_set_new(jc, "batch", jb);
        if (c->mode == TRAIN_LORA) {
            lora_adapter *ad = make_adapter(m, c->seed, 0.0f);
            snprintf(c->lora, sizeof c->lora, "%s/case%d.lora.safetensors", g_tmp, i);
            CHECK(ad && write_lora(ad, c->lora) == SLLM_OK, "%s", sllm_last_error());
            json_t *jl = json_object();
            json_object_set_new(jl, "file", json_string(c->lora));
            json_object_set_new(jl, "scaling", json_real(ad ? ad->scaling : 0));
            json_object_set_new(jc, "lora", jl);
            lora_free(ad);
        }
        if (c->sgd_steps) {
            json_t *js = json_object();
            json_object_set_new(js, "lr", json_real(c->sgd_lr));
            json_object_set_new(js, "steps", json_integer(c->sgd_steps));
            json_object_set_new(jc, "sgd", js);
        }
        json_array_append_new(cases, jc);
        model_free(m);
    }
    json_object_set_new(spec, "cases", cases);
    char spec_path[300], cmd[1024];
    snprintf(spec_path, sizeof spec_path, "%s/spec.json", g_tmp);
    json_dump_file(spec, spec_path, JSON_INDENT(1));
    json_decref(spec);
    const char *py = getenv("SLLM_PYTHON") ? getenv("SLLM_PYTHON") : "/usr/bin/python3";
    snprintf(cmd, sizeof cmd, "%s tests/ref/train_ref.py %s 2>&1", py, spec_path);
    bool have_ref = access(py, X_OK) == 0 && system(cmd) == 0;
    if (!have_ref) SKIP("PyTorch reference (%s tests/ref/train_ref.py) failed or missing: gradients not checked against torch", py);

    for (int i = 0; i < N_CASES; i++) {
        gcase *c = &g_cases[i];
        st_file *ref = have_ref ? st_open(c->out) : NULL;
        if (have_ref) CHECK(ref != NULL, "%s: %s", c->label, sllm_last_error());
        run_case(c, ref);
        if (c->sgd_steps && ref) run_sgd(c, ref);
        if (ref) st_close(ref);
    }
    test_lora_inference("tiny-qwen2");
    test_lora_inference("tiny-gpt2");
    test_dropout();
    test_errors();
    tpool_free(g_pool);
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return test_report();
}
