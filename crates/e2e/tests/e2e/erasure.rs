//! Erasure (issue 17): an erased user leaves nothing on the server (a byte search of the data
//! directory, the PostgreSQL dump and the bucket finds neither their name nor their blobs,
//! and their id only in the tombstone), what they wrote into others' vaults stays there and
//! verifies, the audit chain verifies, and a server killed in the middle of the job finishes
//! it after a restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::security::{contains, stored_bytes};

/// The erased user's name: long enough that no ciphertext holds it by chance.
const NAME: &str = "zelda-erasure-target";
const RECORDS: &str = "[records]\nenabled = true\n";

/// `GET /v1/erasures/{id}`, until `done(job)` or 60 s.
fn wait_job(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let c = http();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c
            .get(format!("{}/v1/erasures/{id}", server.url))
            .send()
            .expect("GET /v1/erasures");
        if r.status() == 200 {
            let job: Value = r.json().expect("json");
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "the erasure did not get on: {job}"
            );
        } else {
            assert!(Instant::now() < deadline, "erasure status: {}", r.status());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Uploads `file` as Mercury archive `name` with `token` through Python's `websockets`;
/// `false` (skipped) without them, outside CI.
pub(crate) fn mercury_upload(
    server: &Server,
    token: &str,
    name: &str,
    file: &Path,
    dir: &Path,
) -> bool {
    let Some(out) = mercury_try_upload(server, token, name, file, dir) else {
        return false;
    };
    assert!(
        out.status.success(),
        "mercury upload: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Checks that a Mercury upload was refused (the client exits 3) with a message containing
/// `words`; what the client said.
pub(crate) fn assert_mercury_refused(out: &std::process::Output, words: &str) -> String {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains(words), "{said}");
    said
}

/// The same upload, whatever comes of it (the client prints a refusal and exits 3); `None`
/// without Python's `websockets`, outside CI.
pub(crate) fn mercury_try_upload(
    server: &Server,
    token: &str,
    name: &str,
    file: &Path,
    dir: &Path,
) -> Option<std::process::Output> {
    if !have_python_websockets() {
        return None;
    }
    let cafile = dir.join("server.pem");
    let out = server.admin_cmd(&["cert", "export"]);
    assert!(out.status.success(), "cert export failed");
    std::fs::write(&cafile, out.stdout).expect("write cacert");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mercury_client.py");
    let url = format!("{}/ws", server.url.replacen("https://", "wss://", 1));
    Some(
        Command::new("python3")
            .arg(script)
            .args(["--url", &url, "--cafile", &cafile.display().to_string()])
            .args(["upload", "--dialect", "json", "--key", token])
            .args(["--name", name, "--file", &file.display().to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("python3"),
    )
}

/// A user's usage counter, as stored.
fn usage(server: &Server, who: &str) -> String {
    server.operator_sql(&format!(
        "SELECT usage_bytes FROM users WHERE name = '{who}'"
    ))
}

/// Every file and directory below `dir`.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            walk(&e.path(), out);
        }
    }
}

fn blob_keys(server: &Server) -> BTreeSet<String> {
    server
        .blobs("")
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !k.contains("staging"))
        .collect()
}

