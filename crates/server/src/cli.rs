//! The `enc-server` command line: serve (the default), `user create`, `cert fingerprint`,
//! `cert export`, `--generate-config`, `--generate-policy`, `--validate`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DEFAULT_CONFIG, parse_duration, parse_size};
use crate::http::serve::ServeLimits;
use crate::rules::policy::{DEFAULT_POLICY, Policy};

/// Zero-knowledge encrypted storage server.
///
/// With no arguments it serves HTTPS on 127.0.0.1:8443 with data in ./enc-data (SQLite and
/// local files), making a self-signed certificate at first start. Settings come from
/// --config FILE, then ENC_* environment variables, then flags (each overriding the last).
#[derive(Debug, Parser)]
#[command(
    name = "enc-server",
    version,
    after_help = "First admin: `enc-server user create alice --role admin` prints an invitation token; then `enc register --server https://HOST:8443 --user alice --token TOKEN`."
)]
pub struct Cli {
    /// TOML configuration file (see --generate-config).
    #[arg(long, env = "ENC_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./enc-data].
    #[arg(long, env = "ENC_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8443]; port 0 picks a free one.
    #[arg(long, env = "ENC_LISTEN")]
    pub listen: Option<String>,
    /// PEM certificate chain to serve instead of the self-signed one.
    #[arg(long, env = "ENC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "ENC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra DNS name or IP for the self-signed certificate (repeatable).
    #[arg(long = "tls-name", global = true)]
    pub tls_names: Vec<String>,
    /// Serve plain HTTP; only behind a TLS-terminating proxy.
    #[arg(long, env = "ENC_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Idle time after which sessions end, e.g. 600s, 10m [default: 600s].
    #[arg(long, env = "ENC_SESSION_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub session_idle_timeout: Option<Duration>,
    /// Largest object accepted, e.g. 10GiB [default: 64GiB].
    #[arg(long, env = "ENC_MAX_OBJECT_SIZE", value_parser = parse_size)]
    pub max_object_size: Option<u64>,
    /// Role policy file (see --generate-policy).
    #[arg(long, env = "ENC_POLICY_FILE", global = true)]
    pub policy_file: Option<PathBuf>,
    /// Log filter, e.g. info, debug [default: info].
    #[arg(long, env = "ENC_LOG")]
    pub log: Option<String>,
    /// Serve Prometheus /metrics on this separate plain-HTTP address (off by default).
    #[arg(long, env = "ENC_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Dedicated Mercury (Hecate) WebSocket listener, e.g. 127.0.0.1:10112 (off by default;
    /// /ws on the main listener is always on).
    #[arg(long, env = "ENC_MERCURY_LISTEN")]
    pub mercury_listen: Option<String>,
    /// PostgreSQL for metadata (postgres://…) instead of the embedded SQLite.
    #[arg(long, env = "ENC_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// The schema owner's PostgreSQL URL, used only to run migrations.
    #[arg(
        long,
        env = "ENC_DATABASE_OWNER_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_owner_url: Option<String>,
    /// Print a documented default configuration and exit.
    #[arg(long)]
    pub generate_config: bool,
    /// Print the built-in role policy and exit.
    #[arg(long)]
    pub generate_policy: bool,
    /// Check the configuration (file, environment, flags, policy, TLS files) and exit.
    #[arg(long)]
    pub validate: bool,
    /// Subcommand (none: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage users on this machine (works while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// The server's TLS certificate.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Print an Argon2id hash of a password for a Mercury client list (auth.json `key_hash`).
    ///
    /// The password is read from the first line of stdin (or prompted for on a terminal),
    /// never from the command line. The client then authenticates with the key
    /// `<client_id>:<password>`.
    HashPassword,
    /// Create or upgrade the PostgreSQL schema (tables, row-level security, the `enc_app`
    /// role's grants), connecting as the schema owner: --database-owner-url, else
    /// --database-url. The embedded SQLite database migrates itself at start.
    Migrate,
    /// Check every blob the metadata references: that it is in the blob store and of the
    /// size recorded. Each damaged one is printed with whose it is and what it holds (a
    /// vault's tree blob or object version, a restic file, a Mercury archive, a backup), as
    /// the server knows them without any key; exits 1 if any is. It only reads, so it runs
    /// beside a serving server.
    Scrub {
        /// One JSON object per damaged blob instead of tab-separated lines.
        #[arg(long)]
        json: bool,
        /// Also list the blob store and report each blob nothing references, holds or
        /// reserves (space a crash left for the collector, or a bug). Keeps every referenced
        /// key in memory; on a live server, an upload that starts meanwhile may be reported,
        /// so confirm with a second run.
        #[arg(long)]
        unreferenced: bool,
    },
}

/// `enc-server user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Invite a user: prints a one-time invitation token alone on stdout.
    Create {
        /// User name (lower-case letters, digits, '.', '_', '-').
        name: String,
        /// Role from the policy (built-in: admin, user).
        #[arg(long, default_value = "user")]
        role: String,
        /// Validity of the token, e.g. 24h, 7d [default: invitation_ttl, 24h].
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
    },
}

