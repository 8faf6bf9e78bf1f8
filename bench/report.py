#!/usr/bin/env python3
"""Turns bench/run-bench.sh's JSON lines into the markdown table for docs/performance.md.

The roofline share of each row is `sllm bench --roofline`'s: decode GB/s (tg tok/s x bytes a decode
step reads) of each repetition over the better of the bandwidth probes taken just before and just after
it, median over the repetitions; the next column is the median decode over the best probe of the
row's run. Rows from an older sllm without probes fall back to decode GB/s over its single figure. Rows of
taking-turns pairs (run-bench.sh since round 11) are folded first: each engine's median over the pairs,
the median of the pairs' ratios, and per pair the core-complex state the round trips show. Pairs during
which the state switched are left out of a row that has others (run-bench.sh runs such a pair again)."""
import json, statistics, sys
from complexes import state
path, P, N, TH = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ISA = sys.argv[5] if len(sys.argv) > 5 else ""   # run-bench.sh BENCH_ISA
rows = [json.loads(l) for l in open(path) if l.strip()]


def fold(r):
    """A row of taking-turns pairs (run-bench.sh) as one row: each engine's median over the pairs, the
    median of the pairs' ratios, the roofline share over all of sllm's repetitions."""
    if "pairs" not in r: return r
    st = lambda p: state(p.get("core_rt_ns", []), p["sllm"].get("membw_probes_gb_s", ()))
    ps = [p for p in r["pairs"] if st(p) != "x"] or r["pairs"]
    med = lambda xs: statistics.median(xs) if xs else 0
    S = [p["sllm"] for p in ps]
    L = [p["llamacpp"] for p in ps]
    key = lambda d, k: [x[k] for x in d if x.get(k)]
    s = {f"pp{P}_tok_s": med(key(S, f"pp{P}_tok_s")), f"tg{N}_tok_s": med(key(S, f"tg{N}_tok_s")),
         "decode_bytes_per_token": S[0].get("decode_bytes_per_token", 0)}
    s["decode_gb_s"] = s[f"tg{N}_tok_s"] * s["decode_bytes_per_token"] / 1e9
    probes = [b for x in S for b in x.get("membw_probes_gb_s", [])]
    if probes:
        s["membw_probes_gb_s"] = probes
        s["membw_gb_s"] = max(probes)
        s["roofline_share"] = med([v for x in S for v in x.get("roofline_share_reps", [])])
    l = {f"pp{P}_tok_s": med(key(L, f"pp{P}_tok_s")), f"tg{N}_tok_s": med(key(L, f"tg{N}_tok_s"))}
    ratio = lambda k: med([a[k] / b[k] for a, b in zip(S, L) if a.get(k) and b.get(k)])
    return {"model": r["model"], "type": r["type"], "bw_gb_s": r.get("bw_gb_s"), "sllm": s, "llamacpp": l,
            "pp_ratio": ratio(f"pp{P}_tok_s"), "tg_ratio": ratio(f"tg{N}_tok_s"),
            "states": "".join(st(p) for p in ps), "left_out": len(r["pairs"]) - len(ps)}


rows = [fold(r) for r in rows]
print(f"| model | type | sllm pp{P} tok/s | llama.cpp pp{P} | ratio | sllm tg{N} tok/s | llama.cpp tg{N} | ratio "
      f"| decode MB/token | decode GB/s | same-run membw GB/s (probes) | roofline share | vs best probe "
      f"| {'core complexes (pairs)' if rows and 'states' in rows[0] else 'core round trip ns'} |")
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
    prat, trat = rat(spp, lpp), rat(stg, ltg)
    if "states" in r:   # pairs: the median of the pairs' ratios, and each pair's core-complex state
        prat = f"{r['pp_ratio']:.2f}x" if r["pp_ratio"] else "-"
        trat = f"{r['tg_ratio']:.2f}x" if r["tg_ratio"] else "-"
        rts = (" ".join(r["states"]) or "-") + (f" (+{r['left_out']} x left out)" if r["left_out"] else "")
    else:
        rts = "/".join("-" if x is None else str(x) for x in r.get("core_rt_ns", [])) or "-"
    print(f"| {r['model']} | {r['type']} | {f(spp)} | {f(lpp)} | {prat} | {f(stg)} | {f(ltg)} | {trat} "
          f"| {bpt / 1e6:.0f} | {dgb:.1f} | {bws} | {roof * 100:.0f}% | {best * 100:.0f}% | {rts} |")
first = rows[0]["bw_gb_s"] if rows else "?"
if rows and "states" in rows[0]:
    if ISA == "avx2":
        print("\nBoth engines at AVX2, as on a CPU without AVX-512: sllm with SLLM_ISA=avx2 (its AVX2 kernels and "
              "bandwidth probe), llama.cpp with only its AVX2 ('haswell') CPU backend in the directory it loads from.")
    print(f"\n{TH} threads. The engines took turns: {len(rows[0]['states'])} pairs a row (in one state where the row has such), each sllm's `bench -r R "
          f"--roofline` then llama.cpp's harness with R repetitions (the same median of R for both: the higher of two at R = 2), back to back; each engine's figure "
          f"is its median over the pairs, each ratio the median of the pairs' ratios. Roofline share: median over "
          f"all of sllm's repetitions of decode GB/s over the better bandwidth probe next to it (best of 5 passes "
          f"per probe; wide vector loads, all threads, a buffer of 4x the last-level cache); 'vs best probe': the "
          f"median decode over the best probe of the row. {first} GB/s by `sllm bench --membw` at the start of the "
          f"run. Core complexes, one figure a pair from `build/pingpong` before sllm / after sllm / after llama.cpp: "
          f"1 = the two vCPUs on one core complex (all < 200 ns a round trip), 2 = on two (all > 300 ns: about "
          f"twice the bandwidth, every hand-off between the threads ~5x slower), x = it switched during the pair (or sllm's bandwidth probes in it were more than 1.3x apart); "
          f"such a pair is run again (up to 3 times a row) and left out of a row that has pairs in one state.")
    sys.exit(0)
print(f"\n{TH} threads. Memory read bandwidth: probed by each row's `sllm bench --roofline` before its first "
      f"repetition and after each one (best of 5 passes per probe; wide vector loads, all threads, a buffer of 4x the "
      f"last-level cache); roofline share = median over the repetitions of decode GB/s over the better probe next to "
      f"it; 'vs best probe' = median decode over the run's best probe. {first} GB/s by `sllm bench --membw` at the "
      f"start of the run. Core round trip: `build/pingpong` before sllm's timings / after them / after llama.cpp's "
      f"(~85 ns: the two vCPUs on one core complex; ~415 ns: on two, where the bandwidth is about twice as high and "
      f"every hand-off between the threads ~5x slower).")
