#!/usr/bin/env python3
"""Crash loop (issue 18): `kill -9` of enc-server at random moments of a mixed load, a restart
each time, and a check of everything that was acknowledged.

Each trial starts, at once, an `enc push` of a new directory (small files sealed into packs,
and one larger file), a `restic backup` of a growing directory, and a Mercury upload (Python's
`websockets`, as Hecate's client speaks it); kills the server `-9` after a random delay
(0.05-1.5 s: the clients are at work until about then); starts it again on the same data directory and port; and lets each client finish
(restic retries by itself; enc and the Mercury client fail, or finish if they were done).
Then, for every write a client was told succeeded:

- the pushed directory pulls back byte for byte (this trial's every time, all of them every
  ten trials and at the end);
- the restic snapshot is listed, and `restic unlock` + `restic check --read-data` pass;
- the Mercury archive downloads back byte for byte;
- `enc-server scrub` finds no referenced blob missing or cut short.

At the end, once the collector's reservation horizon (`limits.reservation`, set short here)
has passed, a restart runs the collector and `enc-server scrub --unreferenced` must find no
blob that nothing references. Exit 0 only if all of it holds.

    scripts/crash_loop.py [--trials 100] [--seed N] [--bin-dir target/debug]

Needs restic, python3's websockets, and the binaries built (`cargo build --bins`). Everything
runs on loopback under a temporary directory, and stops by itself."""
import argparse, atexit, hashlib, json, os, random, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MERCURY_CLIENT = os.path.join(ROOT, "crates/e2e/tests/mercury_client.py")
RESERVATION = 8  # seconds: the collector's horizon for this run
CLIENT_LIMIT = 240  # seconds a client may take after the restart before the trial fails


def fail(msg):
    sys.exit(f"crash_loop: FAILED: {msg}")


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def write_random(path, size, rng):
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))


