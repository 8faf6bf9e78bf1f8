#!/usr/bin/env bash
# make bench (part): the KV cache types at a long prompt, sllm against llama.cpp on the same GGUF files,
# same threads: f16 (both engines' default) and q8_0 (sllm --kv-type q8_0, llama.cpp -ctk / -ctv q8_0
# with flash attention, which its quantized V needs; its f16 row here also with flash attention, so
# the two types differ only in the cache). Prompt BENCH_KV_P (2048), generation 32: decode then reads
# the cache of ~2k positions every token. Models: the Q4_0 files bench/run-bench.sh made
# (build/bench/*-q4_0.gguf). The engines take turns as in run-bench.sh. Writes
# build/bench/results-kv.jsonl and build/bench/performance-table-kv.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SLLM=$BUILD/sllm
W=$BUILD/bench; mkdir -p "$W"
TH=${SLLM_THREADS:-$(nproc)}
P=${BENCH_KV_P:-2048}; N=${BENCH_N:-32}
PAIRS=${BENCH_PAIRS:-2}; REPS=${BENCH_REPS:-2}
MODELS=${BENCH_KV_MODELS:-"qwen3-0.6b-q4_0 llama-3.2-1b-q4_0"}
LLK=""
if ORA=$(scripts/llamacpp-oracle.sh 2>/dev/null); then
    BIN=$(dirname "$(readlink -f "$ORA/lib/libllama.so")")
    if cc -std=c11 -O2 -Wall -Wextra bench/llamacpp_kv.c -I"$ORA/include" -L"$ORA/lib" -lllama -lggml -lggml-base \
          -Wl,-rpath,"$BIN" -o "$W/llamacpp_kv"; then
        printf '#!/bin/sh\nLLAMA_BACKEND_DIR=%s exec %s "$@"\n' "$BIN" "$W/llamacpp_kv" > "$W/run-kv-llamacpp.sh"
        chmod +x "$W/run-kv-llamacpp.sh"; LLK=$W/run-kv-llamacpp.sh
    fi
fi
[ -n "$LLK" ] || echo "bench-kv: llama.cpp oracle unavailable (../shared/oracles); measuring sllm only"
. bench/core-rt.sh
RES=$W/results-kv.jsonl; : > "$RES"
for m in $MODELS; do
    f=$W/$m.gguf
    [ -f "$f" ] || { echo "bench-kv: $f missing (make bench makes it first); skipped"; continue; }
    for kv in f16 q8_0; do
        for pair in $(seq "$PAIRS"); do
            r0=$(rt)
            s=$($SLLM --kv-type "$kv" bench -m "$f" -p "$P" -n "$N" -t "$TH" -r "$REPS" --json || echo null)
            r1=$(rt)
            l=null
            [ -n "$LLK" ] && l=$("$LLK" "$f" "$P" "$N" "$TH" "$REPS" "$kv" 2>/dev/null || echo null)
            echo "{\"model\":\"$m\",\"kv\":\"$kv\",\"pair\":$pair,\"rt_ns\":[$r0,$r1],\"sllm\":$s,\"llamacpp\":$l}" >> "$RES"
            echo "$m kv $kv pair $pair done"
        done
    done
done
python3 bench/report_kv.py "$RES" "$P" "$N" "$TH" > "$W/performance-table-kv.md"
cat "$W/performance-table-kv.md"
