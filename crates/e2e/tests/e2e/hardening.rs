//! What an attacker and a first-week user found (issue 13): uploads that escaped the quota,
//! strangers locking an owner out, admin commands that made servers in the wrong directory,
//! a panic on a closed pipe, server files readable by others.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

/// The vault owner's usage counter, as stored.
fn usage(server: &Server, name: &str) -> i64 {
    server
        .operator_sql(&format!(
            "SELECT usage_bytes FROM users WHERE name = '{name}'"
        ))
        .trim()
        .parse()
        .expect("usage")
}

/// Uploads not yet committed, as stored.
fn pending_uploads(server: &Server) -> i64 {
    server
        .operator_sql("SELECT COUNT(*) FROM uploads")
        .trim()
        .parse()
        .expect("count")
}

/// Waits until `check` holds, for at most `secs`.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not after {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `/v1` upload counts against the vault owner's quota while it streams: over the quota it
/// is refused with 507 and nothing is kept (with or without a Content-Length); an upload
/// whose connection drops gives its bytes back; pending uploads per user are capped; an
/// uncommitted upload expires.
#[test]
fn uploads_in_flight_are_charged_capped_and_released() {
    let server = Server::start_with(
        "[limits]\nmax_pending_uploads = 3\nupload_expiry = \"2s\"\n",
        &[],
    );
    let root = server.user("root", "admin");
    let alice = server.user("alice", "user");
    root.ok(&["user", "set-quota", "alice", "1MiB"]);
    let vid = alice.vault_id("default");
    let url = format!("{}/v1/vaults/{vid}/uploads", server.url);
    let c = http();
    let eight = vec![7u8; 8 << 20];
    for i in 0..5 {
        let r = c
            .put(&url)
            .bearer_auth(alice.token())
            .body(eight.clone())
            .send()
            .expect("PUT");
        assert_eq!(r.status(), 507, "upload {i} with a Content-Length");
        let body = r.text().expect("body");
        assert!(body.contains("quota"), "{body}");
    }
    // Without a Content-Length (chunked), refused while streaming.
    let r = c
        .put(&url)
        .bearer_auth(alice.token())
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            eight.clone(),
        )))
        .send()
        .expect("PUT chunked");
    assert_eq!(r.status(), 507, "chunked upload");
    eventually(10, "refused uploads released", || {
        pending_uploads(&server) == 0 && server.blob_bytes("blobs") == 0
    });
    assert_eq!(usage(&server, "alice"), 0);

    // What fits is charged while it waits for its commit, and the commit charges no more.
    let small = vec![1u8; 300 << 10];
    let r = c
        .put(&url)
        .bearer_auth(alice.token())
        .body(small.clone())
        .send()
        .expect("PUT");
    assert_eq!(r.status(), 200);
    assert_eq!(usage(&server, "alice"), 300 << 10);
    // A second one that would cross the quota is refused; the first stays charged.
    let r = c
        .put(&url)
        .bearer_auth(alice.token())
        .body(vec![2u8; 800 << 10])
        .send()
        .expect("PUT");
    assert_eq!(r.status(), 507);
    assert_eq!(usage(&server, "alice"), 300 << 10);
    // `enc push` commits and the usage is the committed ciphertext.
    std::fs::write(alice.path("a.txt"), b"hello").expect("write");
    alice.ok(&["object", "push", "a.txt"]);

    // A connection dropped mid-body releases its upload at once, not after the expiry.
    root.ok(&["user", "set-quota", "alice", "100MiB"]);
    let before = usage(&server, "alice");
    let token = alice.token();
    let pem = server.admin_cmd(&["cert", "export"]).stdout;
    let mut s = tls_connection(&server, &pem, None);
    write!(
        s,
        "PUT /v1/vaults/{vid}/uploads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-length: 40000000\r\n\r\n"
    )
    .expect("head");
    s.write_all(&vec![3u8; 4 << 20]).expect("part of the body");
    s.flush().expect("flush");
    eventually(10, "the dropped upload is charged", || {
        usage(&server, "alice") > before
    });
    drop(s);
    eventually(10, "the dropped upload released", || {
        usage(&server, "alice") == before
    });

    // At most three pending uploads per user.
    let mut last = 0;
    for _ in 0..4 {
        let r = c
            .put(&url)
            .bearer_auth(alice.token())
            .body(vec![5u8; 1000])
            .send()
            .expect("PUT");
        last = r.status().as_u16();
        if last != 200 {
            break;
        }
    }
    assert_eq!(last, 429, "a fourth pending upload is refused");
    // Uncommitted uploads expire (2 s here, counted in whole seconds) at the collector's
    // next pass, which a removal starts; the charges come back with them.
    std::thread::sleep(Duration::from_millis(3500));
    alice.ok(&["object", "rm", "a.txt"]);
    eventually(20, "expired uploads dropped and given back", || {
        pending_uploads(&server) == 0 && usage(&server, "alice") == 0
    });
}

