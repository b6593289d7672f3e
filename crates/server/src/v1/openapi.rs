//! The OpenAPI document of `/v1`, generated from the handlers' annotations and the wire types.

use axum::Json;
use utoipa::OpenApi;

use super::{
    archives, audit, auth, backups, devices, erasure, objects, records, tokens, trees, users,
    vaults,
};

/// The `/v1` API.
#[derive(OpenApi)]
#[openapi(
    info(title = "enc", description = "Zero-knowledge encrypted storage. The server stores only ciphertext, encrypted names, wrapped keys and hashes. Authenticate with `Authorization: Bearer <session token>` (the backups routes also take a token of kind `backups`, an app's device credential). Every error is `{\"error\":{\"code\":…,\"message\":…}}`."),
    paths(
        auth::prelogin, auth::register, auth::login, auth::ssh_challenge, auth::ssh_login,
        auth::logout, auth::me, auth::list_sessions, auth::revoke_session, auth::add_ssh_key,
        auth::list_ssh_keys, users::create_user, users::list_users, users::delete_user,
        users::set_role, users::public_keys, vaults::list, vaults::create, vaults::remove,
        vaults::members, vaults::share, vaults::unshare, objects::upload, objects::commit,
        objects::list, objects::versions, objects::remove, objects::download, audit::list,
        users::set_quota, users::restic_repos, users::delete_restic_repo, tokens::create,
        tokens::list, tokens::revoke, auth::change_passphrase, trees::commit, trees::head,
        trees::commits, trees::read, devices::chain, auth::account_keys, devices::signer_chain, devices::signer_chain_by_key, devices::add, devices::list,
        devices::rename, devices::revoke, backups::put, backups::list, backups::get,
        backups::content, backups::remove, backups::chain, backups::usage,
        records::create, records::read, records::remove, records::put_sealed, records::get_sealed,
        records::batch::create, records::batch::read, records::batch::remove,
        erasure::erase_me, erasure::status, archives::list, archives::download,
    ),
    tags((name = "auth"), (name = "users"), (name = "vaults"), (name = "objects"), (name = "trees"), (name = "audit"), (name = "tokens"), (name = "restic"), (name = "devices"), (name = "backups"), (name = "mercury", description = "Your Mercury (Hecate) archives over HTTPS, as stored, for export; Hecate's clients use the WebSocket protocol."), (name = "records", description = "The enc-server-go record routes at /records (not under /v1). Authenticate with a session or a token of kind `records`."))
)]
pub struct ApiDoc;

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
