//! Rows and inputs of the metadata store, and the closed sets of words some of their columns
//! hold (typed here, stored as text).

/// An enum of words stored as text: `as_str`, `Display`, and parsing (`FromStr`, and
/// `TryFrom<String>` for `#[sqlx(try_from = "String")]`) whose error lists the words.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// The stored (and wire) form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(format!("{s:?} is not one of {}", [$($s),+].join(", "))),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<Self, String> {
                s.parse()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// The protocol an access token is for.
    TokenKind { Restic = "restic", Mercury = "mercury", Backups = "backups", Records = "records" }
}

words! {
    /// What an access token may do.
    TokenMode {
        /// Everything its scope allows.
        Full = "full",
        /// Add, never overwrite or delete (restic's locks excepted).
        AppendOnly = "append-only",
        /// Read only.
        ReadOnly = "read-only",
    }
}

words! {
    /// The files of a restic repository: its one `config`, and the five directories of
    /// content-named files.
    ResticFile {
        Config = "config",
        Data = "data",
        Index = "index",
        Keys = "keys",
        Locks = "locks",
        Snapshots = "snapshots",
    }
}

words! {
    /// A vault member's right.
    Access {
        /// The owner, or a writer share.
        Write = "write",
        /// A read-only share.
        Read = "read",
    }
}

/// A user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub role: String,
    /// `invited` or `active`.
    pub state: String,
    pub salt: Vec<u8>,
    pub kdf_m: i64,
    pub kdf_t: i64,
    pub kdf_p: i64,
    pub invite_hash: Option<String>,
    pub invite_expires: Option<i64>,
    pub auth_hash: Option<String>,
    pub x25519_recipient: Option<String>,
    pub ed25519_public: Option<String>,
    pub wrapped_keys: Option<String>,
    pub recipient_sig: Option<String>,
    pub created: i64,
    /// Bytes of committed content the user owns.
    pub usage_bytes: i64,
    /// The user's own quota; `None` falls back to the role's default.
    pub quota_bytes: Option<i64>,
}

/// A new invitation.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: String,
    pub name: String,
    pub role: String,
    pub salt: Vec<u8>,
    pub invite_hash: String,
    pub expires: i64,
    pub now: i64,
}

/// Everything `register` sets.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub invite_hash: String,
    pub now: i64,
    pub kdf: (i64, i64, i64),
    pub auth_hash: String,
    pub x25519_recipient: String,
    pub ed25519_public: String,
    pub wrapped_keys: String,
    pub recipient_sig: String,
    /// The user's first vault, `default` (its owner must be the invited user).
    pub default_vault: NewVault,
}

/// A session (token stored only as a hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub method: String,
    pub created: i64,
    pub last_seen: i64,
    /// The device's host name, as its login gave it (at most 64 characters).
    pub device: String,
    /// The client program and version (its User-Agent, at most 64 characters).
    pub client: String,
    /// The device the session belongs to, once its login certified one.
    pub device_id: Option<String>,
}

/// Outcome of [`crate::MetaStore::touch_session`].
#[derive(Debug, Clone)]
pub enum SessionLookup {
    /// Valid and refreshed.
    Valid(Box<(SessionRow, UserRow)>),
    /// Existed but idled out (now deleted).
    Expired,
    /// No such session.
    Unknown,
}

/// An SSH public key of a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SshKeyRow {
    pub user_id: String,
    pub fingerprint: String,
    pub public_key: String,
    pub comment: String,
    pub wrapped_keys: Option<String>,
    pub created: i64,
}

/// Login throttle state of one key (an account or a client address).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Throttle {
    pub failures: i64,
    pub next_allowed: i64,
}

/// A new vault.
#[derive(Debug, Clone)]
pub struct NewVault {
    /// The row's id (derived by the server from the owner and `signed_id`).
    pub id: String,
    /// The id the owner's client chose and signed over.
    pub signed_id: String,
    pub owner_id: String,
    pub name: String,
    pub wrapped_keys: String,
    pub signature: String,
    pub now: i64,
}

/// A vault as one member sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VaultAccess {
    pub id: String,
    /// The id the owner signed over (keys, commits).
    pub signed_id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub generation: i64,
    pub wrapped_keys: String,
    pub keys_signature: String,
    /// The caller's right.
    #[sqlx(try_from = "String")]
    pub access: Access,
    pub owner_key: String,
    pub objects: i64,
    pub bytes: i64,
}

