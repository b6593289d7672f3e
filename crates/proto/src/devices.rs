//! Devices, the account chain and device backups (`/v1/devices`, `/v1/account/chain`,
//! `/v1/backups`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// One link of the account chain, as the account key signed it (`enc account link v1` or
/// `v2`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AccountLink {
    /// 1: signs the user id and the device's name; 2: signs the account key and
    /// `name_commitment`.
    #[serde(default = "one")]
    pub version: u32,
    /// 1, 2, … in order.
    pub seq: u64,
    /// SHA-256 (hex) of the signed message: what the next link names as `prev`.
    pub hash: String,
    /// The previous link's hash (empty for the first).
    pub prev: String,
    /// `device-add` or `device-revoke`.
    pub kind: String,
    /// The device the link is about.
    pub device_id: String,
    /// The device's name when certified (empty in a revocation, and where the server does
    /// not show it: another user's chain, or an erased user's).
    pub device_name: String,
    /// Version 2: the salt of the name's commitment (32 hex digits; empty where the name is
    /// not shown).
    #[serde(default)]
    pub name_salt: String,
    /// Version 2: the commitment to the device's name that the link signs (hex; empty in a
    /// revocation).
    #[serde(default)]
    pub name_commitment: String,
    /// The device's Ed25519 public key, base64 (empty in a revocation).
    pub device_key: String,
    /// Unix seconds, as the signer's clock said.
    pub created: i64,
    /// The account key's Ed25519 signature, base64.
    pub signature: String,
    /// A revocation's end of the device's backup chain: its last entry's counter (0: none).
    #[serde(default)]
    pub last_counter: u64,
    /// That entry's id (empty: none).
    #[serde(default)]
    pub last_entry: String,
    /// A revocation's end of the device's tree commits: `vault seq hash` lines sorted by vault
    /// (empty: none). Signed only when not empty.
    #[serde(default)]
    pub commit_ends: String,
}

/// `POST /v1/account/keys`: proves the passphrase (its auth key, checked and throttled like
/// a login) for an act of the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccountKeysRequest {
    /// The auth key the passphrase derives, base64 (as at login).
    pub auth_key: String,
}

/// The answer to `POST /v1/account/keys`: the account's secret keys, wrapped under the
/// key-encryption key the passphrase derives, for an act of the account (certifying or
/// revoking a device, signing a vault's keys): devices keep no copy of the account's signing
/// key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AccountKeysResponse {
    /// The wrapped key bundle, base64 (as at login).
    pub wrapped_keys: String,
}

fn one() -> u32 {
    1
}

/// `GET /v1/account/chain`, and a vault's signers' chains.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AccountChain {
    /// The account's user id (signed into every version-1 link and every backup); empty for
    /// the chain of an erased user, which has only version-2 links.
    pub user_id: String,
    /// The account's Ed25519 public key, base64, that signs the links.
    pub account_key: String,
    /// The links, in order.
    pub links: Vec<AccountLink>,
}

/// `POST /v1/devices`: a `device-add` link, signed by the account key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddDeviceRequest {
    /// The chain's next sequence number.
    pub seq: u64,
    /// The chain's last link's hash (empty for the first).
    pub prev: String,
    /// A UUID the client chose.
    pub device_id: String,
    /// 1–64 printable characters.
    pub device_name: String,
    /// The link's version: 2 (signing the account key and the name's commitment) is the only
    /// one the server takes now.
    #[serde(default = "one")]
    pub version: u32,
    /// The salt of the name's commitment: 32 hex digits.
    #[serde(default)]
    pub name_salt: String,
    /// Ed25519 public key, base64 (32 bytes).
    pub device_key: String,
    /// Unix seconds.
    pub created: i64,
    /// The account key's signature over the link, base64.
    pub signature: String,
    /// Makes the calling session this device's (a login certifying its own key).
    #[serde(default)]
    pub bind_session: bool,
    /// Also issues an access token of kind `backups` for the device (an app's credential).
    #[serde(default)]
    pub issue_token: bool,
}

/// The answer to `POST /v1/devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AddDeviceResponse {
    /// The device.
    pub device: DeviceInfo,
    /// The token, when `issue_token` asked for one: shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /v1/devices/{id}/revoke`: a `device-revoke` link, signed by the account key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeDeviceRequest {
    /// The link's version: 2 is the only one the server takes now.
    #[serde(default = "one")]
    pub version: u32,
    /// The chain's next sequence number.
    pub seq: u64,
    /// The chain's last link's hash.
    pub prev: String,
    /// The device's last backup entry's counter (0 for none): entries after it are refused.
    #[serde(default)]
    pub last_counter: u64,
    /// That entry's id (empty for none).
    #[serde(default)]
    pub last_entry: String,
    /// Where the device's tree commits end: `vault seq hash` lines sorted by vault (empty for
    /// none), as `GET /v1/devices` shows them; commits after them are refused.
    #[serde(default)]
    pub commit_ends: String,
    /// Unix seconds.
    pub created: i64,
    /// The account key's signature over the link, base64.
    pub signature: String,
}

