#!/usr/bin/env bash
# The real-systemd testbed: a Debian trixie rootfs (systemd 257, Podman 5 with quadlet) built
# once with debootstrap, and a throwaway systemd-nspawn container per test, booted on its own
# overlay so tests never see each other's writes. Works on hosts whose PID 1 is not systemd.
#
#   testbed.sh setup            install systemd-container + debootstrap, build the rootfs (idempotent:
#                               rebuilt only when it was built from another package list)
#   testbed.sh mount NAME       give a container its root (the overlay) without booting it, for
#                               writing into it before its first boot; prints the root's path
#   testbed.sh up NAME          boot a container (on the root `mount` made, if it ran); prints its
#                               PID 1 as the host sees it
#   testbed.sh exec NAME CMD…   run a command inside it (all namespaces)
#   testbed.sh root NAME        print the host path of its root (the overlay)
#   testbed.sh down NAME        kill it and remove its overlay and cgroups
#   testbed.sh down-all         all of them
#
# TESTBED_DIR (default /var/cache/core-ops-testbed) holds the rootfs and the containers.
set -euo pipefail
TB=${TESTBED_DIR:-/var/cache/core-ops-testbed}
ROOTFS=$TB/rootfs-trixie
# git: gix runs `git-upload-pack` for file:// remotes (the agent scenarios follow a repository
# mounted into the container).
PACKAGES=systemd,dbus,podman,nftables,aardvark-dns,busybox-static,curl,git
# What a finished rootfs records in its .complete: a rootfs built from another list is rebuilt.
STAMP="packages=$PACKAGES"
mirror() {
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  echo "${MIRROR:-${m:-http://deb.debian.org/debian}}"
}
say() { printf 'testbed: %s\n' "$*" >&2; }
# Whether the rootfs is finished and built from the current package list.
built() { [ "$(cat "$ROOTFS/.complete" 2>/dev/null)" = "$STAMP" ]; }

setup() {
  mkdir -p "$TB"
  if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing systemd-container and debootstrap"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd-container debootstrap >/dev/null
  fi
  built && return 0
  if [ -d "$ROOTFS" ]; then
    say "rebuilding $ROOTFS: it was built from another package list (now $STAMP)"
  fi
  say "building the trixie rootfs in $ROOTFS (about a minute)"
  rm -rf "$ROOTFS.tmp"
  if ! debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOTFS.tmp" "$(mirror)" >"$TB/debootstrap.log" 2>&1; then
    tail -20 "$TB/debootstrap.log" >&2
    exit 1
  fi
  rm -f "$ROOTFS.tmp"/var/cache/apt/archives/*.deb
  echo testbed >"$ROOTFS.tmp/etc/hostname"
  # nspawn's seccomp filter refuses keyctl(2), and this host's cgroup2 has no controllers.
  printf '[containers]\nkeyring = false\npids_limit = 0\n' >"$ROOTFS.tmp/etc/containers/containers.conf"
  make_image "$ROOTFS.tmp"
  echo "$STAMP" >"$ROOTFS.tmp/.complete"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.tmp" "$ROOTFS"
}

# A two-megabyte image with busybox, for `podman import` (no registry is reachable).
make_image() {
  local rootfs=$1 img
  img=$(mktemp -d)
  mkdir -p "$img/bin" "$img/www"
  cp "$rootfs/usr/bin/busybox" "$img/bin/"
  for applet in sh sleep httpd cat echo ls; do ln -s busybox "$img/bin/$applet"; done
  echo "hello from the testbed" >"$img/www/index.html"
  tar -C "$img" -cf "$rootfs/root/testimg.tar" .
  rm -rf "$img"
}

cgroup_roots() {
  if [ -d /sys/fs/cgroup/unified ]; then echo /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; else echo /sys/fs/cgroup; fi
}
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# The nspawn child in another PID namespace: the container's PID 1.
find_leader() {
  local nspawn=$1 mine child ns
  mine=$(readlink /proc/self/ns/pid)
  for child in $(cat /proc/"$nspawn"/task/*/children 2>/dev/null); do
    ns=$(readlink /proc/"$child"/ns/pid 2>/dev/null) || continue
    if [ "$ns" != "$mine" ]; then echo "$child"; return 0; fi
  done
  return 1
}

