//! `enc push`: a local directory onto a vault's tree as one signed commit. What changed
//! is found by size and mtime first and confirmed by content id; new content is sealed (small
//! files many to a pack, large ones streamed alone), the directory nodes on the changed paths
//! are rebuilt bottom-up, and the commit is offered on the head it was built on. When another
//! push landed first, the changes are applied again on the new head, signed again and
//! offered again.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use enc_crypto::tree::{
    Account as Signs, Change, CommitBody, CommitHeader, Entry, Hash, Kind, Loc, Piece, Signer,
};
use enc_proto::{TreeCommitInfo, TreeCommitRequest};

use super::merge::apply;
use super::source::Source;
use super::source::{check_sources, local_path, mtime_ns};
use super::upload::{Hashing, Packer, Uploads};
use super::{Commit, Tree, cid_of, join, open_file, par_map, par_queue, vault_path};
use crate::ops::{Account, VaultCtx};
use crate::scan::{Action, LocalEntry, LocalKind, Skipped, plan, scan};
use crate::transfer::Progress;
use crate::{ClientError, Result};

/// How many times a push rebases onto a head that moved before it gives up.
const ATTEMPTS: u32 = 5;
/// Small files read and sealed together (on every core) before they are packed in order.
const SEAL_GROUP: usize = 1024;
const SEAL_GROUP_BYTES: u64 = 8 << 20;
/// Large files uploaded at once.
const LARGE_UPLOADS: usize = 3;

/// What a push should do.
#[derive(Debug, Clone, Copy, Default)]
pub struct PushOptions {
    /// Also remove from the tree what is gone locally (`rsync --delete`).
    pub delete: bool,
}

/// What a push does to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    New,
    Changed,
    /// Only its mode or mtime.
    Metadata,
    Removed,
}

/// What a push would do, found without sending anything (`enc diff`).
pub struct PushPlan {
    sources: Vec<Source>,
    base: Tree,
    /// Path → the entry it gets (`None`: removed); file content still to be sent has a
    /// placeholder piece, and `send` names it.
    changes: BTreeMap<String, Option<Entry>>,
    send: Vec<String>,
    /// The local directories, for parents another push removed meanwhile.
    dirs: HashMap<String, Entry>,
    /// Every change, for display.
    pub list: Vec<(ChangeKind, String)>,
    /// Files (and links) that stay as they are.
    pub unchanged: u64,
    /// Plaintext bytes of the files to send.
    pub bytes: u64,
    /// What the walk could not keep.
    pub skipped: Vec<Skipped>,
    /// Blobs the commit gives back (`enc prune`).
    pub(super) releases: Vec<String>,
    /// Whether the pushed directories are remembered as matching the commit (not for a
    /// temporary directory).
    pub(super) remember: bool,
    /// Whether a refused commit is applied again on the newer head (not for an import or a
    /// pack rewrite).
    pub(super) rebase: bool,
    /// Blobs uploaded before the push that its commit adds (a pack rewrite's new packs).
    pub(super) uploaded: Vec<String>,
}

impl PushPlan {
    /// A plan that only edits the tree (`rm`, `mv`): no content to send.
    pub(super) fn edit(
        base: Tree,
        changes: BTreeMap<String, Option<Entry>>,
        list: Vec<(ChangeKind, String)>,
    ) -> Self {
        Self {
            sources: Vec::new(),
            base,
            changes,
            send: Vec::new(),
            dirs: HashMap::new(),
            list,
            unchanged: 0,
            bytes: 0,
            skipped: Vec::new(),
            releases: Vec::new(),
            remember: false,
            rebase: true,
            uploaded: Vec::new(),
        }
    }

    /// How many paths of the tree it changes (a directory and what is in it count each).
    pub fn paths(&self) -> usize {
        self.changes.len()
    }

