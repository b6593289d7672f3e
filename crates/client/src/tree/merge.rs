//! How a push's changes land on a tree: on the base it was planned on, or, after another push
//! moved the head, on the newer tree, keeping both sides' changes and naming the paths both
//! changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use enc_crypto::tree::{Entry, Kind};

use super::push::parent_of;

/// Removes `path`'s descendants from `tree`; returns them.
fn remove_below(tree: &mut BTreeMap<String, Entry>, path: &str) -> Vec<(String, Entry)> {
    let prefix = format!("{path}/");
    let below: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    below
        .into_iter()
        .filter_map(|k| tree.remove(&k).map(|e| (k, e)))
        .collect()
}

/// Whether another push changed `path` since `base` (a directory's own mtime moves with its
/// content: two directories are not a conflict).
fn differs(tree: Option<&Entry>, base: Option<&Entry>) -> bool {
    let dir = |e: Option<&Entry>| {
        matches!(
            e,
            Some(Entry {
                kind: Kind::Dir { .. },
                ..
            })
        )
    };
    tree != base && !(dir(tree) && dir(base))
}

fn has_children(tree: &BTreeMap<String, Entry>, path: &str) -> bool {
    let prefix = format!("{path}/");
    tree.range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// Applies `changes` to `tree` (the base's or, after a rebase, the new head's). `ours` is the
/// local view, for parent directories the other push removed. Returns the touched paths and
/// the paths another push changed too (`base` against `tree`).
pub(crate) fn apply(
    tree: &mut BTreeMap<String, Entry>,
    changes: &BTreeMap<String, Option<Entry>>,
    base: &BTreeMap<String, Entry>,
    ours: &HashMap<String, Entry>,
) -> (BTreeSet<String>, Vec<String>) {
    let mut touched = BTreeSet::new();
    let mut conflicts = Vec::new();
    for (path, change) in changes {
        if differs(tree.get(path), base.get(path)) {
            conflicts.push(path.clone());
        }
        let Some(entry) = change else { continue };
        // Every parent must be a directory (another push may have removed or replaced one).
        let mut parent = parent_of(path);
        while !parent.is_empty() {
            let is_dir = matches!(
                tree.get(parent),
                Some(Entry {
                    kind: Kind::Dir { .. },
                    ..
                })
            );
            // Ours, or (for rm and mv, which have no local view) the base's directory.
            let again = ours.get(parent).or_else(|| {
                base.get(parent)
                    .filter(|e| matches!(e.kind, Kind::Dir { .. }))
            });
            if !is_dir && let Some(mine) = again {
                if tree.get(parent).is_some() {
                    conflicts.push(parent.to_string());
                }
                tree.insert(parent.to_string(), mine.clone());
                touched.insert(parent.to_string());
            }
            parent = parent_of(parent);
        }
        if !matches!(entry.kind, Kind::Dir { .. }) {
            for (gone, e) in remove_below(tree, path) {
                if differs(Some(&e), base.get(&gone)) {
                    conflicts.push(gone);
                }
            }
        }
        tree.insert(path.clone(), entry.clone());
        touched.insert(path.clone());
    }
    // Removals deepest first; a directory stays while something (another push's) is in it.
    for (path, change) in changes.iter().rev() {
        if change.is_none() && !has_children(tree, path) && tree.remove(path).is_some() {
            touched.insert(path.clone());
        }
    }
    conflicts.sort();
    conflicts.dedup();
    (touched, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::push::placeholder;
    use enc_crypto::tree::Entry;

    fn file(name: &str, cid: u8) -> Entry {
        let mut piece = placeholder();
        piece.cid = [cid; 32];
        Entry {
            name: name.into(),
            mode: 0o644,
            mtime_ns: 1,
            kind: Kind::File { size: 1, piece },
        }
    }

    fn dir(name: &str) -> Entry {
        Entry {
            name: name.into(),
            mode: 0o755,
            mtime_ns: 1,
            kind: Kind::Dir {
                piece: placeholder(),
            },
        }
    }

    #[test]
    fn a_rebase_keeps_both_sides_and_names_the_paths_both_changed() {
        let base: BTreeMap<String, Entry> = [
            ("a".to_string(), dir("a")),
            ("a/x".to_string(), file("x", 1)),
            ("b".to_string(), file("b", 1)),
        ]
        .into();
        // The other push changed b and added a/y; ours changes b and a/x.
        let mut theirs = base.clone();
        theirs.insert("b".into(), file("b", 2));
        theirs.insert("a/y".into(), file("y", 2));
        let changes: BTreeMap<String, Option<Entry>> = [
            ("a/x".to_string(), Some(file("x", 3))),
            ("b".to_string(), Some(file("b", 3))),
        ]
        .into();
        let (touched, conflicts) = apply(&mut theirs, &changes, &base, &HashMap::new());
        assert_eq!(conflicts, ["b"]);
        assert_eq!(theirs["b"], file("b", 3));
        assert_eq!(theirs["a/x"], file("x", 3));
        assert_eq!(theirs["a/y"], file("y", 2));
        assert!(touched.contains("a/x") && touched.contains("b"));
    }

    #[test]
    fn a_removed_directory_stays_while_another_push_put_something_in_it() {
        let base: BTreeMap<String, Entry> = [
            ("a".to_string(), dir("a")),
            ("a/x".to_string(), file("x", 1)),
        ]
        .into();
        let changes: BTreeMap<String, Option<Entry>> =
            [("a".to_string(), None), ("a/x".to_string(), None)].into();
        let mut mine = base.clone();
        apply(&mut mine, &changes, &base, &HashMap::new());
        assert!(mine.is_empty());
        let mut theirs = base.clone();
        theirs.insert("a/y".into(), file("y", 2));
        apply(&mut theirs, &changes, &base, &HashMap::new());
        assert_eq!(theirs.keys().collect::<Vec<_>>(), ["a", "a/y"]);
    }

    #[test]
    fn a_file_over_a_directory_removes_what_was_in_it_and_a_missing_parent_comes_back() {
        let base: BTreeMap<String, Entry> = [
            ("a".to_string(), dir("a")),
            ("a/x".to_string(), file("x", 1)),
        ]
        .into();
        let changes: BTreeMap<String, Option<Entry>> =
            [("a".to_string(), Some(file("a", 2)))].into();
        let mut tree = base.clone();
        apply(&mut tree, &changes, &base, &HashMap::new());
        assert_eq!(tree.keys().collect::<Vec<_>>(), ["a"]);

        // The other push removed directory d; ours adds d/new: d comes back from ours.
        let base: BTreeMap<String, Entry> = [("d".to_string(), dir("d"))].into();
        let mut theirs = BTreeMap::new();
        let changes: BTreeMap<String, Option<Entry>> =
            [("d/new".to_string(), Some(file("new", 1)))].into();
        let ours: HashMap<String, Entry> = [("d".to_string(), dir("d"))].into();
        let (touched, _) = apply(&mut theirs, &changes, &base, &ours);
        assert_eq!(theirs.keys().collect::<Vec<_>>(), ["d", "d/new"]);
        assert!(touched.contains("d"));
    }
}
