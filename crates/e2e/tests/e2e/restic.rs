//! The restic REST backend, driven by the real `restic` (Debian's package) over TLS with
//! `--cacert` and the certificate `enc-server cert export` prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// One restic repository on the server, as one token sees it.
pub(crate) struct Repo {
    url_base: String,
    user: String,
    repo: String,
    token: String,
    cacert: PathBuf,
    cache: PathBuf,
}

impl Repo {
    pub(crate) fn new(server: &Server, user: &User, repo: &str, token: &str, tmp: &Path) -> Self {
        let cacert = tmp.join("server.pem");
        if !cacert.exists() {
            let out = server.admin_cmd(&["cert", "export"]);
            assert!(out.status.success(), "cert export failed");
            std::fs::write(&cacert, out.stdout).expect("write cacert");
        }
        Self {
            url_base: server.url.clone(),
            user: user.name.clone(),
            repo: repo.to_string(),
            token: token.to_string(),
            cacert,
            cache: tmp.join("restic-cache"),
        }
    }

    /// Repository `repo` of `user` with a full token, initialised, holding one snapshot of
    /// `dir` (a directory of the user's); `None` without restic (outside CI).
    pub(crate) fn with_snapshot(
        server: &Server,
        user: &User,
        repo: &str,
        dir: &str,
    ) -> Option<Self> {
        have_tool("restic").then(|| {
            let r = Self::new(
                server,
                user,
                repo,
                &restic_token(user, repo, "full"),
                user.dir.path(),
            );
            r.ok(&["init"]);
            r.ok(&["backup", &user.path(dir).display().to_string()]);
            r
        })
    }

