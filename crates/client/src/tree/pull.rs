//! `enc pull`: a directory of a vault's tree (or all of it, or one file) into a local
//! directory, with `cp -r`'s rule for where it lands. Everything that would be overwritten is
//! checked before anything is written; each file is written to a temporary name beside its
//! place and renamed there once its content checked out; links come last, and directories
//! get their modes and mtimes after what is in them.

use std::collections::HashMap;
use std::fs::{File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use enc_crypto::tree::{Entry, Kind, Piece};
use enc_proto::{ReadRange, ReadRequest};

use super::upload::Hashing;
use super::{Commit, Want, vault_path};
use crate::direct::DirectOut;
use crate::ops::{Account, VaultCtx};
use crate::transfer::{ChannelReader, Progress};
use crate::{ClientError, Result};

/// Where a pull lands: a path of the tree (or the whole tree) and a local directory.
pub struct TreePullOptions<'a> {
    /// A file or directory of the tree; the whole tree when `None` or empty.
    pub path: Option<&'a str>,
    /// Where it goes: into `dest` when `dest` is a directory that exists (as `cp -r`),
    /// else as `dest`. The whole tree always goes into `dest`.
    pub dest: &'a Path,
    /// Overwrite local files that differ.
    pub force: bool,
    /// The tree as it was at this commit (the head when `None`).
    pub at: Option<&'a super::At>,
    /// Also remove what is under the landing directory but not in the tree (`rsync
    /// --delete`); only for a directory.
    pub delete: bool,
}

/// What a pull will write, checked against what is already there.
pub struct PullPlan {
    commit: Commit,
    /// The tree's path being pulled (empty: all of it).
    path: String,
    /// Where the pulled path lands.
    pub landing: PathBuf,
    /// Whether the whole tree is pulled (into `landing`).
    whole: bool,
    /// (local path, entry, already there as it should be) in tree order: a directory
    /// before what it holds.
    writes: Vec<(PathBuf, Entry, bool)>,
    /// Local paths in the way that `force` allows replacing.
    replace: Vec<PathBuf>,
    /// Local paths the tree does not have, removed with `delete`.
    pub remove: Vec<PathBuf>,
    /// Files already there with the right content.
    pub identical: u64,
    /// Plaintext bytes to fetch.
    pub bytes: u64,
}

impl PullPlan {
    /// The commit being pulled.
    pub fn commit(&self) -> &Commit {
        &self.commit
    }
}

/// What a pull wrote.
#[derive(Debug, Default)]
pub struct PullSummary {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    /// Files that were already there with the right content.
    pub identical: u64,
    /// Plaintext bytes written.
    pub bytes: u64,
}