/// What a revocation ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RevokeDeviceResponse {
    /// Sessions ended.
    pub sessions: u64,
    /// Tokens revoked.
    pub tokens: u64,
}

/// `PUT /v1/devices/{id}/name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameDeviceRequest {
    /// 1–64 printable characters.
    pub name: String,
}

/// One device of the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Its name (as renamed).
    pub name: String,
    /// Ed25519 public key, base64.
    pub public_key: String,
    /// Unix seconds.
    pub created: i64,
    /// The last use by the device or one of its sessions or tokens (Unix seconds).
    pub last_seen: i64,
    /// The account chain link that certified it.
    pub added_seq: u64,
    /// The link that revoked it, if one did.
    #[serde(default)]
    pub revoked_seq: Option<u64>,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Its sessions' ids.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Its tokens' ids.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Whether the calling session is this device's.
    #[serde(default)]
    pub current: bool,
    /// Where the device's tree commits end now: `vault seq hash` lines sorted by vault (empty:
    /// none). A revocation signs it.
    #[serde(default)]
    pub commit_ends: String,
}

/// The signed metadata of a backup upload (`POST /v1/backups`): every field is covered by
/// the device's `enc backup v1` signature, with the account's user id and the server's id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema, IntoParams))]
#[serde(deny_unknown_fields)]
pub struct PutBackupParams {
    /// The signing device.
    pub device: String,
    /// `Internal`, `Confidential` or `Restricted`.
    pub classification: String,
    /// Unix seconds, the device's clock.
    pub created: i64,
    /// The device's next counter (1 for its first entry).
    pub counter: u64,
    /// The device's last entry's id (empty for the first).
    #[serde(default)]
    pub prev: String,
    /// The body's length in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the body.
    pub hash: String,
    /// The device key's Ed25519 signature, base64.
    pub signature: String,
}

/// The signed tombstone of `DELETE /v1/backups/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema, IntoParams))]
#[serde(deny_unknown_fields)]
pub struct TombstoneParams {
    /// The signing device.
    pub device: String,
    /// Unix seconds, the device's clock.
    pub created: i64,
    /// The device's next counter.
    pub counter: u64,
    /// The device's last entry's id.
    #[serde(default)]
    pub prev: String,
    /// The device key's Ed25519 signature, base64.
    pub signature: String,
}

/// `GET /v1/backups` filters and paging.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema, IntoParams))]
#[serde(deny_unknown_fields)]
pub struct ListBackupsParams {
    /// Only this device's backups.
    #[serde(default)]
    pub device: Option<String>,
    /// Only this classification.
    #[serde(default)]
    pub classification: Option<String>,
    /// The `next_cursor` of the page before.
    #[serde(default)]
    pub cursor: Option<String>,
    /// 1–1000 (default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One entry of a device's backup chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BackupInfo {
    /// The entry's id: SHA-256 (hex) of its signed message.
    pub id: String,
    /// `backup` or `tombstone`.
    pub kind: String,
    /// The signing device.
    pub device: String,
    /// The device's counter.
    pub counter: u64,
    /// The device's previous entry's id.
    pub prev: String,
    /// The classification.
    pub classification: String,
    /// Bytes of content.
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub hash: String,
    /// A tombstone's target.
    pub target: String,
    /// Unix seconds, the device's clock.
    pub created: i64,
    /// The device's signature, base64.
    pub signature: String,
    /// When the server accepted it.
    pub received: i64,
    /// The account chain's length when the server accepted it.
    pub chain_seq: u64,
    /// When a tombstone deleted it (its content is gone).
    #[serde(default)]
    pub deleted: Option<i64>,
}

/// A page of `GET /v1/backups`, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BackupList {
    /// The backups.
    pub backups: Vec<BackupInfo>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /v1/devices/{id}/chain`: every entry of one device's chain, by counter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BackupChain {
    /// The account's user id (the first field every entry signs).
    pub user_id: String,
    /// The server's instance id (the second).
    pub server_id: String,
    /// The entries.
    pub entries: Vec<BackupInfo>,
}

/// One row of the backups usage report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BackupUsage {
    /// `YYYY-MM-DD` (UTC) the server accepted them.
    pub day: String,
    /// The classification.
    pub classification: String,
    /// Live backups.
    pub backups: u64,
    /// Their bytes.
    pub bytes: u64,
}
