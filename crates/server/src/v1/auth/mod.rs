//! Accounts and sessions: invitation, registration, passphrase and SSH-key login, throttling,
//! logout, session listing and revocation.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use enc_proto::*;
use enc_store::{
    NewInvitation, NewVault, Registration, SessionLookup, SessionRow, SshKeyRow, UserRow,
};
use rand::RngCore;
use subtle::ConstantTimeEq as _;

use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;
use crate::rules::credentials::client_hash;
use crate::rules::throttle::*;
use crate::rules::{now, random_token, token_hash};
use crate::state::AppState;

mod ssh;
pub use ssh::*;

/// An authenticated request.
pub struct Session {
    /// The user.
    pub user: UserRow,
    /// Session id.
    pub session_id: String,
    /// Keyed hash of the client address.
    pub client: String,
    /// The session's device, once its login certified one.
    pub device_id: Option<String>,
}

/// Keyed hash of the client address, for audit and throttling.
pub struct Client(pub String);

fn client_of(state: &AppState, parts: &Parts) -> String {
    client_hash(state, &parts.extensions)
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        Ok(Self(client_of(state, parts)))
    }
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

async fn look_up_session(state: &AppState, token: &str) -> ApiResult<SessionLookup> {
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    Ok(state
        .meta
        .touch_session(&token_hash(token), now(), idle)
        .await?)
}

/// Middleware of `/v1`: looks the bearer session up once and runs the request as its user
/// ([`enc_store::tenant`], which row-level security binds on PostgreSQL). The [`Session`]
/// extractor takes the result from the request, so it is looked up only once.
pub async fn session_scope(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(token) = bearer(req.headers()) else {
        return next.run(req).await;
    };
    if token.starts_with("enc_") {
        // An access token of kind `backups`: an app acting as its device.
        let client = client_hash(&state, req.extensions());
        let found = crate::v1::backups::look_up_token(&state, token, &client).await;
        let tenant = match &found {
            crate::v1::backups::BackupsToken::Valid(user, _) => Some(user.id.clone()),
            crate::v1::backups::BackupsToken::Refused(_)
            | crate::v1::backups::BackupsToken::Unavailable => None,
        };
        req.extensions_mut().insert(found);
        return match tenant {
            Some(user_id) => enc_store::tenant::scope(user_id, next.run(req)).await,
            None => next.run(req).await,
        };
    }
    let found = match look_up_session(&state, token).await {
        Ok(found) => found,
        // The storage does not answer: say so now, rather than have the handler's extractor
        // wait for it a second time.
        Err(e @ ApiError::Unavailable(_)) => return axum::response::IntoResponse::into_response(e),
        Err(_) => return next.run(req).await,
    };
    let tenant = match &found {
        SessionLookup::Valid(v) => Some(v.1.id.clone()),
        SessionLookup::Expired | SessionLookup::Unknown => None,
    };
    req.extensions_mut().insert(found);
    match tenant {
        Some(user_id) => enc_store::tenant::scope(user_id, next.run(req)).await,
        None => next.run(req).await,
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let looked_up = parts.extensions.get::<SessionLookup>().cloned();
        let found = match looked_up {
            Some(found) => found,
            None => {
                let token = bearer(&parts.headers).ok_or(ApiError::Unauthenticated)?;
                look_up_session(state, token).await?
            }
        };
        match found {
            SessionLookup::Valid(found) => {
                let (session, user) = *found;
                Ok(Self {
                    user,
                    session_id: session.id,
                    client: client_of(state, parts),
                    device_id: session.device_id,
                })
            }
            SessionLookup::Expired => Err(ApiError::SessionExpired),
            SessionLookup::Unknown => Err(ApiError::Unauthenticated),
        }
    }
}

/// Checks a user name: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_user_name(name: &str) -> ApiResult<()> {
    if enc_proto::is_user_name(name) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid user name {name:?}: use 1-64 lower-case letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Creates (or renews) an invitation; returns the token and its expiry. Used by the admin
