#!/usr/bin/env python3
"""Whole-process benchmarks for core-ops: wall time (min, median and max of N runs), peak RSS, and
the ratios to the reference tools and to the physical floor, measured in the same invocation.

Usage: bench/bench.py [--runs N] [--pair-runs M] [--only SUBSTRING]... [--bin PATH] [--shared DIR]
                      [--scratch DIR] [--ext4-dir DIR] [--smoke]

Builds nothing itself; run `cargo build --release` first (bench/run.sh does). Every row is timed
from outside, as a whole process: start-up, reading, writing and syncing included. Peak RSS is the
operating system's accounting of the finished process (getrusage of the waited-for child, its own
waited-for children included), in MiB: the "peak MiB" of a row is the median over its runs of
each run's peak (ignition-apply's, a Go program's, varies by 15 MiB from run to run; the median
is a steadier yardstick than the largest). Commands are started through GNU time
(`/usr/bin/time`, Debian's package `time`) so that a command's peak is its own; without it, a
peak reads no lower than this harness's own (about 15-17 MiB: Linux carries the peak a process
had before `exec`, here the harness's, into its accounting), which the run then prints at the end.

Single rows (--runs N, default 20; a row's figures are min, median and max of the N runs), each
gated by its median wall time:
- render-ignition of a realistic host config (tests/conformance, fcos 1.8 Quadlets): <= 3 ms;
- plan of a generated repository (300 services x 4 files) against an empty root: <= 100 ms, and
  peak RSS <= 30 MiB;
- a converged re-apply of the large case (see below) and of a 1,000-object repository: <= 50 ms.

Pairs (--pair-runs M, default the smaller of N and 10): side A (core-ops) and side B run in turn,
A B A B, after one warm-up pair that is not counted; each pair gives a ratio A/B of wall time, and
the ratio row shows its min, median and max (pairing keeps a ratio meaningful while the machine's
speed drifts). The side rows show each side's wall times and its median peak RSS; the ratio row
shows the ratio of the two sides' median peaks too.
A side of several commands is timed command by command (its untimed preparation done first).

The large case is the conformance case 900-large-tree (2,000 tree files, 40 symlinks, 210 units,
12 MB; `--shared DIR`/conformance/butane/cases). It is copied into the scratch directory once, with
the symlinks of files/ recreated from its files.links (as the conformance checker does), so that
every side writes the same tree, the 41 links of expected.ign included; commands run in that copy.
The reference tools are unpacked by `bash DIR/reference-bin/unpack.sh` (Butane v0.29 and
ignition-apply v2.26; ignition-apply runs as `container=1 ignition-apply --root R --offline
--ignore-unsupported expected.ign`: --ignore-unsupported makes it skip the passwd section, which it
refuses to apply live, and it exits 0 on this case). Every run of every side gets a fresh root made
before its clock starts, with etc/passwd and etc/group as a host has them; each root is removed,
untimed, before the next root of its side is made.
- "apply ... (input.bu), tmpfs root vs ignition-apply": `core-ops apply --config input.bu
  --files-dir files --root R --offline --format json` against ignition-apply of expected.ign, both
  roots on a tmpfs. Gates: wall ratio <= 0.20 (5x faster), peak RSS ratio <= 1.
- "apply ... (expected.ign), tmpfs root vs ignition-apply": the same from `--config expected.ign`.
  Same gates.
- "apply ... (input.bu), tmpfs root vs cp -a floor": core-ops apply against the physical floor,
  `sh -c 'cp -a files R/x && sync -f R/x'` (the sh around it costs about a millisecond: noise).
  Gate: wall ratio <= 2.0.
- "apply ... (input.bu), fresh ext4 root vs ignition-apply": as the first, with each side's root on
  its own ext4 on a loop device. The image files (200 MiB each, in --ext4-dir, default the scratch
  directory, so on a tmpfs the figures hold ext4's own work, not a disk's latency) and the loop
  devices are made once per invocation; before every pair both filesystems are made anew
  (unmount, mkfs.ext4 with the inode tables and journal initialised at once, so no background
  initialisation runs during a run, mount): every run writes into a freshly made filesystem, and
  the dirty pages one side leaves (ignition-apply does not sync) are written out, untimed, by the
  unmount, never by the other side's syncfs. Everything is unmounted and detached at the end, on
  failure and on SIGINT or SIGTERM too. Needs root, mkfs.ext4 and losetup. Gate: wall ratio <= 0.50.
- "plan ... (input.bu), empty tmpfs root vs ignition-apply": `core-ops plan --config input.bu
  --files-dir files --root R --offline --format json` against ignition-apply (as in the first pair,
  same conditions). Gate: peak RSS ratio <= 1 (the wall ratio is shown, not gated).
- "render-ignition ... vs butane": `core-ops render-ignition --pretty --files-dir files input.bu`
  against `butane --pretty --files-dir files input.bu`. Gates: wall ratio <= 0.10, peak RSS ratio
  <= 0.25.
- The agent cycles follow a generated git repository (200 services x 5 objects) over file:// and
  are each paired with what users do without an agent: `git clone --depth 1 file://...` into a fresh
  directory, then `core-ops apply --source-repo CLONE`. Gate: the converged cycle's median <= 100 ms.

A row whose input or tool is missing (the large case and the reference tools live in ../shared; a
tmpfs; root, which core-ops apply and ignition-apply need, as the ext4 pair does with mkfs.ext4
and losetup; git) is reported on a line of its own, `SKIPPED <row>: <why>`, and the rest goes on. The run ends with a summary of every gate: its
figure, its limit and ok or MISSED; the exit status is 1 when a gate is MISSED.

--only SUBSTRING (repeatable, case-insensitive) runs only the rows whose name contains one of them,
e.g. `--only ext4`, `--only floor`, `--only "large tree"`.

--smoke runs every row once (no warm-up, small generated repositories) and checks only that each
command succeeds, with no gate: the test suite runs it so the benchmark cannot rot. The pairs run
too when the reference tools are there, on the small realistic host case of tests/conformance
instead of the large case (same commands, sides and filesystems, a fraction of the time with the
test build), named "... realistic host ...".

Roots and generated repositories are made under --scratch (default: a new directory in /dev/shm,
a tmpfs, else the system's temporary directory); the tmpfs pairs use it when it is a tmpfs, else a
new directory in /dev/shm. What commands print (both streams) goes to a file in /dev/shm (not a
pipe, so no reader competes for the processor; every side writes what it prints, as in real use);
its end is shown when a command fails.
"""
import argparse
import contextlib
import functools
import itertools
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ACCOUNTS = ("root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/var/home/core:/bin/bash\n",
            "root:x:0:\ncore:x:1000:\n")