fn time_of(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Mode bits to restore: setuid and setgid are dropped (a pulled file must not gain powers).
fn safe_mode(mode: u32) -> u32 {
    mode & 0o1777
}

/// Whether what is at `local` already is `e` (a file's content id decides when its size
/// matches and its mtime does not).
fn same(v: &VaultCtx, local: &Path, meta: &std::fs::Metadata, e: &Entry) -> Result<bool> {
    Ok(match &e.kind {
        Kind::Dir { .. } => meta.is_dir(),
        Kind::Symlink { target } => {
            meta.file_type().is_symlink()
                && std::fs::read_link(local).is_ok_and(|t| t.as_os_str() == target.as_str())
        }
        Kind::File { size, piece } => {
            if !meta.is_file() || meta.len() != *size {
                false
            } else if meta.mtime() * 1_000_000_000 + meta.mtime_nsec() == e.mtime_ns {
                true
            } else {
                super::local_cid(v, local)? == piece.cid
            }
        }
    })
}

/// Whether `local` (with `meta`) is still what `tree_path` was in `then`, the tree the
/// directory last matched: for a directory, everything in it too.
fn as_synced(
    v: &VaultCtx,
    then: &super::Tree,
    local: &Path,
    tree_path: &str,
    meta: &std::fs::Metadata,
) -> Result<bool> {
    let Some(old) = then.entries.get(tree_path) else {
        return Ok(false);
    };
    if !same(v, local, meta, old)? {
        return Ok(false);
    }
    if !meta.is_dir() {
        return Ok(true);
    }
    let (inside, skipped) = crate::scan::scan(local)
        .map_err(ClientError::io(format!("reading {}", local.display())))?;
    if !skipped.is_empty() {
        return Ok(false);
    }
    for l in inside {
        let p = local.join(&l.path);
        let m = std::fs::symlink_metadata(&p)
            .map_err(ClientError::io(format!("reading {}", p.display())))?;
        match then.entries.get(&super::join(tree_path, &l.path)) {
            Some(old) if same(v, &p, &m, old)? => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The key of a directory's record: the vault, then a hash keyed by the vault's key of the
/// tree's path and the directory's real path, so the profile does not list which local
/// directories mirror which paths of which vault.
fn sync_key(v: &VaultCtx, path: &str, landing: &Path) -> String {
    let real = real_path(landing);
    let mut h = v.keys.cid_hasher();
    h.update(b"enc sync record v1\0");
    h.update(path.as_bytes());
    h.update(b"\0");
    h.update(real.as_os_str().as_encoded_bytes());
    format!("{}:{}", v.info.id, h.finalize().to_hex())
}

/// The key the build before keyed records used: kept to find its records once.
fn plain_sync_key(v: &VaultCtx, path: &str, landing: &Path) -> String {
    format!("{}:{path}:{}", v.info.id, real_path(landing).display())
}

fn real_path(landing: &Path) -> PathBuf {
    std::fs::canonicalize(landing).unwrap_or_else(|_| landing.to_path_buf())
}

/// Writes a file through a temporary name in its directory, with its mode and mtime.
fn write_file(path: &Path, e: &Entry, fill: impl FnOnce(&File) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".enc-pull-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(ClientError::io(format!(
            "creating a temporary file in {}",
            dir.display()
        )))?;
    let f = tmp.as_file();
    fill(f)?;
    let what = || ClientError::io(format!("writing {}", path.display()));
    f.set_permissions(std::fs::Permissions::from_mode(safe_mode(e.mode)))
        .map_err(what())?;
    f.set_times(FileTimes::new().set_modified(time_of(e.mtime_ns)))
        .map_err(what())?;
    tmp.persist(path).map_err(|err| ClientError::Io {
        context: format!("writing {}", path.display()),
        source: err.error,
    })?;
    Ok(())
}

/// Flushes the filesystem that holds `path` (a pulled file or directory) to disk.
fn sync_fs(path: &Path) -> Result<()> {
    let at = if path.is_dir() {
        path
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    let dir = File::open(at).map_err(ClientError::io(format!("opening {}", at.display())))?;
    rustix::fs::syncfs(&dir)
        .map_err(|e| ClientError::io(format!("syncing {}", at.display()))(e.into()))
}

/// Removes a file, link or directory (with what it holds); what is already gone (below
/// something removed before) is fine.
fn remove_any(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(());
        }
        other => other.map_err(ClientError::io(format!("reading {}", path.display())))?,
    };
    let r = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.map_err(ClientError::io(format!("removing {}", path.display())))
}