/// API and by `enc-server user create`.
pub async fn invite(
    users: &dyn enc_store::Users,
    name: &str,
    role: &str,
    ttl_secs: i64,
) -> ApiResult<(String, i64)> {
    validate_user_name(name)?;
    let token = random_token("enci_");
    let mut salt = vec![0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let expires = now() + ttl_secs;
    users
        .invite_user(NewInvitation {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            role: role.to_string(),
            salt,
            invite_hash: token_hash(&token),
            expires,
            now: now(),
        })
        .await
        .map_err(|e| match e {
            enc_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("user {name} already exists"))
            }
            other => other.into(),
        })?;
    Ok((token, expires))
}

fn kdf_of(user: &UserRow) -> Kdf {
    if user.kdf_m == 0 {
        // Invited: the client chooses at registration; tell it the default.
        let d = enc_crypto::KdfParams::default();
        Kdf {
            m_kib: d.m_kib,
            t: d.t,
            p: d.p,
        }
    } else {
        Kdf {
            m_kib: user.kdf_m as u32,
            t: user.kdf_t as u32,
            p: user.kdf_p as u32,
        }
    }
}

/// `POST /v1/auth/prelogin`: salt and KDF parameters; deterministic fakes for unknown users.
#[utoipa::path(post, path = "/v1/auth/prelogin", request_body = PreloginRequest,
    responses((status = 200, body = PreloginResponse)), tag = "auth")]
pub async fn prelogin(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PreloginRequest>,
) -> ApiResult<Json<PreloginResponse>> {
    let (salt, kdf) = match state.meta.user_by_name(&req.user).await? {
        Some(u) => (u.salt.clone(), kdf_of(&u)),
        None => {
            let fake = state.keyed_hash("fake-salt", req.user.as_bytes());
            let d = enc_crypto::KdfParams::default();
            (
                hex::decode(fake).expect("hex"),
                Kdf {
                    m_kib: d.m_kib,
                    t: d.t,
                    p: d.p,
                },
            )
        }
    };
    Ok(Json(PreloginResponse {
        salt: enc_crypto::b64(&salt),
        kdf,
    }))
}

