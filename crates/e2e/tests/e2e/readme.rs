//! The README's five-minute tour, restic, vault-tree, device, records, export, erasure,
//! scrub and Mercury sections, run as written by a shell on a fresh directory, substituting only the
//! port (8443, which may be taken) and the configuration directory.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// The first ```sh block after `heading` in the README.
fn block_after(readme: &str, heading: &str) -> String {
    let from = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[from..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block ends") + start;
    rest[start..end].to_string()
}

#[test]
fn readme_tour_restic_and_mercury_sections_run_as_written() {
    for tool in ["age", "restic", "hostname", "awk", "ssh-keygen"] {
        if !have_tool(tool) {
            return;
        }
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let blocks: Vec<String> = [
        "## Five-minute tour",
        "## restic backups",
        "## Versioned directories",
        "## Devices and device backups",
        "## Records",
        "## Leaving enc: export",
        "## Leaving enc: erasure",
        "## Checking the storage",
        "## Hecate archives",
    ]
    .iter()
    .map(|h| block_after(&readme, h).replace("8443", &port.to_string()))
    .collect();
    let dir = tempfile::tempdir().expect("tmp");
    // The shell stops at the first failing command and stops the server it started.
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n{}\n",
        blocks.join("\n")
    );
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("ENC_LISTEN", format!("127.0.0.1:{port}"))
        .env("ENC_CONFIG_DIR", dir.path().join("alice-config"))
        .env("ENC_PASSPHRASE", "a passphrase for the README tour")
        .env_remove("ENC_SERVER")
        .env_remove("ENC_USER")
        .env_remove("ENC_FINGERPRINT")
        .env_remove("ENC_DATA_DIR")
        .env_remove("RESTIC_REPOSITORY")
        .env_remove("RESTIC_PASSWORD")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README's commands failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What the tour promises, checked on what it left behind.
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert_eq!(read("copy.pdf"), "quarterly figures\n");
    assert_eq!(read("report-again.pdf"), "revised figures\n");
    assert_eq!(read("bobs-plan.txt"), "the plan\n");
    assert!(
        stdout.contains("account\t1") && stdout.contains("memberships"),
        "enc account delete's report: {stdout}"
    );
    assert_eq!(read("report-backup.pdf"), "revised figures\n");
    assert!(
        stdout.contains("snapshot") && stdout.contains("saved"),
        "restic backup: {stdout}"
    );
    assert!(stdout.contains("$argon2id$"), "hash-password: {stdout}");
    assert_eq!(read("restored/src/main.rs"), "fn main() {}\n// changed\n");
    assert_eq!(read("src-then/main.rs"), "fn main() {}\n");
    assert_eq!(
        std::fs::read_link(dir.path().join("restored/entry")).ok(),
        Some(std::path::PathBuf::from("src/main.rs"))
    );
}
