#!/usr/bin/env python3
"""PyTorch oracle for tests/test_optim.c: AdamW + clip_grad_norm_ + a warmup/decay LR schedule.

usage: optim_ref.py DIR
  DIR/config.json  {"sizes":[..], "group_of":[..], "weight_decay":[..], "steps":S, "max_norm":x,
                    "beta1","beta2","eps", "sched":{"kind","lr","min_lr","warmup_steps","total_steps"}}
  DIR/input.f32    initial params (all tensors, in order) then S blocks of grads (all tensors, in order)
writes DIR/params.f32 (final params, in order) and DIR/steps.json {"lr":[..], "norm":[..]}.
The LR follows transformers' get_*_schedule_with_warmup lambdas (with the min_lr variant for cosine).
"""
import json
import math
import sys

import numpy as np
import torch


def lr_lambda(s, k):
    w, n = s["warmup_steps"], s["total_steps"]
    if k < w:
        return float(k) / float(max(1, w))
    if s["kind"] == "constant":
        return 1.0
    p = float(k - w) / float(max(1, n - w))
    f = max(0.0, 1.0 - p) if s["kind"] == "linear" else max(0.0, 0.5 * (1.0 + math.cos(math.pi * p)))
    rate = s["min_lr"] / s["lr"] if s["lr"] else 0.0
    return f * (1 - rate) + rate


def main():
    d = sys.argv[1]
    cfg = json.load(open(f"{d}/config.json"))
    sizes, steps = cfg["sizes"], cfg["steps"]
    raw = np.fromfile(f"{d}/input.f32", dtype="<f4")
    total = sum(sizes)
    assert raw.size == total * (1 + steps), (raw.size, total, steps)
    off = 0
    params = []
    for n in sizes:
        params.append(torch.nn.Parameter(torch.from_numpy(raw[off:off + n].copy())))
        off += n
    groups = []
    for gi, wd in enumerate(cfg["weight_decay"]):
        ps = [p for p, g in zip(params, cfg["group_of"]) if g == gi]
        groups.append({"params": ps, "weight_decay": wd})
    s = cfg["sched"]
    opt = torch.optim.AdamW(groups, lr=s["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"], foreach=False)
    lrs, norms = [], []
    for k in range(steps):
        for p, n in zip(params, sizes):
            p.grad = torch.from_numpy(raw[off:off + n].copy())
            off += n
        lr = s["lr"] * lr_lambda(s, k)
        for g in opt.param_groups:
            g["lr"] = lr
        norm = torch.nn.utils.clip_grad_norm_(params, cfg["max_norm"])
        opt.step()
        lrs.append(lr)
        norms.append(float(norm))
    np.concatenate([p.detach().numpy().astype("<f4") for p in params]).tofile(f"{d}/params.f32")
    json.dump({"lr": lrs, "norm": norms}, open(f"{d}/steps.json", "w"))


if __name__ == "__main__":
    main()