LARGE_CASE = os.path.join("conformance", "butane", "cases", "900-large-tree")
LARGE = "large tree"
REALISTIC = os.path.join(ROOT, "tests", "conformance", "butane", "802-realistic-fcos-quadlets-1.8")
# --smoke runs the pairs on the realistic host case (small, in this repository): quick with the
# test build, and every command and code path of the pairs still runs.
SMOKE_SUBJECT = "realistic host"
# ignition-apply outside a booted CoreOS needs to be told it runs in a container.
IGNITION_ENV = {"container": "1"}
EXT4_IMAGE_MIB = 200
# mkfs.ext4 options: initialise inode tables and journal now, not in the background during runs.
MKFS_EXT4 = ("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0")
DEFAULT_RUNS = 20
MAX_DEFAULT_PAIR_RUNS = 10
WARMUP_PAIRS = 1
SIZES = {"plan": 300, "converged": 250, "agent": 200}
SMOKE_SIZES = {"plan": 12, "converged": 10, "agent": 10}
SHM = "/dev/shm"
# The targets of issue 13, as ratios core-ops / the other side (wall: median of the pairs' ratios).
APPLY_TMPFS_WALL = 0.20  # 5x faster than ignition-apply, root on a tmpfs
APPLY_EXT4_WALL = 0.50  # 2x faster on a freshly made ext4
APPLY_FLOOR_WALL = 2.0  # within 2x of cp -a + sync -f
NO_MORE_RSS = 1.0  # apply and plan: peak RSS at most ignition-apply's
RENDER_WALL = 0.10  # render-ignition: a tenth of Butane's wall time
RENDER_RSS = 0.25  # and a quarter of its peak RSS
AGENT_NOTHING_NEW_MS = 100


def default_scratch():
    """/dev/shm when it is there to write in (a tmpfs: no disk in the figures), else the default."""
    return SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else None


# Where what commands print is kept while they run.
LOG_DIR = default_scratch()


TIME = "/usr/bin/time"


def run_once(cmd, cwd, env=None):
    """Runs cmd (env: the whole environment, or None for ours); returns (seconds, peak_rss_kib).

    The command is started through GNU time (`/usr/bin/time -f %M`), a small process, so that its
    peak is its own: a process started by this harness directly would inherit the harness's peak
    (Linux carries the peak of the memory a process had before `exec` into its accounting). Without
    GNU time the command is started directly and its peak reads no lower than the harness's."""
    with tempfile.TemporaryFile(dir=LOG_DIR) as log, tempfile.NamedTemporaryFile(dir=LOG_DIR) as peak:
        timed = [TIME, "-f", "%M", "-o", peak.name] + list(cmd) if os.access(TIME, os.X_OK) else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(timed, cwd=cwd, env=env, stdout=log, stderr=log)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C or SIGTERM: no command left running in a root being removed
            proc.kill()
            proc.wait()
            raise
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            err = log.read().decode(errors="replace")[-400:]
            raise RuntimeError("%s failed with exit code %d in %s: %s" % (" ".join(cmd), code, cwd, err))
        reported = peak.read().decode().split()
    return elapsed, int(reported[-1]) if timed is not cmd and reported else usage.ru_maxrss


