#!/usr/bin/env bash
# End-to-end: sllm template against the committed @huggingface/jinja references (byte for byte), sllm chat
# one-shot replies on a random tiny-qwen3 with the real Qwen2 tokenizer (valid OpenAI-shaped messages,
# --schema / --grammar / forced tool calls that parse and validate), the interactive loop, and clean
# errors with non-zero exits for bad input.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
S=$BUILD/sllm
FIX=${SLLM_FIXTURES:-../shared/fixtures}
PY=${SLLM_PYTHON:-python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P=0; F=0; K=0
ok() { P=$((P+1)); }
bad() { F=$((F+1)); echo "FAIL: $*" >&2; }
skip() { K=$((K+1)); echo "SKIP: $*" >&2; }
check() { local name=$1; shift; if "$@"; then ok; else bad "$name"; fi; }

# ---- sllm template == @huggingface/jinja
for pair in qwen3:tools_call qwen3:thinking_off qwen3:reasoning_past llama3.2:tools_call llama3:multi_turn \
            gemma3:multi_turn deepseek-r1-distill-qwen:reasoning_last hermes3-tool-use:tools_pending \
            chatml:unicode_whitespace mistral-nemo:tools_call phi35:multi_turn_no_gen qwq-32b:parallel_tools; do
    tpl=${pair%%:*}; cas=${pair#*:}
    args=$($PY - "$tpl" "$cas" "$T/want" <<'EOF'
import json, sys, shlex
tpl, cas, out = sys.argv[1:4]
ref = json.load(open("tests/ref/jinja_ref.json"))
r = [x for x in ref["results"] if x["template"] == tpl and x["case"] == cas]
if not r or "output" not in r[0]:
    print("SKIP"); sys.exit(0)
open(out, "w", encoding="utf-8", newline="").write(r[0]["output"])
tok = json.load(open("tests/templates/tokens.json")).get(tpl, {})
c = json.load(open(f"tests/chat_cases/{cas}.json"))
a = ["--generation-prompt" if c.get("add_generation_prompt") else "--no-generation-prompt"]
if tok.get("bos") is not None: a += ["--bos", tok["bos"]]
if tok.get("eos") is not None: a += ["--eos", tok["eos"]]
print(" ".join(shlex.quote(x) for x in a))
EOF
)
    if [ "$args" = SKIP ]; then skip "no reference for $pair"; continue; fi
    eval "set -- $args"
    if $S template --chat-template "tests/templates/$tpl.jinja" --messages "tests/chat_cases/$cas.json" "$@" > "$T/got" 2> "$T/err" \
       && cmp -s "$T/got" "$T/want"; then ok; else bad "template $pair differs from @huggingface/jinja"; head -3 "$T/err" >&2; fi
done
# --no-think is the enable_thinking=false kwarg; a messages array works as well as a case object
$PY -c 'import json; json.dump([{"role":"user","content":"hi"}], open("'"$T"'/m.json","w"))'
$S template --chat-template tests/templates/qwen3.jinja --messages "$T/m.json" --no-think > "$T/a"
check "template --no-think" grep -q '<think>' "$T/a"
$S template --chat-template tests/templates/qwen3.jinja --messages "$T/m.json" > "$T/b"
check "template default generation prompt" test "$(tail -c 22 "$T/b")" = "$(printf '<|im_start|>assistant\n')"
check "template help" $S template --help > /dev/null

# ---- template errors
expect_err() {   # name, expected exit, pattern, command...
    local name=$1 want=$2 pat=$3; shift 3
    "$@" > "$T/o" 2> "$T/e"; local rc=$?
    if [ "$rc" = "$want" ] && grep -q -- "$pat" "$T/e" && [ "$(wc -l < "$T/e")" -le 2 ]; then ok
    else bad "$name: exit $rc (want $want), stderr: $(head -c 300 "$T/e")"; fi
}
printf '[{"role": "user",\n  "content": oops}]' > "$T/badjson.json"
expect_err "bad messages json" 1 "badjson.json:2:" $S template --chat-template tests/templates/chatml.jinja --messages "$T/badjson.json"
expect_err "missing messages file" 1 "nope.json" $S template --chat-template tests/templates/chatml.jinja --messages "$T/nope.json"
printf 'x{%% for m in messages %%}\n{{ m.content }\n' > "$T/bad.jinja"
expect_err "template syntax error" 1 "template:2:" $S template --chat-template "$T/bad.jinja" --messages "$T/m.json"
printf '{{ raise_exception("no system role") }}' > "$T/raise.jinja"
expect_err "raise_exception" 1 "no system role" $S template --chat-template "$T/raise.jinja" --messages "$T/m.json"
expect_err "template needs a source" 2 "chat-template" $S template --messages "$T/m.json"
expect_err "template unknown option" 2 "unknown option" $S template --chat-template x --bogus
expect_err "messages not an array" 1 "messages" $S template --chat-template tests/templates/chatml.jinja --messages tests/schemas/person.json

# ---- sllm chat on a random tiny model with a real tokenizer
VOCAB=$FIX/vocab/ggml-vocab-qwen2.gguf
if [ ! -f "$VOCAB" ]; then
    skip "chat: $VOCAB absent"
else
    M=$T/tiny-qwen3.gguf
    $S init --preset tiny-qwen3 --dtype f16 --vocab "$VOCAB" "$M" > /dev/null 2>&1 || bad "sllm init with --vocab"
    check "chat help" $S chat --help > /dev/null
    # one-shot: an OpenAI-shaped message
    $S chat -m "$M" --messages tests/chat_cases/multi_turn.json -n 12 --seed 3 > "$T/r1.json" 2> "$T/e1"
    check "chat one-shot message" $PY - "$T/r1.json" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
m = json.loads(lines[0])
assert m["role"] == "assistant" and isinstance(m["content"], str), m
EOF
    $S chat -m "$M" --messages tests/chat_cases/multi_turn.json -n 12 --seed 3 > "$T/r1b.json" 2>/dev/null
    check "chat same seed, same reply" cmp -s "$T/r1.json" "$T/r1b.json"
    # --schema: the content is an instance
    cat > "$T/schema.json" <<'EOF'
{"type": "object", "properties": {"answer": {"enum": ["yes", "no", "maybe"]}, "n": {"type": "integer", "minimum": 0, "maximum": 99},
 "ok": {"type": "boolean"}}, "required": ["answer", "n", "ok"], "additionalProperties": false}
EOF
    for seed in 1 2 3; do
        $S chat -m "$M" --messages "$T/m.json" --schema "$T/schema.json" -n 600 --temp 1 --seed $seed > "$T/r2.json" 2> "$T/e2"
        check "chat --schema seed $seed" $PY - "$T/r2.json" <<'EOF'
import json, sys
m = json.loads(open(sys.argv[1]).read())
v = json.loads(m["content"])
assert set(v) == {"answer", "n", "ok"}, v
assert v["answer"] in ("yes", "no", "maybe") and isinstance(v["n"], int) and 0 <= v["n"] <= 99 and isinstance(v["ok"], bool), v
assert "tool_calls" not in m
EOF
    done
    # --grammar
    printf 'root ::= "The answer is " [0-9]{1,3} "."\n' > "$T/g.gbnf"
    $S chat -m "$M" --messages "$T/m.json" --grammar "$T/g.gbnf" -n 50 --seed 4 > "$T/r3.json" 2> "$T/e3"
    check "chat --grammar" $PY -c 'import json,re,sys; c=json.load(open(sys.argv[1]))["content"]; assert re.fullmatch(r"The answer is [0-9]{1,3}\.", c), c' "$T/r3.json"
    # forced tool call, Hermes format (the Qwen3 template) and the generic JSON form (the GGUF's own template)
    cat > "$T/tools.json" <<'EOF'
[{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
  "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                 "required": ["city", "days"]}}},
 {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"]}}}]
EOF
    for tpl in "--chat-template tests/templates/qwen3.jinja" ""; do
        $S chat -m "$M" $tpl --messages "$T/m.json" --tools "$T/tools.json" --tool-choice required -c 1024 -n 600 --seed 5 > "$T/r4.json" 2> "$T/e4"
        check "chat forced tool call ${tpl:-gguf template}" $PY - "$T/r4.json" <<'EOF'
import json, sys
m = json.loads(open(sys.argv[1]).read())
calls = m["tool_calls"]
assert len(calls) == 1 and calls[0]["type"] == "function" and calls[0]["id"].startswith("call_"), m
f = calls[0]["function"]
a = json.loads(f["arguments"])
if f["name"] == "get_weather":
    assert a["city"] in ("Paris", "Oslo") and 1 <= a["days"] <= 7 and set(a) == {"city", "days"}, a
else:
    assert f["name"] == "get_time" and a == {"tz": a["tz"]} and a["tz"] in ("UTC", "CET"), a
assert "parse_error" not in m
EOF
    done
    $S chat -m "$M" --chat-template tests/templates/qwen3.jinja --messages "$T/m.json" --tools "$T/tools.json" --tool-choice get_time -c 1024 -n 600 --seed 6 > "$T/r5.json" 2> "$T/e5"
    check "chat --tool-choice NAME" $PY -c 'import json,sys; m=json.load(open(sys.argv[1])); assert [c["function"]["name"] for c in m["tool_calls"]] == ["get_time"], m' "$T/r5.json"
    # interactive: commands and two turns (the second reuses the KV cache)
    printf 'hello\n/think off\n/bogus\nand again\n/reset\n/exit\n' | $S chat -m "$M" -n 6 --seed 1 --system "Be brief." --verbose > "$T/i.out" 2> "$T/i.err"
    check "chat interactive" grep -q "thinking off" "$T/i.err"
    check "chat interactive reuses the cache" grep -qE '[1-9][0-9]* cached' "$T/i.err"
    check "chat interactive reset" grep -q "conversation reset" "$T/i.err"
    # errors
    expect_err "chat missing model" 1 "nope.gguf" $S chat -m "$T/nope.gguf" --messages "$T/m.json"
    expect_err "chat bad messages" 1 "badjson.json:2:" $S chat -m "$M" --messages "$T/badjson.json"
    printf '{"type": "string", "pattern": "^a+$"}' > "$T/pat.json"
    expect_err "chat unsupported schema keyword" 1 "pattern" $S chat -m "$M" --messages "$T/m.json" --schema "$T/pat.json"
    printf 'root ::= "a" | \n  ( "b"\n' > "$T/bad.gbnf"
    expect_err "chat bad grammar" 1 "bad.gbnf:" $S chat -m "$M" --messages "$T/m.json" --grammar "$T/bad.gbnf"
    expect_err "chat required without tools" 2 "needs tools" $S chat -m "$M" --messages "$T/m.json" --tool-choice required
    expect_err "chat unknown tool" 1 "no tool named" $S chat -m "$M" --messages "$T/m.json" --tools "$T/tools.json" --tool-choice nope
    expect_err "chat bad template" 1 "template:2:" $S chat -m "$M" --chat-template "$T/bad.jinja" --messages "$T/m.json"
    expect_err "chat schema and grammar" 2 "not both" $S chat -m "$M" --schema "$T/schema.json" --grammar "$T/g.gbnf"
    expect_err "chat bad option value" 2 "temp" $S chat -m "$M" --temp abc
fi
echo "$P passed, $F failed, $K skipped"
[ "$F" = 0 ]
