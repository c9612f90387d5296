#!/usr/bin/env bash
# Builds the fuzz targets once and runs each for SECONDS (default 60) on its corpus, seeded from
# the repository first (fuzz/seed.sh). Prints per target the seconds it ran (a crash ends it
# early), the executions, the speed, libFuzzer's final coverage (cov: edges, ft: features) and
# the corpus size; exits non-zero when a target crashes (a panic, a failed check, a timeout or
# running out of memory), naming the input that did it (under fuzz/artifacts/<target>/). See
# docs/fuzzing.md.
#
# Usage: bash fuzz/run.sh [SECONDS] [TARGET...]
#   FUZZ_JOBS=N      run N targets at a time (default 1; each uses one core)
#   FUZZ_TIMEOUT=S   an input that runs longer than S seconds is a crash (default 30)
#   FUZZ_LOG_DIR=D   keep each target's libFuzzer log as D/<target>.log
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly --profile
# minimal`, `cargo install cargo-fuzz --locked`).
set -euo pipefail
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir"

seconds=${1:-60}
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(butane ignition layout unit)
jobs=${FUZZ_JOBS:-1}
timeout=${FUZZ_TIMEOUT:-30}
# The build: optimised with debug assertions and overflow checks (cargo-fuzz's default), without
# a sanitizer (CoreOps has no unsafe code; a panic is what the targets look for).
build_flags=(--sanitizer none)
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=$fuzz_dir/target/$triple/release

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "run.sh: needs the nightly toolchain and cargo-fuzz: rustup toolchain install nightly --profile minimal && cargo install cargo-fuzz --locked" >&2
  exit 2
fi

# The committed fuzz/Cargo.lock must be current: the build would otherwise update it silently.
if ! cargo +nightly metadata --locked --format-version 1 >/dev/null; then
  echo "run.sh: fuzz/Cargo.lock is stale; refresh it as docs/fuzzing.md says" >&2
  exit 2
fi

echo "== building the fuzz targets (cargo +nightly fuzz build ${build_flags[*]})"
start=$(date +%s)
cargo +nightly fuzz build "${build_flags[@]}"
echo "built in $(($(date +%s) - start)) s"

echo "== seeding the corpora (fuzz/seed.sh)"
bash "$fuzz_dir/seed.sh"

if [ -n "${FUZZ_LOG_DIR:-}" ]; then
  logs=$FUZZ_LOG_DIR
  mkdir -p "$logs"
else
  logs=$(mktemp -d)
  trap 'rm -rf "$logs"' EXIT
fi

# dictionary TARGET: the dictionary file of TARGET (the Ignition target reads the Butane keys).
dictionary() {
  case $1 in
    ignition) echo "$fuzz_dir/dict/butane.dict" ;;
    *) echo "$fuzz_dir/dict/$1.dict" ;;
  esac
}

# fuzz TARGET: runs TARGET for $seconds; its output goes to $logs/TARGET.log, its exit status
# to $logs/TARGET.status.
fuzz() {
  local target=$1 status=0 start
  start=$(date +%s)
  mkdir -p "$fuzz_dir/corpus/$target" "$fuzz_dir/artifacts/$target"
  "$bin_dir/$target" -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 \
    -dict="$(dictionary "$target")" -artifact_prefix="$fuzz_dir/artifacts/$target/" \
    "$fuzz_dir/corpus/$target" >"$logs/$target.log" 2>&1 || status=$?
  echo "$status" >"$logs/$target.status"
  echo "$(($(date +%s) - start))" >"$logs/$target.seconds"
}

echo "== fuzzing ${targets[*]} for $seconds s each, $jobs at a time"
running=0
for target in "${targets[@]}"; do
  fuzz "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

# stat LOG NAME: libFuzzer's final statistic NAME (-print_final_stats).
stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }
# last_status LOG FIELD: FIELD of the last status line (`cov: 123 ft: 456 corp: 78/9Kb ...`).
last_status() { grep -o "$2: [0-9]*" "$1" | tail -1 | sed 's/.*: //'; }

failed=0
printf '%-9s %8s %10s %7s %7s %8s %8s  %s\n' target seconds execs exec/s cov ft corpus result
for target in "${targets[@]}"; do
  log=$logs/$target.log
  status=$(cat "$logs/$target.status")
  result=ok
  if [ "$status" != 0 ]; then
    failed=1
    artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    result="CRASH (exit $status): ${artifact:-no artifact written}"
  fi
  printf '%-9s %8s %10s %7s %7s %8s %8s  %s\n' "$target" "$(cat "$logs/$target.seconds")" "$(stat "$log" number_of_executed_units)" \
    "$(stat "$log" average_exec_per_sec)" "$(last_status "$log" cov)" "$(last_status "$log" ft)" \
    "$(last_status "$log" corp)" "$result"
done
for target in "${targets[@]}"; do
  if [ "$(cat "$logs/$target.status")" != 0 ]; then
    echo "== $target: the end of its log"
    grep -v '^WARNING: Failed to find function' "$logs/$target.log" | tail -40
    echo "Reproduce: $bin_dir/$target $(sed -n 's/.*Test unit written to //p' "$logs/$target.log" | tail -1)"
  fi
done
exit "$failed"
