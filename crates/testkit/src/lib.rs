//! Test support shared by `enc-store`'s storage suites and `enc-e2e`'s end-to-end suite.
//!
//! - [`have_tool`]: whether a third-party tool is installed; with `CI=true` a missing tool
//!   fails the test instead of skipping it.
//! - [`garage`]: a single-node Garage (an S3-compatible store written in Rust) on loopback,
//!   started once per test process, with its layout applied and one bucket and key;
//!   [`Garage::launch`] one of a test's own, which it may kill and start again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Fails if a tool is missing in CI; skips (returns false) elsewhere with a message.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is required in CI but is not installed (.ci/run installs it)");
        }
        eprintln!(
            "SKIPPED: {tool} is not installed (.ci/run shows how to install it); CI=true makes this a failure"
        );
    }
    found
}

/// A single-node Garage on loopback: one bucket, one key. It stops by itself when the test
/// process ends (a watchdog shell kills it).
pub struct Garage {
    pub endpoint: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    dir: PathBuf,
    cfg: PathBuf,
    s3_port: u16,
    /// The shell that runs the daemon and stops it once this process has gone.
    watchdog: Mutex<Option<Child>>,
}

/// The Garage shared by the whole test run (its directory goes with it).
pub fn garage() -> &'static Garage {
    static G: OnceLock<Garage> = OnceLock::new();
    G.get_or_init(|| {
        assert!(
            have_tool("garage"),
            "this test needs garage (cargo install garage --locked; .ci/run installs it)"
        );
        let dir = std::env::temp_dir().join(format!("enc-test-garage-{}", std::process::id()));
        Garage::launch(&dir)
    })
}

impl Garage {
    /// A Garage of its own in `dir` (made afresh): configured, started, its layout applied,
    /// its bucket and key made. A test that stops and starts it uses one of these, never
    /// [`garage`]'s.
    pub fn launch(dir: &Path) -> Garage {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("garage dir");
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("port")
                .local_addr()
                .expect("addr")
                .port()
        };
        let (rpc, s3, admin) = (port(), port(), port());
        let cfg = dir.join("garage.toml");
        std::fs::write(
            &cfg,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.display(),
                secret = hex::encode(rand::random::<[u8; 32]>()),
            ),
        )
        .expect("garage.toml");
        let mut garage = Garage {
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: "enc-test".into(),
            key_id: String::new(),
            secret: String::new(),
            dir: dir.to_path_buf(),
            cfg,
            s3_port: s3,
            watchdog: Mutex::new(None),
        };
        garage.start();
        let node = garage
            .admin(&["node", "id", "-q"])
            .trim()
            .split('@')
            .next()
            .unwrap_or("")
            .to_string();
        garage.admin(&["layout", "assign", "-z", "dc1", "-c", "10G", &node]);
        garage.admin(&["layout", "apply", "--version", "1"]);
        garage.admin(&["bucket", "create", "enc-test"]);
        let key = garage.admin(&["key", "create", "enc-test"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in: {key}"))
        };
        (garage.key_id, garage.secret) = (field("Key ID:"), field("Secret key:"));
        garage.admin(&[
            "bucket", "allow", "--read", "--write", "--owner", "enc-test", "--key", "enc-test",
        ]);
        garage.wait_for_s3();
        garage
    }

    /// Runs `garage -c … ARGS`; its output.
    fn admin(&self, args: &[&str]) -> String {
        let out = Command::new("garage")
            .arg("-c")
            .arg(&self.cfg)
            .args(args)
            .output()
            .expect("garage");
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the daemon (again), and waits until its RPC answers.
    pub fn start(&self) {
        let mut watchdog = self.watchdog.lock().expect("lock");
        assert!(watchdog.is_none(), "garage is running already");
        let log = self.dir.join("garage.log");
        *watchdog = Some(
            Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "garage -c '{cfg}' server >>'{log}' 2>&1 & g=$!; \
                         trap 'kill -9 $g; exit' TERM; \
                         while kill -0 {pid} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 1; done; \
                         kill $g 2>/dev/null; wait $g; \
                         kill -0 {pid} 2>/dev/null || rm -rf '{dir}'",
                        cfg = self.cfg.display(),
                        log = log.display(),
                        dir = self.dir.display(),
                        pid = std::process::id()
                    ),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting garage"),
        );
        drop(watchdog);
        // `node id` answers from the key on disk before the daemon listens; `status` needs
        // the daemon's RPC.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new("garage")
            .arg("-c")
            .arg(&self.cfg)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("garage")
            .success()
        {
            assert!(Instant::now() < deadline, "garage did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the S3 API accepts connections.
    pub fn wait_for_s3(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(Instant::now() < deadline, "garage's S3 API did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the daemon (`kill -9`, as a crash would) and waits until it is gone.
    pub fn kill(&self) {
        let Some(mut watchdog) = self.watchdog.lock().expect("lock").take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &watchdog.id().to_string()])
            .status();
        let _ = watchdog.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok() {
            assert!(Instant::now() < deadline, "garage did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}
