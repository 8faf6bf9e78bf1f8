#!/usr/bin/env bash
# Training demo, end to end on CPU in a few minutes, nothing downloaded:
#   1. continued pretraining (full fine-tuning) of a small model on text we ship (data/demo/), so it
#      learns the domain's words (here: Korean everyday-medicine vocabulary, byte by byte);
#   2. LoRA instruction tuning on 40 Korean Q/A pairs (data/demo/qa_ko_medical.jsonl);
#   3. answers before and after, the loss curves, and the same commands for a real GGUF / HF model.
# MODEL=path overrides the starting model (any GGUF or HF directory with a tokenizer). Without it the
# demo uses stories260K from the shared fixtures (a 260K-parameter TinyStories Llama).
set -euo pipefail
cd "$(dirname "$0")/.."
S=${BUILD:-build}/sllm
FIX=${SLLM_FIXTURES:-../shared/fixtures}
MODEL=${MODEL:-$FIX/models/stories260K.gguf}
OUT=${OUT:-build/demo_train}
CPT_STEPS=${CPT_STEPS:-300}
SFT_STEPS=${SFT_STEPS:-150}
[ -x "$S" ] || { echo "demo_train: build sllm first (make)" >&2; exit 1; }
if [ ! -e "$MODEL" ]; then
    echo "demo_train: no starting model: $MODEL not found." >&2
    echo "  Set MODEL=path/to/model.gguf (any small GGUF or Hugging Face directory with a tokenizer)." >&2
    exit 1
fi
rm -rf "$OUT"; mkdir -p "$OUT"
# The pretraining corpus: our English sentences + the Korean domain text (+ TinyStories when present).
cat data/demo/corpus.txt data/demo/corpus_ko_medical.txt > "$OUT/corpus.txt"
# A plain Q/A chat template ending each answer with " END": a tiny model has no chat template, and
# ChatML's <|im_end|> would be spelled with byte tokens it never learned to produce.
printf '%s' "{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}
A:{% elif m['role'] == 'assistant' %} {{ m['content'] }} END
{% endif %}{% endfor %}" > "$OUT/qa.jinja"
T=$OUT/qa.jinja

echo "== model: $MODEL"
$S info -m "$MODEL" 2>/dev/null | head -4 || true
echo
echo "== 1. continued pretraining (full fine-tuning, $CPT_STEPS steps) on $OUT/corpus.txt"
$S train cpt --model "$MODEL" --data "$OUT/corpus.txt" --out "$OUT/cpt" --full --steps "$CPT_STEPS" --batch 8 --seq 128 \
    --lr 3e-3 --warmup 10 --val-frac 0.05 --eval-every 50
echo
echo "== 2. memory plan of the LoRA run (--dry-run)"
$S train sft --model "$OUT/cpt/model.gguf" --out "$OUT/sft" --dry-run --batch 8 --seq 192 --lora r=16,alpha=32
echo
echo "== 3. LoRA instruction tuning ($SFT_STEPS steps) on data/demo/qa_ko_medical.jsonl"
$S train sft --model "$OUT/cpt/model.gguf" --data data/demo/qa_ko_medical.jsonl --out "$OUT/sft" --steps "$SFT_STEPS" \
    --batch 8 --seq 192 --lr 5e-3 --val-frac 0 --lora r=16,alpha=32,dropout=0 --chat-template "$T"
echo
echo "== 4. answers before (pretrained model) and after (+ LoRA adapter)"
$S eval --model "$OUT/cpt/model.gguf" --lora "$OUT/sft/adapter" --data data/demo/qa_ko_medical.jsonl --chat-template "$T" \
    -n 96 --show 5
echo
echo "== 5. one question through sllm run with the llama.cpp-format adapter"
$S run -m "$OUT/cpt/model.gguf" --lora "$OUT/sft/adapter.gguf" --temp 0 -n 64 --stop " END" \
    -p $'Q: 근육통 치료에 좋은 약물 3개 이름만 알려주세요\nA:' 2>/dev/null || true
echo
echo "== 6. merged model (adapter folded into the weights)"
$S export --model "$OUT/cpt/model.gguf" --lora "$OUT/sft/adapter" --merge --out "$OUT/merged.gguf"
echo
cat <<EOF
== outputs
  loss curves:        $OUT/cpt/loss.svg  $OUT/sft/loss.svg   (metrics.csv next to them)
  PEFT adapter:       $OUT/sft/adapter/   (adapter_config.json + adapter_model.safetensors)
  llama.cpp adapter:  $OUT/sft/adapter.gguf   (llama-cli -m $OUT/cpt/model.gguf --lora $OUT/sft/adapter.gguf)
  merged model:       $OUT/merged.gguf

== the same with a real model (GGUF or Hugging Face directory), using its own chat template:
  sllm train cpt --model Qwen3-0.6B-Q8_0.gguf --data my_corpus.txt --out runs/cpt --steps 500 --seq 512
  sllm train sft --model Qwen3-0.6B-Q8_0.gguf --data data/demo/qa_ko_medical.jsonl --out runs/sft \\
       --lora r=16,alpha=32,dropout=0.05,targets=q,k,v,o,gate,up,down --epochs 3 --seq 256 --save-every 50
  sllm eval --model Qwen3-0.6B-Q8_0.gguf --lora runs/sft/adapter --data data/demo/qa_ko_medical.jsonl --show 5
  sllm run -m Qwen3-0.6B-Q8_0.gguf --lora runs/sft/adapter.gguf -p "..."
  sllm export --model Qwen3-0.6B-Q8_0.gguf --lora runs/sft/adapter --merge --out qwen3-medical.gguf
EOF
