//! Zero knowledge, isolation, sessions, throttling, bad input, SSH login, audit.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use crate::harness::*;

mod bad_input;
mod devices_isolation;

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file of the server's data directory, and on PostgreSQL a dump of the database
/// (the metadata lives outside the data directory there), as (what, bytes).
pub(crate) fn stored_bytes(server: &Server) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    all_files(&server.data_dir, &mut files);
    let mut stored: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    if server.pg.is_some() {
        stored.push((PG_DUMP.into(), server.database_dump()));
    }
    stored
}

/// What [`stored_bytes`] calls the database's dump.
const PG_DUMP: &str = "the PostgreSQL database";

fn all_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            all_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Acceptance 2: markers in contents and names, the passphrase and exported identities
/// appear nowhere in the server's data directory (database, WAL and blobs included).
#[test]
fn server_data_holds_no_plaintext_names_contents_or_keys() {
    let server = Server::start();
    let alice = server.user("alice", "admin");
    let marker = format!("ZKMARKER{}", rand::random::<u64>());
    std::fs::write(
        alice.path("notes.txt"),
        format!("secret {marker} content").repeat(100),
    )
    .unwrap();
    alice.ok(&[
        "object",
        "push",
        "notes.txt",
        "--as",
        &format!("dir/{marker}-name.txt"),
    ]);
    alice.ok(&["vault", "create", "other"]);
    alice.ok(&[
        "object",
        "push",
        "notes.txt",
        "--vault",
        "other",
        "--as",
        &format!("{marker}.md"),
    ]);
    let identity = alice.ok(&["key", "export"]);
    let other_identity = alice.ok(&["key", "export", "--vault", "other"]);
    let secrets: Vec<String> = identity
        .lines()
        .chain(other_identity.lines())
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .map(str::to_string)
        .collect();
    assert_eq!(secrets.len(), 2);
    let session: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(alice.dir.path().join("config/session.json")).unwrap(),
    )
    .unwrap();
    let account_keys: serde_json::Value =
        serde_json::from_str(session["keys"].as_str().unwrap()).unwrap();
    let account_secret = account_keys["x25519"].as_str().unwrap().to_string();

    let mut stored = stored_bytes(&server);
    let files = stored.iter().filter(|(what, _)| what != PG_DUMP).count();
    assert!(files >= 3, "the data directory holds {files} files");
    // And in the S3 bucket, every blob.
    if server.s3_prefix.is_some() {
        for (key, _) in server.blobs("") {
            stored.push((format!("s3 blob {key}"), server.read_blob(&key)));
        }
    }
    for (what, bytes) in stored {
        let lower = bytes.to_ascii_lowercase();
        for needle in [
            marker.as_str(),
            alice.passphrase.as_str(),
            account_secret.as_str(),
        ]
        .into_iter()
        .chain(secrets.iter().map(String::as_str))
        {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{what} contains {needle:?}"
            );
            assert!(
                !contains(&lower, needle.to_ascii_lowercase().as_bytes()),
                "{what} contains {needle:?}"
            );
        }
    }
}

struct Req {
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
}

/// Each `(real, made-up)` pair of requests, sent with `token`: the real id (another
/// tenant's) answers 404 exactly as the made-up one does.
fn answer_like_made_up_ids(server: &Server, token: &str, cases: &[(Req, Req)]) {
    for (real, fake) in cases {
        let (rs, rb) = send(server, token, real);
        let (fs, fb) = send(server, token, fake);
        assert_eq!(
            rs, 404,
            "{} {} must be 404 for another tenant, got {rs}: {rb}",
            real.method, real.path
        );
        assert_eq!(
            (rs, &rb),
            (fs, &fb),
            "{} {}: answer differs from a nonexistent id",
            real.method,
            real.path
        );
    }
}

