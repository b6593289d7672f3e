//! `enc object push|pull|ls|rm`: the single objects of vaults from before trees.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use enc_client::{Profile, PullOptions};

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

/// Collects the regular files under `dir` as (path, object name), sorted. What cannot be
/// read or is not a regular file is reported on stderr and counted in `skipped`.
fn walk(
    dir: &Path,
    base: &str,
    out: &mut Vec<(PathBuf, String)>,
    skipped: &mut usize,
) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>(),
        Err(e) => Err(e),
    };
    let mut entries = match entries {
        Ok(e) => e,
        Err(e) => {
            eprintln!("enc: skipping {}: {e}", dir.display());
            *skipped += 1;
            return Ok(());
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        let file_name = e.file_name();
        let file_name = file_name
            .to_str()
            .with_context(|| format!("{} is not UTF-8", e.path().display()))?;
        let name = format!("{base}/{file_name}");
        if ft.is_dir() {
            walk(&e.path(), &name, out, skipped)?;
        } else if ft.is_file() {
            out.push((e.path(), name));
        } else {
            // Symbolic links, sockets, FIFOs and devices are not stored yet: say so, and let
            // the exit status say that not everything asked for was pushed.
            eprintln!("enc: skipping {} (not a regular file)", e.path().display());
            *skipped += 1;
        }
    }
    Ok(())
}

/// The path that stands for standard input or output.
fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// `3.2 s, 41.0 MiB/s` for `-v`.
fn rate(bytes: u64, took: std::time::Duration) -> String {
    let secs = took.as_secs_f64().max(1e-6);
    format!(
        "{:.2} s, {}/s",
        secs,
        ui::size((bytes as f64 / secs) as u64)
    )
}