/// A member of a vault.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub user_id: String,
    pub name: String,
    pub x25519_recipient: String,
    pub ed25519_public: String,
    pub recipient_sig: String,
    pub owner: bool,
    #[sqlx(try_from = "String")]
    pub access: Access,
}

/// A streamed upload awaiting commit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub vault_id: String,
    pub user_id: String,
    pub blob_key: String,
    pub size: i64,
    pub hash: String,
    pub created: i64,
}

/// A commit of an upload.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub upload_id: String,
    pub vault_id: String,
    pub user_id: String,
    pub enc_name: String,
    pub size: i64,
    pub hash: String,
    pub version: i64,
    pub generation: i64,
    pub signature: String,
    pub now: i64,
    /// The vault owner's quota in bytes (`None`: unlimited); usage is charged to the owner.
    pub quota: Option<i64>,
}

/// A committed version of a name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub id: String,
    pub version: i64,
    pub blob_key: String,
    pub size: i64,
    pub hash: String,
    pub generation: i64,
    pub signature: String,
    pub author: String,
    pub author_key: String,
    pub created: i64,
}

/// An audit entry to append.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub ts: i64,
    pub actor: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub client: String,
}

/// A stored audit entry.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub client: String,
    pub prev_hash: String,
    pub hash: String,
    /// Version 2: the salt of the commitments (`None` once redacted, or in version 1).
    pub salt: Option<String>,
    /// Version 2: the commitments the hash covers (`None`: version 1).
    pub actor_commit: Option<String>,
    pub target_commit: Option<String>,
    pub client_commit: Option<String>,
}

/// An access token for a protocol that cannot hold a session (stored as a hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessTokenRow {
    /// Public identifier, also embedded in the token.
    pub id: String,
    pub user_id: String,
    pub token_hash: String,
    #[sqlx(try_from = "String")]
    pub kind: TokenKind,
    /// What the token reaches: the restic repository name (empty for Mercury).
    pub scope: String,
    #[sqlx(try_from = "String")]
    pub mode: TokenMode,
    pub label: String,
    pub created: i64,
    pub expires: Option<i64>,
    pub last_used: Option<i64>,
    /// The device whose session made it (an app's token: the app's device); revoking the
    /// device revokes the token.
    pub device_id: Option<String>,
}

/// A restic repository with its totals.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResticRepoRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created: i64,
    pub objects: i64,
    pub bytes: i64,
}

/// A stored restic file.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResticObjectRow {
    pub name: String,
    pub size: i64,
    /// Where the bytes are in the blob store; empty when they are in `data`.
    pub blob_key: String,
    /// The bytes of a small file, kept in the database itself (`None` in listings).
    pub data: Option<Vec<u8>>,
}

/// A restic file to record once its blob is durable.
#[derive(Debug, Clone)]
pub struct NewResticObject {
    pub repo_id: String,
    /// Owner of the repository; charged for the bytes.
    pub user_id: String,
    pub kind: String,
    pub name: String,
    pub size: i64,
    /// The file's blob; empty when `data` holds the bytes.
    pub blob_key: String,
    /// A small file's bytes, stored in its row instead of a blob: one group commit makes it
    /// durable, where a blob costs a reservation, two `fsync`s of its own and the record.
    pub data: Option<Vec<u8>>,
    /// The owner's quota in bytes (`None`: unlimited).
    pub quota: Option<i64>,
    pub now: i64,
}

/// What recording a restic file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Recorded; the blob is now referenced.
    Stored,
    /// A file of that name already existed (same content: the name is its hash); the new
    /// blob was queued for deletion.
    Existed,
}

/// A stored Mercury archive.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MercuryFileRow {
    pub name: String,
    pub size: i64,
    pub blob_key: String,
    pub created: i64,
}

