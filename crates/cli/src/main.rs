//! `enc`: the command-line client. A thin shell over `enc_client`: parse, call, print.
#![forbid(unsafe_code)]

mod account;
mod admin;
mod auth;
mod devices;
mod docs;
mod objects;
mod push;
mod records;
mod tree;
mod ui;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Zero-knowledge encrypted storage: everything is encrypted here, before it leaves.
#[derive(Debug, Parser)]
#[command(
    name = "enc",
    version,
    after_help = "Start: `enc register --server https://HOST:8443 --user NAME --token TOKEN` with the token an admin gave you, then `enc push DIR`, `enc ls`, `enc pull PATH`, `enc log`.\nConfiguration lives in $ENC_CONFIG_DIR (default ~/.config/enc).\n\nOutput: results on stdout, progress and messages on stderr.\nExit status: 0 success, 1 error, 2 wrong usage, 3 done in part (what failed is listed on stderr), 141 stdout closed early."
)]
pub struct Cli {
    /// Server URL, e.g. https://host:8443 [default: the one saved at login].
    // Own ids: a subcommand's positional `user` (`vault share NAME USER`) would otherwise
    // fill this global one too.
    #[arg(
        id = "global_server",
        long = "server",
        value_name = "URL",
        env = "ENC_SERVER",
        global = true,
        help_heading = "Global options"
    )]
    server: Option<String>,
    /// User name [default: the one saved at login].
    #[arg(
        id = "global_user",
        long = "user",
        value_name = "NAME",
        env = "ENC_USER",
        global = true,
        help_heading = "Global options"
    )]
    user: Option<String>,
    /// Expected server certificate fingerprint (SHA256:…), pinned at register/login.
    #[arg(
        long,
        value_name = "SHA256",
        env = "ENC_FINGERPRINT",
        global = true,
        help_heading = "Global options"
    )]
    fingerprint: Option<String>,
    /// Read the passphrase from this file (first line) instead of ENC_PASSPHRASE or a prompt.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Global options"
    )]
    passphrase_file: Option<PathBuf>,
    /// Print results as JSON (commands that print results).
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    /// Say less: no progress bars or confirmations (results and errors still print).
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        conflicts_with = "verbose"
    )]
    quiet: bool,
    /// Say more: each file as it goes, with its time and rate.
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create your account with an invitation token from an admin.
    Register {
        /// The invitation token.
        #[arg(long)]
        token: String,
    },
    /// Log in (passphrase, or an Ed25519 SSH key registered with `enc key add-ssh`).
    Login {
        /// Log in with this SSH private key instead of the passphrase.
        #[arg(long)]
        ssh_key: Option<PathBuf>,
    },
    /// End the session on the server and forget it on this device.
    Logout,
    /// Show who you are logged in as, where, whether the session is alive, and this device.
    Status,
    #[command(flatten)]
    Tree(tree::TreeCmd),
    /// The single files (objects) of vaults from before versioned trees.
    ///
    /// Read them, or remove them to give back their space. A vault takes new objects only
    /// until its first `enc push`, which imports them into its tree.
    #[command(subcommand)]
    Object(ObjectCmd),
    /// Manage vaults.
    #[command(subcommand)]
    Vault(VaultCmd),
    /// Keys: export a vault's age identity, register SSH keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Manage users (admins).
    #[command(subcommand)]
    User(UserCmd),
    /// List or revoke your sessions.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Your devices: each login certifies a key of its own with your account key; list,
    /// rename, revoke, or certify an app's key.
    #[command(subcommand)]
    Device(devices::DeviceCmd),
    /// Device backups: files encrypted to your account key, signed by this device, in a
    /// chain the server cannot reorder, relabel or replay.
    #[command(subcommand)]
    Backup(devices::BackupCmd),
    /// Change your passphrase.
    #[command(subcommand)]
    Passphrase(PassphraseCmd),
    /// Your account as a whole: export everything it can read.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Records: a file sealed here under a fresh key that only you keep (the server's
    /// /records format, so apps' keys open them too); put, get, rm.
    #[command(subcommand)]
    Record(records::RecordCmd),
    /// Access tokens for restic (the password of HTTP Basic), Mercury/Hecate (the key) and
    /// apps using /records: create, list, revoke.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Your restic repositories on the server: list, remove.
    #[command(subcommand)]
    Restic(ResticCmd),
    /// Show audit entries (yours; all with --all as admin) and check the hash chain.
    Audit {
        /// Every user's entries (admin).
        #[arg(long)]
        all: bool,
        /// Check the hash chain; exit non-zero if it is broken.
        #[arg(long)]
        verify: bool,
    },
    /// Print a shell completion script, e.g. `enc completions bash >
    /// /etc/bash_completion.d/enc` or `enc completions zsh > ~/.zfunc/_enc`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages: enc(1) and one per subcommand (enc-vault-share(1), …) into a
    /// directory, or enc(1) alone to stdout.
    Man {
        /// Write every page into this directory (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ObjectCmd {
    /// Encrypt and upload files or directories as objects (a vault with a tree refuses
    /// them: use `enc push`).
    ///
    /// Prints each stored object with its new version on stdout. A file that cannot be read
    /// is reported and skipped (exit status 3); anything the server refuses stops the push.
    Push {
        /// Files or directories; `-` reads standard input (with --as NAME).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Vault: NAME, or OWNER/NAME for one shared with you [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Store a single file under this name.
        #[arg(long = "as")]
        as_name: Option<String>,
    },
    /// Download, verify and decrypt objects (a name, or a directory prefix).
    ///
    /// Nothing is written to a file unless its signature, size and hash check out. When
    /// several objects are asked for, one that fails is reported and the others are still
    /// pulled (exit status 3).
    Pull {
        /// Object names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Output file (one object), `-` for standard output, or a directory [default: the
        /// object's name, here].
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Fetch this version instead of the latest (`enc object ls --versions NAME` lists them).
        #[arg(long, value_name = "N")]
        version: Option<u64>,
        /// Write the ciphertext exactly as stored (an age file).
        #[arg(long)]
        raw: bool,
    },
    /// List objects.
    Ls {
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Show version, size, time and author.
        #[arg(short, long)]
        long: bool,
        /// List the stored versions of this name instead.
        #[arg(long, value_name = "NAME")]
        versions: Option<String>,
    },
    /// Remove objects with all their versions.
    Rm {
        /// Object names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum VaultCmd {
    /// Create a vault. Asks for the passphrase: the vault's keys are signed with the
    /// account's key, which no device keeps.
    Create {
        /// Vault name: letters, digits, '.', '_', '-'.
        name: String,
        /// The vault's id (a UUID); a fresh random one by default. For tests and migrations.
        #[arg(long, hide = true)]
        id: Option<String>,
    },
    /// List your vaults and those shared with you (as OWNER/NAME).
    Ls,
    /// Share a vault with a user (read and write, or --read-only). The right is part of what
    /// you sign for them (with the account's key: asks for the passphrase), and the server
    /// enforces it.
    Share {
        /// Your vault.
        name: String,
        /// The user to share it with (they must have registered).
        user: String,
        /// Pull and ls only: no push, no rm.
        #[arg(long)]
        read_only: bool,
    },
    /// Stop sharing: the user loses access and new writes use new keys (signed with the
    /// account's key: asks for the passphrase).
    Unshare {
        /// Your vault.
        name: String,
        /// The member to remove.
        user: String,
    },
    /// List a vault's members with their rights and key fingerprints.
    Members {
        /// The vault: NAME, or OWNER/NAME for one shared with you.
        name: String,
    },
    /// Remove a vault and everything in it.
    Rm {
        /// Your vault.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCmd {
    /// Print the vault's age identity (all generations), for `age -d -i`.
    ///
    /// Anyone holding it can read the vault: store it as you would the passphrase.
    Export {
        /// Vault: NAME, or OWNER/NAME for one shared with you [default: default].
        #[arg(long)]
        vault: Option<String>,
    },
    /// Register an Ed25519 SSH public key for `enc login --ssh-key`. Asks for the passphrase
    /// when it wraps your account keys to the key (see below).
    AddSsh {
        /// The public key file (e.g. ~/.ssh/id_ed25519.pub). When its private key lies next to
        /// it, your account keys are also wrapped to it, so logins with it need no passphrase.
        public_key: PathBuf,
    },
    /// List registered SSH keys.
    LsSsh,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Invite a user; prints the one-time invitation token alone on stdout (they run
    /// `enc register --token TOKEN` and choose their own passphrase).
    Create {
        /// User name (lower-case letters, digits, '.', '_', '-').
        name: String,
        /// Role from the server's policy (built-in: admin, user).
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// List users with role, state, usage and quota.
    Ls,
    /// Remove a user and everything they own. With --erase, every trace of them leaves the
    /// server: their vaults, backups, restic repositories, Mercury archives, records,
    /// devices, tokens and keys, their membership of others' vaults, and their name from
    /// the audit log (one tombstone entry keeps their id); what they wrote into others'
    /// vaults stays there, attributed to an erased user. Waits for the job and reports what
    /// it removed.
    Rm {
        /// The user.
        name: String,
        /// Erase instead of remove (see above).
        #[arg(long)]
        erase: bool,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Change a user's role.
    SetRole {
        /// The user.
        name: String,
        /// Role from the server's policy (built-in: admin, user).
        role: String,
    },
    /// Set a user's storage quota: a size (10GiB, 500MiB), `unlimited` (or `none`: no limit,
    /// whatever the role's default), or `default` (the role's default again).
    SetQuota {
        /// The user.
        name: String,
        /// SIZE, unlimited, none or default.
        quota: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token; prints it alone on stdout (it is shown only once).
    ///
    /// restic: use it as the password of your enc user name,
    /// `restic -r rest:https://USER:TOKEN@HOST:8443/restic/USER/REPO/ --cacert server.pem init`
    /// (`enc-server cert export` prints the certificate).
    /// Mercury (Hecate): use it as the key, e.g. `AUTH TOKEN` on wss://HOST:8443/ws.
    /// Records: an app's `Authorization: Bearer TOKEN` on /records.
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["restic", "mercury", "records"])))]
    Create {
        /// The restic repository the token reaches (created by `restic init`).
        #[arg(long, value_name = "REPO")]
        restic: Option<String>,
        /// A token for Mercury (Hecate's WebSocket archive protocol): reaches your archives.
        #[arg(long)]
        mercury: bool,
        /// A token for /records (the enc-server-go record routes): reaches your records
        /// (mode full or read-only).
        #[arg(long)]
        records: bool,
        /// What the token may do: everything; append-only (restic: no deletes but of locks,
        /// config never rewritten); or read-only.
        #[arg(long, default_value = "full", value_parser = ["full", "append-only", "read-only"])]
        mode: String,
        /// Lifetime, e.g. 90d, 12h [default: never expires].
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// A label to recognise the token by in `enc token ls`.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List your tokens (never their secrets).
    Ls,
    /// Revoke a token by id; it stops working at once (open Mercury connections end within
    /// seconds).
    Revoke {
        /// The token's id, from `enc token ls` (not the token itself).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ResticCmd {
    /// List your restic repositories with their size.
    Ls,
    /// Delete a restic repository and everything in it.
    Rm {
        /// The repository, as `enc restic ls` lists it.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PassphraseCmd {
    /// Change your passphrase: your account keys are re-wrapped under the new one on this
    /// device; the server only ever sees keys derived from either. The current passphrase
    /// comes from --passphrase-file, ENC_PASSPHRASE or a prompt; the new one from
    /// --new-passphrase-file or a prompt (twice).
    Change {
        /// Read the new passphrase from this file (first line).
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Also end every other session of your account (other devices log in again).
        #[arg(long)]
        end_other_sessions: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SessionCmd {
    /// List your sessions: which device (host name) and client opened each, when, and when
    /// it was last used.
    Ls,
    /// Revoke a session by id; the device using it must log in again.
    Revoke {
        /// The session's id, from `enc session ls`.
        id: String,
    },
}

/// A closed stdout (`enc ls | head -1`) ends the command quietly, as coreutils do (exit
/// status 141, what a shell reports for a process ended by SIGPIPE), instead of a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(ui::exit::BROKEN_PIPE.into());
        }
        default(info);
    }));
}

fn main() -> std::process::ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    ui::set_level(cli.quiet, cli.verbose);
    ui::set_passphrase_file(cli.passphrase_file.clone());
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let status = ui::exit_status(&e);
            if status != ui::exit::BROKEN_PIPE {
                eprintln!("enc: {}", ui::error_line(&e));
            }
            std::process::ExitCode::from(status)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Completions { shell } => return docs::completions(shell),
        Command::Man { ref dir } => return docs::man(dir.as_deref()),
        _ => {}
    }
    let profile = enc_client::Profile::locate()?;
    if !matches!(
        cli.command,
        Command::Register { .. } | Command::Login { .. } | Command::Logout | Command::Status
    ) {
        auth::check_session_matches(&cli, &profile)?;
    }
    let json = cli.json;
    match cli.command {
        Command::Register { ref token } => auth::register(&cli, &profile, token),
        Command::Login { ref ssh_key } => auth::login(&cli, &profile, ssh_key.as_deref()),
        Command::Logout => auth::logout(&profile),
        Command::Status => auth::status(&profile, json),
        Command::Object(ObjectCmd::Push {
            paths,
            vault,
            as_name,
        }) => objects::push(&profile, &paths, vault.as_deref(), as_name.as_deref(), json),
        Command::Object(ObjectCmd::Pull {
            names,
            output,
            vault,
            version,
            raw,
        }) => objects::pull(
            &profile,
            &names,
            output.as_deref(),
            vault.as_deref(),
            version,
            raw,
            json,
        ),
        Command::Object(ObjectCmd::Ls {
            vault,
            long,
            versions,
        }) => objects::ls(&profile, vault.as_deref(), long, json, versions.as_deref()),
        Command::Object(ObjectCmd::Rm { names, vault }) => {
            objects::rm(&profile, &names, vault.as_deref())
        }
        Command::Tree(cmd) => tree::run(&profile, cmd, json),
        Command::Vault(cmd) => admin::vault(&profile, cmd, json),
        Command::Key(cmd) => admin::key(&profile, cmd, json),
        Command::User(cmd) => admin::user(&profile, cmd, json),
        Command::Session(cmd) => admin::session(&profile, cmd, json),
        Command::Device(cmd) => devices::device(&profile, cmd, json),
        Command::Backup(cmd) => devices::backup(&profile, cmd, json),
        Command::Passphrase(PassphraseCmd::Change {
            new_passphrase_file,
            end_other_sessions,
        }) => auth::change_passphrase(
            &profile,
            cli.passphrase_file.as_deref(),
            new_passphrase_file.as_deref(),
            end_other_sessions,
        ),
        Command::Token(cmd) => admin::token(&profile, cmd, json),
        Command::Record(cmd) => records::run(&profile, cmd, json),
        Command::Account(cmd) => account::run(&profile, cmd, json),
        Command::Restic(cmd) => admin::restic(&profile, cmd, json),
        Command::Audit { all, verify } => admin::audit(&profile, all, verify, json),
        Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
    }
}
