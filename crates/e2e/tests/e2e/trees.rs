//! Vault trees (issue 15): a directory pushed as one signed commit and pulled back whole,
//! incremental pushes, a server that shows an old or forked history or swapped pieces, and two
//! devices pushing at once.

use std::fs::FileTimes;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::harness::*;

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
    assert_eq!(
        std::fs::read(alice.path("elsewhere/README.md")).unwrap(),
        b"mine"
    );

    // `cp -r`'s rule: into an existing directory, else as the named path.
    alice.ok(&["pull", "src/nested", "-o", "copy"]);
    diff_clean(&src.join("src/nested"), &alice.path("copy"));
    alice.ok(&["pull", "src/nested", "-o", "copy"]);
    diff_clean(&src.join("src/nested"), &alice.path("copy/nested"));
    alice.ok(&["pull", "README.md", "-o", "copy"]);
    assert_eq!(
        std::fs::read(alice.path("copy/README.md")).unwrap(),
        b"# project, revised\n"
    );

    let ls = alice.ok(&["ls", "src"]);
    assert!(ls.lines().any(|l| l == "src/nested/deeper/run.sh"), "{ls}");
    let log: serde_json::Value = serde_json::from_str(&alice.ok(&["log", "--json"])).expect("json");
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|c| c["author"] == "alice"));
    assert_eq!(log[2]["changes"], 1);
}

/// Moves commit `seq` out of the server's sight (its row kept under a negative number), as a
/// server hiding it would; `restore` puts every hidden commit back.
fn hide_commit(server: &Server, seq: i64) {
    server.operator_sql(&format!(
        "UPDATE tree_commits SET seq = -seq WHERE seq = {seq}"
    ));
}

fn restore_commits(server: &Server) {
    server.operator_sql("UPDATE tree_commits SET seq = -seq WHERE seq < 0");
}

/// A second device of `u`'s account: its own configuration, logged in.
fn device(server: &Server, u: &User) -> User {
    let d = User::new(server, &u.name);
    d.ok(&["login"]);
    d
}

/// Acceptance 4: a client that saw a newer state refuses a server that reverts to an older
/// one, drops a commit from the history, forks it, or swaps two files' contents.
#[test]
fn a_server_that_rolls_back_drops_forks_or_swaps_is_caught() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let src = alice.path("t");
    std::fs::create_dir_all(&src).unwrap();
    random_file(&src.join("one.bin"), 2 << 20);
    random_file(&src.join("two.bin"), 2 << 20);
    std::fs::write(src.join("a.txt"), b"version 1").unwrap();
    alice.ok(&["push", "t/."]);
    let late = device(&server, &alice);
    late.ok(&["ls"]);
    for n in 2..=3 {
        std::fs::write(src.join("a.txt"), format!("version {n}")).unwrap();
        alice.ok(&["push", "t/."]);
    }

    // Rollback: the newest commit hidden (a.txt would read "version 2").
    hide_commit(&server, 3);
    let err = alice.fail(&["ls"]);
    assert!(err.contains("older state"), "{err}");
    let err = alice.fail(&["pull", "-o", "out"]);
    assert!(err.contains("older state"), "{err}");
    assert!(!alice.path("out").exists());
    restore_commits(&server);
    alice.ok(&["ls"]);

    // A commit dropped from the middle: the device that saw only commit 1 cannot link the
    // head to it.
    hide_commit(&server, 2);
    let err = late.fail(&["ls"]);
    assert!(err.contains("missing"), "{err}");
    restore_commits(&server);

    // A fork: commit 3 replaced by another commit 3 (validly signed, from a fresh device).
    hide_commit(&server, 3);
    let fresh = device(&server, &alice);
    let other = fresh.path("t");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("a.txt"), b"another past").unwrap();
    fresh.ok(&["push", "t/."]);
    let err = alice.fail(&["ls"]);
    assert!(err.contains("forks"), "{err}");
    // The device that saw only commit 1 cannot tell: 3' descends from 2 as 3 did.
    server.operator_sql("DELETE FROM tree_commits WHERE seq = 3");
    restore_commits(&server);
    alice.ok(&["ls"]);

    // Two files' contents swapped in storage: their pieces no longer match the tree.
    let mut big: Vec<(String, u64)> = server
        .blobs("blobs")
        .into_iter()
        .filter(|(_, n)| *n > 2 << 20)
        .collect();
    big.sort();
    assert_eq!(big.len(), 2, "{big:?}");
    let (a, b) = (server.read_blob(&big[0].0), server.read_blob(&big[1].0));
    server.write_blob(&big[0].0, &b);
    server.write_blob(&big[1].0, &a);
    let err = alice.fail(&["pull", "one.bin", "-o", "one.bin"]);
    assert!(err.contains("integrity"), "{err}");
    assert!(!alice.path("one.bin").exists(), "nothing written");
}