async fn hash_auth_key(state: &AppState, key: Vec<u8>) -> ApiResult<String> {
    let _slot = state
        .argon_slots
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2::Argon2::default()
            .hash_password(&key, &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

async fn verify_auth_key(state: &AppState, key: Vec<u8>, stored: String) -> bool {
    let Ok(_slot) = state.argon_slots.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|h| argon2::Argon2::default().verify_password(&key, &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

pub(crate) fn decode_key(b64: &str) -> ApiResult<Vec<u8>> {
    let key = enc_crypto::unb64(b64)
        .map_err(|_| ApiError::BadRequest("auth_key is not base64".into()))?;
    if key.len() != 32 {
        return Err(ApiError::BadRequest("auth_key must be 32 bytes".into()));
    }
    Ok(key)
}

/// A short, printable label from something a client sent (a host name, a User-Agent).
fn label(text: Option<&str>) -> String {
    text.unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}

/// Which device logs in: the host name it gives, and the client its User-Agent names.
pub(crate) struct Device {
    name: String,
    client: String,
}

impl Device {
    fn of(headers: &HeaderMap, name: Option<&str>) -> Self {
        let agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Self {
            name: label(name),
            client: label(agent),
        }
    }
}

async fn new_session(
    state: &AppState,
    user: &UserRow,
    method: &str,
    ssh_wrapped: Option<String>,
    device: Device,
) -> ApiResult<LoginResponse> {
    let token = random_token("encs_");
    let id = uuid::Uuid::new_v4().to_string();
    state
        .meta
        .create_session(SessionRow {
            id: id.clone(),
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            method: method.to_string(),
            created: now(),
            last_seen: now(),
            device: device.name,
            client: device.client,
            device_id: None,
        })
        .await?;
    Ok(LoginResponse {
        token,
        session_id: id,
        user: user.name.clone(),
        role: user.role.clone(),
        idle_timeout_secs: state.config.session_idle_timeout.as_secs(),
        wrapped_keys: user.wrapped_keys.clone().unwrap_or_default(),
        ssh_wrapped_keys: ssh_wrapped,
        x25519_recipient: user.x25519_recipient.clone().unwrap_or_default(),
        ed25519_public: user.ed25519_public.clone().unwrap_or_default(),
    })
}

/// `POST /v1/auth/register`: redeem an invitation and upload the account's public keys and
/// wrapped secrets; creates the `default` vault and a first session.
#[utoipa::path(post, path = "/v1/auth/register", request_body = RegisterRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)), tag = "auth")]
pub async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let device = Device::of(&headers, req.device.as_deref());
    validate_user_name(&req.user)?;
    let key = decode_key(&req.auth_key)?;
    enc_crypto::KdfParams {
        m_kib: req.kdf.m_kib,
        t: req.kdf.t,
        p: req.kdf.p,
    }
    .check()
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if req
        .x25519_recipient
        .parse::<enc_crypto::age::x25519::Recipient>()
        .is_err()
    {
        return Err(ApiError::BadRequest(
            "x25519_recipient is not an age recipient".into(),
        ));
    }
    enc_crypto::verifying_key(&req.ed25519_public)
        .map_err(|_| ApiError::BadRequest("ed25519_public is not an Ed25519 public key".into()))?;
    crate::v1::vaults::check_vault_id(&req.default_vault_id)?;
    enc_crypto::verify_b64(
        &req.ed25519_public,
        &enc_crypto::recipient_message(&req.user, &req.x25519_recipient),
        &req.recipient_signature,
    )
    .map_err(|_| ApiError::BadRequest("recipient_signature does not verify".into()))?;
    enc_crypto::verify_b64(
        &req.ed25519_public,
        &enc_crypto::vault_keys_message(
            &req.default_vault_id,
            &req.user,
            1,
            "write",
            &req.default_vault_keys,
        ),
        &req.default_vault_signature,
    )
    .map_err(|_| ApiError::BadRequest("default_vault_signature does not verify".into()))?;
    for (field, v) in [
        ("wrapped_keys", &req.wrapped_keys),
        ("default_vault_keys", &req.default_vault_keys),
    ] {
        if enc_crypto::unb64(v).is_err() || v.len() > 64 * 1024 {
            return Err(ApiError::BadRequest(format!(
                "{field} must be base64, at most 64 KiB"
            )));
        }
    }
    // Cheap checks before the expensive hash: the address's throttle, then the invitation
    // (checked again atomically when the account is written).
    let ckey = [client_key(&client)];
    let named = state.meta.user_by_name(&req.user).await?;
    let who = claimed(&state, &req.user, named.as_ref());
    gate(&state, &ckey, &who, None, &client).await?;
    let expected = token_hash(&req.invitation);
    let invited = named.filter(|u| {
        u.state == "invited"
            && u.invite_expires.unwrap_or(0) > now()
            && u.invite_hash
                .as_deref()
                .is_some_and(|h| bool::from(h.as_bytes().ct_eq(expected.as_bytes())))
    });
    let Some(invited) = invited else {
        record_failure(&*state.meta, &ckey).await?;
        return Err(deny_registration(&state, &who, &client).await);
    };
    let auth_hash = hash_auth_key(&state, key).await?;
    let user = state
        .meta
        .register_user(Registration {
            name: req.user.clone(),
            invite_hash: token_hash(&req.invitation),
            now: now(),
            kdf: (req.kdf.m_kib.into(), req.kdf.t.into(), req.kdf.p.into()),
            auth_hash,
            x25519_recipient: req.x25519_recipient,
            ed25519_public: req.ed25519_public,
            wrapped_keys: req.wrapped_keys,
            recipient_sig: req.recipient_signature,
            default_vault: NewVault {
                // Vault ids are unique per owner: nobody else's id can collide with this one.
                id: crate::v1::vaults::row_id(&invited.id, &req.default_vault_id),
                signed_id: req.default_vault_id,
                owner_id: invited.id.clone(),
                name: "default".into(),
                wrapped_keys: req.default_vault_keys,
                signature: req.default_vault_signature,
                now: now(),
            },
        })
        .await;
    let user = match user {
        Ok(u) => u,
        Err(enc_store::StoreError::NotFound) => {
            return Err(deny_registration(&state, &who, &client).await);
        }
        Err(e) => return Err(e.into()),
    };
    state
        .audit(
            &user.name,
            Some(&user.id),
            "user.register",
            &user.name,
            "ok",
            &client,
        )
        .await;
    remember_address(&*state.meta, &user.name, &client).await?;
    Ok(Json(
        new_session(&state, &user, "register", None, device).await?,
    ))
}

/// Audits a refused registration and says what to do.
async fn deny_registration(state: &AppState, user: &str, client: &str) -> ApiError {
    state
        .audit(
            audited(user),
            None,
            "user.register",
            audited(user),
            "denied",
            client,
        )
        .await;
    ApiError::Forbidden("invitation is invalid, used or expired; ask an admin for a new one".into())
}

/// `POST /v1/auth/login` with the passphrase-derived auth key.
#[utoipa::path(post, path = "/v1/auth/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)), tag = "auth")]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let device = Device::of(&headers, req.device.as_deref());
    let key = decode_key(&req.auth_key)?;
    if validate_user_name(&req.user).is_err() {
        // No such account can exist; count it against the address only, answer as usual.
        record_failure(&*state.meta, &[client_key(&client)]).await?;
        return Err(ApiError::BadCredentials);
    }
    let user = state.meta.user_by_name(&req.user).await?;
    let who = claimed(&state, &req.user, user.as_ref());
    let keys = throttle_keys(&*state.meta, &who, &client).await?;
    // Counted before the slow check, atomically with the gate, so concurrent guesses cannot
    // slip past it.
    attempt(&state, &keys, &who, user.as_ref(), &client).await?;
    let stored = user
        .as_ref()
        .and_then(|u| u.auth_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.clone());
    let ok = verify_auth_key(&state, key, stored).await;
    match user {
        Some(user) if ok && user.state == "active" => {
            succeeded(&*state.meta, &keys, &who, &client).await?;
            state
                .audit(
                    &user.name,
                    Some(&user.id),
                    "login",
                    &user.name,
                    "ok",
                    &client,
                )
                .await;
            Ok(Json(
                new_session(&state, &user, "passphrase", None, device).await?,
            ))
        }
        user => {
            failed(&*state.meta, &keys, &who).await?;
            let id = user.as_ref().map(|u| u.id.as_str());
            state
                .audit(
                    audited(&who),
                    id,
                    "login.failure",
                    audited(&who),
                    "failed",
                    &client,
                )
                .await;
            Err(ApiError::BadCredentials)
        }
    }
}

/// Whether `key` is the session user's auth key: checked and counted like a login (throttled
/// per user and address; a refusal while throttled is an error).
pub(crate) async fn proves_passphrase(
    state: &AppState,
    s: &Session,
    key: Vec<u8>,
) -> ApiResult<bool> {
    let user = &s.user;
    let keys = throttle_keys(&*state.meta, &user.name, &s.client).await?;
    attempt(state, &keys, &user.name, Some(user), &s.client).await?;
    let stored = user
        .auth_hash
        .clone()
        .unwrap_or_else(|| state.dummy_hash.clone());
    let ok = verify_auth_key(state, key, stored).await;
    if ok {
        succeeded(&*state.meta, &keys, &user.name, &s.client).await?;
    } else {
        failed(&*state.meta, &keys, &user.name).await?;
    }
    Ok(ok)
}

/// `PUT /v1/me/passphrase`: proves the current passphrase (throttled like a login), then
/// stores the new auth key's hash and key bundle; optionally ends every other session.
#[utoipa::path(put, path = "/v1/me/passphrase", request_body = ChangePassphraseRequest,
    responses((status = 200, body = ChangePassphraseResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)), tag = "auth")]
