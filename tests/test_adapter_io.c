// LoRA adapter files: PEFT and llama.cpp GGUF round trips (exact), the q/k row order between a GGUF
// llama (permuted rows) and its Hugging Face form (same logits through either file), an independent
// PyTorch reference applying the PEFT adapter by the PEFT formula (tests/ref/peft_ref.py, 1e-4),
// merging = attaching, and clear errors for incompatible adapters.
#include "test.h"
#include <stdint.h>
#include "base/error.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/adapter_io.h"

static char tmpdir[256];
static const int32_t IDS[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 284};
#define T_IDS 10

static float *logits_of(sllm_model *m) {
    model_session *s = NULL;
    float *l = malloc((size_t)T_IDS * m->hp.n_vocab * sizeof(float));
    if (!l || model_session_new(m, 32, 0, NULL, &s) || model_forward(s, IDS, T_IDS, l, true)) {
        fprintf(stderr, "forward: %s\n", sllm_last_error());
        free(l);
        l = NULL;
    }
    model_session_free(s);
    return l;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static bool same_tensors(const lora_adapter *a, const lora_adapter *b) {
    if (lora_tensor_count(a) != lora_tensor_count(b) || a->cfg.r != b->cfg.r || fabsf(a->scaling - b->scaling) > 1e-6f) return false;
    for (int i = 0; i < lora_tensor_count(a); i++) {
        lora_tensor x, y;
        lora_tensor_get(a, i, &x);
        lora_tensor_get(b, i, &y);
        if (x.rows != y.rows || x.cols != y.cols || strcmp(x.peft_name, y.peft_name) ||
            memcmp(x.data, y.data, (size_t)(x.rows * x.cols) * sizeof(float)))
            return false;
    }
    return true;
}

// A non-trivial adapter: lora_new leaves B = 0, so B gets random values too.
static lora_adapter *random_adapter(sllm_model *m, int r, float alpha, bool rslora, uint64_t seed) {
    lora_config c = {.r = r, .alpha = alpha, .dropout = 0.05f, .rslora = rslora, .targets = LORA_ALL};
    lora_adapter *ad = NULL;
    if (lora_new(m, &c, seed, &ad)) { fprintf(stderr, "lora_new: %s\n", sllm_last_error()); return NULL; }
    rng_state rs;
    rng_seed(&rs, seed + 1);
    for (int i = 0; i < lora_tensor_count(ad); i++) {
        lora_tensor t;
        lora_tensor_get(ad, i, &t);
        if (!t.is_A)
            for (int64_t k = 0; k < t.rows * t.cols; k++) t.data[k] = 0.05f * rng_normal(&rs);
    }
    return ad;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static void test_spec(void) {
    char *p = NULL; float s = 0;
    CHECK(adapter_parse_spec("a.gguf:0.5", &p, &s) == SLLM_OK && !strcmp(p, "a.gguf") && s == 0.5f);
    free(p);
    CHECK(adapter_parse_spec("dir/with:colon", &p, &s) == SLLM_OK && !strcmp(p, "dir/with:colon") && s == 1.0f);
    free(p);
    CHECK(adapter_parse_spec("", &p, &s) == SLLM_ERR_ARG);
    CHECK(adapter_parse_spec(":2", &p, &s) == SLLM_ERR_ARG);
}

static void test_stories(const char *stories) {
    char hf[512], peft[512], gg[512], ref[512], cmd[2048];
    snprintf(hf, sizeof hf, "%s/hf", tmpdir);
    snprintf(peft, sizeof peft, "%s/peft", tmpdir);
    snprintf(gg, sizeof gg, "%s/lora.gguf", tmpdir);
    snprintf(ref, sizeof ref, "%s/ref.bin", tmpdir);
    sllm_model *mg = NULL, *mh = NULL;
    CHECK(model_load(stories, &mg) == SLLM_OK, "%s", sllm_last_error());
    CHECK(model_save_hf(mg, hf, -1) == SLLM_OK, "%s", sllm_last_error());
    CHECK(model_load(hf, &mh) == SLLM_OK, "%s", sllm_last_error());
    if (!mg || !mh) { model_free(mg); model_free(mh); return; }
    CHECK(mg->rope_style != mh->rope_style, "the GGUF and HF forms hold q/k rows in different orders");
    lora_adapter *ad = random_adapter(mg, 4, 8, false, 11);
    CHECK(ad != NULL);
    if (!ad) { model_free(mg); model_free(mh); return; }

    // round trips (exact) into the model the adapter was made for
    CHECK(adapter_save_peft(mg, ad, peft, stories) == SLLM_OK, "%s", sllm_last_error());
    CHECK(adapter_save_gguf(mg, ad, gg) == SLLM_OK, "%s", sllm_last_error());
    lora_adapter *p1 = NULL, *g1 = NULL, *ph = NULL, *gh = NULL;
    CHECK(adapter_load(mg, peft, &p1) == SLLM_OK, "%s", sllm_last_error());
    CHECK(adapter_load(mg, gg, &g1) == SLLM_OK, "%s", sllm_last_error());
    CHECK(p1 && same_tensors(ad, p1), "PEFT round trip is exact");
    CHECK(g1 && same_tensors(ad, g1), "GGUF round trip is exact");
    char cfgp[600];
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", peft);
    char *cfg = NULL; size_t cl;
    fileio_read_all(cfgp, &cfg, &cl);
    CHECK(cfg && strstr(cfg, "\"peft_type\": \"LORA\"") && strstr(cfg, "\"task_type\": \"CAUSAL_LM\"") &&
          strstr(cfg, "\"q_proj\"") && strstr(cfg, "\"down_proj\"") && strstr(cfg, "\"r\": 4"), "adapter_config.json:\n%s", cfg);
    free(cfg);
    // a file inside the PEFT directory names the directory
    snprintf(cfgp, sizeof cfgp, "%s/adapter_model.safetensors", peft);
    lora_adapter *p2 = NULL;
    CHECK(adapter_load(mg, cfgp, &p2) == SLLM_OK && p2 && same_tensors(ad, p2));
    lora_free(p2);

    // the same files applied to the HF form of the model give the same logits
    CHECK(adapter_load(mh, peft, &ph) == SLLM_OK, "%s", sllm_last_error());
    CHECK(adapter_load(mh, gg, &gh) == SLLM_OK, "%s", sllm_last_error());
    float *base = logits_of(mg);
    lora_attach(mg, ad, 1.0f);
    float *lg = logits_of(mg);
    lora_detach(mg, ad);
    int64_t n = (int64_t)T_IDS * mg->hp.n_vocab;
    if (ph && gh && base && lg) {
        CHECK(max_diff(base, lg, n) > 1e-2, "the adapter changes the logits (%g)", max_diff(base, lg, n));
        lora_attach(mh, ph, 1.0f);
        float *lh = logits_of(mh);
        lora_detach(mh, ph);
        lora_attach(mh, gh, 1.0f);
        float *lh2 = logits_of(mh);
        lora_detach(mh, gh);
        CHECK(lh && max_diff(lg, lh, n) < 1e-4, "GGUF model + adapter vs HF model + PEFT file: %g", lh ? max_diff(lg, lh, n) : -1);
        CHECK(lh2 && max_diff(lg, lh2, n) < 1e-4, "GGUF model + adapter vs HF model + GGUF LoRA: %g", lh2 ? max_diff(lg, lh2, n) : -1);

        // independent reference: PyTorch applies the PEFT adapter to the HF directory
        const char *py = getenv("SLLM_PYTHON") ? getenv("SLLM_PYTHON") : "/usr/bin/python3";
        char ids[128] = "";
        for (int i = 0; i < T_IDS; i++) snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", IDS[i]);
        snprintf(cmd, sizeof cmd, "%s -c 'import torch' 2>/dev/null", py);
        if (system(cmd) != 0) {
            SKIP("PyTorch (%s) not available: PEFT reference check skipped", py);
        } else {
            snprintf(cmd, sizeof cmd, "%s tests/ref/peft_ref.py %s %s %s %s >/dev/null", py, ids, hf, peft, ref);
            int rc = system(cmd);
            char *rb = NULL; size_t rl = 0;
            CHECK(rc == 0 && fileio_read_all(ref, &rb, &rl) == SLLM_OK && rl == (size_t)n * 4, "peft_ref.py failed (%d)", rc);
            if (rb && rl == (size_t)n * 4)
                CHECK(max_diff((const float *)rb, lh, n) < 1e-4, "sllm + PEFT adapter vs PyTorch PEFT formula: %g",
                      max_diff((const float *)rb, lh, n));
            free(rb);
        }
        free(lh); free(lh2);

        // rsLoRA: scaling alpha/sqrt(r) survives both files (GGUF stores the equivalent alpha)
        lora_adapter *rs = random_adapter(mg, 4, 8, true, 5), *rs_p = NULL, *rs_g = NULL;
        char gg2[600], peft2[600];
        snprintf(gg2, sizeof gg2, "%s/rs.gguf", tmpdir);
        snprintf(peft2, sizeof peft2, "%s/rs_peft", tmpdir);
        CHECK(rs && adapter_save_gguf(mg, rs, gg2) == SLLM_OK && adapter_save_peft(mg, rs, peft2, NULL) == SLLM_OK);
        CHECK(adapter_load(mg, gg2, &rs_g) == SLLM_OK && rs_g && fabsf(rs_g->scaling - rs->scaling) < 1e-5f,
              "rsLoRA via GGUF: %g vs %g", rs_g ? rs_g->scaling : -1, rs ? rs->scaling : -1);
        CHECK(adapter_load(mg, peft2, &rs_p) == SLLM_OK && rs_p && rs_p->cfg.rslora && fabsf(rs_p->scaling - 4.0f) < 1e-6f);
        lora_free(rs); lora_free(rs_p); lora_free(rs_g);

        // merging folds the same product into the weights
        sllm_model *mm = NULL;
        CHECK(model_load(stories, &mm) == SLLM_OK);
        if (mm) {
            CHECK(lora_merge(mm, ad, 1.0f) == SLLM_OK, "%s", sllm_last_error());
            float *lm = logits_of(mm);
            CHECK(lm && max_diff(lg, lm, n) < 1e-4, "merged vs attached: %g", lm ? max_diff(lg, lm, n) : -1);
            free(lm);
            model_free(mm);
        }
    }
    free(base); free(lg);

    // ---- incompatible adapters: clear errors naming the file
    // a model of another shape (tiny-llama: FFN 128 vs 172)
    model_init_opts io = {.preset = "tiny-llama", .type = DT_F32, .seed = 1};
    sllm_model *tiny = NULL;
    CHECK(model_init(&io, &tiny) == SLLM_OK);
    if (tiny) {
        lora_adapter *ta = random_adapter(tiny, 4, 8, false, 3), *x = NULL;
        char tp[600];
        snprintf(tp, sizeof tp, "%s/tiny_peft", tmpdir);
        CHECK(ta && adapter_save_peft(tiny, ta, tp, "tiny") == SLLM_OK);
        int rc = adapter_load(mg, tp, &x);
        CHECK(rc == SLLM_ERR_SHAPE && strstr(sllm_last_error(), "tiny_peft") && strstr(sllm_last_error(), "expected"),
              "shape mismatch: %s", sllm_last_error());
        lora_free(ta);
        model_free(tiny);
    }
    // another architecture (GGUF LoRA for qwen2)
    io.preset = "tiny-qwen2";
    CHECK(model_init(&io, &tiny) == SLLM_OK);
    if (tiny) {
        lora_adapter *ta = random_adapter(tiny, 4, 8, false, 3), *x = NULL;
        char tp[600];
        snprintf(tp, sizeof tp, "%s/qwen.gguf", tmpdir);
        CHECK(ta && adapter_save_gguf(tiny, ta, tp) == SLLM_OK);
        int rc = adapter_load(mg, tp, &x);
        CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "'qwen2'") && strstr(sllm_last_error(), "'llama'"),
              "arch mismatch: %s", sllm_last_error());
        lora_free(ta);
        model_free(tiny);
    }
    // unknown target module in adapter_config.json
    char bad[600], badcfg[700];
    snprintf(bad, sizeof bad, "%s/bad_peft", tmpdir);
    adapter_save_peft(mg, ad, bad, NULL);
    snprintf(badcfg, sizeof badcfg, "%s/adapter_config.json", bad);
    write_file(badcfg, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\", \"qkv_weird\"]}");
    lora_adapter *x = NULL;
    int rc = adapter_load(mg, bad, &x);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "qkv_weird") && strstr(sllm_last_error(), "adapter_config.json"),
          "unknown target: %s", sllm_last_error());
    // tensors for modules the config does not list
    write_file(badcfg, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}");
    rc = adapter_load(mg, bad, &x);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "target_modules"), "%s", sllm_last_error());
    write_file(badcfg, "{\"peft_type\": \"PREFIX_TUNING\"}");
    rc = adapter_load(mg, bad, &x);
    CHECK(rc == SLLM_ERR_UNSUPPORTED && strstr(sllm_last_error(), "PREFIX_TUNING"), "%s", sllm_last_error());
    write_file(badcfg, "{\"peft_type\": \"LORA\", \"r\": 4,");
    rc = adapter_load(mg, bad, &x);
    CHECK(rc == SLLM_ERR_FORMAT && strstr(sllm_last_error(), "adapter_config.json"), "%s", sllm_last_error());
    // a model file is not an adapter; a missing path; a truncated adapter
    rc = adapter_load(mg, stories, &x);
    CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "not a LoRA adapter"), "%s", sllm_last_error());
    rc = adapter_load(mg, "/nonexistent/adapter", &x);
    CHECK(rc == SLLM_ERR_IO && strstr(sllm_last_error(), "/nonexistent/adapter"), "%s", sllm_last_error());
    char *blob = NULL; size_t bl = 0;
    if (fileio_read_all(gg, &blob, &bl) == SLLM_OK) {
        fileio_write_atomic(gg, blob, bl / 2);
        rc = adapter_load(mg, gg, &x);
        CHECK(rc != SLLM_OK && strstr(sllm_last_error(), "lora.gguf"), "truncated: %s", sllm_last_error());
    }
    free(blob);
    CHECK(x == NULL);

    lora_free(ad); lora_free(p1); lora_free(g1); lora_free(ph); lora_free(gh);
    model_free(mg);
    model_free(mh);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sllm_test_adapter_%d", (int)getpid());
    fileio_mkdirs(tmpdir);
    test_spec();
    char buf[512];
    const char *stories = test_fixture("models/stories260K.gguf", buf, sizeof buf);
    if (stories) test_stories(stories);
    else SKIP("fixture models/stories260K.gguf not found: adapter file tests skipped");
    fileio_remove_tree(tmpdir);
    return test_report();
}
