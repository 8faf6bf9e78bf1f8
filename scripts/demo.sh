#!/usr/bin/env bash
# make demo: generate text with a real model when ../shared/fixtures is present; otherwise make a small
# random model with `sllm init` and show how to run any GGUF or Hugging Face model.
set -euo pipefail
cd "$(dirname "$0")/.."
S=build/sllm
FIX=${SLLM_FIXTURES:-../shared/fixtures}
M=$FIX/models/stories260K.gguf
if [ -f "$M" ]; then
    echo "== sllm info $M"
    $S info "$M"
    echo; echo "== sllm run -m $M -p 'Once upon a time' -n 120 --temp 0  (greedy)"
    $S run -m "$M" -p "Once upon a time" -n 120 --temp 0
    echo; echo; echo "== sampled: --temp 0.8 --top-p 0.95 --seed 7"
    $S run -m "$M" -p "The little dog" -n 80 --temp 0.8 --top-p 0.95 --seed 7
    echo; echo; echo "== bench"
    $S bench -m "$M" -p 64 -n 32
else
    mkdir -p build/demo
    echo "== ../shared/fixtures not found: creating a tiny random llama model"
    $S init --arch llama --preset tiny-llama build/demo/tiny.gguf
    $S info build/demo/tiny.gguf
    $S run -m build/demo/tiny.gguf -p "hello" -n 16 --temp 0
    echo
fi
cat <<'TXT'

Run any model the same way:
  build/sllm run -m path/to/Llama-3.2-1B-Instruct-Q4_0.gguf -p "Why is the sky blue?" -n 128
  build/sllm run -m path/to/Qwen3-0.6B/ -p "Hello" --temp 0.7     # a Hugging Face directory
  build/sllm --help
TXT
