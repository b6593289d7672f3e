#!/usr/bin/env python3
"""Soak (issue 18): many protocol-level clients on loopback for minutes, mixing every protocol
enc-server speaks; the server's memory and open files must stay flat, and nothing may fail.

CLIENTS threads (default 200) share the load, each a client of one kind, each pausing a random
think time between its operations:
- restic (40 %): `POST /data/<sha256>` (mostly small files the server keeps in its database,
  some larger ones in the blob store), `GET` of one of its own back (bytes compared), the
  `data/` listing (REST v2), `DELETE` of one; each keeps at most KEEP (40) files, deleting
  its oldest past that, so the repository reaches a steady size as a deployment's working
  set does;
- records (20 %): `POST /records` as enc-server-go's apps send it, `GET` with the key (bytes
  compared), `DELETE` (at most KEEP records each, the same way);
- device backups (20 %): a device of its own (`enc device add`), each entry signed with
  Ed25519 in its chain (`POST /v1/backups`, the chain's head kept by the client as an app
  keeps it), the listing, and the content back (compared);
- Mercury (20 %): an archive uploaded over the WebSocket (JSON dialect, as Hecate's client
  does), downloaded back (compared).

Every answer outside the operation's expected ones counts as an error. Every SAMPLE seconds
the server's resident memory (VmRSS) and open file descriptors are read from /proc. After the
warm-up (the first fifth of the run), the mean of the last fifth of the samples must be within
10 % of the mean of the first fifth after warm-up, for both. Reports p50/p99 latency per
operation. Exit 0 only with zero errors and, for a run of 5 minutes or more, both flat (a
shorter run, CI's, is too short for the warm-up to end: it reports the change and checks only
that nothing failed).

    scripts/soak.py [--clients 200] [--minutes 10] [--bin-dir target/release] [--think 1.0]

Uses the built binaries (`cargo build --release --bins`); Python's requests, websockets and
cryptography. Everything on loopback under a temporary directory; it stops by itself."""
import argparse, asyncio, atexit, base64, hashlib, io, json, os, random, shutil, subprocess, sys, tempfile
import threading, time, types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "crates/e2e/tests"))
import requests  # noqa: E402
import backups_client  # noqa: E402
import mercury_client  # noqa: E402

SAMPLE = 5  # seconds between two readings of the server's memory and descriptors
KEEP = 40  # files a restic or records client keeps: past it, each write deletes its oldest
V2 = "application/vnd.x.restic.rest.v2"


def fail(msg):
    sys.exit(f"soak: FAILED: {msg}")


class Pinned(requests.Session):
    """A session that checks the server against its certificate on every request (a
    session-wide `verify` loses to REQUESTS_CA_BUNDLE)."""

    def __init__(self, cafile):
        super().__init__()
        self.cafile = cafile

    def request(self, method, url, **kw):
        kw["verify"] = self.cafile
        return super().request(method, url, **kw)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {}  # operation -> [seconds]
        self.errors = []  # (operation, detail)

    def ok(self, op, took):
        with self.lock:
            self.latency.setdefault(op, []).append(took)

    def error(self, op, detail):
        with self.lock:
            self.errors.append((op, str(detail)[:300]))


def timed(stats, op, fn, *expected):
    """Runs fn (returning a response, or None for a non-HTTP operation); an exception or a
    status outside `expected` is an error. The response, or None."""
    began = time.monotonic()
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - every failure is counted, with its text
        stats.error(op, f"{type(e).__name__}: {e}")
        return None
    took = time.monotonic() - began
    if r is not None and expected and r.status_code not in expected:
        stats.error(op, f"{r.status_code} {r.text[:200]}")
        return None
    stats.ok(op, took)
    return r if r is not None else True


