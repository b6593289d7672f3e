//! A byte-compatible age encryptor whose payload runs on aws-lc-rs.
//!
//! The age crate's ChaCha20-Poly1305 (RustCrypto) runs at about a quarter of what this CPU
//! does with aws-lc (FACTS.md), and it is the largest user-space cost of a push. This writer
//! produces the same format (C2SP age v1: X25519 stanzas from the age crate itself, header MAC,
//! 16-byte nonce, 64 KiB STREAM chunks with an 11-byte counter and a last-chunk flag), so the
//! age crate and the `age` CLI decrypt it unchanged; tests check both.

use std::io::{self, Write};

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

/// Encrypts a stream to one age X25519 recipient; call [`AgeWriter::finish`] at the end.
pub struct AgeWriter<W: Write> {
    inner: W,
    key: LessSafeKey,
    counter: u64,
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

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

impl<W: Write> AgeWriter<W> {
    /// Writes the header and returns the writer for the payload.
    pub fn new(recipient: &age::x25519::Recipient, mut inner: W) -> io::Result<Self> {
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
        inner.write_all(&header)?;
        let payload_key = hkdf32(&nonce, file_key.expose_secret(), b"payload");
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, payload_key.as_ref())
                .map_err(|_| io::Error::other("aead key"))?,
        );
        Ok(Self {
            inner,
            key,
            counter: 0,
            plain: Vec::with_capacity(CHUNK * 16),
            sealed: Vec::with_capacity((CHUNK + TAG) * 16),
        })
    }

    fn seal_chunk(&mut self, start: usize, end: usize, last: bool) -> io::Result<()> {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        // The counter is 88 bits in the format; 2^64 chunks of 64 KiB is beyond any file.
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("age STREAM counter overflow"))?;
        let at = self.sealed.len();
        self.sealed.extend_from_slice(&self.plain[start..end]);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut self.sealed[at..],
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.sealed.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Seals every full chunk that is certainly not the last one.
    fn flush_full_chunks(&mut self) -> io::Result<()> {
        let mut start = 0;
        // Keep at least one byte back: the last chunk must be marked as such at `finish`.
        while self.plain.len() - start > CHUNK {
            self.seal_chunk(start, start + CHUNK, false)?;
            start += CHUNK;
        }
        if start > 0 {
            self.plain.drain(..start);
            self.inner.write_all(&self.sealed)?;
            self.sealed.clear();
        }
        Ok(())
    }

    /// Seals the last chunk and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_full_chunks()?;
        let len = self.plain.len();
        self.seal_chunk(0, len, true)?;
        self.inner.write_all(&self.sealed)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for AgeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.plain.extend_from_slice(buf);
        if self.plain.len() > CHUNK * 16 {
            self.flush_full_chunks()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

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
            17 * CHUNK + 5,
            40 * CHUNK,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut w = AgeWriter::new(&id.to_public(), Vec::new()).unwrap();
            // Uneven writes.
            for piece in plain.chunks(5000) {
                w.write_all(piece).unwrap();
            }
            let sealed = w.finish().unwrap();
            let dec = age::Decryptor::new(&sealed[..]).unwrap();
            let mut r = dec
                .decrypt(std::iter::once(&id as &dyn age::Identity))
                .unwrap();
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, plain, "length {len}");
        }
    }

    #[test]
    fn tampering_is_detected() {
        let id = age::x25519::Identity::generate();
        let mut w = AgeWriter::new(&id.to_public(), Vec::new()).unwrap();
        w.write_all(&vec![9u8; 3 * CHUNK]).unwrap();
        let mut sealed = w.finish().unwrap();
        let n = sealed.len();
        sealed[n - 100] ^= 1;
        let dec = age::Decryptor::new(&sealed[..]).unwrap();
        let mut r = dec
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
