//! `enc device` (this account's devices, certified and revoked by signed links of the account
//! chain) and `enc backup` (device backups, signed by this device).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use enc_client::Profile;

use crate::ui;

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// List your devices: name, key fingerprint, created, last seen, sessions and tokens, and
    /// whether (at which link of the account chain) one was revoked. Checked against the
    /// account chain your account key signed.
    Ls,
    /// Rename a device (its certificate keeps the name it was certified with).
    Rename {
        /// The device: its id, a unique id prefix, or its name.
        device: String,
        /// The new name (1–64 characters).
        name: String,
    },
    /// Revoke a device: its sessions and tokens stop working at once (on other replicas
    /// within 2 s), and the server refuses its signatures from then on. What it signed before
    /// stays valid: the revocation is a signed link of the account chain.
    ///
    /// A revoked device keeps what it already read, and the account's X25519 key it held.
    /// Asks for the passphrase: the revocation is signed with the account's key.
    Revoke {
        /// The device: its id, a unique id prefix, or its name.
        device: String,
    },
    /// Certify an Ed25519 key generated elsewhere (an app's) as a device of yours, and print
    /// a token of kind `backups` for it (shown once): the app signs its backups with its own
    /// key and authenticates with the token, and never needs your passphrase. Asks for
    /// yours: the certificate is signed with the account's key.
    Add {
        /// The app's public key: an OpenSSH `ssh-ed25519 …` line, or the base64 of the 32
        /// raw bytes.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// A name for the device (1–64 characters).
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Encrypt a file to your account key and store it as this device's next signed backup.
    /// Prints the backup's id.
    Put {
        /// The file; `-` reads standard input.
        file: PathBuf,
        /// Data classification: Internal, Confidential or Restricted (signed: the server
        /// cannot relabel it).
        #[arg(long = "class", value_name = "CLASS", default_value = "Internal",
            value_parser = ["Internal", "Confidential", "Restricted"])]
        class: String,
    },
    /// List your backups, newest first.
    Ls {
        /// Only this device's (an id).
        #[arg(long)]
        device: Option<String>,
        /// Only this classification.
        #[arg(long = "class", value_name = "CLASS",
            value_parser = ["Internal", "Confidential", "Restricted"])]
        class: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Fetch a backup, verify it (its device's signature and certificate, the device's whole
    /// chain, the content's hash) and decrypt it.
    Get {
        /// The backup's id (from `enc backup ls`).
        id: String,
        /// Output file, or `-` for standard output.
        #[arg(short, long, value_name = "PATH", default_value = "-")]
        output: PathBuf,
        /// Write the content as stored (an app's backup, or the age file of yours).
        #[arg(long)]
        raw: bool,
    },
    /// Delete a backup's content, with a tombstone this device signs into its chain.
    Rm {
        /// The backup's id.
        id: String,
    },
    /// Backups and bytes per day and classification, for the whole server (admins; no
    /// content is read).
    Usage,
}

pub fn device(profile: &Profile, cmd: DeviceCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        DeviceCmd::Ls => {
            let devices = acct.devices()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = devices
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.name.clone(),
                        enc_crypto::device::key_fingerprint(&d.public_key),
                        ui::time(d.created),
                        ui::time(d.last_seen),
                        d.sessions.len().to_string(),
                        d.tokens.len().to_string(),
                        match (d.revoked_seq, d.current) {
                            (Some(seq), _) => format!("revoked (link {seq})"),
                            (None, true) => "this device".into(),
                            (None, false) => String::new(),
                        },
                    ]
                })
                .collect();
            ui::table(
                &[
                    "ID",
                    "NAME",
                    "KEY",
                    "CREATED",
                    "LAST SEEN",
                    "SESSIONS",
                    "TOKENS",
                    "",
                ],
                &rows,
            );
        }
        DeviceCmd::Rename { device, name } => {
            let d = acct.rename_device(&device, &name)?;
            eprintln!("device {} renamed {name}", d.id);
        }
        DeviceCmd::Revoke { device } => {
            let (d, ended) = acct.revoke_device(&device)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ended)?);
            }
            eprintln!(
                "device {} ({}, key {}) revoked: {} session(s) and {} token(s) ended",
                d.name,
                d.id,
                enc_crypto::device::key_fingerprint(&d.public_key),
                ended.sessions,
                ended.tokens
            );
            if acct.session.device_id.as_deref() == Some(d.id.as_str()) {
                eprintln!("that was this device: run `enc login` to use enc here again");
                profile.clear_session()?;
            }
        }
        DeviceCmd::Add { public_key, name } => {
            let text = std::fs::read_to_string(&public_key)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let key = enc_client::devices::parse_public_key(&text)?;
            let (d, token) = acct.add_device(&key, &name)?;
            if json {
                let out = serde_json::json!({ "device": d, "token": token });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{token}");
                eprintln!(
                    "device {} ({}) certified; its token of kind backups is above (shown once)",
                    d.name, d.id
                );
            }
        }
    }
    Ok(())
}

pub fn backup(profile: &Profile, cmd: BackupCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        BackupCmd::Put { file, class } => {
            let stored = if file.as_os_str() == "-" {
                acct.backup_put(std::io::stdin().lock(), &class)?
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                acct.backup_put(f, &class)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&stored)?);
            } else {
                println!("{}", stored.id);
                eprintln!(
                    "backup #{} of this device stored ({}, {})",
                    stored.counter,
                    ui::size(stored.size),
                    stored.classification
                );
            }
        }
        BackupCmd::Ls {
            device,
            class,
            limit,
        } => {
            let list = acct.backup_list(device.as_deref(), class.as_deref(), limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|b| {
                    vec![
                        b.id.clone(),
                        b.device.clone(),
                        b.counter.to_string(),
                        b.classification.clone(),
                        ui::size(b.size),
                        ui::time(b.created),
                    ]
                })
                .collect();
            ui::table(&["ID", "DEVICE", "#", "CLASS", "SIZE", "CREATED"], &rows);
        }
        BackupCmd::Get { id, output, raw } => {
            let info = if output.as_os_str() == "-" {
                let mut out = std::io::stdout();
                let info = acct.backup_get(&id, &mut out, raw)?;
                out.flush()?;
                info
            } else {
                // Written next to the output and renamed only once everything checked out.
                let dir = output
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                let mut tmp = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| format!("writing into {}", dir.display()))?;
                let info = acct.backup_get(&id, &mut tmp, raw)?;
                tmp.as_file().sync_all()?;
                tmp.persist(&output)
                    .with_context(|| format!("writing {}", output.display()))?;
                info
            };
            if json {
                eprintln!("{}", serde_json::to_string(&info)?);
            } else if !ui::quiet() {
                eprintln!(
                    "backup {} verified (device {}, #{}, {})",
                    info.id, info.device, info.counter, info.classification
                );
            }
        }
        BackupCmd::Rm { id } => {
            let gone = acct.backup_rm(&id)?;
            eprintln!(
                "backup {} deleted ({} given back)",
                gone.id,
                ui::size(gone.size)
            );
        }
        BackupCmd::Usage => {
            let rows = acct.backup_usage()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.day.clone(),
                        r.classification.clone(),
                        r.backups.to_string(),
                        ui::size(r.bytes),
                    ]
                })
                .collect();
            ui::table(&["DAY", "CLASS", "BACKUPS", "BYTES"], &rows);
        }
    }
    Ok(())
}
