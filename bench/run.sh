#!/usr/bin/env bash
# Builds core-ops and runs the whole-process benchmarks (bench/bench.py).
#   bash bench/run.sh [bench.py options]   release build, timed against the targets
#   bash bench/run.sh --smoke              the test build, every case once on small inputs, no
#                                          timing gate (the test suite runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --smoke "* ]]; then
  # The build the test suite already made: no second, release build.
  cargo build --features failpoints --quiet
  exec python3 bench/bench.py --bin "$PWD/target/debug/core-ops" "$@"
fi
cargo build --release --quiet
exec python3 bench/bench.py "$@"
