//! Blob storage: ciphertext by key, streamed both ways, behind [`BlobStore`].
//!
//! [`ObjectBlobs`] implements it over any `object_store` backend. On the local filesystem a
//! blob is written to a staging file and renamed into place, with `fsync` of the file and its
//! directory, only when [`BlobWriter::finish`] is called; a writer that is dropped or aborted
//! leaves nothing at the key. Small local blobs are one `object_store` `put`; large ones go
//! through [`crate::direct`], which writes around the page cache. On an S3-compatible store a blob is one `PUT` (small) or a
//! multipart upload that becomes visible, atomically, only when it is completed.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};

use crate::direct::DirectWriter;
use crate::{Result, StoreError};

/// Read size for local blobs.
const READ_CHUNK: usize = 1 << 20;

/// Handle to the blob store.
pub type Blobs = Arc<dyn BlobStore>;

/// A stream of blob bytes.
pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// Blob operations.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts writing a blob; nothing is visible at `key` until `finish` succeeds.
    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>>;
    /// Streams a blob.
    async fn read(&self, key: &str) -> Result<BlobStream> {
        self.read_range(key, None).await
    }
    /// Streams bytes `start..end` of a blob (all of it for `None`); the caller has checked
    /// the range against the blob's size.
    async fn read_range(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BlobStream>;
    /// Deletes a blob; deleting a missing blob succeeds.
    async fn delete(&self, key: &str) -> Result<()>;
    /// A blob's size as stored, `None` if there is no blob at `key`.
    async fn size(&self, key: &str) -> Result<Option<u64>>;
    /// Checks that the store answers (a write, a read and a delete of a probe blob).
    async fn ping(&self) -> Result<()>;
    /// Every blob stored, with its size, in no particular order (finished ones only: an
    /// unfinished write is not listed).
    fn list(&self) -> futures::stream::BoxStream<'static, Result<(String, u64)>>;
}

/// An unfinished blob.
#[async_trait::async_trait]
pub trait BlobWriter: Send {
    /// Appends bytes; waits while too much is in flight, so memory stays bounded.
    async fn write(&mut self, data: Bytes) -> Result<()>;
    /// Makes the blob durable and visible.
    async fn finish(self: Box<Self>) -> Result<()>;
    /// Discards everything written.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// [`BlobStore`] over an `object_store` backend.
pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    part_size: usize,
    /// Parts of one upload being sent while the next one fills.
    parts_in_flight: usize,
    /// The directory of a local store: small reads go straight to the file.
    local_root: Option<std::path::PathBuf>,
}

/// Reads up to this size are done in one call instead of a stream of them.
const SMALL_READ: u64 = 4 << 20;

/// Reads `range` of a local blob. What the page cache holds is read on the calling task with
/// `RWF_NOWAIT`, which never waits for the disk; only the rest goes to the blocking pool. A
/// restic restore is a chain of small range reads that each wait for the last, and the hop to a
/// blocking thread and back was a good part of each one.
async fn read_small(file: std::path::PathBuf, r: std::ops::Range<u64>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; (r.end - r.start) as usize];
    let f = std::fs::File::open(&file).map_err(StoreError::local)?;
    let mut done = 0;
    while done < buf.len() {
        let mut slices = [std::io::IoSliceMut::new(&mut buf[done..])];
        match rustix::io::preadv2(
            &f,
            &mut slices,
            r.start + done as u64,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => {
                return Err(StoreError::local(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                )));
            }
            Ok(n) => done += n,
            // Not cached (EAGAIN), or a kernel or filesystem without RWF_NOWAIT.
            Err(_) => break,
        }
    }
    if done == buf.len() {
        return Ok(buf);
    }
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        f.read_exact_at(&mut buf[done..], r.start + done as u64)?;
        Ok(buf)
    })
    .await
    .map_err(|e| StoreError::Batch(format!("read task failed: {e}")))?
    .map_err(StoreError::local)
}

impl ObjectBlobs {
    /// Blobs in a local directory, durable (`fsync`ed) on finish.
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(StoreError::local)?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(fs),
            // Unused: large local blobs go through `DirectWriter` (2 MiB parts, two in flight).
            part_size: 2 * 1024 * 1024,
            parts_in_flight: 2,
            local_root: Some(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())),
        })
    }
}

