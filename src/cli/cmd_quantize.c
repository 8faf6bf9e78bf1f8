// sllm quantize: rewrite a model's matrices in another dtype (GGUF out, loads in llama.cpp).
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cli/args.h"
#include "cli/commands.h"
#include "model/model.h"
#include "tensor/quant.h"

static const char QUANTIZE_HELP[] =
    "usage: sllm quantize IN OUT.gguf TYPE\n"
    "\n"
    "IN is a GGUF file or a Hugging Face directory. TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k\n"
    "q6_k iq4_nl iq4_xs f16 bf16 f32, or the mixes q4_k_m / q5_k_m (llama.cpp's Q4_K_M / Q5_K_M recipes:\n"
    "q6_k for the output head, or the token embedding when the head is tied, and for attn_v / ffn_down in\n"
    "the first and last eighth of the layers and every third layer between; q4_k / q5_k for every other\n"
    "matrix). Matrices are converted on every core (from f32/f16/bf16 sources; re-quantizing an already\n"
    "quantized model dequantizes first); norms and biases stay f32; a matrix whose row length is not\n"
    "a multiple of the quantization block takes llama.cpp's fallback (q4_k -> q5_0, q5_k -> q5_1,\n"
    "q6_k -> q8_0; q2_k / q3_k / iq4_xs -> iq4_nl), else f16. Metadata, including the tokenizer, is kept.\n"
    "q2_k / q3_k / iq4_nl / iq4_xs are written with a plain fit (no importance matrix): expect more error\n"
    "than llama.cpp's own imatrix files of those types. The grid types (iq1_s, iq1_m, iq2_xxs, iq2_xs,\n"
    "iq2_s, iq3_xxs, iq3_s) are read as inputs but not written (their quantizers need an importance matrix).\n";

int cmd_quantize(int argc, char **argv) {
    const char *pos[3]; int n = 0;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) { fputs(QUANTIZE_HELP, stdout); return 0; }
        if (argv[i][0] == '-' && argv[i][1]) return arg_unknown("quantize", argv[i]);
        if (n == 3) { fprintf(stderr, "sllm quantize: too many arguments (see --help)\n"); return 2; }
        pos[n++] = argv[i];
    }
    if (n != 3) { fprintf(stderr, "sllm quantize: need IN OUT TYPE (see sllm quantize --help)\n"); return 2; }
    int mix = !strcasecmp(pos[2], "q4_k_m") ? MODEL_MIX_Q4_K_M : !strcasecmp(pos[2], "q5_k_m") ? MODEL_MIX_Q5_K_M : 0;
    int t = mix ? mix : dtype_from_name(pos[2]);
    if (!mix && (t < 0 || !(t == DT_F32 || t == DT_F16 || t == DT_BF16 || dtype_can_quantize((dtype)t)) || t == DT_Q8_K)) {
        fprintf(stderr, "sllm quantize: unsupported type '%s' (q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k "
                        "iq4_nl iq4_xs f16 bf16 f32 q4_k_m q5_k_m)\n", pos[2]);
        return 2;
    }
    sllm_model *m = NULL;
    if (model_load(pos[0], &m) != SLLM_OK) { fprintf(stderr, "sllm quantize: %s\n", sllm_last_error()); return 1; }
    int rc = model_save_gguf(m, pos[1], t, m->gguf);
    if (rc != SLLM_OK) fprintf(stderr, "sllm quantize: %s\n", sllm_last_error());
    else fprintf(stderr, "sllm quantize: wrote %s (%s)\n", pos[1], mix == MODEL_MIX_Q4_K_M ? "q4_K_M" : mix ? "q5_K_M" : dtype_get(t)->name);
    model_free(m);
    return rc == SLLM_OK ? 0 : 1;
}
