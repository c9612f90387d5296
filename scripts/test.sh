#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit, integration and conformance test,
# including the scenarios against a real systemd and Podman in systemd-nspawn containers (as
# root; the testbed rootfs is built on the first run, about a minute), and the benchmark as a
# smoke test (small sizes, no timing gate).
#
# A test that cannot run its prerequisite records itself in the skip ledger; the run ends with
# one line counting passed, failed and skipped tests, and the reason for each skip. Under
# CI=true a skip fails its test unless CORE_OPS_ALLOWED_SKIPS names it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets --features failpoints -- -D warnings"
cargo clippy --all-targets --features failpoints --quiet -- -D warnings
if [ "$(id -u)" = 0 ]; then
  echo "== real-systemd testbed (.ci/testbed.sh setup)"
  bash .ci/testbed.sh setup
  trap 'bash .ci/testbed.sh down-all' EXIT
else
  echo "*** not root: the real-systemd scenarios (tests/real_systemd.rs) will be SKIPPED ***"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"; [ "$(id -u)" != 0 ] || bash .ci/testbed.sh down-all' EXIT
export CORE_OPS_SKIP_LEDGER="$work/skips"
: >"$CORE_OPS_SKIP_LEDGER"

echo "== cargo test --features failpoints"
status=0
cargo test --all-targets --features failpoints --quiet 2>&1 | tee "$work/cargo-test.log" || status=$?

echo "== benchmark smoke test (bench/run.sh --smoke)"
bench_status=0
bash bench/run.sh --smoke 2>&1 | tee "$work/bench.log" || bench_status=$?

# Every `test result:` line of cargo counts; a skipped test reported `ok`, so it moves from
# passed to skipped.
read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) }
  } END { print p + 0, f + 0 }' "$work/cargo-test.log")
skipped=$(grep -c . "$CORE_OPS_SKIP_LEDGER" || true)
bench_skipped=$(grep -c '^SKIPPED ' "$work/bench.log" || true)
if [ "$skipped" -gt 0 ] || [ "$bench_skipped" -gt 0 ]; then
  echo "== skipped"
  sed 's/\t/: /' "$CORE_OPS_SKIP_LEDGER" | sort | sed 's/^/  /'
  grep '^SKIPPED ' "$work/bench.log" | sed 's/^SKIPPED /  bench: /' || true
fi
passed=$((passed - skipped))
[ "$status" = 0 ] || echo "cargo test failed (exit $status)"
[ "$bench_status" = 0 ] || { echo "the benchmark smoke test failed (exit $bench_status)"; failed=$((failed + 1)); }
echo "tests: $passed passed, $failed failed, $((skipped + bench_skipped)) skipped"
[ "$status" = 0 ] && [ "$bench_status" = 0 ]