/// Acceptance 3: everything of the user goes, through a kill -9 in the middle of the job;
/// bob's vaults, with what she wrote into one of them, stay verifiable, as does the audit
/// chain; usage adds up.
#[test]
fn an_erased_user_leaves_nothing_and_a_killed_erasure_finishes() {
    let mut server =
        Server::start_with_env(RECORDS, &[], &[("ENC_TEST_PAUSE_ERASURE_AT", "audit")]);
    let root = server.user("root", "admin");
    let bob = server.user("bob", "user");
    let zelda = server.user(NAME, "user");

    // A device of hers certified under a name that is hers too: the chain kept for her
    // commits must not keep it.
    std::fs::write(
        zelda.path("app.pub"),
        enc_crypto::device::DeviceKey::generate().public_b64(),
    )
    .unwrap();
    let app_name = format!("{NAME}-phone");
    zelda.ok(&[
        "device",
        "add",
        "--public-key",
        "app.pub",
        "--name",
        &app_name,
    ]);
    // Bob's vault tree, shared with her: she pulls it and pushes a file into it (a tree
    // commit in a vault she does not own); and his vault of objects from before trees,
    // where she writes a version.
    bob.ok(&["vault", "create", "team"]);
    std::fs::write(bob.path("plan.txt"), "bob's plan").unwrap();
    bob.ok(&["push", "plan.txt", "--vault", "team"]);
    bob.ok(&["vault", "share", "team", NAME]);
    bob.ok(&["vault", "create", "old"]);
    bob.ok(&["vault", "share", "old", NAME]);
    zelda.ok(&["pull", "--vault", "bob/team", "-o", "from-bob"]);
    std::fs::write(zelda.path("review.txt"), "zelda's review of the plan").unwrap();
    zelda.ok(&["push", "review.txt", "--vault", "bob/team"]);
    std::fs::write(zelda.path("note.txt"), "zelda's note for bob").unwrap();
    zelda.ok(&["object", "push", "note.txt", "--vault", "bob/old"]);
    let kept = blob_keys(&server);

    // Everything of her own: a vault tree, a backup, a record, a restic repository with a
    // snapshot, a Mercury archive.
    std::fs::create_dir_all(zelda.path("proj/src")).unwrap();
    std::fs::write(zelda.path("proj/src/main.rs"), "fn main() {}").unwrap();
    std::fs::write(zelda.path("proj/big.bin"), vec![7u8; 3 << 20]).unwrap();
    zelda.ok(&["push", "proj"]);
    std::fs::write(zelda.path("report.pdf"), vec![42u8; 100_000]).unwrap();
    zelda.ok(&["backup", "put", "report.pdf", "--class", "Confidential"]);
    std::fs::write(zelda.path("record.txt"), "zelda's record").unwrap();
    zelda.ok(&["record", "put", "record.txt"]);
    let restic = have_tool("restic");
    if restic {
        let repo = crate::restic::Repo::new(
            &server,
            &zelda,
            "laptop",
            &restic_token(&zelda, "laptop", "full"),
            zelda.dir.path(),
        );
        repo.ok(&["init"]);
        repo.ok(&["backup", &zelda.path("proj").display().to_string()]);
    }
    let restic_token_value = restic_token(&zelda, "spare", "read-only");
    let mercury_token = zelda
        .ok(&["token", "create", "--mercury", "--label", "hecate"])
        .trim()
        .to_string();
    random_file(&zelda.path("archive.hecate"), 200_000);
    let mercury = mercury_upload(
        &server,
        &mercury_token,
        "archive.hecate",
        &zelda.path("archive.hecate"),
        zelda.dir.path(),
    );
    let hers: BTreeSet<String> = blob_keys(&server).difference(&kept).cloned().collect();
    assert!(hers.len() >= 3, "her blobs: {hers:?}");
    let id = server.operator_sql(&format!("SELECT id FROM users WHERE name = '{NAME}'"));
    assert!(id.len() >= 16, "user id {id:?}");
    let bob_usage = usage(&server, "bob");
    // The search below can find what it looks for.
    assert!(
        stored_bytes(&server)
            .iter()
            .any(|(_, b)| contains(b, NAME.as_bytes()) && contains(b, id.as_bytes())),
        "her name and id are stored before the erasure"
    );

    // An admin erases her; the job stops before the audit step (the test hook), the server
    // is killed there, and restarted without the hook.
    let started: Value = http()
        .delete(format!("{}/v1/users/{NAME}?erase=true", server.url))
        .bearer_auth(root.token())
        .send()
        .expect("DELETE")
        .json()
        .expect("json");
    let job = started["id"].as_str().expect("job id").to_string();
    let paused = wait_job(&server, &job, |j| j["step"] == "audit");
    assert_eq!(paused["state"], "running");
    // Her credentials stopped working at the start.
    let err = zelda.fail(&["vault", "ls"]);
    assert!(err.contains("log in") || err.contains("session"), "{err}");
    let refused = root.fail(&["user", "rm", "--erase", "--yes", NAME]);
    assert!(refused.contains("already running"), "{refused}");
    let refused = root.fail(&["user", "rm", "--yes", NAME]);
    assert!(refused.contains("being erased"), "{refused}");
    // Her chain has left `account_links` for `kept_links` (the `credentials` step), her
    // row is still there: readers of bob's vault still check her commit meanwhile.
    bob.ok(&["pull", "--vault", "team", "-o", "during"]);
    bob.assert_file("during/review.txt", "zelda's review of the plan");
    // Her restic client keeps trying with its old token: refused, and counted under a
    // keyed hash of her name (her row, being erased, is no account any more).
    let restic_tries = |server: &Server| {
        let tries = http()
            .get(format!("{}/restic/{NAME}/laptop/config", server.url))
            .basic_auth(NAME, Some(&restic_token_value))
            .send()
            .expect("restic GET");
        assert_eq!(tries.status(), 401);
    };
    restic_tries(&server);
    server.kill9();
    // On the local disk, one of her blobs cannot be deleted for a while (a directory stands
    // where the file was): the job must wait at `collect`, not report done.
    // Someone else's queued blob that can never be deleted does not hold her job.
    let stuck = server.s3_prefix.is_none().then(|| {
        let key = hers.iter().next().expect("a blob of hers");
        let path = server.data_dir.join("objects").join(key);
        std::fs::remove_file(&path).expect("remove blob");
        std::fs::create_dir_all(path.join("in-the-way")).expect("mkdir");
        let never = server.data_dir.join("objects/blobs/someone-else/stuck");
        std::fs::create_dir_all(never.join("in-the-way")).expect("mkdir");
        server.operator_sql(
            "INSERT INTO blob_gc (blob_key, queued) VALUES ('blobs/someone-else/stuck', 0)",
        );
        path
    });
    server.set_env("ENC_TEST_PAUSE_ERASURE_AT", None);
    server.restart();
    if let Some(path) = stuck {
        let waiting = wait_job(&server, &job, |j| j["step"] == "collect");
        assert_eq!(waiting["state"], "running");
        std::thread::sleep(Duration::from_secs(6));
        let still = wait_job(&server, &job, |_| true);
        assert_eq!(
            (still["state"].as_str(), still["step"].as_str()),
            (Some("running"), Some("collect")),
            "a blob could not be deleted, yet the job went on"
        );
        std::fs::remove_dir_all(&path).expect("clear the way");
    }
    let done = wait_job(&server, &job, |j| j["state"] == "done");
    let removed = &done["removed"];
    for (what, at_least) in [
        ("vaults", 1),
        ("backups", 1),
        ("records", 1),
        ("memberships", 2),
        ("versions_kept_in_others_vaults", 1),
        ("sessions", 1),
        ("devices", 2),
        ("account_links_kept_nameless", 2),
        ("audit_entries_redacted", 5),
        ("account", 1),
    ] {
        assert!(
            removed[what].as_u64().unwrap_or(0) >= at_least,
            "{what}: {done}"
        );
    }
    if restic {
        assert_eq!(removed["restic_repositories"], 1, "{done}");
    }
    if mercury {
        assert_eq!(removed["mercury_archives"], 1, "{done}");
    }
    assert_eq!(done["left"]["audit_entries_left_naming"], 0, "{done}");
    assert_eq!(done["left"]["commits_left_naming"], 0, "{done}");
    let label = done["label"].as_str().unwrap().to_string();

    // Nothing of her is left: not her name anywhere, not one of her blobs; her id only in
    // the tombstone entry.
    let left = blob_keys(&server);
    let survived: Vec<&String> = hers.intersection(&left).collect();
    assert!(survived.is_empty(), "her blobs survived: {survived:?}");
    assert!(kept.is_subset(&left), "bob's blobs went with hers");
    let mut id_seen = Vec::new();
    for (what, bytes) in stored_bytes(&server) {
        assert!(
            !contains(&bytes, NAME.as_bytes()),
            "{what} still holds her name"
        );
        let n = bytes
            .windows(id.len())
            .filter(|w| *w == id.as_bytes())
            .count();
        if n > 0 {
            id_seen.push((what, n));
        }
    }
    assert_eq!(
        id_seen.iter().map(|(_, n)| n).sum::<usize>(),
        1,
        "her id must survive in the tombstone only: {id_seen:?}"
    );
    // Her clients keep trying after the erasure (a restic cron, a login, an SSH login): a
    // name no account has is written down as a keyed hash, so hers does not come back.
    restic_tries(&server);
    zelda.fail(&["login"]);
    let challenge: Value = http()
        .post(format!("{}/v1/auth/ssh/challenge", server.url))
        .json(&serde_json::json!({"user": NAME}))
        .send()
        .expect("challenge")
        .json()
        .expect("json");
    let ssh = http()
        .post(format!("{}/v1/auth/ssh/login", server.url))
        .json(&serde_json::json!({"user": NAME, "id": challenge["id"], "signature": "x"}))
        .send()
        .expect("ssh login");
    assert_eq!(ssh.status(), 401);
    let register = http()
        .post(format!("{}/v1/auth/register", server.url))
        .json(&serde_json::json!({"user": NAME, "invitation": "stale"}))
        .send()
        .expect("register");
    assert!(register.status().is_client_error(), "{}", register.status());

    for (what, bytes) in stored_bytes(&server) {
        assert!(
            !contains(&bytes, NAME.as_bytes()),
            "{what} holds her name again"
        );
    }
    let mut paths = Vec::new();
    walk(&server.data_dir, &mut paths);
    for p in paths {
        let p = p.display().to_string();
        assert!(!p.contains(&id) && !p.contains(NAME), "{p} names her");
    }
    assert_eq!(
        server.operator_sql("SELECT COUNT(*) FROM audit WHERE actor LIKE 'records:%'"),
        "0",
        "her records' entries name her pseudonym"
    );
    assert_eq!(
        server.operator_sql(&format!("SELECT action FROM audit WHERE target = '{id}'")),
        "user.erased"
    );

    // Bob's vaults still verify, her note and her commit among them, attributed to the
    // erasure's label: on his device, and on a new one that checks her kept chain from its
    // first link (by her account key: no name, no id).
    bob.ok(&["pull", "--vault", "team", "-o", "again"]);
    bob.assert_file("again/plan.txt", "bob's plan");
    bob.assert_file("again/review.txt", "zelda's review of the plan");
    let log = bob.ok(&["log", "--vault", "team"]);
    assert!(log.contains(&label), "{log}");
    let fresh = User::new(&server, "bob");
    fresh.ok(&["login"]);
    fresh.ok(&["pull", "--vault", "team", "-o", "fresh"]);
    fresh.assert_file("fresh/review.txt", "zelda's review of the plan");
    assert!(
        server
            .operator_sql("SELECT COUNT(*) FROM kept_links")
            .parse::<u64>()
            .unwrap()
            >= 2,
        "her chain is kept for her commits"
    );
    bob.ok(&[
        "object",
        "pull",
        "note.txt",
        "--vault",
        "old",
        "-o",
        "note-back.txt",
    ]);
    bob.assert_file("note-back.txt", "zelda's note for bob");
    let versions = bob.ok(&["object", "ls", "--vault", "old", "--versions", "note.txt"]);
    assert!(versions.contains(&label), "{versions}");
    assert_eq!(usage(&server, "bob"), bob_usage, "bob's usage moved");
    // And it adds up: his vaults' versions (her note among them) and tree blobs.
    let held = server.operator_sql(
        "SELECT (SELECT COALESCE(SUM(ve.size), 0) FROM versions ve \
           JOIN objects o ON o.id = ve.object_id JOIN vaults v ON v.id = o.vault_id \
           JOIN users u ON u.id = v.owner_id WHERE u.name = 'bob') + \
         (SELECT COALESCE(SUM(b.size), 0) FROM tree_blobs b \
           JOIN vaults v ON v.id = b.vault_id JOIN users u ON u.id = v.owner_id \
           WHERE u.name = 'bob')",
    );
    assert_eq!(bob_usage, held, "bob's usage is what his vaults hold");
    assert_eq!(usage(&server, NAME), "", "her row is gone");

    // The audit chain verifies, names her nowhere, and holds the tombstone.
    root.ok(&["audit", "--verify"]);
    let log = root.ok(&["audit", "--all"]);
    assert!(!log.contains(NAME), "{log}");
    assert!(log.contains("user.erased"), "{log}");
    // Her name is free again, for someone new.
    let again = server.user(NAME, "user");
    again.ok(&["vault", "ls"]);
}