/// Acceptance 5: two devices push at once. The second is refused on the moved head, applies
/// its changes again on it, and lands; different paths merge, the same path takes the second
/// push's content and says so; nothing is lost.
#[test]
fn two_devices_pushing_at_once_both_land() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let laptop = device(&server, &alice);
    for u in [&alice, &laptop] {
        let d = u.path("w");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("shared.txt"), b"base").unwrap();
        std::fs::write(d.join("keep.txt"), b"kept").unwrap();
        set_mtime(&d.join("shared.txt"), 1_600_000_000);
        set_mtime(&d.join("keep.txt"), 1_600_000_000);
    }
    alice.ok(&["push", "w/."]);
    laptop.ok(&["ls"]);

    std::fs::write(alice.path("w/shared.txt"), b"from alice's desktop").unwrap();
    std::fs::write(alice.path("w/desk.txt"), b"desk").unwrap();
    std::fs::write(laptop.path("w/shared.txt"), b"from the laptop").unwrap();
    std::fs::write(laptop.path("w/lap.txt"), b"lap").unwrap();

    // The laptop plans and uploads on commit 1, then waits; the desktop lands commit 2.
    let hold = laptop.path("go");
    let mut slow = laptop.cmd(&["push", "w/."]);
    slow.env("ENC_TEST_HOLD_COMMIT", &hold)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = slow.spawn().expect("spawn");
    let ready = hold.with_extension("ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the laptop never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    alice.ok(&["push", "w/."]);
    std::fs::write(&hold, b"").unwrap();
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("commit 3 "), "{stdout}");
    assert!(
        stderr.contains("shared.txt was also changed by another push"),
        "{stderr}"
    );

    alice.ok(&["pull", "-o", "merged"]);
    let read = |p: &str| std::fs::read_to_string(alice.path(&format!("merged/{p}"))).unwrap();
    assert_eq!(read("shared.txt"), "from the laptop");
    assert_eq!(read("desk.txt"), "desk");
    assert_eq!(read("lap.txt"), "lap");
    assert_eq!(read("keep.txt"), "kept");
    let log: serde_json::Value = serde_json::from_str(&alice.ok(&["log", "--json"])).expect("json");
    assert_eq!(log.as_array().map(Vec::len), Some(3));
    // The two devices compare by hand: each one's newest commit is in the other's history.
    let newest = log[2]["hash"].as_str().expect("hash");
    let out = laptop.ok(&["log", "--verify", &newest[..12]]);
    assert!(out.contains("commit 3 ("), "{out}");
    let err = laptop.fail(&["log", "--verify", "0123456789ab"]);
    assert!(err.contains("different histories"), "{err}");
    let err = laptop.fail(&["log", "--verify", "xyz"]);
    assert!(err.contains("hex digits"), "{err}");
}