/// Where and how to reach an S3-compatible bucket.
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`), if any.
    pub prefix: Option<String>,
    /// `https://…` or `http://…` of a store other than AWS (Garage, MinIO, Ceph…).
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

impl ObjectBlobs {
    /// Blobs in an S3-compatible bucket; streamed both ways, multipart above 1 MiB.
    pub fn s3(s: &S3Settings) -> Result<Self> {
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_virtual_hosted_style_request(!s.path_style)
            // A store that refuses connections is told to the client after six retries (about
            // 6 s of back-off; a 503), not object_store's ten (about a minute); a restart of a
            // few seconds is still ridden out. The three minutes in which a retry may start
            // stay the default: a long streamed read that meets a timeout is resumed.
            .with_retry(object_store::RetryConfig {
                max_retries: 6,
                ..object_store::RetryConfig::default()
            });
        if let Some(e) = &s.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        let store: Arc<dyn ObjectStore> = match s.prefix.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Arc::new(object_store::prefix::PrefixStore::new(b.build()?, p)),
            None => Arc::new(b.build()?),
        };
        Ok(Self {
            store,
            // S3's smallest part (but the last) is 5 MiB: one being sent while the next fills
            // keeps an upload near 10 MiB.
            part_size: 5 * 1024 * 1024,
            parts_in_flight: 1,
            local_root: None,
        })
    }
}

