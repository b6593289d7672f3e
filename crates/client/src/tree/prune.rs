//! `enc prune`: gives back the blobs that neither the last few commits' trees nor any
//! commit body needs. The set of the vault's blobs comes from the signed chain itself (each
//! commit's adds less its releases), so the client decides from what it verified, and the
//! server only checks that each released blob is the vault's; a blob leaves storage through
//! the server's collection queue and the owner's usage drops by its size in the same
//! transaction. Packs are given back whole, when none of their pieces is needed; one mostly
//! given up first has the head tree's pieces moved to a new pack by a commit that changes no
//! path (ARCHITECTURE.md, "Reclaiming space").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use enc_crypto::tree::{Hash, Kind, Node, Piece};

use super::upload::{Packer, Uploads};
use super::{Commit, Tree, Want};
use crate::ops::{Account, VaultCtx};
use crate::{ClientError, Result};

/// How many times a prune is planned again on a head that moved.
const ATTEMPTS: u32 = 5;

/// What a prune did.
#[derive(Debug, Default)]
pub struct PruneSummary {
    /// The commit that gave the blobs back (`None`: nothing to give back).
    pub commit: Option<Commit>,
    /// How many blobs it gave back, and how many the vault keeps.
    pub released: usize,
    pub kept: usize,
    /// The commit that moved the head's live pieces out of packs mostly dead, and how many
    /// pieces it moved (their old packs go once no kept commit needs them).
    pub rewrite: Option<Commit>,
    pub moved: usize,
}

impl Account {
    /// The blobs commits after `was` (seq, hash) up to `onto`'s gave back.
    pub(super) fn released_since(
        &self,
        v: &VaultCtx,
        was: Option<(u64, Hash)>,
        onto: &Tree,
    ) -> Result<HashSet<String>> {
        let (after, prev) = was.map_or((0, None), |(s, h)| (s, Some(h)));
        let until = onto.commit.as_ref().map_or(0, |c| c.seq);
        let mut gone = HashSet::new();
        self.walk_chain(v, after, prev, until, |c| {
            gone.extend(c.header.releases.iter().cloned());
            Ok(())
        })?;
        Ok(gone)
    }

