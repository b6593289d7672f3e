//! The output file of a pull, written around the page cache.
//!
//! Copying a large download into the page cache was the largest single cost of `enc pull`
//! (BENCHMARKS.md). [`DirectOut`] gathers the plaintext into 4 KiB-aligned 1 MiB buffers and
//! writes them through a second handle opened with `O_DIRECT`; the unaligned end goes through
//! the ordinary handle. A filesystem that refuses `O_DIRECT` (at open or at the first write)
//! gets ordinary writes. The caller still `fsync`s and renames the file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};

const ALIGN: usize = 4096;
const PIECE: usize = 1 << 20;

/// See the module documentation.
pub(crate) struct DirectOut<'a> {
    plain: &'a File,
    direct: Option<File>,
    raw: Vec<u8>,
    start: usize,
    len: usize,
    offset: u64,
}

impl<'a> DirectOut<'a> {
    /// Writes into `file` from offset 0.
    pub(crate) fn new(file: &'a File) -> Self {
        // Reopen the file itself, not its path: nothing can swap another file in between.
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .ok();
        let raw = vec![0u8; PIECE + ALIGN];
        // Moving the Vec never moves its heap block, so the offset stays right.
        let start = (ALIGN - raw.as_ptr() as usize % ALIGN) % ALIGN;
        Self {
            plain: file,
            direct,
            raw,
            start,
            len: 0,
            offset: 0,
        }
    }

    /// Writes the first `n` buffered bytes (a multiple of [`ALIGN`] unless `direct` is gone).
    fn write_out(&mut self, n: usize) -> io::Result<()> {
        let data = &self.raw[self.start..self.start + n];
        if let Some(d) = &self.direct {
            match d.write_all_at(data, self.offset) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
                Ok(()) => {
                    self.offset += n as u64;
                    return Ok(());
                }
            }
        }
        self.plain.write_all_at(data, self.offset)?;
        self.offset += n as u64;
        Ok(())
    }

    /// Writes what is left; the file then holds every byte written.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        let aligned = self.len / ALIGN * ALIGN;
        if aligned > 0 {
            self.write_out(aligned)?;
        }
        let tail = &self.raw[self.start + aligned..self.start + self.len];
        self.plain.write_all_at(tail, self.offset)
    }
}

impl Write for DirectOut<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIECE - self.len);
        let at = self.start + self.len;
        self.raw[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == PIECE {
            self.write_out(PIECE)?;
            self.len = 0;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_of_output_arrives_whole() {
        for dir in [std::env::temp_dir(), "/dev/shm".into()] {
            for sizes in [
                vec![],
                vec![1],
                vec![ALIGN],
                vec![PIECE],
                vec![PIECE + 1],
                vec![PIECE - 1, 2, 3 * PIECE + 17],
                vec![65_536; 40],
            ] {
                let tmp = tempfile::NamedTempFile::new_in(&dir).unwrap();
                let mut all = Vec::new();
                let mut out = DirectOut::new(tmp.as_file());
                for (i, n) in sizes.iter().enumerate() {
                    let piece: Vec<u8> = (0..*n).map(|j| (i * 7 + j % 251) as u8).collect();
                    out.write_all(&piece).unwrap();
                    all.extend_from_slice(&piece);
                }
                // Wherever the filesystem takes O_DIRECT, the writer uses it.
                let supported = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(tmp.path())
                    .is_ok();
                assert_eq!(out.direct.is_some(), supported, "{}", dir.display());
                out.finish().unwrap();
                let back = std::fs::read(tmp.path()).unwrap();
                assert!(back == all, "{} {sizes:?}", dir.display());
            }
        }
    }
}
