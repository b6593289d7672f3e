#!/usr/bin/env python3
"""Core benchmark: push and pull of a large random file over loopback TLS, against the limits
measured in the same run: `age -r` encryption of the same file to /dev/null (Debian `age`) and
`cp` of it on the same disk. Reports MB/s, ratios, and the server's peak RSS during push and pull.

Usage: scripts/bench_core.py [--size-mib 1024] [--runs 3] [--workdir DIR]
Builds the release binaries first. Needs `age` on the PATH.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from benchlib import sh, peak_rss_mib, reset_peak

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if not shutil.which("age"):
        sys.exit("age is not installed (apt-get install age)")
    sh("cargo", "build", "--release", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="enc-bench-", dir=a.workdir)
    try:
        run(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(a, work):
    size = a.size_mib << 20
    src = os.path.join(work, "data.bin")
    with open(src, "wb") as f:
        for _ in range(a.size_mib):
            f.write(os.urandom(1 << 20))
    data = os.path.join(work, "server-data")
    server = subprocess.Popen(
        [os.path.join(BIN, "enc-server"), "--data-dir", data, "--listen", "127.0.0.1:0", "--log", "warn"],
        stderr=subprocess.PIPE, text=True)
    url = fp = None
    for line in server.stderr:
        if line.startswith("TLS certificate fingerprint: "):
            fp = line.split(": ", 1)[1].strip()
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].strip()
            break
    try:
        token = subprocess.run([os.path.join(BIN, "enc-server"), "--data-dir", data, "user", "create", "bench",
                                "--role", "user"], check=True, capture_output=True, text=True).stdout.strip()
        env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(work, "cfg"), ENC_SERVER=url, ENC_USER="bench",
                   ENC_FINGERPRINT=fp, ENC_PASSPHRASE="benchmark passphrase")
        enc = os.path.join(BIN, "enc")
        sh(enc, "register", "--token", token, env=env, cwd=work, stderr=subprocess.DEVNULL)
        ident = os.path.join(work, "id.txt")
        sh("age-keygen", "-o", ident, stderr=subprocess.DEVNULL)
        recipient = subprocess.run(["age-keygen", "-y", ident], check=True, capture_output=True, text=True).stdout.strip()

        rows = {"cp": [], "age -r": [], "enc push": [], "enc pull": []}
        rss = {"push": 0.0, "pull": 0.0}
        for i in range(a.runs):
            # Alternate the anchors and enc within each run.
            copy = os.path.join(work, "copy.bin")
            rows["cp"].append(timed(lambda: (sh("cp", src, copy), sh("sync", copy))))
            os.remove(copy)
            with open(os.devnull, "wb") as null:
                rows["age -r"].append(timed(lambda: sh("age", "-r", recipient, "-o", "/dev/null", src, stdout=null)))
            reset_peak(server.pid)
            rows["enc push"].append(timed(lambda: sh(enc, "push", src, "--as", f"data-{i}", env=env, cwd=work,
                                                      stdout=subprocess.DEVNULL)))
            rss["push"] = max(rss["push"], peak_rss_mib(server.pid))
            out = os.path.join(work, "out.bin")
            reset_peak(server.pid)
            rows["enc pull"].append(timed(lambda: sh(enc, "pull", f"data-{i}", "-o", out, env=env, cwd=work,
                                                      stderr=subprocess.DEVNULL)))
            rss["pull"] = max(rss["pull"], peak_rss_mib(server.pid))
            if not subprocess.run(["cmp", "-s", src, out]).returncode == 0:
                sys.exit("pulled file differs")
            os.remove(out)
        mbps = {k: size / min(v) / 1e6 for k, v in rows.items()}
        print(f"file: {a.size_mib} MiB random, best of {a.runs} runs, loopback TLS")
        print(f"{'what':<10} {'MB/s':>8} {'best s':>8}")
        for k, v in rows.items():
            print(f"{k:<10} {mbps[k]:>8.0f} {min(v):>8.2f}")
        print(f"push / age -r = {mbps['enc push'] / mbps['age -r']:.2f}   (goal >= 0.70)")
        print(f"push / cp     = {mbps['enc push'] / mbps['cp']:.2f}")
        print(f"pull / cp     = {mbps['enc pull'] / mbps['cp']:.2f}")
        print(f"server peak RSS: push {rss['push']:.0f} MiB, pull {rss['pull']:.0f} MiB   (goal < 100 MiB)")
        print(json.dumps({"size_mib": a.size_mib, "mbps": mbps, "rss_mib": rss}))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
