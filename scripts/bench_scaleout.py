#!/usr/bin/env python3
"""Scale-out benchmark: the same workloads on the embedded default (SQLite + local disk) and on
PostgreSQL + Garage (an S3-compatible store), in one run, alternating A (embedded) and B
(scale-out); then 2 replicas against 1 on the small-object workload.

1. restic: backup and restore of a mixed corpus (one large random file + many small files).
2. enc push and pull of one large random file (client-side age encryption included).
3. COUNT restic POSTs of 4 KiB at concurrency 16: embedded, scale-out with 1 replica, and
   scale-out with 2 replicas (two load generators of concurrency 8, one per replica).

Plain HTTP on loopback, so the figures compare storage, not TLS. Server CPU is user + sys of
the enc-server process(es); PostgreSQL's and Garage's own CPU is reported separately.

Usage: scripts/bench_scaleout.py [--big-mib 200] [--small 5000] [--push-mib 1024] [--runs 2]
                                 [--posts 20000] [--workdir DIR]
Needs restic, psql, a PostgreSQL cluster at ENC_TEST_PG_ADMIN_URL (default
postgres://postgres@127.0.0.1:5432/postgres) and garage on the PATH. Builds release binaries.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from benchlib import sh, cpu_seconds, free_port, wait_port, mean
from bench_restic import make_corpus, restic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
ADMIN = os.environ.get("ENC_TEST_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
LOGIN = "enc_bench"


def psql(url, sql, check=True):
    return sh("psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql,
              capture_output=True, text=True, check=check).stdout.strip()


def proc_cpu(name):
    """CPU seconds of every process whose command name is `name` (postgres, garage)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != name:
                    continue
            total += cpu_seconds(int(pid))
        except OSError:
            pass
    return total


