#!/usr/bin/env python3
"""Vault-tree benchmark (issue 15): `enc tree push/pull` against `restic backup/restore` to enc's
own restic backend (the same server, in one run), and against `rclone copy` to a crypt remote
over `rclone serve webdav`, on a real tree.

The corpus is a copy of /usr/share/doc plus crate sources from the cargo registry until it
holds --files files (default 10,000). Rows, per tool: first push, unchanged re-push, push after
changing 1 % of the files (rewritten with new content of the same size plus a line), and a full
pull into an empty directory (checked with `diff -r`). Per row: wall time, server CPU seconds
(enc-server's for enc and restic, `rclone serve`'s for rclone), server peak RSS (reset before
each row) and the client's peak RSS (from wait4).

Usage: scripts/bench_tree.py [--files 10000] [--synthetic] [--runs 1] [--workdir DIR]
                             [--client-dir DIR] [--tools enc,restic,rclone]
--synthetic makes --files small random files instead (the 100,000-file memory check).
Builds the release binaries first. Needs restic and rclone on the PATH (apt-get install restic
rclone) and openssl for the shared certificate.
"""
import argparse, os, random, shutil, subprocess, sys, tempfile, time
from benchlib import make_cert, sh, cpu_seconds, peak_rss_mib, reset_peak, free_port, wait_port, mean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
PASSWORD = "benchmark repository password"


def make_corpus(root, files):
    """/usr/share/doc, then crate sources, until `files` regular files; returns (files, bytes)."""
    os.makedirs(root)
    sources = ["/usr/share/doc"]
    reg = os.path.expanduser("~/.cargo/registry/src")
    if os.path.isdir(reg):
        for index in sorted(os.listdir(reg)):
            sources += sorted(os.path.join(reg, index, c) for c in os.listdir(os.path.join(reg, index)))
    count = 0
    for s in sources:
        if count >= files:
            break
        dst = os.path.join(root, os.path.basename(s.rstrip("/")))
        shutil.copytree(s, dst, symlinks=True, ignore_dangling_symlinks=True, dirs_exist_ok=True)
        for dp, _, fs in os.walk(dst):
            count += sum(1 for f in fs if os.path.isfile(os.path.join(dp, f))
                         and not os.path.islink(os.path.join(dp, f)))
    n, total = 0, 0
    for dp, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(dp, f)
            if os.path.isfile(p) and not os.path.islink(p):
                n += 1
                total += os.path.getsize(p)
    return n, total


def make_synthetic(root, files):
    """`files` small files (1 byte to 4 KiB of random bytes), 100 to a directory, 3 levels."""
    rnd = random.Random(1)
    total = 0
    for i in range(files):
        d = os.path.join(root, f"a{i // 10000:02}", f"b{(i // 100) % 100:02}")
        if i % 100 == 0:
            os.makedirs(d, exist_ok=True)
        n = rnd.randint(1, 4096)
        with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
            f.write(rnd.randbytes(n))
        total += n
    return files, total


