//! The one path an upload's bytes take, on every protocol: the size limit, the quota while
//! they stream, the content hash, the durable write, and the abort that leaves nothing.
//!
//! A protocol opens an [`Ingest`] once it has reserved where the bytes go (a blob key the
//! collector frees after a crash, or memory for a file kept in its database row), pushes each
//! chunk as it arrives, and either [`finish`](Ingest::finish)es (the blob is durable; the
//! protocol then records it in one transaction) or [`abort`](Ingest::abort)s. An `Ingest`
//! dropped unfinished (a cancelled handler, a dropped connection) leaves its blob unfinished
//! and invisible; the reservation lets the collector delete it. One ingest is one file, so a
//! batch of files is a list of them finished before one transaction and one durability
//! barrier.

use bytes::Bytes;
use enc_store::{BlobWriter, Blobs, StoreError};
use futures::StreamExt as _;
use sha2::Digest as _;

/// The hash an upload is named by or answered with.
#[derive(Clone, Copy)]
pub enum Hash {
    /// BLAKE3 (`/v1` uploads' receipts).
    Blake3,
    /// SHA-256 (restic names files by it).
    Sha256,
    /// None (Mercury's archives are named by the client).
    None,
}

enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
    None,
}

/// Where the bytes go.
enum Sink {
    Blob(Box<dyn BlobWriter>),
    Memory(Vec<u8>),
    /// Nowhere: the body is only checked (restic's retry of a file it has).
    Nowhere,
}

/// What an upload may grow to.
#[derive(Clone, Copy)]
pub struct Limits {
    /// The largest upload accepted.
    pub max: u64,
    /// How many bytes the quota leaves for it (`None`: no quota, or one the protocol charges
    /// itself before each push).
    pub room: Option<u64>,
    /// The size the client declared, when it must not be exceeded.
    pub declared: Option<u64>,
}

/// Why a push was refused; the upload is aborted by then.
#[derive(Debug)]
pub enum Refused {
    /// Past [`Limits::max`].
    TooLarge(u64),
    /// Past [`Limits::room`].
    Quota,
    /// Past [`Limits::declared`].
    LongerThanDeclared(u64),
    /// The blob store failed.
    Store(StoreError),
}

/// A finished upload.
pub struct Received {
    /// Bytes received.
    pub size: u64,
    /// Lower-case hex of its hash (empty for [`Hash::None`]).
    pub hash: String,
    /// The bytes, when they were kept in memory.
    pub data: Option<Vec<u8>>,
}

/// One upload between its reservation and its record.
pub struct Ingest {
    sink: Sink,
    hasher: Hasher,
    size: u64,
    limits: Limits,
}

impl Ingest {
    /// Streams into a new blob at `key`.
    pub async fn to_blob(
        blobs: &Blobs,
        key: &str,
        hash: Hash,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        let writer = blobs.writer(key).await?;
        Ok(Self::new(Sink::Blob(writer), hash, limits))
    }

    /// Gathers a small file in memory (kept in its database row).
    pub fn to_memory(hash: Hash, limits: Limits) -> Self {
        Self::new(Sink::Memory(Vec::new()), hash, limits)
    }

    /// Only checks the bytes against the limits and hashes them.
    pub fn to_nothing(hash: Hash, limits: Limits) -> Self {
        Self::new(Sink::Nowhere, hash, limits)
    }

    fn new(sink: Sink, hash: Hash, limits: Limits) -> Self {
        let hasher = match hash {
            Hash::Blake3 => Hasher::Blake3(Box::default()),
            Hash::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Hash::None => Hasher::None,
        };
        Self {
            sink,
            hasher,
            size: 0,
            limits,
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.size
    }

    /// Checks one chunk against every limit, then hashes and writes it. On a refusal or a
    /// store error the upload is aborted.
    pub async fn push(&mut self, chunk: Bytes) -> Result<(), Refused> {
        let size = self.size + chunk.len() as u64;
        let limits = self.limits;
        let refused = if size > limits.max {
            Some(Refused::TooLarge(limits.max))
        } else if limits.declared.is_some_and(|d| size > d) {
            Some(Refused::LongerThanDeclared(limits.declared.unwrap_or(0)))
        } else if limits.room.is_some_and(|r| size > r) {
            Some(Refused::Quota)
        } else {
            None
        };
        if let Some(why) = refused {
            self.abort_sink().await;
            return Err(why);
        }
        self.size = size;
        match &mut self.hasher {
            Hasher::Blake3(h) => {
                h.update(&chunk);
            }
            Hasher::Sha256(h) => h.update(&chunk),
            Hasher::None => {}
        }
        match &mut self.sink {
            Sink::Memory(kept) => kept.extend_from_slice(&chunk),
            Sink::Nowhere => {}
            Sink::Blob(w) => {
                if let Err(e) = w.write(chunk).await {
                    self.abort_sink().await;
                    return Err(Refused::Store(e));
                }
            }
        }
        Ok(())
    }

    async fn abort_sink(&mut self) {
        if let Sink::Blob(w) = std::mem::replace(&mut self.sink, Sink::Nowhere) {
            let _ = w.abort().await;
        }
    }

    /// The lower-case hex hash of what was received so far (empty for [`Hash::None`]), so a
    /// protocol can refuse a body before it is made durable.
    pub fn digest(&self) -> String {
        match &self.hasher {
            Hasher::Blake3(h) => h.finalize().to_hex().to_string(),
            Hasher::Sha256(h) => hex::encode(h.clone().finalize()),
            Hasher::None => String::new(),
        }
    }

    /// Makes the blob durable (nothing to do for memory) and returns what was received.
    pub async fn finish(self) -> Result<Received, StoreError> {
        let hash = self.digest();
        let data = match self.sink {
            Sink::Blob(w) => {
                w.finish().await?;
                None
            }
            Sink::Memory(kept) => Some(kept),
            Sink::Nowhere => None,
        };
        Ok(Received {
            size: self.size,
            hash,
            data,
        })
    }

    /// Discards everything received.
    pub async fn abort(mut self) {
        self.abort_sink().await;
    }
}

/// Most of a refused body read and discarded before answering.
pub const MAX_DRAIN: u64 = 64 << 20;

/// Reads and discards a bounded remainder of a refused body, so the client, still sending,
/// gets to read the error instead of a reset connection.
pub async fn drain(stream: &mut axum::body::BodyDataStream) {
    let mut drained = 0u64;
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(c)) => {
                    drained += c.len() as u64;
                    if drained > MAX_DRAIN {
                        return;
                    }
                }
                _ => return,
            },
            () = &mut deadline => return,
        }
    }
}
