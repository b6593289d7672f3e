//! Dispatch of a connection's frames: the text dialect's commands and the JSON dialect's
//! messages, each answered in its dialect.

use super::*;

impl Conn {
    pub(super) async fn on_text(&mut self, text: &str) -> Step {
        let dialect = *self.dialect.get_or_insert_with(|| detect(text));
        match dialect {
            Dialect::Text => self.on_command(text.trim_end_matches(['\r', '\n'])).await,
            Dialect::Json => self.on_json(text).await,
        }
    }

    pub(super) async fn on_binary(&mut self, data: Bytes) -> Step {
        let dialect = *self.dialect.get_or_insert(Dialect::Text);
        if dialect == Dialect::Json {
            return Err(Fail::new(
                Code::InvalidRequest,
                "binary frames are not part of the JSON dialect; send DataChunk messages",
            )
            .into());
        }
        let receiving = self.upload.as_ref().map(|u| u.receiving);
        match receiving {
            Some(true) => self.write_chunk(data).await,
            Some(false) => Err(Fail::new(
                Code::InvalidRequest,
                "binary frame before DATA; send DATA first",
            )
            .into()),
            None => Err(Fail::new(
                Code::InvalidRequest,
                "binary frame before DATA: no upload in progress (send NAME, then DATA)",
            )
            .into()),
        }
    }

    pub(super) fn principal(&self) -> Result<&Principal, Fail> {
        self.who
            .as_ref()
            .ok_or_else(|| Fail::new(Code::AuthRequired, "Authentication required"))
    }

    /// Text dialect.
    pub(super) async fn on_command(&mut self, line: &str) -> Step {
        match command(line) {
            Ok(Command::Ping) => self.send_text("PONG".into()).await,
            Ok(Command::Auth(key)) => {
                let key = key.to_string();
                self.authenticate(&key).await?;
                self.send_text("OK".into()).await
            }
            Ok(Command::Name(name)) => {
                let accepted = self.start_upload(name, None).await?;
                self.send_text(format!("ACCEPT {accepted}")).await
            }
            Ok(Command::Data) => {
                self.principal()?;
                match &mut self.upload {
                    Some(u) if !u.receiving => {
                        u.receiving = true;
                        Ok(())
                    }
                    Some(_) => Err(Fail::new(Code::InvalidRequest, "DATA was already sent").into()),
                    None => Err(Fail::new(
                        Code::InvalidRequest,
                        "No active upload: send NAME first",
                    )
                    .into()),
                }
            }
            Ok(Command::End) => {
                self.principal()?;
                let receiving = self.upload.as_ref().is_some_and(|u| u.receiving);
                match receiving {
                    true => {
                        let total = self.finish_upload().await?;
                        self.send_text(format!("OK {total}")).await
                    }
                    false => Err(Fail::new(
                        Code::InvalidRequest,
                        "No active upload: send NAME and DATA first",
                    )
                    .into()),
                }
            }
            Ok(Command::List) => {
                let names: Vec<String> = self.list().await?.into_iter().map(|f| f.name).collect();
                for n in names {
                    self.send_text(n).await?;
                }
                self.send_text("END".into()).await
            }
            Ok(Command::Get(name)) => {
                let name = name.to_string();
                self.download(&name).await
            }
            Err(shown) => Err(Fail::new(
                Code::InvalidRequest,
                format!(
                    "Invalid command {shown:?}: commands are AUTH, NAME, DATA, END, LIST, GET, PING"
                ),
            )
            .into()),
        }
    }

    /// JSON dialect.
    pub(super) async fn on_json(&mut self, text: &str) -> Step {
        let msg: In<'_> = serde_json::from_str(text)
            .map_err(|e| Fail::new(Code::InvalidRequest, format!("Invalid message format: {e}")))?;
        let missing =
            |field: &str| Fail::new(Code::InvalidRequest, format!("{} needs {field}", msg.kind));
        match msg.kind.as_ref() {
            "Ping" => self.send_json(&Out::Pong).await,
            "Auth" => {
                let key = msg.key.clone().ok_or_else(|| missing("key"))?;
                let who = self.authenticate(&key).await?;
                self.send_json(&Out::AuthResult {
                    success: true,
                    message: Some(format!("authenticated as {who}")),
                    user_id: Some(who),
                })
                .await
            }
            "UploadRequest" => {
                let name = msg.name.as_deref().ok_or_else(|| missing("name"))?;
                let size = msg.size.ok_or_else(|| missing("size"))?;
                let accepted = self.start_upload(name, Some(size)).await?;
                self.send_json(&Out::UploadAccepted { name: accepted })
                    .await
            }
            "DataChunk" => {
                self.principal()?;
                let raw = msg.data.ok_or_else(|| missing("data"))?;
                let is_final = msg.is_final.ok_or_else(|| missing("is_final"))?;
                if self.upload.is_none() {
                    return Err(Fail::new(
                        Code::InvalidRequest,
                        "No upload in progress: send UploadRequest first",
                    )
                    .into());
                }
                let data = parse_bytes(raw.get())
                    .map_err(|m| Fail::new(Code::InvalidRequest, m).closing())?;
                let empty = data.is_empty();
                if !empty {
                    self.write_chunk(Bytes::from(data)).await?;
                }
                let received = self.upload.as_ref().map_or(0, |u| u.ingest.received());
                // Hecate's client reads ChunkReceived after every chunk with data, and only
                // UploadComplete after an empty final one.
                if !empty || !is_final {
                    self.send_json(&Out::ChunkReceived {
                        bytes_received: received,
                    })
                    .await?;
                }
                if is_final {
                    let total = self.finish_upload().await?;
                    self.send_json(&Out::UploadComplete { total_bytes: total })
                        .await?;
                }
                Ok(())
            }
            "ListRequest" => {
                let files = self
                    .list()
                    .await?
                    .into_iter()
                    .map(|f| FileInfo {
                        name: f.name,
                        size: f.size.max(0) as u64,
                        created: humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + Duration::from_secs(f.created.max(0) as u64),
                        )
                        .to_string(),
                    })
                    .collect();
                self.send_json(&Out::FileList { files }).await
            }
            "GetRequest" => {
                let name = msg.name.clone().ok_or_else(|| missing("name"))?;
                self.download(&name).await
            }
            other => {
                let shown: String = other.chars().take(32).collect();
                Err(Fail::new(
                    Code::InvalidRequest,
                    format!(
                        "unsupported message type {shown:?}: types are Auth, UploadRequest, DataChunk, ListRequest, GetRequest, Ping"
                    ),
                )
                .into())
            }
        }
    }
}