def tool(*args):
    """Runs a system tool (mkfs, mount, losetup); returns its output; raises naming it on failure."""
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(args), proc.returncode, proc.stderr.strip()))
    return proc.stdout


GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid", GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=os.devnull)


def git(repo, *args):
    """Runs git in `repo` with a fixed identity and no user or system config (the generated remote)."""
    proc = subprocess.run(("git", "-C", repo) + args, env=GIT_ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError("git %s failed in %s: %s" % (" ".join(args), repo, proc.stderr.decode()[-400:]))


def write_files(base, files):
    """Writes {relative path: text} under base."""
    for rel, text in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def make_root(path):
    """Makes `path` an empty root with the accounts a host's files name; returns it."""
    os.makedirs(os.path.join(path, "etc"))
    write_files(path, {"etc/passwd": ACCOUNTS[0], "etc/group": ACCOUNTS[1]})
    return path


def remove_tree(path):
    """Removes a scratch tree, read-only directories (copied from ../shared) included."""
    for parent, dirs, _ in os.walk(path):
        for name in dirs:
            full = os.path.join(parent, name)
            if not os.path.islink(full):
                os.chmod(full, os.stat(full).st_mode | 0o700)
    shutil.rmtree(path, ignore_errors=True)


def quadlet(name):
    """The Quadlet container file of service `name`."""
    return ("[Container]\nImage=registry.example/%s:1.0\nEnvironmentFile=/etc/%s/env\n"
            "Volume=/etc/%s/app.conf:/app.conf:ro\n\n[Install]\nWantedBy=multi-user.target\n" % (name, name, name))


def app_conf(name, revision=0):
    """The app.conf of service `name` (svc-NNN) at `revision`."""
    return "# %s\nlisten = %d\nworkers = 4\nrevision = %d\n" % (name, 8000 + int(name[4:]), revision)


def host_yaml(names):
    """The host `bench`, running the services `names`."""
    return {"hosts/bench/host.yaml": "host: bench\nservices:\n" + "".join("  - %s\n" % n for n in names)}


class Scratch:
    """Fresh roots, clones and repositories under one directory."""

    def __init__(self, base):
        self.base = base
        self.count = 0
        self.previous = {}

    def path(self, kind, keep=True):
        """A new path (not made) for a `kind` of directory; unless `keep`, the previous one of that
        kind is removed first, so that per-run roots and clones do not pile up."""
        if not keep and kind in self.previous:
            shutil.rmtree(self.previous[kind], ignore_errors=True)
        self.count += 1
        path = os.path.join(self.base, "%s-%04d" % (kind, self.count))
        self.previous[kind] = path
        return path

    def root(self, kind="root", keep=True):
        """An empty root with the accounts a host's files name."""
        return make_root(self.path(kind, keep))

    def repo(self, services):
        """A source repository of `services` services with 4 files each (host `bench`)."""
        repo = os.path.join(self.base, "repo-%d" % services)
        names = ["svc-%03d" % i for i in range(services)]
        for name in names:
            write_files(os.path.join(repo, "services", name), {
                "quadlet/%s.container" % name: quadlet(name),
                "quadlet/%s.container.d/10-limits.conf" % name: "[Container]\nPodmanArgs=--memory=128m\n",
                "config/app.conf": app_conf(name),
                "config/env": "APP_NAME=%s\nLOG_LEVEL=info\n" % name,
            })
        write_files(repo, host_yaml(names))
        return repo

    def git_repo(self, services):
        """A git repository (branch `main`, one commit) of `services` services with 5 objects each: a
        Quadlet file, a systemd unit and 3 config files (host `bench`)."""
        repo = os.path.join(self.base, "git-repo-%d" % services)
        names = ["svc-%03d" % i for i in range(services)]
        for name in names:
            write_files(os.path.join(repo, "services", name), {
                "quadlet/%s.container" % name: quadlet(name),
                "systemd/%s-backup.service" % name: "[Unit]\nDescription=Back up %s\n\n[Service]\nType=oneshot\n"
                "ExecStart=/usr/bin/true\n" % name,
                "config/app.conf": app_conf(name),
                "config/env": "APP_NAME=%s\nLOG_LEVEL=info\n" % name,
                "config/limits.yaml": "memory: 128Mi\ncpus: 0.5\nname: %s\n" % name,
            })
        write_files(repo, host_yaml(names))
        git(repo, "init", "--quiet", "--initial-branch", "main")
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "--message", "%d services" % services)
        return repo

    @staticmethod
    def commit_one_file(repo, revision):
        """Commits a change to one config file of the first service."""
        write_files(repo, {"services/svc-000/config/app.conf": app_conf("svc-000", revision)})
        git(repo, "commit", "--quiet", "--all", "--message", "revision %d" % revision)


def fs_type(path):
    """The type of the filesystem `path` is on (from /proc/self/mounts), or None."""
    path = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        return None
    return kind


