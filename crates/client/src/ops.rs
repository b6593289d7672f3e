//! Account-level operations: register, login (passphrase or SSH key), logout, vaults,
//! sharing, users, sessions, audit.

use std::path::Path;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use enc_crypto::{HeldKeys, KdfParams, UserKeys, VaultKeys};
use enc_proto::*;
use zeroize::Zeroizing;

use crate::api::Api;
use crate::profile::{Profile, SavedSession};
use crate::{ClientError, Result};

/// How to log in.
pub enum LoginMethod<'a> {
    /// With the account passphrase.
    Passphrase(Zeroizing<String>),
    /// With an Ed25519 SSH private key (OpenSSH format, unencrypted); `passphrase` is asked
    /// for only when the key carries no wrapped copy of the account keys.
    Ssh {
        /// Private key file.
        key_path: &'a Path,
        /// Supplies the account passphrase if needed.
        passphrase: &'a dyn Fn() -> Result<Zeroizing<String>>,
    },
}

fn kdf_params(k: &Kdf) -> KdfParams {
    KdfParams {
        m_kib: k.m_kib,
        t: k.t,
        p: k.p,
    }
}

/// The user's salt and KDF parameters (fakes for unknown users).
fn prelogin(api: &Api, user: &str) -> Result<(Vec<u8>, KdfParams)> {
    let pre: PreloginResponse = api.post(
        "/v1/auth/prelogin",
        &PreloginRequest {
            user: user.to_string(),
        },
    )?;
    Ok((enc_crypto::unb64(&pre.salt)?, kdf_params(&pre.kdf)))
}

pub(crate) fn derive(api: &Api, user: &str, passphrase: &str) -> Result<enc_crypto::AccountKeys> {
    let (salt, kdf) = prelogin(api, user)?;
    Ok(enc_crypto::kdf::derive(passphrase.as_bytes(), &salt, kdf)?)
}

fn session_of(
    api: &Api,
    profile: &Profile,
    resp: LoginResponse,
    keys: &UserKeys,
) -> Result<SavedSession> {
    if resp.x25519_recipient != keys.recipient() || resp.ed25519_public != keys.verifying_key_b64()
    {
        return Err(ClientError::Integrity(
            "the server's copy of your public keys does not match your key bundle".into(),
        ));
    }
    // Every login is a device: a key of its own, certified by the account key just
    // unwrapped, signs this device's backups.
    let authed = api.clone().with_token(&resp.token);
    let certified = crate::devices::certify_this_device(&authed, profile, keys)?;
    Ok(SavedSession {
        server: api.base().to_string(),
        user: resp.user,
        role: resp.role,
        token: resp.token,
        session_id: resp.session_id,
        // The device keeps the X25519 identity and the account's public key: not the
        // account's signing key, which left memory with `keys`.
        keys: keys.held().to_secret_json().to_string(),
        device_id: Some(certified.device_id),
        device_key: Some(certified.device_key),
        user_id: Some(certified.user_id),
        server_id: Some(certified.server_id),
    })
}

/// Redeems an invitation: makes the account's keys, uploads them wrapped, returns a session.
pub fn register(
    api: &Api,
    profile: &Profile,
    user: &str,
    invitation: &str,
    passphrase: &str,
) -> Result<SavedSession> {
    // A new account chooses its own parameters; only the salt comes from the server.
    let (salt, _) = prelogin(api, user)?;
    let kdf = KdfParams::default();
    let derived = enc_crypto::kdf::derive(passphrase.as_bytes(), &salt, kdf)?;
    let keys = UserKeys::generate();
    let vault = VaultKeys::generate();
    let vault_id = uuid::Uuid::new_v4().to_string();
    let default_vault_keys = vault.wrap_to(&keys.recipient())?;
    let req = RegisterRequest {
        user: user.to_string(),
        invitation: invitation.trim().to_string(),
        kdf: Kdf {
            m_kib: kdf.m_kib,
            t: kdf.t,
            p: kdf.p,
        },
        auth_key: enc_crypto::b64(derived.auth_key.as_ref()),
        x25519_recipient: keys.recipient(),
        ed25519_public: keys.verifying_key_b64(),
        wrapped_keys: keys.wrap(&derived.kek),
        recipient_signature: keys.sign_b64(&enc_crypto::recipient_message(user, &keys.recipient())),
        default_vault_signature: keys.sign_b64(&enc_crypto::vault_keys_message(
            &vault_id,
            user,
            1,
            "write",
            &default_vault_keys,
        )),
        default_vault_id: vault_id,
        default_vault_keys,
        device: host_name(),
    };
    let resp: LoginResponse = api.post("/v1/auth/register", &req)?;
    session_of(api, profile, resp, &keys)
}

