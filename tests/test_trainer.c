// The training loop: a tiny model overfits a small text (loss -> ~0), an interrupted and resumed run
// reproduces the uninterrupted one exactly (metrics.csv rows, adapter bytes), checkpoints survive a
// stale half-written directory, resume refuses a changed run shape, malformed data lines are reported
// as FILE:LINE, the LoRA spec parser rejects unknown parts, metrics.csv/loss.svg are written, and
// the dry-run memory plan adds up.
#include "test.h"
#include <sys/stat.h>
#include "base/error.h"
#include "base/fileio.h"
#include "model/model.h"
#include "train/report.h"
#include "train/trainer.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

// metrics.csv without the two wall-clock columns
static char *deterministic_csv(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    char *s = test_read_file(p, NULL);
    if (!s) return NULL;
    char *out = malloc(strlen(s) + 1), *o = out;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        int commas = 0;
        for (size_t i = 0; i < len; i++) {
            if (line[i] == ',' && ++commas == 6) break;
            *o++ = line[i];
        }
        *o++ = '\n';
        if (!nl) break;
        line = nl + 1;
    }
    *o = 0;
    free(s);
    return out;
}

static trainer_opts base_opts(const char *model, const trainer_data *d, int nd, const char *out) {
    trainer_opts o;
    trainer_opts_default(&o);
    o.model_path = model;
    o.data = d;
    o.n_data = nd;
    o.out_dir = out;
    o.quiet = true;
    o.progress = false;
    o.threads = 2;
    return o;
}

static void test_overfit(const char *vocab) {
    char model[512], text[512], out[512];
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    snprintf(text, sizeof text, "%s/one.txt", tmpdir);
    snprintf(out, sizeof out, "%s/overfit", tmpdir);
    gguf_file *vf = gguf_open(vocab);
    CHECK(vf != NULL, "%s", sllm_last_error());
    if (!vf) return;
    // tiny-llama's shape with the vocabulary of the tokenizer it carries
    const gguf_kv *toks = gguf_find(vf, "tokenizer.ggml.tokens");
    model_preset pre = *model_preset_get("tiny-llama");
    pre.n_vocab = toks ? (int)toks->arr_n : 512;
    pre.l3_factor = 0;   // plain rope, so the HF export has a config.json form
    model_init_opts io = {.custom = &pre, .type = DT_F32, .seed = 3};
    sllm_model *im = NULL;
    int rc = model_init(&io, &im);
    if (rc == SLLM_OK) rc = model_save_gguf(im, model, -1, vf);
    model_free(im);
    gguf_close(vf);
    CHECK(rc == SLLM_OK, "%s", sllm_last_error());
    write_file(text, "The little red hen found a seed. She planted the seed and it grew into a tall plant.\n");
    trainer_data d = {text, 1};
    trainer_opts o = base_opts(model, &d, 1, out);
    o.full = true;
    o.steps = 250;
    o.batch = 1;
    o.seq = 32;
    o.lr = 5e-3;
    // cosine decay: at a constant 5e-3 AdamW keeps kicking the memorized sentence (loss spikes to ~0.2
    // between ~0.01 steps), so the last step's loss would depend on rounding order, not on learning
    o.schedule = SCHED_COSINE;
    o.val_frac = 0;
    o.clip = 1.0;
    trainer_result r;
    rc = trainer_run(&o, &r);
    CHECK(rc == SLLM_OK, "%s", sllm_last_error());
    CHECK(r.steps == 250);
    CHECK(r.train_loss < 0.1, "a tiny model should memorize one sentence (loss starts near ln 512 = 6.2): final loss %g", r.train_loss);
    char p[600];
    snprintf(p, sizeof p, "%s/model.gguf", out);
    sllm_model *m = NULL;
    CHECK(model_load(p, &m) == SLLM_OK, "the full fine-tune output loads: %s", sllm_last_error());
    model_free(m);
    snprintf(p, sizeof p, "%s/hf/config.json", out);
    CHECK(access(p, R_OK) == 0, "hf/ written");
    snprintf(p, sizeof p, "%s/loss.svg", out);
    char *svg = test_read_file(p, NULL);
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "<polyline") && strstr(svg, "</svg>"), "loss.svg is a line chart");
    free(svg);
}

