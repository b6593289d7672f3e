//! The tenant a piece of work runs for, carried alongside it (a tokio task-local), so a
//! backend with row-level security can bind its transactions to that user without every
//! call passing the id again. The server opens a scope once it has authenticated a request
//! (`/v1` session, restic token, Mercury token) and runs the rest of the request inside it.
//! Backends without row-level security ignore it.

use std::future::Future;

tokio::task_local! {
    static TENANT: String;
    static PSEUDONYM: String;
}

/// Runs `work` on behalf of `user_id`.
pub async fn scope<F: Future>(user_id: String, work: F) -> F::Output {
    TENANT.scope(user_id, work).await
}

/// The user the current work runs for, if it runs inside [`scope`].
pub fn current() -> Option<String> {
    TENANT.try_with(Clone::clone).ok()
}

/// Runs `work` under a pseudonym: the owner its records are kept under (inside a [`scope`]
/// of the user it stands for).
pub async fn pseudonymous<F: Future>(pseudonym: String, work: F) -> F::Output {
    PSEUDONYM.scope(pseudonym, work).await
}

/// The pseudonym the current work runs under, if it runs inside [`pseudonymous`].
pub fn pseudonym() -> Option<String> {
    PSEUDONYM.try_with(Clone::clone).ok()
}
