//! Who signed a vault's commits: the signer's account chain fetched, verified and pinned,
//! each device-signed commit checked against it, and the point from which this device has
//! seen devices sign a vault (account-key signatures after it are refused).

use super::*;

impl Account {
    /// The first commit of the vault this device has seen signed by a device, if any.
    pub(crate) fn device_signed_since(&self, vault_id: &str) -> Result<Option<u64>> {
        if let Some(s) = self
            .device_signed
            .lock()
            .expect("not poisoned")
            .get(vault_id)
        {
            return Ok(*s);
        }
        let config = self.profile.config()?;
        let since = config
            .pins
            .get(&self.session.server)
            .and_then(|p| p.device_signed.get(vault_id).copied());
        self.device_signed
            .lock()
            .expect("not poisoned")
            .insert(vault_id.to_string(), since);
        Ok(since)
    }

    pub(crate) fn pin_device_signed(&self, vault_id: &str, seq: u64) -> Result<()> {
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        let s = pins
            .device_signed
            .entry(vault_id.to_string())
            .or_insert(seq);
        *s = (*s).min(seq);
        let s = *s;
        self.profile.save_config(&config)?;
        self.device_signed
            .lock()
            .expect("not poisoned")
            .insert(vault_id.to_string(), Some(s));
        Ok(())
    }

    /// The account chain of a commit's signer, verified and pinned, as a reader of
    /// `vault_id` sees it (this account's own for itself); kept for the rest of the process.
    /// A version-1 signer is found by name, a version-2 one by its account key: its chain
    /// is pinned under the key, and it verifies against that key, whoever the server says
    /// holds it (a user, or none, after an erasure).
    pub(crate) fn signer_chain(
        &self,
        vault_id: &str,
        signer: &Signer,
    ) -> Result<Arc<VerifiedChain>> {
        let cache_key = match signer {
            Signer::Name(user) => format!("user:{user}"),
            Signer::Key(key) => format!("key:{key}"),
        };
        if let Some(c) = self
            .signer_chains
            .lock()
            .expect("not poisoned")
            .get(&cache_key)
        {
            return Ok(c.clone());
        }
        let verified = match signer {
            Signer::Name(user) if user == self.user() => self.account_chain()?,
            Signer::Key(key) if *key == self.keys.verifying_key_b64() => self.account_chain()?,
            Signer::Name(user) => {
                let chain: AccountChain = self
                    .api
                    .get(&format!("/v1/vaults/{vault_id}/chains/{user}"))?;
                let key = self.trusted_key(user, &chain.account_key)?;
                pin_chain(
                    &self.profile,
                    &self.session.server,
                    &chain.user_id,
                    &key,
                    &chain,
                )?
            }
            Signer::Key(key) => {
                let raw = enc_crypto::unb64(key).map_err(|_| {
                    ClientError::Integrity("a commit names a malformed account key".into())
                })?;
                let chain: AccountChain = self.api.get(&format!(
                    "/v1/vaults/{vault_id}/signers/{}",
                    hex::encode(raw)
                ))?;
                if chain.account_key != *key {
                    return Err(bad("the server sends another account's chain".into()));
                }
                // Pinned under the key. The user id the server names (signed only by
                // version-1 links) is checked against what this device saw under it, and
                // never pinned from here: a server could name anyone's.
                let by_id = if chain.user_id.starts_with("key:") {
                    ""
                } else {
                    chain.user_id.as_str()
                };
                pin_chain_as(
                    &self.profile,
                    &self.session.server,
                    &[by_id, &cache_key],
                    &[&cache_key],
                    &chain.user_id,
                    key,
                    &chain,
                )?
            }
        };
        let verified = Arc::new(verified);
        self.signer_chains
            .lock()
            .expect("not poisoned")
            .insert(cache_key, verified.clone());
        Ok(verified)
    }

    /// Whether `signer`'s device `device_id` with `key` may have signed commit `seq` (with
    /// `hash`) of vault `vault_id`: certified by the signer's account chain and standing, or
    /// revoked with that commit before the end its revocation signed for the vault, or that
    /// end itself. Otherwise `bad` of the reason (`who` names the signer in it); or, when the
    /// chain could not be fetched at all (the server unreachable or failing, the session
    /// gone, a local file), that error as it is: nothing was found wrong with the chain.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_device_signer(
        &self,
        vault_id: &str,
        signer: &Signer,
        who: &str,
        device_id: &str,
        key: &str,
        seq: u64,
        hash: &str,
        bad: impl Fn(String) -> ClientError,
    ) -> Result<()> {
        let chain = self.signer_chain(vault_id, signer).map_err(|e| match e {
            ClientError::Transport { server, detail } if not_about_the_chain_transport(&detail) => {
                ClientError::Transport {
                    server,
                    detail: format!(
                        "{detail} (while fetching the account chain that signed commit {seq})"
                    ),
                }
            }
            e if not_about_the_chain(&e) => e,
            e => bad(format!(
                "has a signer whose account chain cannot be checked ({e})"
            )),
        })?;
        let Some(d) = chain.devices.get(device_id).filter(|d| d.key == key) else {
            return Err(bad(format!(
                "is signed by a device key {who}'s account chain does not certify"
            )));
        };
        if d.revoked.is_some() {
            // Up to the end its revocation signed for this vault, and that end is the very
            // commit named there (no other history below it).
            match d.commit_ends.get(vault_id) {
                Some((end, _)) if seq < *end => {}
                Some((end, end_hash)) if seq == *end && hash == end_hash => {}
                _ => {
                    return Err(bad(format!(
                        "is signed by {who}'s device {device_id} after its revocation"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Whether a failure to fetch a signer's chain says nothing of the chain: the server not
/// reached, or failing (5xx, `unavailable` while its storage restarts), the session gone, the
/// pinned certificate not presented, or a local file. Anything else (a chain refused, or
/// that does not verify) is the vault's integrity at stake.
fn not_about_the_chain(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { detail, .. } => not_about_the_chain_transport(detail),
        ClientError::SessionExpired
        | ClientError::NotLoggedIn
        | ClientError::FingerprintMismatch { .. }
        | ClientError::Io { .. } => true,
        ClientError::Api { status, .. } => *status >= 500,
        _ => false,
    }
}

/// A transport failure, unless it is an answer that does not decode: that one is the server's
/// doing, not the network's.
fn not_about_the_chain_transport(detail: &str) -> bool {
    !detail.starts_with("unexpected answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain that could not be fetched keeps the failure's own kind (the crash loop saw a
    /// server restarting worded as "integrity error"); a chain refused stays an integrity
    /// matter.
    #[test]
    fn only_failures_about_the_chain_are_integrity() {
        let api = |status: u16| ClientError::Api {
            status,
            code: "x".into(),
            message: "x".into(),
        };
        let transport = ClientError::Transport {
            server: "https://127.0.0.1:1".into(),
            detail: "connection refused".into(),
        };
        assert!(not_about_the_chain(&transport));
        let garbled = ClientError::Transport {
            server: "https://127.0.0.1:1".into(),
            detail: "unexpected answer: expected value at line 1 column 1".into(),
        };
        assert!(!not_about_the_chain(&garbled));
        assert!(not_about_the_chain(&api(503)));
        assert!(not_about_the_chain(&ClientError::SessionExpired));
        assert!(!not_about_the_chain(&api(404)));
        assert!(!not_about_the_chain(&api(403)));
        assert!(!not_about_the_chain(&ClientError::Integrity(
            "forged".into()
        )));
    }
}
