#!/usr/bin/env bash
# End-to-end checks of `sllm train / eval / export / run --lora` on the real stories260K model:
#  - CPT on TinyStories text lowers the held-out loss;
#  - LoRA SFT teaches a Q/A format the model did not know, measured on HELD-OUT questions (exact match);
#  - the GGUF LoRA it writes gives llama.cpp the same top tokens as `sllm run --lora`;
#  - export --merge equals base + adapter; an interrupted + resumed run repeats the uninterrupted one
#    exactly; kill -9 mid-run leaves a checkpoint that resumes;
#  - bad input gets one clear error (FILE:LINE, unknown target, incompatible adapter), never a crash.
cd "$(dirname "$0")/.." || exit 1
source tests/lib/e2e.sh
M=$FIX/models/stories260K.gguf
ORA=${SLLM_LLAMACPP_ORACLE:-}
T=$E2E_TMP
if [ ! -f "$M" ]; then skip "fixture models/stories260K.gguf not found"; e2e_done; exit $?; fi
jget() { $PY -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d'"$1"')'; }

# ---- 1. continued pretraining lowers the held-out loss
if [ -f "$FIX/data/tinystories_val_sample.txt" ]; then
    head -c 120000 "$FIX/data/tinystories_val_sample.txt" > "$T/ts.txt"
    out=$($S train cpt --model "$M" --data "$T/ts.txt" --out "$T/cpt" --steps 25 --batch 4 --seq 128 --lr 3e-3 \
          --val-frac 0.1 --lora r=8,alpha=16 --quiet --json 2>"$T/cpt.err")
    if [ $? -eq 0 ]; then
        v0=$(echo "$out" | jget '["val_loss_initial"]'); v1=$(echo "$out" | jget '["val_loss"]')
        $PY -c "import sys; sys.exit(0 if $v1 < $v0 - 0.05 else 1)" && ok || fail "cpt" "held-out loss $v0 -> $v1 did not drop"
        [ -s "$T/cpt/loss.svg" ] && grep -q '<polyline' "$T/cpt/loss.svg" && [ -d "$T/cpt/adapter" ] && [ -s "$T/cpt/adapter.gguf" ] \
            && ok || fail "cpt outputs" "missing loss.svg / adapter / adapter.gguf"
    else fail "cpt" "$(tail -2 "$T/cpt.err")"; fi
else skip "data/tinystories_val_sample.txt not found"; fi

# ---- 2. LoRA SFT: a Q/A format learned, exact match on held-out questions
$PY - "$T" <<'PYEOF'
import json, random, sys
r = random.Random(7)
nums = r.sample(range(1000, 10000), 440)
def rec(n): return {"messages": [{"role": "user", "content": "What is the last digit of %d?" % n},
                                 {"role": "assistant", "content": "The last digit is %d." % (n % 10)}]}
open(sys.argv[1] + "/qa_train.jsonl", "w").write("".join(json.dumps(rec(n)) + "\n" for n in nums[:400]))
open(sys.argv[1] + "/qa_held.jsonl", "w").write("".join(json.dumps(rec(n)) + "\n" for n in nums[400:]))
PYEOF
# stories260K has no chat template; this one marks the answer's end with words the model can produce
printf '%s' "{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}
A:{% elif m['role'] == 'assistant' %} {{ m['content'] }} END
{% endif %}{% endfor %}" > "$T/qa.jinja"
if $S train sft --model "$M" --data "$T/qa_train.jsonl" --out "$T/sft" --steps 120 --batch 16 --seq 64 --lr 5e-3 \
      --val-frac 0 --lora r=16,alpha=32,dropout=0 --chat-template "$T/qa.jinja" --quiet --json > "$T/sft.json" 2>"$T/sft.err"; then
    ev=$($S eval --model "$M" --lora "$T/sft/adapter" --data "$T/qa_held.jsonl" --chat-template "$T/qa.jinja" -n 24 --json 2>"$T/ev.err")
    b=$(echo "$ev" | jget '["base"]["accuracy"]'); a=$(echo "$ev" | jget '["tuned"]["accuracy"]')
    $PY -c "import sys; sys.exit(0 if $b <= 0.1 and $a >= 0.8 else 1)" && ok || fail "sft held-out" "exact match base $b tuned $a (want <= 0.1 -> >= 0.8)"
    bl=$(echo "$ev" | jget '["base"]["loss"]'); tl=$(echo "$ev" | jget '["tuned"]["loss"]')
    $PY -c "import sys; sys.exit(0 if $tl < $bl / 4 else 1)" && ok || fail "sft loss" "answer loss base $bl tuned $tl"
