//! `enc tree push|diff|pull|ls|rm|mv|prune|log`: a vault as one versioned, signed tree.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use enc_client::tree::{At, ChangeKind, PushOptions, TreePullOptions};
use enc_client::{Account, Profile};
use enc_crypto::tree::Kind;

use crate::ui;

#[derive(Debug, Subcommand)]
pub enum TreeCmd {
    /// Push a directory as the vault's new state: one signed commit of what changed.
    ///
    /// Only what differs from the vault's current tree is sent (size and mtime first, then
    /// the content's keyed hash). Modes, mtimes, symbolic links (as links) and empty
    /// directories are kept. What is gone here stays in the vault unless --delete.
    Push {
        /// The directory whose content becomes the vault's tree.
        dir: PathBuf,
        /// Vault: NAME, or OWNER/NAME for one shared with you [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Also remove from the vault what is gone here (like `rsync --delete`).
        #[arg(long)]
        delete: bool,
        /// Show what would change and send nothing (as `enc tree diff`).
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Show what `enc tree push DIR` would do: + new, M changed, m mode or mtime only, - removed
    /// (with --delete).
    Diff {
        /// The local directory.
        dir: PathBuf,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Count what --delete would remove.
        #[arg(long)]
        delete: bool,
    },
    /// Pull a file, a directory or the whole tree; every piece is checked before it is
    /// written.
    ///
    /// Where it lands follows `cp -r`: `pull docs -o back` makes back/docs when back is a
    /// directory, else back itself; without PATH the whole tree goes into the output
    /// directory. What changed in the vault since the directory last matched it (a pull into
    /// it or a push of it) is brought up to date; what changed here is not overwritten
    /// unless --force.
    Pull {
        /// A path of the tree [default: the whole tree].
        path: Option<String>,
        /// Where to put it (a directory, or for one file also a file name).
        #[arg(short, long, value_name = "DIR", default_value = ".")]
        output: PathBuf,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Overwrite local files, links and directories that differ from the tree.
        #[arg(long)]
        force: bool,
        /// Also remove local files and directories under the landing directory that the
        /// tree does not have (like `rsync --delete`). Those added or changed here since the
        /// directory last matched the vault are removed only with --force as well.
        #[arg(long)]
        delete: bool,
        /// The tree as it was: a commit's number (as `enc tree log` shows it), the start of
        /// its hash (6 hex digits or more), a time (2026-12-06, 2026-12-06T10:30:00Z; UTC
        /// unless it says otherwise: the newest commit made at or before it), or an age
        /// (2h, 3days: that long ago).
        #[arg(long, value_name = "COMMIT|TIME")]
        at: Option<String>,
        /// Write the file's stored age file as it is, not its content: the stock `age -d`
        /// opens it with the identity `enc key export` gives. One file only.
        #[arg(long)]
        raw: bool,
    },
    /// List the tree (or what is under PATH).
    Ls {
        /// A directory or file of the tree.
        path: Option<String>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// The tree as it was (see `enc tree pull --help`).
        #[arg(long, value_name = "COMMIT|TIME")]
        at: Option<String>,
        /// Show mode, size and mtime.
        #[arg(short, long)]
        long: bool,
    },
    /// Remove files, links or directories from the vault's tree (one signed commit).
    ///
    /// A directory is removed with everything in it only when named with a trailing slash
    /// (DIR/) or with --recursive, after a confirmation (or --yes). Earlier commits keep
    /// what was removed: `enc tree pull --at` brings it back.
    Rm {
        /// Paths of the tree.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Remove directories with everything in them.
        #[arg(short, long)]
        recursive: bool,
        /// Do not ask for confirmation before removing a directory.
        #[arg(short, long)]
        yes: bool,
    },
    /// Move or rename paths of the vault's tree (one signed commit; no content is sent again).
    ///
    /// As `mv`: `enc tree mv a b` renames a to b, or moves it into b when b is a directory of
    /// the tree; several sources need a directory.
    Mv {
        /// What to move, then where.
        #[arg(required = true, num_args = 2.., value_name = "PATH")]
        paths: Vec<String>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
    },
    /// Give back the space of content and directories that the newest commits no longer
    /// need (one signed commit that releases them; the server deletes them and lowers your
    /// usage).
    ///
    /// The trees of the newest --keep commits stay whole (`--at` them works); older commits
    /// stay in `enc tree log`, but what only they held is gone. A pack of small files is
    /// given back when none of its pieces is needed any more.
    Prune {
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// How many of the newest commits keep their whole tree.
        #[arg(long, default_value_t = 10, value_name = "N")]
        keep: u64,
    },
    /// List the vault's commits, oldest first: who, from which host, when, how many paths.
    /// Every commit's signature and its link to the one before are checked.
    Log {
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
    },
}

pub fn run(profile: &Profile, cmd: TreeCmd, json: bool) -> anyhow::Result<()> {
    let acct = Account::open(profile.clone())?;
    match cmd {
        TreeCmd::Push {
            dir,
            vault,
            delete,
            dry_run,
        } => push(&acct, &dir, vault.as_deref(), delete, dry_run, json),
        TreeCmd::Diff { dir, vault, delete } => {
            push(&acct, &dir, vault.as_deref(), delete, true, json)
        }
        TreeCmd::Pull {
            path,
            output,
            vault,
            force,
            delete,
            at,
            raw,
        } => {
            let at = at.as_deref().map(parse_at).transpose()?;
            let opts = TreePullOptions {
                path: path.as_deref(),
                dest: &output,
                force,
                delete,
                at: at.as_ref(),
            };
            pull(&acct, vault.as_deref(), &opts, raw, json)
        }
        TreeCmd::Ls {
            path,
            vault,
            long,
            at,
        } => {
            let at = at.as_deref().map(parse_at).transpose()?;
            ls(
                &acct,
                path.as_deref(),
                vault.as_deref(),
                at.as_ref(),
                long,
                json,
            )
        }
        TreeCmd::Rm {
            paths,
            vault,
            recursive,
            yes,
        } => rm(&acct, &paths, vault.as_deref(), recursive, yes, json),
        TreeCmd::Mv { mut paths, vault } => {
            let to = paths.pop().unwrap_or_default();
            let v = acct.vault(vault.as_deref())?;
            let plan = acct.tree_mv_plan(&v, &paths, &to)?;
            commit_edit(&acct, &v, plan, json)
        }
        TreeCmd::Prune { vault, keep } => {
            let v = acct.vault(vault.as_deref())?;
            let done = acct.tree_prune(&v, keep).context("pruning")?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "commit": done.commit.as_ref().map(|c| c.seq),
                        "released": done.released, "kept": done.kept,
                    }))?
                );
            } else {
                match &done.commit {
                    None => println!("nothing to give back ({} blobs kept)", done.kept),
                    Some(c) => println!(
                        "commit {} ({}): {} blobs given back, {} kept",
                        c.seq,
                        c.short(),
                        done.released,
                        done.kept
                    ),
                }
            }
            Ok(())
        }
        TreeCmd::Log { vault } => log(&acct, vault.as_deref(), json),
    }
}

