//! Vault trees (issue 15): a directory pushed as one signed commit and pulled back whole,
//! incremental pushes, shared trees and pulls that never lose local work; the helpers the
//! other tree tests share. `history`: tampering and two devices racing; `paths`: where
//! paths land, rm, mv, --at, --raw and bad input; `prune`: space given back.

use std::fs::FileTimes;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::harness::*;

mod history;
mod paths;
mod prune;

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::open(path).expect("open");
    f.set_times(FileTimes::new().set_modified(UNIX_EPOCH + Duration::new(secs, 123_456_789)))
        .expect("set mtime");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// What the server charges a user.
fn usage_of(server: &Server, user: &str) -> i64 {
    server
        .operator_sql(&format!(
            "SELECT usage_bytes FROM users WHERE name = '{user}'"
        ))
        .parse()
        .expect("a number")
}

/// What every vault's tree blobs hold.
fn stored_in_trees(server: &Server) -> i64 {
    server
        .operator_sql("SELECT COALESCE(SUM(size), 0) FROM tree_blobs")
        .parse()
        .expect("a number")
}

/// A small source tree: files small and large, an empty one, nested and empty directories,
/// links inside and out of the tree, modes and mtimes of every kind.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("src/nested/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("private")).unwrap();
    std::fs::write(root.join("README.md"), b"# project\n").unwrap();
    std::fs::write(root.join("empty.txt"), b"").unwrap();
    for i in 0..30 {
        std::fs::write(
            root.join(format!("src/nested/file{i:02}.rs")),
            format!("fn f{i}() {{}}\n").repeat(i + 1),
        )
        .unwrap();
    }
    // Two files with the same content (stored once), and two large ones of equal size.
    std::fs::write(root.join("src/same-a.txt"), b"the same bytes").unwrap();
    std::fs::write(root.join("src/same-b.txt"), b"the same bytes").unwrap();
    random_file(&root.join("big-1.bin"), 3 << 20);
    random_file(&root.join("big-2.bin"), 3 << 20);
    std::fs::write(
        root.join("src/nested/deeper/run.sh"),
        b"#!/bin/sh\necho hi\n",
    )
    .unwrap();
    chmod(&root.join("src/nested/deeper/run.sh"), 0o755);
    std::fs::write(root.join("private/key"), b"secret").unwrap();
    chmod(&root.join("private/key"), 0o600);
    std::fs::write(root.join("suid"), b"x").unwrap();
    chmod(&root.join("suid"), 0o4755);
    std::os::unix::fs::symlink("nested/file01.rs", root.join("src/link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("outside")).unwrap();
    std::os::unix::fs::symlink("missing-target", root.join("dangling")).unwrap();
    let mut t = 1_600_000_000;
    for f in [
        "README.md",
        "empty.txt",
        "big-1.bin",
        "src/same-a.txt",
        "private/key",
    ] {
        set_mtime(&root.join(f), t);
        t += 86_400;
    }
    chmod(&root.join("private"), 0o700);
    for d in ["src/nested/deeper", "empty", "private", "src"] {
        set_mtime(&root.join(d), t);
        t += 3600;
    }
}

/// Every path under `root` with its kind, mode (setuid and setgid dropped, as a pull does)
/// and, for all but links, its mtime in nanoseconds.
fn listing(root: &Path) -> Vec<(String, String, u32, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String, u32, i64)>) {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let (kind, mtime) = if m.file_type().is_symlink() {
                ("link", 0)
            } else if m.is_dir() {
                ("dir", m.mtime() * 1_000_000_000 + m.mtime_nsec())
            } else {
                ("file", m.mtime() * 1_000_000_000 + m.mtime_nsec())
            };
            let mode = if kind == "link" { 0 } else { m.mode() & 0o1777 };
            out.push((rel, kind.to_string(), mode, mtime));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn diff_clean(a: &Path, b: &Path) {
    let out = std::process::Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .output()
        .expect("diff runs");
    assert!(
        out.status.success(),
        "diff -r {} {}:\n{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn commits(server: &Server) -> u64 {
    server
        .operator_sql("SELECT COUNT(*) FROM tree_commits WHERE seq > 0")
        .parse()
        .expect("a count")
}

/// Acceptance 1–3: a tree round-trips with `diff -r` clean and the same modes and mtimes;
/// an unchanged re-push makes no commit; a change sends only itself; `--delete` removes;
/// pulls follow `cp -r` and refuse to overwrite local changes unless `--force`.
#[test]
fn a_tree_round_trips_and_pushes_are_incremental() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let src = alice.path("project");
    make_tree(&src);

    let out = alice.ok(&["push", "project/."]);
    assert!(out.starts_with("commit 1 "), "{out}");
    alice.ok(&["pull", "-o", "back"]);
    diff_clean(&src, &alice.path("back"));
    let mut want = listing(&src);
    for row in &mut want {
        if row.0 == "suid" {
            assert_eq!(row.2, 0o755, "setuid is dropped");
        }
    }
    assert_eq!(listing(&alice.path("back")), want);
    assert_eq!(
        std::fs::read_link(alice.path("back/outside")).unwrap(),
        Path::new("/etc/passwd"),
        "a link is stored as a link, never followed"
    );

    // Unchanged: no commit, nothing sent.
    let out = alice.ok(&["push", "project/."]);
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(commits(&server), 1);
    let blobs_before = server.blob_bytes("blobs");

    // One file changed (same size, new content), one touched, one new, one gone.
    std::fs::write(src.join("src/nested/file00.rs"), b"fn g0() {}\n").unwrap();
    set_mtime(&src.join("README.md"), 1_700_000_000);
    std::fs::write(src.join("src/new.txt"), b"new").unwrap();
    std::fs::remove_file(src.join("empty.txt")).unwrap();
    let diff = alice.ok(&["diff", "project/.", "--delete"]);
    for line in [
        "M src/nested/file00.rs",
        "m README.md",
        "+ src/new.txt",
        "- empty.txt",
    ] {
        assert!(diff.lines().any(|l| l == line), "{line:?} in:\n{diff}");
    }
    let out = alice.ok(&["push", "project/."]);
    assert!(
        out.starts_with("commit 2 ")
            && out.contains("1 new, 1 changed, 1 metadata only, 0 removed"),
        "{out}"
    );
    let grown = server.blob_bytes("blobs") - blobs_before;
    assert!(
        grown < 64 << 10,
        "a small change sends a few KiB of nodes, not the tree ({grown} bytes)"
    );
    let out = alice.ok(&["push", "project/.", "--delete"]);
    assert!(
        out.contains("0 new, 0 changed, 0 metadata only, 1 removed"),
        "{out}"
    );
    assert!(
        alice
            .ok(&["diff", "project/.", "--delete"])
            .trim()
            .is_empty()
    );

    // back/ matched commit 1; a file edited in it since is a local change: the pull is
    // refused without --force and writes nothing.
    std::fs::write(alice.path("back/src/nested/file01.rs"), b"edited here").unwrap();
    let before = listing(&alice.path("back"));
    let err = alice.fail(&["pull", "-o", "back"]);
    assert!(
        err.contains("1 local path(s)") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(listing(&alice.path("back")), before);
    alice.ok(&["pull", "-o", "back", "--force"]);
    assert!(
        alice.path("back/empty.txt").exists(),
        "kept without --delete"
    );
    // empty.txt is not in the commit back/ now matches: to --delete it is a local file's
    // removal, which needs --force as well.
    let err = alice.fail(&["pull", "-o", "back", "--delete"]);
    assert!(err.contains("back/empty.txt"), "{err}");
    alice.ok(&["pull", "-o", "back", "--delete", "--force"]);
    diff_clean(&src, &alice.path("back"));
    // What changed in the vault, not here, is simply brought up to date.
    std::fs::write(src.join("README.md"), b"# project, revised\n").unwrap();
    alice.ok(&["push", "project/."]);
    alice.ok(&["pull", "-o", "back"]);
    diff_clean(&src, &alice.path("back"));
    // A directory the tree never went into: what differs there is refused.
    std::fs::create_dir_all(alice.path("elsewhere")).unwrap();
    std::fs::write(alice.path("elsewhere/README.md"), b"mine").unwrap();
    let err = alice.fail(&["pull", "-o", "elsewhere"]);
    assert!(err.contains("--force"), "{err}");
    alice.assert_file("elsewhere/README.md", b"mine");

    // `cp -r`'s rule: into an existing directory, else as the named path.
    alice.ok(&["pull", "src/nested", "-o", "copy"]);
    diff_clean(&src.join("src/nested"), &alice.path("copy"));
    alice.ok(&["pull", "src/nested", "-o", "copy"]);
    diff_clean(&src.join("src/nested"), &alice.path("copy/nested"));
    alice.ok(&["pull", "README.md", "-o", "copy"]);
    alice.assert_file("copy/README.md", b"# project, revised\n");

    let ls = alice.ok(&["ls", "src"]);
    assert!(ls.lines().any(|l| l == "src/nested/deeper/run.sh"), "{ls}");
    let log: serde_json::Value = serde_json::from_str(&alice.ok(&["log", "--json"])).expect("json");
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|c| c["author"] == "alice"));
    assert_eq!(log[2]["changes"], 1);
}

