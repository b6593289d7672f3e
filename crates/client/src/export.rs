//! `enc account export DIR`: what the account can read, decrypted and verified as every
//! other command does (signed trees and versions, device chains, content hashes), written
//! under one new directory with `manifest.json`: what each file is, its size and SHA-256.
//!
//! Layout: `vaults/OWNER/NAME/…` (a vault's tree as `enc pull` writes it, or its objects from
//! before trees), `backups/DEVICE/COUNTER-CLASS` (decrypted with the account key; an app's
//! backup, which is its own ciphertext, as stored). What it cannot export is listed in the
//! manifest with the way to get it: records (their keys are the caller's alone). Mercury
//! (Hecate) archives are copied as stored under `mercury/NAME` (Hecate's own ciphertext).
//! restic repositories are copied as stored under `restic/NAME`, in the layout of
//! a local repository (`restic -r DIR` opens it with the repository's password), each file
//! checked against the SHA-256 restic names it by.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::ops::Account;
use crate::transfer::{Progress, PullOptions};
use crate::tree::TreePullOptions;
use crate::{ClientError, Result};

/// The manifest written as `manifest.json`.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    pub server: String,
    pub user: String,
    pub exported_at: i64,
    pub vaults: Vec<ExportedVault>,
    pub backups: Vec<ExportedBackup>,
    /// restic repositories, copied as stored (restic's own encryption): each directory is a
    /// repository `restic -r DIR` opens with its password.
    pub restic: Vec<ExportedRepo>,
    /// Mercury (Hecate) archives, as stored (Hecate's own encryption).
    pub mercury: Vec<ExportedArchive>,
    /// What is the account's but not in this directory, and how to get it.
    pub not_exported: Vec<String>,
    /// Every file written, with its size and SHA-256 (hex).
    pub files: Vec<ExportedFile>,
    /// Every symbolic link written (a vault tree's), with its target.
    pub links: Vec<ExportedLink>,
}

