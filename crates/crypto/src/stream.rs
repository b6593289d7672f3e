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
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&counter.to_be_bytes());
            nonce[11] = u8::from(last && self.is_final);
            let at = i * STRIDE;
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    &mut self.buf[at..at + len],
                )
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
    let workers = workers.max(1);
    let key = &key;
    std::thread::scope(|s| {
        let mut inputs = Vec::with_capacity(workers);
        let mut outputs = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<Batch>(1);
            let (done_tx, done_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
            s.spawn(move || {
                for batch in rx {
                    if done_tx.send(batch.seal(key)).is_err() {
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
        let mut read = || -> io::Result<u64> {
            let (mut counter, mut total, mut peek) = (0u64, 0u64, None);
            for worker in inputs.iter().cycle() {
                let batch = read_batch(&mut input, counter, &mut peek)?;
                counter += batch.chunks as u64;
                total += ((batch.chunks - 1) * CHUNK + batch.last_len) as u64;
                let is_final = batch.is_final;
                if worker.send(batch).is_err() {
                    break;
                }
                if is_final {
                    return Ok(total);
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
        // The output's own error explains an early end better than the reader's.
        written?;
        read
    })
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

    #[test]
    fn the_age_crate_decrypts_every_size() {
        let id = age::x25519::Identity::generate();
        for len in [
            0usize,
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
        ] {
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

    #[test]
    fn tampering_is_detected() {
        let id = age::x25519::Identity::generate();
        let mut sealed = seal(&id, &vec![9u8; 3 * CHUNK], 2);
        let n = sealed.len();
        sealed[n - 100] ^= 1;
        assert!(open(&id, &sealed).is_err());
    }
}
