#!/usr/bin/env python3
"""Turns bench/run-bench.sh's JSON lines into the markdown table for docs/performance.md.

The roofline share of each row is decode GB/s (tg tok/s x bytes a decode step reads) over the memory
read bandwidth `sllm bench --roofline` measured in the same invocation (falling back to the run's
single `--membw` figure for rows from an older sllm without it)."""
import json, sys
path, P, N, TH = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(path) if l.strip()]
print(f"| model | type | sllm pp{P} tok/s | llama.cpp pp{P} | ratio | sllm tg{N} tok/s | llama.cpp tg{N} | ratio "
      f"| decode MB/token | decode GB/s | same-run membw GB/s | roofline share |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    s, l = r["sllm"], r["llamacpp"]
    spp, stg = s.get(f"pp{P}_tok_s", 0), s.get(f"tg{N}_tok_s", 0)
    lpp, ltg = l.get(f"pp{P}_tok_s"), l.get(f"tg{N}_tok_s")
    bpt = s.get("decode_bytes_per_token", 0)
    dgb = s.get("decode_gb_s", stg * bpt / 1e9)
    bw = s.get("membw_gb_s") or r.get("bw_gb_s") or 0
    roof = dgb / bw if bw else 0
    f = lambda x: f"{x:.1f}" if x else "-"
    rat = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    print(f"| {r['model']} | {r['type']} | {f(spp)} | {f(lpp)} | {rat(spp, lpp)} | {f(stg)} | {f(ltg)} | {rat(stg, ltg)} "
          f"| {bpt / 1e6:.0f} | {dgb:.1f} | {bw:.1f} | {roof * 100:.0f}% |")
first = rows[0]["bw_gb_s"] if rows else "?"
print(f"\n{TH} threads. Memory read bandwidth: measured by each row's `sllm bench --roofline` around its own timings "
      f"(the higher of two measurements; wide vector loads, all threads, a buffer of 4x the last-level cache); "
      f"{first} GB/s by `sllm bench --membw` at the start of the run.")