/// The CLI's two ways: a user erases their own account with the passphrase (a wrong one
/// changes nothing), an admin with `enc user rm --erase`; a user who pushed into a vault
/// someone else owns is erased too, their commit left there verifiable, unless their chain
/// is of the format that names them (version 1), which is refused with the reason.
#[test]
fn the_cli_erases_an_account_or_says_why_not() {
    let server = Server::start();
    let root = server.user("root", "admin");
    let eve = server.user("eve-erases-herself", "user");
    std::fs::write(eve.path("a.txt"), "eve's file").unwrap();
    eve.ok(&["push", "a.txt"]);

    // A wrong passphrase: refused, nothing changed.
    let mut wrong = eve.cmd(&["account", "delete", "--yes"]);
    wrong.env("ENC_PASSPHRASE", "not eve's passphrase at all");
    let out = wrong.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eve.ok(&["pull", "a.txt", "-o", "back", "--force"]);
    // Bad input: a malformed auth key, an erase flag that is not a boolean, an extra field,
    // an erasure id that is not one. Each a 4xx with a message; nothing changes.
    let c = http();
    let me = c
        .post(format!("{}/v1/me/erase", server.url))
        .bearer_auth(eve.token());
    for body in [
        serde_json::json!({"auth_key": "not base64 !"}),
        serde_json::json!({"auth_key": "AAAA"}),
        serde_json::json!({"auth_key": 7}),
        serde_json::json!({"auth_key": "AAAA", "user": "root"}),
    ] {
        let r = me.try_clone().unwrap().json(&body).send().expect("POST");
        assert!(
            matches!(r.status().as_u16(), 400 | 401 | 422),
            "{body}: {}",
            r.status()
        );
        assert!(r.text().unwrap().contains("\"message\""), "{body}");
    }
    let r = c
        .delete(format!(
            "{}/v1/users/eve-erases-herself?erase=maybe",
            server.url
        ))
        .bearer_auth(root.token())
        .send()
        .expect("DELETE");
    assert_eq!(r.status(), 400);
    for id in ["not-hex", "zz".repeat(16).as_str(), "ab"] {
        let r = c
            .get(format!("{}/v1/erasures/{id}", server.url))
            .send()
            .expect("GET");
        assert_eq!(r.status(), 404, "{id}");
    }
    eve.ok(&["pull", "a.txt", "-o", "back", "--force"]);

    let report = eve.ok(&["account", "delete", "--yes"]);
    assert!(report.contains("vaults\t1"), "{report}");
    let err = eve.fail(&["vault", "ls"]);
    assert!(err.contains("log in") || err.contains("login"), "{err}");
    let users = root.ok(&["user", "ls"]);
    assert!(!users.contains("eve-erases-herself"), "{users}");

    // Carol pushed into bob's vault and erases herself: her commit stays, verified, under
    // the erasure's label.
    let bob = server.user("bob", "user");
    let carol = server.user("carol", "user");
    bob.ok(&["vault", "create", "team"]);
    bob.ok(&["vault", "share", "team", "carol"]);
    std::fs::write(carol.path("c.txt"), "carol's").unwrap();
    carol.ok(&["push", "c.txt", "--vault", "bob/team"]);
    let log = bob.ok(&["log", "--vault", "team"]);
    assert!(log.contains("carol"), "{log}");
    let report = carol.ok(&["account", "delete", "--yes"]);
    assert!(report.contains("account_links_kept_nameless"), "{report}");
    bob.ok(&["pull", "--vault", "team", "-o", "t", "--force"]);
    bob.assert_file("t/c.txt", "carol's");
    // Bob's device knew her key, and keeps her name beside the server's word; a new device
    // of his sees the label only.
    let log = bob.ok(&["log", "--vault", "team"]);
    assert!(log.contains("carol (erased "), "{log}");
    let fresh = User::new(&server, "bob");
    fresh.ok(&["login"]);
    let log = fresh.ok(&["log", "--vault", "team"]);
    assert!(log.contains("(erased ") && !log.contains("carol"), "{log}");

    // A chain with a link of version 1 (from before this format) signs the user's id and
    // device names: erasing a user whose commits in others' vaults depend on it is refused,
    // with the reason, and nothing changes.
    let frank = server.user("frank", "user");
    bob.ok(&["vault", "share", "team", "frank"]);
    std::fs::write(frank.path("f.txt"), "frank's").unwrap();
    frank.ok(&["push", "f.txt", "--vault", "bob/team"]);
    server.operator_sql(
        "UPDATE account_links SET version = 1 \
         WHERE user_id = (SELECT id FROM users WHERE name = 'frank')",
    );
    let refused = root.fail(&["user", "rm", "--erase", "--yes", "frank"]);
    assert!(
        refused.contains("version 1") && refused.contains("vaults others own"),
        "{refused}"
    );
    frank.ok(&["vault", "ls"]);
    server.operator_sql(
        "UPDATE account_links SET version = 2 \
         WHERE user_id = (SELECT id FROM users WHERE name = 'frank')",
    );
    // The server's word on who signed a commit of version 2 is checked against the key this
    // device has seen for that name: a server that gives frank's commit to bob is refused.
    bob.ok(&["log", "--vault", "team"]);
    server.operator_sql(
        "UPDATE tree_commits SET author_id = (SELECT id FROM users WHERE name = 'bob') \
         WHERE author_id = (SELECT id FROM users WHERE name = 'frank')",
    );
    let caught = bob.fail(&["log", "--vault", "team"]);
    assert!(caught.contains("knows as frank's"), "{caught}");

    // Dave, who wrote nowhere else, is erased by the admin's command, which reports.
    let dave = server.user("dave", "user");
    dave.ok(&["vault", "ls"]);
    let report = root.ok(&["user", "rm", "--erase", "--yes", "dave"]);
    assert!(report.contains("account\t1"), "{report}");
    let json: Value =
        serde_json::from_str(&root.ok(&["--json", "user", "ls"])).expect("user ls --json");
    assert!(!json.to_string().contains("\"dave\""), "{json}");
    root.ok(&["audit", "--verify"]);
}
