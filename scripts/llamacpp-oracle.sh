#!/usr/bin/env bash
# Sets up llama.cpp as an oracle and speed anchor in build/llamacpp-oracle (from ../shared/oracles:
# the prebuilt llama.cpp in npm node-llama-cpp, llamacpp.mjs, and the llamacpp_bench C harness).
# Prints the directory; exits 1 (tests then skip) when ../shared/oracles or npm is unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${SLLM_ORACLES:-../shared/oracles}
DST=${SLLM_LLAMACPP_ORACLE:-$PWD/build/llamacpp-oracle}
[ -f "$SRC/llamacpp.mjs" ] || { echo "llamacpp-oracle: $SRC not found" >&2; exit 1; }
mkdir -p "$DST"
cp "$SRC/llamacpp.mjs" "$SRC/package.json" "$DST/"
if [ ! -x "$DST/run-bench.sh" ] || [ ! -d "$DST/node_modules/node-llama-cpp" ]; then
    bash "$SRC/build-llamacpp-bench.sh" "$DST" >&2
fi
echo "$DST"
