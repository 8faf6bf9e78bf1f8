#!/usr/bin/env bash
# make demo: the end-to-end main job in a few minutes on 2 cores, nothing downloaded.
#   1. run a real model (stories260K from ../shared/fixtures when present) — or, without fixtures, create a
#      tiny Llama with a byte-level tokenizer (`sllm init --vocab bytes`) to train from scratch;
#   2. scripts/demo_train.sh: continued pretraining on text we ship (+ TinyStories when present), LoRA
#      instruction tuning on our Korean everyday-medicine Q/A set, answers before and after, loss curves,
#      a llama.cpp-format adapter, a merged model, and the same commands for a real GGUF / HF model.
set -euo pipefail
cd "$(dirname "$0")/.."
S=build/sllm
FIX=${SLLM_FIXTURES:-../shared/fixtures}
M=$FIX/models/stories260K.gguf
mkdir -p build/demo
if [ -f "$M" ]; then
    echo "== sllm info $M"
    $S info "$M"
    echo; echo "== sllm run -m $M -p 'Once upon a time' -n 60 --temp 0   (greedy, streamed)"
    $S run -m "$M" -p "Once upon a time" -n 60 --temp 0
    echo; echo "== sampled: --temp 0.8 --top-p 0.95 --seed 7"
    $S run -m "$M" -p "The little dog" -n 40 --temp 0.8 --top-p 0.95 --seed 7
    echo; echo "== sllm bench -m $M -p 64 -n 32"
    $S bench -m "$M" -p 64 -n 32
    START=$M
else
    echo "== ../shared/fixtures not found: creating a tiny Llama with a byte-level tokenizer to train from scratch"
    $S init --arch llama --preset small-llama --vocab bytes --seed 1 build/demo/scratch.gguf
    $S info build/demo/scratch.gguf | head -6
    START=build/demo/scratch.gguf
    export CPT_STEPS=${CPT_STEPS:-400}
fi
echo
MODEL=$START scripts/demo_train.sh
