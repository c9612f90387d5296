#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit, integration and conformance test.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets --features failpoints -- -D warnings"
cargo clippy --all-targets --features failpoints --quiet -- -D warnings
echo "== cargo test --features failpoints"
cargo test --all-targets --features failpoints --quiet 2>&1
