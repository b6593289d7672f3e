//! Credentials every protocol shares: access tokens (restic's HTTP Basic password, Mercury's
//! `AUTH`), the keyed hash of a client address, and the names a token may scope.
//!
//! A token is `enc_<id>_<secret>`: the id finds the row, and the SHA-256 of the whole token
//! must equal the stored hash (compared in constant time). Failed attempts count against the
//! user name and the client address; while either backs off, failures get 429. A valid token
//! is never refused for someone else's failures: with 256 bits of secret, guessing is
//! hopeless, so the throttle only stops noise, never the owner.

use enc_store::{AccessTokenRow, TokenKind, Tokens, UserRow, Users};
use subtle::ConstantTimeEq as _;

use crate::http::error::ApiError;
use crate::http::serve::ClientAddr;
use crate::rules::throttle::{backoff, check_throttle};
use crate::rules::{now, token_hash};
use crate::state::AppState;

/// The scope of every Mercury token: the user's archives.
pub const MERCURY_SCOPE: &str = "archives";

/// A use of a token is audited at most this often (seconds); `last_used` is kept to the
/// minute.
const AUDIT_USE_EVERY: i64 = 3600;

/// Checks a restic repository name (the same rule as vault names).
pub fn validate_repo_name(name: &str) -> Result<(), String> {
    super::check_name("repository", name)
}

/// Keyed hash of the client address a request's extensions carry, for audit and throttling.
pub fn client_hash(state: &AppState, extensions: &axum::http::Extensions) -> String {
    let ip = extensions
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    state.keyed_hash("client", ip.as_bytes())
}

/// Why a token was not accepted.
pub enum Refusal {
    /// Wrong, unknown, expired or revoked credentials.
    Denied,
    /// Too many failures from this user name or address; retry after this many seconds.
    Throttled(u64),
    /// The storage did not answer: nothing is known of the credentials (a 503, never a 401
    /// that would tell a client its token is wrong).
    Unavailable,
}

/// The id embedded in a token, if it has the right shape.
fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("enc_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some(id)
}

/// Verifies a token of `kind` (presented with `user_name`, if the protocol carries one; the
/// token alone names its user otherwise); counts failures and audits uses.
pub async fn verify(
    state: &AppState,
    user_name: Option<&str>,
    token: &str,
    kind: TokenKind,
    client: &str,
) -> Result<(UserRow, AccessTokenRow), Refusal> {
    match check(&*state.meta, user_name, token, kind).await {
        Ok(Some((user, row))) => {
            let t = now();
            let last = row.last_used.unwrap_or(0);
            if t - last >= 60
                && let Err(e) = state.meta.touch_token(&row.id, t).await
            {
                tracing::warn!(error = %e, "recording a token use failed");
            }
            if t - last >= AUDIT_USE_EVERY {
                state
                    .audit(
                        &user.name,
                        Some(&user.id),
                        "token.use",
                        &format!("{} {}:{}", row.id, row.kind, row.scope),
                        "ok",
                        client,
                    )
                    .await;
            }
            Ok((user, row))
        }
        Ok(None) => Err(refuse(state, user_name, client).await),
        Err(e) if e.is_unavailable() => {
            tracing::error!(error = %e, "token lookup failed: the storage does not answer");
            Err(Refusal::Unavailable)
        }
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            Err(Refusal::Denied)
        }
    }
}

/// Whether a token that authenticated a long-lived connection still holds: it exists (not
/// revoked), has not expired, and its user is still active. A storage failure counts as not
/// valid (the connection ends; the client may reconnect).
pub async fn still_valid(store: &(impl Tokens + Users + ?Sized), token_id: &str) -> bool {
    let row = match store.token(token_id).await {
        Ok(Some(row)) if row.expires.is_none_or(|e| e > now()) => row,
        Ok(_) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "re-checking a token failed");
            return false;
        }
    };
    matches!(store.user_by_id(&row.user_id).await, Ok(Some(u)) if u.state == "active")
}