impl Account {
    /// Reads the vault's verified tree and works out what a pull writes where, refusing (unless
    /// `force`) when a local file, link or directory in the way differs from the tree.
    pub fn tree_pull_plan(&self, v: &VaultCtx, opts: &TreePullOptions<'_>) -> Result<PullPlan> {
        let tree = self.tree_at(v, opts.at)?;
        let Some(commit) = tree.commit.clone() else {
            return Err(ClientError::Usage(format!(
                "vault {} has no tree yet: `enc push DIR` makes one",
                v.display_name(self.user())
            )));
        };
        let path = opts.path.unwrap_or("").trim_matches('/');
        let mut selected: Vec<(PathBuf, Entry)> = Vec::new();
        let mut paths: Vec<&str> = Vec::new();
        let landing;
        if path.is_empty() {
            landing = opts.dest.to_path_buf();
            for (p, e) in &tree.entries {
                selected.push((landing.join(p), e.clone()));
                paths.push(p);
            }
        } else {
            let top = tree.entries.get(path).ok_or_else(|| {
                ClientError::Usage(format!(
                    "no {path:?} in the vault's tree; `enc ls` lists it"
                ))
            })?;
            landing = if opts.dest.is_dir() {
                opts.dest.join(&top.name)
            } else {
                opts.dest.to_path_buf()
            };
            selected.push((landing.clone(), top.clone()));
            paths.push(path);
            let prefix = format!("{path}/");
            for (p, e) in tree.entries.range(prefix.clone()..) {
                if !p.starts_with(&prefix) {
                    break;
                }
                selected.push((landing.join(&p[prefix.len()..]), e.clone()));
                paths.push(p);
            }
        }
        let is_dir = path.is_empty()
            || matches!(
                selected.first(),
                Some((
                    _,
                    Entry {
                        kind: Kind::Dir { .. },
                        ..
                    }
                ))
            );
        let mut remove = Vec::new();
        if opts.delete && is_dir && landing.is_dir() {
            let wanted: std::collections::HashSet<&Path> =
                selected.iter().map(|(p, _)| p.as_path()).collect();
            let (local, _) = crate::scan::scan(&landing)
                .map_err(ClientError::io(format!("reading {}", landing.display())))?;
            // Shallowest first: a directory removed takes what is in it along.
            for l in local {
                let full = landing.join(&l.path);
                if !wanted.contains(full.as_path())
                    && !remove.last().is_some_and(|r: &PathBuf| full.starts_with(r))
                {
                    remove.push(full);
                }
            }
        }
        let mut plan = PullPlan {
            commit,
            path: path.to_string(),
            remove,
            whole: path.is_empty(),
            landing,
            writes: Vec::with_capacity(selected.len()),
            replace: Vec::new(),
            identical: 0,
            bytes: 0,
        };
        let mut differ = Vec::new();
        for ((local, e), tree_path) in selected.into_iter().zip(paths) {
            let mut there = false;
            match std::fs::symlink_metadata(&local) {
                // Below a file in the way (which is then replaced): not there either.
                Err(err)
                    if err.kind() == io::ErrorKind::NotFound
                        || err.raw_os_error() == Some(libc::ENOTDIR) => {}
                Err(err) => {
                    return Err(ClientError::Io {
                        context: format!("reading {}", local.display()),
                        source: err,
                    });
                }
                Ok(meta) => {
                    if same(v, &local, &meta, &e)? {
                        there = true;
                        if let Kind::File { .. } = e.kind {
                            plan.identical += 1;
                        }
                    } else {
                        differ.push((local.clone(), tree_path, meta));
                    }
                }
            }
            if let Kind::File { size, .. } = e.kind {
                plan.bytes += size;
            }
            plan.writes.push((local, e, there));
        }
        if (!differ.is_empty() || !plan.remove.is_empty()) && !opts.force {
            // What differs from the tree but is as this directory last matched (a pull or a
            // push) changed in the vault, not here: that is what a pull is for. Anything
            // else is a local change. Without a record, all that differs is; what --delete
            // removes is then the caller's explicit choice.
            let then = self.synced_tree(v, path, &plan.landing)?;
            let mut changed: Vec<&Path> = Vec::new();
            for (local, tree_path, meta) in &differ {
                let kept = match &then {
                    None => false,
                    Some(then) => as_synced(v, then, local, tree_path, meta)?,
                };
                if !kept {
                    changed.push(local);
                }
            }
            if let Some(then) = &then {
                for local in &plan.remove {
                    let rel = local.strip_prefix(&plan.landing).unwrap_or(local);
                    let tree_path = super::join(path, &rel.to_string_lossy());
                    let meta = std::fs::symlink_metadata(local)
                        .map_err(ClientError::io(format!("reading {}", local.display())))?;
                    if !as_synced(v, then, local, &tree_path, &meta)? {
                        changed.push(local);
                    }
                }
            }
            if let Some(first) = changed.first() {
                return Err(ClientError::Usage(format!(
                    "{} local path(s) would be overwritten or removed that differ from what this directory last matched in the vault (first: {}); nothing was written: pass --force to overwrite them",
                    changed.len(),
                    first.display()
                )));
            }
        }
        plan.replace = differ.into_iter().map(|(local, _, _)| local).collect();
        Ok(plan)
    }

