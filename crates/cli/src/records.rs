//! `enc record put|get|rm`: records sealed on this machine under a fresh key that only you
//! keep, in the format of the server's `/records` routes, so a key from either opens the
//! record through the other. The server never sees the plaintext or the key.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use enc_client::Profile;

use crate::ui;

#[derive(Debug, Subcommand)]
pub enum RecordCmd {
    /// Seal a file (at most the server's record size, 64 KiB by default) under a fresh
    /// 256-bit key and store it. Prints `ID KEY`: keep the key, the server does not.
    Put {
        /// The file; `-` reads standard input.
        file: PathBuf,
        /// The record's id, in hex (1–128 bytes) [default: 16 random bytes].
        #[arg(long, value_name = "HEX")]
        id: Option<String>,
    },
    /// Fetch a record and open it with its key (the server gets only a proof of the key).
    Get {
        /// The record's id (hex).
        id: String,
        #[command(flatten)]
        key: KeyArgs,
        /// Output file, or `-` for standard output.
        #[arg(short, long, value_name = "PATH", default_value = "-")]
        output: PathBuf,
    },
    /// Delete a record, proving that you hold its key.
    Rm {
        /// The record's id (hex).
        id: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// Where the record's key comes from.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The key (64 hex digits). On the command line it is visible to other users of this
    /// machine (their process list): prefer --key-file or the environment.
    #[arg(
        long,
        value_name = "HEX",
        env = "ENC_RECORD_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// A file holding the key.
    #[arg(long, value_name = "PATH", conflicts_with = "key")]
    key_file: Option<PathBuf>,
}

impl KeyArgs {
    fn key(&self) -> anyhow::Result<enc_crypto::record::RecordKey> {
        let text = match (&self.key, &self.key_file) {
            (_, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the key from {}", path.display()))?,
            (Some(k), None) => k.clone(),
            (None, None) => anyhow::bail!(
                "the record's key is needed: --key-file FILE, ENC_RECORD_KEY or --key HEX"
            ),
        };
        Ok(enc_client::records::record_key(text.trim())?)
    }
}

fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_end(&mut data)?;
    } else {
        data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(data)
}

pub fn run(profile: &Profile, cmd: RecordCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        RecordCmd::Put { file, id } => {
            let data = read_input(&file)?;
            let id = match id {
                Some(id) => enc_client::records::record_id(&id)?,
                None => enc_client::records::random_id(),
            };
            let key = enc_client::records::put(&acct, &id, &data)?;
            if json {
                println!("{}", serde_json::json!({ "id": id, "key": key }));
            } else {
                println!("{id} {key}");
                ui::note!(
                    "record {id} stored ({} bytes); keep its key: the server does not have it",
                    data.len()
                );
            }
        }
        RecordCmd::Get { id, key, output } => {
            let plain = enc_client::records::get(&acct, &id, &key.key()?)?;
            if output.as_os_str() == "-" {
                std::io::stdout().lock().write_all(&plain)?;
            } else {
                std::fs::write(&output, &plain)
                    .with_context(|| format!("writing {}", output.display()))?;
            }
        }
        RecordCmd::Rm { id, key } => {
            enc_client::records::remove(&acct, &id, &key.key()?)?;
            ui::note!("record {id} deleted");
        }
    }
    Ok(())
}
