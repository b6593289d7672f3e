//! `enc account export`: everything an account can read, decrypted and verified, under one
//! directory with a manifest whose sizes and SHA-256s match the files.

use serde_json::Value;

use crate::harness::*;

#[test]
fn an_account_exports_its_vaults_and_backups_with_a_manifest() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    // A vault tree (a subdirectory, a symlink), a vault of objects from before trees, a
    // vault shared by bob, and a backup.
    std::fs::create_dir_all(alice.path("proj/src")).unwrap();
    std::fs::write(alice.path("proj/README"), "read me").unwrap();
    std::fs::write(alice.path("proj/src/main.rs"), "fn main() {}").unwrap();
    std::os::unix::fs::symlink("README", alice.path("proj/LINK")).unwrap();
    alice.ok(&["push", "proj"]);
    alice.ok(&["vault", "create", "old"]);
    std::fs::write(alice.path("notes.txt"), "an object").unwrap();
    alice.ok(&["object", "push", "notes.txt", "--vault", "old"]);
    bob.ok(&["vault", "create", "team"]);
    std::fs::write(bob.path("plan.txt"), "bob's plan").unwrap();
    bob.ok(&["push", "plan.txt", "--vault", "team"]);
    bob.ok(&["vault", "share", "team", "alice"]);
    std::fs::write(alice.path("report.pdf"), vec![42u8; 100_000]).unwrap();
    let backup = alice.ok(&["backup", "put", "report.pdf", "--class", "Confidential"]);
    // A restic repository with a snapshot.
    let restic = crate::restic::Repo::with_snapshot(&server, &alice, "laptop", "proj");

    // A Mercury (Hecate) archive, its name with a space as Hecate's allow.
    let token = alice
        .ok(&["token", "create", "--mercury", "--label", "hecate"])
        .trim()
        .to_string();
    random_file(&alice.path("week 1.hecate"), 300_000);
    let mercury = crate::erasure::mercury_upload(
        &server,
        &token,
        "week 1.hecate",
        &alice.path("week 1.hecate"),
        alice.dir.path(),
    );

    let printed = alice.ok(&["account", "export", "out"]);
    assert!(printed.trim().ends_with("out/manifest.json"), "{printed}");
    alice.assert_file("out/vaults/alice/default/proj/README", "read me");
    alice.assert_file("out/vaults/alice/default/proj/src/main.rs", "fn main() {}");
    let link = std::fs::read_link(alice.path("out/vaults/alice/default/proj/LINK")).unwrap();
    assert_eq!(link.to_str(), Some("README"));
    alice.assert_file("out/vaults/alice/old/notes.txt", "an object");
    alice.assert_file("out/vaults/bob/team/plan.txt", "bob's plan");

    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(alice.path("out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["user"], "alice");
    let vaults = m["vaults"].as_array().unwrap();
    assert_eq!(vaults.len(), 3, "{vaults:?}");
    let kinds: Vec<(&str, &str)> = vaults
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["kind"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("default", "tree")) && kinds.contains(&("old", "objects")));
    let b = &m["backups"][0];
    assert_eq!(b["id"].as_str(), Some(backup.trim()));
    assert_eq!(b["content"], "decrypted");
    assert_eq!(b["classification"], "Confidential");
    alice.assert_file(
        &format!("out/{}", b["file"].as_str().unwrap()),
        vec![42u8; 100_000],
    );
    // Every file is in the manifest with its true size and SHA-256, and nothing else is.
    let files = m["files"].as_array().unwrap();
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let bytes =
            std::fs::read(alice.path(&format!("out/{}", f["path"].as_str().unwrap()))).unwrap();
        assert_eq!(f["size"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(f["sha256"].as_str(), Some(sha256_hex(&bytes).as_str()));
    }
    if mercury {
        // Bob gets for alice's archive exactly what he gets for none, and lists nothing.
        let bob_get = |path: &str| {
            let r = http()
                .get(format!("{}{path}", server.url))
                .bearer_auth(bob.token())
                .send()
                .expect("GET");
            (r.status(), r.text().expect("body"))
        };
        assert_eq!(
            bob_get("/v1/mercury/archives/week%201.hecate"),
            bob_get("/v1/mercury/archives/no%20such.hecate")
        );
        assert_eq!(bob_get("/v1/mercury/archives/week%201.hecate").0, 404);
        assert_eq!(bob_get("/v1/mercury/archives").1, "[]");
        let a = &m["mercury"][0];
        assert_eq!(a["name"], "week 1.hecate");
        assert_eq!(a["size"], 300_000);
        assert!(same_file(
            &alice.path("week 1.hecate"),
            &alice.path(&format!("out/{}", a["file"].as_str().unwrap()))
        ));
    }
    let links = m["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0]["path"], "vaults/alice/default/proj/LINK");
    assert_eq!(links[0]["target"], "README");
    assert!(
        m["not_exported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("records"))
    );

    // The restic repository, copied as stored, opens locally with its password, checks
    // whole, and restores what was backed up; the export's token is revoked.
    if restic.is_some() {
        assert_eq!(m["restic"][0]["name"], "laptop");
        let local = alice.path("out/restic/laptop");
        let restic_local = |args: &[&str]| {
            let out = std::process::Command::new("restic")
                .args(["-r", &local.display().to_string(), "--no-cache"])
                .args(args)
                .env("RESTIC_PASSWORD", "restic repository password")
                .output()
                .expect("restic");
            assert!(
                out.status.success(),
                "restic {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        restic_local(&["check", "--read-data"]);
        let target = alice.path("restored");
        restic_local(&[
            "restore",
            "latest",
            "--target",
            &target.display().to_string(),
        ]);
        let restored = target.join(alice.path("proj").strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(restored.join("README")).unwrap(), b"read me");
        let tokens = alice.ok(&["token", "ls", "--json"]);
        assert!(!tokens.contains("enc account export"), "{tokens}");
    }

    // Never into a directory that holds something.
    let e = alice.fail(&["account", "export", "out"]);
    assert!(e.contains("not empty"), "{e}");

    // A server that names a vault like a path does not get the export to write outside its
    // directory.
    server.operator_sql("UPDATE vaults SET name = '../../escape' WHERE name = 'old'");
    let e = alice.fail(&["account", "export", "out2"]);
    assert!(e.contains("no plain file name"), "{e}");
    assert!(!alice.path("escape").exists() && !alice.dir.path().join("../escape").exists());
}
