//! Wire types of the enc `/v1` API, shared by `enc-server` and `enc-client`.
//!
//! Every request type rejects unknown fields. Binary values are standard base64; hashes are
//! lower-case hex; times are Unix seconds. With the `openapi` feature each type also
//! describes itself for the OpenAPI document the server serves at `/v1/openapi.json`.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

mod devices;
mod erasure;
pub use devices::*;
pub use erasure::*;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The single error shape of every `/v1` response that is not a success.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine-readable code plus a human-readable message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorDetail {
    /// Stable code, e.g. `not_found`, `session_expired`, `too_many_attempts`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Argon2id parameters the client derives account keys with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

/// `POST /v1/auth/prelogin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    /// User name.
    pub user: String,
}

/// Salt and KDF parameters; deterministic fakes for unknown users.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PreloginResponse {
    /// Salt, base64.
    pub salt: String,
    /// Argon2id parameters.
    pub kdf: Kdf,
}

/// `POST /v1/auth/register`: redeem an invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// User name the invitation was made for.
    pub user: String,
    /// The one-time invitation token.
    pub invitation: String,
    /// Argon2id parameters used for the auth key.
    pub kdf: Kdf,
    /// Auth key derived from the passphrase, base64.
    pub auth_key: String,
    /// The account's age recipient (`age1…`).
    pub x25519_recipient: String,
    /// The account's Ed25519 public key, base64.
    pub ed25519_public: String,
    /// The account's secret keys wrapped under the key-encryption key, base64.
    pub wrapped_keys: String,
    /// Signature by the account's Ed25519 key over its user name and age recipient.
    pub recipient_signature: String,
    /// Id (UUID) chosen by the client for the `default` vault.
    pub default_vault_id: String,
    /// Keys of the `default` vault wrapped to the account's recipient, base64.
    pub default_vault_keys: String,
    /// Signature over the default vault's wrapped keys (see `enc_crypto::vault_keys_message`).
    pub default_vault_signature: String,
    /// The device's host name, shown in `enc session ls` (at most 64 characters kept).
    #[serde(default)]
    pub device: Option<String>,
}

/// `POST /v1/auth/login` with the passphrase-derived auth key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub user: String,
    /// Auth key, base64.
    pub auth_key: String,
    /// The device's host name, shown in `enc session ls` (at most 64 characters kept).
    #[serde(default)]
    pub device: Option<String>,
}

/// `PUT /v1/me/passphrase`: a new passphrase. The salt and KDF parameters stay; the client
/// derives both auth keys and re-wraps its account keys under the new key-encryption key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassphraseRequest {
    /// The current passphrase's auth key, base64 (a session alone cannot change it).
    pub auth_key: String,
    /// The new passphrase's auth key, base64.
    pub new_auth_key: String,
    /// The account keys wrapped under the new passphrase's key-encryption key.
    pub new_wrapped_keys: String,
    /// End every other session of the account.
    #[serde(default)]
    pub end_other_sessions: bool,
}

/// The answer to a passphrase change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChangePassphraseResponse {
    /// How many other sessions were ended.
    pub ended_sessions: u64,
}

/// `POST /v1/auth/ssh/challenge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SshChallengeRequest {
    /// User name.
    pub user: String,
}

/// A challenge to sign with an SSH key (namespace `enc-login`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SshChallengeResponse {
    /// Challenge id.
    pub id: String,
    /// Bytes to sign, base64.
    pub challenge: String,
}

/// `POST /v1/auth/ssh/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SshLoginRequest {
    /// User name.
    pub user: String,
    /// Challenge id.
    pub id: String,
    /// SSH signature (`-----BEGIN SSH SIGNATURE-----` armor) over the challenge.
    pub signature: String,
    /// The device's host name, shown in `enc session ls` (at most 64 characters kept).
    #[serde(default)]
    pub device: Option<String>,
}

