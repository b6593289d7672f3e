//! The restic REST backend (API v1 and v2) under `/restic/<user>/<repo>/`.
//!
//! Follows restic's `doc/REST_backend.rst`, with rest-server's behaviour where the document
//! leaves room: `POST /?create=true` creates the repository, `config` is written once, object
//! names are 64 lower-case hex digits equal to the SHA-256 of the body, deletes are
//! idempotent, a wrong method gets 405 with `Allow`. Beyond rest-server: repositories live in
//! the metadata database (listings never walk the disk), a re-upload of an object that exists
//! succeeds when its hash matches (a retried request after a lost answer is harmless), quotas
//! are enforced while the body streams (507), and every token carries its own mode.
//!
//! Authentication is HTTP Basic with the enc user name and an access token scoped to one
//! repository; any mismatch between the token and the path is the same 401 as a wrong token,
//! so nobody learns whether another user's repository exists.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use enc_store::{
    AccessTokenRow, NewResticObject, PutOutcome, ResticFile, ResticRepoRow, StoreError, TokenMode,
    UserRow,
};
use futures::StreamExt as _;

use crate::rules::batch::Batcher;
use crate::state::AppState;

mod cache;
mod failure;
mod range;
mod writes;

use writes::{ResticWrite, WriteResult};

use crate::rules::credentials::{Refusal, validate_repo_name};
pub use failure::Failure;
use failure::{quota_failure, unauthorized};
use range::range;

const V1: &str = "application/vnd.x.restic.rest.v1";
const V2: &str = "application/vnd.x.restic.rest.v2";

use crate::rules::ingest::{Hash, Ingest, Limits, MAX_DRAIN, Refused, drain};

/// Files up to this size keep their bytes in their database row instead of a blob: locks,
/// keys, snapshots, small indexes and trees. Their one durable write is the group commit
/// they share with concurrent uploads, where a blob costs a reservation and two `fsync`s of
/// its own (file and directory) before the record.
const INLINE_MAX: u64 = 32 * 1024;

type Outcome = Result<Response, Failure>;

/// What a path below the repository names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `/` (create).
    Root,
    /// `/config`.
    Config,
    /// `/{type}/` (list).
    List(ResticFile),
    /// `/{type}/{name}`.
    Object(ResticFile, &'a str),
}

/// Splits `/restic/<user>/<repo>/<rest>`; `None` when the path has no user and repo.
fn split(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/restic/")?;
    let (user, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let (repo, rest) = rest.split_once('/').unwrap_or((rest, ""));
    Some((user, repo, rest))
}

/// Parses the part after the repository (without its leading `/`).
fn target(rest: &str) -> Result<Target<'_>, Failure> {
    let not_found = || Failure::new(StatusCode::NOT_FOUND, "no such path in a restic repository");
    match rest {
        "" => return Ok(Target::Root),
        "config" => return Ok(Target::Config),
        _ => {}
    }
    let (kind, name) = rest.split_once('/').ok_or_else(not_found)?;
    let kind: ResticFile = kind.parse().map_err(|_| not_found())?;
    if kind == ResticFile::Config {
        return Err(not_found());
    }
    if name.is_empty() {
        return Ok(Target::List(kind));
    }
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(Target::Object(kind, name))
    } else if name.contains('/') {
        Err(not_found())
    } else {
        Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid object name: expected 64 lower-case hex digits (the SHA-256 of the content)",
        ))
    }
}

/// `user:token` from a Basic `Authorization` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, token) = text.split_once(':')?;
    Some((user.to_string(), token.to_string()))
}

/// What the routes make of a request before any I/O, on arbitrary input (`fuzzing`): the
/// path's user, repository and file, the Basic credentials, and the range of an object of
/// `size` bytes, with what must hold of each.
pub(crate) fn parse_for_fuzzing(path: &str, headers: &HeaderMap, size: u64) {
    if let Some((_user, repo, rest)) = split(path) {
        let named = validate_repo_name(repo).is_ok();
        if let Ok(Target::Object(_, name)) = target(rest) {
            assert!(name.len() == 64 && !name.contains('/'), "{name:?}");
        }
        let _ = named;
    }
    let _ = basic(headers);
    if let Ok(Some(r)) = range::range(headers, size) {
        assert!(r.start < r.end && r.end <= size, "{r:?} of {size}");
    }
}

/// An authenticated request on one repository.
struct Ctx {
    state: Restic,
    user: UserRow,
    token: AccessTokenRow,
    repo_name: String,
    client: String,
    /// The repository, when known to exist (from the credential cache).
    known_repo: Option<ResticRepoRow>,
}