    /// The tree `landing` last matched for `path` of the vault (`None`: no record, or its
    /// commit is no longer whole).
    fn synced_tree(&self, v: &VaultCtx, path: &str, landing: &Path) -> Result<Option<super::Tree>> {
        let config = self.profile.config()?;
        let synced = config.pins.get(&self.session.server).map(|p| &p.synced);
        let Some(hash) = synced.and_then(|s| {
            s.get(&sync_key(v, path, landing))
                .or_else(|| s.get(&plain_sync_key(v, path, landing)))
        }) else {
            return Ok(None);
        };
        match self.tree_at(v, Some(&super::At::Hash(hash.clone()))) {
            Ok(tree) => Ok(Some(tree)),
            Err(ClientError::Usage(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Remembers that `landing` now matches `path` of the vault at `commit`.
    pub(crate) fn remember_sync(
        &self,
        v: &VaultCtx,
        path: &str,
        landing: &Path,
        commit: &Commit,
    ) -> Result<()> {
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        pins.synced.remove(&plain_sync_key(v, path, landing));
        pins.synced
            .insert(sync_key(v, path, landing), hex::encode(commit.hash));
        self.profile.save_config(&config)
    }

    /// Carries out a pull plan: directories, then files (small ones many per request, large
    /// ones streamed), then links, then the directories' modes and mtimes, deepest first.
    pub fn tree_pull(
        &self,
        v: &VaultCtx,
        plan: PullPlan,
        progress: &dyn Progress,
    ) -> Result<PullSummary> {
        let mut summary = PullSummary {
            identical: plan.identical,
            ..PullSummary::default()
        };
        for local in plan.replace.iter().chain(&plan.remove) {
            remove_any(local)?;
        }
        let top = if plan.whole {
            Some(plan.landing.as_path())
        } else {
            plan.landing.parent().filter(|p| !p.as_os_str().is_empty())
        };
        if let Some(top) = top {
            std::fs::create_dir_all(top)
                .map_err(ClientError::io(format!("creating {}", top.display())))?;
        }
        // Directories first, open to us while we fill them.
        for (local, e, _) in &plan.writes {
            if let Kind::Dir { .. } = e.kind {
                match std::fs::create_dir(local) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists && local.is_dir() => {
                        // A directory an earlier pull left without owner write: open it while
                        // it is filled (its mode is set again at the end).
                        if let Ok(m) = std::fs::symlink_metadata(local)
                            && m.is_dir()
                            && m.permissions().mode() & 0o700 != 0o700
                        {
                            std::fs::set_permissions(
                                local,
                                std::fs::Permissions::from_mode(m.permissions().mode() | 0o700),
                            )
                            .map_err(ClientError::io(format!("opening {}", local.display())))?;
                        }
                    }
                    Err(err) => {
                        return Err(ClientError::Io {
                            context: format!("creating {}", local.display()),
                            source: err,
                        });
                    }
                }
                summary.dirs += 1;
            } else if let Some(parent) = local.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(ClientError::io(format!("creating {}", parent.display())))?;
            }
        }
        // Files: what is already there only gets its mode and mtime; the rest is fetched.
        let mut small: Vec<(&PathBuf, &Entry, &Piece)> = Vec::new();
        for (local, e, there) in &plan.writes {
            let Kind::File { size, piece } = &e.kind else {
                continue;
            };
            if *there {
                // Read-only is enough to set mode and times as their owner (and works on a
                // file whose mode forbids writing).
                let f = File::options()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(local)
                    .map_err(ClientError::io(format!("opening {}", local.display())))?;
                f.set_permissions(std::fs::Permissions::from_mode(safe_mode(e.mode)))
                    .and_then(|()| f.set_times(FileTimes::new().set_modified(time_of(e.mtime_ns))))
                    .map_err(ClientError::io(format!("writing {}", local.display())))?;
                progress.advance(*size);
                continue;
            }
            if piece.loc.len < super::PACK as u64 / 4 {
                small.push((local, e, piece));
            } else {
                self.pull_large(v, local, e, piece, progress)?;
                summary.files += 1;
                summary.bytes += size;
            }
        }
        // Small files: one request for many; a piece named by several paths is read once.
        let mut unique: Vec<&Piece> = Vec::new();
        let mut index: HashMap<(&str, u64), usize> = HashMap::new();
        let mut of_file = Vec::with_capacity(small.len());
        for (_, _, piece) in &small {
            let key = (piece.loc.blob.as_str(), piece.loc.offset);
            let i = *index.entry(key).or_insert_with(|| {
                unique.push(piece);
                unique.len() - 1
            });
            of_file.push(i);
        }
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); unique.len()];
        for (f, i) in of_file.iter().enumerate() {
            users[*i].push(f);
        }
        let wants: Vec<Want<'_>> = unique.iter().map(|p| Want::from(*p)).collect();
        let read = self.read_pieces_par(v, &wants, |i, plain| {
            for &f in &users[i] {
                let (local, e, _) = small[f];
                write_file(local, e, |mut out| {
                    out.write_all(&plain)
                        .map_err(ClientError::io(format!("writing {}", local.display())))
                })?;
                progress.advance(plain.len() as u64);
            }
            Ok(())
        });
        if let Err(e) = read {
            let files: Vec<_> = small.iter().map(|(l, _, p)| (l.display(), *p)).collect();
            return Err(self.name_unreadable(v, &files, e));
        }
        for (_, e, _) in &small {
            if let Kind::File { size, .. } = e.kind {
                summary.files += 1;
                summary.bytes += size;
            }
        }
        // Links, then directories' modes and mtimes, deepest first.
        for (local, e, there) in &plan.writes {
            if let Kind::Symlink { target } = &e.kind {
                if *there {
                    continue;
                }
                if std::fs::symlink_metadata(local).is_ok() {
                    remove_any(local)?;
                }
                std::os::unix::fs::symlink(target, local).map_err(ClientError::io(format!(
                    "creating link {}",
                    local.display()
                )))?;
                summary.links += 1;
            }
        }
        for (local, e, _) in plan.writes.iter().rev() {
            if let Kind::Dir { .. } = e.kind {
                let what = ClientError::io(format!("setting the mode of {}", local.display()));
                std::fs::set_permissions(local, std::fs::Permissions::from_mode(safe_mode(e.mode)))
                    .map_err(what)?;
                if let Ok(d) = File::open(local) {
                    d.set_times(FileTimes::new().set_modified(time_of(e.mtime_ns)))
                        .map_err(ClientError::io(format!(
                            "setting the mtime of {}",
                            local.display()
                        )))?;
                }
            }
        }
        // What was written reaches the disk before the directory is recorded as matching the
        // commit: a large file was synced on its own; small files, links and directories by
        // one `syncfs` for the whole pull rather than an `fsync` each.
        if !small.is_empty() || summary.links + summary.dirs > 0 {
            sync_fs(&plan.landing)?;
        }
        self.remember_sync(v, &plan.path, &plan.landing, &plan.commit)?;
        Ok(summary)
    }

