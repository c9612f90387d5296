#!/usr/bin/env bash
# Builds core-ops and runs the whole-process benchmarks (bench/bench.py; its docstring says what
# every row measures). In one invocation it runs, beside core-ops, the reference tools (Butane and
# ignition-apply, unpacked by ../shared/reference-bin/unpack.sh) and the physical floor (cp -a +
# sync -f) on the conformance case 900-large-tree, paired A B A B after a warm-up pair, and prints
# medians, peak RSS and the ratios, each judged against the targets of issue 13 (ok or MISSED), then
# a summary of every gate. A row whose input or tool is absent prints `SKIPPED <row>: <why>`.
#   bash bench/run.sh [bench.py options]   release build, timed against the targets; exits 1 when
#                                          a gate is MISSED
#     --runs N            runs of each single row (default 20)
#     --pair-runs M       counted pairs of each pair row (default: the smaller of N and 10)
#     --only SUBSTRING    only the rows whose name contains it (repeatable), e.g. --only ext4
#     --shared DIR        the conformance cases and reference-bin (default ../shared)
#     --scratch DIR       roots and generated repositories (default: /dev/shm, a tmpfs)
#     --ext4-dir DIR      where the images of the loop-mounted ext4 go (default: the scratch dir)
#   bash bench/run.sh --smoke              the test build, every row once (pairs included, no
#                                          warm-up) on small inputs, no gate (the test suite runs
#                                          this)
# The fresh-ext4 pair needs root (losetup, mount) and mkfs.ext4; it unmounts and detaches what it
# made at the end, on failure, Ctrl-C or SIGTERM too.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --smoke "* ]]; then
  # The build the test suite already made: no second, release build.
  cargo build --features failpoints --quiet
  exec python3 bench/bench.py --bin "$PWD/target/debug/core-ops" "$@"
fi
cargo build --release --quiet
exec python3 bench/bench.py "$@"
