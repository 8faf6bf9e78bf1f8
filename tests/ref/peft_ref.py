#!/usr/bin/env python3
"""Reference for PEFT LoRA adapters written by sllm: applies adapter_model.safetensors to a base
Hugging Face model directory with the PEFT formula, then runs the torch forward of model_ref.py.

For every adapted linear layer PEFT computes  y = x W^T + scale * (x A^T) B^T  with
A = lora_A (r, in), B = lora_B (out, r), scale = lora_alpha / r (use_rslora: lora_alpha / sqrt(r)),
i.e. the effective weight W + scale * B @ A; for GPT-2's Conv1D (fan_in_fan_out) the delta is
transposed. The adapter config is checked the way PEFT reads it (peft_type LORA, task CAUSAL_LM,
every tensor named base_model.model.<module>.lora_{A,B}.weight of a module in target_modules).

usage: peft_ref.py IDS BASE_DIR ADAPTER_DIR OUT
  IDS  comma-separated token ids; OUT receives the logits (T, vocab) as little-endian float32
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import model_ref  # noqa: E402


def apply_adapter(W, cfg_model, adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    if acfg.get("peft_type") != "LORA":
        sys.exit("peft_type is not LORA")
    if acfg.get("task_type") != "CAUSAL_LM":
        sys.exit("task_type is not CAUSAL_LM")
    r = int(acfg["r"])
    alpha = float(acfg["lora_alpha"])
    scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    targets = set(acfg["target_modules"])
    A = model_ref.load_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    pairs = {}
    for name, t in A.items():
        if not name.startswith("base_model.model."):
            sys.exit("unexpected adapter tensor name " + name)
        if name.endswith(".lora_A.weight"):
            pairs.setdefault(name[len("base_model.model."):-len(".lora_A.weight")], {})["A"] = t
        elif name.endswith(".lora_B.weight"):
            pairs.setdefault(name[len("base_model.model."):-len(".lora_B.weight")], {})["B"] = t
        else:
            sys.exit("unexpected adapter tensor name " + name)
    conv1d = cfg_model["model_type"] == "gpt2"
    for mod, ab in pairs.items():
        if mod.split(".")[-1] not in targets:
            sys.exit("module %s is not in target_modules %s" % (mod, sorted(targets)))
        a, b = ab["A"], ab["B"]
        if a.shape[0] != r or b.shape[1] != r:
            sys.exit("%s: rank mismatch A %s B %s r %d" % (mod, tuple(a.shape), tuple(b.shape), r))
        key = mod + ".weight"
        if key not in W and "transformer." + key in W:
            key = "transformer." + key
        if key not in W:
            sys.exit("adapter targets %s, absent from the base model" % key)
        delta = scale * (b @ a)          # (out, in)
        if conv1d:
            delta = delta.T              # Conv1D stores (in, out)
        if tuple(delta.shape) != tuple(W[key].shape):
            sys.exit("%s: delta %s vs weight %s" % (key, tuple(delta.shape), tuple(W[key].shape)))
        W[key] = W[key] + delta
    return len(pairs)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    ids = [int(t) for t in sys.argv[1].split(",")]
    base, adapter, out = sys.argv[2], sys.argv[3], sys.argv[4]
    torch.set_num_threads(1)
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    W = model_ref.load_safetensors(os.path.join(base, "model.safetensors"))
    n = apply_adapter(W, cfg, adapter)
    with torch.no_grad():
        logits = model_ref.forward_sequence(cfg, W, ids)
    with open(out, "wb") as f:
        f.write(logits.to(torch.float32).contiguous().numpy().tobytes())
    print("applied %d adapted modules" % n)


if __name__ == "__main__":
    main()
