//! A byte-compatible age encryptor whose payload runs on aws-lc-rs.
//!
//! The age crate's ChaCha20-Poly1305 (RustCrypto) runs at about a quarter of what this CPU
//! does with aws-lc (FACTS.md), and it is the largest user-space cost of a push. [`encrypt`]
//! is the parallel STREAM writer DESIGN.md allows: it reads batches of 16 chunks in place,
//! seals them on worker threads and hands them out in order. It produces the same format (C2SP age v1: X25519 stanzas from the age crate itself, header MAC,
//! 16-byte nonce, 64 KiB STREAM chunks with an 11-byte counter and a last-chunk flag), so the
//! age crate and the `age` CLI decrypt it unchanged; tests check both.

use std::io::{self, Read};
use std::sync::mpsc;

use age::secrecy::ExposeSecret as _;
use age_core::format::{FileKey, Stanza};
use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out.as_mut())
        .expect("valid length");
    out
}

/// The header bytes up to and including `---` (what the MAC covers).
fn header_minus_mac(stanzas: &[Stanza]) -> Vec<u8> {
    let mut h = b"age-encryption.org/v1\n".to_vec();
    for s in stanzas {
        h.extend_from_slice(b"->");
        for part in std::iter::once(&s.tag).chain(s.args.iter()) {
            h.push(b' ');
            h.extend_from_slice(part.as_bytes());
        }
        h.push(b'\n');
        // The body is base64 in lines of 64 columns; the last line is shorter (maybe empty).
        let body = b64(&s.body);
        let mut rest = body.as_bytes();
        loop {
            let n = rest.len().min(64);
            h.extend_from_slice(&rest[..n]);
            h.push(b'\n');
            if n < 64 {
                break;
            }
            rest = &rest[n..];
        }
    }
    h.extend_from_slice(b"---");
    h
}

/// The header of a new age file to `recipient` (up to and including the payload nonce) and
/// the key that seals its payload.
fn start(recipient: &age::x25519::Recipient) -> io::Result<(Vec<u8>, LessSafeKey)> {
    let mut fk = Box::new([0u8; 16]);
    rand::rngs::OsRng.fill_bytes(fk.as_mut());
    let file_key = FileKey::new(fk);
    let stanzas = vec![x25519::wrap(&x25519::recipient_key(recipient)?, &file_key)?];
    let mut header = header_minus_mac(&stanzas);
    let mac_key = hkdf32(&[], file_key.expose_secret(), b"header");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(mac_key.as_ref()).expect("any length");
    mac.update(&header);
    header.push(b' ');
    header.extend_from_slice(b64(&mac.finalize().into_bytes()).as_bytes());
    header.push(b'\n');
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    header.extend_from_slice(&nonce);
    let payload_key = hkdf32(&nonce, file_key.expose_secret(), b"payload");
    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, payload_key.as_ref())
            .map_err(|_| io::Error::other("aead key"))?,
    );
    Ok((header, key))
}