static void test_resume(const char *stories, const char *corpus) {
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/run_a", tmpdir);
    snprintf(b, sizeof b, "%s/run_b", tmpdir);
    snprintf(c, sizeof c, "%s/run_c", tmpdir);
    trainer_data d = {corpus, 1};
    trainer_opts o = base_opts(stories, &d, 1, a);
    o.steps = 10;
    o.batch = 2;
    o.seq = 128;   // each held-out paragraph fits one validation batch (see the report on ds_loader_val_next)
    o.lr = 3e-3;
    o.warmup = 2;
    o.val_frac = 0.2;
    o.eval_every = 3;
    o.lora.r = 4;
    o.lora.dropout = 0.1f;   // exercises the restored dropout counter
    o.save_every = 3;
    trainer_result ra, rb;
    int rc = trainer_run(&o, &ra);
    CHECK(rc == SLLM_OK, "%s", sllm_last_error());
    // interrupted after 4 steps (a checkpoint is saved at the stop), then resumed
    o.out_dir = b;
    o.stop_after = 4;
    rc = trainer_run(&o, &rb);
    CHECK(rc == SLLM_OK && rb.steps == 4, "stop after 4: rc %d steps %lld %s", rc, (long long)rb.steps, sllm_last_error());
    char p[600];
    snprintf(p, sizeof p, "%s/adapter.gguf", b);
    CHECK(access(p, F_OK) != 0, "an interrupted run writes no final adapter");
    // a half-written newer checkpoint (as a crash mid-save leaves it) is ignored
    snprintf(p, sizeof p, "%s/checkpoints/.tmp-step-00000099-abcdef", b);
    fileio_mkdirs(p);
    o.stop_after = 0;
    o.resume = true;
    rc = trainer_run(&o, &rb);
    CHECK(rc == SLLM_OK, "resume: %s", sllm_last_error());
    CHECK(rb.start_step == 4 && rb.steps == 10, "resumed from %lld to %lld", (long long)rb.start_step, (long long)rb.steps);
    char *ca = deterministic_csv(a), *cb = deterministic_csv(b);
    CHECK(ca && cb && !strcmp(ca, cb), "metrics.csv of the resumed run equals the uninterrupted one:\n%s\nvs\n%s", ca, cb);
    free(ca); free(cb);
    CHECK(isfinite(ra.val_loss) && ra.val_loss == rb.val_loss, "validation loss %g vs %g", ra.val_loss, rb.val_loss);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/adapter/adapter_model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/adapter/adapter_model.safetensors", b);
    char *da = NULL, *db = NULL; size_t la = 0, lb = 0;
    fileio_read_all(pa, &da, &la);
    fileio_read_all(pb, &db, &lb);
    CHECK(da && db && la == lb && !memcmp(da, db, la), "adapters are bit-identical");
    free(da); free(db);
    snprintf(p, sizeof p, "%s/checkpoints/latest", b);
    char *latest = test_read_file(p, NULL);
    CHECK(latest && !strncmp(latest, "step-00000009", 13), "latest checkpoint: %s", latest ? latest : "(none)");
    free(latest);

    // resuming with another batch shape is refused, naming the field
    trainer_opts o2 = o;
    o2.batch = 3;
    rc = trainer_run(&o2, &rb);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "run.batch"), "changed batch: %s", sllm_last_error());
    // nothing to resume from
    o2 = o;
    o2.out_dir = c;
    rc = trainer_run(&o2, &rb);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "no checkpoint"), "%s", sllm_last_error());
}

static void test_bad_lines(const char *stories) {
    char path[512], out[512];
    snprintf(path, sizeof path, "%s/bad.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/bad_out", tmpdir);
    write_file(path, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello there\"}]}\n"
                     "{\"messages\": [oops\n"
                     "{\"prompt\":\"what is up\",\"completion\":\"the sky\"}\n");
    trainer_data d = {path, 1};
    trainer_opts o = base_opts(stories, &d, 1, out);
    o.task = TRAINER_SFT;
    o.steps = 1;
    o.batch = 1;
    o.seq = 64;
    o.val_frac = 0;
    o.fail_on_bad_line = true;
    trainer_result r;
    int rc = trainer_run(&o, &r);
    char want[600];
    snprintf(want, sizeof want, "%s:2", path);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), want), "fail policy names FILE:LINE: %s", sllm_last_error());
    o.fail_on_bad_line = false;
    rc = trainer_run(&o, &r);
    CHECK(rc == SLLM_OK && r.steps == 1, "skip policy trains on the good lines: %s", sllm_last_error());
    // a data file that does not exist
    trainer_data d2 = {"/nonexistent/x.txt", 1};
    o.data = &d2;
    rc = trainer_run(&o, &r);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "/nonexistent/x.txt"), "%s", sllm_last_error());
}

static void test_lora_spec(void) {
    lora_config c = {.r = 16, .alpha = 32, .dropout = 0.05f, .targets = LORA_ALL};
    CHECK(trainer_parse_lora("r=8,alpha=16,dropout=0.1,targets=q,k,v,o,rslora", &c) == SLLM_OK, "%s", sllm_last_error());
    CHECK(c.r == 8 && c.alpha == 16 && fabsf(c.dropout - 0.1f) < 1e-7 && c.rslora);
    CHECK(c.targets == (LORA_Q | LORA_K | LORA_V | LORA_O), "targets 0x%x", c.targets);
    CHECK(trainer_parse_lora("targets=gate,up,down,r=4", &c) == SLLM_OK && c.r == 4 && c.targets == LORA_MLP);
    int rc = trainer_parse_lora("r=8,targets=q,qq_proj", &c);
    CHECK(rc == SLLM_ERR_ARG && strstr(sllm_last_error(), "qq_proj"), "unknown target named: %s", sllm_last_error());
    CHECK(trainer_parse_lora("r=0", &c) == SLLM_ERR_ARG);
    CHECK(trainer_parse_lora("rank=4", &c) == SLLM_ERR_ARG && strstr(sllm_last_error(), "rank"));
    CHECK(trainer_parse_lora("dropout=1.5", &c) == SLLM_ERR_ARG);
}

