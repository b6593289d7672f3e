//! Naming what the server cannot give: a read that fails, or ends short, because a blob is
//! missing or cut short in the server's storage is reported with the files it held, so the
//! user knows which to push again (and the server's admin finds the blobs with `enc-server
//! scrub`).

use std::collections::BTreeMap;

use enc_crypto::tree::Piece;

use super::Want;
use crate::ClientError;
use crate::ops::{Account, VaultCtx};

impl Account {
    /// After a read of many files' pieces failed with `cause`: which of `files` (a name, and
    /// its piece) the server cannot give, found by reading each blob's pieces on their own
    /// (one request a blob), named in the error. `cause` itself if each blob reads now.
    pub(super) fn name_unreadable(
        &self,
        v: &VaultCtx,
        files: &[(impl std::fmt::Display, &Piece)],
        cause: ClientError,
    ) -> ClientError {
        let mut by_blob: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (_, piece)) in files.iter().enumerate() {
            by_blob.entry(piece.loc.blob.as_str()).or_default().push(i);
        }
        let mut lost = Vec::new();
        for of_blob in by_blob.values() {
            let wants: Vec<Want<'_>> = of_blob.iter().map(|&i| Want::from(files[i].1)).collect();
            if self.read_pieces(v, &wants, |_, _| Ok(())).is_err() {
                lost.extend(of_blob.iter().map(|&i| files[i].0.to_string()));
            }
        }
        if lost.is_empty() {
            return cause;
        }
        let more = lost.len().saturating_sub(10);
        let mut named = lost[..lost.len().min(10)].join(", ");
        if more > 0 {
            named.push_str(&format!(" and {more} more"));
        }
        ClientError::Integrity(format!(
            "the server cannot give the stored content of {named} ({cause}); its admin's \
             `enc-server scrub` lists what is damaged there"
        ))
    }
}

/// A failed read of one piece (`what` names it): the server's error or a short answer,
/// named for the file it holds.
pub(super) fn unreadable(what: &str, e: ClientError) -> ClientError {
    match e {
        ClientError::Api { .. } | ClientError::Transport { .. } | ClientError::Integrity(_) => {
            ClientError::Integrity(format!(
                "{what}: the server cannot give its stored content ({e}); its admin's \
                 `enc-server scrub` lists what is damaged there"
            ))
        }
        other => other,
    }
}
