//! The metadata store over SQL: one implementation of [`MetaStore`] for both engines, each
//! method a call into the concern's file of this module.

use super::Db;
use crate::*;

/// The SQL metadata store, on SQLite ([`crate::sqlite::open`]) or PostgreSQL
/// ([`crate::postgres::connect`]).
pub struct SqlMeta {
    db: Db,
}

impl SqlMeta {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl MetaStore for SqlMeta {
    fn engine_counts(&self) -> EngineCounts {
        self.db.counts()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    async fn server_secret(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        self.db.server_secret(candidate).await
    }

    async fn invite_user(&self, inv: NewInvitation) -> Result<()> {
        self.db.invite_user(inv).await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        self.db.user_by_name(name).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        self.db.user_by_id(id).await
    }

    async fn register_user(&self, reg: Registration) -> Result<UserRow> {
        self.db.register_user(reg).await
    }

    async fn list_users(&self) -> Result<Vec<UserRow>> {
        self.db.list_users().await
    }

    async fn set_quota(&self, name: &str, quota: Option<i64>) -> Result<()> {
        self.db.set_quota(name, quota).await
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        self.db.delete_user(name).await
    }

    async fn set_role(&self, name: &str, role: &str) -> Result<()> {
        self.db.set_role(name, role).await
    }

    async fn create_session(&self, s: SessionRow) -> Result<()> {
        self.db.create_session(s).await
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<SessionLookup> {
        self.db.touch_session(token_hash, now, idle_secs).await
    }

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        self.db.list_sessions(user_id).await
    }

    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<bool> {
        self.db.delete_session(user_id, session_id).await
    }

    async fn change_passphrase(
        &self,
        user_id: &str,
        auth_hash: &str,
        wrapped_keys: &str,
        end_others_but: Option<&str>,
    ) -> Result<u64> {
        self.db
            .change_passphrase(user_id, auth_hash, wrapped_keys, end_others_but)
            .await
    }

    async fn add_ssh_key(&self, k: SshKeyRow) -> Result<()> {
        self.db.add_ssh_key(k).await
    }

    async fn ssh_keys(&self, user_id: &str) -> Result<Vec<SshKeyRow>> {
        self.db.ssh_keys(user_id).await
    }

    async fn put_challenge(
        &self,
        id: &str,
        user: &str,
        challenge: &[u8],
        expires: i64,
    ) -> Result<()> {
        self.db.put_challenge(id, user, challenge, expires).await
    }

    async fn take_challenge(&self, id: &str, user: &str, now: i64) -> Result<Option<Vec<u8>>> {
        self.db.take_challenge(id, user, now).await
    }

    async fn throttle_get(&self, key: &str) -> Result<Option<Throttle>> {
        self.db.throttle_get(key).await
    }

    async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Throttle> {
        self.db.throttle_fail(key, now, backoff).await
    }

    async fn throttle_undo(&self, key: &str) -> Result<()> {
        self.db.throttle_undo(key).await
    }

    async fn throttle_attempt(
        &self,
        keys: &[String],
        now: i64,
        free: i64,
        backoff: fn(i64) -> i64,
    ) -> Result<Option<i64>> {
        self.db.throttle_attempt(keys, now, free, backoff).await
    }

    async fn throttle_clear(&self, key: &str) -> Result<()> {
        self.db.throttle_clear(key).await
    }

    async fn throttle_mark(&self, key: &str, now: i64, until: i64) -> Result<()> {
        self.db.throttle_mark(key, now, until).await
    }

    async fn rate_take(&self, key: &str, now: i64, window: i64, limit: i64) -> Result<bool> {
        self.db.rate_take(key, now, window, limit).await
    }

    async fn create_vault(&self, v: NewVault) -> Result<VaultAccess> {
        self.db.create_vault(v).await
    }

    async fn vaults_for(&self, user_id: &str) -> Result<Vec<VaultAccess>> {
        self.db.vaults_for(user_id).await
    }

    async fn vault_access(&self, user_id: &str, vault_id: &str) -> Result<Option<VaultAccess>> {
        self.db.vault_access(user_id, vault_id).await
    }

    async fn delete_vault(&self, vault_id: &str) -> Result<()> {
        self.db.delete_vault(vault_id).await
    }

    async fn members(&self, vault_id: &str) -> Result<Vec<Member>> {
        self.db.members(vault_id).await
    }

    async fn add_member(
        &self,
        vault_id: &str,
        user_id: &str,
        wrapped_keys: &str,
        signature: &str,
        access: &str,
    ) -> Result<()> {
        self.db
            .add_member(vault_id, user_id, wrapped_keys, signature, access)
            .await
    }

    async fn rotate_vault(
        &self,
        vault_id: &str,
        remove_user_id: &str,
        generation: u32,
        rewrapped: Vec<(String, String, String)>,
    ) -> Result<()> {
        self.db
            .rotate_vault(vault_id, remove_user_id, generation, rewrapped)
            .await
    }

    async fn create_upload(&self, u: UploadRow, max_pending: i64) -> Result<()> {
        self.db.create_upload(u, max_pending).await
    }

    async fn charge_upload(&self, id: &str, n: i64, quota: Option<i64>) -> Result<()> {
        self.db.charge_upload(id, n, quota).await
    }

    async fn complete_upload(&self, id: &str, size: i64, hash: &str) -> Result<()> {
        self.db.complete_upload(id, size, hash).await
    }

    async fn release_upload(&self, id: &str, now: i64) -> Result<()> {
        self.db.release_upload(id, now).await
    }

    async fn commit_version(&self, c: NewVersion, keep: u32) -> Result<VersionRow> {
        self.db.commit_version(c, keep).await
    }

    async fn list_objects(&self, vault_id: &str) -> Result<Vec<(String, VersionRow)>> {
        self.db.list_objects(vault_id).await
    }

    async fn object_versions(&self, vault_id: &str, enc_name: &str) -> Result<Vec<VersionRow>> {
        self.db.object_versions(vault_id, enc_name).await
    }

    async fn version(&self, vault_id: &str, version_id: &str) -> Result<Option<VersionRow>> {
        self.db.version(vault_id, version_id).await
    }

    async fn delete_object(&self, vault_id: &str, enc_name: &str) -> Result<bool> {
        self.db.delete_object(vault_id, enc_name).await
    }

    async fn prune(&self, now: i64, idle_secs: i64) -> Result<()> {
        self.db.prune(now, idle_secs).await
    }

    async fn expire_uploads(&self, completed_before: i64, before: i64) -> Result<u64> {
        self.db.expire_uploads(completed_before, before).await
    }

    async fn gc_pending(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        self.db.gc_pending(now, limit).await
    }

    async fn gc_retry_later(&self, keys: &[String], now: i64) -> Result<()> {
        self.db.gc_retry_later(keys, now).await
    }

    async fn queue_blob(&self, key: &str, at: i64) -> Result<()> {
        self.db.queue_blob(key, at).await
    }

    async fn gc_done(&self, keys: &[String]) -> Result<()> {
        self.db.gc_done(keys).await
    }

    async fn create_token(&self, t: AccessTokenRow) -> Result<()> {
        self.db.create_token(t).await
    }

    async fn token(&self, id: &str) -> Result<Option<AccessTokenRow>> {
        self.db.token(id).await
    }

    async fn tokens_for(&self, user_id: &str) -> Result<Vec<AccessTokenRow>> {
        self.db.tokens_for(user_id).await
    }

    async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool> {
        self.db.delete_token(user_id, id).await
    }

    async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
        self.db.touch_token(id, now).await
    }