#[derive(Debug, Serialize)]
pub struct ExportedArchive {
    pub name: String,
    pub size: u64,
    pub created: i64,
    pub file: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedLink {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedVault {
    pub owner: String,
    pub name: String,
    pub id: String,
    /// `tree` (its head commit, hex) or `objects`.
    pub kind: String,
    pub commit: Option<String>,
    pub dir: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedBackup {
    pub id: String,
    pub device: String,
    pub counter: u64,
    pub classification: String,
    pub created: i64,
    /// `decrypted` (yours) or `as stored` (an app's own ciphertext).
    pub content: &'static str,
    pub file: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedRepo {
    pub name: String,
    pub files: usize,
    pub dir: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

fn relative(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ClientError {
    ClientError::io(what)
}

impl Account {
    /// Exports everything this account can read into `dir`, which must not exist or be
    /// empty; returns the manifest (also written as `dir/manifest.json`).
    pub fn export(&self, dir: &Path, progress: &dyn Progress) -> Result<Manifest> {
        if let Ok(mut entries) = std::fs::read_dir(dir)
            && entries.next().is_some()
        {
            return Err(ClientError::Usage(format!(
                "{} is not empty: export into a new directory",
                dir.display()
            )));
        }
        // Only this user may read what lands here (it is decrypted).
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(format!("creating {}", dir.display())))?;
        }
        let mut manifest = Manifest {
            format: "enc export v1",
            server: self.api.base().to_string(),
            user: self.user().to_string(),
            exported_at: crate::devices::unix_now(),
            vaults: Vec::new(),
            backups: Vec::new(),
            restic: Vec::new(),
            mercury: Vec::new(),
            not_exported: Vec::new(),
            files: Vec::new(),
            links: Vec::new(),
        };
        for info in self.vaults()? {
            let spec = format!("{}/{}", info.owner, info.name);
            let v = self.vault(Some(&spec))?;
            // Names come from the server: each must be one plain path component.
            let vdir = dir
                .join("vaults")
                .join(component(&info.owner, "an owner's name")?)
                .join(component(&info.name, "a vault name")?);
            std::fs::create_dir_all(&vdir).map_err(io(format!("creating {}", vdir.display())))?;
            let head = self.tree_head(&v)?;
            let (kind, commit) = match head {
                Some(c) => {
                    let plan = self.tree_pull_plan(
                        &v,
                        &TreePullOptions {
                            path: None,
                            dest: &vdir,
                            force: false,
                            at: None,
                            delete: false,
                        },
                    )?;
                    self.tree_pull(&v, plan, progress)?;
                    ("tree", Some(hex::encode(c.hash)))
                }
                None => {
                    for (name, _) in self.list(&v)? {
                        let dest = vdir.join(&name);
                        let opts = PullOptions {
                            version: None,
                            raw: false,
                            dest: &dest,
                        };
                        self.pull(&v, &name, &opts, progress)?;
                    }
                    ("objects", None)
                }
            };
            manifest.vaults.push(ExportedVault {
                owner: info.owner.clone(),
                name: info.name.clone(),
                id: info.id.clone(),
                kind: kind.into(),
                commit,
                dir: relative(dir, &vdir),
            });
        }
        for b in self.backup_list(None, None, None)? {
            let (info, content, path) = self.export_backup(&b.id, &dir.join("backups"))?;
            manifest.backups.push(ExportedBackup {
                id: info.id.clone(),
                device: info.device.clone(),
                counter: info.counter,
                classification: info.classification.clone(),
                created: info.created,
                content,
                file: relative(dir, &path),
            });
        }
        for r in self.restic_repos()? {
            let rdir = dir
                .join("restic")
                .join(component(&r.name, "a repository name")?);
            let files = self.export_restic(&r.name, &rdir, progress)?;
            manifest.restic.push(ExportedRepo {
                name: r.name.clone(),
                files,
                dir: relative(dir, &rdir),
            });
        }
        manifest.not_exported.push(
            "records: only their keys open them, and the keys are yours alone; read each with \
             `enc record get ID --key-file FILE`"
                .into(),
        );
        let archives: Vec<enc_proto::MercuryArchive> = self.api.get("/v1/mercury/archives")?;
        for a in archives {
            let path = dir.join("mercury").join(archive_name(&a.name)?);
            self.export_archive(&a, &path, progress)?;
            manifest.mercury.push(ExportedArchive {
                file: relative(dir, &path),
                name: a.name,
                size: a.size,
                created: a.created,
            });
        }
        (manifest.files, manifest.links) = hash_tree(dir)?;
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ClientError::Usage(format!("writing the manifest: {e}")))?;
        let path = dir.join("manifest.json");
        std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
        Ok(manifest)
    }

    /// One Mercury archive, as stored, at `path` (created new): all of it, or an error.
    fn export_archive(
        &self,
        a: &enc_proto::MercuryArchive,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        let mut f = create_new(path)?;
        let n = self.api.get_to(
            &format!("/v1/mercury/archives/{}", crate::api::encode(&a.name)),
            &mut f,
            a.size.saturating_add(1),
        )?;
        f.sync_all()
            .map_err(io(format!("writing {}", path.display())))?;
        progress.advance(n);
        if n != a.size {
            return Err(ClientError::Integrity(format!(
                "the Mercury archive {:?} came with {n} bytes; the server lists {}",
                a.name, a.size
            )));
        }
        Ok(())
    }

    /// A restic repository copied file by file through the restic protocol (a read-only
    /// token made for the copy and revoked after it), in the layout of a local repository,
    /// so `restic -r DIR` opens it with the repository's password. The files copied.
    fn export_restic(&self, repo: &str, rdir: &Path, progress: &dyn Progress) -> Result<usize> {
        let made = self.create_token(&enc_proto::CreateTokenRequest {
            kind: "restic".into(),
            scope: repo.into(),
            mode: "read-only".into(),
            expires_in: Some(3600),
            label: "enc account export".into(),
        })?;
        let copied = self.copy_restic(repo, rdir, (self.user(), &made.token), progress);
        let revoked = self.revoke_token(&made.info.id);
        let n = copied?;
        revoked?;
        Ok(n)
    }

    fn copy_restic(
        &self,
        repo: &str,
        rdir: &Path,
        login: (&str, &str),
        progress: &dyn Progress,
    ) -> Result<usize> {
        #[derive(serde::Deserialize)]
        struct Listed {
            name: String,
            size: u64,
        }
        const V2: &str = "application/vnd.x.restic.rest.v2";
        let base = format!("/restic/{}/{repo}", self.user());
        // Each file's size and SHA-256 as written (restic names its files by the latter).
        let fetch = |path: &str, dest: &Path, max: u64| -> Result<(u64, String)> {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("creating {}", parent.display())))?;
            }
            let f = create_new(dest)?;
            let mut out = Hashed(f, Sha256::new());
            let n = self.api.get_basic_to(path, login, None, &mut out, max)?;
            out.0
                .sync_all()
                .map_err(io(format!("writing {}", dest.display())))?;
            progress.advance(n);
            Ok((n, hex::encode(out.1.finalize())))
        };
        const CONFIG_MAX: u64 = 1 << 20;
        if fetch(
            &format!("{base}/config"),
            &rdir.join("config"),
            CONFIG_MAX + 1,
        )?
        .0 > CONFIG_MAX
        {
            return Err(ClientError::Integrity(format!(
                "{repo}'s config is larger than any restic writes"
            )));
        }
        let mut files = 1;
        for kind in ["keys", "snapshots", "index", "data"] {
            let mut listing = Vec::new();
            self.api.get_basic_to(
                &format!("{base}/{kind}/"),
                login,
                Some(V2),
                &mut listing,
                1 << 30,
            )?;
            let listed: Vec<Listed> = serde_json::from_slice(&listing).map_err(|e| {
                ClientError::Integrity(format!("the listing of {repo}/{kind} is not restic's: {e}"))
            })?;
            for l in listed {
                // restic names its files by their SHA-256: 64 lower-case hex digits.
                if l.name.len() != 64
                    || !l
                        .name
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return Err(ClientError::Integrity(format!(
                        "{repo}/{kind} lists a file named {:?}",
                        l.name
                    )));
                }
                // A local repository keeps data files under the first two digits of their name.
                let dest = match kind {
                    "data" => rdir
                        .join(kind)
                        .join(&l.name[..2.min(l.name.len())])
                        .join(&l.name),
                    _ => rdir.join(kind).join(&l.name),
                };
                let (n, hash) = fetch(
                    &format!("{base}/{kind}/{}", l.name),
                    &dest,
                    l.size.saturating_add(1),
                )?;
                if n != l.size || hash != l.name.to_ascii_lowercase() {
                    return Err(ClientError::Integrity(format!(
                        "{repo}/{kind}/{} is not the file restic stored (its size or SHA-256 \
                         differ from its name and listing)",
                        l.name
                    )));
                }
                files += 1;
            }
        }
        Ok(files)
    }

    /// One backup, verified, under `bdir/DEVICE/COUNTER-CLASS` (from the verified entry):
    /// decrypted if it is an age file to the account key (yours), else as stored (an app's
    /// own ciphertext).
    fn export_backup(
        &self,
        id: &str,
        bdir: &Path,
    ) -> Result<(enc_proto::BackupInfo, &'static str, PathBuf)> {
        let mut stored = tempfile::tempfile().map_err(io("a temporary file".into()))?;
        let info = self.backup_get(id, &mut stored, true)?;
        if !["Internal", "Confidential", "Restricted"].contains(&info.classification.as_str()) {
            return Err(ClientError::Integrity(format!(
                "backup {id} has the classification {:?}",
                info.classification
            )));
        }
        let ddir = bdir.join(component(&info.device, "a device id")?);
        std::fs::create_dir_all(&ddir).map_err(io(format!("creating {}", ddir.display())))?;
        let path = ddir.join(format!("{}-{}", info.counter, info.classification));
        stored
            .rewind()
            .map_err(io("reading the backup back".into()))?;
        let mut head = vec![0u8; AGE_HEADER.len()];
        let n = stored
            .read(&mut head)
            .map_err(io("reading the backup back".into()))?;
        stored
            .rewind()
            .map_err(io("reading the backup back".into()))?;
        let mut out = create_new(&path)?;
        let content = if head[..n] == *AGE_HEADER {
            enc_crypto::decrypt_stream(&[&self.keys.x25519], stored, 2, |chunk| {
                out.write_all(chunk)
            })
            .map_err(|e| {
                ClientError::Integrity(format!(
                    "backup {id} does not decrypt with your account key ({e:?})"
                ))
            })?;
            "decrypted"
        } else {
            std::io::copy(&mut stored, &mut out)
                .map_err(io(format!("writing {}", path.display())))?;
            "as stored"
        };
        out.sync_all()
            .map_err(io(format!("writing {}", path.display())))?;
        Ok((info, content, path))
    }
}