fn send(server: &Server, token: &str, r: &Req) -> (u16, String) {
    let c = http();
    let url = format!("{}{}", server.url, r.path);
    let rb = match r.method {
        "GET" => c.get(&url),
        "DELETE" => c.delete(&url),
        "POST" => c.post(&url),
        "PUT" => c.put(&url),
        m => panic!("{m}"),
    }
    .bearer_auth(token);
    let rb = match &r.body {
        Some(b) => rb.json(b),
        None if r.method == "PUT" => rb.body(vec![1u8; 100]),
        None => rb,
    };
    let resp = rb.send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// Acceptance 4: with alice's real ids, bob gets exactly the answer he gets for ids that do
/// not exist, on every endpoint; alice's data is unchanged afterwards.
#[test]
fn isolation_matrix() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    std::fs::write(alice.path("a.txt"), "alice's").unwrap();
    alice.ok(&["object", "push", "a.txt"]);
    alice.ok(&["vault", "create", "private"]);
    alice.ok(&["object", "push", "a.txt", "--vault", "private"]);
    std::fs::write(bob.path("b.txt"), "bob's").unwrap();
    bob.ok(&["object", "push", "b.txt"]);
    // A vault of alice's that is a tree: its head, commits and blobs.
    alice.ok(&["vault", "create", "tree"]);
    alice.ok(&["push", "a.txt", "--vault", "tree"]);
    let tv = alice.vault_id("tree");
    let tree_blob = server.operator_sql(&format!(
        "SELECT id FROM tree_blobs WHERE vault_id = '{tv}' LIMIT 1"
    ));
    assert!(!tree_blob.is_empty(), "alice's tree has a blob");

    let at = alice.token();
    let bt = bob.token();
    let av = alice.vault_id("default");
    let bv = bob.vault_id("default");
    let objects: serde_json::Value = serde_json::from_str(
        &send(
            &server,
            &at,
            &Req {
                method: "GET",
                path: format!("/v1/vaults/{av}/objects"),
                body: None,
            },
        )
        .1,
    )
    .unwrap();
    let enc_name = objects[0]["enc_name"].as_str().unwrap().to_string();
    let version_id = objects[0]["versions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // An upload of alice's that is not committed yet.
    let receipt: serde_json::Value = serde_json::from_str(
        &send(
            &server,
            &at,
            &Req {
                method: "PUT",
                path: format!("/v1/vaults/{av}/uploads"),
                body: None,
            },
        )
        .1,
    )
    .unwrap();
    let upload_id = receipt["upload_id"].as_str().unwrap().to_string();
    let sessions: serde_json::Value = serde_json::from_str(
        &send(
            &server,
            &at,
            &Req {
                method: "GET",
                path: "/v1/sessions".into(),
                body: None,
            },
        )
        .1,
    )
    .unwrap();
    let alice_session = sessions[0]["id"].as_str().unwrap().to_string();

    let fake_vault = "00000000-0000-4000-8000-000000000000";
    let fake_name = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let fake_id = "11111111-1111-4111-8111-111111111111";
    let commit = |upload: &str, name: &str| {
        serde_json::json!({"upload_id": upload, "enc_name": name, "size": 100, "hash": "00",
            "version": 1, "generation": 1, "signature": "AAAA"})
    };
    let read = |blob: &str| serde_json::json!({"ranges": [{"blob": blob, "offset": 0, "len": 1}]});
    // (real, fake) pairs of the same request.
    let cases: Vec<(Req, Req)> = vec![
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{av}/objects"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{fake_vault}/objects"),
                body: None,
            },
        ),
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{av}/objects/{enc_name}"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{fake_vault}/objects/{fake_name}"),
                body: None,
            },
        ),
        (
            Req {
                method: "DELETE",
                path: format!("/v1/vaults/{av}/objects/{enc_name}"),
                body: None,
            },
            Req {
                method: "DELETE",
                path: format!("/v1/vaults/{fake_vault}/objects/{fake_name}"),
                body: None,
            },
        ),
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{av}/blobs/{version_id}"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{fake_vault}/blobs/{fake_id}"),
                body: None,
            },
        ),
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{bv}/blobs/{version_id}"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{bv}/blobs/{fake_id}"),
                body: None,
            },
        ),
        (
            Req {
                method: "PUT",
                path: format!("/v1/vaults/{av}/uploads"),
                body: None,
            },
            Req {
                method: "PUT",
                path: format!("/v1/vaults/{fake_vault}/uploads"),
                body: None,
            },
        ),
        (
            Req {
                method: "POST",
                path: format!("/v1/vaults/{av}/objects"),
                body: Some(commit(&upload_id, fake_name)),
            },
            Req {
                method: "POST",
                path: format!("/v1/vaults/{fake_vault}/objects"),
                body: Some(commit(fake_id, fake_name)),
            },
        ),
        (
            Req {
                method: "DELETE",
                path: format!("/v1/vaults/{av}"),
                body: None,
            },
            Req {
                method: "DELETE",
                path: format!("/v1/vaults/{fake_vault}"),
                body: None,
            },
        ),
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{av}/members"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{fake_vault}/members"),
                body: None,
            },
        ),
        (
            Req {
                method: "POST",
                path: format!("/v1/vaults/{av}/members"),
                body: Some(
                    serde_json::json!({"user": "bob", "wrapped_keys": "AAAA", "signature": "AAAA"}),
                ),
            },
            Req {
                method: "POST",
                path: format!("/v1/vaults/{fake_vault}/members"),
                body: Some(
                    serde_json::json!({"user": "bob", "wrapped_keys": "AAAA", "signature": "AAAA"}),
                ),
            },
        ),
        (
            Req {
                method: "POST",
                path: format!("/v1/vaults/{av}/unshare"),
                body: Some(serde_json::json!({"user": "bob", "generation": 2, "rewrapped": []})),
            },
            Req {
                method: "POST",
                path: format!("/v1/vaults/{fake_vault}/unshare"),
                body: Some(serde_json::json!({"user": "bob", "generation": 2, "rewrapped": []})),
            },
        ),
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{tv}/head"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{fake_vault}/head"),
                body: None,
            },
        ),
        (
            Req {
                method: "GET",
                path: format!("/v1/vaults/{tv}/commits"),
                body: None,
            },
            Req {
                method: "GET",
                path: format!("/v1/vaults/{fake_vault}/commits"),
                body: None,
            },
        ),
        (
            Req {
                method: "POST",
                path: format!("/v1/vaults/{tv}/commits"),
                body: Some(serde_json::json!({"header": "AAAA", "signature": "AAAA"})),
            },
            Req {
                method: "POST",
                path: format!("/v1/vaults/{fake_vault}/commits"),
                body: Some(serde_json::json!({"header": "AAAA", "signature": "AAAA"})),
            },
        ),
        (
            Req {
                method: "POST",
                path: format!("/v1/vaults/{tv}/read"),
                body: Some(read(&tree_blob)),
            },
            Req {
                method: "POST",
                path: format!("/v1/vaults/{fake_vault}/read"),
                body: Some(read(fake_id)),
            },
        ),
        // Alice's blob named through bob's own vault is as unknown as a made-up one.
        (
            Req {
                method: "POST",
                path: format!("/v1/vaults/{bv}/read"),
                body: Some(read(&tree_blob)),
            },
            Req {
                method: "POST",
                path: format!("/v1/vaults/{bv}/read"),
                body: Some(read(fake_id)),
            },
        ),
        (
            Req {
                method: "DELETE",
                path: format!("/v1/sessions/{alice_session}"),
                body: None,
            },
            Req {
                method: "DELETE",
                path: format!("/v1/sessions/{fake_id}"),
                body: None,
            },
        ),
    ];
    answer_like_made_up_ids(&server, &bt, &cases);
    // Bob's commit of alice's pending upload into bob's own vault is refused like a missing one.
    let (s, b) = send(
        &server,
        &bt,
        &Req {
            method: "POST",
            path: format!("/v1/vaults/{bv}/objects"),
            body: Some(commit(&upload_id, fake_name)),
        },
    );
    assert!(s == 400 || s == 404, "{s} {b}");
    // Bob's listing shows only his own.
    assert_eq!(bob.ok(&["object", "ls"]), "b.txt\n");
    assert!(!bob.ok(&["vault", "ls"]).contains("private"));
    // Alice's data and session are untouched.
    assert_eq!(alice.ok(&["object", "ls"]), "a.txt\n");
    assert_eq!(alice.ok(&["object", "ls", "--vault", "private"]), "a.txt\n");
    assert_eq!(alice.ok(&["ls", "--vault", "tree"]), "a.txt\n");
    alice.ok(&["object", "pull", "a.txt", "-o", "back.txt"]);
    assert_eq!(
        std::fs::read_to_string(alice.path("back.txt")).unwrap(),
        "alice's"
    );
}

