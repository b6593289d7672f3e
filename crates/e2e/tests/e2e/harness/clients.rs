//! What drives a running server: a loopback load balancer in front of replicas, and a user
//! with their own `enc` configuration.

use super::*;

/// A TCP load balancer on loopback: one URL in front of several replicas, each new
/// connection going to the backend chosen last (TLS passes through untouched).
pub struct Balancer {
    pub url: String,
    target: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

impl Balancer {
    pub fn new(first: &Server) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(first.port));
        let to = target.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(backend) =
                    std::net::TcpStream::connect(("127.0.0.1", to.load(Ordering::SeqCst)))
                else {
                    continue; // the client sees the connection closed, as behind a real one
                };
                let pipe = |mut from: std::net::TcpStream, mut into: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                let (Ok(c2), Ok(b2)) = (client.try_clone(), backend.try_clone()) else {
                    continue;
                };
                pipe(client, backend);
                pipe(b2, c2);
            }
        });
        let scheme = first.url.split("://").next().unwrap_or("https");
        Self {
            url: format!("{scheme}://127.0.0.1:{port}"),
            target,
        }
    }

    /// Sends new connections to `server`.
    pub fn route_to(&self, server: &Server) {
        self.target
            .store(server.port, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One person with their own `enc` configuration directory.
pub struct User {
    pub name: String,
    pub passphrase: String,
    pub dir: tempfile::TempDir,
    pub server: String,
    pub fingerprint: String,
}

impl User {
    pub fn new(server: &Server, name: &str) -> Self {
        Self {
            name: name.to_string(),
            passphrase: format!("{name} passphrase, long enough 42"),
            dir: tempfile::tempdir().expect("tempdir"),
            server: server.url.clone(),
            fingerprint: server.fingerprint.clone(),
        }
    }

    /// The `enc` command with this user's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("enc"));
        c.args(args)
            .env("ENC_CONFIG_DIR", self.dir.path().join("config"))
            .env("ENC_SERVER", &self.server)
            .env("ENC_USER", &self.name)
            .env("ENC_FINGERPRINT", &self.fingerprint)
            .env("ENC_PASSPHRASE", &self.passphrase)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running enc")
    }

    /// Runs `enc ARGS`, expecting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "enc {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `enc ARGS`, expecting failure; returns stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "enc {args:?} succeeded but should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Asserts that the file at `rel` in this user's working directory holds `want`.
    #[track_caller]
    pub fn assert_file(&self, rel: &str, want: impl AsRef<[u8]>) {
        let got = std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
        assert!(
            got == want.as_ref(),
            "{rel} holds other bytes than expected"
        );
    }

    /// A path inside this user's working directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The stored session token.
    pub fn token(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("config/session.json")).expect("session");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    /// Id of one of this user's vaults as listed by `enc vault ls --json`.
    pub fn vault_id(&self, name: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["vault", "ls", "--json"])).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .find(|x| x["name"] == name)
            .and_then(|x| x["id"].as_str())
            .unwrap_or_else(|| panic!("no vault {name}"))
            .to_string()
    }
}
