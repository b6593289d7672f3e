//! Naming what the server cannot give: a read that fails, or ends short, because a blob is
//! missing or cut short in the server's storage is reported with the files it held, so the
//! user knows which to push again (and the server's admin finds the blobs with `enc-server
//! scrub`).

use std::collections::BTreeMap;

use enc_crypto::tree::Piece;

use super::Want;
use crate::ClientError;
use crate::ops::{Account, VaultCtx};

/// Whether `e` may come of a blob the server's storage lost or cut short: the server's
/// `damaged` answer, an answer shorter than asked, or an answer cut off (a later blob of a
/// read fails only once the answer has begun; so may a network, which a second read tells).
pub(super) fn may_be_damage(e: &ClientError) -> bool {
    match e {
        ClientError::Api { code, .. } => code == "damaged",
        ClientError::Integrity(m) => m.starts_with("the server sent "),
        ClientError::Transport { .. } => true,
        _ => false,
    }
}

impl Account {
    /// After a read of many files' pieces failed with `cause`: which of `files` (a name, and
    /// its piece) the server cannot give, found by reading each blob's pieces on their own
    /// (one request a blob, whose first range the server opens before it answers), named in
    /// the error. `cause` itself when it cannot be damage, when each blob reads now, or the
    /// first failure that is not damage (a server gone away is not asked again and again).
    pub(super) fn name_unreadable(
        &self,
        v: &VaultCtx,
        files: &[(impl std::fmt::Display, &Piece)],
        cause: ClientError,
    ) -> ClientError {
        if !may_be_damage(&cause) {
            return cause;
        }
        let mut by_blob: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (_, piece)) in files.iter().enumerate() {
            by_blob.entry(piece.loc.blob.as_str()).or_default().push(i);
        }
        let mut lost = Vec::new();
        for of_blob in by_blob.values() {
            let wants: Vec<Want<'_>> = of_blob.iter().map(|&i| Want::from(files[i].1)).collect();
            match self.read_pieces(v, &wants, |_, _| Ok(())) {
                Ok(()) => {}
                Err(e) if is_damage(&e) => {
                    lost.extend(of_blob.iter().map(|&i| files[i].0.to_string()))
                }
                Err(e) => return e,
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
            "the server's storage has lost or cut short the stored content of {named}; its \
             admin's `enc-server scrub` lists what is damaged there"
        ))
    }
}

/// Whether `e` is the server saying its storage lost what was asked for, or an answer
/// shorter than the ranges asked.
fn is_damage(e: &ClientError) -> bool {
    may_be_damage(e) && !matches!(e, ClientError::Transport { .. })
}

/// A failed read of one piece (`what` names it): the server's `damaged` answer becomes an
/// error naming the file; an answer cut off says which file it was reading; any other
/// failure stays what it is.
pub(super) fn unreadable(what: &str, e: ClientError) -> ClientError {
    match e {
        e if is_damage(&e) => ClientError::Integrity(format!(
            "{what}: the server's storage has lost or cut short its stored content ({e}); its \
             admin's `enc-server scrub` lists what is damaged there"
        )),
        ClientError::Transport { server, detail } => ClientError::Transport {
            server,
            detail: format!(
                "{detail} (while reading {what}; if it happens again, the server's storage may be damaged)"
            ),
        },
        other => other,
    }
}
