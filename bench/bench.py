#!/usr/bin/env python3
"""Whole-process benchmarks for core-ops: wall time (min and median of N runs) and peak RSS.

Usage: bench/bench.py [--runs N] [--bin PATH] [--shared DIR]

Builds nothing itself; run `cargo build --release` first (bench/run.sh does). Cases whose
inputs are missing (the large corpus case lives in ../shared) are reported as skipped.
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


def measure(cmd, cwd, runs):
    """Runs cmd `runs` times; returns (min_s, median_s, peak_rss_kib) or raises on failure."""
    times, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError("%s failed with exit code %d in %s" % (" ".join(cmd), proc.returncode, cwd))
        peak = max(peak, usage.ru_maxrss)
    return min(times), statistics.median(times), peak


def generated_repo(services=300):
    """A source repository of `services` services with 4 files each, and an empty root."""
    base = tempfile.mkdtemp(prefix="core-ops-bench-")
    repo, root = os.path.join(base, "repo"), os.path.join(base, "root")
    os.makedirs(root)
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
    return base, repo, root


def cases(binary, shared, repo, root):
    large = os.path.join(shared, "conformance", "butane", "cases", "900-large-tree")
    realistic = os.path.join(ROOT, "tests", "conformance", "butane", "802-realistic-fcos-quadlets-1.8")
    render = [binary, "render-ignition", "--pretty", "--files-dir", "files", "input.bu"]
    yield "render-ignition large tree (2,000 files, 210 units)", render, large, (0.25, 25 * 1024)
    yield "render-ignition realistic host (fcos 1.8 quadlets)", render, realistic, (0.003, None)
    plan = [binary, "plan", "--source-repo", repo, "--host", "bench", "--root", root, "--output", "json"]
    yield "plan 300 services x 4 files into an empty root", plan, repo, (0.100, 30 * 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "core-ops"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    args = ap.parse_args()
    failed = False
    base, repo, root = generated_repo()
    print("%-55s %10s %10s %10s  %s" % ("benchmark", "min ms", "median ms", "peak MiB", "target"))
    for name, cmd, cwd, (max_s, max_kib) in cases(args.bin, args.shared, repo, root):
        if not os.path.isdir(cwd):
            print("%-55s skipped: %s not found" % (name, cwd))
            continue
        lo, med, peak = measure(cmd, cwd, args.runs)
        target = "< %.0f ms" % (max_s * 1000) if max_s >= 0.01 else "< %.1f ms" % (max_s * 1000)
        if max_kib:
            target += ", < %d MiB" % (max_kib // 1024)
        ok = med <= max_s and (max_kib is None or peak <= max_kib)
        failed |= not ok
        print("%-55s %10.2f %10.2f %10.1f  %s %s" % (name, lo * 1000, med * 1000, peak / 1024, target, "ok" if ok else "MISSED"))
    shutil.rmtree(base)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
