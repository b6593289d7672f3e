//! `enc push|sync|diff|pull|ls|rm|mv|log|prune`: a vault as one versioned, signed tree.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use enc_client::tree::{At, ChangeKind, TreePullOptions, tree_path};
use enc_client::{Account, Profile};
use enc_crypto::tree::Kind;

use crate::push::{Target, push};
use crate::{objects, ui};

/// The commands of a vault's tree (at the top level: `enc push`, `enc pull`, …).
#[derive(Debug, Subcommand)]
pub enum TreeCmd {
    /// Encrypt and push files and directories: one signed commit of what changed.
    ///
    /// Only what differs from the vault's current tree is sent (size and mtime first, then
    /// the content's keyed hash): an unchanged file makes no new version. Modes, mtimes,
    /// symbolic links (as links, never followed) and empty directories are kept. What is
    /// gone here stays in the vault unless --delete (or `enc sync`). A vault written by an
    /// enc from before trees gets its files imported into the tree first.
    Push {
        #[command(flatten)]
        target: Target,
        /// Also remove from the vault what is gone here, inside each pushed directory
        /// (like `rsync --delete`).
        #[arg(long)]
        delete: bool,
        /// Show what would change and send nothing (as `enc diff`).
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Make the vault's copy of each directory match it: `enc push --delete`.
    Sync {
        #[command(flatten)]
        target: Target,
        /// Show what would change and send nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Show what `enc push` would do: + new, M changed, m mode or mtime only, - removed
    /// (with --delete).
    Diff {
        #[command(flatten)]
        target: Target,
        /// Count what --delete would remove.
        #[arg(long)]
        delete: bool,
    },
    /// Pull files, directories or the whole tree; every piece is checked before it is
    /// written.
    ///
    /// Where it lands follows `cp -r`: `pull docs -o back` makes back/docs when back is a
    /// directory, else back itself; without PATH the whole tree goes into the output
    /// directory. What changed in the vault since the directory last matched it (a pull into
    /// it or a push of it) is brought up to date; what changed here is not overwritten
    /// unless --force.
    Pull {
        /// Paths of the tree [default: the whole tree].
        paths: Vec<String>,
        /// Where to put them: a directory, or for one file also a file name, or `-` for
        /// standard output.
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
        /// The tree as it was: a commit's number (as `enc log` shows it), the start of its
        /// hash (6 hex digits or more), a time (2026-12-06, 2026-12-06T10:30:00Z; UTC unless
        /// it says otherwise: the newest commit made at or before it), or an age (2h, 3days:
        /// that long ago).
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
        /// The tree as it was (see `enc pull --help`).
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
    /// what was removed: `enc pull --at` brings it back.
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
    /// As `mv`: `enc mv a b` renames a to b, or moves it into b when b is a directory of
    /// the tree; several sources need a directory.
    Mv {
        /// What to move, then where.
        #[arg(required = true, num_args = 2.., value_name = "PATH")]
        paths: Vec<String>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
    },
    /// List the vault's commits, oldest first: who, from which host, when, how many paths.
    ///
    /// With PATH, only the commits that changed it or what is under it: its versions, which
    /// `enc pull PATH --at N` brings back. Every commit's signature and its link to the one
    /// before are checked.
    Log {
        /// A path of the tree.
        path: Option<String>,
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// Check that a commit another device shows (its hash, or the start of it: 6 hex
        /// digits or more) is in the history this device verified; exit 1 if not, which
        /// means the server shows the two devices different histories.
        #[arg(long, value_name = "HASH")]
        verify: Option<String>,
    },
    /// Give back the space of what the newest commits no longer need.
    ///
    /// One signed commit releases it; the server deletes it and lowers your usage at once.
    /// The trees of the newest --keep commits stay whole (`--at` them works); older commits
    /// stay in `enc log`, but what only they held is gone. Small files travel in packs: a
    /// pack goes when no kept commit needs any of it, and one mostly given up first has the
    /// current tree's pieces moved to a new pack (one more commit that changes no file and
    /// stands in for the head it rewrote).
    Prune {
        /// Vault [default: default].
        #[arg(long)]
        vault: Option<String>,
        /// How many of the newest commits keep their whole tree.
        #[arg(long, default_value_t = 10, value_name = "N")]
        keep: u64,
    },
}

pub fn run(profile: &Profile, cmd: TreeCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        TreeCmd::Push {
            target,
            delete,
            dry_run,
        } => push(&acct, &target, delete, dry_run, json),
        TreeCmd::Sync { target, dry_run } => push(&acct, &target, true, dry_run, json),
        TreeCmd::Diff { target, delete } => push(&acct, &target, delete, true, json),
        TreeCmd::Pull {
            paths,
            output,
            vault,
            force,
            delete,
            at,
            raw,
        } => {
            let at = at.as_deref().map(parse_at).transpose()?;
            let v = acct.vault(vault.as_deref())?;
            if at.is_none() && before_trees(&acct, &v)? {
                if delete {
                    return Err(ui::usage(
                        "--delete needs a tree: this vault's files are from before versioned trees (`enc push` imports them)",
                    ));
                }
                let listing: Vec<String> = acct.list(&v)?.into_iter().map(|(n, _)| n).collect();
                let wanted: Vec<&String> = listing
                    .iter()
                    .filter(|n| {
                        paths.is_empty()
                            || paths.iter().any(|p| {
                                let p = p.trim_end_matches('/');
                                *n == p || n.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
                            })
                    })
                    .collect();
                // As a tree pull: nothing here is overwritten unless --force.
                let into_dir = output.is_dir() || wanted.len() > 1;
                for n in wanted
                    .iter()
                    .filter(|_| !force && output.as_os_str() != "-")
                {
                    let dest = if into_dir {
                        output.join(n)
                    } else {
                        output.clone()
                    };
                    if dest.exists() {
                        return Err(ui::usage(format!(
                            "{} exists; nothing was written: pass --force to overwrite it",
                            dest.display()
                        )));
                    }
                }
                let names = if paths.is_empty() {
                    listing.clone()
                } else {
                    paths
                };
                let out = Some(output.as_path());
                return objects::pull(profile, &names, out, vault.as_deref(), None, raw, json);
            }
            if paths.len() > 1 && (raw || output.as_os_str() == "-") {
                return Err(ui::usage("--raw and -o - take one path"));
            }
            if paths.len() > 1 {
                // Several paths land inside the output directory, each under its own name.
                std::fs::create_dir_all(&output)
                    .with_context(|| format!("creating {}", output.display()))?;
            }
            let paths: Vec<Option<&str>> = if paths.is_empty() {
                vec![None]
            } else {
                paths.iter().map(|p| Some(p.as_str())).collect()
            };
            for path in paths {
                let opts = TreePullOptions {
                    path,
                    dest: &output,
                    force,
                    delete,
                    at: at.as_ref(),
                };
                pull(&acct, &v, &opts, raw, json)?;
            }
            Ok(())
        }
        TreeCmd::Ls {
            path,
            vault,
            long,
            at,
        } => {
            let at = at.as_deref().map(parse_at).transpose()?;
            if at.is_none()
                && path.is_none()
                && before_trees(&acct, &acct.vault(vault.as_deref())?)?
            {
                return objects::ls(profile, vault.as_deref(), long, json, None);
            }
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
                        "rewrite": done.rewrite.as_ref().map(|c| c.seq), "moved": done.moved,
                    }))?
                );
            } else {
                if let Some(c) = &done.rewrite {
                    println!(
                        "commit {} ({}): {} pieces moved out of packs mostly given up, which go once no kept commit needs them",
                        c.seq,
                        c.short(),
                        done.moved
                    );
                }
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
        TreeCmd::Log {
            path,
            vault,
            verify: Some(hash),
        } => {
            if path.is_some() {
                return Err(ui::usage("--verify takes no PATH"));
            }
            verify(&acct, vault.as_deref(), &hash, json)
        }
        TreeCmd::Log {
            path,
            vault,
            verify: None,
        } => log(&acct, path.as_deref(), vault.as_deref(), json),
    }
}