# The container's root: an overlay on the rootfs, mounted once.
mount_root() {
  local dir=$TB/ct/$1
  built || { say "no rootfs of the current package list: run '$0 setup' first"; exit 1; }
  mkdir -p "$dir"/upper "$dir"/work "$dir"/merged
  mountpoint -q "$dir"/merged ||
    mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$dir/upper,workdir=$dir/work" "$dir"/merged
}

up() {
  local name=$1 dir=$TB/ct/$1 nspawn leader="" state=""
  mount_root "$name"
  (
    # Each container in its own cgroup, or two containers' systemds would manage one another's.
    for h in $(cgroup_roots); do mkdir -p "$h/testbed/$name"; echo $BASHPID >"$h/testbed/$name/cgroup.procs"; done
    export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
    # shellcheck disable=SC2086
    exec setsid systemd-nspawn -q -D "$dir"/merged -M "$name" -b --register=no --keep-unit \
      --console=passive --private-network --system-call-filter=bpf --tmpfs=/var/lib/containers \
      ${NSPAWN_EXTRA:-} >"$dir"/log 2>&1 </dev/null
  ) &
  nspawn=$!
  echo "$nspawn" >"$dir"/nspawn.pid
  for _ in $(seq 400); do
    leader=$(find_leader "$nspawn") && break
    sleep 0.025
  done
  [ -n "$leader" ] || { say "up $name: no container PID 1"; cat "$dir"/log >&2; exit 1; }
  echo "$leader" >"$dir"/leader.pid
  for _ in $(seq 1200); do
    state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null) || true
    case "$state" in running | degraded) echo "$leader"; return 0 ;; esac
    sleep 0.025
  done
  say "up $name: not booted (state '$state')"
  cat "$dir"/log >&2
  exit 1
}

in_container() {
  local name=$1
  shift
  nsenter -t "$(cat "$TB/ct/$name/leader.pid")" -a "$@"
}

down() {
  local name=$1 dir=$TB/ct/$1 nspawn leader
  [ -d "$dir" ] || return 0
  # A container that was only mounted has no processes to kill.
  if nspawn=$(cat "$dir"/nspawn.pid 2>/dev/null); then
    leader=$(cat "$dir"/leader.pid 2>/dev/null) || leader=""
    [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null || true
    for _ in $(seq 300); do alive "$nspawn" || break; sleep 0.01; done
    alive "$nspawn" && kill -KILL "$nspawn" 2>/dev/null || true
    for _ in $(seq 300); do alive "$nspawn" || break; sleep 0.01; done
  fi
  umount "$dir"/merged 2>/dev/null || umount -l "$dir"/merged 2>/dev/null || true
  rm -rf "$dir" "/run/systemd/nspawn/propagate/$name"
  for h in $(cgroup_roots); do
    [ -d "$h/testbed/$name" ] && find "$h/testbed/$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

down_all() {
  local dir
  for dir in "$TB"/ct/*/; do [ -d "$dir" ] && down "$(basename "$dir")"; done
  return 0
}

case "${1:-}" in
  setup) setup ;;
  mount) mount_root "$2"; echo "$TB/ct/$2/merged" ;;
  up) up "$2" ;;
  exec) shift; in_container "$@" ;;
  root) echo "$TB/ct/$2/merged" ;;
  down) down "$2" ;;
  down-all) down_all ;;
  *) echo "usage: $0 setup | mount NAME | up NAME | exec NAME CMD... | root NAME | down NAME | down-all" >&2; exit 64 ;;
esac