class Skip(Exception):
    """A row cannot run here; the message says why."""


class LoopExt4:
    """An ext4 on a loop device over an image file: attach() makes the image and the loop device,
    fresh() makes a new filesystem on it and mounts it, close() unmounts and detaches."""

    def __init__(self, image_dir, name):
        self.image = os.path.join(image_dir, "%s.img" % name)
        self.mount_point = os.path.join(image_dir, name)
        self.device = None
        self.mounted = False

    def attach(self):
        """Makes the image file and its loop device."""
        with open(self.image, "wb") as image:
            image.truncate(EXT4_IMAGE_MIB * 1024 * 1024)
        os.makedirs(self.mount_point)
        self.device = tool("losetup", "--find", "--show", self.image).strip()

    def fresh(self):
        """Unmounts the previous filesystem (writing its dirty pages out), makes a new one and
        mounts it; returns the mount point."""
        self.unmount()
        tool(*(MKFS_EXT4 + (self.device,)))
        tool("mount", "-t", "ext4", self.device, self.mount_point)
        self.mounted = True
        return self.mount_point

    def unmount(self):
        if self.mounted:
            try:
                tool("umount", self.mount_point)
            except RuntimeError:
                tool("umount", "-l", self.mount_point)
            self.mounted = False

    def close(self):
        """Unmounts, detaches the loop device and removes the image; reports what it could not do."""
        try:
            self.unmount()
            if self.device:
                tool("losetup", "--detach", self.device)
                self.device = None
            for remove, path in ((os.rmdir, self.mount_point), (os.remove, self.image)):
                if os.path.lexists(path):
                    remove(path)
        except (RuntimeError, OSError) as error:
            print("WARNING: cleaning up %s: %s" % (self.image, error), file=sys.stderr, flush=True)


class Gate:
    """A target of a row: `what` it measures, figure(result) in `unit`, at most `limit`."""

    def __init__(self, what, limit, figure, unit="x"):
        self.what, self.limit, self.figure, self.unit = what, limit, figure, unit

    def show(self, value):
        if self.unit == "x":
            return "%.2f" % value
        if self.unit == "ms":
            return ("%.1f ms" if value >= 10 else "%.2f ms") % value
        return "%.1f %s" % (value, self.unit)

    def check(self, result):
        """(figure as shown, limit as shown, met) of a measured result."""
        value = self.figure(result)
        return self.show(value), self.show(self.limit), value <= self.limit


class Case:
    """A single-side row: make_cmd() prepares a run (untimed) and gives its command, run in cwd."""

    def __init__(self, make_cmd, cwd, gates):
        self.make_cmd, self.cwd, self.gates = make_cmd, cwd, gates


class Side:
    """One side of a pair: its label, the labels of its commands, make() that prepares a run
    (untimed) and gives its commands, their working directory and extra environment."""

    def __init__(self, label, steps, make, cwd=ROOT, env=None):
        self.label, self.steps, self.make, self.cwd = label, steps, make, cwd
        self.env = dict(os.environ, **env) if env else None


class Pair:
    """Side a against side b, run in turn; before() (untimed) prepares each pair; gates judge the
    measured pair."""

    def __init__(self, a, b, before=None, gates=()):
        self.a, self.b, self.before, self.gates = a, b, before, gates


class Entry:
    """A row by name: build() prepares it (untimed) and gives its Case or Pair, or raises Skip;
    `missing` says why it cannot run here, before anything is built."""

    def __init__(self, name, build, missing=None):
        self.name, self.build, self.missing = name, build, missing


def median_ms(times):
    return statistics.median(times) * 1000


def wall_ratio(result):
    """The median of the pairs' ratios a/b of wall time."""
    return statistics.median(result["ratios"])


def rss_ratio(result):
    """Side a's median peak RSS over side b's."""
    return statistics.median(result["peaks"]["a"]) / statistics.median(result["peaks"]["b"])


def wall_ratio_gate(limit, a, b):
    return Gate("wall ratio %s / %s" % (a, b), limit, wall_ratio)


def rss_ratio_gate(limit, a, b):
    return Gate("peak RSS ratio %s / %s" % (a, b), limit, rss_ratio)


def apply_missing():
    """Why `core-ops apply` cannot run here, or None: it refuses to run without root."""
    return None if os.geteuid() == 0 else "core-ops apply needs root (it writes root-owned nodes and records)"


def ignition_missing():
    """Why ignition-apply cannot run here, or None: without root it fails to set owners."""
    return None if os.geteuid() == 0 else "ignition-apply needs root (it sets the owners of what it writes)"