/// Acceptance 3 and 7: `rm` of a file and of a directory (refused without the slash or
/// `--recursive`), `mv` without sending content again, the tree as it was (`--at` a commit
/// number, a hash, a time), and a file's stored age file (`--raw`), packed or alone, opened by
/// the stock `age -d`.
#[test]
fn rm_mv_at_and_raw() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let src = alice.path("p");
    std::fs::create_dir_all(src.join("docs/old")).unwrap();
    std::fs::write(src.join("README.md"), b"read me").unwrap();
    std::fs::write(src.join("docs/a.txt"), b"a").unwrap();
    std::fs::write(src.join("docs/old/b.txt"), b"b").unwrap();
    random_file(&src.join("big.bin"), 2 << 20);
    alice.ok(&["push", "p/."]);

    let err = alice.fail(&["rm", "docs"]);
    assert!(err.contains("is a directory"), "{err}");
    let err = alice.fail(&["rm", "nowhere.txt"]);
    assert!(err.contains("no \"nowhere.txt\""), "{err}");
    // Without a terminal, a directory's removal needs --yes; nothing changed meanwhile.
    let err = alice.fail(&["rm", "docs/"]);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(commits(&server), 1);
    let out = alice.ok(&["rm", "docs/old/", "--yes"]);
    assert!(
        out.starts_with("commit 2 ") && out.contains("1 removed"),
        "{out}"
    );
    let ls = alice.ok(&["ls"]);
    assert!(!ls.contains("docs/old"), "{ls}");

    // A move sends no content: only nodes and the commit body.
    let before = server.blob_bytes("blobs");
    let err = alice.fail(&["mv", "README.md", "docs/a.txt"]);
    assert!(err.contains("already exists"), "{err}");
    let err = alice.fail(&["mv", "docs", "docs/inside"]);
    assert!(err.contains("into itself"), "{err}");
    alice.ok(&["mv", "big.bin", "docs"]);
    alice.ok(&["mv", "README.md", "NOTES.md"]);
    let grown = server.blob_bytes("blobs") - before;
    assert!(grown < 16 << 10, "a move sent {grown} bytes");
    let ls = alice.ok(&["ls"]);
    for want in ["NOTES.md", "docs/big.bin", "docs/a.txt"] {
        assert!(ls.lines().any(|l| l == want), "{want} in {ls}");
    }
    assert!(
        !ls.lines().any(|l| l == "README.md" || l == "big.bin"),
        "{ls}"
    );
    alice.ok(&["pull", "-o", "now"]);
    assert!(same_file(
        &src.join("big.bin"),
        &alice.path("now/docs/big.bin")
    ));
    assert_eq!(
        std::fs::read(alice.path("now/NOTES.md")).unwrap(),
        b"read me"
    );

    // The tree as it was: by number, by hash, by time.
    alice.ok(&["pull", "--at", "1", "-o", "first"]);
    diff_clean(&src, &alice.path("first"));
    let log: serde_json::Value = serde_json::from_str(&alice.ok(&["log", "--json"])).expect("json");
    let hash2 = log[1]["hash"].as_str().expect("hash").to_string();
    let at2 = alice.ok(&["ls", "--at", &hash2[..10]]);
    assert!(
        at2.lines().any(|l| l == "README.md") && !at2.contains("docs/old"),
        "{at2}"
    );
    let err = alice.fail(&["ls", "--at", "9"]);
    assert!(err.contains("commits 1 to 4"), "{err}");
    let err = alice.fail(&["ls", "--at", "1999-01-01"]);
    assert!(err.contains("later than"), "{err}");
    let err = alice.fail(&["ls", "--at", "yesterday-ish"]);
    assert!(err.contains("--at"), "{err}");
    let now = alice.ok(&["ls", "--at", "2100-01-01T00:00:00Z"]);
    assert_eq!(now, ls, "a time after the last commit is the head");

    // The stored age files, a packed one and one of its own, open with stock age.
    if !have_tool("age") {
        return;
    }
    std::fs::write(alice.path("id.txt"), alice.ok(&["key", "export"])).unwrap();
    for (path, local) in [("NOTES.md", "README.md"), ("docs/big.bin", "big.bin")] {
        let out = alice.ok(&["pull", "--raw", path, "-o", "raw.age", "--force"]);
        assert!(out.contains("raw.age"), "{out}");
        let dec = std::process::Command::new("age")
            .args(["-d", "-i"])
            .arg(alice.path("id.txt"))
            .arg(alice.path("raw.age"))
            .output()
            .expect("age runs");
        assert!(
            dec.status.success(),
            "{}",
            String::from_utf8_lossy(&dec.stderr)
        );
        assert_eq!(
            dec.stdout,
            std::fs::read(src.join(local)).unwrap(),
            "{path}"
        );
    }
    let err = alice.fail(&["pull", "--raw", "docs", "-o", "x.age"]);
    assert!(err.contains("not a file"), "{err}");
}

