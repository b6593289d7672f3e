//! `enc account export DIR`: everything your account can read, decrypted and verified, with
//! a manifest.

use std::path::PathBuf;

use clap::Subcommand;
use enc_client::Profile;

use crate::ui;

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Write everything this account can read into a new directory, decrypted and checked
    /// as `enc pull` and `enc backup get` check it: each vault's tree (or its objects) under
    /// vaults/OWNER/NAME, your backups under backups/DEVICE, each restic repository as a
    /// local repository under restic/NAME, and manifest.json naming every file with its size
    /// and SHA-256, and what could not be exported (records, Mercury archives) with how to
    /// get it.
    Export {
        /// A directory that does not exist yet, or is empty.
        dir: PathBuf,
    },
}

pub fn run(profile: &Profile, cmd: AccountCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        AccountCmd::Export { dir } => {
            let bar = ui::Bar::open_ended("export");
            let m = acct.export(&dir, &bar);
            bar.finish();
            let m = m?;
            let bytes: u64 = m.files.iter().map(|f| f.size).sum();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "dir": dir,
                        "vaults": m.vaults.len(),
                        "backups": m.backups.len(),
                        "restic": m.restic.len(),
                        "files": m.files.len(),
                        "bytes": bytes,
                        "not_exported": m.not_exported,
                    })
                );
            } else {
                println!("{}", dir.join("manifest.json").display());
                ui::note!(
                    "exported {} vaults, {} backups and {} restic repositories: {} files, \
                     {bytes} bytes",
                    m.vaults.len(),
                    m.backups.len(),
                    m.restic.len(),
                    m.files.len()
                );
                for what in &m.not_exported {
                    ui::note!("not exported: {what}");
                }
            }
        }
    }
    Ok(())
}