    /// The same repository through another token.
    fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_string(),
            url_base: self.url_base.clone(),
            user: self.user.clone(),
            repo: self.repo.clone(),
            cacert: self.cacert.clone(),
            cache: self.cache.clone(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let (scheme, host) = self.url_base.split_once("://").expect("url");
        let mut c = Command::new("restic");
        c.args(["--cacert", &self.cacert.display().to_string()])
            .args(["--cache-dir", &self.cache.display().to_string()])
            .args(args)
            .env(
                "RESTIC_REPOSITORY",
                format!(
                    "rest:{scheme}://{}:{}@{host}/restic/{}/{}/",
                    self.user, self.token, self.user, self.repo
                ),
            )
            .env("RESTIC_PASSWORD", "restic repository password")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running restic")
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "restic {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "restic {args:?} succeeded but should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// One large random file plus `small` small random files in nested directories.
fn corpus(dir: &Path, big: u64, small: usize) {
    use rand::{Rng as _, RngCore as _};
    std::fs::create_dir_all(dir).expect("mkdir");
    if big > 0 {
        random_file(&dir.join("big.bin"), big);
    }
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; 16 << 10];
    for i in 0..small {
        let sub = dir.join(format!("d{:02}/e{:02}", i % 50, (i / 50) % 20));
        if i < 1000 {
            std::fs::create_dir_all(&sub).expect("mkdir");
        }
        let n = rng.gen_range(1..buf.len());
        rng.fill_bytes(&mut buf[..n]);
        std::fs::write(sub.join(format!("f{i}.dat")), &buf[..n]).expect("write");
    }
}

fn diff(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("diff");
    assert!(
        out.status.success(),
        "restored tree differs: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Bytes of the small restic files the server keeps in their database rows.
fn inline_bytes(server: &Server) -> u64 {
    let sum = server.operator_sql("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM restic_objects");
    sum.parse().expect("a number")
}

/// Waits (up to 90 s, for the collector) until the restic bytes stored, in blobs and in
/// database rows, add up to `usage`.
fn assert_stored_bytes(server: &Server, usage: u64) {
    let stored = || server.blob_bytes("restic") + inline_bytes(server);
    let deadline = Instant::now() + Duration::from_secs(90);
    while stored() != usage && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(stored(), usage, "usage must equal stored bytes");
}

/// Small files (keys, snapshots, locks) are kept in their rows, whole, with no blob; large
/// ones (the packs of the big file) have a blob of their exact size and no bytes in the row.
fn assert_small_files_inline(server: &Server) {
    let bad = server.operator_sql(
        "SELECT COUNT(*) FROM restic_objects WHERE \
         (data IS NOT NULL AND (LENGTH(data) <> size OR blob_key <> '')) OR \
         (data IS NULL AND blob_key = '')",
    );
    assert_eq!(
        bad, "0",
        "rows whose bytes are neither inline nor in a blob"
    );
    let inline = server.operator_sql(
        "SELECT COUNT(*) FROM restic_objects WHERE data IS NOT NULL AND kind IN ('keys', 'snapshots')",
    );
    assert_ne!(inline, "0", "keys and snapshots should be kept inline");
    let blobs = server.blobs("restic");
    assert!(
        blobs
            .iter()
            .all(|(k, _)| !k.contains("/keys/") && !k.contains("/snapshots/")),
        "small files must not have blobs: {blobs:?}"
    );
    assert!(blobs.iter().any(|(k, _)| k.contains("/data/")), "{blobs:?}");
}

fn usage(admin: &User, name: &str) -> (u64, Option<u64>) {
    let v: serde_json::Value =
        serde_json::from_str(&admin.ok(&["user", "ls", "--json"])).expect("json");
    let u = v
        .as_array()
        .expect("array")
        .iter()
        .find(|u| u["name"] == name)
        .expect("user listed")
        .clone();
    (
        u["usage_bytes"].as_u64().expect("usage"),
        u["quota_bytes"].as_u64(),
    )
}

/// A server with user alice (role `user`), a corpus in `tmp/src` and an initialised
/// repository `r` reached by a full token.
struct Fixture {
    server: Server,
    alice: User,
    tmp: tempfile::TempDir,
    src: PathBuf,
    full: Repo,
}

fn fixture(big: u64, small: usize) -> Fixture {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    corpus(&src, big, small);
    let full = Repo::new(
        &server,
        &alice,
        "r",
        &restic_token(&alice, "r", "full"),
        tmp.path(),
    );
    full.ok(&["init"]);
    Fixture {
        server,
        alice,
        tmp,
        src,
        full,
    }
}

/// Restores the latest snapshot (with `extra` global options) and compares it with `src`.
fn restore_matches(repo: &Repo, extra: &[&str], tmp: &Path, src: &Path) {
    let out = tmp.join("restore");
    let target = out.display().to_string();
    let mut args = extra.to_vec();
    args.extend(["restore", "latest", "--target", &target]);
    repo.ok(&args);
    diff(src, &out.join(src.strip_prefix("/").expect("absolute")));
}

#[test]
fn restic_backup_check_restore_forget_prune() {
    if !have_tool("restic") {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "admin");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    // 440 MiB in one file plus 10,000 small files (about 78 MiB): over 500 MiB in all.
    corpus(&src, 440 << 20, 10_000);
    let tok = restic_token(&alice, "photos", "full");
    let repo = Repo::new(&server, &alice, "photos", &tok, tmp.path());
    repo.ok(&["init"]);
    repo.ok(&["backup", "--quiet", &src.display().to_string()]);
    // A second snapshot with changes, so that forget --prune has something to remove.
    std::fs::remove_file(src.join("d00/e00/f0.dat")).expect("rm");
    random_file(&src.join("extra.bin"), 8 << 20);
    repo.ok(&["backup", "--quiet", &src.display().to_string()]);
    assert_small_files_inline(&server);
    let snaps: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    assert_eq!(snaps.as_array().expect("array").len(), 2);
    repo.ok(&["check", "--read-data"]);
    let out = tmp.path().join("restore");
    repo.ok(&["restore", "latest", "--target", &out.display().to_string()]);
    diff(&src, &out.join(src.strip_prefix("/").expect("absolute")));

    let (before, _) = usage(&alice, "alice");
    assert!(
        before > 500 << 20,
        "usage {before} should count the repository"
    );
    repo.ok(&["forget", "--keep-last", "1", "--prune"]);
    let snaps: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    assert_eq!(snaps.as_array().expect("array").len(), 1);
    repo.ok(&["check"]);
    let (after, _) = usage(&alice, "alice");
    assert!(after <= before, "prune must not grow usage");
    // Usage in the database matches what is on disk once deleted blobs are collected.
    assert_stored_bytes(&server, after);

    // The repository is listed, and the audit trail has its creation and the token.
    let repos = alice.ok(&["restic", "ls"]);
    assert!(repos.contains("photos"), "{repos}");
    let audit = alice.ok(&["audit"]);
    for action in ["token.create", "restic.repo.create", "token.use"] {
        assert!(audit.contains(action), "audit lacks {action}: {audit}");
    }
    alice.ok(&["audit", "--all", "--verify"]);
}

#[test]
fn restic_append_only_token_cannot_delete() {
    if !have_tool("restic") {
        return;
    }
    // Every field bound: an unbound one would be dropped (server stopped, files deleted) here.
    let Fixture {
        server: _server,
        alice,
        tmp,
        src,
        full,
    } = fixture(4 << 20, 200);
    let append = full.with_token(&restic_token(&alice, "r", "append-only"));
    append.ok(&["backup", "--quiet", &src.display().to_string()]);
    random_file(&src.join("more.bin"), 1 << 20);
    append.ok(&["backup", "--quiet", &src.display().to_string()]);
    let err = append.fail(&["forget", "--keep-last", "1", "--prune"]);
    assert!(err.contains("403"), "{err}");
    // Nothing was removed: both snapshots are there and the repository checks out.
    let snaps: serde_json::Value =
        serde_json::from_str(&append.ok(&["snapshots", "--json"])).expect("json");
    assert_eq!(snaps.as_array().expect("array").len(), 2);
    append.ok(&["unlock"]);
    append.ok(&["check", "--read-data"]);
    restore_matches(&append, &[], tmp.path(), &src);
    // The refusals are audited.
    let audit = alice.ok(&["audit"]);
    assert!(audit.contains("restic.refused"), "{audit}");
}

#[test]
fn restic_read_only_token_restores_but_cannot_write() {
    if !have_tool("restic") {
        return;
    }
    // Every field bound: an unbound one would be dropped (server stopped, files deleted) here.
    let Fixture {
        server: _server,
        alice,
        tmp,
        src,
        full,
    } = fixture(2 << 20, 100);
    full.ok(&["backup", "--quiet", &src.display().to_string()]);
    let ro = full.with_token(&restic_token(&alice, "r", "read-only"));
    random_file(&src.join("new.bin"), 1 << 20);
    let err = ro.fail(&["backup", &src.display().to_string()]);
    assert!(err.contains("403"), "{err}");
    // Restoring needs no lock (a read-only token cannot write one).
    std::fs::remove_file(src.join("new.bin")).expect("rm");
    restore_matches(&ro, &["--no-lock"], tmp.path(), &src);
    ro.ok(&["--no-lock", "check"]);
}

#[test]
fn restic_quota_refuses_with_507_and_stores_nothing_partial() {
    if !have_tool("restic") {
        return;
    }
    let server = Server::start();
    let admin = server.user("root", "admin");
    let alice = server.user("alice", "user");
    admin.ok(&["user", "set-quota", "alice", "12MiB"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let small = tmp.path().join("small");
    corpus(&small, 2 << 20, 50);
    let repo = Repo::new(
        &server,
        &alice,
        "r",
        &restic_token(&alice, "r", "full"),
        tmp.path(),
    );
    repo.ok(&["init"]);
    repo.ok(&["backup", "--quiet", &small.display().to_string()]);
    let big = tmp.path().join("big");
    corpus(&big, 40 << 20, 0);
    let err = repo.fail(&["backup", &big.display().to_string()]);
    assert!(
        err.contains("507") || err.contains("Insufficient Storage"),
        "restic should report the quota: {err}"
    );
    let (used, quota) = usage(&admin, "alice");
    assert_eq!(quota, Some(12 << 20));
    assert!(used <= 12 << 20, "usage {used} over quota");
    // Nothing partial: the stored bytes are exactly what the database accounts for.
    assert_stored_bytes(&server, used);
    let listed = admin.ok(&["user", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("alice ") && l.contains("12.0 MiB")),
        "{listed}"
    );
    // The earlier snapshot is intact.
    repo.ok(&["unlock"]);
    repo.ok(&["check", "--read-data"]);

    // A raw upload over quota gets 507 directly (restic retried it above).
    let body = vec![7u8; 16 << 20];
    let name = sha256_hex(&body);
    let resp = http()
        .post(format!("{}/restic/alice/r/data/{name}", server.url))
        .basic_auth("alice", Some(&repo.token))
        .body(body)
        .send()
        .expect("post");
    assert_eq!(resp.status().as_u16(), 507);
    let resp = http()
        .head(format!("{}/restic/alice/r/data/{name}", server.url))
        .basic_auth("alice", Some(&repo.token))
        .send()
        .expect("head");
    assert_eq!(resp.status().as_u16(), 404);
    // Raising the quota lets the backup through.
    admin.ok(&["user", "set-quota", "alice", "1GiB"]);
    repo.ok(&["backup", "--quiet", &big.display().to_string()]);
}

#[test]
fn restic_tokens_of_one_user_reach_nothing_of_another() {
    if !have_tool("restic") {
        return;
    }
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    corpus(&src, 1 << 20, 20);
    let bob_tok = restic_token(&bob, "r", "full");
    let bob_repo = Repo::new(&server, &bob, "r", &bob_tok, tmp.path());
    bob_repo.ok(&["init"]);
    bob_repo.ok(&["backup", "--quiet", &src.display().to_string()]);
    // Alice has a repository of the same name and one of another name.
    let alice_r = restic_token(&alice, "r", "full");
    let alice_other = restic_token(&alice, "other", "full");
    Repo::new(&server, &alice, "r", &alice_r, tmp.path()).ok(&["init"]);

    let c = http();
    let listing = |tok: &str| -> Vec<String> {
        let mut all = Vec::new();
        for t in ["data", "index", "keys", "locks", "snapshots"] {
            let r = c
                .get(format!("{}/restic/bob/r/{t}/", server.url))
                .basic_auth("bob", Some(tok))
                .header("Accept", "application/vnd.x.restic.rest.v2")
                .send()
                .expect("list");
            assert_eq!(r.status().as_u16(), 200);
            let v: serde_json::Value = r.json().expect("json");
            for o in v.as_array().expect("array") {
                all.push(format!("{t}/{}", o["name"].as_str().expect("name")));
            }
        }
        all.sort();
        all
    };
    let before = listing(&bob_tok);
    assert!(before.len() >= 4, "{before:?}");
    let mut paths: Vec<String> = vec![String::new(), "?create=true".into(), "config".into()];
    for t in ["data", "index", "keys", "locks", "snapshots"] {
        paths.push(format!("{t}/"));
    }
    paths.extend(before.iter().cloned());
    paths.push(format!("data/{}", "0".repeat(64)));
    let creds: Vec<(&str, &str)> = vec![
        ("alice", &alice_r),
        ("alice", &alice_other),
        ("bob", &alice_r),
        ("bob", &alice_other),
        ("bob", "enc_0000000000000000_guess"),
        ("bob", ""),
    ];
    let methods = ["HEAD", "GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"];
    let mut checked = 0;
    for (user, tok) in &creds {
        for p in &paths {
            for m in methods {
                let url = format!("{}/restic/bob/r/{p}", server.url);
                let rb = c
                    .request(m.parse().expect("method"), &url)
                    .basic_auth(user, Some(tok))
                    .body(b"x".to_vec());
                let status = rb.send().expect("send").status().as_u16();
                // 429 once the guesses from this address start backing off: still no access.
                assert!(
                    status == 401 || status == 429,
                    "{m} {url} as {user} gave {status}"
                );
                checked += 1;
            }
        }
    }
    // Requests with no credentials at all.
    for p in &paths {
        let url = format!("{}/restic/bob/r/{p}", server.url);
        assert_eq!(c.get(&url).send().expect("send").status().as_u16(), 401);
    }
    assert!(checked > 500);
    assert_eq!(listing(&bob_tok), before, "bob's repository changed");
    bob_repo.ok(&["check", "--read-data"]);
    // A revoked token stops working at once.
    let id = bob.ok(&["token", "ls", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&id).expect("json");
    let id = v[0]["id"].as_str().expect("id").to_string();
    bob.ok(&["token", "revoke", &id]);
    // 401, or 429 since this address made many failed attempts above.
    let err = bob_repo.fail(&["snapshots"]);
    assert!(err.contains("401") || err.contains("429"), "{err}");
}

#[test]
fn restic_survives_kill9_during_backup() {
    if !have_tool("restic") {
        return;
    }
    use rand::Rng as _;
    let Fixture {
        mut server,
        alice: _alice,
        tmp: _tmp,
        src,
        full: repo,
    } = fixture(0, 300);
    let mut rng = rand::thread_rng();
    for round in 0..10 {
        // New data every round, so each backup has uploads in flight.
        random_file(&src.join(format!("round{round}.bin")), 24 << 20);
        let mut child = repo
            .cmd(&["backup", "--quiet", &src.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restic backup");
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..1500)));
        server.restart();
        // restic retries through the outage; whether it finishes or gives up, the
        // repository must check out.
        let deadline = Instant::now() + Duration::from_secs(180);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        repo.ok(&["unlock"]);
        let out = repo.run(&["check"]);
        assert!(
            out.status.success(),
            "round {round}: restic check failed after kill -9: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    repo.ok(&["backup", "--quiet", &src.display().to_string()]);
    repo.ok(&["check", "--read-data"]);
}

#[test]
fn restic_metrics_and_repository_removal() {
    let server = Server::start_with("", &["--metrics-listen", "127.0.0.1:0"]);
    let alice = server.user("alice", "admin");
    let tok = restic_token(&alice, "r", "full");
    let c = http();
    let base = format!("{}/restic/alice/r", server.url);
    let created = c
        .post(format!("{base}/?create=true"))
        .basic_auth("alice", Some(&tok))
        .send()
        .expect("create");
    assert_eq!(created.status().as_u16(), 200);
    let body = vec![42u8; 3000];
    let put = c
        .post(format!("{base}/data/{}", sha256_hex(&body)))
        .basic_auth("alice", Some(&tok))
        .body(body)
        .send()
        .expect("post");
    assert_eq!(put.status().as_u16(), 200);

    // The metrics listener (its address is in the server's log).
    let log = std::fs::read_to_string(&server.log).expect("log");
    let url = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("metrics on "))
        .expect("metrics address logged")
        .to_string();
    let text = c.get(&url).send().expect("metrics").text().expect("text");
    assert!(
        text.contains(
            r#"enc_blob_operations_total{user="alice",repo="r",type="data",op="write"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"enc_blob_bytes_total{user="alice",repo="r",type="data",op="write"} 3000"#),
        "{text}"
    );
    assert!(
        text.contains("enc_http_request_duration_seconds_bucket"),
        "{text}"
    );

    // Removing the repository deletes its blobs and credits the usage.
    let repos = alice.ok(&["restic", "ls"]);
    assert!(
        repos
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["r", "1"])),
        "{repos}"
    );
    assert_eq!(usage(&alice, "alice").0, 3000);
    alice.ok(&["restic", "rm", "r", "--yes"]);
    let repos = alice.ok(&["restic", "ls"]);
    assert!(!repos.lines().any(|l| l.starts_with("r ")), "{repos}");
    assert_eq!(usage(&alice, "alice").0, 0);
    assert_stored_bytes(&server, 0);
    assert!(alice.ok(&["audit"]).contains("restic.repo.delete"));
    let err = alice.fail(&["restic", "rm", "r", "--yes"]);
    assert!(err.contains("not found"), "{err}");
}

/// The self-signed certificate names the machine, so restic reaches the server by its host
/// name with `--cacert` alone (no `--tls-name` at the server, no `--insecure-tls`).
#[test]
fn restic_reaches_the_server_by_its_host_name() {
    if !have_tool("restic") {
        return;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("host name")
        .trim()
        .to_string();
    let server = Server::start();
    let alice = server.user("alice", "user");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut repo = Repo::new(
        &server,
        &alice,
        "by-name",
        &restic_token(&alice, "by-name", "full"),
        tmp.path(),
    );
    // The name must lead to this machine for restic to connect; the certificate must name it.
    use std::net::ToSocketAddrs as _;
    let resolves = (host.as_str(), server.port)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.any(|a| a.ip().is_loopback()));
    assert!(
        resolves,
        "{host} does not resolve to a loopback address here (add it to /etc/hosts)"
    );
    repo.url_base = format!("https://{host}:{}", server.port);
    repo.ok(&["init"]);
    assert!(repo.ok(&["snapshots", "--json"]).trim() == "[]");
}