class Garage:
    def __init__(self, work):
        self.dir = os.path.join(work, "garage")
        os.makedirs(self.dir)
        rpc, self.s3, admin = free_port(), free_port(), free_port()
        self.cfg = os.path.join(self.dir, "garage.toml")
        with open(self.cfg, "w") as f:
            f.write(f'metadata_dir = "{self.dir}/meta"\ndata_dir = "{self.dir}/data"\n'
                    f'db_engine = "sqlite"\nreplication_factor = 1\n'
                    f'rpc_bind_addr = "127.0.0.1:{rpc}"\nrpc_public_addr = "127.0.0.1:{rpc}"\n'
                    f'rpc_secret = "{os.urandom(32).hex()}"\n\n[s3_api]\ns3_region = "garage"\n'
                    f'api_bind_addr = "127.0.0.1:{self.s3}"\nroot_domain = ".s3.garage.localhost"\n\n'
                    f'[admin]\napi_bind_addr = "127.0.0.1:{admin}"\n')
        self.proc = subprocess.Popen(["garage", "-c", self.cfg, "server"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(150):
            r = subprocess.run(["garage", "-c", self.cfg, "node", "id", "-q"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                node = r.stdout.strip().split("@")[0]
                break
            time.sleep(0.2)
        else:
            sys.exit("garage did not start")
        g = lambda *a: sh("garage", "-c", self.cfg, *a, capture_output=True, text=True).stdout
        g("layout", "assign", "-z", "dc1", "-c", "10G", node)
        g("layout", "apply", "--version", "1")
        g("bucket", "create", "bench")
        out = g("key", "create", "bench")
        field = lambda k: next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith(k))
        self.key_id, self.secret = field("Key ID"), field("Secret key")
        g("bucket", "allow", "--read", "--write", "--owner", "bench", "--key", "bench")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Deployment:
    """One enc deployment: embedded, or PostgreSQL + Garage with `replicas` servers."""

    def __init__(self, work, scaled, garage=None, replicas=1):
        self.work = tempfile.mkdtemp(dir=work)
        self.scaled = scaled
        self.db = None
        config = os.path.join(self.work, "enc-server.toml")
        text = ""
        if scaled:
            self.db = "enc_bench_" + os.urandom(6).hex()
            psql(ADMIN, f"CREATE DATABASE {self.db}")
            base = ADMIN.rsplit("/", 1)[0]
            host = base.split("@", 1)[1]
            creds = os.path.join(self.work, "s3.toml")
            with open(creds, "w") as f:
                f.write(f'access_key_id = "{garage.key_id}"\nsecret_access_key = "{garage.secret}"\n')
            text = (f'database_url = "postgres://{LOGIN}:bench@{host}/{self.db}"\n'
                    f'database_owner_url = "{base}/{self.db}"\n\n[blob]\n'
                    f'url = "s3://bench/{self.db}"\nendpoint = "http://127.0.0.1:{garage.s3}"\n'
                    f'region = "garage"\npath_style = true\ncredentials_file = "{creds}"\n')
        with open(config, "w") as f:
            f.write(text)
        self.config = config
        self.procs, self.urls = [], []
        for i in range(replicas):
            data = os.path.join(self.work, f"data{i}")
            port = free_port()
            p = subprocess.Popen([os.path.join(BIN, "enc-server"), "--config", config, "--data-dir",
                                  data, "--listen", f"127.0.0.1:{port}", "--log", "warn",
                                  "--insecure-http", "--session-idle-timeout", "3600s"],
                                 stderr=subprocess.DEVNULL)
            wait_port(port)
            self.procs.append(p)
            self.urls.append(f"http://127.0.0.1:{port}")
        tok = sh(os.path.join(BIN, "enc-server"), "--config", config, "--data-dir",
                 os.path.join(self.work, "data0"), "user", "create", "bench",
                 capture_output=True, text=True).stdout.strip()
        self.env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(self.work, "cfg"),
                        ENC_SERVER=self.urls[0], ENC_USER="bench",
                        ENC_PASSPHRASE="benchmark passphrase")
        sh(os.path.join(BIN, "enc"), "register", "--token", tok, env=self.env,
           stderr=subprocess.DEVNULL)
        token = sh(os.path.join(BIN, "enc"), "token", "create", "--restic", "bench", env=self.env,
                   capture_output=True, text=True).stdout.strip()
        self.repo_urls = [u.replace("http://", f"http://bench:{token}@") + "/restic/bench/bench/"
                          for u in self.urls]

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait()
        if self.db:
            psql(ADMIN, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)", check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def restic_round(dep, src):
    url = dep.repo_urls[0]
    restic(url, None, "init", cache=dep.work)
    c0, p0, g0 = dep.cpu(), proc_cpu("postgres"), proc_cpu("garage")
    backup = restic(url, None, "backup", src, cache=dep.work)
    out = os.path.join(dep.work, "restore")
    restore = restic(url, None, "restore", "latest", "--target", out, cache=dep.work)
    sh("diff", "-rq", src, os.path.join(out, src.lstrip("/")), stdout=subprocess.DEVNULL)
    shutil.rmtree(out, ignore_errors=True)
    return dict(backup=backup, restore=restore, cpu=dep.cpu() - c0,
                pg=proc_cpu("postgres") - p0, garage=proc_cpu("garage") - g0)


def push_round(dep, f):
    enc = os.path.join(BIN, "enc")
    os.sync()
    push = timed(lambda: sh(enc, "push", f, "--as", "big.bin", env=dep.env,
                            stdout=subprocess.DEVNULL))
    dest = os.path.join(dep.work, "pulled.bin")
    pull = timed(lambda: sh(enc, "pull", "big.bin", "-o", dest, env=dep.env,
                            stdout=subprocess.DEVNULL))
    os.remove(dest)
    return dict(push=push, pull=pull)


def post_round(dep, count):
    load = os.path.join(BIN, "examples", "restic_post_load")
    restic(dep.repo_urls[0], None, "init", cache=dep.work)
    n = len(dep.repo_urls)
    t = time.perf_counter()
    procs = [subprocess.Popen([load, u, str(count // n), "4096", str(16 // n)],
                              stdout=subprocess.PIPE, text=True) for u in dep.repo_urls]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.perf_counter() - t
    if any(o["failed"] for o in outs):
        sys.exit(f"POSTs failed: {outs}")
    return count / wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mib", type=int, default=200)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--push-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--posts", type=int, default=20000)
    ap.add_argument("--workdir")
    a = ap.parse_args()
    for tool in ("restic", "psql", "garage"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not on the PATH")
    sh("cargo", "build", "--release", "-q", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    sh("cargo", "build", "--release", "-q", "-p", "enc-e2e", "--example", "restic_post_load",
       cwd=ROOT)
    psql(ADMIN, "DO $$ BEGIN CREATE ROLE enc_app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    psql(ADMIN, f"DO $$ BEGIN CREATE ROLE {LOGIN} LOGIN PASSWORD 'bench'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    psql(ADMIN, f"GRANT enc_app TO {LOGIN}")
    work = tempfile.mkdtemp(prefix="enc-bench-scaleout-", dir=a.workdir)
    garage = Garage(work)
    try:
        src = os.path.join(work, "corpus")
        total = make_corpus(src, a.big_mib, a.small)
        big = os.path.join(work, "push.bin")
        with open(big, "wb") as f:
            for _ in range(a.push_mib):
                f.write(os.urandom(1 << 20))
        print(f"restic corpus {total / (1 << 20):.0f} MiB ({a.small} small files); push/pull "
              f"{a.push_mib} MiB; {a.runs} runs alternating embedded (A) and PostgreSQL + Garage (B); "
              f"plain HTTP", flush=True)
        res = {}
        for run in range(a.runs):
            for scaled in (False, True):
                dep = Deployment(work, scaled, garage)
                try:
                    r = restic_round(dep, src)
                    r.update(push_round(dep, big))
                finally:
                    dep.stop()
                res.setdefault(scaled, []).append(r)
                print(f"  run {run + 1} {'scale-out' if scaled else 'embedded '}: "
                      f"backup {r['backup']:.2f} s, restore {r['restore']:.2f} s, enc-server cpu "
                      f"{r['cpu']:.2f} s (postgres {r['pg']:.2f} s, garage {r['garage']:.2f} s); "
                      f"push {r['push']:.2f} s, pull {r['pull']:.2f} s", flush=True)
        print("\n| what | embedded | PostgreSQL + Garage | B ÷ A |\n|---|---|---|---|")
        for key, label in (("backup", "restic backup s"), ("restore", "restic restore s"),
                           ("cpu", "enc-server CPU s (restic)"), ("pg", "postgres CPU s (restic)"),
                           ("garage", "garage CPU s (restic)"), ("push", "enc push s"),
                           ("pull", "enc pull s")):
            x, y = mean([r[key] for r in res[False]]), mean([r[key] for r in res[True]])
            print(f"| {label} | {x:.2f} | {y:.2f} | {y / x:.2f} |" if x else
                  f"| {label} | {x:.2f} | {y:.2f} | |")
        mb = a.push_mib * 1.048576
        for key in ("push", "pull"):
            x, y = mean([r[key] for r in res[False]]), mean([r[key] for r in res[True]])
            print(f"| enc {key} MB/s | {mb / x:.0f} | {mb / y:.0f} | {x / y:.2f} |")
        if a.posts:
            print(f"\n{a.posts} restic POSTs of 4 KiB at concurrency 16 (ops/s)")
            rates = {}
            for run in range(a.runs):
                for label, scaled, n in (("embedded", False, 1), ("scale-out, 1 replica", True, 1),
                                         ("scale-out, 2 replicas", True, 2)):
                    dep = Deployment(work, scaled, garage, replicas=n)
                    try:
                        rates.setdefault(label, []).append(post_round(dep, a.posts))
                    finally:
                        dep.stop()
            base = mean(rates["scale-out, 1 replica"])
            for label, xs in rates.items():
                print(f"  {label:24} {mean(xs):8.0f} ops/s   [{mean(xs) / base:.2f} × 1 replica]")
    finally:
        garage.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
