//! Faults (issue 18): what a user and an operator see when the storage under the server
//! fails. A blob that disappears or is cut short behind the server's back is named by the
//! client that needs it, and found by `enc-server scrub` with whose it is, without any key.

use serde_json::Value;

use crate::harness::*;

/// The tab-separated lines `enc-server scrub` prints, and whether it exited 0.
fn scrub(server: &Server) -> (bool, Vec<Vec<String>>, String) {
    let out = server.admin_cmd(&["scrub"]);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_damaged_blob_is_named_by_the_client_and_found_by_scrub() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    std::fs::create_dir_all(alice.path("proj/docs")).unwrap();
    std::fs::write(alice.path("proj/docs/notes.txt"), "alice's notes").unwrap();
    random_file(&alice.path("proj/big.bin"), 2 << 20);
    alice.ok(&["push", "proj"]);
    random_file(&alice.path("report.pdf"), 100_000);
    alice.ok(&["backup", "put", "report.pdf"]);
    let repo = crate::restic::Repo::with_snapshot(&server, &alice, "laptop", "proj");
    let restic = repo.is_some();

    // Nothing is damaged yet: scrub checks every blob and says so.
    let (clean, lines, summary) = scrub(&server);
    assert!(clean && lines.is_empty(), "{lines:?} {summary}");
    assert!(summary.contains(" 0 damaged"), "{summary}");

    // Behind the server's back: big.bin's blob goes, the backup's is cut in half, and one
    // of restic's data files goes.
    let big = server.operator_sql("SELECT blob_key FROM tree_blobs ORDER BY size DESC LIMIT 1");
    let backup = server.operator_sql("SELECT blob_key FROM backups WHERE blob_key IS NOT NULL");
    server.delete_blob(&big);
    let bytes = server.read_blob(&backup);
    server.write_blob(&backup, &bytes[..bytes.len() / 2]);
    let restic_data = restic.then(|| {
        server.operator_sql(
            "SELECT blob_key FROM restic_objects WHERE kind = 'data' AND blob_key <> '' \
             ORDER BY size DESC LIMIT 1",
        )
    });
    if let Some(key) = &restic_data {
        server.delete_blob(key);
    }

    // The client names what it cannot get; what is intact still comes back.
    let err = alice.fail(&["pull", "proj", "-o", "back"]);
    assert!(err.contains("big.bin"), "{err}");
    alice.ok(&["pull", "proj/docs", "-o", "docs-back"]);
    alice.assert_file("docs-back/notes.txt", "alice's notes");
    let listed: Value = serde_json::from_str(&alice.ok(&["backup", "ls", "--json"])).unwrap();
    let id = listed[0]["id"].as_str().expect("backup id").to_string();
    let err = alice.fail(&["backup", "get", &id, "-o", "report-back.pdf"]);
    assert!(err.contains(&id[..12]), "{err}");
    assert!(!alice.path("report-back.pdf").exists());
    if let Some(repo) = &repo {
        repo.fail(&["check", "--read-data"]);
    }

    // scrub finds each, with whose it is and what it holds, and exits 1.
    let (clean, lines, summary) = scrub(&server);
    assert!(!clean, "{summary}");
    let expected = 2 + usize::from(restic);
    assert_eq!(lines.len(), expected, "{lines:?}");
    let line = |key: &str| {
        lines
            .iter()
            .find(|l| l.last().map(String::as_str) == Some(key))
            .unwrap_or_else(|| panic!("{key} not reported: {lines:?}"))
            .clone()
    };
    let b = line(&big);
    assert_eq!(
        (b[0].as_str(), b[1].as_str()),
        ("missing", "alice"),
        "{b:?}"
    );
    assert!(b[2].starts_with("vault default tree blob "), "{b:?}");
    let k = line(&backup);
    assert_eq!(k[0], format!("size ({} bytes)", bytes.len() / 2), "{k:?}");
    assert!(k[2].starts_with(&format!("backup {id}")), "{k:?}");
    if let Some(key) = &restic_data {
        let r = line(key);
        assert_eq!(
            (r[0].as_str(), r[1].as_str()),
            ("missing", "alice"),
            "{r:?}"
        );
        assert!(r[2].starts_with("restic laptop data/"), "{r:?}");
    }
    assert!(
        summary.contains(&format!(" {expected} damaged")),
        "{summary}"
    );
    let out = server.admin_cmd(&["scrub", "--json"]);
    let reported: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(reported.len(), expected);
    assert!(reported.iter().all(|d| d["owner"] == "alice"));
}
