#!/usr/bin/env python3
"""Reference forward pass of Hugging Face model directories, written with plain torch ops.

Independent oracle for tests/test_model.c: it follows the semantics of the transformers
implementations (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM,
GPT2LMHeadModel) and reads only config.json + model.safetensors (parsed here: the safetensors
package is not installed). Computes in float64.

The forwards take a batch of rows with explicit positions and packed-document starts (a query sees
keys of its own document only) and a Lin that adds PEFT-style LoRA terms (y = x W^T + b + s (x A^T)
B^T); train_ref.py and peft_ref.py reuse them, main() runs one plain sequence (forward_sequence).

usage: model_ref.py IDS DIR OUT [DIR OUT ...]
  IDS  comma-separated token ids (one sequence, positions 0..T-1)
  OUT  receives the logits (T, vocab) as raw little-endian float32
"""
import json
import math
import os
import struct
import sys

import torch

DT = torch.float64
ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = ST_DTYPES[info["dtype"]]
        raw = bytearray(blob[base + a : base + b])
        t = torch.frombuffer(raw, dtype=dt) if len(raw) else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).to(DT)
    return out


def rms_norm(x, w, eps, plus_one=False):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * ((1.0 + w) if plus_one else w)


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def rope_inv_freq(dim, base, scaling):
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=DT) / dim))
    if not scaling:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        lo, hi = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wl >= high_wl) & (wl <= low_wl)
        return torch.where(medium, smoothed, scaled)
    if kind in (None, "default"):
        return inv
    raise ValueError("rope scaling %r" % kind)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


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


def forward_sequence(cfg, W, ids):
    """Logits (T, vocab) of one sequence: batch 1, positions 0..T-1, one document, no adapter."""
    x = torch.tensor([ids])
    pos = torch.arange(len(ids))[None]
    doc = torch.zeros_like(pos)
    if cfg["model_type"] == "gpt2":
        W = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in W.items()}
        return forward_gpt2(cfg, W, Lin(W, {}, 0.0), x, pos, doc)[0]
    if cfg["model_type"] in ("llama", "qwen2", "qwen3", "gemma3", "gemma3_text"):
        return forward_llama_like(cfg, W, Lin(W, {}, 0.0), x, pos, doc)[0]
    sys.exit("unsupported model_type " + cfg["model_type"])


def main():
    if len(sys.argv) < 4 or len(sys.argv) % 2 != 0:
        sys.exit(__doc__)
    ids = [int(t) for t in sys.argv[1].split(",")]
    torch.set_num_threads(1)
    for d, out in zip(sys.argv[2::2], sys.argv[3::2]):
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        W = load_safetensors(os.path.join(d, "model.safetensors"))
        with torch.no_grad():
            logits = forward_sequence(cfg, W, ids)
        with open(out, "wb") as f:
            f.write(logits.to(torch.float32).contiguous().numpy().tobytes())


if __name__ == "__main__":
    main()
