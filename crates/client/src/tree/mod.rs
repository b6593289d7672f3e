//! A vault as a versioned tree on the client (ARCHITECTURE.md, "Vault trees"): the head the
//! server shows, checked against the newest commit this device has seen and linked to it by
//! the chain of signed commits; the tree a commit names, read level by level in batches and
//! checked piece by piece; the history. Push and pull live in their own files.

mod damage;
mod edit;
mod import;
mod merge;
mod nodes;
mod prune;
mod pull;
mod push;
mod source;
mod upload;

use std::collections::{BTreeMap, HashMap};

use enc_crypto::tree::{
    Account as Signs, CommitBody, CommitHeader, Entry, Hash, Kind, Loc, Node, Piece, commit_hash,
};
use enc_proto::{ReadRange, ReadRequest, TreeCommitInfo, TreeCommits, TreeHead};

pub use edit::tree_path;

pub use import::ImportSummary;
pub use prune::PruneSummary;
pub use pull::{PullPlan, PullSummary, TreePullOptions};
pub use push::{ChangeKind, PushOptions, PushPlan, PushSummary};
pub use source::{Source, check_sources};

use crate::ops::{Account, VaultCtx};
use crate::profile::HeadPin;
use crate::{ClientError, Result};

/// Files smaller than this are packed with others; larger ones are a blob of their own.
pub(crate) const SMALL_FILE: u64 = 1 << 20;
/// Largest pack of small pieces, and largest batch of one read.
pub(crate) const PACK: usize = 16 << 20;
/// Most ranges in one read (the server's limit).
const MAX_RANGES: usize = 10_000;
/// Most commits the server lists at a time.
const PAGE: u64 = 1000;
/// Most entries a tree may have: a hostile tree that names one node from many places cannot
/// make the client walk without end.
const MAX_TREE_ENTRIES: usize = 5_000_000;

/// A commit whose signature, vault and place in the chain were checked.
#[derive(Debug, Clone)]
pub struct Commit {
    pub seq: u64,
    pub hash: Hash,
    pub header: CommitHeader,
    /// When the server says it accepted it (Unix seconds; the server's word, not signed).
    pub created: i64,
    /// Who signed it: the name a version-1 header signs, or for version 2 the name this
    /// device has pinned to its account key (see `Account::author_of_key`).
    pub author: String,
}

impl Commit {
    /// The first 12 hex digits of the hash, as `enc log` shows it.
    pub fn short(&self) -> String {
        hex::encode(&self.hash[..6])
    }
}

/// A vault's tree at one commit: every path (`/`-separated, relative) with its entry.
#[derive(Debug, Default)]
pub struct Tree {
    /// `None`: the vault has no tree yet.
    pub commit: Option<Commit>,
    pub body: Option<CommitBody>,
    pub entries: BTreeMap<String, Entry>,
}

/// One line of `enc log`.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub commit: Commit,
    pub author: String,
    pub host: String,
    /// When the author made it, nanoseconds since the Unix epoch (the author's clock, signed).
    pub time_ns: i64,
    /// The paths it changed, as its author signed them.
    pub paths: Vec<String>,
}

/// Which commit of a vault's history: `enc pull --at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// Its sequence number.
    Seq(u64),
    /// The start of its hash, in hex (at least 6 digits).
    Hash(String),
    /// The newest commit its author made at or before this time (ns since the Unix epoch).
    Time(i64),
}

impl At {
    /// The commit of `commits` (the history, oldest first) that this names; `times` gives each
    /// one's signed time, read only when a time is asked for.
    fn pick<'a>(
        &self,
        commits: &'a [Commit],
        times: impl FnOnce() -> Result<Vec<i64>>,
    ) -> Result<&'a Commit> {
        let found = match self {
            At::Seq(seq) => commits.iter().find(|c| c.seq == *seq).ok_or_else(|| {
                format!(
                    "this vault has commits 1 to {}, not {seq}",
                    commits.last().map_or(0, |c| c.seq)
                )
            }),
            At::Hash(prefix) => {
                let prefix = prefix.to_ascii_lowercase();
                let mut hits = commits
                    .iter()
                    .filter(|c| hex::encode(c.hash).starts_with(&prefix));
                match (hits.next(), hits.next()) {
                    (Some(c), None) => Ok(c),
                    (None, _) => Err(format!("no commit of this vault starts with {prefix}")),
                    (Some(_), Some(_)) => Err(format!(
                        "several commits start with {prefix}: give more digits"
                    )),
                }
            }
            At::Time(ns) => {
                let times = times()?;
                commits
                    .iter()
                    .zip(times)
                    .rev()
                    .find(|(_, t)| t <= ns)
                    .map(|(c, _)| c)
                    .ok_or_else(|| "the vault's first commit is later than that time".to_string())
            }
        };
        found.map_err(ClientError::Usage)
    }
}

