//! The metadata interface, one trait per concern, combined by [`MetaStore`]. A handler takes
//! the narrow trait it needs (`&dyn Tokens`, say); the server holds the combination.
//!
//! Each method is one transaction and names its row-level-security class, which the
//! PostgreSQL engine enforces with its policies: *system scope* (the server's own
//! cross-tenant work: authentication lookups, administration, collection, the audit chain),
//! *tenant scope* (only the rows of the user of the caller's [`crate::tenant`] scope; nothing
//! outside one) or *caller's scope* (the caller's tenant if there is one, else the server's).

use crate::*;

/// The database itself.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// *System scope.* Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// What the SQL engine has done since the store was opened (transactions begun, writes
    /// serialised), so tests can check a method's shape without timing it.
    fn engine_counts(&self) -> EngineCounts;
    /// *System scope.* The deployment's server secret: the stored one, or `candidate` stored now if
    /// there is none (the first replica to start decides).
    async fn server_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>>;
}

/// Accounts and invitations, administered by the server (system scope: an account is looked up
/// before anyone is authenticated).
#[async_trait::async_trait]
pub trait Users: Send + Sync {
    /// Creates an invited user, or renews the invitation of one not yet registered.
    /// `Conflict` if the name belongs to an active user.
    async fn invite_user(&self, invite: NewInvitation) -> Result<()>;
    /// Looks a user up by name.
    async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>>;
    /// Turns an invited user active if `invite_hash` matches and has not expired, and creates
    /// the `default` vault. `NotFound` for any mismatch (no oracle).
    async fn register_user(&self, reg: Registration) -> Result<UserRow>;
    /// All users (each row carries its usage and quota).
    async fn list_users(&self) -> Result<Vec<UserRow>>;
    /// Sets (or with `None` clears) a user's own quota in bytes.
    async fn set_quota(&self, name: &str, quota: Option<i64>) -> Result<()>;
    /// Deletes a user with everything they own; queues their blobs for deletion. `Conflict`
    /// while they are being erased (the erasure removes them).
    async fn delete_user(&self, name: &str) -> Result<()>;
    /// Changes a user's role.
    async fn set_role(&self, name: &str, role: &str) -> Result<()>;
}

/// Sessions, SSH keys and login challenges; each method names its scope.
#[async_trait::async_trait]
pub trait Sessions: Send + Sync {
    /// *System scope.* Stores a new session.
    async fn create_session(&self, session: SessionRow) -> Result<()>;
    /// *System scope.* Finds a session by token hash; deletes and reports it expired if idle for
    /// longer than `idle_secs`, else refreshes `last_seen`.
    async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<SessionLookup>;
    /// *Tenant scope.* Sessions of a user.
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRow>>;
    /// *Tenant scope.* Deletes one session of a user; false if there was none.
    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<bool>;
    /// *Tenant scope.* A passphrase change: the new auth-key hash and key bundle replace the old
    /// ones, and, with `end_others_but`, every other session of the user ends (in one transaction).
    /// Returns how many sessions ended.
    async fn change_passphrase(
        &self,
        user_id: &str,
        auth_hash: &str,
        wrapped_keys: &str,
        end_others_but: Option<&str>,
    ) -> Result<u64>;
    /// *Tenant scope.* Adds (or replaces) an SSH key of a user.
    async fn add_ssh_key(&self, key: SshKeyRow) -> Result<()>;
    /// *System scope.* SSH keys of a user.
    async fn ssh_keys(&self, user_id: &str) -> Result<Vec<SshKeyRow>>;
    /// *System scope.* Stores a login challenge.
    async fn put_challenge(
        &self,
        id: &str,
        user: &str,
        challenge: &[u8],
        expires: i64,
    ) -> Result<()>;
    /// *System scope.* Takes (deletes and returns) an unexpired challenge issued for `user`.
    async fn take_challenge(&self, id: &str, user: &str, now: i64) -> Result<Option<Vec<u8>>>;
}