/// `enc-server cert …`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Print the certificate's SHA256 fingerprint (what `enc --fingerprint` pins).
    Fingerprint,
    /// Print the certificate as PEM (for restic --cacert, curl --cacert, …).
    Export,
}

impl Cli {
    /// Layers file < environment/flags into one configuration and checks it.
    pub fn config(&self) -> anyhow::Result<Config> {
        let c = self.config_unchecked()?;
        c.check()?;
        Ok(c)
    }

    /// The layered configuration, not yet checked.
    fn config_unchecked(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.listen {
            c.listen = v.clone();
        }
        if let Some(v) = &self.tls_cert {
            c.tls.cert = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            c.tls.key = Some(v.clone());
        }
        c.tls.names.extend(self.tls_names.iter().cloned());
        if self.insecure_http {
            c.tls.insecure_http = true;
        }
        if let Some(v) = self.session_idle_timeout {
            c.session_idle_timeout = v;
        }
        if let Some(v) = self.max_object_size {
            c.limits.max_object_size = v;
        }
        if let Some(v) = &self.policy_file {
            c.policy_file = Some(v.clone());
        }
        if let Some(v) = &self.log {
            c.log = v.clone();
        }
        if let Some(v) = &self.mercury_listen {
            c.mercury.listen = Some(v.clone());
        }
        // Hecate's names for its preshared key; environment only, so it stays out of files
        // and process listings.
        c.mercury.preshared_key = ["MERCURY_AUTH_KEY", "HECATE_AUTH_KEY"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        if let Some(v) = &self.metrics_listen {
            c.metrics.listen = Some(v.clone());
        }
        if let Some(v) = &self.database_url {
            c.database_url = Some(v.clone());
        }
        if let Some(v) = &self.database_owner_url {
            c.database_owner_url = Some(v.clone());
        }
        Ok(c)
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.generate_config {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    if cli.generate_policy {
        print!("{DEFAULT_POLICY}");
        return Ok(());
    }
    let config = if matches!(cli.command, Some(Command::Migrate)) {
        // `migrate` needs only the owner's URL; the server's own connection is not used.
        cli.config_unchecked()?
    } else {
        cli.config()?
    };
    let policy = match &config.policy_file {
        Some(p) => Policy::from_file(p)?,
        None => Policy::default(),
    };
    match cli.command {
        Some(Command::User(UserCommand::Create {
            name,
            role,
            expires,
        })) => user_create(&config, &policy, &name, &role, expires).await,
        Some(Command::Cert(cmd)) => cert(&config, cmd),
        Some(Command::HashPassword) => hash_password(),
        Some(Command::Migrate) => migrate(&config).await,
        Some(Command::Scrub { json, unreferenced }) => {
            require_server_state(&config)?;
            crate::scrub::scrub(&config, json, unreferenced).await
        }
        None if cli.validate => {
            if let (Some(c), Some(k)) = (&config.tls.cert, &config.tls.key) {
                crate::http::tls::server_config(c, k)?;
            }
            eprintln!("configuration is valid");
            Ok(())
        }
        None => serve(config).await,
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config
        .database_owner_url
        .as_ref()
        .or(config.database_url.as_ref())
        .context("`migrate` is for PostgreSQL: give --database-owner-url (or --database-url)")?;
    let applied = enc_store::postgres::migrate(url)
        .await
        .context("migrating the PostgreSQL schema")?;
    eprintln!("PostgreSQL schema up to date ({applied} migration(s) applied now)");
    Ok(())
}

async fn user_create(
    config: &Config,
    policy: &Policy,
    name: &str,
    role: &str,
    expires: Option<Duration>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        policy.has_role(role),
        "unknown role {role:?}; roles are: {}",
        policy.role_names().join(", ")
    );
    require_server_state(config)?;
    let meta = crate::open_meta(config).await?;
    let ttl = expires.unwrap_or(config.invitation_ttl).as_secs() as i64;
    let (token, expires_at) = crate::v1::auth::invite(&*meta, name, role, ttl)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let entry = enc_store::NewAudit {
        ts: crate::rules::now(),
        actor: "server-console".into(),
        actor_id: None,
        action: "user.create".into(),
        target: format!("{name} role={role}"),
        outcome: "ok".into(),
        client: "local".into(),
    };
    meta.audit_append(entry).await?;
    eprintln!(
        "invitation for {name} (role {role}), valid for {} h; they run:\n  enc register --server {} --user {name} --token <token>",
        (expires_at - crate::rules::now()) / 3600,
        public_url(config)
    );
    println!("{token}");
    Ok(())
}

fn hash_password() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprint!("password (echoed): ");
    }
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        !password.is_empty(),
        "empty password: give it on stdin, e.g. `echo 'secret' | enc-server hash-password`"
    );
    println!("{}", crate::mercury::hash_password(password)?);
    Ok(())
}

