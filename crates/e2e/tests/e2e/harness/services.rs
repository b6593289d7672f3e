//! Storage services of a test's own, which it may stop and start: a PostgreSQL cluster made
//! with `initdb` on a free port (never the machine's shared one), and a Garage.

use super::*;

pub use enc_testkit::Garage;

/// A PostgreSQL cluster of one test's own, on loopback, with the roles a server connects as
/// and one database, `enc`. It stops when dropped, or when the test process ends (a watchdog
/// shell stops it).
pub struct PrivatePostgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// The shell that stops the cluster once this process has gone.
    watchdog: Option<Child>,
}

impl PrivatePostgres {
    /// A new cluster, started; `None` (SKIPPED) when PostgreSQL's server programs are not
    /// installed outside CI.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max();
        let Some(bin) = bin else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL's initdb is required in CI (apt-get install postgresql)"
            );
            eprintln!("SKIPPED: PostgreSQL's initdb is not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("pgdata");
        std::fs::create_dir(&data).expect("pgdata");
        if as_root() {
            // initdb refuses root: the cluster is the postgres user's.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .expect("id");
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("the postgres user")
            };
            std::os::unix::fs::chown(&data, Some(id("-u")), Some(id("-g"))).expect("chown");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let mut pg = Self {
            _dir: dir,
            data,
            bin,
            port,
            watchdog: None,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
            ],
        );
        pg.start_again();
        // Stopped once this process has gone, whatever way it ends (the shell runs as this
        // process's user, who may signal it; only pg_ctl runs as the cluster's owner).
        let owner = if as_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {owner}'{ctl}' -D '{data}' -m immediate stop",
            pid = std::process::id(),
            ctl = pg.bin.join("pg_ctl").display(),
            data = pg.data.display()
        );
        pg.watchdog = Some(
            Command::new("sh")
                .args(["-c", &watchdog])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("watchdog"),
        );
        let admin = pg.url("postgres", "postgres");
        psql(&admin, "CREATE ROLE enc_app NOLOGIN");
        psql(
            &admin,
            "CREATE ROLE enc_e2e LOGIN PASSWORD 'enc-e2e' IN ROLE enc_app",
        );
        psql(&admin, "CREATE DATABASE enc");
        Some(pg)
    }

    /// `postgres://USER@127.0.0.1:PORT/DATABASE`.
    fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// The superuser's URL of `enc` (the schema's owner, who migrates it).
    pub fn owner_url(&self) -> String {
        self.url("postgres", "enc")
    }

    /// The server's own role's URL of `enc` (bound by row-level security).
    pub fn app_url(&self) -> String {
        format!("postgres://enc_e2e:enc-e2e@127.0.0.1:{}/enc", self.port)
    }

    /// A command as the cluster's owner (the postgres user when the tests run as root).
    fn command(&self, program: &str) -> Command {
        if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(&self.bin.join(tool).display().to_string())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=60",
            self.port
        );
        let log = self.data.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the cluster the way a crash does (`-m immediate`: every backend killed, no
    /// checkpoint; the next start recovers from the log).
    pub fn crash(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command(&self.bin.join("pg_ctl").display().to_string())
            .args([
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Server {
    /// A server whose storage is the given configuration (`database_url`, a `[blob]`
    /// table…), whatever `ENC_TEST_BACKEND` says; a scale-out one gets a records pepper.
    pub fn start_on_storage(storage: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("enc-server.toml");
        std::fs::write(&cfg, storage).expect("write config");
        let args = vec!["--config".to_string(), cfg.display().to_string()];
        let envs = vec![(
            "ENC_RECORDS_PEPPER".to_string(),
            hex::encode(rand::random::<[u8; 32]>()),
        )];
        let mut s = Self::unstarted(tmp, cfg, args, envs, None, None);
        s.spawn("127.0.0.1:0");
        s
    }
}

/// The `[blob]` table for `prefix` in a Garage's bucket, its credentials in a file under
/// `dir`.
pub fn garage_blob_config(g: &Garage, dir: &Path, prefix: &str) -> String {
    let creds = dir.join("s3.toml");
    std::fs::write(
        &creds,
        format!(
            "access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            g.key_id, g.secret
        ),
    )
    .expect("credentials");
    format!(
        "\n[blob]\nurl = \"s3://{}/{prefix}\"\nendpoint = \"{}\"\nregion = \"garage\"\n\
         path_style = true\ncredentials_file = \"{}\"\n",
        g.bucket,
        g.endpoint,
        creds.display()
    )
}