fn mark(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::New => "+",
        ChangeKind::Changed => "M",
        ChangeKind::Metadata => "m",
        ChangeKind::Removed => "-",
    }
}

fn push(
    acct: &Account,
    dir: &Path,
    vault: Option<&str>,
    delete: bool,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let v = acct.vault(vault)?;
    let plan = acct.tree_plan(&v, dir, PushOptions { delete })?;
    for s in &plan.skipped {
        eprintln!("enc: skipping {}: {}", dir.join(&s.path).display(), s.why);
    }
    let counts = [
        ChangeKind::New,
        ChangeKind::Changed,
        ChangeKind::Metadata,
        ChangeKind::Removed,
    ]
    .map(|k| plan.count(k));
    let line = format!(
        "{} new, {} changed, {} metadata only, {} removed, {} unchanged",
        counts[0], counts[1], counts[2], counts[3], plan.unchanged
    );
    if dry_run {
        if json {
            let list: Vec<_> = plan
                .list
                .iter()
                .map(|(k, p)| serde_json::json!({"change": mark(*k), "path": p}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "changes": list, "new": counts[0], "changed": counts[1],
                    "metadata": counts[2], "removed": counts[3], "unchanged": plan.unchanged,
                    "bytes": plan.bytes,
                }))?
            );
        } else {
            for (k, p) in &plan.list {
                println!("{} {p}", mark(*k));
            }
            ui::note!("would send {}: {line}", ui::size(plan.bytes));
        }
        return Ok(());
    }
    let started = std::time::Instant::now();
    let bar = ui::Bar::new(plan.bytes, "push");
    let (bytes, unchanged) = (plan.bytes, plan.unchanged);
    let done = acct.tree_push(&v, plan, &bar);
    bar.finish();
    let done = done.context("pushing the tree")?;
    for c in &done.conflicts {
        eprintln!(
            "enc: {c} was also changed by another push since this one began: this push's version is current, the other is its previous version (`enc tree log`)"
        );
    }
    let (seq, short) = match &done.commit {
        Some(c) => (Some(c.seq), c.short()),
        None => (None, String::new()),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "commit": seq, "hash": done.commit.as_ref().map(|c| hex::encode(c.hash)),
                "new": counts[0], "changed": counts[1], "metadata": counts[2],
                "removed": counts[3], "unchanged": unchanged,
                "sent": done.sent, "conflicts": done.conflicts, "rebased": done.rebased,
            }))?
        );
        return Ok(());
    }
    match seq {
        None => println!("up to date: nothing to push"),
        Some(seq) => println!(
            "commit {seq} ({short}): {line}; {} sent in {:.1} s",
            ui::size(done.sent),
            started.elapsed().as_secs_f64()
        ),
    }
    ui::detail!("{} of file content", ui::size(bytes));
    Ok(())
}

