//! The directory nodes a commit needs: those on the paths it changed, built again deepest
//! first (each level sealed on every core and packed), so a change to one file rewrites only
//! the nodes between it and the root.

use std::collections::{BTreeMap, BTreeSet};

use enc_crypto::tree::{Entry, Hash, Kind, Node, Piece};

use super::push::parent_of;
use super::upload::{Packer, Uploads};
use super::{cid_of, par_map};
use crate::ops::{Account, VaultCtx};
use crate::{ClientError, Result};

impl Account {
    /// Rebuilds the directory nodes on the paths of `touched` (and every touched directory),
    /// deepest first, a pack per level; returns the root's piece.
    pub(super) fn build_nodes(
        &self,
        v: &VaultCtx,
        tree: &mut BTreeMap<String, Entry>,
        touched: &BTreeSet<String>,
        up: &mut Uploads,
    ) -> Result<Piece> {
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        dirty.insert(String::new());
        for path in touched {
            if matches!(
                tree.get(path),
                Some(Entry {
                    kind: Kind::Dir { .. },
                    ..
                })
            ) {
                dirty.insert(path.clone());
            }
            let mut p = parent_of(path);
            while !p.is_empty() && dirty.insert(p.to_string()) {
                p = parent_of(p);
            }
        }
        // A directory is dirty only if it is still in the tree.
        dirty.retain(|d| d.is_empty() || tree.contains_key(d));
        let mut by_depth: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for d in &dirty {
            let depth = if d.is_empty() {
                0
            } else {
                d.matches('/').count() + 1
            };
            by_depth.entry(depth).or_default().push(d.clone());
        }
        let recipient = v.keys.recipient();
        let mut built: Vec<(String, Vec<u8>, Hash)> = Vec::new();
        let mut root = None;
        // Deepest level first: a directory's node names its subdirectories' new pieces.
        for (_, dirs) in by_depth.into_iter().rev() {
            built.clear();
            let tree_now = &*tree;
            let sealed = par_map(&dirs, |d| -> Result<(Vec<u8>, Hash)> {
                let prefix = if d.is_empty() {
                    String::new()
                } else {
                    format!("{d}/")
                };
                let entries: Vec<Entry> = tree_now
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, _)| !k[prefix.len()..].contains('/'))
                    .map(|(_, e)| e.clone())
                    .collect();
                let plain = Node::canonical(entries)?.encode();
                let cid = cid_of(v, &plain);
                let sealed = enc_crypto::seal_piece(&recipient, &plain)
                    .map_err(ClientError::io("encrypting"))?;
                Ok((sealed, cid))
            });
            for (d, done) in dirs.into_iter().zip(sealed) {
                let (sealed, cid) = done?;
                built.push((d, sealed, cid));
            }
            let mut packer = Packer::<String>::new();
            for (d, sealed, cid) in built.drain(..) {
                if !packer.fits(sealed.len()) {
                    self.place(tree, packer.flush(self, v, up)?, &mut root);
                }
                packer.add(d, cid, &sealed);
            }
            let placed = packer.flush(self, v, up)?;
            self.place(tree, placed, &mut root);
        }
        root.ok_or_else(|| ClientError::Usage("no root directory was built".into()))
    }

    fn place(
        &self,
        tree: &mut BTreeMap<String, Entry>,
        placed: Vec<(String, Piece)>,
        root: &mut Option<Piece>,
    ) {
        for (d, piece) in placed {
            if d.is_empty() {
                *root = Some(piece);
            } else if let Some(Entry {
                kind: Kind::Dir { piece: p },
                ..
            }) = tree.get_mut(&d)
            {
                *p = piece;
            }
        }
    }
}