/// Login throttling and sliding-window allowances, shared by every replica (system scope).
#[async_trait::async_trait]
pub trait Throttling: Send + Sync {
    /// Current state of a throttle key.
    async fn throttle_get(&self, key: &str) -> Result<Option<Throttle>>;
    /// One login attempt against several keys, atomically: if any key is backing off (at least
    /// `free` failures and its wait not over) returns the seconds left and counts nothing;
    /// otherwise counts the attempt as a failure on every key (taken back on success).
    async fn throttle_attempt(
        &self,
        keys: &[String],
        now: i64,
        free: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Option<i64>>;
    /// Records a failure and returns the new state; `backoff(failures)` gives the delay.
    async fn throttle_fail(&self, key: &str, now: i64, backoff: fn(i64) -> i64)
    -> Result<Throttle>;
    /// Takes back one counted failure (an attempt counted up front that succeeded).
    async fn throttle_undo(&self, key: &str) -> Result<()>;
    /// Forgets a key after a success.
    async fn throttle_clear(&self, key: &str) -> Result<()>;
    /// Keeps a marker under `key` (no failures) until `until`: an address an account has
    /// logged in from. The day-old cleanup keeps it while `until` is ahead.
    async fn throttle_mark(&self, key: &str, now: i64, until: i64) -> Result<()>;
    /// Counts one event under `key` if fewer than `limit` were counted in the `window`
    /// seconds up to `now`, atomically across every process on this database; false (and
    /// nothing counted) otherwise.
    async fn rate_take(&self, key: &str, now: i64, window: i64, limit: i64) -> Result<bool>;
}

/// Vaults and their members (tenant scope: a vault is seen only through a membership).
#[async_trait::async_trait]
pub trait Vaults: Send + Sync {
    /// Creates a vault owned by `owner_id`; `Conflict` if the owner has one of that name.
    async fn create_vault(&self, vault: NewVault) -> Result<VaultAccess>;
    /// Vaults `user_id` owns or is a member of.
    async fn vaults_for(&self, user_id: &str) -> Result<Vec<VaultAccess>>;
    /// One vault, only if `user_id` owns it or is a member.
    async fn vault_access(&self, user_id: &str, vault_id: &str) -> Result<Option<VaultAccess>>;
    /// Deletes a vault and queues its blobs.
    async fn delete_vault(&self, vault_id: &str) -> Result<()>;
    /// Members of a vault (owner included).
    async fn members(&self, vault_id: &str) -> Result<Vec<Member>>;
    /// Adds or updates a member's wrapped keys (with the owner's signature over them, which
    /// covers `access`).
    async fn add_member(
        &self,
        vault_id: &str,
        user_id: &str,
        wrapped_keys: &str,
        signature: &str,
        access: Access,
    ) -> Result<()>;
    /// Removes a member and installs a new generation with re-wrapped keys for every
    /// remaining member, atomically. `Conflict` if the generation is not current + 1 or the
    /// re-wrapped set is not exactly the remaining members.
    async fn rotate_vault(
        &self,
        vault_id: &str,
        remove_user_id: &str,
        generation: u32,
        rewrapped: Vec<(String, String, String)>,
    ) -> Result<()>;
}

/// `/v1` uploads in flight and the versions they become (tenant scope).
#[async_trait::async_trait]
pub trait Versions: Send + Sync {
    /// Records an upload before its bytes arrive (size -1), so a crash mid-stream leaves a
    /// row that expiry cleans up rather than an orphan blob.
    /// `Conflict` when its user already has `max_pending` uploads not committed.
    async fn create_upload(&self, upload: UploadRow, max_pending: i64) -> Result<()>;
    /// Charges `n` more bytes of an upload still streaming to its vault's owner, within
    /// `quota`: `QuotaExceeded` if they do not fit (nothing changes), `NotFound` if the
    /// upload is gone (released, expired, its vault removed).
    async fn charge_upload(&self, id: &str, n: i64, quota: Option<i64>) -> Result<()>;
    /// Records the size and hash of an upload whose blob is now durably stored, and gives
    /// back what it was charged beyond its size.
    async fn complete_upload(&self, id: &str, size: i64, sha256: &str) -> Result<()>;
    /// An upload that will not be committed (refused, abandoned): gives back its charge,
    /// forgets it and queues its blob for deletion. Nothing happens if it is already gone.
    async fn release_upload(&self, id: &str, now: i64) -> Result<()>;
    /// Commits an upload as the next version of a name; prunes versions beyond `keep`;
    /// charges the vault owner. `NotFound` if the upload is not this user's in this vault;
    /// `Conflict` if the version is not latest + 1 or the fields differ from the upload;
    /// `QuotaExceeded` if the owner's quota has no room.
    async fn commit_version(&self, commit: NewVersion, keep: u32) -> Result<VersionRow>;
    /// Latest version of every name in a vault.
    async fn list_objects(&self, vault_id: &str) -> Result<Vec<(String, VersionRow)>>;
    /// All versions of a name, newest first; empty if none.
    async fn object_versions(&self, vault_id: &str, enc_name: &str) -> Result<Vec<VersionRow>>;
    /// One version by id, within a vault.
    async fn version(&self, vault_id: &str, version_id: &str) -> Result<Option<VersionRow>>;
    /// Removes a name with all versions and queues its blobs; false if it did not exist.
    async fn delete_object(&self, vault_id: &str, enc_name: &str) -> Result<bool>;
}

/// Vault trees: signed commits, each on top of the one before, and the blobs they reference
/// (tenant scope: seen only through a membership).
#[async_trait::async_trait]
pub trait Trees: Send + Sync {
    /// Appends a commit if it is built on the vault's head (`seq` = head + 1, `prev` = the
    /// head's hash), in one transaction: its adds become the vault's blobs (their charge
    /// moves from the upload to the owner's usage, within `quota`), its releases are
    /// credited and queued for collection. [`TreeAppend::Behind`] with the head if it is not
    /// built on it. `NotFound` if the user may not write to the vault; `Conflict` if an add
    /// is not a completed upload of this user to this vault, a release or the body's blob is
    /// not a blob of the vault, or the body lies past its blob's end; `QuotaExceeded` if the
    /// owner's quota has no room. Nothing changes on any of them.
    async fn tree_append(&self, commit: NewTreeCommit) -> Result<TreeAppend>;
    /// The vault's newest commit, if it has one.
    async fn tree_head(&self, vault_id: &str) -> Result<Option<TreeCommitRow>>;
    /// Up to `limit` commits after `after_seq`, oldest first.
    async fn tree_commits(
        &self,
        vault_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<TreeCommitRow>>;
    /// The vault's blobs of these ids that exist (in no particular order).
    async fn tree_blobs(&self, vault_id: &str, ids: &[String]) -> Result<Vec<TreeBlobRow>>;
}

/// Housekeeping and the queue of blobs to delete (system scope). A blob is queued in the
/// transaction that unreferenced it and deleted only after that committed.
#[async_trait::async_trait]
pub trait Collection: Send + Sync {
    /// Deletes sessions idle for longer than `idle_secs`, throttle entries untouched for a day,
    /// rate events older than a day and expired login challenges.
    async fn prune(&self, now: i64, idle_secs: i64) -> Result<()>;
    /// Queues uploads (and Mercury reservations) older than `before` for deletion.
    async fn expire_uploads(&self, completed_before: i64, before: i64) -> Result<u64>;
    /// Blob keys due for deletion at `now`.
    async fn gc_pending(&self, now: i64, limit: i64) -> Result<Vec<String>>;
    /// Moves blobs whose deletion failed to the back of the queue.
    async fn gc_retry_later(&self, keys: &[String], now: i64) -> Result<()>;
    /// Queues one blob for deletion at `at` (an upload that could not be recorded). A key
    /// already queued keeps the earlier time. Queueing at a future time reserves the key for
    /// an upload in flight: the transaction that records it claims it back, and after a
    /// crash the collector deletes it once the time has passed.
    async fn queue_blob(&self, key: &str, at: i64) -> Result<()>;
    /// Marks queued blobs as deleted.
    async fn gc_done(&self, keys: &[String]) -> Result<()>;
    /// *System scope.* Every blob the metadata references (committed object versions, tree
    /// blobs, restic files, stored Mercury archives, backups' content), with its size and
    /// whose it is: what `enc-server scrub` checks. A page of at most `limit` from `cursor`
    /// (empty: the start), and the cursor of the next page (`None`: that was the last). A
    /// page may be short, even empty, before the last.
    async fn blob_refs(&self, cursor: &str, limit: i64) -> Result<(Vec<BlobRef>, Option<String>)>;
    /// *System scope.* Blob keys held without a reference: queued for collection (deleted
    /// soon, or reserved by an upload in flight) or an upload's not yet committed. Those
    /// after `after` in key order, at most `limit`.
    async fn held_blobs(&self, after: &str, limit: i64) -> Result<Vec<String>>;
}

/// Access tokens for restic and Mercury; each method names its scope.
#[async_trait::async_trait]
pub trait Tokens: Send + Sync {
    /// *Tenant scope.* Stores a new access token.
    async fn create_token(&self, token: AccessTokenRow) -> Result<()>;
    /// *System scope.* One token by id.
    async fn token(&self, id: &str) -> Result<Option<AccessTokenRow>>;
    /// *Tenant scope.* A user's tokens, newest first.
    async fn tokens_for(&self, user_id: &str) -> Result<Vec<AccessTokenRow>>;
    /// *Tenant scope.* Deletes a token of a user; false if there was none.
    async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool>;
    /// *System scope.* Records a use of a token.
    async fn touch_token(&self, id: &str, now: i64) -> Result<()>;
}

/// restic repositories and their files; each method names its scope.
#[async_trait::async_trait]
pub trait Restic: Send + Sync {
    /// *Tenant scope.* A user's repository by name.
    async fn restic_repo(&self, user_id: &str, name: &str) -> Result<Option<ResticRepoRow>>;
    /// *Tenant scope.* Creates a repository; false if it already existed.
    async fn create_restic_repo(
        &self,
        id: &str,
        user_id: &str,
        name: &str,
        now: i64,
    ) -> Result<bool>;
    /// *Tenant scope.* A user's repositories with their totals.
    async fn restic_repos(&self, user_id: &str) -> Result<Vec<ResticRepoRow>>;
    /// *Tenant scope.* Deletes a repository with its files, queues their blobs and credits the
    /// owner.
    async fn delete_restic_repo(&self, repo_id: &str) -> Result<()>;
    /// *Tenant scope.* One file of a repository.
    async fn restic_object(
        &self,
        repo_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<ResticObjectRow>>;
    /// *Tenant scope.* All files of one kind (blob keys left empty).
    async fn restic_list(&self, repo_id: &str, kind: &str) -> Result<Vec<ResticObjectRow>>;
    /// *System scope.* One transaction (one commit to disk) for many concurrent uploads: reserves
    /// blob keys (queues them for deletion at the given time, see [`MetaStore::queue_blob`]) and
    /// records files whose blobs are durable. Each record is atomic on its own: it claims its
    /// blob's reservation and charges the owner, or gets `QuotaExceeded` / `NotFound` (repository
    /// gone) and leaves nothing. `Err` only if the transaction itself failed.
    async fn restic_write_batch(
        &self,
        reserve: Vec<(String, i64)>,
        puts: Vec<NewResticObject>,
    ) -> Result<Vec<Result<PutOutcome>>>;
    /// *Tenant scope.* Deletes a file, queues its blob and credits the owner; the size, or `None`
    /// if absent.
    async fn restic_delete(
        &self,
        repo_id: &str,
        user_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<i64>>;
}

/// Mercury's archive spaces (caller scope: an enc user's own space, or the server's for Mercury's
/// preshared key and client list).
#[async_trait::async_trait]
pub trait Mercury: Send + Sync {
    /// Reserves the first free name of `r.candidates` in a space (atomically: two
    /// reservations never get one name) and reserves the blob key until `r.until`. `None` if
    /// every candidate is taken.
    async fn mercury_reserve(&self, r: MercuryReservation) -> Result<Option<String>>;
    /// Makes a reserved upload visible, claims its blob and charges its owner. `NotFound` if
    /// the reservation is gone; `QuotaExceeded` if the user's quota or the space's limit has
    /// no room (then nothing changes).
    async fn mercury_commit(&self, c: MercuryCommit) -> Result<()>;
    /// Drops a reservation that will not be committed and queues its blob for deletion.
    async fn mercury_abort(&self, space: &str, name: &str) -> Result<()>;
    /// The visible archives of a space, by name.
    async fn mercury_files(&self, space: &str) -> Result<Vec<MercuryFileRow>>;
    /// One visible archive.
    async fn mercury_file(&self, space: &str, name: &str) -> Result<Option<MercuryFileRow>>;
    /// Bytes of the visible archives of a space.
    async fn mercury_usage(&self, space: &str) -> Result<i64>;
}

/// The audit log: one hash chain for the deployment (system scope).
#[async_trait::async_trait]
pub trait Audit: Send + Sync {
    /// Appends an entry to the hash chain and returns it.
    async fn audit_append(&self, entry: NewAudit) -> Result<AuditRow>;
    /// Appends entries to the hash chain in order, in one transaction.
    async fn audit_append_many(&self, entries: Vec<NewAudit>) -> Result<()>;
    /// Redacts a user from the chain: every version-2 entry they acted in, or whose target
    /// names them (`needles`: their name and id), loses its actor, target, client and salt,
    /// keeping the commitments its hash covers, so the chain still verifies. Returns how
    /// many entries were redacted and how many version-1 entries name them (which cannot
    /// be redacted without breaking the chain).
    async fn audit_redact(&self, user_id: &str, needles: &[&str]) -> Result<(u64, u64)>;
    /// Entries in chain order; only those of `actor_id` if given.
    async fn audit_list(&self, actor_id: Option<&str>) -> Result<Vec<AuditRow>>;
}

/// Devices and the account chain that certifies and revokes them (tenant scope: a user's
/// own).
#[async_trait::async_trait]
pub trait Devices: Send + Sync {
    /// *Tenant scope.* The user's account chain, in order.
    async fn account_chain(&self, user_id: &str) -> Result<Vec<AccountLinkRow>>;
    /// *Tenant scope.* Appends a `device-add` link and its device, and binds the session
    /// `session_id` (if any) to the device, in one transaction. `Conflict` if the link is not
    /// the chain's next (`seq` one more than the last, `prev` its hash) or the device id is
    /// taken.
    async fn add_device(
        &self,
        link: AccountLinkRow,
        device: DeviceRow,
        session_id: Option<&str>,
    ) -> Result<()>;
    /// Appends a `device-revoke` link, marks the device revoked and ends its sessions and
    /// tokens, in one transaction (system scope, for the ends of the device's commits in
    /// every vault; every statement names the user). `Conflict` if the link is not the
    /// chain's next, or the ends it names of the device's backups or commits are not where
    /// they are; `NotFound` if the device is not the user's or is revoked already.
    async fn revoke_device(&self, link: AccountLinkRow, now: i64) -> Result<Revoked>;
    /// *Tenant scope.* Renames a device; false if the user has no such device.
    async fn rename_device(&self, user_id: &str, device_id: &str, name: &str) -> Result<bool>;
    /// *Tenant scope.* The user's devices, oldest first.
    async fn devices(&self, user_id: &str) -> Result<Vec<DeviceRow>>;
    /// *Tenant scope.* One device of the user.
    async fn device(&self, user_id: &str, device_id: &str) -> Result<Option<DeviceRow>>;
    /// *Tenant scope.* Records that a device was used (kept to the minute).
    async fn touch_device(&self, user_id: &str, device_id: &str, now: i64) -> Result<()>;
    /// *System scope* (a vault the user has left keeps the commits its devices signed). Where
    /// each of the user's devices' tree commits end: `(device, vault, last seq, its hash)`,
    /// sorted.
    async fn commit_ends(&self, user_id: &str) -> Result<Vec<(String, String, i64, String)>>;
    /// *System scope.* The account chain of `user_id` as a reader of `vault_id` may see it:
    /// only if the user signed one of the vault's commits (`None` otherwise, exactly as for
    /// a user that does not exist). Membership alone shows nothing: a vault can be shared
    /// with anyone, without their consent.
    async fn signer_chain(
        &self,
        vault_id: &str,
        user_id: &str,
    ) -> Result<Option<Vec<AccountLinkRow>>>;
    /// *System scope.* The account chain whose key `account_key` signed one of `vault_id`'s
    /// version-2 commits (`None` otherwise): the living signer's own, with their user id, or
    /// the chain an erasure kept under the key (user id `None`, names empty).
    async fn signer_chain_by_key(
        &self,
        vault_id: &str,
        account_key: &str,
    ) -> Result<Option<(Option<String>, Vec<AccountLinkRow>)>>;
}

/// Device backups: each device's signed chain of backups and tombstones (tenant scope).
#[async_trait::async_trait]
pub trait Backups: Send + Sync {
    /// *Tenant scope.* The device's last entry, if it has one.
    async fn backup_head(&self, user_id: &str, device_id: &str) -> Result<Option<BackupRow>>;
    /// *Tenant scope.* Appends a backup to its device's chain with its content (`data` for
    /// content kept in the row, else `row.blob_key`, whose reservation it claims), and charges
    /// the user, in one transaction. `Conflict` if it is not the chain's next entry (counter
    /// one more than the last, `prev` its hash) or the device was revoked meanwhile;
    /// `QuotaExceeded` if the quota has no room.
    async fn put_backup(
        &self,
        row: BackupRow,
        data: Option<Vec<u8>>,
        quota: Option<i64>,
    ) -> Result<BackupRow>;
    /// *System scope.* Group commit: appends each backup as [`Backups::put_backup`] would,
    /// with its audit entry, all in one transaction (one commit to disk). Each item's outcome
    /// is its own (an item refused changed nothing); `Err` only if the transaction failed.
    async fn put_backups(&self, items: Vec<NewBackup>) -> Result<Vec<Result<BackupRow>>>;
    /// *Tenant scope.* Appends a tombstone and deletes its target's content (credited to the
    /// user, its blob queued), in one transaction. `Conflict` as for [`Backups::put_backup`];
    /// `NotFound` if the target is not a live backup of the user.
    async fn tombstone_backup(&self, row: BackupRow) -> Result<()>;
    /// *Tenant scope.* Live backups (not deleted, not tombstones), newest first.
    async fn list_backups(&self, user_id: &str, filter: BackupFilter) -> Result<Vec<BackupRow>>;
    /// *Tenant scope.* One entry of the user's chains.
    async fn backup(&self, user_id: &str, id: &str) -> Result<Option<BackupRow>>;
    /// *Tenant scope.* The content of a backup kept in its row.
    async fn backup_data(&self, user_id: &str, id: &str) -> Result<Option<Vec<u8>>>;
    /// *Tenant scope.* Every entry of one device's chain (deleted ones included), by counter.
    async fn backup_chain(&self, user_id: &str, device_id: &str) -> Result<Vec<BackupRow>>;
    /// *System scope.* Backups accepted per day and classification (metadata only).
    async fn backup_usage(&self) -> Result<Vec<BackupUsageRow>>;
}

/// Records: values sealed under keys only their callers keep, stored under their owner's
/// pseudonym (tenant scope, run inside [`crate::tenant::pseudonymous`] with that pseudonym:
/// PostgreSQL's policy shows a transaction the rows of its pseudonym only).
#[async_trait::async_trait]
pub trait Records: Send + Sync {
    /// *Tenant scope.* Stores new records, all or none, and charges `user_id` their sealed
    /// bytes: `Some(id)`, with nothing stored, if the owner has a record with one of these
    /// ids; `QuotaExceeded` if they do not fit.
    async fn put_records(
        &self,
        user_id: &str,
        rows: Vec<RecordRow>,
        quota: Option<i64>,
    ) -> Result<Option<String>>;
    /// *Tenant scope.* The owner's records among these `(id, key check)` pairs whose check
    /// matches: an unknown id and a wrong check cost the same lookup and both return nothing.
    async fn records(&self, owner: &str, wanted: &[(String, String)]) -> Result<Vec<RecordRow>>;
    /// *System scope.* Deletes every record of `owner` (the pseudonym of a user being
    /// removed): how many.
    async fn erase_records(&self, owner: &str) -> Result<u64>;
    /// *Tenant scope.* Deletes the owner's records named by id whose key check matches (any
    /// check for `None`: an admin's deletion), crediting their bytes to `user_id`: the ids
    /// deleted.
    async fn delete_records(
        &self,
        user_id: &str,
        owner: &str,
        targets: &[(String, Option<String>)],
    ) -> Result<Vec<String>>;
}

/// Erasure jobs (system scope): a user's every trace taken off the server in
/// [`ERASURE_STEPS`], each step one transaction that also records the next.
#[async_trait::async_trait]
pub trait Erasures: Send + Sync {
    /// Starts erasing `user_id` (job id `id`; `pseudonym`: their records' owner): in one
    /// transaction, their sessions, tokens and SSH keys are deleted and their passphrase
    /// and invitation stop working, so nothing they held acts again. `Conflict` if a job for
    /// them exists, or if they signed vault-tree commits in vaults others own (those commits
    /// name them in signed bytes: erasing them would make those vaults' history
    /// unverifiable); `NotFound` without such a user.
    async fn erasure_begin(
        &self,
        id: &str,
        user_id: &str,
        by_admin: bool,
        pseudonym: Option<&str>,
    ) -> Result<ErasureRow>;
    /// The job `id`.
    async fn erasure(&self, id: &str) -> Result<Option<ErasureRow>>;
    /// Jobs not done, oldest first.
    async fn erasures_pending(&self) -> Result<Vec<ErasureRow>>;
    /// Runs step `step` of job `id` (a name of [`ERASURE_STEPS`]) if it is the job's next,
    /// and moves the job on, in one transaction. The `account` step runs every earlier step
    /// again before it deletes the user (whatever a request in flight wrote after its step
    /// is taken too). The job as it stands after.
    async fn erasure_step(&self, id: &str, step: &str) -> Result<ErasureRow>;
    /// How many blobs job `id` queued are not deleted yet.
    async fn erasure_blobs_left(&self, id: &str) -> Result<u64>;
    /// Makes deleted rows unrecoverable from the database's files where the engine lets it:
    /// SQLite rebuilds the database (`VACUUM`: no free page or gap in a page keeps an old
    /// row, whenever it was deleted) and empties its write-ahead log. Nothing on PostgreSQL,
    /// whose dead rows stay in its files until their space is reused (no dump shows them).
    async fn compact(&self) -> Result<()>;
}
