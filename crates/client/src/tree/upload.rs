//! How a push stores what it sends: small pieces gathered into packs (one upload each), blobs
//! uploaded from memory and checked against what the server says it received, and the hashing
//! reader that streams go through.

use std::io::Read;

use enc_crypto::tree::{Hash, Loc, Piece};
use enc_proto::UploadReceipt;

use super::vault_path;
use crate::ops::{Account, VaultCtx};
use crate::{ClientError, Result};

/// Small pieces gathered into one blob of at most [`super::PACK`] bytes.
pub(super) struct Packer<K> {
    buf: Vec<u8>,
    items: Vec<(K, Hash, u64, u64, Hash)>,
}

impl<K> Packer<K> {
    pub(super) fn new() -> Self {
        Self {
            buf: Vec::new(),
            items: Vec::new(),
        }
    }

    pub(super) fn fits(&self, len: usize) -> bool {
        self.buf.is_empty() || self.buf.len() + len <= super::PACK
    }

    pub(super) fn add(&mut self, key: K, cid: Hash, sealed: &[u8]) {
        let chash = *blake3::hash(sealed).as_bytes();
        self.items
            .push((key, cid, self.buf.len() as u64, sealed.len() as u64, chash));
        self.buf.extend_from_slice(sealed);
    }

    /// Uploads the pack (if anything is in it) and returns each item's piece.
    pub(super) fn flush(
        &mut self,
        acct: &Account,
        v: &VaultCtx,
        up: &mut Uploads,
    ) -> Result<Vec<(K, Piece)>> {
        if self.items.is_empty() {
            return Ok(Vec::new());
        }
        let buf = std::mem::take(&mut self.buf);
        let blob = up.put(acct, v, buf)?;
        Ok(self
            .items
            .drain(..)
            .map(|(k, cid, offset, len, chash)| {
                let loc = Loc {
                    blob: blob.clone(),
                    offset,
                    len,
                };
                (k, Piece { loc, cid, chash })
            })
            .collect())
    }
}

/// The uploads a push made: its commit's `adds`.
#[derive(Default)]
pub(super) struct Uploads {
    pub(super) ids: Vec<String>,
    pub(super) sent: u64,
}

impl Uploads {
    /// Uploads one blob held in memory and checks that the server got exactly it.
    pub(super) fn put(&mut self, acct: &Account, v: &VaultCtx, buf: Vec<u8>) -> Result<String> {
        let (len, hash) = (buf.len() as u64, blake3::hash(&buf).to_hex().to_string());
        let receipt: UploadReceipt = acct
            .api
            .put_bytes(&format!("{}/uploads", vault_path(v)), buf)?;
        self.check(receipt, len, &hash)
    }

    pub(super) fn check(&mut self, receipt: UploadReceipt, len: u64, hash: &str) -> Result<String> {
        if receipt.size != len || receipt.hash != hash {
            return Err(ClientError::Integrity(
                "the server received different bytes than were sent".into(),
            ));
        }
        self.sent += len;
        self.ids.push(receipt.upload_id.clone());
        Ok(receipt.upload_id)
    }
}

/// Hashes and counts what is read through it: a large file's content id while it is sent, a
/// piece's ciphertext hash while it is received.
pub(super) struct Hashing<R> {
    pub(super) inner: R,
    pub(super) hasher: blake3::Hasher,
    pub(super) read: u64,
}

impl<R> Hashing<R> {
    pub(super) fn new(inner: R, hasher: blake3::Hasher) -> Self {
        Self {
            inner,
            hasher,
            read: 0,
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
