//! The command line's conventions (those of restic and rclone): `-` for stdin and stdout,
//! `--json` wherever results are printed, `-q`/`-v`, tables that line up, exit statuses
//! 0/1/2/3, completions and man pages.

use std::io::{Read as _, Write as _};
use std::process::{Output, Stdio};

use crate::harness::*;

/// `enc ARGS` with `input` on stdin. A command that refuses before reading stdin may close it
/// while `input` is being written: that broken pipe is the command's answer, not a failure.
fn with_stdin(user: &User, args: &[&str], input: &[u8]) -> Output {
    let mut child = user
        .cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running enc");
    match child.stdin.take().expect("stdin").write_all(input) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().expect("enc ends")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every row's cell starts where its header does (and the header's columns are apart).
fn assert_aligned(table: &str, what: &str) {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_else(|| panic!("{what}: empty"));
    let mut starts = Vec::new();
    let mut prev = ' ';
    for (i, c) in header.char_indices() {
        // A header is upper-case words; "LAST USED" is one column with a single space.
        if c != ' ' && prev == ' ' && (i == 0 || header[..i].ends_with("  ")) {
            starts.push(i);
        }
        prev = c;
    }
    assert!(starts.len() >= 2, "{what}: no columns in {header:?}");
    let mut rows = 0;
    for line in lines {
        rows += 1;
        for &s in &starts {
            if line.len() <= s {
                continue; // an empty last cell
            }
            let at = line.get(s..s + 1).unwrap_or("");
            let before = if s == 0 { " " } else { &line[s - 1..s] };
            assert!(
                at != " " && !at.is_empty() && before == " ",
                "{what}: column at {s} does not line up in\n{table}"
            );
        }
    }
    assert!(rows > 0, "{what}: no rows in\n{table}");
}