def single_entries(binary, scratch, sizes, large, large_missing):
    """The single-side rows."""
    render = [binary, "render-ignition", "--pretty", "--files-dir", "files", "input.bu"]
    yield Entry("render-ignition realistic host (fcos 1.8 quadlets)",
                lambda: Case(lambda: render, REALISTIC, wall_gates(0.003)),
                None if os.path.isdir(REALISTIC) else "its input %s is not there" % REALISTIC)

    def plan_repo():
        repo, empty = scratch.repo(sizes["plan"]), scratch.root()
        plan = [binary, "plan", "--source-repo", repo, "--host", "bench", "--root", empty, "--format", "json",
                "--offline"]
        return Case(lambda: plan, ROOT, wall_gates(0.100, 30))
    yield Entry("plan %d services x 4 files into an empty root" % sizes["plan"], plan_repo)

    def converged_large():
        converged = scratch.root()
        run_once(apply_cmd(binary, "input.bu", converged), large)
        return Case(lambda: apply_cmd(binary, "input.bu", converged), large, wall_gates(0.050))
    yield Entry("converged re-apply of the " + LARGE, converged_large, large_missing or apply_missing())

    def converged_repo():
        repo, converged = scratch.repo(sizes["converged"]), scratch.root()
        apply_repo = [binary, "apply", "--source-repo", repo, "--host", "bench", "--root", converged, "--offline",
                      "--format", "json"]
        run_once(apply_repo, ROOT)
        return Case(lambda: apply_repo, ROOT, wall_gates(0.050))
    yield Entry("converged re-apply of a %d-object repository" % (sizes["converged"] * 4), converged_repo,
                apply_missing())


def wall_gates(max_s, max_mib=None):
    """A single row's targets: its median wall time, and its peak RSS if given."""
    gates = [Gate("median wall time", max_s * 1000, lambda r: median_ms(r["times"]), "ms")]
    if max_mib is not None:
        gates.append(Gate("peak RSS", max_mib, lambda r: statistics.median(r["peaks"]) / 1024, "MiB"))
    return gates


def apply_cmd(binary, config, root):
    """core-ops apply of a config (a .bu reads its local files from files/) into root."""
    files = ["--files-dir", "files"] if config.endswith(".bu") else []
    return [binary, "apply", "--config", config] + files + ["--root", root, "--offline", "--format", "json"]


def reference_entries(binary, setup, subject):
    """The pairs of a case (`subject`: the large case, or the small one of --smoke) against the
    reference tools and the floor (see the docstring)."""
    case, tools, tmpfs = setup.case, setup.tools, setup.tmpfs
    refs_missing = setup.case_missing or setup.tools_missing
    tmpfs_refs_missing = refs_missing or setup.tmpfs_missing or ignition_missing()
    apply_refs_missing = tmpfs_refs_missing or apply_missing()

    def tmpfs_roots(kind):
        return lambda: tmpfs.root(kind, keep=False)

    def core_ops_apply(config, roots):
        return Side("core-ops", ("core-ops apply %s" % config,),
                    lambda: [apply_cmd(binary, config, roots())], cwd=case)

    def ignition_apply(roots):
        ignition = os.path.join(tools, "ignition-apply")
        return Side("ignition-apply", ("ignition-apply expected.ign",),
                    lambda: [[ignition, "--root", roots(), "--offline", "--ignore-unsupported", "expected.ign"]],
                    cwd=case, env=IGNITION_ENV)

    def vs_ignition(config, wall_limit):
        """core-ops apply of `config` against ignition-apply, both into fresh tmpfs roots."""
        def build():
            return Pair(core_ops_apply(config, tmpfs_roots("apply-" + config)),
                        ignition_apply(tmpfs_roots("ignition-" + config)),
                        gates=(wall_ratio_gate(wall_limit, "core-ops", "ignition-apply"),
                               rss_ratio_gate(NO_MORE_RSS, "core-ops", "ignition-apply")))
        return build
    yield Entry("apply %s (input.bu), tmpfs root vs ignition-apply" % subject,
                vs_ignition("input.bu", APPLY_TMPFS_WALL), apply_refs_missing)
    yield Entry("apply %s (expected.ign), tmpfs root vs ignition-apply" % subject,
                vs_ignition("expected.ign", APPLY_TMPFS_WALL), apply_refs_missing)

    def floor():
        def copy():
            copy_root = os.path.join(tmpfs.root("floor", keep=False), "x")
            return [["sh", "-c", 'cp -a files "$1" && sync -f "$1"', "floor", copy_root]]
        return Pair(core_ops_apply("input.bu", tmpfs_roots("apply-floor")),
                    Side("floor", ("cp -a files R/x && sync -f R/x (the floor)",), copy, cwd=case),
                    gates=(wall_ratio_gate(APPLY_FLOOR_WALL, "core-ops", "cp -a floor"),))
    yield Entry("apply %s (input.bu), tmpfs root vs cp -a floor" % subject, floor,
                setup.case_missing or setup.tmpfs_missing or apply_missing())

    def ext4():
        filesystems = [LoopExt4(setup.ext4_dir, "ext4-%s" % side) for side in ("core-ops", "ignition")]
        for fs in filesystems:
            setup.cleanup.callback(fs.close)
            try:
                fs.attach()
                fs.fresh()
            except (RuntimeError, OSError) as error:
                raise Skip("cannot make a loop-mounted ext4 here: %s" % error) from error

        def fresh_filesystems():
            for fs in filesystems:
                fs.fresh()

        def roots(fs):
            return lambda: make_root(os.path.join(fs.mount_point, "root"))
        return Pair(core_ops_apply("input.bu", roots(filesystems[0])), ignition_apply(roots(filesystems[1])),
                    before=fresh_filesystems,
                    gates=(wall_ratio_gate(APPLY_EXT4_WALL, "core-ops", "ignition-apply"),))
    yield Entry("apply %s (input.bu), fresh ext4 root vs ignition-apply" % subject, ext4,
                refs_missing or setup.ext4_missing)

    def plan():
        def make():
            return [[binary, "plan", "--config", "input.bu", "--files-dir", "files", "--root",
                     tmpfs.root("plan", keep=False), "--offline", "--format", "json"]]
        return Pair(Side("core-ops plan", ("core-ops plan input.bu",), make, cwd=case),
                    ignition_apply(tmpfs_roots("ignition-plan")),
                    gates=(rss_ratio_gate(NO_MORE_RSS, "plan", "ignition-apply"),))
    yield Entry("plan %s (input.bu), empty tmpfs root vs ignition-apply" % subject, plan, tmpfs_refs_missing)

    def render():
        args = ["--pretty", "--files-dir", "files", "input.bu"]
        return Pair(Side("core-ops", ("core-ops render-ignition",),
                         lambda: [[binary, "render-ignition"] + args], cwd=case),
                    Side("butane", ("butane",), lambda: [[os.path.join(tools, "butane")] + args], cwd=case),
                    gates=(wall_ratio_gate(RENDER_WALL, "core-ops", "butane"), rss_ratio_gate(RENDER_RSS, "core-ops", "butane")))
    yield Entry("render-ignition %s vs butane" % subject, render, refs_missing)


