#!/usr/bin/env python3
"""Reference loss and autograd gradients for tests/test_train_grad.c, written with plain torch ops.

A copy of model_ref.py's forward (HF semantics of LlamaForCausalLM, Qwen2/Qwen3ForCausalLM,
Gemma3ForCausalLM, GPT2LMHeadModel), extended with: a batch of rows with explicit positions and
document starts (packed rows: a query sees keys of its own document only), an ignore mask on the
targets, PEFT-style LoRA on chosen projections (y = x W^T + b + s (x A^T) B^T), and autograd in
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
from model_ref import load_safetensors, rms_norm, layer_norm, rope_inv_freq, rotate_half  # noqa: E402


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


def apply_rope(x, inv_freq, pos):
    # x (B, H, T, D), pos (B, T); HF NEOX convention
    ang = pos.to(DT)[:, :, None] * inv_freq[None, None, :]
    emb = torch.cat((ang, ang), dim=-1)[:, None, :, :]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def make_mask(T, doc_start, window=0):
    # (B, T, T): key j visible from query i
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    mask = (j <= i)[None]
    if window > 0:
        mask = mask & (j > i - window)[None]
    return mask & (j[None] >= doc_start[:, :, None])


def attention(q, k, v, scale, mask):
    # q (B, H, T, D), k/v (B, Hkv, T, D)
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask[:, None], float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


class Lin:
    """x W^T + b (+ LoRA), weights looked up by HF name; conv1d: W stored (in, out)."""

    def __init__(self, W, lora, scaling):
        self.W, self.lora, self.s = W, lora, scaling

    def __call__(self, x, wname, bname=None, conv1d=False):
        w = self.W[wname]
        y = x @ w if conv1d else x @ w.T
        if bname is not None and bname in self.W:
            y = y + self.W[bname]
        mod = wname[: -len(".weight")]
        if mod in self.lora:
            A, B = self.lora[mod]
            y = y + self.s * ((x @ A.T) @ B.T)
        return y


def forward_llama_like(cfg, W, lin, ids, pos, doc_start):
    mt = cfg["model_type"]
    if mt == "gemma3" and "text_config" in cfg:
        cfg = cfg["text_config"]
        mt = "gemma3_text"
    gemma = mt.startswith("gemma3")
    C = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    D = cfg.get("head_dim") or C // H
    L = cfg["num_hidden_layers"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    Bn, T = ids.shape
    x = W["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * (C ** 0.5)
    base = cfg.get("rope_theta", 10000.0)
    inv_global = rope_inv_freq(D, base, cfg.get("rope_scaling"))
    inv_local = rope_inv_freq(D, cfg.get("rope_local_base_freq", 10000.0), None)
    scale = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else D ** -0.5
    layer_types = cfg.get("layer_types")
    pattern = cfg.get("sliding_window_pattern", 6)
    mask_global = make_mask(T, doc_start)
    mask_local = make_mask(T, doc_start, cfg.get("sliding_window") or 0)
    for il in range(L):
        p = "model.layers.%d." % il
        g = lambda n: W.get(p + n)
        sliding = False
        if gemma:
            sliding = (layer_types[il] == "sliding_attention") if layer_types else ((il + 1) % pattern != 0)
        h = rms_norm(x, g("input_layernorm.weight"), eps, gemma)
        q = lin(h, p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias")
        k = lin(h, p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias")
        v = lin(h, p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias")
        q = q.view(Bn, T, H, D).transpose(1, 2)
        k = k.view(Bn, T, Hkv, D).transpose(1, 2)
        v = v.view(Bn, T, Hkv, D).transpose(1, 2)
        if g("self_attn.q_norm.weight") is not None:
            q = rms_norm(q, g("self_attn.q_norm.weight"), eps, gemma)
            k = rms_norm(k, g("self_attn.k_norm.weight"), eps, gemma)
        inv = inv_local if sliding else inv_global
        q = apply_rope(q, inv, pos)
        k = apply_rope(k, inv, pos)
        o = attention(q, k, v, scale, mask_local if sliding else mask_global)
        o = lin(o.transpose(1, 2).reshape(Bn, T, H * D), p + "self_attn.o_proj.weight")
        if gemma:
            o = rms_norm(o, g("post_attention_layernorm.weight"), eps, True)
            x = x + o
            h = rms_norm(x, g("pre_feedforward_layernorm.weight"), eps, True)
        else:
            x = x + o
            h = rms_norm(x, g("post_attention_layernorm.weight"), eps)
        gate = lin(h, p + "mlp.gate_proj.weight")
        up = lin(h, p + "mlp.up_proj.weight")
        if gemma:
            act = torch.nn.functional.gelu(gate, approximate="tanh")
        else:
            act = torch.nn.functional.silu(gate)
        f = lin(act * up, p + "mlp.down_proj.weight")
        if gemma:
            f = rms_norm(f, g("post_feedforward_layernorm.weight"), eps, True)
        x = x + f
    x = rms_norm(x, W["model.norm.weight"], eps, gemma)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    logits = x @ head.T
    cap = cfg.get("final_logit_softcapping") if gemma else None
    if cap:
        logits = cap * torch.tanh(logits / cap)
    return logits


def forward_gpt2(cfg, W, lin, ids, pos, doc_start):
    C = cfg["n_embd"]
    H = cfg["n_head"]
    D = C // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    Bn, T = ids.shape
    x = W["wte.weight"][ids] + W["wpe.weight"][pos]
    gelu = lambda t: torch.nn.functional.gelu(t, approximate="tanh")
    mask = make_mask(T, doc_start)
    for il in range(cfg["n_layer"]):
        p = "h.%d." % il
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        qkv = lin(h, p + "attn.c_attn.weight", p + "attn.c_attn.bias", conv1d=True)
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(Bn, T, H, D).transpose(1, 2)
        k = k.view(Bn, T, H, D).transpose(1, 2)
        v = v.view(Bn, T, H, D).transpose(1, 2)
        o = attention(q, k, v, D ** -0.5, mask).transpose(1, 2).reshape(Bn, T, C)
        x = x + lin(o, p + "attn.c_proj.weight", p + "attn.c_proj.bias", conv1d=True)
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        f = gelu(lin(h, p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", conv1d=True))
        x = x + lin(f, p + "mlp.c_proj.weight", p + "mlp.c_proj.bias", conv1d=True)
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    return x @ W.get("lm_head.weight", W["wte.weight"]).T


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