/// The STREAM nonce of chunk `counter` (an 88-bit big-endian counter, then the last-chunk
/// flag).
fn stream_nonce(counter: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

/// Chunks sealed together: one piece of output, about 1 MiB.
const BATCH: usize = 16;
/// Distance between chunk starts in a batch buffer: room for each chunk's tag after it.
const STRIDE: usize = CHUNK + TAG;

/// Consecutive chunks read in place into one buffer, each followed by room for its tag.
struct Batch {
    buf: Vec<u8>,
    /// STREAM counter of the first chunk.
    counter: u64,
    chunks: usize,
    /// Length of the last chunk (every other one is full).
    last_len: usize,
    /// Whether the last chunk is the file's last.
    is_final: bool,
}

impl Batch {
    /// Seals every chunk in place and trims the buffer to the ciphertext.
    fn seal(mut self, key: &LessSafeKey) -> io::Result<Vec<u8>> {
        for i in 0..self.chunks {
            let last = i + 1 == self.chunks;
            let len = if last { self.last_len } else { CHUNK };
            let counter = self
                .counter
                .checked_add(i as u64)
                .ok_or_else(|| io::Error::other("age STREAM counter overflow"))?;
            // The counter is 88 bits in the format; 2^64 chunks of 64 KiB is beyond any file.
            let nonce = stream_nonce(counter, last && self.is_final);
            let at = i * STRIDE;
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::empty(), &mut self.buf[at..at + len])
                .map_err(|_| io::Error::other("encryption failed"))?;
            self.buf[at + len..at + len + TAG].copy_from_slice(tag.as_ref());
        }
        self.buf
            .truncate((self.chunks - 1) * STRIDE + self.last_len + TAG);
        Ok(self.buf)
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads the next batch; `peek` carries one byte read ahead to learn whether the input ended.
fn read_batch(input: &mut impl Read, counter: u64, peek: &mut Option<u8>) -> io::Result<Batch> {
    let mut buf = vec![0u8; BATCH * STRIDE];
    let (mut chunks, mut last_len, mut is_final) = (0, 0, false);
    while chunks < BATCH {
        let at = chunks * STRIDE;
        let mut got = 0;
        if let Some(b) = peek.take() {
            buf[at] = b;
            got = 1;
        }
        got += read_full(input, &mut buf[at + got..at + CHUNK])?;
        if got == 0 && chunks > 0 {
            // The previous (full) chunk was the last; only an empty file has an empty chunk.
            is_final = true;
            break;
        }
        chunks += 1;
        last_len = got;
        if got < CHUNK {
            is_final = true;
            break;
        }
    }
    if !is_final {
        let mut one = [0u8; 1];
        match read_full(input, &mut one)? {
            0 => is_final = true,
            _ => *peek = Some(one[0]),
        }
    }
    Ok(Batch {
        buf,
        counter,
        chunks,
        last_len,
        is_final,
    })
}

/// Runs a three-stage pipeline: `next` on this thread yields batches (and whether it was the
/// last), `work` turns each into output on `workers` threads, and `out` takes the outputs in
/// order on one more thread. The first error of `out` or `work` wins over the reader's.
fn pipeline<B: Send>(
    workers: usize,
    mut next: impl FnMut() -> io::Result<(B, bool)>,
    work: impl Fn(B) -> io::Result<Vec<u8>> + Sync,
    mut out: impl FnMut(Vec<u8>) -> io::Result<()> + Send,
) -> io::Result<()> {
    let workers = workers.max(1);
    let work = &work;
    std::thread::scope(|s| {
        let mut inputs = Vec::with_capacity(workers);
        let mut outputs = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<B>(1);
            let (done_tx, done_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
            s.spawn(move || {
                for batch in rx {
                    if done_tx.send(work(batch)).is_err() {
                        return;
                    }
                }
            });
            inputs.push(tx);
            outputs.push(done_rx);
        }
        // Batch n goes to worker n % workers, so taking results round-robin keeps the order.
        let writer = s.spawn(move || -> io::Result<()> {
            for rx in outputs.iter().cycle() {
                match rx.recv() {
                    Ok(piece) => out(piece?)?,
                    Err(_) => return Ok(()),
                }
            }
            Ok(())
        });
        let mut read = || -> io::Result<()> {
            for worker in inputs.iter().cycle() {
                let (batch, last) = next()?;
                if worker.send(batch).is_err() {
                    break;
                }
                if last {
                    return Ok(());
                }
            }
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the output ended early",
            ))
        };
        let read = read();
        drop(inputs);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the output thread panicked")));
        written?;
        read
    })
}

/// Encrypts everything `input` yields into an age v1 file to `recipient` and hands the file
/// to `out` in order: the header first, then pieces of about 1 MiB. Batches of 16 chunks are
/// read in place and sealed on `workers` threads, so reading, sealing and whatever `out` does
/// (hashing, sending) overlap. Returns the number of plaintext bytes.
pub fn encrypt(
    recipient: &age::x25519::Recipient,
    mut input: impl Read,
    workers: usize,
    mut out: impl FnMut(Vec<u8>) -> io::Result<()> + Send,
) -> io::Result<u64> {
    let (header, key) = start(recipient)?;
    out(header)?;
    let (mut counter, mut total, mut peek) = (0u64, 0u64, None);
    pipeline(
        workers,
        || {
            let batch = read_batch(&mut input, counter, &mut peek)?;
            counter += batch.chunks as u64;
            total += ((batch.chunks - 1) * CHUNK + batch.last_len) as u64;
            let last = batch.is_final;
            Ok((batch, last))
        },
        |batch| batch.seal(&key),
        out,
    )?;
    Ok(total)
}

