#!/usr/bin/env python3
# The PyTorch side of bench/bench_train.sh: the same ~58M-parameter llama (vocab 32000, d 512, 8 layers,
# 8 heads of 64, SwiGLU ff 1376, untied head), fp32, the same random-token batches (B, T), full
# fine-tuning or LoRA r=16 (alpha 32) on q,k,v,o,gate,up,down, one forward + backward + AdamW (lr 1e-4,
# wd 0.01) per step, timed after warmup. Written with plain torch ops (no transformers/peft), as the
# eager attention of HF's LlamaModel in torch 1.13 (no fused SDPA before 2.0).
# Usage: train_torch.py --mode full|lora [--threads 2] [--B 4] [--T 256] [--steps 3] [--warmup 1]
# Prints one JSON object (same fields as bench_train) on stdout.
import argparse
import json
import math
import resource
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--mode", choices=["full", "lora"], default="full")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--B", type=int, default=4)
ap.add_argument("--T", type=int, default=256)
ap.add_argument("--r", type=int, default=16)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--warmup", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)

V, C, L, H, D, F, EPS, THETA = 32000, 512, 8, 8, 64, 1376, 1e-5, 10000.0
lora = a.mode == "lora"
scaling = 2.0 * a.r / a.r


def mat(n, k):
    return torch.nn.Parameter(torch.randn(n, k) * 0.02, requires_grad=not lora)


def vec(n):
    return torch.nn.Parameter(torch.ones(n), requires_grad=not lora)


P = {"tok": mat(V, C), "out": mat(V, C), "norm": vec(C)}
names = ["q", "k", "v", "o", "gate", "up", "down"]
shape = {"q": (C, C), "k": (C, C), "v": (C, C), "o": (C, C), "gate": (F, C), "up": (F, C), "down": (C, F)}
for l in range(L):
    P[f"{l}.an"] = vec(C)
    P[f"{l}.fn"] = vec(C)
    for n in names:
        P[f"{l}.{n}"] = mat(*shape[n])
        if lora:
            N, K = shape[n]
            b = 1.0 / math.sqrt(K)
            P[f"{l}.{n}.A"] = torch.nn.Parameter(torch.empty(a.r, K).uniform_(-b, b))
            P[f"{l}.{n}.B"] = torch.nn.Parameter(torch.zeros(N, a.r))
params = [p for p in P.values() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)

inv = 1.0 / (THETA ** (torch.arange(0, D, 2).float() / D))
ang = torch.arange(a.T).float()[:, None] * inv[None, :]
cos = torch.cat([ang.cos(), ang.cos()], -1)[None, None]
sin = torch.cat([ang.sin(), ang.sin()], -1)[None, None]
mask = torch.full((a.T, a.T), float("-inf")).triu(1)


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def lin(x, l, n):
    y = x @ P[f"{l}.{n}"].t()
    if lora:
        y = y + (x @ P[f"{l}.{n}.A"].t()) @ P[f"{l}.{n}.B"].t() * scaling
    return y


def rot(x):
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([-x2, x1], -1)


def forward(ids, tg):
    B, T = ids.shape
    x = P["tok"][ids]
    for l in range(L):
        h = rms(x, P[f"{l}.an"])
        q = lin(h, l, "q").view(B, T, H, D).transpose(1, 2)
        k = lin(h, l, "k").view(B, T, H, D).transpose(1, 2)
        v = lin(h, l, "v").view(B, T, H, D).transpose(1, 2)
        q = q * cos + rot(q) * sin
        k = k * cos + rot(k) * sin
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + mask, -1)
        o = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + lin(o, l, "o")
        h = rms(x, P[f"{l}.fn"])
        x = x + lin(torch.nn.functional.silu(lin(h, l, "gate")) * lin(h, l, "up"), l, "down")
    logits = rms(x, P["norm"]) @ P["out"].t()
    return torch.nn.functional.cross_entropy(logits.view(-1, V), tg.view(-1), ignore_index=-1)


g = torch.Generator().manual_seed(12345)
dts, cpus = [], []
loss = float("nan")
for st in range(a.warmup + a.steps):
    ids = torch.randint(0, V, (a.B, a.T), generator=g)
    tg = torch.cat([ids[:, 1:], torch.full((a.B, 1), -1)], 1)
    t0, c0 = time.perf_counter(), time.process_time()
    l = forward(ids, tg)
    l.backward()
    opt.step()
    opt.zero_grad(set_to_none=False)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    loss = l.item()
    print(f"step {st}{' (warmup)' if st < a.warmup else ''}: {dt:.3f} s, loss {loss:.4f}", file=sys.stderr)
    if st >= a.warmup:
        dts.append(dt)
        cpus.append(dc)
dts.sort()
cpus.sort()
med = dts[len(dts) // 2]
print(json.dumps({"engine": "torch", "mode": a.mode, "B": a.B, "T": a.T, "threads": a.threads,
                  "torch": torch.__version__, "params": sum(p.numel() for n, p in P.items() if "." not in n or n.count(".") == 1),
                  "trainable": sum(p.numel() for p in params), "step_s_median": round(med, 4),
                  "step_s_best": round(dts[0], 4), "cpu_s_median": round(cpus[len(cpus) // 2], 4),
                  "tokens_per_s": round(a.B * a.T / med, 1), "loss": round(loss, 4),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
