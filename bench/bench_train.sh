#!/usr/bin/env bash
# Training benchmark: sllm vs PyTorch on the same machine, in the same run, same threads, same model
# shape and batch. A ~58M-parameter llama (vocab 32000, d 512, 8 layers, 8 heads, ff 1376, untied head),
# B=4, T=256, fp32, full fine-tuning and LoRA r=16 (alpha 32, q,k,v,o,gate,up,down): tokens/s of one
# forward + backward + AdamW step after warmup. sllm and torch run back to back per mode, REPS times
# (the machine may be shared: compare the ratio within a pair, report the median ratio).
# Then the memory check: LoRA r=16 on a Llama-3.2-1B-shaped Q4_0 base (mmap'd), B=1, T=512, gradient
# checkpointing, peak RSS (target <= 2048 MiB).
# Then the same pair through the real command (`sllm train cpt` on `sllm init --preset llama-60m`).
# Env: SLLM_THREADS (default 2), BENCH_REPS (3), BENCH_STEPS (3), BENCH_MEM (1: run the memory check),
#      BENCH_CLI (1: run the sllm train pairs), BENCH_CLI_REPS (default BENCH_REPS),
#      SLLM_PYTHON (python with torch; default /usr/bin/python3), OPENBLAS_CORETYPE passes through to both.
# Writes build/bench/train.jsonl and prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
W=$BUILD/bench; mkdir -p "$W"
TH=${SLLM_THREADS:-2}; REPS=${BENCH_REPS:-3}; STEPS=${BENCH_STEPS:-3}
PY=${SLLM_PYTHON:-/usr/bin/python3}
FIX=${SLLM_FIXTURES:-../shared/fixtures}
[ -f "$BUILD/libsllm.a" ] || make -j2 >/dev/null
BIN=$W/bench_train
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -Iinclude -Isrc bench/bench_train.c "$BUILD/libsllm.a" \
   $(pkg-config --cflags --libs jansson libpcre2-8 libutf8proc openblas) -lm -o "$BIN"
RES=$W/train.jsonl; : > "$RES"
echo "threads $TH, B=4 T=256, $STEPS timed steps after 1 warmup, $REPS back-to-back pairs per mode" >&2
for rep in $(seq 1 "$REPS"); do
    for mode in full lora; do
        s=$("$BIN" speed --mode "$mode" --threads "$TH" --steps "$STEPS" 2>/dev/null)
        t=$("$PY" bench/train_torch.py --mode "$mode" --threads "$TH" --steps "$STEPS" 2>/dev/null)
        echo "{\"rep\":$rep,\"mode\":\"$mode\",\"sllm\":$s,\"torch\":$t}" | tee -a "$RES"
    done
done
# The same comparison through the real command: `sllm train cpt` on the llama-60m preset (the shape
# above) with the same optimizer settings, 8 steps; its --json tokens/s counts the first step too.
# (It needs a 32000-token vocabulary: llama.cpp's llama-spm vocab file from ../shared/fixtures.)
if [ "${BENCH_CLI:-1}" = 1 ] && [ ! -f "$FIX/vocab/ggml-vocab-llama-spm.gguf" ]; then
    echo "sllm train pair skipped: $FIX/vocab/ggml-vocab-llama-spm.gguf not found" >&2
