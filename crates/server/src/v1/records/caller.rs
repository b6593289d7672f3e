//! Who calls `/records`: an enc session (`Authorization: Bearer` session token) or an access
//! token of kind `records` (`Bearer enc_…`); and the pseudonym their records are kept under.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use enc_store::{TokenKind, TokenMode, UserRow};

use crate::http::error::{ApiError, ApiResult};
use crate::rules::credentials::{Refusal, client_hash, verify};
use crate::rules::policy::Permission;
use crate::rules::token_hash;
use crate::state::AppState;
use crate::v1::auth::Session;

/// The caller of a `/records` route.
#[derive(Clone)]
pub struct Caller {
    pub user: UserRow,
    /// HMAC-SHA256 of the user's id under the records pepper (hex): the owner on the store.
    pub pseudonym: String,
    /// Keyed hash of the client's address (for the audit log).
    pub client: String,
    /// A read-only token reads only.
    read_only: bool,
    /// Authenticated by a login session (not an app's token).
    session: bool,
}

impl Caller {
    /// Refuses a read-only token, and a role that may not store data.
    pub fn may_write(&self, state: &AppState) -> ApiResult<()> {
        if self.read_only {
            return Err(ApiError::Forbidden("this token is read-only".into()));
        }
        if !state
            .policy
            .allows(&self.user.role, Permission::WriteVaults)
        {
            return Err(ApiError::Forbidden(format!(
                "role {} may not do this (WriteVaults needed)",
                self.user.role
            )));
        }
        Ok(())
    }

    /// Refuses the routes that see plaintext when the server has them off.
    pub fn may_see_plaintext(&self, state: &AppState) -> ApiResult<()> {
        if state.config.records.enabled {
            return Ok(());
        }
        Err(ApiError::Forbidden(
            "this server does not seal records in transit ([records] enabled = false): \
             use `enc record`, which seals on your machine"
                .into(),
        ))
    }

    /// Whether the caller administers users, from a login session (an app's token never
    /// reaches another user's records, whoever made it).
    pub fn is_admin(&self, state: &AppState) -> bool {
        self.session
            && state
                .policy
                .allows(&self.user.role, Permission::ManageUsers)
    }

    /// Appends one audit entry per record (its id, the owner's pseudonym, the outcome).
    pub async fn audit(&self, state: &AppState, action: &str, ids: &[&str], outcome: &str) {
        let each: Vec<(&str, &str)> = ids.iter().map(|id| (*id, outcome)).collect();
        self.audit_each(state, action, &each).await;
    }

    /// Appends one audit entry per record and outcome, in one transaction. The entries name
    /// no user and carry no client address (which other entries of the user carry, and
    /// would link the pseudonym back to them).
    pub async fn audit_each(&self, state: &AppState, action: &str, outcomes: &[(&str, &str)]) {
        let t = crate::rules::now();
        let entries = outcomes
            .iter()
            .map(|(id, outcome)| enc_store::NewAudit {
                ts: t,
                actor: format!("records:{}", &self.pseudonym[..16]),
                actor_id: None,
                action: action.into(),
                target: format!("record {id} of {}", self.pseudonym),
                outcome: (*outcome).into(),
                client: String::new(),
            })
            .collect();
        if let Err(e) = state.meta.audit_append_many(entries).await {
            tracing::error!(error = %e, "appending records' audit entries failed");
        }
    }
}

/// A verified `records` token: its user and whether it is read-only.
pub type RecordsToken = (UserRow, bool);

/// Middleware of `/records`: authenticates the caller once and runs the request as its user
/// (tenant scope) under its pseudonym (the records' owner on the store).
pub async fn scope(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let caller = match authenticate(&mut parts, &state).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let (user, pseudonym) = (caller.user.id.clone(), caller.pseudonym.clone());
    parts.extensions.insert(caller);
    let req = Request::from_parts(parts, body);
    enc_store::tenant::scope(
        user,
        enc_store::tenant::pseudonymous(pseudonym, next.run(req)),
    )
    .await
}

async fn authenticate(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
    let Some(pepper) = &state.records_pepper else {
        return Err(ApiError::NotConfigured(
            "records need a pepper shared by every replica: set [records] pepper_file or \
             ENC_RECORDS_PEPPER"
                .into(),
        ));
    };
    let client = client_hash(state, &parts.extensions);
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let (user, read_only, session) = match token {
        Some(t) if t.starts_with("enc_") => {
            let (user, read_only) = token_caller(state, &t, &client).await?;
            (user, read_only, false)
        }
        _ => (
            Session::from_request_parts(parts, state).await?.user,
            false,
            true,
        ),
    };
    Ok(Caller {
        pseudonym: pepper.pseudonym(&user.id),
        user,
        client,
        read_only,
        session,
    })
}

/// A `records` token's user (verified ones reused for the credential cache's 2 s, emptied
/// by every revocation on this replica).
async fn token_caller(state: &AppState, token: &str, client: &str) -> ApiResult<RecordsToken> {
    let key = token_hash(token);
    if let Some(found) = state.records_tokens.get(&key) {
        return Ok(found);
    }
    match verify(state, None, token, TokenKind::Records, client).await {
        Ok((user, row)) => {
            let found = (user, row.mode == TokenMode::ReadOnly);
            state.records_tokens.put(key, found.clone());
            Ok(found)
        }
        Err(Refusal::Throttled(secs)) => Err(ApiError::TooManyAttempts(secs)),
        Err(Refusal::Denied) => Err(ApiError::Unauthenticated),
        Err(Refusal::Unavailable) => Err(enc_store::StoreError::Unavailable.into()),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> ApiResult<Self> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}
