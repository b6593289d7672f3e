//! Push and pull: streaming age encryption/decryption with hashing on the fly, signed
//! commits, verified downloads written to a temporary file renamed into place only when
//! everything checked out.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use enc_crypto::{CommitFields, DecryptFailure, commit_message, verify_commit};
use enc_proto::*;

use crate::direct::DirectOut;
use crate::ops::{Account, VaultCtx};
use crate::{ClientError, Result};

const BUF: usize = 1 << 20;

/// Threads that seal a push's chunks or open a pull's (reading and hashing, and sending or
/// writing, run on two more).
const ENCRYPT_THREADS: usize = 2;

/// Receives byte counts as a transfer proceeds.
pub trait Progress: Send + Sync {
    /// `n` more plaintext bytes processed.
    fn advance(&self, n: u64);
}

impl Progress for () {
    fn advance(&self, _n: u64) {}
}

/// What `pull` should fetch and where.
pub struct PullOptions<'a> {
    /// A version number; latest when `None`.
    pub version: Option<u64>,
    /// The ciphertext exactly as stored instead of the plaintext.
    pub raw: bool,
    /// Destination file.
    pub dest: &'a Path,
}

/// Counts and hashes what passes through.
struct Hashing<T> {
    inner: T,
    hasher: blake3::Hasher,
    size: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            size: 0,
        }
    }
    /// Size and BLAKE3 hash of what passed, handing the inner value to `done`.
    fn finish_with(self, done: impl FnOnce(T)) -> (u64, String) {
        done(self.inner);
        (self.size, self.hasher.finalize().to_hex().to_string())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Reports plaintext progress.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A pull's output: reports progress, and remembers a failed write so that a full disk or a
/// closed pipe is reported as what it is, not as damaged data.
struct Output<'a> {
    inner: &'a mut (dyn Write + Send),
    progress: &'a dyn Progress,
    failed: bool,
}