    /// The stored age file of one file of the tree, as it is (`--raw`): the stock `age -d`
    /// opens it with the vault's exported identity. Written under a temporary name and put in
    /// place (into `dest` when that is a directory, as NAME.age) once its hash matched the
    /// tree's. Returns where it went and its size.
    pub fn tree_pull_raw(
        &self,
        v: &VaultCtx,
        opts: &TreePullOptions<'_>,
        progress: &dyn Progress,
    ) -> Result<(PathBuf, u64)> {
        let tree = self.tree_at(v, opts.at)?;
        let path = super::tree_path(opts.path.unwrap_or(""))?;
        let Some(e) = tree.entries.get(&path) else {
            return Err(ClientError::Usage(format!(
                "no {path:?} in the vault's tree; `enc ls` lists it"
            )));
        };
        let Kind::File { piece, .. } = &e.kind else {
            return Err(ClientError::Usage(format!(
                "{path:?} is not a file: --raw gives one file's stored age file"
            )));
        };
        let dest = if opts.dest.is_dir() {
            opts.dest.join(format!("{}.age", e.name))
        } else {
            opts.dest.to_path_buf()
        };
        if dest.exists() && !opts.force {
            return Err(ClientError::Usage(format!(
                "{} exists; nothing was written: pass --force to overwrite it",
                dest.display()
            )));
        }
        let raw = Entry {
            mode: 0o600,
            ..e.clone()
        };
        write_file(&dest, &raw, |mut out| {
            self.stream_piece(v, piece, &path, |source| {
                let n = io::copy(source, &mut out)
                    .map_err(ClientError::io(format!("writing {}", dest.display())))?;
                progress.advance(n);
                Ok(())
            })?;
            out.sync_data()
                .map_err(ClientError::io(format!("writing {}", dest.display())))
        })?;
        Ok((dest, piece.loc.len))
    }

