//! schemathesis (PyPI) fuzzes every `/v1` route from the OpenAPI document the server serves,
//! as an authenticated user: no answer may be a server error or break the documented
//! schema. Routes that end the session or the account are left out (they would end the
//! run's own credentials). The user is not an admin, so the admin routes answer their
//! refusal: an admin's fuzzer would set its own quota to nothing and then rightly get 507s.

use std::process::Command;

use crate::harness::*;

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_the_schema() {
    if !have_tool("schemathesis") {
        return;
    }
    // Records on too: their routes that seal in transit are fuzzed as well.
    let server = Server::start_with("[records]\nenabled = true\n", &[]);
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("a.txt"), "some content").expect("write");
    alice.ok(&["push", "a.txt"]);
    alice.ok(&["backup", "put", "a.txt", "--class", "Confidential"]);
    let token = alice.token();
    // Run where its cache (it replays failures it found before) starts empty each time and
    // lands nowhere near the sources.
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = Command::new("schemathesis")
        .current_dir(scratch.path())
        .args(["run", &format!("{}/v1/openapi.json", server.url)])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--tls-verify", "false"])
        .args([
            "--exclude-path-regex",
            r"^/v1/(auth/logout|sessions/\{id\}|users/\{name\}|me/erase)$",
        ])
        .args(["--max-examples", "15", "--seed", "1", "--workers", "1"])
        .args(["--request-timeout", "30", "--no-color"])
        .env("NO_COLOR", "1")
        .output()
        .expect("running schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    // It reached the API: a summary of tested operations, none failed.
    assert!(text.contains("Tested:"), "{text}");
    // The run's own session survived (nothing it sent could end it).
    alice.ok(&["status"]);
}
