//! Large blobs on the local filesystem, written around the page cache.
//!
//! A buffered write of a large blob copies every byte into the page cache, and on this kind of
//! machine that copy is most of the server's CPU during an upload (BENCHMARKS.md). The
//! [`DirectWriter`] gathers the stream into 4 KiB-aligned parts and writes them with `O_DIRECT`,
//! two parts in flight while the next fills, so the device reads them straight from our
//! buffers. The unaligned tail goes through an ordinary handle. Durability is unchanged: the
//! file is written under a staging name (`<key>#<n>`, which
//! [`sweep_local_staging`](crate::blob::sweep_local_staging) removes after a crash),
//! `fsync`ed, renamed into place and its directory `fsync`ed, exactly as `object_store`'s local
//! store does, so nothing is visible at the key until [`BlobWriter::finish`] returns.
//!
//! Filesystems that refuse `O_DIRECT` (tmpfs on older kernels, some network filesystems) get
//! ordinary writes, decided at open and again at the first refused write.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::blob::BlobWriter;
use crate::{Result, StoreError};

/// Alignment of buffers, offsets and lengths of `O_DIRECT` writes (covers 512 B and 4 KiB
/// logical blocks).
const ALIGN: usize = 4096;
/// Size of one write; a multiple of [`ALIGN`].
const PART: usize = 2 << 20;
/// Parts being written while the next one fills.
const IN_FLIGHT: usize = 2;

/// A heap buffer whose usable region starts on an [`ALIGN`] boundary. The default one has no
/// room at all (what a finished writer leaves behind).
#[derive(Default)]
struct Aligned {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    /// Room for one part.
    fn part() -> Self {
        let raw = vec![0u8; PART + ALIGN];
        // Moving the Vec never moves its heap block, so the offset stays right.
        let start = (ALIGN - raw.as_ptr() as usize % ALIGN) % ALIGN;
        Self { raw, start, len: 0 }
    }
    fn room(&self) -> usize {
        self.raw.len().saturating_sub(ALIGN) - self.len
    }
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        let at = self.start + self.len;
        self.raw[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }
    fn bytes(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

fn io_err(path: &Path, what: &str, e: io::Error) -> StoreError {
    StoreError::local(format!("{what} {}: {e}", path.display()))
}

/// Opens `path` for writing, with `O_DIRECT` when asked.
fn open(path: &Path, direct: bool, create_new: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true);
    if create_new {
        o.create_new(true);
    }
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

/// `fsync` of a directory, so an entry created or renamed in it survives a crash.
fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates the missing parent directories of `path`, `fsync`ing every directory whose
/// entries changed.
fn create_parents(path: &Path) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let mut existing = parent;
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => break,
        }
    }
    std::fs::create_dir_all(parent)?;
    let mut dir = parent;
    loop {
        fsync_dir(dir)?;
        if dir == existing {
            return Ok(());
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return Ok(()),
        }
    }
}