    /// Gives back what the trees of the newest `keep` commits (at least 1) do not need;
    /// older commits stay in `enc log`, but `--at` them may find their content gone.
    pub fn tree_prune(&self, v: &VaultCtx, keep: u64) -> Result<PruneSummary> {
        let keep = keep.max(1);
        let mut rewrite: Option<(Commit, usize)> = None;
        // The window of kept commits is counted from the head the prune began on. A pack
        // rewrite's commit then stands in for the head it rewrote (the same files, in new
        // packs), so it does not push the oldest kept commit out of the window.
        let mut window: Option<(u64, u64)> = None;
        let mut no_rewrite = false;
        for _ in 0..ATTEMPTS {
            let Some(head) = self.tree_head(v)? else {
                return Ok(PruneSummary::default());
            };
            let (floor, rewritten) =
                *window.get_or_insert((head.seq.saturating_add(1).saturating_sub(keep), head.seq));
            let commits = self.history(v, &head)?;
            let mut blobs = BTreeSet::new();
            for c in &commits {
                blobs.extend(c.header.adds.iter().cloned());
                for r in &c.header.releases {
                    blobs.remove(r);
                }
            }
            let mut live: HashSet<String> =
                commits.iter().map(|c| c.header.body.blob.clone()).collect();
            let commits_all = commits.clone();
            let recent: Vec<Commit> = commits
                .into_iter()
                .filter(|c| c.seq >= floor && !(rewrite.is_some() && c.seq == rewritten))
                .collect();
            // Every piece a kept commit needs, by blob: commit bodies (never released) and the
            // recent trees' nodes and contents.
            let mut extents: HashMap<String, HashSet<(u64, u64)>> = HashMap::new();
            for c in &commits_all {
                let b = &c.header.body;
                extents
                    .entry(b.blob.clone())
                    .or_default()
                    .insert((b.offset, b.len));
            }
            let mut bodies = self.read_bodies(v, &recent)?;
            self.mark_live(
                v,
                bodies.iter().map(|b| b.root.clone()).collect(),
                &mut live,
                &mut extents,
            )?;
            if rewrite.is_none() && !no_rewrite && head.seq == rewritten {
                let sparse = sparse_packs(&extents);
                if !sparse.is_empty() {
                    match self.rewrite_packs(v, &head, &sparse) {
                        Ok(Some(done)) => {
                            // Planned again from the new head: with --keep 1 the old packs
                            // go now.
                            rewrite = Some(done);
                            continue;
                        }
                        Ok(None) => {}
                        // A rewrite stores before it gives back: at the quota (or on any
                        // refusal of its uploads) the prune still gives back what is dead.
                        Err(ClientError::Api { .. }) => no_rewrite = true,
                        Err(e) => return Err(e),
                    }
                }
            }
            let releases: Vec<String> = blobs
                .iter()
                .filter(|b| !live.contains(*b))
                .cloned()
                .collect();
            let kept = blobs.len() - releases.len();
            let (rewrite_commit, moved) = rewrite.clone().map_or((None, 0), |(c, n)| (Some(c), n));
            if releases.is_empty() {
                return Ok(PruneSummary {
                    kept,
                    rewrite: rewrite_commit,
                    moved,
                    ..PruneSummary::default()
                });
            }
            // A prune changes no path: its commit needs the head and its root (the last of
            // the recent bodies), not the head's entries.
            let tree = Tree {
                commit: Some(head),
                body: bodies.pop(),
                entries: Default::default(),
            };
            let mut plan = super::PushPlan::edit(tree, Default::default(), Vec::new());
            plan.releases = releases;
            let released = plan.releases.len();
            match self.tree_push(v, plan, &()) {
                Ok(done) => {
                    return Ok(PruneSummary {
                        commit: done.commit,
                        released,
                        kept,
                        rewrite: rewrite_commit,
                        moved,
                    });
                }
                Err(e) if e.is_status(409) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Usage(
            "the vault kept changing while the prune was planned; run it again".into(),
        ))
    }

    /// Adds to `live` every blob the trees whose roots are `level` name: their directory nodes and file
    /// contents. A node shared by several trees is read once.
    fn mark_live(
        &self,
        v: &VaultCtx,
        mut level: Vec<Piece>,
        live: &mut HashSet<String>,
        extents: &mut HashMap<String, HashSet<(u64, u64)>>,
    ) -> Result<()> {
        let mut seen: HashSet<(String, u64)> = HashSet::new();
        let mut mark = |p: &Piece| {
            live.insert(p.loc.blob.clone());
            extents
                .entry(p.loc.blob.clone())
                .or_default()
                .insert((p.loc.offset, p.loc.len));
        };
        while !level.is_empty() {
            level.retain(|p| seen.insert((p.loc.blob.clone(), p.loc.offset)));
            for p in &level {
                mark(p);
            }
            let wants: Vec<Want<'_>> = level.iter().map(Want::from).collect();
            let mut next = Vec::new();
            self.read_pieces(v, &wants, |_, plain| {
                let node = Node::decode(&plain).map_err(|e| {
                    ClientError::Integrity(format!("a directory is malformed: {e}"))
                })?;
                for e in node.entries {
                    match e.kind {
                        Kind::Dir { piece } => next.push(piece),
                        Kind::File { piece, .. } => mark(&piece),
                        Kind::Symlink { .. } => {}
                    }
                }
                Ok(())
            })?;
            level = next;
        }
        Ok(())
    }

    /// Moves the head tree's pieces out of `sparse` packs: reads them (checked), seals them
    /// into new packs and commits the head's tree with their new places. No path changes;
    /// never rebased (a moved head makes the caller plan again). Returns the commit and how
    /// many pieces moved, or `None` when the head names none of them.
    fn rewrite_packs(
        &self,
        v: &VaultCtx,
        head: &Commit,
        sparse: &HashSet<String>,
    ) -> Result<Option<(Commit, usize)>> {
        let tree = self.read_tree(v, Some(head.clone()))?;
        let mut changes: BTreeMap<String, Option<enc_crypto::tree::Entry>> = BTreeMap::new();
        let mut moving: Vec<(String, Piece)> = Vec::new();
        for (path, e) in &tree.entries {
            match &e.kind {
                Kind::File { piece, .. } if sparse.contains(&piece.loc.blob) => {
                    moving.push((path.clone(), piece.clone()));
                }
                // A directory whose node sits in a sparse pack is built again.
                Kind::Dir { piece } if sparse.contains(&piece.loc.blob) => {
                    changes.insert(path.clone(), Some(e.clone()));
                }
                _ => {}
            }
        }
        let root_sparse = tree
            .body
            .as_ref()
            .is_some_and(|b| sparse.contains(&b.root.loc.blob));
        if moving.is_empty() && changes.is_empty() && !root_sparse {
            return Ok(None);
        }
        // Each piece once, however many paths name it.
        let mut unique: Vec<Piece> = Vec::new();
        let mut at: HashMap<PieceKey, usize> = HashMap::new();
        for (_, p) in &moving {
            at.entry(key_of(p)).or_insert_with(|| {
                unique.push(p.clone());
                unique.len() - 1
            });
        }
        let wants: Vec<Want<'_>> = unique.iter().map(Want::from).collect();
        let recipient = v.keys.recipient();
        let mut packer = Packer::<usize>::new();
        let mut up = Uploads::default();
        let mut placed: HashMap<usize, Piece> = HashMap::new();
        self.read_pieces(v, &wants, |i, plain| {
            let sealed = enc_crypto::seal_piece(&recipient, &plain)
                .map_err(ClientError::io("encrypting"))?;
            if !packer.fits(sealed.len()) {
                placed.extend(packer.flush(self, v, &mut up)?);
            }
            packer.add(i, unique[i].cid, &sealed);
            Ok(())
        })?;
        placed.extend(packer.flush(self, v, &mut up)?);
        let dirs = changes.len();
        for (path, old) in &moving {
            let i = at[&key_of(old)];
            let mut e = tree.entries[path].clone();
            if let Kind::File { piece, .. } = &mut e.kind {
                piece.clone_from(&placed[&i]);
            }
            changes.insert(path.clone(), Some(e));
        }
        let moved = unique.len() + dirs;
        let mut plan = super::PushPlan::edit(tree, changes, Vec::new());
        plan.rebase = false;
        plan.uploaded = up.ids;
        let done = match self.tree_push(v, plan, &()) {
            Ok(done) => done,
            // The head moved: planned again. Any other refusal is the caller's to handle.
            Err(e) if e.is_status(409) && self.tree_head(v)?.map(|c| c.hash) != Some(head.hash) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(done.commit.map(|c| (c, moved)))
    }
}

/// A piece as a whole (place and hashes): two entries share a new piece only if they named
/// the same one.
type PieceKey = (String, u64, u64, Hash, Hash);

fn key_of(p: &Piece) -> PieceKey {
    (p.loc.blob.clone(), p.loc.offset, p.loc.len, p.cid, p.chash)
}

/// Smallest pack worth rewriting.
const REWRITE_MIN: u64 = 64 << 10;

/// Packs whose pieces the kept commits need make up less than half of them. A pack's size is
/// not in the chain: the end of the furthest piece any kept commit names stands for it, which
/// errs toward keeping (dead pieces after it are not counted).
fn sparse_packs(extents: &HashMap<String, HashSet<(u64, u64)>>) -> HashSet<String> {
    extents
        .iter()
        .filter(|(_, pieces)| pieces.len() > 1 || pieces.iter().any(|(o, _)| *o > 0))
        .filter(|(_, pieces)| {
            let end = pieces.iter().map(|(o, l)| o + l).max().unwrap_or(0);
            let live: u64 = pieces.iter().map(|(_, l)| l).sum();
            end >= REWRITE_MIN && live * 2 < end
        })
        .map(|(b, _)| b.clone())
        .collect()
}