else fail "sft" "$(tail -2 "$T/sft.err")"; fi
P=$'Q: What is the last digit of 7351?\nA:'

# ---- 3. llama.cpp applies our GGUF LoRA the same way (top-10 probabilities per greedy step)
if [ -s "$T/sft/adapter.gguf" ] && [ -n "$ORA" ] && [ -f "$ORA/llamacpp.mjs" ]; then
    node "$ORA/llamacpp.mjs" probe "$M" "$P" 8 --lora "$T/sft/adapter.gguf" > "$T/lc.jsonl" 2>"$T/lc.err"
    $S run -m "$M" -p "$P" -n 8 --temp 0 --probs 10 --json --ignore-eos --lora "$T/sft/adapter.gguf" > "$T/s.jsonl" 2>"$T/s.err"
    if $PY - "$T/lc.jsonl" "$T/s.jsonl" <<'PYEOF'
import json, sys
lc = [json.loads(l) for l in open(sys.argv[1])][1:]
ss = [json.loads(l) for l in open(sys.argv[2])]
if len(lc) < 6 or len(ss) < 6: sys.exit("too few steps: llama.cpp %d sllm %d" % (len(lc), len(ss)))
for a, b in zip(lc[:6], ss[:6]):
    if a["id"] != b["id"]: sys.exit("step %d: llama.cpp chose %d, sllm %d" % (a["step"], a["id"], b["id"]))
    pa = {i: p for i, p in a["top"]}
    for t in b["top"]:
        if t["p"] > 1e-3 and abs(pa.get(t["id"], 0.0) - t["p"]) > 2e-3:
            sys.exit("step %d token %d: sllm %.5f llama.cpp %.5f" % (a["step"], t["id"], t["p"], pa.get(t["id"], 0.0)))
PYEOF
    then ok; else fail "llama.cpp lora" "sllm run --lora and llama.cpp --lora disagree"; fi
else skip "llama.cpp oracle not set up (scripts/llamacpp-oracle.sh; SLLM_LLAMACPP_ORACLE): GGUF LoRA check skipped"; fi

# ---- 4. export --merge = base + adapter; adapter conversion
if [ -d "$T/sft/adapter" ]; then
    check "export merge" $S export --model "$M" --lora "$T/sft/adapter" --merge --out "$T/merged.gguf"
    $S run -m "$T/merged.gguf" -p "$P" -n 8 --temp 0 --probs 5 --json --ignore-eos > "$T/m.jsonl" 2>/dev/null
    $S run -m "$M" -p "$P" -n 8 --temp 0 --probs 5 --json --ignore-eos --lora "$T/sft/adapter" > "$T/a.jsonl" 2>/dev/null
    if $PY - "$T/m.jsonl" "$T/a.jsonl" <<'PYEOF'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]; a = [json.loads(l) for l in open(sys.argv[2])]
if len(m) != 8 or [x["id"] for x in m] != [x["id"] for x in a]: sys.exit("greedy ids differ")
for x, y in zip(m, a):
    for s, t in zip(x["top"], y["top"]):
        if s["id"] != t["id"] or abs(s["p"] - t["p"]) > 1e-4: sys.exit("probabilities differ at step %d" % x["step"])
PYEOF
    then ok; else fail "merged = base + adapter" "merged model and attached adapter disagree"; fi
    check "export to HF dir" $S export --model "$M" --lora "$T/sft/adapter.gguf:0.5" --merge --out "$T/merged_hf"
    [ -f "$T/merged_hf/config.json" ] && [ -f "$T/merged_hf/model.safetensors" ] && ok || fail "export hf" "no config.json/model.safetensors"
    check "convert GGUF LoRA -> PEFT" $S export --model "$M" --lora "$T/sft/adapter.gguf" --out "$T/conv_peft"
    cmp -s "$T/conv_peft/adapter_model.safetensors" "$T/sft/adapter/adapter_model.safetensors" && ok || fail "convert" "PEFT from GGUF differs"
