#!/usr/bin/env bash
# End-to-end checks of the sllm program: the real stories260K model reproduces its reference greedy
# text, agrees with llama.cpp (top-10 probabilities per step) on the F32 file and on files we quantize,
# subcommands work on GGUF and HF directories, and bad input gets one clear error line, never a crash.
cd "$(dirname "$0")/.." || exit 1
source tests/lib/e2e.sh
M=$FIX/models/stories260K.gguf
ORA=${SLLM_LLAMACPP_ORACLE:-}

# compare_llamacpp NAME MODEL PROMPT N MIN_SAME TOL: sllm and llama.cpp greedy steps on the same file.
# Same prompt ids; the first MIN_SAME chosen ids equal (or the sequences part at a near-tie: the two
# picks within 1% in llama.cpp's probabilities, as on random models' flat distributions, where the f16
# rounding of q or of the KV cache decides); while the sequences agree, each of the top-10
# probabilities within TOL absolute. F32 weights: 2e-3 (both engines keep an f16 KV cache by default).
# Quantized weights: 3e-2, because both engines also round the activations to 8-bit blocks before
# the integer dot products and llama.cpp rounds each block's scale to f16 where we keep f32; on this
# tiny model's peaked distributions that moves probabilities by up to ~2e-2 (measured).
compare_llamacpp() {
    local name=$1 model=$2 prompt=$3 n=$4 min_same=$5 tol=$6
    node "$ORA/llamacpp.mjs" probe "$model" "$prompt" "$n" > "$E2E_TMP/lc.jsonl" 2>"$E2E_TMP/lc.err" || { fail "$name" "llama.cpp could not load $model: $(tail -1 "$E2E_TMP/lc.err")"; return; }
    $S tokenize -m "$model" --ids "$prompt" > "$E2E_TMP/ids.txt"
    $S run -m "$model" -p "$prompt" -n "$n" --temp 0 --probs 10 --json > "$E2E_TMP/s.jsonl" || { fail "$name" "sllm run failed"; return; }
    if $PY - "$E2E_TMP/lc.jsonl" "$E2E_TMP/s.jsonl" "$E2E_TMP/ids.txt" "$min_same" "$tol" <<'PYEOF'
import json, sys
lc = [json.loads(l) for l in open(sys.argv[1])]
ss = [json.loads(l) for l in open(sys.argv[2])]
ids = [int(x) for x in open(sys.argv[3]).read().split()]
min_same, tol = int(sys.argv[4]), float(sys.argv[5])
if lc[0]["prompt_ids"] != ids: sys.exit(f"prompt ids differ: llama.cpp {lc[0]['prompt_ids']} sllm {ids}")
steps = lc[1:]
same, tie = 0, False
for a, b in zip(steps, ss):
    pa = {i: p for i, p in a["top"]}
    if a["id"] != b["id"]:
        # a near-tie (sllm's pick within 1% of llama.cpp's top probability there) is rounding, not a
        # disagreement: this step's probabilities are still compared, the diverged steps after it not
        tie = b["id"] in pa and pa[a["id"]] - pa[b["id"]] <= 0.01 * pa[a["id"]]
        if not tie: break
    else: same += 1
    floor = min(pa.values())            # a token missing from llama.cpp's top-10 has p <= floor there
    for t in b["top"]:
        ref = pa.get(t["id"])
        if ref is None:
            if t["p"] > floor + tol:
                sys.exit(f"step {a['step']}: token {t['id']} p={t['p']:.5f} not in llama.cpp's top-10 (min {floor:.5f})")
        elif abs(ref - t["p"]) > tol:
            sys.exit(f"step {a['step']}: token {t['id']} p={t['p']:.5f} llama.cpp {ref:.5f}")
    if tie: break
if same < min_same and not tie: sys.exit(f"only {same} identical greedy steps (need {min_same})")
PYEOF
    then ok; else fail "$name" "sllm and llama.cpp disagree"; fi
}