impl Output<'_> {
    /// The error to report for `e`, met while `what`.
    fn error(&self, e: io::Error, what: &str) -> ClientError {
        if self.failed {
            ClientError::Io {
                context: "writing the output".into(),
                source: e,
            }
        } else {
            integrity_or_io(e, what)
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.progress.advance(n as u64);
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the chunks the download thread hands over.
pub(crate) struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: std::sync::mpsc::Receiver<io::Result<bytes::Bytes>>) -> Self {
        Self {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.current = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

fn vault_path(v: &VaultCtx) -> String {
    format!("/v1/vaults/{}", v.info.id)
}

impl Account {
    /// Versions of a name, newest first (empty when the name does not exist).
    pub fn versions(&self, v: &VaultCtx, name: &str) -> Result<Vec<VersionInfo>> {
        let enc = v.keys.encrypt_name(name)?;
        match self
            .api
            .get::<ObjectInfo>(&format!("{}/objects/{enc}", vault_path(v)))
        {
            Ok(o) => Ok(o.versions),
            Err(e) if e.is_status(404) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Every name in a vault with its latest version, sorted by name.
    pub fn list(&self, v: &VaultCtx) -> Result<Vec<(String, VersionInfo)>> {
        let objects: Vec<ObjectInfo> = self.api.get(&format!("{}/objects", vault_path(v)))?;
        let mut out = Vec::with_capacity(objects.len());
        for o in objects {
            let name = v.keys.decrypt_name(&o.enc_name).map_err(|_| {
                ClientError::Integrity(
                    "an object name in this vault does not decrypt, or is not a safe relative path"
                        .into(),
                )
            })?;
            if let Some(latest) = o.versions.into_iter().next() {
                out.push((name, latest));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Encrypts a file to the vault and stores it as the next version of `name`.
    pub fn push(
        &self,
        v: &VaultCtx,
        path: &Path,
        name: &str,
        progress: &dyn Progress,
    ) -> Result<VersionInfo> {
        let file =
            File::open(path).map_err(ClientError::io(format!("opening {}", path.display())))?;
        self.push_from(v, file, &path.display().to_string(), name, progress)
    }

    /// Encrypts what `input` yields (a file, standard input) to the vault and stores it as
    /// the next version of `name`; `what` names the input in errors.
    pub fn push_from(
        &self,
        v: &VaultCtx,
        input: impl Read + Send,
        what: &str,
        name: &str,
        progress: &dyn Progress,
    ) -> Result<VersionInfo> {
        let enc_name = v.keys.encrypt_name(name)?;
        let receipt = self.upload_stream(v, input, what, progress)?;
        // Commit as latest + 1; retry if someone else committed the same name meanwhile.
        let mut attempt = 0;
        loop {
            let latest = self.versions(v, name)?.first().map_or(0, |x| x.version);
            let version = latest + 1;
            let fields = CommitFields {
                vault_id: &v.info.signed_id,
                object_id: &receipt.upload_id,
                enc_name: &enc_name,
                size: receipt.size,
                hash: &receipt.hash,
                version,
                generation: v.keys.current_generation(),
            };
            let req = CommitRequest {
                upload_id: receipt.upload_id.clone(),
                enc_name: enc_name.clone(),
                size: receipt.size,
                hash: receipt.hash.clone(),
                version,
                generation: v.keys.current_generation(),
                // The single-object API from before trees has no field for a device's
                // certificate: its versions stay signed by the account key, unlocked for it.
                signature: self.account_keys()?.sign_b64(&commit_message(&fields)),
            };
            match self
                .api
                .post::<_, VersionInfo>(&format!("{}/objects", vault_path(v)), &req)
            {
                Err(e) if e.is_status(409) && attempt < 3 && e.to_string().contains("version") => {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    /// Encrypts what `input` yields to the vault's current key as one age file, streamed as
    /// an upload, and checks that the server received exactly what was sent.
    pub(crate) fn upload_stream(
        &self,
        v: &VaultCtx,
        input: impl Read + Send,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<UploadReceipt> {
        let file = input;
        let recipient = v.keys.recipient();
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
        let receipt: Result<UploadReceipt> = std::thread::scope(|scope| {
            let encrypt = scope.spawn(move || -> io::Result<(u64, String)> {
                // Same format as age's own writer, sealed by aws-lc on two threads; the
                // ciphertext is hashed on its way to the uploader.
                let input = Counting {
                    inner: file,
                    progress,
                };
                let (mut hasher, mut size) = (blake3::Hasher::new(), 0u64);
                enc_crypto::encrypt_stream(&recipient, input, ENCRYPT_THREADS, |piece| {
                    hasher.update(&piece);
                    size += piece.len() as u64;
                    tx.blocking_send(bytes::Bytes::from(piece)).map_err(|_| {
                        io::Error::new(io::ErrorKind::BrokenPipe, "the upload ended early")
                    })
                })?;
                Ok((size, hasher.finalize().to_hex().to_string()))
            });
            let sent = self
                .api
                .put_chunks::<UploadReceipt>(&format!("{}/uploads", vault_path(v)), rx);
            let local = encrypt
                .join()
                .map_err(|_| ClientError::Usage("encryption thread panicked".into()))?;
            let receipt = sent?;
            let (size, sha) = local.map_err(ClientError::io(format!("encrypting {what}")))?;
            if receipt.size != size || receipt.hash != sha {
                return Err(ClientError::Integrity(
                    "the server received different bytes than were sent".into(),
                ));
            }
            Ok(receipt)
        });
        receipt
    }

    /// The version of `name` that `version` asks for (the latest when `None`), its signature
    /// verified.
    fn verified_version(
        &self,
        v: &VaultCtx,
        name: &str,
        version: Option<u64>,
    ) -> Result<VersionInfo> {
        let versions = self.versions(v, name)?;
        let ver = match version {
            None => versions.first(),
            Some(n) => versions.iter().find(|x| x.version == n),
        }
        .cloned()
        .ok_or_else(|| match version {
            None => ClientError::Usage(format!("no object named {name:?} in this vault")),
            Some(n) => ClientError::Usage(format!(
                "{name:?} has no version {n}; `enc ls --versions {name}` lists them"
            )),
        })?;
        self.verify_version(v, name, &ver)?;
        Ok(ver)
    }

    /// Fetches, verifies and (unless raw) decrypts a version of `name` into `opts.dest`.
    /// Nothing appears at `dest` unless every check passed.
    pub fn pull(
        &self,
        v: &VaultCtx,
        name: &str,
        opts: &PullOptions<'_>,
        progress: &dyn Progress,
    ) -> Result<VersionInfo> {
        let ver = self.verified_version(v, name, opts.version)?;
        let dest = opts.dest;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .map_err(ClientError::io(format!("creating {}", dir.display())))?;
        let tmp = tempfile::Builder::new()
            .prefix(".enc-pull-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(ClientError::io(format!(
                "creating a temporary file in {}",
                dir.display()
            )))?;
        let mut out = DirectOut::new(tmp.as_file());
        self.fetch_verified(v, &ver, opts.raw, &mut out, progress)?;
        out.finish()
            .map_err(ClientError::io("writing the output"))?;
        tmp.as_file()
            .sync_all()
            .map_err(ClientError::io("syncing the output"))?;
        tmp.persist(dest).map_err(|e| ClientError::Io {
            context: format!("writing {}", dest.display()),
            source: e.error,
        })?;
        Ok(ver)
    }

    /// Like [`Account::pull`], into a stream (standard output) instead of a file. Each
    /// chunk is authenticated before it is written, but whether the whole is the signed
    /// version is known only at the end: an error then means the output must not be used.
    pub fn pull_to(
        &self,
        v: &VaultCtx,
        name: &str,
        version: Option<u64>,
        raw: bool,
        out: &mut (dyn Write + Send),
        progress: &dyn Progress,
    ) -> Result<VersionInfo> {
        let ver = self.verified_version(v, name, version)?;
        self.fetch_verified(v, &ver, raw, out, progress)?;
        out.flush().map_err(ClientError::io("writing the output"))?;
        Ok(ver)
    }

    /// Downloads `ver`'s blob into `out` (decrypted unless `raw`) and checks that what came
    /// is exactly the signed ciphertext.
    fn fetch_verified(
        &self,
        v: &VaultCtx,
        ver: &VersionInfo,
        raw: bool,
        out: &mut (dyn Write + Send),
        progress: &dyn Progress,
    ) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let blob_path = format!("{}/blobs/{}", vault_path(v), ver.id);
        let (copied, fetched, (size, sha)) = std::thread::scope(|scope| {
            let fetch = scope.spawn(|| self.api.get_chunks(&blob_path, tx));
            let mut source = Hashing::new(ChannelReader {
                rx,
                current: bytes::Bytes::new(),
            });
            let copied = decrypt_into(&mut source, out, v, ver, raw, progress);
            // Stop the fetch (if still running) before waiting for it.
            let hashed = source.finish_with(|reader| drop(reader.rx));
            let fetched = fetch
                .join()
                .unwrap_or_else(|_| Err(ClientError::Usage("download thread panicked".into())));
            (copied, fetched, hashed)
        });
        // An HTTP or transport error explains a failed copy better than the copy's own error.
        fetched?;
        copied?;
        if size != ver.size || sha != ver.hash {
            return Err(ClientError::Integrity(format!(
                "stored object changed or truncated ({size} bytes, hash {sha}; signed: {} bytes, hash {})",
                ver.size, ver.hash
            )));
        }
        Ok(())
    }

    /// Checks the author's signature over a version's metadata.
    fn verify_version(&self, v: &VaultCtx, name: &str, ver: &VersionInfo) -> Result<()> {
        let enc_name = v.keys.encrypt_name(name)?;
        // Our own key from the key bundle; others' as pinned on this device.
        let key = self.trusted_key(&ver.author, &ver.author_key)?;
        let fields = CommitFields {
            vault_id: &v.info.signed_id,
            object_id: &ver.id,
            enc_name: &enc_name,
            size: ver.size,
            hash: &ver.hash,
            version: ver.version,
            generation: ver.generation,
        };
        verify_commit(&key, &fields, &ver.signature).map_err(|_| {
            ClientError::Integrity(format!(
                "the signature of {name:?} version {} does not verify",
                ver.version
            ))
        })
    }

    /// Removes a name and all its versions.
    pub fn remove(&self, v: &VaultCtx, name: &str) -> Result<()> {
        let enc = v.keys.encrypt_name(name)?;
        match self.api.delete(&format!("{}/objects/{enc}", vault_path(v))) {
            Err(e) if e.is_status(404) => Err(ClientError::Usage(format!(
                "no object named {name:?} in this vault"
            ))),
            other => other,
        }
    }
}

fn integrity_or_io(e: io::Error, what: &str) -> ClientError {
    // age reports authentication failures and truncation as InvalidData / UnexpectedEof;
    // reqwest reports a body shorter than its length as an error of the read.
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            ClientError::Integrity(format!("{what}: {e} (stored data changed or truncated)"))
        }
        _ => ClientError::Integrity(format!("{what}: {e}")),
    }
}

/// Copies a downloaded blob into `out`: as stored (`raw`) or decrypted with the vault keys.
/// Reads `source` to its end either way, so its hash covers the whole blob.
fn decrypt_into(
    source: &mut Hashing<ChannelReader>,
    out: &mut (dyn Write + Send),
    v: &VaultCtx,
    ver: &VersionInfo,
    raw: bool,
    progress: &dyn Progress,
) -> Result<()> {
    let mut out = Output {
        inner: out,
        progress,
        failed: false,
    };
    if raw {
        let copied = io::copy(&mut BufReader::with_capacity(BUF, &mut *source), &mut out);
        copied.map_err(|e| out.error(e, "downloading"))?;
    } else {
        let ids = v.keys.age_identities();
        let opened = enc_crypto::decrypt_stream(&ids, &mut *source, ENCRYPT_THREADS, |plain| {
            out.write_all(plain)
        });
        opened.map_err(|e| match e {
            // The signed generation is one we hold, so its key must open the header.
            DecryptFailure::Header(age::DecryptError::NoMatchingKeys)
                if v.keys.has_generation(ver.generation) =>
            {
                ClientError::Integrity("the stored header does not open with the vault key (stored data changed)".into())
            }
            DecryptFailure::Header(age::DecryptError::NoMatchingKeys) => ClientError::Usage(
                "this version is encrypted to vault keys you do not hold (written after you lost access?)".into(),
            ),
            DecryptFailure::Header(other) => {
                ClientError::Integrity(format!("not a valid age file: {other}"))
            }
            DecryptFailure::Payload(e) => out.error(e, "decrypting"),
        })?;
        // Drain anything after the last chunk so the hash covers the whole blob.
        io::copy(source, &mut io::sink()).map_err(|e| integrity_or_io(e, "downloading"))?;
    }
    Ok(())
}
