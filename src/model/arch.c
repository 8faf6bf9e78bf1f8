// The architecture table (see arch.h). Tensor names follow llama.cpp's GGUF conventions
// (gguf-py tensor_mapping) and the Hugging Face transformers module paths of each family.
#include "model/arch.h"
#include <stdio.h>
#include <string.h>

#define L "blk.%d."
#define HL "model.layers.%d."

static const arch_tensor llama_tensors[] = {
    {TR_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", false, false},
    {TR_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", false, false},
    {TR_OUTPUT, "output.weight", "lm_head.weight", true, false},
    {TR_ROPE_FREQS, "rope_freqs.weight", NULL, true, false},
    {TR_ATTN_NORM, L "attn_norm.weight", HL "input_layernorm.weight", false, false},
    {TR_ATTN_Q, L "attn_q.weight", HL "self_attn.q_proj.weight", false, false},
    {TR_ATTN_K, L "attn_k.weight", HL "self_attn.k_proj.weight", false, false},
    {TR_ATTN_V, L "attn_v.weight", HL "self_attn.v_proj.weight", false, false},
    {TR_ATTN_OUT, L "attn_output.weight", HL "self_attn.o_proj.weight", false, false},
    {TR_FFN_NORM, L "ffn_norm.weight", HL "post_attention_layernorm.weight", false, false},
    {TR_FFN_GATE, L "ffn_gate.weight", HL "mlp.gate_proj.weight", false, false},
    {TR_FFN_UP, L "ffn_up.weight", HL "mlp.up_proj.weight", false, false},
    {TR_FFN_DOWN, L "ffn_down.weight", HL "mlp.down_proj.weight", false, false},
    {TR_COUNT, NULL, NULL, false, false},
};

static const arch_tensor qwen2_tensors[] = {
    {TR_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", false, false},
    {TR_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", false, false},
    {TR_OUTPUT, "output.weight", "lm_head.weight", true, false},
    {TR_ATTN_NORM, L "attn_norm.weight", HL "input_layernorm.weight", false, false},
    {TR_ATTN_Q, L "attn_q.weight", HL "self_attn.q_proj.weight", false, false},
    {TR_ATTN_Q_B, L "attn_q.bias", HL "self_attn.q_proj.bias", false, false},
    {TR_ATTN_K, L "attn_k.weight", HL "self_attn.k_proj.weight", false, false},
    {TR_ATTN_K_B, L "attn_k.bias", HL "self_attn.k_proj.bias", false, false},
    {TR_ATTN_V, L "attn_v.weight", HL "self_attn.v_proj.weight", false, false},
    {TR_ATTN_V_B, L "attn_v.bias", HL "self_attn.v_proj.bias", false, false},
    {TR_ATTN_OUT, L "attn_output.weight", HL "self_attn.o_proj.weight", false, false},
    {TR_FFN_NORM, L "ffn_norm.weight", HL "post_attention_layernorm.weight", false, false},
    {TR_FFN_GATE, L "ffn_gate.weight", HL "mlp.gate_proj.weight", false, false},
    {TR_FFN_UP, L "ffn_up.weight", HL "mlp.up_proj.weight", false, false},
    {TR_FFN_DOWN, L "ffn_down.weight", HL "mlp.down_proj.weight", false, false},
    {TR_COUNT, NULL, NULL, false, false},
};

static const arch_tensor qwen3_tensors[] = {
    {TR_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", false, false},
    {TR_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", false, false},
    {TR_OUTPUT, "output.weight", "lm_head.weight", true, false},
    {TR_ATTN_NORM, L "attn_norm.weight", HL "input_layernorm.weight", false, false},
    {TR_ATTN_Q, L "attn_q.weight", HL "self_attn.q_proj.weight", false, false},
    {TR_ATTN_K, L "attn_k.weight", HL "self_attn.k_proj.weight", false, false},
    {TR_ATTN_V, L "attn_v.weight", HL "self_attn.v_proj.weight", false, false},
    {TR_ATTN_OUT, L "attn_output.weight", HL "self_attn.o_proj.weight", false, false},
    {TR_ATTN_Q_NORM, L "attn_q_norm.weight", HL "self_attn.q_norm.weight", false, false},
    {TR_ATTN_K_NORM, L "attn_k_norm.weight", HL "self_attn.k_norm.weight", false, false},
    {TR_FFN_NORM, L "ffn_norm.weight", HL "post_attention_layernorm.weight", false, false},
    {TR_FFN_GATE, L "ffn_gate.weight", HL "mlp.gate_proj.weight", false, false},
    {TR_FFN_UP, L "ffn_up.weight", HL "mlp.up_proj.weight", false, false},
    {TR_FFN_DOWN, L "ffn_down.weight", HL "mlp.down_proj.weight", false, false},
    {TR_COUNT, NULL, NULL, false, false},
};

// Gemma 3: HF's post_attention_layernorm is the norm AFTER attention (llama.cpp: post_attention_norm),
// and pre_feedforward_layernorm is the FFN input norm (ffn_norm).
static const arch_tensor gemma3_tensors[] = {
    {TR_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", false, false},
    {TR_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", false, false},
    {TR_OUTPUT, "output.weight", "lm_head.weight", true, false},
    {TR_ATTN_NORM, L "attn_norm.weight", HL "input_layernorm.weight", false, false},
    {TR_ATTN_Q, L "attn_q.weight", HL "self_attn.q_proj.weight", false, false},
    {TR_ATTN_K, L "attn_k.weight", HL "self_attn.k_proj.weight", false, false},
    {TR_ATTN_V, L "attn_v.weight", HL "self_attn.v_proj.weight", false, false},
    {TR_ATTN_OUT, L "attn_output.weight", HL "self_attn.o_proj.weight", false, false},
    {TR_ATTN_Q_NORM, L "attn_q_norm.weight", HL "self_attn.q_norm.weight", false, false},
    {TR_ATTN_K_NORM, L "attn_k_norm.weight", HL "self_attn.k_norm.weight", false, false},
    {TR_POST_ATTN_NORM, L "post_attention_norm.weight", HL "post_attention_layernorm.weight", false, false},
    {TR_FFN_NORM, L "ffn_norm.weight", HL "pre_feedforward_layernorm.weight", false, false},
    {TR_FFN_GATE, L "ffn_gate.weight", HL "mlp.gate_proj.weight", false, false},
    {TR_FFN_UP, L "ffn_up.weight", HL "mlp.up_proj.weight", false, false},
    {TR_FFN_DOWN, L "ffn_down.weight", HL "mlp.down_proj.weight", false, false},
    {TR_POST_FFN_NORM, L "post_ffw_norm.weight", HL "post_feedforward_layernorm.weight", false, false},
    {TR_COUNT, NULL, NULL, false, false},
};

// GPT-2: HF names without the "transformer." prefix (the loader also tries it); Conv1D weights
// are stored (in, out).
static const arch_tensor gpt2_tensors[] = {
    {TR_TOKEN_EMBD, "token_embd.weight", "wte.weight", false, false},
    {TR_POS_EMBD, "position_embd.weight", "wpe.weight", false, false},
    {TR_OUTPUT_NORM, "output_norm.weight", "ln_f.weight", false, false},
    {TR_OUTPUT_NORM_B, "output_norm.bias", "ln_f.bias", false, false},
    {TR_OUTPUT, "output.weight", "lm_head.weight", true, false},
    {TR_ATTN_NORM, L "attn_norm.weight", "h.%d.ln_1.weight", false, false},
    {TR_ATTN_NORM_B, L "attn_norm.bias", "h.%d.ln_1.bias", false, false},
    {TR_ATTN_QKV, L "attn_qkv.weight", "h.%d.attn.c_attn.weight", false, true},
    {TR_ATTN_QKV_B, L "attn_qkv.bias", "h.%d.attn.c_attn.bias", false, false},
    {TR_ATTN_OUT, L "attn_output.weight", "h.%d.attn.c_proj.weight", false, true},
    {TR_ATTN_OUT_B, L "attn_output.bias", "h.%d.attn.c_proj.bias", false, false},
    {TR_FFN_NORM, L "ffn_norm.weight", "h.%d.ln_2.weight", false, false},
    {TR_FFN_NORM_B, L "ffn_norm.bias", "h.%d.ln_2.bias", false, false},
    {TR_FFN_UP, L "ffn_up.weight", "h.%d.mlp.c_fc.weight", false, true},
    {TR_FFN_UP_B, L "ffn_up.bias", "h.%d.mlp.c_fc.bias", false, false},
    {TR_FFN_DOWN, L "ffn_down.weight", "h.%d.mlp.c_proj.weight", false, true},
    {TR_FFN_DOWN_B, L "ffn_down.bias", "h.%d.mlp.c_proj.bias", false, false},
    {TR_COUNT, NULL, NULL, false, false},
};

static const arch_desc archs[] = {
    {.name = "llama", .hf_model_types = "llama", .hf_class = "LlamaForCausalLM",
     .norm = NORM_RMS, .act = ACT_SWIGLU, .rope = true, .gguf_rope = ROPE_NORM, .gguf_permutes_qk = true,
     .default_tied = false, .default_eps = 1e-5f, .default_rope_base = 10000.0f, .tensors = llama_tensors},
    {.name = "qwen2", .hf_model_types = "qwen2", .hf_class = "Qwen2ForCausalLM",
     .norm = NORM_RMS, .act = ACT_SWIGLU, .rope = true, .gguf_rope = ROPE_NEOX,
     .default_tied = false, .default_eps = 1e-6f, .default_rope_base = 10000.0f, .tensors = qwen2_tensors},
    {.name = "qwen3", .hf_model_types = "qwen3", .hf_class = "Qwen3ForCausalLM",
     .norm = NORM_RMS, .act = ACT_SWIGLU, .rope = true, .gguf_rope = ROPE_NEOX, .qk_norm = true,
     .default_tied = false, .default_eps = 1e-6f, .default_rope_base = 10000.0f, .tensors = qwen3_tensors},
    {.name = "gemma3", .hf_model_types = "gemma3_text gemma3", .hf_class = "Gemma3ForCausalLM",
     .norm = NORM_RMS, .act = ACT_GEGLU, .rope = true, .gguf_rope = ROPE_NEOX, .qk_norm = true,
     .post_norms = true, .hf_norm_plus_one = true, .embed_scale_sqrt = true, .swa = true,
     .default_tied = true, .default_eps = 1e-6f, .default_rope_base = 1000000.0f, .tensors = gemma3_tensors},
    {.name = "gpt2", .hf_model_types = "gpt2", .hf_class = "GPT2LMHeadModel",
     .norm = NORM_LAYER, .act = ACT_GELU, .rope = false,
     .default_tied = true, .default_eps = 1e-5f, .default_rope_base = 0, .tensors = gpt2_tensors},
};
#define N_ARCHS (int)(sizeof archs / sizeof archs[0])

const arch_desc *arch_by_name(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_ARCHS; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

const arch_desc *arch_by_hf_type(const char *model_type) {
    if (!model_type) return NULL;
    size_t n = strlen(model_type);
    for (int i = 0; i < N_ARCHS; i++) {
        const char *p = archs[i].hf_model_types;
        while (*p) {
            size_t w = strcspn(p, " ");
            if (w == n && strncmp(p, model_type, n) == 0) return &archs[i];
            p += w;
            while (*p == ' ') p++;
        }
    }
    return NULL;
}

const char *arch_supported_list(void) { return "llama, qwen2, qwen3, gemma3, gpt2"; }

const arch_tensor *arch_tensor_get(const arch_desc *a, tensor_role role) {
    for (const arch_tensor *t = a->tensors; t->role != TR_COUNT; t++)
        if (t->role == role) return t;
    return NULL;
}

void arch_tensor_name(char *buf, size_t n, const char *pattern, int layer) {
    if (strstr(pattern, "%d")) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(buf, n, pattern, layer);
#pragma GCC diagnostic pop
    } else {
        snprintf(buf, n, "%s", pattern);
    }
}

bool arch_role_is_layer(tensor_role r) { return r >= TR_LAYER_FIRST && r < TR_COUNT; }

bool arch_role_is_vector(tensor_role r) {
    switch (r) {
    case TR_OUTPUT_NORM: case TR_OUTPUT_NORM_B: case TR_ROPE_FREQS: case TR_ATTN_NORM: case TR_ATTN_NORM_B:
    case TR_ATTN_Q_B: case TR_ATTN_K_B: case TR_ATTN_V_B: case TR_ATTN_QKV_B: case TR_ATTN_OUT_B:
    case TR_ATTN_Q_NORM: case TR_ATTN_K_NORM: case TR_POST_ATTN_NORM: case TR_FFN_NORM: case TR_FFN_NORM_B:
    case TR_FFN_UP_B: case TR_FFN_DOWN_B: case TR_POST_FFN_NORM:
        return true;
    default:
        return false;
    }
}
