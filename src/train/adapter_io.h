// LoRA adapter files, both directions, in the two formats other tools read:
//   PEFT (Hugging Face)  DIR/adapter_config.json + DIR/adapter_model.safetensors, tensors
//                        "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" A (r, in),
//                        ".lora_B.weight" B (out, r), f32; q/k rows in Hugging Face order.
//   llama.cpp GGUF LoRA  general.type = "adapter", adapter.type = "lora", adapter.lora.alpha,
//                        general.architecture; tensors "<base tensor>.lora_a" with ne = [K, r] and
//                        ".lora_b" with ne = [r, N] (convert_lora_to_gguf.py's layout), q/k rows in
//                        llama.cpp's permuted order for llama. llama.cpp scales by alpha / r, so an
//                        rsLoRA adapter is written with alpha' = alpha * sqrt(r) (same product).
// Loading checks the adapter against the model it is applied to (architecture, layers, shapes, known
// target modules) and names the file and the tensor or field at fault.
#ifndef SLLM_TRAIN_ADAPTER_IO_H
#define SLLM_TRAIN_ADAPTER_IO_H
#include "model/lora.h"
#include "model/model.h"

// base_name: written as base_model_name_or_path (may be NULL: the model's path).
int adapter_save_peft(const sllm_model *m, const lora_adapter *ad, const char *dir, const char *base_name);
int adapter_save_gguf(const sllm_model *m, const lora_adapter *ad, const char *path);

// A PEFT directory (or a path to its adapter_config.json / adapter_model.safetensors), or a GGUF
// LoRA file (detected by its magic). The adapter is built for m (lora_from_tensors) and not attached.
int adapter_load(const sllm_model *m, const char *path, lora_adapter **out);
int adapter_load_peft(const sllm_model *m, const char *dir, lora_adapter **out);
int adapter_load_gguf(const sllm_model *m, const char *path, lora_adapter **out);

// "PATH" or "PATH:SCALE" (the scale part only when it parses as a number, so paths holding ':' work).
// *path is malloc'd. SLLM_ERR_ARG on an empty path.
int adapter_parse_spec(const char *spec, char **path, float *scale);
#endif