class Server:
    def __init__(self, bins, work):
        self.bin = os.path.join(bins, "enc-server")
        self.data = os.path.join(work, "data")
        self.cfg = os.path.join(work, "enc-server.toml")
        self.log = open(os.path.join(work, "server.log"), "ab")
        with open(self.cfg, "w") as f:
            f.write(
                "[limits]\n"
                f'reservation = "{RESERVATION}s"\n'
                f'upload_expiry = "{RESERVATION}s"\n'
            )
        self.port = 0
        self.proc = None
        self.url = None

    def base(self):
        return [self.bin, "--config", self.cfg, "--data-dir", self.data]

    def stop_on_exit(self):
        """Whatever way the script ends, the server goes with it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def start(self):
        listen = f"127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while True:
            self.proc = subprocess.Popen(
                self.base() + ["--listen", listen],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for line in self.proc.stderr:
                self.log.write(line)
                text = line.decode(errors="replace").strip()
                if text.startswith("enc-server listening on "):
                    self.url = text.rsplit(" ", 1)[1]
                    self.port = int(self.url.rsplit(":", 1)[1])
                    break
            else:
                # Exited before listening: the port may not be free again yet.
                self.proc.wait()
                if time.time() > deadline:
                    self.log.flush()
                    fail(f"enc-server did not start; see {self.log.name}")
                time.sleep(0.2)
                continue
            break
        # Keep draining its stderr into the log.
        import threading

        proc, log = self.proc, self.log

        def drain():
            for line in proc.stderr:
                log.write(line)
            log.flush()

        threading.Thread(target=drain, daemon=True).start()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def admin(self, *args, check=True):
        r = subprocess.run(self.base() + list(args), capture_output=True, text=True)
        if check and r.returncode != 0:
            fail(f"enc-server {' '.join(args)}: {r.stderr.strip()}")
        return r


class Load:
    """The three clients' setup and commands."""

    def __init__(self, server, bins, work, rng):
        self.server, self.work, self.rng = server, work, rng
        self.enc_bin = os.path.join(bins, "enc")
        self.env = dict(os.environ)
        self.env.update(
            ENC_CONFIG_DIR=os.path.join(work, "enc-config"),
            ENC_PASSPHRASE="crash loop passphrase, long enough 42",
            RESTIC_PASSWORD="crash loop restic password",
            RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"),
        )
        token = server.admin("user", "create", "alice", "--role", "user").stdout.strip()
        fp = server.admin("cert", "fingerprint").stdout.strip()
        self.enc("register", "--server", server.url, "--user", "alice", "--token", token,
                 "--fingerprint", fp)
        self.cacert = os.path.join(work, "server.pem")
        with open(self.cacert, "w") as f:
            f.write(server.admin("cert", "export").stdout)
        restic_token = self.enc("token", "create", "--restic", "laptop", "--mode", "full").strip()
        host = server.url.split("://", 1)[1]
        self.env["RESTIC_REPOSITORY"] = f"rest:https://alice:{restic_token}@{host}/restic/alice/laptop/"
        self.restic("init")
        self.mercury_key = self.enc("token", "create", "--mercury").strip()
        self.src = os.path.join(work, "src")
        self.restic_src = os.path.join(work, "restic-src")
        os.makedirs(self.src)
        os.makedirs(self.restic_src)
        # Acknowledged writes: trial -> what to check.
        self.pushed = {}  # directory name -> {relative path: sha256}
        self.snapshots = []  # restic snapshot ids
        self.archives = {}  # Mercury name -> sha256

    def enc(self, *args, check=True):
        r = subprocess.run([self.enc_bin, *args], env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            fail(f"enc {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def restic(self, *args, check=True):
        r = subprocess.run(["restic", "--cacert", self.cacert, *args], env=self.env,
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            fail(f"restic {' '.join(args)}: {r.stderr.strip()[-2000:]}")
        return r

    def mercury(self, *args):
        url = self.server.url.replace("https://", "wss://", 1) + "/ws"
        return [sys.executable, MERCURY_CLIENT, "--url", url, "--cafile", self.cacert, *args,
                "--dialect", "json", "--key", self.mercury_key]

    def prepare(self, trial):
        """New content for every client; the commands that send it."""
        rng = self.rng
        name = f"trial{trial:03}"
        d = os.path.join(self.src, name)
        os.makedirs(d)
        files = {}
        for i in range(rng.randint(5, 40)):
            p = os.path.join(d, f"small{i}.txt")
            write_random(p, rng.randint(0, 20_000), rng)
            files[f"small{i}.txt"] = sha(p)
        big = os.path.join(d, "big.bin")
        write_random(big, rng.randint(1, 6) << 20, rng)
        files["big.bin"] = sha(big)
        rd = os.path.join(self.restic_src, name)
        os.makedirs(rd)
        for i in range(rng.randint(1, 8)):
            write_random(os.path.join(rd, f"f{i}.bin"), rng.randint(1_000, 2 << 20), rng)
        archive = os.path.join(self.work, f"{name}.hecate")
        write_random(archive, rng.randint(64 << 10, 3 << 20), rng)
        return {
            "enc": ([self.enc_bin, "push", name], self.src, (name, files)),
            "restic": (["restic", "--cacert", self.cacert, "backup", "--json", "."],
                       self.restic_src, None),
            "mercury": (self.mercury("upload", "--name", f"{name}.hecate", "--file", archive),
                        self.work, (f"{name}.hecate", sha(archive))),
        }

    def record(self, kind, out, what):
        if kind == "enc":
            self.pushed[what[0]] = what[1]
        elif kind == "restic":
            summary = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            ids = [m["snapshot_id"] for m in summary if m.get("message_type") == "summary"]
            if not ids:
                fail(f"restic backup succeeded without a snapshot id: {out[-2000:]}")
            self.snapshots.append(ids[0])
        else:
            self.archives[what[0]] = what[1]

    def verify(self, pushed):
        """Every acknowledged write among `pushed` (directory names), every snapshot and
        archive; restic's repository checked with its data read."""
        out = os.path.join(self.work, "out")
        for name in pushed:
            shutil.rmtree(out, ignore_errors=True)
            self.enc("pull", name, "-o", out)
            for rel, digest in self.pushed[name].items():
                got = os.path.join(out, rel)
                if not os.path.exists(got):
                    got = os.path.join(out, name, rel)
                if not os.path.exists(got) or sha(got) != digest:
                    fail(f"acknowledged push {name}/{rel} did not pull back intact")
        self.restic("unlock")
        listed = json.loads(self.restic("snapshots", "--json").stdout)
        have = {s["id"] for s in listed} | {s.get("short_id") for s in listed}
        for sid in self.snapshots:
            if sid not in have:
                fail(f"acknowledged restic snapshot {sid} is not listed")
        check = self.restic("check", "--read-data", check=False)
        if check.returncode != 0:
            fail(f"restic check --read-data: {check.stdout[-2000:]}{check.stderr[-2000:]}")
        for name, digest in self.archives.items():
            dest = os.path.join(self.work, "archive.out")
            r = subprocess.run(self.mercury("download", "--name", name, "--out", dest),
                               capture_output=True, text=True)
            if r.returncode != 0 or sha(dest) != digest:
                fail(f"acknowledged Mercury archive {name} did not download intact: {r.stderr}")


def scrub(server, unreferenced=False):
    args = ["scrub", "--json"] + (["--unreferenced"] if unreferenced else [])
    r = server.admin(*args, check=False)
    found = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return r.returncode, found, r.stderr


def stored_count(scrub_stderr):
    """The number of blobs stored, from `scrub --unreferenced`'s summary."""
    for line in scrub_stderr.splitlines():
        if " blobs stored, " in line:
            return int(line.split("scrub: ", 1)[1].split()[0])
    fail(f"no summary from scrub --unreferenced: {scrub_stderr}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "debug"))
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    a = p.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    if shutil.which("restic") is None:
        fail("restic is not installed (apt-get install restic)")
    work = tempfile.mkdtemp(prefix="enc-crash-loop-")
    print(f"crash_loop: {a.trials} trials, seed {seed}, work {work}", flush=True)
    server = Server(a.bin_dir, work)
    atexit.register(server.stop_on_exit)
    server.start()
    load = Load(server, a.bin_dir, work, rng)
    acked = {"enc": 0, "restic": 0, "mercury": 0}
    failed = {"enc": 0, "restic": 0, "mercury": 0}
    began = time.time()
    for trial in range(1, a.trials + 1):
        jobs = load.prepare(trial)
        procs = {
            kind: subprocess.Popen(cmd, cwd=cwd, env=load.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for kind, (cmd, cwd, _) in jobs.items()
        }
        for proc in procs.values():
            atexit.register(lambda p=proc: p.poll() is None and p.kill())
        delay = rng.uniform(0.05, 1.5)
        time.sleep(delay)
        server.kill9()
        server.start()
        for kind, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=CLIENT_LIMIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                fail(f"trial {trial}: {kind} did not finish within {CLIENT_LIMIT} s of the restart")
            if proc.returncode == 0:
                acked[kind] += 1
                load.record(kind, out, jobs[kind][2])
            else:
                failed[kind] += 1
                said = (err.strip().splitlines() or ["(nothing on stderr)"])[-1][:160]
                print(f"  {kind} cut off: {said}", flush=True)
        names = [n for n in load.pushed if n == f"trial{trial:03}"]
        if trial % 10 == 0 or trial == a.trials:
            names = list(load.pushed)
        load.verify(names)
        code, found, err = scrub(server)
        if code != 0 or found:
            fail(f"trial {trial}: scrub found damage: {found} {err}")
        print(f"trial {trial}: killed after {delay:.2f} s; acknowledged so far {acked}, "
              f"cut off {failed} ({time.time() - began:.0f} s)", flush=True)
    # Past every reservation, a restart runs the collector: nothing may be left over.
    _, _, before = scrub(server, unreferenced=True)
    stored_before = stored_count(before)
    time.sleep(RESERVATION + 1)
    server.kill9()
    server.start()
    deadline = time.time() + 60
    while True:
        code, found, err = scrub(server, unreferenced=True)
        if code == 0 and not found:
            break
        if time.time() > deadline:
            fail(f"after the collector ran: {found[:20]} ({len(found)} in all) {err}")
        time.sleep(1)
    stored_after = stored_count(err)
    print(f"collector: {stored_before} blobs stored before it ran (the cut-off uploads' "
          f"reserved ones among them), {stored_after} after, none unreferenced", flush=True)
    load.verify(list(load.pushed))
    server.kill9()
    summary = {
        "trials": a.trials,
        "seed": seed,
        "acknowledged": acked,
        "cut_off": failed,
        "seconds": round(time.time() - began),
        "lost": 0,
        "blobs_before_collection": stored_before,
        "blobs_after_collection": stored_after,
        "unreferenced_after_collection": 0,
    }
    print("crash_loop: passed " + json.dumps(summary), flush=True)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