/// A client whose connections come from `127.0.0.N`.
fn from_address(n: u8) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn wrong_login(c: &reqwest::blocking::Client, server: &Server, user: &str) -> u16 {
    c.post(format!("{}/v1/auth/login", server.url))
        .json(&serde_json::json!({"user": user, "auth_key": "A".repeat(43) + "="}))
        .send()
        .expect("login")
        .status()
        .as_u16()
}

/// Logs `user` in with a fresh registered SSH key over `c` (signed by `ssh-keygen -Y sign`, as
/// any SSH agent could); returns the session token.
fn ssh_login_from(c: &reqwest::blocking::Client, server: &Server, user: &User) -> String {
    let key = user.path("login_key");
    let made = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "alice@elsewhere",
            "-f",
        ])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    user.ok(&[
        "key",
        "add-ssh",
        key.with_extension("pub").to_str().unwrap(),
    ]);
    let ch: serde_json::Value = c
        .post(format!("{}/v1/auth/ssh/challenge", server.url))
        .json(&serde_json::json!({"user": user.name}))
        .send()
        .expect("challenge")
        .json()
        .expect("challenge json");
    let id = ch["id"].as_str().expect("id");
    let challenge = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        ch["challenge"].as_str().expect("challenge"),
    )
    .expect("base64");
    let message = enc_crypto::ssh_login_message(&server.fingerprint, &user.name, id, &challenge);
    let msg_path = user.path("challenge.bin");
    std::fs::write(&msg_path, message).unwrap();
    let signed = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "enc-login", "-f"])
        .arg(&key)
        .arg(&msg_path)
        .status()
        .expect("ssh-keygen -Y sign");
    assert!(signed.success());
    let signature = std::fs::read_to_string(user.path("challenge.bin.sig")).expect("signature");
    let resp = c
        .post(format!("{}/v1/auth/ssh/login", server.url))
        .json(&serde_json::json!({"user": user.name, "id": id, "signature": signature}))
        .send()
        .expect("ssh login");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text());
    let body: serde_json::Value = resp.json().expect("login json");
    body["token"].as_str().expect("session token").to_string()
}