/// A new session and what the client needs to use the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginResponse {
    /// Bearer token; shown once.
    pub token: String,
    /// Session id (for `enc session ls/revoke`).
    pub session_id: String,
    /// User name.
    pub user: String,
    /// Role.
    pub role: String,
    /// Idle timeout of the session in seconds.
    pub idle_timeout_secs: u64,
    /// Account keys wrapped under the passphrase KEK, base64.
    pub wrapped_keys: String,
    /// Account keys wrapped under the SSH-derived key, when this was an SSH login and the key
    /// carries one.
    pub ssh_wrapped_keys: Option<String>,
    /// The account's age recipient.
    pub x25519_recipient: String,
    /// The account's Ed25519 public key, base64.
    pub ed25519_public: String,
}

/// `GET /v1/me`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MeResponse {
    /// User name.
    pub user: String,
    /// Role.
    pub role: String,
    /// Current session id.
    pub session_id: String,
    /// Idle timeout in seconds.
    pub idle_timeout_secs: u64,
    /// The account's user id (signed into device links and backups).
    #[serde(default)]
    pub user_id: String,
    /// The server's instance id (signed into backups, so none moves to another server).
    #[serde(default)]
    pub server_id: String,
    /// The calling session's device, once its login certified one.
    #[serde(default)]
    pub device_id: Option<String>,
}

/// One session of the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Creation time.
    pub created: i64,
    /// Last authenticated request.
    pub last_seen: i64,
    /// Whether this is the session making the request.
    pub current: bool,
    /// How it was opened: `passphrase`, `ssh` or `register`.
    pub method: String,
    /// The device's host name, as its login gave it.
    #[serde(default)]
    pub device: String,
    /// The client program and version that logged in (its User-Agent).
    #[serde(default)]
    pub client: String,
}

/// `POST /v1/ssh-keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddSshKeyRequest {
    /// OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    /// Account keys wrapped under a key derived from this SSH key, base64 (optional).
    pub wrapped_keys: Option<String>,
}

/// A registered SSH key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SshKeyInfo {
    /// `SHA256:…` fingerprint.
    pub fingerprint: String,
    /// Comment of the key.
    pub comment: String,
    /// Added at.
    pub created: i64,
}

/// `POST /v1/users` (admin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// New user name.
    pub name: String,
    /// Role name from the policy.
    pub role: String,
}

/// The invitation for a new user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InvitationResponse {
    /// User name.
    pub name: String,
    /// One-time token for `enc register`.
    pub invitation: String,
    /// Expiry time.
    pub expires_at: i64,
}

/// `PUT /v1/users/{name}/role`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// Role name from the policy.
    pub role: String,
}

/// A user, as an admin sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// `active` or `invited`.
    pub state: String,
    /// Bytes the user owns: vault versions of vaults they own plus restic files.
    pub usage_bytes: u64,
    /// The quota that applies (their own or their role's); `None` is unlimited.
    pub quota_bytes: Option<u64>,
    /// Created at.
    pub created: i64,
}

/// `PUT /v1/users/{name}/quota` (admin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetQuotaRequest {
    /// Quota in bytes; `null` returns the user to their role's default; [`UNLIMITED_QUOTA`]
    /// lifts every limit, the role's default included.
    pub quota_bytes: Option<u64>,
}

/// A user quota of this many bytes means no limit at all (it overrides the role's default).
pub const UNLIMITED_QUOTA: u64 = i64::MAX as u64;

/// Whether `name` is a user name: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit
/// (so no label the server writes in a name's place, `(erased …)` or `(removed)`, is one).
pub fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Public keys of a user, for sharing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PublicKeys {
    /// Name.
    pub user: String,
    /// age recipient.
    pub x25519_recipient: String,
    /// Ed25519 public key, base64.
    pub ed25519_public: String,
    /// The user's signature over their name and recipient.
    pub recipient_signature: String,
}

/// `POST /v1/vaults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateVaultRequest {
    /// Vault id (a UUID the client chose, so it can sign over it).
    pub id: String,
    /// Vault name (letters, digits, `-`, `_`, `.`; 1–64).
    pub name: String,
    /// The vault keys wrapped to the creator's recipient, base64.
    pub wrapped_keys: String,
    /// The creator's signature over the wrapped keys.
    pub signature: String,
}