/// Acceptance 6 (reclaiming): `enc tree prune` gives back what the newest commits no longer
/// need; the owner's usage falls by exactly those blobs, the head stays whole, the log keeps
/// every commit, and a pull of a pruned commit says why it fails.
#[test]
fn prune_gives_space_back_and_usage_stays_exact() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let src = alice.path("p");
    std::fs::create_dir_all(src.join("small")).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("small/{i}.txt")), format!("small {i}")).unwrap();
    }
    let usage = || usage_of(&server, "alice");
    let stored = || stored_in_trees(&server);
    for round in 0..3 {
        random_file(&src.join("big.bin"), (2 << 20) + round);
        std::fs::write(src.join("small/0.txt"), format!("round {round}")).unwrap();
        alice.ok(&["push", "p/."]);
    }
    assert_eq!(usage(), stored(), "usage is what the vault's blobs hold");
    let before = usage();
    let out = alice.ok(&["prune", "--keep", "3"]);
    assert!(out.starts_with("nothing to give back"), "{out}");

    let out = alice.ok(&["prune", "--keep", "1"]);
    assert!(out.starts_with("commit 4 "), "{out}");
    let after = usage();
    assert_eq!(after, stored(), "usage is what the vault's blobs hold");
    assert!(
        before - after > 4 << 20,
        "two old versions of big.bin were given back ({before} -> {after})"
    );
    let out = alice.ok(&["prune", "--keep", "1"]);
    assert!(out.starts_with("nothing to give back"), "{out}");

    alice.ok(&["pull", "-o", "back"]);
    diff_clean(&src, &alice.path("back"));
    let log: serde_json::Value = serde_json::from_str(&alice.ok(&["log", "--json"])).expect("json");
    assert_eq!(log.as_array().map(Vec::len), Some(4));
    let err = alice.fail(&["pull", "--at", "1", "-o", "old"]);
    assert!(err.contains("pruned"), "{err}");
}

