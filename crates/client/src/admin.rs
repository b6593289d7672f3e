//! Users (admin), sessions and audit.

use enc_crypto::audit::{AuditFields, ChainEntry, verify_chain};
use enc_proto::*;

use crate::Result;
use crate::ops::Account;

/// Result of checking audit entries on the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainCheck {
    /// Every entry from the first one chains correctly.
    Intact,
    /// Each entry's hash matches its contents (a subset of the chain was checked; the server
    /// checked the whole chain only if it says so).
    EntriesIntact,
    /// The entry at this sequence number is broken.
    BrokenAt(i64),
}

/// Recomputes entry hashes; with `full`, also that they chain from the genesis without gaps.
/// A version-2 entry's commitments (all three, or it is taken as version 1).
fn sealing_of(e: &AuditEntry) -> Option<enc_crypto::audit::Sealing<'_>> {
    enc_crypto::audit::Sealing::stored(
        e.salt.as_deref(),
        e.actor_commit.as_deref(),
        e.target_commit.as_deref(),
        e.client_commit.as_deref(),
    )
}

pub fn check_chain(entries: &[AuditEntry], full: bool) -> ChainCheck {
    let checked = verify_chain(
        entries.iter().map(|e| ChainEntry {
            fields: AuditFields {
                seq: e.seq,
                ts: e.ts,
                actor: &e.actor,
                action: &e.action,
                target: &e.target,
                outcome: &e.outcome,
                client: &e.client,
                sealing: sealing_of(e),
            },
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        }),
        full,
    );
    match checked {
        Err(seq) => ChainCheck::BrokenAt(seq),
        Ok(()) if full => ChainCheck::Intact,
        Ok(()) => ChainCheck::EntriesIntact,
    }
}

impl Account {
    /// Invites a user (admin).
    pub fn create_user(&self, name: &str, role: &str) -> Result<InvitationResponse> {
        self.api.post(
            "/v1/users",
            &CreateUserRequest {
                name: name.to_string(),
                role: role.to_string(),
            },
        )
    }

    /// Lists users (admin).
    pub fn users(&self) -> Result<Vec<UserInfo>> {
        self.api.get("/v1/users")
    }

    /// Removes a user (admin).
    pub fn remove_user(&self, name: &str) -> Result<()> {
        self.api.delete(&format!("/v1/users/{name}"))
    }

    /// Changes a user's role (admin).
    pub fn set_role(&self, name: &str, role: &str) -> Result<()> {
        self.api.put_empty(
            &format!("/v1/users/{name}/role"),
            &SetRoleRequest {
                role: role.to_string(),
            },
        )
    }

    /// Sets (`Some`) or clears (`None`: role default) a user's quota (admin).
    pub fn set_quota(&self, name: &str, quota_bytes: Option<u64>) -> Result<()> {
        self.api.put_empty(
            &format!("/v1/users/{name}/quota"),
            &SetQuotaRequest { quota_bytes },
        )
    }

    /// Creates an access token; the response holds the secret, shown once.
    pub fn create_token(&self, req: &CreateTokenRequest) -> Result<CreateTokenResponse> {
        self.api.post("/v1/tokens", req)
    }

    /// The user's access tokens.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.api.get("/v1/tokens")
    }

    /// Revokes an access token.
    pub fn revoke_token(&self, id: &str) -> Result<()> {
        self.api.delete(&format!("/v1/tokens/{id}"))
    }

    /// The user's restic repositories.
    pub fn restic_repos(&self) -> Result<Vec<ResticRepoInfo>> {
        self.api.get("/v1/restic/repos")
    }

    /// Deletes a restic repository with everything in it.
    pub fn remove_restic_repo(&self, name: &str) -> Result<()> {
        self.api.delete(&format!("/v1/restic/repos/{name}"))
    }

    /// The user's sessions.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>> {
        self.api.get("/v1/sessions")
    }

    /// Revokes one of the user's sessions.
    pub fn revoke_session(&self, id: &str) -> Result<()> {
        self.api.delete(&format!("/v1/sessions/{id}"))
    }

    /// Audit entries: own, or all (admin).
    pub fn audit(&self, all: bool) -> Result<AuditResponse> {
        self.api.get(if all {
            "/v1/audit?all=true"
        } else {
            "/v1/audit"
        })
    }

    /// Registered SSH keys.
    pub fn ssh_keys(&self) -> Result<Vec<SshKeyInfo>> {
        self.api.get("/v1/ssh-keys")
    }
}
