#!/usr/bin/env python3
"""A/B benchmark of two builds of enc on the metadata store's hot paths, in one run, alternating
A (old) and B (new) so that the machine's drift hits both alike.

Per round and build, on a fresh data directory (SQLite, plain HTTP on loopback):
- restic group commit: COUNT POSTs of 4 KiB objects at concurrency 16
  (crates/e2e/examples/restic_post_load.rs), ops/s and server CPU seconds;
- /v1 small files: `enc push` of a tree of FILES small files, wall seconds.

Usage: scripts/bench_store_ab.py --old DIR --new DIR [--runs 3] [--posts 20000] [--files 300]
DIR holds release builds of enc-server and enc (e.g. a worktree's target/release). The load
generator is built from this checkout.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_restic
from benchlib import sh, cpu_seconds, mean

ROOT = bench_restic.ROOT


def with_bin(bindir):
    class Build(bench_restic.Enc):
        def __init__(self, work, tls, cert):
            bench_restic.BIN = bindir
            super().__init__(work, tls, cert)
    return Build


def posts(kind, work, count):
    return bench_restic.post_load(kind, work, False, None, count)


def push(bindir, work, files):
    w = tempfile.mkdtemp(dir=work)
    srv = with_bin(bindir)(w, False, None)
    try:
        tree = os.path.join(w, "tree")
        for i in range(files):
            d = os.path.join(tree, f"d{i % 20}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
                f.write(os.urandom(1024 + (i * 37) % 4096))
        env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(w, "enc-cfg"),
                   ENC_SERVER=f"http://127.0.0.1:{srv.port}", ENC_USER="bench",
                   ENC_PASSPHRASE="benchmark passphrase")
        t = time.perf_counter()
        sh(os.path.join(bindir, "enc"), "-q", "push", tree, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--posts", type=int, default=20000)
    ap.add_argument("--files", type=int, default=300)
    a = ap.parse_args()
    sh("cargo", "build", "--release", "-p", "enc-e2e", "--example", "restic_post_load", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="enc-ab-")
    res = {"old": {"ops": [], "cpu": [], "push": []}, "new": {"ops": [], "cpu": [], "push": []}}
    try:
        for run in range(a.runs):
            for name in ("old", "new"):
                d = os.path.abspath(getattr(a, name))
                r = posts(with_bin(d), work, a.posts)
                p = push(d, work, a.files) if a.files else 0.0
                res[name]["ops"].append(r["ops_per_sec"])
                res[name]["cpu"].append(r["cpu_s"])
                res[name]["push"].append(p)
                print(f"run {run + 1} {name}: {r['ops_per_sec']:.0f} POST/s, server CPU "
                      f"{r['cpu_s']:.2f} s; push of {a.files} files {p:.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    o, n = res["old"], res["new"]
    print(f"\n| measure | old | new | new / old |\n|---|---|---|---|")
    for key, label in (("ops", f"4 KiB POST/s ({a.posts}, c=16)"),
                       ("cpu", "server CPU s for the POSTs"),
                       ("push", f"enc push of {a.files} files, s")):
        if key == "push" and not a.files:
            continue
        mo, mn = mean(o[key]), mean(n[key])
        print(f"| {label} | {mo:.2f} | {mn:.2f} | {mn / mo:.3f} |")


if __name__ == "__main__":
    main()
