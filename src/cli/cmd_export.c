// sllm export: merge LoRA adapters into a model (W += scale * alpha/r * B·A) and write it as GGUF or a
// Hugging Face directory, or convert an adapter between PEFT and GGUF LoRA.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/adapter_io.h"

static const char EXPORT_HELP[] =
    "usage: sllm export --model BASE --lora A[:SCALE] [--lora ...] --merge --out OUT.gguf|OUTDIR [--type T]\n"
    "       sllm export --model BASE --lora A --out ADAPTER.gguf|ADAPTER_DIR      (convert the adapter)\n"
    "\n"
    "  --model BASE      .gguf file or Hugging Face directory\n"
    "  --lora A[:SCALE]  adapter: PEFT directory or GGUF LoRA (SCALE multiplies it, default 1)\n"
    "  --merge           fold the adapters into the weights and write the whole model\n"
    "  --out OUT         ends in .gguf: GGUF file; otherwise a directory (HF config.json + model.safetensors,\n"
    "                    or PEFT adapter_config.json + adapter_model.safetensors without --merge)\n"
    "  --type T          dtype of the written matrices (f32, f16, bf16; GGUF also q8_0, q4_0, q4_k, ...);\n"
    "                    default: as stored (merged matrices f32)\n";

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *type = NULL;
    const char *specs[MODEL_MAX_LORA];
    int n_lora = 0;
    bool merge = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { fputs(EXPORT_HELP, stdout); return 0; }
#define VAL() do { if (!(v = arg_value("export", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model = v; }
        else if (!strcmp(a, "--lora")) {
            VAL();
            if (n_lora == MODEL_MAX_LORA) { fprintf(stderr, "sllm export: at most %d --lora adapters\n", MODEL_MAX_LORA); return 2; }
            specs[n_lora++] = v;
        }
        else if (!strcmp(a, "--merge")) merge = true;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) { VAL(); out = v; }
        else if (!strcmp(a, "--type")) { VAL(); type = v; }
        else return arg_unknown("export", a);
#undef VAL
    }
    if (!model || !out) { fprintf(stderr, "sllm export: need --model BASE and --out OUT (see sllm export --help)\n"); return 2; }
    if (!merge && n_lora != 1) {
        fprintf(stderr, "sllm export: without --merge give exactly one --lora to convert (or add --merge)\n");
        return 2;
    }
    int out_type = -1;
    if (type) {
        out_type = dtype_from_name(type);
        if (out_type < 0) { fprintf(stderr, "sllm export: --type '%s' is not a known dtype\n", type); return 2; }
    }
    sllm_model *m = NULL;
    if (model_load(model, &m)) { fprintf(stderr, "sllm export: %s\n", sllm_last_error()); return 1; }
    int rc = 1;
    lora_adapter *ads[MODEL_MAX_LORA] = {0};
    float scales[MODEL_MAX_LORA];
    for (int k = 0; k < n_lora; k++) {
        char *p = NULL;
        if (adapter_parse_spec(specs[k], &p, &scales[k]) || adapter_load(m, p, &ads[k])) {
            fprintf(stderr, "sllm export: --lora %s: %s\n", specs[k], sllm_last_error());
            free(p);
            goto done;
        }
        free(p);
    }
    bool gguf_out = ends_with(out, ".gguf");
    if (!merge) {
        int e = gguf_out ? adapter_save_gguf(m, ads[0], out) : adapter_save_peft(m, ads[0], out, model);
        if (e) { fprintf(stderr, "sllm export: %s\n", sllm_last_error()); goto done; }
        fprintf(stderr, "wrote %s (%s LoRA adapter)\n", out, gguf_out ? "llama.cpp GGUF" : "PEFT");
        rc = 0;
        goto done;
    }
    for (int k = 0; k < n_lora; k++)
        if (lora_merge(m, ads[k], scales[k])) { fprintf(stderr, "sllm export: %s\n", sllm_last_error()); goto done; }
    int e = gguf_out ? model_save_gguf(m, out, out_type, m->gguf) : model_save_hf(m, out, out_type);
    if (e) { fprintf(stderr, "sllm export: %s\n", sllm_last_error()); goto done; }
    if (!gguf_out && m->source == MODEL_SRC_HF) {   // an HF model directory keeps its tokenizer files
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                            "special_tokens_map.json"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char src[4096], dst[4096], *d = NULL;
            size_t len;
            snprintf(src, sizeof src, "%s/%s", m->path, files[i]);
            snprintf(dst, sizeof dst, "%s/%s", out, files[i]);
            if (fileio_read_all(src, &d, &len) == SLLM_OK && fileio_write_atomic(dst, d, len)) {
                fprintf(stderr, "sllm export: %s\n", sllm_last_error());
                free(d);
                goto done;
            }
            free(d);
        }
    }
    fprintf(stderr, "wrote %s (%d adapter%s merged)\n", out, n_lora, n_lora == 1 ? "" : "s");
    rc = 0;
done:
    for (int k = 0; k < n_lora; k++) lora_free(ads[k]);
    model_free(m);
    return rc;
}