/// Wrong passphrases from strangers' addresses back the account off everywhere except where
/// its owner has logged in before: the owner is never locked out by them.
#[test]
fn strangers_cannot_lock_an_owner_out() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    alice.ok(&["logout"]);
    alice.ok(&["login"]);
    let mut statuses = Vec::new();
    for round in 0..2 {
        for n in 2..=6 {
            statuses.push(wrong_login(&from_address(n), &server, "alice"));
            let _ = round;
        }
    }
    assert!(statuses.contains(&401), "{statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the account backs off for strangers: {statuses:?}"
    );
    // A new address is still held back...
    assert_eq!(wrong_login(&from_address(7), &server, "alice"), 429);
    // ...for passphrases only: an SSH key cannot be guessed, so its login from an address
    // never seen before goes through.
    let stranger_place = from_address(9);
    assert_eq!(wrong_login(&stranger_place, &server, "alice"), 429);
    let session = ssh_login_from(&stranger_place, &server, &alice);
    assert!(!session.is_empty());
    // ...but the owner, from where they logged in before, is not.
    alice.ok(&["logout"]);
    let started = Instant::now();
    alice.ok(&["login"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    alice.ok(&["object", "ls"]);
    // Guessing from the owner's own address still backs off there.
    let local = from_address(1);
    let mut last = 0;
    for _ in 0..8 {
        last = wrong_login(&local, &server, "alice");
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "guesses from a known address back off too");
}

/// `enc-server user create` and `cert export|fingerprint` run without a server's data
/// directory refuse with one line that says what to pass, and create nothing.
#[test]
fn admin_commands_never_create_a_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    for args in [
        vec!["user", "create", "bob", "--role", "user"],
        vec!["cert", "export"],
        vec!["cert", "fingerprint"],
    ] {
        // In a directory without ./enc-data, and with a --data-dir that does not exist.
        for extra in [vec![], vec!["--data-dir", "elsewhere"]] {
            let out = std::process::Command::new(bin("enc-server"))
                .args(&args)
                .args(&extra)
                .current_dir(tmp.path())
                .env_remove("ENC_DATA_DIR")
                .env_remove("ENC_CONFIG")
                .output()
                .expect("enc-server");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} {extra:?} succeeded");
            assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
            assert!(err.contains("--data-dir"), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
        let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("ls").collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

/// A closed stdout (`enc ls | head -1`) ends the command quietly instead of a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("a"), b"a").expect("write");
    alice.ok(&["push", "a"]);
    for args in [vec!["ls"], vec!["audit", "--json"], vec!["ls", "--long"]] {
        let mut child = alice
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("enc");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} complained: {err}");
    }
}

/// The data directory is its owner's alone (0700) and the database files 0600 whatever the
/// umask; the log has no colour codes when it is not a terminal.
#[test]
fn server_files_are_private_and_logs_plain() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("a"), b"a").expect("write");
    alice.ok(&["object", "push", "a"]);
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&server.data_dir), 0o700, "data directory");
    if backend() == Backend::Sqlite {
        for f in ["meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm"] {
            assert_eq!(mode(&server.data_dir.join(f)), 0o600, "{f}");
        }
    }
    let mut log = String::new();
    std::fs::File::open(&server.log)
        .expect("log")
        .read_to_string(&mut log)
        .expect("read log");
    assert!(log.contains("enc-server listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log file: {log}");
}

/// `enc-server migrate --database-owner-url URL`, as the README shows it, works without
/// `--database-url`.
#[test]
fn migrate_needs_only_the_owner_url() {
    if !have_tool("psql") {
        return;
    }
    let db = PgDatabase::create();
    let out = std::process::Command::new(bin("enc-server"))
        .args(["migrate", "--database-owner-url", &db.owner_url])
        .env_remove("ENC_DATABASE_URL")
        .output()
        .expect("enc-server migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        psql(
            &db.owner_url,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'uploads'"
        ),
        "1"
    );
}

