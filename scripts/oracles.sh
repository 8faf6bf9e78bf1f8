#!/usr/bin/env bash
# Installs the npm oracles (HF tokenizers, @huggingface/jinja) into tests/oracles/node_modules once.
# Prints the node_modules path; exits non-zero (tests then skip with a message) if npm is unavailable.
set -e
cd "$(dirname "$0")/../tests/oracles"
if [ ! -d node_modules/@lenml/tokenizers ] || [ ! -d node_modules/@huggingface/jinja ]; then
    command -v npm >/dev/null || { echo "oracles.sh: npm not found" >&2; exit 1; }
    npm ci --no-audit --no-fund >/dev/null 2>&1 || npm install --no-audit --no-fund >/dev/null
fi
echo "$PWD/node_modules"
