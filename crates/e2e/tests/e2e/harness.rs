//! Test harness: builds and starts the real `enc-server` binary on an ephemeral port and
//! drives it with the real `enc` binary, each user in their own configuration directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod blobs;
mod clients;
mod services;
pub use clients::*;
pub use services::*;

pub use enc_testkit::{garage, have_tool};

/// Directory holding the `enc` and `enc-server` binaries, built once per test run.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/e2e-<hash> → target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let profile = dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("debug")
            .to_string();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The whole workspace with its examples: the features `cargo test --workspace`
        // resolves (dev-dependencies' included), so the libraries it built for the tests are
        // the binaries' own and only the two `main`s are compiled here.
        cmd.args(["build", "--workspace", "--bins", "--examples"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build for the binaries");
        assert!(status.success(), "building enc and enc-server failed");
        dir
    })
}

/// Path of a binary of this workspace.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The storage every test server uses, chosen by `ENC_TEST_BACKEND`:
/// - `sqlite` (default): the embedded SQLite and the local disk;
/// - `postgres`: each server gets a fresh PostgreSQL database on the cluster of
///   `ENC_TEST_PG_ADMIN_URL` (default: the local superuser over loopback), migrated by the
///   server itself as the owner and used through a role bound by row-level security;
/// - `postgres-s3`: that, and blobs under a prefix of its own in a bucket of a single-node
///   Garage (an S3-compatible store) that the harness starts on loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    PostgresS3,
}

pub fn backend() -> Backend {
    match std::env::var("ENC_TEST_BACKEND").as_deref() {
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok("postgres-s3") => Backend::PostgresS3,
        Ok(other) => panic!("ENC_TEST_BACKEND={other:?}: use sqlite, postgres or postgres-s3"),
    }
}

