//! age's X25519 recipient stanza (C2SP age, "X25519 recipient type"), wrapped and unwrapped
//! with aws-lc-rs's X25519 (assembly) instead of the age crate's portable field arithmetic.
//! The bytes are the same (the stanza is `-> X25519 <ephemeral share>` and the file key
//! sealed under HKDF-SHA256(ephemeral share ‖ recipient, shared secret)); a vault tree seals
//! one age file per small file and opens one per piece, so this is most of their cost.

use std::io;

use age::secrecy::ExposeSecret as _;
use age_core::format::{FileKey, Stanza};
use age_core::primitives::{aead_decrypt, aead_encrypt, bech32_decode, hkdf};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use zeroize::Zeroizing;

const TAG: &str = "X25519";
const LABEL: &[u8] = b"age-encryption.org/v1/X25519";

/// The bytes of a Bech32 string whose human-readable part is `hrp` (any case).
fn bech32_bytes(text: &str, hrp: &str) -> Option<Zeroizing<Vec<u8>>> {
    bech32_decode(
        text,
        |_| (),
        |h| {
            if h.as_str().eq_ignore_ascii_case(hrp) {
                Ok(())
            } else {
                Err(())
            }
        },
        |_, bytes| Ok(Zeroizing::new(bytes.collect())),
    )
    .ok()
}

/// A recipient's X25519 public key.
pub(crate) fn recipient_key(r: &age::x25519::Recipient) -> io::Result<[u8; 32]> {
    bech32_bytes(&r.to_string(), "age")
        .and_then(|b| <[u8; 32]>::try_from(&b[..]).ok())
        .ok_or_else(|| io::Error::other("not an age X25519 recipient"))
}

/// `file_key` wrapped to `recipient`: what the age crate's X25519 recipient writes.
pub(crate) fn wrap(recipient: &[u8; 32], file_key: &FileKey) -> io::Result<Stanza> {
    let failed = |what: &str| io::Error::other(format!("X25519: {what}"));
    let esk = PrivateKey::generate(&X25519).map_err(|_| failed("key generation"))?;
    let epk = esk.compute_public_key().map_err(|_| failed("public key"))?;
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(epk.as_ref());
    salt[32..].copy_from_slice(recipient);
    // aws-lc refuses an all-zero shared secret (a low-order recipient key).
    let key = agreement::agree(
        &esk,
        UnparsedPublicKey::new(&X25519, recipient),
        failed("key agreement"),
        |shared| Ok(Zeroizing::new(hkdf(&salt, LABEL, shared))),
    )?;
    Ok(Stanza {
        tag: TAG.into(),
        args: vec![BASE64_STANDARD_NO_PAD.encode(epk.as_ref())],
        body: aead_encrypt(&key, file_key.expose_secret()),
    })
}

/// An age X25519 identity that unwraps its stanzas with aws-lc-rs; answers exactly as the
/// age crate's identity does (not ours: `None`; malformed: `InvalidHeader`).
pub struct FastIdentity {
    secret: PrivateKey,
    public: [u8; 32],
}

impl FastIdentity {
    pub fn new(id: &age::x25519::Identity) -> io::Result<Self> {
        let text = id.to_string();
        let bytes = bech32_bytes(text.expose_secret(), "age-secret-key-")
            .ok_or_else(|| io::Error::other("not an age X25519 identity"))?;
        let secret = PrivateKey::from_private_key(&X25519, &bytes)
            .map_err(|_| io::Error::other("not an X25519 secret key"))?;
        Ok(Self {
            secret,
            public: recipient_key(&id.to_public())?,
        })
    }
}

