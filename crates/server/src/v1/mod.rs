//! The `/v1` API: accounts and sessions, users, tokens, vaults, their objects and trees, the audit
//! log and the OpenAPI document. Handlers answer [`ApiError`](crate::http::error::ApiError)'s
//! JSON error body.

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

pub mod archives;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod devices;
pub mod erasure;
pub mod objects;
pub mod openapi;
pub mod records;
pub mod tokens;
pub mod trees;
pub mod users;
pub mod vaults;

/// The `/v1` routes, each run as the bearer session's user.
pub fn router<S>(state: AppState) -> Router<S> {
    Router::new()
        .route("/auth/prelogin", post(auth::prelogin))
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/ssh/challenge", post(auth::ssh_challenge))
        .route("/auth/ssh/login", post(auth::ssh_login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/me/passphrase", put(auth::change_passphrase))
        .route("/me/erase", post(erasure::erase_me))
        .route("/erasures/{id}", get(erasure::status))
        .route("/mercury/archives", get(archives::list))
        .route("/mercury/archives/{name}", get(archives::download))
        .route("/sessions", get(auth::list_sessions))
        .route("/sessions/{id}", delete(auth::revoke_session))
        .route(
            "/ssh-keys",
            get(auth::list_ssh_keys).post(auth::add_ssh_key),
        )
        .route("/account/chain", get(devices::chain))
        .route("/account/keys", post(auth::account_keys))
        .route("/devices", get(devices::list).post(devices::add))
        .route("/devices/{id}/name", put(devices::rename))
        .route("/devices/{id}/revoke", post(devices::revoke))
        .route("/devices/{id}/chain", get(backups::chain))
        .route("/backups", get(backups::list).post(backups::put))
        .route("/backups/{id}", get(backups::get).delete(backups::remove))
        .route("/backups/{id}/content", get(backups::content))
        .route("/admin/backups/usage", get(backups::usage))
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{name}", delete(users::delete_user))
        .route("/users/{name}/role", put(users::set_role))
        .route("/users/{name}/quota", put(users::set_quota))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route("/restic/repos", get(users::restic_repos))
        .route("/restic/repos/{name}", delete(users::delete_restic_repo))
        .route("/users/{name}/public-keys", get(users::public_keys))
        .route("/vaults", get(vaults::list).post(vaults::create))
        .route("/vaults/{id}", delete(vaults::remove))
        .route(
            "/vaults/{id}/members",
            get(vaults::members).post(vaults::share),
        )
        .route("/vaults/{id}/unshare", post(vaults::unshare))
        .route("/vaults/{id}/uploads", put(objects::upload))
        .route(
            "/vaults/{id}/objects",
            get(objects::list).post(objects::commit),
        )
        .route(
            "/vaults/{id}/objects/{enc_name}",
            get(objects::versions).delete(objects::remove),
        )
        .route("/vaults/{id}/blobs/{version_id}", get(objects::download))
        .route("/vaults/{id}/head", get(trees::head))
        .route("/vaults/{id}/chains/{user}", get(devices::signer_chain))
        .route(
            "/vaults/{id}/signers/{key}",
            get(devices::signer_chain_by_key),
        )
        .route(
            "/vaults/{id}/commits",
            get(trees::commits).post(trees::commit),
        )
        .route("/vaults/{id}/read", post(trees::read))
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(openapi::serve))
        .fallback(crate::http::not_found)
        .method_not_allowed_fallback(crate::http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_scope,
        ))
        .with_state(state)
}
