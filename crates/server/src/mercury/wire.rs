//! Mercury's wire formats: the two dialects, the JSON messages both ways, Hecate's error
//! codes, archive names and the names tried when one is taken. No I/O.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

// ------------------------------------------------------------------------------------------
// Wire shapes.

/// Which dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Text,
    Json,
}

/// Hecate's error codes, spelled as its client's serde enum expects.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) enum Code {
    AuthRequired,
    AuthFailed,
    InvalidRequest,
    FileNotFound,
    FileTooLarge,
    QuotaExceeded,
    RateLimited,
    ServerError,
}

/// A JSON message from the server (`DataChunk` is written by [`data_chunk_json`]).
#[derive(Serialize)]
#[serde(tag = "type")]
pub(super) enum Out {
    AuthResult {
        success: bool,
        message: Option<String>,
        user_id: Option<String>,
    },
    UploadAccepted {
        name: String,
    },
    UploadRejected {
        reason: String,
    },
    ChunkReceived {
        bytes_received: u64,
    },
    UploadComplete {
        total_bytes: u64,
    },
    FileList {
        files: Vec<FileInfo>,
    },
    Error {
        code: Code,
        message: String,
    },
    Pong,
}

#[derive(Serialize)]
pub(super) struct FileInfo {
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) created: String,
}

/// A JSON message from the client, read without buffering `data` twice: fields of every
/// message type are optional here and checked per type.
#[derive(Deserialize)]
pub(super) struct In<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: std::borrow::Cow<'a, str>,
    pub(super) key: Option<String>,
    pub(super) name: Option<String>,
    pub(super) size: Option<u64>,
    #[serde(borrow)]
    pub(super) data: Option<&'a serde_json::value::RawValue>,
    pub(super) is_final: Option<bool>,
}

/// Bytes of a JSON `data` field: an array of numbers 0–255 (serde's `Vec<u8>`), or a base64
/// string.
pub(super) fn parse_bytes(raw: &str) -> Result<Vec<u8>, String> {
    let raw = raw.trim();
    if let Some(s) = raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("data: invalid base64 ({e})"));
    }
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("data must be an array of bytes (numbers 0-255)")?;
    let bad = || "data must be an array of bytes (numbers 0-255)".to_string();
    let mut out = Vec::with_capacity(inner.len() / 3 + 1);
    let (mut cur, mut digits, mut ended) = (0u32, 0u32, false);
    for &c in inner.as_bytes() {
        match c {
            b'0'..=b'9' if !ended => {
                cur = cur * 10 + u32::from(c - b'0');
                digits += 1;
                if cur > 255 || digits > 3 {
                    return Err(bad());
                }
            }
            b',' if digits > 0 => {
                out.push(cur as u8);
                (cur, digits, ended) = (0, 0, false);
            }
            b' ' | b'\t' | b'\n' | b'\r' => ended = digits > 0,
            _ => return Err(bad()),
        }
    }
    if digits > 0 {
        out.push(cur as u8);
    } else if !out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// `{"type":"DataChunk","data":[…],"is_final":…}` written directly (serde would go through
/// a number formatter per byte).
pub(super) fn data_chunk_json(data: &[u8], is_final: bool) -> String {
    let mut out = String::with_capacity(data.len() * 4 + 64);
    out.push_str(r#"{"type":"DataChunk","data":["#);
    for (i, &b) in data.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if b >= 100 {
            out.push(char::from(b'0' + b / 100));
        }
        if b >= 10 {
            out.push(char::from(b'0' + b / 10 % 10));
        }
        out.push(char::from(b'0' + b % 10));
    }
    out.push_str(if is_final {
        r#"],"is_final":true}"#
    } else {
        r#"],"is_final":false}"#
    });
    out
}

/// Checks an archive name: 1–255 bytes, no `/`, `\`, `..` or control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("invalid filename: 1 to 255 bytes".into());
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err("invalid filename: no '/', '\\' or '..'".into());
    }
    if name.chars().any(char::is_control) {
        return Err("invalid filename: no control characters".into());
    }
    Ok(())
}

/// Names to try for an upload of `name`: itself, `<base>-<unix-time>.<ext>`,
/// `<base>-<uuid>.<ext>` (the base shortened if the result would pass 255 bytes).
pub(super) fn candidates(name: &str, now: i64) -> Vec<String> {
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let with = |suffix: String| {
        // An extension too long to keep beside the suffix is shortened as part of the name
        // (else the name would pass 255 bytes, and no request could name it again).
        let (base, ext) = if suffix.len() + ext.len() > 255 {
            (name, "")
        } else {
            (base, ext)
        };
        let room = 255usize.saturating_sub(suffix.len() + ext.len());
        let mut b = base;
        while b.len() > room {
            let mut cut = room.min(b.len() - 1);
            while !b.is_char_boundary(cut) {
                cut -= 1;
            }
            b = &b[..cut];
        }
        format!("{b}{suffix}{ext}")
    };
    vec![
        name.to_string(),
        with(format!("-{now}")),
        with(format!("-{}", uuid::Uuid::new_v4())),
    ]
}

/// A command of the text dialect.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command<'a> {
    Ping,
    Auth(&'a str),
    Name(&'a str),
    Data,
    End,
    List,
    Get(&'a str),
}

/// Parses one frame of the text dialect: a verb, and an argument after the first space for
/// those that take one. `Err` with the verb as a refusal may show it (32 characters at most).
pub(super) fn command(line: &str) -> Result<Command<'_>, String> {
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, Some(a)),
        None => (line, None),
    };
    Ok(match (verb, arg) {
        ("PING", None) => Command::Ping,
        ("AUTH", Some(key)) => Command::Auth(key),
        ("NAME", Some(name)) => Command::Name(name),
        ("DATA", None) => Command::Data,
        ("END", None) => Command::End,
        ("LIST", None) => Command::List,
        ("GET", Some(name)) => Command::Get(name),
        _ => return Err(verb.chars().take(32).collect()),
    })
}

pub(super) fn detect(first: &str) -> Dialect {
    if first.trim_start().starts_with('{') {
        Dialect::Json
    } else {
        Dialect::Text
    }
}

/// One frame of either dialect on arbitrary input (`fuzzing`), through the parsers the
/// connection uses, with what must hold: `parse_bytes` agrees with serde on every array serde
/// reads, and every name an accepted name may be stored under is itself acceptable.
pub(crate) fn parse_for_fuzzing(frame: &str) {
    match detect(frame) {
        Dialect::Text => {
            if let Ok(Command::Name(name) | Command::Get(name)) =
                command(frame.trim_end_matches(['\r', '\n']))
            {
                stored_names(name);
            }
        }
        Dialect::Json => {
            let Ok(msg) = serde_json::from_str::<In<'_>>(frame) else {
                return;
            };
            if let Some(raw) = msg.data {
                let ours = parse_bytes(raw.get());
                if let Ok(theirs) = serde_json::from_str::<Vec<u8>>(raw.get()) {
                    assert_eq!(ours.as_ref().ok(), Some(&theirs), "data {}", raw.get());
                }
            }
            if let Some(name) = &msg.name {
                stored_names(name);
            }
        }
    }
}

fn stored_names(name: &str) {
    if check_name(name).is_ok() {
        for c in candidates(name, 1_700_000_000) {
            assert!(check_name(&c).is_ok(), "{name:?} may be stored as {c:?}");
        }
    }
}