def run_all(cmds, cwd=ROOT, env=None):
    """Runs commands one after the other; returns each one's seconds and the largest peak RSS."""
    times, peak = [], 0
    for cmd in cmds:
        elapsed, rss = run_once(cmd, cwd, env)
        times.append(elapsed)
        peak = max(peak, rss)
    return times, peak


def agent_entries(binary, scratch, services):
    """The agent following a file:// repository of services x 5 objects, against a fresh shallow
    clone and `apply --source-repo` of it."""
    missing = apply_missing()
    if shutil.which("git") is None:
        missing = "it needs git (the remote, and the clone it is compared with)"
    objects = "{:,} objects".format(services * 5)

    @functools.lru_cache(maxsize=None)
    def repo():
        return scratch.git_repo(services)

    def url():
        return "file://" + repo()

    def init(root):
        return [binary, "init", url(), "main", "--host", "bench", "--root", root]

    def agent(root):
        return [binary, "agent", "--root", root]

    def clone_apply(root):
        clone = scratch.path("clone", keep=False)
        return [["git", "clone", "--quiet", "--depth", "1", url(), clone],
                [binary, "apply", "--source-repo", clone, "--host", "bench", "--root", root, "--offline", "--yes"]]

    def converged_pair():
        """A root the agent converged, and one `apply` of a clone converged."""
        agent_root, apply_root = scratch.root(), scratch.root()
        run_all([init(agent_root), agent(agent_root)] + clone_apply(apply_root))
        return agent_root, apply_root

    today = "clone + apply"
    today_steps = ("git clone --depth 1", "apply --source-repo CLONE")

    def nothing_new():
        agent_root, apply_root = converged_pair()
        return Pair(Side("agent", ("agent",), lambda: [agent(agent_root)]),
                    Side(today, today_steps, lambda: clone_apply(apply_root)),
                    gates=(Gate("median wall time of the agent", AGENT_NOTHING_NEW_MS,
                                lambda r: median_ms([sum(t) for t in r["samples"]["a"]]), "ms"),))
    yield Entry("agent cycle, nothing new (%s, converged)" % objects, nothing_new, missing)

    def one_file_commit():
        agent_root, apply_root = converged_pair()
        revisions = itertools.count(1)
        return Pair(Side("agent", ("agent",), lambda: [agent(agent_root)]),
                    Side(today, today_steps, lambda: clone_apply(apply_root)),
                    before=lambda: scratch.commit_one_file(repo(), next(revisions)))
    yield Entry("agent cycle after a one-file commit (%s)" % objects, one_file_commit, missing)

    def first(root):
        return [init(root), agent(root)]

    def first_cycle():
        return Pair(Side("init + first agent cycle", ("init", "first agent cycle"),
                         lambda: first(scratch.root("first-agent", keep=False))),
                    Side(today, today_steps, lambda: clone_apply(scratch.root("first-apply", keep=False))))
    yield Entry("first init + agent cycle, empty root (%s)" % objects, first_cycle, missing)