/// `--at`: a commit number, the start of a hash, a time or an age.
fn parse_at(text: &str) -> anyhow::Result<At> {
    let t = text.trim();
    if !t.is_empty() && t.len() < 6 && t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(At::Seq(t.parse()?));
    }
    if t.len() >= 6 && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(At::Hash(t.to_string()));
    }
    let when = if let Ok(d) = humantime::parse_duration(t) {
        std::time::SystemTime::now().checked_sub(d)
    } else if let Ok(when) = humantime::parse_rfc3339_weak(t) {
        Some(when)
    } else if let Ok(when) = humantime::parse_rfc3339_weak(&format!("{t} 00:00:00")) {
        Some(when)
    } else {
        chrono_free_offset(t)
    };
    let Some(when) = when else {
        return Err(ui::usage(format!(
            "--at {text:?}: give a commit number, 6 or more hex digits of a commit hash, a time such as 2026-12-06T10:30:00Z, or an age such as 2h"
        )));
    };
    let ns = match when.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    };
    Ok(At::Time(ns))
}

/// A time with a UTC offset (`2026-12-06T10:30:00+01:00`), which humantime does not read.
fn chrono_free_offset(t: &str) -> Option<std::time::SystemTime> {
    let (base, sign, off) = match t.get(t.len().checked_sub(6)?..)? {
        o if o.starts_with('+') => (&t[..t.len() - 6], 1i64, &o[1..]),
        o if o.starts_with('-') => (&t[..t.len() - 6], -1i64, &o[1..]),
        _ => return None,
    };
    let (h, m) = off.split_once(':')?;
    let secs = sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60);
    let local = humantime::parse_rfc3339_weak(base).ok()?;
    if secs >= 0 {
        local.checked_sub(std::time::Duration::from_secs(secs as u64))
    } else {
        local.checked_add(std::time::Duration::from_secs(secs.unsigned_abs()))
    }
}

fn pull(
    acct: &Account,
    vault: Option<&str>,
    opts: &TreePullOptions<'_>,
    raw: bool,
    json: bool,
) -> anyhow::Result<()> {
    let v = acct.vault(vault)?;
    if raw {
        let bar = ui::Bar::new(0, "pull");
        let done = acct.tree_pull_raw(&v, opts, &bar);
        bar.finish();
        let (dest, len) = done.context("pulling the stored file")?;
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"into": dest, "bytes": len}))?
            );
        } else {
            println!(
                "{} ({}): the stored age file",
                dest.display(),
                ui::size(len)
            );
        }
        return Ok(());
    }
    let plan = acct.tree_pull_plan(&v, opts)?;
    let removed = plan.remove.len();
    let (seq, short, landing) = (
        plan.commit().seq,
        plan.commit().short(),
        plan.landing.clone(),
    );
    let bar = ui::Bar::new(plan.bytes, "pull");
    let done = acct.tree_pull(&v, plan, &bar);
    bar.finish();
    let done = done.context("pulling the tree")?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "commit": seq, "into": landing, "files": done.files, "dirs": done.dirs,
                "links": done.links, "identical": done.identical, "bytes": done.bytes,
                "removed": removed,
            }))?
        );
    } else {
        println!(
            "commit {seq} ({short}) into {}: {} files ({}), {} directories, {} links; {} already there; {removed} removed",
            landing.display(),
            done.files,
            ui::size(done.bytes),
            done.dirs,
            done.links,
            done.identical
        );
    }
    Ok(())
}