/// A vault written by an enc from before trees, not pushed to since: it is read through its
/// objects until the first push imports them.
fn before_trees(acct: &Account, v: &enc_client::VaultCtx) -> anyhow::Result<bool> {
    if acct.objects_to_import(v)? == 0 {
        return Ok(false);
    }
    ui::note!(
        "vault {} holds files stored before versioned trees: read as they are; the next `enc push` to it imports them",
        v.display_name(acct.user())
    );
    Ok(true)
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
    v: &enc_client::VaultCtx,
    opts: &TreePullOptions<'_>,
    raw: bool,
    json: bool,
) -> anyhow::Result<()> {
    if opts.dest.as_os_str() == "-" {
        if json || raw {
            return Err(ui::usage(
                "-o - writes the file's content to standard output: no --json or --raw with it",
            ));
        }
        let Some(path) = opts.path else {
            return Err(ui::usage("-o - takes one file: name it"));
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        let bar = ui::Bar::new(0, path);
        let got = acct.tree_cat(v, path, opts.at, &mut out, &bar);
        bar.finish();
        let got = got.with_context(|| format!("pulling {path}"));
        if let Err(e) = &got
            && !ui::broken_pipe(e)
        {
            eprintln!("enc: what was written to stdout is incomplete or not the vault's file");
        }
        got?;
        return Ok(());
    }
    if raw {
        let bar = ui::Bar::new(0, "pull");
        let done = acct.tree_pull_raw(v, opts, &bar);
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
    let plan = acct.tree_pull_plan(v, opts)?;
    let removed = plan.remove.len();
    let (seq, short, landing) = (
        plan.commit().seq,
        plan.commit().short(),
        plan.landing.clone(),
    );
    let bar = ui::Bar::new(plan.bytes, "pull");
    let done = acct.tree_pull(v, plan, &bar);
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
    if v.info.objects > 0 && tree.commit.is_some() && at.is_none() {
        ui::note!(
            "vault {} also holds {} objects from before its tree: `enc object ls` lists them, `enc object rm` gives back their space",
            v.display_name(acct.user()),
            v.info.objects
        );
    }
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
            "enc: {c} was also changed by another push since this one began: this change wins, the other is its previous version (`enc log`)"
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

/// `enc log --verify HASH`: whether another device's commit is in this device's history.
fn verify(acct: &Account, vault: Option<&str>, hash: &str, json: bool) -> anyhow::Result<()> {
    let want = hash.trim().to_ascii_lowercase();
    if want.len() < 6 || want.len() > 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ui::usage(format!(
            "--verify {hash:?}: give 6 to 64 hex digits of a commit hash"
        )));
    }
    let v = acct.vault(vault)?;
    let entries = acct.tree_log(&v)?;
    let head = entries.last().map(|e| e.commit.short()).unwrap_or_default();
    let Some(found) = entries
        .iter()
        .find(|e| hex::encode(e.commit.hash).starts_with(&want))
    else {
        anyhow::bail!(
            "commit {want} is not in the history of vault {} that this device verified (its head: {}): if another device shows it, the server is showing the two devices different histories",
            v.display_name(acct.user()),
            if head.is_empty() { "none" } else { &head }
        );
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "seq": found.commit.seq, "hash": hex::encode(found.commit.hash), "in_history": true,
            }))?
        );
    } else {
        println!(
            "commit {} ({}) is in this device's verified history (head {head})",
            found.commit.seq,
            found.commit.short()
        );
    }
    Ok(())
}

fn log(acct: &Account, path: Option<&str>, vault: Option<&str>, json: bool) -> anyhow::Result<()> {
    let v = acct.vault(vault)?;
    let mut entries = acct.tree_log(&v)?;
    if let Some(p) = path {
        let p = tree_path(p).map_err(|e| ui::usage(format!("{p:?}: {e}")))?;
        let under = format!("{p}/");
        entries.retain(|e| e.paths.iter().any(|c| *c == p || c.starts_with(&under)));
        if entries.is_empty() {
            return Err(ui::usage(format!("no commit changed {p:?}")));
        }
    }
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({"seq": e.commit.seq, "hash": hex::encode(e.commit.hash),
                    "author": e.author, "host": e.host, "time_ns": e.time_ns,
                    "changes": e.paths.len(), "accepted": e.commit.created})
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
                e.paths.len().to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        ui::note!("no commits yet: `enc push DIR` makes the first");
        return Ok(());
    }
    ui::table(&["SEQ", "COMMIT", "AUTHOR", "HOST", "TIME", "PATHS"], &rows);
    Ok(())
}
