// sllm init: a randomly initialized model of a named real shape (benchmarks, training from scratch).
#include <stdio.h>
#include <string.h>
#include "cli/args.h"
#include "cli/commands.h"
#include <stdlib.h>
#include <unistd.h>
#include "model/model.h"
#include "text/tokenizer.h"

static void init_help(void) {
    printf("usage: sllm init [--arch A] --preset NAME [--dtype f32|f16|bf16] [--seed S] [--vocab TOK.gguf] OUT\n"
           "\n"
           "Writes a model with N(0, 0.02) random weights in the shape of a real model. OUT ending in .gguf\n"
           "writes GGUF (loads in llama.cpp); otherwise OUT is a Hugging Face directory (config.json +\n"
           "model.safetensors). --vocab copies the tokenizer of a GGUF file (e.g. a llama.cpp vocab file)\n"
           "into the model, growing the vocabulary to fit it (a shorter tokenizer is padded with unused\n"
           "[PAD<id>] tokens to the preset's vocabulary); --vocab bytes gives it a byte-level tokenizer\n"
           "(256 bytes + <|endoftext|> <|im_start|> <|im_end|>, ChatML template) for training from scratch.\n"
           "--arch, when given, must match the preset.\n"
           "\npresets:");
    for (const char *const *n = model_preset_names(); *n; n++) {
        const model_preset *p = model_preset_get(*n);
        printf("\n  %-14s %-7s vocab %d, embd %d, layers %d, heads %d/%d, ffn %d", p->name, p->arch, p->n_vocab,
               p->n_embd, p->n_layer, p->n_head, p->n_head_kv, p->n_ff);
    }
    putchar('\n');
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int cmd_init(int argc, char **argv) {
    const char *arch = NULL, *preset = NULL, *out = NULL, *vocab = NULL, *dt = "f32";
    int64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (arg_is_help(a)) { init_help(); return 0; }
        if (!strcmp(a, "--arch")) { if (!(arch = arg_value("init", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--preset")) { if (!(preset = arg_value("init", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--dtype")) { if (!(dt = arg_value("init", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--vocab")) { if (!(vocab = arg_value("init", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--seed")) { if (!(v = arg_value("init", argc, argv, &i)) || !arg_int("init", a, v, 0, INT64_MAX, &seed)) return 2; }
        else if (a[0] == '-' && a[1]) return arg_unknown("init", a);
        else if (!out) out = a;
        else { fprintf(stderr, "sllm init: unexpected argument '%s'\n", a); return 2; }
    }
    if (!preset || !out) { fprintf(stderr, "sllm init: need --preset NAME and OUT (see sllm init --help)\n"); return 2; }
    const model_preset *p = model_preset_get(preset);
    if (!p) { fprintf(stderr, "sllm init: unknown preset '%s' (see sllm init --help for the list)\n", preset); return 2; }
    if (arch && strcmp(arch, p->arch)) {
        fprintf(stderr, "sllm init: preset '%s' is a %s model, not %s\n", preset, p->arch, arch);
        return 2;
    }
    int t = dtype_from_name(dt);
    if (t != DT_F32 && t != DT_F16 && t != DT_BF16) {
        fprintf(stderr, "sllm init: --dtype '%s': use f32, f16 or bf16 (then sllm quantize)\n", dt);
        return 2;
    }
    gguf_file *vf = NULL;
    model_preset custom = *p;
    char tmp_vocab[] = "/tmp/sllm-bytes-vocab-XXXXXX";
    if (vocab && !strcmp(vocab, "bytes")) {
        int fd = mkstemp(tmp_vocab);
        if (fd < 0 || (close(fd), tok_write_byte_vocab(tmp_vocab)) != SLLM_OK) {
            fprintf(stderr, "sllm init: --vocab bytes: %s\n", fd < 0 ? "cannot create a temporary file" : sllm_last_error());
            if (fd >= 0) unlink(tmp_vocab);
            return 1;
        }
        vocab = tmp_vocab;
        custom.n_vocab = 0;   // exactly the tokenizer's size
    }
    if (vocab) {
        vf = gguf_open(vocab);
        if (vocab == tmp_vocab) unlink(tmp_vocab);   // mapped; the name is no longer needed
        if (!vf) { fprintf(stderr, "sllm init: --vocab: %s\n", sllm_last_error()); return 1; }
        const gguf_kv *toks = gguf_find(vf, "tokenizer.ggml.tokens");
        if (!toks || toks->type != GGUF_ARRAY) {
            fprintf(stderr, "sllm init: %s: no tokenizer.ggml.tokens array\n", vocab);
            gguf_close(vf);
            return 1;
        }
        if ((int64_t)toks->arr_n > custom.n_vocab) custom.n_vocab = (int)toks->arr_n;
    }
    if (!ends_with(out, ".gguf") && vf) {
        fprintf(stderr, "sllm init: --vocab needs a .gguf output (the HF writer does not write tokenizer.json)\n");
        gguf_close(vf);
        return 2;
    }
    model_init_opts o = {.custom = &custom, .type = (dtype)t, .seed = (uint64_t)seed};
    sllm_model *m = NULL;
    int rc = model_init(&o, &m);
    if (rc == SLLM_OK) rc = ends_with(out, ".gguf") ? model_save_gguf(m, out, -1, vf) : model_save_hf(m, out, -1);
    if (rc != SLLM_OK) fprintf(stderr, "sllm init: %s\n", sllm_last_error());
    else {
        model_info_t mi;
        model_info(m, &mi);
        fprintf(stderr, "sllm init: wrote %s (%s, %lld parameters, %s)\n", out, preset, (long long)mi.n_params, dt);
    }
    model_free(m);
    gguf_close(vf);
    return rc == SLLM_OK ? 0 : 1;
}
