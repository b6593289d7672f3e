//! Authentication of a Mercury connection: an enc access token, a client of the list, or the
//! preshared key, each with its archive space and limits.

use super::*;

impl Conn {
    /// Checks a key; on success remembers the principal and returns its name. A wrong key
    /// closes the connection (as Hecate documents).
    pub(super) async fn authenticate(&mut self, key: &str) -> Result<String, Stop> {
        if self.who.is_some() {
            return Err(Fail::new(Code::InvalidRequest, "already authenticated").into());
        }
        let state = self.state.clone();
        let keys = [format!("mercury-ip:{}", self.client)];
        if let Err(crate::http::error::ApiError::TooManyAttempts(secs)) =
            crate::rules::throttle::check_throttle(&*state.meta, &keys).await
        {
            return Err(self
                .auth_failed(
                    Code::RateLimited,
                    format!("too many failed attempts; retry in {secs} s"),
                )
                .await);
        }
        let principal = if key.starts_with("enc_") {
            match crate::rules::credentials::verify(
                &state,
                None,
                key,
                enc_store::TokenKind::Mercury,
                &self.client,
            )
            .await
            {
                Ok((user, token)) => Some(self.user_principal(user, &token)),
                Err(crate::rules::credentials::Refusal::Throttled(secs)) => {
                    return Err(self
                        .auth_failed(
                            Code::RateLimited,
                            format!("too many failed attempts; retry in {secs} s"),
                        )
                        .await);
                }
                Err(crate::rules::credentials::Refusal::Unavailable) => {
                    return Err(enc_store::StoreError::Unavailable.into());
                }
                // verify counted and audited the failure.
                Err(crate::rules::credentials::Refusal::Denied) => {
                    return Err(self
                        .auth_failed(Code::AuthFailed, "Invalid authentication".into())
                        .await);
                }
            }
        } else {
            key_principal(&state, &self.mercury, key).await
        };
        let Some(p) = principal else {
            let t = crate::rules::now();
            for k in &keys {
                if let Err(e) = state
                    .meta
                    .throttle_fail(k, t, crate::rules::throttle::backoff)
                    .await
                {
                    tracing::warn!(error = %e, "counting a failed mercury attempt failed");
                }
            }
            state
                .audit("-", None, "mercury.auth", "key", "denied", &self.client)
                .await;
            return Err(self
                .auth_failed(Code::AuthFailed, "Invalid authentication".into())
                .await);
        };
        if p.user.is_none() {
            state
                .audit(
                    &p.who,
                    None,
                    "mercury.auth",
                    &p.space.to_string(),
                    "ok",
                    &self.client,
                )
                .await;
        }
        let who = p.who.clone();
        self.who = Some(p);
        Ok(who)
    }

    /// The refusal of a key: `AuthResult{success:false}` in JSON, `ERROR …` in text; closes.
    pub(super) async fn auth_failed(&mut self, code: Code, message: String) -> Stop {
        if self.dialect == Some(Dialect::Json) && matches!(code, Code::AuthFailed) {
            let _ = self
                .send_json(&Out::AuthResult {
                    success: false,
                    message: Some(message),
                    user_id: None,
                })
                .await;
            self.close(1008).await;
            return Stop::Gone;
        }
        Stop::Fail(Fail::new(code, message).closing())
    }

    pub(super) fn user_principal(
        &self,
        user: UserRow,
        token: &enc_store::AccessTokenRow,
    ) -> Principal {
        let quota = self.state.policy.quota_of(&user);

        Principal {
            token_id: Some(token.id.clone()),
            who: user.name.clone(),
            space: Space::User(user.id.clone()),
            can_upload: token.mode != enc_store::TokenMode::ReadOnly,
            can_download: true,
            can_list: true,
            max_file_size: self.config().max_file_size,
            space_limit: None,
            quota,
            user: Some(user),
        }
    }
}

/// The client list, then the preshared key; both compared in constant time.
pub(super) async fn key_principal(
    state: &AppState,
    mercury: &Mercury,
    key: &str,
) -> Option<Principal> {
    let config = &state.config.mercury;
    let psk_ok = mercury.psk.is_some_and(|want| {
        let got: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
        bool::from(got.ct_eq(&want))
    });
    let mut listed = None;
    // A listed client's key is `id:password`; a key without ':' cannot be one, so it costs no
    // Argon2 run (an unknown id still does, against the dummy hash).
    if !mercury.clients.is_empty()
        && let Some((id, secret)) = key.split_once(':')
    {
        let entry = mercury.clients.get(id);
        let hash = entry.map_or(state.dummy_hash.clone(), |e| e.key_hash.clone());
        let secret = secret.to_string();
        let ok = {
            let _permit = state.argon_slots.acquire().await.ok()?;
            tokio::task::spawn_blocking(move || {
                use argon2::PasswordVerifier as _;
                argon2::PasswordHash::new(&hash).is_ok_and(|h| {
                    argon2::Argon2::default()
                        .verify_password(secret.as_bytes(), &h)
                        .is_ok()
                })
            })
            .await
            .unwrap_or(false)
        };
        if ok {
            listed = entry;
        }
    }
    if let Some(c) = listed {
        let p = &c.permissions;
        return Some(Principal {
            token_id: None,
            who: format!("client:{}", c.client_id),
            user: None,
            space: Space::Client(c.client_id.clone()),
            can_upload: p.can_upload,
            can_download: p.can_download,
            can_list: p.can_list,
            max_file_size: p
                .max_file_size
                .map_or(config.max_file_size, |m| m.min(config.max_file_size)),
            space_limit: p.max_total_storage.or(config.max_total_storage),
            quota: None,
        });
    }
    psk_ok.then(|| Principal {
        token_id: None,
        who: "psk".into(),
        user: None,
        space: Space::Preshared,
        can_upload: true,
        can_download: true,
        can_list: true,
        max_file_size: config.max_file_size,
        space_limit: config.max_total_storage,
        quota: None,
    })
}