impl Ctx {
    async fn refuse_write(&self, what: &str, why: &str) -> Failure {
        self.state
            .audit(
                &self.user.name,
                Some(&self.user.id),
                "restic.refused",
                &format!("{}/{what} token={}", self.repo_name, self.token.id),
                why,
                &self.client,
            )
            .await;
        Failure::new(
            StatusCode::FORBIDDEN,
            format!(
                "refused: {why} (token {} is {})",
                self.token.id, self.token.mode
            ),
        )
    }

    async fn repo(&self) -> Result<ResticRepoRow, Failure> {
        if let Some(r) = &self.known_repo {
            return Ok(r.clone());
        }
        self.state
            .meta
            .restic_repo(&self.user.id, &self.repo_name)
            .await?
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::NOT_FOUND,
                    "repository does not exist; create it with `restic init`",
                )
            })
    }

    fn metric(&self, kind: ResticFile, op: &str, bytes: u64) {
        self.state
            .metrics
            .blob(&self.user.name, &self.repo_name, kind.as_str(), op, bytes);
    }
}

/// The restic backend's state: the server's, its group commit and its caches.
#[derive(Clone)]
pub struct Restic(std::sync::Arc<Shared>);

/// The contents of [`Restic`].
pub struct Shared {
    app: AppState,
    /// Group commit of blob reservations and file records.
    writes: Batcher<ResticWrite, WriteResult>,
    /// Recently verified credentials.
    logins: std::sync::Arc<cache::Logins>,
    /// File lookups.
    objects: std::sync::Arc<cache::Objects>,
}

impl Restic {
    /// Starts the group-commit writer and registers the caches for revocations.
    pub fn new(app: AppState) -> Self {
        let logins = std::sync::Arc::new(cache::Logins::default());
        let objects = std::sync::Arc::new(cache::Objects::new(app.meta.clone()));
        let (l, o) = (logins.clone(), objects.clone());
        app.revocations.subscribe(move |token_id| {
            l.forget(token_id);
            if token_id.is_none() {
                o.clear();
            }
        });
        Self(std::sync::Arc::new(Shared {
            writes: writes::restic_writer(app.meta.clone()),
            app,
            logins,
            objects,
        }))
    }
}

impl std::ops::Deref for Restic {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0.app
    }
}

/// restic's REST routes, under `/restic`.
pub fn router<S>(state: Restic) -> axum::Router<S> {
    axum::Router::new()
        .route("/restic", axum::routing::any(handle))
        .route("/restic/", axum::routing::any(handle))
        .route("/restic/{*rest}", axum::routing::any(handle))
        .with_state(state)
}

async fn handle(State(state): State<Restic>, req: Request) -> Response {
    match serve(state, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn serve(state: Restic, req: Request) -> Outcome {
    let client = crate::rules::credentials::client_hash(&state, req.extensions());
    let path = req.uri().path().to_string();
    let Some((user_seg, repo_seg, rest)) = split(&path) else {
        return Err(unauthorized());
    };
    // Authenticate before looking at anything else, so paths of others all look alike.
    let Some((user_name, token)) = basic(req.headers()) else {
        return Err(unauthorized());
    };
    let login = match state
        .0
        .logins
        .verify(&state, &user_name, &token, &client)
        .await
    {
        Ok(login) => login,
        Err(Refusal::Denied) => return Err(unauthorized()),
        Err(Refusal::Unavailable) => return Err(StoreError::Unavailable.into()),
        Err(Refusal::Throttled(secs)) => {
            let mut f = Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed attempts; retry in {secs} s"),
            );
            f.retry_after = Some(secs);
            return Err(f);
        }
    };
    let (user, token, known_repo) = (login.user, login.token, login.repo);
    if user_seg != user.name || repo_seg != token.scope {
        return Err(unauthorized());
    }
    if validate_repo_name(repo_seg).is_err() {
        return Err(unauthorized());
    }
    let ctx = Ctx {
        state,
        user,
        token,
        repo_name: repo_seg.to_string(),
        client,
        known_repo: known_repo.filter(|r| r.name == repo_seg),
    };
    let target = target(rest)?;
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    // Everything from here runs as the token's user (row-level security on PostgreSQL).
    let tenant = ctx.user.id.clone();
    enc_store::tenant::scope(tenant, async {
        match (target, method) {
            (Target::Root, Method::POST) => create_repo(&ctx, &parts).await,
            (Target::Root, _) => Err(Failure::method("POST")),
            (Target::Config, m) => {
                object(&ctx, m, ResticFile::Config, "config", &parts, body).await
            }
            (Target::List(kind), Method::GET) => list(&ctx, kind, &parts.headers).await,
            (Target::List(_), _) => Err(Failure::method("GET")),
            (Target::Object(kind, name), m) => object(&ctx, m, kind, name, &parts, body).await,
        }
    })
    .await
}

async fn create_repo(ctx: &Ctx, parts: &Parts) -> Outcome {
    let create = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "create=true"));
    if !create {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "POST on a repository needs ?create=true",
        ));
    }
    if ctx.token.mode == TokenMode::ReadOnly {
        return Err(ctx.refuse_write("", "read-only token").await);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let created = ctx
        .state
        .meta
        .create_restic_repo(&id, &ctx.user.id, &ctx.repo_name, crate::rules::now())
        .await?;
    if created {
        ctx.state
            .audit(
                &ctx.user.name,
                Some(&ctx.user.id),
                "restic.repo.create",
                &format!("{} token={}", ctx.repo_name, ctx.token.id),
                "ok",
                &ctx.client,
            )
            .await;
    }
    Ok(StatusCode::OK.into_response())
}