/// How many plaintext bytes an age file of `stored` bytes made by [`encrypt`] holds: its
/// header (one X25519 stanza, the MAC and the payload nonce) has a fixed length, and every
/// started 64 KiB chunk carries one tag. `None` if no such file has `stored` bytes.
pub fn plaintext_len(stored: u64) -> Option<u64> {
    static HEADER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let header = *HEADER.get_or_init(|| {
        let recipient = age::x25519::Identity::generate().to_public();
        start(&recipient).map_or(0, |(h, _)| h.len() as u64)
    });
    let payload = stored.checked_sub(header)?;
    let chunks = payload.div_ceil(STRIDE as u64).max(1);
    payload.checked_sub(chunks * TAG as u64)
}

/// Why [`decrypt`] failed.
#[derive(Debug)]
pub enum DecryptFailure {
    /// The header is not an age header, or no identity opens it, or its MAC is wrong.
    Header(age::DecryptError),
    /// Reading failed, or the payload is truncated (`UnexpectedEof`) or does not
    /// authenticate (`InvalidData`), or the output failed.
    Payload(io::Error),
}

/// Tries each identity in turn, remembering the file key the header yields.
struct Capturing<'a> {
    identities: &'a [&'a dyn age::Identity],
    file_key: std::sync::Mutex<Option<Zeroizing<[u8; 16]>>>,
}

impl age::Identity for Capturing<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }
    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let found = self
            .identities
            .iter()
            .find_map(|id| id.unwrap_stanzas(stanzas))?;
        if let Ok(fk) = &found {
            *self.file_key.lock().expect("file key") = Some(Zeroizing::new(*fk.expose_secret()));
        }
        Some(found)
    }
}

/// Remembers the last 16 bytes read through it (the payload nonce, once the header is read).
struct Tail<R> {
    inner: R,
    last: [u8; 16],
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        if got.len() >= 16 {
            self.last.copy_from_slice(&got[got.len() - 16..]);
        } else {
            self.last.rotate_left(got.len());
            self.last[16 - got.len()..].copy_from_slice(got);
        }
        Ok(n)
    }
}

/// Reads an age header (and the payload nonce after it) from `input` with the first of
/// `identities` that opens it, and derives the payload key. Reads nothing beyond the nonce.
fn payload_key<R: Read>(
    identities: &[&dyn age::Identity],
    input: &mut Tail<R>,
) -> Result<LessSafeKey, DecryptFailure> {
    let capturing = Capturing {
        identities,
        file_key: std::sync::Mutex::new(None),
    };
    // `Decryptor::new` reads exactly the header and the nonce (no read-ahead).
    let decryptor = age::Decryptor::new(&mut *input).map_err(DecryptFailure::Header)?;
    drop(
        decryptor
            .decrypt(std::iter::once(&capturing as &dyn age::Identity))
            .map_err(DecryptFailure::Header)?,
    );
    let file_key = capturing
        .file_key
        .into_inner()
        .expect("file key")
        .ok_or(DecryptFailure::Header(age::DecryptError::NoMatchingKeys))?;
    let payload_key = hkdf32(&input.last, file_key.as_ref(), b"payload");
    Ok(LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, payload_key.as_ref())
            .map_err(|_| DecryptFailure::Payload(io::Error::other("aead key")))?,
    ))
}

/// Encrypts `plain` into one age v1 file to `recipient` on this thread, in memory: the same
/// format as [`encrypt`], for the small pieces of a tree (files under 1 MiB, directory
/// nodes, commit bodies), where threads would cost more than they save.
pub fn seal(recipient: &age::x25519::Recipient, plain: &[u8]) -> io::Result<Vec<u8>> {
    let (mut out, key) = start(recipient)?;
    out.reserve(plain.len() + plain.len().div_ceil(CHUNK).max(1) * TAG);
    let chunks: Vec<&[u8]> = if plain.is_empty() {
        vec![&[]]
    } else {
        plain.chunks(CHUNK).collect()
    };
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let at = out.len();
        out.extend_from_slice(chunk);
        let tag = key
            .seal_in_place_separate_tag(
                stream_nonce(i as u64, i + 1 == n),
                Aad::empty(),
                &mut out[at..],
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        out.extend_from_slice(tag.as_ref());
    }
    Ok(out)
}

