#!/usr/bin/env python3
"""Whole-process benchmarks for core-ops: wall time (min and median of N runs) and peak RSS.

Usage: bench/bench.py [--runs N] [--bin PATH] [--shared DIR] [--scratch DIR] [--smoke]

Builds nothing itself; run `cargo build --release` first (bench/run.sh does). A case whose
input is missing (the large corpus case lives in ../shared) is reported on a line of its own,
`SKIPPED <case>: <why>`. Roots and generated repositories are made under --scratch (default: a
new temporary directory); every run of an "into an empty root" case gets a root made before the
clock starts.

--smoke runs every case once on small generated repositories and checks only that each command
succeeds, with no timing or memory gate: the test suite runs it so the benchmark cannot rot.
"""
import argparse
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
    """make_cmd() gives the command of one run (and prepares its root); returns min, median, peak."""
    times, peak = [], 0
    for _ in range(runs):
        cmd = make_cmd()
        elapsed, rss = run_once(cmd, cwd)
        times.append(elapsed)
        peak = max(peak, rss)
    return min(times), statistics.median(times), peak


class Scratch:
    """Fresh roots and repositories under one directory."""

    def __init__(self, base):
        self.base = base
        self.count = 0

    def root(self):
        self.count += 1
        path = os.path.join(self.base, "root-%04d" % self.count)
        os.makedirs(os.path.join(path, "etc"))
        for name, text in zip(("passwd", "group"), ACCOUNTS):
            with open(os.path.join(path, "etc", name), "w") as f:
                f.write(text)
        return path

    def repo(self, services):
        """A source repository of `services` services with 4 files each (host `bench`)."""
        repo = os.path.join(self.base, "repo-%d" % services)
        names = ["svc-%03d" % i for i in range(services)]
        for name in names:
            files = {
                "quadlet/%s.container" % name: "[Container]\nImage=registry.example/%s:1.0\nEnvironmentFile=/etc/%s/env\n"
                "Volume=/etc/%s/app.conf:/app.conf:ro\n\n[Install]\nWantedBy=multi-user.target\n" % (name, name, name),
                "quadlet/%s.container.d/10-limits.conf" % name: "[Container]\nPodmanArgs=--memory=128m\n",
                "config/app.conf": "# %s\nlisten = %d\nworkers = 4\n" % (name, 8000 + int(name[4:])),
                "config/env": "APP_NAME=%s\nLOG_LEVEL=info\n" % name,
            }
            for rel, text in files.items():
                path = os.path.join(repo, "services", name, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)
        os.makedirs(os.path.join(repo, "hosts", "bench"))
        with open(os.path.join(repo, "hosts", "bench", "host.yaml"), "w") as f:
            f.write("host: bench\nservices:\n" + "".join("  - %s\n" % n for n in names))
        return repo


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "core-ops"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--scratch", help="directory for roots and generated repositories")
    ap.add_argument("--smoke", action="store_true", help="one run each, small sizes, no timing gate")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    runs = 1 if args.smoke else args.runs
    sizes = {"plan": 12, "converged": 10} if args.smoke else {"plan": 300, "converged": 250}
    base = tempfile.mkdtemp(prefix="core-ops-bench-", dir=args.scratch)
    failed = False
    print("%-55s %10s %10s %10s  %s" % ("benchmark", "min ms", "median ms", "peak MiB", "target"))
    try:
        for name, make_cmd, cwd, (max_s, max_kib) in cases(args.bin, args.shared, Scratch(base), sizes):
            if not os.path.isdir(cwd):
                print("SKIPPED %s: its input %s is not there" % (name, cwd), flush=True)
                continue
            lo, med, peak = measure(make_cmd, cwd, runs)
            if args.smoke:
                print("%-55s %10.2f %10.2f %10.1f  %s" % (name, lo * 1000, med * 1000, peak / 1024, "ran (smoke)"),
                      flush=True)
                continue
            target = "< %.0f ms" % (max_s * 1000) if max_s >= 0.01 else "< %.1f ms" % (max_s * 1000)
            if max_kib:
                target += ", < %d MiB" % (max_kib // 1024)
            ok = med <= max_s and (max_kib is None or peak <= max_kib)
            failed |= not ok
            print("%-55s %10.2f %10.2f %10.1f  %s %s" % (name, lo * 1000, med * 1000, peak / 1024, target,
                                                           "ok" if ok else "MISSED"), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