/// A pack of small files most of which are gone is rewritten by a prune: the head's pieces
/// move to a new pack, the old one is given back whole, usage stays exact, and everything
/// still pulls back.
#[test]
fn prune_rewrites_packs_mostly_given_up() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let src = alice.path("p");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..200u8 {
        let body = vec![b'a' + i % 26; 2000 + usize::from(i)];
        std::fs::write(src.join(format!("f{i:03}.txt")), body).unwrap();
    }
    let usage = || usage_of(&server, "alice");
    let stored = || stored_in_trees(&server);
    alice.ok(&["push", "p/."]);
    for i in 0..180 {
        std::fs::remove_file(src.join(format!("f{i:03}.txt"))).unwrap();
    }
    alice.ok(&["sync", "p/."]);
    std::fs::write(src.join("f199.txt"), b"changed").unwrap();
    alice.ok(&["push", "p/."]);
    let laptop = device(&server, &alice);
    laptop.ok(&["ls"]);
    let before = stored();
    assert_eq!(usage(), before);
    // --keep 2: the rewrite's commit stands in for the head it rewrote, so commit 2 (the one
    // before) stays whole; its pack cannot go yet.
    let out = alice.ok(&["prune", "--keep", "2"]);
    assert!(out.contains("pieces moved"), "{out}");
    assert_eq!(usage(), stored(), "usage is what the vault's blobs hold");
    alice.ok(&["pull", "--at", "2", "-o", "at2"]);
    assert_eq!(
        std::fs::read(alice.path("at2/f199.txt")).unwrap(),
        vec![b'a' + 199 % 26; 2199]
    );
    // --keep 1: only the newest tree, whose pieces moved; the mostly dead pack goes.
    alice.ok(&["prune", "--keep", "1"]);
    let after = stored();
    assert_eq!(usage(), after, "usage is what the vault's blobs hold");
    assert!(
        after * 3 < before,
        "the mostly dead pack went ({before} -> {after})"
    );
    alice.ok(&["pull", "-o", "back"]);
    diff_clean(&src, &alice.path("back"));
    // Nothing left to move, nothing left to give back.
    let out = alice.ok(&["prune", "--keep", "1"]);
    assert!(
        out.starts_with("nothing to give back") && !out.contains("moved"),
        "{out}"
    );
    // Another device, which saw the tree before the rewrite, takes the new head (signed,
    // linked to what it saw) and reads the same files from their new places.
    laptop.ok(&["pull", "-o", "lap"]);
    diff_clean(&src, &laptop.path("lap"));
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
    assert_eq!(std::fs::read(carol.path("w/bob.txt")).unwrap(), b"from bob");
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
    assert_eq!(
        std::fs::read(carol.path("w/after.txt")).unwrap(),
        b"after bob"
    );
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

