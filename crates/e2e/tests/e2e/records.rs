//! Records (`/records`): enc-server-go's client shapes from Python over TLS with a token,
//! every bad input, nothing of the plaintext or the keys on disk; `enc record` sealing on
//! the client, its keys and the server's opening records through either path.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::devices::have_python_modules;
use crate::harness::*;
use crate::security::{contains, stored_bytes};

const ENABLED: &str = "[records]\nenabled = true\n";

fn python(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/records_client.py");
    Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("running python3")
}

#[track_caller]
fn python_ok(args: &[&str]) -> String {
    ok_of(python(args))
}

#[track_caller]
fn ok_of(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "records_client.py failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An app opening record `id` with `key` through the server's route.
fn open_via_app(
    server: &Server,
    ca: &str,
    token: &str,
    id: &str,
    key: &str,
) -> std::process::Output {
    python(&[
        "open",
        "--url",
        &server.url,
        "--cafile",
        ca,
        "--token",
        token,
        "--id",
        id,
        "--key",
        key,
    ])
}

fn token(u: &User, mode: &str) -> String {
    u.ok(&["token", "create", "--records", "--mode", mode])
        .trim()
        .to_string()
}

fn cafile(server: &Server, u: &User) -> String {
    let pem = server.admin_cmd(&["cert", "export"]).stdout;
    std::fs::write(u.path("server.pem"), pem).expect("pem");
    u.path("server.pem").display().to_string()
}

#[test]
fn the_go_clients_requests_work_over_tls_with_a_token_and_leave_no_plaintext_or_key() {
    if !have_python_modules(&["requests"]) {
        return;
    }
    let server = Server::start_with(ENABLED, &[]);
    let alice = server.user("alice", "user");
    let ca = cafile(&server, &alice);
    let (full, read_only) = (token(&alice, "full"), token(&alice, "read-only"));
    let marker = format!("RECMARKER{}", rand::random::<u64>());
    let seen = alice.path("seen.json").display().to_string();
    python_ok(&[
        "run",
        "--url",
        &server.url,
        "--cafile",
        &ca,
        "--token",
        &full,
        "--read-only-token",
        &read_only,
        "--marker",
        &marker,
        "--out",
        &seen,
    ]);
    let seen: Value = serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    let keys: Vec<String> = seen["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert!(keys.len() > 1000);

    // Another user, even with the id and the key, finds nothing (as for an unknown id).
    let bob = server.user("bob", "user");
    let left = &seen["left"];
    let (id, key) = (left["id"].as_str().unwrap(), left["key"].as_str().unwrap());
    let out = python(&[
        "open",
        "--url",
        &server.url,
        "--cafile",
        &ca,
        "--token",
        &token(&bob, "full"),
        "--id",
        id,
        "--key",
        key,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("open: 404"));
    // Its owner opens it.
    let opened = ok_of(open_via_app(&server, &ca, &full, id, key));
    assert!(opened.contains(&marker));

    // Nothing of the plaintext or of any key on disk (the WAL and free pages included), nor
    // in the database on PostgreSQL; the audit log names records by id and pseudonym only.
    let stored = stored_bytes(&server);
    // Every key as hex (either case) and as raw bytes, each file scanned once.
    let hexes: std::collections::HashSet<Vec<u8>> = keys
        .iter()
        .map(|k| k.to_ascii_lowercase().into_bytes())
        .collect();
    let raws: std::collections::HashSet<Vec<u8>> =
        keys.iter().map(|k| hex::decode(k).unwrap()).collect();
    for (what, bytes) in &stored {
        assert!(
            !contains(bytes, marker.as_bytes()),
            "{what} holds the marker"
        );
        let lower = bytes.to_ascii_lowercase();
        assert!(
            !lower.windows(64).any(|w| hexes.contains(w)),
            "{what} holds a key (hex)"
        );
        assert!(
            !bytes.windows(32).any(|w| raws.contains(w)),
            "{what} holds a key (raw)"
        );
        assert!(
            !contains(bytes, format!("record {id} of alice").as_bytes()),
            "{what} names the owner of a record"
        );
    }
    let audit = alice.ok(&["audit", "--json"]);
    assert!(
        !audit.contains("record."),
        "records' entries are not in alice's own trail"
    );
}

#[test]
fn enc_record_seals_on_the_client_and_keys_open_records_through_either_path() {
    if !have_python_modules(&["requests"]) {
        return;
    }
    let server = Server::start_with(ENABLED, &[]);
    let alice = server.user("alice", "user");
    let ca = cafile(&server, &alice);
    let tok = token(&alice, "full");
    std::fs::write(alice.path("note.txt"), "sealed here, opened there").unwrap();

    // enc record put: sealed here; the server's route opens it with the same key.
    let line = alice.ok(&["record", "put", "note.txt", "--id", "C0FFEE"]);
    let (id, key) = line.trim().split_once(' ').expect("ID KEY");
    assert_eq!(id, "c0ffee");
    assert_eq!(key.len(), 64);
    let opened = ok_of(open_via_app(&server, &ca, &tok, id, key));
    assert_eq!(opened, "sealed here, opened there");
    alice.ok(&["record", "get", id, "--key", key, "-o", "back.txt"]);
    alice.assert_file("back.txt", "sealed here, opened there");

    // Sealed by the server; enc record opens it (the key from a file, or the environment).
    let key2 = ok_of(python(&[
        "create",
        "--url",
        &server.url,
        "--cafile",
        &ca,
        "--token",
        &tok,
        "--id",
        "0badc0de",
        "--data",
        "from an app",
    ]));
    std::fs::write(alice.path("key2"), key2.trim()).unwrap();
    alice.ok(&[
        "record",
        "get",
        "0badc0de",
        "--key-file",
        "key2",
        "-o",
        "app.txt",
    ]);
    alice.assert_file("app.txt", "from an app");
    let out = alice
        .cmd(&["record", "get", "0badc0de"])
        .env("ENC_RECORD_KEY", key2.trim())
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"from an app");

    // Bad input: a wrong key, an unknown id, a bad id or key, a taken id, a missing key.
    let wrong = "11".repeat(32);
    let e = alice.fail(&["record", "get", id, "--key", &wrong]);
    assert!(e.contains("no record with this id and key"), "{e}");
    let e2 = alice.fail(&["record", "get", "abcdef", "--key", key]);
    assert_eq!(e, e2, "a wrong key and an unknown id answer alike");
    assert!(
        alice
            .fail(&["record", "get", "xyz", "--key", key])
            .contains("hex")
    );
    assert!(
        alice
            .fail(&["record", "get", id, "--key", "abc"])
            .contains("64 hex digits")
    );
    assert!(alice.fail(&["record", "get", id]).contains("key is needed"));
    assert!(
        alice
            .fail(&["record", "put", "note.txt", "--id", "c0ffee"])
            .contains("exists")
    );
    std::fs::write(alice.path("big"), vec![7u8; 65537]).unwrap();
    assert!(alice.fail(&["record", "put", "big"]).contains("limit"));
    assert!(
        alice
            .fail(&["record", "rm", id, "--key", &wrong])
            .contains("no record")
    );

    // rm proves the key; the record is gone through both paths.
    alice.ok(&["record", "rm", id, "--key", key]);
    assert!(
        alice
            .fail(&["record", "get", id, "--key", key])
            .contains("no record")
    );
    let out = open_via_app(&server, &ca, &tok, id, key);
    assert!(String::from_utf8_lossy(&out.stderr).contains("open: 404"));

    // An admin deletes a user's record without its key; others may not.
    let admin = server.user("root", "admin");
    let bob = server.user("bob", "user");
    assert_eq!(
        status(
            &server,
            &token(&bob, "full"),
            "DELETE",
            "/records/0badc0de?user=alice"
        ),
        403
    );
    assert_eq!(
        status(
            &server,
            &token(&admin, "full"),
            "DELETE",
            "/records/0badc0de?user=alice"
        ),
        202
    );
    assert!(
        alice
            .fail(&["record", "get", "0badc0de", "--key-file", "key2"])
            .contains("no record")
    );
}

#[test]
fn the_routes_that_see_plaintext_are_off_by_default_and_enc_record_still_works() {
    if !have_python_modules(&["requests"]) {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "user");
    let ca = cafile(&server, &alice);
    python_ok(&[
        "disabled",
        "--url",
        &server.url,
        "--cafile",
        &ca,
        "--token",
        &token(&alice, "full"),
    ]);
    std::fs::write(alice.path("n"), "still sealed on the client").unwrap();
    let line = alice.ok(&["record", "put", "n"]);
    let (id, key) = line.trim().split_once(' ').unwrap();
    let out = alice.ok(&["record", "get", id, "--key", key]);
    assert_eq!(out, "still sealed on the client");
    // The records' bytes count against the quota and come back on deletion.
    let admin = server.user("root", "admin");
    let before = usage(&admin, "alice");
    assert!(before >= 26, "a record is charged: {before}");
    alice.ok(&["record", "rm", id, "--key", key]);
    assert_eq!(
        usage(&admin, "alice"),
        before - (26 + 29),
        "its bytes come back"
    );
}

fn usage(admin: &User, name: &str) -> u64 {
    let users: Value = serde_json::from_str(&admin.ok(&["user", "ls", "--json"])).unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .and_then(|u| u["usage_bytes"].as_u64())
        .unwrap_or_else(|| panic!("usage of {name} in {users}"))
}

fn status(server: &Server, token: &str, method: &str, path: &str) -> u16 {
    let c = http();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    c.request(m, format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}