/// A vault the caller can use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VaultInfo {
    /// Vault id (in routes).
    pub id: String,
    /// The id the owner's client chose, which keys and commits are signed over.
    pub signed_id: String,
    /// Owner's user name.
    pub owner: String,
    /// Vault name.
    pub name: String,
    /// Key generation new objects must be encrypted to.
    pub generation: u32,
    /// The vault keys wrapped to the caller, base64.
    pub wrapped_keys: String,
    /// Signature over `wrapped_keys` by whoever wrapped them.
    pub keys_signature: String,
    /// Who wrapped them (the caller, or the owner for a shared vault).
    pub keys_signer: String,
    /// The caller's right: `write` (owner or writer) or `read` (pull and list only); part of
    /// what `keys_signature` covers.
    #[serde(default = "write_access")]
    pub access: String,
    /// The signer's Ed25519 public key as the server has it (check it against a pinned copy).
    pub keys_signer_key: String,
    /// Number of objects.
    pub objects: u64,
    /// Bytes stored (all versions).
    pub bytes: u64,
}

/// `POST /v1/vaults/{id}/members` (share).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// User to share with.
    pub user: String,
    /// The vault keys wrapped to that user's recipient, base64.
    pub wrapped_keys: String,
    /// The owner's signature over the wrapped keys and the right.
    pub signature: String,
    /// Pull and list only: no push, no removal.
    #[serde(default)]
    pub read_only: bool,
}

/// A member of a vault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MemberInfo {
    /// User name.
    pub user: String,
    /// Their age recipient.
    pub x25519_recipient: String,
    /// Their Ed25519 public key, base64.
    pub ed25519_public: String,
    /// Their signature over their name and recipient.
    pub recipient_signature: String,
    /// Whether they own the vault.
    pub owner: bool,
    /// Their right: `write` or `read`.
    #[serde(default = "write_access")]
    pub access: String,
}

fn write_access() -> String {
    "write".into()
}

/// `POST /v1/vaults/{id}/unshare`: remove a member and move to a new key generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnshareRequest {
    /// Member to remove.
    pub user: String,
    /// The new generation (current + 1).
    pub generation: u32,
    /// New wrapped keys for every remaining member.
    pub rewrapped: Vec<MemberKeys>,
}

/// Wrapped vault keys for one member.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberKeys {
    /// User name.
    pub user: String,
    /// Wrapped keys, base64.
    pub wrapped_keys: String,
    /// The owner's signature over the wrapped keys.
    pub signature: String,
}

/// Answer to a streamed upload (`PUT /v1/vaults/{id}/uploads`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UploadReceipt {
    /// Upload id; becomes the version id on commit.
    pub upload_id: String,
    /// Bytes received.
    pub size: u64,
    /// BLAKE3 hash of the bytes received, hex.
    pub hash: String,
}

/// `POST /v1/vaults/{id}/objects`: make an upload visible as a version of a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// Upload id from the receipt.
    pub upload_id: String,
    /// Encrypted name.
    pub enc_name: String,
    /// Size the client sent.
    pub size: u64,
    /// BLAKE3 hash the client computed, hex.
    pub hash: String,
    /// Version this commit creates (latest + 1; 1 for a new name).
    pub version: u64,
    /// Key generation the content is encrypted to.
    pub generation: u32,
    /// Ed25519 signature over the commit message, base64.
    pub signature: String,
}

/// One stored version of a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VersionInfo {
    /// Version id (download with `GET /v1/vaults/{id}/blobs/{version_id}`).
    pub id: String,
    /// Version number.
    pub version: u64,
    /// Ciphertext size.
    pub size: u64,
    /// BLAKE3 hash of the ciphertext, hex.
    pub hash: String,
    /// Key generation.
    pub generation: u32,
    /// Signature by the author.
    pub signature: String,
    /// Author's user name.
    pub author: String,
    /// Author's Ed25519 public key, base64.
    pub author_key: String,
    /// Commit time.
    pub created: i64,
}

