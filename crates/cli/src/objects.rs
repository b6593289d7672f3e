//! `enc push`, `pull`, `ls`, `rm`.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use enc_client::{Account, Profile, PullOptions};

use crate::ui;

/// The object name of a path: its relative form, or its file name when absolute.
fn name_of(path: &Path) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    let relative = path.is_relative();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .with_context(|| format!("{} is not UTF-8", path.display()))?
                    .to_string(),
            ),
            Component::CurDir => {}
            Component::ParentDir if relative => bail!(
                "{} goes up with '..'; give it as an absolute path or use --as NAME",
                path.display()
            ),
            _ => {}
        }
    }
    if !relative {
        parts = parts.split_off(parts.len().saturating_sub(1));
    }
    if parts.is_empty() {
        bail!(
            "cannot derive an object name from {}; use --as NAME",
            path.display()
        );
    }
    Ok(parts.join("/"))
}

fn walk(dir: &Path, base: &str, out: &mut Vec<(PathBuf, String)>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        let file_name = e.file_name();
        let file_name = file_name
            .to_str()
            .with_context(|| format!("{} is not UTF-8", e.path().display()))?;
        let name = format!("{base}/{file_name}");
        if ft.is_dir() {
            walk(&e.path(), &name, out)?;
        } else if ft.is_file() {
            out.push((e.path(), name));
        } else {
            eprintln!("skipping {} (not a regular file)", e.path().display());
        }
    }
    Ok(())
}

pub fn push(
    profile: &Profile,
    paths: &[PathBuf],
    vault: Option<&str>,
    as_name: Option<&str>,
) -> anyhow::Result<()> {
    let acct = Account::open(profile.clone())?;
    let v = acct.vault(vault)?;
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            if as_name.is_some() {
                bail!(
                    "--as names a single file, but {} is a directory",
                    p.display()
                );
            }
            walk(p, &name_of(p)?, &mut files)?;
        } else {
            let name = match as_name {
                Some(n) => n.to_string(),
                None => name_of(p)?,
            };
            files.push((p.clone(), name));
        }
    }
    if as_name.is_some() && files.len() != 1 {
        bail!("--as names a single file; {} were given", files.len());
    }
    for (path, name) in &files {
        enc_client::validate_name(name).map_err(|e| {
            let shown: String = name.chars().take(60).collect();
            anyhow::anyhow!(
                "{e}: {shown:?}{}",
                if shown.len() < name.len() { "…" } else { "" }
            )
        })?;
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let bar = ui::Bar::new(len, name);
        let ver = acct.push(&v, path, name, &bar);
        bar.finish();
        let ver = ver.with_context(|| format!("pushing {}", path.display()))?;
        println!("{name}\tversion {}\t{}", ver.version, ui::size(len));
    }
    Ok(())
}

pub fn pull(
    profile: &Profile,
    names: &[String],
    output: Option<&Path>,
    vault: Option<&str>,
    version: Option<u64>,
    raw: bool,
) -> anyhow::Result<()> {
    let acct = Account::open(profile.clone())?;
    let v = acct.vault(vault)?;
    // Expand directory prefixes into the names under them.
    let listing = acct.list(&v)?;
    let mut wanted: Vec<(String, u64, bool)> = Vec::new();
    for n in names {
        let n = n.trim_end_matches('/');
        if let Some((_, ver)) = listing.iter().find(|(name, _)| name == n) {
            wanted.push((n.to_string(), plain(ver.size), false));
            continue;
        }
        let prefix = format!("{n}/");
        let under: Vec<_> = listing
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .collect();
        if under.is_empty() {
            bail!("no object named {n:?}; `enc ls` lists them");
        }
        wanted.extend(
            under
                .into_iter()
                .map(|(name, ver)| (name.clone(), plain(ver.size), true)),
        );
    }
    let many = wanted.len() > 1 || wanted.iter().any(|w| w.2);
    if version.is_some() && many {
        bail!("--version applies to a single object");
    }
    for (name, size, _) in &wanted {
        let dest = match output {
            Some(o) if many || o.is_dir() => {
                if many && o.exists() && !o.is_dir() {
                    bail!(
                        "{} is not a directory, but several objects were asked for",
                        o.display()
                    );
                }
                o.join(name)
            }
            Some(o) => o.to_path_buf(),
            None => PathBuf::from(name),
        };
        let bar = ui::Bar::new(*size, name);
        let opts = PullOptions {
            version,
            raw,
            dest: &dest,
        };
        let got = acct.pull(&v, name, &opts, &bar);
        bar.finish();
        let got = got.with_context(|| format!("pulling {name}"))?;
        eprintln!("{name} (version {}) -> {}", got.version, dest.display());
    }
    Ok(())
}

pub fn ls(
    profile: &Profile,
    vault: Option<&str>,
    long: bool,
    json: bool,
    versions: Option<&str>,
) -> anyhow::Result<()> {
    let acct = Account::open(profile.clone())?;
    let v = acct.vault(vault)?;
    if let Some(name) = versions {
        let vs = acct.versions(&v, name)?;
        if vs.is_empty() {
            bail!("no object named {name:?}");
        }
        if json {
            let rows: Vec<_> = vs
                .iter()
                .map(|x| serde_json::json!({"name": name, "id": x.id, "version": x.version, "size": plain(x.size), "stored_size": x.size, "hash": x.hash, "created": x.created, "author": x.author}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            for x in &vs {
                println!(
                    "{}\t{}\t{}\t{}",
                    x.version,
                    ui::size(plain(x.size)),
                    ui::time(x.created),
                    x.author
                );
            }
        }
        return Ok(());
    }
    let list = acct.list(&v)?;
    if json {
        let rows: Vec<_> = list
            .iter()
            .map(|(n, x)| serde_json::json!({"name": n, "id": x.id, "version": x.version, "size": plain(x.size), "stored_size": x.size, "hash": x.hash, "created": x.created, "author": x.author}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if long {
        for (n, x) in &list {
            println!(
                "{:>4}  {:>10}  {}  {:<12}  {n}",
                x.version,
                ui::size(plain(x.size)),
                ui::time(x.created),
                x.author
            );
        }
    } else {
        for (n, _) in &list {
            println!("{n}");
        }
    }
    Ok(())
}

/// The plaintext size of an object stored as `stored` bytes of age (what `push` reported);
/// the stored size itself for anything that is not an age file of enc's.
fn plain(stored: u64) -> u64 {
    enc_client::plaintext_len(stored).unwrap_or(stored)
}

pub fn rm(profile: &Profile, names: &[String], vault: Option<&str>) -> anyhow::Result<()> {
    let acct = Account::open(profile.clone())?;
    let v = acct.vault(vault)?;
    for n in names {
        acct.remove(&v, n)?;
        eprintln!("removed {n}");
    }
    Ok(())
}