/// The harness's own async runtime, for its S3 client.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn pg_admin_url() -> String {
    std::env::var("ENC_TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Runs SQL with `psql` (unaligned, `|`-separated); its output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-A",
            "-t",
            "-q",
            "-F",
            "|",
            "-c",
            sql,
        ])
        .output()
        .expect("running psql (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// The login role test servers connect as: a member of `enc_app`, nothing more.
const PG_LOGIN: &str = "enc_e2e";

/// A fresh PostgreSQL database for one test server, dropped with it.
pub struct PgDatabase {
    name: String,
    /// The schema owner (the admin URL's superuser), for migrations and tampering.
    pub owner_url: String,
    /// The server's own connection.
    pub app_url: String,
}

impl PgDatabase {
    /// A fresh database (and the cluster-wide roles, once).
    pub fn create() -> Self {
        static ROLES: OnceLock<()> = OnceLock::new();
        let admin = pg_admin_url();
        ROLES.get_or_init(|| {
            // Roles are cluster-wide; another test run may have made them already.
            let _ = Command::new("psql")
                .args([&admin, "-X", "-q", "-c", "CREATE ROLE enc_app NOLOGIN"])
                .output();
            let _ = Command::new("psql")
                .args([
                    &admin,
                    "-X",
                    "-q",
                    "-c",
                    &format!("CREATE ROLE {PG_LOGIN} LOGIN PASSWORD 'enc-e2e'"),
                ])
                .output();
            psql(&admin, &format!("GRANT enc_app TO {PG_LOGIN}"));
        });
        let name = format!("enc_e2e_{}", hex::encode(rand::random::<[u8; 8]>()));
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin
            .rsplit_once('/')
            .expect("admin URL names a database")
            .0;
        let host = base.rsplit_once('@').map_or(base, |(_, h)| h);
        Self {
            owner_url: format!("{base}/{name}"),
            app_url: format!("postgres://{PG_LOGIN}:enc-e2e@{host}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &pg_admin_url(),
                "-X",
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub url: String,
    pub port: u16,
    pub fingerprint: String,
    pub log: PathBuf,
    /// `wss://…` of the dedicated Mercury listener, when configured.
    pub mercury_url: Option<String>,
    config: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Its PostgreSQL database, with `ENC_TEST_BACKEND=postgres[-s3]`.
    pub pg: Option<PgDatabase>,
    /// Its prefix in the Garage bucket, with `ENC_TEST_BACKEND=postgres-s3`.
    pub s3_prefix: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with a fresh data directory and the given extra TOML configuration.
    pub fn start_with(config: &str, args: &[&str]) -> Self {
        Self::start_with_env(config, args, &[])
    }

    /// Like [`Server::start_with`], with extra environment variables for the server.
    pub fn start_with_env(config: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_on(backend(), config, args, envs)
    }

    /// A server on PostgreSQL + Garage whatever `ENC_TEST_BACKEND` says, for tests of several
    /// replicas; `None` (SKIPPED) when Garage is missing outside CI.
    pub fn start_scaled_out(config: &str) -> Option<Self> {
        Self::start_scaled_out_with_env(config, &[])
    }

    /// [`Server::start_scaled_out`] with environment variables.
    pub fn start_scaled_out_with_env(config: &str, envs: &[(&str, &str)]) -> Option<Self> {
        if !have_tool("garage") || !have_tool("psql") {
            return None;
        }
        Some(Self::start_on(Backend::PostgresS3, config, &[], envs))
    }

    /// Another replica of this server: the same configuration (database, bucket prefix) and
    /// TLS certificate, its own data directory and port.
    pub fn replica(&self) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tls = self.data_dir.join("tls");
        let mut args = self.args.clone();
        args.extend([
            "--tls-cert".to_string(),
            tls.join("cert.pem").display().to_string(),
            "--tls-key".to_string(),
            tls.join("key.pem").display().to_string(),
        ]);
        let mut s = Self::unstarted(
            tmp,
            self.config.clone(),
            args,
            self.envs.clone(),
            None,
            self.s3_prefix.clone(),
        );
        s.spawn("127.0.0.1:0");
        s
    }

    /// A server not yet spawned, with its data directory and log in `tmp`.
    fn unstarted(
        tmp: tempfile::TempDir,
        config: PathBuf,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        pg: Option<PgDatabase>,
        s3_prefix: Option<String>,
    ) -> Self {
        Self {
            child: None,
            data_dir: tmp.path().join("data"),
            url: String::new(),
            port: 0,
            fingerprint: String::new(),
            log: tmp.path().join("server.log"),
            mercury_url: None,
            config,
            args,
            envs,
            pg,
            s3_prefix,
            _tmp: Some(tmp),
        }
    }

    fn start_on(backend: Backend, config: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("enc-server.toml");
        let pg = (backend != Backend::Sqlite).then(PgDatabase::create);
        let mut config = match &pg {
            // Top-level keys go before any table of the test's own configuration.
            Some(db) => format!(
                "database_url = \"{}\"\ndatabase_owner_url = \"{}\"\n{config}",
                db.app_url, db.owner_url
            ),
            None => config.to_string(),
        };
        let s3_prefix = (backend == Backend::PostgresS3).then(|| {
            let g = garage();
            let prefix = format!("server-{}", hex::encode(rand::random::<[u8; 8]>()));
            // A table of its own, at the end of the test's configuration.
            config.push_str(&services::garage_blob_config(g, tmp.path(), &prefix));
            prefix
        });
        std::fs::write(&cfg, config).expect("write config");
        let mut all = vec!["--config".to_string(), cfg.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // A scale-out deployment names its records pepper (every replica the same one).
        if pg.is_some() && !envs.iter().any(|(k, _)| k == "ENC_RECORDS_PEPPER") {
            let pepper = hex::encode(rand::random::<[u8; 32]>());
            envs.push(("ENC_RECORDS_PEPPER".into(), pepper));
        }
        let mut s = Self::unstarted(tmp, cfg, all, envs, pg, s3_prefix);
        s.spawn("127.0.0.1:0");
        assert_eq!(
            s.data_dir.join("meta.sqlite").exists(),
            s.pg.is_none(),
            "the server uses the metadata backend the test asked for"
        );
        assert_eq!(
            s.data_dir.join("objects").exists(),
            s.s3_prefix.is_none(),
            "the server uses the blob store the test asked for"
        );
        s
    }

    /// A server on a copy of `data` (an embedded data directory written by an earlier build:
    /// SQLite and local blobs, whatever `ENC_TEST_BACKEND` says).
    pub fn start_on_copy_of(data: &Path) -> Self {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).expect("mkdir");
            for e in std::fs::read_dir(from).expect("read fixture") {
                let e = e.expect("entry");
                let target = to.join(e.file_name());
                if e.file_type().expect("type").is_dir() {
                    copy(&e.path(), &target);
                } else {
                    std::fs::copy(e.path(), &target).expect("copy");
                }
            }
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("enc-server.toml");
        std::fs::write(&cfg, "").expect("write config");
        copy(data, &tmp.path().join("data"));
        let args = vec!["--config".to_string(), cfg.display().to_string()];
        let mut s = Self::unstarted(tmp, cfg, args, Vec::new(), None, None);
        s.spawn("127.0.0.1:0");
        s
    }

    /// A server with the embedded default (SQLite and local blobs, whatever
    /// `ENC_TEST_BACKEND` says) in the data directory `data`, which the caller made (a small
    /// filesystem mounted there, say).
    pub fn start_in(data: &Path) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("enc-server.toml");
        std::fs::write(&cfg, "").expect("write config");
        let args = vec!["--config".to_string(), cfg.display().to_string()];
        let mut s = Self::unstarted(tmp, cfg, args, Vec::new(), None, None);
        s.data_dir = data.to_path_buf();
        s.spawn("127.0.0.1:0");
        s
    }

    /// A server with the default configuration.
    pub fn start() -> Self {
        Self::start_with("", &[])
    }

    fn spawn(&mut self, listen: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut child = Command::new(bin("enc-server"))
            .args(&self.args)
            .args([
                "--data-dir",
                &self.data_dir.display().to_string(),
                "--listen",
                listen,
            ])
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting enc-server");
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut line = String::new();
        let mut fingerprint = None;
        let url = loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!(
                    "enc-server exited before listening; log: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            use std::io::Write as _;
            let _ = (&log).write_all(line.as_bytes());
            if let Some(fp) = line.trim().strip_prefix("TLS certificate fingerprint: ") {
                fingerprint = Some(fp.to_string());
            }
            if let Some(u) = line.trim().strip_prefix("mercury on ") {
                self.mercury_url = Some(u.to_string());
            }
            if let Some(u) = line.trim().strip_prefix("enc-server listening on ") {
                break u.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "enc-server did not start in time"
            );
        };
        // Keep draining stderr into the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut log = log;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = log.write_all(line.as_bytes());
                line.clear();
            }
        });
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        self.url = url;
        self.fingerprint = fingerprint.unwrap_or_default();
        self.child = Some(child);
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        let listen = format!("127.0.0.1:{}", self.port);
        // The port may take a moment to be free again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpListener::bind(&listen).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn(&listen);
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.envs.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.envs.push((key.to_string(), v.to_string()));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("wait")
    }

    /// `enc-server user create NAME --role ROLE`: the invitation token.
    pub fn invite(&self, name: &str, role: &str) -> String {
        let out = self.admin_cmd(&["user", "create", name, "--role", role]);
        assert!(
            out.status.success(),
            "user create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    /// Runs `enc-server ARGS --data-dir D` with the server's configuration file.
    pub fn admin_cmd(&self, args: &[&str]) -> Output {
        Command::new(bin("enc-server"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .args(["--data-dir", &self.data_dir.display().to_string()])
            .output()
            .expect("running enc-server")
    }

    /// Runs SQL against the server's metadata database with the owner's rights, as a
    /// malicious operator would; rows as `a|b` lines.
    pub fn operator_sql(&self, sql: &str) -> String {
        if let Some(db) = &self.pg {
            return psql(&db.owner_url, sql);
        }
        let script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nr=c.execute(sys.argv[2]).fetchall()\nc.commit()\nprint('\\n'.join('|'.join(map(str,x)) for x in r))";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(self.data_dir.join("meta.sqlite"))
            .arg(sql)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    /// Everything the metadata database holds outside the data directory (a `pg_dump` on
    /// PostgreSQL; nothing for SQLite, whose file is in the data directory).
    pub fn database_dump(&self) -> Vec<u8> {
        let Some(db) = &self.pg else {
            return Vec::new();
        };
        let out = Command::new("pg_dump")
            .arg(&db.owner_url)
            .output()
            .expect("running pg_dump");
        assert!(out.status.success(), "pg_dump failed");
        out.stdout
    }

    fn s3(&self) -> Option<std::sync::Arc<dyn object_store::ObjectStore>> {
        let prefix = self.s3_prefix.as_ref()?;
        let g = garage();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&g.bucket)
            .with_region("garage")
            .with_endpoint(&g.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(&g.key_id)
            .with_secret_access_key(&g.secret)
            .build()
            .expect("s3 client");
        Some(std::sync::Arc::new(object_store::prefix::PrefixStore::new(
            store,
            prefix.as_str(),
        )))
    }

    /// Waits until a vault upload is streaming: its row exists (made before the first byte)
    /// and its size is not recorded yet. Works on every backend, S3 included, where an open
    /// multipart upload is not listed. Also returns once `client` (the pushing process) has
    /// exited: a fast push can stream and commit between two polls.
    pub fn wait_upload_started(&self, client: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.operator_sql("SELECT COUNT(*) FROM uploads WHERE size = -1") == "0" {
            if client.try_wait().expect("try_wait").is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "upload never started");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Registers a user (invited with `role`) and returns it logged in.
    pub fn user(&self, name: &str, role: &str) -> User {
        let token = self.invite(name, role);
        let u = User::new(self, name);
        u.ok(&["register", "--token", &token]);
        u
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Writes `len` random bytes to `path`.
pub fn random_file(path: &Path, len: u64) {
    use rand::RngCore as _;
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    let mut rng = rand::thread_rng();
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

/// Whether two files have identical contents (streamed).
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = match (std::fs::File::open(a), std::fs::File::open(b)) {
        (Ok(x), Ok(y)) => (std::io::BufReader::new(x), std::io::BufReader::new(y)),
        _ => return false,
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
    fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => panic!("read: {e}"),
            }
        }
        n
    }
}

/// A blocking HTTP client for raw API tests (accepts the self-signed certificate).
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Status of `GET /healthz` (is the server still serving?).
pub fn health(c: &reqwest::blocking::Client, server: &Server) -> u16 {
    c.get(format!("{}/healthz", server.url))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Whether Python's `websockets` (the third-party Mercury client of the tests) can be
/// imported; like [`have_tool`], a failure in CI.
pub fn have_python_websockets() -> bool {
    if !have_tool("python3") {
        return false;
    }
    let ok = Command::new("python3")
        .args(["-c", "import websockets"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3 websockets is required in CI but missing (.ci/run installs it)");
        }
        eprintln!("SKIPPED: python3 -m pip install websockets; CI=true makes this a failure");
    }
    ok
}

/// Lower-case hex SHA-256 (restic's object names).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// `enc token create --restic REPO --mode MODE` as `user`: the token.
pub fn restic_token(user: &User, repo: &str, mode: &str) -> String {
    user.ok(&["token", "create", "--restic", repo, "--mode", mode])
        .trim()
        .to_string()
}

/// A TLS connection to `server`, handshake done, verified against its exported certificate.
pub fn tls_connection(
    server: &Server,
    pem: &[u8],
    alpn: Option<&[u8]>,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("certificate PEM")).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if let Some(p) = alpn {
        config.alpn_protocols = vec![p.to_vec()];
    }
    let name = "127.0.0.1".try_into().expect("server name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let sock = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls
}
