//! Erasure: `enc account delete` (the user, with the passphrase) and `enc user rm --erase`
//! (an admin). The server runs the job; these start it and follow it to its end.

use std::time::{Duration, Instant};

use enc_proto::{EraseMeRequest, ErasureInfo};

use crate::ops::{Account, derive};
use crate::{Api, ClientError, Result};

impl Account {
    /// Erases this account and everything of it, proven by `passphrase`; forgets the
    /// session here (the server has ended it). The job as it started: follow it with
    /// [`follow_erasure`] on [`Account::api`]'s server, without a session.
    pub fn erase_account(self, passphrase: &str) -> Result<(Api, ErasureInfo)> {
        let keys = derive(&self.api, self.user(), passphrase)?;
        let job: ErasureInfo = self.api.post(
            "/v1/me/erase",
            &EraseMeRequest {
                auth_key: enc_crypto::b64(keys.auth_key.as_ref()),
            },
        )?;
        self.profile.clear_session()?;
        Ok((self.api.anonymous(), job))
    }

    /// Erases user `name` (admin): every trace of them leaves the server, their name the
    /// audit log too. The job as it started.
    pub fn erase_user(&self, name: &str) -> Result<ErasureInfo> {
        self.api
            .delete_json(&format!("/v1/users/{name}?erase=true"))
    }
}

/// Polls erasure `id` until it is done (calling `each` with every state seen), or `timeout`
/// passes: the last state.
pub fn follow_erasure(
    api: &Api,
    id: &str,
    timeout: Duration,
    mut each: impl FnMut(&ErasureInfo),
) -> Result<ErasureInfo> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ClientError::Integrity(format!(
            "the server named an erasure {id:?}, which is not a job id"
        )));
    }
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(100);
    loop {
        let job: ErasureInfo = api.get(&format!("/v1/erasures/{id}"))?;
        each(&job);
        if job.state == "done" || Instant::now() >= deadline {
            return Ok(job);
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}
