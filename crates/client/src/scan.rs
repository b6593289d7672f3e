//! The local side of a tree push (ARCHITECTURE.md, "Vault trees"): a walk of a directory that
//! never follows a link, and its comparison with the tree a vault holds: size and mtime first,
//! the content id only where those differ.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use enc_crypto::tree::{Entry, Kind, validate_entry_name};

/// What a local entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalKind {
    File { size: u64 },
    Dir,
    Symlink { target: String },
}

/// One entry found under the pushed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEntry {
    /// Relative to the pushed directory, `/`-separated, every element a valid entry name.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    pub mtime_ns: i64,
    pub kind: LocalKind,
}

/// Something the walk could not keep, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub why: String,
}

/// Walks `root` (not following links, its own or below it) and returns its entries in tree
/// order (each directory's entries sorted bytewise, a directory before what it holds), and
/// what was skipped: sockets, FIFOs and devices, names that are not UTF-8 or not valid entry
/// names, what could not be read (a directory whole, never as if it were empty). A push
/// leaves what the vault has at a skipped path as it is.
pub fn scan(root: &Path) -> std::io::Result<(Vec<LocalEntry>, Vec<Skipped>)> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    walk(root, "", &mut out, &mut skipped)?;
    Ok((out, skipped))
}

fn walk(
    dir: &Path,
    base: &str,
    out: &mut Vec<LocalEntry>,
    skipped: &mut Vec<Skipped>,
) -> std::io::Result<()> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        match e.file_name().into_string() {
            Ok(n) => names.push(n),
            Err(raw) => skipped.push(Skipped {
                path: join(base, &raw.to_string_lossy()),
                why: "its name is not UTF-8".into(),
            }),
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = join(base, &name);
        if let Err(e) = validate_entry_name(&name) {
            skipped.push(Skipped {
                path,
                why: e.to_string(),
            });
            continue;
        }
        let full = dir.join(&name);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) => {
                skipped.push(Skipped {
                    path,
                    why: e.to_string(),
                });
                continue;
            }
        };
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            LocalKind::File { size: meta.len() }
        } else if ft.is_dir() {
            LocalKind::Dir
        } else if ft.is_symlink() {
            match std::fs::read_link(&full).map(|t| t.into_os_string().into_string()) {
                Ok(Ok(target)) => LocalKind::Symlink { target },
                Ok(Err(_)) => {
                    skipped.push(Skipped {
                        path,
                        why: "its link target is not UTF-8".into(),
                    });
                    continue;
                }
                Err(e) => {
                    skipped.push(Skipped {
                        path,
                        why: e.to_string(),
                    });
                    continue;
                }
            }
        } else {
            skipped.push(Skipped {
                path,
                why: "not a file, directory or symbolic link".into(),
            });
            continue;
        };
        let is_dir = kind == LocalKind::Dir;
        out.push(LocalEntry {
            path: path.clone(),
            mode: meta.permissions().mode() & 0o7777,
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            kind,
        });
        let before = out.len();
        if is_dir && let Err(e) = walk(&full, &path, out, skipped) {
            // Not an empty directory: what could not be read is skipped whole, with its entry.
            out.truncate(before - 1);
            skipped.push(Skipped {
                path,
                why: e.to_string(),
            });
        }
    }
    Ok(())
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// What a push does with one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The same as in the vault.
    Unchanged,
    /// Only its mode or mtime changed (or a directory's or link's metadata): a new node, no
    /// content.
    Metadata,
    /// A file whose size is the same but whose mtime is not: its content id decides.
    Check,
    /// New, or a file whose size changed, or whose kind changed: content is sent.
    Send,
    /// In the vault, gone here (removed only by `--delete`).
    Gone,
}

/// Decides, path by path, what a push of `local` onto the vault's `remote` (its entries by
/// path) does. Paths come back in `local`'s order, then the gone ones in path order.
pub fn plan(local: &[LocalEntry], remote: &BTreeMap<String, Entry>) -> Vec<(String, Action)> {
    let mut out = Vec::with_capacity(local.len());
    let mut seen = std::collections::HashSet::with_capacity(local.len());
    for l in local {
        seen.insert(l.path.as_str());
        let action = match remote.get(&l.path) {
            None => Action::Send,
            Some(r) => compare(l, r),
        };
        out.push((l.path.clone(), action));
    }
    for path in remote.keys() {
        if !seen.contains(path.as_str()) {
            out.push((path.clone(), Action::Gone));
        }
    }
    out
}