/// Decrypts one age v1 file held in memory on this thread, with the first of `identities`
/// that opens it; the counterpart of [`seal`], with [`decrypt`]'s checks.
pub fn open(identities: &[&dyn age::Identity], sealed: &[u8]) -> Result<Vec<u8>, DecryptFailure> {
    let mut rest = sealed;
    let mut input = Tail {
        inner: &mut rest,
        last: [0; 16],
    };
    let key = payload_key(identities, &mut input)?;
    let got = rest.len();
    let last_len = got - (got.max(1) - 1) / STRIDE * STRIDE;
    if got == 0 || last_len < TAG {
        return Err(DecryptFailure::Payload(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the payload is truncated",
        )));
    }
    let payload = Sealed {
        buf: rest.to_vec(),
        counter: 0,
        is_final: true,
    };
    payload.open(&key).map_err(DecryptFailure::Payload)
}

/// Ciphertext chunks read into one buffer.
struct Sealed {
    buf: Vec<u8>,
    /// STREAM counter of the first chunk.
    counter: u64,
    /// Whether the buffer ends the file.
    is_final: bool,
}

impl Sealed {
    /// Opens every chunk and packs the plaintext at the front of the buffer.
    fn open(mut self, key: &LessSafeKey) -> io::Result<Vec<u8>> {
        let chunks = self.buf.len().div_ceil(STRIDE);
        let mut plain = 0;
        for i in 0..chunks {
            let at = i * STRIDE;
            let end = (at + STRIDE).min(self.buf.len());
            let last = self.is_final && i + 1 == chunks;
            let counter = self.counter + i as u64;
            let nonce = stream_nonce(counter, last);
            let opened = key
                .open_in_place(nonce, Aad::empty(), &mut self.buf[at..end])
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("chunk {counter} of the payload does not authenticate"),
                    )
                })?
                .len();
            if last && opened == 0 && counter > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the payload ends with an empty chunk",
                ));
            }
            self.buf.copy_within(at..at + opened, plain);
            plain += opened;
        }
        self.buf.truncate(plain);
        Ok(self.buf)
    }
}

/// Decrypts an age v1 file with the first of `identities` that opens it, handing the
/// plaintext to `out` in order, in pieces of about 1 MiB. The header is parsed and its MAC
/// checked by the age crate; the payload is opened with aws-lc on `workers` threads. Every
/// chunk is authenticated before any of its bytes reach `out`, and a payload that is cut
/// short, reordered or extended fails; `input` is read to its end. Returns the number of
/// plaintext bytes.
pub fn decrypt(
    identities: &[&dyn age::Identity],
    input: impl Read,
    workers: usize,
    mut out: impl FnMut(&[u8]) -> io::Result<()> + Send,
) -> Result<u64, DecryptFailure> {
    let mut input = Tail {
        inner: input,
        last: [0; 16],
    };
    let key = payload_key(identities, &mut input)?;
    let (mut counter, mut peek, mut total) = (0u64, None::<u8>, 0u64);
    pipeline(
        workers,
        || {
            let mut buf = vec![0u8; BATCH * STRIDE];
            let mut got = 0;
            if let Some(b) = peek.take() {
                buf[0] = b;
                got = 1;
            }
            got += read_full(&mut input, &mut buf[got..])?;
            let is_final = if got < buf.len() {
                true
            } else {
                let mut one = [0u8; 1];
                match read_full(&mut input, &mut one)? {
                    0 => true,
                    _ => {
                        peek = Some(one[0]);
                        false
                    }
                }
            };
            buf.truncate(got);
            let last_len = got - (got.max(1) - 1) / STRIDE * STRIDE;
            if is_final && (got == 0 || last_len < TAG) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the payload is truncated",
                ));
            }
            let batch = Sealed {
                buf,
                counter,
                is_final,
            };
            counter += got.div_ceil(STRIDE) as u64;
            Ok((batch, is_final))
        },
        |batch| batch.open(&key),
        |plain| {
            total += plain.len() as u64;
            out(&plain)
        },
    )
    .map_err(DecryptFailure::Payload)?;
    Ok(total)
}

pub(crate) mod x25519;

#[cfg(test)]
mod tests;