/// A second device of `u`'s account: its own configuration, logged in.
fn device(server: &Server, u: &User) -> User {
    let d = User::new(server, &u.name);
    d.ok(&["login"]);
    d
}

/// Acceptance 8: a shared vault's tree takes commits from every writer (each checked against
/// the key pinned for its author), none from a read-only member or a removed one; every push
/// is charged to the owner's quota and one over it commits nothing.
#[test]
fn shared_trees_follow_rights_and_the_owners_quota() {
    let server = Server::start();
    let root = server.user("root", "admin");
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    let carol = server.user("carol", "user");
    alice.ok(&["vault", "create", "team"]);
    alice.ok(&["vault", "share", "team", "bob"]);
    alice.ok(&["vault", "share", "team", "carol", "--read-only"]);
    let dir = alice.path("w");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plan.txt"), b"the plan").unwrap();
    alice.ok(&["push", "w/.", "--vault", "team"]);

    // bob, a writer, adds to it; alice sees his commit, signed by him.
    bob.ok(&["pull", "-o", "w", "--vault", "alice/team"]);
    std::fs::write(bob.path("w/bob.txt"), b"from bob").unwrap();
    let out = bob.ok(&["push", "w/.", "--vault", "alice/team"]);
    assert!(out.starts_with("commit 2 "), "{out}");
    let log: serde_json::Value =
        serde_json::from_str(&alice.ok(&["log", "--json", "--vault", "team"])).expect("json");
    let authors: Vec<&str> = log
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["author"].as_str().expect("author"))
        .collect();
    assert_eq!(authors, ["alice", "bob"]);

    // carol reads but cannot write.
    carol.ok(&["pull", "-o", "w", "--vault", "alice/team"]);
    carol.assert_file("w/bob.txt", b"from bob");
    std::fs::write(carol.path("w/carol.txt"), b"no").unwrap();
    carol.fail(&["push", "w/.", "--vault", "alice/team"]);
    carol.fail(&["rm", "plan.txt", "--vault", "alice/team"]);
    assert_eq!(commits(&server), 2);

    // The owner's quota counts bob's pushes too; one over it commits nothing.
    root.ok(&["user", "set-quota", "alice", "1MiB"]);
    random_file(&bob.path("w/big.bin"), 2 << 20);
    let err = bob.fail(&["push", "w/.", "--vault", "alice/team"]);
    assert!(err.to_lowercase().contains("quota"), "{err}");
    assert_eq!(commits(&server), 2);
    root.ok(&["user", "set-quota", "alice", "100MiB"]);
    let out = bob.ok(&["push", "w/.", "--vault", "alice/team"]);
    assert!(out.starts_with("commit 3 "), "{out}");

    // bob, removed, can no longer push; the others go on.
    alice.ok(&["vault", "unshare", "team", "bob"]);
    std::fs::write(bob.path("w/late.txt"), b"late").unwrap();
    bob.fail(&["push", "w/.", "--vault", "alice/team"]);
    std::fs::write(dir.join("after.txt"), b"after bob").unwrap();
    alice.ok(&["push", "w/.", "--vault", "team"]);
    carol.ok(&["pull", "-o", "w", "--vault", "alice/team", "--force"]);
    carol.assert_file("w/after.txt", b"after bob");
    assert!(!carol.path("w/late.txt").exists());
}

