//! Paths: where pushed paths land, `rm`, `mv`, `--at`, `--raw`, and bad input.

use super::*;

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
    alice.assert_file("now/NOTES.md", b"read me");

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
    alice.assert_file("back/photos/dog.jpg", b"a dog");
    alice.assert_file("back/notes.txt", b"notes");

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
    alice.assert_file("fresh/photos/dog.jpg", b"a dog");
    alice.assert_file("fresh/notes.txt", b"notes, revised");
    // The records of what each directory last matched name neither the directory nor the
    // vault's paths.
    let config = std::fs::read_to_string(alice.path("config/config.json")).expect("config");
    assert!(config.contains("\"synced\""), "{config}");
    for name in ["fresh", "back", "photos", "notes.txt"] {
        assert!(!config.contains(name), "{name} in {config}");
    }
}