elif [ "${BENCH_CLI:-1}" = 1 ]; then
    m60=$W/llama-60m.gguf
    [ -f "$m60" ] || "$BUILD/sllm" init --preset llama-60m --vocab "$FIX/vocab/ggml-vocab-llama-spm.gguf" "$m60" >/dev/null
    txt=$FIX/data/tinystories_val_sample.txt
    if [ ! -f "$txt" ]; then txt=$W/cli_corpus.txt; for _ in $(seq 200); do cat data/demo/corpus.txt; done > "$txt"; fi
    for rep in $(seq 1 "${BENCH_CLI_REPS:-$REPS}"); do
    for mode in full lora; do
        mflag=(--full); [ "$mode" = lora ] && mflag=(--lora r=16,alpha=32,dropout=0,targets=q,k,v,o,gate,up,down)
        s=$("$BUILD/sllm" train cpt --model "$m60" --data "$txt" --out "$W/cli_run" --steps 8 --batch 4 --seq 256 \
              --val-frac 0 --lr 1e-4 --schedule constant --weight-decay 0.01 --clip 0 "${mflag[@]}" -t "$TH" --json --quiet)
        # steady rate over steps 2-8 from metrics.csv, like torch's timing after one warmup step
        st=$("$PY" -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); a,b=r[0],r[-1]; print((float(b["tokens"])-float(a["tokens"]))/(float(b["elapsed_s"])-float(a["elapsed_s"])))' "$W/cli_run/metrics.csv")
        t=$("$PY" bench/train_torch.py --mode "$mode" --threads "$TH" --steps "$STEPS" 2>/dev/null)
        echo "{\"rep\":$rep,\"mode\":\"cli-$mode\",\"sllm\":$s,\"sllm_steady_tokens_per_s\":$st,\"torch\":$t}" | tee -a "$RES"
    done
    done
    rm -rf "$W/cli_run"
fi
if [ "${BENCH_MEM:-1}" = 1 ]; then
    q=$W/llama-3.2-1b-q4_0.gguf
    if [ ! -f "$q" ]; then
        vflag=(); [ -f "$FIX/vocab/ggml-vocab-llama-bpe.gguf" ] && vflag=(--vocab "$FIX/vocab/ggml-vocab-llama-bpe.gguf")
        "$BUILD/sllm" init --arch llama --preset llama-3.2-1b --dtype f16 "${vflag[@]}" "$W/l1b-f16.gguf"
        "$BUILD/sllm" quantize "$W/l1b-f16.gguf" "$q" q4_0 >/dev/null
        rm -f "$W/l1b-f16.gguf"   # 2.5 GB
    fi
    m=$("$BIN" mem --model "$q" --T 512 --B 1 --r 16 --threads "$TH" --steps 2 2>/dev/null)
    echo "{\"mode\":\"mem\",\"sllm\":$m}" | tee -a "$RES"
fi
"$PY" - "$RES" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| mode | sllm tok/s | torch tok/s | ratio (wall) | ratio (CPU s/step) |")
print("|---|---|---|---|---|")
for mode in ("full", "lora"):
    rs = [r for r in rows if r["mode"] == mode]
    if not rs: continue
    s = statistics.median(r["sllm"]["tokens_per_s"] for r in rs)
    t = statistics.median(r["torch"]["tokens_per_s"] for r in rs)
    rw = statistics.median(r["sllm"]["tokens_per_s"] / r["torch"]["tokens_per_s"] for r in rs)
    rc = statistics.median(r["torch"]["cpu_s_median"] / r["sllm"]["cpu_s_median"] for r in rs)
    print(f"| {mode} | {s:.0f} | {t:.0f} | {rw:.2f}x | {rc:.2f}x |")
for mode in ("cli-full", "cli-lora"):
    rs = [r for r in rows if r["mode"] == mode]
    if not rs: continue
    med = lambda f: statistics.median(f(r) for r in rs)
    t = med(lambda r: r["torch"]["tokens_per_s"])
    s = med(lambda r: r["sllm"]["tokens_per_s"])
    ss = med(lambda r: r["sllm_steady_tokens_per_s"])
    print(f"| {mode} (sllm train, 8 steps incl. the first) | {s:.0f} | {t:.0f} | "
          f"{med(lambda r: r['sllm']['tokens_per_s'] / r['torch']['tokens_per_s']):.2f}x | |")
    print(f"| {mode} (sllm train, steps 2-8) | {ss:.0f} | {t:.0f} | "
          f"{med(lambda r: r['sllm_steady_tokens_per_s'] / r['torch']['tokens_per_s']):.2f}x | |")
for r in rows:
    if r["mode"] == "mem":
        m = r["sllm"]
        print(f"\nLoRA r=16 on Llama-3.2-1B-shaped Q4_0, B=1 T=512, checkpointing: peak RSS {m['peak_rss_mib']:.0f} MiB"
              f" ({'within' if m['peak_rss_mib'] <= 2048 else 'OVER'} the 2048 MiB target), step {m['step_s_median']:.1f} s")
EOF