impl age::Identity for FastIdentity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != TAG {
            return None;
        }
        let invalid = Some(Err(age::DecryptError::InvalidHeader));
        // The canonical form only: one argument, 32 bytes in unpadded base64, a 32-byte body.
        let [arg] = &stanza.args[..] else {
            return invalid;
        };
        let epk: [u8; 32] = match BASE64_STANDARD_NO_PAD.decode(arg) {
            Ok(b) if arg.len() == 43 && BASE64_STANDARD_NO_PAD.encode(&b) == *arg => {
                match b.try_into() {
                    Ok(epk) => epk,
                    Err(_) => return invalid,
                }
            }
            _ => return invalid,
        };
        if stanza.body.len() != 32 {
            return invalid;
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&epk);
        salt[32..].copy_from_slice(&self.public);
        // An all-zero shared secret (a low-order ephemeral share) is refused by aws-lc.
        let key = match agreement::agree(
            &self.secret,
            UnparsedPublicKey::new(&X25519, &epk),
            (),
            |shared| Ok(Zeroizing::new(hkdf(&salt, LABEL, shared))),
        ) {
            Ok(key) => key,
            Err(()) => return invalid,
        };
        // Not opening is not an error: the stanza may be another recipient's.
        let plain = Zeroizing::new(aead_decrypt(&key, 16, &stanza.body).ok()?);
        Some(Ok(FileKey::init_with_mut(|fk| fk.copy_from_slice(&plain))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    #[test]
    fn the_fast_stanza_is_age_s_own_both_ways() {
        let id = age::x25519::Identity::generate();
        let fast = FastIdentity::new(&id).expect("identity");
        let key = recipient_key(&id.to_public()).expect("recipient");
        // age's recipient wraps, the fast identity unwraps; and the other way round.
        for _ in 0..20 {
            let fk = FileKey::init_with_mut(|k| k.copy_from_slice(&rand::random::<[u8; 16]>()));
            let (stanzas, _) = age::Recipient::wrap_file_key(&id.to_public(), &fk).expect("wrap");
            let got = age::Identity::unwrap_stanza(&fast, &stanzas[0])
                .expect("ours")
                .expect("valid");
            assert_eq!(got.expose_secret(), fk.expose_secret());
            let mine = wrap(&key, &fk).expect("wrap");
            let got = age::Identity::unwrap_stanza(&id, &mine)
                .expect("ours")
                .expect("valid");
            assert_eq!(got.expose_secret(), fk.expose_secret());
        }
        // Another recipient's stanza is not ours; malformed ones are invalid, as age says.
        let other = age::x25519::Identity::generate();
        let fk = FileKey::init_with_mut(|k| k.fill(7));
        let theirs = wrap(&recipient_key(&other.to_public()).unwrap(), &fk).unwrap();
        assert!(age::Identity::unwrap_stanza(&fast, &theirs).is_none());
        let copy = |s: &Stanza| Stanza {
            tag: s.tag.clone(),
            args: s.args.clone(),
            body: s.body.clone(),
        };
        let mut bad = copy(&theirs);
        bad.args[0].push('A');
        assert!(matches!(
            age::Identity::unwrap_stanza(&fast, &bad),
            Some(Err(age::DecryptError::InvalidHeader))
        ));
        let mut zero = copy(&theirs);
        zero.args[0] = BASE64_STANDARD_NO_PAD.encode([0u8; 32]);
        assert!(matches!(
            age::Identity::unwrap_stanza(&fast, &zero),
            Some(Err(age::DecryptError::InvalidHeader))
        ));
        // A whole file written by the age crate opens through the fast identity.
        let mut file = Vec::new();
        let mut w = age::Encryptor::with_recipients(std::iter::once(
            &id.to_public() as &dyn age::Recipient
        ))
        .expect("recipients")
        .wrap_output(&mut file)
        .expect("writer");
        w.write_all(b"hello").unwrap();
        w.finish().unwrap();
        let d = age::Decryptor::new(&file[..]).expect("header");
        let mut out = Vec::new();
        d.decrypt(std::iter::once(&fast as &dyn age::Identity))
            .expect("opens")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
    }
}