    async fn restic_repo(&self, user_id: &str, name: &str) -> Result<Option<ResticRepoRow>> {
        self.db.restic_repo(user_id, name).await
    }

    async fn create_restic_repo(
        &self,
        id: &str,
        user_id: &str,
        name: &str,
        now: i64,
    ) -> Result<bool> {
        self.db.create_restic_repo(id, user_id, name, now).await
    }

    async fn restic_repos(&self, user_id: &str) -> Result<Vec<ResticRepoRow>> {
        self.db.restic_repos(user_id).await
    }

    async fn delete_restic_repo(&self, repo_id: &str) -> Result<()> {
        self.db.delete_restic_repo(repo_id).await
    }

    async fn restic_object(
        &self,
        repo_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<ResticObjectRow>> {
        self.db.restic_object(repo_id, kind, name).await
    }

    async fn restic_list(&self, repo_id: &str, kind: &str) -> Result<Vec<ResticObjectRow>> {
        self.db.restic_list(repo_id, kind).await
    }

    async fn restic_write_batch(
        &self,
        reserve: Vec<(String, i64)>,
        puts: Vec<NewResticObject>,
    ) -> Result<Vec<Result<PutOutcome>>> {
        self.db.restic_write_batch(reserve, puts).await
    }

    async fn restic_delete(
        &self,
        repo_id: &str,
        user_id: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<i64>> {
        self.db.restic_delete(repo_id, user_id, kind, name).await
    }

    async fn mercury_reserve(&self, r: MercuryReservation) -> Result<Option<String>> {
        self.db.mercury_reserve(r).await
    }

    async fn mercury_commit(&self, c: MercuryCommit) -> Result<()> {
        self.db.mercury_commit(c).await
    }

    async fn mercury_abort(&self, space: &str, name: &str) -> Result<()> {
        self.db.mercury_abort(space, name).await
    }

    async fn mercury_files(&self, space: &str) -> Result<Vec<MercuryFileRow>> {
        self.db.mercury_files(space).await
    }

    async fn mercury_file(&self, space: &str, name: &str) -> Result<Option<MercuryFileRow>> {
        self.db.mercury_file(space, name).await
    }

    async fn mercury_usage(&self, space: &str) -> Result<i64> {
        self.db.mercury_usage(space).await
    }

    async fn audit_append(&self, e: NewAudit) -> Result<AuditRow> {
        self.db.audit_append(e).await
    }

    async fn audit_list(&self, actor_id: Option<&str>) -> Result<Vec<AuditRow>> {
        self.db.audit_list(actor_id).await
    }
}