/// Acceptance 7: idle timeout, refresh by activity, logout invalidates server-side.
#[test]
fn sessions_expire_refresh_and_end_on_logout() {
    let server = Server::start_with("session_idle_timeout = \"2s\"\n", &[]);
    let alice = server.user("alice", "user");
    // Activity inside the window keeps the session alive past the timeout.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(1000));
        alice.ok(&["object", "ls"]);
    }
    std::thread::sleep(Duration::from_millis(3500));
    let err = alice.fail(&["object", "ls"]);
    assert!(err.contains("session expired — run `enc login`"), "{err}");
    alice.ok(&["login"]);
    let old = alice.token();
    alice.ok(&["session", "ls"]);
    alice.ok(&["logout"]);
    let resp = http()
        .get(format!("{}/v1/vaults", server.url))
        .bearer_auth(&old)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401, "the old token is rejected after logout");
    let err = alice.fail(&["object", "ls"]);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn sessions_can_be_listed_and_revoked() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let laptop = User::new(&server, "alice");
    laptop.ok(&["login"]);
    let list = alice.ok(&["session", "ls"]);
    assert_eq!(list.lines().count(), 3, "a header and two sessions: {list}");
    let header = list.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("DEVICE"),
        "{list}"
    );
    // Each names its device (this host) and client (enc and its version).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for line in list.lines().skip(1) {
        assert!(line.contains(host.trim()), "{list}");
        assert!(
            line.contains(concat!("enc/", env!("CARGO_PKG_VERSION"))),
            "{list}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["session", "ls", "--json"])).unwrap();
    let other = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    assert_eq!(other["method"], "passphrase");
    let id = other["id"].as_str().unwrap().to_string();
    assert!(list.lines().any(|l| l.starts_with(&id)), "{list}");
    alice.ok(&["session", "revoke", &id]);
    let err = laptop.fail(&["object", "ls"]);
    assert!(err.contains("run `enc login`"), "{err}");
    alice.ok(&["status"]);
}