/// Removes staging files (`<key>#<n>`) that a crash left behind in a local blob directory.
/// They were never visible; call this only while no upload is in flight (at start-up).
pub fn sweep_local_staging(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in entries {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            removed += sweep_local_staging(&e.path())?;
        } else if e.file_name().to_string_lossy().contains('#') {
            std::fs::remove_file(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the empty directories of `key`'s path below `root`, deepest first; stops at the
/// first that is not empty (or not there).
fn prune_empty(root: &std::path::Path, key: &str) {
    if key.split('/').any(|c| c == ".." || c.is_empty()) {
        return;
    }
    let mut dir = root.join(key);
    while dir.pop() && dir.starts_with(root) && dir != root {
        if std::fs::remove_dir(&dir).is_err() {
            break;
        }
    }
}

fn path(key: &str) -> StorePath {
    StorePath::from(key)
}

/// Blobs up to this size are buffered and stored with one `put` (one blocking call on a local
/// store); larger ones switch to a multipart upload when they cross it.
const SMALL_PUT: usize = 1 << 20;

/// Buffers a small blob; once it grows past [`SMALL_PUT`] it becomes a [`DirectWriter`] on a
/// local store or a multipart upload on any other.
struct LazyWriter {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    part_size: usize,
    parts_in_flight: usize,
    /// Where the blob goes on a local store.
    local_dest: Option<std::path::PathBuf>,
    buffered: Vec<Bytes>,
    len: usize,
    large: Option<Box<dyn BlobWriter>>,
}

/// A multipart upload of `object_store`.
struct Multipart {
    upload: WriteMultipart,
    parts_in_flight: usize,
}

#[async_trait::async_trait]
impl BlobWriter for Multipart {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.upload.wait_for_capacity(self.parts_in_flight).await?;
        self.upload.put(data);
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<()> {
        self.upload.finish().await?;
        Ok(())
    }
    async fn abort(self: Box<Self>) -> Result<()> {
        self.upload.abort().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl BlobWriter for LazyWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        if self.large.is_none() {
            if self.len + data.len() <= SMALL_PUT {
                self.len += data.len();
                self.buffered.push(data);
                return Ok(());
            }
            let mut large: Box<dyn BlobWriter> = match &self.local_dest {
                Some(dest) => Box::new(DirectWriter::create(dest.clone()).await?),
                None => {
                    let upload = self.store.put_multipart(&self.path).await?;
                    Box::new(Multipart {
                        upload: WriteMultipart::new_with_chunk_size(upload, self.part_size),
                        parts_in_flight: self.parts_in_flight,
                    })
                }
            };
            for b in self.buffered.drain(..) {
                large.write(b).await?;
            }
            self.large = Some(large);
        }
        self.large.as_mut().expect("set above").write(data).await
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        match self.large {
            Some(w) => w.finish().await,
            None => {
                let payload: object_store::PutPayload = self.buffered.into_iter().collect();
                self.store.put(&self.path, payload).await?;
                Ok(())
            }
        }
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        match self.large {
            Some(w) => w.abort().await,
            None => Ok(()),
        }
    }
}

/// Whether `key` is a plain relative path (no empty, `.` or `..` part) that maps one-to-one
/// onto a file under a local blob directory.
fn plain_key(key: &str) -> bool {
    key.split('/').all(|p| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    })
}

#[async_trait::async_trait]
impl BlobStore for ObjectBlobs {
    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(LazyWriter {
            store: self.store.clone(),
            path: path(key),
            part_size: self.part_size,
            parts_in_flight: self.parts_in_flight,
            local_dest: match &self.local_root {
                Some(root) if plain_key(key) => Some(root.join(key)),
                _ => None,
            },
            buffered: Vec::new(),
            len: 0,
            large: None,
        }))
    }

    async fn read_range(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BlobStream> {
        if let (Some(root), Some(r)) = (&self.local_root, &range)
            && r.end - r.start <= SMALL_READ
            && plain_key(key)
        {
            let data = read_small(root.join(key), r.clone()).await?;
            return Ok(futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed());
        }
        let opts = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            ..Default::default()
        };
        let got = self
            .store
            .get_opts(&path(key), opts)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => StoreError::NotFound,
                other => StoreError::Blob(other),
            })?;
        let span = got.range.clone();
        match got.payload {
            // object_store reads local files 8 KiB at a time; read 1 MiB at a time instead.
            object_store::GetResultPayload::File(mut file, _) => {
                use std::io::Seek as _;
                file.seek(std::io::SeekFrom::Start(span.start))
                    .map_err(StoreError::local)?;
                let file = tokio::fs::File::from_std(file);
                let limited = tokio::io::AsyncReadExt::take(file, span.end - span.start);
                Ok(
                    tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK)
                        .map(|r| r.map_err(StoreError::local))
                        .boxed(),
                )
            }
            object_store::GetResultPayload::Stream(s) => {
                Ok(s.map(|r| r.map_err(StoreError::Blob)).boxed())
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&path(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                // Gone already (a crash between the file and its directories, or someone's
                // hand): the directories above it, which may be named by a user's id, go
                // when empty, as they would have with the file.
                if let Some(root) = &self.local_root {
                    let root = root.clone();
                    let key = key.to_string();
                    let _ = tokio::task::spawn_blocking(move || prune_empty(&root, &key)).await;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> futures::stream::BoxStream<'static, Result<(String, u64)>> {
        use futures::StreamExt as _;
        self.store
            .list(None)
            .map(|m| {
                let m = m?;
                Ok((m.location.to_string(), m.size))
            })
            .boxed()
    }

    async fn ping(&self) -> Result<()> {
        let key = path(&format!("health/probe-{}", uuid::Uuid::new_v4()));
        self.store
            .put(&key, Bytes::from_static(b"ok").into())
            .await?;
        let back = self.store.get(&key).await?.bytes().await?;
        self.store.delete(&key).await?;
        if back.as_ref() != b"ok" {
            return Err(StoreError::Conflict("blob store returned different bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small reads give the same bytes whether the page cache holds all of the range (read
    /// on the task), none of it (the blocking pool) or part of it (both).
    #[tokio::test]
    async fn small_reads_from_cache_disk_or_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("blob");
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&file, &data).expect("write");
        let f = std::fs::File::open(&file).expect("open");
        f.sync_all().expect("fsync");
        let evict = |from: u64, len: u64| {
            rustix::fs::fadvise(
                &f,
                from,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::DontNeed,
            )
            .expect("fadvise")
        };
        for (from, to) in [(0u64, 4096u64), (5000, 1 << 20), (1 << 20, 3 << 20)] {
            let want = &data[from as usize..to as usize];
            assert_eq!(
                read_small(file.clone(), from..to).await.expect("cached"),
                want
            );
            evict(0, 3 << 20);
            assert_eq!(
                read_small(file.clone(), from..to).await.expect("on disk"),
                want
            );
            evict(from + (to - from) / 2, 3 << 20);
            assert_eq!(
                read_small(file.clone(), from..to).await.expect("half"),
                want
            );
        }
        assert!(matches!(
            read_small(dir.path().join("missing"), 0..1).await,
            Err(StoreError::NotFound)
        ));
        assert!(
            read_small(file.clone(), (3 << 20) - 1..(3 << 20) + 1)
                .await
                .is_err()
        );
    }
}
