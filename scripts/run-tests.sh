#!/usr/bin/env bash
# Runs every test binary in $BUILD/tests (and tests/*.sh end-to-end scripts) and sums their
# "N passed, N failed[, N skipped]" lines into one final line. Exit status is non-zero on any failure.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
# llama.cpp oracle (scripts/llamacpp-oracle.sh) for the tests that compare against it; they skip without it.
if [ -z "${SLLM_LLAMACPP_ORACLE:-}" ] && [ -d build/llamacpp-oracle/node_modules/node-llama-cpp ]; then
    export SLLM_LLAMACPP_ORACLE=$PWD/build/llamacpp-oracle
fi
P=0; F=0; S=0; bad=()
run_one() {
    local name=$1; shift
    local out rc line
    out=$("$@" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -20
        echo "== $name: no summary line (exit $rc)"; F=$((F+1)); bad+=("$name"); return
    fi
    local p f s
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || echo 0)
    P=$((P+p)); F=$((F+f)); S=$((S+${s:-0}))
    if [ "$f" != 0 ] || [ $rc != 0 ]; then
        printf '%s\n' "$out" | grep -E 'FAIL|error|ERROR' | head -30
        [ "$f" = 0 ] && F=$((F+1))
        bad+=("$name")
    fi
    printf '%-32s %s\n' "$name" "$line"
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/e2e_*.sh; do
    [ -f "$t" ] || continue
    run_one "$(basename "$t")" env BUILD="$BUILD" bash "$t"
done
[ ${#bad[@]} -gt 0 ] && echo "failing: ${bad[*]}"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