async fn list(ctx: &Ctx, kind: ResticFile, headers: &HeaderMap) -> Outcome {
    let repo = ctx.repo().await?;
    let rows = ctx.state.meta.restic_list(&repo.id, kind.as_str()).await?;
    let v2 = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|a| a.trim() == V2));
    let (body, ctype) = if v2 {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({"name": r.name, "size": r.size}))
            .collect();
        (serde_json::to_vec(&items), V2)
    } else {
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        (serde_json::to_vec(&names), V1)
    };
    let body = body.map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, ctype)], body).into_response())
}

async fn object(
    ctx: &Ctx,
    method: Method,
    kind: ResticFile,
    name: &str,
    parts: &Parts,
    body: Body,
) -> Outcome {
    let allow = "HEAD, GET, POST, DELETE";
    match method {
        Method::HEAD | Method::GET => {
            read(ctx, method == Method::HEAD, kind, name, &parts.headers).await
        }
        Method::POST => write(ctx, kind, name, &parts.headers, body).await,
        Method::DELETE => remove(ctx, kind, name).await,
        _ => Err(Failure::method(allow)),
    }
}

async fn read(ctx: &Ctx, head: bool, kind: ResticFile, name: &str, headers: &HeaderMap) -> Outcome {
    let repo = ctx.repo().await?;
    let objects = &ctx.state.0.objects;
    let not_found = || Failure::new(StatusCode::NOT_FOUND, format!("{kind}/{name} not found"));
    let (mut row, cached) = objects
        .get(&repo.id, kind.as_str(), name)
        .await?
        .ok_or_else(not_found)?;
    let size = row.size as u64;
    if head {
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        return Ok(resp);
    }
    let span = match range(headers, size) {
        Ok(r) => r,
        Err(()) => {
            let mut resp = Failure::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range outside the object's {size} bytes"),
            )
            .into_response();
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(resp);
        }
    };
    let whole = span.clone().unwrap_or(0..size);
    let mut got = bytes_of(ctx, &mut row, whole.clone()).await;
    if cached && matches!(got, Err(StoreError::NotFound)) {
        // Deleted through another replica since it was cached.
        // (Content-named, so a file stored again under the name has the same size.)
        row = objects
            .refresh(&repo.id, kind.as_str(), name)
            .await?
            .ok_or_else(not_found)?;
        got = bytes_of(ctx, &mut row, whole).await;
    }
    let stream = got.map_err(|e| match e {
        StoreError::NotFound => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("blob {} missing", row.blob_key),
        ),
        other => other.into(),
    })?;
    let served = span.as_ref().map_or(size, |r| r.end - r.start);
    ctx.metric(kind, "read", served);
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(served));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = span {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
                .expect("ascii"),
        );
    }
    Ok(resp)
}

/// Bytes `r` of a file: from its row when it keeps them there, else from its blob.
async fn bytes_of(
    ctx: &Ctx,
    row: &mut enc_store::ResticObjectRow,
    r: Range<u64>,
) -> enc_store::Result<enc_store::blob::BlobStream> {
    let Some(data) = row.data.take() else {
        return ctx.state.blobs.read_range(&row.blob_key, Some(r)).await;
    };
    let end = (r.end as usize).min(data.len());
    let at = (r.start as usize).min(end)..end;
    let bytes = bytes::Bytes::from(data).slice(at);
    Ok(futures::stream::once(std::future::ready(Ok(bytes))).boxed())
}

