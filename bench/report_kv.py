#!/usr/bin/env python3
"""Turns bench/run-kv.sh's JSON lines (one taking-turns pair a line: sllm and llama.cpp at one KV cache
type) into the markdown table of performance-table-kv.md: each engine's median over the pairs, the
median of the pairs' ratios, per pair the core-complex state. usage: report_kv.py RESULTS P N THREADS"""
import json, statistics, sys
from complexes import state
res, P, N, TH = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = {}
for line in open(res):
    r = json.loads(line)
    rows.setdefault((r["model"], r["kv"]), []).append(r)
def med(xs): return statistics.median(xs) if xs else None
def fmt(x, f="%.1f"): return f % x if x is not None else ""
print(f"| model | KV | sllm pp{P} tok/s | llama.cpp pp{P} | ratio | sllm tg{N} tok/s | llama.cpp tg{N} | ratio | decode MB/token (sllm) | core complexes (pairs) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for (m, kv), rs in rows.items():
    rs = [r for r in rs if r["sllm"]]   # (a failed sllm run leaves null)
    spp = [r["sllm"][f"pp{P}_tok_s"] for r in rs]; stg = [r["sllm"][f"tg{N}_tok_s"] for r in rs]
    lpp = [r["llamacpp"][f"pp{P}_tok_s"] for r in rs if r["llamacpp"]]
    ltg = [r["llamacpp"][f"tg{N}_tok_s"] for r in rs if r["llamacpp"]]
    rpp = [r["sllm"][f"pp{P}_tok_s"] / r["llamacpp"][f"pp{P}_tok_s"] for r in rs if r["llamacpp"]]
    rtg = [r["sllm"][f"tg{N}_tok_s"] / r["llamacpp"][f"tg{N}_tok_s"] for r in rs if r["llamacpp"]]
    mb = med([r["sllm"].get("decode_bytes_per_token", 0) / 1e6 for r in rs])
    cx = " ".join(state(r["rt_ns"]) for r in rs)
    print(f"| {m} | {kv} | {fmt(med(spp))} | {fmt(med(lpp))} | {fmt(med(rpp), '%.2fx')} | {fmt(med(stg))} | {fmt(med(ltg))} | {fmt(med(rtg), '%.2fx')} | {fmt(mb, '%.0f')} | {cx} |")
print(f"\n{TH} threads, prompt {P}, generation {N}; each engine's median over the pairs of its median of REPS, the ratios the medians of the pairs' ratios. "
      "llama.cpp with flash attention for both types (its quantized V needs it). Core complexes per pair as in performance-table.md (round trip before and after sllm).")
