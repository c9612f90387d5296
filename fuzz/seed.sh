#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/) from the repository's own files, so that a
# fresh clone seeds itself:
#   butane    the conformance cases' input.bu and expected.ign, and the examples' .bu files;
#   ignition  the conformance cases' expected.ign;
#   layout    each example repository, and each conformance case as a one-fragment repository
#             (its input.bu as butane/case.bu, its files/ beside it), in the layout target's
#             text format (fuzz/src/tree_text.rs);
#   unit      the examples' units, Quadlet files and drop-ins, the conformance cases' unit and
#             Quadlet files, and CoreOps's own units (systemd/).
# The cases come from tests/conformance/butane and, when it is there, the shared corpus
# (../shared/conformance/butane/cases, or $CORE_OPS_SHARED/conformance/butane/cases).
# Files over MAX_SEED_BYTES are left out (the large-tree case's 35 kB input would make every
# mutation that large and slow),
# and so are a case's units beyond MAX_UNITS_PER_CASE.
# Seeds are named by the SHA-1 of their bytes, as libFuzzer names corpus entries, so the same
# seed twice is one file. Existing corpus entries are kept.
#
# Usage: bash fuzz/seed.sh [CORPUS_DIR]   (default fuzz/corpus)
set -euo pipefail
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz_dir")
corpus=${1:-$fuzz_dir/corpus}
shared=${CORE_OPS_SHARED:-$repo/../shared}
MAX_SEED_BYTES=16384
# A generated case holds hundreds of near-identical units: a few of each case are enough.
MAX_UNITS_PER_CASE=8

case_dirs=("$repo/tests/conformance/butane")
if [ -d "$shared/conformance/butane/cases" ]; then
  case_dirs+=("$shared/conformance/butane/cases")
fi

# add TARGET FILE: copies FILE into TARGET's corpus under its SHA-1, unless it is too big.
add() {
  local target=$1 file=$2 size sum
  size=$(stat -c %s "$file")
  [ "$size" -le "$MAX_SEED_BYTES" ] || return 0
  sum=$(sha1sum "$file" | cut -d' ' -f1)
  [ -e "$corpus/$target/$sum" ] || cat "$file" >"$corpus/$target/$sum"
}

# encode_repo ROOT [PREFIX]: every file under ROOT as the layout target's text: a `=== path`
# header (` +x` for an executable file) and the bytes, with a newline added where one is missing
# so the next header starts a line. PREFIX is put before each path.
encode_repo() {
  local root=$1 prefix=${2:-} rel
  while IFS= read -r -d '' rel; do
    rel=${rel#./}
    if [ -x "$root/$rel" ]; then printf '=== %s%s +x\n' "$prefix" "$rel"; else printf '=== %s%s\n' "$prefix" "$rel"; fi
    cat "$root/$rel"
    [ ! -s "$root/$rel" ] || [ "$(tail -c1 "$root/$rel" | od -An -c | tr -d ' ')" = '\n' ] || echo
  done < <(cd "$root" && find . -type f ! -name README.md -print0 | sort -z)
}

# add_text TARGET: the standard input as one seed of TARGET.
add_text() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  add "$1" "$tmp"
  rm -f "$tmp"
}

mkdir -p "$corpus"/{butane,ignition,layout,unit}

for dir in "${case_dirs[@]}"; do
  for case in "$dir"/*/; do
    case=${case%/}
    [ -f "$case/input.bu" ] || continue
    add butane "$case/input.bu"
    if [ -f "$case/expected.ign" ]; then
      add butane "$case/expected.ign"
      add ignition "$case/expected.ign"
    fi
    if [ -d "$case/files" ]; then
      units=0
      while IFS= read -r -d '' f && [ "$units" -lt "$MAX_UNITS_PER_CASE" ]; do
        add unit "$f"
        units=$((units + 1))
      done < <(find "$case/files" -type f \( -name '*.service' -o -name '*.timer' -o -name '*.container' \
        -o -name '*.network' -o -name '*.volume' -o -name '*.conf' \) -print0 | sort -z)
    fi
    {
      printf '=== hosts/example/host.yaml\nhost: example\nbutane:\n  - case\n'
      printf '=== butane/case.bu\n'
      cat "$case/input.bu"
      [ "$(tail -c1 "$case/input.bu" | od -An -c | tr -d ' ')" = '\n' ] || echo
      [ ! -d "$case/files" ] || encode_repo "$case/files" butane/
    } | add_text layout
  done
done

for example in "$repo"/examples/*/; do
  encode_repo "${example%/}" | add_text layout
done
find "$repo/examples" -type f -name '*.bu' -print0 | while IFS= read -r -d '' f; do add butane "$f"; done
find "$repo/examples" "$repo/systemd" -type f \( -path '*/quadlet/*' -o -path '*/systemd/*' \) -print0 |
  while IFS= read -r -d '' f; do add unit "$f"; done

for target in butane ignition layout unit; do
  printf '%-9s %5d corpus entries\n' "$target" "$(find "$corpus/$target" -type f | wc -l)"
done
