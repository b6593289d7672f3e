//! `enc push`, `enc sync`, `enc diff`: where pushed paths land in the tree (`cp -r`'s rule,
//! `--to`, `--as`, `-` for standard input), the import of a vault from before trees, and the
//! summary of what a push did.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::Context as _;
use enc_client::Account;
use enc_client::tree::{ChangeKind, PushOptions, Source, check_sources, tree_path};

use crate::ui;

/// Where pushed paths land: shared by push, sync and diff.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Files or directories. Each lands in the vault as `cp -r` would put it: `photos`
    /// becomes photos/, `report.pdf` report.pdf; `.` (or DIR/.) makes the directory's
    /// content the vault's tree itself. `-` reads standard input (with --as NAME).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Vault: NAME, or OWNER/NAME for one shared with you [default: default].
    #[arg(long)]
    pub vault: Option<String>,
    /// A directory of the vault to put them in, instead of its top.
    #[arg(long, value_name = "DIR")]
    pub to: Option<String>,
    /// The name one file (or `-`) gets in the vault.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
}

fn mark(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::New => "+",
        ChangeKind::Changed => "M",
        ChangeKind::Metadata => "m",
        ChangeKind::Removed => "-",
    }
}

/// The sources a push names, each with the path of the tree it lands at; the temporary
/// directory holding standard input, if `-` was given.
fn sources(t: &Target) -> anyhow::Result<(Vec<Source>, Option<tempfile::TempDir>)> {
    let to = match t.to.as_deref() {
        None => String::new(),
        Some(d) if d.trim_matches('/').is_empty() => String::new(),
        Some(d) => tree_path(d).map_err(|e| ui::usage(format!("--to {d:?}: {e}")))?,
    };
    if t.as_name.is_some() && t.paths.len() != 1 {
        return Err(ui::usage("--as names one file: give one PATH"));
    }
    // NAME (or a path's own name) under --to: one tree path, checked name by name.
    let under = |name: &str, what: &dyn std::fmt::Display| {
        tree_path(&format!("{to}/{name}")).map_err(|e| ui::usage(format!("{what}: {e}")))
    };
    let as_dest = match &t.as_name {
        Some(name) => Some(under(name, &format_args!("--as {name:?}"))?),
        None => None,
    };
    let mut out = Vec::new();
    let mut stdin = None;
    for path in &t.paths {
        if path.as_os_str() == "-" {
            let Some(dest) = as_dest.clone() else {
                return Err(ui::usage("`-` (standard input) needs --as NAME"));
            };
            let dir = tempfile::Builder::new()
                .prefix(".enc-stdin-")
                .tempdir()
                .context("creating a temporary directory")?;
            let file = dir.path().join("stdin");
            let mut f = std::fs::File::create(&file).context("spooling standard input")?;
            std::io::copy(&mut std::io::stdin().lock(), &mut f)
                .context("reading standard input")?;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            out.push(Source { local: file, dest });
            stdin = Some(dir);
            continue;
        }
        let raw = path.as_os_str().as_bytes();
        // `.`, `DIR/.`, `/`: the directory's content, as `cp -r DIR/. DEST` copies it.
        let content = raw == b"." || raw.ends_with(b"/.") || path.file_name().is_none();
        let dest = if let Some(dest) = &as_dest {
            dest.clone()
        } else if content {
            to.clone()
        } else {
            let name = path.file_name().unwrap_or_default();
            let name = name
                .to_str()
                .ok_or_else(|| ui::usage(format!("{}: the name is not UTF-8", path.display())))?;
            under(name, &path.display())?
        };
        out.push(Source {
            local: path.clone(),
            dest,
        });
    }
    Ok((out, stdin))
}

/// A vault written before trees becomes one first: its objects are the first commit.
fn import(acct: &Account, v: &enc_client::VaultCtx, n: usize, json: bool) -> anyhow::Result<()> {
    ui::note!(
        "vault {} holds {n} files stored before versioned trees: importing them as its first commit",
        v.display_name(acct.user())
    );
    let bar = ui::Bar::new(0, "import");
    let done = acct.import_objects(v, &bar);
    bar.finish();
    let done = done.context("importing the vault's files into its tree")?;
    for s in &done.skipped {
        eprintln!(
            "enc: not imported: {}: {} (still readable with `enc object pull`)",
            s.path, s.why
        );
    }
    if done.push.commit.is_none() {
        ui::note!("another device made the vault's first commit meanwhile: its tree stands");
    }
    if let (Some(c), false) = (&done.push.commit, json) {
        println!(
            "commit {} ({}): {} files imported",
            c.seq,
            c.short(),
            done.files
        );
    }
    Ok(())
}

pub fn push(
    acct: &Account,
    target: &Target,
    delete: bool,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let v = acct.vault(target.vault.as_deref())?;
    let name = v.display_name(acct.user());
    if v.info.access == "read" {
        return Err(anyhow::anyhow!(
            "vault {name} is shared with you read-only: pushing needs write access"
        ));
    }
    let (sources, _stdin) = sources(target)?;
    // What the push names is checked before anything is imported or sent.
    for s in &sources {
        std::fs::metadata(&s.local).with_context(|| format!("reading {}", s.local.display()))?;
    }
    check_sources(&sources)?;
    let to_import = acct.objects_to_import(&v)?;
    if to_import > 0 && delete {
        return Err(ui::usage(format!(
            "vault {name} holds {to_import} files stored before versioned trees: run `enc push` without --delete first (it imports them as the tree's first commit), then `enc sync`"
        )));
    }
    if to_import > 0 && dry_run {
        ui::note!(
            "a push would first import the {to_import} files vault {name} holds from before versioned trees (commit 1); below, what it would do after that"
        );
    } else if to_import > 0 {
        import(acct, &v, to_import, json)?;
    }
    let plan = acct.tree_plan(&v, &sources, PushOptions { delete })?;
    for s in &plan.skipped {
        eprintln!("enc: skipping /{}: {}", s.path, s.why);
    }
    let skipped = plan.skipped.len();
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
            "enc: {c} was also changed by another push since this one began: this push's version is current, the other is its previous version (`enc log`)"
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
                "skipped": skipped,
            }))?
        );
        return partial(skipped, unchanged + counts.iter().sum::<u64>());
    }
    match seq {
        None => println!("up to date: nothing to push"),
        Some(seq) => println!(
            "commit {seq} ({short}): {line}; {} sent in {:.1} s",
            ui::size(done.sent),
            started.elapsed().as_secs_f64()
        ),
    }
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    ui::detail!(
        "{} of file content, {} sent at {}/s",
        ui::size(bytes),
        ui::size(done.sent),
        ui::size((done.sent as f64 / secs) as u64)
    );
    partial(skipped, unchanged + counts.iter().sum::<u64>())
}

/// Exit status 3 when the walk skipped what it could not keep (named on stderr above).
fn partial(skipped: usize, kept: u64) -> anyhow::Result<()> {
    if skipped == 0 {
        return Ok(());
    }
    Err(ui::Partial {
        failed: skipped,
        total: skipped + kept as usize,
        what: "paths were skipped",
    }
    .into())
}