    /// Streams one large piece into its file, checking its ciphertext hash and content id.
    fn pull_large(
        &self,
        v: &VaultCtx,
        local: &Path,
        e: &Entry,
        piece: &Piece,
        progress: &dyn Progress,
    ) -> Result<()> {
        let what = local.display().to_string();
        write_file(local, e, |f| {
            // Around the page cache, as an object pull writes (BENCHMARKS.md, "Core").
            let mut out = DirectOut::new(f);
            self.decrypt_piece(v, piece, &what, &mut out, progress)?;
            out.finish()
                .and_then(|()| f.sync_data())
                .map_err(ClientError::io(format!("writing {what}")))
        })
    }

    /// One file of the tree, decrypted, into `out` (`enc pull PATH -o -`). Each chunk is
    /// authenticated before it is written, but whether the whole is the content the tree
    /// names is known only at the end: an error then means the output must not be used.
    /// Returns the file's size.
    pub fn tree_cat(
        &self,
        v: &VaultCtx,
        path: &str,
        at: Option<&super::At>,
        out: &mut (dyn Write + Send),
        progress: &dyn Progress,
    ) -> Result<u64> {
        let tree = self.tree_at(v, at)?;
        let path = super::tree_path(path)?;
        let (piece, size) = match tree.entries.get(&path).map(|e| &e.kind) {
            Some(Kind::File { piece, size }) => (piece, size),
            Some(_) => {
                return Err(ClientError::Usage(format!(
                    "{path:?} is not a file: standard output takes one file"
                )));
            }
            None => {
                return Err(ClientError::Usage(format!(
                    "no {path:?} in the vault's tree; `enc ls` lists it"
                )));
            }
        };
        self.decrypt_piece(v, piece, &path, out, progress)?;
        out.flush().map_err(ClientError::io("writing the output"))?;
        Ok(*size)
    }

