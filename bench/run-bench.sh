#!/usr/bin/env bash
# make bench: sllm vs llama.cpp on the same machine, in the same run, same threads, same GGUF files.
# Models: Llama-3.2-1B-shaped and Qwen3-0.6B-shaped (random weights from `sllm init`, real tokenizers
# when ../shared/fixtures/vocab is present) in F16, Q8_0, Q4_0 and the Q4_K_M / Q5_K_M mixes most downloaded GGUFs
# use (`sllm quantize ... q4_k_m`: Q4_K / Q5_K with Q6_K for the head and some attn_v / ffn_down); prompt 128,
# generation 32.
# Also measures memory read bandwidth and reports decode as a share of the roofline
# (tok/s x bytes read per token / bandwidth): each `sllm bench --roofline` measures the bandwidth
# itself, before and after each of its repetitions, so every row's share is against same-run figures (the machine's
# bandwidth drifts with the other tenants). Writes build/bench/results.jsonl and
# build/bench/performance-table.md (copy the table into docs/performance.md by hand).
# BENCH_MODELS="ARCH:PRESET:VOCAB ...", BENCH_TYPES: other rows (make bench also runs the other families:
# Gemma 3 1B, GPT-2 124M, Qwen2.5 0.5B, into *-families.* files).
# BENCH_ISA=avx2: the same comparison as on a CPU without AVX-512 (most laptops): sllm with
# SLLM_ISA=avx2, llama.cpp with only its AVX2 ("haswell") CPU backend to load; writes *-avx2.* files.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SLLM=$BUILD/sllm
W=$BUILD/bench; mkdir -p "$W"
TH=${SLLM_THREADS:-$(nproc)}
P=${BENCH_P:-128}; N=${BENCH_N:-32}
# The engines take turns: PAIRS times, sllm (REPS repetitions, the median of them) then llama.cpp (the
# same), each pair back to back, so both sample the same machine states (this VM switches between its
# two vCPUs on one core complex and on two every few seconds to minutes, which moves both engines'
# figures; in one block per engine, one engine's block could run in one state and the other's in the
# other). The table gives each engine's median over the pairs and the median of the pairs' ratios.
# A pair during which the state switched (its round trips disagree, bench/complexes.py) compares the
# engines in different states: it is run again, up to RETRY times a row, and report.py leaves the
# switched pairs out of a row that has others (they stay in the JSON).
PAIRS=${BENCH_PAIRS:-3}; REPS=${BENCH_REPS:-2}; RETRY=${BENCH_RETRY:-3}
MODELS=${BENCH_MODELS:-"llama:llama-3.2-1b:llama-bpe qwen3:qwen3-0.6b:qwen2"}
TYPES=${BENCH_TYPES:-"f16 q8_0 q4_0 q4_k_m q5_k_m"}
FIX=${SLLM_FIXTURES:-../shared/fixtures}

ISA=${BENCH_ISA:-}
SUF=${BENCH_TAG:+-$BENCH_TAG}${ISA:+-$ISA}   # BENCH_TAG: a name for this run's files (results-TAG.jsonl, ...)
LLB=""
if ORA=$(scripts/llamacpp-oracle.sh 2>/dev/null); then LLB="$ORA/run-bench.sh"
else echo "bench: llama.cpp oracle unavailable (../shared/oracles); measuring sllm only"; fi
if [ "$ISA" = avx2 ]; then
    export SLLM_ISA=avx2
    if [ -n "$LLB" ]; then
        # llama.cpp loads the best CPU backend variant its directory offers: give it a directory with
        # every library but the CPU variants, plus the AVX2 one
        src=$(sed -nE 's/^LLAMA_BACKEND_DIR=([^ ]+) .*/\1/p' "$LLB"); hw=$W/ggml-avx2; mkdir -p "$hw"
        for f in "$src"/*; do case $(basename "$f") in libggml-cpu-*) ;; *) ln -sf "$f" "$hw/";; esac; done
        ln -sf "$src/libggml-cpu-haswell.so" "$hw/"
        printf '#!/bin/sh\nLLAMA_BACKEND_DIR=%s exec %s "$@"\n' "$hw" "$ORA/llamacpp_bench" > "$W/run-bench-avx2.sh"
        chmod +x "$W/run-bench-avx2.sh"; LLB=$W/run-bench-avx2.sh
    fi
elif [ -n "$ISA" ]; then echo "bench: BENCH_ISA=$ISA: only avx2 is supported" >&2; exit 2; fi

BW=$($SLLM bench --membw -t "$TH" --json | sed -E 's/.*"read_gb_s":([0-9.]+).*/\1/')
echo "memory read bandwidth: $BW GB/s ($TH threads; each model row measures its own as well)${ISA:+; ISA $ISA for both engines}"
# The core-to-core round trip before each engine's timings and after the last: this VM switches between
# its two vCPUs on one core complex (~85 ns, ~45 GB/s) and on two (~415 ns, ~80 GB/s), which changes
# both engines' figures (docs/performance.md, Machine); the table shows which state each row ran in.
. bench/core-rt.sh
RES=$W/results$SUF.jsonl; : > "$RES"
for spec in $MODELS; do
    IFS=: read -r arch preset vocab <<< "$spec"
    base=$W/$preset-f16.gguf
    vflag=(); [ -f "$FIX/vocab/ggml-vocab-$vocab.gguf" ] && vflag=(--vocab "$FIX/vocab/ggml-vocab-$vocab.gguf")
    [ -f "$base" ] || $SLLM init --arch "$arch" --preset "$preset" --dtype f16 "${vflag[@]}" "$base"
    for t in $TYPES; do
        m=$W/$preset-$t.gguf
        [ -f "$m" ] || $SLLM quantize "$base" "$m" "$t" >/dev/null
        pairs=""; kept=0; extra=0
        while [ "$kept" -lt "$PAIRS" ]; do
            r0=$(rt)
            s=$($SLLM bench -m "$m" -p "$P" -n "$N" -t "$TH" -r "$REPS" --roofline --json)
            r1=$(rt)
            l='{}'   # (llama.cpp refusing a file leaves its columns empty instead of ending the run)
            if [ -n "$LLB" ]; then
                l=$($LLB "$m" "$P" "$N" "$TH" "$REPS" 2>/dev/null | tail -1) || l='{}'
                case $l in '{'*'}') ;; *) echo "bench: llama.cpp could not run $m" >&2; l='{}';; esac
            fi
            r2=$(rt)
            pairs="$pairs${pairs:+,}{\"core_rt_ns\":[$r0,$r1,$r2],\"sllm\":$s,\"llamacpp\":$l}"
            pr=$(sed -nE 's/.*"membw_probes_gb_s":\[([^]]*)\].*/\1/p' <<< "$s")
            if { switched "$r0" "$r1" "$r2" || probes_split "$pr"; } && [ "$extra" -lt "$RETRY" ]; then extra=$((extra + 1)); else kept=$((kept + 1)); fi
        done
        echo "{\"model\":\"$preset\",\"type\":\"$t\",\"bw_gb_s\":$BW,\"pairs\":[$pairs]}" | tee -a "$RES"
    done
done
/usr/bin/env python3 bench/report.py "$RES" "$P" "$N" "$TH" "$ISA" > "$W/performance-table$SUF.md"
cat "$W/performance-table$SUF.md"
