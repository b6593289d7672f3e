//! XChaCha20-Poly1305 sealing with a random or a synthetic (deterministic) nonce.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::CryptoError;

const NONCE: usize = 24;

/// Encrypts under a fresh random nonce; output is `nonce || ciphertext || tag`.
pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    seal_with_nonce(key, &nonce, aad, plaintext)
}

/// Deterministic authenticated encryption (SIV construction): the nonce is an HMAC of the
/// plaintext under a separate key, so equal inputs give equal outputs and nothing else leaks.
pub(crate) fn seal_deterministic(
    enc_key: &[u8; 32],
    mac_key: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).expect("any key length");
    mac.update(aad);
    mac.update(&(plaintext.len() as u64).to_be_bytes());
    mac.update(plaintext);
    let tag = mac.finalize().into_bytes();
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&tag[..NONCE]);
    seal_with_nonce(enc_key, &nonce, aad, plaintext)
}

fn seal_with_nonce(key: &[u8; 32], nonce: &[u8; NONCE], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("in-memory encryption cannot fail");
    let mut out = Vec::with_capacity(NONCE + ct.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens what [`seal`] or [`seal_deterministic`] produced.
pub(crate) fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE + 16 {
        return Err(CryptoError::Malformed("sealed value too short"));
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = [1u8; 32];
        let mut s = seal(&k, b"ad", b"hello");
        assert_eq!(open(&k, b"ad", &s).unwrap(), b"hello");
        assert!(open(&k, b"other", &s).is_err());
        s[30] ^= 1;
        assert!(open(&k, b"ad", &s).is_err());
    }

    #[test]
    fn deterministic_is_stable_and_distinct() {
        let (k, m) = ([1u8; 32], [2u8; 32]);
        let a = seal_deterministic(&k, &m, b"", b"name");
        assert_eq!(a, seal_deterministic(&k, &m, b"", b"name"));
        assert_ne!(a, seal_deterministic(&k, &m, b"", b"namf"));
        assert_eq!(open(&k, b"", &a).unwrap(), b"name");
    }
}