def measure_case(case, runs):
    """Runs a single-side row `runs` times; returns each run's time and peak RSS."""
    times, peaks = [], []
    for _ in range(runs):
        elapsed, rss = run_once(case.make_cmd(), case.cwd)
        times.append(elapsed)
        peaks.append(rss)
    return {"times": times, "peaks": peaks}


def measure_pair(pair, runs, warmup):
    """Runs the sides in turn (after `warmup` uncounted pairs); returns per side its runs' step
    times and peak RSS, and the pairs' ratios a/b of total time."""
    samples, peaks, ratios = {"a": [], "b": []}, {"a": [], "b": []}, []
    for i in range(warmup + runs):
        if pair.before:
            pair.before()
        done = {key: run_all(side.make(), side.cwd, side.env) for key, side in (("a", pair.a), ("b", pair.b))}
        if i < warmup:
            continue
        for key, (times, peak) in done.items():
            samples[key].append(times)
            peaks[key].append(peak)
        ratios.append(sum(done["a"][0]) / sum(done["b"][0]))
    return {"samples": samples, "peaks": peaks, "ratios": ratios}


ROW = "%-66s %10s %10s %10s %10s  %s"


def row(name, values, peak_kib=None, note="", scale=1000):
    """One row of figures: min, median and max of values (seconds shown in ms; scale=1 for ratios)."""
    cells = ["%.2f" % (v * scale) for v in (min(values), statistics.median(values), max(values))]
    peak = "%.1f" % (peak_kib / 1024) if peak_kib is not None else ""
    print(ROW % tuple([name] + cells + [peak, note]), flush=True)


def judge(name, gates, result, smoke, summary):
    """The note of a row's gates (each also added to the summary), or "ran (smoke)"."""
    if smoke:
        return "ran (smoke)"
    notes = []
    for gate in gates:
        figure, limit, met = gate.check(result)
        verdict = "ok" if met else "MISSED"
        summary.append((name, gate.what, figure, limit, verdict))
        notes.append("%s <= %s %s" % (figure, limit, verdict))
    return "; ".join(notes)


def report_case(name, case, result, smoke, summary):
    row(name, result["times"], statistics.median(result["peaks"]), judge(name, case.gates, result, smoke, summary))


def report_pair(name, pair, result, smoke, summary):
    """Prints a pair: side a, its commands, side b, its commands, the ratio with the gates."""
    samples, peaks = result["samples"], result["peaks"]
    for key, side in (("a", pair.a), ("b", pair.b)):
        title = name if key == "a" else "  vs %s" % " + ".join(side.steps)
        row(title, [sum(times) for times in samples[key]], statistics.median(peaks[key]))
        if len(side.steps) > 1:
            for index, step in enumerate(side.steps):
                row("    %s" % step, [times[index] for times in samples[key]])
    note = "peak RSS ratio %.2f; %s" % (rss_ratio(result), judge(name, pair.gates, result, smoke, summary))
    row("  ratio (x): %s / %s" % (pair.a.label, pair.b.label), result["ratios"], note=note.rstrip("; "), scale=1)


def print_summary(summary):
    """Every gate of the run, its figure, limit and verdict; returns whether all were met."""
    print("\nsummary of the gates:")
    for name, what, figure, limit, verdict in summary:
        print("  %-6s %s: %s %s (<= %s)" % (verdict, name, what, figure, limit))
    missed = sum(1 for entry in summary if entry[4] != "ok")
    print("%d gates, %d MISSED" % (len(summary), missed), flush=True)
    return missed == 0


