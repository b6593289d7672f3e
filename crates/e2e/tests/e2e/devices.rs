//! Devices and device backups (issue 16): every login certifies a device key with the
//! account key; revoking a device ends its sessions and tokens at the next request; backups
//! are signed by their device in a chain the server cannot reorder, relabel or replay; an
//! app drives the API from Python with only the OpenAPI document and a key it registered.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn devices(u: &User) -> Vec<Value> {
    json(&u.ok(&["device", "ls", "--json"]))
        .as_array()
        .expect("array")
        .clone()
}

/// `GET /restic/USER/REPO/config` with a token: the status.
fn restic_status(server: &Server, user: &str, token: &str) -> u16 {
    http()
        .get(format!("{}/restic/{user}/r/config", server.url))
        .basic_auth(user, Some(token))
        .send()
        .expect("restic request")
        .status()
        .as_u16()
}

#[test]
fn devices_are_certified_renamed_and_revoked_at_once() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let listed = devices(&alice);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["current"], true);
    let laptop = listed[0]["id"].as_str().expect("id").to_string();

    // A second login is a second device, certified by the same account key.
    let phone = User::new(&server, "alice");
    phone.ok(&["login"]);
    let listed = devices(&phone);
    assert_eq!(listed.len(), 2);
    let phone_id = listed
        .iter()
        .find(|d| d["current"] == true)
        .and_then(|d| d["id"].as_str())
        .expect("current device")
        .to_string();
    assert_ne!(phone_id, laptop);
    alice.ok(&["device", "rename", &phone_id, "phone"]);
    let table = alice.ok(&["device", "ls"]);
    assert!(
        table.contains("phone") && table.contains("SHA256:"),
        "{table}"
    );

    // The phone's session and the restic token it made belong to it.
    let token = phone
        .ok(&["token", "create", "--restic", "r"])
        .trim()
        .to_string();
    assert_ne!(restic_status(&server, "alice", &token), 401);
    phone.ok(&["backup", "put", "-", "--class", "Internal"]);

    let said =
        String::from_utf8_lossy(&alice.run(&["device", "revoke", "phone"]).stderr).into_owned();
    assert!(said.contains("1 session(s) and 1 token(s) ended"), "{said}");
    // At once, on the next request: the session, the token, and the device's signatures.
    let refused = phone.fail(&["backup", "ls"]);
    assert!(
        refused.contains("enc login"),
        "a revoked device's session should be gone: {refused}"
    );
    assert_eq!(restic_status(&server, "alice", &token), 401);
    let listed = devices(&alice);
    let revoked = listed
        .iter()
        .find(|d| d["id"] == phone_id.as_str())
        .expect("kept");
    assert_eq!(revoked["revoked_seq"], 3, "{revoked:?}");
    assert_eq!(revoked["sessions"].as_array().map(Vec::len), Some(0));
    // A server holding the revoked phone's stolen key cannot add to its chain: the
    // revocation signed where the chain ends, whatever position the server claims.
    let stolen: Value =
        json(&std::fs::read_to_string(phone.path("config/session.json")).expect("phone's session"));
    let key = enc_crypto::device::DeviceKey::from_secret_b64(
        stolen["device_key"].as_str().expect("device key"),
    )
    .expect("key");
    let me: Value = http()
        .get(format!("{}/v1/me", server.url))
        .bearer_auth(alice.token())
        .send()
        .expect("me")
        .json()
        .expect("json");
    let (user_id, server_id) = (
        me["user_id"].as_str().expect("user id"),
        me["server_id"].as_str().expect("server id"),
    );
    let first = server.operator_sql(&format!(
        "SELECT id FROM backups WHERE device_id = '{phone_id}' AND counter = 1"
    ));
    let forged = enc_crypto::device::Entry {
        user_id,
        server_id,
        device_id: &phone_id,
        kind: enc_crypto::device::EntryKind::Backup,
        counter: 2,
        prev: first.trim(),
        classification: "Restricted",
        size: 0,
        content_hash: &sha256_hex(b""),
        target: "",
        created: 1,
    };
    let forged_id = forged.hash();
    server.operator_sql(&format!(
        "INSERT INTO backups (user_id, id, seq, device_id, kind, counter, prev, classification, \
         size, content_hash, target, created, signature, received, chain_seq) VALUES \
         ('{user_id}', '{forged_id}', 99, '{phone_id}', 'backup', 2, '{}', 'Restricted', 0, \
         '{}', '', 1, '{}', 1, 2)",
        first.trim(),
        sha256_hex(b""),
        key.sign_b64(&forged.message())
    ));
    let caught = alice.fail(&["backup", "get", &forged_id, "-o", "forged"]);
    assert!(caught.contains("after its revocation"), "{caught}");
    server.operator_sql(&format!("DELETE FROM backups WHERE id = '{forged_id}'"));

    // Revoking it again says so; what it signed before stays readable.
    let again = alice.fail(&["device", "revoke", &phone_id]);
    assert!(again.contains("revoked already"), "{again}");
    let backups = json(&alice.ok(&["backup", "ls", "--json"]));
    let id = backups[0]["id"].as_str().expect("id").to_string();
    alice.ok(&["backup", "get", &id, "-o", "before-revocation"]);

    // Logging in again makes a new device; the old one stays revoked.
    phone.ok(&["login"]);
    assert_eq!(devices(&phone).len(), 3);
    let audit = alice.ok(&["audit"]);
    for action in ["device.add", "device.rename", "device.revoke"] {
        assert!(
            audit.contains(action),
            "no {action} in the audit log:\n{audit}"
        );
    }

    // The server cannot slip a device into the chain, nor roll it back.
    let name = server.operator_sql("SELECT device_name FROM account_links WHERE seq = 2");
    server.operator_sql("UPDATE account_links SET device_name = 'evil' WHERE seq = 2");
    let caught = alice.fail(&["device", "ls"]);
    assert!(caught.contains("account chain is not valid"), "{caught}");
    server.operator_sql(&format!(
        "UPDATE account_links SET device_name = '{}' WHERE seq = 2",
        name.trim()
    ));
    devices(&alice);
    server.operator_sql("DELETE FROM account_links WHERE seq = 4");
    let caught = alice.fail(&["device", "ls"]);
    assert!(caught.contains("rollback"), "{caught}");
}

