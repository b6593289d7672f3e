//! Entry points of the fuzz targets in `fuzz/` (not an API): each hands arbitrary input to
//! the parsers that network input reaches, as the server does, and checks what must hold of
//! the answer. A panic, an assertion's included, is a finding.

use axum::extract::{FromRequest as _, FromRequestParts as _, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse as _;
use enc_proto::*;
use serde::de::DeserializeOwned;

use crate::http::json::{ApiJson, ApiQuery};

/// restic's REST routes: the path (`/restic/USER/REPO/…`), the `Authorization` and `Range`
/// headers (when they are valid header values), an object of `size` bytes.
pub fn restic_request(path: &str, authorization: &[u8], range: &[u8], size: u64) {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (header::AUTHORIZATION, authorization),
        (header::RANGE, range),
    ] {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    crate::restic::parse_for_fuzzing(path, &headers, size);
}

/// One Mercury frame, of either dialect.
pub fn mercury_frame(frame: &str) {
    crate::mercury::parse_for_fuzzing(frame);
}

/// A `/v1` (or `/records`) request body or query string through the extractor the handlers
/// use; `kind` picks the type. A refusal must be a 4xx.
pub fn v1_request(kind: u8, input: &[u8]) {
    type Check = fn(&[u8]);
    let checks: &[Check] = &[
        body::<AccountKeysRequest>,
        body::<AddDeviceRequest>,
        body::<AddMemberRequest>,
        body::<AddSshKeyRequest>,
        body::<ChangePassphraseRequest>,
        body::<CommitRequest>,
        body::<CreateTokenRequest>,
        body::<CreateUserRequest>,
        body::<CreateVaultRequest>,
        body::<EraseMeRequest>,
        body::<LoginRequest>,
        body::<crate::v1::records::NewRecord>,
        body::<crate::v1::records::batch::NewRecords>,
        body::<PreloginRequest>,
        body::<ReadRequest>,
        body::<crate::v1::records::batch::RecordRefs>,
        body::<RegisterRequest>,
        body::<RenameDeviceRequest>,
        body::<RevokeDeviceRequest>,
        body::<crate::v1::records::SealedRecord>,
        body::<SetQuotaRequest>,
        body::<SetRoleRequest>,
        body::<SshChallengeRequest>,
        body::<SshLoginRequest>,
        body::<TreeCommitRequest>,
        body::<UnshareRequest>,
        query::<crate::v1::audit::AuditQuery>,
        query::<crate::v1::trees::CommitsQuery>,
        query::<crate::v1::records::KeyQuery>,
        query::<ListBackupsParams>,
        query::<PutBackupParams>,
        query::<RemoveUserQuery>,
        query::<TombstoneParams>,
    ];
    checks[usize::from(kind) % checks.len()](input);
}

fn body<T: DeserializeOwned>(input: &[u8]) {
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(input.to_vec()))
        .expect("a request");
    if let Err(e) = futures::executor::block_on(ApiJson::<T>::from_request(req, &())) {
        let status = e.into_response().status();
        assert!(status.is_client_error(), "a body refused with {status}");
    }
}

fn query<T: DeserializeOwned>(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(req) = Request::builder().uri(format!("/?{text}")).body(()) else {
        return;
    };
    let (mut parts, ()) = req.into_parts();
    if let Err(e) = futures::executor::block_on(ApiQuery::<T>::from_request_parts(&mut parts, &()))
    {
        let status = e.into_response().status();
        assert!(status.is_client_error(), "a query refused with {status}");
    }
}

/// The configuration file: parsed as `enc-server --config` parses it, and checked as
/// `--validate` checks it when it parses.
pub fn config(text: &str) {
    if let Ok(config) = toml::from_str::<crate::config::Config>(text) {
        let _ = config.check();
    }
}
