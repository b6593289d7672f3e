//! Issue 15, item 8: a data directory written by the build before vault trees (d75af37, by
//! `scripts/make_upgrade_fixture.sh`) opens with this one: its objects, their versions and a
//! shared vault stay readable, and the first `enc push` to a vault imports its objects into
//! its tree.

use std::path::Path;

use crate::harness::*;

/// `report.txt` as its first object version, into `out`.
fn first_version(alice: &User, out: &str) {
    alice.ok(&["object", "pull", "report.txt", "--version", "1", "-o", out]);
    alice.assert_file(out, b"first version\n");
}

#[test]
fn a_data_directory_from_before_trees_stays_readable() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade-v14/data");
    let server = Server::start_on_copy_of(&fixture);
    let alice = User::new(&server, "alice");
    alice.ok(&["login"]);
    // Before any push, `enc ls` and `enc pull` read the vault's objects as they are.
    let ls = alice.ok(&["ls"]);
    assert_eq!(ls, "photos/cat.txt\nreport.txt\n", "{ls}");
    let versions = alice.ok(&["object", "ls", "--versions", "report.txt", "--json"]);
    let versions: serde_json::Value = serde_json::from_str(&versions).expect("json");
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");
    alice.ok(&["pull", "report.txt", "-o", "now.txt"]);
    alice.assert_file("now.txt", b"second version\n");
    first_version(&alice, "then.txt");
    alice.ok(&["pull", "photos/cat.txt", "-o", "cat.txt"]);
    alice.assert_file("cat.txt", b"a cat\n");

    // bob still reads the vault alice shared with him.
    let bob = User::new(&server, "bob");
    bob.ok(&["login"]);
    bob.ok(&[
        "pull",
        "plan.txt",
        "--vault",
        "alice/team",
        "-o",
        "plan.txt",
    ]);
    bob.assert_file("plan.txt", b"the plan\n");

    // Before it is a tree, a pull overwrites nothing unless --force, --delete and a sync
    // are refused (a sync would remove what it imports), and a dry run says what comes.
    let err = alice.fail(&["pull", "report.txt", "-o", "now.txt"]);
    assert!(err.contains("--force"), "{err}");
    alice.ok(&["pull", "report.txt", "-o", "now.txt", "--force"]);
    let err = alice.fail(&["pull", "--delete", "-o", "x"]);
    assert!(err.contains("needs a tree"), "{err}");
    std::fs::write(alice.path("new.txt"), b"after the upgrade").unwrap();
    let err = alice.fail(&["sync", "new.txt"]);
    assert!(err.contains("without --delete first"), "{err}");
    let out = alice.run(&["push", "-n", "new.txt"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would first import the 2 files"),
        "{out:?}"
    );

    // The first push imports the objects as the tree's first commit, then commits its own.
    let out = alice.ok(&["push", "new.txt"]);
    assert!(
        out.contains("commit 1") && out.contains("2 files imported"),
        "{out}"
    );
    assert!(out.contains("commit 2"), "{out}");
    let ls = alice.ok(&["ls"]);
    assert_eq!(ls, "new.txt\nphotos/\nphotos/cat.txt\nreport.txt\n", "{ls}");
    alice.ok(&["pull", "-o", "tree"]);
    alice.assert_file("tree/report.txt", b"second version\n");
    alice.assert_file("tree/photos/cat.txt", b"a cat\n");
    // Older versions stay readable as objects; new objects are refused, so nothing lands
    // where the tree does not show it.
    first_version(&alice, "then-again.txt");
    let err = alice.fail(&["object", "push", "new.txt"]);
    assert!(err.contains("signed tree since commit"), "{err}");

    // A shared vault upgrades the same way, and its member reads the tree.
    std::fs::create_dir_all(alice.path("dir/sub")).unwrap();
    std::fs::write(alice.path("dir/sub/a.txt"), b"a tree file").unwrap();
    alice.ok(&["push", "dir/.", "--vault", "team"]);
    bob.ok(&["pull", "-o", "got", "--vault", "alice/team"]);
    bob.assert_file("got/sub/a.txt", b"a tree file");
    bob.assert_file("got/plan.txt", b"the plan\n");
    // The audit chain the earlier build began goes on whole (an exit status of 0).
    alice.ok(&["audit", "--verify", "--all"]);
}
