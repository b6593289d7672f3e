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
    let (stanzas, _) =
        age::Recipient::wrap_file_key(recipient, &file_key).map_err(io::Error::other)?;
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
    let capturing = Capturing {
        identities,
        file_key: std::sync::Mutex::new(None),
    };
    // `Decryptor::new` reads exactly the header and the nonce (no read-ahead).
    let decryptor = age::Decryptor::new(&mut input).map_err(DecryptFailure::Header)?;
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
    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, payload_key.as_ref())
            .map_err(|_| DecryptFailure::Payload(io::Error::other("aead key")))?,
    );
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

#[cfg(test)]
mod plaintext_len_tests {
    use super::*;

    #[test]
    fn stored_sizes_give_back_the_plaintext_size() {
        let recipient = age::x25519::Identity::generate().to_public();
        for len in [
            0usize,
            1,
            3,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK,
            3 * CHUNK + 7,
        ] {
            let data = vec![9u8; len];
            let mut stored = 0u64;
            encrypt(&recipient, &data[..], 2, |piece| {
                stored += piece.len() as u64;
                Ok(())
            })
            .expect("encrypt");
            assert_eq!(plaintext_len(stored), Some(len as u64), "{len} bytes");
        }
        assert_eq!(plaintext_len(10), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(id: &age::x25519::Identity, plain: &[u8], workers: usize) -> Vec<u8> {
        let mut sealed = Vec::new();
        let n = encrypt(&id.to_public(), plain, workers, |piece| {
            sealed.extend_from_slice(&piece);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, plain.len() as u64);
        sealed
    }

    fn open(id: &age::x25519::Identity, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let dec = age::Decryptor::new(sealed).unwrap();
        let mut r = dec
            .decrypt(std::iter::once(id as &dyn age::Identity))
            .unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back)?;
        Ok(back)
    }

    /// Lengths around every chunk and batch boundary.
    const SIZES: [usize; 13] = [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        BATCH * CHUNK - 1,
        BATCH * CHUNK,
        BATCH * CHUNK + 1,
        17 * CHUNK + 5,
        2 * BATCH * CHUNK,
        40 * CHUNK,
        40 * CHUNK + 7,
    ];

    #[test]
    fn the_age_crate_decrypts_every_size() {
        let id = age::x25519::Identity::generate();
        for len in SIZES {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            for workers in [1, 2, 3] {
                let sealed = seal(&id, &plain, workers);
                // Exactly the size the format gives: one tag per started chunk.
                let chunks = len.div_ceil(CHUNK).max(1);
                let header = sealed.len() - len - chunks * TAG;
                assert!(header > 100 && header < 400, "length {len}");
                assert_eq!(open(&id, &sealed).unwrap(), plain, "length {len}");
            }
        }
    }

    #[test]
    fn reads_of_any_shape_give_the_same_plaintext() {
        // A reader that returns a few bytes at a time.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..BATCH * CHUNK + 3).map(|i| (i % 251) as u8).collect();
        let mut sealed = Vec::new();
        encrypt(&id.to_public(), Dribble(&plain), 2, |p| {
            sealed.extend_from_slice(&p);
            Ok(())
        })
        .unwrap();
        assert_eq!(open(&id, &sealed).unwrap(), plain);
    }

    #[test]
    fn an_output_error_stops_the_encryption() {
        let id = age::x25519::Identity::generate();
        let plain = vec![1u8; 10 * BATCH * CHUNK];
        let mut calls = 0;
        let err = encrypt(&id.to_public(), &plain[..], 2, |_| {
            calls += 1;
            if calls == 3 {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "gone");
    }

    /// Our decryptor on `sealed`, with its plaintext.
    fn ours(
        id: &age::x25519::Identity,
        sealed: &[u8],
        workers: usize,
    ) -> Result<Vec<u8>, DecryptFailure> {
        let mut plain = Vec::new();
        let n = decrypt(&[id as &dyn age::Identity], sealed, workers, |p| {
            plain.extend_from_slice(p);
            Ok(())
        })?;
        assert_eq!(n, plain.len() as u64);
        Ok(plain)
    }

    /// The age crate's own encryption of `plain`.
    fn theirs(id: &age::x25519::Identity, plain: &[u8]) -> Vec<u8> {
        let r = id.to_public();
        let e =
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = e.wrap_output(&mut out).unwrap();
        io::Write::write_all(&mut w, plain).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn decrypts_every_size_from_both_encryptors() {
        let id = age::x25519::Identity::generate();
        for len in SIZES {
            let plain: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
            for workers in [1, 2, 3] {
                assert_eq!(
                    ours(&id, &seal(&id, &plain, 2), workers).unwrap(),
                    plain,
                    "{len}"
                );
                assert_eq!(
                    ours(&id, &theirs(&id, &plain), workers).unwrap(),
                    plain,
                    "{len}"
                );
            }
        }
    }

    #[test]
    fn decryption_refuses_every_truncation_extension_and_flip() {
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..2 * BATCH * CHUNK + 100)
            .map(|i| (i % 253) as u8)
            .collect();
        let sealed = seal(&id, &plain, 2);
        let header = sealed.len() - plain.len() - (plain.len().div_ceil(CHUNK)) * TAG;
        // Cut at every chunk boundary and inside chunks, down to the bare header + nonce.
        let mut cuts: Vec<usize> = (0..=plain.len().div_ceil(CHUNK))
            .map(|i| header + i * STRIDE)
            .filter(|&c| c < sealed.len())
            .collect();
        cuts.extend([
            header + 1,
            header + TAG - 1,
            header + STRIDE + 5,
            sealed.len() - 1,
        ]);
        for cut in cuts {
            match ours(&id, &sealed[..cut], 2) {
                Err(DecryptFailure::Payload(e)) => assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
                    ),
                    "cut {cut}: {e}"
                ),
                other => panic!(
                    "cut at {cut} of {}: {:?}",
                    sealed.len(),
                    other.map(|p| p.len())
                ),
            }
        }
        // Bytes after the last chunk, or a whole extra chunk.
        for extra in [1usize, TAG, STRIDE] {
            let mut longer = sealed.clone();
            longer.extend(std::iter::repeat_n(7u8, extra));
            assert!(
                matches!(ours(&id, &longer, 2), Err(DecryptFailure::Payload(_))),
                "+{extra}"
            );
        }
        // One flipped bit anywhere in the payload, or in the header's MAC or stanza.
        for at in [header, header + 100, header + STRIDE, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(
                matches!(ours(&id, &bad, 2), Err(DecryptFailure::Payload(_))),
                "flip {at}"
            );
        }
        for at in [header - 20, 40] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(
                matches!(ours(&id, &bad, 2), Err(DecryptFailure::Header(_))),
                "flip {at}"
            );
        }
        // Another identity does not open it.
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            ours(&other, &sealed, 2),
            Err(DecryptFailure::Header(age::DecryptError::NoMatchingKeys))
        ));
    }

    #[test]
    fn an_empty_last_chunk_after_data_is_refused() {
        // age allows an empty chunk only as the whole payload of an empty file.
        let id = age::x25519::Identity::generate();
        let (mut file, key) = start(&id.to_public()).unwrap();
        let batch = Batch {
            buf: vec![5u8; 2 * STRIDE],
            counter: 0,
            chunks: 2,
            last_len: 0,
            is_final: true,
        };
        file.extend_from_slice(&batch.seal(&key).unwrap());
        match ours(&id, &file, 2) {
            Err(DecryptFailure::Payload(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
            other => panic!("{:?}", other.map(|p| p.len())),
        }
    }

    #[test]
    fn tampering_is_detected() {
        let id = age::x25519::Identity::generate();
        let mut sealed = seal(&id, &vec![9u8; 3 * CHUNK], 2);
        let n = sealed.len();
        sealed[n - 100] ^= 1;
        assert!(open(&id, &sealed).is_err());
    }
}