def reference_tools(shared):
    """The directory that holds the unpacked reference butane and ignition-apply, and None; or
    None and why they are not there."""
    unpack = os.path.join(shared, "reference-bin", "unpack.sh")
    if not os.path.isfile(unpack):
        return None, "the reference tools are not there (%s)" % unpack
    proc = subprocess.run(["bash", unpack], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = proc.stdout.split()
    if proc.returncode != 0 or not lines:
        return None, "%s failed (exit %d): %s" % (unpack, proc.returncode, proc.stderr.strip()[-300:])
    for name in ("butane", "ignition-apply"):
        if not os.access(os.path.join(lines[-1], name), os.X_OK):
            return None, "%s did not unpack %s" % (unpack, name)
    return lines[-1], None


def copy_case(source, base):
    """A copy of a conformance case under base with the symlinks of files/ recreated from its
    files.links, if any, and None; or the case's path and why it is not there."""
    if not os.path.isdir(source):
        return source, "its input %s is not there" % source
    copy = os.path.join(base, os.path.basename(source))
    shutil.copytree(source, copy, symlinks=True)
    links = os.path.join(copy, "files.links")
    if os.path.isfile(links):
        with open(links) as listing:
            for line in listing:
                if line.startswith("#") or not line.strip():
                    continue
                path, target = line.rstrip("\n").split("\t")
                link = os.path.join(copy, "files", path)
                parent = os.path.dirname(link)
                mode = os.stat(parent).st_mode
                os.chmod(parent, mode | 0o200)
                os.symlink(target, link)
                os.chmod(parent, mode)
    return copy, None


def tmpfs_scratch(base, cleanup):
    """A Scratch on a tmpfs (under base when base is on one, else in /dev/shm), and None; or None
    and why there is none."""
    if fs_type(base) == "tmpfs":
        directory = os.path.join(base, "tmpfs")
        os.mkdir(directory)
    elif os.path.isdir(SHM) and fs_type(SHM) == "tmpfs" and os.access(SHM, os.W_OK):
        directory = tempfile.mkdtemp(prefix="core-ops-bench-", dir=SHM)
        cleanup.callback(remove_tree, directory)
    else:
        return None, "no tmpfs to put the roots on (%s is not one, and %s is not there)" % (base, SHM)
    return Scratch(directory), None


def loop_ext4_missing():
    """Why a loop-mounted ext4 cannot be made here, or None."""
    if os.geteuid() != 0:
        return "it needs root (losetup, mount)"
    missing = [name for name in ("mkfs.ext4", "losetup", "mount", "umount") if shutil.which(name) is None]
    if missing:
        return "%s not installed (e2fsprogs, mount)" % ", ".join(missing)
    return None


def selected(name, only):
    return not only or any(part.lower() in name.lower() for part in only)


def terminate(signum, _frame):
    """SIGTERM ends the run like Ctrl-C does: through the cleanup (unmount, detach, remove)."""
    raise SystemExit(128 + signum)


def parse_args():
    ap = argparse.ArgumentParser(description="Whole-process benchmarks of core-ops (see the module docstring).")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs of each single row (default 20)")
    ap.add_argument("--pair-runs", type=int,
                    help="counted pairs of each pair row (default: the smaller of --runs and 10)")
    ap.add_argument("--only", action="append", default=[], metavar="SUBSTRING",
                    help="run only the rows whose name contains SUBSTRING (repeatable, case-insensitive)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "core-ops"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"),
                    help="the shared directory: conformance cases and reference-bin")
    ap.add_argument("--scratch", default=default_scratch(), help="directory for roots and generated repositories")
    ap.add_argument("--ext4-dir", help="directory for the ext4 images (default: the scratch directory)")
    ap.add_argument("--smoke", action="store_true", help="one run each, small sizes, no gate")
    return ap.parse_args()


def main():
    args = parse_args()
    args.bin = os.path.abspath(args.bin)
    runs = 1 if args.smoke else args.runs
    pair_runs = 1 if args.smoke else (args.pair_runs or min(args.runs, MAX_DEFAULT_PAIR_RUNS))
    warmup = 0 if args.smoke else WARMUP_PAIRS
    sizes = SMOKE_SIZES if args.smoke else SIZES
    signal.signal(signal.SIGTERM, terminate)
    summary = []
    print(ROW % ("benchmark", "min ms", "median ms", "max ms", "peak MiB", "target (peak: median of runs)"),
          flush=True)
    with contextlib.ExitStack() as cleanup:
        base = tempfile.mkdtemp(prefix="core-ops-bench-", dir=args.scratch)
        cleanup.callback(remove_tree, base)
        scratch = Scratch(base)
        setup = argparse.Namespace(cleanup=cleanup, ext4_dir=args.ext4_dir or base, ext4_missing=loop_ext4_missing())
        large, large_missing = copy_case(os.path.join(args.shared, LARGE_CASE), base)
        setup.case, setup.case_missing = copy_case(REALISTIC, base) if args.smoke else (large, large_missing)
        setup.tools, setup.tools_missing = reference_tools(args.shared)
        setup.tmpfs, setup.tmpfs_missing = tmpfs_scratch(base, cleanup)
        entries = itertools.chain(single_entries(args.bin, scratch, sizes, large, large_missing),
                                  reference_entries(args.bin, setup, SMOKE_SUBJECT if args.smoke else LARGE),
                                  agent_entries(args.bin, scratch, sizes["agent"]))
        for entry in entries:
            if not selected(entry.name, args.only):
                continue
            try:
                if entry.missing:
                    raise Skip(entry.missing)
                item = entry.build()
            except Skip as why:
                print("SKIPPED %s: %s" % (entry.name, why), flush=True)
                continue
            if isinstance(item, Case):
                report_case(entry.name, item, measure_case(item, runs), args.smoke, summary)
            else:
                report_pair(entry.name, item, measure_pair(item, pair_runs, warmup), args.smoke, summary)
    if not os.access(TIME, os.X_OK):
        print("\npeak RSS reads no lower than this harness's own peak, %.1f MiB (a child it starts inherits "
              "it; install GNU time, /usr/bin/time, for exact figures)"
              % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    if args.smoke:
        print("smoke: every row ran once; no gate judged", flush=True)
        return 0
    return 0 if print_summary(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