class Setup:
    """The server and what every client needs of it."""

    def __init__(self, bins, work):
        self.bins, self.work = bins, work
        self.data = os.path.join(work, "data")
        self.cfg = os.path.join(work, "enc-server.toml")
        with open(self.cfg, "w") as f:
            f.write(
                'log = "warn"\n'
                "[records]\nenabled = true\n"
                # Configured for the load: every client may connect and upload at once.
                "[mercury]\nmax_connections = 1024\nuploads_per_hour = 1000000\n"
            )
        self.log = open(os.path.join(work, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(bins, "enc-server"), "--config", self.cfg, "--data-dir", self.data,
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for line in self.proc.stderr:
            self.log.write(line)
            text = line.decode(errors="replace").strip()
            if text.startswith("enc-server listening on "):
                self.url = text.rsplit(" ", 1)[1]
                break
        else:
            fail(f"enc-server did not start; see {self.log.name}")
        threading.Thread(target=self._drain, daemon=True).start()
        atexit.register(lambda: self.proc.poll() is None and self.proc.kill())
        self.env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(work, "enc-config"),
                        ENC_PASSPHRASE="soak passphrase, long enough 42")
        token = self.admin("user", "create", "soak", "--role", "admin")
        fp = self.admin("cert", "fingerprint")
        self.enc("register", "--server", self.url, "--user", "soak", "--token", token,
                 "--fingerprint", fp)
        self.enc("user", "set-quota", "soak", "unlimited")
        self.cafile = os.path.join(work, "server.pem")
        with open(self.cafile, "w") as f:
            f.write(self.admin("cert", "export") + "\n")
        self.restic_token = self.enc("token", "create", "--restic", "soak", "--mode", "full")
        self.records_token = self.enc("token", "create", "--records")
        self.mercury_token = self.enc("token", "create", "--mercury")
        r = requests.post(f"{self.url}/restic/soak/soak/?create=true",
                          auth=("soak", self.restic_token), verify=self.cafile, timeout=30)
        if r.status_code != 200:
            fail(f"restic repository: {r.status_code} {r.text}")

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def admin(self, *args):
        r = subprocess.run([os.path.join(self.bins, "enc-server"), "--config", self.cfg,
                            "--data-dir", self.data, *args], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"enc-server {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def enc(self, *args):
        r = subprocess.run([os.path.join(self.bins, "enc"), *args], env=self.env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"enc {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def device(self, k):
        """A device of its own for backup client k: its App (backups_client's)."""
        key = os.path.join(self.work, f"device{k}.key")
        pub = os.path.join(self.work, f"device{k}.pub")
        backups_client.keygen(key, pub)
        added = json.loads(self.enc("--json", "device", "add", "--public-key", pub,
                                    "--name", f"soak-app-{k}"))
        return backups_client.App(self.url, self.cafile, added["token"],
                                  backups_client.load_key(key), added["device"]["id"])


def restic_client(s, stats, rng, until, think):
    http = Pinned(s.cafile)
    http.auth = ("soak", s.restic_token)
    base = f"{s.url}/restic/soak/soak"
    mine = []
    while time.time() < until:
        roll = rng.random()
        if len(mine) >= KEEP or (mine and roll >= 0.9):
            name, _ = mine.pop(0 if len(mine) >= KEEP else rng.randrange(len(mine)))
            timed(stats, "restic DELETE data", lambda: http.delete(f"{base}/data/{name}", timeout=60), 200)
        elif roll < 0.55 or not mine:
            size = rng.randint(40_000, 160_000) if rng.random() < 0.15 else rng.randint(200, 30_000)
            body = rng.randbytes(size)
            name = hashlib.sha256(body).hexdigest()
            if timed(stats, "restic POST data", lambda: http.post(
                    f"{base}/data/{name}", data=body, timeout=60), 200):
                mine.append((name, body))
        elif roll < 0.8:
            name, body = rng.choice(mine)
            r = timed(stats, "restic GET data", lambda: http.get(f"{base}/data/{name}", timeout=60), 200)
            if r and r.content != body:
                stats.error("restic GET data", f"{name}: other bytes came back")
        else:
            timed(stats, "restic list data", lambda: http.get(
                f"{base}/data/", headers={"Accept": V2}, timeout=60), 200)
        time.sleep(rng.uniform(0, 2 * think))


def records_client(s, stats, rng, until, think):
    http = Pinned(s.cafile)
    http.headers["Authorization"] = f"Bearer {s.records_token}"
    mine = []
    n = 0
    while time.time() < until:
        roll = rng.random()
        if len(mine) >= KEEP or (mine and roll >= 0.85):
            rid, key, _ = mine.pop(0 if len(mine) >= KEEP else rng.randrange(len(mine)))
            timed(stats, "records DELETE", lambda: http.delete(
                f"{s.url}/records/{rid}", headers={"X-Record-Key": key}, timeout=60), 202)
        elif roll < 0.5 or not mine:
            n += 1
            rid = f"{threading.get_ident():x}-{n}".encode().hex()
            data = rng.randbytes(rng.randint(16, 4096))
            body = json.dumps({"id": rid, "key": "", "data": data.hex()})
            r = timed(stats, "records POST", lambda: http.post(
                f"{s.url}/records", data=body, headers={"Content-Type": "application/json"},
                timeout=60), 201)
            if r:
                mine.append((rid, r.json()["key"], data))
        else:
            rid, key, data = rng.choice(mine)
            r = timed(stats, "records GET", lambda: http.get(
                f"{s.url}/records/{rid}", headers={"X-Record-Key": key}, timeout=60), 200)
            if r and bytes.fromhex(r.json()["data_hex"]) != data:
                stats.error("records GET", f"{rid}: other bytes came back")
        time.sleep(rng.uniform(0, 2 * think))


def backups_client_loop(app, stats, rng, until, think):
    # The head of the device's chain is kept here, as an app keeps it (one chain read at
    # start), so each entry costs one signed POST.
    chain = app.chain()
    last = chain["entries"][-1] if chain["entries"] else None
    counter, prev = (last["counter"] if last else 0), (last["id"] if last else "")
    mine = []
    while time.time() < until:
        roll = rng.random()
        if roll < 0.5 or not mine:
            body = rng.randbytes(rng.randint(100, 100_000))
            created = int(time.time())
            digest = hashlib.sha256(body).hexdigest()
            msg = backups_client.message(chain["user_id"], chain["server_id"], app.device,
                                         "backup", prev, "Internal", digest, "", counter + 1,
                                         len(body), created)
            params = {"device": app.device, "classification": "Internal", "created": created,
                      "counter": counter + 1, "prev": prev, "size": len(body), "hash": digest,
                      "signature": base64.b64encode(app.key.sign(msg)).decode()}
            r = timed(stats, "backups POST", lambda: app.post(params, body), 200, 201)
            if r:
                counter, prev = counter + 1, r.json()["id"]
                mine.append((prev, body))
        elif roll < 0.8:
            bid, body = rng.choice(mine)
            r = timed(stats, "backups GET content", lambda: app.get(f"/v1/backups/{bid}/content"), 200)
            if r and r.content != body:
                stats.error("backups GET content", f"{bid}: other bytes came back")
        else:
            timed(stats, "backups list", lambda: app.get("/v1/backups", params={"limit": 100}), 200)
        time.sleep(rng.uniform(0, 2 * think))


def mercury_client_loop(s, stats, rng, until, think, work):
    url = s.url.replace("https://", "wss://", 1) + "/ws"
    mine = []
    me = threading.get_ident()
    n = 0
    while time.time() < until:
        if rng.random() < 0.5 or not mine:
            n += 1
            name = f"soak-{me:x}-{n}.hecate"
            path = os.path.join(work, f"mercury-{me:x}.in")
            body = rng.randbytes(rng.randint(1_000, 200_000))
            with open(path, "wb") as f:
                f.write(body)
            args = types.SimpleNamespace(url=url, cafile=s.cafile, dialect="json",
                                         key=s.mercury_token, name=name, file=path,
                                         declared=None, drop_after=None)
            if timed(stats, "mercury upload", lambda: asyncio.run(mercury_client.upload(args))):
                mine.append((name, hashlib.sha256(body).hexdigest()))
        else:
            name, digest = rng.choice(mine)
            out = os.path.join(work, f"mercury-{me:x}.out")
            args = types.SimpleNamespace(url=url, cafile=s.cafile, dialect="json",
                                         key=s.mercury_token, name=name, out=out)
            if timed(stats, "mercury download", lambda: asyncio.run(mercury_client.download(args))):
                with open(out, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != digest:
                        stats.error("mercury download", f"{name}: other bytes came back")
        time.sleep(rng.uniform(0, 2 * think))


def guarded(stats, kind, loop):
    """Runs a client's loop; a client that stops on an exception is an error."""
    try:
        loop()
    except Exception as e:  # noqa: BLE001
        stats.error(f"{kind} client", f"stopped: {type(e).__name__}: {e}")


def reading(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = int(next(l for l in f if l.startswith("VmRSS:")).split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between operations, s")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--only", choices=["restic", "records", "backups", "mercury"],
                    help="every client of this one kind (to find which protocol a change in "
                         "memory comes from)")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    work = tempfile.mkdtemp(prefix="enc-soak-")
    out = sys.stdout
    print(f"soak: {a.clients} clients for {a.minutes} min, seed {seed}, {work}", file=out, flush=True)
    s = Setup(a.bin_dir, work)
    stats = Stats()
    kinds = []
    for k in range(a.clients):
        f = k / a.clients
        kinds.append(a.only or ("restic" if f < 0.4 else "records" if f < 0.6
                                else "backups" if f < 0.8 else "mercury"))
    apps = {k: s.device(k) for k, kind in enumerate(kinds) if kind == "backups"}
    began = time.time()
    until = began + a.minutes * 60
    threads = []
    sys.stdout = io.StringIO()  # the Mercury client's own prints
    for k, kind in enumerate(kinds):
        rng = random.Random(seed * 1000 + k)
        target = {
            "restic": lambda rng=rng: restic_client(s, stats, rng, until, a.think),
            "records": lambda rng=rng: records_client(s, stats, rng, until, a.think),
            "backups": lambda rng=rng, k=k: backups_client_loop(apps[k], stats, rng, until, a.think),
            "mercury": lambda rng=rng: mercury_client_loop(s, stats, rng, until, a.think, work),
        }[kind]
        t = threading.Thread(target=guarded, args=(stats, kind, target), daemon=True)
        t.start()
        threads.append(t)
    samples = []
    while time.time() < until:
        time.sleep(SAMPLE)
        samples.append((time.time() - began, *reading(s.proc.pid)))
        sys.stdout.seek(0)
        sys.stdout.truncate()
        done = sum(len(v) for v in stats.latency.values())
        print(f"  {samples[-1][0]:6.0f} s  rss {samples[-1][1]:7.1f} MiB  fds {samples[-1][2]:5}  "
              f"ops {done}  errors {len(stats.errors)}", file=out, flush=True)
    for t in threads:
        t.join(timeout=120)
    sys.stdout = out
    stuck = sum(t.is_alive() for t in threads)
    s.proc.terminate()
    s.proc.wait()
    warm = [x for x in samples if x[0] >= a.minutes * 60 / 5] or samples
    if not warm:
        fail("the run was too short to take a single reading")
    fifth = max(1, len(warm) // 5)
    first, last = warm[:fifth], warm[-fifth:]
    growth = {}
    for i, what in ((1, "rss_mib"), (2, "fds")):
        f = sum(x[i] for x in first) / len(first)
        l = sum(x[i] for x in last) / len(last)
        growth[what] = {"after_warmup": round(f, 1), "at_end": round(l, 1),
                        "change_pct": round((l - f) / f * 100, 1)}
    ops = {op: {"count": len(v), "p50_ms": round(pct(v, 0.5), 1), "p99_ms": round(pct(v, 0.99), 1)}
           for op, v in sorted(stats.latency.items())}
    summary = {"clients": a.clients, "minutes": a.minutes, "think_s": a.think, "seed": seed,
               "operations": sum(o["count"] for o in ops.values()), "errors": len(stats.errors),
               "stuck_clients": stuck, "growth": growth, "ops": ops}
    print(f"\n{'operation':28} {'count':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for op, o in ops.items():
        print(f"{op:28} {o['count']:8} {o['p50_ms']:8.1f} {o['p99_ms']:8.1f}")
    for what, g in growth.items():
        print(f"{what}: {g['after_warmup']} after warm-up, {g['at_end']} at the end ({g['change_pct']:+.1f} %)")
    for op, detail in stats.errors[:20]:
        print(f"error: {op}: {detail}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    problems = []
    if stats.errors:
        problems.append(f"{len(stats.errors)} errors")
    if stuck:
        problems.append(f"{stuck} clients still running")
    for what, g in growth.items():
        if a.minutes >= 5 and abs(g["change_pct"]) > 10:
            problems.append(f"{what} changed {g['change_pct']:+.1f} % after warm-up")
    if problems:
        fail("; ".join(problems))
    print("soak: passed " + json.dumps({k: summary[k] for k in ("clients", "minutes", "operations", "errors")}))


if __name__ == "__main__":
    main()