/// `drwxr-xr-x`.
fn mode_string(kind: &Kind, mode: u32) -> String {
    let t = match kind {
        Kind::Dir { .. } => 'd',
        Kind::Symlink { .. } => 'l',
        Kind::File { .. } => '-',
    };
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn ls(
    acct: &Account,
    path: Option<&str>,
    vault: Option<&str>,
    at: Option<&At>,
    long: bool,
    json: bool,
) -> anyhow::Result<()> {
    let v = acct.vault(vault)?;
    let tree = acct.tree_at(&v, at)?;
    let path = path.unwrap_or("").trim_matches('/');
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    if !path.is_empty() && !tree.entries.contains_key(path) {
        return Err(ui::usage(format!("no {path:?} in the vault's tree")));
    }
    let rows: Vec<_> = tree
        .entries
        .iter()
        .filter(|(p, _)| p.as_str() == path || p.starts_with(&prefix))
        .collect();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(p, e)| {
                let (kind, size, target) = match &e.kind {
                    Kind::File { size, .. } => ("file", Some(*size), None),
                    Kind::Dir { .. } => ("dir", None, None),
                    Kind::Symlink { target } => ("symlink", None, Some(target.clone())),
                };
                serde_json::json!({"path": p, "kind": kind, "mode": format!("{:o}", e.mode),
                    "mtime_ns": e.mtime_ns, "size": size, "target": target})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for (p, e) in rows {
        let shown = match &e.kind {
            Kind::Dir { .. } => format!("{p}/"),
            Kind::Symlink { target } if long => format!("{p} -> {target}"),
            _ => p.clone(),
        };
        if long {
            let size = match &e.kind {
                Kind::File { size, .. } => size.to_string(),
                _ => "-".into(),
            };
            println!(
                "{}  {size:>12}  {}  {shown}",
                mode_string(&e.kind, e.mode),
                ui::time(e.mtime_ns.div_euclid(1_000_000_000))
            );
        } else {
            println!("{shown}");
        }
    }
    if let Some(c) = &tree.commit {
        ui::detail!("commit {} ({})", c.seq, c.short());
    }
    Ok(())
}

fn rm(
    acct: &Account,
    paths: &[String],
    vault: Option<&str>,
    recursive: bool,
    yes: bool,
    json: bool,
) -> anyhow::Result<()> {
    let v = acct.vault(vault)?;
    let slash = paths.iter().any(|p| p.ends_with('/'));
    let plan = acct.tree_rm_plan(&v, paths, recursive || slash)?;
    let files = plan.count(ChangeKind::Removed);
    if plan.paths() > paths.len() {
        let question = format!(
            "Remove {} from vault {} ({files} files and links)?",
            paths.join(", "),
            v.display_name(acct.user())
        );
        if !yes && !ui::confirm(&question)? {
            anyhow::bail!("not removed (pass --yes to confirm without a terminal)");
        }
    }
    commit_edit(acct, &v, plan, json)
}

/// Commits a plan that only edits the tree (`rm`, `mv`) and says what it did.
fn commit_edit(
    acct: &Account,
    v: &enc_client::VaultCtx,
    plan: enc_client::tree::PushPlan,
    json: bool,
) -> anyhow::Result<()> {
    let (new, removed) = (plan.count(ChangeKind::New), plan.count(ChangeKind::Removed));
    let done = acct
        .tree_push(v, plan, &())
        .context("committing the change")?;
    for c in &done.conflicts {
        eprintln!(
            "enc: {c} was also changed by another push since this one began: this change wins, the other is its previous version (`enc tree log`)"
        );
    }
    let seq = done.commit.as_ref().map(|c| c.seq);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "commit": seq, "hash": done.commit.as_ref().map(|c| hex::encode(c.hash)),
                "added": new, "removed": removed, "conflicts": done.conflicts,
            }))?
        );
        return Ok(());
    }
    match &done.commit {
        None => println!("nothing to change"),
        Some(c) => println!(
            "commit {} ({}): {new} added, {removed} removed",
            c.seq,
            c.short()
        ),
    }
    Ok(())
}

fn log(acct: &Account, vault: Option<&str>, json: bool) -> anyhow::Result<()> {
    let v = acct.vault(vault)?;
    let entries = acct.tree_log(&v)?;
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({"seq": e.commit.seq, "hash": hex::encode(e.commit.hash),
                    "author": e.author, "host": e.host, "time_ns": e.time_ns,
                    "changes": e.changes, "accepted": e.commit.created})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.commit.seq.to_string(),
                e.commit.short(),
                e.author.clone(),
                e.host.clone(),
                ui::time(e.time_ns.div_euclid(1_000_000_000)),
                e.changes.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        ui::note!("no commits yet: `enc tree push DIR` makes the first");
        return Ok(());
    }
    ui::table(&["SEQ", "COMMIT", "AUTHOR", "HOST", "TIME", "PATHS"], &rows);
    Ok(())
}
