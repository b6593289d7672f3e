"""Helpers the benchmark scripts share: running commands, a process's CPU time and peak RSS
from /proc, loopback ports."""
import os, re, socket, subprocess, sys, time


def sh(*args, **kw):
    kw.setdefault("check", True)
    return subprocess.run(args, **kw)


def cpu_seconds(pid):
    """User + sys CPU seconds of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024


def reset_peak(pid):
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, deadline=30):
    t = time.time() + deadline
    while time.time() < t:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server on port {port} did not start")


def mean(xs):
    return sum(xs) / len(xs)


def make_cert(work):
    """A self-signed P-256 certificate for 127.0.0.1 and localhost (the kind enc makes for
    itself), made by openssl under `work`; returns (cert.pem, key.pem)."""
    certdir = os.path.join(work, "cert")
    os.makedirs(certdir)
    cert = (os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem"))
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-keyout", cert[1], "-out", cert[0], "-days", "30", "-subj", "/CN=localhost",
       "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert


class EncServer:
    """A release enc-server on a fresh data directory under `work`, over TLS with `cert`
    (make_cert's pair), with a registered user `bench`; `config` is the text of a TOML
    configuration file, if any. `enc(...)` runs the CLI as that user."""

    def __init__(self, bin_dir, work, cert, config=None):
        self.bin = bin_dir
        self.work = work
        self.data = os.path.join(work, "enc-data")
        self.port = free_port()
        args = [os.path.join(bin_dir, "enc-server")]
        if config is not None:
            path = os.path.join(work, "enc.toml")
            with open(path, "w") as f:
                f.write(config)
            args += ["--config", path]
        self.proc = subprocess.Popen(
            args + ["--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}", "--log", "warn",
                    "--tls-cert", cert[0], "--tls-key", cert[1]],
            stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.url = f"https://127.0.0.1:{self.port}"
        server = os.path.join(bin_dir, "enc-server")
        tok = sh(server, "--data-dir", self.data, "user", "create", "bench",
                 capture_output=True, text=True).stdout.strip()
        fp = sh(server, "--data-dir", self.data, "--tls-cert", cert[0], "--tls-key", cert[1],
                "cert", "fingerprint", capture_output=True, text=True).stdout.strip()
        self.env = dict(os.environ, ENC_CONFIG_DIR=os.path.join(work, "enc-cfg"), ENC_SERVER=self.url,
                        ENC_USER="bench", ENC_PASSPHRASE="benchmark passphrase", ENC_FINGERPRINT=fp)
        self.enc("register", "--token", tok)

    def enc(self, *args):
        return sh(os.path.join(self.bin, "enc"), *args, env=self.env, capture_output=True,
                  text=True).stdout

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
