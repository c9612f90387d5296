#!/usr/bin/env bash
# Builds core-ops in release mode and runs the whole-process benchmarks (bench/bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 bench/bench.py "$@"
