#!/usr/bin/env python3
"""Turns bench/run-bench.sh's JSON lines into the markdown table for docs/performance.md.

The roofline share of each row is `sllm bench --roofline`'s: decode GB/s (tg tok/s x bytes a decode
step reads) of each repetition over the better of the bandwidth probes taken just before and just after
it, median over the repetitions; the next column is the median decode over the best probe of the
row's run. Rows from an older sllm without probes fall back to decode GB/s over its single figure."""
import json, sys
path, P, N, TH = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(path) if l.strip()]
print(f"| model | type | sllm pp{P} tok/s | llama.cpp pp{P} | ratio | sllm tg{N} tok/s | llama.cpp tg{N} | ratio "
      f"| decode MB/token | decode GB/s | same-run membw GB/s (probes) | roofline share | vs best probe "
      f"| core round trip ns |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    s, l = r["sllm"], r["llamacpp"]
    spp, stg = s.get(f"pp{P}_tok_s", 0), s.get(f"tg{N}_tok_s", 0)
    lpp, ltg = l.get(f"pp{P}_tok_s"), l.get(f"tg{N}_tok_s")
    bpt = s.get("decode_bytes_per_token", 0)
    dgb = s.get("decode_gb_s", stg * bpt / 1e9)
    bw = s.get("membw_gb_s") or r.get("bw_gb_s") or 0
    probes = s.get("membw_probes_gb_s", [])
    best = dgb / bw if bw else 0
    roof = s.get("roofline_share", best)
    bws = f"{min(probes):.1f}-{max(probes):.1f}" if probes else f"{bw:.1f}"
    f = lambda x: f"{x:.1f}" if x else "-"
    rat = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    rts = "/".join("-" if x is None else str(x) for x in r.get("core_rt_ns", [])) or "-"
    print(f"| {r['model']} | {r['type']} | {f(spp)} | {f(lpp)} | {rat(spp, lpp)} | {f(stg)} | {f(ltg)} | {rat(stg, ltg)} "
          f"| {bpt / 1e6:.0f} | {dgb:.1f} | {bws} | {roof * 100:.0f}% | {best * 100:.0f}% | {rts} |")
first = rows[0]["bw_gb_s"] if rows else "?"
print(f"\n{TH} threads. Memory read bandwidth: probed by each row's `sllm bench --roofline` before its first "
      f"repetition and after each one (best of 5 passes per probe; wide vector loads, all threads, a buffer of 4x the "
      f"last-level cache); roofline share = median over the repetitions of decode GB/s over the better probe next to "
      f"it; 'vs best probe' = median decode over the run's best probe. {first} GB/s by `sllm bench --membw` at the "
      f"start of the run. Core round trip: `build/pingpong` before sllm's timings / after them / after llama.cpp's "
      f"(~85 ns: the two vCPUs on one core complex; ~415 ns: on two, where the bandwidth is about twice as high and "
      f"every hand-off between the threads ~5x slower).")