/// This machine's host name, which names the session's device on the server.
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn read_ssh_key(path: &Path) -> Result<ssh_key::PrivateKey> {
    let key = ssh_key::PrivateKey::read_openssh_file(path).map_err(|e| {
        ClientError::Usage(format!(
            "cannot read SSH private key {}: {e}",
            path.display()
        ))
    })?;
    if key.is_encrypted() {
        return Err(ClientError::Usage(format!(
            "{} is passphrase-protected; enc reads only unencrypted Ed25519 keys for now",
            path.display()
        )));
    }
    if key.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(ClientError::Usage(format!(
            "{} is not an Ed25519 key; enc supports ssh-ed25519 keys",
            path.display()
        )));
    }
    Ok(key)
}

fn ssh_seed(key: &ssh_key::PrivateKey) -> Result<Zeroizing<[u8; 32]>> {
    let pair = key
        .key_data()
        .ed25519()
        .ok_or_else(|| ClientError::Usage("not an Ed25519 key".into()))?;
    Ok(Zeroizing::new(pair.private.to_bytes()))
}

/// Logs in and returns the session to store.
pub fn login(
    api: &Api,
    profile: &Profile,
    user: &str,
    method: LoginMethod<'_>,
) -> Result<SavedSession> {
    match method {
        LoginMethod::Passphrase(passphrase) => {
            let derived = derive(api, user, &passphrase)?;
            let resp: LoginResponse = api.post(
                "/v1/auth/login",
                &LoginRequest {
                    user: user.to_string(),
                    auth_key: enc_crypto::b64(derived.auth_key.as_ref()),
                    device: host_name(),
                },
            )?;
            let keys = UserKeys::unwrap(&derived.kek, &resp.wrapped_keys).map_err(|_| {
                ClientError::Integrity("cannot unwrap your key bundle with this passphrase".into())
            })?;
            session_of(api, profile, resp, &keys)
        }
        LoginMethod::Ssh {
            key_path,
            passphrase,
        } => {
            let key = read_ssh_key(key_path)?;
            let ch: SshChallengeResponse = api.post(
                "/v1/auth/ssh/challenge",
                &SshChallengeRequest {
                    user: user.to_string(),
                },
            )?;
            let challenge = enc_crypto::unb64(&ch.challenge)?;
            let sig = key
                .sign(
                    "enc-login",
                    ssh_key::HashAlg::Sha512,
                    &enc_crypto::ssh_login_message(
                        api.pinned_fingerprint(),
                        user,
                        &ch.id,
                        &challenge,
                    ),
                )
                .map_err(|e| ClientError::Usage(format!("signing with the SSH key failed: {e}")))?;
            let pem = sig
                .to_pem(ssh_key::LineEnding::LF)
                .map_err(|e| ClientError::Usage(e.to_string()))?;
            let resp: LoginResponse = api.post(
                "/v1/auth/ssh/login",
                &SshLoginRequest {
                    user: user.to_string(),
                    id: ch.id,
                    signature: pem,
                    device: host_name(),
                },
            )?;
            let keys = match &resp.ssh_wrapped_keys {
                Some(w) => {
                    let kek = enc_crypto::kdf::ssh_kek(&*ssh_seed(&key)?, user);
                    UserKeys::unwrap(&kek, w)?
                }
                None => {
                    let derived = derive(api, user, &passphrase()?)?;
                    UserKeys::unwrap(&derived.kek, &resp.wrapped_keys).map_err(|_| {
                        ClientError::Integrity(
                            "cannot unwrap your key bundle with this passphrase".into(),
                        )
                    })?
                }
            };
            session_of(api, profile, resp, &keys)
        }
    }
}

/// A vault with its unwrapped keys.
pub struct VaultCtx {
    /// What the server says about it.
    pub info: VaultInfo,
    /// Its keys.
    pub keys: VaultKeys,
}