/// The URL clients reach this server at, as far as the configuration tells: the listen
/// address, with the machine's host name for an address that listens on every interface.
fn public_url(config: &Config) -> String {
    let scheme = if config.tls.insecure_http {
        "http"
    } else {
        "https"
    };
    let listen = &config.listen;
    let (host, port) = match listen.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => (
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into()),
            a.port().to_string(),
        ),
        Ok(a) if a.is_ipv6() => (format!("[{}]", a.ip()), a.port().to_string()),
        Ok(a) => (a.ip().to_string(), a.port().to_string()),
        Err(_) => match listen.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (listen.clone(), "8443".into()),
        },
    };
    format!("{scheme}://{host}:{port}")
}

/// Admin subcommands work on an existing server's state and never create one: a data
/// directory without a database (with the embedded store) is refused with what to pass.
fn require_server_state(config: &Config) -> anyhow::Result<()> {
    if config.database_url.is_some() {
        return Ok(());
    }
    let db = config.data_dir.join("meta.sqlite");
    anyhow::ensure!(
        db.exists(),
        "no enc-server data in {}: pass the server's data directory with --data-dir DIR (or ENC_DATA_DIR, or --config FILE)",
        config.data_dir.display()
    );
    Ok(())
}

fn cert(config: &Config, cmd: CertCommand) -> anyhow::Result<()> {
    if config.tls.cert.is_none() {
        anyhow::ensure!(
            crate::http::tls::self_signed_exists(&config.data_dir),
            "no enc-server certificate in {}: pass the server's data directory with --data-dir DIR (or ENC_DATA_DIR, or --config FILE), or start the server once to make one",
            config.data_dir.display()
        );
    }
    let (cert_path, _) = crate::http::tls::cert_files(&config.data_dir, &config.tls);
    match cmd {
        CertCommand::Fingerprint => {
            let chain = crate::http::tls::load_chain(&cert_path)?;
            println!("{}", crate::http::tls::fingerprint(&chain[0]));
        }
        CertCommand::Export => {
            let pem = std::fs::read_to_string(&cert_path)
                .with_context(|| format!("reading {}", cert_path.display()))?;
            print!("{pem}");
        }
    }
    Ok(())
}

async fn shutdown_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        () = cancel.cancelled() => {}
    }
    tracing::info!("shutdown requested");
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .map_err(|e| anyhow::anyhow!("log = {:?}: {e}", config.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    crate::owner_only_dir(&config.data_dir)?;
    let tls = if config.tls.insecure_http {
        tracing::warn!("serving plain HTTP (--insecure-http): put a TLS proxy in front");
        None
    } else {
        if config.tls.cert.is_none() {
            crate::http::tls::ensure_self_signed(&config.data_dir, &config.tls.names)?;
        }
        let (cert, key) = crate::http::tls::cert_files(&config.data_dir, &config.tls);
        let fp = crate::http::tls::fingerprint(&crate::http::tls::load_chain(&cert)?[0]);
        eprintln!("TLS certificate fingerprint: {fp}");
        Some(crate::http::tls::server_config(&cert, &key)?)
    };
    let limits = ServeLimits {
        max_connections: config.limits.max_connections,
        header_read_timeout: config.limits.header_read_timeout,
        idle_timeout: config.limits.idle_timeout,
        max_header_size: config.limits.max_header_size as usize,
        shutdown_grace: config.limits.shutdown_grace,
    };
    let metrics_listener = match &config.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        ),
        None => None,
    };
    let mercury_listener = match &config.mercury.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for mercury"))?,
        ),
        None => None,
    };
    // Storage first (migrations included), so that once the port answers, commands such as
    // `enc-server user create` next to the server find the database ready.
    let listen = config.listen.clone();
    let server = crate::open_state(config).await?;
    let state = server.state.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let cancel = CancellationToken::new();
    if let Some(l) = metrics_listener {
        eprintln!("metrics on http://{}/metrics", l.local_addr()?);
        let router = crate::http::metrics::router(state.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(l, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    if let Some(l) = mercury_listener {
        eprintln!(
            "mercury on {}://{}",
            if tls.is_some() { "wss" } else { "ws" },
            l.local_addr()?
        );
        let router = crate::mercury::router(server.mercury.clone());
        let stop = cancel.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            crate::http::serve::run(
                l,
                tls,
                router,
                limits,
                async move { stop.cancelled().await },
            )
            .await;
        });
    }
    let gc = tokio::spawn(crate::rules::gc::run(state.clone(), cancel.clone()));
    tokio::spawn(crate::rules::erasure::resume(state.clone(), cancel.clone()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "enc-server listening on {scheme}://{}",
        listener.local_addr()?
    );
    let app = crate::app(&server);
    crate::http::serve::run(listener, tls, app, limits, shutdown_signal(cancel.clone())).await;
    cancel.cancel();
    let _ = gc.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every subcommand, argument and flag of `enc-server --help` says what it is for, and
    /// none repeats the `[env: …]` note clap adds by itself.
    #[test]
    fn every_command_and_argument_is_described() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() {
                missing.push(format!("{path} (command)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                match (arg.get_help(), arg.get_env()) {
                    (None, _) => missing.push(format!("{path} {id}")),
                    (Some(help), Some(env))
                        if help.to_string().contains(&*env.to_string_lossy()) =>
                    {
                        missing.push(format!("{path} {id}: names {env:?} again"))
                    }
                    _ => {}
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "enc-server", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }
}
