//! Mercury's limits over a connection's life: idle and authentication deadlines, hourly
//! allowances (shared by replicas), credentials that end, frame limits, declared sizes.

use super::*;

#[test]
fn mercury_idle_connections_and_hourly_upload_limit_get_the_protocols_error() {
    let Some(f) = Fixture::new("idle_timeout = \"2s\"\nuploads_per_hour = 2\n") else {
        return;
    };
    // A connection silent for longer than the idle timeout is told why, then closed.
    let r = f.script(&[&format!("text:AUTH {PSK}"), "recv", "sleep:3", "recvall:5"]);
    assert_eq!(
        r,
        [
            "OK",
            "ERROR idle for 2 s; closing the connection",
            "<closed 1008>"
        ]
    );
    let jauth = format!("json:{}", serde_json::json!({"type": "Auth", "key": PSK}));
    let r = f.script(&[&jauth, "recv", "sleep:3", "recvall:5"]);
    assert!(
        r[1].contains(r#""type":"Error""#) && r[1].contains("idle"),
        "{r:?}"
    );
    assert_eq!(r[2], "<closed 1008>");

    // Two uploads an hour per key: the third is refused in either dialect, nothing stored,
    // and another key is still served.
    let src = f.path("small.hecate");
    random_file(&src, 1 << 20);
    let src = src.to_str().expect("utf8");
    for (i, dialect) in ["text", "json"].into_iter().enumerate() {
        f.ok(
            &f.ws_url(),
            &upload(dialect, PSK, &format!("r{i}.hecate"), src),
        );
    }
    for dialect in ["text", "json"] {
        let out = f.run(&f.ws_url(), &upload(dialect, PSK, "r3.hecate", src));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("rate limit"),
            "{dialect}: {err}"
        );
    }
    assert_eq!(f.names(PSK, "text"), ["r0.hecate", "r1.hecate"]);
    let carol = format!("carol:{CAROL_PASSWORD}");
    f.ok(&f.ws_url(), &upload("text", &carol, "c.hecate", src));
    assert_eq!(f.names(&carol, "json"), ["c.hecate"]);
    assert_eq!(f.stored_bytes(3 << 20), 3 << 20);
}

/// Two replicas on one PostgreSQL database count one hourly upload allowance per key.
#[test]
fn mercury_hourly_allowance_is_shared_by_replicas() {
    let Some(f) = Fixture::scaled_out("uploads_per_hour = 2\n") else {
        return;
    };
    let r2 = f.server.replica();
    let src = f.path("small.hecate");
    random_file(&src, 64 << 10);
    let src = src.to_str().expect("utf8");
    f.ok(&f.ws_url(), &upload("text", PSK, "a.hecate", src));
    f.ok(&ws_url(&r2), &upload("text", PSK, "b.hecate", src));
    for url in [f.ws_url(), ws_url(&r2)] {
        let out = f.run(&url, &upload("text", PSK, "c.hecate", src));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("rate limit"),
            "{url}: {err}"
        );
    }
    assert_eq!(f.names(PSK, "text"), ["a.hecate", "b.hecate"]);
}