/// Acceptance 8: 20 wrong passphrases are throttled after at most 5; the right one works after
/// the backoff; the audit log shows the failures.
#[test]
fn brute_force_is_throttled_and_audited() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let mut first_429 = None;
    let retry_in = |err: &str| -> u64 {
        err.split("retry in ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no wait in {err:?}"))
    };
    for attempt in 1..=20 {
        let out = alice
            .cmd(&["login"])
            .env("ENC_PASSPHRASE", format!("wrong guess {attempt}"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if err.contains("too many failed attempts") {
            first_429.get_or_insert(attempt);
            retry_in(&err);
        } else {
            assert!(err.contains("wrong user name or passphrase"), "{err}");
        }
    }
    let first = first_429.expect("throttled");
    assert!(
        first <= 6,
        "429 after at most 5 failures, first at attempt {first}"
    );
    // The right passphrase is refused while backing off, accepted after. The wait is read
    // from this refusal: on a loaded machine a backoff can run out between two wrong
    // guesses, and the next one then starts a longer one.
    let err = alice.fail(&["login"]);
    assert!(err.contains("too many failed attempts"), "{err}");
    std::thread::sleep(Duration::from_secs(retry_in(&err) + 1));
    alice.ok(&["login"]);
    let audit = alice.ok(&["audit"]);
    let failures = audit
        .lines()
        .filter(|l| l.split_whitespace().any(|cell| cell == "login.failure"))
        .count();
    assert!(failures >= 5, "{audit}");
    assert!(audit.contains("login.throttled"), "{audit}");
    alice.ok(&["audit", "--verify"]);
}

#[test]
fn unknown_users_look_like_real_ones() {
    let server = Server::start();
    let _alice = server.user("alice", "user");
    let c = http();
    let pre = |u: &str| -> serde_json::Value {
        c.post(format!("{}/v1/auth/prelogin", server.url))
            .json(&serde_json::json!({"user": u}))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let ghost1 = pre("ghost");
    let ghost2 = pre("ghost");
    assert_eq!(ghost1, ghost2, "deterministic fake salt");
    assert_eq!(ghost1["kdf"], pre("alice")["kdf"]);
    assert_ne!(ghost1["salt"], pre("alice")["salt"]);
    let ghost = User::new(&server, "ghost");
    let err = ghost.fail(&["login"]);
    assert!(err.contains("wrong user name or passphrase"), "{err}");
}

fn raw_http(port: u16, request: &[u8], half_close: bool) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn ssh_key_login() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "user");
    let key = alice.path("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    alice.ok(&["key", "add-ssh", "id_ed25519.pub"]);
    assert!(alice.ok(&["key", "ls-ssh"]).contains("alice@laptop"));
    std::fs::write(alice.path("f.txt"), "via ssh").unwrap();
    alice.ok(&["object", "push", "f.txt"]);
    // A second device with only the SSH key: no passphrase needed.
    let device = User::new(&server, "alice");
    let out = device
        .cmd(&["login", "--ssh-key"])
        .arg(&key)
        .env_remove("ENC_PASSPHRASE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    device.ok(&["object", "pull", "f.txt", "-o", "f.txt"]);
    assert_eq!(
        std::fs::read_to_string(device.path("f.txt")).unwrap(),
        "via ssh"
    );
    // Another key is refused.
    let other = alice.path("other");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let err = device.fail(&["login", "--ssh-key", other.to_str().unwrap()]);
    assert!(err.contains("wrong user name or passphrase"), "{err}");
}

#[test]
fn admin_audit_chain_verifies() {
    let server = Server::start();
    let admin = server.user("root", "admin");
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("x"), "x").unwrap();
    alice.ok(&["object", "push", "x"]);
    alice.ok(&["object", "rm", "x"]);
    let all = admin.ok(&["audit", "--all", "--verify"]);
    for action in [
        "user.create",
        "user.register",
        "object.write",
        "object.remove",
    ] {
        assert!(all.contains(action), "{action} missing: {all}");
    }
    let own = alice.ok(&["audit"]);
    assert!(
        !own.contains("root"),
        "users see only their own entries: {own}"
    );
    alice.fail(&["audit", "--all"]);
}

/// A server that substitutes keys, replays old ones or swaps a user's key is caught by the
/// client: vault keys carry the owner's signature, generations only go up, and other users'
/// keys are pinned on first sight.
#[test]
fn a_malicious_server_cannot_substitute_or_replay_keys() {
    if !have_tool("python3") {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    alice.ok(&["vault", "create", "team"]);
    alice.ok(&["vault", "share", "team", "bob"]);
    std::fs::write(bob.path("b.txt"), "from bob").unwrap();
    bob.ok(&["object", "push", "b.txt", "--vault", "alice/team"]);
    alice.ok(&["object", "pull", "b.txt", "--vault", "team", "-o", "b.txt"]); // pins bob's key
    let team = alice.vault_id("team");
    let alice_id = server.operator_sql("SELECT id FROM users WHERE name = 'alice'");
    let old = server.operator_sql(
        &format!(
            "SELECT wrapped_keys, signature FROM vault_members WHERE vault_id = '{team}' AND user_id = '{alice_id}'"
        ),
    );
    let (old_wrap, old_sig) = old.split_once('|').unwrap();

    // Substitution: keys the owner did not sign.
    let default_vault = alice.vault_id("default");
    server.operator_sql(
        &format!(
            "UPDATE vault_members SET signature = (SELECT signature FROM vault_members WHERE vault_id = '{default_vault}') WHERE vault_id = '{team}' AND user_id = '{alice_id}'"
        ),
    );
    let err = alice.fail(&["object", "ls", "--vault", "team"]);
    assert!(err.contains("not signed by its owner"), "{err}");
    server.operator_sql(
        &format!(
            "UPDATE vault_members SET signature = '{old_sig}' WHERE vault_id = '{team}' AND user_id = '{alice_id}'"
        ),
    );
    alice.ok(&["object", "ls", "--vault", "team"]);

    // Replay: after an unshare, the server offers the old generation's keys again.
    alice.ok(&["vault", "unshare", "team", "bob"]);
    alice.ok(&["object", "ls", "--vault", "team"]);
    server.operator_sql(
        &format!(
            "UPDATE vault_members SET wrapped_keys = '{old_wrap}', signature = '{old_sig}' WHERE vault_id = '{team}' AND user_id = '{alice_id}'"
        ),
    );
    server.operator_sql(&format!(
        "UPDATE vaults SET generation = 1 WHERE id = '{team}'"
    ));
    let err = alice.fail(&[
        "object", "push", "b.txt", "--vault", "team", "--as", "new.txt",
    ]);
    assert!(err.contains("refusing old keys"), "{err}");

    // Key swap: the server presents another key for bob than the one pinned.
    let other_key = enc_crypto::device::DeviceKey::generate().public_b64();
    server.operator_sql(&format!(
        "UPDATE users SET ed25519_public = '{other_key}' WHERE name = 'bob'"
    ));
    alice.ok(&["vault", "create", "other"]);
    let err = alice.fail(&["vault", "share", "other", "bob"]);
    assert!(err.contains("different key for bob"), "{err}");
}
