//! Bad input on every `/v1` route and CLI command: a clear refusal, and nothing changes.

use super::*;

/// Acceptance 9: bad names, oversize uploads, malformed JSON, unknown fields, short bodies:
/// each a 4xx (or a one-line CLI error) with a readable message, and nothing stored changes.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let server = Server::start_with(
        "[limits]\nmax_object_size = \"1MiB\"\nbody_read_timeout = \"3s\"\n",
        &["--insecure-http"],
    );
    let alice = User {
        server: server.url.clone(),
        ..User::new(&server, "alice")
    };
    let token = server.invite("alice", "user");
    alice.ok(&["register", "--token", &token]);
    std::fs::write(alice.path("ok.txt"), "fine").unwrap();
    alice.ok(&["object", "push", "ok.txt"]);
    let before_ls = alice.ok(&["object", "ls", "--json"]);
    let before_blobs = server.blobs("blobs").len();

    // Names, refused by the client before anything is sent.
    let long = "x".repeat(4097);
    for bad in [
        "../escape.txt",
        "/etc/passwd",
        "a/../../b",
        "nul\0byte",
        long.as_str(),
    ] {
        let out = alice
            .cmd(&["object", "push", "ok.txt", "--as", bad])
            .output();
        match out {
            Ok(o) => {
                assert!(!o.status.success(), "{bad:?} accepted");
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
                assert!(err.contains("name"), "{err}");
            }
            // The OS refuses NUL in arguments; nothing can be sent either way.
            Err(e) => assert!(bad.contains('\0'), "{e}"),
        }
    }
    // Oversize through the CLI, and through the API with and without Content-Length.
    random_file(&alice.path("big.bin"), 2 << 20);
    let err = alice.fail(&["object", "push", "big.bin"]);
    assert!(err.contains("limit"), "{err}");
    let c = http();
    let at = alice.token();
    let vid = alice.vault_id("default");
    let resp = c
        .put(format!("{}/v1/vaults/{vid}/uploads", server.url))
        .bearer_auth(&at)
        .body(vec![0u8; 2 << 20])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 413);
    let chunks = futures_like_stream(3 << 20);
    let resp = c
        .put(format!("{}/v1/vaults/{vid}/uploads", server.url))
        .bearer_auth(&at)
        .body(reqwest::blocking::Body::new(chunks))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("limit"));
    // Far past the limit the server stops listening; the upload fails either way.
    let flood = futures_like_stream(200 << 20);
    match c
        .put(format!("{}/v1/vaults/{vid}/uploads", server.url))
        .bearer_auth(&at)
        .body(reqwest::blocking::Body::new(flood))
        .send()
    {
        Ok(resp) => assert_eq!(resp.status(), 413),
        Err(e) => assert!(e.is_body() || e.is_request(), "{e}"),
    }

    // Encrypted names on the wire must be base64url: path tricks and NUL are refused.
    let upload: serde_json::Value = c
        .put(format!("{}/v1/vaults/{vid}/uploads", server.url))
        .bearer_auth(&at)
        .body("x")
        .send()
        .unwrap()
        .json()
        .unwrap();
    for bad_name in ["../x", "/abs", "a\u{0}b", &"A".repeat(9000)] {
        let resp = c
            .post(format!("{}/v1/vaults/{vid}/objects", server.url))
            .bearer_auth(&at)
            .json(&serde_json::json!({"upload_id": upload["upload_id"], "enc_name": bad_name, "size": 1, "hash": upload["hash"], "version": 1, "generation": 1, "signature": "AAAA"}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad_name:?}");
        let body: serde_json::Value = resp.json().unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
    }
    // Malformed JSON and unknown fields.
    for (body, needle) in [
        ("{\"user\": ", "invalid JSON"),
        (
            "{\"user\":\"alice\",\"auth_key\":\"AAAA\",\"admin\":true}",
            "unknown field",
        ),
    ] {
        let resp = c
            .post(format!("{}/v1/auth/login", server.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400);
        let v: serde_json::Value = resp.json().unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    // Bodies shorter than their Content-Length: refused, JSON and upload alike.
    let short_json = format!(
        "POST /v1/vaults HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {at}\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{{\"name\":\"v2\"}}"
    );
    let answer = raw_http(server.port, short_json.as_bytes(), true);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let short_upload = format!(
        "PUT /v1/vaults/{vid}/uploads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {at}\r\ncontent-length: 5000\r\n\r\n{}",
        "y".repeat(100)
    );
    let answer = raw_http(server.port, short_upload.as_bytes(), false);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );

    // Nothing stored changed: same listing, same blobs, no new vault.
    assert_eq!(alice.ok(&["object", "ls", "--json"]), before_ls);
    assert!(!alice.ok(&["vault", "ls"]).contains("v2"));
    std::thread::sleep(Duration::from_millis(300));
    let after_blobs = server.blobs("blobs").len();
    // The one uncommitted upload above ("x") is the only addition, and it is not visible.
    assert!(
        after_blobs <= before_blobs + 1,
        "{before_blobs} -> {after_blobs}"
    );
}

/// A reader that yields `len` bytes in 64 KiB pieces (no Content-Length: chunked upload).
fn futures_like_stream(len: usize) -> impl std::io::Read + Send + 'static {
    std::io::repeat(7).take(len as u64)
}