    /// Whether the push has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.releases.is_empty()
    }
    /// The commit it builds on.
    pub fn base(&self) -> Option<&Commit> {
        self.base.commit.as_ref()
    }
    /// How many paths of each kind change.
    pub fn count(&self, kind: ChangeKind) -> u64 {
        self.list.iter().filter(|(k, _)| *k == kind).count() as u64
    }
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushSummary {
    /// The commit it made (`None`: nothing had changed).
    pub commit: Option<Commit>,
    /// Ciphertext bytes sent.
    pub sent: u64,
    /// Paths another push changed too, since this one's base: this push's version is
    /// current, the other stays in history as the previous version.
    pub conflicts: Vec<String>,
    /// How many times it was applied again on a head that had moved.
    pub rebased: u32,
}

/// A path's entry, with a piece that the push fills in later.
pub(crate) fn placeholder() -> Piece {
    Piece {
        loc: Loc {
            blob: "pending".into(),
            offset: 0,
            len: 0,
        },
        cid: [0; 32],
        chash: [0; 32],
    }
}

fn name_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

pub(crate) fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn entry_of(l: &LocalEntry) -> Entry {
    let kind = match &l.kind {
        LocalKind::File { size } => Kind::File {
            size: *size,
            piece: placeholder(),
        },
        LocalKind::Dir => Kind::Dir {
            piece: placeholder(),
        },
        LocalKind::Symlink { target } => Kind::Symlink {
            target: target.clone(),
        },
    };
    Entry {
        name: name_of(&l.path),
        mode: l.mode,
        mtime_ns: l.mtime_ns,
        kind,
    }
}

/// Records what a file to send turned out to hold (its piece's place comes once it is stored).
fn set_content(changes: &mut BTreeMap<String, Option<Entry>>, path: &str, cid: Hash, len: u64) {
    if let Some(Some(Entry {
        kind: Kind::File { size, piece },
        ..
    })) = changes.get_mut(path)
    {
        *size = len;
        piece.cid = cid;
    }
}

fn file_cid(e: &Entry) -> Option<Hash> {
    match &e.kind {
        Kind::File { piece, .. } => Some(piece.cid),
        _ => None,
    }
}

fn read_small(path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_file(path)?
        .read_to_end(&mut buf)
        .map_err(ClientError::io(format!("reading {}", path.display())))?;
    Ok(buf)
}

