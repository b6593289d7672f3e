#!/usr/bin/env python3
"""restic benchmark: enc's restic REST backend against `rclone serve restic` (Debian's rclone,
on a local directory), in one run, alternating A (rclone) and B (enc), over plain HTTP and over
TLS (both servers present the same self-signed certificate).

Per server and transport: backup wall time, restore wall time, server CPU seconds (user + sys
of the server process, from /proc) per phase and per GiB, server peak RSS, restic's own CPU
seconds per phase and how busy both together kept the two cores. Then ops/s for
COUNT POSTs of 4 KiB objects at concurrency 16 against both (crates/e2e/examples/restic_post_load.rs).

Usage: scripts/bench_restic.py [--big-mib 440] [--small 10000] [--runs 2] [--posts 20000]
                               [--transports http,tls] [--workdir DIR] [--client-dir DIR]
The servers keep their data under --workdir (default: the system's temporary directory, on
disk); the corpus and every restore target live under --client-dir (default /dev/shm). restic's
own file creation is the same work whichever server it talks to, but on ext4 it is not steady:
after the thousands of deletions of earlier rounds, creating files costs restic seconds of
kernel time scanning inode bitmaps (`recently_deleted`), which swamped the difference between the
servers (restores of the same repository took 3 s or 9 s). On tmpfs it does not. The servers
meet the same effect (on an ext4 without a journal, inodes freed in the last minutes are
skipped, slowly, when files are created), so no server data directory is deleted before the
end of the whole run: otherwise whichever server runs after another's 20,000 deleted files
pays for them. Restores start with an empty page cache (when run as root; `--warm-restore` to
keep it): a restore is rarely minutes after its backup, and a warm cache would hold rclone's
files (written through the page cache, never fsynced) but not enc's (written with O_DIRECT).
Builds the release binaries first. Needs restic and rclone on the PATH.
"""
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from benchlib import make_cert, sh, cpu_seconds, peak_rss_mib, free_port, wait_port, mean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
PASSWORD = "benchmark repository password"
COLD = False