/// The Mercury space of an enc user's own archives (`mercury_files.space`).
pub fn mercury_user_space(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// A name reservation for a Mercury upload.
#[derive(Debug, Clone)]
pub struct MercuryReservation {
    /// Whose archives: `user:<id>`, `client:<client_id>` or `psk`.
    pub space: String,
    /// Names to try, in order; the first free one is taken.
    pub candidates: Vec<String>,
    /// Where the bytes will go.
    pub blob_key: String,
    /// The enc user to charge, if any.
    pub user_id: Option<String>,
    pub now: i64,
    /// The blob is reserved until then; after a crash the collector deletes it.
    pub until: i64,
}

/// Makes a reserved Mercury upload visible.
#[derive(Debug, Clone)]
pub struct MercuryCommit {
    pub space: String,
    pub name: String,
    pub blob_key: String,
    pub size: i64,
    /// The enc user charged for the bytes, with their quota (`None`: unlimited).
    pub user: Option<(String, Option<i64>)>,
    /// Most bytes the space may hold after the commit (`None`: unlimited).
    pub space_limit: Option<i64>,
    pub now: i64,
}

/// A commit of a vault's tree as stored: the header and signature exactly as its author
/// signed them, and what the server checked them against.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TreeCommitRow {
    pub seq: i64,
    /// Lower-case hex of the commit hash.
    pub hash: String,
    /// The previous commit's hash; empty for the first.
    pub prev: String,
    pub header: Vec<u8>,
    pub signature: Vec<u8>,
    pub author_id: String,
    pub created: i64,
}

/// A commit to append on top of a vault's head, with what the server read off its header.
#[derive(Debug, Clone)]
pub struct NewTreeCommit {
    pub vault_id: String,
    pub user_id: String,
    /// A version-2 header's account key (base64), by which readers find the signer's chain;
    /// `None` for version 1.
    pub signer_key: Option<String>,
    /// The device whose key signed it, with that key: appended only while the device stands.
    pub device: Option<(String, String)>,
    pub seq: i64,
    pub hash: String,
    /// The head it was built on; empty for a vault's first commit.
    pub prev: String,
    pub header: Vec<u8>,
    pub signature: Vec<u8>,
    /// Completed uploads of this user to this vault that become the tree's blobs (named by
    /// their upload ids).
    pub adds: Vec<String>,
    /// Blobs of the vault the tree no longer references.
    pub releases: Vec<String>,
    /// The blob holding the commit's body, and the end of the body's range in it: the blob
    /// must be live once `adds` and `releases` are applied, and long enough.
    pub body_blob: String,
    pub body_end: i64,
    /// The vault owner's quota, for what the adds weigh.
    pub quota: Option<i64>,
    pub now: i64,
}

/// What came of appending a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeAppend {
    /// It is the vault's head now.
    Appended(TreeCommitRow),
    /// It was not built on the head, which is this one (`None`: the vault has no commit):
    /// nothing changed.
    Behind(Option<TreeCommitRow>),
}

/// A blob a vault's tree references.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TreeBlobRow {
    pub id: String,
    pub blob_key: String,
    pub size: i64,
    pub added_seq: i64,
}

/// One link of a user's account chain, as signed by the account key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountLinkRow {
    pub user_id: String,
    pub seq: i64,
    /// SHA-256 of the signed message (what the next link names as `prev`).
    pub hash: String,
    pub prev: String,
    /// `device-add` or `device-revoke`.
    pub kind: String,
    pub device_id: String,
    /// The name the device was certified with (a V2 link signs its commitment instead).
    pub device_name: String,
    pub device_key: String,
    pub created: i64,
    pub signature: String,
    /// 1 or 2 (`enc account link v1`, `v2`).
    pub version: i64,
    /// V2: the salt of the name's commitment, and the commitment the link signs.
    pub name_salt: String,
    pub name_commitment: String,
    /// A revocation's end of the device's backup chain: its last entry (0 and empty: none).
    pub last_counter: i64,
    pub last_entry: String,
    /// A revocation's end of the device's tree commits, per vault (`vault seq` lines, sorted;
    /// empty: none).
    pub commit_ends: String,
}

/// A device of a user: the key a link certified, and the link that revoked it, if one did.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub user_id: String,
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub created: i64,
    pub last_seen: i64,
    pub added_seq: i64,
    pub revoked_seq: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What revoking a device ended.
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    /// Sessions ended.
    pub sessions: u64,
    /// Ids of the tokens revoked (for the caches that hold verified ones).
    pub tokens: Vec<String>,
}

/// One entry of a device's backup chain: a backup or a tombstone, with what the server
/// checked it against.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BackupRow {
    pub user_id: String,
    /// The entry's hash (SHA-256 of its signed message).
    pub id: String,
    /// The user's entries in the order the server accepted them (set by the store).
    pub seq: i64,
    pub device_id: String,
    /// `backup` or `tombstone`.
    pub kind: String,
    pub counter: i64,
    pub prev: String,
    pub classification: String,
    pub size: i64,
    pub content_hash: String,
    pub target: String,
    pub created: i64,
    pub signature: String,
    /// When the server accepted it.
    pub received: i64,
    /// The account chain's length when the server accepted it: the device's certificate
    /// was at or below it, and no revocation of the device was.
    pub chain_seq: i64,
    /// When a tombstone deleted it.
    pub deleted: Option<i64>,
    /// Where content larger than a row holds is kept.
    pub blob_key: Option<String>,
}

