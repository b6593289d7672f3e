//! Newcomer path, versions, vaults, sharing, interop with the `age` CLI, configuration.

use std::process::Command;

use crate::harness::*;

/// Acceptance 1: no configuration at all, as the README's first command runs it; the first
/// admin made on the server machine; a 100 MiB file round-trips.
#[test]
fn newcomer_path_with_no_configuration() {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin("enc-server"))
        .current_dir(cwd.path())
        .env_remove("ENC_DATA_DIR")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut fp = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(f) = line.strip_prefix("TLS certificate fingerprint: ") {
            fp = f.to_string();
        }
        if line.contains("listening on https://127.0.0.1:8443") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(fp.starts_with("SHA256:"), "fingerprint printed at start");
    assert!(
        cwd.path().join("enc-data/meta.sqlite").exists(),
        "default data dir ./enc-data"
    );
    let out = Command::new(bin("enc-server"))
        .current_dir(cwd.path())
        .args(["user", "create", "alice", "--role", "admin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "token alone on stdout");
    let printed_fp = Command::new(bin("enc-server"))
        .current_dir(cwd.path())
        .args(["cert", "fingerprint"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(printed_fp.stdout).unwrap().trim(), fp);

    let alice = User {
        name: "alice".into(),
        passphrase: "alice's long passphrase".into(),
        dir: tempfile::tempdir().unwrap(),
        server: "https://127.0.0.1:8443".into(),
        fingerprint: fp,
    };
    alice.ok(&["register", "--token", token.trim()]);
    random_file(&alice.path("big.bin"), 100 << 20);
    alice.ok(&["object", "push", "big.bin"]);
    alice.ok(&["object", "pull", "big.bin", "-o", "back.bin"]);
    assert!(same_file(&alice.path("big.bin"), &alice.path("back.bin")));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn versions_are_kept_listed_and_pullable() {
    let server = Server::start_with("versions_kept = 3\n", &[]);
    let alice = server.user("alice", "admin");
    for i in 1..=5 {
        std::fs::write(alice.path("notes.txt"), format!("version {i}\n")).unwrap();
        alice.ok(&["object", "push", "notes.txt"]);
    }
    let versions = alice.ok(&["object", "ls", "--versions", "notes.txt"]);
    let numbers: Vec<&str> = versions
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(numbers, ["5", "4", "3"], "three newest kept: {versions}");
    alice.ok(&[
        "object",
        "pull",
        "notes.txt",
        "--version",
        "4",
        "-o",
        "v4.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(alice.path("v4.txt")).unwrap(),
        "version 4\n"
    );
    alice.ok(&["object", "pull", "notes.txt", "-o", "latest.txt"]);
    assert_eq!(
        std::fs::read_to_string(alice.path("latest.txt")).unwrap(),
        "version 5\n"
    );
    let err = alice.fail(&["object", "pull", "notes.txt", "--version", "1"]);
    assert!(err.contains("no version 1"), "{err}");
    // Pruned blobs are deleted: exactly three blob files remain.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let blobs = server.blobs("blobs").len();
    assert_eq!(blobs, 3, "pruned versions' blobs are deleted");
    alice.ok(&["object", "rm", "notes.txt"]);
    assert_eq!(alice.ok(&["object", "ls"]), "");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        server.blobs("blobs").len(),
        0,
        "rm deletes every version's blob"
    );
}

pub fn count_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn directories_push_recursively_and_pull_by_prefix() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::create_dir_all(alice.path("proj/src")).unwrap();
    std::fs::write(alice.path("proj/README"), "readme").unwrap();
    std::fs::write(alice.path("proj/src/main.rs"), "fn main() {}").unwrap();
    alice.ok(&["object", "push", "proj"]);
    assert_eq!(
        alice.ok(&["object", "ls"]),
        "proj/README\nproj/src/main.rs\n"
    );
    alice.ok(&["object", "pull", "proj", "-o", "out"]);
    assert_eq!(
        std::fs::read_to_string(alice.path("out/proj/src/main.rs")).unwrap(),
        "fn main() {}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["object", "ls", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "proj/README");
    assert_eq!(json[0]["version"], 1);

    // A server or user other than the session's is refused, not silently replaced by it.
    let err = alice.fail(&["object", "ls", "--server", "https://127.0.0.1:1"]);
    assert!(
        err.contains("logged in to") && err.contains("enc logout"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = alice.fail(&["object", "push", "proj", "--user", "bob"]);
    assert!(err.contains("logged in as alice, not bob"), "{err}");
    // The same server with a trailing slash is the same server.
    let same = format!("{}/", server.url);
    assert_eq!(
        alice
            .ok(&["object", "ls", "--server", &same])
            .lines()
            .count(),
        2
    );
}

/// Acceptance 3: `enc key export` + `enc pull --raw` → stock `age -d -i` gives the bytes back.
#[test]
fn age_cli_decrypts_raw_objects() {
    if !have_tool("age") {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "user");
    random_file(&alice.path("data.bin"), 3 << 20);
    alice.ok(&["object", "push", "data.bin"]);
    let identity = alice.ok(&["key", "export"]);
    std::fs::write(alice.path("id.txt"), identity).unwrap();
    alice.ok(&["object", "pull", "--raw", "data.bin", "-o", "data.age"]);
    let out = Command::new("age")
        .args(["-d", "-i"])
        .arg(alice.path("id.txt"))
        .arg("-o")
        .arg(alice.path("data.out"))
        .arg(alice.path("data.age"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(same_file(&alice.path("data.bin"), &alice.path("data.out")));
}

/// Acceptance 10: share, pull, unshare; what is written afterwards is out of reach.
#[test]
fn sharing_and_unsharing() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    alice.ok(&["vault", "create", "team"]);
    std::fs::write(alice.path("plan.txt"), "the plan").unwrap();
    alice.ok(&["object", "push", "plan.txt", "--vault", "team"]);
    alice.ok(&["vault", "share", "team", "bob"]);
    let listed = bob.ok(&["vault", "ls"]);
    assert!(listed.contains("alice/team"), "{listed}");
    bob.ok(&[
        "object",
        "pull",
        "plan.txt",
        "--vault",
        "alice/team",
        "-o",
        "plan.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(bob.path("plan.txt")).unwrap(),
        "the plan"
    );
    // Bob keeps what he could already read; save his old vault keys as an attacker would.
    let bob_old_identity = bob.ok(&["key", "export", "--vault", "alice/team"]);

    alice.ok(&["vault", "unshare", "team", "bob"]);
    std::fs::write(alice.path("secret.txt"), "after unshare").unwrap();
    alice.ok(&["object", "push", "secret.txt", "--vault", "team"]);
    assert!(!bob.ok(&["vault", "ls"]).contains("alice/team"));
    let err = bob.fail(&["object", "pull", "secret.txt", "--vault", "alice/team"]);
    assert!(err.contains("no vault"), "{err}");
    // Alice still reads old and new objects.
    alice.ok(&[
        "object", "pull", "plan.txt", "--vault", "team", "-o", "p2.txt",
    ]);
    alice.ok(&[
        "object",
        "pull",
        "secret.txt",
        "--vault",
        "team",
        "-o",
        "s2.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(alice.path("s2.txt")).unwrap(),
        "after unshare"
    );
    // Even with the raw ciphertext (say, leaked by the server), Bob's old keys do not open it.
    if have_tool("age") {
        alice.ok(&[
            "object",
            "pull",
            "--raw",
            "secret.txt",
            "--vault",
            "team",
            "-o",
            "secret.age",
        ]);
        std::fs::write(bob.path("old-id.txt"), bob_old_identity).unwrap();
        let out = Command::new("age")
            .args(["-d", "-i"])
            .arg(bob.path("old-id.txt"))
            .arg(alice.path("secret.age"))
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "bob's old vault key must not decrypt new objects"
        );
    }
}

#[test]
fn admin_manages_users() {
    let server = Server::start();
    let admin = server.user("root", "admin");
    let token = admin.ok(&["user", "create", "carol", "--role", "user"]);
    assert_eq!(token.lines().count(), 1);
    let carol = User::new(&server, "carol");
    carol.ok(&["register", "--token", token.trim()]);
    std::fs::write(carol.path("f"), vec![7u8; 5000]).unwrap();
    carol.ok(&["object", "push", "f"]);
    let users = admin.ok(&["user", "ls"]);
    assert!(
        users
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["carol", "user", "active"])),
        "{users}"
    );
    // A plain user cannot administer.
    let err = carol.fail(&["user", "ls"]);
    assert!(err.contains("may not"), "{err}");
    admin.ok(&["user", "set-role", "carol", "admin"]);
    carol.ok(&["user", "ls"]);
    let err = admin.fail(&["user", "set-role", "carol", "emperor"]);
    assert!(err.contains("unknown role"), "{err}");
    admin.ok(&["user", "rm", "carol", "--yes"]);
    assert!(!admin.ok(&["user", "ls"]).contains("carol"));
    // The invitation is single-use.
    let again = User::new(&server, "carol");
    again.fail(&["register", "--token", token.trim()]);
}

#[test]
fn server_configuration_commands() {
    let out = Command::new(bin("enc-server"))
        .arg("--generate-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, &out.stdout).unwrap();
    let ok = Command::new(bin("enc-server"))
        .args(["--validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::write(&cfg, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let bad = Command::new(bin("enc-server"))
        .args(["--validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown field"));
    // A collector's horizon shorter than a second is refused, saying which setting.
    std::fs::write(&cfg, "[limits]\nreservation = \"0s\"\n").unwrap();
    let short = Command::new(bin("enc-server"))
        .args(["--validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!short.status.success());
    let said = String::from_utf8_lossy(&short.stderr);
    assert!(
        said.contains("limits.reservation must be at least 1s"),
        "{said}"
    );
    // Environment overrides the file, flags override the environment.
    std::fs::write(&cfg, "session_idle_timeout = \"5s\"\n").unwrap();
    let env_bad = Command::new(bin("enc-server"))
        .args(["--validate", "--config"])
        .arg(&cfg)
        .env("ENC_SESSION_IDLE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert!(
        !env_bad.status.success(),
        "bad environment value is an error"
    );
    let flag_wins = Command::new(bin("enc-server"))
        .args(["--validate", "--config"])
        .arg(&cfg)
        .env("ENC_LISTEN", "nonsense")
        .args(["--listen", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(
        flag_wins.status.success(),
        "{}",
        String::from_utf8_lossy(&flag_wins.stderr)
    );
}

#[test]
fn health_openapi_and_certificate_export() {
    let server = Server::start();
    let c = http();
    assert_eq!(health(&c, &server), 200);
    assert_eq!(
        c.get(format!("{}/readyz", server.url))
            .send()
            .unwrap()
            .status(),
        200
    );
    let doc: serde_json::Value = c
        .get(format!("{}/v1/openapi.json", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["paths"]["/v1/vaults/{id}/uploads"]["put"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let pem = server.admin_cmd(&["cert", "export"]);
    let pem = String::from_utf8(pem.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // A client that verifies against the exported certificate (as restic --cacert does).
    let strict = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/healthz", server.port);
        assert_eq!(strict.get(&url).send().unwrap().status(), 200, "{url}");
    }
}

#[test]
fn policy_file_defines_roles() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[roles.admin]\npermissions = [\"manage_users\", \"read_all_audit\", \"write_vaults\", \"share_vaults\"]\n\
         [roles.reader]\npermissions = []\n",
    )
    .unwrap();
    let server = Server::start_with(
        &format!("policy_file = {:?}\n", policy.display().to_string()),
        &[],
    );
    let admin = server.user("root", "admin");
    let reader = server.user("rita", "reader");
    std::fs::write(reader.path("f"), "x").unwrap();
    let err = reader.fail(&["object", "push", "f"]);
    assert!(err.contains("may not"), "{err}");
    reader.ok(&["object", "ls"]);
    // Roles outside the policy are refused, on the server machine and through the API.
    let out = server.admin_cmd(&[
        "user",
        "create",
        "x",
        "--role",
        "user",
        "--policy-file",
        policy.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
    let err = admin.fail(&["user", "create", "y", "--role", "user"]);
    assert!(err.contains("unknown role"), "{err}");
}

#[test]
fn operator_certificate_and_pinning() {
    // Use a certificate made elsewhere as the operator's "real" certificate.
    let other = Server::start();
    let cert = other.data_dir.join("tls/cert.pem");
    let key = other.data_dir.join("tls/key.pem");
    let server = Server::start_with(
        "",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(
        server.fingerprint, other.fingerprint,
        "serves the given certificate"
    );
    // No fingerprint and no terminal to confirm on: refuse, and say how to proceed.
    let token = server.invite("alice", "user");
    let alice = User {
        fingerprint: String::new(),
        ..User::new(&server, "alice")
    };
    let err = alice
        .cmd(&["register", "--token", &token])
        .env_remove("ENC_FINGERPRINT")
        .output()
        .unwrap();
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(msg.contains("--fingerprint SHA256:"), "{msg}");
    // A wrong pinned fingerprint is refused with a clear message.
    let wrong = User {
        fingerprint: format!("SHA256:{}", "0".repeat(64)),
        ..User::new(&server, "alice")
    };
    let msg = wrong.fail(&["register", "--token", &token]);
    assert!(
        msg.contains("does not match the pinned fingerprint"),
        "{msg}"
    );
    // The right one works.
    let alice = User::new(&server, "alice");
    alice.ok(&["register", "--token", &token]);
}

/// Versions stay verifiable and readable after their author's account is removed.
#[test]
fn versions_survive_the_removal_of_their_author() {
    let server = Server::start();
    let admin = server.user("root", "admin");
    let bob = server.user("bob", "user");
    admin.ok(&["vault", "create", "team"]);
    admin.ok(&["vault", "share", "team", "bob"]);
    std::fs::write(bob.path("by-bob.txt"), "written by bob").unwrap();
    bob.ok(&["object", "push", "by-bob.txt", "--vault", "root/team"]);
    admin.ok(&["user", "rm", "bob", "--yes"]);
    admin.ok(&[
        "object",
        "pull",
        "by-bob.txt",
        "--vault",
        "team",
        "-o",
        "got.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(admin.path("got.txt")).unwrap(),
        "written by bob"
    );
    let long = admin.ok(&["object", "ls", "--long", "--vault", "team"]);
    assert!(long.contains("bob"), "{long}");
}
