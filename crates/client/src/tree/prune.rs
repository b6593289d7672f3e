//! `enc prune`: gives back the blobs that neither the last few commits' trees nor any
//! commit body needs. The set of the vault's blobs comes from the signed chain itself (each
//! commit's adds less its releases), so the client decides from what it verified, and the
//! server only checks that each released blob is the vault's; a blob leaves storage through
//! the server's collection queue and the owner's usage drops by its size in the same
//! transaction. Packs are given back whole, when none of their pieces is needed.

use std::collections::{BTreeSet, HashSet};

use enc_crypto::tree::{Hash, Kind, Node, Piece};

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
        for _ in 0..ATTEMPTS {
            let Some(head) = self.tree_head(v)? else {
                return Ok(PruneSummary::default());
            };
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
            let recent: Vec<Commit> = commits
                .into_iter()
                .filter(|c| c.seq.saturating_add(keep) > head.seq)
                .collect();
            let mut bodies = self.read_bodies(v, &recent)?;
            self.mark_live(
                v,
                bodies.iter().map(|b| b.root.clone()).collect(),
                &mut live,
            )?;
            let releases: Vec<String> = blobs
                .iter()
                .filter(|b| !live.contains(*b))
                .cloned()
                .collect();
            let kept = blobs.len() - releases.len();
            if releases.is_empty() {
                return Ok(PruneSummary {
                    kept,
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
    ) -> Result<()> {
        let mut seen: HashSet<(String, u64)> = HashSet::new();
        while !level.is_empty() {
            level.retain(|p| seen.insert((p.loc.blob.clone(), p.loc.offset)));
            for p in &level {
                live.insert(p.loc.blob.clone());
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
                        Kind::File { piece, .. } => {
                            live.insert(piece.loc.blob);
                        }
                        Kind::Symlink { .. } => {}
                    }
                }
                Ok(())
            })?;
            level = next;
        }
        Ok(())
    }
}
