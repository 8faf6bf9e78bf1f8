# Sourced by bench/run-bench.sh and bench/run-kv.sh (with BUILD and TH set): rt prints the core-to-core
# round trip in ns (bench/pingpong), or null with one thread or without the program.
rt() { [ "$TH" -ge 2 ] && [ -x "$BUILD/pingpong" ] && timeout 10 "$BUILD/pingpong" 100000 2>/dev/null | sed -E 's/.*: ([0-9]+) ns.*/\1/' || echo null; }
# switched R0 R1 R2: true when the round trips disagree about the state (bench/complexes.py's 'x': not all
# below 200 ns and not all above 300); a pair without round trips (null) counts as not switched.
switched() {
    local a=0 b=0 n=0 x
    for x in "$@"; do
        [ "$x" = null ] && continue
        n=$((n + 1)); [ "$x" -lt 200 ] && a=$((a + 1)); [ "$x" -gt 300 ] && b=$((b + 1))
    done
    [ "$n" -gt 0 ] && [ "$a" -ne "$n" ] && [ "$b" -ne "$n" ]
}
# probes_split "A,B,...": true when sllm's bandwidth probes of one run are more than 1.3x apart (a switch
# between the round trips; bench/complexes.py PROBE_SPLIT).
probes_split() { [ -n "$1" ] && awk -v s="$1" 'BEGIN { n = split(s, a, ","); lo = hi = a[1]; for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }; exit !(hi > 1.3 * lo) }'; }