/// A connection must authenticate within `auth_timeout` (PING does not extend it); one that
/// authenticated with an enc token ends within seconds of the token's revocation; a frame
/// larger than the protocol allows is refused with the dialect's error and close code 1009.
#[test]
fn mercury_connections_end_with_their_credentials_deadline_and_frame_limit() {
    let Some(f) = Fixture::new("auth_timeout = \"2s\"\nidle_timeout = \"30s\"\n") else {
        return;
    };
    // PINGs before AUTH are answered but do not keep the connection.
    let started = Instant::now();
    let r = f.script(&[
        "text:PING",
        "recv",
        "sleep:1",
        "text:PING",
        "recv",
        "recvall:10",
    ]);
    assert_eq!(
        r,
        [
            "PONG",
            "PONG",
            "ERROR not authenticated within 2 s; closing the connection",
            "<closed 1008>"
        ]
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // A revoked token ends its open connection, PINGs or not.
    let alice = f.server.user("alice", "user");
    let token = alice
        .ok(&["token", "create", "--mercury", "--label", "hecate"])
        .trim()
        .to_string();
    // The revocation waits for the client's OK: a client slow to start (a loaded machine)
    // must not meet a token already revoked.
    let child = Authed::open(&f, &token, 15);
    let listed = alice.ok(&["token", "ls"]);
    let id = listed
        .lines()
        .find(|l| l.contains("hecate"))
        .and_then(|l| l.split_whitespace().next())
        .expect("token id")
        .to_string();
    alice.ok(&["token", "revoke", &id]);
    let revoked = Instant::now();
    let (text, stderr) = child.finish();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"OK"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR the token was revoked")),
        "{text}{stderr}"
    );
    assert_eq!(lines.last(), Some(&"<closed 1008>"), "{text}");
    assert!(
        revoked.elapsed() < Duration::from_secs(6),
        "ended {:?} after the revocation",
        revoked.elapsed()
    );
    // And the token opens nothing new.
    let r = f.script(&[&format!("text:AUTH {token}"), "recvall:5"]);
    assert!(r[0].starts_with("ERROR Invalid authentication"), "{r:?}");

    // So does a token that expires while connected, and one whose user is removed. The
    // expiring one connects first, so that a slow start cannot outlast its 5 s.
    let short = alice
        .ok(&["token", "create", "--mercury", "--expires", "5s"])
        .trim()
        .to_string();
    let created = Instant::now();
    let expiring = Authed::open(&f, &short, 20);
    let bob = f.server.user("bob", "user");
    let bobs = bob.ok(&["token", "create", "--mercury"]).trim().to_string();
    let removed = Authed::open(&f, &bobs, 20);
    let admin = f.server.user("root", "admin");
    admin.ok(&["user", "rm", "bob", "--yes"]);
    let bob_removed = Instant::now();
    for (child, what, since, within) in [
        (removed, "user removed", bob_removed, 6),
        (expiring, "token expired", created, 5 + 6),
    ] {
        let (text, stderr) = child.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"OK"), "{what}: {text}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("ERROR the token was revoked")),
            "{what}: {text}{stderr}"
        );
        assert_eq!(lines.last(), Some(&"<closed 1008>"), "{what}: {text}");
        assert!(
            since.elapsed() < Duration::from_secs(within),
            "{what}: ended {:?} after",
            since.elapsed()
        );
    }

    // A frame over the protocol's limit (4 MiB + 64 KiB) is refused, not dropped silently.
    let r = f.script(&[
        &format!("text:AUTH {PSK}"),
        "recv",
        "binbg:5000000",
        "recvall:10",
    ]);
    assert_eq!(r[0], "OK");
    assert!(r[1].starts_with("ERROR frame too large"), "{r:?}");
    assert_eq!(r[2], "<closed 1009>", "{r:?}");
    let jauth = format!("json:{}", serde_json::json!({"type": "Auth", "key": PSK}));
    let r = f.script(&[&jauth, "recv", "binbg:5000000", "recvall:10"]);
    assert!(
        r[1].contains(r#""code":"FileTooLarge""#) && r[1].contains("frame too large"),
        "{r:?}"
    );
    assert_eq!(r[2], "<closed 1009>", "{r:?}");
}

/// What Hecate's own client sends is accepted by default: it declares the size of its input
/// before compression, so an archive can be larger than declared.
#[test]
fn mercury_accepts_hecates_declared_sizes_by_default() {
    let Some(f) = Fixture::new("") else { return };
    let src = f.path("grown.hecate");
    random_file(&src, 2 << 20);
    f.ok(
        &f.ws_url(),
        &[
            upload("json", PSK, "grown.hecate", src.to_str().expect("utf8")),
            vec!["--declared", "1500000"],
        ]
        .concat(),
    );
    let back = f.path("back.hecate");
    f.ok(
        &f.ws_url(),
        &[
            "download",
            "--dialect",
            "json",
            "--key",
            PSK,
            "--name",
            "grown.hecate",
            "--out",
            back.to_str().expect("utf8"),
        ],
    );
    assert!(same_file(&src, &back));
}

/// A scripted client that has authenticated (its first line, `OK`, has been read), listening
/// for `recvall_s` seconds for what the server says next.
struct Authed {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    first: String,
}

impl Authed {
    fn open(f: &Fixture, token: &str, recvall_s: u32) -> Authed {
        use std::io::BufRead;
        let mut child = f
            .client(
                &f.ws_url(),
                &[
                    "script",
                    &format!("text:AUTH {token}"),
                    "recv",
                    "text:LIST",
                    &format!("recvall:{recvall_s}"),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python client");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("read the client's first line");
        Authed {
            child,
            stdout,
            first,
        }
    }

    /// Everything the client printed, and its stderr, once it has ended.
    fn finish(mut self) -> (String, String) {
        use std::io::Read;
        let mut text = std::mem::take(&mut self.first);
        self.stdout.read_to_string(&mut text).expect("read stdout");
        let out = self.child.wait_with_output().expect("wait");
        (text, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
