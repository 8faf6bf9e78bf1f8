#!/usr/bin/env python3
"""Turns bench/run-bench.sh's JSON lines into the markdown table for docs/performance.md."""
import json, sys
path, P, N, TH = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(path) if l.strip()]
print(f"| model | type | sllm pp{P} tok/s | llama.cpp pp{P} | ratio | sllm tg{N} tok/s | llama.cpp tg{N} | ratio | decode GB/token | roofline share |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    s, l = r["sllm"], r["llamacpp"]
    spp, stg = s.get(f"pp{P}_tok_s", 0), s.get(f"tg{N}_tok_s", 0)
    lpp, ltg = l.get(f"pp{P}_tok_s"), l.get(f"tg{N}_tok_s")
    gb = s.get("decode_bytes_per_token", 0) / 1e9
    roof = stg * gb / r["bw_gb_s"] if r["bw_gb_s"] else 0
    f = lambda x: f"{x:.1f}" if x else "-"
    rat = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    print(f"| {r['model']} | {r['type']} | {f(spp)} | {f(lpp)} | {rat(spp, lpp)} | {f(stg)} | {f(ltg)} | {rat(stg, ltg)} | {gb:.3f} | {roof * 100:.0f}% |")
print(f"\n{TH} threads; memory read bandwidth {rows[0]['bw_gb_s'] if rows else '?'} GB/s measured in the same run.")
