//! Tampering, crashes and shutdown: nothing acknowledged is lost, nothing changed goes unnoticed.

use std::process::Stdio;
use std::time::Duration;

use rand::Rng as _;

use crate::basics::count_files;
use crate::harness::*;

/// Keys of the vault blobs (on the local disk, staging files of uploads in flight too).
fn blob_files(server: &Server) -> Vec<String> {
    server.blobs("blobs").into_iter().map(|(k, _)| k).collect()
}

fn no_partial_files(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains(".part"))
}

/// Acceptance 5: a flipped byte or a truncation makes `enc pull` fail with an integrity
/// error and leave no output file.
#[test]
fn tampered_or_truncated_blobs_are_detected() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    random_file(&alice.path("doc.bin"), 1 << 20);
    alice.ok(&["object", "push", "doc.bin"]);
    let blobs = blob_files(&server);
    assert_eq!(blobs.len(), 1);
    let blob = &blobs[0];
    let original = server.read_blob(blob);

    for (what, damaged) in [
        ("flip in the payload", {
            let mut d = original.clone();
            let i = d.len() / 2;
            d[i] ^= 0x01;
            d
        }),
        ("flip in the header", {
            let mut d = original.clone();
            d[40] ^= 0x01;
            d
        }),
        ("truncation", original[..original.len() - 100].to_vec()),
        (
            "truncation at a chunk boundary",
            original[..original.len() - (original.len() - 200) % 65552].to_vec(),
        ),
    ] {
        server.write_blob(blob, &damaged);
        let err = alice.fail(&["object", "pull", "doc.bin", "-o", "out.bin"]);
        assert!(err.contains("integrity"), "{what}: {err}");
        assert!(!alice.path("out.bin").exists(), "{what}: no output file");
        assert!(
            no_partial_files(alice.dir.path()),
            "{what}: no temporary file left"
        );
    }
    server.write_blob(blob, &original);
    alice.ok(&["object", "pull", "doc.bin", "-o", "out.bin"]);
    assert!(same_file(&alice.path("doc.bin"), &alice.path("out.bin")));
}

/// Acceptance 6: `kill -9` during a 1 GiB push; after restart the object is not listed,
/// earlier objects pull intact, and the push succeeds when repeated.
#[test]
fn crash_during_large_push() {
    let mut server = Server::start();
    let alice = server.user("alice", "user");
    random_file(&alice.path("early.bin"), 2 << 20);
    alice.ok(&["object", "push", "early.bin"]);
    random_file(&alice.path("huge.bin"), 1 << 30);

    let mut push = alice
        .cmd(&["object", "push", "huge.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until bytes are flowing, then kill at a random moment.
    server.wait_upload_started(&mut push);
    std::thread::sleep(Duration::from_millis(rand::thread_rng().gen_range(50..800)));
    server.kill9();
    let status = push.wait().unwrap();
    assert!(
        !status.success(),
        "the push cannot succeed when the server died"
    );

    server.restart();
    assert_eq!(
        blob_files(&server).len(),
        1,
        "the interrupted upload's staging file is swept at start-up"
    );
    assert_eq!(
        alice.ok(&["object", "ls"]),
        "early.bin\n",
        "the interrupted object is not listed"
    );
    alice.ok(&["object", "pull", "early.bin", "-o", "early.out"]);
    assert!(same_file(
        &alice.path("early.bin"),
        &alice.path("early.out")
    ));
    alice.ok(&["object", "push", "huge.bin"]);
    assert_eq!(alice.ok(&["object", "ls"]), "early.bin\nhuge.bin\n");
    alice.ok(&["object", "pull", "huge.bin", "-o", "huge.out"]);
    assert!(same_file(&alice.path("huge.bin"), &alice.path("huge.out")));
    let _ = std::fs::remove_file(alice.path("huge.out"));
    let _ = std::fs::remove_file(alice.path("huge.bin"));
}

/// SIGTERM lets an in-flight upload finish, then the server exits cleanly.
#[test]
fn graceful_shutdown_finishes_in_flight_uploads() {
    let mut server = Server::start();
    let alice = server.user("alice", "user");
    random_file(&alice.path("mid.bin"), 200 << 20);
    let mut push = alice
        .cmd(&["object", "push", "mid.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_upload_started(&mut push);
    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM");
    let out = push.wait_with_output().unwrap();
    // The upload either completed and committed before the server went away, or failed and
    // left nothing visible; it must never be half-visible.
    server.restart();
    let listed = alice.ok(&["object", "ls"]);
    if out.status.success() {
        assert_eq!(listed, "mid.bin\n");
        alice.ok(&["object", "pull", "mid.bin", "-o", "mid.out"]);
        assert!(same_file(&alice.path("mid.bin"), &alice.path("mid.out")));
    } else {
        assert_eq!(listed, "");
    }
    let _ = count_files(&server.data_dir);
}