async fn write(
    ctx: &Ctx,
    kind: ResticFile,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Outcome {
    if ctx.token.mode == TokenMode::ReadOnly {
        return Err(ctx
            .refuse_write(&format!("{kind}/{name}"), "read-only token")
            .await);
    }
    let repo = ctx.repo().await?;
    let state = &ctx.state;
    let max = state.config.limits.max_object_size;
    let declared = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|l| l.parse::<u64>().ok())
                .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "invalid Content-Length"))?,
        ),
        None => None,
    };
    let quota = state.policy.quota_of(&ctx.user);
    let used = ctx.user.usage_bytes.max(0) as u64;
    let mut stream = body.into_data_stream();
    if let Some(len) = declared
        && len > max
    {
        if len - max <= MAX_DRAIN {
            drain(&mut stream).await;
        }
        return Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("object larger than the server's limit of {max} bytes"),
        )
        .closing());
    }
    // A small file is recorded with its bytes, and its record finds out whether the name
    // existed and charges the quota atomically: no lookup first (a database round trip per
    // file), no early quota refusal (the body is small; the charge refuses it).
    let small = kind != ResticFile::Config && declared.is_some_and(|d| d <= INLINE_MAX);
    let existing = match small {
        true => None,
        false => {
            state
                .meta
                .restic_object(&repo.id, kind.as_str(), name)
                .await?
        }
    };
    if let Some(len) = declared
        && existing.is_none()
        && !small
        && quota.is_some_and(|q| used + len > q)
    {
        if len <= MAX_DRAIN {
            drain(&mut stream).await;
        }
        return Err(ctx.quota_refusal(kind, name).await);
    }
    if kind == ResticFile::Config && existing.is_some() {
        drain(&mut stream).await;
        return Err(ctx
            .refuse_write("config", "config exists and is never rewritten")
            .await);
    }
    // A file that exists already: the name is the content's hash, so a body with that hash
    // is the same content (a retry whose answer was lost). Check it, store nothing.
    // A small new file is gathered in memory and recorded with its bytes, without a blob.
    let inline = existing.is_none() && declared.is_some_and(|d| d <= INLINE_MAX);
    let hash = if kind == ResticFile::Config {
        Hash::None
    } else {
        Hash::Sha256
    };
    let limits = Limits {
        max,
        room: quota
            .filter(|_| existing.is_none() && !small)
            .map(|q| q.saturating_sub(used)),
        declared,
    };
    let mut blob_key = String::new();
    let mut ingest = if existing.is_some() {
        Ingest::to_nothing(hash, limits)
    } else if inline {
        Ingest::to_memory(hash, limits)
    } else {
        blob_key = format!("restic/{}/{kind}/{name}.{}", repo.id, uuid::Uuid::new_v4());
        state
            .0
            .writes
            .submit(ResticWrite::Reserve(
                blob_key.clone(),
                crate::rules::now() + state.config.limits.reservation.as_secs() as i64,
            ))
            .await
            .unwrap_or_else(|| Err(StoreError::Batch("server shutting down".into())))?;
        Ingest::to_blob(&state.blobs, &blob_key, hash, limits).await?
    };
    // The reservation's blob is queued for deletion on any failure.
    let forget = |key: &str| {
        let (state, key) = ((*state).clone(), key.to_string());
        async move {
            if !key.is_empty() {
                let _ = state.meta.queue_blob(&key, crate::rules::now()).await;
            }
        }
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                ingest.abort().await;
                forget(&blob_key).await;
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("upload interrupted: {e}"),
                ));
            }
        };
        if let Err(why) = ingest.push(chunk).await {
            forget(&blob_key).await;
            return Err(match why {
                Refused::TooLarge(max) => {
                    drain(&mut stream).await;
                    Failure::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("object larger than the server's limit of {max} bytes"),
                    )
                    .closing()
                }
                Refused::Quota => {
                    drain(&mut stream).await;
                    ctx.quota_refusal(kind, name).await
                }
                Refused::LongerThanDeclared(_) => Failure::new(
                    StatusCode::BAD_REQUEST,
                    "body longer than its Content-Length",
                ),
                Refused::Store(e) => e.into(),
            });
        }
    }
    let size = ingest.received();
    let refusal = if declared.is_some_and(|d| d != size) {
        Some(format!(
            "body has {size} bytes, Content-Length said otherwise"
        ))
    } else if kind != ResticFile::Config && ingest.digest() != name {
        Some("the body's SHA-256 does not match the object name".into())
    } else {
        None
    };
    if let Some(why) = refusal {
        ingest.abort().await;
        forget(&blob_key).await;
        return Err(Failure::new(StatusCode::BAD_REQUEST, why));
    }
    if existing.is_some() {
        return Ok(StatusCode::OK.into_response());
    }
    let data = match ingest.finish().await {
        Ok(received) => received.data,
        Err(e) => {
            forget(&blob_key).await;
            return Err(e.into());
        }
    };
    let put = state
        .0
        .writes
        .submit(ResticWrite::Put(NewResticObject {
            repo_id: repo.id.clone(),
            user_id: ctx.user.id.clone(),
            kind: kind.to_string(),
            name: name.to_string(),
            size: size as i64,
            blob_key: blob_key.clone(),
            data,
            quota: quota.map(|q| q.min(i64::MAX as u64) as i64),
            now: crate::rules::now(),
        }))
        .await
        .unwrap_or_else(|| Err(StoreError::Batch("server shutting down".into())));
    match put {
        Ok(Some(PutOutcome::Stored)) => {
            ctx.metric(kind, "write", size);
            Ok(StatusCode::OK.into_response())
        }
        Ok(_) => {
            crate::rules::gc::kick(state);
            Ok(StatusCode::OK.into_response())
        }
        Err(e) => {
            // A storage that stopped answering may have committed the file before its answer
            // was lost: the blob keeps its reservation (the commit took it back if it landed,
            // the collector deletes it once due if not).
            if !blob_key.is_empty() && !e.is_unavailable() {
                let _ = state.meta.queue_blob(&blob_key, crate::rules::now()).await;
            }
            crate::rules::gc::kick(state);
            match e {
                StoreError::QuotaExceeded => Err(ctx.quota_refusal(kind, name).await),
                StoreError::NotFound => Err(Failure::new(
                    StatusCode::NOT_FOUND,
                    "repository was deleted during the upload",
                )),
                other => Err(other.into()),
            }
        }
    }
}