    /// Streams one piece, decrypted, into `out`, checking its ciphertext hash and content id.
    fn decrypt_piece(
        &self,
        v: &VaultCtx,
        piece: &Piece,
        what: &str,
        out: &mut (dyn Write + Send),
        progress: &dyn Progress,
    ) -> Result<()> {
        // The content id is hashed on a thread of its own while this one writes: a large
        // pull then costs what an object pull did (BENCHMARKS.md, "Core").
        let (to_hash, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        // Buffers come back once hashed, so the copies reuse memory instead of mapping more.
        let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
        let returned = std::sync::Mutex::new(returned);
        let mut cid = v.keys.cid_hasher();
        // A failed write is the output's fault (a full disk, a closed pipe), not the data's.
        let mut written = Ok(());
        let (streamed, cid) = std::thread::scope(|scope| {
            let hashing = scope.spawn(move || {
                for c in chunks {
                    cid.update(&c);
                    let _ = give_back.send(c);
                }
                cid.finalize()
            });
            let streamed = self.stream_piece(v, piece, what, |source| {
                let ids = v.keys.age_identities();
                enc_crypto::decrypt_stream(&ids, source, 2, |plain| {
                    // The hashing thread ends only when this side does: a send cannot fail
                    // before then, and a failure is caught by the content check anyway.
                    let mut buf = returned
                        .lock()
                        .ok()
                        .and_then(|r| r.try_recv().ok())
                        .unwrap_or_default();
                    buf.clear();
                    buf.extend_from_slice(plain);
                    let _ = to_hash.send(buf);
                    progress.advance(plain.len() as u64);
                    out.write_all(plain).inspect_err(|e| {
                        written = Err(io::Error::new(e.kind(), e.to_string()));
                    })
                })
                .map(|_| ())
                .map_err(|e| {
                    if let Err(w) = std::mem::replace(&mut written, Ok(())) {
                        return ClientError::io("writing the output")(w);
                    }
                    let m = match e {
                        enc_crypto::DecryptFailure::Header(e) => e.to_string(),
                        enc_crypto::DecryptFailure::Payload(e) => e.to_string(),
                    };
                    ClientError::Integrity(format!("{what}: {m} (stored data changed)"))
                })
            });
            drop(to_hash);
            let cid = hashing
                .join()
                .unwrap_or_else(|_| blake3::Hasher::new().finalize());
            (streamed, cid)
        });
        streamed?;
        if cid.as_bytes() != &piece.cid {
            return Err(ClientError::Integrity(format!(
                "{what}: the stored piece holds other content than the tree names"
            )));
        }
        Ok(())
    }

    /// Streams one piece's stored bytes through `consume` on this thread while another
    /// fetches them, reads what `consume` left, and checks length and hash against the tree
    /// (`what` names the piece in errors).
    fn stream_piece<T>(
        &self,
        v: &VaultCtx,
        piece: &Piece,
        what: &str,
        consume: impl FnOnce(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        let req = ReadRequest {
            ranges: vec![ReadRange {
                blob: piece.loc.blob.clone(),
                offset: piece.loc.offset,
                len: piece.loc.len,
            }],
        };
        let route = format!("{}/read", vault_path(v));
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (fetched, consumed, hasher, read) = std::thread::scope(|scope| {
            let fetch = scope.spawn(|| self.api.post_chunks(&route, &req, tx));
            let mut source = Hashing::new(ChannelReader::new(rx), blake3::Hasher::new());
            // The rest is read too, so that the hash covers the whole piece and the fetch ends.
            let consumed = consume(&mut source).and_then(|t| {
                io::copy(&mut source, &mut io::sink())
                    .map_err(ClientError::io(format!("reading {what}")))?;
                Ok(t)
            });
            // Dropping the reader ends the channel, so that a fetch still sending stops.
            let Hashing {
                inner,
                hasher,
                read,
            } = source;
            drop(inner);
            let fetched = fetch
                .join()
                .unwrap_or_else(|_| Err(ClientError::Usage("download thread panicked".into())));
            (fetched, consumed, hasher, read)
        });
        fetched.map_err(|e| super::damage::unreadable(what, e))?;
        let t = consumed?;
        if read != piece.loc.len || hasher.finalize().as_bytes() != &piece.chash {
            return Err(ClientError::Integrity(format!(
                "{what}: the stored piece is not the one the tree names (changed or swapped)"
            )));
        }
        Ok(t)
    }
}
