# Sourced by bench/run-bench.sh and bench/run-kv.sh (with BUILD and TH set): rt prints the core-to-core
# round trip in ns (bench/pingpong), or null with one thread or without the program.
rt() { [ "$TH" -ge 2 ] && [ -x "$BUILD/pingpong" ] && timeout 10 "$BUILD/pingpong" 100000 2>/dev/null | sed -E 's/.*: ([0-9]+) ns.*/\1/' || echo null; }