async fn check(
    store: &(impl Tokens + Users + ?Sized),
    user_name: Option<&str>,
    token: &str,
    kind: TokenKind,
) -> enc_store::Result<Option<(UserRow, AccessTokenRow)>> {
    let Some(id) = token_id(token) else {
        return Ok(None);
    };
    let Some(row) = store.token(id).await? else {
        return Ok(None);
    };
    let hash_ok: bool = token_hash(token)
        .as_bytes()
        .ct_eq(row.token_hash.as_bytes())
        .into();
    if !hash_ok || row.kind != kind || row.expires.is_some_and(|e| e <= now()) {
        return Ok(None);
    }
    let Some(user) = store.user_by_id(&row.user_id).await? else {
        return Ok(None);
    };
    if user_name.is_some_and(|n| n != user.name) || user.state != "active" {
        return Ok(None);
    }
    Ok(Some((user, row)))
}

async fn refuse(state: &AppState, user_name: Option<&str>, client: &str) -> Refusal {
    let user = match user_name {
        Some(name) => state.meta.user_by_name(name).await.ok().flatten(),
        None => None,
    };
    let who = user_name.map(|n| crate::rules::throttle::claimed(state, n, user.as_ref()));
    let mut keys = vec![format!("token-ip:{client}")];
    if let Some(name) = &who {
        keys.push(format!("token-user:{name}"));
    }
    if let Err(ApiError::TooManyAttempts(secs)) = check_throttle(&*state.meta, &keys).await {
        return Refusal::Throttled(secs);
    }
    let t = now();
    for k in &keys {
        if let Err(e) = state.meta.throttle_fail(k, t, backoff).await {
            tracing::warn!(error = %e, "counting a failed token attempt failed");
        }
    }
    state
        .audit(
            who.as_deref().map_or("-", crate::rules::throttle::audited),
            user.as_ref().map(|u| u.id.as_str()),
            "token.auth",
            who.as_deref()
                .map_or("token", crate::rules::throttle::audited),
            "denied",
            client,
        )
        .await;
    Refusal::Denied
}

/// Computes the dummy hash used to equalise timing for unknown users.
pub fn dummy_hash() -> String {
    use argon2::PasswordHasher as _;
    let salt =
        argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(b"enc-dummy-auth-key-of-32-bytes!!", &salt)
        .expect("hashing a constant works")
        .to_string()
}

/// How long a cache may reuse a verified credential without asking the database again. A
/// revocation on this replica takes effect at once ([`Revocations`]); on another replica
/// within this time.
pub const CACHE_SECS: u64 = 2;

/// Where the caches of verified credentials (restic's logins) hear that a token was revoked
/// or a user deleted on this replica, so they forget it at once.
#[derive(Default)]
pub struct Revocations(std::sync::Mutex<Vec<Forget>>);

/// What a cache does on a revocation: forget one token (`Some(id)`) or everything (`None`).
type Forget = Box<dyn Fn(Option<&str>) + Send + Sync>;

impl Revocations {
    /// Calls `forget` on every revocation from now on.
    pub fn subscribe(&self, forget: impl Fn(Option<&str>) + Send + Sync + 'static) {
        self.0.lock().expect("revocations").push(Box::new(forget));
    }

    /// A token (`Some(id)`) or any number of them (`None`: a user deleted) no longer holds.
    pub fn revoke(&self, token_id: Option<&str>) {
        for forget in self.0.lock().expect("revocations").iter() {
            forget(token_id);
        }
    }
}

/// Verified credentials reused for [`CACHE_SECS`], keyed by the token's hash (never the
/// token). Whoever holds one subscribes it to [`Revocations`] to empty it at once on a
/// revocation on this replica; other replicas drop an entry within [`CACHE_SECS`].
pub struct Verified<T>(
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, T)>>,
);

impl<T> Default for Verified<T> {
    fn default() -> Self {
        Self(Default::default())
    }
}

impl<T: Clone> Verified<T> {
    /// What was verified under `key`, if it is recent enough.
    pub fn get(&self, key: &str) -> Option<T> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, found) = map.get(key)?;
        (at.elapsed().as_secs() < CACHE_SECS).then(|| found.clone())
    }

    /// Remembers a verification (the oldest entries go first past 10,000).
    pub fn put(&self, key: String, found: T) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            map.retain(|_, (at, _)| at.elapsed().as_secs() < CACHE_SECS);
        }
        map.insert(key, (std::time::Instant::now(), found));
    }

    /// Forgets everything (a revocation).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