/// Creates a fresh staging file `<dest>#<n>`; returns it (direct if the filesystem allows)
/// and its path.
fn create_staging(dest: &Path) -> io::Result<(File, PathBuf, bool)> {
    let mut n = 1u32;
    loop {
        let mut name = dest.as_os_str().to_owned();
        name.push(format!("#{n}"));
        let path = PathBuf::from(name);
        match open(&path, true, true) {
            Ok(f) => return Ok((f, path, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Some kernels create the file before they refuse the flag.
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)?;
                return Ok((f, path, false));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound && n == 1 => create_parents(&path)?,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `data` at `offset`: directly while the filesystem accepts it, through an ordinary
/// handle (and from then on for this blob) once it refuses.
fn write_at(
    file: &File,
    path: &Path,
    direct: &AtomicBool,
    data: &[u8],
    offset: u64,
) -> io::Result<()> {
    if direct.load(Ordering::Relaxed) {
        match file.write_all_at(data, offset) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                direct.store(false, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    open(path, false, false)?.write_all_at(data, offset)
}

/// One large blob being written; see the module documentation.
pub(crate) struct DirectWriter {
    dest: PathBuf,
    staging: PathBuf,
    file: Arc<File>,
    /// Whether `file` still takes `O_DIRECT` writes.
    direct: Arc<AtomicBool>,
    filling: Aligned,
    spare: Vec<Aligned>,
    in_flight: VecDeque<tokio::task::JoinHandle<io::Result<Aligned>>>,
    /// File offset of `filling`'s first byte.
    offset: u64,
    /// Set once the staging file is renamed or removed; `Drop` removes it otherwise.
    settled: bool,
}

impl DirectWriter {
    /// Starts a blob at `dest` (an absolute path under the blob directory).
    pub(crate) async fn create(dest: PathBuf) -> Result<Self> {
        let d = dest.clone();
        let (file, staging, direct) = tokio::task::spawn_blocking(move || create_staging(&d))
            .await
            .map_err(|e| StoreError::Batch(format!("blob task failed: {e}")))?
            .map_err(|e| io_err(&dest, "creating a staging file for", e))?;
        Ok(Self {
            dest,
            staging,
            file: Arc::new(file),
            direct: Arc::new(AtomicBool::new(direct)),
            filling: Aligned::part(),
            spare: Vec::new(),
            in_flight: VecDeque::new(),
            offset: 0,
            settled: false,
        })
    }

    /// Waits for the oldest write in flight and keeps its buffer.
    async fn reap_one(&mut self) -> Result<()> {
        if let Some(h) = self.in_flight.pop_front() {
            let mut buf = h
                .await
                .map_err(|e| StoreError::Batch(format!("blob write task failed: {e}")))?
                .map_err(|e| io_err(&self.staging, "writing", e))?;
            buf.len = 0;
            self.spare.push(buf);
        }
        Ok(())
    }

    /// Hands the full buffer to a blocking write and starts filling another.
    async fn submit(&mut self) -> Result<()> {
        while self.in_flight.len() >= IN_FLIGHT {
            self.reap_one().await?;
        }
        let next = self.spare.pop().unwrap_or_else(Aligned::part);
        let buf = std::mem::replace(&mut self.filling, next);
        let (file, path, direct, offset) = (
            self.file.clone(),
            self.staging.clone(),
            self.direct.clone(),
            self.offset,
        );
        self.offset += buf.len as u64;
        self.in_flight
            .push_back(tokio::task::spawn_blocking(move || {
                write_at(&file, &path, &direct, buf.bytes(), offset).map(|()| buf)
            }));
        Ok(())
    }
}

#[async_trait::async_trait]
impl BlobWriter for DirectWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = self.filling.fill(rest);
            rest = &rest[n..];
            if self.filling.room() == 0 {
                self.submit().await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        let tail = std::mem::take(&mut self.filling);
        let (file, staging, dest, direct, offset) = (
            self.file.clone(),
            self.staging.clone(),
            self.dest.clone(),
            self.direct.clone(),
            self.offset,
        );
        let done = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let bytes = tail.bytes();
            let aligned = bytes.len() / ALIGN * ALIGN;
            if aligned > 0 {
                write_at(&file, &staging, &direct, &bytes[..aligned], offset)?;
            }
            // The unaligned end cannot go through O_DIRECT.
            if aligned < bytes.len() {
                open(&staging, false, false)?
                    .write_all_at(&bytes[aligned..], offset + aligned as u64)?;
            }
            // fsync works on the file, whichever handle wrote it.
            file.sync_all()?;
            std::fs::rename(&staging, &dest)?;
            fsync_dir(dest.parent().unwrap_or(Path::new("/")))
        })
        .await
        .map_err(|e| StoreError::Batch(format!("blob task failed: {e}")))?;
        match done {
            Ok(()) => {
                self.settled = true;
                Ok(())
            }
            Err(e) => Err(io_err(&self.dest, "storing", e)),
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        while let Some(h) = self.in_flight.pop_front() {
            let _ = h.await;
        }
        self.settled = true;
        let staging = self.staging.clone();
        match tokio::task::spawn_blocking(move || std::fs::remove_file(staging)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Ok(Err(e)) => Err(io_err(&self.staging, "removing", e)),
            Err(e) => Err(StoreError::Batch(format!("blob task failed: {e}"))),
        }
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        if !self.settled {
            // A dropped upload (the client went away) leaves nothing behind. Writes still in
            // flight hold the file open; they finish on an unlinked file.
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(dir: &Path, sizes: &[usize]) -> Vec<u8> {
        let dest = dir.join("a/b/blob");
        let mut w: Box<dyn BlobWriter> =
            Box::new(DirectWriter::create(dest.clone()).await.unwrap());
        let mut all = Vec::new();
        let mut x = 7u8;
        for &n in sizes {
            let chunk: Vec<u8> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(31).wrapping_add(11);
                    x
                })
                .collect();
            all.extend_from_slice(&chunk);
            w.write(Bytes::from(chunk)).await.unwrap();
        }
        assert!(!dest.exists(), "nothing is visible before finish");
        w.finish().await.unwrap();
        let back = std::fs::read(&dest).unwrap();
        assert_eq!(back.len(), all.len());
        assert!(back == all, "bytes differ");
        std::fs::remove_file(&dest).unwrap();
        back
    }

    #[tokio::test]
    async fn writes_every_shape_of_stream_intact() {
        let dir = tempfile::tempdir().unwrap();
        for sizes in [
            vec![],
            vec![1],
            vec![ALIGN],
            vec![ALIGN + 1],
            vec![PART],
            vec![PART + 1],
            vec![PART - 1, 2],
            vec![1 << 20; 9],
            vec![12_345; 700],
            vec![3 * PART + ALIGN * 3 + 17],
        ] {
            roundtrip(dir.path(), &sizes).await;
        }
        // Nothing left over but the (empty) directories.
        assert_eq!(
            std::fs::read_dir(dir.path().join("a/b")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn dropped_and_aborted_writers_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x/blob");
        let mut w = Box::new(DirectWriter::create(dest.clone()).await.unwrap());
        w.write(Bytes::from(vec![1u8; 5 * PART + 3])).await.unwrap();
        drop(w);
        let mut w = Box::new(DirectWriter::create(dest.clone()).await.unwrap());
        w.write(Bytes::from(vec![1u8; PART + 3])).await.unwrap();
        (w as Box<dyn BlobWriter>).abort().await.unwrap();
        // Let the dropped writer's blocking writes end.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(std::fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_filesystem_without_direct_io_still_works() {
        // tmpfs refuses O_DIRECT on older kernels and takes it on newer ones; either way the
        // bytes must arrive.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        roundtrip(dir.path(), &[PART + 5, 77]).await;
    }
}