/// A piece to read: where, the hash its ciphertext must have, and the content id its
/// plaintext must have (none for a commit body, which the header's hash names).
pub(crate) struct Want<'a> {
    pub loc: &'a Loc,
    pub chash: &'a Hash,
    pub cid: Option<&'a Hash>,
}

impl<'a> From<&'a Piece> for Want<'a> {
    fn from(p: &'a Piece) -> Self {
        Self {
            loc: &p.loc,
            chash: &p.chash,
            cid: Some(&p.cid),
        }
    }
}

/// `f` over `items` on `threads` threads, each taking the next item when it is done (for
/// work of uneven size, such as uploads), results in order.
pub(crate) fn par_queue<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads < 2 || items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *done[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
                }
            });
        }
    });
    done.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .expect("every item was done")
        })
        .collect()
}

/// `f` over `items` on every core (each thread a contiguous share), results in order.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(8);
    if threads < 2 || items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    let share = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let parts: Vec<_> = items
            .chunks(share)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    })
}

pub(crate) fn vault_path(v: &VaultCtx) -> String {
    format!("/v1/vaults/{}", v.info.id)
}

pub(crate) fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// The content id of `plain` in vault `v`.
pub(crate) fn cid_of(v: &VaultCtx, plain: &[u8]) -> Hash {
    let mut h = v.keys.cid_hasher();
    h.update(plain);
    *h.finalize().as_bytes()
}

/// Opens a local file the walk found, refusing a link put in its place since.
pub(crate) fn open_file(path: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(ClientError::io(format!("reading {}", path.display())))
}

/// The content id of a local file, read as it streams.
pub(crate) fn local_cid(v: &VaultCtx, path: &std::path::Path) -> Result<Hash> {
    let mut h = v.keys.cid_hasher();
    h.update_reader(open_file(path)?)
        .map_err(ClientError::io(format!("reading {}", path.display())))?;
    Ok(*h.finalize().as_bytes())
}

/// Checks a piece's ciphertext against the hash its tree names, opens it, and checks its
/// content id.
fn check_piece(v: &VaultCtx, w: &Want<'_>, sealed: &[u8]) -> Result<Vec<u8>> {
    if blake3::hash(sealed).as_bytes() != w.chash {
        return Err(ClientError::Integrity(
            "a piece of this vault is not the one its tree names (stored data changed or swapped)"
                .into(),
        ));
    }
    let plain = open(v, sealed)?;
    if let Some(cid) = w.cid
        && cid_of(v, &plain) != *cid
    {
        return Err(ClientError::Integrity(
            "a piece of this vault holds other content than its tree names".into(),
        ));
    }
    Ok(plain)
}

/// Opens one small piece with the vault's keys.
pub(crate) fn open(v: &VaultCtx, sealed: &[u8]) -> Result<Vec<u8>> {
    let ids = v.keys.age_identities();
    enc_crypto::open_piece(&ids, sealed).map_err(|e| {
        ClientError::Integrity(match e {
            enc_crypto::DecryptFailure::Header(age::DecryptError::NoMatchingKeys) => {
                "a piece of this vault does not open with the vault keys you hold".into()
            }
            enc_crypto::DecryptFailure::Header(e) => {
                format!("a piece is not a valid age file: {e}")
            }
            enc_crypto::DecryptFailure::Payload(e) => {
                format!("a piece does not decrypt: {e} (stored data changed)")
            }
        })
    })
}

