#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit, integration and conformance test,
# including the scenarios against a real systemd and Podman in systemd-nspawn containers (as
# root; the testbed rootfs is built on the first run, about a minute).
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
echo "== cargo test --features failpoints"
cargo test --all-targets --features failpoints --quiet 2>&1
