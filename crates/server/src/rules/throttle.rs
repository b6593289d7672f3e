//! Login throttling: which counters an attempt is gated and counted on (the account, the
//! address, the account from a known address), and what success and failure do to them.

use crate::http::error::{ApiError, ApiResult};
use crate::rules::now;
use crate::state::AppState;
use enc_store::{Throttling, UserRow};

/// Failures allowed before backoff starts.
pub const FREE_FAILURES: i64 = 5;

/// Backoff after the n-th consecutive failure: none for the first four, then 2, 4, 8 … s,
/// capped at 15 minutes.
pub fn backoff(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        0
    } else {
        let exp = (failures - FREE_FAILURES + 1).min(10) as u32;
        (1i64 << exp).min(900)
    }
}

/// Refuses with 429 while either the account or the client address is backing off.
pub(crate) async fn check_throttle(store: &dyn Throttling, keys: &[String]) -> ApiResult<()> {
    let now = now();
    for key in keys {
        if let Some(t) = store.throttle_get(key).await?
            && t.failures >= FREE_FAILURES
            && t.next_allowed > now
        {
            return Err(ApiError::TooManyAttempts((t.next_allowed - now) as u64));
        }
    }
    Ok(())
}

/// Audits a refused attempt against the account and builds the 429.
pub(crate) async fn throttled(
    state: &AppState,
    name: &str,
    user: Option<&UserRow>,
    client: &str,
    wait: i64,
) -> ApiError {
    let id = user.map(|u| u.id.as_str());
    let name = audited(name);
    state
        .audit(name, id, "login.throttled", name, "denied", client)
        .await;
    ApiError::TooManyAttempts(wait as u64)
}

/// Gate and count a login attempt in one step.
pub(crate) async fn attempt(
    state: &AppState,
    keys: &[String],
    name: &str,
    user: Option<&UserRow>,
    client: &str,
) -> ApiResult<()> {
    match state
        .meta
        .throttle_attempt(keys, now(), FREE_FAILURES, backoff)
        .await?
    {
        Some(wait) => Err(throttled(state, name, user, client, wait).await),
        None => Ok(()),
    }
}

/// Gate without counting (the attempt is counted only if it fails).
pub(crate) async fn gate(
    state: &AppState,
    keys: &[String],
    name: &str,
    user: Option<&UserRow>,
    client: &str,
) -> ApiResult<()> {
    match check_throttle(&*state.meta, keys).await {
        Err(ApiError::TooManyAttempts(wait)) => {
            Err(throttled(state, name, user, client, wait as i64).await)
        }
        other => other,
    }
}

pub(crate) async fn record_failure(store: &dyn Throttling, keys: &[String]) -> ApiResult<()> {
    for key in keys {
        store.throttle_fail(key, now(), backoff).await?;
    }
    Ok(())
}

pub(crate) fn client_key(client: &str) -> String {
    format!("client:{client}")
}

/// How long an address an account logged in from stays known to the throttle.
pub(crate) const KNOWN_ADDRESS_SECS: i64 = 90 * 24 * 3600;

/// How a name a request claims is counted (throttle keys): as given when an account has it,
/// else as a keyed hash (`?` and 32 hex digits, which no user name is), so that a name that
/// was erased does not come back into the database through its former owner's clients
/// trying it, and the tries of one unknown name still count together (as a known name's do:
/// no answer tells the two apart). Audit entries name it through [`audited`].
pub(crate) fn claimed(state: &AppState, name: &str, user: Option<&UserRow>) -> String {
    match user {
        // A user being erased (no passphrase, no invitation) is one no more.
        Some(u) if u.auth_hash.is_some() || u.invite_hash.is_some() => u.name.clone(),
        _ => format!(
            "?{}",
            state.keyed_hash("claimed user name", name.as_bytes())
        ),
    }
}

/// How an audit entry names `who` (a [`claimed`] name): a name no account has as a bare
/// `?`. The keyed hash counts a name's tries in the throttle, which forgets it a day after
/// the last; in the log it would stay, and whoever holds the database (the key is there)
/// could confirm a guessed name against it.
pub(crate) fn audited(who: &str) -> &str {
    if who.starts_with('?') { "?" } else { who }
}

pub(crate) fn account_key(user: &str) -> String {
    format!("user:{user}")
}

/// One account from one address.
pub(crate) fn pair_key(user: &str, client: &str) -> String {
    format!("user-client:{user}:{client}")
}

/// The keys a login attempt is gated and counted on: the account's (or, from an address the
/// account has logged in from before, the account-from-that-address's) first, then the
/// address's. So failures from strangers' addresses back the account off everywhere except
/// where its owner has logged in before; guesses from a known address still back off there.
pub(crate) async fn throttle_keys(
    store: &dyn Throttling,
    user: &str,
    client: &str,
) -> ApiResult<Vec<String>> {
    let known = store
        .throttle_get(&format!("known:{user}:{client}"))
        .await?
        .is_some_and(|t| t.next_allowed > now());
    let first = if known {
        pair_key(user, client)
    } else {
        account_key(user)
    };
    Ok(vec![first, client_key(client)])
}

/// Remembers that `user` logged in from `client`.
pub(crate) async fn remember_address(
    store: &dyn Throttling,
    user: &str,
    client: &str,
) -> ApiResult<()> {
    let t = now();
    store
        .throttle_mark(&format!("known:{user}:{client}"), t, t + KNOWN_ADDRESS_SECS)
        .await?;
    Ok(())
}

/// A failed login also counts against the account as a whole when it was gated on the
/// account-from-this-address key.
pub(crate) async fn failed(store: &dyn Throttling, keys: &[String], user: &str) -> ApiResult<()> {
    let account = account_key(user);
    if keys[0] != account {
        store.throttle_fail(&account, now(), backoff).await?;
    }
    Ok(())
}

/// After a success: the account starts afresh; the address only gets back the attempt counted
/// up front, so successes on one account cannot wash away failures against others.
pub(crate) async fn succeeded(
    store: &dyn Throttling,
    keys: &[String],
    user: &str,
    client: &str,
) -> ApiResult<()> {
    store.throttle_clear(&keys[0]).await?;
    store.throttle_undo(&keys[1]).await?;
    let account = account_key(user);
    if keys[0] != account {
        store.throttle_clear(&account).await?;
    }
    remember_address(store, user, client).await
}