pub async fn change_passphrase(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<ChangePassphraseRequest>,
) -> ApiResult<Json<ChangePassphraseResponse>> {
    let current = decode_key(&req.auth_key)?;
    let new = decode_key(&req.new_auth_key)?;
    if req.new_wrapped_keys.is_empty() || req.new_wrapped_keys.len() > 64 << 10 {
        return Err(ApiError::BadRequest(
            "new_wrapped_keys must be base64, at most 64 KiB".into(),
        ));
    }
    enc_crypto::unb64(&req.new_wrapped_keys)
        .map_err(|_| ApiError::BadRequest("new_wrapped_keys is not base64".into()))?;
    let user = s.user.clone();
    if !proves_passphrase(&state, &s, current).await? {
        state
            .audit(
                &user.name,
                Some(&user.id),
                "user.passphrase",
                &user.name,
                "failed",
                &s.client,
            )
            .await;
        return Err(ApiError::BadCredentials);
    }
    let hash = hash_auth_key(&state, new).await?;
    let keep = req.end_other_sessions.then_some(s.session_id.as_str());
    let ended = state
        .meta
        .change_passphrase(&user.id, &hash, &req.new_wrapped_keys, keep)
        .await?;
    state
        .audit(
            &user.name,
            Some(&user.id),
            "user.passphrase",
            &format!("{} ended_sessions={ended}", user.name),
            "ok",
            &s.client,
        )
        .await;
    Ok(Json(ChangePassphraseResponse {
        ended_sessions: ended,
    }))
}

