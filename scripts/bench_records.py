#!/usr/bin/env python3
"""Records (/records): one call per record against batch calls, on one enc-server, in one run.

COUNT records of 1 KiB (hex in JSON, as enc-server-go's client sends them), over TLS, with the
release build (`crates/e2e/examples/records_load.rs`):
- single: at concurrency 16, each record created (`POST /records`) then read back with its
  key (`GET /records/{id}`, `X-Record-Key`): two calls per record;
- batch: the same number of records in calls of 1,000 (`POST /records/batch`, then
  `POST /records/batch/get`).
Each record's plaintext is checked on the way back. Reports records/s (create + get of a
record counted once), p50/p99 call latency and the server's CPU seconds, and the ratio batch
/ single, alternating the order over --runs rounds, each on a fresh data directory.

Usage: scripts/bench_records.py [--count 5000] [--runs 2] [--workdir DIR]
Builds the release binaries first.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
from benchlib import EncServer, make_cert, sh, cpu_seconds, mean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
LOAD = os.path.join(BIN, "examples", "records_load")
RECORDS_ON = "[records]\nenabled = true\n"


def run_path(srv, which, count):
    args = [LOAD, srv.url, srv.token, str(count), "1024"]
    args += ["single", "16"] if which == "single" else ["batch"]
    c0 = cpu_seconds(srv.proc.pid)
    r = json.loads(sh(*args, capture_output=True, text=True).stdout)
    r["cpu_s"] = cpu_seconds(srv.proc.pid) - c0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    sh("cargo", "build", "--release", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    sh("cargo", "build", "--release", "-p", "enc-e2e", "--example", "records_load", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="enc-bench-records-", dir=a.workdir)
    try:
        cert = make_cert(work)
        results = {"single": [], "batch": []}
        for run in range(a.runs):
            order = ["single", "batch"] if run % 2 == 0 else ["batch", "single"]
            for which in order:
                srv = EncServer(BIN, tempfile.mkdtemp(dir=work), cert, config=RECORDS_ON)
                srv.token = srv.enc("token", "create", "--records").strip()
                try:
                    r = run_path(srv, which, a.count)
                finally:
                    srv.stop()
                if r["failed"]:
                    sys.exit(f"{which}: {r['failed']} records failed")
                results[which].append(r)
                print(f"run {run + 1} {which:7} {r['records_per_sec']:9.0f} records/s  "
                      f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                      f"server CPU {r['cpu_s']:6.2f} s", flush=True)
        print()
        print(f"{a.count} records of 1 KiB created and read back (TLS, one enc-server per path and"
              f" run), mean of {a.runs} runs:")
        print(f"{'path':40} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU s':>7}")
        for which, label in (("single", "one call each, concurrency 16"),
                             ("batch", "batch calls of 1,000")):
            rs = results[which]
            print(f"{label:40} {mean([r['records_per_sec'] for r in rs]):10.0f}"
                  f" {mean([r['p50_ms'] for r in rs]):8.2f} {mean([r['p99_ms'] for r in rs]):8.2f}"
                  f" {mean([r['cpu_s'] for r in rs]):7.2f}")
        ratio = mean([r["records_per_sec"] for r in results["batch"]]) / mean(
            [r["records_per_sec"] for r in results["single"]])
        print(f"batch / single records/s: {ratio:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
