#!/usr/bin/env python3
"""Whole-process benchmarks for core-ops: wall time (min, median and max of N runs) and peak RSS.

Usage: bench/bench.py [--runs N] [--bin PATH] [--shared DIR] [--scratch DIR] [--smoke]

Builds nothing itself; run `cargo build --release` first (bench/run.sh does). A case whose
input is missing (the large corpus case lives in ../shared) is reported on a line of its own,
`SKIPPED <case>: <why>`. Roots and generated repositories are made under --scratch (default: a
new directory in /dev/shm, a tmpfs, else the system's temporary directory); every run of an "into
an empty root" case gets a root made before the clock starts.

The agent cases follow a generated git repository over file:// and are each paired with what
users do without an agent: `git clone --depth 1 file://...` into a fresh directory, then
`core-ops apply --source-repo CLONE`. The two commands run in turn (A B A B ..., after one
warm-up pair), each pair gets its ratio A/B, and the rows show both sides and the ratios as
min, median and max. A side of several commands is timed command by command, the untimed
preparation (a commit, a fresh root) done before the first; its peak RSS is the largest of its
commands (each command's getrusage, its waited-for children included).

--smoke runs every case once on small generated repositories and checks only that each command
succeeds, with no timing or memory gate: the test suite runs it so the benchmark cannot rot.
"""
import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ACCOUNTS = ("root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/var/home/core:/bin/bash\n",
            "root:x:0:\ncore:x:1000:\n")


def run_once(cmd, cwd):
    """Runs cmd; returns (seconds, peak_rss_kib)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError("%s failed with exit code %d in %s: %s" % (" ".join(cmd), code, cwd, err.decode()[-400:]))
    return elapsed, usage.ru_maxrss


def measure(make_cmd, cwd, runs):
    """make_cmd() gives the command of one run (and prepares its root); returns min, median, max, peak."""
    times, peak = [], 0
    for _ in range(runs):
        cmd = make_cmd()
        elapsed, rss = run_once(cmd, cwd)
        times.append(elapsed)
        peak = max(peak, rss)
    return min(times), statistics.median(times), max(times), peak


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
        path = self.path(kind, keep)
        os.makedirs(os.path.join(path, "etc"))
        write_files(path, {"etc/passwd": ACCOUNTS[0], "etc/group": ACCOUNTS[1]})
        return path

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


def cases(binary, shared, scratch, sizes):
    large = os.path.join(shared, "conformance", "butane", "cases", "900-large-tree")
    realistic = os.path.join(ROOT, "tests", "conformance", "butane", "802-realistic-fcos-quadlets-1.8")
    render = [binary, "render-ignition", "--pretty", "--files-dir", "files", "input.bu"]
    yield "render-ignition large tree (2,000 files, 210 units)", (lambda: render), large, (0.25, 25 * 1024)
    yield "render-ignition realistic host (fcos 1.8 quadlets)", (lambda: render), realistic, (0.003, None)

    repo300 = scratch.repo(sizes["plan"])
    empty = scratch.root()
    plan = [binary, "plan", "--source-repo", repo300, "--host", "bench", "--root", empty, "--format", "json", "--offline"]
    yield "plan %d services x 4 files into an empty root" % sizes["plan"], (lambda: plan), ROOT, (0.100, 30 * 1024)

    def apply_large(root):
        return [binary, "apply", "--config", "input.bu", "--files-dir", "files", "--root", root, "--offline",
                "--format", "json"]
    yield "apply large tree into an empty root", (lambda: apply_large(scratch.root())), large, (0.35, None)
    converged = scratch.root()
    if os.path.isdir(large):
        run_once(apply_large(converged), large)
    yield "converged re-apply of the large tree", (lambda: apply_large(converged)), large, (0.050, None)
    repo250 = scratch.repo(sizes["converged"])
    converged_repo = scratch.root()
    apply_repo = [binary, "apply", "--source-repo", repo250, "--host", "bench", "--root", converged_repo, "--offline",
                  "--format", "json"]
    run_once(apply_repo, ROOT)
    yield ("converged re-apply of a %d-object repository" % (sizes["converged"] * 4), (lambda: apply_repo), ROOT,
           (0.050, None))


class Side:
    """One side of a pair: its label, the labels of its commands, and make() that prepares a run
    (untimed) and gives its commands."""

    def __init__(self, label, steps, make):
        self.label, self.steps, self.make = label, steps, make


class Pair:
    """Side a against side b, run in turn; before() (untimed) prepares each pair; max_s is a's
    target median, if any."""

    def __init__(self, name, a, b, before=None, max_s=None):
        self.name, self.a, self.b, self.before, self.max_s = name, a, b, before, max_s


def run_all(cmds):
    """Runs commands one after the other; returns each one's seconds and the largest peak RSS."""
    times, peak = [], 0
    for cmd in cmds:
        elapsed, rss = run_once(cmd, ROOT)
        times.append(elapsed)
        peak = max(peak, rss)
    return times, peak