impl VaultCtx {
    /// `NAME` for own vaults, `OWNER/NAME` for shared ones.
    pub fn display_name(&self, me: &str) -> String {
        if self.info.owner == me {
            self.info.name.clone()
        } else {
            format!("{}/{}", self.info.owner, self.info.name)
        }
    }
}

/// Supplies the account passphrase when an act of the account needs its signing key.
pub type Unlock = Box<dyn Fn() -> Result<Zeroizing<String>> + Send + Sync>;

/// A logged-in account on this device.
pub struct Account {
    /// The API, authenticated.
    pub api: Api,
    /// The stored session.
    pub session: SavedSession,
    /// What the device keeps of the account's keys (no signing key).
    pub keys: HeldKeys,
    pub(crate) profile: Profile,
    unlock: Option<Unlock>,
    unlocked: OnceLock<UserKeys>,
    /// Account chains of the signers met while verifying, by user name.
    pub(crate) signer_chains: Mutex<HashMap<String, Arc<crate::devices::VerifiedChain>>>,
    /// Vault id → the first device-signed commit known (pinned in the profile).
    pub(crate) device_signed: Mutex<HashMap<String, Option<u64>>>,
}

impl Account {
    /// Opens the stored session of a profile.
    pub fn open(profile: Profile) -> Result<Self> {
        let session = profile.session()?.ok_or(ClientError::NotLoggedIn)?;
        let config = profile.config()?;
        let fp = config.fingerprints.get(&session.server).cloned();
        let api = Api::new(&session.server, fp.as_deref())?.with_token(&session.token);
        let (keys, had_secret) = HeldKeys::from_secret_json(&session.keys)?;
        let mut session = session;
        if had_secret {
            // A session of a build that kept the account's signing key on the device: it
            // is dropped from the file now.
            session.keys = keys.to_secret_json().to_string();
            profile.save_session(&session)?;
        }
        Ok(Self {
            api,
            session,
            keys,
            profile,
            unlock: None,
            unlocked: OnceLock::new(),
            signer_chains: Mutex::new(HashMap::new()),
            device_signed: Mutex::new(HashMap::new()),
        })
    }

    /// Where the passphrase comes from when an act of the account (certifying or revoking
    /// a device, sharing, signing a vault's keys) needs the account's signing key.
    pub fn with_unlock(mut self, unlock: Unlock) -> Self {
        self.unlock = Some(unlock);
        self
    }

    /// The account's whole key bundle, unwrapped in memory from the server's copy with
    /// `passphrase`, and checked against the keys this device holds.
    fn unlock_with(&self, passphrase: &str) -> Result<UserKeys> {
        let wrong =
            || ClientError::Usage("wrong passphrase: it does not unwrap your account keys".into());
        let derived = derive(&self.api, self.user(), passphrase)?;
        let wrapped: AccountKeysResponse = match self.api.post(
            "/v1/account/keys",
            &AccountKeysRequest {
                auth_key: enc_crypto::b64(derived.auth_key.as_ref()),
            },
        ) {
            Err(ClientError::Api { code, .. }) if code == "bad_credentials" => {
                return Err(wrong());
            }
            other => other?,
        };
        let keys = UserKeys::unwrap(&derived.kek, &wrapped.wrapped_keys).map_err(|_| wrong())?;
        if keys.verifying_key_b64() != self.keys.verifying_key_b64()
            || keys.recipient() != self.keys.recipient()
        {
            return Err(ClientError::Integrity(
                "the server's wrapped account keys are not the ones this device knows".into(),
            ));
        }
        Ok(keys)
    }

    /// The account's signing key, for an act of the account: asked for once per process
    /// (the passphrase), never written to disk.
    pub(crate) fn account_keys(&self) -> Result<&UserKeys> {
        if let Some(keys) = self.unlocked.get() {
            return Ok(keys);
        }
        let unlock = self.unlock.as_ref().ok_or_else(|| {
            ClientError::Usage(
                "this needs the account passphrase (devices keep no account signing key)".into(),
            )
        })?;
        let keys = self.unlock_with(&unlock()?)?;
        Ok(self.unlocked.get_or_init(|| keys))
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.session.user
    }

    /// Whoami, checked with the server (also refreshes the session).
    pub fn me(&self) -> Result<MeResponse> {
        self.api.get("/v1/me")
    }

