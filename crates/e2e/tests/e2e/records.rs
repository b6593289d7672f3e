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
    let (st, opened) = app(
        &server,
        &full,
        "GET",
        &format!("/records/{id}?key={key}"),
        None,
    );
    assert_eq!(st, 200);
    assert!(opened["data"].as_str().unwrap().contains(&marker));

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
    }
    // The audit log has an entry per record call, naming the record and its pseudonym,
    // never the user (nor the client address, which other entries of hers carry), and its
    // chain still verifies.
    let admin = server.user("root", "admin");
    let all: Value = serde_json::from_str(&admin.ok(&["audit", "--all", "--json"])).unwrap();
    let records: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("record."))
        })
        .collect();
    assert!(records.len() > 2000, "{} records entries", records.len());
    let alice_id = server.operator_sql("SELECT id FROM users WHERE name = 'alice'");
    for e in &records {
        let text = e.to_string();
        assert!(
            !text.contains("alice") && !text.contains(&alice_id),
            "a records entry names its user: {text}"
        );
        assert_eq!(e["client"], "", "{text}");
    }
    assert!(records.iter().any(|e| {
        e["target"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("record {id} of ")))
    }));
    admin.ok(&["audit", "--all", "--verify"]);
}

/// An app calling the server's routes with a token (reqwest, over TLS): status and body.
fn app(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = http()
        .request(m, format!("{}{path}", server.url))
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn enc_record_seals_on_the_client_and_keys_open_records_through_either_path() {
    // A role "viewer" without WriteVaults, besides the built-in ones.
    let policy = tempfile::tempdir().unwrap();
    let file = policy.path().join("policy.toml");
    std::fs::write(
        &file,
        "[roles.admin]\npermissions = [\"manage_users\", \"read_all_audit\", \"write_vaults\", \
         \"share_vaults\"]\n[roles.user]\npermissions = [\"write_vaults\", \"share_vaults\"]\n\
         [roles.viewer]\npermissions = []\n",
    )
    .unwrap();
    let config = format!("policy_file = \"{}\"\n{ENABLED}", file.display());
    let server = Server::start_with(&config, &[]);
    let alice = server.user("alice", "user");
    let tok = token(&alice, "full");
    std::fs::write(alice.path("note.txt"), "sealed here, opened there").unwrap();

    // enc record put: sealed here; the server's route opens it with the same key.
    let line = alice.ok(&["record", "put", "note.txt", "--id", "C0FFEE"]);
    let (id, key) = line.trim().split_once(' ').expect("ID KEY");
    assert_eq!(id, "c0ffee");
    assert_eq!(key.len(), 64);
    let (st, opened) = app(
        &server,
        &tok,
        "GET",
        &format!("/records/{id}?key={key}"),
        None,
    );
    assert_eq!(st, 200, "{opened}");
    assert_eq!(opened["data"], "sealed here, opened there");
    alice.ok(&["record", "get", id, "--key", key, "-o", "back.txt"]);
    alice.assert_file("back.txt", "sealed here, opened there");

    // Sealed by the server; enc record opens it (the key from a file, or the environment).
    let body = serde_json::json!({ "id": "0badc0de", "data": hex::encode("from an app") });
    let (st, made) = app(&server, &tok, "POST", "/records", Some(body));
    assert_eq!(st, 201, "{made}");
    let key2 = made["key"].as_str().unwrap().to_string();
    std::fs::write(alice.path("key2"), &key2).unwrap();
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
        .env("ENC_RECORD_KEY", &key2)
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
    let (st, _) = app(
        &server,
        &tok,
        "GET",
        &format!("/records/{id}?key={key}"),
        None,
    );
    assert_eq!(st, 404);

    // An admin deletes a user's record without its key, from a login session only: not
    // with an app's token (even the admin's), and not as another user.
    let admin = server.user("root", "admin");
    let bob = server.user("bob", "user");
    let path = "/records/0badc0de?user=alice";
    assert_eq!(
        app(&server, &token(&bob, "full"), "DELETE", path, None).0,
        403
    );
    assert_eq!(app(&server, &bob.token(), "DELETE", path, None).0, 403);
    assert_eq!(
        app(&server, &token(&admin, "full"), "DELETE", path, None).0,
        403
    );
    assert_eq!(app(&server, &admin.token(), "DELETE", path, None).0, 202);
    assert!(
        alice
            .fail(&["record", "get", "0badc0de", "--key-file", "key2"])
            .contains("no record")
    );

    // A role without WriteVaults stores nothing.
    let guest = server.user("guest", "viewer");
    let body = serde_json::json!({ "id": "01", "data": "00" });
    assert_eq!(
        app(&server, &guest.token(), "POST", "/records", Some(body)).0,
        403
    );

    // Removing a user removes their records (kept under a pseudonym the store cannot tie to
    // them, nothing else would).
    std::fs::write(bob.path("b"), "bob's").unwrap();
    bob.ok(&["record", "put", "b"]);
    let count = || server.operator_sql("SELECT COUNT(*) FROM records");
    assert_eq!(count(), "1");
    admin.ok(&["user", "rm", "bob", "--yes"]);
    assert_eq!(count(), "0");
}

#[test]
fn the_routes_that_see_plaintext_are_off_by_default_and_enc_record_still_works() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let tok = token(&alice, "full");
    let body = serde_json::json!({ "id": "0a", "key": "", "data": "00" });
    let (st, e) = app(&server, &tok, "POST", "/records", Some(body));
    assert_eq!(st, 403, "{e}");
    assert!(e.to_string().contains("enc record"), "{e}");
    let (st, _) = app(
        &server,
        &tok,
        "GET",
        &format!("/records/0a?key={}", "00".repeat(32)),
        None,
    );
    assert_eq!(st, 403);
    std::fs::write(alice.path("n"), "still sealed on the client").unwrap();
    let line = alice.ok(&["record", "put", "n"]);
    let (id, key) = line.trim().split_once(' ').unwrap();
    let out = alice.ok(&["record", "get", id, "--key", key]);
    assert_eq!(out, "still sealed on the client");
    // The records' bytes count against the quota and come back on deletion.
    let admin = server.user("root", "admin");
    let before = usage(&admin, "alice");
    assert!(before >= 26 + 29, "a record is charged: {before}");
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
