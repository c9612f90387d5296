#!/usr/bin/env bash
# Records what the reference Ignition writes for every example repository, as the expectation
# that tests/examples.rs holds `core-ops apply` to.
#
# For each examples/NAME with a hosts/ folder: `core-ops render-ignition --source-repo
# examples/NAME --host example` renders the config, the reference `ignition-apply` (from
# ../shared/reference-bin) writes it into a fresh root holding only etc/passwd and etc/group, and
# the tree is recorded in tests/examples-expected/:
#
#   NAME.tree    one line per node below the root, sorted by the path's bytes:
#                TYPE PATH MODE UID:GID PAYLOAD (file: sha256; link: its target; dir: -), without
#                the pre-made etc/passwd and etc/group and Ignition's etc/.ignition-result.json.
#                The ownership record CoreOps embeds (/var/lib/core-ops/state.json) is listed
#                with the payload `ownership-record`: its bytes are CoreOps's own bookkeeping.
#   NAME.preset  the systemd preset file the reference wrote, when it wrote one (it enables
#                units through presets, where `core-ops apply` makes the links).
#
# Run it as root (the owners must be the ones the reference writes) after changing an example or
# a rendering rule, and commit the result; the test reruns the reference where it is available
# and fails when a recording is stale.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "record-example-trees: run as root, so that owners are recorded as written" >&2; exit 1; }
[ -d ../shared/reference-bin ] || { echo "record-example-trees: ../shared/reference-bin is missing" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ref=$(bash ../shared/reference-bin/unpack.sh "$work/bin")
cargo build --quiet --bin core-ops
core_ops=${CARGO_TARGET_DIR:-target}/debug/core-ops

# One manifest line per node below $1, sorted by the path's bytes.
manifest() {
  local root=$1 rel full mode owner payload type
  (cd "$root" && find . -mindepth 1 -print0) | LC_ALL=C sort -z | while IFS= read -r -d '' rel; do
    rel=${rel#.}
    case $rel in /etc/passwd | /etc/group | /etc/.ignition-result.json) continue ;; esac
    full=$root$rel
    mode=$(printf '%04o' "$((8#$(stat -c '%a' "$full")))")
    owner=$(stat -c '%u:%g' "$full")
    if [ -L "$full" ]; then
      type=link payload=$(readlink "$full")
    elif [ -d "$full" ]; then
      type=dir payload=-
    elif [ -f "$full" ]; then
      type=file payload=$(sha256sum <"$full" | cut -d' ' -f1)
    else
      type=other payload=-
    fi
    [ "$rel" != /var/lib/core-ops/state.json ] || payload=ownership-record
    printf '%s %s %s %s %s\n' "$type" "$rel" "$mode" "$owner" "$payload"
  done
}

out=tests/examples-expected
mkdir -p "$out"
rm -f "$out"/*.tree "$out"/*.preset
for dir in examples/*/; do
  dir=${dir%/}
  [ -d "$dir/hosts" ] || continue
  name=$(basename "$dir")
  "$core_ops" render-ignition --source-repo "$dir" --host example -o "$work/$name.ign"
  root=$work/$name.root
  mkdir -p "$root/etc"
  chmod 0755 "$root/etc"
  printf 'root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/var/home/core:/bin/bash\n' >"$root/etc/passwd"
  printf 'root:x:0:\ncore:x:1000:\n' >"$root/etc/group"
  if ! container=1 "$ref/ignition-apply" --root "$root" --offline --ignore-unsupported "$work/$name.ign" \
    >"$work/$name.log" 2>&1; then
    tail -n 25 "$work/$name.log" >&2
    echo "record-example-trees: the reference ignition-apply failed on $name" >&2
    exit 1
  fi
  manifest "$root" >"$out/$name.tree"
  preset=$root/etc/systemd/system-preset/20-ignition.preset
  [ ! -f "$preset" ] || cp "$preset" "$out/$name.preset"
  echo "recorded $out/$name.tree ($(wc -l <"$out/$name.tree") nodes)"
done
