#!/usr/bin/env python3
"""Reference loss and autograd gradients for tests/test_train_grad.c, written with plain torch ops.

Runs model_ref.py's forward (HF semantics of LlamaForCausalLM, Qwen2/Qwen3ForCausalLM,
Gemma3ForCausalLM, GPT2LMHeadModel; a batch of rows with explicit positions and document starts,
PEFT-style LoRA through its Lin) and adds: an ignore mask on the targets, the loss, and autograd in
float64. Reads only config.json + model.safetensors (+ a LoRA safetensors); no transformers/peft.

usage: train_ref.py SPEC.json
SPEC: {"cases": [{"dir", "out", "batch": {"B", "T", "ids", "targets", "pos", "doc_start"|null},
                  "lora": null | {"file", "scaling"}, "mode": "full"|"lora",
                  "sgd": null | {"lr", "steps"}}]}
out: a safetensors file (F32) with "loss" (mean over counted targets), "grad.<name>" for every
trained tensor (HF names in full mode, PEFT names for LoRA) and "sgd_loss" (steps) when asked.
"""
import json
import os
import struct
import sys

import torch

DT = torch.float64
# The safetensors reader and the per-op formulas are model_ref.py's (the inference reference): one
# definition of each.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_ref import Lin, forward_gpt2, forward_llama_like, load_safetensors  # noqa: E402


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_lora(path):
    """PEFT names -> {module path (HF, no 'transformer.'): (A, B)}, plus the name map for grads."""
    T = load_safetensors(path)
    mods, names = {}, {}
    for name, t in T.items():
        rest = name[len("base_model.model."):]
        if rest.startswith("transformer."):
            rest = rest[len("transformer."):]
        for tag, idx in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if rest.endswith(tag):
                mod = rest[: -len(tag)]
                mods.setdefault(mod, [None, None])[idx] = t.clone().requires_grad_(True)
                names[name] = (mod, idx)
    return mods, names


def run_case(case):
    with open(os.path.join(case["dir"], "config.json")) as f:
        cfg = json.load(f)
    W = load_safetensors(os.path.join(case["dir"], "model.safetensors"))
    if cfg["model_type"] == "gpt2":
        W = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in W.items()}
    b = case["batch"]
    Bn, T = b["B"], b["T"]
    ids = torch.tensor(b["ids"], dtype=torch.long).view(Bn, T)
    targets = torch.tensor(b["targets"], dtype=torch.long).view(Bn, T)
    pos = torch.tensor(b["pos"], dtype=torch.long).view(Bn, T)
    ds = b.get("doc_start")
    doc_start = torch.tensor(ds, dtype=torch.long).view(Bn, T) if ds else torch.zeros(Bn, T, dtype=torch.long)
    lora, lnames, scaling = {}, {}, 0.0
    if case.get("lora"):
        lora, lnames = load_lora(case["lora"]["file"])
        scaling = case["lora"]["scaling"]
    full = case["mode"] == "full"
    if full:
        for t in W.values():
            t.requires_grad_(True)
    fwd = forward_gpt2 if cfg["model_type"] == "gpt2" else forward_llama_like
    lin = Lin(W, lora, scaling)
    counted = targets >= 0
    n = int(counted.sum())

    def loss_fn():
        logits = fwd(cfg, W, lin, ids, pos, doc_start)
        lp = torch.log_softmax(logits, dim=-1)
        tg = targets.clamp(min=0)
        nll = -lp.gather(-1, tg[..., None])[..., 0]
        return (nll * counted).sum() / n

    params = list(W.values()) if full else [t for ab in lora.values() for t in ab]
    out = {}
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params)
    out["loss"] = loss.detach().reshape(1)
    if full:
        for (name, _), g in zip(W.items(), grads):
            out["grad." + name] = g
    else:
        gmap = {}
        for (mod, ab), g in zip([(m, i) for m in lora for i in range(2)], grads):
            gmap[(mod, ab)] = g
        for name, key in lnames.items():
            out["grad." + name] = gmap[key]
    sgd = case.get("sgd")
    if sgd:
        seq = []
        for _ in range(sgd["steps"]):
            loss = loss_fn()
            seq.append(float(loss))
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p_, g in zip(params, grads):
                    p_ -= sgd["lr"] * g
        out["sgd_loss"] = torch.tensor(seq, dtype=DT)
    save_safetensors(case["out"], out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    for case in spec["cases"]:
        run_case(case)


if __name__ == "__main__":
    main()
