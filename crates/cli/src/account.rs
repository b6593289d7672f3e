//! `enc account export DIR`: everything your account can read, decrypted and verified, with
//! a manifest; `enc account delete`: the account erased from the server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use enc_client::{Api, Profile};
use enc_proto::ErasureInfo;

use crate::ui;

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Write everything this account can read into a new directory, decrypted and checked
    /// as `enc pull` and `enc backup get` check it: each vault's tree (or its objects) under
    /// vaults/OWNER/NAME, your backups under backups/DEVICE, each restic repository as a
    /// local repository under restic/NAME, your Mercury (Hecate) archives as stored under
    /// mercury/NAME, and manifest.json naming every file with its size and SHA-256, and what
    /// could not be exported (records: only your keys open them) with how to get it.
    Export {
        /// A directory that does not exist yet, or is empty.
        dir: PathBuf,
    },
    /// Erase this account from the server: every vault you own, every object, version and
    /// blob, your backups, restic repositories, Mercury archives, records, devices, tokens,
    /// sessions and keys, your membership of others' vaults, and your name from the audit
    /// log. What you wrote into others' vaults stays there (it is theirs), attributed to an
    /// erased user. Asks for the passphrase; cannot be undone (run `enc account export`
    /// first). Waits for the server to finish and reports what it removed.
    Delete {
        /// Do not ask for confirmation (the passphrase is still needed).
        #[arg(long, short)]
        yes: bool,
    },
}

pub fn run(profile: &Profile, cmd: AccountCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        AccountCmd::Delete { yes } => {
            let user = acct.user().to_string();
            if !yes
                && !ui::confirm(&format!(
                    "Erase account {user} and everything it owns from {}? This cannot be undone",
                    acct.session.server
                ))?
            {
                bail!("not erased (pass --yes to confirm without a terminal)");
            }
            let passphrase = ui::passphrase(ui::passphrase_file())?;
            let (api, job) = acct.erase_account(&passphrase)?;
            follow(&api, &job, json)?;
        }
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
                        "mercury": m.mercury.len(),
                        "files": m.files.len(),
                        "bytes": bytes,
                        "not_exported": m.not_exported,
                    })
                );
            } else {
                println!("{}", dir.join("manifest.json").display());
                ui::note!(
                    "exported {} vaults, {} backups, {} restic repositories and {} Mercury \
                     archives: {} files, {bytes} bytes",
                    m.vaults.len(),
                    m.backups.len(),
                    m.restic.len(),
                    m.mercury.len(),
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

/// Follows erasure `job` to its end with a progress line, then reports what it removed.
pub fn follow(api: &Api, job: &ErasureInfo, json: bool) -> anyhow::Result<()> {
    let bar = ui::Bar::steps("erasing");
    let done = enc_client::follow_erasure(api, &job.id, Duration::from_secs(600), |j| {
        bar.set_message(&j.step)
    });
    bar.finish();
    let done = done?;
    if json {
        println!("{}", serde_json::to_string(&done)?);
    } else {
        for (what, n) in &done.removed {
            println!("{what}\t{n}");
        }
    }
    if done.state != "done" {
        bail!(
            "the server is still erasing (job {}, at step {}); it will finish on its own",
            done.id,
            done.step
        );
    }
    ui::note!(
        "erased: what they wrote into others' vaults is now attributed to {}",
        done.label
    );
    for (what, n) in done.left.iter().filter(|(_, n)| **n > 0) {
        let why = match what.as_str() {
            "audit_entries_left_naming" => {
                "audit entries written before this version of enc-server still name them (their \
                 hash covers the name)"
            }
            "commits_left_naming" => {
                "commits a push in flight signed into others' vaults still name them"
            }
            _ => "left naming them",
        };
        ui::note!("warning: {n} {why}");
    }
    Ok(())
}