def agent_cases(binary, scratch, services):
    """The agent following a file:// repository of services x 5 objects, against a fresh shallow
    clone and `apply --source-repo` of it."""
    repo = scratch.git_repo(services)
    url = "file://" + repo
    objects = "{:,} objects".format(services * 5)

    def init(root):
        return [binary, "init", url, "main", "--host", "bench", "--root", root]

    def agent(root):
        return [binary, "agent", "--root", root]

    def clone_apply(root):
        clone = scratch.path("clone", keep=False)
        return [["git", "clone", "--quiet", "--depth", "1", url, clone],
                [binary, "apply", "--source-repo", clone, "--host", "bench", "--root", root, "--offline", "--yes"]]

    def converged_pair():
        """A root the agent converged, and one `apply` of a clone converged."""
        agent_root, apply_root = scratch.root(), scratch.root()
        run_all([init(agent_root), agent(agent_root)] + clone_apply(apply_root))
        return agent_root, apply_root

    today = "clone + apply"
    today_steps = ("git clone --depth 1", "apply --source-repo CLONE")
    agent_root, apply_root = converged_pair()
    yield Pair("agent cycle, nothing new (%s, converged)" % objects,
               Side("agent", ("agent",), lambda: [agent(agent_root)]),
               Side(today, today_steps, lambda: clone_apply(apply_root)), max_s=0.100)

    agent_root, apply_root = converged_pair()
    revisions = itertools.count(1)
    yield Pair("agent cycle after a one-file commit (%s)" % objects,
               Side("agent", ("agent",), lambda: [agent(agent_root)]),
               Side(today, today_steps, lambda: clone_apply(apply_root)),
               before=lambda: scratch.commit_one_file(repo, next(revisions)))

    def first(root):
        return [init(root), agent(root)]
    yield Pair("first init + agent cycle, empty root (%s)" % objects,
               Side("init + first agent cycle", ("init", "first agent cycle"),
                    lambda: first(scratch.root("first-agent", keep=False))),
               Side(today, today_steps, lambda: clone_apply(scratch.root("first-apply", keep=False))))


def measure_pair(pair, runs, warmup):
    """Runs the sides in turn (after `warmup` uncounted pairs); returns per side its runs' step
    times and peak RSS, and the pairs' ratios a/b of total time."""
    samples, peaks, ratios = {"a": [], "b": []}, {"a": 0, "b": 0}, []
    for i in range(warmup + runs):
        if pair.before:
            pair.before()
        done = {"a": run_all(pair.a.make()), "b": run_all(pair.b.make())}
        if i < warmup:
            continue
        for key, (times, peak) in done.items():
            samples[key].append(times)
            peaks[key] = max(peaks[key], peak)
        ratios.append(sum(done["a"][0]) / sum(done["b"][0]))
    return samples, peaks, ratios


ROW = "%-62s %10s %10s %10s %10s  %s"


def row(name, values, peak_kib=None, note="", scale=1000):
    """One row of figures: min, median and max of values (seconds shown in ms; scale=1 for ratios)."""
    cells = ["%.2f" % (v * scale) for v in (min(values), statistics.median(values), max(values))]
    peak = "%.1f" % (peak_kib / 1024) if peak_kib is not None else ""
    print(ROW % tuple([name] + cells + [peak, note]), flush=True)


def report_pair(pair, samples, peaks, ratios, smoke):
    """Prints a pair: side a (gated by its target), its commands, side b, its commands, the ratio.
    Returns whether a met its target."""
    ok = True
    for key, side in (("a", pair.a), ("b", pair.b)):
        totals = [sum(times) for times in samples[key]]
        note = ""
        if key == "a":
            if smoke:
                note = "ran (smoke)"
            elif pair.max_s is not None:
                ok = statistics.median(totals) <= pair.max_s
                note = "< %.0f ms %s" % (pair.max_s * 1000, "ok" if ok else "MISSED")
        title = pair.name if key == "a" else "  vs %s" % " + ".join(side.steps)
        row(title, totals, peaks[key], note)
        if len(side.steps) > 1:
            for index, step in enumerate(side.steps):
                row("    %s" % step, [times[index] for times in samples[key]])
    row("  ratio (x): %s / %s" % (pair.a.label, pair.b.label), ratios, scale=1)
    return ok


def default_scratch():
    """/dev/shm when it is there to write in (a tmpfs: no disk in the figures), else the default."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "core-ops"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--scratch", default=default_scratch(), help="directory for roots and generated repositories")
    ap.add_argument("--smoke", action="store_true", help="one run each, small sizes, no timing gate")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    runs = 1 if args.smoke else args.runs
    sizes = ({"plan": 12, "converged": 10, "agent": 10} if args.smoke
             else {"plan": 300, "converged": 250, "agent": 200})
    base = tempfile.mkdtemp(prefix="core-ops-bench-", dir=args.scratch)
    failed = False
    print(ROW % ("benchmark", "min ms", "median ms", "max ms", "peak MiB", "target"))
    try:
        scratch = Scratch(base)
        for name, make_cmd, cwd, (max_s, max_kib) in cases(args.bin, args.shared, scratch, sizes):
            if not os.path.isdir(cwd):
                print("SKIPPED %s: its input %s is not there" % (name, cwd), flush=True)
                continue
            lo, med, hi, peak = measure(make_cmd, cwd, runs)
            cells = (name, "%.2f" % (lo * 1000), "%.2f" % (med * 1000), "%.2f" % (hi * 1000), "%.1f" % (peak / 1024))
            if args.smoke:
                print(ROW % (cells + ("ran (smoke)",)), flush=True)
                continue
            target = "< %.0f ms" % (max_s * 1000) if max_s >= 0.01 else "< %.1f ms" % (max_s * 1000)
            if max_kib:
                target += ", < %d MiB" % (max_kib // 1024)
            ok = med <= max_s and (max_kib is None or peak <= max_kib)
            failed |= not ok
            print(ROW % (cells + ("%s %s" % (target, "ok" if ok else "MISSED"),)), flush=True)
        if shutil.which("git") is None:
            print("SKIPPED agent cycles: they need git (the remote, and the clone they are compared with)",
                  flush=True)
            return 1 if failed else 0
        for pair in agent_cases(args.bin, scratch, sizes["agent"]):
            samples, peaks, ratios = measure_pair(pair, runs, 0 if args.smoke else 1)
            failed |= not report_pair(pair, samples, peaks, ratios, args.smoke)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
