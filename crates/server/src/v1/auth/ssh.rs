//! SSH-key login: registering Ed25519 keys (each carrying the account keys wrapped under a key
//! derived from it) and the challenge–signature exchange that opens a session.

use super::*;

/// `POST /v1/auth/ssh/challenge`: a random challenge for an SSH-key login.
#[utoipa::path(post, path = "/v1/auth/ssh/challenge", request_body = SshChallengeRequest,
    responses((status = 200, body = SshChallengeResponse)), tag = "auth")]
pub async fn ssh_challenge(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<SshChallengeRequest>,
) -> ApiResult<Json<SshChallengeResponse>> {
    validate_user_name(&req.user)?;
    check_throttle(&*state.meta, &[client_key(&client)]).await?;
    let mut challenge = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut challenge);
    let id = uuid::Uuid::new_v4().to_string();
    let user = state.meta.user_by_name(&req.user).await?;
    state
        .meta
        .put_challenge(
            &id,
            &claimed(&state, &req.user, user.as_ref()),
            &challenge,
            now() + 120,
        )
        .await?;
    Ok(Json(SshChallengeResponse {
        id,
        challenge: enc_crypto::b64(&challenge),
    }))
}

/// The SSH signature namespace of login challenges.
pub const SSH_NAMESPACE: &str = "enc-login";

/// `POST /v1/auth/ssh/login`: the challenge signed by a registered Ed25519 SSH key.
#[utoipa::path(post, path = "/v1/auth/ssh/login", request_body = SshLoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)), tag = "auth")]
pub async fn ssh_login(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SshLoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let device = Device::of(&headers, req.device.as_deref());
    if validate_user_name(&req.user).is_err() {
        record_failure(&*state.meta, &[client_key(&client)]).await?;
        return Err(ApiError::BadCredentials);
    }
    // A signature cannot be guessed: an SSH login is gated on this account from this address
    // and on the address, never on failures against the account from elsewhere.
    let user = state.meta.user_by_name(&req.user).await?;
    let who = claimed(&state, &req.user, user.as_ref());
    let keys = vec![pair_key(&who, &client), client_key(&client)];
    attempt(&state, &keys, &who, user.as_ref(), &client).await?;
    let challenge = state
        .meta
        .take_challenge(&req.id, &who, now())
        .await?
        .map(|c| enc_crypto::ssh_login_message(&state.tls_fingerprint, &req.user, &req.id, &c));
    let sig = ssh_key::SshSig::from_pem(req.signature.as_bytes()).ok();
    let mut matched = None;
    if let (Some(challenge), Some(user), Some(sig)) = (&challenge, &user, &sig) {
        for k in state.meta.ssh_keys(&user.id).await? {
            if let Ok(pk) = ssh_key::PublicKey::from_openssh(&k.public_key)
                && pk.verify(SSH_NAMESPACE, challenge, sig).is_ok()
            {
                matched = Some(k);
                break;
            }
        }
    }
    match (user, matched) {
        (Some(user), Some(key)) if user.state == "active" => {
            succeeded(&*state.meta, &keys, &who, &client).await?;
            state
                .audit(
                    &user.name,
                    Some(&user.id),
                    "login.ssh",
                    &key.fingerprint,
                    "ok",
                    &client,
                )
                .await;
            Ok(Json(
                new_session(&state, &user, "ssh", key.wrapped_keys, device).await?,
            ))
        }
        (user, _) => {
            failed(&*state.meta, &keys, &who).await?;
            let id = user.as_ref().map(|u| u.id.as_str());
            state
                .audit(
                    audited(&who),
                    id,
                    "login.ssh.failure",
                    audited(&who),
                    "failed",
                    &client,
                )
                .await;
            Err(ApiError::BadCredentials)
        }
    }
}

/// `POST /v1/ssh-keys`: registers an Ed25519 SSH public key for login.
#[utoipa::path(post, path = "/v1/ssh-keys", request_body = AddSshKeyRequest,
    responses((status = 200, body = SshKeyInfo), (status = 400, body = ErrorBody)), tag = "auth")]
pub async fn add_ssh_key(
    State(state): State<AppState>,
    s: Session,
    ApiJson(req): ApiJson<AddSshKeyRequest>,
) -> ApiResult<Json<SshKeyInfo>> {
    let pk = ssh_key::PublicKey::from_openssh(req.public_key.trim())
        .map_err(|_| ApiError::BadRequest("not an OpenSSH public key line".into()))?;
    if pk.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(ApiError::BadRequest(
            "only ssh-ed25519 keys are supported".into(),
        ));
    }
    if let Some(w) = &req.wrapped_keys
        && (enc_crypto::unb64(w).is_err() || w.len() > 64 * 1024)
    {
        return Err(ApiError::BadRequest(
            "wrapped_keys must be base64, at most 64 KiB".into(),
        ));
    }
    let fingerprint = pk.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    let row = SshKeyRow {
        user_id: s.user.id.clone(),
        fingerprint: fingerprint.clone(),
        public_key: pk
            .to_openssh()
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        comment: pk.comment().to_string(),
        wrapped_keys: req.wrapped_keys,
        created: now(),
    };
    state.meta.add_ssh_key(row.clone()).await?;
    state
        .audit(
            &s.user.name,
            Some(&s.user.id),
            "ssh_key.add",
            &fingerprint,
            "ok",
            &s.client,
        )
        .await;
    Ok(Json(SshKeyInfo {
        fingerprint,
        comment: row.comment,
        created: row.created,
    }))
}

/// `GET /v1/ssh-keys`.
#[utoipa::path(get, path = "/v1/ssh-keys", responses((status = 200, body = Vec<SshKeyInfo>)), tag = "auth")]
pub async fn list_ssh_keys(
    State(state): State<AppState>,
    s: Session,
) -> ApiResult<Json<Vec<SshKeyInfo>>> {
    Ok(Json(
        state
            .meta
            .ssh_keys(&s.user.id)
            .await?
            .into_iter()
            .map(|k| SshKeyInfo {
                fingerprint: k.fingerprint,
                comment: k.comment,
                created: k.created,
            })
            .collect(),
    ))
}