    /// Ends the session on the server and forgets it here.
    pub fn logout(self) -> Result<()> {
        let result = self
            .api
            .post_empty("/v1/auth/logout", &serde_json::json!({}));
        self.profile.clear_session()?;
        match result {
            Ok(()) | Err(ClientError::SessionExpired) => Ok(()),
            Err(e) if e.is_status(401) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Changes the account's passphrase: proves the current one, re-wraps the account keys
    /// under the new one (salt and KDF parameters stay). Returns how many other sessions
    /// ended (with `end_other_sessions`).
    pub fn change_passphrase(
        &self,
        current: &str,
        new: &str,
        end_other_sessions: bool,
    ) -> Result<u64> {
        let old = derive(&self.api, self.user(), current)?;
        let fresh = derive(&self.api, self.user(), new)?;
        let req = enc_proto::ChangePassphraseRequest {
            auth_key: enc_crypto::b64(old.auth_key.as_ref()),
            new_auth_key: enc_crypto::b64(fresh.auth_key.as_ref()),
            new_wrapped_keys: self.unlock_with(current)?.wrap(&fresh.kek),
            end_other_sessions,
        };
        let resp: enc_proto::ChangePassphraseResponse = self.api.put("/v1/me/passphrase", &req)?;
        Ok(resp.ended_sessions)
    }

    /// Vaults the user can use.
    pub fn vaults(&self) -> Result<Vec<VaultInfo>> {
        self.api.get("/v1/vaults")
    }

    /// Resolves `NAME` (own), `OWNER/NAME` (shared) or `None` (`default`) and unwraps its keys.
    pub fn vault(&self, spec: Option<&str>) -> Result<VaultCtx> {
        let spec = spec.unwrap_or("default");
        let (owner, name) = match spec.split_once('/') {
            Some((o, n)) => (o, n),
            None => (self.user(), spec),
        };
        let info = self
            .vaults()?
            .into_iter()
            .find(|v| v.owner == owner && v.name == name)
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "no vault {spec:?}; `enc vault ls` lists the vaults you can use"
                ))
            })?;
        self.check_vault_keys(&info)?;
        let keys = VaultKeys::unwrap(&self.keys.x25519, &info.wrapped_keys)?;
        if keys.current_generation() != info.generation {
            return Err(ClientError::Integrity(format!(
                "the keys of vault {spec} do not match their signed generation"
            )));
        }
        Ok(VaultCtx { info, keys })
    }

    /// The wrapped keys must carry the owner's signature (checked against our own key, or the
    /// owner's pinned key), and their generation must not go back.
    fn check_vault_keys(&self, info: &VaultInfo) -> Result<()> {
        let owner_key = self.trusted_key(&info.keys_signer, &info.keys_signer_key)?;
        if info.keys_signer != info.owner {
            return Err(ClientError::Integrity(
                "vault keys not signed by the vault's owner".into(),
            ));
        }
        let msg = enc_crypto::vault_keys_message(
            &info.signed_id,
            self.user(),
            info.generation,
            &info.access,
            &info.wrapped_keys,
        );
        enc_crypto::verify_b64(&owner_key, &msg, &info.keys_signature).map_err(|_| {
            ClientError::Integrity(format!(
                "the keys of vault {}/{} are not signed by its owner: the server may be substituting keys",
                info.owner, info.name
            ))
        })?;
        self.pin_generation(&info.id, info.generation)
    }

    /// `user`'s Ed25519 key: our own from the key bundle; for others the key pinned on first
    /// sight, and an error if the server now presents a different one.
    /// The name to show for the account key `key` that signed a version-2 commit, which
    /// the server says is `claimed`'s (its word: the header names no one). The name this
    /// device has pinned to the key wins, and a server naming another user for it is
    /// refused; a name the device has not seen is pinned to the key (trust on first use, as
    /// keys always were). The server may say the author was erased or removed (`(erased
    /// …)`, `(removed)`: it cannot be checked); a key this device knows keeps its name
    /// beside that. `Err` with the reason.
    pub(crate) fn author_of_key(
        &self,
        key: &str,
        claimed: &str,
    ) -> std::result::Result<String, String> {
        if key == self.keys.verifying_key_b64() {
            return Ok(self.user().to_string());
        }
        let config = self.profile.config().map_err(|e| e.to_string())?;
        let known = config
            .pins
            .get(&self.session.server)
            .and_then(|p| p.keys.iter().find(|(_, k)| *k == key))
            .map(|(name, _)| name.clone());
        let valid_name = enc_proto::is_user_name(claimed);
        let erased = claimed.len() == 21
            && claimed.starts_with("(erased ")
            && claimed.ends_with(')')
            && claimed[8..20].bytes().all(|b| b.is_ascii_hexdigit());
        match known {
            Some(name) if valid_name && name != claimed => Err(format!(
                "is signed by the account key this device knows as {name}'s, which the server says is {claimed}'s"
            )),
            Some(name) if erased || claimed == "(removed)" => Ok(format!("{name} {claimed}")),
            Some(name) => Ok(name),
            None if valid_name => match self.trusted_key(claimed, key) {
                Ok(k) if k == key => Ok(claimed.to_string()),
                Ok(_) => Err(format!(
                    "is signed by an account key the server says is {claimed}'s, whose key is pinned otherwise"
                )),
                Err(e) => Err(e.to_string()),
            },
            None if erased || claimed == "(removed)" => Ok(claimed.to_string()),
            None => Ok("(unknown)".to_string()),
        }
    }

    pub fn trusted_key(&self, user: &str, presented: &str) -> Result<String> {
        if user == self.user() {
            return Ok(self.keys.verifying_key_b64());
        }
        enc_crypto::verifying_key(presented).map_err(|_| {
            ClientError::Integrity(format!("the server's key for {user} is malformed"))
        })?;
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        match pins.keys.get(user) {
            Some(pinned) if pinned == presented => Ok(pinned.clone()),
            Some(pinned) => Err(ClientError::Integrity(format!(
                "the server presents a different key for {user} than the one pinned on this device ({}); if {user} really re-registered, remove the pin from {}",
                key_fingerprint(pinned),
                self.profile.dir().join("config.json").display()
            ))),
            None => {
                pins.keys.insert(user.to_string(), presented.to_string());
                self.profile.save_config(&config)?;
                Ok(presented.to_string())
            }
        }
    }

    fn pin_generation(&self, vault_id: &str, generation: u32) -> Result<()> {
        let mut config = self.profile.config()?;
        let pins = config.pins.entry(self.session.server.clone()).or_default();
        let seen = pins.generations.get(vault_id).copied().unwrap_or(0);
        if generation < seen {
            return Err(ClientError::Integrity(format!(
                "the server offers key generation {generation} of a vault already at generation {seen}: refusing old keys"
            )));
        }
        if generation > seen {
            pins.generations.insert(vault_id.to_string(), generation);
            self.profile.save_config(&config)?;
        }
        Ok(())
    }

    /// A user's age recipient, checked against their signature with their pinned key.
    fn trusted_recipient(
        &self,
        user: &str,
        ed25519: &str,
        recipient: &str,
        signature: &str,
    ) -> Result<String> {
        if user == self.user() {
            return Ok(self.keys.recipient());
        }
        let key = self.trusted_key(user, ed25519)?;
        enc_crypto::verify_b64(
            &key,
            &enc_crypto::recipient_message(user, recipient),
            signature,
        )
        .map_err(|_| {
            ClientError::Integrity(format!(
                "{user}'s encryption key is not signed by {user}: refusing to share"
            ))
        })?;
        Ok(recipient.to_string())
    }

    fn sign_keys(
        &self,
        vault_id: &str,
        member: &str,
        generation: u32,
        access: &str,
        wrapped: &str,
    ) -> Result<String> {
        Ok(self
            .account_keys()?
            .sign_b64(&enc_crypto::vault_keys_message(
                vault_id, member, generation, access, wrapped,
            )))
    }

    /// Creates a vault (with a fresh random id unless `id` is given).
    pub fn create_vault(&self, name: &str, id: Option<&str>) -> Result<VaultInfo> {
        let keys = VaultKeys::generate();
        let id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        let wrapped_keys = keys.wrap_to(&self.keys.recipient())?;
        let signature = self.sign_keys(&id, self.user(), 1, "write", &wrapped_keys)?;
        self.api.post(
            "/v1/vaults",
            &CreateVaultRequest {
                id,
                name: name.to_string(),
                wrapped_keys,
                signature,
            },
        )
    }

    /// Removes a vault with everything in it.
    pub fn remove_vault(&self, spec: &str) -> Result<()> {
        let v = self.vault(Some(spec))?;
        self.api.delete(&format!("/v1/vaults/{}", v.info.id))
    }

    /// Members of a vault.
    pub fn members(&self, spec: &str) -> Result<Vec<MemberInfo>> {
        let v = self.vault(Some(spec))?;
        self.api.get(&format!("/v1/vaults/{}/members", v.info.id))
    }

    /// Shares a vault: wraps its keys to the other user's recipient, and signs them with the
    /// right given (`read_only`: pull and list only).
    pub fn share(&self, spec: &str, user: &str, read_only: bool) -> Result<()> {
        let v = self.vault(Some(spec))?;
        let pk: PublicKeys = self.api.get(&format!("/v1/users/{user}/public-keys"))?;
        let recipient = self.trusted_recipient(
            user,
            &pk.ed25519_public,
            &pk.x25519_recipient,
            &pk.recipient_signature,
        )?;
        let wrapped_keys = v.keys.wrap_to(&recipient)?;
        let right = if read_only { "read" } else { "write" };
        let signature = self.sign_keys(
            &v.info.signed_id,
            user,
            v.info.generation,
            right,
            &wrapped_keys,
        )?;
        self.api.post_empty(
            &format!("/v1/vaults/{}/members", v.info.id),
            &AddMemberRequest {
                user: user.to_string(),
                wrapped_keys,
                signature,
                read_only,
            },
        )
    }

    /// Unshares a vault: removes the member and moves to a new key generation, so what is
    /// written afterwards is out of their reach.
    pub fn unshare(&self, spec: &str, user: &str) -> Result<()> {
        let mut v = self.vault(Some(spec))?;
        let members: Vec<MemberInfo> =
            self.api.get(&format!("/v1/vaults/{}/members", v.info.id))?;
        if !members.iter().any(|m| m.user == user && !m.owner) {
            return Err(ClientError::Usage(format!(
                "{user} is not a member of {spec}"
            )));
        }
        let generation = v.keys.rotate();
        let mut rewrapped = Vec::new();
        for m in members.iter().filter(|m| m.user != user) {
            let recipient = self.trusted_recipient(
                &m.user,
                &m.ed25519_public,
                &m.x25519_recipient,
                &m.recipient_signature,
            )?;
            let wrapped_keys = v.keys.wrap_to(&recipient)?;
            rewrapped.push(MemberKeys {
                user: m.user.clone(),
                signature: self.sign_keys(
                    &v.info.signed_id,
                    &m.user,
                    generation,
                    &m.access,
                    &wrapped_keys,
                )?,
                wrapped_keys,
            });
        }
        self.api.post_empty(
            &format!("/v1/vaults/{}/unshare", v.info.id),
            &UnshareRequest {
                user: user.to_string(),
                generation,
                rewrapped,
            },
        )
    }

    /// Registers an SSH public key; if its private key sits next to it (same path without
    /// `.pub`, unencrypted), the account keys are also wrapped to it so SSH logins need no
    /// passphrase.
    pub fn add_ssh_key(&self, pub_path: &Path) -> Result<(SshKeyInfo, bool)> {
        let line = std::fs::read_to_string(pub_path)
            .map_err(ClientError::io(format!("reading {}", pub_path.display())))?;
        let private = pub_path
            .to_str()
            .and_then(|p| p.strip_suffix(".pub"))
            .map(std::path::PathBuf::from)
            .filter(|p| p.exists())
            .and_then(|p| read_ssh_key(&p).ok());
        let wrapped = match &private {
            Some(k) => {
                let kek = enc_crypto::kdf::ssh_kek(&*ssh_seed(k)?, self.user());
                Some(self.account_keys()?.wrap(&kek))
            }
            None => None,
        };
        let with_keys = wrapped.is_some();
        let info = self.api.post(
            "/v1/ssh-keys",
            &AddSshKeyRequest {
                public_key: line.trim().to_string(),
                wrapped_keys: wrapped,
            },
        )?;
        Ok((info, with_keys))
    }
}

/// Short form of an Ed25519 key for messages: `SHA256:` of its base64 text, 16 hex digits.
pub fn key_fingerprint(key_b64: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(key_b64.as_bytes());
    format!("SHA256:{}", hex::encode(&d[..8]))
}