/// `enc passphrase change` re-wraps the account keys: the new passphrase logs in (and opens
/// the files), the old one no longer does, a wrong current one changes nothing, and other
/// sessions end when asked.
#[test]
fn passphrase_change_rewraps_and_can_end_other_sessions() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("secret.txt"), b"still mine").expect("write");
    alice.ok(&["object", "push", "secret.txt"]);
    let laptop = User::new(&server, "alice");
    laptop.ok(&["login"]);
    let new_file = alice.path("new-pass");
    std::fs::write(&new_file, "a brand new passphrase 77\n").expect("write");
    let new_arg = new_file.display().to_string();
    // A wrong current passphrase is refused and changes nothing.
    let err = alice
        .cmd(&["passphrase", "change", "--new-passphrase-file", &new_arg])
        .env("ENC_PASSPHRASE", "not the passphrase at all")
        .output()
        .expect("enc");
    assert!(!err.status.success());
    // (Found out on the device: the passphrase does not unwrap the account keys.)
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    laptop.ok(&["object", "ls"]);
    // A new passphrase too short is refused before anything is sent.
    let short = alice.path("short");
    std::fs::write(&short, "short\n").expect("write");
    let err = alice.fail(&[
        "passphrase",
        "change",
        "--new-passphrase-file",
        &short.display().to_string(),
    ]);
    assert!(err.contains("at least 8 characters"), "{err}");
    let out = alice.ok(&[
        "passphrase",
        "change",
        "--new-passphrase-file",
        &new_arg,
        "--end-other-sessions",
    ]);
    assert!(out.is_empty(), "results only: {out}");
    let err = laptop.fail(&["object", "ls"]);
    assert!(err.contains("enc login"), "{err}");
    alice.ok(&["object", "ls"]);
    alice.ok(&["logout"]);
    let err = alice.fail(&["login"]);
    assert!(err.contains("wrong user name or passphrase"), "{err}");
    let login = alice
        .cmd(&["login"])
        .env("ENC_PASSPHRASE", "a brand new passphrase 77")
        .output()
        .expect("enc");
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    alice.ok(&["object", "pull", "secret.txt", "-o", "back.txt"]);
    assert_eq!(
        std::fs::read(alice.path("back.txt")).expect("read"),
        b"still mine"
    );
}

/// Sizes agree: `push`, `ls --long`, `ls --versions` and `--json` show the plaintext size;
/// the stored (ciphertext) size is a field of its own.
#[test]
fn sizes_are_plaintext_sizes_everywhere() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("tiny"), b"abc").expect("write");
    let pushed = alice.ok(&["object", "push", "tiny"]);
    assert!(pushed.contains("3 B"), "{pushed}");
    let long = alice.ok(&["object", "ls", "--long"]);
    assert!(long.contains(" 3 B "), "{long}");
    let versions = alice.ok(&["object", "ls", "--versions", "tiny"]);
    assert!(versions.contains("3 B"), "{versions}");
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["object", "ls", "--json"])).expect("json");
    assert_eq!(json[0]["size"], 3, "{json}");
    assert!(
        json[0]["stored_size"].as_u64().expect("stored") > 3,
        "{json}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["object", "ls", "--json", "--versions", "tiny"]))
            .expect("json");
    assert_eq!(json[0]["size"], 3, "{json}");
    // And a file over one 64 KiB chunk.
    random_file(&alice.path("big"), 200_000);
    alice.ok(&["object", "push", "big"]);
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["object", "ls", "--json"])).expect("json");
    let big = json
        .as_array()
        .expect("array")
        .iter()
        .find(|o| o["name"] == "big")
        .expect("big");
    assert_eq!(big["size"], 200_000, "{json}");
}

/// `set-quota NAME unlimited` (the word `user ls` shows) lifts the limit, the role's default
/// included; `default` gives the role's back.
#[test]
fn quota_words_are_the_ones_shown() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = dir.path().join("policy.toml");
    let out = std::process::Command::new(bin("enc-server"))
        .arg("--generate-policy")
        .output()
        .expect("policy");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let text = text.replacen("[roles.user]", "[roles.user]\nquota = \"1MiB\"", 1);
    std::fs::write(&policy, text).expect("write policy");
    let server = Server::start_with(&format!("policy_file = \"{}\"\n", policy.display()), &[]);
    let root = server.user("root", "admin");
    let alice = server.user("alice", "user");
    // `enc-server user create` prints the URL the server is configured to be reached at.
    let out = server.admin_cmd(&["user", "create", "carol"]);
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains("enc register --server https://127.0.0.1:8443 --user carol"),
        "{told}"
    );
    let out = server.admin_cmd(&["--listen", "0.0.0.0:9443", "user", "create", "dave"]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains(&format!(
            "--server https://{}:9443 --user dave",
            host.trim()
        )),
        "{told}"
    );
    let quota = |who: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&root.ok(&["user", "ls", "--json"])).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .find(|u| u["name"] == who)
            .expect("user")["quota_bytes"]
            .clone()
    };
    assert_eq!(quota("alice"), 1 << 20);
    random_file(&alice.path("two"), 2 << 20);
    alice.fail(&["object", "push", "two"]);
    root.ok(&["user", "set-quota", "alice", "unlimited"]);
    assert!(quota("alice").is_null(), "unlimited");
    assert!(
        root.ok(&["user", "ls"])
            .lines()
            .any(|l| l.starts_with("alice") && l.ends_with("unlimited"))
    );
    alice.ok(&["object", "push", "two"]);
    root.ok(&["user", "set-quota", "alice", "default"]);
    assert_eq!(quota("alice"), 1 << 20);
    let err = root.fail(&["user", "set-quota", "alice", "lots"]);
    assert!(err.contains("unlimited"), "{err}");
}