/// A pull never loses local work: a directory the vault turned into a file is replaced only
/// if nothing in it changed here (else `--force`), `--delete` spares what was edited here, a
/// file the vault turned into a directory is replaced, and read-only files and directories
/// are pulled over again.
#[test]
fn pulls_never_lose_local_work() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let src = alice.path("w");
    std::fs::create_dir_all(src.join("notes")).unwrap();
    std::fs::create_dir_all(src.join("locked")).unwrap();
    std::fs::write(src.join("notes/a.txt"), b"a").unwrap();
    std::fs::write(src.join("f"), b"a file").unwrap();
    std::fs::write(src.join("gone.txt"), b"to be removed").unwrap();
    std::fs::write(src.join("locked/in.txt"), b"inside").unwrap();
    std::fs::write(src.join("ro.txt"), b"read only").unwrap();
    chmod(&src.join("ro.txt"), 0o444);
    chmod(&src.join("locked"), 0o555);
    alice.ok(&["push", "w/."]);
    alice.ok(&["pull", "-o", "copy"]);
    let copy = alice.path("copy");

    // Local work inside notes/; the vault makes notes a file and f a directory.
    std::fs::write(copy.join("notes/new.txt"), b"local work").unwrap();
    std::fs::write(copy.join("gone.txt"), b"edited here").unwrap();
    std::fs::remove_dir_all(src.join("notes")).unwrap();
    std::fs::write(src.join("notes"), b"now a file").unwrap();
    std::fs::remove_file(src.join("f")).unwrap();
    std::fs::create_dir_all(src.join("f")).unwrap();
    std::fs::write(src.join("f/x"), b"in the new directory").unwrap();
    std::fs::remove_file(src.join("gone.txt")).unwrap();
    alice.ok(&["push", "w/.", "--delete"]);

    let err = alice.fail(&["pull", "-o", "copy", "--delete"]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read(copy.join("notes/new.txt")).unwrap(),
        b"local work"
    );
    assert_eq!(
        std::fs::read(copy.join("gone.txt")).unwrap(),
        b"edited here"
    );

    // Without the local work, the same pull goes through without --force.
    std::fs::remove_file(copy.join("notes/new.txt")).unwrap();
    std::fs::write(copy.join("gone.txt"), b"to be removed").unwrap();
    alice.ok(&["pull", "-o", "copy", "--delete"]);
    diff_clean(&src, &copy);
    assert_eq!(
        std::fs::read(copy.join("f/x")).unwrap(),
        b"in the new directory"
    );
    // Read-only file and directory, pulled over again after a change inside.
    std::fs::write(src.join("ro.txt"), b"read only, changed").unwrap();
    chmod(&src.join("ro.txt"), 0o444);
    chmod(&src.join("locked"), 0o755);
    std::fs::write(src.join("locked/in.txt"), b"inside, changed").unwrap();
    chmod(&src.join("locked"), 0o555);
    alice.ok(&["push", "w/."]);
    alice.ok(&["pull", "-o", "copy"]);
    diff_clean(&src, &copy);
    chmod(&src.join("locked"), 0o755);
    chmod(&copy.join("locked"), 0o755);
}
