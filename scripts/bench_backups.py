#!/usr/bin/env python3
"""Device backups against enc's own restic POST path, on one enc-server, in one run.

COUNT POSTs of 4 KiB at concurrency 16, over TLS, with the release build:
- backups: 16 devices (an app's device each, certified with `enc device add`), each posting
  its share in its own signed chain (`crates/e2e/examples/backup_post_load.rs`: the device
  signs each entry, the server checks signature, certificate, counter and hash);
- restic: 16 connections posting content-named data files to one repository
  (`crates/e2e/examples/restic_post_load.rs`).
Reports ops/s, p50/p99 latency and the server's CPU seconds (user + sys, from /proc) for each,
alternating the order over --runs rounds, each round on a fresh data directory.

Usage: scripts/bench_backups.py [--count 10000] [--runs 2] [--workdir DIR]
Builds the release binaries first. Needs restic on the PATH (to initialise the repository).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
from benchlib import EncServer, make_cert, sh, cpu_seconds, mean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
EXAMPLES = os.path.join(BIN, "examples")
DEVICES = 16


def restic_path(srv, cert, count):
    token = srv.enc("token", "create", "--restic", "bench").strip()
    repo = f"https://bench:{token}@127.0.0.1:{srv.port}/restic/bench/bench/"
    sh("restic", "--no-cache", "-r", f"rest:{repo}", "--cacert", cert[0], "--quiet", "init",
       env=dict(os.environ, RESTIC_PASSWORD="benchmark repository password"),
       stdout=subprocess.DEVNULL)
    c0 = cpu_seconds(srv.proc.pid)
    out = sh(os.path.join(EXAMPLES, "restic_post_load"), repo, str(count), "4096", "16",
             capture_output=True, text=True).stdout
    r = json.loads(out)
    r["cpu_s"] = cpu_seconds(srv.proc.pid) - c0
    return r


def backups_path(srv, count):
    keys = os.path.join(srv.work, "keys")
    sh(os.path.join(EXAMPLES, "backup_post_load"), "keygen", keys, str(DEVICES))
    devices = []
    for k in range(DEVICES):
        added = json.loads(srv.enc("--json", "device", "add", "--public-key",
                                   os.path.join(keys, f"{k}.pub"), "--name", f"app-{k}"))
        devices.append({"device": added["device"]["id"], "token": added["token"],
                        "key": os.path.join(keys, f"{k}.key")})
    listing = os.path.join(srv.work, "devices.json")
    with open(listing, "w") as f:
        json.dump(devices, f)
    c0 = cpu_seconds(srv.proc.pid)
    out = sh(os.path.join(EXAMPLES, "backup_post_load"), "run", srv.url, str(count), "4096",
             listing, capture_output=True, text=True).stdout
    r = json.loads(out)
    r["cpu_s"] = cpu_seconds(srv.proc.pid) - c0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if not shutil.which("restic"):
        sys.exit("restic is not installed (apt-get install restic)")
    sh("cargo", "build", "--release", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    sh("cargo", "build", "--release", "-p", "enc-e2e", "--example", "restic_post_load",
       "--example", "backup_post_load", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="enc-bench-backups-", dir=a.workdir)
    try:
        cert = make_cert(work)
        results = {"backups": [], "restic": []}
        for run in range(a.runs):
            order = ["backups", "restic"] if run % 2 == 0 else ["restic", "backups"]
            for which in order:
                srv = EncServer(BIN, tempfile.mkdtemp(dir=work), cert)
                try:
                    r = backups_path(srv, a.count) if which == "backups" else restic_path(srv, cert, a.count)
                finally:
                    srv.stop()
                if r["failed"]:
                    sys.exit(f"{which}: {r['failed']} POSTs failed")
                results[which].append(r)
                print(f"run {run + 1} {which:8} {r['ops_per_sec']:8.0f} ops/s  p50 {r['p50_ms']:6.2f} ms"
                      f"  p99 {r['p99_ms']:6.2f} ms  server CPU {r['cpu_s']:6.2f} s", flush=True)
        print()
        print(f"{a.count} POSTs of 4 KiB at concurrency 16 (TLS, one enc-server per path and run),"
              f" mean of {a.runs} runs:")
        print(f"{'path':28} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU s':>7} {'CPU ms/op':>10}")
        for which, label in (("backups", "/v1/backups (16 devices)"), ("restic", "restic POST /data")):
            rs = results[which]
            ops = mean([r["ops_per_sec"] for r in rs])
            cpu = mean([r["cpu_s"] for r in rs])
            print(f"{label:28} {ops:8.0f} {mean([r['p50_ms'] for r in rs]):8.2f}"
                  f" {mean([r['p99_ms'] for r in rs]):8.2f} {cpu:7.2f} {cpu / a.count * 1e3:10.3f}")
        ratio = mean([r["ops_per_sec"] for r in results["backups"]]) / mean(
            [r["ops_per_sec"] for r in results["restic"]])
        print(f"backups / restic ops/s: {ratio:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