/// A name in a vault with its versions (newest first).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ObjectInfo {
    /// Encrypted name.
    pub enc_name: String,
    /// Versions, newest first (only the latest in listings).
    pub versions: Vec<VersionInfo>,
}

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Time.
    pub ts: i64,
    /// Acting user (or `-`).
    pub actor: String,
    /// What happened, e.g. `login.failure`.
    pub action: String,
    /// What it happened to.
    pub target: String,
    /// `ok` or `denied`/`failed`.
    pub outcome: String,
    /// Keyed hash of the client address.
    pub client: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
    /// Version 2: the salt of the commitments below (absent once the entry is redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Version 2: the commitments to the actor, target and client that the hash covers
    /// (absent: version 1, whose hash covers those fields in clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_commit: Option<String>,
}

/// `GET /v1/audit` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditResponse {
    /// Entries in chain order.
    pub entries: Vec<AuditEntry>,
    /// Whether the server checked the whole chain and found it intact (admins only; `null`
    /// for others).
    pub chain_verified: Option<bool>,
}

/// `POST /v1/tokens`: an access token for a protocol that cannot hold a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// `restic` (HTTP Basic on `/restic/<user>/<repo>/`).
    pub kind: String,
    /// For `restic`: the repository name the token reaches.
    pub scope: String,
    /// `full`, `append-only` or `read-only`.
    pub mode: String,
    /// Lifetime in seconds; `None` never expires.
    pub expires_in: Option<u64>,
    /// Free text to recognise the token by (at most 128 characters).
    #[serde(default)]
    pub label: String,
}

/// An access token as listed (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenInfo {
    /// Identifier (for `enc token revoke`).
    pub id: String,
    /// `restic`.
    pub kind: String,
    /// Repository name.
    pub scope: String,
    /// `full`, `append-only` or `read-only`.
    pub mode: String,
    /// Label.
    pub label: String,
    /// Created at.
    pub created: i64,
    /// Expires at (`None`: never).
    pub expires: Option<i64>,
    /// Last used at (to the minute).
    pub last_used: Option<i64>,
}

/// A new token: the secret is shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateTokenResponse {
    /// The token (`enc_<id>_<secret>`); only its hash is stored.
    pub token: String,
    /// What was stored.
    pub info: TokenInfo,
}

/// A restic repository of the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResticRepoInfo {
    /// Name (the last element of `/restic/<user>/<name>/`).
    pub name: String,
    /// Files stored.
    pub objects: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Created at.
    pub created: i64,
}

/// `POST /v1/vaults/{id}/commits`: a signed commit of the vault's tree, on top of its head.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TreeCommitRequest {
    /// The commit header's canonical bytes (`enc tree commit v1`), base64.
    pub header: String,
    /// The signer's Ed25519 signature over the header, base64.
    pub signature: String,
}

/// One commit of a vault's tree, as its author signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TreeCommitInfo {
    /// 1 for the vault's first commit, then one more each.
    pub seq: u64,
    /// The commit hash (SHA-256 of header and signature), hex.
    pub hash: String,
    /// The header, base64.
    pub header: String,
    /// The signature, base64.
    pub signature: String,
    /// When the server accepted it (Unix seconds; the server's word, not signed).
    pub created: i64,
    /// Who pushed it, as the server knows them: a user's name, or the label of an erased
    /// user. The server's word: a reader checks it against the key a version-2 header signs
    /// with (the key pinned for that name).
    #[serde(default)]
    pub author: String,
}

/// `GET /v1/vaults/{id}/head`: the newest commit, if the vault has one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TreeHead {
    pub head: Option<TreeCommitInfo>,
}

/// `GET /v1/vaults/{id}/commits?after=SEQ&limit=N`: commits after `after`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TreeCommits {
    pub commits: Vec<TreeCommitInfo>,
}

/// One range of a blob of a vault's tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReadRange {
    /// The blob's id (the upload id it was added under).
    pub blob: String,
    pub offset: u64,
    pub len: u64,
}

/// `POST /v1/vaults/{id}/read`: many ranges, answered as one body of their bytes in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub ranges: Vec<ReadRange>,
}
