//! The two caches of restic's hot path, each a layer in front of what it saves a trip to:
//! [`Logins`] in front of token verification, [`Objects`] in front of the store's file
//! lookups. Both reuse an entry for [`CACHE_SECS`]; a revocation on this replica empties
//! [`Logins`] at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use enc_store::{
    AccessTokenRow, Restic, ResticFile, ResticObjectRow, ResticRepoRow, TokenKind, UserRow,
};

use crate::rules::credentials::{CACHE_SECS, Refusal, verify};
use crate::state::AppState;

/// A verified `user:token` with the repository it reaches.
#[derive(Clone)]
pub struct Login {
    /// When it was verified against the database.
    at: Instant,
    /// The user.
    pub user: UserRow,
    /// The token.
    pub token: AccessTokenRow,
    /// The repository the token reaches, if it exists.
    pub repo: Option<ResticRepoRow>,
}

/// Recently verified restic credentials, by the hash of `user:token`.
#[derive(Default)]
pub struct Logins(Mutex<HashMap<String, Login>>);

impl Logins {
    /// Most entries kept; the map is emptied when it would grow past this.
    const MAX: usize = 10_000;

    /// Verifies `user:token` for restic, from the cache when it was verified (and its
    /// repository found) less than [`CACHE_SECS`] ago.
    pub async fn verify(
        &self,
        state: &AppState,
        user_name: &str,
        token: &str,
        client: &str,
    ) -> Result<Login, Refusal> {
        let key = crate::rules::token_hash(&format!("{user_name}:{token}"));
        let cached = {
            let map = self.0.lock().expect("logins");
            map.get(&key)
                .filter(|l| l.at.elapsed().as_secs() < CACHE_SECS)
                .cloned()
        };
        if let Some(login) = cached {
            return Ok(login);
        }
        let (user, token) =
            verify(state, Some(user_name), token, TokenKind::Restic, client).await?;
        let repo = enc_store::tenant::scope(
            user.id.clone(),
            state.meta.restic_repo(&user.id, &token.scope),
        )
        .await
        .ok()
        .flatten();
        let login = Login {
            at: Instant::now(),
            user,
            token,
            repo,
        };
        if login.repo.is_some() {
            let mut map = self.0.lock().expect("logins");
            if map.len() >= Self::MAX {
                map.clear();
            }
            map.insert(key, login.clone());
        }
        Ok(login)
    }

    /// Forgets one token's logins, or all of them.
    pub fn forget(&self, token_id: Option<&str>) {
        let mut map = self.0.lock().expect("logins");
        match token_id {
            Some(id) => map.retain(|_, l| l.token.id != id),
            None => map.clear(),
        }
    }
}

/// The store's restic file lookups, with where recently read files are remembered so that a
/// restore, a chain of small range reads of a few pack files, does not ask the database each
/// time.
///
/// Only files named by the SHA-256 of their content are kept (everything but `config`), and
/// only those whose bytes are in a blob: the server checks that hash on upload, so a name
/// always means the same bytes, and an entry can only be stale by still pointing at a file
/// that was deleted. A delete through this server forgets the entry at once; a delete through
/// another replica is seen within the reuse time, or at once if the blob is already gone (the
/// reader then calls [`Objects::refresh`]). Listings, writes and quota accounting always ask
/// the database.
pub struct Objects {
    store: Arc<dyn Restic>,
    map: Mutex<HashMap<String, (Instant, ResticObjectRow)>>,
}

impl Objects {
    /// Most entries kept; the map is emptied when it would grow past this.
    const MAX: usize = 4096;

    /// The layer in front of the store's restic files.
    pub fn new(store: Arc<dyn Restic>) -> Self {
        Self {
            store,
            map: Mutex::default(),
        }
    }

    fn key(repo_id: &str, kind: &str, name: &str) -> String {
        format!("{repo_id}/{kind}/{name}")
    }

    /// A file's row, and whether it came from the cache.
    pub async fn get(
        &self,
        repo_id: &str,
        kind: &str,
        name: &str,
    ) -> enc_store::Result<Option<(ResticObjectRow, bool)>> {
        let fresh = {
            let map = self.map.lock().expect("objects");
            map.get(&Self::key(repo_id, kind, name))
                .filter(|(at, _)| at.elapsed().as_secs() < CACHE_SECS)
                .map(|(_, row)| row.clone())
        };
        if let Some(row) = fresh {
            return Ok(Some((row, true)));
        }
        Ok(self.refresh(repo_id, kind, name).await?.map(|r| (r, false)))
    }

    /// A file's row from the database (the cached one pointed at a blob that is gone).
    pub async fn refresh(
        &self,
        repo_id: &str,
        kind: &str,
        name: &str,
    ) -> enc_store::Result<Option<ResticObjectRow>> {
        self.forget(repo_id, kind, name);
        let row = self.store.restic_object(repo_id, kind, name).await?;
        if let Some(row) = row
            .as_ref()
            .filter(|r| kind != ResticFile::Config.as_str() && r.data.is_none())
        {
            let mut map = self.map.lock().expect("objects");
            if map.len() >= Self::MAX {
                map.clear();
            }
            map.insert(
                Self::key(repo_id, kind, name),
                (Instant::now(), row.clone()),
            );
        }
        Ok(row)
    }

    /// Forgets one file.
    pub fn forget(&self, repo_id: &str, kind: &str, name: &str) {
        self.map
            .lock()
            .expect("objects")
            .remove(&Self::key(repo_id, kind, name));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.map.lock().expect("objects").clear();
    }
}
