#!/usr/bin/env python3
"""Mercury benchmark: 1 GiB up and down through `/ws` (Hecate's text dialect, 1 MiB binary
frames) against the native `/v1` API (a streamed `PUT …/uploads` and a `GET …/blobs/…` of a
1 GiB object), on the same enc-server, in one run, alternating A (/v1) and B (/ws), over TLS
and over plain HTTP. Both sides use one client (crates/e2e/examples/mercury_bench.rs: rustls,
1 MiB writes), so the ratio compares the server's two paths. Also reports server CPU seconds
per GiB for each, and `enc push`/`enc pull` of the same GiB for context (client-side age
encryption included).

Usage: scripts/bench_mercury.py [--mib 1024] [--runs 3] [--transports tls,http] [--workdir DIR]
Builds the release binaries first.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from benchlib import sh, cpu_seconds, free_port, wait_port, mean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
PSK = "benchmark preshared key"


class Server:
    def __init__(self, work, tls, mib):
        self.data = os.path.join(work, "data")
        self.port = free_port()
        args = [os.path.join(BIN, "enc-server"), "--data-dir", self.data, "--listen",
                f"127.0.0.1:{self.port}", "--log", "warn", "--session-idle-timeout", "3600s"]
        if not tls:
            args.append("--insecure-http")
        env = dict(os.environ, MERCURY_AUTH_KEY=PSK)
        self.proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, env=env)
        wait_port(self.port)
        scheme = "https" if tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.ws = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}/ws"
        tok = sh(os.path.join(BIN, "enc-server"), "--data-dir", self.data, "user", "create",
                 "bench", capture_output=True, text=True).stdout.strip()
        cfg = os.path.join(work, "enc-cfg")
        self.env = dict(os.environ, ENC_CONFIG_DIR=cfg, ENC_SERVER=self.base, ENC_USER="bench",
                        ENC_PASSPHRASE="benchmark passphrase")
        if tls:
            self.env["ENC_FINGERPRINT"] = sh(
                os.path.join(BIN, "enc-server"), "--data-dir", self.data, "cert", "fingerprint",
                capture_output=True, text=True).stdout.strip()
        self.enc(["register", "--token", tok])
        with open(os.path.join(cfg, "session.json")) as f:
            self.session = json.load(f)["token"]
        vaults = json.loads(self.enc(["vault", "ls", "--json"]))
        self.vault = next(v["id"] for v in vaults if v["name"] == "default")
        # The object the /v1 downloads fetch, pushed once with the real client.
        src = os.path.join(work, "src.bin")
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        t = time.time()
        self.enc(["push", src, "--as", "big"])
        self.push_s = time.time() - t
        t = time.time()
        self.enc(["pull", "big", "-o", os.path.join(work, "back.bin")])
        self.pull_s = time.time() - t
        os.remove(os.path.join(work, "back.bin"))
        os.remove(src)
        rows = json.loads(self.enc(["ls", "--json"]))
        self.version = next(r["id"] for r in rows if r["name"] == "big")

    def enc(self, args):
        return sh(os.path.join(BIN, "enc"), *args, env=self.env, capture_output=True,
                  text=True).stdout

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def timed(server, *args):
    cpu = cpu_seconds(server.proc.pid)
    out = sh(os.path.join(BIN, "examples", "mercury_bench"), *args, capture_output=True,
             text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["cpu"] = cpu_seconds(server.proc.pid) - cpu
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transports", default="tls,http")
    ap.add_argument("--workdir")
    a = ap.parse_args()
    sh("cargo", "build", "--release", "-q", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    sh("cargo", "build", "--release", "-q", "-p", "enc-e2e", "--example", "mercury_bench", cwd=ROOT)
    print(f"{a.mib} MiB per transfer, {a.runs} runs alternating /v1 (A) and /ws (B)\n")
    print("| transport | direction | /v1 MB/s | /ws MB/s | /ws ÷ /v1 | /v1 CPU s/GiB | /ws CPU s/GiB |")
    print("|---|---|---|---|---|---|---|")
    context = []
    for transport in a.transports.split(","):
        work = tempfile.mkdtemp(prefix=f"bench-mercury-{transport}-", dir=a.workdir)
        s = Server(work, transport == "tls", a.mib)
        context.append((transport, a.mib / s.push_s * 1.048576, a.mib / s.pull_s * 1.048576))
        res = {k: [] for k in ("v1-up", "ws-up", "v1-down", "ws-down")}
        try:
            for i in range(a.runs):
                res["v1-up"].append(timed(s, "v1-up", s.base, s.session, s.vault, str(a.mib)))
                res["ws-up"].append(timed(s, "ws-up", s.ws, PSK, f"run{i}.hecate", str(a.mib)))
                res["v1-down"].append(timed(s, "v1-down", s.base, s.session, s.vault, s.version))
                res["ws-down"].append(timed(s, "ws-down", s.ws, PSK, f"run{i}.hecate"))
        finally:
            s.stop()
            subprocess.run(["rm", "-rf", work])
        for d in ("up", "down"):
            v1, ws = res[f"v1-{d}"], res[f"ws-{d}"]
            v1_mb, ws_mb = mean([r["mb_s"] for r in v1]), mean([r["mb_s"] for r in ws])
            v1_cpu = mean([r["cpu"] / (r["bytes"] / 2**30) for r in v1])
            ws_cpu = mean([r["cpu"] / (r["bytes"] / 2**30) for r in ws])
            print(f"| {transport} | {d} | {v1_mb:.0f} | {ws_mb:.0f} | {ws_mb / v1_mb:.2f} | "
                  f"{v1_cpu:.2f} | {ws_cpu:.2f} |")
            sys.stdout.flush()
    print("\nFor context, the enc CLI on the same server (age encryption/decryption on the client):")
    for transport, push, pull in context:
        print(f"  {transport}: enc push {push:.0f} MB/s, enc pull {pull:.0f} MB/s")


if __name__ == "__main__":
    main()