/// `POST /v1/account/keys`: the account's key bundle, wrapped as at login, for an act of the
/// account (devices keep no copy of its signing key), to a session that proves the
/// passphrase again (checked and throttled like a login, and audited): a stolen session
/// alone gets nothing to guess the passphrase against offline.
#[utoipa::path(post, path = "/v1/account/keys", request_body = AccountKeysRequest,
    responses((status = 200, body = AccountKeysResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)), tag = "devices")]
pub async fn account_keys(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<AccountKeysRequest>,
) -> ApiResult<Json<AccountKeysResponse>> {
    let key = decode_key(&req.auth_key)?;
    let user = s.user.clone();
    let ok = proves_passphrase(&state, &s, key).await?;
    let outcome = if ok { "ok" } else { "failed" };
    state
        .audit(
            &user.name,
            Some(&user.id),
            "account.unlock",
            &user.name,
            outcome,
            &s.client,
        )
        .await;
    if !ok {
        return Err(ApiError::BadCredentials);
    }
    Ok(Json(AccountKeysResponse {
        wrapped_keys: user.wrapped_keys.unwrap_or_default(),
    }))
}

/// `POST /v1/auth/logout`: ends the calling session on the server.
#[utoipa::path(post, path = "/v1/auth/logout", responses((status = 204)), tag = "auth")]
pub async fn logout(State(state): State<AppState>, s: Session) -> ApiResult<StatusCode> {
    state.meta.delete_session(&s.user.id, &s.session_id).await?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "logout",
            &s.session_id,
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/me`.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = MeResponse)), tag = "auth")]
pub async fn me(State(state): State<AppState>, s: Session) -> Json<MeResponse> {
    Json(MeResponse {
        user: s.user.name,
        role: s.user.role,
        session_id: s.session_id,
        idle_timeout_secs: state.config.session_idle_timeout.as_secs(),
        user_id: s.user.id,
        server_id: state.server_id(),
        device_id: s.device_id,
    })
}

/// `GET /v1/sessions`: the caller's sessions.
#[utoipa::path(get, path = "/v1/sessions", responses((status = 200, body = Vec<SessionInfo>)), tag = "auth")]
pub async fn list_sessions(
    State(state): State<AppState>,
    s: Session,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let rows = state.meta.list_sessions(&s.user.id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| SessionInfo {
                current: r.id == s.session_id,
                id: r.id,
                created: r.created,
                last_seen: r.last_seen,
                method: r.method,
                device: r.device,
                client: r.client,
            })
            .collect(),
    ))
}

/// `DELETE /v1/sessions/{id}`: revokes one of the caller's sessions.
#[utoipa::path(delete, path = "/v1/sessions/{id}", responses((status = 204), (status = 404, body = ErrorBody)), tag = "auth")]
pub async fn revoke_session(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.meta.delete_session(&s.user.id, &id).await? {
        return Err(ApiError::NotFound("session"));
    }
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "session.revoke",
            &id,
            "ok",
            &s.client,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