def make_corpus(root, big_mib, small):
    os.makedirs(root)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        for _ in range(big_mib):
            f.write(os.urandom(1 << 20))
    import random
    rnd = random.Random(7)
    for i in range(small):
        d = os.path.join(root, f"d{i % 50:02}", f"e{(i // 50) % 20:02}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
            f.write(os.urandom(rnd.randint(1, 16383)))
    total = 0
    for dp, _, fs in os.walk(root):
        total += sum(os.path.getsize(os.path.join(dp, x)) for x in fs)
    return total


class Rclone:
    name = "rclone"

    def __init__(self, work, tls, cert):
        self.dir = os.path.join(work, "rclone-data")
        os.makedirs(self.dir)
        self.port = free_port()
        args = ["rclone", "serve", "restic", "--addr", f"127.0.0.1:{self.port}", self.dir]
        if tls:
            args += ["--cert", cert[0], "--key", cert[1]]
        self.proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wait_port(self.port)
        scheme = "https" if tls else "http"
        self.repo_url = f"{scheme}://127.0.0.1:{self.port}/bench/"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Enc:
    name = "enc"

    def __init__(self, work, tls, cert):
        self.data = os.path.join(work, "enc-data")
        self.port = free_port()
        args = [os.path.join(BIN, "enc-server"), "--data-dir", self.data, "--listen",
                f"127.0.0.1:{self.port}", "--log", "warn"]
        if tls:
            args += ["--tls-cert", cert[0], "--tls-key", cert[1]]
        else:
            args += ["--insecure-http"]
        self.proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        scheme = "https" if tls else "http"
        url = f"{scheme}://127.0.0.1:{self.port}"
        tok = sh(os.path.join(BIN, "enc-server"), "--data-dir", self.data, "user", "create", "bench",
                 capture_output=True, text=True).stdout.strip()
        env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(work, "enc-cfg"), ENC_SERVER=url,
                   ENC_USER="bench", ENC_PASSPHRASE="benchmark passphrase")
        if tls:
            fp = sh(os.path.join(BIN, "enc-server"), "--data-dir", self.data, "--tls-cert", cert[0],
                    "--tls-key", cert[1], "cert", "fingerprint", capture_output=True, text=True).stdout.strip()
            env["ENC_FINGERPRINT"] = fp
        enc = os.path.join(BIN, "enc")
        sh(enc, "register", "--token", tok, env=env, stderr=subprocess.DEVNULL)
        token = sh(enc, "token", "create", "--restic", "bench", env=env, capture_output=True,
                   text=True).stdout.strip()
        self.repo_url = f"{scheme}://bench:{token}@127.0.0.1:{self.port}/restic/bench/bench/"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def drop_caches():
    """Empties the page cache (root only): a restore starts as it would days after its backup."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def restic(repo_url, cacert, *args, cache):
    cmd = ["restic", "--no-cache", "-r", f"rest:{repo_url}", "--quiet"]
    if cacert:
        cmd += ["--cacert", cacert]
    env = dict(os.environ, RESTIC_PASSWORD=PASSWORD)
    # Start each timed phase with no dirty pages left by the previous one (rclone does not
    # fsync, so its writes would otherwise be flushed during whatever runs next).
    os.sync()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    sh(*cmd, *args, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # restic is the only child reaped meanwhile (the servers are reaped when they stop).
    return wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def one_round(kind, work, client, tls, cert, src, total):
    w = tempfile.mkdtemp(dir=work)
    srv = kind(w, tls, cert)
    cacert = cert[0] if tls else None
    out = tempfile.mkdtemp(prefix="restore-", dir=client)
    try:
        restic(srv.repo_url, cacert, "init", cache=w)
        c0 = cpu_seconds(srv.proc.pid)
        backup, restic_backup = restic(srv.repo_url, cacert, "backup", src, cache=w)
        c1 = cpu_seconds(srv.proc.pid)
        if COLD:
            os.sync()
            drop_caches()
        restore, restic_restore = restic(srv.repo_url, cacert, "restore", "latest", "--target", out,
                                         cache=w)
        c2 = cpu_seconds(srv.proc.pid)
        rss = peak_rss_mib(srv.proc.pid)
        sh("diff", "-rq", src, os.path.join(out, src.lstrip("/")), stdout=subprocess.DEVNULL)
        gib = total / (1 << 30)
        return dict(backup_s=backup, restore_s=restore, cpu_backup_s=c1 - c0, cpu_restore_s=c2 - c1,
                    cpu_per_gib=(c2 - c0) / gib / 2, rss_mib=rss, restic_backup_s=restic_backup,
                    restic_restore_s=restic_restore,
                    # Share of the machine's two cores that restic and the server kept busy.
                    busy_backup=(restic_backup + c1 - c0) / backup / os.cpu_count(),
                    busy_restore=(restic_restore + c2 - c1) / restore / os.cpu_count())
    finally:
        srv.stop()
        shutil.rmtree(out, ignore_errors=True)


def post_load(kind, work, tls, cert, count):
    w = tempfile.mkdtemp(dir=work)
    srv = kind(w, tls, cert)
    try:
        restic(srv.repo_url, cert[0] if tls else None, "init", cache=w)
        load = os.path.join(ROOT, "target", "release", "examples", "restic_post_load")
        c0 = cpu_seconds(srv.proc.pid)
        out = sh(load, srv.repo_url, str(count), "4096", "16", capture_output=True, text=True).stdout
        r = json.loads(out)
        r["cpu_s"] = cpu_seconds(srv.proc.pid) - c0
        r["rss_mib"] = peak_rss_mib(srv.proc.pid)
        if r["failed"]:
            sys.exit(f"{kind.name}: {r['failed']} POSTs failed")
        return r
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mib", type=int, default=440)
    ap.add_argument("--small", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--posts", type=int, default=20000)
    ap.add_argument("--transports", default="http,tls")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--client-dir", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    ap.add_argument("--warm-restore", action="store_true",
                    help="do not empty the page cache before each restore")
    a = ap.parse_args()
    global COLD
    COLD = not a.warm_restore and drop_caches()
    for tool in ("restic", "rclone"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    sh("cargo", "build", "--release", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    sh("cargo", "build", "--release", "-p", "enc-e2e", "--example", "restic_post_load", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="enc-bench-restic-", dir=a.workdir)
    client = tempfile.mkdtemp(prefix="enc-bench-restic-client-", dir=a.client_dir)
    try:
        # One self-signed P-256 certificate for both servers (the kind enc makes for itself).
        # enc-server's admin commands no longer create a data directory, so openssl makes it.
        cert = make_cert(work)
        src = os.path.join(client, "corpus")
        total = make_corpus(src, a.big_mib, a.small)
        print(f"corpus: {total / (1 << 20):.0f} MiB ({a.small} small files + {a.big_mib} MiB file); "
              f"{a.runs} runs per server and transport, alternating; server data in {work}, corpus and "
              f"restores in {client}; restores start with "
              f"{'an empty page cache' if COLD else 'whatever the page cache holds'}", flush=True)
        results = {}
        for tr in a.transports.split(","):
            tls = tr == "tls"
            for run in range(a.runs):
                for kind in (Rclone, Enc):
                    r = one_round(kind, work, client, tls, cert, src, total)
                    results.setdefault((tr, kind.name), []).append(r)
                    print(f"  {tr:4} run {run + 1} {kind.name:6} backup {r['backup_s']:6.2f} s  restore "
                          f"{r['restore_s']:6.2f} s  server cpu {r['cpu_backup_s']:5.2f}+{r['cpu_restore_s']:5.2f} s"
                          f"  rss {r['rss_mib']:5.0f} MiB  restic cpu {r['restic_backup_s']:5.2f}+"
                          f"{r['restic_restore_s']:5.2f} s", flush=True)
        print("\nmeans (enc / rclone ratio in brackets; goal: wall <= 0.9, cpu/GiB <= 0.5)")
        for tr in a.transports.split(","):
            rc, en = results[(tr, "rclone")], results[(tr, "enc")]
            for key, label in (("backup_s", "backup wall s"), ("restore_s", "restore wall s"),
                               ("cpu_per_gib", "server cpu s/GiB"), ("rss_mib", "server peak RSS MiB"),
                               ("restic_backup_s", "restic cpu backup s"),
                               ("restic_restore_s", "restic cpu restore s"),
                               ("busy_backup", "cores busy backup"), ("busy_restore", "cores busy restore")):
                x, y = mean([r[key] for r in rc]), mean([r[key] for r in en])
                print(f"  {tr:4} {label:22} rclone {x:8.2f}   enc {y:8.2f}   [{y / x:.2f}]")
        if a.posts:
            print(f"\n{a.posts} POSTs of 4 KiB at concurrency 16")
            for tr in a.transports.split(","):
                tls = tr == "tls"
                rc = post_load(Rclone, work, tls, cert, a.posts)
                en = post_load(Enc, work, tls, cert, a.posts)
                print(f"  {tr:4} rclone {rc['ops_per_sec']:8.0f} ops/s (cpu {rc['cpu_s']:.1f} s)   enc "
                      f"{en['ops_per_sec']:8.0f} ops/s (cpu {en['cpu_s']:.1f} s)   "
                      f"[{en['ops_per_sec'] / rc['ops_per_sec']:.2f}]", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(client, ignore_errors=True)


if __name__ == "__main__":
    main()