#[test]
fn backups_round_trip_through_enc_and_the_server_cannot_alter_them() {
    let server = Server::start();
    let alice = server.user("alice", "admin");
    std::fs::write(alice.path("small"), b"quarterly figures\n").expect("write");
    random_file(&alice.path("large"), 300_000);
    let first = alice
        .ok(&["backup", "put", "small", "--class", "Confidential"])
        .trim()
        .to_string();
    let second = alice
        .ok(&["backup", "put", "large", "--class", "Restricted"])
        .trim()
        .to_string();
    let listed = json(&alice.ok(&["backup", "ls", "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    let only = json(&alice.ok(&["backup", "ls", "--class", "Restricted", "--json"]));
    assert_eq!(only.as_array().map(Vec::len), Some(1));

    alice.ok(&["backup", "get", &first, "-o", "small.back"]);
    alice.assert_file("small.back", b"quarterly figures\n");
    alice.ok(&["backup", "get", &second, "-o", "large.back"]);
    assert!(same_file(&alice.path("large"), &alice.path("large.back")));
    // What the server holds is ciphertext.
    let raw = alice.run(&["backup", "get", &first, "--raw"]).stdout;
    assert!(raw.starts_with(b"age-encryption.org/v1"), "not an age file");

    // Admins see usage per day and class, never content.
    let usage = json(&alice.ok(&["backup", "usage", "--json"]));
    let classes: Vec<&str> = usage
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["classification"].as_str())
        .collect();
    assert_eq!(classes, ["Confidential", "Restricted"]);
    let bob = server.user("bob", "user");
    bob.fail(&["backup", "usage"]);
    // Another tenant sees none of it, and the ids answer like unknown ones.
    assert_eq!(json(&bob.ok(&["backup", "ls", "--json"])), json("[]"));
    let theirs = bob.fail(&["backup", "get", &first]);
    let unknown = bob.fail(&["backup", "get", &"0".repeat(64)]);
    assert_eq!(
        theirs.replace(&first, "ID"),
        unknown.replace(&"0".repeat(64), "ID")
    );

    // The server relabels one, and changes the other's bytes: both are caught.
    server.operator_sql(&format!(
        "UPDATE backups SET classification = 'Internal' WHERE id = '{first}'"
    ));
    let caught = alice.fail(&["backup", "get", &first, "-o", "x"]);
    assert!(caught.contains("integrity error"), "{caught}");
    assert!(!alice.path("x").exists(), "written despite the refusal");
    server.operator_sql(&format!(
        "UPDATE backups SET classification = 'Confidential' WHERE id = '{first}'"
    ));
    let key = server
        .operator_sql(&format!(
            "SELECT blob_key FROM backups WHERE id = '{second}'"
        ))
        .trim()
        .to_string();
    let mut bytes = server.read_blob(&key);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    server.write_blob(&key, &bytes);
    let caught = alice.fail(&["backup", "get", &second, "-o", "y"]);
    assert!(caught.contains("not what its device signed"), "{caught}");

    // Deletion is a tombstone in the device's chain: no gap, the space given back.
    let used = |u: &User| -> u64 {
        let users = json(&u.ok(&["user", "ls", "--json"]));
        users
            .as_array()
            .expect("array")
            .iter()
            .find(|x| x["name"] == "alice")
            .and_then(|x| x["usage_bytes"].as_u64())
            .expect("usage")
    };
    let before = used(&alice);
    alice.ok(&["backup", "rm", &second]);
    assert!(used(&alice) < before);
    let gone = alice.fail(&["backup", "get", &second]);
    assert!(gone.contains("deleted"), "{gone}");
    assert_eq!(
        json(&alice.ok(&["backup", "ls", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    alice.ok(&["backup", "put", "small"]);
    alice.ok(&["backup", "get", &first, "-o", "small.again"]);

    // A server that drops an entry from the chain is caught (the device remembers its
    // newest entry).
    server.operator_sql("DELETE FROM backups WHERE counter = 4");
    let caught = alice.fail(&["backup", "put", "small"]);
    assert!(caught.contains("rollback"), "{caught}");
}

/// Whether python3 can import each module; like `have_tool`, a failure in CI.
pub(crate) fn have_python_modules(modules: &[&str]) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3 with {modules:?} is required in CI but missing (.ci/run installs it)");
        }
        eprintln!(
            "SKIPPED: python3 -m pip install {}; CI=true makes this a failure",
            modules.join(" ")
        );
    }
    ok
}

fn python(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backups_client.py");
    Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("running python3")
}

#[test]
fn an_app_drives_backups_from_python_with_only_the_openapi_document() {
    if !have_python_modules(&["requests", "cryptography"]) {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "user");
    let pem = server.admin_cmd(&["cert", "export"]).stdout;
    std::fs::write(alice.path("server.pem"), pem).expect("pem");
    let mut apps = Vec::new();
    for name in ["app", "other-app"] {
        let (private, public) = (format!("{name}.key"), format!("{name}.pub"));
        let out = python(&[
            "keygen",
            &alice.path(&private).display().to_string(),
            &alice.path(&public).display().to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let added = json(&alice.ok(&[
            "device",
            "add",
            "--public-key",
            &public,
            "--name",
            name,
            "--json",
        ]));
        let device = added["device"]["id"].as_str().expect("id").to_string();
        let token = added["token"].as_str().expect("token").to_string();
        apps.push((device, token, alice.path(&private).display().to_string()));
    }
    let (device, token, key) = &apps[0];
    let (other_device, other_token, other_key) = &apps[1];
    let cafile = alice.path("server.pem").display().to_string();
    let common = ["--url", &server.url, "--cafile", &cafile];
    let mut args = vec!["run"];
    args.extend(common);
    args.extend([
        "--token",
        token,
        "--key",
        key,
        "--device",
        device,
        "--other-token",
        other_token,
        "--other-key",
        other_key,
        "--other-device",
        other_device,
    ]);
    let out = python(&args);
    assert!(
        out.status.success(),
        "the Python app failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json(&String::from_utf8_lossy(&out.stdout));

    // enc verifies what the app signed: its chain (with the tombstone) and its content.
    let app_backup = summary["ids"][1].as_str().expect("id");
    alice.ok(&["backup", "get", app_backup, "--raw", "-o", "app.bin"]);
    let listed = json(&alice.ok(&["backup", "ls", "--json", "--device", device]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    // Revoked: the app's token fails on its very next request.
    alice.ok(&["device", "revoke", "app"]);
    let mut args = vec!["revoked"];
    args.extend(common);
    args.extend(["--token", token, "--key", key, "--device", device]);
    let out = python(&args);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What it signed before the revocation still verifies.
    alice.ok(&["backup", "get", app_backup, "--raw", "-o", "app-again.bin"]);
}