impl Ctx {
    async fn quota_refusal(&self, kind: ResticFile, name: &str) -> Failure {
        self.state
            .audit(
                &self.user.name,
                Some(&self.user.id),
                "restic.refused",
                &format!("{}/{kind}/{name} token={}", self.repo_name, self.token.id),
                "quota exceeded",
                &self.client,
            )
            .await;
        quota_failure()
    }
}

async fn remove(ctx: &Ctx, kind: ResticFile, name: &str) -> Outcome {
    let target = if kind == ResticFile::Config {
        "config".to_string()
    } else {
        format!("{kind}/{name}")
    };
    match ctx.token.mode {
        TokenMode::ReadOnly => return Err(ctx.refuse_write(&target, "read-only token").await),
        TokenMode::AppendOnly if kind != ResticFile::Locks => {
            return Err(ctx
                .refuse_write(&target, "append-only token deletes only locks")
                .await);
        }
        _ => {}
    }
    let repo = ctx.repo().await?;
    ctx.state.0.objects.forget(&repo.id, kind.as_str(), name);
    if let Some(size) = ctx
        .state
        .meta
        .restic_delete(&repo.id, &ctx.user.id, kind.as_str(), name)
        .await?
    {
        ctx.metric(kind, "delete", size as u64);
        crate::rules::gc::kick(&ctx.state);
    }
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(split("/restic/a/r/"), Some(("a", "r", "")));
        assert_eq!(split("/restic/a/r"), Some(("a", "r", "")));
        assert_eq!(split("/restic/a/r/data/x"), Some(("a", "r", "data/x")));
        let h = "0".repeat(64);
        assert_eq!(target("").unwrap(), Target::Root);
        assert_eq!(target("config").unwrap(), Target::Config);
        assert_eq!(target("keys/").unwrap(), Target::List(ResticFile::Keys));
        assert_eq!(
            target(&format!("data/{h}")).unwrap(),
            Target::Object(ResticFile::Data, &h)
        );
        for bad in ["data", "conf", "../x", "data/../config", "data%2F", "x/"] {
            assert_eq!(
                target(bad).unwrap_err().status,
                StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
        for bad in [
            "data/abc",
            &format!("data/{}", "A".repeat(64)),
            &format!("data/{h}0"),
        ] {
            assert_eq!(
                target(bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert_eq!(
            target(&format!("data/{h}/x")).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }
}
