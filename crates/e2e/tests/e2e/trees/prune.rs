//! Space given back: `enc prune` releases what the kept trees do not need and rewrites packs
//! mostly given up; usage stays exact.

use super::*;

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
