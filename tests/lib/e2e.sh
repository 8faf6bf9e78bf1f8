# Shared helpers for tests/e2e_*.sh (source tests/lib/e2e.sh): counters and the final "N passed, N failed, N skipped" line.
# Usage: source tests/lib/e2e.sh; ok "name" / fail "name" "why" / skip "why"; check "name" CMD...; e2e_done
E2E_P=0; E2E_F=0; E2E_S=0
S=${BUILD:-build}/sllm
FIX=${SLLM_FIXTURES:-../shared/fixtures}
PY=${SLLM_PYTHON:-/usr/bin/python3}
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sllm-e2e.XXXXXX")
trap 'rm -rf "$E2E_TMP"' EXIT
ok() { E2E_P=$((E2E_P + 1)); }
fail() { E2E_F=$((E2E_F + 1)); echo "FAIL $1: ${2:-}" >&2; }
skip() { E2E_S=$((E2E_S + 1)); echo "SKIP: $1" >&2; }
# check NAME CMD...: passes when CMD exits 0.
check() { local n=$1; shift; if "$@" >/dev/null 2>&1; then ok; else fail "$n" "command failed: $*"; fi; }
# expect_error NAME PATTERN CMD...: CMD must exit non-zero, print one stderr line matching PATTERN, and not crash.
expect_error() {
    local n=$1 pat=$2; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 0 ]; then fail "$n" "exit 0, expected an error"; return; fi
    if [ $rc -ge 128 ]; then fail "$n" "crashed (exit $rc): $err"; return; fi
    if ! printf '%s' "$err" | grep -qE -- "$pat"; then fail "$n" "error '$err' does not match /$pat/"; return; fi
    ok
}
e2e_done() { echo "$E2E_P passed, $E2E_F failed, $E2E_S skipped"; [ $E2E_F -eq 0 ]; }
