//! The upgrade of a vault written before trees: its `/v1` objects become the tree's first
//! commit. Each object's latest version is fetched and checked against its author's
//! signature as any pull is, then pushed as a file of the tree. The objects themselves stay
//! as they were (readable with `enc object`), so nothing is lost if the import stops half
//! way; once the vault has a tree the server accepts no new object versions in it.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

use super::push::{PushOptions, PushSummary};
use super::source::Source;
use crate::ops::{Account, VaultCtx};
use crate::scan::Skipped;
use crate::transfer::{Progress, PullOptions};
use crate::{ClientError, Result};

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// The first commit, holding the imported files.
    pub push: PushSummary,
    /// How many objects became files of the tree (0 when another device's commit came
    /// first: its tree stands).
    pub files: u64,
    /// Objects that cannot be a path of the tree (a name that is also another object's
    /// directory), and why; they stay readable with `enc object pull`.
    pub skipped: Vec<Skipped>,
}

impl Account {
    /// Whether a push to `v` must first import objects written before trees: the vault has
    /// no tree yet and holds objects. Returns how many.
    pub fn objects_to_import(&self, v: &VaultCtx) -> Result<usize> {
        if v.info.objects == 0 || self.tree_head(v)?.is_some() {
            return Ok(0);
        }
        Ok(self.list(v)?.len())
    }

    /// Makes the vault's first commit from its objects' latest versions (each verified as a
    /// pull verifies it), with the version's time as the file's mtime.
    pub fn import_objects(&self, v: &VaultCtx, progress: &dyn Progress) -> Result<ImportSummary> {
        let objects = self.list(v)?;
        let dir = tempfile::Builder::new()
            .prefix(".enc-import-")
            .tempdir()
            .map_err(ClientError::io("creating a temporary directory"))?;
        let mut summary = ImportSummary::default();
        // A name that another name has as its directory cannot be a file of the tree.
        let names: std::collections::BTreeSet<&str> =
            objects.iter().map(|(n, _)| n.as_str()).collect();
        let is_dir = |name: &str| {
            names
                .range::<str, _>((std::ops::Bound::Excluded(name), std::ops::Bound::Unbounded))
                .next()
                .is_some_and(|n| n.strip_prefix(name).is_some_and(|r| r.starts_with('/')))
        };
        for (name, ver) in &objects {
            if is_dir(name) {
                summary.skipped.push(Skipped {
                    path: name.clone(),
                    why: "other objects have it as their directory".into(),
                });
                continue;
            }
            let dest = dir.path().join(name);
            let landed = (|| {
                let parent = dest.parent().unwrap_or(dir.path());
                std::fs::create_dir_all(parent)
                    .map_err(ClientError::io(format!("creating {}", parent.display())))?;
                let opts = PullOptions {
                    version: Some(ver.version),
                    raw: false,
                    dest: &dest,
                };
                self.pull(v, name, &opts, progress)?;
                let f = std::fs::File::options()
                    .write(true)
                    .open(&dest)
                    .map_err(ClientError::io(format!("opening {}", dest.display())))?;
                f.set_permissions(std::fs::Permissions::from_mode(0o644))
                    .and_then(|()| {
                        f.set_modified(UNIX_EPOCH + Duration::from_secs(ver.created.max(0) as u64))
                    })
                    .map_err(ClientError::io(format!(
                        "setting {}'s mtime",
                        dest.display()
                    )))
            })();
            // Anything else that goes wrong (a damaged object, the network, a full disk) stops
            // the import before it commits: nothing is left out for good.
            landed.map_err(|e| match e {
                ClientError::Integrity(m) => ClientError::Integrity(format!("{name}: {m}")),
                e => e,
            })?;
            summary.files += 1;
        }
        let source = Source {
            local: dir.path().to_path_buf(),
            dest: String::new(),
        };
        let mut plan = self.tree_plan(v, &[source], PushOptions::default())?;
        plan.remember = false;
        // Only as the first commit: when another device imported (or pushed) meanwhile, its
        // tree stands and this import is dropped.
        plan.rebase = false;
        match self.tree_push(v, plan, &()) {
            Ok(done) => summary.push = done,
            Err(e) if e.is_status(409) && self.tree_head(v)?.is_some() => {
                summary.files = 0;
            }
            Err(e) => return Err(e),
        }
        Ok(summary)
    }
}
