//! The commit signature: a device signs exactly what the server will serve back, so a
//! client can detect a substituted or altered object version.

use ed25519_dalek::{Signature, Verifier};

use crate::{CryptoError, bundle::verifying_key, unb64};

/// The fields a commit signature covers.
pub struct CommitFields<'a> {
    /// Vault id.
    pub vault_id: &'a str,
    /// Object version id (the upload id the server assigned).
    pub object_id: &'a str,
    /// Encrypted name.
    pub enc_name: &'a str,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// Lower-case hex BLAKE3 hash of the ciphertext.
    pub hash: &'a str,
    /// Version number of the name (1, 2, …).
    pub version: u64,
    /// Vault key generation the content is encrypted to.
    pub generation: u32,
}

/// The canonical, length-prefixed byte string that is signed.
pub fn commit_message(f: &CommitFields<'_>) -> Vec<u8> {
    let mut out = b"enc commit v1\0".to_vec();
    for field in [f.vault_id, f.object_id, f.enc_name, f.hash] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&f.size.to_be_bytes());
    out.extend_from_slice(&f.version.to_be_bytes());
    out.extend_from_slice(&f.generation.to_be_bytes());
    out
}

/// What an SSH key signs to log in: bound to the server's certificate fingerprint (as the
/// client pinned it), the user and the challenge, so a signature made for one server cannot
/// be relayed to another.
pub fn ssh_login_message(
    server_fingerprint: &str,
    user: &str,
    id: &str,
    challenge: &[u8],
) -> Vec<u8> {
    let mut out = b"enc ssh login v1\0".to_vec();
    for field in [
        server_fingerprint.as_bytes(),
        user.as_bytes(),
        id.as_bytes(),
        challenge,
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// What the wrapper of a vault's keys signs for one member: the vault, the member, the
/// generation the keys reach and the wrapped bytes, so the server can neither substitute keys
/// of its own nor move a wrap to another vault or member.
///
/// `access` is the member's right, `write` or `read`: a writer's message is the original
/// (v1) one, so existing signatures stay valid; a reader's is a v2 message that names the
/// right, so the server cannot turn one into the other without the owner's key.
pub fn vault_keys_message(
    vault_id: &str,
    member: &str,
    generation: u32,
    access: &str,
    wrapped_b64: &str,
) -> Vec<u8> {
    let mut out = if access == "write" {
        b"enc vault keys v1\0".to_vec()
    } else {
        let mut v = b"enc vault keys v2\0".to_vec();
        v.extend_from_slice(&(access.len() as u64).to_be_bytes());
        v.extend_from_slice(access.as_bytes());
        v
    };
    for field in [vault_id, member, wrapped_b64] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&generation.to_be_bytes());
    out
}

/// What a user signs about their own age recipient, so others can check it with the user's
/// (pinned) Ed25519 key before wrapping vault keys to it.
pub fn recipient_message(user: &str, recipient: &str) -> Vec<u8> {
    let mut out = b"enc recipient v1\0".to_vec();
    for field in [user, recipient] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// Verifies a base64 Ed25519 signature over `msg` with a base64 public key.
pub fn verify_b64(
    public_key_b64: &str,
    msg: &[u8],
    signature_b64: &str,
) -> Result<(), CryptoError> {
    let key = verifying_key(public_key_b64)?;
    let raw = unb64(signature_b64)?;
    let sig = Signature::from_slice(&raw).map_err(|_| CryptoError::Malformed("signature"))?;
    key.verify(msg, &sig).map_err(|_| CryptoError::BadSignature)
}

/// Verifies a base64 signature over [`commit_message`] with a base64 Ed25519 public key.
pub fn verify_commit(
    public_key_b64: &str,
    fields: &CommitFields<'_>,
    signature_b64: &str,
) -> Result<(), CryptoError> {
    verify_b64(public_key_b64, &commit_message(fields), signature_b64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserKeys;

    #[test]
    fn signature_covers_every_field() {
        let keys = UserKeys::generate();
        let f = CommitFields {
            vault_id: "v",
            object_id: "o",
            enc_name: "n",
            size: 5,
            hash: "ab",
            version: 1,
            generation: 1,
        };
        let sig = keys.sign_b64(&commit_message(&f));
        verify_commit(&keys.verifying_key_b64(), &f, &sig).unwrap();
        let g = CommitFields { size: 6, ..f };
        assert!(verify_commit(&keys.verifying_key_b64(), &g, &sig).is_err());
    }
}