impl Account {
    /// Checks one commit as the server sent it: a canonical header for this vault, under the
    /// sequence number and hash the server names, signed by the key pinned for its signer.
    fn check_commit(&self, v: &VaultCtx, info: &TreeCommitInfo) -> Result<Commit> {
        let bad = |what: String| {
            ClientError::Integrity(format!("commit {} of this vault {what}", info.seq))
        };
        let header_bytes =
            enc_crypto::unb64(&info.header).map_err(|_| bad("is not base64".into()))?;
        let signature = enc_crypto::unb64(&info.signature)
            .map_err(|_| bad("has a signature that is not base64".into()))?;
        let header =
            CommitHeader::decode(&header_bytes).map_err(|e| bad(format!("is malformed ({e})")))?;
        if header.message() != header_bytes {
            return Err(bad("is not in canonical form".into()));
        }
        if header.vault != v.info.signed_id {
            return Err(bad("belongs to another vault".into()));
        }
        if header.seq != info.seq {
            return Err(bad(format!(
                "is served as commit {} (it says {})",
                info.seq, header.seq
            )));
        }
        let hash = commit_hash(&header_bytes, &signature);
        if hex::encode(hash) != info.hash {
            return Err(bad("is served under another hash".into()));
        }
        let key = &header.signer.key;
        let since = self.device_signed_since(&v.info.id)?;
        let author = match &header.signer.account {
            Signs::Name(user) => user.clone(),
            // Version 2 names the account by its key; the name shown is the one pinned for
            // it, or the server's (pinned from now on), or an erased user's label.
            Signs::Key(account) => self.author_of_key(account, &info.author).map_err(bad)?,
        };
        let user = &author;
        match &header.signer.certificate {
            // Signed by a device: its key certified by the signer's account chain, and not
            // revoked before this commit.
            Some(device) => self.check_device_signer(
                &v.info.id,
                &header.signer.account,
                user,
                device,
                key,
                info.seq,
                &info.hash,
                bad,
            )?,
            // Signed by the account key, as before devices signed; never after a commit a
            // device signed (an old device's copy of the key signs nothing new).
            None => {
                if since.is_some_and(|s| info.seq > s) {
                    return Err(bad(format!(
                        "is signed by {user}'s account key after devices began signing this vault's commits (at {})",
                        since.unwrap_or_default()
                    )));
                }
                if self.trusted_key(user, key)? != *key {
                    return Err(bad(format!("names a key for {user} that is not theirs")));
                }
            }
        }
        enc_crypto::verify_b64(key, &header_bytes, &info.signature)
            .map_err(|_| bad(format!("does not carry a valid signature of {user}")))?;
        if header.signer.certificate.is_some() && since.is_none_or(|s| info.seq < s) {
            self.pin_device_signed(&v.info.id, info.seq)?;
        }
        Ok(Commit {
            seq: info.seq,
            hash,
            header,
            created: info.created,
            author,
        })
    }

    /// Walks the commits after `after` up to `until`, each checked and linked to the one
    /// before (`prev`: the hash the first must name; `None` when walking from the start),
    /// handing each to `each`. Returns the last.
    fn walk_chain(
        &self,
        v: &VaultCtx,
        after: u64,
        mut prev: Option<Hash>,
        until: u64,
        mut each: impl FnMut(&Commit) -> Result<()>,
    ) -> Result<Option<Commit>> {
        let mut at = after;
        let mut last = None;
        while at < until {
            let page: TreeCommits = self.api.get(&format!(
                "{}/commits?after={at}&limit={PAGE}",
                vault_path(v)
            ))?;
            if page.commits.is_empty() {
                return Err(ClientError::Integrity(format!(
                    "the server's history of this vault stops at commit {at}, before its head {until}: commits are missing"
                )));
            }
            for info in &page.commits {
                let c = self.check_commit(v, info)?;
                if c.seq != at + 1 {
                    return Err(ClientError::Integrity(format!(
                        "commit {} is missing from this vault's history (the server went from {at} to {})",
                        at + 1,
                        c.seq
                    )));
                }
                if c.header.prev != prev {
                    return Err(ClientError::Integrity(format!(
                        "commit {} does not follow commit {at}: the history was rewritten",
                        c.seq
                    )));
                }
                each(&c)?;
                prev = Some(c.hash);
                at = c.seq;
                last = Some(c);
                if at >= until {
                    break;
                }
            }
        }
        Ok(last)
    }