/// The backups accepted on one day with one classification (the usage report).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BackupUsageRow {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub classification: String,
    pub backups: i64,
    pub bytes: i64,
}

/// Which backups a listing shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct BackupFilter {
    pub device_id: Option<String>,
    pub classification: Option<String>,
    /// Only entries accepted before this `seq` (the cursor).
    pub before: Option<i64>,
    pub limit: i64,
}

/// One backup for [`crate::Backups::put_backups`]: the entry, its content when kept in the
/// row, the user's quota, and the audit entry written with it.
#[derive(Debug, Clone)]
pub struct NewBackup {
    pub row: BackupRow,
    pub data: Option<Vec<u8>>,
    pub quota: Option<i64>,
    pub audit: NewAudit,
}

/// A record: its sealed bytes under its owner's pseudonym, and the check of its key's proof.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordRow {
    /// HMAC-SHA256 of the user's id under the server's records pepper (hex).
    pub owner: String,
    /// The id its caller chose (hex, lower case).
    pub id: String,
    /// Version, nonce, AES-256-GCM ciphertext and tag (`enc_crypto::record`).
    pub sealed: Vec<u8>,
    /// SHA-256 of the proof of the key (hex).
    pub key_check: String,
    /// Bytes of `sealed`, charged to the user.
    pub size: i64,
    /// Unix seconds.
    pub created: i64,
}

/// A blob the metadata references, as `enc-server scrub` reports it: what the server knows
/// of it without any key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BlobRef {
    pub blob_key: String,
    /// The size the metadata records.
    pub size: i64,
    /// Whose it is: a user's name, or a Mercury space (`client:ID`, `psk`).
    pub owner: String,
    /// What it holds, as the server names it (`vault team tree blob ID`, `restic laptop
    /// data/ID`, `mercury archive NAME`, `backup ID of device ID`, `vault team object ID
    /// version N`).
    pub what: String,
}

/// An erasure job: the steps of [`ERASURE_STEPS`] run in order, each committed together with
/// the number of the next, so a restart resumes at the first one not done.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ErasureRow {
    /// Random (hex): the caller's handle on the job, and how the server's records name the
    /// erased user once their id is gone (`label`).
    pub id: String,
    /// The user being erased; `None` once their row is deleted (the audit chain's tombstone
    /// entry keeps the id).
    pub user_id: Option<String>,
    /// What the user's authorship in others' vaults is attributed to from now on.
    pub label: String,
    /// Their records' owner pseudonym, taken at the start (`None` without a records pepper);
    /// emptied with `user_id`.
    pub pseudonym: Option<String>,
    /// The index in [`ERASURE_STEPS`] of the next step to run.
    pub step: i64,
    /// `what=n` pairs, space-separated: what the steps done so far removed.
    pub counts: String,
    /// 1 when an admin asked, 0 when the user did.
    pub by_admin: i64,
    /// Unix seconds.
    pub started: i64,
    pub finished: Option<i64>,
}

/// The steps of an erasure, in the order they run. Each is one transaction that also moves
/// the job to the next, so a step is done exactly once; the last (`collect`) is the server's:
/// it deletes the queued blobs and compacts the database.
pub const ERASURE_STEPS: [&str; 11] = [
    "records",
    "backups",
    "mercury",
    "restic",
    "vaults",
    "elsewhere",
    "credentials",
    "audit",
    "account",
    "collect",
    "done",
];

impl ErasureRow {
    /// The name of the next step.
    pub fn next_step(&self) -> &'static str {
        ERASURE_STEPS
            .get(self.step.max(0) as usize)
            .copied()
            .unwrap_or("done")
    }

    /// Whether every step is done.
    pub fn is_done(&self) -> bool {
        self.next_step() == "done"
    }

    /// The counts as pairs, in the order the steps recorded them (a name ending in
    /// `_left_naming` counts what could not be removed).
    pub fn count_pairs(&self) -> Vec<(String, u64)> {
        self.counts
            .split_whitespace()
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }
}
