//! Uploads (reserve a name, stream, make durable, commit; abort on any failure), listing and
//! downloads.

use super::*;

impl Conn {
    /// Checks an upload request, reserves a free name and opens the blob writer.
    pub(super) async fn start_upload(
        &mut self,
        name: &str,
        declared: Option<u64>,
    ) -> Result<String, Stop> {
        let p = self.principal()?;
        if !p.can_upload {
            return Err(Fail::new(
                Code::AuthFailed,
                "Permission denied: this key may not upload",
            )
            .rejecting()
            .into());
        }
        if self.upload.is_some() {
            return Err(Fail::new(Code::InvalidRequest, "an upload is already in progress").into());
        }
        check_name(name).map_err(|m| Fail::new(Code::InvalidRequest, m).rejecting())?;
        let state = self.state.clone();
        let (space, rate_key, max, limit, quota) = (
            p.space.to_string(),
            p.space.allowance(&self.client),
            p.max_file_size,
            p.space_limit,
            p.quota,
        );
        let user_id = p.user.as_ref().map(|u| u.id.clone());
        let who = p.who.clone();
        if let Some(d) = declared
            && d > max
        {
            return Err(Fail::new(
                Code::FileTooLarge,
                format!("File too large: {d} bytes declared, the limit is {max}"),
            )
            .into());
        }
        let space_used = match limit {
            Some(_) => state.meta.mercury_usage(&space).await?.max(0) as u64,
            None => 0,
        };
        let user_used = match (&user_id, quota) {
            (Some(id), Some(_)) => state
                .meta
                .user_by_id(id)
                .await?
                .map_or(0, |u| u.usage_bytes.max(0) as u64),
            _ => 0,
        };
        let incoming = declared.unwrap_or(0);
        if limit.is_some_and(|l| space_used + incoming > l)
            || quota.is_some_and(|q| user_used + incoming > q)
        {
            state
                .audit(
                    &who,
                    user_id.as_deref(),
                    "mercury.refused",
                    name,
                    "quota exceeded",
                    &self.client,
                )
                .await;
            return Err(Fail::new(Code::QuotaExceeded, "Quota exceeded").into());
        }
        let per_hour = self.config().uploads_per_hour;
        // Counted in the database, so replicas share one allowance.
        if !state
            .meta
            .rate_take(
                &format!("mercury.upload:{rate_key}"),
                crate::rules::now(),
                3600,
                i64::from(per_hour),
            )
            .await?
        {
            return Err(Fail::new(
                Code::RateLimited,
                format!("Upload rate limit exceeded ({per_hour} per hour)"),
            )
            .into());
        }
        let now = crate::rules::now();
        let blob_key = format!("mercury/{}", uuid::Uuid::new_v4());
        let reserved = state
            .meta
            .mercury_reserve(MercuryReservation {
                space: space.clone(),
                candidates: candidates(name, now),
                blob_key: blob_key.clone(),
                user_id,
                now,
                until: now + state.config.limits.reservation.as_secs() as i64,
            })
            .await?;
        let Some(accepted) = reserved else {
            return Err(Fail::new(Code::ServerError, "no free name; try again").into());
        };
        let exact = self.config().declared_size == DeclaredSize::Exact;
        let room = |limit: Option<u64>, used: u64| limit.map(|l| l.saturating_sub(used));
        let limits = Limits {
            max,
            room: match (room(limit, space_used), room(quota, user_used)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            declared: declared.filter(|_| exact),
        };
        let ingest = match Ingest::to_blob(&state.blobs, &blob_key, Hash::None, limits).await {
            Ok(i) => i,
            Err(e) => {
                let _ = state.meta.mercury_abort(&space, &accepted).await;
                return Err(e.into());
            }
        };
        self.upload = Some(Upload {
            name: accepted.clone(),
            blob_key,
            ingest,
            declared,
            receiving: false,
        });
        Ok(accepted)
    }

    /// Appends one chunk, enforcing every limit before the bytes are written.
    pub(super) async fn write_chunk(&mut self, data: Bytes) -> Step {
        if data.len() > CHUNK {
            return Err(Fail::new(
                Code::InvalidRequest,
                format!("chunk of {} bytes: the limit is 1 MiB", data.len()),
            )
            .closing()
            .into());
        }
        let Some(u) = self.upload.as_mut() else {
            return Err(Fail::new(Code::InvalidRequest, "No upload in progress").into());
        };
        u.ingest.push(data).await.map_err(|why| {
            let fail = match why {
                Refused::TooLarge(max) => Fail::new(
                    Code::FileTooLarge,
                    format!("File too large: more than {max} bytes; nothing stored"),
                ),
                Refused::LongerThanDeclared(d) => Fail::new(
                    Code::InvalidRequest,
                    format!("more bytes than the {d} declared; nothing stored"),
                ),
                Refused::Quota => Fail::new(Code::QuotaExceeded, "Quota exceeded; nothing stored"),
                Refused::Store(e) => return Fail::from(e).into(),
            };
            fail.closing().into()
        })
    }

    /// Makes the upload durable and visible; returns its size.
    pub(super) async fn finish_upload(&mut self) -> Result<u64, Stop> {
        let exact = self.config().declared_size == DeclaredSize::Exact;
        let Some(u) = self.upload.take() else {
            return Err(Fail::new(Code::InvalidRequest, "No upload in progress").into());
        };
        let p = self.principal()?;
        let (space, who) = (p.space.to_string(), p.who.clone());
        let user = p.user.as_ref().map(|user| {
            (
                user.id.clone(),
                p.quota.map(|q| q.min(i64::MAX as u64) as i64),
            )
        });
        let limit = p.space_limit;
        let state = self.state.clone();
        if exact && u.declared.is_some_and(|d| d != u.ingest.received()) {
            let declared = u.declared.unwrap_or(0);
            let received = u.ingest.received();
            self.upload = Some(u);
            self.abort_upload().await;
            return Err(Fail::new(
                Code::InvalidRequest,
                format!("declared {declared} bytes but received {received}; nothing stored"),
            )
            .into());
        }
        let (name, blob_key) = (u.name.clone(), u.blob_key.clone());
        let size = match u.ingest.finish().await {
            Ok(received) => received.size,
            Err(e) => {
                let _ = state.meta.mercury_abort(&space, &name).await;
                crate::rules::gc::kick(&state);
                return Err(e.into());
            }
        };
        let committed = state
            .meta
            .mercury_commit(MercuryCommit {
                space: space.clone(),
                name: name.clone(),
                blob_key: blob_key.clone(),
                size: size as i64,
                user: user.clone(),
                space_limit: limit.map(|l| l.min(i64::MAX as u64) as i64),
                now: crate::rules::now(),
            })
            .await;
        let user_id = user.map(|u| u.0);
        match committed {
            Ok(()) => {
                state
                    .audit(
                        &who,
                        user_id.as_deref(),
                        "mercury.upload",
                        &name,
                        "ok",
                        &self.client,
                    )
                    .await;
                state
                    .metrics
                    .blob(&who, "mercury", "archive", "write", size);
                Ok(size)
            }
            Err(e) => {
                let _ = state.meta.mercury_abort(&space, &name).await;
                if matches!(e, StoreError::NotFound | StoreError::Conflict(_)) {
                    // Nothing was stored: the reservation ran out while the bytes streamed
                    // (its name expired, its blob perhaps collected before the last bytes
                    // landed). The key is queued again, or what was written since would be
                    // left with nothing to collect it.
                    let _ = state.meta.queue_blob(&blob_key, crate::rules::now()).await;
                }
                crate::rules::gc::kick(&state);
                match e {
                    StoreError::QuotaExceeded => {
                        state
                            .audit(
                                &who,
                                user_id.as_deref(),
                                "mercury.refused",
                                &name,
                                "quota exceeded",
                                &self.client,
                            )
                            .await;
                        Err(Fail::new(Code::QuotaExceeded, "Quota exceeded; nothing stored").into())
                    }
                    other => Err(other.into()),
                }
            }
        }
    }

    /// Drops an unfinished upload: nothing of it stays.
    pub(super) async fn abort_upload(&mut self) {
        let Some(u) = self.upload.take() else {
            return;
        };
        u.ingest.abort().await;
        if let Some(p) = &self.who
            && let Err(e) = self
                .state
                .meta
                .mercury_abort(&p.space.to_string(), &u.name)
                .await
        {
            tracing::warn!(error = %e, "dropping a mercury reservation failed; it expires later");
        }
        crate::rules::gc::kick(&self.state);
    }

    // ---- listing and downloads

    pub(super) async fn list(&mut self) -> Result<Vec<enc_store::MercuryFileRow>, Stop> {
        let p = self.principal()?;
        if !p.can_list {
            return Err(
                Fail::new(Code::AuthFailed, "Permission denied: this key may not list").into(),
            );
        }
        let space = p.space.to_string();
        Ok(self.state.meta.mercury_files(&space).await?)
    }

    /// Streams every byte of an archive in chunks of at most 1 MiB.
    pub(super) async fn download(&mut self, name: &str) -> Step {
        let p = self.principal()?;
        if !p.can_download {
            return Err(Fail::new(
                Code::AuthFailed,
                "Permission denied: this key may not download",
            )
            .into());
        }
        check_name(name).map_err(|m| Fail::new(Code::InvalidRequest, m))?;
        let (space, who) = (p.space.to_string(), p.who.clone());
        let state = self.state.clone();
        let Some(file) = state.meta.mercury_file(&space, name).await? else {
            return Err(Fail::new(Code::FileNotFound, format!("File not found: {name}")).into());
        };
        let size = file.size.max(0) as u64;
        let mut stream = state.blobs.read(&file.blob_key).await.map_err(Fail::from)?;
        let json = self.dialect == Some(Dialect::Json);
        if !json {
            self.send_text("DATA".into()).await?;
        } else if size == 0 {
            return self.send_text(data_chunk_json(&[], true)).await;
        }
        let mut sent = 0u64;
        while let Some(piece) = stream.next().await {
            let mut piece = piece.map_err(Fail::from)?;
            while !piece.is_empty() {
                let chunk = piece.split_to(piece.len().min(CHUNK));
                sent += chunk.len() as u64;
                if sent > size {
                    break;
                }
                if json {
                    self.send_text(data_chunk_json(&chunk, sent == size))
                        .await?;
                } else {
                    self.send(Message::Binary(chunk)).await?;
                }
            }
        }
        if sent != size {
            tracing::error!(name, sent, size, "mercury blob has the wrong size");
            return Err(Fail::new(Code::ServerError, "stored archive is damaged")
                .closing()
                .into());
        }
        state.metrics.blob(&who, "mercury", "archive", "read", size);
        if !json {
            self.send_text("END".into()).await?;
        }
        Ok(())
    }
}