    fn head_pin(&self, v: &VaultCtx) -> Result<Option<HeadPin>> {
        let config = self.profile.config()?;
        Ok(config
            .pins
            .get(&self.session.server)
            .and_then(|p| p.heads.get(&v.info.id))
            .cloned())
    }

    /// Remembers `c` as the newest commit of the vault this device has seen (never goes back).
    pub(crate) fn remember_head(&self, v: &VaultCtx, c: &Commit) -> Result<()> {
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        if pins.heads.get(&v.info.id).is_some_and(|p| p.seq >= c.seq) {
            return Ok(());
        }
        pins.heads.insert(
            v.info.id.clone(),
            HeadPin {
                seq: c.seq,
                hash: hex::encode(c.hash),
            },
        );
        self.profile.save_config(&config)
    }

    /// The vault's head as the server shows it, accepted only if it is, or descends through
    /// signed commits from, the newest commit this device has seen (the whole chain is
    /// checked the first time). Remembers it.
    pub fn tree_head(&self, v: &VaultCtx) -> Result<Option<Commit>> {
        let shown: TreeHead = self.api.get(&format!("{}/head", vault_path(v)))?;
        let pin = self.head_pin(v)?;
        let name = v.display_name(self.user());
        let Some(info) = shown.head else {
            return match pin {
                Some(p) => Err(ClientError::Integrity(format!(
                    "the server says vault {name} has no tree, but this device has seen its commit {} ({}): the server lost or is hiding its history",
                    p.seq,
                    &p.hash[..12]
                ))),
                None => Ok(None),
            };
        };
        let head = self.check_commit(v, &info)?;
        let (after, prev) = match &pin {
            Some(p) if head.seq < p.seq => {
                return Err(ClientError::Integrity(format!(
                    "the server shows commit {} of vault {name}, but this device has already seen commit {}: the server is serving an older state (files changed since would look reverted, revived or hidden)",
                    head.seq, p.seq
                )));
            }
            Some(p) if head.seq == p.seq => {
                if hex::encode(head.hash) != p.hash {
                    return Err(fork(&name, p.seq));
                }
                return Ok(Some(head));
            }
            Some(p) => {
                let mut h = [0u8; 32];
                hex::decode_to_slice(&p.hash, &mut h).map_err(|_| {
                    ClientError::Usage(format!(
                        "the remembered head of vault {name} in {} is damaged",
                        self.profile.dir().join("config.json").display()
                    ))
                })?;
                (p.seq, Some(h))
            }
            None => (0, None),
        };
        let last = self
            .walk_chain(v, after, prev, head.seq, |_| Ok(()))
            .map_err(|e| match (&e, &pin) {
                (ClientError::Integrity(m), Some(p)) if m.contains("does not follow") => {
                    fork(&name, p.seq)
                }
                _ => e,
            })?;
        if last.as_ref().map(|c| c.hash) != Some(head.hash) {
            return Err(ClientError::Integrity(format!(
                "the head the server shows for vault {name} is not the end of the history it serves"
            )));
        }
        self.remember_head(v, &head)?;
        Ok(Some(head))
    }