fi

# ---- 5. interrupt + resume = uninterrupted; kill -9 leaves a loadable checkpoint
C=data/demo/corpus.txt
args=(--model "$M" --data "$C" --steps 8 --batch 2 --seq 128 --lr 3e-3 --val-frac 0.2 --eval-every 3 --lora r=4,dropout=0.1 --quiet)
$S train cpt "${args[@]}" --out "$T/ra" >/dev/null 2>&1
$S train cpt "${args[@]}" --out "$T/rb" --stop-after 3 >/dev/null 2>&1
$S train cpt "${args[@]}" --out "$T/rb" --resume >/dev/null 2>"$T/rb.err"
if cmp -s <(cut -d, -f1-6 "$T/ra/metrics.csv") <(cut -d, -f1-6 "$T/rb/metrics.csv") && [ "$(wc -l < "$T/ra/metrics.csv")" -ge 9 ]; then ok
else fail "resume" "metrics.csv differs: $(diff <(cut -d, -f1-6 "$T/ra/metrics.csv") <(cut -d, -f1-6 "$T/rb/metrics.csv") | head -4) $(tail -1 "$T/rb.err")"; fi
cmp -s "$T/ra/adapter.gguf" "$T/rb/adapter.gguf" && ok || fail "resume adapter" "adapter.gguf differs from the uninterrupted run"
$S train cpt --model "$M" --data "$C" --steps 100000 --batch 2 --seq 128 --val-frac 0 --save-every 1 --quiet --out "$T/rk" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 150); do [ -f "$T/rk/checkpoints/latest" ] && break; sleep 0.1; done
sleep 0.3
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
out=$($S train cpt --model "$M" --data "$C" --steps 100000 --batch 2 --seq 128 --val-frac 0 --save-every 1 --quiet --out "$T/rk" \
      --resume --stop-after 1 --json 2>"$T/rk.err")
st=$(echo "$out" | jget '["start_step"]' 2>/dev/null)
[ -n "$st" ] && [ "$st" -ge 1 ] && ok || fail "kill -9" "no resumable checkpoint after kill -9: $(tail -1 "$T/rk.err")"

# ---- 6. bad input and plans
printf '%s\n' '{"prompt": "hi", "completion": "hello"}' '{"prompt": "broken' '{"prompt": "a", "completion": "b"}' > "$T/bad.jsonl"
expect_error "bad line fail" "bad.jsonl:2" $S train sft --model "$M" --data "$T/bad.jsonl" --out "$T/bad" --steps 1 --on-bad-line fail --quiet
check "bad line skip" $S train sft --model "$M" --data "$T/bad.jsonl" --out "$T/bad" --steps 1 --batch 1 --seq 128 --val-frac 0 --quiet
expect_error "unknown target" "unknown target module 'attn_qq'" $S train cpt --model "$M" --data "$C" --out "$T/x" --lora r=4,targets=q,attn_qq
expect_error "missing data" "nope.txt" $S train cpt --model "$M" --data "$T/nope.txt" --out "$T/x" --steps 1
$S init --preset tiny-qwen2 --vocab "$M" "$T/qwen.gguf" >/dev/null 2>&1
$S train cpt --model "$T/qwen.gguf" --data "$C" --out "$T/qw" --steps 1 --batch 1 --seq 32 --val-frac 0 --quiet >/dev/null 2>&1
expect_error "incompatible adapter (arch)" "qwen2.*llama|llama.*qwen2" $S run -m "$M" -p "Hi" -n 2 --lora "$T/qw/adapter.gguf"
expect_error "incompatible adapter (shape)" "expected" $S run -m "$M" -p "Hi" -n 2 --lora "$T/qw/adapter"
expect_error "not an adapter" "not a LoRA adapter" $S eval --model "$M" --lora "$M" --data "$T/qa_held.jsonl"
expect_error "full and lora" "exclude" $S train cpt --model "$M" --data "$C" --out "$T/x" --full --lora r=4
plan=$($S train cpt --model "$M" --out "$T/x" --dry-run --batch 2 --seq 64 2>&1)
echo "$plan" | grep -q "weights" && echo "$plan" | grep -q "optimizer" && echo "$plan" | grep -q "activations" && ok \
    || fail "dry-run" "no memory plan: $plan"
e2e_done