/// A Mercury archive's name as one path component: Hecate's names may hold spaces and most
/// punctuation, but never `/`, `\`, `..` or control characters (the server's own rule), and
/// it is not `.`.
fn archive_name(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && !name.contains(['/', '\\'])
        && !name.contains("..")
        && !name.chars().any(char::is_control);
    if ok {
        Ok(name)
    } else {
        Err(ClientError::Integrity(format!(
            "the server named an archive {name:?}, which is no plain file name: nothing exported under it"
        )))
    }
}

/// A name the server gave, checked to be one plain path component (no separator, not `.`
/// or `..`, no leading dot, no control character), so nothing lands outside the export.
fn component<'a>(name: &'a str, what: &str) -> Result<&'a str> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'));
    if ok {
        Ok(name)
    } else {
        Err(ClientError::Integrity(format!(
            "the server named {what} {name:?}, which is no plain file name: nothing exported under it"
        )))
    }
}

/// A new file: never an existing one, nor through a link planted in the way.
fn create_new(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))
}

/// A file being written and the SHA-256 of what went into it.
struct Hashed(std::fs::File, Sha256);

impl std::io::Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Every file under `dir` with its size and SHA-256, and every link with its target (links
/// not followed), sorted by path.
fn hash_tree(dir: &Path) -> Result<(Vec<ExportedFile>, Vec<ExportedLink>)> {
    let mut out = Vec::new();
    let mut links = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(format!("reading {}", d.display())))? {
            let entry = entry.map_err(io(format!("reading {}", d.display())))?;
            let kind = entry
                .file_type()
                .map_err(io(format!("reading {}", d.display())))?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_symlink() {
                let target =
                    std::fs::read_link(&path).map_err(io(format!("reading {}", path.display())))?;
                links.push(ExportedLink {
                    path: relative(dir, &path),
                    target: target.to_string_lossy().into_owned(),
                });
            } else if kind.is_file() {
                let mut f = std::fs::File::open(&path)
                    .map_err(io(format!("reading {}", path.display())))?;
                let mut h = Sha256::new();
                let size = std::io::copy(&mut f, &mut h)
                    .map_err(io(format!("reading {}", path.display())))?;
                out.push(ExportedFile {
                    path: relative(dir, &path),
                    size,
                    sha256: hex::encode(h.finalize()),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    links.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, links))
}
