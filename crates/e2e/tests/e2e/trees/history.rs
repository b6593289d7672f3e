//! A server that shows an old, shortened or forked history or swapped pieces is caught; two
//! devices pushing at once both land.

use super::*;

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