/// Bad input to `enc tree` gets one line that says what is wrong, and changes nothing.
#[test]
fn tree_bad_input_is_refused_and_changes_nothing() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("file.txt"), b"not a directory").unwrap();
    for (args, says) in [
        (&["push", "file.txt/."][..], "file.txt"),
        (&["push", "missing"][..], "missing"),
        (&["push", "file.txt", "--as", "../x"][..], ".."),
        (&["push", "-"][..], "--as NAME"),
        (&["push", "file.txt", "file.txt"][..], "both land"),
        (
            &["push", "file.txt", "missing", "--as", "x"][..],
            "one PATH",
        ),
    ] {
        let err = alice.fail(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let err = alice.fail(&["pull", "-o", "out"]);
    assert!(err.contains("has no tree yet"), "{err}");
    assert_eq!(commits(&server), 0);

    std::fs::create_dir_all(alice.path("d")).unwrap();
    std::fs::write(alice.path("d/a.txt"), b"a").unwrap();
    alice.ok(&["push", "d/."]);
    for (args, says) in [
        (&["pull", "nowhere", "-o", "out"][..], "no \"nowhere\""),
        (&["ls", "nowhere"][..], "no \"nowhere\""),
        (&["rm", "../a.txt"][..], ".."),
        (&["mv", "a.txt"][..], "PATH"),
        (&["mv", "a.txt", "b.txt", "c.txt"][..], "directory"),
        (&["prune", "--keep", "x"][..], "--keep"),
        (&["push", "d/.", "--vault", "nope"][..], "nope"),
    ] {
        let err = alice.fail(args);
        assert!(err.contains(says), "{args:?}: {err}");
        let first = err.trim().lines().next().unwrap_or_default();
        assert!(
            first.starts_with("enc: ") || first.starts_with("error: "),
            "{args:?}: {err}"
        );
    }
    assert_eq!(commits(&server), 1);
    assert!(!alice.path("out").exists());
}

/// `enc push` puts each path where `cp -r` would (a directory under its own name, `DIR/.` as
/// the top, `--to` inside another directory); `enc sync` removes only inside what it pushes;
/// `enc log PATH` lists a path's versions.
#[test]
fn pushed_paths_land_as_cp_r_puts_them() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::create_dir_all(alice.path("photos")).unwrap();
    std::fs::write(alice.path("photos/cat.jpg"), b"a cat").unwrap();
    std::fs::write(alice.path("notes.txt"), b"notes").unwrap();
    alice.ok(&["push", "photos/", "notes.txt"]);
    alice.ok(&["push", "photos", "--to", "archive/2026"]);
    let ls = alice.ok(&["ls"]);
    assert_eq!(
        ls,
        "archive/\narchive/2026/\narchive/2026/photos/\narchive/2026/photos/cat.jpg\nnotes.txt\nphotos/\nphotos/cat.jpg\n",
        "{ls}"
    );

    // sync removes what is gone inside photos/, and nothing outside it.
    std::fs::remove_file(alice.path("photos/cat.jpg")).unwrap();
    std::fs::write(alice.path("photos/dog.jpg"), b"a dog").unwrap();
    let out = alice.ok(&["sync", "photos"]);
    assert!(out.contains("1 new") && out.contains("1 removed"), "{out}");
    let ls = alice.ok(&["ls"]);
    assert!(
        ls.contains("photos/dog.jpg\n")
            && !ls.contains("\nphotos/cat.jpg")
            && ls.contains("archive/2026/photos/cat.jpg")
            && ls.contains("notes.txt"),
        "{ls}"
    );

    // A pull lands the same way back: photos into back/photos.
    std::fs::create_dir_all(alice.path("back")).unwrap();
    alice.ok(&["pull", "photos", "notes.txt", "-o", "back"]);
    assert_eq!(
        std::fs::read(alice.path("back/photos/dog.jpg")).unwrap(),
        b"a dog"
    );
    assert_eq!(
        std::fs::read(alice.path("back/notes.txt")).unwrap(),
        b"notes"
    );

    // Versions of one path: the commits that changed it, and each one's content.
    std::fs::write(alice.path("notes.txt"), b"notes, revised").unwrap();
    alice.ok(&["push", "notes.txt"]);
    let log: serde_json::Value =
        serde_json::from_str(&alice.ok(&["log", "notes.txt", "--json"])).expect("json");
    let seqs: Vec<_> = log
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 4], "{log}");
    let first = alice.ok(&["pull", "notes.txt", "--at", "1", "-o", "-"]);
    assert_eq!(first, "notes");
    let err = alice.fail(&["log", "nowhere"]);
    assert!(err.contains("no commit changed"), "{err}");

    // As `cp -r`, a file does not replace a directory, nor a directory a file, and --to
    // does not go through a file; nothing changes.
    std::fs::write(alice.path("file"), b"f").unwrap();
    std::fs::create_dir_all(alice.path("x/notes.txt")).unwrap();
    for (args, says) in [
        (
            &["push", "file", "--as", "photos"][..],
            "is a directory in the vault",
        ),
        (&["push", "x/notes.txt"][..], "is a file in the vault"),
        (
            &["push", "file", "--to", "notes.txt"][..],
            "is a file in the vault",
        ),
    ] {
        let err = alice.fail(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(commits(&server), 4);
    // Several paths into an output that does not exist yet: each inside it.
    alice.ok(&["pull", "photos", "notes.txt", "-o", "fresh"]);
    assert_eq!(
        std::fs::read(alice.path("fresh/photos/dog.jpg")).unwrap(),
        b"a dog"
    );
    assert_eq!(
        std::fs::read(alice.path("fresh/notes.txt")).unwrap(),
        b"notes, revised"
    );
    // The records of what each directory last matched name neither the directory nor the
    // vault's paths.
    let config = std::fs::read_to_string(alice.path("config/config.json")).expect("config");
    assert!(config.contains("\"synced\""), "{config}");
    for name in ["fresh", "back", "photos", "notes.txt"] {
        assert!(!config.contains(name), "{name} in {config}");
    }
}