    /// Reads pieces in batches (one request for many, in the order they lie in their blobs so
    /// that the server reads neighbours as one range), checks each one's ciphertext hash,
    /// opens it and checks its content id (on every core); hands `each` the piece's index in
    /// `wants` and its plaintext, in storage order (not the order of `wants`).
    pub(crate) fn read_pieces(
        &self,
        v: &VaultCtx,
        wants: &[Want<'_>],
        mut each: impl FnMut(usize, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        self.fetch_pieces(v, wants, |spans, body| {
            let opened = par_map(spans, |(i, span)| {
                check_piece(v, &wants[*i], &body[span.clone()])
            });
            for ((i, _), plain) in spans.iter().zip(opened) {
                each(*i, plain?)?;
            }
            Ok(())
        })
    }

    /// [`Account::read_pieces`] with `each` itself run on every core too (a pull's writes).
    pub(crate) fn read_pieces_par(
        &self,
        v: &VaultCtx,
        wants: &[Want<'_>],
        each: impl Fn(usize, Vec<u8>) -> Result<()> + Sync,
    ) -> Result<()> {
        self.fetch_pieces(v, wants, |spans, body| {
            par_map(spans, |(i, span)| {
                each(*i, check_piece(v, &wants[*i], &body[span.clone()])?)
            })
            .into_iter()
            .collect()
        })
    }

    /// Fetches pieces in batches of at most [`PACK`] bytes, in storage order; hands `batch`
    /// each body with every piece's index in `wants` and its place in the body.
    fn fetch_pieces(
        &self,
        v: &VaultCtx,
        wants: &[Want<'_>],
        mut batch: impl FnMut(&[(usize, std::ops::Range<usize>)], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..wants.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (wants[a].loc, wants[b].loc);
            (a.blob.as_str(), a.offset).cmp(&(b.blob.as_str(), b.offset))
        });
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut bytes = 0u64;
            while end < order.len()
                && end - start < MAX_RANGES
                && (end == start
                    || bytes
                        .checked_add(wants[order[end]].loc.len)
                        .is_some_and(|b| b <= PACK as u64))
            {
                bytes = bytes.saturating_add(wants[order[end]].loc.len);
                end += 1;
            }
            let part = &order[start..end];
            let req = ReadRequest {
                ranges: part
                    .iter()
                    .map(|&i| ReadRange {
                        blob: wants[i].loc.blob.clone(),
                        offset: wants[i].loc.offset,
                        len: wants[i].loc.len,
                    })
                    .collect(),
            };
            let body = self
                .api
                .post_bytes(&format!("{}/read", vault_path(v)), &req)?;
            if body.len() as u64 != bytes {
                return Err(ClientError::Integrity(format!(
                    "the server sent {} bytes for pieces of {bytes}: stored data is missing or truncated",
                    body.len()
                )));
            }
            let mut spans = Vec::with_capacity(part.len());
            let mut at = 0usize;
            for &i in part {
                let len = wants[i].loc.len as usize;
                spans.push((i, at..at + len));
                at += len;
            }
            batch(&spans, &body)?;
            start = end;
        }
        Ok(())
    }

    /// A commit's body, read and checked against its header.
    fn read_body(&self, v: &VaultCtx, c: &Commit) -> Result<CommitBody> {
        let mut bodies = self.read_bodies(v, std::slice::from_ref(c))?;
        bodies
            .pop()
            .ok_or_else(|| ClientError::Integrity("a commit body is missing".into()))
    }

    /// The bodies of `commits` (in their order), read in batches, each checked against its
    /// header.
    pub(crate) fn read_bodies(&self, v: &VaultCtx, commits: &[Commit]) -> Result<Vec<CommitBody>> {
        let wants: Vec<Want<'_>> = commits
            .iter()
            .map(|c| Want {
                loc: &c.header.body,
                chash: &c.header.body_hash,
                cid: None,
            })
            .collect();
        // Pieces arrive in storage order; each body goes to its commit's place.
        let mut out: Vec<Option<CommitBody>> = vec![None; commits.len()];
        self.read_pieces(v, &wants, |i, plain| {
            let c = &commits[i];
            out[i] = Some(CommitBody::decode(&plain, &c.header).map_err(|e| {
                ClientError::Integrity(format!("the body of commit {} is malformed: {e}", c.seq))
            })?);
            Ok(())
        })?;
        out.into_iter()
            .map(|b| b.ok_or_else(|| ClientError::Integrity("a commit body is missing".into())))
            .collect()
    }

    /// The tree `commit` names (empty for `None`): every directory node read, a level at a
    /// time, each checked.
    pub fn read_tree(&self, v: &VaultCtx, commit: Option<Commit>) -> Result<Tree> {
        let Some(c) = commit else {
            return Ok(Tree::default());
        };
        let body = self.read_body(v, &c)?;
        let mut entries = BTreeMap::new();
        let mut level: Vec<(String, Piece)> = vec![(String::new(), body.root.clone())];
        while !level.is_empty() {
            let wants: Vec<Want<'_>> = level.iter().map(|(_, p)| Want::from(p)).collect();
            let mut next = Vec::new();
            self.read_pieces(v, &wants, |i, plain| {
                let dir = &level[i].0;
                let node = Node::decode(&plain).map_err(|e| {
                    ClientError::Integrity(format!(
                        "directory {:?} of this vault is malformed: {e}",
                        if dir.is_empty() { "/" } else { dir }
                    ))
                })?;
                for e in node.entries {
                    let path = join(dir, &e.name);
                    if let Kind::Dir { piece } = &e.kind {
                        next.push((path.clone(), piece.clone()));
                    }
                    entries.insert(path, e);
                }
                if entries.len() > MAX_TREE_ENTRIES {
                    return Err(ClientError::Integrity(format!(
                        "this vault's tree has more than {MAX_TREE_ENTRIES} entries (a directory named from many places?)"
                    )));
                }
                Ok(())
            })?;
            level = next;
        }
        Ok(Tree {
            commit: Some(c),
            body: Some(body),
            entries,
        })
    }

    /// The vault's tree at its verified head.
    pub fn tree(&self, v: &VaultCtx) -> Result<Tree> {
        let head = self.tree_head(v)?;
        self.read_tree(v, head)
    }

    /// The vault's tree at the commit `at` names (its head when `None`); that commit is one
    /// of the verified chain that leads to the head.
    pub fn tree_at(&self, v: &VaultCtx, at: Option<&At>) -> Result<Tree> {
        let Some(at) = at else {
            return self.tree(v);
        };
        let Some(head) = self.tree_head(v)? else {
            return Err(ClientError::Usage(format!(
                "vault {} has no tree yet: `enc push DIR` makes one",
                v.display_name(self.user())
            )));
        };
        // The signed headers say everything but the time; bodies are read only for a time.
        let history = self.history(v, &head)?;
        let commit = at
            .pick(&history, || {
                Ok(self
                    .read_bodies(v, &history)?
                    .iter()
                    .map(|b| b.time_ns)
                    .collect())
            })?
            .clone();
        // What prunes gave back since: a tree that needs any of it is no longer whole.
        let pruned = |by: &Commit| {
            ClientError::Usage(format!(
                "commit {} was pruned: commit {} gave back content only it needed; only the newest commits keep their whole tree (`enc prune --keep`)",
                commit.seq, by.seq
            ))
        };
        let released: HashMap<&str, &Commit> = history
            .iter()
            .filter(|c| c.seq > commit.seq)
            .flat_map(|c| c.header.releases.iter().map(move |b| (b.as_str(), c)))
            .collect();
        let tree = self.read_tree(v, Some(commit.clone())).map_err(|e| {
            match released.values().next() {
                Some(by) if e.is_status(404) => pruned(by),
                _ => e,
            }
        })?;
        for e in tree.entries.values() {
            if let Kind::File { piece, .. } = &e.kind
                && let Some(by) = released.get(piece.loc.blob.as_str())
            {
                return Err(pruned(by));
            }
        }
        Ok(tree)
    }

    /// Every commit from the first to `head`, oldest first, each checked and linked.
    pub(crate) fn history(&self, v: &VaultCtx, head: &Commit) -> Result<Vec<Commit>> {
        let mut commits = Vec::new();
        self.walk_chain(v, 0, None, head.seq, |c| {
            commits.push(c.clone());
            Ok(())
        })?;
        if commits.last().map(|c| c.hash) != Some(head.hash) {
            return Err(ClientError::Integrity(
                "the vault's history does not end at its head".into(),
            ));
        }
        Ok(commits)
    }

    /// The vault's whole history, oldest first, every commit checked and linked, every body
    /// read.
    pub fn tree_log(&self, v: &VaultCtx) -> Result<Vec<LogEntry>> {
        let Some(head) = self.tree_head(v)? else {
            return Ok(Vec::new());
        };
        let commits = self.history(v, &head)?;
        let bodies = self.read_bodies(v, &commits)?;
        Ok(commits
            .into_iter()
            .zip(bodies)
            .map(|(commit, body)| LogEntry {
                author: commit.author.clone(),
                host: body.host,
                time_ns: body.time_ns,
                paths: body.changes.into_iter().map(|c| c.path).collect(),
                commit,
            })
            .collect())
    }
}

fn fork(name: &str, seq: u64) -> ClientError {
    ClientError::Integrity(format!(
        "the history the server shows for vault {name} forks from the one this device has seen at commit {seq}: the server is showing another version of the past"
    ))
}