/// Errors a person can act on: a URL without scheme, plain HTTP against the TLS port, a
/// server that is down (before any passphrase is asked for), and a logout meanwhile.
#[test]
fn connection_errors_say_what_to_do() {
    let mut server = Server::start();
    let alice = server.user("alice", "user");
    let port = server.port;
    let bare = User::new(&server, "alice");
    let no_scheme = bare
        .cmd(&["login", "--server", &format!("127.0.0.1:{port}")])
        .env_remove("ENC_SERVER")
        .output()
        .expect("enc");
    let err = String::from_utf8_lossy(&no_scheme.stderr);
    assert!(
        err.contains(&format!("try --server https://127.0.0.1:{port}")),
        "{err}"
    );
    let plain = bare
        .cmd(&["login", "--server", &format!("http://127.0.0.1:{port}")])
        .env_remove("ENC_SERVER")
        .output()
        .expect("enc");
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(err.contains("use https://"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    server.kill9();
    let err = alice.fail(&["object", "ls"]);
    assert!(
        err.contains("connection refused") && err.contains("is enc-server running"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Asked for no passphrase: the unreachable server is reported first.
    let login = bare
        .cmd(&["login"])
        .env_remove("ENC_PASSPHRASE")
        .output()
        .expect("enc");
    let err = String::from_utf8_lossy(&login.stderr);
    assert!(err.contains("connection refused"), "{err}");
    assert!(!err.contains("passphrase"), "{err}");
    let out = alice.run(&["logout"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("on this device") && err.contains("expires"),
        "{err}"
    );
    assert!(alice.fail(&["object", "ls"]).contains("not logged in"));
}

/// `vault share --read-only`: the member pulls and lists but cannot push or remove (the
/// server refuses with 403), the right is part of what the owner signed (a server that
/// upgrades it is caught by the member's client), and unsharing someone else keeps it.
#[test]
fn read_only_shares_are_signed_and_enforced() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    let carol = server.user("carol", "user");
    alice.ok(&["vault", "create", "team"]);
    std::fs::write(alice.path("plan.txt"), b"the plan").expect("write");
    alice.ok(&["object", "push", "plan.txt", "--vault", "team"]);
    alice.ok(&["vault", "share", "team", "bob", "--read-only"]);
    alice.ok(&["vault", "share", "team", "carol"]);
    let members = alice.ok(&["vault", "members", "team"]);
    assert!(
        members
            .lines()
            .any(|l| l.starts_with("bob") && l.contains("read-only")),
        "{members}"
    );
    assert!(
        members
            .lines()
            .any(|l| l.starts_with("carol") && l.contains("read-write")),
        "{members}"
    );
    // bob reads...
    assert_eq!(
        bob.ok(&["object", "ls", "--vault", "alice/team"]),
        "plan.txt\n"
    );
    bob.ok(&[
        "object",
        "pull",
        "plan.txt",
        "--vault",
        "alice/team",
        "-o",
        "got.txt",
    ]);
    assert_eq!(
        std::fs::read(bob.path("got.txt")).expect("read"),
        b"the plan"
    );
    // ...and nothing else.
    std::fs::write(bob.path("mine.txt"), b"bob's").expect("write");
    let err = bob.fail(&["object", "push", "mine.txt", "--vault", "alice/team"]);
    assert!(err.contains("read-only"), "{err}");
    let err = bob.fail(&["object", "rm", "plan.txt", "--vault", "alice/team"]);
    assert!(err.contains("read-only"), "{err}");
    let vid = alice.vault_id("team");
    let r = http()
        .put(format!("{}/v1/vaults/{vid}/uploads", server.url))
        .bearer_auth(bob.token())
        .body(vec![1u8; 100])
        .send()
        .expect("PUT");
    assert_eq!(r.status(), 403);
    assert_eq!(alice.ok(&["object", "ls", "--vault", "team"]), "plan.txt\n");
    // carol (a writer) may.
    std::fs::write(carol.path("c.txt"), b"carol's").expect("write");
    carol.ok(&["object", "push", "c.txt", "--vault", "alice/team"]);
    // Unsharing carol re-signs bob's keys with his right: still read-only, still readable.
    alice.ok(&["vault", "unshare", "team", "carol"]);
    bob.ok(&[
        "object",
        "pull",
        "c.txt",
        "--vault",
        "alice/team",
        "-o",
        "c-got.txt",
    ]);
    assert!(
        bob.fail(&["object", "push", "mine.txt", "--vault", "alice/team"])
            .contains("read-only")
    );
    // A server that upgrades bob to a writer is caught: the owner signed "read".
    server.operator_sql("UPDATE vault_members SET access = 'write' WHERE access = 'read'");
    let err = bob.fail(&["object", "ls", "--vault", "alice/team"]);
    assert!(err.contains("not signed by its owner"), "{err}");
    // The owner can make it a writer share for real.
    server.operator_sql("UPDATE vault_members SET access = 'read' WHERE access = 'write' AND signature <> '' AND user_id = (SELECT id FROM users WHERE name = 'bob')");
    alice.ok(&["vault", "share", "team", "bob"]);
    bob.ok(&["object", "push", "mine.txt", "--vault", "alice/team"]);
}

/// Vault ids are unique per owner: creating a vault with another tenant's id succeeds
/// exactly as with a fresh id (no oracle), and each owner's vault stays their own; reusing
/// one's own id is the only conflict.
#[test]
fn vault_ids_are_unique_per_owner() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    alice.ok(&["vault", "create", "team"]);
    std::fs::write(alice.path("a.txt"), b"alice's").expect("write");
    alice.ok(&["object", "push", "a.txt", "--vault", "team"]);
    let listed: serde_json::Value =
        serde_json::from_str(&alice.ok(&["vault", "ls", "--json"])).expect("json");
    let signed = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|v| v["name"] == "team")
        .and_then(|v| v["signed_id"].as_str())
        .expect("signed id")
        .to_string();
    let fresh = "0e3c1f6a-7d2b-4c59-9a51-2f8e6b1d4c77";
    // Another tenant's id and a fresh one get the same answer.
    for (name, id) in [("copy", signed.as_str()), ("new", fresh)] {
        let out = bob.run(&["vault", "create", name, "--id", id]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(bob.path("b.txt"), b"bob's").expect("write");
    bob.ok(&["object", "push", "b.txt", "--vault", "copy"]);
    assert_eq!(bob.ok(&["object", "ls", "--vault", "copy"]), "b.txt\n");
    assert_eq!(alice.ok(&["object", "ls", "--vault", "team"]), "a.txt\n");
    assert!(
        bob.fail(&["object", "ls", "--vault", "alice/team"])
            .contains("no vault")
    );
    // Only one's own id conflicts, and says so.
    let err = bob.fail(&["vault", "create", "again", "--id", fresh]);
    assert!(err.contains("already have a vault"), "{err}");
}