static void test_metrics_report(void) {
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/rep", tmpdir);
    train_report *r;
    CHECK(report_open(dir, -1, 4, false, &r) == SLLM_OK);
    for (int s = 0; s <= 4; s++) {
        report_row row = {.step = s, .tokens = 10 * s, .loss = s ? 3.0 / s : NAN, .val_loss = s % 2 == 0 ? 2.5 - 0.1 * s : NAN,
                          .lr = 1e-3, .grad_norm = 1, .tokens_per_s = 100, .elapsed_s = s};
        report_add(r, &row);
    }
    CHECK(report_close(r) == SLLM_OK, "%s", sllm_last_error());
    report_free(r);
    // reopening for a resume at step 2 keeps rows 0..2 only
    CHECK(report_open(dir, 2, 4, false, &r) == SLLM_OK);
    report_free(r);
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    char *csv = test_read_file(p, NULL);
    int lines = 0;
    for (char *q = csv; q && *q; q++) lines += *q == '\n';
    CHECK(lines == 4, "header + steps 0..2, got %d lines:\n%s", lines, csv);
    CHECK(csv && !strstr(csv, "\n3,"), "rows after the checkpoint dropped");
    free(csv);
    snprintf(p, sizeof p, "%s/loss.svg", dir);
    char *svg = test_read_file(p, NULL);
    CHECK(svg && strstr(svg, "validation loss (3)") && strstr(svg, "train loss (4)"), "legend counts");
    free(svg);
    char buf[32];
    report_fmt_duration(3725, buf, sizeof buf);
    CHECK(!strcmp(buf, "1:02:05"), "%s", buf);
    // a corrupt CSV is an error naming the line
    snprintf(p, sizeof p, "%s/bad.csv", dir);
    write_file(p, "step,loss\n1,2.0\n2,abc\n");
    char svgp[600];
    snprintf(svgp, sizeof svgp, "%s/bad.svg", dir);
    CHECK(report_plot_svg(p, svgp, "x") == SLLM_ERR_FORMAT && strstr(sllm_last_error(), "bad.csv:3"), "%s", sllm_last_error());
}

static void test_dry_run(const char *stories) {
    char out[512];
    snprintf(out, sizeof out, "%s/dry", tmpdir);
    trainer_opts o = base_opts(stories, NULL, 0, out);
    o.dry_run = true;
    o.lora.r = 8;
    o.batch = 2;
    o.seq = 64;
    trainer_result r;
    fflush(stdout);
    int rc = trainer_run(&o, &r);
    CHECK(rc == SLLM_OK, "%s", sllm_last_error());
    CHECK(r.n_params_trainable > 0 && r.mem_grads == (size_t)r.n_params_trainable * 4 &&
          r.mem_optim == 2 * r.mem_grads && r.mem_activations > 0, "plan %zu %zu %zu", r.mem_grads, r.mem_optim,
          r.mem_activations);
    o.checkpointing = true;
    trainer_result r2;
    trainer_run(&o, &r2);
    CHECK(r2.mem_activations < r.mem_activations, "checkpointing needs less activation memory");
    o.full = true;
    trainer_run(&o, &r2);
    CHECK(r2.n_params_trainable == 292800, "full: %lld trainable", (long long)r2.n_params_trainable);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sllm_test_trainer_%d", (int)getpid());
    fileio_mkdirs(tmpdir);
    char b1[512], b2[512];
    const char *stories = test_fixture("models/stories260K.gguf", b1, sizeof b1);
    const char *corpus = access("data/demo/corpus.txt", R_OK) == 0 ? "data/demo/corpus.txt" : NULL;
    (void)b2;
    test_lora_spec();
    test_metrics_report();
    if (stories) {
        test_overfit(stories);
        test_dry_run(stories);
        test_bad_lines(stories);
        if (corpus) test_resume(stories, corpus);
        else SKIP("data/demo/corpus.txt not found (run from the repository root)");
    } else {
        SKIP("fixture models/stories260K.gguf not found: training tests skipped");
    }
    if (!getenv("SLLM_KEEP_TMP")) fileio_remove_tree(tmpdir);   // set it to inspect the runs' outputs
    else printf("kept %s\n", tmpdir);
    return test_report();
}