pub fn push(
    profile: &Profile,
    paths: &[PathBuf],
    vault: Option<&str>,
    as_name: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    if paths.iter().any(|p| is_dash(p)) && (paths.len() != 1 || as_name.is_none()) {
        return Err(ui::usage(
            "`-` (standard input) is pushed alone and needs a name: enc object push - --as NAME",
        ));
    }
    let mut files = Vec::new();
    let mut skipped = 0;
    for p in paths {
        if is_dash(p) {
            files.push((p.clone(), as_name.unwrap_or_default().to_string()));
            continue;
        }
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            if as_name.is_some() {
                return Err(ui::usage(format!(
                    "--as names a single file, but {} is a directory",
                    p.display()
                )));
            }
            walk(p, &name_of(p)?, &mut files, &mut skipped)?;
        } else {
            let name = match as_name {
                Some(n) => n.to_string(),
                None => name_of(p)?,
            };
            files.push((p.clone(), name));
        }
    }
    if as_name.is_some() && files.len() != 1 {
        return Err(ui::usage(format!(
            "--as names a single file; {} were given",
            files.len()
        )));
    }
    for (_, name) in &files {
        enc_client::validate_name(name).map_err(|e| {
            let shown: String = name.chars().take(60).collect();
            anyhow::anyhow!(
                "{e}: {shown:?}{}",
                if shown.len() < name.len() { "…" } else { "" }
            )
        })?;
    }
    let acct = ui::account(profile)?;
    let v = acct.vault(vault)?;
    let (mut done, mut failed) = (Vec::new(), skipped);
    let (mut total, started) = (0u64, std::time::Instant::now());
    for (path, name) in &files {
        let t = std::time::Instant::now();
        let (ver, len) = if is_dash(path) {
            let bar = ui::Bar::new(0, name);
            let ver = acct.push_from(&v, std::io::stdin(), "standard input", name, &bar);
            bar.finish();
            let ver = ver.context("pushing standard input")?;
            let len = plain(ver.size);
            (ver, len)
        } else {
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let bar = ui::Bar::new(len, name);
            let ver = acct.push(&v, path, name, &bar);
            bar.finish();
            match ver {
                Ok(ver) => (ver, len),
                // A file that cannot be read is skipped, as restic does; whatever the server
                // refuses (quota, session, rights) would refuse the rest too.
                Err(e @ enc_client::ClientError::Io { .. }) => {
                    eprintln!("enc: skipping {}: {e}", path.display());
                    failed += 1;
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("pushing {}", path.display())),
            }
        };
        total += len;
        ui::detail!("{name}: {}", rate(len, t.elapsed()));
        if !json {
            println!("{name}\tversion {}\t{}", ver.version, ui::size(len));
        }
        done.push(serde_json::json!({"name": name, "version": ver.version, "size": len, "stored_size": ver.size, "id": ver.id}));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    }
    if done.len() > 1 || failed > 0 {
        ui::note!(
            "pushed {} files, {} in {}",
            done.len(),
            ui::size(total),
            rate(total, started.elapsed())
        );
    }
    if failed > 0 {
        return Err(ui::Partial {
            failed,
            total: done.len() + failed,
            what: "files were not pushed",
        }
        .into());
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
    json: bool,
) -> anyhow::Result<()> {
    let to_stdout = output.is_some_and(is_dash);
    if to_stdout && json {
        return Err(ui::usage(
            "--json and -o - both want stdout: pull into a file to get JSON",
        ));
    }
    let acct = ui::account(profile)?;
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
            bail!("no object named {n:?}; `enc object ls` lists them");
        }
        wanted.extend(
            under
                .into_iter()
                .map(|(name, ver)| (name.clone(), plain(ver.size), true)),
        );
    }
    let many = wanted.len() > 1 || wanted.iter().any(|w| w.2);
    if version.is_some() && many {
        return Err(ui::usage("--version applies to a single object"));
    }
    if to_stdout {
        if many {
            return Err(ui::usage(
                "-o - writes one object to standard output; name a single object",
            ));
        }
        let (name, size, _) = &wanted[0];
        let bar = ui::Bar::new(*size, name);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        let got = acct.pull_to(&v, name, version, raw, &mut out, &bar);
        bar.finish();
        let got = got.with_context(|| format!("pulling {name}"));
        if let Err(e) = &got
            && !ui::broken_pipe(e)
        {
            eprintln!("enc: what was written to stdout is incomplete or not the stored version");
        }
        let got = got?;
        ui::note!("{name} (version {}) -> standard output", got.version);
        return Ok(());
    }
    let (mut done, mut failed) = (Vec::new(), 0);
    for (name, size, _) in &wanted {
        let dest = match output {
            Some(o) if many || o.is_dir() => {
                if many && o.exists() && !o.is_dir() {
                    return Err(ui::usage(format!(
                        "{} is not a directory, but several objects were asked for",
                        o.display()
                    )));
                }
                o.join(name)
            }
            Some(o) => o.to_path_buf(),
            None => PathBuf::from(name),
        };
        let t = std::time::Instant::now();
        let bar = ui::Bar::new(*size, name);
        let opts = PullOptions {
            version,
            raw,
            dest: &dest,
        };
        let got = acct.pull(&v, name, &opts, &bar);
        bar.finish();
        let got = match got {
            Ok(got) => got,
            // One damaged or unwritable object does not stop the others.
            Err(
                e @ (enc_client::ClientError::Integrity(_) | enc_client::ClientError::Io { .. }),
            ) if many => {
                eprintln!("enc: {name}: {e}");
                failed += 1;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("pulling {name}")),
        };
        ui::detail!("{name}: {}", rate(*size, t.elapsed()));
        ui::note!("{name} (version {}) -> {}", got.version, dest.display());
        done.push(
            serde_json::json!({"name": name, "version": got.version, "size": size, "path": dest}),
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    }
    if failed > 0 {
        return Err(ui::Partial {
            failed,
            total: wanted.len(),
            what: "objects were not pulled",
        }
        .into());
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
    let acct = ui::account(profile)?;
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
            let rows: Vec<Vec<String>> = vs
                .iter()
                .map(|x| {
                    vec![
                        x.version.to_string(),
                        ui::size(plain(x.size)),
                        ui::time(x.created),
                        x.author.clone(),
                    ]
                })
                .collect();
            ui::table(&["VERSION", "SIZE", "CREATED", "AUTHOR"], &rows);
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
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|(n, x)| {
                vec![
                    x.version.to_string(),
                    ui::size(plain(x.size)),
                    ui::time(x.created),
                    x.author.clone(),
                    n.clone(),
                ]
            })
            .collect();
        ui::table(&["VERSION", "SIZE", "CREATED", "AUTHOR", "NAME"], &rows);
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
    let acct = ui::account(profile)?;
    let v = acct.vault(vault)?;
    for n in names {
        acct.remove(&v, n)?;
        ui::note!("removed {n}");
    }
    Ok(())
}
