//! What a push sends: local files and directories, each with the path of the tree it lands
//! on, and the local file behind a path of the tree.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::{ClientError, Result};

/// Something a push sends: a local file or directory, and the path of the tree it becomes.
#[derive(Debug, Clone)]
pub struct Source {
    pub local: PathBuf,
    /// `""`: the directory's content becomes the tree's root.
    pub dest: String,
}

/// Sources that would land on one another are refused: each path of the tree gets one.
pub fn check_sources(sources: &[Source]) -> Result<()> {
    for (i, a) in sources.iter().enumerate() {
        for b in &sources[i + 1..] {
            let under = |x: &str, y: &str| {
                x.is_empty() || x == y || y.strip_prefix(x).is_some_and(|r| r.starts_with('/'))
            };
            if under(&a.dest, &b.dest) || under(&b.dest, &a.dest) {
                return Err(ClientError::Usage(format!(
                    "{} and {} would both land at /{}: push them separately",
                    a.local.display(),
                    b.local.display(),
                    if a.dest.len() <= b.dest.len() {
                        &a.dest
                    } else {
                        &b.dest
                    },
                )));
            }
        }
    }
    Ok(())
}

/// The local file behind a path of the tree.
pub(super) fn local_path(sources: &[Source], path: &str) -> PathBuf {
    for s in sources {
        if s.dest.is_empty() {
            return s.local.join(path);
        }
        if path == s.dest {
            return s.local.clone();
        }
        if let Some(rest) = path.strip_prefix(&s.dest).and_then(|r| r.strip_prefix('/')) {
            return s.local.join(rest);
        }
    }
    PathBuf::from(path)
}

pub(super) fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
}
