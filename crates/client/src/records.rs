//! Records sealed on this machine (`enc record`): the same format as the server's `/records`
//! routes ([`enc_crypto::record`]), so a key from either path opens a record through the
//! other, but the server sees neither the plaintext nor the key. It keeps the sealed bytes
//! and the check of the key's proof; reading and deleting send the proof, never the key.

use enc_crypto::record::{RecordKey, open_record, seal_record};
use serde::{Deserialize, Serialize};

use crate::ops::Account;
use crate::{ClientError, Result};

#[derive(Serialize, Deserialize)]
struct Sealed {
    id: String,
    sealed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

/// A record id as the server takes it: 1–128 bytes in hex, in lower case.
pub fn record_id(id: &str) -> Result<String> {
    enc_crypto::record::record_id(id).ok_or_else(|| {
        ClientError::Usage(format!(
            "record id {id:?}: 1 to 128 bytes in hex (an even number of hex digits)"
        ))
    })
}

/// A fresh random record id (16 bytes, hex).
pub fn random_id() -> String {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    hex::encode(raw)
}

/// Parses a record key (64 hex digits).
pub fn record_key(text: &str) -> Result<RecordKey> {
    RecordKey::from_hex(text)
        .map_err(|_| ClientError::Usage("a record key is 64 hex digits (256 bits)".into()))
}

/// Seals `data` as record `id` under a fresh key and stores it: the key (hex), which only
/// the caller keeps.
pub fn put(account: &Account, id: &str, data: &[u8]) -> Result<String> {
    let id = record_id(id)?;
    let key = RecordKey::generate();
    let body = Sealed {
        sealed: enc_crypto::b64(&seal_record(&key, &id, data)),
        check: Some(key.check(&id)),
        id,
    };
    let _: Sealed = account.api.post("/records/sealed", &body)?;
    Ok(key.to_hex())
}

/// Fetches record `id` with the proof of `key` and opens it here.
pub fn get(account: &Account, id: &str, key: &RecordKey) -> Result<Vec<u8>> {
    let id = record_id(id)?;
    let found: Sealed = account.api.get_with(
        &format!("/records/{id}/sealed"),
        ("X-Record-Proof", &key.proof(&id)),
    )?;
    if found.id != id {
        return Err(ClientError::Integrity(format!(
            "the server answered record {} for {id}",
            found.id
        )));
    }
    let sealed = enc_crypto::unb64(&found.sealed).map_err(|_| {
        ClientError::Integrity(format!("record {id}: the sealed bytes are not base64"))
    })?;
    open_record(key, &id, &sealed).map_err(|_| {
        ClientError::Integrity(format!(
            "record {id} does not open with this key: changed on the server, or another record's"
        ))
    })
}

/// Deletes record `id`, proving possession of `key`.
pub fn remove(account: &Account, id: &str, key: &RecordKey) -> Result<()> {
    let id = record_id(id)?;
    account.api.delete_with(
        &format!("/records/{id}"),
        ("X-Record-Proof", &key.proof(&id)),
    )
}
