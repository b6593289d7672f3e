//! Changes made on the tree itself, with no local directory: `enc rm` and `enc mv`.
//! Each is one signed commit, made by the push machinery (so it rebases like a push); a move
//! sends no content: the moved entries keep their pieces.

use std::collections::BTreeMap;

use enc_crypto::tree::{Entry, Kind};

use super::push::{ChangeKind, PushPlan, parent_of};
use super::{Tree, join};
use crate::ops::{Account, VaultCtx};
use crate::{ClientError, Result};

/// A path as the tree names it: relative, `/`-separated, no empty, `.` or `..` parts.
pub fn tree_path(path: &str) -> Result<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(ClientError::Usage(format!(
            "{path:?}: a path of the tree has no . or .. parts"
        )));
    }
    for p in &parts {
        enc_crypto::tree::validate_entry_name(p)
            .map_err(|e| ClientError::Usage(format!("{path:?}: {e}")))?;
    }
    Ok(parts.join("/"))
}

/// `path` and everything below it in `tree`.
fn subtree<'a>(tree: &'a BTreeMap<String, Entry>, path: &str) -> Vec<(&'a String, &'a Entry)> {
    let prefix = format!("{path}/");
    tree.get_key_value(path)
        .into_iter()
        .chain(
            tree.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix)),
        )
        .collect()
}

fn is_dir(e: Option<&Entry>) -> bool {
    matches!(
        e,
        Some(Entry {
            kind: Kind::Dir { .. },
            ..
        })
    )
}

/// What `rm` or `mv` would do, checked against `base`.
fn edit_plan(base: Tree, changes: BTreeMap<String, Option<Entry>>) -> PushPlan {
    let list = changes
        .iter()
        .filter(|(p, e)| !is_dir(e.as_ref().or_else(|| base.entries.get(*p))))
        .map(|(p, e)| {
            let kind = match e {
                None => ChangeKind::Removed,
                Some(_) => ChangeKind::New,
            };
            (kind, p.clone())
        })
        .collect();
    PushPlan::edit(base, changes, list)
}

impl Account {
    /// Removes `paths` from the vault's tree; a directory only with `recursive`, and then
    /// with everything in it. Every path must be in the tree.
    pub fn tree_rm_plan(
        &self,
        v: &VaultCtx,
        paths: &[String],
        recursive: bool,
    ) -> Result<PushPlan> {
        let base = self.tree(v)?;
        let mut changes = BTreeMap::new();
        for raw in paths {
            let path = tree_path(raw)?;
            if path.is_empty() {
                return Err(ClientError::Usage(
                    "refusing to remove the whole tree; name what is in it".into(),
                ));
            }
            let Some(e) = base.entries.get(&path) else {
                return Err(ClientError::Usage(format!(
                    "no {path:?} in the vault's tree; `enc ls` lists it"
                )));
            };
            if is_dir(Some(e)) && !recursive {
                return Err(ClientError::Usage(format!(
                    "{path:?} is a directory: name it as {path}/ (or pass --recursive) to remove it with everything in it"
                )));
            }
            for (p, _) in subtree(&base.entries, &path) {
                changes.insert(p.clone(), None);
            }
        }
        Ok(edit_plan(base, changes))
    }

    /// Moves `from` to `to` in the vault's tree, with `mv`'s rule: into `to` when it is a
    /// directory of the tree, else as `to` (whose parent must be a directory). Nothing is
    /// sent again: the entries keep their pieces, modes and mtimes.
    pub fn tree_mv_plan(&self, v: &VaultCtx, from: &[String], to: &str) -> Result<PushPlan> {
        let base = self.tree(v)?;
        let to = tree_path(to)?;
        let into = to.is_empty() || is_dir(base.entries.get(&to));
        if from.len() > 1 && !into {
            return Err(ClientError::Usage(format!(
                "moving several paths needs a directory of the tree to move them into; {to:?} is not one"
            )));
        }
        let mut changes: BTreeMap<String, Option<Entry>> = BTreeMap::new();
        for raw in from {
            let src = tree_path(raw)?;
            let Some(top) = base.entries.get(&src) else {
                return Err(ClientError::Usage(format!(
                    "no {src:?} in the vault's tree; `enc ls` lists it"
                )));
            };
            if src.is_empty() {
                return Err(ClientError::Usage("the tree's root cannot move".into()));
            }
            let dst = if into {
                join(&to, &top.name)
            } else {
                to.clone()
            };
            if dst == src {
                continue;
            }
            if dst.starts_with(&format!("{src}/")) {
                return Err(ClientError::Usage(format!(
                    "cannot move {src:?} into itself ({dst:?})"
                )));
            }
            if base.entries.contains_key(&dst) || changes.get(&dst).is_some_and(Option::is_some) {
                return Err(ClientError::Usage(format!(
                    "{dst:?} already exists in the vault's tree: remove it first (`enc rm`)"
                )));
            }
            let parent = parent_of(&dst);
            if !parent.is_empty() && !is_dir(base.entries.get(parent)) {
                return Err(ClientError::Usage(format!(
                    "{parent:?} is not a directory of the vault's tree"
                )));
            }
            for (p, e) in subtree(&base.entries, &src) {
                let moved = format!("{dst}{}", &p[src.len()..]);
                let mut e = e.clone();
                if *p == src {
                    dst.rsplit('/')
                        .next()
                        .unwrap_or(&dst)
                        .clone_into(&mut e.name);
                }
                changes.entry(p.clone()).or_insert(None);
                changes.insert(moved, Some(e));
            }
        }
        Ok(edit_plan(base, changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_paths_are_normalised_and_never_climb() {
        assert_eq!(tree_path("/a//b/").unwrap(), "a/b");
        assert_eq!(tree_path("").unwrap(), "");
        assert!(tree_path("a/../b").is_err());
        assert!(tree_path("./a").is_err());
    }
}