#[test]
fn stdin_stdout_json_quiet_verbose_and_tables() {
    let server = Server::start();
    let alice = server.user("alice", "user");

    // `-` is standard input for push (with a name) and standard output for pull.
    random_file(&alice.path("source.bin"), 3 << 20);
    let data = std::fs::read(alice.path("source.bin")).unwrap();
    let pushed = with_stdin(&alice, &["push", "-", "--as", "piped.bin"], &data);
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    assert!(
        text(&pushed.stdout).starts_with("commit 1 ("),
        "{}",
        text(&pushed.stdout)
    );
    let pulled = alice.run(&["pull", "piped.bin", "-o", "-"]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    assert!(pulled.stdout == data, "pull -o - gives the bytes pushed");
    // Without a name, or with --json competing for stdout: wrong usage, exit status 2.
    let nameless = with_stdin(&alice, &["push", "-"], b"x");
    assert_eq!(
        nameless.status.code(),
        Some(2),
        "{}",
        text(&nameless.stderr)
    );
    assert!(text(&nameless.stderr).contains("--as NAME"));
    let both = alice.run(&["pull", "piped.bin", "-o", "-", "--json"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
    assert!(both.stdout.is_empty());

    // A closed stdout ends `pull -o -` quietly with 141, as `head` expects.
    let mut child = alice
        .cmd(&["pull", "piped.bin", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("enc");
    let mut head = [0u8; 10];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut head)
        .expect("first bytes");
    let ended = child.wait_with_output().expect("enc ends");
    assert_eq!(ended.status.code(), Some(141), "{}", text(&ended.stderr));
    assert!(ended.stderr.is_empty(), "{}", text(&ended.stderr));

    // --json on push, pull and status (before or after the subcommand).
    std::fs::write(alice.path("a.txt"), "alpha\n").unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["--json", "push", "a.txt"])).expect("push --json");
    assert_eq!(json["commit"], 2, "{json}");
    assert_eq!(json["new"], 1, "{json}");
    assert_eq!(json["unchanged"], 0, "{json}");
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["pull", "a.txt", "-o", "got.txt", "--json"]))
            .expect("pull --json");
    assert_eq!(json["commit"], 2, "{json}");
    assert_eq!(json["files"], 1, "{json}");
    assert_eq!(json["bytes"], 6, "{json}");
    assert_eq!(
        std::fs::read_to_string(alice.path("got.txt")).unwrap(),
        "alpha\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["status", "--json"])).expect("status --json");
    assert_eq!(json["user"], "alice", "{json}");
    assert!(json["key_fingerprint"].as_str().is_some(), "{json}");
    assert!(json["device_id"].as_str().is_some(), "{json}");
    assert!(
        json["device_key_fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("SHA256:")),
        "{json}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&alice.ok(&["key", "ls-ssh", "--json"])).expect("ls-ssh --json");
    assert!(json.as_array().is_some_and(|a| a.is_empty()), "{json}");

    // -q: results and errors only; -v: how much content and how fast.
    let out = alice.run(&["-q", "pull", "a.txt", "-o", "quiet.txt"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out.stderr)
    );
    let out = alice.run(&["vault", "create", "spare", "--quiet"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(alice.path("a.txt"), "alpha, again\n").unwrap();
    let out = alice.run(&["-v", "push", "a.txt"]);
    assert!(text(&out.stderr).contains("/s"), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("commit 3 ("),
        "{}",
        text(&out.stdout)
    );
    let out = alice.run(&["-q", "-v", "ls"]);
    assert_eq!(out.status.code(), Some(2), "-q and -v together");

    // Tables: headers over columns that line up.
    alice.ok(&["token", "create", "--mercury", "--label", "hecate laptop"]);
    assert_aligned(&alice.ok(&["log"]), "log");
    assert_aligned(&alice.ok(&["log", "a.txt"]), "log PATH");
    std::fs::write(alice.path("b.txt"), "beta\n").unwrap();
    alice.ok(&["object", "push", "b.txt", "--vault", "spare"]);
    assert_aligned(
        &alice.ok(&["object", "ls", "--long", "--vault", "spare"]),
        "object ls --long",
    );
    assert_aligned(&alice.ok(&["vault", "ls"]), "vault ls");
    assert_aligned(&alice.ok(&["token", "ls"]), "token ls");
    assert_aligned(&alice.ok(&["session", "ls"]), "session ls");
    assert_aligned(&alice.ok(&["audit"]), "audit");
    let admin = server.user("root", "admin");
    assert_aligned(&admin.ok(&["user", "ls"]), "user ls");
}

#[test]
fn partial_work_exits_3_and_says_what_failed() {
    let server = Server::start();
    let alice = server.user("alice", "user");

    // A push that cannot store everything asked for: the rest is stored, exit status 3.
    std::fs::create_dir(alice.path("mixed")).unwrap();
    std::fs::write(alice.path("mixed/one"), "1").unwrap();
    std::fs::write(alice.path("mixed/two"), "2").unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(alice.path("mixed/pipe"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    let out = alice.run(&["object", "push", "mixed"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("mixed/one\t") && stdout.contains("mixed/two\t"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("mixed/pipe"), "{stderr}");
    assert!(stderr.contains("1 of 3 files were not pushed"), "{stderr}");

    // A pull of several objects where one is damaged: the others arrive, exit status 3.
    let before: Vec<String> = server.blobs("blobs").into_iter().map(|b| b.0).collect();
    std::fs::create_dir(alice.path("docs")).unwrap();
    std::fs::write(alice.path("docs/good"), "good").unwrap();
    alice.ok(&["object", "push", "docs/good"]);
    std::fs::write(alice.path("docs/bad"), vec![9u8; 100_000]).unwrap();
    let good_blobs: Vec<String> = server.blobs("blobs").into_iter().map(|b| b.0).collect();
    alice.ok(&["object", "push", "docs/bad"]);
    let bad = server
        .blobs("blobs")
        .into_iter()
        .map(|b| b.0)
        .find(|k| !good_blobs.contains(k) && !before.contains(k))
        .expect("the new blob");
    let mut damaged = server.read_blob(&bad);
    let mid = damaged.len() / 2;
    damaged[mid] ^= 1;
    server.write_blob(&bad, &damaged);
    let out = alice.run(&["object", "pull", "docs", "-o", "back"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(alice.path("back/docs/good")).unwrap(),
        "good"
    );
    assert!(
        !alice.path("back/docs/bad").exists(),
        "nothing unverified is written"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("docs/bad") && stderr.contains("integrity"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 objects were not pulled"),
        "{stderr}"
    );

    // Wrong usage is 2, any other error 1.
    let out = alice.run(&["object", "pull", "docs/good", "docs/bad", "--version", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = alice.run(&["object", "pull", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = alice.run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "clap's own usage error");
}

#[test]
fn completions_and_man_pages_need_no_account() {
    let nobody = tempfile::tempdir().unwrap();
    let enc = |args: &[&str]| {
        std::process::Command::new(bin("enc"))
            .args(args)
            .env("ENC_CONFIG_DIR", nobody.path().join("config"))
            .current_dir(nobody.path())
            .output()
            .expect("enc")
    };
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef enc"),
        ("fish", "complete -c enc"),
    ] {
        let out = enc(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("read-only"),
            "{shell} completes flags of subcommands"
        );
    }
    let out = enc(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is wrong usage"
    );
    let page = enc(&["man"]);
    assert!(page.status.success());
    assert!(
        text(&page.stdout).contains(".TH enc 1"),
        "{}",
        text(&page.stdout)
    );
    let out = enc(&["man", "--dir", "pages"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let push = std::fs::read_to_string(nobody.path().join("pages/enc-push.1")).expect("enc-push.1");
    assert!(push.contains(".TH enc-push"), "{push}");
    assert!(nobody.path().join("pages/enc-vault-share.1").exists());
    assert!(
        !nobody.path().join("config").exists(),
        "no configuration made"
    );
}
