#!/usr/bin/env bash
# make bench: the grid types' decode kernels (IQ1 / IQ2 / IQ3 against 8-bit activations), one thread,
# against llama.cpp's own CPU kernels for them (bench/bench_iq.c) on the same GGML-quantized rows.
# The CPU variant is the one llama.cpp's loader takes here (BENCH_IQ_CPU=name to choose another).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if ! ORA=$(scripts/llamacpp-oracle.sh 2>/dev/null); then echo "bench-iq: llama.cpp oracle unavailable (../shared/oracles): skipped"; exit 0; fi
DIR=$(sed -nE 's/^LLAMA_BACKEND_DIR=([^ ]+) .*/\1/p' "$ORA/run-bench.sh")
v=${BENCH_IQ_CPU:-}
if [ -z "$v" ]; then
    if grep -qw avx512f /proc/cpuinfo; then grep -q AuthenticAMD /proc/cpuinfo && v=zen4 || v=icelake
    elif grep -qw avx2 /proc/cpuinfo; then v=haswell
    else echo "bench-iq: no AVX2: skipped"; exit 0; fi
fi
echo "grid types, decode product, one thread, 512 x 2048 rows in L2 (llama.cpp: libggml-cpu-$v)"
SLLM_LLAMACPP_ORACLE=$ORA LD_LIBRARY_PATH=$DIR "$BUILD/bench_iq" "$DIR/libggml-cpu-$v.so" | tee "$BUILD/bench/performance-table-iq.md"