if [ -f "$M" ]; then
    # 1. Greedy 200 tokens from BOS reproduce the reference text exactly.
    tail -n +2 "$FIX/models/stories260K.greedy200.txt" > "$E2E_TMP/ref.txt"
    $S run -m "$M" -p "" -n 200 --temp 0 > "$E2E_TMP/g.txt"
    if cmp -s "$E2E_TMP/g.txt" "$E2E_TMP/ref.txt"; then ok; else fail "greedy200" "output differs from stories260K.greedy200.txt"; fi
    # the same with an f32 KV cache (the global option, before or after the command)
    $S --kv-type f32 run -m "$M" -p "" -n 200 --temp 0 > "$E2E_TMP/g3.txt"
    if cmp -s "$E2E_TMP/g3.txt" "$E2E_TMP/ref.txt"; then ok; else fail "greedy200 --kv-type f32" "output differs"; fi
    # the same with the weights read into huge pages instead of mapped
    SLLM_HUGEPAGES=1 $S run -m "$M" -p "" -n 200 --temp 0 > "$E2E_TMP/g2.txt"
    if cmp -s "$E2E_TMP/g2.txt" "$E2E_TMP/ref.txt"; then ok; else fail "greedy200 SLLM_HUGEPAGES=1" "output differs"; fi
    want=$(head -1 "$FIX/models/stories260K.greedy200.txt" | $PY -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["ids"])))')
    got=$($S run -m "$M" -p "" -n 20 --temp 0 --probs 3 --json | $PY -c 'import json,sys; print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))')
    [ "$want" = "$got" ] && ok || fail "greedy ids" "want $want got $got"
    out=$($S run -m "$M" -p "Once upon a time" -n 3 --temp 0)
    [ "$out" = "Once upon a time, there was" ] && ok || fail "echo" "got '$out'"
    out=$($S run -m "$M" -p "Once upon a time" -n 3 --temp 0 --no-echo)
    [ "$out" = ", there was" ] && ok || fail "no-echo" "got '$out'"
    # The continuation of a prompt keeps its leading space (a decoder strips it only at the start of a text).
    out=$($S run -m "$M" -p "Once" -n 3 --temp 0)
    [ "$out" = "Once upon a time" ] && ok || fail "continuation space" "got '$out'"
    # --stop: output ends right before the stop text, which is not printed.
    out=$($S run -m "$M" -p "Once upon a time" -n 60 --temp 0 --stop " named" --stop "zzz")
    [ "$out" = "Once upon a time, there was a little girl" ] && ok || fail "stop" "got '$out'"
    # 2. Same seed, same sampled text; different seed, different text.
    a=$($S run -m "$M" -p "Once" -n 40 --temp 1 --seed 5); b=$($S run -m "$M" -p "Once" -n 40 --temp 1 --seed 5)
    c=$($S run -m "$M" -p "Once" -n 40 --temp 1 --seed 6)
    [ "$a" = "$b" ] && [ "$a" != "$c" ] && ok || fail "seed" "sampling is not reproducible per seed"
    # 3. info and tokenize.
    $S info "$M" | grep -q "parameters   292800" && ok || fail "info" "parameter count"
    # KV cache per token: 2 x 5 layers x 4 kv heads x 8 dims x 2 bytes (f16, the default) or 4 (f32)
    $S info "$M" --json | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d["n_layer"]==5 and d["kv_type"]=="f16" and d["kv_bytes"]==4096*640' && ok || fail "info --json"
    $S info "$M" --json --kv-type f32 | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d["kv_type"]=="f32" and d["kv_bytes"]==4096*1280' && ok || fail "info --kv-type f32"
    # 4. Perplexity on TinyStories (the model was trained on them: low, finite).
    if [ -f "$FIX/data/tinystories_val_sample.txt" ]; then
        head -c 60000 "$FIX/data/tinystories_val_sample.txt" > "$E2E_TMP/ts.txt"
        ppl=$($S perplexity -m "$M" -f "$E2E_TMP/ts.txt" -c 256 --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
        $PY -c "import sys; p=float('$ppl'); sys.exit(0 if 1.5 < p < 15 else 1)" && ok || fail "perplexity" "ppl=$ppl out of the plausible range"
    else skip "tinystories_val_sample.txt absent: perplexity check"; fi
    # 5. GGUF -> HF directory -> same greedy text.
    $S quantize "$M" "$E2E_TMP/s-f16.gguf" f16 >/dev/null 2>&1 && ok || fail "quantize f16"
    # 6. llama.cpp oracle: same top-10 probabilities on the original and on files we quantize.
    if [ -n "$ORA" ] && [ -f "$ORA/llamacpp.mjs" ]; then
        compare_llamacpp "llama.cpp f32" "$M" "Once upon a time" 24 24 2e-3
        for t in q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl; do
            $S quantize "$M" "$E2E_TMP/s-$t.gguf" $t >/dev/null 2>&1 || { fail "quantize $t" "$($S quantize "$M" "$E2E_TMP/s-$t.gguf" $t 2>&1)"; continue; }
            compare_llamacpp "llama.cpp $t" "$E2E_TMP/s-$t.gguf" "Once upon a time" 16 6 3e-2
        done
    else skip "SLLM_LLAMACPP_ORACLE not set (scripts/llamacpp-oracle.sh): llama.cpp comparisons"; fi
else
    skip "$M absent: stories260K checks"
fi

# 7. K-quants need rows of 256: a random llama of that width, written by sllm init, quantized, and
#    loaded by llama.cpp with the same greedy steps.
V=$FIX/vocab/ggml-vocab-llama-spm.gguf
if [ -f "$V" ]; then
    $S init --preset small-llama --vocab "$V" --seed 3 "$E2E_TMP/small.gguf" 2>/dev/null && ok || fail "init small-llama"
    for t in q2_k q3_k iq4_nl iq4_xs q4_k q5_k q6_k q8_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m; do   # (the mixes: their main dtype is q4_k / q5_k)
        $S quantize "$E2E_TMP/small.gguf" "$E2E_TMP/small-$t.gguf" $t >/dev/null 2>&1 && ok || fail "quantize $t"
        $S info "$E2E_TMP/small-$t.gguf" --json | grep -qi "\"${t%_m}\"" && ok || fail "quantize $t dtype" "$($S info "$E2E_TMP/small-$t.gguf" --json)"
        if [ -n "$ORA" ] && [ -f "$ORA/llamacpp.mjs" ]; then compare_llamacpp "llama.cpp small $t" "$E2E_TMP/small-$t.gguf" "Hello world, this is" 8 3 3e-2; fi
    done
else skip "$V absent: K-quant checks"; fi

# 8. init writes GGUF and HF directories that run; both report the same parameter count.
$S init --arch llama --preset tiny-llama --seed 1 "$E2E_TMP/tiny.gguf" 2>/dev/null && ok || fail "init gguf"
$S init --preset tiny-qwen3 --seed 1 "$E2E_TMP/tinyq3" 2>/dev/null && ok || fail "init hf"
n1=$($S info "$E2E_TMP/tinyq3" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["n_params"])')
$S init --preset tiny-qwen3 --seed 1 "$E2E_TMP/tinyq3.gguf" 2>/dev/null
n2=$($S info "$E2E_TMP/tinyq3.gguf" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["n_params"])')
[ -n "$n1" ] && [ "$n1" = "$n2" ] && ok || fail "init params" "$n1 vs $n2"
# a q8_0 KV cache: 2 x 3 layers x 2 kv heads x 32 dims x 34 / 32 bytes a token; decodes; refused (with the
# reason) for tiny-llama's head dimension of 16
$S info "$E2E_TMP/tinyq3.gguf" --json --kv-type q8_0 | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d["kv_type"]=="q8_0" and d["kv_bytes"]==4096*408' && ok || fail "info --kv-type q8_0"
$S --kv-type q8_0 bench -m "$E2E_TMP/tinyq3.gguf" -p 16 -n 4 -r 1 --json | grep '"kv_type":"q8_0"' | grep -q '"tg4_tok_s"' && ok || fail "bench --kv-type q8_0"
expect_error "q8_0 KV cache, head_dim 16" "KV cache type q8_0 needs a head dimension that is a multiple of 32 .this model's: 16" \
    $S bench -m "$E2E_TMP/tiny.gguf" -p 4 -n 2 -r 1 --kv-type q8_0
$S bench -m "$E2E_TMP/tiny.gguf" -p 16 -n 4 -r 1 --json | grep -q '"tg4_tok_s"' && ok || fail "bench"
# roofline: decode GB/s (bytes a step reads x tok/s) over the bandwidth probed in the same run, before
# and after each repetition (-r 2: three probes; each repetition against the better probe next to it)
rf=$($S bench -m "$E2E_TMP/tiny.gguf" -p 16 -n 4 -r 1 --roofline --json | $PY -c '
import json, sys
d = json.load(sys.stdin)
pr = d["membw_probes_gb_s"]
share = d["decode_gb_s"] / max(pr)
ok = len(pr) == 2 and min(pr) > 0 and d["membw_gb_s"] == max(pr) and abs(share - d["roofline_share"]) < 0.01 \
     and abs(share - d["roofline_share_best_probe"]) < 0.01
print("ok" if ok else "bad %r" % d)')
[ "$rf" = ok ] && ok || fail "bench --roofline" "$rf"
rf=$($S bench -m "$E2E_TMP/tiny.gguf" -p 16 -n 4 -r 2 --roofline --json | $PY -c '
import json, sys
d = json.load(sys.stdin)
pr = d["membw_probes_gb_s"]
tg, sh = d["tg_reps"], d["roofline_share_reps"]
# each repetition against the better probe next to it; the reported share is their median (upper for 2)
want = [t * d["decode_bytes_per_token"] / 1e9 / max(pr[r], pr[r + 1]) for r, t in enumerate(tg)]
ok = len(pr) == 3 and d["membw_gb_s"] == max(pr) and abs(d["decode_gb_s"] / max(pr) - d["roofline_share_best_probe"]) < 0.01 \
     and len(tg) == 2 and all(abs(a - b) < 2e-3 for a, b in zip(sh, want)) and abs(d["roofline_share"] - max(sh)) < 1e-3
print("ok" if ok else "bad %r" % d)')
[ "$rf" = ok ] && ok || fail "bench --roofline" "$rf"
mb=$($S bench --membw --json | $PY -c 'import json,sys; d=json.load(sys.stdin); print("ok" if d["read_gb_s"] > 0 and d["bytes"] >= 1 << 30 else d)')
[ "$mb" = ok ] && ok || fail "bench --membw" "$mb"

# 9. Bad input: one clear error line, non-zero exit, no crash.
expect_error "no args" "-m MODEL is required" $S run
expect_error "unknown command" "unknown command 'frobnicate'" $S frobnicate
expect_error "bad --kv-type" "--kv-type takes f16, f32 or q8_0 .got 'q8'" $S run -m x -p y --kv-type q8
expect_error "--kv-type without a value" "--kv-type takes f16, f32 or q8_0" $S info x --kv-type
expect_error "unknown option" "unknown option '--bogus'" $S run -m x -p y --bogus
expect_error "missing file" "/nonexistent/m.gguf" $S run -m /nonexistent/m.gguf -p hi
expect_error "bad temp" "--temp: 'abc'" $S run -m x -p y --temp abc
expect_error "bad n" "-n: '1e9x'" $S run -m x -p y -n 1e9x
printf 'this is not a model at all, just text padding padding padding' > "$E2E_TMP/garbage.gguf"
expect_error "garbage file" "garbage.gguf" $S run -m "$E2E_TMP/garbage.gguf" -p hi
mkdir -p "$E2E_TMP/emptydir"
expect_error "HF dir without config" "config.json" $S run -m "$E2E_TMP/emptydir" -p hi
expect_error "unknown preset" "unknown preset 'nope'" $S init --preset nope "$E2E_TMP/x.gguf"
expect_error "preset arch mismatch" "is a qwen3 model, not llama" $S init --arch llama --preset tiny-qwen3 "$E2E_TMP/x.gguf"
expect_error "tokenize no model" "need -m MODEL" $S tokenize hello
if [ -f "$M" ]; then
    head -c 4000 "$M" > "$E2E_TMP/trunc.gguf"
    expect_error "truncated gguf" "trunc.gguf" $S run -m "$E2E_TMP/trunc.gguf" -p hi
    head -c 1000000 "$M" > "$E2E_TMP/trunc2.gguf"
    expect_error "truncated data" "trunc2.gguf.*(past end|exceeds|truncated)" $S info "$E2E_TMP/trunc2.gguf"
    expect_error "quantize bad type" "unsupported type 'q9_9'" $S quantize "$M" "$E2E_TMP/q.gguf" q9_9
    expect_error "invalid utf-8 prompt" "UTF-8" $S run -m "$M" -p $'ab\xff\xfecd' -n 2
    printf 'hi' > "$E2E_TMP/short.txt"
    expect_error "perplexity too short" "less than one chunk" $S perplexity -m "$M" -f "$E2E_TMP/short.txt"
    expect_error "missing prompt file" "nofile.txt" $S run -m "$M" -f "$E2E_TMP/nofile.txt"
    expect_error "vocab only gguf" "token_embd|tensor" $S run -m "$FIX/vocab/ggml-vocab-gpt-2.gguf" -p hi
fi
for c in run info tokenize quantize init bench perplexity; do
    $S $c --help | grep -q "usage: sllm $c" && ok || fail "$c --help"
done
e2e_done