/// A test hook: with `ENC_TEST_HOLD_COMMIT=PATH`, a push about to offer its first commit
/// creates `PATH.ready` and waits (up to a minute) until `PATH` exists, so that a test can
/// land another push on the head in between.
fn hold_for_test() {
    let Some(path) = std::env::var_os("ENC_TEST_HOLD_COMMIT").map(PathBuf::from) else {
        return;
    };
    let _ = std::fs::write(path.with_extension("ready"), b"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// This machine's name, as a commit records it (cut to what a tree entry name may hold).
fn hostname() -> String {
    let h = crate::ops::host_name().unwrap_or_else(|| "unknown".into());
    let mut end = h.len().min(enc_crypto::tree::MAX_ENTRY_NAME);
    while !h.is_char_boundary(end) {
        end -= 1;
    }
    h[..end].to_string()
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Account {
    /// Walks every source and compares it with the vault's verified head: what a push would
    /// do. Files whose size matches but whose mtime does not are read and hashed.
    pub fn tree_plan(
        &self,
        v: &VaultCtx,
        sources: &[Source],
        opts: PushOptions,
    ) -> Result<PushPlan> {
        check_sources(sources)?;
        let base = self.tree(v)?;
        let mut local: Vec<LocalEntry> = Vec::new();
        let mut skipped: Vec<Skipped> = Vec::new();
        // Where a --delete may remove: inside each pushed directory.
        let mut scopes: Vec<&str> = Vec::new();
        for s in sources {
            let shown = s.local.display();
            let meta =
                std::fs::metadata(&s.local).map_err(ClientError::io(format!("reading {shown}")))?;
            let mut top = vec![];
            if !s.dest.is_empty() {
                top.push(LocalEntry {
                    path: s.dest.clone(),
                    mode: meta.permissions().mode() & 0o7777,
                    mtime_ns: mtime_ns(&meta),
                    kind: if meta.is_dir() {
                        LocalKind::Dir
                    } else if meta.is_file() {
                        LocalKind::File { size: meta.len() }
                    } else {
                        return Err(ClientError::Usage(format!(
                            "{shown} is not a file or a directory"
                        )));
                    },
                });
            } else if !meta.is_dir() {
                return Err(ClientError::Usage(format!("{shown} is not a directory")));
            }
            // As `cp -r`: a directory does not replace a file, nor a file a directory.
            let tree_dir = |path: &str| {
                base.entries
                    .get(path)
                    .map(|e| matches!(e.kind, Kind::Dir { .. }))
            };
            match tree_dir(&s.dest) {
                Some(true) if !meta.is_dir() => {
                    return Err(ClientError::Usage(format!(
                        "/{} is a directory in the vault and {shown} is not: remove it first (`enc rm {}/`) or push elsewhere (--to, --as)",
                        s.dest, s.dest
                    )));
                }
                Some(false) if meta.is_dir() => {
                    return Err(ClientError::Usage(format!(
                        "/{} is a file in the vault and {shown} is a directory: remove it first (`enc rm {}`) or push elsewhere (--to, --as)",
                        s.dest, s.dest
                    )));
                }
                _ => {}
            }
            // Parents the tree does not have yet are made, as `mkdir -p` would.
            let mut parent = parent_of(&s.dest);
            while !parent.is_empty() {
                if tree_dir(parent) == Some(false) {
                    return Err(ClientError::Usage(format!(
                        "/{parent} is a file in the vault, not a directory to put {shown} in"
                    )));
                }
                let made = local.iter().any(|l| l.path == parent);
                if !made && tree_dir(parent) != Some(true) {
                    local.push(LocalEntry {
                        path: parent.to_string(),
                        mode: 0o755,
                        mtime_ns: now_ns(),
                        kind: LocalKind::Dir,
                    });
                }
                parent = parent_of(parent);
            }
            local.extend(top);
            if meta.is_dir() {
                let (found, skip) =
                    scan(&s.local).map_err(ClientError::io(format!("reading {shown}")))?;
                local.extend(found.into_iter().map(|mut l| {
                    l.path = join(&s.dest, &l.path);
                    l
                }));
                skipped.extend(skip.into_iter().map(|mut k| {
                    k.path = join(&s.dest, &k.path);
                    k
                }));
                scopes.push(&s.dest);
            }
        }
        let within = |path: &str, scope: &str| {
            scope.is_empty()
                || path == scope
                || path.strip_prefix(scope).is_some_and(|r| r.starts_with('/'))
        };
        let by_path: HashMap<&str, &LocalEntry> =
            local.iter().map(|l| (l.path.as_str(), l)).collect();
        // The part of the tree this push speaks for: what it names, and what is below the
        // directories it pushes.
        // A push of the whole tree speaks for all of it (no copy of a large tree).
        let remote: std::borrow::Cow<'_, BTreeMap<String, Entry>> =
            if scopes.iter().any(|s| s.is_empty()) {
                std::borrow::Cow::Borrowed(&base.entries)
            } else {
                std::borrow::Cow::Owned(
                    base.entries
                        .iter()
                        .filter(|(path, _)| {
                            by_path.contains_key(path.as_str())
                                || scopes.iter().any(|s| within(path, s))
                        })
                        .map(|(p, e)| (p.clone(), e.clone()))
                        .collect(),
                )
            };
        let kept = |path: &str| skipped.iter().any(|s| within(path, &s.path));
        let mut p = PushPlan {
            sources: sources.to_vec(),
            changes: BTreeMap::new(),
            send: Vec::new(),
            dirs: local
                .iter()
                .filter(|l| l.kind == LocalKind::Dir)
                .map(|l| (l.path.clone(), entry_of(l)))
                .collect(),
            list: Vec::new(),
            unchanged: 0,
            bytes: 0,
            skipped: Vec::new(),
            base: Tree::default(),
            releases: Vec::new(),
            remember: true,
            rebase: true,
            uploaded: Vec::new(),
        };
        let actions = plan(&local, &remote);
        // Files whose size matches but whose mtime does not are hashed on every core (after
        // a checkout or a `touch`, that can be most of the tree).
        let checks: Vec<&str> = actions
            .iter()
            .filter(|(_, a)| *a == Action::Check)
            .map(|(p, _)| p.as_str())
            .collect();
        let hashed = par_map(&checks, |p| super::local_cid(v, &local_path(sources, p)));
        let mut cids: HashMap<&str, Hash> = HashMap::with_capacity(checks.len());
        for (p, cid) in checks.iter().zip(hashed) {
            cids.insert(p, cid?);
        }
        for (path, action) in &actions {
            let path = path.clone();
            let is_dir = by_path
                .get(path.as_str())
                .is_some_and(|l| l.kind == LocalKind::Dir);
            let mut action = *action;
            if action == Action::Check {
                let cid = cids.get(path.as_str()).copied();
                action = if cid.is_some() && cid == base.entries.get(&path).and_then(file_cid) {
                    Action::Metadata
                } else {
                    Action::Send
                };
            }
            match action {
                Action::Unchanged => {
                    if !is_dir {
                        p.unchanged += 1;
                    }
                }
                Action::Metadata => {
                    let l = by_path[path.as_str()];
                    let mut e = base.entries[&path].clone();
                    e.mode = l.mode;
                    e.mtime_ns = l.mtime_ns;
                    if let (LocalKind::Symlink { target }, Kind::Symlink { target: t }) =
                        (&l.kind, &mut e.kind)
                    {
                        t.clone_from(target);
                    }
                    // A directory's own mtime moves whenever its content does: that is not
                    // worth a line of its own.
                    if !is_dir {
                        p.list.push((ChangeKind::Metadata, path.clone()));
                    }
                    p.changes.insert(path, Some(e));
                }
                Action::Send => {
                    let l = by_path[path.as_str()];
                    let kind = if base.entries.contains_key(&path) {
                        ChangeKind::Changed
                    } else {
                        ChangeKind::New
                    };
                    p.list.push((kind, path.clone()));
                    if let LocalKind::File { size } = l.kind {
                        p.bytes += size;
                        p.send.push(path.clone());
                    }
                    p.changes.insert(path, Some(entry_of(l)));
                }
                Action::Gone if opts.delete && !kept(&path) => {
                    p.list.push((ChangeKind::Removed, path.clone()));
                    p.changes.insert(path, None);
                }
                Action::Gone | Action::Check => {}
            }
        }
        p.list.sort_by(|a, b| a.1.cmp(&b.1));
        p.skipped = skipped;
        p.base = base;
        Ok(p)
    }

    /// Carries out a plan: sends the new content, then commits, rebasing onto a head that
    /// moved meanwhile. Nothing changes when the plan is empty.
    pub fn tree_push(
        &self,
        v: &VaultCtx,
        plan: PushPlan,
        progress: &dyn Progress,
    ) -> Result<PushSummary> {
        if plan.is_empty() {
            return Ok(PushSummary::default());
        }
        let (device_id, device_key) = self.device_key()?;
        let PushPlan {
            sources,
            base,
            mut changes,
            send,
            dirs,
            releases,
            list,
            remember,
            rebase,
            uploaded,
            ..
        } = plan;
        drop(list);
        let mut up = Uploads {
            ids: uploaded,
            ..Uploads::default()
        };
        let mut by_cid: HashMap<Hash, Piece> = HashMap::new();
        for e in base.entries.values() {
            if let Kind::File { piece, .. } = &e.kind {
                by_cid.insert(piece.cid, piece.clone());
            }
        }
        // Content: small files sealed into packs, large ones streamed alone.
        let recipient = v.keys.recipient();
        let mut packer = Packer::<Hash>::new();
        let mut packed = std::collections::HashSet::new();
        let mut small: Vec<(&String, u64)> = Vec::new();
        let mut large: Vec<&String> = Vec::new();
        for path in &send {
            if let Some(Some(Entry {
                kind: Kind::File { size, .. },
                ..
            })) = changes.get(path)
            {
                if *size < super::SMALL_FILE {
                    small.push((path, *size));
                } else {
                    large.push(path);
                }
            }
        }
        // Small files a group at a time: read, hashed and sealed on every core, then packed
        // in order.
        let mut rest = &small[..];
        while !rest.is_empty() {
            let mut n = 0;
            let mut bytes = 0u64;
            while n < rest.len()
                && n < SEAL_GROUP
                && (n == 0 || bytes + rest[n].1 <= SEAL_GROUP_BYTES)
            {
                bytes += rest[n].1;
                n += 1;
            }
            let (group, after) = rest.split_at(n);
            rest = after;
            let known = &by_cid;
            let sealed = par_map(group, |(path, _)| -> Result<(Hash, u64, Option<Vec<u8>>)> {
                let plain = read_small(&local_path(&sources, path))?;
                let cid = cid_of(v, &plain);
                let sealed = if known.contains_key(&cid) {
                    None
                } else {
                    Some(
                        enc_crypto::seal_piece(&recipient, &plain)
                            .map_err(ClientError::io("encrypting"))?,
                    )
                };
                Ok((cid, plain.len() as u64, sealed))
            });
            for ((path, _), done) in group.iter().zip(sealed) {
                let (cid, len, sealed) = done?;
                progress.advance(len);
                set_content(&mut changes, path, cid, len);
                let Some(sealed) = sealed else { continue };
                if by_cid.contains_key(&cid) || !packed.insert(cid) {
                    continue;
                }
                if !packer.fits(sealed.len()) {
                    by_cid.extend(packer.flush(self, v, &mut up)?);
                }
                packer.add(cid, cid, &sealed);
            }
        }
        // Large files a few at a time, each streamed and sealed on its own threads: a link
        // that waits on one upload's round trips carries another's bytes meanwhile.
        let uploaded = par_queue(&large, LARGE_UPLOADS, |path| {
            let full = local_path(&sources, path);
            let mut reader = Hashing::new(open_file(&full)?, v.keys.cid_hasher());
            let receipt =
                self.upload_stream(v, &mut reader, &full.display().to_string(), progress)?;
            Ok::<_, ClientError>((receipt, *reader.hasher.finalize().as_bytes(), reader.read))
        });
        for (path, done) in large.iter().zip(uploaded) {
            let (receipt, cid, read) = done?;
            let (len, chash_hex) = (receipt.size, receipt.hash.clone());
            let blob = up.check(receipt, len, &chash_hex)?;
            let mut chash = [0u8; 32];
            hex::decode_to_slice(&chash_hex, &mut chash)
                .map_err(|_| ClientError::Integrity("the upload's hash is not hex".into()))?;
            set_content(&mut changes, path, cid, read);
            by_cid.insert(
                cid,
                Piece {
                    loc: Loc {
                        blob,
                        offset: 0,
                        len,
                    },
                    cid,
                    chash,
                },
            );
        }
        by_cid.extend(packer.flush(self, v, &mut up)?);
        for path in &send {
            if let Some(Some(Entry {
                kind: Kind::File { piece, .. },
                ..
            })) = changes.get_mut(path)
                && let Some(stored) = by_cid.get(&piece.cid)
            {
                piece.clone_from(stored);
            }
        }
        drop(send);
        drop(by_cid);
        let content_uploads = up.ids.clone();

        // The tree: our changes on the base, then (after a refusal) on the newer head.
        let ours = dirs;
        // The newer head after a refusal (`None`: the base); the base's entries are kept for
        // telling which paths the other push changed.
        let mut newer: Option<Tree> = None;
        let mut summary = PushSummary::default();
        loop {
            let onto = newer.as_ref().unwrap_or(&base);
            let mut tree = onto.entries.clone();
            let (touched, conflicts) = apply(&mut tree, &changes, &base.entries, &ours);
            let root_piece = match &onto.body {
                // Nothing in the tree changed (a prune): the same root.
                Some(body) if touched.is_empty() => body.root.clone(),
                _ => self.build_nodes(v, &mut tree, &touched, &mut up)?,
            };
            let prev = onto.commit.as_ref();
            let seq = prev.map_or(1, |c| c.seq + 1);
            let body = CommitBody {
                vault: v.info.signed_id.clone(),
                seq,
                prev: prev.map(|c| c.hash),
                generation: v.keys.current_generation(),
                root: root_piece,
                time_ns: now_ns(),
                host: hostname(),
                changes: changes
                    .keys()
                    .map(|p| Change {
                        path: p.clone(),
                        previous: onto.entries.get(p).and_then(file_cid),
                    })
                    .collect(),
            };
            let sealed = enc_crypto::seal_piece(&recipient, &body.encode())
                .map_err(ClientError::io("encrypting"))?;
            let body_hash = *blake3::hash(&sealed).as_bytes();
            let len = sealed.len() as u64;
            let blob = up.put(self, v, sealed)?;
            let header = CommitHeader {
                vault: v.info.signed_id.clone(),
                seq,
                prev: body.prev,
                // This device signs, its id naming the certificate (the account chain's
                // link that added its key).
                // The account is named by its key (version 2), not by the user's name, so
                // the commit outlives an erasure of its author.
                signer: Signer {
                    account: Signs::Key(self.keys.verifying_key_b64()),
                    key: device_key.public_b64(),
                    certificate: Some(device_id.clone()),
                },
                body: Loc {
                    blob,
                    offset: 0,
                    len,
                },
                body_hash,
                adds: up.ids.clone(),
                releases: releases.clone(),
            };
            if summary.rebased == 0 {
                hold_for_test();
            }
            let message = header.message();
            let signature = device_key.sign_b64(&message);
            let req = TreeCommitRequest {
                header: enc_crypto::b64(&message),
                signature: signature.clone(),
            };
            match self
                .api
                .post::<_, TreeCommitInfo>(&format!("{}/commits", vault_path(v)), &req)
            {
                Ok(info) => {
                    let sig = enc_crypto::unb64(&signature)?;
                    let hash = enc_crypto::tree::commit_hash(&message, &sig);
                    if info.seq != seq || info.hash != hex::encode(hash) {
                        return Err(ClientError::Integrity(
                            "the server acknowledged another commit than the one sent".into(),
                        ));
                    }
                    let commit = Commit {
                        seq,
                        hash,
                        header,
                        created: info.created,
                        author: self.user().to_string(),
                    };
                    self.remember_head(v, &commit)?;
                    // After a rebase the commit also holds the other push's changes, which
                    // this directory does not: it matches no commit then.
                    if remember && summary.rebased == 0 {
                        for s in sources.iter().filter(|s| s.local.is_dir()) {
                            self.remember_sync(v, &s.dest, &s.local, &commit)?;
                        }
                    }
                    summary.commit = Some(commit);
                    summary.sent = up.sent;
                    summary.conflicts = conflicts;
                    return Ok(summary);
                }
                // A prune is planned again from the new head by its caller.
                Err(e)
                    if e.is_status(409)
                        && rebase
                        && releases.is_empty()
                        && summary.rebased + 1 < ATTEMPTS =>
                {
                    summary.rebased += 1;
                    // What this attempt built on the old head is dropped (its uploads
                    // expire); the content is kept.
                    up.ids.clone_from(&content_uploads);
                    let was = onto.commit.as_ref().map(|c| (c.seq, c.hash));
                    let head = self.tree(v)?;
                    let onto = newer.insert(head);
                    // Entries this push reuses (unchanged content, moves) must still be in
                    // blobs the vault keeps: a prune since may have given them back.
                    let gone = self.released_since(v, was, onto)?;
                    let stale = changes.iter().any(|(_, e)| match e {
                        Some(Entry {
                            kind: Kind::File { piece, .. },
                            ..
                        }) => gone.contains(&piece.loc.blob),
                        _ => false,
                    });
                    if stale {
                        return Err(ClientError::Usage(
                            "a prune landed meanwhile and gave back content this push reuses; nothing was committed: run the push again".into(),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