fn compare(l: &LocalEntry, r: &Entry) -> Action {
    let same_meta = l.mode == r.mode && l.mtime_ns == r.mtime_ns;
    match (&l.kind, &r.kind) {
        (LocalKind::File { size }, Kind::File { size: rs, .. }) if size == rs => {
            if l.mtime_ns != r.mtime_ns {
                Action::Check
            } else if l.mode != r.mode {
                Action::Metadata
            } else {
                Action::Unchanged
            }
        }
        (LocalKind::Dir, Kind::Dir { .. }) => {
            if same_meta {
                Action::Unchanged
            } else {
                Action::Metadata
            }
        }
        (LocalKind::Symlink { target }, Kind::Symlink { target: rt }) if target == rt => {
            if same_meta {
                Action::Unchanged
            } else {
                Action::Metadata
            }
        }
        (LocalKind::Symlink { .. }, Kind::Symlink { .. }) => Action::Metadata,
        _ => Action::Send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enc_crypto::tree::{Loc, Piece};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::create_dir_all(p.join("src/empty")).unwrap();
        std::fs::write(p.join("src/main.rs"), b"fn main() {}\n").unwrap();
        std::fs::write(p.join("README"), b"hello").unwrap();
        std::fs::set_permissions(p.join("README"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("../outside", p.join("src/link")).unwrap();
        std::os::unix::fs::symlink("/", p.join("root-link")).unwrap();
        let fifo = p.join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        dir
    }

    #[test]
    fn scans_without_following_links_and_keeps_empty_directories() {
        let dir = tree();
        let (entries, skipped) = scan(dir.path()).expect("scan");
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "README",
                "root-link",
                "src",
                "src/empty",
                "src/link",
                "src/main.rs"
            ]
        );
        assert_eq!(entries[0].kind, LocalKind::File { size: 5 });
        assert_eq!(entries[0].mode, 0o750);
        assert_eq!(entries[1].kind, LocalKind::Symlink { target: "/".into() });
        assert_eq!(entries[3].kind, LocalKind::Dir);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].path, "fifo");
    }

    fn remote_of(entries: &[LocalEntry]) -> BTreeMap<String, Entry> {
        let piece = Piece {
            loc: Loc {
                blob: "b".into(),
                offset: 0,
                len: 1,
            },
            cid: [0; 32],
            chash: [0; 32],
        };
        entries
            .iter()
            .map(|l| {
                let kind = match &l.kind {
                    LocalKind::File { size } => Kind::File {
                        size: *size,
                        piece: piece.clone(),
                    },
                    LocalKind::Dir => Kind::Dir {
                        piece: piece.clone(),
                    },
                    LocalKind::Symlink { target } => Kind::Symlink {
                        target: target.clone(),
                    },
                };
                let name = l.path.rsplit('/').next().unwrap().to_string();
                (
                    l.path.clone(),
                    Entry {
                        name,
                        mode: l.mode,
                        mtime_ns: l.mtime_ns,
                        kind,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn plans_by_size_and_mtime_first() {
        let dir = tree();
        let (entries, _) = scan(dir.path()).expect("scan");
        let mut remote = remote_of(&entries);
        let all_unchanged = plan(&entries, &remote);
        assert!(all_unchanged.iter().all(|(_, a)| *a == Action::Unchanged));

        // Same size, other mtime: check the content; other size: send; other mode:
        // metadata; a link retargeted: metadata; gone here: gone; new here: send.
        if let Some(Entry { mtime_ns, .. }) = remote.get_mut("src/main.rs") {
            *mtime_ns += 1;
        }
        if let Some(Entry {
            kind: Kind::File { size, .. },
            ..
        }) = remote.get_mut("README")
        {
            *size += 1;
        }
        if let Some(Entry { mode, .. }) = remote.get_mut("src/empty") {
            *mode = 0o700;
        }
        if let Some(Entry {
            kind: Kind::Symlink { target },
            ..
        }) = remote.get_mut("src/link")
        {
            *target = "elsewhere".into();
        }
        let gone = remote.get("README").unwrap().clone();
        remote.insert("old.txt".into(), gone);
        remote.remove("root-link");
        let got: BTreeMap<String, Action> = plan(&entries, &remote).into_iter().collect();
        assert_eq!(got["src/main.rs"], Action::Check);
        assert_eq!(got["README"], Action::Send);
        assert_eq!(got["src/empty"], Action::Metadata);
        assert_eq!(got["src/link"], Action::Metadata);
        assert_eq!(got["old.txt"], Action::Gone);
        assert_eq!(got["root-link"], Action::Send);
        assert_eq!(got["src"], Action::Unchanged);
    }
}