def change_one_percent(root, seed):
    rnd = random.Random(seed)
    files = []
    for dp, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(dp, f)
            if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.W_OK):
                files.append(p)
    files.sort()
    picked = rnd.sample(files, max(1, len(files) // 100))
    for p in picked:
        with open(p, "ab") as f:
            f.write(f"changed {seed}\n".encode())
    return len(picked)


def run(cmd, env=None, cwd=None):
    """Runs a client command; (wall seconds, its peak RSS in MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    return wall, ru.ru_maxrss / 1024


class Server:
    """One process whose CPU and peak RSS each row measures."""

    def __init__(self, proc):
        self.proc = proc

    def row(self, fn):
        reset_peak(self.proc.pid)
        c0 = cpu_seconds(self.proc.pid)
        os.sync()
        wall, client_rss = fn()
        return dict(wall=wall, cpu=cpu_seconds(self.proc.pid) - c0,
                    server_rss=peak_rss_mib(self.proc.pid), client_rss=client_rss)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def start_enc(work, cert):
    data = os.path.join(work, "enc-data")
    port = free_port()
    proc = subprocess.Popen([os.path.join(BIN, "enc-server"), "--data-dir", data, "--listen",
                             f"127.0.0.1:{port}", "--log", "warn", "--tls-cert", cert[0],
                             "--tls-key", cert[1]], stderr=subprocess.DEVNULL)
    wait_port(port)
    url = f"https://127.0.0.1:{port}"
    tok = sh(os.path.join(BIN, "enc-server"), "--data-dir", data, "user", "create", "bench",
             capture_output=True, text=True).stdout.strip()
    fp = sh(os.path.join(BIN, "enc-server"), "--data-dir", data, "--tls-cert", cert[0],
            "--tls-key", cert[1], "cert", "fingerprint", capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(work, "enc-cfg"), ENC_SERVER=url,
               ENC_USER="bench", ENC_PASSPHRASE="benchmark passphrase", ENC_FINGERPRINT=fp)
    enc = os.path.join(BIN, "enc")
    sh(enc, "register", "--token", tok, env=env, stderr=subprocess.DEVNULL)
    token = sh(enc, "token", "create", "--restic", "bench", env=env, capture_output=True,
               text=True).stdout.strip()
    repo = f"rest:https://bench:{token}@127.0.0.1:{port}/restic/bench/bench/"
    return Server(proc), env, repo


def enc_rows(srv, env, src, client, seed):
    enc = os.path.join(BIN, "enc")
    out = {}
    out["first push"] = srv.row(lambda: run([enc, "push", src + "/."], env))
    out["unchanged re-push"] = srv.row(lambda: run([enc, "push", src + "/."], env))
    change_one_percent(src, seed)
    out["1 % changed"] = srv.row(lambda: run([enc, "push", src + "/."], env))
    dst = tempfile.mkdtemp(prefix="pull-", dir=client)
    out["full pull"] = srv.row(lambda: run([enc, "pull", "-o", dst], env))
    sh("diff", "-r", "--no-dereference", src, dst, stdout=subprocess.DEVNULL)
    shutil.rmtree(dst)
    return out


def restic_rows(srv, repo, cacert, src, client, seed):
    base = ["restic", "--no-cache", "-r", repo, "--cacert", cacert, "--quiet"]
    env = dict(os.environ, RESTIC_PASSWORD=PASSWORD)
    sh(*base, "init", env=env, stdout=subprocess.DEVNULL)
    out = {}
    out["first push"] = srv.row(lambda: run(base + ["backup", src], env))
    out["unchanged re-push"] = srv.row(lambda: run(base + ["backup", src], env))
    change_one_percent(src, seed)
    out["1 % changed"] = srv.row(lambda: run(base + ["backup", src], env))
    dst = tempfile.mkdtemp(prefix="restore-", dir=client)
    out["full pull"] = srv.row(lambda: run(base + ["restore", "latest", "--target", dst], env))
    sh("diff", "-r", "--no-dereference", src, os.path.join(dst, src.lstrip("/")),
       stdout=subprocess.DEVNULL)
    shutil.rmtree(dst)
    return out


def rclone_rows(work, src, client, seed):
    data = os.path.join(work, "rclone-data")
    os.makedirs(data)
    port = free_port()
    srv = Server(subprocess.Popen(["rclone", "serve", "webdav", "--addr", f"127.0.0.1:{port}", data],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_port(port)
    obscured = sh("rclone", "obscure", PASSWORD, capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, RCLONE_CONFIG_W_TYPE="webdav", RCLONE_CONFIG_W_URL=f"http://127.0.0.1:{port}",
               RCLONE_CONFIG_C_TYPE="crypt", RCLONE_CONFIG_C_REMOTE="w:bench",
               RCLONE_CONFIG_C_PASSWORD=obscured, RCLONE_CONFIG=os.path.join(work, "none.conf"))
    copy = ["rclone", "copy", "--links", "--quiet"]
    out = {}
    try:
        out["first push"] = srv.row(lambda: run(copy + [src, "c:"], env))
        out["unchanged re-push"] = srv.row(lambda: run(copy + [src, "c:"], env))
        change_one_percent(src, seed)
        out["1 % changed"] = srv.row(lambda: run(copy + [src, "c:"], env))
        dst = tempfile.mkdtemp(prefix="rclone-", dir=client)
        out["full pull"] = srv.row(lambda: run(copy + ["c:", dst], env))
        shutil.rmtree(dst)
    finally:
        srv.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--synthetic", action="store_true",
                    help="--files small random files instead of a copy of real trees")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--tools", default="enc,restic,rclone")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--client-dir", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    a = ap.parse_args()
    tools = a.tools.split(",")
    for tool in ("restic", "rclone", "openssl"):
        if tool in tools + ["openssl"] and not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    sh("cargo", "build", "--release", "--bins", "-p", "enc-server", "-p", "enc-cli", cwd=ROOT)
    work = tempfile.mkdtemp(prefix="enc-bench-tree-", dir=a.workdir)
    client = tempfile.mkdtemp(prefix="enc-bench-tree-client-", dir=a.client_dir)
    try:
        cert = make_cert(work)
        pristine = os.path.join(client, "pristine")
        if a.synthetic:
            n, total = make_synthetic(pristine, a.files)
        else:
            n, total = make_corpus(pristine, a.files)
        kind = "synthetic, 1 B to 4 KiB each" if a.synthetic else "/usr/share/doc + crate sources"
        print(f"corpus: {n} files, {total / 1e6:.0f} MB ({kind}); "
              f"{a.runs} run(s); one enc-server for enc and restic", flush=True)
        results = {}
        for r in range(a.runs):
            for tool in tools:
                w = tempfile.mkdtemp(dir=work)
                src = os.path.join(client, f"src-{tool}-{r}")
                shutil.copytree(pristine, src, symlinks=True)
                if tool == "rclone":
                    rows = rclone_rows(w, src, client, seed=r)
                else:
                    srv, env, repo = start_enc(w, cert)
                    try:
                        rows = (enc_rows(srv, env, src, client, seed=r) if tool == "enc"
                                else restic_rows(srv, repo, cert[0], src, client, seed=r))
                    finally:
                        srv.stop()
                shutil.rmtree(src)
                for row, m in rows.items():
                    results.setdefault((tool, row), []).append(m)
                    print(f"  run {r + 1} {tool:6} {row:18} {m['wall']:7.2f} s  server cpu {m['cpu']:6.2f} s"
                          f"  server rss {m['server_rss']:5.0f} MiB  client rss {m['client_rss']:5.0f} MiB",
                          flush=True)
        print("\nmeans: wall s (enc / restic, enc / rclone)")
        for row in ("first push", "unchanged re-push", "1 % changed", "full pull"):
            cells = []
            for tool in tools:
                cells.append(f"{tool} {mean([m['wall'] for m in results[(tool, row)]]):7.2f}")
            line = f"  {row:18} " + "   ".join(cells)
            if "enc" in tools:
                e = mean([m["wall"] for m in results[("enc", row)]])
                for other in [t for t in tools if t != "enc"]:
                    o = mean([m["wall"] for m in results[(other, row)]])
                    line += f"   [enc/{other} {e / o:.2f}]"
            print(line)
        print("\nmeans: server cpu s, server peak RSS MiB, client peak RSS MiB")
        for row in ("first push", "unchanged re-push", "1 % changed", "full pull"):
            for tool in tools:
                ms = results[(tool, row)]
                print(f"  {row:18} {tool:6} cpu {mean([m['cpu'] for m in ms]):6.2f}  server rss "
                      f"{mean([m['server_rss'] for m in ms]):5.0f}  client rss "
                      f"{mean([m['client_rss'] for m in ms]):5.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(client, ignore_errors=True)


if __name__ == "__main__":
    main()
